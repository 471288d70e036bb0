"""``cityhub users …`` — accounts for administrators: create, list, set a password, lock and unlock.

Passwords are read from standard input (``--password-stdin``) or generated and printed once; nothing secret is
ever taken from the command line, where it would stay in shell history and process lists.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from cityhub.clitools import cli_actor, fail_with, validation_problem
from cityhub.clitools import fail as _fail
from cityhub.errors import CityhubError
from cityhub.org.models import Role

app = typer.Typer(no_args_is_help=True, help="User accounts: create, list, passwords, lock/unlock.")


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated)."""
    from cityhub.auth.passwords import generate_password

    if not from_stdin:
        return generate_password(), True
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise _fail("--password-stdin given but standard input is empty")
    return line, False


PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


@app.command("create")
def create(
    username: Annotated[str, typer.Option("--username", help="Login name.")],
    role: Annotated[Role, typer.Option("--role", help="Role.")],
    unit: Annotated[str | None, typer.Option("--unit", help="Unit code (staff roles need one).")] = None,
    full_name: Annotated[str | None, typer.Option("--full-name", help="Display name (default: the username).")] = None,
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account; without --password-stdin a generated password is printed once."""
    from cityhub.auth.service import create_account
    from cityhub.db import session_scope
    from cityhub.org.schemas import UserCreate
    from cityhub.org.service import get_unit_by_code

    password, generated = _password(password_stdin)
    try:
        with session_scope() as session:
            unit_id = None
            if unit:
                found = get_unit_by_code(session, code=unit)
                if found is None:
                    raise _fail(f"unknown unit code '{unit}'")
                unit_id = found.id
            user = create_account(
                session,
                data=UserCreate(
                    username=username,
                    full_name=full_name or username,
                    role=role,
                    unit_id=unit_id,
                    phone=phone,
                    email=email,
                ),
                password=password,
                actor=cli_actor(),
            )
            summary = f"created user {user.username} ({user.role.value}{', ' + unit if unit else ''})"
    except CityhubError as exc:
        raise fail_with(exc) from None
    except ValidationError as exc:  # pydantic: a malformed username, name or e-mail
        raise _fail(validation_problem(exc, "user")) from None
    typer.echo(summary)
    if generated:
        typer.echo(f"password (shown once): {password}")


@app.command("list")
def list_users(role: Annotated[Role | None, typer.Option("--role", help="Only this role.")] = None) -> None:
    """List accounts: username, role, unit, state (active, disabled, locked by an administrator, or login-locked:
    password logins locked after failed attempts), password or not, name, then the phone masked (- for none) and
    whether its owner verified it (phone-verified, phone-unverified, or -)."""
    from cityhub.auth.service import is_locked, list_accounts, password_lockouts
    from cityhub.db import session_scope
    from cityhub.masking import mask_phone

    with session_scope() as session:
        users = list_accounts(session, role=role)
        login_locked = password_lockouts(session, usernames=[u.username for u in users])
        for user in users:
            state = (
                "locked"
                if is_locked(user)
                else "disabled"
                if not user.active
                else "login-locked"
                if user.username in login_locked
                else "active"
            )
            has_password = "password" if user.password_hash else "no-password"
            unit = user.unit.code if user.unit else "-"
            phone = mask_phone(user.phone) or "-"
            verified = "-" if not user.phone else "phone-verified" if user.verified_phone else "phone-unverified"
            typer.echo(
                f"{user.username}\t{user.role.value}\t{unit}\t{state}\t{has_password}\t{user.full_name}"
                f"\t{phone}\t{verified}"
            )


@app.command("set-password")
def set_password(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password: ends the user's sessions, revokes their API tokens, clears a password lockout; the
    password is generated and printed once by default."""
    from cityhub.auth import service
    from cityhub.db import session_scope

    password, generated = _password(password_stdin)
    try:
        with session_scope() as session:
            done = service.set_password(session, username=username, password=password, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(
        f"password of {username} changed; {done.sessions_ended} session(s) ended, "
        f"{done.tokens_revoked} API token(s) revoked"
    )
    if generated:
        typer.echo(f"password (shown once): {password}")


@app.command("lock")
def lock(
    username: Annotated[str, typer.Argument(help="Login name.")],
    minutes: Annotated[
        float | None, typer.Option("--minutes", help="Lock for this long (default: until unlocked).")
    ] = None,
) -> None:
    """Lock an account (an administrator's lock): its sessions end, its API tokens stop working and it cannot log
    in while it is locked."""
    from cityhub.auth import service
    from cityhub.db import session_scope

    try:
        with session_scope() as session:
            user = service.lock_user(session, username=username, minutes=minutes, actor=cli_actor())
            until = user.locked_until
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"{username} locked until {until.isoformat() if until else '-'}")


@app.command("unlock")
def unlock(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Lift an administrator's lock and a password lockout, and forget the failed logins."""
    from cityhub.auth import service
    from cityhub.db import session_scope

    try:
        with session_scope() as session:
            service.unlock_user(session, username=username, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"{username} unlocked")


@app.command("unlink-sso")
def unlink_sso(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Release an account from the single sign-on identity it was bound to at its first sign-on (the person's account
    at the identity provider was replaced); the next sign-on with the account's username binds it again."""
    from cityhub.auth import service
    from cityhub.db import session_scope

    try:
        with session_scope() as session:
            service.unbind_sso(session, username=username, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"{username} released from its sign-on identity")
