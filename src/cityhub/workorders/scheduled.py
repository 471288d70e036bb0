"""Scheduled work of the order hub: the SLA sweep that marks warnings and overdue orders, and the leaders' 限期办结
(领导交办) passed.

The sweep is idempotent and set-based: one UPDATE per kind of mark, each preceded by an INSERT … SELECT of the
matching audit events in the same transaction, so 200,000 open orders are swept in seconds and a second run in
the same minute changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.db import rowcount, utcnow
from cityhub.notify import service as notify_service
from cityhub.notify.models import Topic
from cityhub.workorders import changes
from cityhub.workorders.lifecycle import OPEN_STATES
from cityhub.workorders.models import DISPATCHED_SQL, RUNNING_CLOCK_SQL, Order, OrderEvent, SlaStatus
from cityhub.workorders.service import assign_deadline_passed


def _mark(
    session: Session,
    *,
    condition: Any,
    action: str,
    values: dict[str, Any],
    now: datetime,
    payload: dict[str, Any],
    topic: Topic | None = None,
) -> int:
    """Audit (and notify ``topic``), then update, every order matching ``condition``; returns how many."""
    events = select(
        Order.id,
        literal(action),
        Order.state,
        Order.state,
        literal("system"),
        literal(now, type_=OrderEvent.__table__.c.at.type),
        literal(payload, type_=OrderEvent.__table__.c.payload.type),
    ).where(condition)
    session.execute(
        insert(OrderEvent).from_select(
            ["order_id", "action", "from_state", "to_state", "actor_name", "at", "payload"], events
        )
    )
    if topic is not None:  # before the UPDATE, which makes ``condition`` stop matching
        notify_service.enqueue_for_orders(
            session, condition=condition, topic=topic, payload={**payload, "at": now.isoformat()}, now=now
        )
    # Bumping version keeps optimistic locking honest: a client holding the old version must re-read. The marks move
    # the orders in the data-sharing feed of changes (stamped by this statement on SQLite, not row by row).
    result = session.execute(
        update(Order)
        .where(condition)
        .values(**values, version=Order.version + 1, updated_at=now, **changes.stamped(session))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def sla_sweep(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Mark accept-overdue, warning and overdue orders whose clock runs; idempotent."""
    now = now or utcnow()
    running = and_(text(RUNNING_CLOCK_SQL), Order.sla_paused_at.is_(None))
    overdue = _mark(
        session,
        condition=and_(running, Order.sla_status.in_([SlaStatus.OK, SlaStatus.WARNING]), Order.due_at < now),
        action="sla_overdue",
        values={
            "sla_status": SlaStatus.OVERDUE,
            "overdue_at": Order.due_at,
            "first_overdue_at": func.coalesce(Order.first_overdue_at, Order.due_at),
        },
        now=now,
        payload={"mark": "overdue"},
        topic=Topic.OVERDUE,
    )
    warned = _mark(
        session,
        condition=and_(running, Order.sla_status == SlaStatus.OK, Order.warn_at < now, Order.due_at >= now),
        action="sla_warning",
        values={"sla_status": SlaStatus.WARNING},
        now=now,
        payload={"mark": "warning"},
        topic=Topic.WARNING,
    )
    accept_overdue = _mark(
        session,
        condition=and_(text(DISPATCHED_SQL), Order.accept_overdue == False, Order.accept_due_at < now),  # noqa: E712
        action="sla_accept_overdue",
        values={"accept_overdue": True},
        now=now,
        payload={"mark": "accept_overdue"},
    )
    assign_overdue = _mark_assign_overdue(session, now)
    return {
        "at": now.isoformat(),
        "overdue": overdue,
        "warning": warned,
        "accept_overdue": accept_overdue,
        "assign_overdue": assign_overdue,
    }


ASSIGN_OVERDUE = "assign_overdue"


def _mark_assign_overdue(session: Session, now: datetime) -> int:
    """领导交办's 限期办结 passed (:func:`cityhub.workorders.service.assign_deadline_passed`: the day over, the order
    open): each such order not marked yet gets an ``assign_overdue`` event (the day in its payload) and
    ``assign_overdue_at``, its unit and the leaders who assigned it a notice, and the subscribers of the webhook topic
    ``assign_overdue`` a message; idempotent — a new day given by a
    later 交办 clears the mark. Few orders (a leader's), read through the partial index of 领导交办."""
    from cityhub.notify import notices

    today = now.astimezone(get_settings().tz).date()
    found = session.scalars(
        select(Order)
        .where(
            Order.leader_assigned,  # the bare column, as ix_orders_leader_assigned's predicate is written
            Order.state.in_(sorted(OPEN_STATES)),
            Order.assign_deadline < today,
            Order.assign_overdue_at.is_(None),
        )
        .order_by(Order.id)
    ).all()
    for order in found:
        if order.assign_deadline is None or not assign_deadline_passed(order, now):  # pragma: no cover - as asked
            continue
        mark = {"mark": ASSIGN_OVERDUE, "deadline": order.assign_deadline.isoformat()}
        event = OrderEvent(
            order_id=order.id,
            action=ASSIGN_OVERDUE,
            from_state=order.state.value,
            to_state=order.state.value,
            actor_name="system",
            at=now,
            payload=mark,
        )
        session.add(event)
        order.assign_overdue_at = now
        order.updated_at = now
        session.flush()
        notices.on_assign_overdue(session, order=order, event=event)
        notify_service.enqueue(
            session, topic=Topic.ASSIGN_OVERDUE, order=order, payload={**mark, "at": now.isoformat()}, now=now
        )
    return len(found)
