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

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.db import utcnow
from cityhub.errors import InvalidTransition, NotFound, ValidationFailed
from cityhub.notify.config import get_notify_settings
from cityhub.org.models import Unit
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import AWAITING_DISPATCH, Action, State
from cityhub.workorders.models import Category, Order, OrderEvent
from cityhub.workorders.schemas import CITIZEN_STEPS
from cityhub.workorders.sla import terms_for
from cityhub.workorders.sms import CHOICES, NO_REASON, Rating, read_reply

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
    rating: Rating | None = Field(
        None,
        description="the rating as the citizen gave it where they chose among three (满意, 基本满意, 不满意: a text "
        "message, the progress lookup, the order page); null when only satisfied was recorded",
    )
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


def phone_spellings(raw: str | None) -> set[str]:
    """The ways an order may hold the phone number ``raw`` (none when it is not one), for the index on
    ``orders.citizen_phone``: an appeal stores it as given less spaces and dashes, and a mobile number is the same
    citizen's with China's country code or without (a caller ID reads +86…; the progress lookup compares them so
    too)."""
    phone = re.sub(r"[\s-]", "", raw or "")
    if not re.fullmatch(r"\+?\d{7,20}", phone):
        return set()
    national = phone_digits(phone)
    return {phone, national, f"+86{national}", f"86{national}"} if re.fullmatch(r"1\d{10}", national) else {phone}


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
    rating: Rating | None = None,
    now: datetime | None = None,
) -> TrackedOrder:
    """The citizen's rating of the reply: the callback action (回访), audited as theirs. Only a replied order that
    has not been rated can be rated (:class:`InvalidTransition` otherwise); an unsatisfied rating needs a reason.
    ``rating``: one of the three a text message offers too (基本满意 is satisfied, kept apart in the event's
    ``rating``), which then decides ``satisfied``."""
    order = _find(session, number=number, phone=phone, client_ip=client_ip, now=now or utcnow())
    noted = {"rating": rating.value} if rating is not None else None
    satisfied = rating.satisfied if rating is not None else satisfied
    _record_rating(session, order, satisfied=satisfied, reason=reason, noted=noted, now=now)
    return _view(session, order)


def rating_given(session: Session, order: Order) -> Rating | None:
    """The rating of the order's newest callback as the citizen chose it among three (基本满意 apart from 满意), if
    they did; None when it recorded ``satisfied`` alone or there is none."""
    payload = session.scalar(
        select(OrderEvent.payload)
        .where(OrderEvent.order_id == order.id, OrderEvent.action == Action.CALLBACK.value)
        .order_by(OrderEvent.at.desc(), OrderEvent.id.desc())
        .limit(1)
    )
    given = (payload or {}).get("rating")
    return Rating(given) if given in set(Rating) else None


def _record_rating(
    session: Session,
    order: Order,
    *,
    satisfied: bool,
    reason: str | None,
    actor_name: str = CITIZEN_ACTOR,
    noted: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """The citizen's rating as the callback action (回访), whichever way it came (the progress lookup, a text message):
    audited as theirs, named by the phone's last four digits (``actor_name``'s ``{tail}``); ``noted``: what the
    event's payload keeps beside ``satisfied`` (how it came)."""
    reason = (reason or "").strip() or None  # 不满意 without one: refused by the callback (workorders.service.act)
    actor = orders.Actor(name=actor_name.format(tail=phone_digits(order.citizen_phone)[-4:]), role="citizen")
    params: dict[str, Any] = {**(noted or {}), "satisfied": satisfied}
    if reason:
        params["reason"] = reason
    orders.act(session, order_id=order.id, action=Action.CALLBACK, actor=actor, params=params, now=now)


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
        rating=rating_given(session, order) if order.satisfied is not None else None,
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


# ------------------------------------------------------------------------------------------------ 短信回访

# Who rated by replying to the answer's text message, in the trail: the citizen as on the progress lookup, and how it
# came (a page names them in its reader's language, ``web.machine_text.actor_name``).
CITIZEN_SMS_ACTOR = "市民（尾号{tail}，短信）"
# How many of a phone's orders waiting for a rating the reply asking which one lists.
SMS_LISTED = 5
# The answer to a phone none of whose orders waits for a rating (an unknown one alike: it says nothing of any order).
_NO_ORDER_TEXT = "未找到您待评价的诉求。如需反映问题，请拨打12345热线。"


class SmsOutcome(StrEnum):
    """What a citizen's text message did (:func:`rate_by_sms`)."""

    RATED = "rated"  # the order's callback recorded
    REPEATED = "repeated"  # the same message (message_id) rated it before: nothing done again
    ASK_WHICH = "ask_which"  # several of the phone's orders wait for a rating and the message names none
    UNREADABLE = "unreadable"  # an order waits, but no rating could be read
    NOT_RATEABLE = "not_rateable"  # the order the message names (the phone's) does not wait for a rating
    NO_ORDER = "no_order"  # none of the phone's orders waits for a rating


class SmsAnswer(BaseModel):
    """The answer to an SMS relay's inbound message: what was done, and the text message to send back."""

    outcome: SmsOutcome
    number: str | None = Field(description="the order rated, or the one the answer is about")
    numbers: list[str] = Field(description="ask_which: the phone's orders waiting for a rating (at most 5)")
    rating: Rating | None = Field(description="rated, repeated: satisfied, basically_satisfied or unsatisfied")
    satisfied: bool | None = Field(description="rated, repeated: the callback's satisfied (基本满意 is satisfied)")
    reason: str | None = Field(description="rated, repeated: the words recorded with the rating")
    reply_text: str = Field(description="the text message to send back to the phone, in Chinese, signed")


def rate_by_sms(
    session: Session,
    *,
    phone: str,
    text: str,
    message_id: str | None = None,
    received_at: datetime | None = None,
    now: datetime | None = None,
) -> SmsAnswer:
    """A citizen's reply to the answer's text message (短信回访), as the SMS relay passes it on: read by
    :func:`cityhub.workorders.sms.read_reply` and recorded as the progress lookup's rating is (:func:`_record_rating`:
    the callback, audited as the citizen's — :data:`CITIZEN_SMS_ACTOR` — with ``via: sms`` and the relay's
    ``sms_message_id`` and ``received_at`` in its payload). The order is the phone's one waiting for a rating (digits
    compared, +86 aside), or the one the message names; several waiting and none named: nothing is rated and the
    answer asks which. A message the relay sends again (the same ``message_id``) is answered as the first time and
    rates nothing twice. A 不满意 without a word of what is wrong is recorded with :data:`sms.NO_REASON`. Nothing of
    another phone's orders is ever said."""
    spelled = phone_spellings(phone)
    if not spelled:
        raise ValidationFailed("phone must be a phone number (7 to 20 digits)", details={"field": "phone"})
    if not (text or "").strip():
        raise ValidationFailed("text is empty: the citizen's message is required", details={"field": "text"})
    if received_at is not None and received_at.tzinfo is None:
        raise ValidationFailed("received_at must carry a time zone", details={"field": "received_at"})
    message_id = (message_id or "").strip() or None
    sign = f"【{get_notify_settings().sms_signature}】"
    digits = phone_digits(phone)
    mine = [
        row
        for row in session.execute(
            select(Order.id, Order.number, Order.state, Order.satisfied, Order.citizen_phone)
            .where(Order.citizen_phone.in_(sorted(spelled)))
            .order_by(Order.created_at, Order.id)
        ).all()
        if phone_digits(row.citizen_phone) == digits
    ]
    if message_id is not None and (earlier := _rated_by(session, [r.id for r in mine], message_id)) is not None:
        number = next(r.number for r in mine if r.id == earlier.order_id)
        payload = earlier.payload or {}
        rating = Rating(payload.get("rating") or (Rating.SATISFIED if payload.get("satisfied") else Rating.UNSATISFIED))
        return _thanks(sign, SmsOutcome.REPEATED, number, rating, earlier.reason)
    reply = read_reply(text, [r.number for r in mine])
    awaiting = [r for r in mine if r.state == State.REPLIED]
    named = [r for r in mine if r.number.upper() in reply.named]
    if named:
        chosen = [r for r in named if r.state == State.REPLIED]
        if not chosen:
            shown = named[0].number
            said = "已评价，感谢您的反馈" if named[0].satisfied is not None else "目前不在待评价状态"
            return _answer(SmsOutcome.NOT_RATEABLE, f"{sign}您的诉求{shown}{said}。如有疑问请拨打12345热线。", shown)
        awaiting = chosen
    elif reply.unknown or not awaiting:
        return _answer(SmsOutcome.NO_ORDER, sign + _NO_ORDER_TEXT)
    if len(awaiting) > 1:
        listed = [r.number for r in awaiting[-SMS_LISTED:]]
        more = "等" if len(awaiting) > len(listed) else ""
        return _answer(
            SmsOutcome.ASK_WHICH,
            f"{sign}您有{len(awaiting)}件诉求待评价：{'、'.join(listed)}{more}。请回复诉求编号加评价数字，"
            f"如“{listed[-1]} 1”（{CHOICES}）。",
            numbers=listed,
        )
    order = session.get(Order, awaiting[0].id)
    if order is None:  # deleted since (the read above is not locked): nothing to rate
        return _answer(SmsOutcome.NO_ORDER, sign + _NO_ORDER_TEXT)
    if reply.rating is None:
        return _answer(
            SmsOutcome.UNREADABLE,
            f"{sign}未能识别您的评价。请回复数字评价诉求{order.number}：{CHOICES}。",
            order.number,
        )
    reason = reply.reason or (NO_REASON if reply.rating == Rating.UNSATISFIED else None)
    noted: dict[str, Any] = {"via": "sms", "rating": reply.rating.value}
    if message_id is not None:
        noted["sms_message_id"] = message_id
    if received_at is not None:
        noted["received_at"] = received_at.astimezone(UTC).isoformat()  # as the payloads' other times, in UTC
    try:
        _record_rating(
            session,
            order,
            satisfied=reply.rating.satisfied,
            reason=reason,
            actor_name=CITIZEN_SMS_ACTOR,
            noted=noted,
            now=now,
        )
    except InvalidTransition:  # rated meanwhile: by this very message sent again at once, or otherwise
        if message_id is not None and (earlier := _rated_by(session, [order.id], message_id)) is not None:
            return _thanks(sign, SmsOutcome.REPEATED, order.number, reply.rating, earlier.reason)
        return _answer(SmsOutcome.NOT_RATEABLE, f"{sign}您的诉求{order.number}已评价，感谢您的反馈。", order.number)
    return _thanks(sign, SmsOutcome.RATED, order.number, reply.rating, reason)


def _rated_by(session: Session, order_ids: list[int], message_id: str) -> OrderEvent | None:
    """The callback that the text message ``message_id`` recorded on one of ``order_ids``, if any."""
    if not order_ids:
        return None
    events = session.scalars(
        select(OrderEvent).where(OrderEvent.order_id.in_(order_ids), OrderEvent.action == Action.CALLBACK.value)
    ).all()
    return next((e for e in events if (e.payload or {}).get("sms_message_id") == message_id), None)


def _thanks(sign: str, outcome: SmsOutcome, number: str, rating: Rating, reason: str | None) -> SmsAnswer:
    then = "我们将核实并跟进处理" if rating == Rating.UNSATISFIED else "欢迎继续监督"
    return SmsAnswer(
        outcome=outcome,
        number=number,
        numbers=[],
        rating=rating,
        satisfied=rating.satisfied,
        reason=reason,
        reply_text=f"{sign}感谢您的评价！诉求{number}已记录为“{rating.words}”，{then}。",
    )


def _answer(
    outcome: SmsOutcome, reply_text: str, number: str | None = None, numbers: list[str] | None = None
) -> SmsAnswer:
    return SmsAnswer(
        outcome=outcome,
        number=number,
        numbers=numbers or [],
        rating=None,
        satisfied=None,
        reason=None,
        reply_text=reply_text,
    )
