"""Seed the demo district into a database: organisation, taxonomy, time limits and generated orders."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from cityhub.config import get_settings
from cityhub.demo import corpus
from cityhub.demo.generator import demo_external_id, generate
from cityhub.errors import ValidationFailed
from cityhub.intake.bulk import EVENTS, ORDERS, write_orders
from cityhub.org.aliases import seed_baiyun_aliases
from cityhub.org.models import Unit
from cityhub.org.service import seed_baiyun
from cityhub.workorders import sla
from cityhub.workorders.calendar import load_calendar
from cityhub.workorders.categories import find_category, seed_default_taxonomy
from cityhub.workorders.models import Order, Urgency

DEFAULT_BATCH = 2000


@dataclass
class SeedReport:
    """What one :func:`seed_demo` run did."""

    generated: int = 0
    inserted: int = 0
    skipped: int = 0
    seconds: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    events: int = 0
    already_seeded: bool = False  # every requested order was there: nothing was generated


def seed_reference_data(session: Session) -> None:
    """Create the Baiyun organisation with its place aliases, the default taxonomy and the default time limits
    (idempotent)."""
    seed_baiyun(session)
    seed_baiyun_aliases(session)
    seed_default_taxonomy(session)
    sla.seed_default_rules(session)
    session.flush()


class Resolver:
    """Turns the generator's codes (units, category paths, master orders) into database ids."""

    def __init__(self, session: Session) -> None:
        self.units: dict[str, int] = {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}
        self.categories: dict[str, int | None] = {}
        for scenario in corpus.SCENARIOS:
            if scenario.category not in self.categories:
                found = find_category(session, name_or_path=scenario.category)
                self.categories[scenario.category] = found.id if found is not None else None
        self._rules = sla.load_rules(session)
        self._chains = {
            path: sla.category_chain(session, cid) for path, cid in self.categories.items() if cid is not None
        }

    def terms(self, category_path: str, urgency: Urgency) -> sla.SlaTerms:
        """The time limits ``sla.terms_for`` would give, from rules loaded once."""
        return sla.resolve_terms(
            self._rules,
            category_chain=self._chains.get(category_path, [None]),
            urgency=urgency.value,
            default_warning_share=get_settings().sla_warning_share,
        )

    def unit(self, code: str | None) -> int | None:
        if code is None:
            return None
        try:
            return self.units[code]
        except KeyError:
            raise ValidationFailed(f"demo unit {code} is missing; was seed_baiyun run?") from None

    def to_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """A :func:`write_orders` record (ids instead of codes) from a generated record."""
        row = dict(record)
        row["street_id"] = self.unit(row.pop("street_code"))
        row["community_id"] = self.unit(row.pop("community_code"))
        row["category_id"] = self.categories.get(row.pop("category_path"))
        row["lead_unit_id"] = self.unit(row.pop("lead_unit_code"))
        row.pop("master_external_id")
        events = []
        for event in row["events"]:
            event = dict(event)
            event["unit_id"] = self.unit(event.pop("unit_code"))
            payload = event.get("payload")
            for key in ("unit_id", "actor_unit_id"):
                if payload and key in payload:
                    payload = event["payload"] = {**payload, key: self.unit(payload[key])}
            events.append(event)
        row["events"] = events
        row["assists"] = [
            {**{k: v for k, v in a.items() if k != "unit_code"}, "unit_id": self.unit(a["unit_code"])}
            for a in row["assists"]
        ]
        return row


def _batches(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


def _link_merged(session: Session, merged: list[tuple[int, str]]) -> None:
    """Point merged orders (and their merge events) at their master orders, now that both have ids."""
    if not merged:
        return
    wanted = sorted({ext for _, ext in merged})
    ids = dict(session.execute(select(Order.external_id, Order.id).where(Order.external_id.in_(wanted))).all())
    rows = [{"oid": oid, "mid": ids[ext]} for oid, ext in merged if ext in ids]
    if not rows:
        return
    conn = session.connection()
    conn.execute(
        update(ORDERS).where(ORDERS.c.id == bindparam("oid")).values(master_order_id=bindparam("mid")),
        rows,
    )
    conn.execute(
        update(EVENTS)
        .where(EVENTS.c.order_id == bindparam("oid"), EVENTS.c.action == "merge")
        .values(payload=bindparam("payload")),
        [{"oid": r["oid"], "payload": {"master_id": r["mid"]}} for r in rows],
    )


def already_seeded(session: Session, *, seed: int, orders: int) -> bool:
    """Whether the demo orders 0 … ``orders``-1 of ``seed`` are all stored, told without generating any.

    Batches are committed in generation order, so the stored external ids of a seed are always its first ``k``
    (a run for another number of orders may store some of them twice, under another channel); they cover the
    request when there are at least ``orders`` distinct ones and the last one asked for is among them.
    """
    prefix = demo_external_id(seed, 0).removesuffix("0")
    last = demo_external_id(seed, orders - 1)
    count, has_last = session.execute(
        select(func.count(Order.external_id.distinct()), func.max(case((Order.external_id == last, 1), else_=0))).where(
            Order.external_id.startswith(prefix, autoescape=True)
        )
    ).one()
    return bool(orders <= 0 or (count >= orders and has_last))


def seed_demo(
    factory: sessionmaker[Session],
    *,
    orders: int,
    seed: int = 0,
    years: float = 3.0,
    end: date | datetime | None = None,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> SeedReport:
    """Seed the reference data and ``orders`` generated orders, committing every ``batch_size`` orders."""
    if batch_size < 1:
        raise ValidationFailed("batch size must be at least 1")
    started = time.perf_counter()
    report = SeedReport()
    with factory() as session:
        seed_reference_data(session)
        session.commit()
        if already_seeded(session, seed=seed, orders=orders):
            # A second ``make run``: generating every record only to skip it costs seconds.
            report.skipped, report.already_seeded = orders, True
            if on_batch is not None:
                on_batch(orders)
            report.seconds = time.perf_counter() - started
            return report
        resolver = Resolver(session)
        cal = load_calendar(session)
        records = generate(orders, seed, years=years, end=end, calendar=cal, terms=resolver.terms)
        for batch in _batches(records, batch_size):
            rows = [resolver.to_row(r) for r in batch]
            result = write_orders(session, rows)
            # An id already holding another message (an earlier seed's) is left as it is, like one already present.
            skipped = set(result.skipped_external_ids) | {c.external_id for c in result.conflicts}
            kept = [r for r in batch if r["external_id"] not in skipped]
            merged = [
                (oid, r["master_external_id"])
                for oid, r in zip(result.ids, kept, strict=True)
                if r["master_external_id"] is not None
            ]
            _link_merged(session, merged)
            session.commit()
            report.generated += len(batch)
            report.inserted += result.inserted
            report.skipped += len(skipped)
            for r in kept:
                report.states[r["state"].value] += 1
                report.channels[r["channel"].value] += 1
                report.events += len(r["events"])
            if on_batch is not None:
                on_batch(len(batch))
    report.seconds = time.perf_counter() - started
    return report
