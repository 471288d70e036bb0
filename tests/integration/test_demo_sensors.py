"""The demo's monitoring seed on both backends: sensors placed in Baiyun's units, a rainstorm whose flooded low
points raise one alarm each (de-duplicated), alarms that open orders on the sensor channel, seeded once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.demo.sensors import RULES, SENSORS, seed_sensors
from cityhub.monitoring import service
from cityhub.monitoring.models import Alarm, AlarmRule, Reading, Sensor
from cityhub.monitoring.rules import DETECTIONS
from cityhub.org.service import seed_baiyun
from cityhub.workorders.categories import seed_default_taxonomy
from cityhub.workorders.models import Channel, Order


def test_the_demo_storm_raises_deduplicated_alarms_that_open_orders_once(db_session: Session) -> None:
    seed_baiyun(db_session, users=False)
    seed_default_taxonomy(db_session)
    db_session.commit()
    report = seed_sensors(db_session)
    db_session.commit()
    assert report.sensors == len(SENSORS) and report.rules == len(RULES)
    assert db_session.scalar(select(func.count()).select_from(Reading)) == report.readings > 10_000
    sensors = {s.id: s for s in db_session.scalars(select(Sensor))}
    assert all(s.unit_id is not None and s.street_id is not None for s in sensors.values())
    # One probe went silent after the storm, so the demo shows the state (离线) as soon as it is seeded.
    states = service.sensor_conditions(db_session, list(sensors.values()))
    assert {sensors[i].code for i, c in states.items() if c.state == "silent"} == {"BY-WL-008"}

    alarms = list(db_session.scalars(select(Alarm)))
    assert len(alarms) == report.alarms_raised
    flooded = [a for a in alarms if sensors[a.sensor_id].kind == "waterlogging"]
    # Several low points flood; each raises exactly one alarm however often its depth crosses the limit.
    assert len(flooded) >= 3
    assert len({a.sensor_id for a in flooded}) == len(flooded) and all(a.count > 1 for a in flooded)
    assert all(a.state == "cleared" and a.cleared_by == "system" for a in flooded)  # drained after the storm
    with_orders = [a for a in alarms if a.order_id is not None]
    # An alarm raised while an earlier one of its sensor and metric still has its order open joins that order.
    opened = {a.order_id for a in with_orders}
    assert len(opened) == report.orders_opened == db_session.scalar(select(func.count()).select_from(Order))
    first = {}
    for a in sorted(with_orders, key=lambda a: a.id):
        first.setdefault(a.order_id, a)
    assert all((a.sensor_id, a.metric) == (first[a.order_id].sensor_id, first[a.order_id].metric) for a in with_orders)
    orders = {o.id: o for o in db_session.scalars(select(Order))}
    assert all(o.external_id.startswith("alarm:") for o in orders.values())
    by_camera = {a.order_id: sensors[a.sensor_id].kind == "video_ai" for a in with_orders}
    assert all(o.channel == (Channel.VIDEO_AI if by_camera[o.id] else Channel.SENSOR) for o in orders.values())
    # The cameras: vendors every evening (one alarm per evening, not per frame), the heap still there at the end, a
    # car parked long enough; riders without helmets only inform (no order).
    seen = [(sensors[a.sensor_id].code, a.metric, a.order_id is not None, a.state) for a in alarms]
    seen = [x for x in seen if x[0].startswith("BY-CAM-")]
    assert 2 <= sum(1 for x in seen if x[:3] == ("BY-CAM-001", "street_vending", True)) <= 4
    assert ("BY-CAM-003", "garbage_exposed", True, "active") in seen
    assert ("BY-CAM-004", "illegal_parking", True, "cleared") in seen
    assert any(x[1] == "helmetless_ebike" for x in seen) and not any(x[1] == "helmetless_ebike" and x[2] for x in seen)
    # Every kind of detection has its rule: the four stored and raising nothing before raise one order each now.
    assert {r.metric for r in db_session.scalars(select(AlarmRule)) if r.sensor_kind == "video_ai"} == set(DETECTIONS)
    for metric in ("materials_stacked", "out_of_store", "road_waterlogging", "bike_disorder"):
        assert [x[2] for x in seen if x[1] == metric] == [True], metric
    heap = next(o for o in orders.values() if o.title == "【视频AI识别】石井大道城中村入口 AI 摄像头：暴露垃圾")
    assert "置信度" in heap.content and heap.category_id is not None
    assert all(orders[a.order_id].category_id is not None for a in with_orders)
    # A detection's order carries its snapshot, and each joining alarm's (the same camera again); a road jams on
    # working-day evenings (any three days have one), and its alarm only informs: the traffic police's own platform
    # sends officers.
    shots = {o: sum(1 for a in with_orders if a.order_id == o and a.media_url) for o in opened if by_camera[o]}
    assert shots and all(len(orders[o].attachments) == n >= 1 for o, n in shots.items())
    jams = [a for a in alarms if sensors[a.sensor_id].kind == "traffic"]
    assert jams and {sensors[a.sensor_id].code for a in jams} == {"BY-TR-002"}
    assert all(a.order_id is None for a in jams)
    # Air-quality alarms inform without an order; something is still alarming at the end of the three days.
    assert all(a.order_id is None for a in alarms if sensors[a.sensor_id].kind == "air_quality")
    assert report.alarms_open == len(service.list_alarms(db_session, active=True)[0]) >= 1

    again = seed_sensors(db_session)
    assert again.sensors == 0 and db_session.scalar(select(func.count()).select_from(Alarm)) == len(alarms)
