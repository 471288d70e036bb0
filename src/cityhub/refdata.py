"""Per-process caches of reference tables, checked by one read per transaction.

What every order's intake and every life-cycle action consult — the units, the category taxonomy, the routing
rules and thresholds, the holiday calendar, the time-limit rules, the notification subscriptions — changes a few
times a day, yet reading it cost about ten statements per automatically dispatched order. Each of these tables
carries a version token in ``reference_versions`` that a database trigger replaces (with a random value) on every
INSERT, UPDATE, DELETE or TRUNCATE of the table, whoever makes it: this process, another server process, a CLI
command, a migration or a hand-typed SQL statement. :func:`cached` keeps a value derived from some of these tables
per process, and builds it again when one of their tokens differs from the one it was built under.

The tokens are read once per transaction (one ``SELECT`` of a handful of rows) and kept on the connection until
the transaction ends — or until this transaction itself writes one of the tables, so a value built after such a
write sees it. Reading the tokens before the tables means a value is never older than the tokens it is filed
under: a change committed in between only makes the next transaction build it again.

Tokens are random rather than counters so that a table emptied and filled again (the tests do so, with triggers
off on PostgreSQL) never comes back to a token some process has a value for. A table without a token row (its
row was deleted with the others) is not cached: every call builds its value, until the next write of the table
creates the row again.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable
from functools import lru_cache
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, Engine, String, Table, event
from sqlalchemy.orm import Session

from cityhub.db import Base, database_key

T = TypeVar("T")

# The tables whose contents are cached per process somewhere; each has a trigger (migration 0011; unit_aliases: 0043).
TABLES = (
    "units",
    "unit_aliases",
    "categories",
    "dispatch_rules",
    "dispatch_thresholds",
    "calendar_days",
    "sla_rules",
    "notify_subscriptions",
)

reference_versions = Table(
    "reference_versions",
    Base.metadata,
    Column("name", String(64), primary_key=True),
    Column("token", BigInteger, nullable=False),
)

_TOKENS = "cityhub.reference_tokens"  # key in the connection's info: this transaction's tokens
_MENTIONS = re.compile(r"\b(?:" + "|".join(TABLES) + r")\b", re.IGNORECASE)
_lock = threading.Lock()
_hooked: weakref.WeakSet[Engine] = weakref.WeakSet()
_values: dict[tuple[str, str], tuple[tuple[int | None, ...], Any]] = {}


def _forget(conn: Any, *_args: Any) -> None:
    if conn.invalidated or conn.closed:
        # The server dropped the connection (a restart) and this is the rollback of its transaction: asking for its
        # info now would try to reconnect inside that transaction (PendingRollbackError, hiding the server's error).
        # The pool forgets a dropped connection's info, tokens included, when it connects again.
        return
    conn.info.pop(_TOKENS, None)


@lru_cache(maxsize=1024)
def _writes_reference_table(statement: str) -> bool:
    # Statements are compiled once and their text reused: one search per distinct statement, not per execution.
    return statement.lstrip()[:6].upper() != "SELECT" and _MENTIONS.search(statement) is not None


def _on_statement(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """A write of a reference table in this transaction: its tokens have changed (the trigger ran)."""
    if _TOKENS in conn.info and _writes_reference_table(statement):
        del conn.info[_TOKENS]


def _hook(engine: Engine) -> None:
    with _lock:
        if engine in _hooked:
            return
        event.listen(engine, "after_cursor_execute", _on_statement)
        for name in ("commit", "rollback", "rollback_savepoint"):
            event.listen(engine, name, _forget)
        # A connection returned to the pool without either (its transaction is gone with the check-in's reset).
        event.listen(engine, "checkin", lambda _dbapi, record: record.info.pop(_TOKENS, None))
        _hooked.add(engine)


def _writes_pending(session: Session) -> bool:
    return any(
        getattr(obj, "__tablename__", None) in TABLES for obj in chain(session.new, session.dirty, session.deleted)
    )


def tokens(session: Session) -> dict[str, int]:
    """The version token of each reference table as this transaction sees it (read once per transaction)."""
    if session.autoflush and _writes_pending(session):
        session.flush()  # as a query would: the pending change is part of what the transaction sees
    conn = session.connection()
    found = conn.info.get(_TOKENS)
    if found is None:
        _hook(conn.engine)
        found = {name: token for name, token in conn.exec_driver_sql("SELECT name, token FROM reference_versions")}
        conn.info[_TOKENS] = found
    return found


def cached(
    session: Session,
    name: str,
    tables: tuple[str, ...],
    build: Callable[[Session], T],
    *,
    enough: tuple[str, ...] | None = None,
) -> T:
    """``build(session)`` as of the current contents of ``tables``, from this process's cache when none of them
    changed since it was built. ``build`` must return plain values that do not refer to the session (they are
    shared by every request of the process) and that nobody changes.

    ``enough``: some of ``tables``, all that the caller reads of the value depends on — the cached value will do
    while these are unchanged, the others may have changed since it was built (and a value built now is filed as
    any other, for the callers that need all of ``tables`` current)."""
    current = tokens(session)
    key_tokens = tuple(current.get(table) for table in tables)
    if None in key_tokens:
        return build(session)
    key = (database_key(session), name)
    hit = _values.get(key)
    if hit is not None and hit[0] == key_tokens:
        return hit[1]
    if (
        hit is not None
        and enough is not None
        and all(held == now for table, held, now in zip(tables, hit[0], key_tokens, strict=True) if table in enough)
    ):
        return hit[1]
    value = build(session)
    _values[key] = (key_tokens, value)
    return value


def clear() -> None:
    """Drop every cached value of this process (tests)."""
    _values.clear()
