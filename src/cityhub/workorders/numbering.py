"""Readable order numbers: PREFIX + local date + per-day sequence, e.g. BY20261122-000123."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
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


def allocate(session: Session, *, day: str, count: int = 1, prefix: str | None = None) -> list[str]:
    """Reserve ``count`` consecutive numbers of ``day``; the row lock makes this safe across processes."""
    prefix = prefix or get_settings().order_number_prefix
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(OrderNumberCounter).values(prefix=prefix, day=day, last=0).on_conflict_do_nothing())
    key = (OrderNumberCounter.prefix == prefix) & (OrderNumberCounter.day == day)
    last = session.execute(
        update(OrderNumberCounter)
        .where(key)
        .values(last=OrderNumberCounter.last + count)
        .returning(OrderNumberCounter.last)
    ).scalar_one()
    first = last - count + 1
    return [format_number(prefix, day, seq) for seq in range(first, last + 1)]


def peek(session: Session, *, day: str, prefix: str | None = None) -> int:
    """The last sequence number used on ``day`` (0 when none)."""
    prefix = prefix or get_settings().order_number_prefix
    value = session.execute(
        select(OrderNumberCounter.last).where((OrderNumberCounter.prefix == prefix) & (OrderNumberCounter.day == day))
    ).scalar()
    return int(value or 0)
