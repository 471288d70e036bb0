# ruff: noqa: F811  (fixtures imported from the neighbouring test modules are parameters here)
"""Two cameras seeing one garbage pile, two gauges in one flooded tunnel: on both backends, a new alarm of the same
kind of sensor and metric near another sensor whose alarm's order is still open joins that order — said in the
alarm's trail, on the order with the count of its alarms, in the readings' answer and in the ``alarm`` webhook —
instead of opening a second order for the same problem; farther, another detection, too old or switched off, not."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_monitoring import EN, T0, ZH, _detection_rule, _rule, _sensor, _series, _units, units  # noqa: F401  (the fixture)

from cityhub.monitoring import service
from cityhub.monitoring.models import Alarm, AlarmEvent, Sensor
from cityhub.notify import service as notify
from cityhub.notify.models import OutboxMessage, Topic
from cityhub.web.machine_text import explain
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order

# At latitude 23.05 a degree of latitude is ~110.7 km: 0.00027° is ~30 m, 0.0018° ~200 m.
NEAR, FAR = 0.00027, 0.0018
CAMERA = {"kind": "video_ai", "metrics": {"garbage_exposed": "", "street_vending": ""}, "lng": 113.05}


def _camera(session: Session, code: str, lat: float, name: str) -> None:
    _sensor(session, code, name=name, lat=lat, **CAMERA)


def _garbage_rule(session: Session, metric: str = "garbage_exposed") -> None:
    _detection_rule(session, metric)


def _seen(code: str, values: list[float], start=T0, metric: str = "garbage_exposed") -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [{**i, "metric": metric} for i in _series(code, values, start=start, step_min=1)]


def _alarm_of(session: Session, code: str) -> Alarm:
    return session.scalars(
        select(Alarm).join(Sensor, Sensor.id == Alarm.sensor_id).where(Sensor.code == code).order_by(Alarm.id.desc())
    ).first()  # type: ignore[return-value]


def _orders(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Order)) or 0


def test_a_second_camera_near_the_first_joins_its_open_order_and_says_so(
    db_session: Session, units: dict[str, int]
) -> None:
    notify.add_subscription(db_session, target="http://127.0.0.1:9/all", topics=["alarm"])
    _camera(db_session, "CAM-A", 23.05, "桂花路东口摄像头")
    _camera(db_session, "CAM-B", 23.05 + NEAR, "桂花路西口摄像头")
    _garbage_rule(db_session)
    db_session.commit()
    first = service.ingest(db_session, items=_seen("CAM-A", [0.92]))
    db_session.commit()
    assert (first.alarms_raised, first.orders_opened, first.alarms_joined) == (1, 1, 0)
    opened = _alarm_of(db_session, "CAM-A")

    shot = "https://video.example.org/snap/CAM-B/0920.jpg"
    frames = [{**r, "media_url": shot} for r in _seen("CAM-B", [0.88], start=T0 + timedelta(minutes=20))]
    second = service.ingest(db_session, items=frames)
    db_session.commit()
    assert (second.alarms_raised, second.orders_opened, second.alarms_joined) == (1, 0, 1)
    joined = _alarm_of(db_session, "CAM-B")
    assert joined.id != opened.id and joined.order_id == opened.order_id and _orders(db_session) == 1

    # The alarm's record: its order_joined event names the order, the camera near and how far, the alarms it holds.
    event = db_session.scalars(
        select(AlarmEvent).where(AlarmEvent.alarm_id == joined.id, AlarmEvent.action == "order_joined")
    ).one()
    order = db_session.get(Order, opened.order_id)
    assert order is not None
    assert event.payload == {
        "order_id": order.id,
        "number": order.number,
        "alarms": 2,
        "near_sensor_code": "CAM-A",
        "distance_m": 30,
        "across_communities": None,
    }
    # The order's trail: the second camera's detection, how far from the first, and the count, in either language.
    note = orders.history(db_session, order_id=order.id)[-1]
    text = (note.payload or {}).get("text", "")
    assert note.action == "comment" and text.startswith(f'sensor "桂花路西口摄像头" alarmed (alarm #{joined.id})')
    zh = explain(ZH, text)
    assert f"监测点“桂花路西口摄像头”报警（监测报警 #{joined.id}）" in zh
    assert "距本工单所办报警的监测点“桂花路东口摄像头” 30 米，视为同一问题" in zh
    assert zh.endswith(f"本工单尚在办理，不另立工单；本工单已关联报警 2 条；抓拍：{shot}")
    assert explain(EN, text).endswith(
        f"this order is still being handled, so no new order was opened; alarms on this order: 2; snapshot: {shot}"
    )
    assert service.alarms_of_order(db_session, order.id) == [(opened.id, "CAM-A"), (joined.id, "CAM-B")]
    # What the second camera saw is among the order's files, beside the first's (given with the appeal), by the system.
    assert [(a.url, a.uploaded_by) for a in order.attachments] == [(shot, "system")]

    # The webhook: the first alarm opened its order (joined null), the second joined it.
    bodies = [
        json.loads(notify.render_body(db_session, m))
        for m in db_session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == Topic.ALARM).order_by(OutboxMessage.id)
        )
    ]
    assert [b["event"]["alarm_id"] for b in bodies] == [opened.id, joined.id]
    assert bodies[0]["event"]["joined"] is None
    assert bodies[1]["event"]["joined"] == event.payload
    assert bodies[1]["order"]["id"] == order.id


def test_farther_another_detection_or_switched_off_each_opens_its_own_order(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _camera(db_session, "CAM-A", 23.05, "东口摄像头")
    _camera(db_session, "CAM-F", 23.05 + FAR, "远处摄像头")  # ~200 m away
    _camera(db_session, "CAM-V", 23.05 + NEAR, "西口摄像头")
    _sensor(db_session, "WL-N", lat=23.05 + NEAR, lng=113.05)  # a water gauge: another kind of sensor
    _garbage_rule(db_session)
    _garbage_rule(db_session, "street_vending")
    _rule(db_session, duration_s=0)
    db_session.commit()
    service.ingest(db_session, items=_seen("CAM-A", [0.92]))
    far = service.ingest(db_session, items=_seen("CAM-F", [0.9], start=T0 + timedelta(minutes=5)))
    other = service.ingest(
        db_session, items=_seen("CAM-V", [0.9], start=T0 + timedelta(minutes=6), metric="street_vending")
    )
    gauge = service.ingest(db_session, items=_series("WL-N", [30], start=T0 + timedelta(minutes=7)))
    db_session.commit()
    assert [(r.orders_opened, r.alarms_joined) for r in (far, other, gauge)] == [(1, 0)] * 3
    assert _orders(db_session) == 4

    # 0 switches joining off: the same garbage seen by the camera beside the first opens its own order.
    monkeypatch.setenv("CITYHUB_ALARM_JOIN_WITHIN_M", "0")
    off = service.ingest(db_session, items=_seen("CAM-V", [0.9], start=T0 + timedelta(minutes=8)))
    db_session.commit()
    assert (off.orders_opened, off.alarms_joined) == (1, 0)
    assert _alarm_of(db_session, "CAM-V").order_id != _alarm_of(db_session, "CAM-A").order_id


def test_a_detection_near_an_order_whose_alarm_crossed_long_ago_opens_its_own(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window: the first camera's alarm cleared and last crossed longer ago than the window (its order still
    open, the unit at work): a new detection beside it is a new episode, its own order; within the window it joins."""
    monkeypatch.setenv("CITYHUB_ALARM_JOIN_WINDOW_MINUTES", "60")
    monkeypatch.setenv("CITYHUB_SENSOR_REARM_MINUTES", "0")
    _camera(db_session, "CAM-A", 23.05, "东口摄像头")
    _camera(db_session, "CAM-B", 23.05 + NEAR, "西口摄像头")
    _camera(db_session, "CAM-C", 23.05 - NEAR, "南口摄像头")
    _garbage_rule(db_session)
    db_session.commit()
    service.ingest(db_session, items=_seen("CAM-A", [0.92, 0.1]))  # seen at T0, cleared a minute later
    within = service.ingest(db_session, items=_seen("CAM-B", [0.9, 0.1], start=T0 + timedelta(minutes=50)))
    db_session.commit()
    assert (within.orders_opened, within.alarms_joined) == (0, 1)
    later = service.ingest(db_session, items=_seen("CAM-C", [0.9], start=T0 + timedelta(minutes=200)))
    db_session.commit()
    assert (later.orders_opened, later.alarms_joined) == (1, 0)


def test_an_order_two_cameras_alarms_share_is_escalated_once_not_once_per_alarm(
    db_session: Session, units: dict[str, int]
) -> None:
    """Nobody acknowledges either camera's alarm: both alarms are escalated, their one order once — one urgency step
    (normal → urgent), not two (特急 by the cameras alone)."""
    _camera(db_session, "CAM-A", 23.05, "东口摄像头")
    _camera(db_session, "CAM-B", 23.05 + NEAR, "西口摄像头")
    _garbage_rule(db_session)
    db_session.commit()
    service.ingest(db_session, items=_seen("CAM-A", [0.92]), now=T0)
    later = T0 + timedelta(minutes=5)
    service.ingest(db_session, items=_seen("CAM-B", [0.9], start=later), now=later)
    db_session.commit()
    first, second = _alarm_of(db_session, "CAM-A"), _alarm_of(db_session, "CAM-B")
    assert first.order_id == second.order_id
    assert service.escalate_due(db_session, now=T0 + timedelta(minutes=40)) == {"escalated": 2, "orders_escalated": 1}
    db_session.commit()
    order = db_session.get(Order, first.order_id)
    assert order is not None and order.urgency == "urgent" and order.escalation_level == 1
    told = db_session.scalars(
        select(AlarmEvent.payload).where(AlarmEvent.alarm_id == second.id, AlarmEvent.action == "escalated")
    ).one()
    assert told == {"after_minutes": 30, "order_id": order.id, "order_escalated_before": True}
