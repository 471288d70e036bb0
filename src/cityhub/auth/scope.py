"""Data scope by tier: which orders a caller may see and act on, as one SQL clause.

- district / city units, and roles holding ``order:read_all`` (leader, admin): every order;
- a street (镇街): orders on its street, in its communities, led by it or one of its communities, or co-handled
  (协办) by it or one of its communities;
- a community (村社): orders in it, led by it, or co-handled by it;
- a department (职能部门): orders led or co-handled by it or its sub-centres; a department's sub-centre: by itself;
- the district's own sub-centre (the 12345 hotline centre, a sub-centre directly under the district): every order,
  since its operators, dispatchers and supervisors receive, route and supervise the whole district's appeals;
- a citizen: orders whose ``citizen_user_id`` is theirs, and — once they verified a phone on their account
  (``auth.phone``) — the orders registered with that number by any channel (a call to 12345 an operator took, with
  their phone), matched as the progress lookup matches phones (``tracking.phone_spellings``: +86 or not): the one
  place that decides a citizen's own appeals (:func:`owns_appeal`), for reading, listing, rating and adding files;
- staff without a unit: nothing.

The same clause filters lists (``search_orders(scope=...)``) and guards single orders, so a list never shows
what a direct read would refuse. Out-of-scope single orders answer 404 exactly like missing ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session, aliased

from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cityhub.masking import names_a_door, names_a_person, scrub_text
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.workorders.lifecycle import ASSIST_STEPS, Action, AssistStatus, State
from cityhub.workorders.models import Channel, Order, OrderAssist
from cityhub.workorders.tracking import phone_digits, phone_spellings

DISTRICT_TIERS = frozenset({UnitTier.DISTRICT, UnitTier.CITY})
# The orders a reader may open, as a :func:`reading_clause` gives it (None: all).
Reading = ColumnElement[bool] | None


@dataclass(frozen=True)
class Scope:
    everything: bool = False
    citizen_user_id: int | None = None
    # A citizen's verified phone as an order may hold it (``tracking.phone_spellings``); empty: none verified.
    citizen_phones: frozenset[str] = field(default_factory=frozenset)
    units: frozenset[int] = field(default_factory=frozenset)  # lead or co-handling units
    streets: frozenset[int] = field(default_factory=frozenset)  # Order.street_id
    communities: frozenset[int] = field(default_factory=frozenset)  # Order.community_id

    def clause(self) -> ColumnElement[bool] | None:
        """The WHERE condition over ``Order``; None means no restriction."""
        if self.everything:
            return None
        if self.citizen_user_id is not None:
            own = Order.citizen_user_id == self.citizen_user_id
            return or_(own, Order.citizen_phone.in_(sorted(self.citizen_phones))) if self.citizen_phones else own
        if not self.units:
            return false()
        conditions: list[ColumnElement[bool]] = [held_by(self.units)]
        if self.streets:
            conditions.append(Order.street_id.in_(sorted(self.streets)))
        if self.communities:
            conditions.append(Order.community_id.in_(sorted(self.communities)))
        return or_(*conditions)

    def covers(self, *, street_id: int | None, community_id: int | None, units: Iterable[int]) -> bool:
        """:meth:`clause` for one order already read — its street, community and the units holding it — in Python
        (a staff scope; not a citizen's)."""
        return (
            self.everything
            or street_id in self.streets
            or community_id in self.communities
            or not self.units.isdisjoint(units)
        )


def held_by(units: Iterable[int]) -> ColumnElement[bool]:
    """The orders ``units`` hold: one of them leads it (承办) or assists in it (协办). The assisted ones as ``id IN
    (…)`` of their assists rather than a correlated EXISTS: both sides of the OR then have an index, so SQLite reads
    a unit's few open orders among many (a handler's 在办: ``ix_orders_lead_state`` and the assists by unit) instead
    of testing every open order — at 20,000 open of 200,000 a community's 8 in 0.2 ms, was 180."""
    chosen = sorted(units)
    if not chosen:
        return false()
    return or_(Order.lead_unit_id.in_(chosen), _assisted_by(chosen))


def _assisted_by(chosen: list[int]) -> ColumnElement[bool]:
    return Order.id.in_(select(OrderAssist.order_id).where(OrderAssist.unit_id.in_(chosen)))


def led_by(units: Iterable[int]) -> ColumnElement[bool]:
    """The orders one of ``units`` leads (承办): whose time limit is theirs — a unit's staff's 预警 and 超期, where an
    order they only assist on (its limit the lead unit's) counted as their own overdue."""
    chosen = sorted(units)
    return Order.lead_unit_id.in_(chosen) if chosen else false()


def assisting_only(units: Iterable[int]) -> ColumnElement[bool]:
    """The orders one of ``units`` assists on (协办) and none of them leads: a unit's staff's 协办, the lead unit's
    time limit shown as the lead's."""
    chosen = sorted(units)
    if not chosen:
        return false()
    return and_(_assisted_by(chosen), or_(Order.lead_unit_id.is_(None), Order.lead_unit_id.not_in(chosen)))


def with_assists() -> ColumnElement[bool]:
    """The orders an assisting unit was asked to help on (增加协办 or a lead unit's 申请协办): the centre's 协办."""
    return Order.id.in_(select(OrderAssist.order_id))


def awaiting_acceptance_by(units: Iterable[int]) -> ColumnElement[bool]:
    """The orders waiting for ``units`` to sign for them (待签收): dispatched to one of them and not yet accepted
    (签收), or an assist (协办) one of them was asked for and has not accepted (协办签收) — what is new for a unit."""
    chosen = sorted(units)
    if not chosen:
        return false()
    return or_(
        and_(Order.lead_unit_id.in_(chosen), Order.state == State.DISPATCHED),
        Order.id.in_(
            select(OrderAssist.order_id).where(
                OrderAssist.unit_id.in_(chosen), OrderAssist.status == AssistStatus.DISPATCHED
            )
        ),
    )


def own_units(session: Session, principal: Principal) -> frozenset[int] | None:
    """The units whose orders are ``principal``'s unit's work (只看本单位承办, a handler's 在办): those of its data
    scope (a street's: its own and its communities'; a department's: its own and its sub-centres'), not the orders it
    sees only because they lie on its street. None where nothing narrows it: an account whose unit sees every order
    (the district's: all of them are its work), or of no unit, or a citizen's (their list is their appeals)."""
    if principal.role == Role.CITIZEN or principal.unit_id is None or principal.unit_tier is None:
        return None
    scope = unit_scope(session, principal.unit_id, principal.unit_tier)
    return None if scope.everything else scope.units


def _children(session: Session, unit_ids: set[int], tiers: set[UnitTier] | None = None) -> set[int]:
    query = select(Unit.id).where(Unit.parent_id.in_(unit_ids))
    if tiers:
        query = query.where(Unit.tier.in_(tiers))
    return set(session.scalars(query))


def scope_of(session: Session, principal: Principal) -> Scope:
    """The data scope of ``principal``."""
    if principal.role == Role.CITIZEN:
        phones = frozenset(phone_spellings(principal.verified_phone))
        return Scope(citizen_user_id=principal.user_id, citizen_phones=phones)
    if permissions.allows(principal.role, permissions.ORDER_READ_ALL):
        return Scope(everything=True)
    if principal.unit_id is None or principal.unit_tier is None:
        return Scope()
    return unit_scope(session, principal.unit_id, principal.unit_tier)


def unit_scope(session: Session, unit: int, tier: UnitTier) -> Scope:
    """The data scope of a unit's staff (:func:`scope_of` without the role's part)."""
    if tier in DISTRICT_TIERS:
        return Scope(everything=True)
    if tier == UnitTier.STREET:
        communities = _children(session, {unit}, {UnitTier.COMMUNITY})
        return Scope(
            units=frozenset({unit} | communities), streets=frozenset({unit}), communities=frozenset(communities)
        )
    if tier == UnitTier.COMMUNITY:
        return Scope(units=frozenset({unit}), communities=frozenset({unit}))
    if tier == UnitTier.DEPARTMENT:
        return Scope(units=frozenset({unit} | _children(session, {unit}, {UnitTier.SUBCENTRE})))
    if tier == UnitTier.SUBCENTRE and _is_district_centre(session, unit):
        return Scope(everything=True)
    return Scope(units=frozenset({unit}))


def routed_by(session: Session, unit_id: int) -> frozenset[int] | None:
    """The units whose orders the dispatchers of ``unit_id`` may route onwards (转办, 作废, 合并, 重办, 协办): None
    for the district's (its units, its hotline centre: every order), else the units of its own scope — a street's
    dispatcher routes what its street and communities hold, not an order the district sent to a department, although
    it sees that order because it lies on its street."""
    tier = session.scalar(select(Unit.tier).where(Unit.id == unit_id))
    if tier is None:
        return frozenset()
    scope = unit_scope(session, unit_id, tier)
    return None if scope.everything else scope.units


def _is_district_centre(session: Session, unit_id: int) -> bool:
    """Whether a sub-centre hangs directly under a district (or city) unit: the district's hotline centre."""
    parent = aliased(Unit)
    parent_tier = session.scalar(select(parent.tier).join(Unit, Unit.parent_id == parent.id).where(Unit.id == unit_id))
    return parent_tier in DISTRICT_TIERS


def order_in_scope(session: Session, scope: Scope, order_id: int) -> bool:
    return _found(session, scope.clause(), order_id)


def _found(session: Session, clause: ColumnElement[bool] | None, order_id: int) -> bool:
    query: Any = select(Order.id).where(Order.id == order_id)
    if clause is not None:
        query = query.where(clause)
    return session.scalar(query) is not None


def reading_clause(session: Session, principal: Principal, scope: Scope | None = None) -> Reading:
    """The orders ``principal`` may read (None: all): their data scope, and a staff member's own registrations
    (``Order.reported_by_id``, 我提交的) — a grid inspector's report placed outside their grid, or sent on to a unit
    their scope does not hold, stays theirs to follow. Only for reading an order and listing orders: what a scope
    counts, routes or dispatches is the data scope alone (:func:`scope_of`; ``scope``: theirs, when at hand)."""
    clause = (scope or scope_of(session, principal)).clause()
    if clause is None or principal.role == Role.CITIZEN or principal.user_id is None:
        return clause
    return or_(clause, Order.reported_by_id == principal.user_id)


def may_read(session: Session, principal: Principal, order_id: int) -> bool:
    """Whether ``principal`` may read the order (:func:`reading_clause`)."""
    return readable(session, reading_clause(session, principal), order_id)


def readable(session: Session, reading: Reading, order_id: int) -> bool:
    """Whether the order is one its reader may open, ``reading`` being their :func:`reading_clause` (computed once
    for a page's many links to other orders: a split's parts, a merge's master, the similar past cases)."""
    return _found(session, reading, order_id)


def personal_search(principal: Principal, q: str | None) -> ColumnElement[bool] | None:
    """Where a search by ``q`` may look for ``principal`` beyond its scope's own limit, so that a search does not tell
    a reader who sees the orders masked who filed them. When ``q`` names a person by a phone or ID number or an
    e-mail address (:func:`cityhub.masking.names_a_person`) or their door by a house number (``names_a_door``):
    the orders whose personal data ``principal`` reads — a handler the orders its unit leads; a role that reads
    no personal data is refused (:class:`PermissionDenied`).
    Otherwise, for such a reader, the orders whose citizen's name holds a word of ``q`` (of two characters or more:
    someone searching by the filer's name, which the text may repeat) only where it reads them unmasked. None: no
    further limit (``principal`` reads personal data in all its scope, or ``q`` has nothing to limit)."""
    if not q or principal.role in permissions.UNMASKED_ROLES or principal.role == Role.CITIZEN:
        return None
    own: ColumnElement[bool] | None = None
    if principal.role in permissions.UNIT_STAFF_ROLES and principal.unit_id is not None:
        own = Order.lead_unit_id == principal.unit_id
    if names_a_person(q) or names_a_door(q):
        if own is not None:
            return own
        raise PermissionDenied(
            "searching by a phone number, ID number, e-mail address or house number needs a role that reads "
            "citizens' personal data (operator, dispatcher, supervisor, administrator); search by words of the "
            "appeal, its place or its number",
            details={"field": "q", "personal_search": True},
        )
    words = [w for w in q.split() if len(w) >= 2]
    if not words:
        return None
    not_the_filer = and_(
        *(or_(Order.citizen_name.is_(None), ~Order.citizen_name.contains(w, autoescape=True)) for w in words)
    )
    return not_the_filer if own is None else or_(own, not_the_filer)


def search_clause(session: Session, principal: Principal, q: str | None) -> ColumnElement[bool] | None:
    """The condition an order search by ``q`` runs under: what ``principal`` reads (:func:`reading_clause`), and
    :func:`personal_search`."""
    return search_within(reading_clause(session, principal), principal, q)


def search_within(reading: Reading, principal: Principal, q: str | None) -> ColumnElement[bool] | None:
    """:func:`search_clause` with ``principal``'s :func:`reading_clause` at hand (a page running several searches —
    the order list's tabs counted — reads it once)."""
    clauses = [c for c in (reading, personal_search(principal, q)) if c is not None]
    return None if not clauses else clauses[0] if len(clauses) == 1 else and_(*clauses)


def check_attach(principal: Principal, order: Order) -> None:
    """Whether ``principal`` (who :func:`permissions.may_attach`) may attach files to ``order``, which they see: staff
    always (a closed order takes comments too); a citizen to their own appeal until it is closed — ``Conflict``
    after."""
    from cityhub.workorders.lifecycle import TERMINAL_STATES, Action

    if permissions.allows(principal.role, permissions.act(Action.COMMENT)):
        return
    if not owns_appeal(principal, citizen_user_id=order.citizen_user_id, citizen_phone=order.citizen_phone):
        raise PermissionDenied("only the citizen who made the appeal adds files to it")  # their scope: in depth
    if order.state in TERMINAL_STATES:
        raise Conflict(f"order {order.number} is {order.state.value}: files can no longer be added to it")


def sees_personal_data(principal: Principal, order: Order) -> bool:
    """Whether the citizen's name and phone on ``order`` are shown unmasked to ``principal``."""
    return sees_personal_data_of(
        principal,
        citizen_user_id=order.citizen_user_id,
        lead_unit_id=order.lead_unit_id,
        channel=order.channel,
        street_id=order.street_id,
        community_id=order.community_id,
        reported_by_id=order.reported_by_id,
        citizen_phone=order.citizen_phone,
    )


def owns_appeal(principal: Principal, *, citizen_user_id: int | None, citizen_phone: str | None) -> bool:
    """Whether an order is the citizen ``principal``'s own appeal: filed under their account, or registered with the
    phone they verified (:attr:`Principal.verified_phone`, digits compared as the progress lookup does) — what
    :meth:`Scope.clause` selects, for one order already read."""
    if principal.role != Role.CITIZEN:
        return False
    if citizen_user_id is not None and citizen_user_id == principal.user_id:
        return True
    mine = phone_digits(principal.verified_phone)
    return bool(mine) and phone_digits(citizen_phone) == mine


def shown_text(principal: Principal, order: Order, text: str | None) -> str | None:
    """One of ``order``'s texts (its title, its reply) as ``principal`` may read it: as written for whoever sees the
    citizen's data, through the scrubber (the citizen's name and phone typed in it, other numbers) for the rest —
    what ``OrderRead.masked`` does to the whole order, for a list that shows a text or two of each."""
    if sees_personal_data(principal, order):
        return text
    return scrub_text(text, known=(order.citizen_name, order.citizen_phone))


def sees_personal_data_of(
    principal: Principal,
    *,
    citizen_user_id: int | None,
    lead_unit_id: int | None,
    channel: str | None = None,
    street_id: int | None = None,
    community_id: int | None = None,
    reported_by_id: int | None = None,
    citizen_phone: str | None = None,
) -> bool:
    """:func:`sees_personal_data` for an order known by the columns that decide it (lists read plain rows). A 网格员
    also reads the reports from patrol (channel grid) placed in their own grid — their unit's own words — before
    any unit leads them; a reader that passes no channel decides on the lead unit alone. Whoever registered the
    order (``reported_by_id``) reads it as they wrote it, wherever it went."""
    if principal.role in permissions.UNMASKED_ROLES:
        return True
    if principal.role == Role.CITIZEN:
        return owns_appeal(principal, citizen_user_id=citizen_user_id, citizen_phone=citizen_phone)
    if principal.role in permissions.UNIT_STAFF_ROLES:
        if reported_by_id is not None and reported_by_id == principal.user_id:
            return True
        if principal.unit_id is None:
            return False
        if lead_unit_id == principal.unit_id:
            return True
        return (
            principal.role == Role.INSPECTOR
            and channel == Channel.GRID
            and principal.unit_id in (street_id, community_id)
        )
    return False


def check_may_act(
    session: Session, principal: Principal, *, order_id: int, action: Action, params: dict[str, Any]
) -> None:
    """What a person is checked for before a life-cycle step on an order — the API's action route and `cityhub orders
    act --as` alike: their role may take ``action`` (PermissionDenied); the order lies within their scope (NotFound,
    the same answer as for a missing order: ids outside it reveal nothing), and a merge's master
    (``params["master_id"]``) too (ValidationFailed on the field); an assisting unit's step is its own unit's part
    (``params["unit_id"]`` set to it when not given; PermissionDenied for another's) — an administrator's excepted."""
    permission = permissions.act(action)
    if not permissions.allows(principal.role, permission):
        raise PermissionDenied(
            f"role {principal.role.value} may not {action.value}", details={"permission": permission}
        )
    if not may_read(session, principal, order_id):
        raise NotFound(f"order {order_id} not found")
    master = params.get("master_id")
    if master is not None and not order_in_scope(session, scope_of(session, principal), master):
        raise ValidationFailed(f"master order {master} not found", details={"field": "master_id"})
    if action in ASSIST_STEPS and principal.role != Role.ADMIN:
        params.setdefault("unit_id", principal.unit_id)
        if params["unit_id"] != principal.unit_id:
            raise PermissionDenied("a unit may act only on its own part of a co-handled order")
