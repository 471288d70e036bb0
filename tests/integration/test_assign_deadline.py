"""领导交办's 限期办结: the day a leader gives with 交办 — stored on the order and in its event, refused before today,
the statutory time limit untouched — its passing marked once by the SLA sweep with a notice to the unit and the
leader, and the leader's 交办已答复 list of the orders they assigned that were answered since (both backends)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_notices import Org, _order, _org, _told

from cityhub.config import get_settings
from cityhub.errors import BadParameter, UnexpectedParameter, ValidationFailed
from cityhub.notify import service as notify
from cityhub.notify.models import OutboxMessage, UserNotice
from cityhub.workorders import service
from cityhub.workorders.models import Order, OrderEvent
from cityhub.workorders.scheduled import sla_sweep
from cityhub.workorders.schemas import OrderFilter, OrderRead, OrderSort


@pytest.fixture
def org(db_session: Session) -> Org:
    made = _org(db_session)
    db_session.commit()
    return made


# Monday 2026-12-07 10:00 in Guangzhou.
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def test_a_deadline_given_with_an_assignment_is_stored_and_audited_and_moves_no_time_limit(
    db_session: Session, org: Org
) -> None:
    s = db_session
    leader = org.actor("leader")
    with_day, without = _order(s, org), _order(s, org)
    to_dept = {"unit_id": org.units["dept"]}
    service.act(
        s, order_id=with_day, action="assign", actor=leader, params={**to_dept, "deadline": "2026-12-09"}, now=NOW
    )
    service.act(s, order_id=without, action="assign", actor=leader, params=to_dept, now=NOW)
    s.commit()
    a, b = s.get(Order, with_day), s.get(Order, without)
    assert a is not None and b is not None
    assert a.assign_deadline == date(2026, 12, 9) and b.assign_deadline is None
    assert (a.due_at, a.accept_due_at) == (b.due_at, b.accept_due_at)  # the statutory limit is the same
    event = s.scalars(select(OrderEvent).where(OrderEvent.order_id == with_day, OrderEvent.action == "assign")).one()
    assert event.payload is not None and event.payload["deadline"] == "2026-12-09"
    read = OrderRead.model_validate(a)
    assert read.assign_deadline == date(2026, 12, 9) and read.as_citizen_reads().assign_deadline is None
    # An instruction without a day keeps the day; one with a day replaces it (a date object as the API gives it).
    service.act(s, order_id=with_day, action="assign", actor=leader, params={"reason": "抓紧"}, now=NOW)
    assert a.assign_deadline == date(2026, 12, 9)
    service.act(
        s,
        order_id=with_day,
        action="assign",
        actor=leader,
        params={"reason": "延至周五", "deadline": date(2026, 12, 11)},
    )
    assert a.assign_deadline == date(2026, 12, 11)


def test_a_deadline_before_today_or_no_day_or_on_another_action_is_refused_by_name(
    db_session: Session, org: Org
) -> None:
    s = db_session
    leader = org.actor("leader")
    order_id = _order(s, org)
    to_dept = {"unit_id": org.units["dept"]}
    with pytest.raises(ValidationFailed) as before:
        service.act(
            s, order_id=order_id, action="assign", actor=leader, params={**to_dept, "deadline": "2026-12-06"}, now=NOW
        )
    assert before.value.details == {"field": "deadline"} and "before today" in str(before.value)
    with pytest.raises(BadParameter) as no_day:
        service.act(
            s, order_id=order_id, action="assign", actor=leader, params={**to_dept, "deadline": "下周"}, now=NOW
        )
    assert no_day.value.details["field"] == "deadline"
    with pytest.raises(UnexpectedParameter):
        service.act(
            s,
            order_id=order_id,
            action="dispatch",
            actor=org.actor("disp_district"),
            params={**to_dept, "deadline": "2026-12-09"},
            now=NOW,
        )
    # Today is a day the unit may still meet.
    service.act(
        s, order_id=order_id, action="assign", actor=leader, params={**to_dept, "deadline": "2026-12-07"}, now=NOW
    )
    assert s.get(Order, order_id).assign_deadline == date(2026, 12, 7)  # type: ignore[union-attr]


def test_the_sweep_marks_a_passed_deadline_once_and_tells_the_unit_and_the_leader(
    db_session: Session, org: Org
) -> None:
    s = db_session
    leader = org.actor("leader")
    late, answered, in_time = _order(s, org), _order(s, org), _order(s, org)
    for order_id, day in ((late, "2026-12-07"), (answered, "2026-12-07"), (in_time, "2026-12-09")):
        service.act(
            s,
            order_id=order_id,
            action="assign",
            actor=leader,
            params={"unit_id": org.units["dept"], "deadline": day},
            now=NOW,
        )
    service.act(s, order_id=answered, action="accept", actor=org.actor("h_dept"), now=NOW)
    service.act(s, order_id=answered, action="reply", actor=org.actor("h_dept"), params={"text": "已修复"}, now=NOW)
    told, _ = notify.add_subscription(s, target="http://127.0.0.1:9/a", topics=["assign_overdue"])
    overdue_only, _ = notify.add_subscription(s, target="http://127.0.0.1:9/o", topics=["overdue"])
    s.commit()
    s.execute(UserNotice.__table__.delete())
    still_today = NOW + timedelta(hours=12)  # 22:00 the same day: the day is not over
    assert sla_sweep(s, now=still_today)["assign_overdue"] == 0
    next_day = NOW + timedelta(days=1)
    assert not service.assign_deadline_passed(s.get(Order, late), still_today)  # type: ignore[arg-type]
    assert service.assign_deadline_passed(s.get(Order, late), next_day)  # type: ignore[arg-type]
    assert sla_sweep(s, now=next_day)["assign_overdue"] == 1  # not the answered one, nor the one still in time
    s.commit()
    order = s.get(Order, late)
    assert order is not None and order.assign_overdue_at == next_day
    mark = s.scalars(select(OrderEvent).where(OrderEvent.order_id == late, OrderEvent.action == "assign_overdue")).one()
    assert mark.payload == {"mark": "assign_overdue", "deadline": "2026-12-07"}
    assert _told(s, late) == {
        "assign_overdue": {org.id("h_dept"), org.id("h_dept_b")},  # the unit's staff who may reply
        "assigned_overdue": {org.id("leader")},
    }
    notice = s.scalars(select(UserNotice).where(UserNotice.kind == "assigned_overdue")).one()
    assert notice.params == {"day": "2026-12-07"}
    # The integrators' topic: one message to its subscriber, none to a subscriber of the order's own time limit.
    message = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "assign_overdue")).one()
    assert (message.subscription_id, message.order_id) == (told.id, late)
    body = json.loads(notify.render_body(s, message))
    assert body["topic"] == "assign_overdue"
    assert body["event"] == {"mark": "assign_overdue", "deadline": "2026-12-07", "at": "2026-12-08T02:00:00Z"}
    assert body["order"]["number"] == order.number
    assert s.scalar(select(func.count()).where(OutboxMessage.subscription_id == overdue_only.id)) == 0
    assert sla_sweep(s, now=next_day + timedelta(hours=1))["assign_overdue"] == 0  # once
    # A new day clears the mark; once that passes too, it is marked again.
    service.act(
        s,
        order_id=late,
        action="assign",
        actor=leader,
        params={"reason": "再给两天", "deadline": "2026-12-10"},
        now=next_day,
    )
    assert order.assign_overdue_at is None and not service.assign_deadline_passed(order, next_day)
    assert sla_sweep(s, now=NOW + timedelta(days=4))["assign_overdue"] == 2  # and the one that was in time


def test_the_leaders_answered_list_holds_their_assigned_orders_answered_last_first(
    db_session: Session, org: Org
) -> None:
    """交办已答复: the orders a leader assigned that were answered or closed since, the last answered first — not the
    open ones (领导交办 holds those), nor answered orders no leader assigned."""
    s = db_session
    leader, handler = org.actor("leader"), org.actor("h_dept")
    first, second, still_open, not_assigned = (_order(s, org) for _ in range(4))
    for order_id in (first, second, still_open):
        service.act(s, order_id=order_id, action="assign", actor=leader, params={"unit_id": org.units["dept"]}, now=NOW)
    service.act(
        s,
        order_id=not_assigned,
        action="dispatch",
        actor=org.actor("disp_district"),
        params={"unit_id": org.units["dept"]},
        now=NOW,
    )
    for hours, order_id in ((1, second), (2, not_assigned), (3, first)):
        at = NOW + timedelta(hours=hours)
        service.act(s, order_id=order_id, action="accept", actor=handler, now=at)
        service.act(s, order_id=order_id, action="reply", actor=handler, params={"text": "已办理"}, now=at)
    service.act(
        s, order_id=second, action="close", actor=org.actor("sup"), params={"resolved": True, "reason": "电话确认"}
    )
    s.commit()
    answered = sorted(
        {"replied", "called_back", "closed_resolved", "closed_unresolved"}  # the page's 已答复或办结
    )
    found, _, _ = service.search_orders(
        s, filters=OrderFilter(state=answered, leader_assigned=True), sort=OrderSort.ANSWERED
    )
    assert [o.id for o in found] == [first, second]


def test_the_api_takes_a_deadline_with_assign_and_answers_it_and_a_bad_day_by_field(admin_client: Any) -> None:
    """POST …/actions/assign takes ``deadline`` (an ISO day): the order answers ``assign_deadline`` and
    ``assign_overdue``; a day that is none, or one before today, is a 422 naming the field; another action refuses
    it."""
    from test_handler_routing import _district, _order_with

    district = _district(admin_client)
    order_id = _order_with(admin_client, district)
    today = datetime.now(UTC).astimezone(get_settings().tz).date()
    day = (today + timedelta(days=3)).isoformat()
    done = admin_client.post(f"/api/v1/orders/{order_id}/actions/assign", json={"reason": "限期", "deadline": day})
    assert done.status_code == 200, done.text
    assert (done.json()["assign_deadline"], done.json()["assign_overdue"]) == (day, False)
    for bad in ("next week", (today - timedelta(days=1)).isoformat()):
        refused = admin_client.post(f"/api/v1/orders/{order_id}/actions/assign", json={"reason": "x", "deadline": bad})
        assert refused.status_code == 422, refused.text
        assert "deadline" in refused.text
    urged = admin_client.post(f"/api/v1/orders/{order_id}/actions/urge", json={"reason": "x", "deadline": day})
    assert urged.status_code == 422 and "deadline" in urged.text
    read = admin_client.get(f"/api/v1/orders/{order_id}").json()
    assert read["assign_deadline"] == day and read["assign_overdue_at"] is None


def test_the_migration_adds_the_deadline_and_its_downgrade_drops_it(empty_db_url: str) -> None:
    """Migration 0059 adds ``orders.assign_deadline`` and ``assign_overdue_at`` in place; an order keeps its day through
    a downgrade to 0058 and back only in its event (the columns go), every other column as it was."""
    from alembic import command
    from sqlalchemy import inspect, text

    from cityhub import migrate
    from cityhub.db import make_engine

    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as s:
            order_id = _order(s, _org(s))
            service.act(
                s,
                order_id=order_id,
                action="assign",
                params={"unit_id": _dept(s), "deadline": "2026-12-09"},
                now=NOW,
            )
            s.commit()
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), "0058_exemption_revocation")
        columns = {c["name"] for c in inspect(engine).get_columns("orders")}
        assert not {"assign_deadline", "assign_overdue_at"} & columns and "leader_assigned" in columns
        with engine.connect() as conn:
            assert conn.execute(text("SELECT leader_assigned FROM orders WHERE id = :i"), {"i": order_id}).scalar()
        engine.dispose()
        migrate.upgrade(empty_db_url)
        with Session(engine) as s:
            order = s.get(Order, order_id)
            assert order is not None and order.assign_deadline is None and order.leader_assigned
    finally:
        engine.dispose()


def _dept(s: Session) -> int:
    from cityhub.org.models import Unit

    return s.scalars(select(Unit.id).where(Unit.code == "N-CG")).one()
