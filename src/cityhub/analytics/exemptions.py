"""考核核减: a handling unit asks that an order not count against it in the assessment, and a supervisor decides.

Real 12345 assessments let a unit apply for an order to be left out of its figures (免考核申请, 不满意工单甄别) when the
fault was not its own: the citizen's demand was unreasonable or beyond policy, the citizen could not be reached or
refused the visit, the matter was outside its duties, force majeure made it late, or the citizen rated 不满意 about
something else than the answer (:data:`REASONS`). The unit names the measures (:data:`cityhub.analytics.kpi.EXEMPTIBLE`)
whose facts of that order it asks to have left out; a supervisor of the centre approves or rejects it, with a reason.

* A request is the unit's (its staff ask for their own unit, a street's also for one of its communities — the
  street's figures count theirs; an administrator or the command line names the unit), about an order the unit has
  facts of in each measure named (:func:`cityhub.analytics.kpi.order_facts`), not already left out; one open request
  per order and unit (two at once: the partial unique index refuses the second, 409 as the check does).
* A decision is a supervisor's (``assessment:exemption_decide``), of a request of a unit in their data scope, never
  their own request; a rejection says why.
* 撤销核减: who decides may take an approval back, saying why (:func:`revoke`): state ``revoked``, the facts count
  again; the row keeps the approval (``decided_*``) beside the revocation (``revoked_*``, migration 0058), and the
  person who asked is told (a staff notice, as of the decision).
* Each request, decision and revocation is an event of the order's audit trail (:data:`EVENTS`; the order's state
  does not change) and writes the order, so the kept figures of the periods its trail reaches are computed again
  (``analytics.kpi``: *the figures kept*): an approval changes the unit's figures, its street's, composite score and
  rankings of whichever period the facts fall in; a rejection changes nothing.

Table ``assessment_exemptions`` (migration 0055); the API's ``/api/v1/kpi/exemptions``, the pages ``/exemptions``
(核减审核, its pending count in the deciders' menu) and the order page's 申请考核核减, the command line's ``cityhub
analytics exemptions``; the 专报 says how many orders they left out of its figures.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.analytics import kpi
from cityhub.analytics.models import AssessmentExemption
from cityhub.auth import permissions
from cityhub.auth.permissions import UNIT_STAFF_ROLES
from cityhub.auth.principal import Principal
from cityhub.db import MAX_ID, utcnow
from cityhub.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, check_length
from cityhub.notify import notices
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.workorders import changes
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import EXEMPTION_EVENTS, REASON_MAX_CHARS
from cityhub.workorders.service import Actor, note_beside, order_numbers, read_for_update

# Why the fault was not the unit's (the request's ``reason_category``); 其他 (other) says it in words.
REASONS = (
    "unreasonable",  # 诉求不合理或超出政策范围
    "unreachable",  # 市民无法联系
    "refused_visit",  # 市民拒绝上门核实或回访
    "not_own_duty",  # 非本单位职责，非因本单位原因退回延误
    "force_majeure",  # 不可抗力致超时
    "unrelated_rating",  # 不满意的并非答复本身
    "other",  # 其他（须说明）
)
OTHER = "other"
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
# 撤销核减: an approval taken back by who decides (the facts count again); the row keeps the approval (``decided_by``,
# ``decided_at``, ``decision_reason``) beside the revocation (``revoked_by``, ``revoked_at``, ``revocation_reason``).
REVOKED = "revoked"
STATES = (PENDING, APPROVED, REJECTED, REVOKED)
# The audit trail's events (``order_events.action``): from and to the order's state as it stands.
EVENTS = EXEMPTION_EVENTS  # internal to the units: neither the citizen nor Open311 reads them
REQUESTED, APPROVE, REJECT, REVOKE = EVENTS
LIST_MAX = 200


def _role(actor: Actor) -> Role | None:
    return Role(actor.role) if actor.role is not None else None


def _check_text(value: str | None, field: str) -> str | None:
    text = (value or "").strip() or None
    if text is not None and "\x00" in text:
        raise ValidationFailed(f"{field} must not contain NUL characters", details={"field": field})
    check_length(text, field, REASON_MAX_CHARS)
    return text


def _audit(
    session: Session,
    order: Order,
    action: str,
    actor: Actor,
    unit_id: int,
    reason: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """One entry of the order's trail naming the unit concerned, written beside the order (its state, version and
    ``updated_at`` stay: :func:`cityhub.workorders.service.note_beside`), and the order's ``changed_xid`` stamped, so
    the assessment's kept figures of the periods its trail reaches are computed again (``analytics.kpi``)."""
    if actor.unit_id is not None and actor.unit_id != unit_id:  # whose unit acted, beside the unit concerned
        payload = {**payload, "actor_unit_id": actor.unit_id}
    note_beside(
        session,
        order=order,
        action=action,
        actor=replace(actor, unit_id=unit_id),
        at=now,
        payload=payload,
        from_state=order.state.value,
        reason=reason,
    )
    # PostgreSQL's trigger stamps any UPDATE of the row; SQLite's number is drawn for it (``changes.stamped``).
    stamp = (
        update(Order).where(Order.id == order.id).values({"changed_xid": Order.changed_xid, **changes.stamped(session)})
    )
    session.execute(stamp, execution_options={"synchronize_session": False})


def measures_open(session: Session, *, order_id: int, unit_id: int) -> list[str]:
    """The measures (:data:`kpi.EXEMPTIBLE`, in its order) in which ``unit_id`` has a fact of the order not yet left
    out by an approved exemption: what the unit may ask to have left out."""
    return open_by_unit(session, order_id=order_id, unit_ids={unit_id}).get(unit_id, [])


def open_by_unit(session: Session, *, order_id: int, unit_ids: Collection[int]) -> dict[int, list[str]]:
    """:func:`measures_open` of each of ``unit_ids`` that has any, the order's trail walked once."""
    counted: dict[int, set[str]] = {}
    for name, fact in kpi.order_facts(session, order_id=order_id):
        if fact.unit_id in unit_ids and not fact.exempt:
            counted.setdefault(fact.unit_id, set()).add(name)
    return {u: [name for name in kpi.EXEMPTIBLE if name in names] for u, names in counted.items()}


def open_request(session: Session, *, order_id: int, unit_id: int) -> AssessmentExemption | None:
    return session.execute(
        select(AssessmentExemption).where(
            AssessmentExemption.order_id == order_id,
            AssessmentExemption.unit_id == unit_id,
            AssessmentExemption.state == PENDING,
        )
    ).scalar_one_or_none()


def units_asked_for(session: Session, actor: Actor) -> frozenset[int]:
    """The units a unit's staff may ask for: their own, and a street's its communities (the street's figures count
    theirs, :func:`cityhub.analytics.kpi.jurisdiction`) — of its data scope (:func:`cityhub.auth.scope.unit_scope`);
    a community's, a department's and any other unit's staff their own only."""
    from cityhub.auth.scope import unit_scope

    if actor.unit_id is None:
        return frozenset()
    tier = session.scalar(select(Unit.tier).where(Unit.id == actor.unit_id))
    if tier != UnitTier.STREET:
        return frozenset({actor.unit_id})
    return frozenset({actor.unit_id}) | unit_scope(session, actor.unit_id, tier).communities


def request(
    session: Session,
    *,
    order_id: int,
    measures: Sequence[str],
    reason_category: str,
    reason_text: str | None = None,
    actor: Actor,
    unit_id: int | None = None,
    now: datetime | None = None,
) -> AssessmentExemption:
    """A unit's request that the order's facts of ``measures`` not count against it (see the module). ``unit_id``:
    the unit exempted — a unit's staff ask for their own (the default), a street's also for one of its communities
    (:func:`units_asked_for`); an actor without a unit names it."""
    role = _role(actor)
    if role is not None and not permissions.allows(role, permissions.EXEMPTION_REQUEST):
        raise PermissionDenied(
            f"role {role.value} may not ask for an assessment exemption",
            details={"permission": permissions.EXEMPTION_REQUEST, "why": "may_not_request"},
        )
    unit_id = unit_id if unit_id is not None else actor.unit_id
    if unit_id is None:
        raise ValidationFailed("name the unit asking (unit_id)", details={"field": "unit_id"})
    if role in UNIT_STAFF_ROLES and unit_id != actor.unit_id and unit_id not in units_asked_for(session, actor):
        raise PermissionDenied(
            "a unit's staff ask for their own unit only (a street's also for its communities)",
            details={"unit_id": actor.unit_id, "field": "unit_id", "why": "own_unit"},
        )
    unit = session.get(Unit, unit_id) if 0 < unit_id <= MAX_ID else None
    if unit is None:
        raise ValidationFailed(f"unknown unit {unit_id}", details={"field": "unit_id"})
    chosen = [str(m) for m in measures]
    unknown = [m for m in chosen if m not in kpi.EXEMPTIBLE]
    if not chosen or unknown:
        raise ValidationFailed(
            (f"unknown measure {', '.join(unknown)}; " if unknown else "name the measures; ")
            + f"one or more of {', '.join(kpi.EXEMPTIBLE)}",
            details={"field": "measures", "why": "measures"},
        )
    if reason_category not in REASONS:
        raise ValidationFailed(
            f"unknown reason_category '{reason_category}' (one of {', '.join(REASONS)})",
            details={"field": "reason_category", "why": "reason_category"},
        )
    text = _check_text(reason_text, "reason_text")
    if reason_category == OTHER and text is None:
        raise ValidationFailed(
            "say why in reason_text (reason_category other)",
            details={"field": "reason_text", "why": "other_needs_text"},
        )
    order = read_for_update(session, order_id) if 0 < order_id <= MAX_ID else None
    if order is None:
        raise NotFound(f"order {order_id} not found")
    open_ = measures_open(session, order_id=order.id, unit_id=unit.id)
    if not open_:
        raise ValidationFailed(
            f"order {order.number} counts in no assessment figure of {unit.name} that could be left out: only a unit "
            "that handled the order (accepted, replied, was called back or had it returned) may ask",
            details={"field": "order_id", "why": "no_facts"},
        )
    missing = [m for m in chosen if m not in open_]
    if missing:
        raise ValidationFailed(
            f"order {order.number} holds no fact of {', '.join(missing)} for {unit.name} still counted "
            f"(it may ask for {', '.join(open_)})",
            details={"field": "measures", "open": open_, "why": "not_counted"},
        )
    waiting = open_request(session, order_id=order.id, unit_id=unit.id)
    if waiting is not None:
        raise Conflict(
            f"a request of {unit.name} for order {order.number} already waits for a decision (#{waiting.id})",
            details={"exemption_id": waiting.id, "why": "waiting"},
        )
    now = now or utcnow()
    ordered = [m for m in kpi.EXEMPTIBLE if m in chosen]
    row = AssessmentExemption(
        order_id=order.id,
        unit_id=unit.id,
        measures=ordered,
        reason_category=reason_category,
        reason_text=text,
        state=PENDING,
        requested_by_id=actor.user_id,
        requested_by_name=actor.name,
        requested_at=now,
    )
    try:
        # Two requests at once (PostgreSQL: neither sees the other's row before it commits) meet at the partial unique
        # index: the second is refused as the check above refuses it, its savepoint rolled back, the session usable.
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        waiting = open_request(session, order_id=order.id, unit_id=unit.id)  # committed by now: the index waited
        raise Conflict(
            f"a request of {unit.name} for order {order.number} already waits for a decision"
            + (f" (#{waiting.id})" if waiting is not None else ""),
            details={"why": "waiting", **({"exemption_id": waiting.id} if waiting is not None else {})},
        ) from None
    payload = {"exemption_id": row.id, "measures": ordered, "reason_category": reason_category}
    _audit(session, order, REQUESTED, actor, unit.id, text, payload, now)
    session.flush()
    return row


def decide(
    session: Session,
    *,
    exemption_id: int,
    approve: bool,
    reason: str | None = None,
    actor: Actor,
    units: Collection[int] | None = None,
    now: datetime | None = None,
) -> AssessmentExemption:
    """Approve or reject a pending request (a rejection says why: ``reason``). ``units``: the units of the decider's
    data scope (None: the district); a request of another unit is not found, as an order out of scope."""
    row = _decided_one(session, exemption_id, actor, units)
    text = _check_text(reason, "reason")
    if not approve and text is None:
        raise ValidationFailed(
            "say why the request is rejected (reason)", details={"field": "reason", "why": "reject_needs_reason"}
        )
    if actor.user_id is not None and actor.user_id == row.requested_by_id:
        raise PermissionDenied(
            "no one decides their own request", details={"exemption_id": row.id, "why": "own_request"}
        )
    order = read_for_update(session, row.order_id)
    if order is None:  # pragma: no cover - the request goes with its order (ON DELETE CASCADE)
        raise NotFound(f"order {row.order_id} not found")
    if row.state != PENDING:
        raise Conflict(
            f"exemption request {row.id} was already {row.state} by {row.decided_by_name}",
            details={"state": row.state, "why": "decided"},
        )
    now = now or utcnow()
    row.state = APPROVED if approve else REJECTED
    row.decided_by_id, row.decided_by_name, row.decided_at, row.decision_reason = actor.user_id, actor.name, now, text
    payload = {"exemption_id": row.id, "measures": list(row.measures), "reason_category": row.reason_category}
    _audit(session, order, APPROVE if approve else REJECT, actor, row.unit_id, text, payload, now)
    session.flush()
    notices.on_exemption_decided(
        session, order_id=row.order_id, requested_by_id=row.requested_by_id, approved=approve, actor=actor, reason=text
    )
    return row


def _decided_one(
    session: Session, exemption_id: int, actor: Actor, units: Collection[int] | None
) -> AssessmentExemption:
    """The request ``actor`` decides on: PermissionDenied for a role that does not decide; NotFound for one missing
    or of a unit outside ``units`` (the decider's data scope; None: the district)."""
    role = _role(actor)
    if role is not None and not permissions.allows(role, permissions.EXEMPTION_DECIDE):
        raise PermissionDenied(
            f"role {role.value} may not decide assessment exemptions",
            details={"permission": permissions.EXEMPTION_DECIDE, "why": "may_not_decide"},
        )
    row = session.get(AssessmentExemption, exemption_id) if 0 < exemption_id <= MAX_ID else None
    if row is None or (units is not None and row.unit_id not in units):
        raise NotFound(f"exemption request {exemption_id} not found")
    return row


def revoke(
    session: Session,
    *,
    exemption_id: int,
    reason: str | None,
    actor: Actor,
    units: Collection[int] | None = None,
    now: datetime | None = None,
) -> AssessmentExemption:
    """撤销核减: take back an approved request (who decides, of a unit of their scope: ``units``), saying why. Its
    facts count again in every period they fall in — the order's trail gets ``exemption_revoke`` and its
    ``changed_xid`` moves, as an approval's; the row's state becomes ``revoked``, its ``revoked_*`` say who took it
    back, when and why (its ``decided_*`` stay the approval's), and who asked is told (a staff notice). The unit may
    then ask again."""
    row = _decided_one(session, exemption_id, actor, units)
    text = _check_text(reason, "reason")
    if text is None:
        raise ValidationFailed(
            "say why the approval is revoked (reason)", details={"field": "reason", "why": "revoke_needs_reason"}
        )
    order = read_for_update(session, row.order_id)
    if order is None:  # pragma: no cover - the request goes with its order (ON DELETE CASCADE)
        raise NotFound(f"order {row.order_id} not found")
    session.refresh(row)  # as it stands once the order is locked: a revocation at the same time is seen
    if row.state != APPROVED:
        raise Conflict(
            f"exemption request {row.id} is {row.state}: only an approved one can be revoked",
            details={"state": row.state, "why": "not_approved"},
        )
    now = now or utcnow()
    row.state = REVOKED
    row.revoked_by_id, row.revoked_by_name, row.revoked_at, row.revocation_reason = actor.user_id, actor.name, now, text
    payload = {"exemption_id": row.id, "measures": list(row.measures), "reason_category": row.reason_category}
    _audit(session, order, REVOKE, actor, row.unit_id, text, payload, now)
    session.flush()
    notices.on_exemption_decided(
        session,
        order_id=row.order_id,
        requested_by_id=row.requested_by_id,
        approved=False,
        actor=actor,
        reason=text,
        revoked=True,
    )
    return row


def query(
    *, state: str | None = None, unit_ids: Collection[int] | None = None, order_id: int | None = None
) -> Select[AssessmentExemption]:
    """The requests (of ``state``; of the units ``unit_ids`` — a reader's, None: all; of one order), pending ones
    oldest first (the supervisor works through them in order), others latest first."""
    if state is not None and state not in STATES:
        raise ValidationFailed(f"unknown state '{state}' (one of {', '.join(STATES)})", details={"field": "state"})
    found = select(AssessmentExemption)
    if state is not None:
        found = found.where(AssessmentExemption.state == state)
    if unit_ids is not None:
        found = found.where(AssessmentExemption.unit_id.in_(sorted(unit_ids)))
    if order_id is not None:
        found = found.where(AssessmentExemption.order_id == order_id)
    if state == PENDING:
        return found.order_by(AssessmentExemption.requested_at, AssessmentExemption.id)
    return found.order_by(AssessmentExemption.id.desc())


def search(
    session: Session,
    *,
    state: str | None = None,
    unit_ids: Collection[int] | None = None,
    order_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AssessmentExemption], bool]:
    """A page of :func:`query`: (rows, has_more)."""
    found = query(state=state, unit_ids=unit_ids, order_id=order_id)
    rows = list(session.scalars(found.limit(min(limit, LIST_MAX) + 1).offset(offset)))
    return rows[:limit], len(rows) > limit


def units_seen(session: Session, principal: Principal) -> frozenset[int] | None:
    """The units whose requests ``principal`` reads (None: every unit): who decides them, and a leader, those of
    their data scope; a unit's staff who ask, those of the units they ask for (:func:`units_asked_for`). Anyone else:
    PermissionDenied."""
    from cityhub.auth.scope import scope_of

    role = principal.role
    if permissions.allows(role, permissions.EXEMPTION_DECIDE) or permissions.allows(role, permissions.ORDER_READ_ALL):
        scope = scope_of(session, principal)
        return None if scope.everything else frozenset(scope.units)
    if permissions.allows(role, permissions.EXEMPTION_REQUEST) and principal.unit_id is not None:
        return units_asked_for(session, principal.actor)  # a street's staff also read what they asked for a community
    raise PermissionDenied(
        f"role {role.value} reads no assessment exemption requests",
        details={"permission": permissions.EXEMPTION_DECIDE},
    )


def count(session: Session, *, state: str, unit_ids: Collection[int] | None = None, cap: int | None = None) -> int:
    """The requests of ``state`` (of the units ``unit_ids``; None: all); with ``cap``, counted up to it (at most that
    many rows read: the menu's 核减审核 count)."""
    found = select(AssessmentExemption.id).where(AssessmentExemption.state == state)
    if unit_ids is not None:
        found = found.where(AssessmentExemption.unit_id.in_(sorted(unit_ids)))
    if cap is not None:
        found = found.limit(cap)
    return int(session.scalar(select(func.count()).select_from(found.subquery())) or 0)


def as_dicts(session: Session, rows: Iterable[AssessmentExemption]) -> list[dict[str, Any]]:
    """The requests as the API and the command line give them: the order's number and the unit's code beside ids."""
    rows = list(rows)
    numbers = order_numbers(session, (r.order_id for r in rows))
    ids = sorted({r.unit_id for r in rows})
    units = {i: (c, n) for i, c, n in session.execute(select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(ids)))}
    return [
        {
            "id": r.id,
            "order_id": r.order_id,
            "order_number": numbers.get(r.order_id),
            "unit_id": r.unit_id,
            "unit_code": units.get(r.unit_id, (None, None))[0],
            "unit_name": units.get(r.unit_id, (None, None))[1],
            "measures": list(r.measures),
            "reason_category": r.reason_category,
            "reason_text": r.reason_text,
            "state": r.state,
            "requested_by": r.requested_by_name,
            "requested_at": r.requested_at,
            "decided_by": r.decided_by_name,
            "decided_at": r.decided_at,
            "decision_reason": r.decision_reason,
            "revoked_by": r.revoked_by_name,
            "revoked_at": r.revoked_at,
            "revocation_reason": r.revocation_reason,
        }
        for r in rows
    ]
