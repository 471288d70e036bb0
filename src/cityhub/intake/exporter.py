"""Export of orders with their audit trails (``cityhub export orders``) to CSV, Excel or Parquet.

One row per order — main fields, street/community/lead unit codes and names, category path — plus every event of
its trail, masked unless asked otherwise as the masked order views are (:mod:`cityhub.masking`: the citizen's name
and phone masked, title, content, reply, the channel's attributes and the events' reasons and written texts
scrubbed, the citizen's own steps by ``citizen`` rather than their name, the address cut to its road or compound,
the point to about a kilometre): for CSV a second file
``<stem>.events.csv`` beside the output, for Excel a second sheet ``events``, for Parquet a nested list
column ``events``. A text that a spreadsheet would run as a formula is written as text: in CSV with a ``'`` in
front (:class:`cityhub.outfiles.SpreadsheetCsv`), in Excel as a text cell. Orders are read in id-ordered chunks
(keyset pagination), so memory stays flat for millions of orders.
"""

from __future__ import annotations

import enum
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from cityhub.config import get_settings
from cityhub.errors import ValidationFailed
from cityhub.masking import coarsen_address, coarsen_coordinate, mask_name, mask_phone, scrub_text, scrub_values
from cityhub.org.models import Unit
from cityhub.outfiles import SpreadsheetCsv, private_files
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Category, Order, OrderEvent
from cityhub.workorders.schemas import EVENT_TEXTS, shown_actor

FORMATS = ("csv", "xlsx", "parquet")
CHUNK = 2000
EXCEL_MAX_ROWS = 1_048_576

_Street = aliased(Unit, name="street")
_Community = aliased(Unit, name="community")
_Lead = aliased(Unit, name="lead_unit")
_EventUnit = aliased(Unit, name="event_unit")

ORDER_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("id", Order.id),
    ("number", Order.number),
    ("external_id", Order.external_id),
    ("channel", Order.channel),
    ("appeal_type", Order.appeal_type),
    ("urgency", Order.urgency),
    ("state", Order.state),
    ("title", Order.title),
    ("content", Order.content),
    ("citizen_name", Order.citizen_name),
    ("citizen_phone", Order.citizen_phone),
    ("address", Order.address),
    ("lat", Order.lat),
    ("lng", Order.lng),
    ("street_code", _Street.code),
    ("street_name", _Street.name),
    ("community_code", _Community.code),
    ("community_name", _Community.name),
    ("category_path", Category.path),
    ("lead_unit_code", _Lead.code),
    ("lead_unit_name", _Lead.name),
    ("created_at", Order.created_at),
    ("dispatched_at", Order.dispatched_at),
    ("accepted_at", Order.accepted_at),
    ("replied_at", Order.replied_at),
    ("closed_at", Order.closed_at),
    ("due_at", Order.due_at),
    ("sla_status", Order.sla_status),
    ("reply_text", Order.reply_text),
    ("satisfied", Order.satisfied),
    ("resolved", Order.resolved),
    ("likes", Order.likes),
    ("opposes", Order.opposes),
    ("extension_count", Order.extension_count),
    ("urge_count", Order.urge_count),
    ("return_count", Order.return_count),
    ("reopen_count", Order.reopen_count),
    ("master_order_id", Order.master_order_id),
    ("split_from_id", Order.split_from_id),
    ("attributes", Order.attributes),
)
EVENT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("order_id", OrderEvent.order_id),
    ("id", OrderEvent.id),
    ("action", OrderEvent.action),
    ("from_state", OrderEvent.from_state),
    ("to_state", OrderEvent.to_state),
    ("actor_name", OrderEvent.actor_name),
    ("unit_code", _EventUnit.code),
    ("at", OrderEvent.at),
    ("reason", OrderEvent.reason),
    ("payload", OrderEvent.payload),
)
ORDER_FIELDS = tuple(name for name, _ in ORDER_COLUMNS)
# In the flat formats an event row also names its order's readable number.
EVENT_FIELDS = ("order_number", *(name for name, _ in EVENT_COLUMNS))
_DATETIME_FIELDS = {"created_at", "dispatched_at", "accepted_at", "replied_at", "closed_at", "due_at", "at"}
_FLOAT_FIELDS = {"lat", "lng"}
_INT_FIELDS = {
    "id",
    "order_id",
    "likes",
    "opposes",
    "extension_count",
    "urge_count",
    "return_count",
    "reopen_count",
    "master_order_id",
    "split_from_id",
}
_BOOL_FIELDS = {"satisfied", "resolved"}
_JSON_FIELDS = {"attributes", "payload"}
# Control characters that XML 1.0 (and so xlsx) cannot hold; citizens' text sometimes has them.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class ExportFilter:
    since: date | None = None  # local date, inclusive
    until: date | None = None  # local date, inclusive
    states: tuple[State, ...] = ()


@dataclass
class ExportResult:
    orders: int
    events: int
    files: list[str]


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=get_settings().tz)


# Read beside the exported columns for masking, not written: whose steps of the trail were the citizen's own.
_CITIZEN_USER = "_citizen_user_id"
_ACTOR_ID = "_actor_id"


def _orders_query(flt: ExportFilter) -> Select[Any]:
    stmt = (
        select(*(col.label(name) for name, col in ORDER_COLUMNS), Order.citizen_user_id.label(_CITIZEN_USER))
        .outerjoin(_Street, _Street.id == Order.street_id)
        .outerjoin(_Community, _Community.id == Order.community_id)
        .outerjoin(_Lead, _Lead.id == Order.lead_unit_id)
        .outerjoin(Category, Category.id == Order.category_id)
    )
    return stmt.where(*_conditions(flt))


def _conditions(flt: ExportFilter) -> list[Any]:
    conds: list[Any] = []
    if flt.since is not None:
        conds.append(Order.created_at >= _local_midnight(flt.since))
    if flt.until is not None:
        conds.append(Order.created_at < _local_midnight(flt.until + timedelta(days=1)))
    if flt.states:
        conds.append(Order.state.in_(flt.states))
    return conds


def count_orders(session: Session, *, flt: ExportFilter) -> tuple[int, int]:
    """Orders and events the filter selects."""
    orders = session.execute(select(func.count()).select_from(Order).where(*_conditions(flt))).scalar_one()
    events = session.execute(
        select(func.count())
        .select_from(OrderEvent)
        .join(Order, Order.id == OrderEvent.order_id)
        .where(*_conditions(flt))
    ).scalar_one()
    return int(orders), int(events)


def _mask_order(order: dict[str, Any], known: tuple[str | None, str | None]) -> None:
    """``order`` as :meth:`cityhub.workorders.schemas.OrderRead.masked` shows it."""
    order["citizen_name"] = mask_name(order["citizen_name"])
    order["citizen_phone"] = mask_phone(order["citizen_phone"])
    for name in ("title", "content", "reply_text"):
        order[name] = scrub_text(order[name], known=known)
    order["attributes"] = scrub_values(order["attributes"], known=known)
    order["address"] = coarsen_address(order["address"])
    order["lat"], order["lng"] = coarsen_coordinate(order["lat"]), coarsen_coordinate(order["lng"])


def _mask_event(event: dict[str, Any], known: tuple[str | None, str | None], citizen_user_id: int | None) -> None:
    """``event`` as :meth:`cityhub.workorders.schemas.EventRead.masked` shows it (the citizen's own steps by
    :data:`cityhub.workorders.schemas.CITIZEN_ACTOR`, not by their name)."""
    event["actor_name"] = shown_actor(
        event[_ACTOR_ID], event["actor_name"], citizen_user_id=citizen_user_id, citizen_name=known[0]
    )
    event["reason"] = scrub_text(event["reason"], known=known)
    payload = event["payload"]
    if isinstance(payload, dict):
        event["payload"] = {
            k: scrub_text(v, known=known) if k in EVENT_TEXTS and isinstance(v, str) else v for k, v in payload.items()
        }


def iter_chunks(
    session: Session, *, flt: ExportFilter, unmasked: bool = False, chunk: int = CHUNK
) -> Iterator[list[dict[str, Any]]]:
    """Orders as dicts, each with its ``events`` list, ``chunk`` orders at a time in id order."""
    last_id = 0
    base = _orders_query(flt)
    while True:
        rows = session.execute(base.where(Order.id > last_id).order_by(Order.id).limit(chunk)).mappings().all()
        if not rows:
            return
        orders = [_plain(dict(row)) for row in rows]
        known = {o["id"]: (o["citizen_name"], o["citizen_phone"]) for o in orders}
        citizens = {o["id"]: o.pop(_CITIZEN_USER) for o in orders}
        if not unmasked:
            for order in orders:
                _mask_order(order, known[order["id"]])
        ids = [order["id"] for order in orders]
        by_order: dict[int, list[dict[str, Any]]] = defaultdict(list)
        events = session.execute(
            select(*(col.label(name) for name, col in EVENT_COLUMNS), OrderEvent.actor_id.label(_ACTOR_ID))
            .outerjoin(_EventUnit, _EventUnit.id == OrderEvent.unit_id)
            .where(OrderEvent.order_id.in_(ids))
            .order_by(OrderEvent.order_id, OrderEvent.at, OrderEvent.id)
        ).mappings()
        for event in events:
            row = _plain(dict(event))
            if not unmasked:
                _mask_event(row, known[row["order_id"]], citizens[row["order_id"]])
            del row[_ACTOR_ID]
            by_order[event["order_id"]].append(row)
        for order in orders:
            order["events"] = by_order.get(order["id"], [])
        yield orders
        last_id = ids[-1]
        session.expunge_all()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if isinstance(value, enum.Enum):
            row[key] = value.value
    return row


def export_orders(
    session: Session,
    *,
    out: Path,
    fmt: str,
    flt: ExportFilter = ExportFilter(),
    unmasked: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write the selected orders and their events to ``out`` in ``fmt`` (csv, xlsx or parquet).

    The files hold citizens' personal data: written private (mode 0600) under temporary names and renamed when
    complete (:func:`cityhub.outfiles.private_files`); a target that cannot be written is refused before the
    orders are read, and a failed export leaves no file."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"unknown export format '{fmt}' (use one of: {', '.join(FORMATS)})")
    targets = [out, events_path(out)] if fmt == "csv" else [out]
    with private_files(targets, "export") as parts:
        total_orders, total_events = count_orders(session, flt=flt)
        if fmt == "xlsx" and max(total_orders, total_events) >= EXCEL_MAX_ROWS:
            raise ValidationFailed(
                f"{total_orders} orders / {total_events} events do not fit in an Excel sheet "
                f"({EXCEL_MAX_ROWS - 1} rows at most): export to csv or parquet, or narrow --since/--until"
            )
        chunks = iter_chunks(session, flt=flt, unmasked=unmasked)
        writer = {"csv": _write_csv, "xlsx": _write_xlsx, "parquet": _write_parquet}[fmt]
        done = {"orders": 0, "events": 0}

        def counted() -> Iterator[list[dict[str, Any]]]:
            for orders in chunks:
                done["orders"] += len(orders)
                done["events"] += sum(len(o["events"]) for o in orders)
                if on_progress is not None:
                    on_progress(done["orders"], total_orders)
                yield orders

        writer(parts, counted())
    return ExportResult(orders=done["orders"], events=done["events"], files=[str(f) for f in targets])


def events_path(out: Path) -> Path:
    """Where the CSV export writes the audit trail: ``orders.csv`` → ``orders.events.csv``."""
    return out.with_name(f"{out.stem}.events{out.suffix or '.csv'}")


def _flat(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name in _JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _event_rows(order: dict[str, Any]) -> Iterator[list[Any]]:
    for event in order["events"]:
        yield [order["number"], *(_flat(name, event[name]) for name, _ in EVENT_COLUMNS)]


def _write_csv(files: list[Path], chunks: Iterator[list[dict[str, Any]]]) -> None:
    out, events_file = files
    # utf-8-sig: Excel opens a BOM-marked CSV as UTF-8 instead of the local code page.
    with (
        out.open("w", encoding="utf-8-sig", newline="") as orders_fh,
        events_file.open("w", encoding="utf-8-sig", newline="") as events_fh,
    ):
        orders_csv, events_csv = SpreadsheetCsv(orders_fh), SpreadsheetCsv(events_fh)
        orders_csv.writerow(ORDER_FIELDS)
        events_csv.writerow(EVENT_FIELDS)
        for orders in chunks:
            for order in orders:
                orders_csv.writerow([_flat(name, order[name]) for name in ORDER_FIELDS])
                events_csv.writerows(_event_rows(order))


def _excel_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        # Excel has no time zones: write the district's local wall-clock time.
        return value.astimezone(get_settings().tz).replace(tzinfo=None)
    if isinstance(value, str):
        return _ILLEGAL_XML.sub("", value)
    return value


def _as_text(sheet: Any, values: list[Any]) -> list[Any]:
    """A row whose texts starting with ``=`` are written as text: openpyxl writes such a string as a formula, so a
    citizen's message (or title, name, address) beginning ``=`` became one — lost to whoever reads the values (it
    has no result) and run by Excel when the file is opened (``=HYPERLINK(…)``)."""
    from openpyxl.cell import WriteOnlyCell

    if not any(isinstance(v, str) and v.startswith("=") for v in values):
        return values
    row = []
    for value in values:
        if isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            value = cell
        row.append(value)
    return row


def _write_xlsx(files: list[Path], chunks: Iterator[list[dict[str, Any]]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    orders_ws = workbook.create_sheet("orders")
    events_ws = workbook.create_sheet("events")
    orders_ws.append(list(ORDER_FIELDS))
    events_ws.append(list(EVENT_FIELDS))
    for orders in chunks:
        for order in orders:
            orders_ws.append(_as_text(orders_ws, [_excel_value(name, order[name]) for name in ORDER_FIELDS]))
            for event in order["events"]:
                values = [order["number"], *(_excel_value(name, event[name]) for name, _ in EVENT_COLUMNS)]
                events_ws.append(_as_text(events_ws, values))
    workbook.save(files[0])


def _parquet_schema() -> Any:
    import pyarrow as pa

    def arrow_type(name: str) -> Any:
        if name in _DATETIME_FIELDS:
            return pa.timestamp("us", tz="UTC")
        if name in _FLOAT_FIELDS:
            return pa.float64()
        if name in _INT_FIELDS:
            return pa.int64()
        if name in _BOOL_FIELDS:
            return pa.bool_()
        return pa.string()

    event_type = pa.struct([(name, arrow_type(name)) for name, _ in EVENT_COLUMNS])
    fields = [pa.field(name, arrow_type(name)) for name in ORDER_FIELDS]
    return pa.schema([*fields, pa.field("events", pa.list_(event_type))])


def _arrow_value(name: str, value: Any) -> Any:
    if value is not None and name in _JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False)
    return value


def _write_parquet(files: list[Path], chunks: Iterator[list[dict[str, Any]]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    with pq.ParquetWriter(files[0], schema, compression="zstd") as writer:
        for orders in chunks:
            columns: dict[str, list[Any]] = {name: [] for name in schema.names}
            for order in orders:
                for name in ORDER_FIELDS:
                    columns[name].append(_arrow_value(name, order[name]))
                columns["events"].append(
                    [{k: _arrow_value(k, v) for k, v in event.items()} for event in order["events"]]
                )
            writer.write_table(pa.table(columns, schema=schema))


def parse_states(values: Sequence[str]) -> tuple[State, ...]:
    """States named on the command line; unknown names are an error listing the valid ones."""
    states: list[State] = []
    for value in values:
        try:
            states.append(State(value))
        except ValueError:
            raise ValidationFailed(f"unknown state '{value}' (known: {', '.join(s.value for s in State)})") from None
    return tuple(states)
