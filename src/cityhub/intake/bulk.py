"""The one fast path that writes many orders with their audit trails (import, demo data, benchmarks).

:func:`write_orders` takes plain dicts keyed by ``Order`` column names, skips orders whose
``(channel, external_id)`` is already known (in the database or earlier in the same batch), allocates readable
numbers one block per local day and inserts orders, events and assisting units with executemany. It never
commits: the caller owns the transaction, so a batch is all-or-nothing.

On PostgreSQL (and any other backend) the inserts are SQLAlchemy Core ``insertmanyvalues`` with
``RETURNING id`` and ``sort_by_parameter_order=True``. On SQLite, profiling showed Core's per-row parameter
processing costing more than the database itself, so rows are converted with SQLAlchemy's own bind processors
(the stored values are identical to what the ORM writes) and handed to the DBAPI cursor's ``executemany``;
ids are assigned explicitly from ``max(id)``, which is safe because SQLite has a single writer and this
transaction already holds the write lock once a number block is allocated.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, Table, insert, select, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.errors import ValidationFailed
from cityhub.workorders import numbering
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import Channel, Order, OrderAssist, OrderEvent

ORDERS: Table = Order.__table__  # type: ignore[assignment]
EVENTS: Table = OrderEvent.__table__  # type: ignore[assignment]
ASSISTS: Table = OrderAssist.__table__  # type: ignore[assignment]

# Parameters per statement: SQLite's default limit is 32766 host parameters; stay well below it.
_IN_CHUNK = 900
IMPORT_ACTOR = "import"


@dataclass
class WriteResult:
    """What one :func:`write_orders` call did."""

    inserted: int = 0
    skipped_external_ids: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


class _TableSpec:
    """Column order, defaults and enum coercions of one table, computed once per process."""

    def __init__(self, table: Table, *, exclude: Iterable[str] = ()) -> None:
        skip = set(exclude)
        self.table = table
        self.columns: list[Column[Any]] = [c for c in table.columns if c.key not in skip]
        self.keys = [c.key for c in self.columns]
        self.keyset = frozenset(self.keys)
        self.scalar_defaults: dict[str, Any] = {}
        self.now_defaults: list[str] = []
        self.required: list[str] = []
        # value or member -> member, per enum column (Enum.__call__ is slow in a hot loop)
        self.enums: dict[str, dict[Any, enum.Enum]] = {}
        for col in self.columns:
            default = col.default
            if default is not None and getattr(default, "is_scalar", False):
                self.scalar_defaults[col.key] = default.arg  # type: ignore[attr-defined]
            elif default is not None and getattr(default, "is_callable", False):
                self.now_defaults.append(col.key)  # the models' only callable default is utcnow
            elif col.nullable:
                self.scalar_defaults[col.key] = None
            else:
                self.required.append(col.key)
            if isinstance(col.type, SAEnum) and col.type.enum_class is not None:
                members = list(col.type.enum_class)
                self.enums[col.key] = {m.value: m for m in members} | {m: m for m in members}

    def complete(
        self, record: Mapping[str, Any], now: datetime, what: str, *, later: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """A full row: defaults filled in, enum values coerced, unknown keys refused.

        ``later`` names required fields the caller fills in afterwards (order numbers).
        """
        unknown = record.keys() - self.keyset
        if unknown:
            raise ValidationFailed(f"unknown {what} field(s): {', '.join(sorted(unknown))}")
        row = dict(self.scalar_defaults)
        for key in self.now_defaults:
            row[key] = now
        row.update(record)
        for key in self.required:
            if row.get(key) is None and key not in later:
                raise ValidationFailed(f"{what} field '{key}' is required", details={"field": key})
        for key, lookup in self.enums.items():
            value = row[key]
            if value is not None:
                member = lookup.get(value)
                if member is None:
                    raise ValidationFailed(f"invalid {what} {key} '{value}'", details={"field": key, "value": value})
                row[key] = member
        return row


_ORDER_SPEC = _TableSpec(ORDERS, exclude=("id",))
_EVENT_SPEC = _TableSpec(EVENTS, exclude=("id",))
_ASSIST_SPEC = _TableSpec(ASSISTS, exclude=("id",))
_NUMBER = frozenset({"number"})
_EVENT_BLANK = dict.fromkeys(_EVENT_SPEC.keys)
_ENUM_VALUES: dict[Any, Any] = {m: m.value for lookup in _ORDER_SPEC.enums.values() for m in lookup.values()}
_ORDER_DEFAULTS = {"channel": Channel.IMPORT, "state": State.RECEIVED}


def write_orders(session: Session, records: Sequence[dict[str, Any]], *, prefix: str | None = None) -> WriteResult:
    """Insert new orders with their events and assists; skip known (channel, external_id); do not commit."""
    result = WriteResult()
    if not records:
        return result
    conn = session.connection()
    now = utcnow()

    rows: list[dict[str, Any]] = []
    children: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
    for record in records:
        order = {k: v for k, v in record.items() if k not in ("events", "assists")}
        for key, value in _ORDER_DEFAULTS.items():
            if order.get(key) is None:
                order[key] = value
        order.setdefault("number", None)
        if order.get("created_at") is None:
            order["created_at"] = now
        if order.get("updated_at") is None:
            order["updated_at"] = order["created_at"]
        rows.append(_ORDER_SPEC.complete(order, now, "order", later=_NUMBER))
        children.append((list(record.get("events") or ()), list(record.get("assists") or ())))

    keep = _new_indexes(conn, rows, result)
    if not keep:
        return result
    rows = [rows[i] for i in keep]
    children = [children[i] for i in keep]

    _assign_numbers(session, rows, prefix)
    ids = _insert_orders(conn, rows)
    result.ids = ids
    result.inserted = len(ids)

    event_rows: list[dict[str, Any]] = []
    assist_rows: list[dict[str, Any]] = []
    for order_id, row, (events, assists) in zip(ids, rows, children, strict=True):
        if not events:
            event_rows.append(_create_event(row, order_id))
        for event in events:
            event_row = _EVENT_SPEC.complete({**_event_defaults(row), **event, "order_id": order_id}, now, "event")
            event_rows.append(event_row)
        for assist in assists:
            assist_rows.append(_ASSIST_SPEC.complete({**assist, "order_id": order_id}, now, "assist"))
    _insert_plain(conn, _EVENT_SPEC, event_rows)
    _insert_plain(conn, _ASSIST_SPEC, assist_rows)
    return result


def _create_event(order: Mapping[str, Any], order_id: int) -> dict[str, Any]:
    """The audit entry every order starts with when the caller gives none (a complete event row)."""
    return {
        **_EVENT_BLANK,
        "order_id": order_id,
        "action": Action.CREATE.value,
        "to_state": _value(order["state"]),
        "actor_name": IMPORT_ACTOR,
        "at": order["created_at"],
        "payload": {"channel": _value(order["channel"]), "number": order["number"]},
    }


def _event_defaults(order: Mapping[str, Any]) -> dict[str, Any]:
    return {"actor_name": IMPORT_ACTOR, "at": order["created_at"]}


def _value(value: Any) -> Any:
    # A dict lookup: Enum.value is a descriptor call, and this runs several times per order.
    return _ENUM_VALUES.get(value, value) if isinstance(value, enum.Enum) else value


def _new_indexes(conn: Connection, rows: list[dict[str, Any]], result: WriteResult) -> list[int]:
    """Indexes of rows to insert; rows whose (channel, external_id) is known or repeated are reported."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["external_id"] is not None:
            wanted[_value(row["channel"])].add(row["external_id"])
    existing: set[tuple[str, str]] = set()
    for channel, external_ids in wanted.items():
        listed = sorted(external_ids)
        for start in range(0, len(listed), _IN_CHUNK):
            chunk = listed[start : start + _IN_CHUNK]
            found = conn.execute(
                select(ORDERS.c.external_id).where(
                    ORDERS.c.channel == Channel(channel), ORDERS.c.external_id.in_(chunk)
                )
            ).scalars()
            existing.update((channel, ext) for ext in found)
    keep: list[int] = []
    for index, row in enumerate(rows):
        ext = row["external_id"]
        if ext is None:
            keep.append(index)
            continue
        key = (row["channel"], ext)  # StrEnum members hash and compare like their values
        if key in existing:
            result.skipped_external_ids.append(ext)
        else:
            existing.add(key)
            keep.append(index)
    return keep


def _assign_numbers(session: Session, rows: list[dict[str, Any]], prefix: str | None) -> None:
    tz = get_settings().tz
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if not row["number"]:
            created = row["created_at"]
            if created.tzinfo is None:
                raise ValidationFailed("created_at must be timezone-aware", details={"field": "created_at"})
            by_day[numbering.local_day(created, tz)].append(row)
    blocks = numbering.allocate_many(session, counts={day: len(r) for day, r in by_day.items()}, prefix=prefix)
    for day, day_rows in by_day.items():
        for row, number in zip(day_rows, blocks[day], strict=True):
            row["number"] = number


def _insert_orders(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    if conn.dialect.name == "sqlite":
        return _sqlite_insert_orders(conn, rows)
    stmt = insert(ORDERS).returning(ORDERS.c.id, sort_by_parameter_order=True)
    return list(conn.execute(stmt, rows).scalars())


def _insert_plain(conn: Connection, spec: _TableSpec, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        _sqlite_executemany(conn, spec, rows)
    else:
        conn.execute(insert(spec.table), rows)


# ------------------------------------------------------------------------------------------ SQLite raw path

_Processor = Callable[[Any], Any] | None
_processors: dict[tuple[str, str], list[_Processor]] = {}


def _bind_processors(conn: Connection, spec: _TableSpec) -> list[_Processor]:
    key = (conn.dialect.name, spec.table.name)
    if key not in _processors:
        dialect = conn.dialect
        _processors[key] = [col.type.dialect_impl(dialect).bind_processor(dialect) for col in spec.columns]
    return _processors[key]


def _tuples(conn: Connection, spec: _TableSpec, rows: list[dict[str, Any]]) -> list[list[Any]]:
    getter = itemgetter(*spec.keys)
    processed = [(i, p) for i, p in enumerate(_bind_processors(conn, spec)) if p is not None]
    out: list[list[Any]] = []
    for row in rows:
        values = list(getter(row))
        for i, process in processed:
            value = values[i]
            if value is not None:
                values[i] = process(value)
        out.append(values)
    return out


def _sqlite_sql(spec: _TableSpec, *, with_id: bool) -> str:
    names = (["id"] if with_id else []) + spec.keys
    cols = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("?" for _ in names)
    return f'INSERT INTO "{spec.table.name}" ({cols}) VALUES ({marks})'


def _sqlite_insert_orders(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    # A no-op write takes SQLite's write lock (if allocation did not already), so max(id) cannot move.
    conn.execute(text('UPDATE "order_number_counters" SET "last" = "last" WHERE 0'))
    first = int(conn.execute(select(ORDERS.c.id).order_by(ORDERS.c.id.desc()).limit(1)).scalar() or 0) + 1
    ids = list(range(first, first + len(rows)))
    params = _tuples(conn, _ORDER_SPEC, rows)
    for order_id, values in zip(ids, params, strict=True):
        values.insert(0, order_id)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_sqlite_sql(_ORDER_SPEC, with_id=True), params)
    finally:
        cursor.close()
    return ids


def _sqlite_executemany(conn: Connection, spec: _TableSpec, rows: list[dict[str, Any]]) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_sqlite_sql(spec, with_id=False), _tuples(conn, spec, rows))
    finally:
        cursor.close()
