"""HTTP routes of the order hub: intake, search, life-cycle actions, audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, status

from cityhub.api.deps import CurrentActor, DbSession, Paging
from cityhub.errors import NotFound
from cityhub.intake.service import submit
from cityhub.workorders import service
from cityhub.workorders.lifecycle import Action, State, allowed_actions
from cityhub.workorders.models import AppealType, Channel, SlaStatus, Urgency
from cityhub.workorders.schemas import (
    ActionRequest,
    EventRead,
    OrderCreate,
    OrderFilter,
    OrderPage,
    OrderRead,
)

router = APIRouter(prefix="/orders", tags=["orders"])


def _read(order: object) -> OrderRead:
    # The identity layer decides who may see personal data; until then read models are masked.
    return OrderRead.model_validate(order).masked()


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderRead)
def create_order(data: OrderCreate, db: DbSession, actor: CurrentActor) -> OrderRead:
    """Receive one appeal from any channel (idempotent per channel + external_id)."""
    return _read(submit(db, data=data, actor=actor).order)


@router.get("", response_model=OrderPage)
def list_orders(
    db: DbSession,
    page: Paging,
    state: Annotated[list[State] | None, Query()] = None,
    unit_id: int | None = None,
    street_id: int | None = None,
    community_id: int | None = None,
    category_id: int | None = None,
    channel: Annotated[list[Channel] | None, Query()] = None,
    appeal_type: AppealType | None = None,
    urgency: Urgency | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    overdue: bool | None = None,
    sla_status: SlaStatus | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    count: Annotated[bool, Query(description="also count all matches")] = False,
) -> OrderPage:
    """Search and filter orders, newest first."""
    filters = OrderFilter(
        state=state,
        unit_id=unit_id,
        street_id=street_id,
        community_id=community_id,
        category_id=category_id,
        channel=channel,
        appeal_type=appeal_type,
        urgency=urgency,
        created_from=created_from,
        created_to=created_to,
        overdue=overdue,
        sla_status=sla_status,
        q=q,
    )
    rows, has_more, total = service.search_orders(
        db, filters=filters, limit=page.limit, offset=page.offset, count=count
    )
    return OrderPage(
        items=[_read(o) for o in rows], limit=page.limit, offset=page.offset, has_more=has_more, total=total
    )


def _order(db: DbSession, order_id: int) -> object:
    order = service.get_order(db, order_id=order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


@router.get("/{order_id}", response_model=OrderRead)
def get_order(order_id: int, db: DbSession) -> OrderRead:
    return _read(_order(db, order_id))


@router.get("/{order_id}/events", response_model=list[EventRead])
def order_events(order_id: int, db: DbSession) -> list[EventRead]:
    """The order's audit trail, oldest first."""
    _order(db, order_id)
    return [EventRead.model_validate(e) for e in service.history(db, order_id=order_id)]


@router.get("/{order_id}/actions", response_model=list[str])
def order_actions(order_id: int, db: DbSession) -> list[str]:
    """Actions the life cycle allows in the order's current state."""
    order = _order(db, order_id)
    return [a.value for a in allowed_actions(service.view_of(order))]  # type: ignore[arg-type]


@router.post("/{order_id}/actions/{action}", response_model=OrderRead)
def order_action(
    order_id: int,
    action: Action,
    body: ActionRequest,
    db: DbSession,
    actor: CurrentActor,
    if_match: Annotated[str | None, Header(description="the order's version, as returned in `version`")] = None,
) -> OrderRead:
    """Apply one life-cycle action (dispatch, accept, return, reply, callback, close, urge, …)."""
    version = body.version
    if version is None and if_match:
        version = int(if_match.strip('W/"')) if if_match.strip('W/"').isdigit() else None
    order = service.act(
        db, order_id=order_id, action=action, actor=actor, params=body.params(), expected_version=version
    )
    return _read(order)
