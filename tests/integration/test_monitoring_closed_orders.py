# ruff: noqa: F811  (fixtures imported from the neighbouring test modules are parameters here)
"""What the people running the monitoring met, on both backends: a camera still seeing the problem after its order
was closed (办结) kept its alarm open — no new order, and the alarm escalated on a closed order; an alarm reopened
after its escalation was never escalated again; a camera across a community boundary joined an order silently; and,
on PostgreSQL with two real sessions, the races around an order's end — a reading in flight at the close, a person's
clear against a readings file, a camera joining an order being closed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session
from test_monitoring import EN, PERSON, T0, ZH, _rule, _sensor, _series, _units, units  # noqa: F401  (the fixture)
from test_monitoring_nearby import NEAR, _alarm_of, _camera, _garbage_rule, _orders, _seen

from cityhub.monitoring import service
from cityhub.monitoring.models import Alarm, AlarmEvent, RuleState, Sensor
from cityhub.monitoring.rules import AlarmState
from cityhub.notify import service as notify
from cityhub.notify.models import OutboxMessage, Topic
from cityhub.org.models import Unit, UnitTier
from cityhub.web.machine_text import explain
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Order, OrderEvent


def _answer_and_close(session: Session, order_id: int, at: datetime = T0 + timedelta(hours=1)) -> None:
    """The unit accepts and replies, the supervisor closes (办结) ``at``: a machine's order needs no callback."""
    orders.act(session, order_id=order_id, action="accept", actor=PERSON, now=at)
    orders.act(session, order_id=order_id, action="reply", actor=PERSON, params={"text": "已清运"}, now=at)
    orders.act(session, order_id=order_id, action="close", actor=PERSON, now=at)


def _actions(session: Session, alarm_id: int) -> list[str]:
    return [e.action for e in service.alarm_events(session, alarm_id=alarm_id)]


def _two_cameras_on_one_order(session: Session) -> tuple[Alarm, Alarm]:
    """Two cameras of one garbage pile, 30 m apart, alarming two minutes apart: two alarms on one order."""
    _camera(session, "CAM-A", 23.05, "东口摄像头")
    _camera(session, "CAM-B", 23.05 + NEAR, "西口摄像头")
    _garbage_rule(session)
    session.commit()
    service.ingest(session, items=_seen("CAM-A", [0.92]), now=T0)
    service.ingest(session, items=_seen("CAM-B", [0.9], start=T0 + timedelta(minutes=2)), now=T0)
    session.commit()
    first, second = _alarm_of(session, "CAM-A"), _alarm_of(session, "CAM-B")
    assert first.order_id == second.order_id is not None
    return first, second


def _one_camera_alarming(session: Session) -> Alarm:
    """One camera seeing garbage at ``T0``: its alarm, which opened an order."""
    _camera(session, "CAM-A", 23.05, "东口摄像头")
    _garbage_rule(session)
    session.commit()
    service.ingest(session, items=_seen("CAM-A", [0.92]), now=T0)
    session.commit()
    return _alarm_of(session, "CAM-A")


def _until_waiting_or_done(engine: Engine, pid: int, thread: threading.Thread) -> None:
    """Return once the session of backend ``pid`` (run by ``thread``) waits for a lock, or the thread has ended."""
    waiting = text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
    with Session(bind=engine) as watcher:
        while thread.is_alive() and not watcher.scalar(waiting, {"pid": pid}):
            watcher.rollback()
            thread.join(0.02)


def _in_two_sessions(
    engine: Engine,
    first: Callable[[Session], object],
    second: Callable[[Session], Any],
    then: Callable[[Session], object] | None = None,
) -> Any:
    """Two real sessions on PostgreSQL, deterministically interleaved: ``first`` in one (not committed yet), then
    ``second`` in the other, in a thread, committed; once that waits for a lock or has ended, ``then`` in the first,
    which commits. What ``second`` returned; the test fails on either's error (a deadlock rolls one back)."""
    one, two = Session(bind=engine), Session(bind=engine)
    outcome: dict[str, Any] = {}
    pid = two.scalar(text("SELECT pg_backend_pid()"))

    def run_second() -> None:
        try:
            outcome["result"] = second(two)
            two.commit()
        except BaseException as exc:
            outcome["error"] = exc
            two.rollback()

    try:
        first(one)
        thread = threading.Thread(target=run_second)
        thread.start()
        _until_waiting_or_done(engine, pid, thread)
        if then is not None:
            then(one)
        one.commit()
        thread.join(120)
        assert not thread.is_alive() and "error" not in outcome, outcome
    finally:
        one.close()
        two.close()
    return outcome["result"]


def test_closing_an_order_clears_its_alarms_so_a_camera_still_seeing_the_problem_opens_a_new_one(
    db_session: Session, units: dict[str, int]
) -> None:
    """Two cameras' alarms on one order, both still active when the supervisor closes it: both are cleared by the close
    (in their trail, the order's and the alarm_cleared subscribers'), the job escalates neither, and the next crossing
    frame raises a new alarm that opens a new order — it used to be counted on the old alarm with no order at all."""
    notify.add_subscription(db_session, target="http://127.0.0.1:9/cleared", topics=["alarm_cleared"])
    first, second = _two_cameras_on_one_order(db_session)
    old = first.order_id
    _answer_and_close(db_session, old)
    db_session.commit()

    for alarm in (first, second):
        db_session.refresh(alarm)
        assert alarm.state == AlarmState.CLEARED and alarm.open_key is None and alarm.cleared_by == "system"
        cleared = service.alarm_events(db_session, alarm_id=alarm.id)[-1]
        order = db_session.get(Order, old)
        assert order is not None and order.state == State.CLOSED_RESOLVED
        assert cleared.action == "cleared" and cleared.note == f"order {order.number} closed while the alarm was open"
        assert explain(ZH, cleared.note) == f"工单 {order.number} 办结时报警仍未解除"
    # One comment on the closed order naming both alarms, after the close, in either language.
    trail = orders.history(db_session, order_id=old)
    assert [e.action for e in trail[-2:]] == ["close", "comment"]
    text = (trail[-1].payload or {}).get("text", "")
    assert text.startswith(f"alarms #{first.id}, #{second.id} cleared at ")
    assert explain(ZH, text).endswith("解除：工单办结时报警仍未解除；此后再次越限将另立新工单")
    assert explain(EN, text).endswith(
        "the order was closed while still alarming; a crossing from now on opens a new order"
    )
    bodies = [
        json.loads(notify.render_body(db_session, m))["event"]
        for m in db_session.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topic.ALARM_CLEARED))
    ]
    assert sorted(b["alarm_id"] for b in bodies) == [first.id, second.id]
    assert {b["note"] for b in bodies} == {f"order {order.number} closed while the alarm was open"}

    # Nothing left to escalate on the closed order.
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=3)) == {"escalated": 0, "orders_escalated": 0}
    # The camera still sees the pile: the next frame is a new alarm and a new order (not the old one, not none).
    back = T0 + timedelta(hours=2)
    again = service.ingest(db_session, items=_seen("CAM-A", [0.93], start=back), now=back)
    db_session.commit()
    assert (again.alarms_raised, again.orders_opened, again.alarms_repeated, again.alarms_reopened) == (1, 1, 0, 0)
    new = _alarm_of(db_session, "CAM-A")
    assert new.id not in (first.id, second.id) and new.order_id not in (None, old)
    assert _orders(db_session) == 2


def test_the_escalation_job_clears_an_alarm_left_open_on_a_closed_order_instead_of_escalating_it(
    db_session: Session, units: dict[str, int]
) -> None:
    """An alarm still open on an order closed before this release (or behind the life cycle's back) is not escalated:
    the job clears it as the close would have, and the next crossing opens a new order."""
    _sensor(db_session, "WL-C")
    _rule(db_session, duration_s=0, escalate_after_minutes=30)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-C", [30]), now=T0)
    db_session.commit()
    alarm = _alarm_of(db_session, "WL-C")
    db_session.execute(update(Order).where(Order.id == alarm.order_id).values(state=State.CLOSED_UNRESOLVED.value))
    db_session.commit()
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=1)) == {"escalated": 0, "orders_escalated": 0}
    db_session.commit()
    db_session.refresh(alarm)
    assert alarm.state == AlarmState.CLEARED and alarm.escalated_at is None
    assert _actions(db_session, alarm.id) == ["raised", "order_opened", "cleared"]
    # Ended with no record of when (no closed_at, no event): the late readings are judged by the job's clear.
    back = T0 + timedelta(hours=1, minutes=5)
    later = service.ingest(db_session, items=_series("WL-C", [31], start=back), now=back)
    db_session.commit()
    assert (later.alarms_raised, later.orders_opened) == (1, 1)


def test_an_alarm_escalated_cleared_and_reopened_is_escalated_again_from_its_reopening(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escalated, cleared by the readings, reopened within the re-arm window, and again nobody acknowledges it: it is
    escalated again the rule's 30 minutes after the reopening (it never was), the badge on the list again — its order,
    escalated by the first episode, not a second step (特急 for the same problem by one alarm)."""
    monkeypatch.setenv("CITYHUB_SENSOR_REARM_MINUTES", "30")
    _sensor(db_session, "WL-E")
    _rule(db_session, duration_s=0, urgency="normal", escalate_after_minutes=30)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-E", [30]), now=T0)
    db_session.commit()
    assert service.escalate_due(db_session, now=T0 + timedelta(minutes=31)) == {"escalated": 1, "orders_escalated": 1}
    db_session.commit()
    cleared_at, reopened_at = T0 + timedelta(minutes=40), T0 + timedelta(minutes=50)
    service.ingest(db_session, items=_series("WL-E", [8], start=cleared_at), now=cleared_at)
    result = service.ingest(db_session, items=_series("WL-E", [33], start=reopened_at), now=reopened_at)
    db_session.commit()
    alarm = _alarm_of(db_session, "WL-E")
    assert result.alarms_reopened == 1 and alarm.state == AlarmState.ACTIVE
    assert alarm.escalated_at is None  # this episode is not escalated yet
    assert service.escalate_due(db_session, now=reopened_at + timedelta(minutes=29))["escalated"] == 0
    assert service.escalate_due(db_session, now=reopened_at + timedelta(minutes=31)) == {
        "escalated": 1,
        "orders_escalated": 0,
    }
    db_session.commit()
    db_session.refresh(alarm)
    assert alarm.escalated_at is not None
    escalations = db_session.scalars(
        select(AlarmEvent.payload).where(AlarmEvent.alarm_id == alarm.id, AlarmEvent.action == "escalated")
    ).all()
    assert escalations[-1] == {"after_minutes": 30, "order_id": alarm.order_id, "order_escalated_before": True}
    order = db_session.get(Order, alarm.order_id)
    assert order is not None and order.urgency == "urgent" and order.escalation_level == 1
    steps = db_session.scalars(
        select(OrderEvent.id).where(OrderEvent.order_id == order.id, OrderEvent.action == "escalate")
    ).all()
    assert len(steps) == 1
    # A second run finds it escalated.
    assert service.escalate_due(db_session, now=reopened_at + timedelta(hours=2))["escalated"] == 0


EAST = {
    "type": "Polygon",
    "coordinates": [[[113.1, 23.0], [113.2, 23.0], [113.2, 23.1], [113.1, 23.1], [113.1, 23.0]]],
}


def test_a_camera_across_a_community_boundary_joins_the_order_which_names_both_communities(
    db_session: Session, units: dict[str, int]
) -> None:
    """One pile seen by two cameras either side of the boundary between 桂花社区 (113.0–113.1) and 荷塘社区
    (113.1–113.2), some 20 m apart: one order, left with the unit that has it, the joining alarm's comment and its
    ``order_joined`` event naming both communities — it used to say nothing of the other community."""
    db_session.add(
        Unit(code="M-SQ2", name="荷塘社区居委会", tier=UnitTier.COMMUNITY, parent_id=units["street"], boundary=EAST)
    )
    db_session.commit()
    camera = {"lat": 23.05, "kind": "video_ai", "metrics": {"garbage_exposed": ""}}
    _sensor(db_session, "CAM-W", name="桂花路西摄像头", lng=113.0999, **camera)
    _sensor(db_session, "CAM-E", name="荷塘路东摄像头", lng=113.1001, **camera)
    _garbage_rule(db_session)
    db_session.commit()
    west, east = service.require_sensor(db_session, code="CAM-W"), service.require_sensor(db_session, code="CAM-E")
    assert west.community_id == units["community"] and east.community_id not in (None, units["community"])
    service.ingest(db_session, items=_seen("CAM-W", [0.92]), now=T0)
    joined = service.ingest(db_session, items=_seen("CAM-E", [0.9], start=T0 + timedelta(minutes=3)), now=T0)
    db_session.commit()
    assert (joined.alarms_joined, joined.orders_opened, _orders(db_session)) == (1, 0, 1)
    alarm = _alarm_of(db_session, "CAM-E")
    order = db_session.get(Order, alarm.order_id)
    assert order is not None and order.lead_unit_id == units["community"]  # not moved
    event = db_session.scalars(
        select(AlarmEvent.payload).where(AlarmEvent.alarm_id == alarm.id, AlarmEvent.action == "order_joined")
    ).one()
    assert event is not None
    assert event["across_communities"] == {"sensor_community": "M-SQ2", "order_community": "M-SQ"}
    text = (orders.history(db_session, order_id=order.id)[-1].payload or {}).get("text", "")
    assert '; sensor "荷塘路东摄像头" stands in 荷塘社区居委会, this order in 桂花社区居委会: not moved;' in text
    assert "监测点“荷塘路东摄像头”位于荷塘社区居委会，本工单属桂花社区居委会：同一问题仍为一张工单，未改派" in explain(
        ZH, text
    )


def test_two_cameras_near_each_other_alarming_at_once_open_one_order_on_postgresql(
    db_session: Session, db_engine: Engine, db_backend: str, units: dict[str, int]
) -> None:
    """Two requests, one per camera of one garbage pile, on PostgreSQL: each locked only its own camera's row, so
    the second decided before the first committed, saw no order near and opened its own. Now the second waits for
    the first (a lock on the area, taken before anything is written), then joins its order. Deterministic: the first
    commits only once the second has finished (the old code: two orders) or waits for a lock (one order)."""
    if db_backend != "postgresql":
        pytest.skip("concurrent writers: SQLite has one writer at a time")
    _camera(db_session, "CAM-A", 23.05, "东口摄像头")
    _camera(db_session, "CAM-B", 23.05 + NEAR, "西口摄像头")
    _garbage_rule(db_session)
    db_session.commit()

    def push_first(session: Session) -> None:
        opened = service.ingest(session, items=_seen("CAM-A", [0.92]), now=T0)
        assert opened.orders_opened == 1  # not committed yet

    at = T0 + timedelta(minutes=1)
    result = _in_two_sessions(
        db_engine, push_first, lambda session: service.ingest(session, items=_seen("CAM-B", [0.9], start=at), now=at)
    )
    assert (result.alarms_joined, result.orders_opened) == (1, 0)
    assert _orders(db_session) == 1
    assert _alarm_of(db_session, "CAM-A").order_id == _alarm_of(db_session, "CAM-B").order_id


def test_cancelling_a_machine_order_clears_its_alarms_as_a_false_detection_with_the_reason(
    db_session: Session, units: dict[str, int]
) -> None:
    """作废 of a camera's order (a false detection) left its alarm open and escalated: now it is cleared by whoever
    cancelled it, the reason in its trail and the alarm_cleared message, one comment on the order, never escalated —
    and, as a person's clear, the camera still reading the same scene opens no new order until it reads clear once."""
    notify.add_subscription(db_session, target="http://127.0.0.1:9/cleared", topics=["alarm_cleared"])
    alarm = _one_camera_alarming(db_session)
    at = T0 + timedelta(minutes=20)
    reason = "误识别：路边停放的三轮车"
    orders.act(db_session, order_id=alarm.order_id, action="cancel", actor=PERSON, params={"reason": reason}, now=at)
    db_session.commit()
    db_session.refresh(alarm)
    order = db_session.get(Order, alarm.order_id)
    assert order is not None and order.state == State.CANCELLED
    assert alarm.state == AlarmState.CLEARED and alarm.open_key is None and alarm.cleared_by == PERSON.name
    cleared = service.alarm_events(db_session, alarm_id=alarm.id)[-1]
    note = f"order {order.number} cancelled while the alarm was open; note: {reason}"
    assert (cleared.action, cleared.actor, cleared.note) == ("cleared", PERSON.name, note)
    assert explain(ZH, cleared.note) == f"工单 {order.number} 作废时报警仍未解除；说明：{reason}"
    text = (orders.history(db_session, order_id=order.id)[-1].payload or {}).get("text", "")
    assert text.startswith(f"alarm #{alarm.id} cleared at ") and "the order was cancelled while it was open" in text
    assert explain(ZH, text).endswith("工单作废时报警仍未解除；读数恢复正常后再次越限才另立新工单")
    [message] = db_session.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topic.ALARM_CLEARED))
    assert json.loads(notify.render_body(db_session, message))["event"]["note"] == note
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=3)) == {"escalated": 0, "orders_escalated": 0}
    # The same false scene on the next frames: no new alarm, no new order (disarmed) …
    hour = T0 + timedelta(hours=1)
    still = service.ingest(db_session, items=_seen("CAM-A", [0.93, 0.94], start=hour), now=hour + timedelta(hours=1))
    assert (still.stored, still.alarms_raised, still.orders_opened, _orders(db_session)) == (2, 0, 0, 1)
    # … until the scene reads clear once and the camera sees something again.
    later = T0 + timedelta(hours=2)
    again = service.ingest(db_session, items=_seen("CAM-A", [0.1, 0.9], start=later), now=later + timedelta(hours=1))
    db_session.commit()
    assert (again.alarms_raised, again.orders_opened, _orders(db_session)) == (1, 1, 2)


def test_merging_a_machine_order_moves_its_open_alarms_to_the_master_which_counts_and_escalates_them(
    db_session: Session, units: dict[str, int]
) -> None:
    """合并 of a camera's order into another left its alarm open on the merged order, escalated there (an escalation
    refused by the life cycle, every run): now the alarm moves to the master — an ``order_moved`` event, both orders'
    trails say it — counts there (the master escalated once for both alarms, the merged order never) and is cleared by
    the master's close."""
    _camera(db_session, "CAM-A", 23.05, "东口摄像头")
    _camera(db_session, "CAM-F", 23.05 + 0.0018, "北口摄像头")  # 200 m: its own order
    _garbage_rule(db_session)
    db_session.commit()
    service.ingest(db_session, items=_seen("CAM-A", [0.92]), now=T0)
    service.ingest(db_session, items=_seen("CAM-F", [0.9]), now=T0)
    db_session.commit()
    moving, staying = _alarm_of(db_session, "CAM-A"), _alarm_of(db_session, "CAM-F")
    merged_id, master_id = moving.order_id, staying.order_id
    assert merged_id is not None and master_id is not None and merged_id != master_id
    at = T0 + timedelta(minutes=10)
    orders.act(db_session, order_id=merged_id, action="merge", actor=PERSON, params={"master_id": master_id}, now=at)
    db_session.commit()
    db_session.refresh(moving)
    merged, master = db_session.get(Order, merged_id), db_session.get(Order, master_id)
    assert merged is not None and master is not None and merged.state == State.MERGED
    assert moving.order_id == master_id and moving.open_key is not None and moving.state == AlarmState.ACTIVE
    event = service.alarm_events(db_session, alarm_id=moving.id)[-1]
    assert (event.action, event.actor) == ("order_moved", PERSON.name)
    assert event.payload == {
        "from_order_id": merged_id,
        "from_number": merged.number,
        "order_id": master_id,
        "number": master.number,
    }
    said = (orders.history(db_session, order_id=merged_id)[-1].payload or {}).get("text", "")
    assert said.startswith(f"alarm #{moving.id} moved to order {master.number} at ")
    assert explain(ZH, said).startswith(f"监测报警 #{moving.id} 于 ") and f"合并转至工单 {master.number}" in explain(
        ZH, said
    )
    heard = [(e.payload or {}).get("text", "") for e in orders.history(db_session, order_id=master_id)]
    assert any(
        t.startswith(f"alarm #{moving.id} moved here at ") and t.endswith("alarms on this order: 2") for t in heard
    )
    assert [a for a, _ in service.alarms_of_order(db_session, master_id)] == sorted([moving.id, staying.id])
    # Unacknowledged: escalated, on the master, once for both; nothing acts on the merged order.
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=1)) == {"escalated": 2, "orders_escalated": 1}
    db_session.commit()
    assert not db_session.scalars(
        select(OrderEvent.id).where(OrderEvent.order_id == merged_id, OrderEvent.action == "escalate")
    ).all()
    # Its next frame counts on the moved alarm; the master's close clears both.
    half = T0 + timedelta(minutes=30)
    repeat = service.ingest(db_session, items=_seen("CAM-A", [0.95], start=half), now=half)
    assert (repeat.alarms_repeated, repeat.alarms_raised) == (1, 0), repeat
    _answer_and_close(db_session, master_id)
    db_session.commit()
    for alarm in (moving, staying):
        db_session.refresh(alarm)
        assert alarm.state == AlarmState.CLEARED


def test_a_reading_measured_before_the_close_and_arriving_after_it_opens_no_new_order(
    db_session: Session, units: dict[str, int]
) -> None:
    """A camera's frame measured before the supervisor's 办结 but delivered after it (a gateway's backlog) raised a new
    alarm and a new order straight away — for a moment the close had already answered for. It is stored and counted
    late, evaluated no further; a frame measured after the close opens the new order as before."""
    old = _one_camera_alarming(db_session)
    closed_at = T0 + timedelta(hours=1)
    _answer_and_close(db_session, old.order_id, at=closed_at)
    db_session.commit()
    backlog = _seen("CAM-A", [0.95, 0.96], start=closed_at - timedelta(minutes=5))[:1]  # measured 5 min before
    late = service.ingest(db_session, items=backlog, now=closed_at + timedelta(minutes=10))
    db_session.commit()
    assert (late.stored, late.late, late.alarms_raised, late.orders_opened) == (1, 1, 0, 0)
    assert _alarm_of(db_session, "CAM-A").id == old.id and _orders(db_session) == 1
    after = service.ingest(
        db_session, items=_seen("CAM-A", [0.93], start=closed_at + timedelta(minutes=1)), now=closed_at
    )
    db_session.commit()
    assert (after.alarms_raised, after.orders_opened, _orders(db_session)) == (1, 1, 2)


def test_the_escalation_job_clears_an_alarm_left_open_on_a_cancelled_order_and_moves_one_of_a_merged_order(
    db_session: Session, units: dict[str, int]
) -> None:
    """Alarms left open on orders cancelled or merged before this release (or behind the life cycle's back) were
    escalated every run: the job now clears the cancelled order's (no escalation) and moves the merged order's to its
    master, where it is escalated — the merged order is never acted on."""
    _camera(db_session, "CAM-A", 23.05, "东口摄像头")
    _camera(db_session, "CAM-F", 23.05 + 0.0018, "北口摄像头")
    _camera(db_session, "CAM-X", 23.05 + 0.0036, "南口摄像头")
    _garbage_rule(db_session)
    db_session.commit()
    for code in ("CAM-A", "CAM-F", "CAM-X"):
        service.ingest(db_session, items=_seen(code, [0.92]), now=T0)
    db_session.commit()
    cancelled, merged, master = (_alarm_of(db_session, c) for c in ("CAM-A", "CAM-F", "CAM-X"))
    db_session.execute(update(Order).where(Order.id == cancelled.order_id).values(state=State.CANCELLED.value))
    db_session.execute(
        update(Order)
        .where(Order.id == merged.order_id)
        .values(state=State.MERGED.value, master_order_id=master.order_id)
    )
    db_session.commit()
    merged_order = merged.order_id
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=1)) == {"escalated": 2, "orders_escalated": 1}
    db_session.commit()
    for alarm in (cancelled, merged, master):
        db_session.refresh(alarm)
    assert cancelled.state == AlarmState.CLEARED and cancelled.escalated_at is None
    assert merged.order_id == master.order_id and merged.escalated_at is not None
    assert not db_session.scalars(
        select(OrderEvent.id).where(
            OrderEvent.order_id.in_([cancelled.order_id, merged_order]), OrderEvent.action == "escalate"
        )
    ).all()


def test_the_escalation_job_and_a_readings_file_clearing_alarms_of_one_closed_order_do_not_deadlock(
    db_session: Session, db_engine: Engine, db_backend: str, units: dict[str, int]
) -> None:
    """On PostgreSQL: a readings file (its chunks in one transaction) clears one camera's alarm of an order closed
    behind the life cycle's back — the alarm's row, then the order's (its comment) — while the escalation job clears
    the order's other alarm: the job took that alarm, then waited for the order (or for the first alarm, to claim
    it), and the file's next chunk, clearing the second alarm, waited for the job: a deadlock, one of the two rolled
    back. Now the job takes the order first and skips what another holds, leaving it to its next run. Deterministic:
    the file's second chunk is sent only once the job waits for a lock or has finished."""
    if db_backend != "postgresql":
        pytest.skip("concurrent writers: SQLite has one writer at a time")
    first, second = _two_cameras_on_one_order(db_session)
    db_session.execute(update(Order).where(Order.id == first.order_id).values(state=State.CLOSED_RESOLVED.value))
    db_session.commit()
    back = T0 + timedelta(minutes=20)
    _in_two_sessions(
        db_engine,
        # The file's first chunk: CAM-B's scene clear — its alarm, then the order (the comment), held till the end.
        lambda batch: service.ingest(batch, items=_seen("CAM-B", [0.1], start=back), now=back),
        lambda job: service.escalate_due(job, now=T0 + timedelta(hours=1)),
        # Its second chunk: CAM-A's scene clear too.
        lambda batch: service.ingest(batch, items=_seen("CAM-A", [0.1], start=back), now=back),
    )
    for alarm in (first, second):
        db_session.refresh(alarm)
        assert alarm.state == AlarmState.CLEARED and alarm.escalated_at is None
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=2)) == {"escalated": 0, "orders_escalated": 0}


def _state_of(session: Session, code: str) -> RuleState:
    """The rule state of camera ``code`` (one rule), read afresh."""
    return session.scalars(
        select(RuleState)
        .join(Sensor, Sensor.id == RuleState.sensor_id)
        .where(Sensor.code == code)
        .execution_options(populate_existing=True)
    ).one()


def test_a_reading_in_flight_at_the_close_cannot_move_the_rule_state_back_and_open_a_new_order(
    db_session: Session, db_engine: Engine, db_backend: str, units: dict[str, int]
) -> None:
    """On PostgreSQL: a batch of readings measured before the supervisor's 办结, arriving while the close was being
    committed, read the rule state before the close moved it on to the close's time and wrote it after — back to its
    own reading's time — so the gateway's next backlog reading, measured before the close too, raised a new alarm and
    opened a new order for a moment the close had answered for. Now a batch locks the orders of its alarms before it
    reads their rule states: it waits for the close and reads what it committed. Deterministic: the close commits only
    once the batch waits for a lock (or has finished: the old code waited on the alarm row)."""
    if db_backend != "postgresql":
        pytest.skip("concurrent writers: SQLite has one writer at a time")
    alarm = _one_camera_alarming(db_session)
    order_id = alarm.order_id
    assert order_id is not None
    closed_at = T0 + timedelta(hours=1)
    arrived = closed_at + timedelta(minutes=10)
    backlog = _seen("CAM-A", [0.95], start=closed_at - timedelta(minutes=5))
    result = _in_two_sessions(
        db_engine,
        lambda closing: _answer_and_close(closing, order_id, at=closed_at),  # not committed yet
        lambda batch: service.ingest(batch, items=backlog, now=arrived),
    )
    assert (result.late, result.alarms_raised) == (1, 0)
    assert _state_of(db_session, "CAM-A").last_at == closed_at  # moved on by the close, not back by the batch
    # The gateway's next backlog reading, measured before the close too: late, no new alarm, no new order.
    more = service.ingest(db_session, items=_seen("CAM-A", [0.96], start=closed_at - timedelta(minutes=3)), now=arrived)
    db_session.commit()
    assert (more.late, more.alarms_raised, more.orders_opened) == (1, 0, 0), more
    assert _orders(db_session) == 1 and _alarm_of(db_session, "CAM-A").id == alarm.id


def test_a_readings_file_and_a_persons_clear_of_alarms_on_one_order_do_not_deadlock(
    db_session: Session, db_engine: Engine, db_backend: str, units: dict[str, int]
) -> None:
    """On PostgreSQL: a readings file (its chunks in one transaction) cleared one camera's alarm — a comment on the
    order, whose row it then held — while the duty officer cleared the other camera's alarm of the same order: the
    clear wrote that alarm, then waited for the order (its comment), and the file's next chunk, counting a frame on
    that alarm, waited for the clear: a deadlock, one of the two rolled back. Now a person's clear locks the order
    before the alarm, as a batch does: it waits for the file, then clears. Deterministic: the file's second chunk is
    sent only once the clear waits for a lock or has finished."""
    if db_backend != "postgresql":
        pytest.skip("concurrent writers: SQLite has one writer at a time")
    first, second = _two_cameras_on_one_order(db_session)
    later = T0 + timedelta(minutes=20)
    counted: list[int] = []

    def second_chunk(batch: Session) -> None:
        # CAM-A still sees the pile: a frame counted on the alarm the person is clearing.
        counted.append(service.ingest(batch, items=_seen("CAM-A", [0.95], start=later), now=later).alarms_repeated)

    _in_two_sessions(
        db_engine,
        # The file's first chunk: CAM-B's scene clear — its alarm cleared, a comment on the order.
        lambda batch: service.ingest(batch, items=_seen("CAM-B", [0.1], start=later), now=later),
        lambda person: service.clear(person, alarm_id=first.id, actor=PERSON, note="现场已核实"),
        second_chunk,
    )
    assert counted == [1]
    for alarm in (first, second):
        db_session.refresh(alarm)
        assert alarm.state == AlarmState.CLEARED
    assert first.cleared_by == PERSON.name and first.count == 2 and second.cleared_by == "system"


def test_an_order_ended_behind_the_life_cycles_back_keeps_late_readings_out_from_its_ending_event(
    db_session: Session, units: dict[str, int]
) -> None:
    """An order closed outside the life cycle (an import, a repair) without ``closed_at`` had its alarm cleared by the
    escalation job but its rule state left where it was: a frame measured before the close, arriving after, raised a
    new alarm and opened a new order. The ending event's time stands in for ``closed_at``; a frame measured after it
    opens the new order as before."""
    alarm = _one_camera_alarming(db_session)
    ended = T0 + timedelta(minutes=30)
    db_session.execute(update(Order).where(Order.id == alarm.order_id).values(state=State.CLOSED_RESOLVED.value))
    db_session.add(
        OrderEvent(
            order_id=alarm.order_id,
            action="close",
            from_state=State.DISPATCHED.value,
            to_state=State.CLOSED_RESOLVED.value,
            actor_name="migration",
            at=ended,
        )
    )
    db_session.commit()
    job = T0 + timedelta(hours=1)
    assert service.escalate_due(db_session, now=job) == {"escalated": 0, "orders_escalated": 0}
    db_session.commit()
    db_session.refresh(alarm)
    assert alarm.state == AlarmState.CLEARED
    assert _state_of(db_session, "CAM-A").last_at == ended
    backlog = service.ingest(db_session, items=_seen("CAM-A", [0.95], start=ended - timedelta(minutes=2)), now=job)
    db_session.commit()
    assert (backlog.late, backlog.alarms_raised, backlog.orders_opened) == (1, 0, 0), backlog
    after = service.ingest(db_session, items=_seen("CAM-A", [0.93], start=ended + timedelta(minutes=5)), now=job)
    db_session.commit()
    assert (after.alarms_raised, after.orders_opened, _orders(db_session)) == (1, 1, 2)


def test_the_escalation_job_follows_a_chain_of_merges_to_its_end_in_one_run(
    db_session: Session, units: dict[str, int]
) -> None:
    """Orders merged in a chain behind the life cycle's back (A into B, B into C) with their alarms still open: the
    job moved A's alarm to B and B's to C, then A's on to C only at its next run — meanwhile on a merged order, nobody
    handling it. Now both go to C in one run, and C is escalated once for all three; a cycle of merges (no end) is
    left alone, not moved round and round."""
    codes = ("CAM-A", "CAM-F", "CAM-X", "CAM-P", "CAM-Q")
    for i, code in enumerate(codes):
        _camera(db_session, code, 23.05 + 0.0018 * i, f"摄像头{i}")  # 200 m apart: an order each
    _garbage_rule(db_session)
    db_session.commit()
    for code in codes:
        service.ingest(db_session, items=_seen(code, [0.92]), now=T0)
    db_session.commit()
    a, b, c, p, q = (_alarm_of(db_session, code) for code in codes)
    links = [(a, b), (b, c), (p, q), (q, p)]  # A → B → C; P ↔ Q
    for merged, master in links:
        db_session.execute(
            update(Order)
            .where(Order.id == merged.order_id)
            .values(state=State.MERGED.value, master_order_id=master.order_id)
        )
    db_session.commit()
    cycle = {p.id: p.order_id, q.id: q.order_id}
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=1)) == {"escalated": 3, "orders_escalated": 1}
    db_session.commit()
    for alarm in (a, b, c, p, q):
        db_session.refresh(alarm)
    assert a.order_id == b.order_id == c.order_id
    moved = [e for e in service.alarm_events(db_session, alarm_id=a.id) if e.action == "order_moved"]
    assert [(e.payload or {}).get("order_id") for e in moved] == [c.order_id]
    assert {p.id: p.order_id, q.id: q.order_id} == cycle and p.open_key is not None and p.escalated_at is None


def test_a_camera_alarming_near_an_order_being_closed_opens_its_own_order_not_the_closed_one(
    db_session: Session, db_engine: Engine, db_backend: str, units: dict[str, int]
) -> None:
    """On PostgreSQL: a second camera of one garbage pile alarming while the supervisor's 办结 of the first camera's
    order was being committed chose that order by a plain read and waited for it to comment: once the close committed
    the comment failed on the order's stale version (StaleDataError) and the whole batch was refused — the camera's
    frames lost until its gateway sent them again. Now the order chosen is locked and read again: closed meanwhile,
    the alarm opens its own order. Deterministic: the close commits only once the second camera's batch waits for a
    lock (or has finished)."""
    if db_backend != "postgresql":
        pytest.skip("concurrent writers: SQLite has one writer at a time")
    first = _one_camera_alarming(db_session)
    _camera(db_session, "CAM-B", 23.05 + NEAR, "西口摄像头")
    db_session.commit()
    order_id = first.order_id
    assert order_id is not None
    closed_at = T0 + timedelta(hours=1)
    seen_at = closed_at + timedelta(minutes=1)
    result = _in_two_sessions(
        db_engine,
        lambda closing: _answer_and_close(closing, order_id, at=closed_at),  # not committed yet
        lambda batch: service.ingest(batch, items=_seen("CAM-B", [0.9], start=seen_at), now=seen_at),
    )
    assert (result.alarms_joined, result.orders_opened) == (0, 1)
    second = _alarm_of(db_session, "CAM-B")
    assert second.order_id not in (None, order_id) and _orders(db_session) == 2
