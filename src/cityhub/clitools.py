"""What every ``cityhub`` sub-command shares: one way to fail, one name for who acted."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError

    from cityhub.errors import CityhubError


# The exit codes of every command (docs/operations.md, *Exit codes*): 0 done; REFUSED, the command ran and refused —
# a thing not found, a conflict, a step an order's state does not allow, a value or a file it does not take, an
# import that took none of its rows; CANNOT_RUN, the command could not run — a command line click cannot read
# (its own usage errors exit 2 too), invalid settings, a database it cannot use, a service it needs failing.
REFUSED = 1
CANNOT_RUN = 2


def exit_code(error: CityhubError) -> int:
    """The exit of a command that met ``error``: REFUSED for what was asked (the API's 4xx), CANNOT_RUN for what
    the command needs and could not have (the API's 5xx: a file store that cannot be written, a message channel
    that is not configured or failed)."""
    return CANNOT_RUN if error.http_status >= 500 else REFUSED


def fail(message: str, code: int = REFUSED) -> typer.Exit:
    """Print one line naming the problem to stderr and return the exit to raise (``raise fail(...)``)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def import_refused(taken: int, rejected: int) -> bool:
    """Whether an import exits REFUSED: it rejected rows and took none (imported, updated or already there) — a
    script must not read that as done. Rows rejected beside rows taken are listed and counted, exit 0."""
    return rejected > 0 and taken == 0


def refuse_if_nothing_imported(source: str, taken: int, rejected: int) -> None:
    """Exit REFUSED, naming ``source``, when an import rejected every row it read (:func:`import_refused`)."""
    if import_refused(taken, rejected):
        raise fail(f"{source}: nothing imported: all {rejected} rows read were rejected")


def id_argument(noun: str, help: str) -> Any:
    """A row's id as a command's argument (``alarms ack ALARM_ID``). An id beyond what a key can hold names nothing:
    the command says ``NOUN N not found`` (exit REFUSED, as for any unknown id) before any query, as the API answers
    such an id in a path, not a driver's traceback (SQLite cannot bind it, PostgreSQL refuses it as out of
    range)."""
    return typer.Argument(help=help, callback=_known_id(noun))


def _known_id(noun: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        from cityhub.db import MAX_ID

        if value > MAX_ID:
            raise fail(f"{noun} {value} not found")
        return value

    return check


def validation_problem(exc: ValidationError, what: str = "input") -> str:
    """A pydantic validation error as one line naming each field and its problem (``tier: Input should be …;
    keywords: …``), without pydantic's header and links; ``what`` names a problem of the whole object."""
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or what
        parts.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts) or f"invalid {what}"


# The audit trails keep an actor's name in 80 characters (order_events.actor_name, alarm_events.actor, …).
ACTOR_MAX_CHARS = 80


def named_actor(name: str) -> Any:
    """The actor an ``--actor NAME`` option names; a blank or overlong name exits with one line (no audit event
    without who; PostgreSQL refuses a longer name where SQLite would keep it)."""
    from cityhub.workorders.service import Actor

    if not name.strip():
        raise fail("--actor: empty; give the name the audit trail records")
    if len(name.strip()) > ACTOR_MAX_CHARS:
        raise fail(f"--actor: {len(name.strip())} characters; at most {ACTOR_MAX_CHARS}")
    return Actor(name=name.strip())


def cli_actor() -> Any:
    """Who a change made from the command line was made by, in audit trails and the configuration log: ``cli``."""
    from cityhub.workorders.service import Actor

    return Actor(name="cli")
