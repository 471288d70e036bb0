"""Migration 0048: the orders sent back (退回答复) before the release that empties a reply sent back still held the
rejected reply and its score; the migration empties the reply of every open order and drops its check, and leaves the
orders whose reply stands (replied, closed) as they are — on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityhub import migrate
from cityhub.db import make_engine
from cityhub.intake.service import submit
from cityhub.knowledge import service as kb
from cityhub.knowledge.models import ReplyCheck
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Order, OrderEvent

MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
ADMIN = service.Actor(name="管理员", role="admin")
BEFORE = "0047_escalated_indexes"
REPLY = "经核查，路灯已于3月3日修复，感谢您的反映。"


def _act(session: Session, order_id: int, action: str, at: datetime, **params: object) -> None:
    service.act(session, order_id=order_id, action=action, params=params, now=at, actor=ADMIN)


def test_the_migration_empties_the_replies_sent_back_before_and_keeps_those_that_stand(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as session:
            unit = Unit(code="SB-D01", name="测试城管局", tier=UnitTier.DEPARTMENT)
            session.add(unit)
            session.flush()
            ids = {}
            for name in ("sent_back", "replied", "closed"):
                ids[name] = submit(session, data={"channel": "hotline", "content": "路灯不亮"}, actor=ADMIN).order.id
                _act(session, ids[name], "dispatch", MONDAY, unit_id=unit.id)
                _act(session, ids[name], "accept", MONDAY + timedelta(hours=1))
                _act(session, ids[name], "reply", MONDAY + timedelta(hours=2), text=REPLY)
                kb.check_reply(session, order=session.get(Order, ids[name]))  # type: ignore[arg-type]
            _act(session, ids["sent_back"], "reject_reply", MONDAY + timedelta(hours=3), reason="未说明依据")
            _act(session, ids["closed"], "callback", MONDAY + timedelta(hours=4), satisfied=True)
            _act(session, ids["closed"], "close", MONDAY + timedelta(hours=5), resolved=True)
            session.flush()
            # As the release before left it: the order sent back holds its reply and the reply's score.
            session.execute(update(Order).where(Order.id == ids["sent_back"]).values(reply_text=REPLY))
            kb.check_reply(session, order=session.get(Order, ids["sent_back"]))  # type: ignore[arg-type]
            session.commit()
            assert session.get(Order, ids["sent_back"]).state == State.IN_PROGRESS  # type: ignore[union-attr]
            assert len(session.scalars(select(ReplyCheck.order_id)).all()) == 3
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), BEFORE)
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            replies = {name: session.get(Order, oid).reply_text for name, oid in ids.items()}  # type: ignore[union-attr]
            assert replies == {"sent_back": None, "replied": REPLY, "closed": REPLY}
            checked = set(session.scalars(select(ReplyCheck.order_id)))
            assert checked == {ids["replied"], ids["closed"]}
            # The trail keeps the reply that was sent back.
            trail = session.scalars(
                select(OrderEvent.payload).where(OrderEvent.order_id == ids["sent_back"], OrderEvent.action == "reply")
            ).all()
            assert trail and REPLY in str(trail[0])
    finally:
        engine.dispose()
