"""Staff notices (消息提醒): each staff member's inbox of the events that need them — an order sent, passed or
assigned to their unit, urged, sent back for rework, an extension decided; a returned order back at the dispatchers;
a sensor alarm in their unit's area; their own assessment exemption request decided; for a leader, the answer and
the closing of an order they assigned (领导交办).

The one place notices are written (:func:`notify`, called by :func:`on_order_event`, :func:`on_alarm` and
:func:`on_exemption_decided`), in the transaction of the event that causes them, beside the webhook outbox
(:mod:`cityhub.notify.service`): a rollback leaves none. Recipients are chosen by role permission and unit, never
everyone: the unit's staff whose role may take the step the event asks of them (签收 for an order sent to the unit,
答复 for one urged …; an administrator holds every permission but is no unit's staff, and is left out), the
dispatchers whose data scope holds a returned order, the staff of a sensor's responsible unit who may see alarms, the
person who asked for an exemption, the leader who assigned an order (领导交办) when it is answered and when it is
closed — and, when the 限期办结 they gave passes with the order open, the unit and that leader
(:func:`on_assign_overdue`, from the SLA sweep). The actor is never told of their own action. One notice per reader
and event, written by one ``INSERT … SELECT`` whatever the number of readers, so an automatic dispatch costs one
statement more; a 批量催办 of several orders of one unit is one notice per reader (:func:`on_bulk_urge`).

A notice stores its kind, the order or alarm it is about and the parameters of its text; the text is rendered in
the reader's language when read (``notice.kind.<kind>`` of the locale files) with the order's number and title as
the reader may read it (:func:`cityhub.auth.scope.shown_text`). Read notices are deleted after
``CITYHUB_NOTIFY_NOTICE_KEEP_READ_DAYS`` by the ``notice-prune`` job (:func:`prune`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Insert, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from cityhub.auth import permissions
from cityhub.db import MAX_BIG_ID, rowcount, utcnow
from cityhub.errors import NotFound
from cityhub.notify.config import get_notify_settings
from cityhub.notify.models import NoticeKind, UserNotice
from cityhub.org.models import Role, Unit, User
from cityhub.workorders.lifecycle import Action, Outcome, State

if TYPE_CHECKING:
    from cityhub.auth.principal import Principal
    from cityhub.workorders.models import Order, OrderEvent

_NOTICE = UserNotice.__table__.c
# The longest reason a notice quotes (the order's trail keeps it whole).
REASON_CHARS = 120
# Roles that are no unit's staff, whatever their permissions: an administrator holds them all.
_NOT_STAFF = frozenset({Role.ADMIN, Role.CITIZEN})


def staff_roles(permission: str) -> list[Role]:
    """The roles of a unit's staff that hold ``permission`` (administrators and citizens aside)."""
    return [r for r in permissions.roles_with(permission) if r not in _NOT_STAFF]


def shortened(text: str | None, limit: int = REASON_CHARS) -> str | None:
    """``text`` stripped, cut to ``limit`` characters with an ellipsis; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notify(
    session: Session,
    *,
    kind: NoticeKind,
    recipients: ColumnElement[bool],
    actor_id: int | None,
    order_id: int | None = None,
    alarm_id: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> int:
    """Write one notice of ``kind`` for every active staff member ``recipients`` (a condition over ``User``) selects,
    but ``actor_id``, in one ``INSERT … SELECT``; returns how many. Its time is when it is written — the event's own
    may be back-dated (an import's, the demo's) — so the newest first is the order of ids."""
    now = utcnow()
    wanted = select(
        User.id,
        literal(kind.value, type_=_NOTICE.kind.type),
        literal(order_id, type_=_NOTICE.order_id.type),
        literal(alarm_id, type_=_NOTICE.alarm_id.type),
        literal(dict(params or {}), type_=_NOTICE.params.type),
        literal(now, type_=_NOTICE.created_at.type),
    ).where(recipients, User.active.is_(True))
    if actor_id is not None:
        wanted = wanted.where(User.id != actor_id)
    return rowcount(session.execute(insert(UserNotice).from_select(_COLUMNS, wanted)))


def unit_staff(units: Iterable[int | None], permission: str) -> ColumnElement[bool]:
    """The staff of ``units`` whose role holds ``permission``."""
    chosen = sorted({u for u in units if u is not None})
    return User.unit_id.in_(chosen) & User.role.in_(staff_roles(permission))


_COLUMNS = ["user_id", "kind", "order_id", "alarm_id", "params", "created_at"]


@cache
def _to_unit_staff(permission: str) -> Insert:
    """The ``INSERT … SELECT`` of :func:`notify_unit`, built once per permission and its values bound at each call:
    every automatic dispatch runs it, and building the statement cost as much as running it."""
    wanted = select(
        User.id,
        bindparam("kind", type_=_NOTICE.kind.type),
        bindparam("order_id", type_=_NOTICE.order_id.type),
        bindparam("alarm_id", type_=_NOTICE.alarm_id.type),
        bindparam("params", type_=_NOTICE.params.type),
        bindparam("now", type_=_NOTICE.created_at.type),
    ).where(
        User.unit_id == bindparam("unit_id"),
        User.role.in_(staff_roles(permission)),
        User.active.is_(True),
        User.id != bindparam("actor_id"),
    )
    return insert(UserNotice).from_select(_COLUMNS, wanted)


def notify_unit(
    session: Session,
    *,
    kind: NoticeKind,
    unit_id: int | None,
    permission: str,
    actor_id: int | None,
    order_id: int | None = None,
    alarm_id: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> int:
    """:func:`notify` for the staff of one unit whose role holds ``permission`` (``unit_staff``), through a prebuilt
    statement; none without a unit."""
    if unit_id is None:
        return 0
    values = {
        "kind": kind.value,
        "order_id": order_id,
        "alarm_id": alarm_id,
        "params": dict(params or {}),
        "now": utcnow(),
        "unit_id": unit_id,
        "actor_id": actor_id or 0,  # ids start at 1: nobody is left out
    }
    session.flush()  # the order or alarm it names first (as an ORM statement would), then the plain Core statement
    return rowcount(session.connection().execute(_to_unit_staff(permission), values))


# ------------------------------------------------------------------------------------------------ order events

# The steps that hand the order to a unit, each the kind its staff are told it by; the unit must sign for it (签收).
_HANDED = {
    Action.DISPATCH: NoticeKind.DISPATCHED,
    Action.TRANSFER: NoticeKind.TRANSFERRED,
    Action.REOPEN: NoticeKind.REOPENED,
    Action.ASSIGN: NoticeKind.ASSIGNED,
}
# The steps the lead unit is told of, and the step its reader may take on it (whoever may take it is told).
_TO_LEAD = {
    Action.URGE: (NoticeKind.URGED, permissions.act(Action.REPLY)),
    Action.APPROVE_EXTENSION: (NoticeKind.EXTENSION_APPROVED, permissions.act(Action.REQUEST_EXTENSION)),
    Action.REJECT_EXTENSION: (NoticeKind.EXTENSION_REJECTED, permissions.act(Action.REQUEST_EXTENSION)),
    Action.REJECT_REPLY: (NoticeKind.REPLY_REJECTED, permissions.act(Action.REPLY)),
}


def _order_params(event: OrderEvent, **more: Any) -> dict[str, Any]:
    params: dict[str, Any] = {k: v for k, v in more.items() if v is not None}
    if event.actor_id is not None:  # a person, not the system or the automatic dispatcher
        params["actor"] = event.actor_name
    reason = shortened(event.reason)
    if reason:
        params["reason"] = reason
    return params


def on_order_event(session: Session, *, order: Order, outcome: Outcome, event: OrderEvent) -> int:
    """The notices of one life-cycle action, in the caller's transaction (after the order's changes are flushed);
    returns how many were written."""
    action = outcome.action
    kind = _HANDED.get(action)
    if kind is not None:
        if action == Action.ASSIGN or outcome.to_state == State.DISPATCHED:
            return notify_unit(
                session,
                kind=kind,
                unit_id=order.lead_unit_id,
                permission=permissions.act(Action.ACCEPT),
                actor_id=event.actor_id,
                order_id=order.id,
                params=_order_params(event),
            )
        return 0
    if action == Action.ADD_ASSIST:
        return notify_unit(
            session,
            kind=NoticeKind.ASSIST_REQUESTED,
            unit_id=outcome.payload.get("unit_id"),
            permission=permissions.act(Action.ASSIST_ACCEPT),
            actor_id=event.actor_id,
            order_id=order.id,
            params=_order_params(event),
        )
    if action in _TO_LEAD:
        kind, permission = _TO_LEAD[action]
        days = outcome.payload.get("days") if action == Action.APPROVE_EXTENSION else None
        return notify_unit(
            session,
            kind=kind,
            unit_id=order.lead_unit_id,
            permission=permission,
            actor_id=event.actor_id,
            order_id=order.id,
            params=_order_params(event, days=days),
        )
    if action in _TO_ASSIGNER and order.leader_assigned:
        return _tell_assigners(session, order=order, kind=_TO_ASSIGNER[action], event=event)
    if action in _TO_CENTRE:
        kind, permission = _TO_CENTRE[action]
        staff = staff_holding(session, order, permission, unit_id=event.unit_id)
        if not staff:
            return 0
        unit = session.scalar(select(Unit.name).where(Unit.id == event.unit_id)) if event.unit_id else None
        days = outcome.payload.get("days") if action == Action.REQUEST_EXTENSION else None
        return notify(
            session,
            kind=kind,
            recipients=User.id.in_(sorted(staff)),
            actor_id=event.actor_id,
            order_id=order.id,
            params=_order_params(event, unit=unit, days=days),
        )
    return 0


# The steps a leader who assigned the order (领导交办, 批示) is told of: their 交办 answered, then closed — or ended
# otherwise: cancelled (作废) or merged into another order (合并), which they would else find only by looking.
_TO_ASSIGNER = {
    Action.REPLY: NoticeKind.ASSIGNED_REPLIED,
    Action.CLOSE: NoticeKind.ASSIGNED_CLOSED,
    Action.CANCEL: NoticeKind.ASSIGNED_CANCELLED,
    Action.MERGE: NoticeKind.ASSIGNED_MERGED,
}


def on_assign_overdue(session: Session, *, order: Order, event: OrderEvent) -> int:
    """The notices of the SLA sweep's ``assign_overdue`` mark: the 限期办结 a leader gave with 交办 passed with the
    order open — the unit leading it (whoever may reply) and the leaders who assigned it are told, with the day."""
    day = (event.payload or {}).get("deadline")
    told = notify_unit(
        session,
        kind=NoticeKind.ASSIGN_OVERDUE,
        unit_id=order.lead_unit_id,
        permission=permissions.act(Action.REPLY),
        actor_id=None,
        order_id=order.id,
        params={"day": day},
    )
    return told + _tell_assigners(session, order=order, kind=NoticeKind.ASSIGNED_OVERDUE, event=event, day=day)


def _tell_assigners(session: Session, *, order: Order, kind: NoticeKind, event: OrderEvent, day: Any = None) -> int:
    """Tell whoever assigned ``order`` (its ``assign`` events' actors whose role may assign: a leader, not an
    administrator) that it was answered, closed, cancelled or merged — the outcome of their 交办 without watching
    领导交办 for it — in one ``INSERT … SELECT``; the replying unit named for a reply, the master for a merge."""
    from cityhub.workorders.models import Order as OrderRow
    from cityhub.workorders.models import OrderEvent

    assigners = select(OrderEvent.actor_id).where(
        OrderEvent.order_id == order.id, OrderEvent.action == Action.ASSIGN.value, OrderEvent.actor_id.is_not(None)
    )
    unit = master = None
    if kind == NoticeKind.ASSIGNED_REPLIED and event.unit_id is not None:
        unit = session.scalar(select(Unit.name).where(Unit.id == event.unit_id))
    if kind == NoticeKind.ASSIGNED_MERGED and order.master_order_id is not None:
        master = session.scalar(select(OrderRow.number).where(OrderRow.id == order.master_order_id))
    return notify(
        session,
        kind=kind,
        recipients=User.id.in_(assigners) & User.role.in_(staff_roles(permissions.act(Action.ASSIGN))),
        actor_id=event.actor_id,
        order_id=order.id,
        params=_order_params(event, unit=unit, master=master, day=day),
    )


def on_bulk_urge(
    session: Session, *, urged: Iterable[tuple[int, int | None]], actor_id: int | None, actor: str, reason: str | None
) -> int:
    """The notices of one 批量催办 (``urged``: each order urged and the unit leading it), written by its caller
    (``workorders.service.act_each``) instead of one per order: each unit's staff who may reply are told once —
    of its one order as a single 催办 tells them, or of its several orders in one notice (``urged_bulk``, with how
    many and their ids, leading to the unit's urged orders) — not thirty times for thirty orders."""
    by_unit: dict[int, list[int]] = {}
    for order_id, unit_id in urged:
        if unit_id is not None:
            by_unit.setdefault(unit_id, []).append(order_id)
    kind, permission = _TO_LEAD[Action.URGE]
    params: dict[str, Any] = {"actor": actor} if actor_id is not None else {}
    if shortened(reason):
        params["reason"] = shortened(reason)
    written = 0
    for unit_id, ids in by_unit.items():
        one = len(ids) == 1
        written += notify_unit(
            session,
            kind=kind if one else NoticeKind.URGED_BULK,
            unit_id=unit_id,
            permission=permission,
            actor_id=actor_id,
            order_id=ids[0] if one else None,
            params=params if one else {**params, "count": len(ids), "order_ids": ids},
        )
    return written


def on_bulk_dispatch(
    session: Session, *, dispatched: Iterable[tuple[int, int | None, str | None]], actor_id: int | None, actor: str
) -> int:
    """The notices of one 批量派单 (``dispatched``: each order dispatched, the unit it went to and the reason recorded),
    written by its caller (``dispatch.service.dispatch_picked``) instead of one per order: each unit's staff who may
    sign for them are told once — of its one order as a single 派单 tells them (with its reason), or of its several
    orders in one notice (``dispatched_bulk``, with how many and their ids, leading to the unit's orders to sign
    for) — not seventeen 已派至本单位 for seventeen orders."""
    by_unit: dict[int, list[tuple[int, str | None]]] = {}
    for order_id, unit_id, reason in dispatched:
        if unit_id is not None:
            by_unit.setdefault(unit_id, []).append((order_id, reason))
    params: dict[str, Any] = {"actor": actor} if actor_id is not None else {}
    written = 0
    for unit_id, items in by_unit.items():
        one = len(items) == 1
        said = shortened(items[0][1]) if one else None
        written += notify_unit(
            session,
            kind=_HANDED[Action.DISPATCH] if one else NoticeKind.DISPATCHED_BULK,
            unit_id=unit_id,
            permission=permissions.act(Action.ACCEPT),
            actor_id=actor_id,
            order_id=items[0][0] if one else None,
            params=({**params, "reason": said} if said else params)
            if one
            else {**params, "count": len(items), "order_ids": [i for i, _ in items]},
        )
    return written


# The steps that ask the centre for a decision, and who decides: a returned order (退单) is routed again by the
# dispatchers, an extension request (申请延期) decided by the supervisors — those whose data scope holds the order.
_TO_CENTRE = {
    Action.RETURN: (NoticeKind.RETURNED, permissions.act(Action.DISPATCH)),
    Action.REQUEST_EXTENSION: (NoticeKind.EXTENSION_REQUESTED, permissions.act(Action.APPROVE_EXTENSION)),
}


def staff_holding(session: Session, order: Order, permission: str, *, unit_id: int | None) -> set[int]:
    """The staff whose role holds ``permission`` and whose data scope holds ``order`` — by its street or community,
    by its lead or assisting units, or by ``unit_id``, the unit that acted (a street's dispatchers for an order their
    community returned, which no unit leads any more); the district's (and its hotline centre's) for every order."""
    from cityhub.auth.scope import unit_scope

    rows = session.execute(
        select(User.id, User.unit_id, Unit.tier)
        .join(Unit, Unit.id == User.unit_id)
        .where(User.role.in_(staff_roles(permission)), User.active.is_(True))
    ).all()
    scopes: dict[int, Any] = {}
    chosen: set[int] = set()
    held = {u for u in (unit_id, order.lead_unit_id, *(a.unit_id for a in order.assists)) if u is not None}
    for user_id, unit_id, tier in rows:
        if unit_id is None:  # pragma: no cover - joined to its unit
            continue
        if unit_id not in scopes:
            scopes[unit_id] = unit_scope(session, unit_id, tier)
        if scopes[unit_id].covers(street_id=order.street_id, community_id=order.community_id, units=held):
            chosen.add(user_id)
    return chosen


# ------------------------------------------------------------------------------------------------------ alarms

_ALARM_KINDS = {"alarm_raised": NoticeKind.ALARM_RAISED, "alarm_escalated": NoticeKind.ALARM_ESCALATED}


def on_alarm(session: Session, *, alarm: Any, sensor: Any, action: str) -> int:
    """The notices of a sensor alarm raised or escalated (``action``, as the outbox's payload says it): the staff who
    may see alarms of the sensor's responsible unit — else of its community, else of its street — are its
    responsible people. A reopened alarm (the same storm crossing its limit again) tells no one again."""
    kind = _ALARM_KINDS.get(action)
    if kind is None:
        return 0
    unit = next((u for u in (sensor.unit_id, sensor.community_id, sensor.street_id) if u is not None), None)
    if unit is None:
        return 0
    params = {"sensor": sensor.name, "code": sensor.code, "severity": alarm.severity, "metric": alarm.metric}
    recipients = unit_staff([unit], permissions.ALARMS_READ)
    if kind == NoticeKind.ALARM_RAISED and alarm.order_id is not None:
        # The order the alarm opened was sent to the unit a moment ago: its handlers have that notice already.
        told = select(UserNotice.id).where(
            UserNotice.user_id == User.id, UserNotice.order_id == alarm.order_id, UserNotice.read_at.is_(None)
        )
        recipients = recipients & ~told.exists()
    return notify(
        session,
        kind=kind,
        recipients=recipients,
        actor_id=None,
        order_id=alarm.order_id,
        alarm_id=alarm.id,
        params=params,
    )


# ------------------------------------------------------------------------------------------- exemption requests


def on_exemption_decided(
    session: Session,
    *,
    order_id: int,
    requested_by_id: int | None,
    approved: bool,
    actor: Any,
    reason: str | None,
    revoked: bool = False,
) -> int:
    """The notice of an assessment exemption request decided — or, ``revoked``, its approval taken back (撤销核减)
    — to the person who asked for it."""
    if requested_by_id is None:
        return 0
    params: dict[str, Any] = {"actor": actor.name} if actor.user_id is not None else {}
    if shortened(reason):
        params["reason"] = shortened(reason)
    decided = NoticeKind.EXEMPTION_APPROVED if approved else NoticeKind.EXEMPTION_REJECTED
    return notify(
        session,
        kind=NoticeKind.EXEMPTION_REVOKED if revoked else decided,
        recipients=User.id == requested_by_id,
        actor_id=actor.user_id,
        order_id=order_id,
        params=params,
    )


# ------------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Notice:
    """A notice as its reader reads it: the row, and the order's number and title as they may read them."""

    id: int
    kind: str
    params: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    order_id: int | None
    order_number: str | None
    order_title: str | None
    alarm_id: int | None
    # False: the reader may no longer open its order (moved to another unit since: 转派, 退单, 重新派单)
    viewable: bool = True

    @property
    def link(self) -> str | None:
        """The page the notice leads to: the order's, else the unit's urged orders (批量催办) or orders to sign for
        (批量派单), else the alarm's sensor."""
        if self.order_id is not None:
            return f"/orders/{self.order_id}"
        if self.kind == NoticeKind.URGED_BULK:
            return URGED_LIST
        if self.kind == NoticeKind.DISPATCHED_BULK:
            return TO_ACCEPT_LIST
        code = self.params.get("code")
        return f"/monitoring/sensors/{code}" if code else None


# Where a 批量催办's notice leads: the open orders the reader's unit leads that were urged, the nearest limit first.
URGED_LIST = "/orders?state=open&led=1&urged=1&sort=due"
# Where a 批量派单's notice leads: the orders the reader's unit is to sign for (待签收), the nearest limit first.
TO_ACCEPT_LIST = "/orders?to_accept=1&sort=due"


def _mine(principal: Principal | int) -> ColumnElement[bool]:
    user_id = principal if isinstance(principal, int) else principal.user_id
    return UserNotice.user_id == user_id


def list_notices(
    session: Session,
    principal: Principal,
    *,
    unread: bool | None = None,
    limit: int = 50,
    offset: int = 0,
    only_id: int | None = None,
) -> tuple[list[Notice], bool]:
    """``principal``'s notices, newest first (``unread``: only those not read, or only those read; ``only_id``: that
    one alone); and whether more follow. Each says whether its reader may still open its order (``viewable``: an
    order moved to another unit since is out of their scope)."""
    from cityhub.auth.scope import reading_clause, shown_text
    from cityhub.workorders.models import Order

    query = select(UserNotice).where(_mine(principal))
    if only_id is not None:
        query = query.where(UserNotice.id == only_id)
    if unread is True:
        query = query.where(UserNotice.read_at.is_(None))
    elif unread is False:
        query = query.where(UserNotice.read_at.is_not(None))
    rows = list(session.scalars(query.order_by(UserNotice.id.desc()).limit(limit + 1).offset(offset)))
    more = len(rows) > limit
    rows = rows[:limit]
    wanted = {r.order_id for r in rows if r.order_id is not None}
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(sorted(wanted))))} if wanted else {}
    reading = reading_clause(session, principal) if orders else None
    readable = (
        set(orders)
        if reading is None
        else set(session.scalars(select(Order.id).where(Order.id.in_(sorted(orders)), reading)))
    )
    notices = []
    for r in rows:
        order = orders.get(r.order_id) if r.order_id is not None else None
        notices.append(
            Notice(
                id=r.id,
                kind=r.kind,
                params=dict(r.params or {}),
                created_at=r.created_at,
                read_at=r.read_at,
                order_id=r.order_id,
                order_number=order.number if order else None,
                order_title=shown_text(principal, order, order.title) if order else None,
                alarm_id=r.alarm_id,
                viewable=order is None or order.id in readable,
            )
        )
    return notices, more


def unread_count(session: Session, principal: Principal | int, *, cap: int | None = None) -> int:
    """How many of the reader's notices are unread, counted up to ``cap`` rows (the bell's 99+) through the partial
    index of unread notices."""
    query: Any = select(UserNotice.id).where(_mine(principal), UserNotice.read_at.is_(None))
    if cap is not None:
        query = query.limit(cap)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _own(session: Session, principal: Principal, notice_id: int) -> UserNotice:
    row = session.get(UserNotice, notice_id) if 0 < notice_id <= MAX_BIG_ID else None
    if row is None or row.user_id != principal.user_id:  # another's notice is not found, as a missing one
        raise NotFound(f"notice {notice_id} not found")
    return row


def mark_read(session: Session, principal: Principal, notice_id: int, *, now: datetime | None = None) -> UserNotice:
    """Mark one of the reader's notices read (one read already keeps its time); NotFound for another's."""
    row = _own(session, principal, notice_id)
    if row.read_at is None:
        row.read_at = now or utcnow()
        session.flush()
    return row


def mark_all_read(session: Session, principal: Principal, *, now: datetime | None = None) -> int:
    """Mark every unread notice of the reader read (全部标为已读); returns how many."""
    result = session.execute(
        update(UserNotice)
        .where(_mine(principal), UserNotice.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def prune(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Delete notices read more than ``CITYHUB_NOTIFY_NOTICE_KEEP_READ_DAYS`` ago (0: none); unread ones stay."""
    days = get_notify_settings().notice_keep_read_days
    if days == 0:
        return {"deleted": 0, "keep_read_days": 0}
    before = (now or utcnow()) - timedelta(days=days)
    result = session.execute(delete(UserNotice).where(UserNotice.read_at.is_not(None), UserNotice.read_at < before))
    return {"deleted": rowcount(result), "keep_read_days": days}
