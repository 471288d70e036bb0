"""How dispatch does in operation (派单成效): of the orders first sent to a unit in a period, how many went
automatically (the classifier above its category's threshold: ``auto`` in the dispatch event) and how many by hand,
and of each how many the first unit kept — neither returned (退单) nor transferred (改派) afterwards. The share kept is
the routing accuracy the district sees; orders sent near the period's end may still come back, so a recent period's
figures can fall a little as its orders are worked.

One read of the audit trail, the single source of what happened: ``cityhub dispatch outcomes``,
``GET /api/v1/dispatch/outcomes`` and the 派单规则 page show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased

from cityhub.analytics.kpi import Period
from cityhub.workorders.categories import ancestor_at
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Category, Order, OrderEvent

# What sends an order to a unit the first time (a leader's 交办 is a dispatch by hand), and what says the unit was
# the wrong one.
FIRST_SENDS = (Action.DISPATCH.value, Action.ASSIGN.value)
SENT_BACK = (Action.RETURN.value, Action.TRANSFER.value)


@dataclass
class Tally:
    """Orders first sent one way, and how many of them the first unit kept."""

    dispatched: int = 0
    kept: int = 0

    @property
    def kept_share(self) -> float | None:
        return round(self.kept / self.dispatched, 4) if self.dispatched else None

    def add(self, kept: bool) -> None:
        self.dispatched += 1
        self.kept += kept

    def as_dict(self) -> dict[str, Any]:
        return {"dispatched": self.dispatched, "kept": self.kept, "kept_share": self.kept_share}


@dataclass
class CategoryOutcome:
    category_id: int | None
    category: str | None
    automatic: Tally = field(default_factory=Tally)
    manual: Tally = field(default_factory=Tally)

    def as_dict(self) -> dict[str, Any]:
        return {
            "category_id": self.category_id,
            "category": self.category,
            "automatic": self.automatic.as_dict(),
            "manual": self.manual.as_dict(),
        }


@dataclass
class DispatchOutcomes:
    period: Period
    automatic: Tally = field(default_factory=Tally)
    manual: Tally = field(default_factory=Tally)
    by_category: list[CategoryOutcome] = field(default_factory=list)

    @property
    def dispatched(self) -> int:
        return self.automatic.dispatched + self.manual.dispatched

    @property
    def automatic_share(self) -> float | None:
        """Of the orders first sent in the period, the share that went automatically."""
        return round(self.automatic.dispatched / self.dispatched, 4) if self.dispatched else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.label,
            "first_day": self.period.first.isoformat(),
            "last_day": self.period.last.isoformat(),
            "dispatched": self.dispatched,
            "automatic_share": self.automatic_share,
            "automatic": self.automatic.as_dict(),
            "manual": self.manual.as_dict(),
            "by_category": [c.as_dict() for c in self.by_category],
        }


def outcomes(session: Session, *, period: Period, scope: Any = None) -> DispatchOutcomes:
    """The orders whose first dispatch (or leader's assignment) falls in ``period``, within ``scope`` (a caller's data
    scope clause on orders; None: all), counted automatic or by hand, kept or sent back, overall and per top-level
    category (largest first; orders without a category last)."""
    earlier, later = aliased(OrderEvent), aliased(OrderEvent)
    a_first_send = ~exists().where(
        and_(earlier.order_id == OrderEvent.order_id, earlier.action.in_(FIRST_SENDS), earlier.id < OrderEvent.id)
    )
    sent_back = exists().where(
        and_(later.order_id == OrderEvent.order_id, later.action.in_(SENT_BACK), later.id > OrderEvent.id)
    )
    stmt = (
        # Of the event's payload only ``auto``: decoding each whole payload cost more than the rest of the query.
        select(OrderEvent.payload["auto"], Order.category_id, sent_back)
        .join(Order, Order.id == OrderEvent.order_id)
        .where(OrderEvent.action.in_(FIRST_SENDS), OrderEvent.at >= period.start, OrderEvent.at < period.end)
        .where(a_first_send)
    )
    if scope is not None:
        stmt = stmt.where(scope)
    result = DispatchOutcomes(period=period)
    tree = {c.id: c for c in session.scalars(select(Category))}
    per: dict[int | None, CategoryOutcome] = {}
    for auto, category_id, back in session.execute(stmt):
        automatic = bool(auto)
        top = ancestor_at(tree, category_id, 1)
        key = top.id if top is not None else None
        row = per.setdefault(key, CategoryOutcome(key, top.name if top is not None else None))
        for tally in (result.automatic if automatic else result.manual, row.automatic if automatic else row.manual):
            tally.add(not back)
    result.by_category = sorted(
        per.values(),
        key=lambda c: (c.category_id is None, -(c.automatic.dispatched + c.manual.dispatched), c.category or ""),
    )
    return result
