"""``cityhub notify …`` — webhook subscriptions and the notification outbox."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Any

import typer

from cityhub.clitools import (
    RejectedRow,
    cli_actor,
    examples,
    fail,
    fail_with,
    id_argument,
    print_rejected,
    refuse_if_nothing_imported,
)
from cityhub.db import session_scope
from cityhub.errors import CityhubError, ValidationFailed
from cityhub.notify.models import OutboxStatus, Topic
from cityhub.timerange import check_time

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


# The columns of a relay's log replayed by ``sms-inbound --file`` (a header row names them; the last two optional).
SMS_COLUMNS = ("phone", "text", "message_id", "received_at")


@app.command(
    "sms-inbound",
    epilog=examples(
        ("cityhub notify sms-inbound --phone 13800000001 --text '3 路灯还是不亮'", "rate as the relay would post it"),
        ("cityhub notify sms-inbound --file relay-log.csv", "replay a relay's log: phone,text,message_id,received_at"),
    ),
)
def sms_inbound(
    phone: Annotated[str | None, typer.Option("--phone", help="The number the message came from.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="The message as the citizen wrote it.")] = None,
    message_id: Annotated[
        str | None, typer.Option("--message-id", help="The relay's id of it: sent again, it rates nothing twice.")
    ] = None,
    received_at: Annotated[
        str | None, typer.Option("--received-at", help="When the relay received it (ISO 8601 with a time zone).")
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="A CSV of messages with the header phone,text[,message_id,received_at] (UTF-8 or GB18030), each "
            "taken as one message: a relay's log replayed.",
        ),
    ] = None,
) -> None:
    """A citizen's reply to the answer's text message (短信回访: 1 满意, 2 基本满意, 3 不满意 and why), as the SMS relay
    posts it to POST /api/v1/sms/inbound: rates the phone's order waiting for it, audited as the citizen's by SMS,
    and prints what it did, the order and the text message to send back (tab-separated; with --file one line per
    message, the rejected rows on stderr)."""
    if file is not None:
        if phone is not None or text is not None or message_id is not None or received_at is not None:
            raise fail("--file takes the messages from the file: give no --phone, --text, --message-id, --received-at")
        _replay(file)
        return
    if phone is None or text is None:
        raise fail("give --phone and --text (or --file)")
    try:
        answer = _one_message(phone, text, message_id, received_at)
    except CityhubError as exc:
        raise fail_with(exc) from None
    _print_answer(answer)


def _one_message(phone: str, text: str, message_id: str | None, received_at: str | None) -> Any:
    """One message through :func:`cityhub.workorders.tracking.rate_by_sms`, in its own transaction."""
    from cityhub.workorders.tracking import rate_by_sms

    at = _received(received_at) if received_at else None
    with session_scope() as session:
        answer = rate_by_sms(session, phone=phone, text=text, message_id=message_id or None, received_at=at)
    return answer


def _received(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(
            f"received_at '{value}' is not a time (ISO 8601, e.g. 2026-12-07T09:30:00+08:00)",
            details={"field": "received_at"},
        ) from None
    return check_time(at, "received_at") or at


def _replay(path: str) -> None:
    from cityhub.textfiles import csv_records, read_text

    try:
        content = read_text(path)
    except (OSError, CityhubError) as exc:
        raise fail(f"{path}: {exc}") from None
    records = csv_records(io.StringIO(content, newline=""))
    header = next(records, None)
    columns = [c.strip().lower() for c in header[0]] if header else []
    if columns[:2] != ["phone", "text"] or any(c not in SMS_COLUMNS for c in columns):
        raise fail(
            f"{path}: the header must be phone,text[,message_id,received_at], not {','.join(columns) or 'empty'}"
        )
    rejected: list[RejectedRow] = []
    taken = 0
    for number, (cells, problem) in enumerate(records, start=2):
        if problem is not None:
            rejected.append(RejectedRow(number, None, problem))
            continue
        if not any(c.strip() for c in cells):
            continue
        row = dict(zip(columns, cells, strict=False))
        try:
            answer = _one_message(
                row.get("phone", ""), row.get("text", ""), row.get("message_id"), row.get("received_at") or None
            )
        except CityhubError as exc:
            rejected.append(RejectedRow(number, exc.details.get("field"), exc.message))
            continue
        taken += 1
        _print_answer(answer, prefix=f"row {number}\t")
    print_rejected(path, rejected)
    refuse_if_nothing_imported(path, taken, len(rejected))


def _print_answer(answer: Any, prefix: str = "") -> None:
    typer.echo(f"{prefix}{answer.outcome.value}\t{answer.number or '-'}\t{answer.reply_text}")
