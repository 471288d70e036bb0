"""曾超期 (``first_overdue_at``): the lateness of a limit survives the new limit a transfer starts, on both backends,
and migration 0039 fills it for the orders of before from their trails."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub import migrate
from cityhub.db import make_engine
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import recompute, service
from cityhub.workorders.models import Order, OrderEvent
from cityhub.workorders.scheduled import sla_sweep

MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a plain working week
ADMIN = service.Actor(name="管理员", role="admin")
BEFORE = "0038_event_unit_index"


def _act(session: Session, order_id: int, action: str, at: datetime, **params: object) -> None:
    service.act(session, order_id=order_id, action=action, params=params, now=at, actor=ADMIN)


def _scenario(session: Session) -> dict[str, int]:
    """transferred: late at its first unit, then transferred (a new limit, not late); lifted: late, then a holiday
    moved its only limit ahead; late: late now; in_time: never late."""
    first = Unit(code="FO-D01", name="测试城管局", tier=UnitTier.DEPARTMENT)
    second = Unit(code="FO-D02", name="测试住建局", tier=UnitTier.DEPARTMENT)
    session.add_all([first, second])
    session.flush()
    ids = {}
    for name, urgency in (("transferred", "urgent"), ("lifted", "urgent"), ("late", "urgent"), ("in_time", "normal")):
        data = {"channel": "hotline", "content": "路灯不亮", "urgency": urgency, "created_at": MONDAY}
        ids[name] = submit(session, data=data, actor=ADMIN).order.id
        _act(session, ids[name], "dispatch", MONDAY, unit_id=first.id)
    late = MONDAY + timedelta(days=2, hours=1)  # urgent: due Wednesday 10:00
    sla_sweep(session, now=late)
    session.expire_all()
    _act(session, ids["transferred"], "transfer", late, unit_id=second.id, reason="职责不符")
    _, done = recompute.set_calendar_day(session, day=date(2026, 3, 3), is_workday=False, actor=ADMIN, now=late)
    assert done.lifted == 2  # the late one and the lifted one, both due Thursday 10:00 now
    session.expire_all()
    _act(session, ids["lifted"], "accept", late + timedelta(minutes=30))
    _act(session, ids["lifted"], "reply", late + timedelta(hours=1), text="已处理")  # in time after all
    sla_sweep(session, now=late + timedelta(days=2, hours=-1))  # Friday 10:00: the late one is late again
    session.flush()
    return ids


def test_a_transfer_keeps_the_lateness_of_the_first_limit_and_a_lifted_one_is_not_kept(db_session: Session) -> None:
    ids = _scenario(db_session)
    db_session.expire_all()
    rows = {name: db_session.get(Order, oid) for name, oid in ids.items()}
    transferred = rows["transferred"]
    assert transferred is not None and transferred.overdue_at is None  # its new limit has not run out
    assert transferred.first_overdue_at == datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # the first limit's
    assert rows["lifted"].first_overdue_at is None and rows["lifted"].overdue_at is None  # type: ignore[union-attr]
    assert rows["late"].first_overdue_at == rows["late"].overdue_at is not None  # type: ignore[union-attr]
    assert rows["in_time"].first_overdue_at is None  # type: ignore[union-attr]
    listed, _, _ = service.search_orders(db_session, filters=service.OrderFilter(ever_overdue=True))
    assert {o.id for o in listed} == {ids["transferred"], ids["late"]}


def test_the_migration_fills_the_lateness_of_orders_from_before(empty_db_url: str) -> None:
    """The orders of the scenario, their column dropped (downgrade to 0038) and filled again by 0039: from
    ``overdue_at`` where it is set, else from the trail's first overdue mark not lifted (the sweep's time)."""
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as session:
            ids = _scenario(session)
            session.commit()
            mark = session.scalar(
                select(OrderEvent.at).where(
                    OrderEvent.order_id == ids["transferred"], OrderEvent.action == "sla_overdue"
                )
            )
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), BEFORE)
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            got = {name: session.get(Order, oid).first_overdue_at for name, oid in ids.items()}  # type: ignore[union-attr]
            late = session.get(Order, ids["late"])
            assert got == {"transferred": mark, "lifted": None, "late": late.overdue_at, "in_time": None}  # type: ignore[union-attr]
            assert mark is not None and got["late"] is not None
    finally:
        engine.dispose()
