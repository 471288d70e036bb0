"""Helpers of the tests that check how a query is run: the SELECTs a piece of code sends, to ask the database for
their plans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


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
