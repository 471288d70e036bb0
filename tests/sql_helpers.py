"""Helpers of the tests that check how a query is run: the SELECTs a piece of code sends, to ask the database for
their plans; the statistics the planner weighs a test's own uncommitted rows by."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

# The tables a history of orders fills (what the assessment's walks and the order services read).
HISTORY_TABLES = ("orders", "order_events", "units")


@contextmanager
def selects_naming(engine: Any, text: str) -> Iterator[list[tuple[str, Any]]]:
    """Collect ``(statement, parameters)`` of every SELECT sent through ``engine`` whose SQL contains ``text``
    (``"FROM orders"``, a table name) while the block runs."""
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and text in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def weigh_as_held(session: Session, tables: tuple[str, ...] = HISTORY_TABLES) -> None:
    """PostgreSQL: the planner weighs ``tables`` with the rows the session's transaction holds, not committed, and
    goes on doing so until the transaction ends. A test's rows are never committed, and autovacuum (woken by the
    rows earlier tests left deleted) analyses a table without the rows of a transaction still open: it then records
    the table empty on the pages those rows fill (``reltuples`` 0), and every scan of it is planned for one row —
    nested loops that read the period's events again for each event: the random history's trail walk took 0.6 s,
    then 49 s (``test_kpi_one_unit``'s random history 10 s alone, ~500 s after other tests under xdist). ANALYZE in
    the session's transaction counts its own rows, and holds SHARE UPDATE EXCLUSIVE on the tables until the
    transaction ends, which autovacuum skips a table for. SQLite gathers no statistics unasked: nothing to do."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE " + ", ".join(tables)))


def planned_rows(session: Session, table: str) -> float:
    """The rows the planner's statistics hold for ``table`` (PostgreSQL's ``pg_class.reltuples``; -1: never weighed)."""
    found = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table})
    return float(found.scalar_one())
