"""Data scope of sub-centres: the district's hotline centre sees the district; a department's sub-centre itself."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cityhub.auth.principal import Principal
from cityhub.auth.scope import order_in_scope, scope_of
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.workorders import service
from cityhub.workorders.schemas import OrderCreate


def _unit(session: Session, code: str, tier: UnitTier, parent: Unit | None = None) -> Unit:
    unit = Unit(code=code, name=f"{code}单位", tier=tier, parent_id=parent.id if parent else None)
    session.add(unit)
    session.flush()
    return unit


def _principal(unit: Unit, role: Role) -> Principal:
    return Principal(
        user_id=1,
        username="u",
        full_name="测试",
        role=role,
        unit_id=unit.id,
        unit_tier=unit.tier,
        method="session",
        credential_id=1,
    )


def test_the_district_hotline_centre_sees_every_order_a_department_subcentre_only_its_own(db_session) -> None:
    district = _unit(db_session, "SC-D", UnitTier.DISTRICT)
    hotline = _unit(db_session, "SC-S01", UnitTier.SUBCENTRE, district)
    department = _unit(db_session, "SC-D01", UnitTier.DEPARTMENT, district)
    dept_centre = _unit(db_session, "SC-D01-S", UnitTier.SUBCENTRE, department)
    street = _unit(db_session, "SC-ST", UnitTier.STREET, district)
    order, _ = service.create_order(db_session, data=OrderCreate(channel="hotline", content="路灯不亮"))
    order.street_id = street.id
    db_session.flush()

    for role in (Role.OPERATOR, Role.DISPATCHER, Role.SUPERVISOR):
        scope = scope_of(db_session, _principal(hotline, role))
        assert scope.everything
        assert order_in_scope(db_session, scope, order.id)

    own = scope_of(db_session, _principal(dept_centre, Role.HANDLER))
    assert not own.everything and own.units == frozenset({dept_centre.id})
    assert not order_in_scope(db_session, own, order.id)
    order.lead_unit_id = dept_centre.id
    db_session.flush()
    assert order_in_scope(db_session, own, order.id)
