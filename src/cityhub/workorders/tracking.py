"""Progress lookup and rating for the citizen who appealed (办理进度查询): the order number and the phone number given
with the appeal, no account needed — what a hotline caller has after the call.

A lookup shows the appeal as the citizen gave it, where it stands, which unit handles it, its time limit, the public
milestones of its trail (received, dispatched to a unit, accepted, replied, rated, closed …: the steps of their
progress, ``schemas.CITIZEN_STEPS``, as their order page lists them — never the internal notes, the people or the
returns between units) and the reply. Once replied, the citizen rates it (满意 / 不满意, with a
reason): the same audited callback action a hotline operator records, its actor named as the citizen with the last
four digits of the phone.

A wrong number and a wrong phone answer alike (no order reveals it exists), and every failure counts towards the
same limits as failed password logins (:func:`cityhub.auth.service.check_attempts`: per address, and per order
number), so the phone cannot be guessed by trying.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.db import utcnow
from cityhub.errors import NotFound, ValidationFailed
from cityhub.org.models import Unit
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import AWAITING_DISPATCH, Action, State
from cityhub.workorders.models import Category, Order, OrderEvent
from cityhub.workorders.schemas import CITIZEN_STEPS
from cityhub.workorders.sla import terms_for

# The trail's actions a citizen is shown: their progress's steps, as on their order page (``schemas.CITIZEN_STEPS``).
PUBLIC_ACTIONS = tuple(sorted(CITIZEN_STEPS))
_UNIT_ACTIONS = {"dispatch", "transfer", "accept", "reply"}
NOT_FOUND = "no order with this number and phone"
# Who rated a reply on the tracking page, in the trail (no account: the phone's last digits); a page names them in
# its reader's language (``web.machine_text.actor_name``).
CITIZEN_ACTOR = "市民（尾号{tail}）"


class Milestone(BaseModel):
    at: datetime
    action: str
    unit: str | None = None


class MergedProgress(BaseModel):
    """Where the appeal an order was merged into stands: the one handled for both, which the merged appeal's citizen
    cannot look up (it is under another citizen's phone). Its handling only — never that citizen's words or data."""

    number: str
    state: str = Field(description="its state as a citizen reads it; rated by its own citizen reads as replied")
    unit: str | None = Field(description="the unit handling it")
    due_at: datetime | None
    replied_at: datetime | None
    reply_text: str | None = Field(
        description="its reply, names, phone, ID and house numbers of the other citizen replaced (masking.scrub_text)"
    )


class TrackedOrder(BaseModel):
    """What the citizen is shown (also the API's answer)."""

    number: str
    title: str | None
    content: str
    appeal_type: str
    channel: str
    created_at: datetime
    state: str
    category: str | None
    unit: str | None = Field(description="the unit handling it")
    due_at: datetime | None = Field(
        description="when it is due (working-day time limit); null while it waits to be dispatched — again, after a "
        "unit returned it: the limit an earlier dispatch set stopped there, and the next dispatch starts a new one"
    )
    replied_at: datetime | None
    reply_text: str | None
    satisfied: bool | None
    merged_into: str | None = Field(description="the number of the order it was merged into (the same problem)")
    merged_progress: MergedProgress | None = Field(
        None, description="merged: where the order it was merged into stands, its unit and its reply (handled for both)"
    )
    answer_within: float | None = Field(
        None,
        description="while it waits to be dispatched: the days it is usually answered within once dispatched "
        "(working days, or whole days where answer_round_the_clock), as the time-limit rules give such an appeal",
    )
    answer_round_the_clock: bool = Field(False, description="answer_within counts whole days, not working days")
    can_rate: bool = Field(description="replied and not yet rated: POST /track/rate")
    milestones: list[Milestone]


def phone_digits(phone: str | None) -> str:
    """A phone number as digits only, without China's country code: what the lookup compares."""
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    return digits[2:] if len(digits) > 11 and digits.startswith("86") else digits


def _find(session: Session, *, number: str, phone: str, client_ip: str, now: datetime) -> Order:
    from cityhub.auth.service import check_attempts, record_failed_attempt

    number = number.strip().upper()
    if not number:
        raise ValidationFailed("number is required", details={"field": "number"})
    if not phone_digits(phone):
        raise ValidationFailed("phone is required", details={"field": "phone"})
    key = f"track:{number}"
    check_attempts(session, key=key, client_ip=client_ip, now=now, what="lookups", of="this order number")
    order = session.scalars(select(Order).where(Order.number == number)).one_or_none()
    if order is None or not order.citizen_phone or phone_digits(order.citizen_phone) != phone_digits(phone):
        record_failed_attempt(session, key=key, client_ip=client_ip, now=now)
        session.commit()  # the failure counts even though the request answers with an error
        raise NotFound(NOT_FOUND)
    return order


def track(session: Session, *, number: str, phone: str, client_ip: str, now: datetime | None = None) -> TrackedOrder:
    """The citizen's view of their order; :class:`NotFound` alike for a wrong number or phone."""
    order = _find(session, number=number, phone=phone, client_ip=client_ip, now=now or utcnow())
    return _view(session, order)


def rate(
    session: Session,
    *,
    number: str,
    phone: str,
    satisfied: bool,
    reason: str | None = None,
    client_ip: str,
    now: datetime | None = None,
) -> TrackedOrder:
    """The citizen's rating of the reply: the callback action (回访), audited as theirs. Only a replied order that
    has not been rated can be rated (:class:`InvalidTransition` otherwise); an unsatisfied rating needs a reason."""
    order = _find(session, number=number, phone=phone, client_ip=client_ip, now=now or utcnow())
    reason = (reason or "").strip() or None  # 不满意 without one: refused by the callback (workorders.service.act)
    actor = orders.Actor(name=CITIZEN_ACTOR.format(tail=phone_digits(order.citizen_phone)[-4:]), role="citizen")
    params: dict[str, Any] = {"satisfied": satisfied}
    if reason:
        params["reason"] = reason
    orders.act(session, order_id=order.id, action=Action.CALLBACK, actor=actor, params=params, now=now)
    return _view(session, order)


def _view(session: Session, order: Order) -> TrackedOrder:
    events = session.scalars(
        select(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.action.in_(PUBLIC_ACTIONS))
        .order_by(OrderEvent.at, OrderEvent.id)
    ).all()
    unit_ids = {e.unit_id for e in events if e.unit_id} | ({order.lead_unit_id} if order.lead_unit_id else set())
    names = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids))).all()) if unit_ids else {}
    category = (
        session.scalar(select(Category.path).where(Category.id == order.category_id)) if order.category_id else None
    )
    master = (
        session.scalar(select(Order.number).where(Order.id == order.master_order_id)) if order.master_order_id else None
    )
    state = State(order.state)
    limit = (
        terms_for(session, category_id=order.category_id, urgency=order.urgency.value)
        if state in AWAITING_DISPATCH
        else None
    )
    return TrackedOrder(
        number=order.number,
        title=order.title,
        content=order.content,
        appeal_type=order.appeal_type.value,
        channel=order.channel.value,
        created_at=order.created_at,
        state=state.value,
        category=category.rsplit("/", 1)[-1] if category else None,
        unit=names.get(order.lead_unit_id) if order.lead_unit_id else None,
        due_at=None if state in AWAITING_DISPATCH else order.due_at,
        replied_at=order.replied_at,
        reply_text=order.reply_text,
        satisfied=order.satisfied,
        merged_into=master,
        merged_progress=merged_progress(session, order),
        answer_within=limit.finish_days if limit is not None else None,
        answer_round_the_clock=limit.round_the_clock if limit is not None else False,
        can_rate=state == State.REPLIED,
        milestones=[
            Milestone(
                at=e.at, action=e.action, unit=names.get(e.unit_id) if e.action in _UNIT_ACTIONS and e.unit_id else None
            )
            for e in events
        ],
    )


# Merges chain (an appeal merged into one that was merged in turn): followed this far, no further.
_MERGE_HOPS = 5


def merged_progress(session: Session, order: Order) -> MergedProgress | None:
    """For an order merged into another (合并办理), where that one stands — the last of a chain of merges — as its
    citizen's progress would say it: its state, unit, time limit and reply. Its own citizen's rating reads as the
    reply it rated (theirs, not this citizen's); its reply without that citizen's name, phone or numbers. None for an
    order not merged."""
    from cityhub.masking import scrub_text

    master: Order | None = None
    seen = {order.id}
    next_id = order.master_order_id
    while next_id is not None and next_id not in seen and len(seen) <= _MERGE_HOPS:
        master = session.get(Order, next_id)
        if master is None:
            break
        seen.add(master.id)
        next_id = master.master_order_id
    if master is None:
        return None
    state = State(master.state)
    shown = State.REPLIED if state == State.CALLED_BACK else state.as_citizen_reads()
    unit = session.scalar(select(Unit.name).where(Unit.id == master.lead_unit_id)) if master.lead_unit_id else None
    return MergedProgress(
        number=master.number,
        state=shown.value,
        unit=unit,
        due_at=None if state in AWAITING_DISPATCH else master.due_at,
        replied_at=master.replied_at,
        reply_text=scrub_text(master.reply_text, known=(master.citizen_name, master.citizen_phone)),
    )
