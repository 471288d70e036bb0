"""Readable order numbers: PREFIX + local date + per-day sequence, e.g. BY20261122-000123."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.workorders.models import OrderNumberCounter


def format_number(prefix: str, day: str, seq: int) -> str:
    return f"{prefix}{day}-{seq:06d}"


def local_day(at: datetime, tz: ZoneInfo | None = None) -> str:
    """The yyyymmdd of ``at`` in the district's time zone."""
    return at.astimezone(tz or get_settings().tz).strftime("%Y%m%d")


@lru_cache(maxsize=4)
def _allocate_statement(dialect: str) -> Any:
    """The upsert that reserves numbers, built once per dialect (building it costs more than running it)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(OrderNumberCounter)
        .values(prefix=bindparam("prefix"), day=bindparam("day"), last=bindparam("count"))
        .on_conflict_do_update(
            index_elements=[OrderNumberCounter.prefix, OrderNumberCounter.day],
            set_={"last": OrderNumberCounter.last + bindparam("increment")},
        )
        .returning(OrderNumberCounter.last)
    )


def allocate(session: Session, *, day: str, count: int = 1, prefix: str | None = None) -> list[str]:
    """Reserve ``count`` consecutive numbers of ``day``; the row lock makes this safe across processes."""
    prefix = prefix or get_settings().order_number_prefix
    # One statement (an upsert): it is the first write of an intake, so it starts the short write transaction.
    # It runs on the session's connection, as Core: nothing here is an ORM object.
    last = (
        session.connection()
        .execute(
            _allocate_statement(session.get_bind().dialect.name),
            {"prefix": prefix, "day": day, "count": count, "increment": count},
        )
        .scalar_one()
    )
    first = last - count + 1
    return [format_number(prefix, day, seq) for seq in range(first, last + 1)]


def allocate_many(session: Session, *, counts: Mapping[str, int], prefix: str | None = None) -> dict[str, list[str]]:
    """Reserve ``counts[day]`` numbers for each day at once: one insert and one update, whatever the day count.

    Bulk imports spread over years call this once per batch instead of once per day.
    """
    counts = {day: n for day, n in counts.items() if n > 0}
    if not counts:
        return {}
    prefix = prefix or get_settings().order_number_prefix
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
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
