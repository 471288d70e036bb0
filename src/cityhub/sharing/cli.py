"""``cityhub apikey …``: API clients and their keys (the key is printed once, alone on stdout)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from cityhub.clitools import cli_actor, fail_with
from cityhub.clitools import fail as _fail
from cityhub.errors import CityhubError
from cityhub.sharing.scopes import SCOPES

app = typer.Typer(no_args_is_help=True, help="API clients of Open311 and the data-sharing API, and their keys.")

ExpiresIn = Annotated[
    int | None, typer.Option("--expires-in", metavar="DAYS", help="The key stops working DAYS days from now.")
]
Expires = Annotated[
    str | None,
    typer.Option(
        "--expires", metavar="DATE", help="The key works through this day (YYYY-MM-DD, the district's time zone)."
    ),
]


def _expiry(days: int | None, last_day: str | None) -> datetime | None:
    """The expiry the options give (None: none), or the CLI's one-line error naming the option."""
    from cityhub.sharing import service

    until = None
    if last_day is not None:
        try:
            until = date.fromisoformat(last_day.strip())
        except ValueError:
            raise _fail(f"--expires {last_day!r} is not a date (YYYY-MM-DD)") from None
    try:
        return service.expiry(days=days, until=until)
    except CityhubError as exc:
        raise fail_with(exc, "--expires-in/--expires: ") from None


def _when(value: datetime) -> str:
    from cityhub.config import get_settings

    return value.astimezone(get_settings().tz).isoformat(timespec="seconds")


@app.command("create")
def create(
    client: Annotated[
        str,
        typer.Option(
            "--client",
            metavar="NAME",
            help="The API client (a partner system, an app) the key is for, by its name: created if new.",
        ),
    ],
    scopes: Annotated[
        str | None,
        typer.Option(
            "--scopes",
            metavar="SCOPES",
            help=f"Comma/space separated: {', '.join(SCOPES)}. Required for a new client; for an existing one omit "
            "it (or repeat its scopes): `apikey scopes` changes them.",
        ),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            "--rate-limit",
            metavar="N",
            help="Calls per minute per key (default 60 for a new client); an existing client keeps its own: "
            "`apikey limit` changes it.",
        ),
    ] = None,
    expires_in: ExpiresIn = None,
    expires: Expires = None,
) -> None:
    """Issue a new key for the API client --client NAME and print only the key (store it now: it is not kept). A new
    client gets --scopes and --rate-limit; an existing one keeps its own. Without --expires-in or --expires the key
    works until revoked."""
    from cityhub.db import session_scope
    from cityhub.sharing import service

    expires_at = _expiry(expires_in, expires)
    try:
        with session_scope() as session:
            api_client, key = service.create_key(
                session,
                client_name=client,
                scopes=scopes,
                rate_limit=rate_limit,
                expires_at=expires_at,
                actor=cli_actor(),
            )
            summary = f"client {api_client.name}: scopes {api_client.scopes}, {api_client.rate_limit_per_minute}/min"
    except CityhubError as exc:
        raise fail_with(exc) from None
    if expires_at is not None:
        summary += f"; the key expires {_when(expires_at)}"
    typer.echo(summary, err=True)
    typer.echo(key)


@app.command("expiry")
def expiry_command(
    prefix: Annotated[str, typer.Argument(help="The key, or at least its first 8 characters.")],
    expires_in: ExpiresIn = None,
    expires: Expires = None,
    never: Annotated[bool, typer.Option("--never", help="The key works until revoked.")] = False,
    now: Annotated[
        bool,
        typer.Option("--now", help="The key expires now: refused (401 key_expired) from its next call until moved on."),
    ] = False,
) -> None:
    """Set, extend or remove the expiry of one key, or end it now (an expired key works again once its expiry is
    moved on)."""
    from cityhub.db import session_scope
    from cityhub.sharing import service

    if [never, now, expires_in is not None or expires is not None].count(True) != 1:
        raise _fail("give one of --expires-in DAYS, --expires DATE, --never or --now")
    expires_at = None if never or now else _expiry(expires_in, expires)
    try:
        with session_scope() as session:
            key = service.set_expiry(session, prefix=prefix, expires_at=expires_at, actor=cli_actor(), at_once=now)
            shown = f"{key.prefix}… ({key.client.name})"
            expires_at = key.expires_at
    except CityhubError as exc:
        raise fail_with(exc) from None
    if now and expires_at is not None:
        typer.echo(f"key {shown}: expired {_when(expires_at)} (now)")
        return
    typer.echo(f"key {shown}: {'expires ' + _when(expires_at) if expires_at else 'no expiry'}")


@app.command("scopes")
def scopes_command(
    client: Annotated[str, typer.Option("--client", metavar="NAME", help="An existing API client, by its name.")],
    scopes: Annotated[str, typer.Option("--scopes", help=f"Its new scopes: {', '.join(SCOPES)}.")],
) -> None:
    """Change the scopes of the API client --client NAME: every key it holds gets them at once."""
    from cityhub.db import session_scope
    from cityhub.sharing import service

    try:
        with session_scope() as session:
            api_client, before = service.set_scopes(session, client_name=client, scopes=scopes, actor=cli_actor())
            keys = [f"{k.prefix}…" for k in api_client.keys if k.revoked_at is None]
            after = api_client.scopes
    except CityhubError as exc:
        raise fail_with(exc) from None
    affected = f"{len(keys)} active key(s){': ' + ', '.join(keys) if keys else ''}"
    typer.echo(f"client {client}: scopes {' '.join(before)} -> {after}; affects {affected}")


@app.command("limit")
def limit_command(
    client: Annotated[str, typer.Option("--client", metavar="NAME", help="An existing API client, by its name.")],
    rate_limit: Annotated[int, typer.Option("--rate-limit", help="Its new limit: calls per minute per key.")],
) -> None:
    """Change the rate limit of the API client --client NAME: every key it holds gets it at once."""
    from cityhub.db import session_scope
    from cityhub.sharing import service

    try:
        with session_scope() as session:
            api_client, before = service.set_rate_limit(
                session, client_name=client, rate_limit=rate_limit, actor=cli_actor()
            )
            keys = len([k for k in api_client.keys if k.revoked_at is None])
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"client {client}: {before}/min -> {rate_limit}/min; affects {keys} active key(s)")


@app.command("list")
def list_command() -> None:
    """List clients and their keys (prefix, created, revoked or active, expiry)."""
    from cityhub.db import session_scope, utcnow
    from cityhub.sharing import service

    now = utcnow()
    with session_scope() as session:
        for c in service.list_clients(session):
            state = "active" if c.active else "inactive"
            typer.echo(f"{c.name}\t{state}\t{c.rate_limit_per_minute}/min\t{c.scopes}")
            for k in c.keys:
                revoked = f"revoked {k.revoked_at.isoformat(timespec='seconds')}" if k.revoked_at else "active"
                if k.revoked_at is None and k.expires_at is not None:
                    revoked = f"{'expired' if k.expires_at <= now else 'active, expires'} {_when(k.expires_at)}"
                typer.echo(f"  {k.prefix}…\tcreated {k.created_at.isoformat(timespec='seconds')}\t{revoked}")


@app.command("revoke")
def revoke(
    prefix: Annotated[str | None, typer.Argument(help="The key, or at least its first 8 characters.")] = None,
    client: Annotated[str | None, typer.Option("--client", help="Revoke every key of this client.")] = None,
) -> None:
    """Revoke one key (by prefix) or every key of a client."""
    from cityhub.db import session_scope
    from cityhub.sharing import service

    try:
        with session_scope() as session:
            count = service.revoke(session, prefix=prefix, client_name=client, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"revoked {count} key(s)")
