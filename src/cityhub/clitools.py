"""What every ``cityhub`` sub-command shares: one way to fail, one name for who acted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import typer

from cityhub.errors import schema_message

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


def said(error: CityhubError) -> str:
    """A service's error as one line of the command line: its message, and the field at fault (``details.field``, as
    the API's answer names it) where the message does not name it — "unknown or inactive unit 99 (suggest_unit_id)"
    said nothing of which of the parameters given was wrong."""
    field = error.details.get("field")
    if isinstance(field, str) and field and field not in error.message:
        return f"{error.message} ({field})"
    return error.message


def fail_with(error: CityhubError, context: str = "") -> typer.Exit:
    """:func:`fail` for a service's error a command catches itself: its message (after ``context``, when the
    command names what it was doing) and the field at fault (:func:`said`), exiting as :func:`exit_code` says —
    REFUSED for what was asked, CANNOT_RUN for a file store, a channel or another service the command needs failing,
    as if the error had reached ``cli.main``."""
    return fail(f"{context}{said(error)}", exit_code(error))


def examples(*lines: tuple[str, str], more: str = "") -> str:
    """The end of a command's --help (its ``epilog``), as `cityhub --help` ends: ``Examples:`` and each command line
    ``(command, what it does)`` — an empty "what" for none — the comments aligned, a blank line between (the help's
    formatter joins adjacent lines), then ``more``. tests/unit/test_cli_help.py parses every command's examples
    against the command itself."""
    width = max((_columns(command) for command, said in lines if said), default=0) + 3
    shown = [
        f"  {command}{' ' * (width - _columns(command))}# {said}" if said else f"  {command}" for command, said in lines
    ]
    return "\n\n".join(["Examples:", *shown, *([more] if more else [])])


def _columns(text: str) -> int:
    """How many columns ``text`` takes in a terminal: a Chinese character two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def aligned(rows: Sequence[Sequence[str]], *, indent: str = "  ", gap: str = "  ") -> list[str]:
    """``rows`` as a terminal table's lines: each column but the last padded to its widest cell in terminal columns
    (a Chinese name lines up with a Latin one), none padded at the end of a line."""
    widths = [
        max((_columns(row[i]) for row in rows if i < len(row)), default=0)
        for i in range(max(map(len, rows), default=0))
    ]
    lines = []
    for row in rows:
        cells = [cell + " " * (widths[i] - _columns(cell)) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append(indent + gap.join(cells).rstrip())
    return lines


class RejectedRow(NamedTuple):
    """A row an import rejected: its number as the file shows it (the header being row 1), the field at fault
    (None: the row as a whole) and the problem in the importer's words; ``unit`` is ``line`` for a text read line by
    line (a State Council notice), not as a table's rows."""

    row: int
    field: str | None
    problem: str
    unit: str = "row"


def print_rejected(
    source: str, rows: Sequence[RejectedRow], *, shown: int | None = None, total: int | None = None, rest: str = ""
) -> None:
    """Every import's lines for its rejected rows, on stderr, in one form — ``rejected: FILE: row N: field:
    problem`` — before its summary line; beyond the first ``shown`` rows one line counts the others of the ``total``
    rejected (default: all of ``rows``; ``rest`` says where they all are, e.g. `` (all in errors.csv)``). A rejected
    row is the row's problem, not the command's: no ``error:`` unless the import then refuses
    (:func:`refuse_if_nothing_imported`)."""
    listed = rows[:shown]
    for row in listed:
        field = "" if row.field is None else f"{row.field}: "
        typer.echo(f"rejected: {source}: {row.unit} {row.row}: {field}{row.problem}", err=True)
    more = (len(rows) if total is None else total) - len(listed)
    if more > 0:
        typer.echo(f"… and {more} more rejected rows{rest}", err=True)


def refuse_if_nothing_imported(source: str, taken: int, rejected: int) -> None:
    """Exit REFUSED with one line naming ``source`` when an import took no row (imported, updated or already
    there): it rejected every row it read, or the table had none (a header only) — a script must not read that as
    done. Rows rejected beside rows taken are listed (:func:`print_rejected`) and counted, exit 0."""
    if taken:
        return
    if rejected:
        raise fail(f"{source}: nothing imported: all {rejected} rows read were rejected")
    raise fail(f"{source}: nothing imported: no rows in it, only a header")


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
        parts.append(f"{name}: {schema_message(err['msg'])}")
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
