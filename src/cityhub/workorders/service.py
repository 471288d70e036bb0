"""Work-order service: create orders and move them through the life cycle, with SLA and audit trail.

Every change of an order goes through :func:`act`, which asks the pure transition table
(:mod:`cityhub.workorders.lifecycle`) for the outcome, applies it, keeps the time limit in step and writes one
audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    false,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from cityhub.auth import permissions
from cityhub.auth.permissions import UNIT_STAFF_ROLES
from cityhub.config import get_settings
from cityhub.db import MAX_BIG_ID, MAX_ID, utcnow
from cityhub.errors import CityhubError, Conflict, NotFound, PermissionDenied, ValidationFailed, check_length
from cityhub.nlp.text import nfkc
from cityhub.notify import notices
from cityhub.notify import service as notify_service
from cityhub.org.models import Role, UnitTier, User
from cityhub.org.places import Place, PlaceSource, locate_appeal, place_of_unit
from cityhub.org.service import unit_directory, unit_ids_by_code
from cityhub.workorders import calendar as workcal
from cityhub.workorders import feeds, numbering, search, sla
from cityhub.workorders.lifecycle import (
    ASSIGN_DEADLINE,
    BACK_REASON_NEEDED,
    BACK_TO_RETURNER,
    HANDLING_STATES,
    LEAD_STEPS,
    OPEN_STATES,
    ROUTING_STEPS,
    SUGGEST_UNIT,
    TERMINAL_STATES,
    Action,
    AssistStatus,
    OrderView,
    Outcome,
    SlaEffect,
    State,
    apply,
    deadline_day,
    deadline_passed,
)
from cityhub.workorders.models import (
    DISPATCHED_SQL,
    ENTERPRISE_NEED,
    ESCALATED_SQL,
    EVER_OVERDUE_SQL,
    MACHINE_CHANNELS,
    MERGED_IN,
    OPEN_SQL,
    OVERDUE_NOW_SQL,
    AppealType,
    Attachment,
    Category,
    Order,
    OrderAssist,
    OrderEvent,
    SlaStatus,
    Urgency,
)
from cityhub.workorders.schemas import (
    REASON_MAX_CHARS,
    TEXT_MAX_CHARS,
    TITLE_MAX_CHARS,
    OrderCreate,
    OrderFilter,
    OrderSort,
)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user, or the system (sweeps, imports, rules)."""

    name: str
    user_id: int | None = None
    unit_id: int | None = None
    role: str | None = None

    @classmethod
    def of_user(cls, user: User) -> Actor:
        """A user acting without a request (the demo's seed, a test), recorded as their signed-in ``Principal.actor``
        records them: name, id, unit and role."""
        return cls(name=user.full_name, user_id=user.id, unit_id=user.unit_id, role=user.role.value)


SYSTEM = Actor(name="system")
# The automatic dispatcher's name (``dispatch.service.AUTO_ACTOR``): only its dispatches are marked ``auto``.
AUTO_DISPATCHER = "auto-dispatch"

# Parameters that name a unit: they are checked to exist before the table is consulted.
_UNIT_PARAMS = ("unit_id", SUGGEST_UNIT)


def find_existing(session: Session, *, data: OrderCreate) -> Order | None:
    """The order already received with the same (channel, external_id), if any."""
    if not data.external_id:
        return None
    # Every intake with an external id asks, and almost always finds nothing: the question is a prepared Core
    # statement for the id alone (an ORM query for the whole row cost twice the CPU); the rare hit is then loaded.
    found = (
        session.connection()
        .execute(_existing_id(), {"channel": data.channel, "external_id": data.external_id})
        .scalar_one_or_none()
    )
    return None if found is None else session.get(Order, found)


@lru_cache(maxsize=1)
def _existing_id() -> Any:
    return select(Order.id).where(Order.channel == bindparam("channel"), Order.external_id == bindparam("external_id"))


def appeal_place(session: Session, data: OrderCreate) -> Place | None:
    """Where intake will place a new appeal: the units it names by code (a community brings its street), else its
    coordinates, address or text among the database's units (:func:`cityhub.org.places.locate_appeal`). None when
    its codes name no known unit (:func:`create_order` refuses those) or the database has no divisions yet (the
    ``place-orders`` job places it once they are imported)."""
    if data.street_code or data.community_code:
        ids = unit_ids_by_code(session)
        street_id, community_id = ids.get(data.street_code or ""), ids.get(data.community_code or "")
        if community_id is not None:
            its_street = unit_directory(session)[community_id].parent_id
            if street_id is not None and street_id != its_street:
                raise ValidationFailed(
                    f"community_code '{data.community_code}' is not in street_code '{data.street_code}'",
                    details={"field": "community_code"},
                )
            street_id = its_street
        if street_id is None and community_id is None:
            return None
        return Place(street_id, community_id, PlaceSource.ORDER.value)
    return locate_appeal(session, data)


def create_order(
    session: Session,
    *,
    data: OrderCreate,
    actor: Actor = SYSTEM,
    known_new: bool = False,
    place: Place | None = None,
) -> tuple[Order, bool]:
    """Create an order from any channel; returns (order, created). A known (channel, external_id) is not re-created.

    ``known_new``: the caller has just looked the (channel, external_id) up in this transaction and found nothing,
    so it is not looked up again (the unique constraint still stands behind it).

    The order is placed as it is received: the units its codes name, else what :func:`appeal_place` finds (or
    ``place``, when the caller has already asked it), recorded with its source (``place_source``) and in the
    creation's audit event.

    Everything that only reads (idempotency, category, units) comes first; the first write, the number, comes
    last, so the transaction holds the write lock (SQLite) or the day's counter row (PostgreSQL) only for the
    inserts.
    """
    existing = None if known_new else find_existing(session, data=data)
    if existing is not None:
        return existing, False

    created_at = data.created_at or utcnow()
    category_id = data.category_id
    if category_id is not None and session.get(Category, category_id) is None:
        raise ValidationFailed(f"unknown category_id {category_id}", details={"field": "category_id"})
    if category_id is None and data.category:
        from cityhub.workorders.categories import find_category

        found = find_category(session, name_or_path=data.category)
        if found is None:
            raise ValidationFailed(f"unknown category '{data.category}'", details={"field": "category"})
        category_id = found.id
    _check_unit_code(session, data.street_code, "street_code")  # unknown codes are refused, not ignored
    _check_unit_code(session, data.community_code, "community_code")
    if data.citizen_user_id is not None:
        from cityhub.org.models import User

        if session.get(User, data.citizen_user_id) is None:
            raise ValidationFailed(
                f"unknown citizen_user_id {data.citizen_user_id}", details={"field": "citizen_user_id"}
            )
    where = place if place is not None else appeal_place(session, data)
    street_id, community_id, place_source = None, None, None
    if where is not None:
        street_id, community_id = where.street_id, where.community_id
        place_source = where.source or PlaceSource.NONE

    [number] = numbering.allocate(session, day=numbering.local_day(created_at), count=1)
    order = Order(
        number=number,
        # "" is no id: the idempotency check above skips it, so storing it would clash on the second one.
        external_id=data.external_id or None,
        channel=data.channel,
        appeal_type=data.appeal_type,
        title=data.title,
        content=data.content,
        citizen_name=data.citizen_name,
        citizen_phone=data.citizen_phone,
        citizen_user_id=data.citizen_user_id,
        reported_by_id=actor.user_id,
        address=data.address,
        lat=data.lat,
        lng=data.lng,
        street_id=street_id,
        community_id=community_id,
        place_source=place_source,
        category_id=category_id,
        urgency=data.urgency,
        state=State.RECEIVED,
        created_at=created_at,
        updated_at=created_at,
        attributes=data.attributes,
        sla_status=SlaStatus.NONE,
    )
    order.attachments = [Attachment(**a.model_dump()) for a in data.attachments]
    order.assists = []  # known empty: reading it for the answer must not cost a query
    session.add(order)
    session.flush()
    # By id, after the order's flush: attached through ``order.events`` instead, a later action on the order failed
    # its version check after a set-based SLA sweep (tests/integration/test_kpi.py). As one Core insert: nothing in
    # this transaction reads the event back as an object, and a second unit-of-work flush at commit costs more.
    session.connection().execute(
        _insert_event(),
        {
            "order_id": order.id,
            "action": Action.CREATE.value,
            "from_state": None,
            "to_state": State.RECEIVED.value,
            "actor_id": actor.user_id,
            "actor_name": actor.name,
            "unit_id": actor.unit_id,
            "at": created_at,
            "reason": None,
            "payload": {
                "channel": data.channel.value,
                "number": number,
                **(
                    {"street_id": street_id, "community_id": community_id, "place_source": place_source}
                    if place_source is not None
                    else {}
                ),
            },
        },
    )
    return order, True


@lru_cache(maxsize=1)
def _insert_event() -> Any:
    return insert(OrderEvent)


def _check_unit_code(session: Session, code: str | None, field: str) -> None:
    if code and code not in unit_ids_by_code(session):
        raise ValidationFailed(f"unknown unit code '{code}'", details={"field": field})


def get_order(session: Session, *, order_id: int) -> Order | None:
    """Return the order with its assisting units loaded, or None."""
    return session.execute(
        select(Order).where(Order.id == order_id).options(selectinload(Order.assists))
    ).scalar_one_or_none()


_NUMBERS_CHUNK = 5000  # bounded IN lists on every backend


def order_numbers(session: Session, order_ids: Iterable[int | None]) -> dict[int, str]:
    """The numbers of the orders ``order_ids`` (``None`` among them ignored), by id: what a list naming other orders
    shows (the order a queued one was split from, a failed webhook delivery's, an assessment fact's)."""
    ids = sorted({i for i in order_ids if i is not None})
    numbers: dict[int, str] = {}
    for start in range(0, len(ids), _NUMBERS_CHUNK):
        part = ids[start : start + _NUMBERS_CHUNK]
        numbers.update({i: n for i, n in session.execute(select(Order.id, Order.number).where(Order.id.in_(part)))})
    return numbers


def get_order_by_number(session: Session, *, number: str) -> Order | None:
    return session.execute(select(Order).where(Order.number == number)).scalar_one_or_none()


def find_order(session: Session, *, ref: str) -> Order | None:
    """The order a person names on the command line: its number (``BY20261122-000001``) or its id; None when none
    is. An id beyond what the key holds names none, unasked (neither database can be asked about it)."""
    order = get_order_by_number(session, number=ref)
    if order is None and ref.isdigit() and int(ref) <= MAX_BIG_ID:
        order = get_order(session, order_id=int(ref))
    return order


def require_order(session: Session, *, order_id: int) -> Order:
    order = get_order(session, order_id=order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def history(session: Session, *, order_id: int) -> Sequence[OrderEvent]:
    """The order's audit trail, oldest first."""
    return session.scalars(history_query(order_id=order_id)).all()


def history_query(*, order_id: int) -> Select[OrderEvent]:
    """The query of :func:`history`: oldest first, by id (the order the events were written in)."""
    return select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)


def view_of(order: Order) -> OrderView:
    return OrderView(
        state=order.state,
        lead_unit_id=order.lead_unit_id,
        suspended_from=order.suspended_from,
        extension_pending=order.extension_pending,
        satisfied=order.satisfied,
        assists={a.unit_id: AssistStatus(a.status) for a in order.assists},
        order_id=order.id,
        consultation=order.appeal_type == AppealType.CONSULTATION,
        urgency=Urgency(order.urgency).value if order.urgency is not None else None,
        extension_days=order.extension_days_requested if order.extension_pending else None,
        no_citizen=no_citizen(order),
    )


def no_citizen(order: Order) -> bool:
    """Whether the order has no citizen to call back: a sensor's or a camera's (``MACHINE_CHANNELS``) naming no
    caller and no account. :func:`no_citizen_clause` is the same in SQL (the lists' ``no_citizen``)."""
    return order.channel in MACHINE_CHANNELS and not order.citizen_phone and order.citizen_user_id is None


def no_citizen_clause() -> ColumnElement[bool]:
    """:func:`no_citizen` as a WHERE clause: never NULL, so its negation is the orders with a citizen."""
    return and_(
        Order.channel.in_(sorted(MACHINE_CHANNELS)),
        or_(Order.citizen_phone.is_(None), Order.citizen_phone == ""),
        Order.citizen_user_id.is_(None),
    )


def read_for_update(session: Session, order_id: int) -> Order | None:
    """The order with its assists, as an action reads it: locked until the transaction ends on PostgreSQL (on
    SQLite the write lock and the order's version keep concurrent changes apart)."""
    # One statement with its assists (an order has few or none), not a second one for them.
    query = select(Order).where(Order.id == order_id).options(joinedload(Order.assists))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Order)
    return session.execute(query).unique().scalar_one_or_none()


def _unexplained(params: Mapping[str, Any]) -> bool:
    """A rating of 不满意 without a word of what is still wrong."""
    return params.get("satisfied") is False and not str(params.get("reason") or "").strip()


def _back_to_returner(session: Session, order: Order, outcome: Outcome, params: Mapping[str, Any]) -> bool:
    """Whether a dispatch of a returned order (退单) sends it back to the unit that returned it — the unit's latest
    return. A person's (the automatic dispatcher never suggests a unit that returned it) must say why: the unit reads
    the reason when it signs for it again, and the trail keeps it; without one, ValidationFailed on ``reason``."""
    if outcome.action != Action.DISPATCH or outcome.from_state != State.RETURNED or params.get("auto"):
        return False
    from cityhub.dispatch.service import last_returns

    returned = last_returns(session, [order.id]).get(order.id)
    if returned is None or returned.unit_id is None or returned.unit_id != params.get("unit_id"):
        return False
    if not str(params.get("reason") or "").strip():
        raise ValidationFailed(
            f"order {order.number} was {BACK_REASON_NEEDED}",
            details={"field": "reason", BACK_TO_RETURNER: True},
        )
    return True


def act(
    session: Session,
    *,
    order_id: int,
    action: Action | str,
    actor: Actor = SYSTEM,
    params: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
    new_order: Order | None = None,
    tell_staff: bool = True,
) -> Order:
    """Apply one life-cycle action to an order and audit it; raise InvalidTransition if the table refuses.

    ``new_order``: the order itself, when this transaction created it (intake acting on the appeal it has just
    received): no other transaction can see it yet, so it is neither read again nor locked. ``tell_staff=False``:
    no staff notice of it here — the caller writes them (:func:`act_each`'s 批量催办, one per unit).
    """
    params = dict(params or {})
    for name, value in params.items():  # a reply or reason is stored as typed: PostgreSQL cannot store NUL
        if isinstance(value, str) and "\x00" in value:
            raise ValidationFailed(f"{name} must not contain NUL characters", details={"field": name})
        if isinstance(value, str):  # the API's schema says the same; the order page and the CLI come here only
            check_length(value, name, _PARAM_LIMITS.get(name, REASON_MAX_CHARS))
    if params.get("auto") and actor.name != AUTO_DISPATCHER and action not in (Action.MERGE, Action.MERGE.value):
        # ``auto`` marks the engine's own steps: the automatic dispatcher's dispatches — the dispatch outcome figures
        # count a dispatch marked so as the engine's, a person cannot claim it — and intake's automatic merges
        # (``intake.dedupe.auto_merge_params``; whoever received the appeal acts). The API's and the pages' action
        # forms cannot send it.
        raise ValidationFailed(
            f"auto marks the dispatch engine's own dispatches; {actor.name} cannot set it",
            details={"field": "auto"},
        )
    now = now or utcnow()
    order = new_order if new_order is not None and new_order.id == order_id else read_for_update(session, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if expected_version is not None and order.version != expected_version:
        raise Conflict(
            f"order {order.number} was changed by someone else (version {order.version}, you had {expected_version})",
            details={"version": order.version},
        )
    for name in _UNIT_PARAMS:
        if params.get(name) is not None:
            # A unit by its id: true or "12" is none (true found unit 1 in the directory: True == 1).
            unit = unit_directory(session).get(params[name]) if type(params[name]) is int else None
            if unit is None or not unit.active:
                raise ValidationFailed(f"unknown or inactive unit {params[name]}", details={"field": name})
    master = _check_master(session, params.get("master_id")) if action in (Action.MERGE, Action.MERGE.value) else None
    if action in (Action.ASSIGN, Action.ASSIGN.value) and params.get(ASSIGN_DEADLINE) not in (None, ""):
        params[ASSIGN_DEADLINE] = _assign_deadline(params[ASSIGN_DEADLINE], now or utcnow())
    if action in (Action.SPLIT, Action.SPLIT.value):
        params = _split_params(session, params)

    outcome = apply(view_of(order), action, params)  # the state first: "cannot accept a received order"
    if actor.role in UNIT_STAFF_ROLES and outcome.action in LEAD_STEPS and order.lead_unit_id != actor.unit_id:
        # Seeing an order (its street, an assist) is not holding it: only the lead unit's staff answer for it.
        raise PermissionDenied(
            f"only the lead unit's handlers may {outcome.action.value} order {order.number}",
            details={"lead_unit_id": order.lead_unit_id},
        )
    if actor.role in UNIT_STAFF_ROLES and outcome.action in STAFF_ROUTING:
        _check_staff_routing(session, order, actor, outcome.action, params)
        if outcome.action == Action.TRANSFER and order.due_at is not None:
            # 下派: the community works within the street's time limit (a street passing an order down just before
            # it fell due would otherwise give it a whole limit again); only the new unit's 签收 clock starts now.
            outcome = replace(outcome, sla=SlaEffect.HANDOVER)
    if outcome.action == Action.CALLBACK and actor.role == Role.CITIZEN.value and _unexplained(params):
        # A citizen's 不满意 says what is still wrong: it is all the unit hears of it, whether rated on the order page,
        # through the API or the progress lookup (a hotline operator's callback record may stay brief).
        raise ValidationFailed("say what is still wrong (reason)", details={"field": "reason"})
    if actor.role == Role.DISPATCHER.value and outcome.action in ROUTING_STEPS and not may_route(session, order, actor):
        raise PermissionDenied(
            f"order {order.number} is held by a unit outside yours: the district's dispatchers route it",
            details={"lead_unit_id": order.lead_unit_id, "routing": True},
        )
    back = _back_to_returner(session, order, outcome, params)
    reading: dict[str, Any] = {}
    if outcome.action == Action.DISPATCH and not params.get("auto") and actor.name != SYSTEM.name:
        from cityhub.dispatch.service import hand_dispatch_reading

        # A person's dispatch keeps what the classifier said: the training export tells a correction from it.
        reading, confirmed = hand_dispatch_reading(session, order=order, unit_id=params.get("unit_id"))
        if confirmed is not None:
            # Before the dispatch, so its time limit is the category's (as automatic dispatch sets it first).
            amend(
                session,
                order=order,
                changes={"category_id": confirmed.id},
                actor=actor,
                text=f"category set at dispatch: {confirmed.path} (the classifier's reading of the suggestion chosen)",
                new_order=order,
            )
    with session.no_autoflush:  # one UPDATE per action, so the version moves by exactly one
        urgency_before = order.urgency
        _apply_changes(order, outcome, params, now)
        moved = _apply_sla(session, order, outcome, now, urgency_before=urgency_before)
        placed = _place_from_lead(session, order, outcome)
    payload = _event_payload(order, outcome)
    if placed or moved or reading:
        payload = {**(payload or {}), **placed, **moved, **reading}
    recorded_unit = params.get("unit_id") or actor.unit_id
    if actor.unit_id is not None and recorded_unit != actor.unit_id:
        # An action taking a unit records that unit (where the order went): whose unit acted is said beside it, so
        # the trail names everyone's unit — a leader's 交办 to 江高镇 is by 白云区.
        payload = {**(payload or {}), "actor_unit_id": actor.unit_id}
    if back:  # 派回退单单位: the trail says the order went back to the unit that returned it, on purpose
        payload = {**(payload or {}), BACK_TO_RETURNER: True}
    if outcome.sla == SlaEffect.HANDOVER:  # 下派: the trail names it so, not as the dispatchers' 转派
        payload = {**(payload or {}), "handed_down": True}
    if "reply_text" in outcome.changes and order.reply_text is None:
        from cityhub.knowledge.service import forget_reply_check

        forget_reply_check(session, order.id)  # a reply sent back or reopened: its score is not the next reply's
    part = _split_off(session, order, outcome.payload, actor, now) if outcome.action == Action.SPLIT else None
    if part is not None:
        payload = {**(payload or {}), "part_id": part.id, "part_number": part.number}
    event = OrderEvent(
        order_id=order.id,
        action=outcome.action.value,
        from_state=outcome.from_state.value if outcome.from_state else None,
        to_state=outcome.to_state.value,
        actor_id=actor.user_id,
        actor_name=actor.name,
        unit_id=recorded_unit,
        at=now,
        reason=params.get("reason"),
        payload=payload,
    )
    session.add(event)
    order.updated_at = now
    # After every change of the order: the outbox query autoflushes, and the version must move only once.
    notify_service.on_order_event(session, order=order, outcome=outcome, event=event)
    session.flush()
    if tell_staff:
        notices.on_order_event(session, order=order, outcome=outcome, event=event)  # 消息提醒 of the staff it needs
    if outcome.action == Action.MERGE and master is not None:
        _note_merged_in(session, master=master, merged=order, actor=actor, now=now, auto=bool(params.get("auto")))
    if outcome.to_state in TERMINAL_STATES and outcome.from_state != outcome.to_state:
        from cityhub.monitoring.service import resolve_ended

        # 办结 answers for the alarms the order holds (a camera still seeing the problem opens a new order, not none),
        # 作废 clears them as a false detection, 合并 moves them to the master. Any channel: a citizen's order may hold
        # alarms moved to it by a merge (one indexed look-up when it holds none).
        resolve_ended(session, order_id=order.id, actor=actor, now=now)
    if part is not None:
        from cityhub.intake.service import route_received

        route_received(session, part)  # as any new appeal: dispatched automatically, or left to a dispatcher
    return order


def _second_step_allowed(actor: Actor, action: Action, doing: str) -> None:
    """Refuse (403) the second step of a two-step form (签收并开始办理, 回访并办结) to a role that may not apply it,
    before the first step is taken."""
    if actor.role is not None and not permissions.allows(Role(actor.role), permissions.act(action)):
        raise PermissionDenied(f"role {actor.role} may not {doing}", details={"permission": permissions.act(action)})


def accept(
    session: Session,
    *,
    order_id: int,
    actor: Actor = SYSTEM,
    start: bool = False,
    params: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
) -> Order:
    """签收 (accept), and with ``start`` 开始办理 right after it in the same transaction — 签收并开始办理, each step
    audited as its own event: the order page's, the order list's (one row or the ticked rows of 待签收) and the API's
    ``accept`` with ``start: true``. ``start`` is refused (403) to a role that may not start work."""
    if start:
        _second_step_allowed(actor, Action.START, "start work")
    order = act(
        session, order_id=order_id, action=Action.ACCEPT, actor=actor, params=params, expected_version=expected_version
    )
    if start:
        order = act(session, order_id=order_id, action=Action.START, actor=actor)
    return order


def callback(
    session: Session,
    *,
    order_id: int,
    actor: Actor = SYSTEM,
    close: bool = False,
    params: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
) -> Order:
    """回访 (callback), and with ``close`` 办结 right after it in the same transaction when the citizen was satisfied
    (满意 or 基本满意, closed as resolved) — 回访并办结, each step audited as its own event: the callback desk called,
    recorded and then closed every satisfied order again from the same page. An unsatisfied callback is recorded and
    not closed: it waits in 回访不满意 for 重办 or 办结. ``close`` is refused (403) to a role that may not close."""
    if close:
        _second_step_allowed(actor, Action.CLOSE, "close orders")
    order = act(
        session,
        order_id=order_id,
        action=Action.CALLBACK,
        actor=actor,
        params=params,
        expected_version=expected_version,
    )
    if close and order.satisfied:
        order = act(session, order_id=order_id, action=Action.CLOSE, actor=actor)
    return order


# 批量催办 and its kind: at most this many orders in one request (a list's page holds 20).
ACT_EACH_MAX = 100


@dataclass(frozen=True)
class EachOutcome:
    """One order of :func:`act_each`: acted on, or why not (``message``, the refusal's own words; ``changed``: it
    changed since the page read it, or the table refused it as it stands now)."""

    order_id: int
    number: str | None
    done: bool
    message: str | None = None
    unit_id: int | None = None  # the unit holding it: whom a 催办 went to


def act_each(
    session: Session,
    picks: Sequence[tuple[int, int | None]],
    *,
    action: Action,
    params: Mapping[str, Any],
    actor: Actor,
    scope: Any = None,
    start: bool = False,
) -> list[EachOutcome]:
    """The same action with the same ``params`` on several orders (``picks``: each order's id and the version the
    page showed, None for any), each in a savepoint of the caller's transaction and audited by :func:`act` as one
    action on its own: one refused — changed since, out of the caller's ``scope`` (a data-scope clause), or not in a
    state the action allows — is reported with its reason and leaves the others done. ``start`` with ``accept``:
    each order signed for and started (:func:`accept`), both steps or neither. A 催办 of several orders tells each
    unit's staff once, of all its orders urged (``notices.on_bulk_urge``), not once per order."""
    if start and action != Action.ACCEPT:
        raise ValidationFailed(f"start is taken only by accept, not {action.value}", details={"field": "start"})
    if len(picks) > ACT_EACH_MAX:
        raise ValidationFailed(f"at most {ACT_EACH_MAX} orders at once (got {len(picks)})", details={"field": "pick"})
    out: list[EachOutcome] = []
    seen: set[int] = set()
    for order_id, version in picks:
        if order_id in seen:
            continue
        seen.add(order_id)
        query = select(Order.number).where(Order.id == order_id)
        number = session.scalar(query if scope is None else query.where(scope)) if 0 < order_id <= MAX_ID else None
        if number is None:
            out.append(EachOutcome(order_id, None, False, f"order {order_id} not found"))
            continue
        try:
            with session.begin_nested():
                if start:
                    order = accept(
                        session, order_id=order_id, actor=actor, start=True, params=params, expected_version=version
                    )
                else:
                    order = act(
                        session,
                        order_id=order_id,
                        action=action,
                        actor=actor,
                        params=params,
                        expected_version=version,
                        tell_staff=action != Action.URGE,
                    )
        except (CityhubError, StaleDataError) as exc:
            message = exc.message if isinstance(exc, CityhubError) else "the order changed meanwhile"
            out.append(EachOutcome(order_id, number, False, message))
            continue
        out.append(EachOutcome(order_id, number, True, unit_id=order.lead_unit_id))
    if action == Action.URGE:
        notices.on_bulk_urge(
            session,
            urged=[(o.order_id, o.unit_id) for o in out if o.done],
            actor_id=actor.user_id,
            actor=actor.name,
            reason=params.get("reason"),
        )
    return out


def amend(
    session: Session,
    *,
    order: Order,
    changes: Mapping[str, Any],
    actor: Actor,
    text: str,
    reason: str | None = None,
    new_order: Order | None = None,
) -> Order:
    """Change order fields the life cycle does not own (category, place) as one audited ``comment`` event that
    names the new and the previous values."""
    previous = {f"previous_{k}": getattr(order, k) for k in changes}
    # The change and its audit event go out in one UPDATE, so the version moves once per audited change.
    with session.no_autoflush:
        for name, value in changes.items():
            setattr(order, name, value)
        return act(
            session,
            order_id=order.id,
            action=Action.COMMENT,
            actor=actor,
            params={"text": text, "reason": reason, **changes, **previous},
            new_order=new_order,
        )


def _assign_deadline(value: Any, now: datetime) -> Any:
    """交办's 限期办结 as the ISO day the event's payload keeps: a day from today (the district's) on; what is no day
    is left for the life cycle to refuse by name."""
    day = deadline_day(value)
    if day is None:
        return value
    today = now.astimezone(get_settings().tz).date()
    if day < today:
        raise ValidationFailed(
            f"deadline {day.isoformat()} is before today ({today.isoformat()})", details={"field": ASSIGN_DEADLINE}
        )
    return day.isoformat()


# 即将签收超时 (签收预警): an order dispatched and not signed for whose 签收时限 falls within this time from now — or
# has passed and the sweep has not marked it 签收超时 yet — as 预警 is the warning before 超期. Natural time: the
# supervisors read it as minutes on the clock. The stored ``sla_status`` and ``accept_overdue`` are not touched.
ACCEPT_WARNING = timedelta(minutes=30)


def accept_due_soon_clause(now: datetime | None = None) -> Any:
    """The orders :data:`ACCEPT_WARNING` flags — the list's, the API's ``accept_due_soon`` and the tab's — over the
    partial index ix_orders_dispatched_accept (its predicate, then its columns)."""
    return and_(
        text(DISPATCHED_SQL),
        ~Order.accept_overdue,
        Order.accept_due_at <= (now or utcnow()) + ACCEPT_WARNING,
    )


def accept_due_soon(order: Order, now: datetime | None = None) -> bool:
    """Whether ``order`` is one :func:`accept_due_soon_clause` lists: the lists' and the order page's badge."""
    if order.state != State.DISPATCHED or order.accept_overdue or order.accept_due_at is None:
        return False
    return order.accept_due_at <= (now or utcnow()) + ACCEPT_WARNING


def assign_deadline_passed(order: Order, now: datetime | None = None) -> bool:
    """Whether the 限期办结 a leader gave with 交办 has passed (逾期) with the order still open: the day is over in the
    district's time zone. The one reading of it — the order page, the 领导交办 list, the API's ``assign_overdue``
    and the sweep's mark (:func:`cityhub.workorders.scheduled.sla_sweep`) ask it of the same day."""
    return deadline_passed(order.assign_deadline, order.state, (now or utcnow()).astimezone(get_settings().tz).date())


def _event_payload(order: Order, outcome: Outcome) -> dict[str, Any] | None:
    """The action's parameters, plus the deadlines an action set, so assessment can judge each round exactly."""
    payload = {k: v for k, v in outcome.payload.items() if k != "reason"}
    payload.update(sla.event_deadlines(outcome.sla, order.due_at, order.accept_due_at))
    if outcome.changes.get("extension_pending") is False and outcome.action not in _EXTENSION_DECISIONS:
        # A reply, return or transfer ends the unit's pending extension request without a decision: said in the
        # trail, where the request stands open otherwise.
        payload["extension_withdrawn"] = True
    return payload or None


_EXTENSION_DECISIONS = frozenset({Action.APPROVE_EXTENSION, Action.REJECT_EXTENSION})


# The routing steps a unit's own staff (a handler, a 网格员) take too, only on an order their unit leads: 申请协办 — the
# lead unit invites an assisting unit itself, saying what help it needs (``reason``); the assisting unit finds it in
# its 待签收 and the centre supervises it in the trail, as any 增加协办 — and a street's 下派, 转派 to one of the
# street's own communities, which then signs for it (any other unit is the dispatchers' to choose).
STAFF_ROUTING = frozenset({Action.ADD_ASSIST, Action.TRANSFER})


def communities_below(session: Session, unit_id: int | None) -> list[int]:
    """The active communities (村社) of a street (镇街) ``unit_id``, by id; none for any other unit: where a street's
    handler may pass an order down (下派)."""
    units = unit_directory(session)
    street = units.get(unit_id) if unit_id is not None else None
    if street is None or street.tier != UnitTier.STREET:
        return []
    return sorted(
        u.id for u in units.values() if u.parent_id == street.id and u.active and u.tier == UnitTier.COMMUNITY
    )


def staff_may_route(session: Session, order: Order, unit_id: int | None, action: Action) -> bool:
    """Whether a unit's staff of ``unit_id`` are offered the routing step ``action`` (:data:`STAFF_ROUTING`) on
    ``order``: its unit leads the order, and for 下派 (转派) it is a street with communities to pass it to."""
    if unit_id is None or order.lead_unit_id != unit_id:
        return False
    return action != Action.TRANSFER or bool(communities_below(session, unit_id))


def _check_staff_routing(
    session: Session, order: Order, actor: Actor, action: Action, params: Mapping[str, Any]
) -> None:
    """A unit staff's 申请协办 or 下派 (:data:`STAFF_ROUTING`) as :func:`staff_may_route` lets it: else 403, or 422
    naming the field — a 下派 to a unit that is not one of the street's communities, a 申请协办 without the help it
    needs."""
    if not staff_may_route(session, order, actor.unit_id, action):
        what = "pass orders down (下派) to its communities" if action == Action.TRANSFER else action.value
        raise PermissionDenied(
            f"only the lead unit's handlers may {action.value} order {order.number}"
            + ("; only a street's handlers pass orders down to its communities" if action == Action.TRANSFER else ""),
            details={"lead_unit_id": order.lead_unit_id, "may_not": what},
        )
    if action == Action.TRANSFER and params.get("unit_id") not in communities_below(session, actor.unit_id):
        raise ValidationFailed(
            f"unit {params.get('unit_id')} is not a community of your street: a handler passes an order down (下派) "
            "only to one of its street's communities; ask the dispatchers to transfer it elsewhere",
            details={"field": "unit_id"},
        )
    if action == Action.ADD_ASSIST and not str(params.get("reason") or "").strip():
        raise ValidationFailed("say what help is needed from the assisting unit (reason)", details={"field": "reason"})


def may_route(session: Session, order: Order, actor: Actor) -> bool:
    """Whether a dispatcher may route ``order`` onwards (:data:`ROUTING_STEPS`): one held by no unit, or by a unit
    of the dispatcher's own scope (:func:`cityhub.auth.scope.routed_by`)."""
    from cityhub.auth.scope import routed_by

    if order.lead_unit_id is None or actor.unit_id is None:  # no unit to bind it (a tool's actor): as the district
        return True
    units = routed_by(session, actor.unit_id)
    return units is None or order.lead_unit_id in units


# The longest text an action's parameter may hold (a reason or any other: REASON_MAX_CHARS).
_PARAM_LIMITS = {"text": TEXT_MAX_CHARS, "answer": TEXT_MAX_CHARS, "content": TEXT_MAX_CHARS, "title": TITLE_MAX_CHARS}


def _split_params(session: Session, params: dict[str, Any]) -> dict[str, Any]:
    """A split's part as it will be received: its text and title trimmed (no text is no part), a known category and
    kind of appeal."""
    content = str(params.get("content") or "").strip()
    title = str(params.get("title") or "").strip()
    category_id = params.get("category_id")
    if category_id is not None:
        category = session.get(Category, category_id) if isinstance(category_id, int) else None
        if category is None or not category.active:
            raise ValidationFailed(f"unknown or retired category {category_id}", details={"field": "category_id"})
    kind = params.get("appeal_type")
    if kind is not None and kind not in set(AppealType):
        raise ValidationFailed(f"unknown appeal_type {kind!r}", details={"field": "appeal_type"})
    return {**params, "content": content or None, "title": title or None}


def _split_off(session: Session, order: Order, part: Mapping[str, Any], actor: Actor, now: datetime) -> Order:
    """拆单: one problem of ``order``'s appeal as an order of its own — what the citizen said of it (``content``, with
    its ``title``, ``category_id`` and ``appeal_type`` when given), from the same citizen, channel, place and urgency,
    received now (its time limit runs from now), naming ``order`` as the one it was split from. The appeal's files
    go with it (the same stored files, kept once)."""
    content = part["content"]
    data = OrderCreate(
        channel=order.channel,
        appeal_type=part.get("appeal_type") or order.appeal_type,
        title=part.get("title") or "",  # else titled from its text, as any appeal
        content=content,
        citizen_name=order.citizen_name,
        citizen_phone=order.citizen_phone,
        citizen_user_id=order.citizen_user_id,
        address=order.address,
        lat=order.lat,
        lng=order.lng,
        urgency=order.urgency,
        category_id=part.get("category_id"),
        created_at=now,
    )
    where = Place(order.street_id, order.community_id, order.place_source) if order.place_source else None
    new, _ = create_order(session, data=data, actor=actor, known_new=True, place=where)
    new.split_from_id = order.id
    files = session.scalars(select(Attachment).where(Attachment.order_id == order.id).order_by(Attachment.id))
    copies = [
        Attachment(
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            url=a.url,
            sha256=a.sha256,
            uploaded_by=a.uploaded_by,
            uploaded_by_id=a.uploaded_by_id,
        )
        for a in files
    ]
    new.attachments.extend(copies)
    session.flush()
    from cityhub.workorders.files import content_path

    for copy in copies:
        if copy.sha256:  # a stored file is served under the order that holds it; a link stays as given
            copy.url = content_path(copy)
    return new


@dataclass(frozen=True)
class SplitKin:
    """One of the other orders of a split appeal (:func:`split_family`)."""

    id: int
    number: str
    split_from_id: int | None


def split_family(session: Session, order: Order) -> list[SplitKin]:
    """拆单: the other orders of ``order``'s appeal, in id order — the one it was split from, those split from it,
    and those split from the same appeal — which say the same on purpose, so they are never offered as each other's
    duplicates."""
    roots = {order.id} if order.split_from_id is None else {order.id, order.split_from_id}
    rows = session.execute(
        select(Order.id, Order.number, Order.split_from_id)
        .where(Order.id.in_(roots) | Order.split_from_id.in_(roots), Order.id != order.id)
        .order_by(Order.id)
    )
    return [SplitKin(*row) for row in rows]


# The appeals merged into one order that its page lists (the newest; the count says how many there are in all).
MERGED_SHOWN = 20


@dataclass(frozen=True)
class MergeKin:
    """合并: the order ``order`` was merged into (``master``), and the newest of those merged into it, as
    (id, number), with how many were merged into it in all."""

    master: tuple[int, str] | None
    merged: list[tuple[int, str]]
    merged_total: int


def merge_family(session: Session, order: Order) -> MergeKin:
    """:class:`MergeKin` of ``order``."""
    master = None
    if order.master_order_id is not None:
        number = session.scalar(select(Order.number).where(Order.id == order.master_order_id))
        master = (order.master_order_id, number) if number is not None else None
    into = Order.master_order_id == order.id
    merged = session.execute(select(Order.id, Order.number).where(into).order_by(Order.id.desc()).limit(MERGED_SHOWN))
    total = session.scalar(select(func.count()).select_from(Order).where(into)) or 0
    return MergeKin(master, [(i, n) for i, n in merged], total)


def newest_part(session: Session, order_id: int) -> str | None:
    """The number of the order most recently split off ``order_id`` (what a split just made), if any."""
    return session.scalar(select(Order.number).where(Order.split_from_id == order_id).order_by(Order.id.desc()))


def _check_master(session: Session, master_id: Any) -> Order | None:
    """The open order a merge names as its master (None when it names none: the table refuses the merge)."""
    if master_id is None:
        return None
    master = session.get(Order, master_id)
    if master is None:
        raise ValidationFailed(f"master order {master_id} not found", details={"field": "master_id"})
    if master.state in TERMINAL_STATES:
        raise ValidationFailed(
            f"master order {master.number} is {master.state.value}; merge into an open order",
            details={"field": "master_id"},
        )
    return master


def note_beside(
    session: Session,
    *,
    order: Order,
    action: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    from_state: str | None,
    reason: str | None = None,
) -> None:
    """An entry in the order's trail that changes nothing of the order: its state, version and ``updated_at`` stay,
    so a handler acting on it meanwhile with the version they read is not refused as if someone had changed it (on
    PostgreSQL the insert's foreign-key check waits for the lock such an action holds on the order's row until it
    commits; then both stand). What another order's merge brings to its master: the merge itself
    (:func:`_note_merged_in`) and the merged appeal's files (``files.attach(beside=True)``); the place aliases a
    dispatcher taught from the order (``dispatch.service.correct_place``)."""
    session.connection().execute(
        _insert_event(),
        {
            "order_id": order.id,
            "action": action,
            "from_state": from_state,
            "to_state": order.state.value,
            "actor_id": actor.user_id,
            "actor_name": actor.name,
            "unit_id": actor.unit_id,
            "at": at,
            "reason": reason,
            "payload": payload,
        },
    )


def _note_merged_in(session: Session, *, master: Order, merged: Order, actor: Actor, now: datetime, auto: bool) -> None:
    """合并, the master's side: an entry in the master's trail (:data:`MERGED_IN`) naming the order merged into it
    — who merged it, when, its number, whether intake's duplicate check did — so the master's handler learns that
    another appeal joined it, written beside the master (:func:`note_beside`). Internal to the units
    (``schemas.INTERNAL_EVENTS``): the master's citizen is not shown another citizen's appeal. The units working the
    master are notified as of the master's other events (topic ``merged``, :func:`notify.service.on_merged_in`)."""
    note_beside(
        session,
        order=master,
        action=MERGED_IN,
        actor=actor,
        at=now,
        payload={"merged_id": merged.id, "merged_number": merged.number, "auto": auto},
        from_state=None,
    )
    notify_service.on_merged_in(
        session,
        master=master,
        merged=merged,
        actor_id=actor.user_id,
        actor_name=actor.name,
        unit_id=actor.unit_id,
        at=now,
        auto=auto,
    )


_TIMESTAMP_ON_ENTRY = {
    State.DISPATCHED: "dispatched_at",
    State.ACCEPTED: "accepted_at",
    State.REPLIED: "replied_at",
}


def _apply_changes(order: Order, outcome: Outcome, params: Mapping[str, Any], now: datetime) -> None:
    for name, value in outcome.changes.items():
        if name == "assist":
            _apply_assist(order, value["unit_id"], value["status"], params, now)
        elif value == "+1":
            setattr(order, name, (getattr(order, name) or 0) + 1)
        elif name == "urgency":
            order.urgency = Urgency(value)
        else:
            setattr(order, name, value)
    if outcome.action == Action.REQUEST_EXTENSION:
        order.extension_days_requested = float(params["days"])
    if outcome.state_changed:
        attr = _TIMESTAMP_ON_ENTRY.get(outcome.to_state)
        if attr:
            setattr(order, attr, now)
        if outcome.to_state in TERMINAL_STATES:
            order.closed_at = now
        elif outcome.from_state in TERMINAL_STATES:
            order.closed_at = None
            order.resolved = None
        order.state = outcome.to_state
    if not order.extension_pending and outcome.action != Action.APPROVE_EXTENSION:
        order.extension_days_requested = None  # the SLA step still needs the approved days


def _place_from_lead(session: Session, order: Order, outcome: Outcome) -> dict[str, Any]:
    """An order nobody could place, given to a street or community office, is where that office is: its street
    (and community) are set from the new lead unit, with the source ``lead_unit``. The changes, for the event."""
    lead = outcome.changes.get("lead_unit_id")
    if lead is None or order.street_id is not None or order.community_id is not None:
        return {}
    unit = unit_directory(session).get(lead)
    place = place_of_unit(unit) if unit is not None else None
    if place is None:
        return {}
    changes: dict[str, Any] = {
        name: value
        for name, value in (("street_id", place.street_id), ("community_id", place.community_id))
        if value is not None  # a street's office leaves the (empty) community as it is
    }
    changes["place_source"] = PlaceSource.LEAD_UNIT.value
    for name, value in changes.items():
        setattr(order, name, value)
    return changes


def _apply_assist(order: Order, unit_id: int, status: AssistStatus, params: Mapping[str, Any], now: datetime) -> None:
    row = next((a for a in order.assists if a.unit_id == unit_id), None)
    if row is None:
        row = OrderAssist(unit_id=unit_id, status=status, updated_at=now)
        order.assists.append(row)
    row.status = status
    row.updated_at = now
    if status == AssistStatus.REPLIED:
        row.reply_text = params.get("text")


def _deadlines(order: Order) -> sla.Deadlines:
    return sla.Deadlines(accept_due_at=order.accept_due_at, warn_at=order.warn_at, due_at=order.due_at)


def _set_deadlines(order: Order, deadlines: sla.Deadlines) -> None:
    order.accept_due_at = deadlines.accept_due_at
    order.warn_at = deadlines.warn_at
    order.due_at = deadlines.due_at


def due_if_extended(session: Session, order: Order) -> datetime | None:
    """The time limit (``due_at``) the order's pending extension request gives if approved in full, computed as the
    approval computes it (``sla.extend`` on the order's clock): what a supervisor deciding 待审批延期 weighs against the
    limit now. None when no request is pending, the limit is not running, or the clock is paused (suspended: the
    extension is added to what is left, the limit set again when the order resumes)."""
    days = float(order.extension_days_requested or 0)
    if not order.extension_pending or days <= 0 or order.due_at is None or order.sla_paused_at is not None:
        return None
    terms = sla.terms_for(session, category_id=order.category_id, urgency=order.urgency.value)
    cal = sla.clock_of(workcal.load_calendar(session), terms)
    return sla.extend(cal, _deadlines(order), days, warning_share=terms.warning_share).due_at


def _apply_sla(
    session: Session, order: Order, outcome: Outcome, now: datetime, *, urgency_before: Urgency
) -> dict[str, Any]:
    """Move the order's clock as the action's SLA effect says. Returns, for an urgency raise that brought deadlines
    forward, what moved as ``{"from": {...}, "to": {...}}`` (as a recompute's event records it); for an approved
    extension the working days granted (``{"days": n}``, the approval's or the request's, so the approval's entry says
    what it gave);
    else nothing."""
    effect = outcome.sla
    if effect is None or effect == SlaEffect.ACCEPTED:
        return {}
    if effect == SlaEffect.STOP:
        if order.sla_status != SlaStatus.NONE:
            _refresh_status(order, now)
            order.sla_paused_at = None
            order.sla_remaining = None
        return {}
    # The order's terms say how long and on which clock: working time, or round the clock (全天候).
    terms = sla.terms_for(session, category_id=order.category_id, urgency=order.urgency.value)
    calendar = workcal.load_calendar(session)
    cal = sla.clock_of(calendar, terms)
    if effect == SlaEffect.HANDOVER:
        fresh = sla.compute_deadlines(cal, now, terms)
        accept = fresh.accept_due_at
        if accept is not None and order.due_at is not None:
            accept = min(accept, order.due_at)
        _set_deadlines(order, sla.Deadlines(accept, order.warn_at, order.due_at))
        order.accept_overdue = False
        _refresh_status(order, now)
    elif effect == SlaEffect.START:
        _set_deadlines(order, sla.compute_deadlines(cal, now, terms))
        order.sla_status = SlaStatus.OK
        order.accept_overdue = False
        order.overdue_at = None
        order.sla_paused_at = None
        order.sla_remaining = None
    elif effect == SlaEffect.PAUSE:
        order.sla_remaining = sla.pause(cal, now, _deadlines(order))
        order.sla_paused_at = now
    elif effect == SlaEffect.RESUME:
        if order.sla_paused_at is not None and order.sla_remaining is not None:
            _set_deadlines(order, sla.resume(cal, now, order.sla_remaining))
            order.sla_paused_at = None
            order.sla_remaining = None
            _refresh_status(order, now)
        elif outcome.action == Action.REJECT_REPLY and order.replied_at is not None and order.due_at is not None:
            # 退回答复: the unit gets back the working time it had left when it replied — the time its reply waited
            # for review is not the unit's. Accepted long since, its accept deadline stays as it was.
            left = sla.pause(cal, order.replied_at, sla.Deadlines(None, order.warn_at, order.due_at))
            rebuilt = sla.resume(cal, now, left)
            order.warn_at, order.due_at = rebuilt.warn_at, rebuilt.due_at
            _refresh_status(order, now)
    elif effect == SlaEffect.EXTEND:
        # The days the approval grants (as many as asked, or fewer: ``days``), else the request's.
        days = float(outcome.payload.get("days") or order.extension_days_requested or 0)
        share = terms.warning_share
        if days and order.sla_paused_at is not None and order.sla_remaining is not None:
            # Suspended: extend what is left, so that resuming rebuilds the extended deadlines.
            order.sla_remaining = sla.extend_remaining(cal, order.sla_remaining, days, warning_share=share)
        elif days and order.due_at is not None:
            _set_deadlines(order, sla.extend(cal, _deadlines(order), days, warning_share=share))
            _refresh_status(order, now)
        order.extension_days_requested = None
        if days:
            return {"days": int(days) if days.is_integer() else days}
    elif effect == SlaEffect.TIGHTEN and order.state in HANDLING_STATES:
        # Only a running (or paused) clock tightens: an order not yet dispatched starts its clock with the raised
        # urgency's terms anyway, and a replied one's unit is done.
        if order.sla_paused_at is not None and order.sla_remaining is not None:
            before_left = dict(order.sla_remaining)
            # What is left was counted on the old urgency's clock: a raise to round-the-clock terms converts it.
            old_terms = sla.terms_for(session, category_id=order.category_id, urgency=urgency_before.value)
            counted_on = sla.clock_of(calendar, old_terms)
            order.sla_remaining = sla.tighten_remaining(cal, before_left, terms, counted_on=counted_on)
            if order.sla_remaining != before_left:
                return {"from": {"sla_remaining": before_left}, "to": {"sla_remaining": order.sla_remaining}}
        elif order.due_at is not None:
            before = _deadlines(order)
            accepting = order.state == State.DISPATCHED
            _set_deadlines(order, sla.tighten(cal, now, before, terms, accepting=accepting))
            _refresh_status(order, now)
            return sla.moved_deadlines(before, _deadlines(order))
    return {}


def _refresh_status(order: Order, now: datetime) -> None:
    """Recompute the status from the stored deadlines (an overdue mark, once made, keeps its time)."""
    status = sla.status_at(now, warn_at=order.warn_at, due_at=order.due_at, paused=order.sla_paused_at is not None)
    if status == SlaStatus.OVERDUE and order.overdue_at is None:
        order.overdue_at = order.due_at
        if order.first_overdue_at is None:
            order.first_overdue_at = order.due_at
    order.sla_status = status


def _category_subtree(session: Session, category_id: int) -> list[int]:
    ids, frontier = [category_id], [category_id]
    while frontier:
        frontier = list(session.scalars(select(Category.id).where(Category.parent_id.in_(frontier))))
        ids += frontier
    return ids


def _search_conditions(
    session: Session, f: OrderFilter, scope: Any, *, text_index: bool = True, counting: bool = False
) -> list[Any]:
    """The WHERE conditions of an order search (filters and the caller's data scope).

    ``q``: every word in the title, content or address (:mod:`cityhub.workorders.search`, through the full-text
    index), or the order's number; also the citizen's name or phone, exactly, with ``q_citizen``.
    ``text_index=False`` is the search before the index (one ``LIKE`` over number, title, content and address), kept
    for the benchmark's comparison. ``counting``: conditions for counting every match rather than finding a page
    (the plan of the text search may differ, :func:`cityhub.workorders.search.text_condition`).
    """

    conditions: list[Any] = []
    if f.state and set(f.state) == OPEN_STATES:
        # Every open state (在办) as the literal predicate of the partial index ix_orders_open_sla, so that SQLite reads
        # the open orders of a time-limit status there (预警) rather than every order ever in it, mostly closed ones.
        # With a rarer criterion of its own partial index (已升级, 领导交办), SQLite is kept off ix_orders_state_created
        # (``+state``), which with statistics it preferred: every open order read to find the few escalated ones.
        rarer = f.escalated or f.leader_assigned
        sqlite = session.get_bind().dialect.name == "sqlite"
        conditions.append(text(f"+{OPEN_SQL}" if rarer and sqlite else OPEN_SQL))
    elif f.state:
        state: Any = Order.state
        if (f.escalated or f.leader_assigned) and session.get_bind().dialect.name == "sqlite":
            # As for 在办: 领导交办 answered or closed (交办已答复) reads its own partial index, not every closed order.
            state = type_coerce(literal_column(f"+{Order.__tablename__}.state"), Order.state.type)
        conditions.append(state.in_(f.state))
    # An id beyond the keys names nothing: no order, on both backends (PostgreSQL would refuse to compare it).
    for column, value in (
        (Order.lead_unit_id, f.unit_id),
        (Order.street_id, f.street_id),
        (Order.community_id, f.community_id),
        (Order.citizen_user_id, f.citizen_user_id),
        (Order.import_batch_id, f.import_batch_id),
    ):
        if value is not None:
            conditions.append(column == value if 0 < value <= MAX_ID else false())
    choices: tuple[tuple[Any, Any], ...] = (
        (Order.appeal_type, f.appeal_type),
        (Order.urgency, f.urgency),
        (Order.sla_status, None if f.as_citizen else f.sla_status),
    )
    for column, choice in choices:
        if choice is not None:
            conditions.append(column == choice)
    if f.as_citizen and f.sla_status is not None:
        # As the citizen reads the status: 预警 is 正常 to them (as_citizen_reads), so their 正常 is both and no order
        # is in 预警.
        told = [s for s in SlaStatus if s.as_citizen_reads() == f.sla_status]
        conditions.append(Order.sla_status.in_(told) if told else false())
    if f.held_by is not None:
        from cityhub.auth.scope import held_by

        conditions.append(held_by(f.held_by))
    if f.to_accept_by is not None:
        from cityhub.auth.scope import awaiting_acceptance_by

        conditions.append(awaiting_acceptance_by(f.to_accept_by))
    if f.led_by is not None:
        from cityhub.auth.scope import led_by

        conditions.append(led_by(f.led_by))
    if f.assisting_by is not None:
        from cityhub.auth.scope import assisting_only

        conditions.append(assisting_only(f.assisting_by))
    if f.assisted is not None:
        from cityhub.auth.scope import with_assists

        conditions.append(with_assists() if f.assisted else ~with_assists())
    if f.category_id is not None:
        known = 0 < f.category_id <= MAX_ID
        conditions.append(Order.category_id.in_(_category_subtree(session, f.category_id)) if known else false())
    if f.channel:
        conditions.append(Order.channel.in_(f.channel))
    if f.place_source:
        conditions.append(Order.place_source.in_([s.value for s in f.place_source]))
    if f.created_from is not None:
        conditions.append(Order.created_at >= f.created_from)
    if f.created_to is not None:
        conditions.append(Order.created_at < f.created_to)
    if f.updated_since is not None:
        conditions.append(feeds.changed_since(f.updated_since))
    if f.overdue is not None:
        # Open and past the limit now: the literal text the partial index ix_orders_open_sla is read with.
        conditions.append(text(OVERDUE_NOW_SQL if f.overdue else f"NOT ({OVERDUE_NOW_SQL})"))
    if f.ever_overdue is not None:
        conditions.append(text(EVER_OVERDUE_SQL if f.ever_overdue else f"NOT ({EVER_OVERDUE_SQL})"))
    if f.accept_overdue is not None and f.as_citizen:
        # A unit's late acceptance is a step inside the limit: to the citizen no order is 签收超时.
        if f.accept_overdue:
            conditions.append(false())
    elif f.accept_overdue is not None:
        # The bare column, as the partial index ix_orders_accept_overdue's predicate is written.
        conditions.append(Order.accept_overdue if f.accept_overdue else ~Order.accept_overdue)
    if f.accept_due_soon is not None and f.as_citizen:
        # Signing is the units' step inside the limit: to the citizen no order is about to miss it.
        if f.accept_due_soon:
            conditions.append(false())
    elif f.accept_due_soon is not None:
        soon = accept_due_soon_clause()
        conditions.append(soon if f.accept_due_soon else not_(soon))
    if f.extension_pending is not None:
        # The bare column, as the partial index ix_orders_extension_pending's predicate is written.
        conditions.append(Order.extension_pending if f.extension_pending else ~Order.extension_pending)
    if f.escalated is not None:
        # The literal predicate of the partial index ix_orders_escalated (a bound 0 would hide it from the planner).
        conditions.append(text(ESCALATED_SQL if f.escalated else f"NOT ({ESCALATED_SQL})"))
    if f.reported_by_id is not None:
        conditions.append(Order.reported_by_id == f.reported_by_id)
    if f.assigned_by_id is not None:
        # 我交办的: an assign event of this person's in the order's trail (read per order of the leader_assigned index).
        conditions.append(
            select(OrderEvent.id)
            .where(
                OrderEvent.order_id == Order.id,
                OrderEvent.action == Action.ASSIGN.value,
                OrderEvent.actor_id == f.assigned_by_id,
            )
            .exists()
        )
    if f.enterprise_need:
        # 企业呼's need, as the order's attributes say it (JSON ->> on PostgreSQL, json_extract on SQLite).
        conditions.append(ENTERPRISE_NEED.in_(f.enterprise_need))
    if f.satisfied is not None:
        # The callback's answer; an order not rated (or reopened since: its rating cleared) is neither.
        conditions.append(Order.satisfied == f.satisfied)
    if f.no_citizen is not None:
        # 待回访 (false) and 待办结（无需回访） (true): whether anybody can be called back.
        conditions.append(no_citizen_clause() if f.no_citizen else ~no_citizen_clause())
    if f.leader_assigned is not None:
        # The bare column, as the partial index ix_orders_leader_assigned's predicate is written.
        conditions.append(Order.leader_assigned if f.leader_assigned else ~Order.leader_assigned)
    if f.urged is not None:
        # 被催办: urged at least once (with 本单位牵头, a unit's urged orders: a 批量催办's notice leads there).
        conditions.append(Order.urge_count > 0 if f.urged else Order.urge_count == 0)
    if f.q and f.q.strip():
        table = Order.__table__.c
        found: list[ColumnElement[bool]]
        if text_index:
            # Exact matches of the number (any word of q, as numbers are written) and the index's words.
            numbers = [nfkc(w).upper() for w in search.words(f.q)]
            found = [
                Order.number.in_(numbers),
                search.text_condition(session.connection(), f.q, table, counting=counting),
            ]
        else:
            found = [search.like_condition(f.q, table)]
        if f.q_citizen:
            found.append(Order.citizen_name == f.q.strip())
            digits = f.q.replace(" ", "").replace("-", "")
            if digits.lstrip("+").isdigit():
                found.append(Order.citizen_phone == digits)
        conditions.append(or_(*found))
    if scope is not None:
        conditions.append(scope)
    return conditions


def search_condition(session: Session, *, filters: OrderFilter, scope: Any = None) -> ColumnElement[bool]:
    """The orders :func:`search_orders` lists for ``filters`` within ``scope``, as one WHERE clause, for a list of
    its own to narrow by the same criteria (the dispatcher's queue searched by words, number or phone)."""
    return and_(true(), *_search_conditions(session, filters, scope))


def count_orders(
    session: Session, *, filters: OrderFilter, scope: Any = None, text_index: bool = True, cap: int | None = None
) -> int:
    """How many orders :func:`search_orders` lists for ``filters`` within ``scope`` — the list's ``count=true`` — or,
    with ``cap``, up to ``cap`` of them (``SELECT count(*) FROM (SELECT 1 … LIMIT cap)``: the reads stop at the
    ``cap``-th match, so a preset's badge costs at most ``cap`` rows however many orders match)."""
    conditions = _search_conditions(session, filters, scope, text_index=text_index, counting=True)
    if cap is None:
        return int(session.scalar(select(func.count()).select_from(Order).where(*conditions)) or 0)
    matching = select(literal_column("1")).select_from(Order).where(*conditions).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(matching)) or 0)


def _sorted_by(sort: OrderSort, *, unindexed: bool = False) -> tuple[Any, ...]:
    """The ORDER BY of an order list (:class:`OrderSort`), the id breaking ties so that pages never overlap.
    ``unindexed``: the same order by ``+created_at``, which no index gives — SQLite, for a list of the few orders
    changed since a time (``updated_since``), read through ``ix_orders_updated`` and sorted: by ``ix_orders_created``
    SQLite, which cannot tell how few (no histogram), walked every order newest first to find them."""
    created = literal_column(f"+{Order.__tablename__}.created_at") if unindexed else Order.created_at
    if sort is OrderSort.OLDEST:
        return (created.asc(), Order.id.asc())
    if sort is OrderSort.ANSWERED:
        # NULL (never answered) last on both databases.
        return (Order.replied_at.is_(None), Order.replied_at.desc(), Order.id.desc())
    if sort is OrderSort.DUE:
        # NULL last on both databases (SQLite sorts it first, PostgreSQL last, by default).
        return (Order.due_at.is_(None), Order.due_at.asc(), Order.id.asc())
    return (created.desc(), Order.id.desc())


def search_orders(
    session: Session,
    *,
    filters: OrderFilter,
    limit: int = 50,
    offset: int = 0,
    count: bool = False,
    scope: Any = None,
    text_index: bool = True,
    sort: OrderSort = OrderSort.NEWEST,
) -> tuple[Sequence[Order], bool, int | None]:
    """Orders matching ``filters`` (and the caller's data ``scope`` clause), newest first or as ``sort`` says.

    Returns (page, has_more, total); the total is counted only when asked, since counting a multi-million row
    table for every page costs more than the page itself. ``text_index``: see :func:`_search_conditions`.
    """
    conditions = _search_conditions(session, filters, scope, text_index=text_index)
    query = (
        select(Order)
        .where(*conditions)
        .options(selectinload(Order.assists))
        .order_by(*_sorted_by(sort))
        .limit(limit + 1)
        .offset(offset)
    )
    rows = list(session.scalars(query))
    total = count_orders(session, filters=filters, scope=scope, text_index=text_index) if count else None
    return rows[:limit], len(rows) > limit, total


def search_order_rows(
    session: Session,
    *,
    filters: OrderFilter,
    columns: Sequence[str],
    limit: int = 50,
    offset: int = 0,
    count: bool = False,
    scope: Any = None,
    text_index: bool = True,
    sort: OrderSort = OrderSort.NEWEST,
    position: feeds.Position | None = None,
) -> tuple[list[dict[str, Any]], bool, int | None]:
    """:func:`search_orders` for read-only lists: plain rows of ``columns`` (each with its ``assists`` as dicts)
    rather than ORM objects, which at a page of 50 cost several times the query itself. ``position``: instead of
    ``sort`` and ``offset``, the page after that position of a cursor feed (:mod:`cityhub.workorders.feeds`), in the
    feed's order."""
    conditions = _search_conditions(session, filters, scope, text_index=text_index)
    table = Order.__table__
    query = select(*(table.c[name] for name in columns)).where(*conditions)
    if position is None:
        unindexed = filters.updated_since is not None and session.get_bind().dialect.name == "sqlite"
        query = query.order_by(*_sorted_by(sort, unindexed=unindexed)).offset(offset)
    else:
        query = feeds.walk(query, session, position, by_updated=filters.updated_since is not None)
    query = query.limit(limit + 1)
    rows = [dict(r) for r in session.execute(query).mappings()]
    has_more = len(rows) > limit
    rows = rows[:limit]
    assists: dict[int, list[dict[str, Any]]] = {}
    ids = [r["id"] for r in rows]
    if ids:
        found = session.execute(
            select(
                OrderAssist.order_id,
                OrderAssist.unit_id,
                OrderAssist.status,
                OrderAssist.reply_text,
                OrderAssist.updated_at,
            )
            .where(OrderAssist.order_id.in_(ids))
            .order_by(OrderAssist.id)
        ).mappings()
        for a in found:
            assists.setdefault(a["order_id"], []).append(dict(a))
    for r in rows:
        r["assists"] = assists.get(r["id"], [])
    total = count_orders(session, filters=filters, scope=scope, text_index=text_index) if count else None
    return rows, has_more, total
