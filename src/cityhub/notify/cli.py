"""``cityhub notify …`` — webhook subscriptions and the notification outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from cityhub.clitools import cli_actor, fail_with, id_argument
from cityhub.db import session_scope
from cityhub.errors import CityhubError
from cityhub.notify.models import OutboxStatus, Topic

app = typer.Typer(no_args_is_help=True, help="Notifications: webhook subscriptions and the outbox.")
webhooks_app = typer.Typer(no_args_is_help=True, help="Webhook subscriptions (signed with HMAC-SHA256).")
outbox_app = typer.Typer(no_args_is_help=True, help="Outbox messages: inspect and revive.")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(outbox_app, name="outbox")


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Option("--url", help="Receiver URL (http:// or https://).")],
    events: Annotated[
        str, typer.Option("--events", help="Comma-separated topics: " + ",".join(t.value for t in Topic) + ".")
    ],
    unit: Annotated[
        str | None, typer.Option("--unit", help="Only orders whose lead unit, street or community has this code.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note on who receives this.")] = None,
) -> None:
    """Subscribe a URL to topics and print its signing secret (shown this once)."""
    from cityhub.notify import service

    try:
        with session_scope() as session:
            sub, secret = service.add_subscription(
                session,
                target=url,
                topics=events.split(","),
                unit_code=unit,
                description=description,
                actor=cli_actor(),
            )
            sub_id, topics = sub.id, ",".join(sub.topics)
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"webhook {sub_id} → {url} [{topics}]")
    typer.echo(f"secret: {secret}")
    typer.echo("Keep the secret now: it is not shown again. Receivers verify X-Cityhub-Signature with it.")


@webhooks_app.command("list")
def webhooks_list(
    all_: Annotated[bool, typer.Option("--all", help="Include removed subscriptions.")] = False,
) -> None:
    """List subscriptions, one per line: id, kind, address, topics, unit, then who added it and how its deliveries
    go (pending, failed and dead messages, the last delivery, when delivery last failed) as the 推送订阅 page shows
    them. Secrets are never
    printed."""
    from cityhub.notify import service

    with session_scope() as session:
        for row in service.subscriptions_overview(session, include_inactive=all_):
            sub, d = row.subscription, row.delivery
            unit = sub.unit.code if sub.unit else "*"
            state = "" if sub.active else "\tremoved"
            sent = d.last_sent_at.isoformat() if d.last_sent_at else "never"
            failed = d.last_failed_at.isoformat() if d.last_failed_at else ("unknown" if d.last_failure else "never")
            typer.echo(
                f"{sub.id}\t{sub.kind}\t{sub.target}\t{','.join(sub.topics)}\tunit={unit}{state}"
                f"\tby={row.created_by or '?'}\tpending={d.pending}\tfailed={d.failed}\tdead={d.dead}\tlast_sent={sent}"
                f"\tlast_failed={failed}"
            )


@webhooks_app.command("remove")
def webhooks_remove(subscription_id: Annotated[int, id_argument("subscription", "Subscription id.")]) -> None:
    """Remove a subscription; its undelivered messages become dead."""
    from cityhub.notify import service

    try:
        with session_scope() as session:
            dropped = service.remove_subscription(session, subscription_id=subscription_id, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"subscription {subscription_id} removed ({dropped} undelivered messages dead-lettered)")


@outbox_app.command("list")
def outbox_list(
    status: Annotated[OutboxStatus | None, typer.Option(help="Only messages of this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List outbox messages, newest first."""
    from cityhub.notify import service

    with session_scope() as session:
        for m in service.list_messages(session, status=status, limit=limit):
            error = f"\t{m.last_error[:80]}" if m.last_error else ""
            typer.echo(
                f"{m.id}\t{m.topic.value}\torder={m.order_id}\tsub={m.subscription_id}\t{m.status.value}"
                f"\tattempts={m.attempts}\tnext={m.next_attempt_at.isoformat(timespec='seconds')}{error}"
            )


@outbox_app.command("retry")
def outbox_retry(message_id: Annotated[int, id_argument("outbox message", "Outbox message id.")]) -> None:
    """Make a dead or failed message due now, with a fresh budget of attempts."""
    from cityhub.notify import service

    try:
        with session_scope() as session:
            service.retry(session, message_id=message_id, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"message {message_id} is pending again")
