"""HTTP routes of dispatch: the dispatcher's queue, suggestions, category corrections, rules and thresholds.

Reading the queue and asking for suggestions needs the dispatch permission (派单员, admin); editing rules and
thresholds needs ``units:manage`` (administrators). Orders outside the caller's data scope answer 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from cityhub.api.deps import CurrentPrincipal, DbSession, ListPaging, Paging, require
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import order_in_scope, scope_of
from cityhub.dispatch import service
from cityhub.dispatch.schemas import (
    BulkDispatch,
    BulkOutcomeRead,
    BulkRead,
    CategorySet,
    DecisionRead,
    PlaceCorrectionRead,
    PlaceSet,
    QueueItem,
    QueuePage,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    ThresholdRead,
    ThresholdSet,
)
from cityhub.errors import NotFound, PermissionDenied
from cityhub.org.aliases import AliasWish
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import Category, Order

router = APIRouter(prefix="/dispatch", tags=["dispatch"])

Dispatcher = Annotated[Principal, Depends(require(permissions.act(Action.DISPATCH)))]


async def _outcomes_reader(principal: CurrentPrincipal) -> Principal:
    """Dispatchers, and those who oversee the district's work (城市大脑's readers: leaders, supervisors)."""
    if permissions.allows(principal.role, permissions.act(Action.DISPATCH)) or permissions.allows(
        principal.role, permissions.BRAIN_READ
    ):
        return principal
    raise PermissionDenied(
        f"role {principal.role.value} may not read dispatch outcomes", details={"permission": permissions.BRAIN_READ}
    )


OutcomesReader = Annotated[Principal, Depends(_outcomes_reader)]
Admin = Annotated[Principal, Depends(require(permissions.UNITS_MANAGE))]


def _order(db: DbSession, order_id: int, principal: Principal) -> Order:
    order = orders.get_order(db, order_id=order_id)
    if order is None or not order_in_scope(db, scope_of(db, principal), order_id):
        raise NotFound(f"order {order_id} not found")
    return order


def _read(decision: service.DispatchDecision) -> DecisionRead:
    return DecisionRead.model_validate(decision.as_dict())


@router.get("/queue", response_model=QueuePage)
def dispatch_queue(db: DbSession, principal: Dispatcher, page: Paging) -> QueuePage:
    """Orders waiting for a dispatcher (received or returned), 特急 then 紧急 then the rest, each oldest first (since
    December 2026; oldest first before), with the top 3 units and why."""
    rows, has_more = service.queue(db, limit=page.limit, offset=page.offset, scope=scope_of(db, principal).clause())
    returns = service.last_returns(db, [o.id for o, _ in rows if o.state == State.RETURNED])
    suggested = service.returner_suggestions(db, returns)
    return QueuePage(
        items=[
            QueueItem(
                order_id=o.id,
                number=o.number,
                title=o.title,
                state=o.state,
                created_at=o.created_at,
                return_count=o.return_count,
                decision=_read(d),
                suggest_unit_id=suggested.get(o.id),
            )
            for o, d in rows
        ],
        limit=page.limit,
        offset=page.offset,
        has_more=has_more,
    )


@router.post("/bulk", response_model=BulkRead)
def dispatch_bulk(body: BulkDispatch, db: DbSession, principal: Dispatcher) -> BulkRead:
    """批量派单: send several waiting orders at once, each to its chosen unit (at most 200). Each order is dispatched
    or refused on its own — taken or changed since ``version`` was read, outside the caller's scope (as not found), a
    unit that cannot take it — with the reason in its result; the others are dispatched all the same (200)."""
    picks = [service.Pick(i.order_id, i.unit_id, i.version, i.reason) for i in body.items]
    outcomes = service.dispatch_picked(db, picks, actor=principal.actor, scope=scope_of(db, principal).clause())
    db.commit()
    done = sum(o.dispatched for o in outcomes)
    return BulkRead(
        dispatched=done,
        refused=len(outcomes) - done,
        results=[BulkOutcomeRead.model_validate(o, from_attributes=True) for o in outcomes],
    )


@router.get("/outcomes")
def dispatch_outcomes(
    db: DbSession,
    principal: OutcomesReader,
    period: Annotated[str, Query(description="2026-10, 2026-W43, 2026-10-05, 2026-10-01..2026-10-15, 2026-Q4 or 2026")],
) -> dict[str, Any]:
    """How dispatch did (派单成效): of the orders in the caller's scope first sent to a unit in the period, the share
    sent automatically and, of each kind, how many the first unit kept (not returned or transferred: ``kept_share``,
    the routing accuracy), overall and per top-level category. Orders sent near the period's end may still come
    back."""
    from cityhub.analytics.kpi import parse_period
    from cityhub.dispatch.outcomes import outcomes

    return outcomes(db, period=parse_period(period), scope=scope_of(db, principal).clause()).as_dict()


@router.post("/{order_id}/suggest", response_model=DecisionRead)
def suggest(order_id: int, db: DbSession, principal: Dispatcher) -> DecisionRead:
    """Compute (and keep for the queue) the suggestions for one order; dispatching stays with the caller."""
    return _read(service.suggest(db, order=_order(db, order_id, principal)))


@router.post("/{order_id}/category", response_model=DecisionRead)
def set_category(order_id: int, body: CategorySet, db: DbSession, principal: Dispatcher) -> DecisionRead:
    """Correct the category of a received or returned order (audited) and return fresh suggestions."""
    _order(db, order_id, principal)
    order = service.set_category(
        db,
        order_id=order_id,
        category_id=body.category_id,
        actor=principal.actor,
        reason=body.reason,
        expected_version=body.version,
    )
    return _read(service.suggest(db, order=order))


@router.post("/{order_id}/place", response_model=PlaceCorrectionRead)
def set_place(order_id: int, body: PlaceSet, db: DbSession, principal: Dispatcher) -> PlaceCorrectionRead:
    """Set or correct the street or community of a received or returned order (audited) and return fresh
    suggestions, which then start from that place.

    ``aliases``: place aliases (地名别名) to add to the unit chosen, in the same step — each added (its configuration
    log entry naming the order) or refused with its reason (``aliases`` of the answer), the correction kept either
    way. 403, nothing changed, when the caller may not add aliases to that unit (a dispatcher: only to the units its
    own unit routes)."""
    _order(db, order_id, principal)
    done = service.correct_place(
        db,
        order_id=order_id,
        unit_id=body.unit_id,
        actor=principal.actor,
        aliases=[AliasWish(a.alias, a.kind) for a in body.aliases],
        reason=body.reason,
        expected_version=body.version,
    )
    decision = service.suggest(db, order=done.order).as_dict()
    return PlaceCorrectionRead.model_validate(
        {**decision, "moved": done.moved, "aliases": [o.as_dict() for o in done.aliases]}
    )


@router.get("/rules", response_model=list[RuleRead])
def list_rules(db: DbSession, principal: Dispatcher, page: ListPaging) -> list[RuleRead]:
    """Routing rules in ranking order (tier: community, street, department and district; then priority, highest
    first; then id); optionally paged."""
    return [RuleRead.model_validate(r) for r in page.scalars(db, service.rules_query())]


@router.post("/rules", response_model=RuleRead, status_code=status.HTTP_201_CREATED)
def create_rule(body: RuleCreate, db: DbSession, principal: Admin) -> RuleRead:
    return RuleRead.model_validate(service.create_rule(db, data=body, actor=principal.actor))


@router.get("/rules/{rule_id}", response_model=RuleRead)
def get_rule(rule_id: int, db: DbSession, principal: Dispatcher) -> RuleRead:
    return RuleRead.model_validate(service.get_rule(db, rule_id=rule_id))


@router.patch("/rules/{rule_id}", response_model=RuleRead)
def update_rule(rule_id: int, body: RuleUpdate, db: DbSession, principal: Admin) -> RuleRead:
    return RuleRead.model_validate(service.update_rule(db, rule_id=rule_id, data=body, actor=principal.actor))


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: int, db: DbSession, principal: Admin) -> None:
    service.delete_rule(db, rule_id=rule_id, actor=principal.actor)


@router.get("/thresholds", response_model=list[ThresholdRead])
def list_thresholds(db: DbSession, principal: Dispatcher, page: ListPaging) -> list[ThresholdRead]:
    """Per-category thresholds, by the category's code; categories without one use their ancestor's or the default
    setting. Optionally paged."""
    return [
        ThresholdRead(category_id=t.category_id, category_path=c.path, threshold=t.threshold)
        for t, c in page.rows(db, service.thresholds_query())
    ]


@router.get("/thresholds/effect")
def threshold_effect(db: DbSession, principal: Dispatcher) -> dict[str, Any]:
    """What the thresholds in force do, by the configured classifier's grouped cross-validation (阈值效果): per
    category the model knows, the share of the held-out messages it predicted to be of it whose confidence reaches the
    category's threshold (``share``, dispatched automatically as far as the classifier decides) and their precision,
    and the total. 404 without a classifier, or for one trained before its evaluation recorded this (retrain it)."""
    guide = service.threshold_guide(db)
    if guide is None:
        raise NotFound("no classifier evaluation with the thresholds' effect (none configured, or retrain it)")
    return guide.as_dict()


@router.put("/thresholds/{category_id}", response_model=ThresholdRead)
def set_threshold(category_id: int, body: ThresholdSet, db: DbSession, principal: Admin) -> ThresholdRead:
    row = service.set_threshold(db, category_id=category_id, threshold=body.threshold, actor=principal.actor)
    category = db.get(Category, row.category_id)  # set_threshold refused an unknown one
    return ThresholdRead(
        category_id=row.category_id, category_path=category.path if category else None, threshold=row.threshold
    )


@router.delete("/thresholds/{category_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_threshold(category_id: int, db: DbSession, principal: Admin) -> None:
    service.delete_threshold(db, category_id=category_id, actor=principal.actor)
