"""Readable order numbers: PREFIX + local date + per-day sequence, e.g. BY20261122-000123."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, bindparam, case, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.db import side_engine, upsert_insert
from cityhub.workorders.models import OrderNumberCounter

log = logging.getLogger(__name__)


def format_number(prefix: str, day: str, seq: int) -> str:
    return f"{prefix}{day}-{seq:06d}"


def local_day(at: datetime, tz: ZoneInfo | None = None) -> str:
    """The yyyymmdd of ``at`` in the district's time zone."""
    return at.astimezone(tz or get_settings().tz).strftime("%Y%m%d")


@lru_cache(maxsize=4)
def _allocate_statement(dialect: str) -> Any:
    """The upsert that reserves numbers, built once per dialect (building it costs more than running it)."""
    insert = upsert_insert(dialect)
    return (
        insert(OrderNumberCounter)
        .values(prefix=bindparam("prefix"), day=bindparam("day"), last=bindparam("count"))
        .on_conflict_do_update(
            index_elements=[OrderNumberCounter.prefix, OrderNumberCounter.day],
            set_={"last": OrderNumberCounter.last + bindparam("increment")},
        )
        .returning(OrderNumberCounter.last)
    )


# How long a reservation in a transaction of its own waits for the day's counter row before it gives up and
# reserves in the caller's transaction instead (which may be the one holding the row: a bulk import followed by a
# creation, in one transaction).
OWN_TRANSACTION_LOCK_TIMEOUT_MS = 100


def allocate(session: Session, *, day: str, count: int = 1, prefix: str | None = None) -> list[str]:
    """Reserve ``count`` consecutive numbers of ``day``; the row lock makes this safe across processes.

    On PostgreSQL the numbers are reserved in a transaction of their own, committed at once, so the day's counter
    row is locked for one statement: reserved in the caller's transaction, it stayed locked until that committed,
    and every creation of the day queued behind the one before (measured at 50 creations/s: most requests waiting
    on that row). The price: a creation that fails afterwards leaves a gap in the day's numbers. On SQLite,
    where one write lock covers the whole database anyway, the reservation stays the first write of the
    caller's transaction.
    """
    prefix = prefix or get_settings().order_number_prefix
    params = {"prefix": prefix, "day": day, "count": count, "increment": count}
    bind = session.get_bind()
    statement = _allocate_statement(bind.dialect.name)
    last = _allocate_on_its_own(bind.engine, statement, params) if bind.dialect.name == "postgresql" else None
    if last is None:
        # One statement (an upsert), as Core on the session's connection: nothing here is an ORM object.
        last = session.connection().execute(statement, params).scalar_one()
    first = last - count + 1
    return [format_number(prefix, day, seq) for seq in range(first, last + 1)]


def _allocate_on_its_own(engine: Engine, statement: Any, params: dict[str, Any]) -> int | None:
    """The upsert in an autocommit transaction on a connection of its own; None when it could not take the row
    within OWN_TRANSACTION_LOCK_TIMEOUT_MS, or the side connection failed (the caller then reserves in its own
    transaction)."""
    side = side_engine(
        engine.url,
        "order numbers",
        pool_size=2,
        max_overflow=8,
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,  # a dead connection fails once, and the caller reserves in its own transaction
        connect_args={"options": f"-c lock_timeout={OWN_TRANSACTION_LOCK_TIMEOUT_MS}"},
    )
    try:
        with side.connect() as conn:
            return int(conn.execute(statement, params).scalar_one())
    except DBAPIError as exc:
        log.warning("order number reserved in the caller's transaction: %s", str(exc.orig).strip()[:200])
        return None


def allocate_many(session: Session, *, counts: Mapping[str, int], prefix: str | None = None) -> dict[str, list[str]]:
    """Reserve ``counts[day]`` numbers for each day at once: one insert and one update, whatever the day count.

    Bulk imports spread over years call this once per batch instead of once per day.
    """
    counts = {day: n for day, n in counts.items() if n > 0}
    if not counts:
        return {}
    prefix = prefix or get_settings().order_number_prefix
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(
        insert(OrderNumberCounter)
        .values([{"prefix": prefix, "day": day, "last": 0} for day in counts])
        .on_conflict_do_nothing()
    )
    rows = session.execute(
        update(OrderNumberCounter)
        .where(OrderNumberCounter.prefix == prefix, OrderNumberCounter.day.in_(list(counts)))
        .values(last=OrderNumberCounter.last + case(counts, value=OrderNumberCounter.day, else_=0))
        .returning(OrderNumberCounter.day, OrderNumberCounter.last)
    ).all()
    result: dict[str, list[str]] = {}
    for day, last in rows:
        first = last - counts[day] + 1
        result[day] = [format_number(prefix, day, seq) for seq in range(first, last + 1)]
    return result


def peek(session: Session, *, day: str, prefix: str | None = None) -> int:
    """The last sequence number used on ``day`` (0 when none)."""
    prefix = prefix or get_settings().order_number_prefix
    value = session.execute(
        select(OrderNumberCounter.last).where((OrderNumberCounter.prefix == prefix) & (OrderNumberCounter.day == day))
    ).scalar()
    return int(value or 0)
