"""Notification outbox: enqueue in the caller's transaction, claim with a lease, deliver, back off, dead-letter.

Guarantees
----------
- **Nothing is sent for a change that did not commit, nothing committed is lost.** Messages are rows written
  in the same transaction as the order change (:func:`on_order_event`, :func:`enqueue_for_orders`); delivery
  reads them later, from any process.
- **At least once.** A worker claims a batch (status ``sending`` with a lease, ``claimed_until``) and commits
  before it sends. A worker killed mid-send leaves rows whose lease runs out; the next claim takes them again.
  Receivers de-duplicate on the ``X-Cityhub-Delivery`` header, the outbox row id, stable across retries.
- **Many workers.** On PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n`` then an UPDATE, so
  workers take disjoint batches without waiting on each other; on SQLite (one writer at a time) the same
  statements run without the lock clause. The UPDATE re-checks claimability, so a row is never claimed twice.
- **Bounded retries.** A failed attempt waits ``base × 2^(attempt-1)`` seconds (capped, with jitter); after
  ``max_attempts`` the message is ``dead`` until ``cityhub notify outbox retry ID`` revives it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, and_, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from cityhub import auditlog, refdata
from cityhub.db import rowcount, utcnow
from cityhub.errors import Conflict, NotFound, ValidationFailed, check_text
from cityhub.masking import coarsen_address, scrub_text
from cityhub.notify.config import NotifySettings, get_notify_settings
from cityhub.notify.models import OutboxMessage, OutboxStatus, Subscription, Topic
from cityhub.notify.senders import DeliveryFailed, Envelope, NotConfigured, get_sender, sender_kinds
from cityhub.org.models import Unit
from cityhub.timerange import answer_time, answer_times
from cityhub.workorders import sms
from cityhub.workorders.lifecycle import TERMINAL_STATES, Action, Outcome, SlaEffect, State
from cityhub.workorders.models import MACHINE_CHANNELS, MERGED_IN, Category, Order, OrderEvent
from cityhub.workorders.schemas import MEDIA_URL_MAX, NotWebAddress, web_address

log = logging.getLogger(__name__)

_RETRYABLE = (OutboxStatus.PENDING, OutboxStatus.FAILED)
_BATCH = 5_000
_OUTBOX = OutboxMessage.__table__.c


# ------------------------------------------------------------------------------------------- subscriptions


def normalize_topics(topics: Iterable[str]) -> str:
    """The comma-framed form stored in ``Subscription.events``; unknown topics are refused."""
    chosen: list[str] = []
    for raw in topics:
        name = raw.strip().lower()
        if not name:
            continue
        try:
            topic = Topic(name)
        except ValueError:
            known = ", ".join(t.value for t in Topic)
            raise ValidationFailed(f"unknown topic '{name}' (known: {known})", details={"field": "events"}) from None
        if topic.value not in chosen:
            chosen.append(topic.value)
    if not chosen:
        raise ValidationFailed("name at least one topic", details={"field": "events"})
    return "," + ",".join(chosen) + ","


TARGET_MAX_CHARS = 500  # the column's length


# What a webhook's receiver is told for each reason schemas.web_address refuses an address.
_WEBHOOK_URL_PROBLEMS = {
    "scheme": "a webhook URL must start with http:// or https://",
    "host": "a webhook URL needs a host: '{url}'",
    "length": f"a webhook URL has no spaces and at most {MEDIA_URL_MAX} characters",
}


def _check_webhook_url(url: str) -> None:
    """A receiver the sender can reach: a web address as an attachment's link must be (``schemas.web_address``:
    http(s), a host, within the column), with a port the sender can use and no spaces."""
    try:
        _port = urlsplit(url).port  # a port that is no number or out of range raises
        web_address(url)
    except NotWebAddress as exc:
        raise ValidationFailed(_WEBHOOK_URL_PROBLEMS[exc.reason].format(url=url), details={"field": "url"}) from None
    except ValueError as exc:
        raise ValidationFailed(f"not a URL: {exc}", details={"field": "url"}) from None
    if any(c.isspace() for c in url):
        raise ValidationFailed(_WEBHOOK_URL_PROBLEMS["length"], details={"field": "url"})


# The configuration log's area of webhook subscriptions (``auditlog.AREAS``), each named by its id.
LOG_AREA = "webhook"
DESCRIPTION_MAX_CHARS = 200  # the column's length


def _facts(sub: Subscription) -> dict[str, Any]:
    """What the configuration log keeps of a subscription (never its secret)."""
    return {
        "url": sub.target,
        "events": ",".join(sub.topics),
        "unit": sub.unit.code if sub.unit is not None else None,
        "description": sub.description,
    }


def add_subscription(
    session: Session,
    *,
    target: str,
    topics: Iterable[str],
    unit_code: str | None = None,
    kind: str = "webhook",
    description: str | None = None,
    actor: Any = None,
) -> tuple[Subscription, str]:
    """Create a subscription (logged in the configuration log as ``actor``'s); returns it with its signing secret
    (stored, but shown to the caller only now).

    The one check of what a subscription may hold, for the command line, the API and the page alike: the receiver a
    web address the sender can reach (``_check_webhook_url``), the topics known ones, the unit a unit's code."""
    if kind not in sender_kinds():
        raise ValidationFailed(f"unknown kind '{kind}' (known: {', '.join(sender_kinds())})", details={"field": "kind"})
    for text, field in (
        (target, "url" if kind == "webhook" else "target"),
        (unit_code, "unit"),
        (description, "description"),
    ):
        check_text(text, field)  # a form's or the command line's text PostgreSQL cannot store (NUL)
    target = target.strip()
    if kind == "webhook":
        _check_webhook_url(target)
    elif not target or len(target) > TARGET_MAX_CHARS:
        raise ValidationFailed(f"the target must be 1 to {TARGET_MAX_CHARS} characters", details={"field": "target"})
    events = normalize_topics(topics)
    unit = None
    if unit_code and unit_code.strip():
        unit = session.scalars(select(Unit).where(Unit.code == unit_code.strip())).one_or_none()
        if unit is None:
            raise ValidationFailed(f"unknown unit code '{unit_code.strip()}'", details={"field": "unit"})
    description = (description or "").strip() or None
    if description is not None and len(description) > DESCRIPTION_MAX_CHARS:
        raise ValidationFailed(
            f"the description has {len(description)} characters; at most {DESCRIPTION_MAX_CHARS}",
            details={"field": "description"},
        )
    secret = secrets.token_urlsafe(32)
    sub = Subscription(
        kind=kind,
        target=target,
        secret=secret,
        events=events,
        unit_id=unit.id if unit is not None else None,
        unit=unit,
        active=True,
        description=description,
        created_at=utcnow(),
    )
    session.add(sub)
    session.flush()
    auditlog.record(session, actor=actor, area=LOG_AREA, target=str(sub.id), action="create", after=_facts(sub))
    return sub, secret


def list_subscriptions(session: Session, *, include_inactive: bool = False) -> Sequence[Subscription]:
    query = select(Subscription).order_by(Subscription.id)
    if not include_inactive:
        query = query.where(Subscription.active.is_(True))
    return session.scalars(query).all()


def get_subscription(session: Session, *, subscription_id: int) -> Subscription:
    """An active subscription; NotFound for one never made or removed."""
    sub = session.get(Subscription, subscription_id)
    if sub is None or not sub.active:
        raise NotFound(f"subscription {subscription_id} not found")
    return sub


def remove_subscription(session: Session, *, subscription_id: int, actor: Any = None) -> int:
    """Deactivate a subscription and dead-letter its undelivered messages; returns how many were dropped. Logged in
    the configuration log as ``actor``'s deactivation (``deactivate``: the row is kept, not deleted).

    The row stays so that the outbox keeps saying where its past messages went.
    """
    sub = get_subscription(session, subscription_id=subscription_id)
    auditlog.record(session, actor=actor, area=LOG_AREA, target=str(sub.id), action="deactivate", before=_facts(sub))
    sub.active = False
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.subscription_id == subscription_id, OutboxMessage.status.in_(_RETRYABLE))
        .values(status=OutboxStatus.DEAD, last_error="subscription removed")
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


# What the outbox holds that has not gone through: waiting for its first attempt (or being sent now), failed and
# waiting for the next, given up on.
WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING)
UNDELIVERED = (OutboxStatus.FAILED, OutboxStatus.DEAD)


@dataclass(frozen=True)
class DeliveryState:
    """How a subscription's deliveries go, from what the outbox holds (delivered messages are pruned after
    ``keep_sent_days``): its last delivery, the last failure of a message that has not gone through since — when
    its attempt failed (``last_failed_at``) and the message (``last_failure``; the newest such message when no
    failure time is known: those that failed before failure times were kept) — and the counts of what is waiting,
    failing (to be tried again) and dead."""

    last_sent_at: datetime | None = None
    last_failure: OutboxMessage | None = None
    last_failed_at: datetime | None = None
    pending: int = 0
    failed: int = 0
    dead: int = 0


@dataclass(frozen=True)
class SubscriptionOverview:
    subscription: Subscription
    created_by: str | None  # the actor of its creation in the configuration log (None: made before it was logged)
    delivery: DeliveryState


def subscriptions_overview(
    session: Session, *, include_inactive: bool = False, subscription_id: int | None = None
) -> list[SubscriptionOverview]:
    """Every (active) subscription — or the one of ``subscription_id`` — with who made it and how its deliveries go,
    by id: a fixed number of queries, whatever the number of subscriptions."""
    subs = list(list_subscriptions(session, include_inactive=include_inactive))
    if subscription_id is not None:
        subs = [s for s in subs if s.id == subscription_id]
    if not subs:
        return []
    ids = [s.id for s in subs]
    counts: dict[int, Counter[OutboxStatus]] = {i: Counter() for i in ids}
    last_sent: dict[int, datetime] = {}
    for sub_id, state, n, sent in session.execute(
        select(OutboxMessage.subscription_id, OutboxMessage.status, func.count(), func.max(OutboxMessage.sent_at))
        .where(OutboxMessage.subscription_id.in_(ids))
        .group_by(OutboxMessage.subscription_id, OutboxMessage.status)
    ):
        counts[sub_id][OutboxStatus(state)] += n
        if state == OutboxStatus.SENT and sent is not None:
            last_sent[sub_id] = sent
    undelivered = and_(OutboxMessage.subscription_id.in_(ids), OutboxMessage.status.in_(UNDELIVERED))
    # When each subscription's delivery last failed: the end of the failed attempt (``attempted_at``).
    failed_at: dict[int, datetime] = {
        sub_id: at
        for sub_id, at in session.execute(
            select(OutboxMessage.subscription_id, func.max(OutboxMessage.attempted_at))
            .where(undelivered)
            .group_by(OutboxMessage.subscription_id)
        )
        if at is not None
    }
    # The message of that failure; the newest undelivered one of a subscription with no failure time known.
    newest = select(func.max(OutboxMessage.id)).where(undelivered).group_by(OutboxMessage.subscription_id)
    failures: dict[int, OutboxMessage] = {}
    for m in session.scalars(
        select(OutboxMessage)
        .where(
            or_(
                OutboxMessage.id.in_(newest), and_(undelivered, OutboxMessage.attempted_at.in_(set(failed_at.values())))
            )
        )
        .order_by(OutboxMessage.id)
    ):
        when = failed_at.get(m.subscription_id)
        if when is None or failed_at_of(m) == when:
            failures[m.subscription_id] = m  # by id: the newest of the messages that failed at that instant
    creators = {
        target: actor
        for target, actor in session.execute(
            select(auditlog.LogEntry.target, auditlog.LogEntry.actor).where(
                auditlog.LogEntry.area == LOG_AREA,
                auditlog.LogEntry.action == "create",
                auditlog.LogEntry.target.in_([str(i) for i in ids]),
            )
        )
    }
    return [
        SubscriptionOverview(
            subscription=sub,
            created_by=creators.get(str(sub.id)),
            delivery=DeliveryState(
                last_sent_at=last_sent.get(sub.id),
                last_failure=failures.get(sub.id),
                last_failed_at=failed_at.get(sub.id),
                pending=sum(counts[sub.id][s] for s in WAITING),
                failed=counts[sub.id][OutboxStatus.FAILED],
                dead=counts[sub.id][OutboxStatus.DEAD],
            ),
        )
        for sub in subs
    ]


# ------------------------------------------------------------------------------------------------- enqueue


def _matching(topic: Topic) -> Any:
    return and_(Subscription.active.is_(True), Subscription.events.like(f"%,{topic.value},%"))


def _active_subscriptions(session: Session) -> tuple[tuple[int, frozenset[str], int | None], ...]:
    """(id, topics, unit) of every active subscription, from the process's cache while the table is unchanged
    (:mod:`cityhub.refdata`): every life-cycle action looks for the ones it concerns."""

    def build(s: Session) -> tuple[tuple[int, frozenset[str], int | None], ...]:
        rows = s.execute(
            select(Subscription.id, Subscription.events, Subscription.unit_id)
            .where(Subscription.active.is_(True))
            .order_by(Subscription.id)
        )
        return tuple(
            (sub_id, frozenset(t for t in events.split(",") if t), unit_id) for sub_id, events, unit_id in rows
        )

    return refdata.cached(session, "notify.subscriptions", ("notify_subscriptions",), build)


def enqueue(
    session: Session,
    *,
    topic: Topic,
    order: Order | None,
    payload: dict[str, Any],
    now: datetime | None = None,
) -> int:
    """Add one message per subscription interested in ``topic`` for ``order``; returns how many were added. A message
    of no order (None: a code proving a citizen's phone) goes to the subscriptions of every order only."""
    now = now or utcnow()
    held = (order.lead_unit_id, order.street_id, order.community_id) if order is not None else ()
    units = {u for u in held if u is not None}
    subs = [
        sub_id
        for sub_id, topics, unit_id in _active_subscriptions(session)
        if topic.value in topics and (unit_id is None or unit_id in units)
    ]
    for sub_id in subs:
        session.add(
            OutboxMessage(
                topic=topic,
                order_id=order.id if order is not None else None,
                subscription_id=sub_id,
                payload=payload,
                created_at=now,
                status=OutboxStatus.PENDING,
                attempts=0,
                # Due now even when the change is back-dated (``act(now=…)``): the event time is history.
                next_attempt_at=utcnow(),
            )
        )
    return len(subs)


def on_alarm_raised(
    session: Session,
    *,
    order_id: int | None,
    units: Iterable[int | None],
    payload: dict[str, Any],
    topic: Topic = Topic.ALARM,
) -> int:
    """Enqueue the ``alarm`` notifications of a raised (or escalated) sensor alarm — or, with ``topic``
    ``alarm_cleared``, of a cleared one — in the caller's transaction: every active subscription of the topic, for
    every unit or for one of ``units`` (the sensor's responsible unit, street and community); returns how many."""
    wanted = {u for u in units if u is not None}
    subs = [
        sub_id
        for sub_id, topics, unit_id in _active_subscriptions(session)
        if topic.value in topics and (unit_id is None or unit_id in wanted)
    ]
    for sub_id in subs:
        session.add(
            OutboxMessage(
                topic=topic,
                order_id=order_id,
                subscription_id=sub_id,
                payload=payload,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
    return len(subs)


def topic_for(outcome: Outcome) -> Topic | None:
    """The topic an applied life-cycle action is notified under, or None.

    A dispatch is any action that hands the order to a unit and starts its clock: dispatch, transfer, reopen
    and a leader's assignment to a new unit (an assignment to the unit already holding it keeps the clock).
    """
    if outcome.to_state == State.DISPATCHED and outcome.sla == SlaEffect.START:
        return Topic.DISPATCH
    if outcome.action == Action.REPLY:
        return Topic.REPLY
    if outcome.action == Action.CALLBACK:
        return Topic.CALLBACK
    if outcome.sla == SlaEffect.TIGHTEN:  # an urgency raise: only when it brought a deadline forward (below)
        return Topic.DEADLINE
    if outcome.to_state in TERMINAL_STATES and outcome.from_state != outcome.to_state:
        return Topic.CLOSE  # closed, answered at once, cancelled or merged: its handling is over
    return None


def actor_shown(order: Order, actor_id: int | None, actor_name: str) -> str:
    """Who acted on ``order``, as receivers see it (they get no personal data): the citizen's own steps (filing,
    rating, adding files) as ``"citizen"`` (:func:`cityhub.workorders.schemas.shown_actor`)."""
    from cityhub.workorders.schemas import shown_actor

    return shown_actor(actor_id, actor_name, citizen_user_id=order.citizen_user_id, citizen_name=order.citizen_name)


def on_order_event(session: Session, *, order: Order, outcome: Outcome, event: OrderEvent) -> int:
    """Enqueue the notifications of one life-cycle action, in the caller's transaction; returns how many."""
    told = on_citizen_step(session, order=order, outcome=outcome, event=event)
    topic = topic_for(outcome)
    if topic is None:
        return told
    if topic == Topic.DEADLINE:
        if not (event.payload or {}).get("to"):
            return 0  # the raised urgency's terms were no tighter than what was left: nothing moved
        return enqueue(session, topic=topic, order=order, payload=deadline_payload(_urgency_raise(event)), now=event.at)
    payload: dict[str, Any] = {
        "action": outcome.action.value,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "actor": actor_shown(order, event.actor_id, event.actor_name),
        "unit_id": event.unit_id,
        "at": event.at.isoformat() if event.at else None,
    }
    if event.reason:
        payload["reason"] = scrub_text(event.reason, known=(order.citizen_name, order.citizen_phone))
    if topic == Topic.CLOSE:  # how it ended: resolved or not (null: cancelled, merged), and into which order
        payload["resolved"] = order.resolved
        if order.state == State.MERGED:
            payload["master_id"] = order.master_order_id
    if outcome.action == Action.CALLBACK:
        payload["satisfied"] = outcome.payload.get("satisfied")
        if rating := outcome.payload.get("rating"):  # a text message's rating (短信回访): 基本满意 said apart
            payload["rating"] = rating
            payload["via"] = outcome.payload.get("via")
    return told + enqueue(session, topic=topic, order=order, payload=payload, now=event.at)


# The steps a citizen is told of by text message (topic ``citizen``): the answer, to read and rate, and the closing.
CITIZEN_STEPS = frozenset({Action.REPLY, Action.CLOSE})
# Of the reply, the first characters a text message carries (the whole answer is on the progress lookup).
SMS_REPLY_CHARS = 60


def citizen_text(order: Order, action: Action) -> str:
    """The text message telling the citizen who appealed that ``order`` was answered (答复: the answer's beginning,
    how to rate it by replying — 短信回访, :data:`sms.RATING_PROMPT`, while it can be rated and unless
    ``CITYHUB_NOTIFY_SMS_RATING`` is off — and where to read it whole and rate it) or closed (办结), in Chinese — a
    text message's language here —, signed (``CITYHUB_NOTIFY_SMS_SIGNATURE``), naming the progress lookup
    (``CITYHUB_NOTIFY_TRACK_URL``). The citizen reads 诉求编号, as on their pages and ``/track``, never 工单."""
    settings = get_notify_settings()
    where = settings.track_url or "12345网站“办理进度查询”"
    head = f"【{settings.sms_signature}】您反映的问题（诉求编号{order.number}）"
    if action == Action.REPLY:
        reply = " ".join((order.reply_text or "").split())
        said = reply if len(reply) <= SMS_REPLY_CHARS else reply[:SMS_REPLY_CHARS] + "…"
        if asks_rating(order, action):
            return f"{head}已答复：{said} {sms.RATING_PROMPT}完整答复可凭诉求编号和本手机号在{where}查看。"
        return f"{head}已答复：{said} 请凭诉求编号和本手机号在{where}查看完整答复并评价。"
    resolved = "已办结" if order.state == State.CLOSED_RESOLVED else "已办结（未解决）"
    return f"{head}{resolved}。可凭诉求编号和本手机号在{where}查看办理情况。感谢您的监督。"


def asks_rating(order: Order, action: Action) -> bool:
    """Whether the text message of ``action`` asks the citizen to rate the answer by replying (短信回访): an answer
    that waits for their rating, when the relay passes replies on (``CITYHUB_NOTIFY_SMS_RATING``)."""
    return action == Action.REPLY and order.state == State.REPLIED and get_notify_settings().sms_rating


def on_citizen_step(session: Session, *, order: Order, outcome: Outcome, event: OrderEvent) -> int:
    """Enqueue the ``citizen`` notifications of an answer or a closing (:data:`CITIZEN_STEPS`) for the citizen who
    appealed — their phone and the message's words (:func:`citizen_text`), for the subscription of the district's SMS
    relay —, in the caller's transaction; returns how many. None for an order without a phone, nor for a sensor's or
    a camera's (no one appealed), nor for a consultation answered on the spot (the caller heard the answer)."""
    if outcome.action not in CITIZEN_STEPS or not order.citizen_phone or order.channel in MACHINE_CHANNELS:
        return 0
    if order.instant_answered:
        return 0
    payload = {
        "action": outcome.action.value,
        "to_state": event.to_state,
        "at": event.at.isoformat() if event.at else None,
        "phone": order.citizen_phone,
        "text": citizen_text(order, outcome.action),
        "asks_rating": asks_rating(order, outcome.action),
    }
    return enqueue(session, topic=Topic.CITIZEN, order=order, payload=payload, now=event.at)


# The ``citizen`` message that carries a code proving an account's phone (its ``event.action``; no order).
VERIFY_PHONE = "verify_phone"
RESET_PASSWORD = "reset_password"  # a code resetting a forgotten password, sent to the account's verified phone


def phone_code_text(code: str, minutes: int, *, reset: bool = False) -> str:
    """The text message of a code proving a citizen's phone on their account (``reset``: resetting its forgotten
    password), signed as the answers' are."""
    sign = get_notify_settings().sms_signature
    if reset:
        return (
            f"【{sign}】您的验证码为{code}，{minutes}分钟内有效，用于重置您在12345平台账户的登录密码。"
            "验证码请勿告诉他人；如非本人操作，请忽略本短信，您的密码不会改变。"
        )
    return (
        f"【{sign}】您的验证码为{code}，{minutes}分钟内有效，用于核实您在12345平台账户中的手机号。"
        "如非本人操作，请忽略本短信。"
    )


def on_phone_code(session: Session, *, phone: str, code: str, minutes: int, now: datetime, reset: bool = False) -> int:
    """Enqueue the ``citizen`` text message of a code proving a citizen's phone (``cityhub.auth.phone``; ``reset``:
    the code resets the account's forgotten password, ``action`` ``reset_password``) for the district's SMS relay —
    as the answers' texts go, its ``event`` the phone and the words, ``order`` null —, in the caller's transaction;
    returns how many (0: no relay subscribes to the topic, the code cannot go out)."""
    payload = {
        "action": RESET_PASSWORD if reset else VERIFY_PHONE,
        "at": now.isoformat(),
        "phone": phone,
        "text": phone_code_text(code, minutes, reset=reset),
        "asks_rating": False,
    }
    return enqueue(session, topic=Topic.CITIZEN, order=None, payload=payload, now=now)


def on_merged_in(
    session: Session,
    *,
    master: Order,
    merged: Order,
    actor_id: int | None,
    actor_name: str,
    unit_id: int | None,
    at: datetime,
    auto: bool,
) -> int:
    """Enqueue the ``merged`` notifications of a duplicate merged into ``master`` — its ``merged_in`` event
    (``workorders.service``) — in the caller's transaction, as :func:`enqueue` does for every topic: the units working
    the master hear that another appeal joined it. Who merged it (the merged appeal's own citizen, whose appeal intake
    merged, as ``citizen``), when, which order, whether intake's duplicate check did; not the appeal's words, which a
    receiver reads with its own credentials. Returns how many."""
    payload: dict[str, Any] = {
        "action": MERGED_IN,
        "from_state": None,
        "to_state": master.state.value,
        "actor": actor_shown(merged, actor_id, actor_name),
        "unit_id": unit_id,
        "at": at.isoformat(),
        "merged_id": merged.id,
        "merged_number": merged.number,
        "auto": auto,
    }
    return enqueue(session, topic=Topic.MERGED, order=master, payload=payload, now=at)


def _urgency_raise(event: OrderEvent) -> dict[str, Any]:
    """An ``escalate`` event that brought deadlines forward, in the shape :func:`deadline_payload` reads (the
    recompute's rows): cause ``urgency`` with the new and the previous urgency, and what moved."""
    detail = event.payload or {}
    return {
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "actor_name": event.actor_name,
        "unit_id": event.unit_id,
        "at": event.at,
        "reason": event.reason,
        "payload": {
            "cause": "urgency",
            "urgency": detail.get("urgency"),
            "previous_urgency": detail.get("previous_urgency"),
            "from": detail.get("from"),
            "to": detail.get("to"),
        },
    }


def on_deadlines_moved(session: Session, *, events: Sequence[Mapping[str, Any]]) -> int:
    """Enqueue the ``deadline`` topic for the ``sla_recompute`` audit events of one recomputation; returns how many.

    ``events`` are the rows :mod:`cityhub.workorders.recompute` inserts (order_id, action, states, actor, unit,
    at, reason, payload). Set-based: one query for the interested subscriptions (none: nothing else runs), one
    per 5,000 orders for their units, then batched INSERTs — each message carries its own order's before/after.
    """
    subs = session.execute(select(Subscription.id, Subscription.unit_id).where(_matching(Topic.DEADLINE))).all()
    if not subs or not events:
        return 0
    units: dict[int, set[int]] = {}
    ids = sorted({int(e["order_id"]) for e in events})
    for start in range(0, len(ids), _BATCH):
        rows = session.execute(
            select(Order.id, Order.lead_unit_id, Order.street_id, Order.community_id).where(
                Order.id.in_(ids[start : start + _BATCH])
            )
        )
        units.update({oid: {u for u in found if u is not None} for oid, *found in rows})
    due = utcnow()  # due now even when the recomputation is back-dated
    messages: list[dict[str, Any]] = []
    for event in events:
        order_id = int(event["order_id"])
        payload = deadline_payload(event)
        messages += [
            {
                "topic": Topic.DEADLINE,
                "order_id": order_id,
                "subscription_id": sub_id,
                "payload": payload,
                "created_at": event["at"],
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": due,
            }
            for sub_id, unit_id in subs
            if unit_id is None or unit_id in units.get(order_id, ())
        ]
    for start in range(0, len(messages), _BATCH):
        session.execute(insert(OutboxMessage), messages[start : start + _BATCH])
    return len(messages)


def deadline_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``event`` block of a ``deadline`` message: who moved the deadlines, why, and what moved (from → to)."""
    at = event.get("at")
    detail = dict(event.get("payload") or {})
    return {
        "action": event["action"],
        "from_state": event.get("from_state"),
        "to_state": event.get("to_state"),
        "actor": event.get("actor_name"),
        "unit_id": event.get("unit_id"),
        "at": at.isoformat() if isinstance(at, datetime) else at,
        "reason": event.get("reason"),
        **detail,  # cause ("calendar" with days, or "sla_rule" with rule), from, to
    }


def enqueue_for_orders(
    session: Session, *, condition: Any, topic: Topic, payload: dict[str, Any], now: datetime
) -> int:
    """Set-based enqueue for every order matching ``condition`` (the SLA sweep); one INSERT … SELECT.

    Run it before the UPDATE that changes the rows, since ``condition`` usually stops matching afterwards.
    """
    unit_match = or_(
        Subscription.unit_id.is_(None),
        Subscription.unit_id == Order.lead_unit_id,
        Subscription.unit_id == Order.street_id,
        Subscription.unit_id == Order.community_id,
    )
    rows = (
        select(
            literal(topic, type_=_OUTBOX.topic.type),
            Order.id,
            Subscription.id,
            literal(payload, type_=_OUTBOX.payload.type),
            literal(now, type_=_OUTBOX.created_at.type),
            literal(OutboxStatus.PENDING, type_=_OUTBOX.status.type),
            literal(0),
            literal(now, type_=_OUTBOX.next_attempt_at.type),
        )
        .select_from(Order)
        .join(Subscription, and_(_matching(topic), unit_match))
        .where(condition)
    )
    result = session.execute(
        insert(OutboxMessage).from_select(
            ["topic", "order_id", "subscription_id", "payload", "created_at", "status", "attempts", "next_attempt_at"],
            rows,
        )
    )
    return rowcount(result)


# ----------------------------------------------------------------------------------------- claim & deliver


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped, equal jitter."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimable(now: datetime) -> Any:
    return or_(
        and_(OutboxMessage.status.in_(_RETRYABLE), OutboxMessage.next_attempt_at <= now),
        # A lease that ran out: its worker died (or hung) mid-send.
        and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_until < now),
    )


def claim(
    session: Session,
    *,
    token: str,
    limit: int,
    lease_seconds: float,
    now: datetime | None = None,
    exclude: Iterable[int] = (),
) -> list[OutboxMessage]:
    """Take up to ``limit`` due messages for ``token`` (status sending, attempts + 1); the caller commits."""
    now = now or utcnow()
    query = (
        select(OutboxMessage.id)
        .where(_claimable(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    excluded = list(exclude)
    if excluded:
        query = query.where(OutboxMessage.id.notin_(excluded))
    if session.get_bind().dialect.name == "postgresql":
        # Concurrent workers skip each other's locked rows instead of queueing behind them.
        ids = list(session.scalars(query.with_for_update(skip_locked=True)))
        if not ids:
            return []
        chosen: Any = OutboxMessage.id.in_(ids)
    else:
        # One statement, so SQLite takes its write lock first: a second worker waits for it (busy_timeout)
        # instead of failing to upgrade a read snapshot that the first worker's commit made stale.
        chosen = OutboxMessage.id.in_(query)
    session.execute(
        update(OutboxMessage)
        .where(chosen, _claimable(now))
        .values(
            status=OutboxStatus.SENDING,
            claimed_by=token,
            claimed_until=now + timedelta(seconds=lease_seconds),
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.claimed_by == token, OutboxMessage.status == OutboxStatus.SENDING)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .execution_options(populate_existing=True)
        )
    )


def _iso(value: datetime | None) -> str | None:
    """An instant of the body as the API answers it (``timerange.answer_time``: UTC, ``Z``), so that a receiver
    comparing a webhook's ``due_at`` with what ``GET /api/v1/orders/{id}`` says compares like with like."""
    return answer_time(value) if value is not None else None


def _unit_ref(session: Session, unit_id: int | None) -> dict[str, Any] | None:
    if unit_id is None:
        return None
    unit = session.get(Unit, unit_id)
    return {"id": unit_id, "code": unit.code, "name": unit.name} if unit else {"id": unit_id}


def order_snapshot(session: Session, order_id: int | None) -> dict[str, Any] | None:
    """The order as receivers see it: numbers, state, units, deadlines, attachments; no personal data of the
    citizen — the title scrubbed and the address cut to its road or compound as the public sees them
    (:mod:`cityhub.masking`)."""
    order = session.get(Order, order_id) if order_id is not None else None
    if order is None:
        return None
    category = session.get(Category, order.category_id) if order.category_id else None
    return {
        "id": order.id,
        "number": order.number,
        "title": scrub_text(order.title, known=(order.citizen_name, order.citizen_phone)),
        "channel": order.channel.value,
        "appeal_type": order.appeal_type.value,
        "urgency": order.urgency.value,
        "state": order.state.value,
        "sla_status": order.sla_status.value,
        "category": category.path if category else None,
        "lead_unit": _unit_ref(session, order.lead_unit_id),
        "street": _unit_ref(session, order.street_id),
        "community": _unit_ref(session, order.community_id),
        "address": coarsen_address(order.address),
        "created_at": _iso(order.created_at),
        "dispatched_at": _iso(order.dispatched_at),
        "accept_due_at": _iso(order.accept_due_at),
        "warn_at": _iso(order.warn_at),
        "due_at": _iso(order.due_at),
        "overdue_at": _iso(order.overdue_at),
        "replied_at": _iso(order.replied_at),
        "satisfied": order.satisfied,
        # What the handling unit needs to see: a stored file's url is the API path, fetched with the receiver's
        # own credentials (a link given with the appeal is passed on as it is).
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size, "url": a.url}
            for a in order.attachments
        ],
    }


def render_body(session: Session, message: OutboxMessage) -> bytes:
    """The JSON document sent for ``message``: the event as of the change, the order as of now; every instant in
    the API's one form (the event's, stored with ``isoformat``, through ``timerange.answer_times``)."""
    document = {
        "id": str(message.id),
        "topic": message.topic.value,
        "created_at": _iso(message.created_at),
        "attempt": message.attempts,
        "event": answer_times(message.payload or {}),
        "order": order_snapshot(session, message.order_id),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()


@dataclass
class _Job:
    id: int
    attempts: int
    kind: str
    envelope: Envelope | None  # None: undeliverable (subscription removed)


def _prepare(session: Session, message: OutboxMessage) -> _Job:
    sub = message.subscription
    if sub is None or not sub.active:
        return _Job(message.id, message.attempts, "", None)
    envelope = Envelope(
        delivery_id=str(message.id),
        topic=message.topic.value,
        body=render_body(session, message),
        target=sub.target,
        secret=sub.secret,
    )
    return _Job(message.id, message.attempts, sub.kind, envelope)


def failed_at_of(message: OutboxMessage) -> datetime | None:
    """When the failed or dead ``message``'s delivery failed (None: failed before the time was kept, or dead-lettered
    without an attempt — its subscription removed): the end of its last attempt (``attempted_at``)."""
    return message.attempted_at if message.status in UNDELIVERED else None


def _finish(session: Session, *, message_id: int, token: str, values: dict[str, Any]) -> bool:
    """Write an attempt's outcome: the claim ends, and ``attempted_at`` says when — for a failure, when the delivery
    failed (:func:`failed_at_of`)."""
    # The token fences a worker whose lease ran out and whose row another worker has since taken.
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == token)
        .values(**values, claimed_by=None, claimed_until=None, attempted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def _attempt(job: _Job, settings: NotifySettings, rng: random.Random | None) -> dict[str, Any]:
    """Send one message (no database access here) and return the row's new values."""
    if job.envelope is None:
        return {"status": OutboxStatus.DEAD, "last_error": "subscription removed"}
    try:
        get_sender(job.kind).send(job.envelope, timeout=settings.timeout_seconds)
    except NotConfigured as exc:
        return {"status": OutboxStatus.DEAD, "last_error": exc.message}
    except Exception as exc:
        error = exc.message if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, DeliveryFailed):
            log.exception("sender %s raised unexpectedly for message %s", job.kind, job.id)
        if job.attempts >= settings.max_attempts:
            return {"status": OutboxStatus.DEAD, "last_error": error[:2000]}
        delay = backoff_delay(
            job.attempts, base=settings.backoff_base_seconds, cap=settings.backoff_cap_seconds, rng=rng
        )
        return {
            "status": OutboxStatus.FAILED,
            "last_error": error[:2000],
            "next_attempt_at": utcnow() + timedelta(seconds=delay),
        }
    return {"status": OutboxStatus.SENT, "sent_at": utcnow(), "last_error": None}


def deliver_due(
    session: Session,
    *,
    settings: NotifySettings | None = None,
    worker: str | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Deliver every due message, batch by batch; returns counts by outcome.

    Commits ``session`` after each claim and after each result, so that no transaction stays open while a
    receiver is being waited for and a crash loses at most the in-flight batch's leases (re-claimed later).
    """
    settings = settings or get_notify_settings()
    worker = worker or worker_name()
    started = time.monotonic()
    counts: Counter[str] = Counter()
    tried: set[int] = set()  # a message that fails with no backoff is not hammered again in the same run
    while time.monotonic() - started < settings.max_run_seconds:
        token = f"{worker}:{uuid.uuid4().hex[:8]}"
        messages = claim(
            session, token=token, limit=settings.batch_size, lease_seconds=settings.lease_seconds, exclude=tried
        )
        jobs = [_prepare(session, m) for m in messages]
        session.commit()
        if not jobs:
            break
        for job in jobs:
            tried.add(job.id)
            values = _attempt(job, settings, rng)
            if _finish(session, message_id=job.id, token=token, values=values):
                counts[values["status"].value] += 1
            else:
                counts["lost_lease"] += 1
            session.commit()
        if len(jobs) < settings.batch_size:
            break
    return {"claimed": len(tried), **dict(counts)}


# --------------------------------------------------------------------------------------------------- admin


def messages_query(
    *, statuses: Iterable[OutboxStatus] = (), subscription_id: int | None = None, active_only: bool = False
) -> Any:
    """The outbox's messages, newest first, optionally of some statuses, of one subscription, of active ones only."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    wanted = list(statuses)
    if wanted:
        query = query.where(OutboxMessage.status.in_(wanted))
    if subscription_id is not None:
        query = query.where(OutboxMessage.subscription_id == subscription_id)
    if active_only:
        query = query.where(_of_active_subscriptions())
    return query


def _of_active_subscriptions() -> ColumnElement[bool]:
    """The messages of subscriptions in force: not those of a removed one, dead-lettered on purpose and never
    retried (:func:`remove_subscription`, :func:`retry`)."""
    return OutboxMessage.subscription_id.in_(select(Subscription.id).where(Subscription.active.is_(True)))


def undelivered_counts(session: Session) -> dict[str, int]:
    """Undelivered messages of the subscriptions in force by status (pending, sending, failed, dead; 0 for none), as
    the 推送订阅 page lists them: one grouped count over the ``ix_notify_outbox_status_next`` entries of those
    statuses — delivered messages are not walked. What ``/metrics`` reports. A removed subscription's messages are
    left out: dead on purpose, not to be retried, they would otherwise raise an alert on dead messages that nothing
    can repair."""
    undelivered = [s for s in OutboxStatus if s is not OutboxStatus.SENT]
    counts = {str(s.value): 0 for s in undelivered}
    query = (
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.status.in_(undelivered), _of_active_subscriptions())
        .group_by(OutboxMessage.status)
    )
    for status, count in session.execute(query):
        counts[str(status.value)] = count
    return counts


def list_messages(session: Session, *, status: OutboxStatus | None = None, limit: int = 50) -> Sequence[OutboxMessage]:
    """Newest messages first, optionally of one status."""
    return session.scalars(messages_query(statuses=[status] if status else []).limit(limit)).all()


def retry(session: Session, *, message_id: int, actor: Any = None) -> OutboxMessage:
    """Revive a dead (or waiting failed) message: due now, with a full budget of attempts. Logged in the configuration
    log as ``actor``'s, under the message's subscription."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"outbox message {message_id} not found")
    if message.status not in (OutboxStatus.DEAD, OutboxStatus.FAILED):
        raise Conflict(
            f"message {message_id} is {message.status.value}; only dead or failed messages can be retried",
            details={"status": message.status.value},
        )
    if not message.subscription.active:
        raise Conflict(
            f"the subscription of message {message_id} was removed",
            details={"status": message.status.value, "subscription_removed": True},
        )
    auditlog.record(
        session,
        actor=actor,
        area=LOG_AREA,
        target=str(message.subscription_id),
        action="retry",
        before={"status": message.status.value},
        after={"message": message.id, "status": OutboxStatus.PENDING.value},
    )
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.claimed_by = None
    message.claimed_until = None
    session.flush()
    return message
