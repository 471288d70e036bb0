"""Monitoring end to end on both backends: sensors placed among the units, readings checked one by one, alarms
raised once per sensor and rule, de-duplicated, cleared automatically or by a person, orders opened through intake."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.errors import Conflict, InvalidTransition, ValidationFailed
from cityhub.monitoring import service
from cityhub.monitoring.models import Alarm, AlarmEvent, Reading
from cityhub.monitoring.rules import AlarmState
from cityhub.monitoring.schemas import RuleCreate, RuleUpdate, SensorCreate
from cityhub.org.models import Unit, UnitTier
from cityhub.web.i18n import Translator
from cityhub.web.machine_text import explain
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Channel, Order
from cityhub.workorders.service import Actor

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1], [113.0, 23.0]]],
}
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PERSON = Actor(name="值班员", role="dispatcher")
ZH, EN = Translator("zh-CN"), Translator("en")


def _units(session: Session) -> dict[str, int]:
    district = Unit(code="M-QU", name="青禾区", tier=UnitTier.DISTRICT)
    session.add(district)
    session.flush()
    street = Unit(code="M-JD", name="稻香街道", tier=UnitTier.STREET, parent_id=district.id)
    session.add(street)
    session.flush()
    community = Unit(code="M-SQ", name="桂花社区居委会", tier=UnitTier.COMMUNITY, parent_id=street.id, boundary=SQUARE)
    water = Unit(code="M-SW", name="青禾区水务局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    session.add_all([community, water])
    session.commit()
    return {"street": street.id, "community": community.id, "water": water.id}


@pytest.fixture
def units(db_session: Session) -> dict[str, int]:
    return _units(db_session)


def _sensor(session: Session, code: str = "WL-001", **extra: object) -> int:
    data = {
        "code": code,
        "name": "桂花路隧道积水监测点",
        "kind": "waterlogging",
        "metrics": {"depth": "cm"},
        "lat": 23.05,
        "lng": 113.05,
        "address": "桂花路隧道口",
        **extra,
    }
    return service.create_sensor(session, data=SensorCreate.model_validate(data)).id


def _rule(session: Session, **extra: object) -> int:
    data = {
        "name": "积水深度超过 20 厘米",
        "sensor_kind": "waterlogging",
        "metric": "depth",
        "comparison": ">",
        "threshold": 20,
        "clear_threshold": 10,
        "duration_s": 600,
        "severity": "critical",
        "urgency": "urgent",
        **extra,
    }
    return service.create_rule(session, data=RuleCreate.model_validate(data)).id


def _detection_rule(session: Session, metric: str, **extra: object) -> int:
    """A camera's rule: the detection of ``metric`` at a confidence of 0.8 raises at once, below 0.3 clears."""
    data = {"name": f"{metric} 识别", "sensor_kind": "video_ai", "metric": metric, "comparison": ">=", "threshold": 0.8}
    return _rule(session, **(data | extra), clear_threshold=0.3, duration_s=0, severity="warning", urgency="normal")


def _series(code: str, values: list[float], start: datetime = T0, step_min: int = 5) -> list[dict[str, object]]:
    return [
        {
            "sensor_code": code,
            "metric": "depth",
            "measured_at": (start + timedelta(minutes=step_min * i)).isoformat(),
            "value": v,
        }
        for i, v in enumerate(values)
    ]


def _alarms(session: Session) -> list[Alarm]:
    return list(session.scalars(select(Alarm).order_by(Alarm.id)))


def test_a_sensor_is_placed_and_answered_for_by_its_community(db_session: Session, units: dict[str, int]) -> None:
    _sensor(db_session)
    sensor = service.require_sensor(db_session, code="WL-001")
    assert (sensor.community_id, sensor.street_id, sensor.unit_id) == (
        units["community"],
        units["street"],
        units["community"],
    )
    with pytest.raises(Conflict):
        _sensor(db_session)
    named = service.require_sensor(db_session, code=str(_sensor(db_session, "WL-002", unit_code="M-SW") and "WL-002"))
    assert named.unit_id == units["water"] and named.community_id == units["community"]
    with pytest.raises(ValidationFailed, match="unknown unit code"):
        _sensor(db_session, "WL-003", unit_code="NOPE")


def _flapping(session: Session, start: datetime, n: int, one_by_one: bool) -> None:
    """``n`` readings alternating 30, 15 around a limit of 20, a minute apart: one request each, or one for all."""
    values = [30.0 if i % 2 == 0 else 15.0 for i in range(n)]
    items = _series("WL-001", values, start=start, step_min=1)
    for batch in [[item] for item in items] if one_by_one else [items]:
        service.ingest(session, items=batch)
        session.commit()


@pytest.mark.parametrize("one_by_one", [True, False], ids=["one-by-one", "one-batch"])
def test_a_value_flapping_around_its_limit_is_one_alarm_reopened_not_ten(
    db_session: Session, units: dict[str, int], one_by_one: bool
) -> None:
    """20 readings alternating around a limit with no clear threshold raised 10 alarms, wrote 19 comments on the one
    order and sent 10 alarm and 10 alarm_cleared messages. A crossing within CITYHUB_SENSOR_REARM_MINUTES of the
    alarm being cleared by the readings reopens it: one alarm, its reopenings and last crossing on it, two comments
    on the order at most, the ``alarm`` subscribers hearing ``alarm_reopened`` of the same alarm, never a new one."""
    from cityhub.notify import service as notify
    from cityhub.notify.models import OutboxMessage, Topic

    notify.add_subscription(db_session, target="http://127.0.0.1:9/all", topics=["alarm", "alarm_cleared"])
    _sensor(db_session)
    _rule(db_session, duration_s=0, clear_threshold=None)
    db_session.commit()
    _flapping(db_session, T0, 20, one_by_one)

    (alarm,) = _alarms(db_session)
    assert alarm.state == AlarmState.CLEARED and alarm.clear_value == 15  # the last reading recovered
    assert alarm.count == 10 and alarm.last_value == 30 and alarm.last_at == T0 + timedelta(minutes=18)
    view = service.describe_alarm(db_session, alarm)
    assert view["reopened"] == 9
    listed, _ = service.list_alarms(db_session)
    assert [a["reopened"] for a in listed] == [9]
    assert db_session.scalar(select(func.count()).select_from(Order)) == 1
    comments = [e for e in orders.history(db_session, order_id=alarm.order_id or 0) if e.action == "comment"]
    texts = [(e.payload or {}).get("text", "") for e in comments]
    assert len(texts) <= 2 and texts[0].startswith(f"alarm #{alarm.id} cleared at ")
    if one_by_one:
        assert "crossed the limit again" in texts[1] and "further crossings are counted on the alarm" in texts[1]
        assert explain(ZH, texts[1]).startswith(f"监测报警 #{alarm.id} 在解除 1 分钟后再次越限")
    messages = list(db_session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert {(m.payload or {})["alarm_id"] for m in messages} == {alarm.id}
    said = [(m.topic, (m.payload or {})["action"]) for m in messages]
    assert said.count((Topic.ALARM, "alarm_raised")) == 1
    # Heard one by one, each reopening is said (the same alarm); in one batch, only where it ended.
    assert said.count((Topic.ALARM, "alarm_reopened")) == (9 if one_by_one else 0)
    assert said.count((Topic.ALARM_CLEARED, "alarm_cleared")) == (10 if one_by_one else 1)
    assert (messages[-1].payload or {})["reopened"] == 9


def test_a_clear_by_a_person_or_long_ago_is_final_the_next_crossing_a_new_alarm(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _sensor(db_session)
    _rule(db_session, duration_s=0, clear_threshold=None)
    db_session.commit()
    _flapping(db_session, T0, 1, True)
    (first,) = _alarms(db_session)
    service.clear(db_session, alarm_id=first.id, actor=PERSON, note="已排水")
    db_session.commit()
    _flapping(db_session, T0 + timedelta(minutes=1), 3, False)  # 30 (disarmed), 15 (recovered), 30: raised anew
    assert [a.id == first.id for a in _alarms(db_session)] == [True, False]
    # Cleared by the readings, crossed again past the re-arm window (30 minutes by default): a new alarm too.
    _flapping(db_session, T0 + timedelta(minutes=5), 2, False)  # 30 (repeat), 15: cleared
    _flapping(db_session, T0 + timedelta(minutes=37), 1, False)
    assert len(_alarms(db_session)) == 3
    monkeypatch.setenv("CITYHUB_SENSOR_REARM_MINUTES", "60")  # a longer window: 52 minutes later, reopened
    service.ingest(db_session, items=_series("WL-001", [15, 30], start=T0 + timedelta(minutes=38), step_min=52))
    db_session.commit()
    alarms = _alarms(db_session)
    assert len(alarms) == 3 and alarms[-1].state == AlarmState.ACTIVE and alarms[-1].count == 2


def test_a_storm_raises_one_alarm_and_one_order_and_recovery_clears_it(
    db_session: Session, units: dict[str, int]
) -> None:
    _sensor(db_session)
    _rule(db_session)
    db_session.commit()
    # 5-minute readings: above 20 from 08:05; ten minutes later (08:15) the alarm is raised.
    first = service.ingest(db_session, items=_series("WL-001", [5, 25, 30, 35, 40, 38]))
    db_session.commit()
    assert (first.stored, first.alarms_raised, first.orders_opened, first.alarms_repeated) == (6, 1, 1, 2)
    [alarm] = _alarms(db_session)
    assert alarm.state == AlarmState.ACTIVE and alarm.raised_at == T0 + timedelta(minutes=15)
    assert (alarm.count, alarm.first_value, alarm.last_value, alarm.peak_value) == (3, 35, 38, 40)
    order = db_session.get(Order, alarm.order_id)
    assert order is not None and order.channel == Channel.SENSOR
    assert order.external_id and order.external_id.startswith("alarm:WL-001:")
    assert "桂花路隧道积水监测点" in order.title and "35cm" in order.title and "20cm" in order.title
    assert "积水深度 35cm" in order.title and "监测到积水深度为 35cm" in order.content  # the measure, by its name
    assert "桂花路隧道口" in order.content and order.urgency.value == "urgent"
    assert (order.street_id, order.community_id) == (units["street"], units["community"])
    # Nobody dispatched it automatically: it went to the sensor's responsible unit, audited.
    assert order.state == State.DISPATCHED and order.lead_unit_id == units["community"]
    assert [e.action for e in orders.history(db_session, order_id=order.id)] == ["create", "dispatch"]

    # The storm goes on: the same alarm counts, no second alarm or order.
    more = service.ingest(db_session, items=_series("WL-001", [45, 50, 15, 18], start=T0 + timedelta(minutes=30)))
    db_session.commit()
    assert (more.alarms_raised, more.orders_opened, more.alarms_repeated, more.alarms_cleared) == (0, 0, 2, 0)
    db_session.refresh(alarm)
    assert alarm.count == 5 and alarm.peak_value == 50 and alarm.state == AlarmState.ACTIVE  # 15, 18: in the band
    assert db_session.scalar(select(func.count()).select_from(Order)) == 1

    # Back under the clear threshold: cleared by the system, noted on the order.
    done = service.ingest(db_session, items=_series("WL-001", [8], start=T0 + timedelta(minutes=60)))
    db_session.commit()
    db_session.refresh(alarm)
    assert done.alarms_cleared == 1 and alarm.state == AlarmState.CLEARED and alarm.open_key is None
    assert alarm.cleared_by == "system" and alarm.clear_value == 8
    trail = orders.history(db_session, order_id=order.id)
    said = (trail[-1].payload or {}).get("text", "")
    assert trail[-1].action == "comment" and said.startswith(f"alarm #{alarm.id} cleared at ")
    # Written in a fixed form, read in the reader's language on the order's page.
    assert re.fullmatch(rf"监测报警 #{alarm.id} 已解除：系统（监测值已恢复），[\d: -]+，当前值 8cm", explain(ZH, said))
    assert explain(EN, said).endswith(": readings back within the limit, now 8cm")  # with its measurement unit
    actions = list(db_session.scalars(select(AlarmEvent.action).where(AlarmEvent.alarm_id == alarm.id)))
    assert actions == ["raised", "order_opened", "cleared"]

    # A new storm later, while the unit still works the order: a new alarm, which joins that order (the same
    # problem at the same place) — told on its trail — instead of opening a second one.
    again = service.ingest(db_session, items=_series("WL-001", [30, 31, 32], start=T0 + timedelta(hours=3)))
    db_session.commit()
    assert again.alarms_raised == 1 and again.orders_opened == 0
    second = _alarms(db_session)[-1]
    assert second.id != alarm.id and second.order_id == order.id
    assert db_session.scalar(select(func.count()).select_from(Order)) == 1
    joined = list(db_session.scalars(select(AlarmEvent.action).where(AlarmEvent.alarm_id == second.id)))
    assert joined == ["raised", "order_joined"]
    note = orders.history(db_session, order_id=order.id)[-1]
    text = (note.payload or {}).get("text", "")
    assert note.action == "comment" and text.startswith(
        f'sensor "桂花路隧道积水监测点" alarmed again (alarm #{second.id})'
    )
    zh = explain(ZH, text)
    assert (
        f"监测点“桂花路隧道积水监测点”再次报警（监测报警 #{second.id}）" in zh and "积水深度 32cm，超过限值 20cm" in zh
    )
    assert zh.endswith("；本工单尚在办理，不另立工单；本工单已关联报警 2 条")  # the count of alarms it holds
    assert again.alarms_joined == 1
    en = explain(EN, text)
    assert (
        "alarmed again" in en and "Water depth 32cm, above the limit of 20cm; this order is still being handled" in en
    )

    # Once the unit has replied, the next storm is a new problem: a new order.
    service.ingest(db_session, items=_series("WL-001", [5], start=T0 + timedelta(hours=4)))
    orders.act(db_session, order_id=order.id, action="accept", actor=PERSON)
    orders.act(db_session, order_id=order.id, action="reply", actor=PERSON, params={"text": "已疏通排水口，积水已退"})
    db_session.commit()
    later = service.ingest(db_session, items=_series("WL-001", [30, 31, 32], start=T0 + timedelta(hours=6)))
    db_session.commit()
    assert later.alarms_raised == 1 and later.orders_opened == 1
    assert _alarms(db_session)[-1].order_id not in (None, order.id)
    assert db_session.scalar(select(func.count()).select_from(Order)) == 2


def test_bad_readings_are_rejected_by_index_and_field_and_the_good_ones_kept(
    db_session: Session, units: dict[str, int]
) -> None:
    _sensor(db_session)
    _sensor(db_session, "WL-OFF", active=False)
    _rule(db_session, duration_s=0)
    db_session.commit()
    future = datetime.now(UTC) + timedelta(hours=1)
    items: list[object] = [
        {"sensor_code": "WL-001", "measured_at": T0.isoformat(), "value": 3},  # metric defaults to the only one
        {"sensor_code": "NOPE", "measured_at": T0.isoformat(), "value": 3},
        {"sensor_code": "WL-001", "measured_at": T0.isoformat(), "value": "深"},
        {"sensor_code": "WL-001", "measured_at": future.isoformat(), "value": 3},
        {"sensor_code": "WL-001", "measured_at": "2026-11-30 08:10", "value": 3},
        {"sensor_code": "WL-001", "metric": "pm25", "measured_at": T0.isoformat(), "value": 3},
        {"sensor_code": "WL-OFF", "measured_at": T0.isoformat(), "value": 3},
        "not an object",
        {"sensor_code": "WL-001", "measured_at": (T0 + timedelta(minutes=5)).isoformat(), "value": "4.5"},
        {"sensor_code": "WL-001", "measured_at": T0.isoformat(), "value": float("nan")},
    ]
    result = service.ingest(db_session, items=items)
    db_session.commit()
    assert result.received == 10 and result.stored == 2
    assert [(r.index, r.field) for r in result.rejected] == [
        (1, "sensor_code"),
        (2, "value"),
        (3, "measured_at"),
        (4, "measured_at"),
        (5, "metric"),
        (6, "sensor_code"),
        (7, "(reading)"),
        (9, "value"),
    ]
    messages = {r.index: r.message for r in result.rejected}
    assert "unknown sensor 'NOPE'" in messages[1] and "future" in messages[3] and "time zone" in messages[4]
    assert "sensor 'WL-OFF' is retired" in messages[6] and "pm25" in messages[5]
    values = list(db_session.scalars(select(Reading.value).order_by(Reading.measured_at)))
    assert values == [3, 4.5]

    # Sent again: duplicates, nothing stored twice. An older reading not seen before is stored, not evaluated.
    again = service.ingest(
        db_session,
        items=[
            {"sensor_code": "WL-001", "measured_at": T0.isoformat(), "value": 3},
            {"sensor_code": "WL-001", "measured_at": (T0 - timedelta(minutes=5)).isoformat(), "value": 99},
        ],
    )
    db_session.commit()
    assert (again.stored, again.duplicates, again.late, again.alarms_raised) == (1, 1, 1, 0)
    assert db_session.scalar(select(func.count()).select_from(Reading)) == 3
    assert service.require_sensor(db_session, code="WL-001").latest == {
        "depth": {"value": 4.5, "at": (T0 + timedelta(minutes=5)).isoformat()}
    }


def test_acknowledge_keeps_counting_and_a_persons_clear_waits_for_recovery(
    db_session: Session, units: dict[str, int]
) -> None:
    _sensor(db_session)
    _rule(db_session, duration_s=0, opens_order=False)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-001", [25]))
    [alarm] = _alarms(db_session)
    assert alarm.order_id is None
    service.acknowledge(db_session, alarm_id=alarm.id, actor=PERSON, note="已通知现场")
    with pytest.raises(InvalidTransition):
        service.acknowledge(db_session, alarm_id=alarm.id, actor=PERSON)
    service.ingest(db_session, items=_series("WL-001", [26], start=T0 + timedelta(minutes=5)))
    assert alarm.state == AlarmState.ACKNOWLEDGED and alarm.count == 2 and alarm.acknowledged_by == "值班员"

    service.clear(db_session, alarm_id=alarm.id, actor=PERSON, note="现场已处置")
    assert alarm.state == AlarmState.CLEARED and alarm.cleared_by == "值班员"
    with pytest.raises(InvalidTransition):
        service.clear(db_session, alarm_id=alarm.id, actor=PERSON)
    # Still above the limit: no new alarm until the readings have recovered once.
    still = service.ingest(db_session, items=_series("WL-001", [27, 28], start=T0 + timedelta(minutes=10)))
    assert still.alarms_raised == 0 and len(_alarms(db_session)) == 1
    back = service.ingest(db_session, items=_series("WL-001", [5, 30], start=T0 + timedelta(minutes=20)))
    assert back.alarms_raised == 1 and len(_alarms(db_session)) == 2
    # The same again in the same session: the second clear sees the state the ingestion wrote, not a stale copy.
    service.clear(db_session, alarm_id=_alarms(db_session)[1].id, actor=PERSON)
    assert (
        service.ingest(db_session, items=_series("WL-001", [35], start=T0 + timedelta(minutes=30))).alarms_raised == 0
    )
    db_session.commit()
    events = [(e.action, e.actor, e.note) for e in service.alarm_events(db_session, alarm_id=alarm.id)]
    assert events == [
        ("raised", "system", None),
        ("acknowledged", "值班员", "已通知现场"),
        ("cleared", "值班员", "现场已处置"),
    ]


def test_acknowledging_and_clearing_an_alarm_are_told_on_its_orders_trail(
    db_session: Session, units: dict[str, int]
) -> None:
    """The unit working the alarm's order reads there that the duty officer has seen the alarm (确认, with the note),
    as it reads the clear: an acknowledgement was only in the alarm's own trail."""
    _sensor(db_session)
    _rule(db_session, duration_s=0)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-001", [25]))
    [alarm] = _alarms(db_session)
    service.acknowledge(db_session, alarm_id=alarm.id, actor=PERSON, note="已通知桂花社区到场")
    service.clear(db_session, alarm_id=alarm.id, actor=PERSON, note="水泵已抽干")
    db_session.commit()
    trail = orders.history(db_session, order_id=alarm.order_id)
    said = [(e.action, e.actor_name, (e.payload or {}).get("text", "")) for e in trail]
    assert [a for a, _, _ in said] == ["create", "dispatch", "comment", "comment"]
    (_, ack_by, ack), (_, clear_by, cleared) = said[2], said[3]
    assert ack_by == clear_by == "值班员"
    assert ack.startswith(f"alarm #{alarm.id} acknowledged by 值班员 at ") and ack.endswith(
        "; note: 已通知桂花社区到场"
    )
    assert re.fullmatch(rf"监测报警 #{alarm.id} 已确认：值班员，[\d: -]+；说明：已通知桂花社区到场", explain(ZH, ack))
    assert re.fullmatch(
        rf"alarm #{alarm.id} acknowledged by 值班员 at [\d: -]+; note: 已通知桂花社区到场", explain(EN, ack)
    )
    assert re.fullmatch(rf"监测报警 #{alarm.id} 已解除：值班员，[\d: -]+；说明：水泵已抽干", explain(ZH, cleared))


def test_crowd_rules_compare_with_a_share_of_capacity_and_a_sensor_rule_replaces_its_kinds(
    db_session: Session, units: dict[str, int]
) -> None:
    service.create_sensor(
        db_session,
        data=SensorCreate(
            code="CR-1",
            name="马拉松 10 公里段",
            kind="crowd_count",
            metrics={"people": "人"},
            lat=23.05,
            lng=113.05,
            capacity=2000,
        ),
    )
    service.create_sensor(
        db_session,
        data=SensorCreate(code="CR-2", name="马拉松终点", kind="crowd_count", metrics={"people": "人"}, capacity=5000),
    )
    kind_rule = _rule(
        db_session,
        sensor_kind="crowd_count",
        metric="people",
        comparison=">=",
        threshold=0.9,
        clear_threshold=0.8,
        of_capacity=True,
        duration_s=0,
        opens_order=False,
    )
    own = service.create_rule(
        db_session,
        data=RuleCreate(
            name="终点人数", sensor_code="CR-2", metric="people", comparison=">", threshold=3000, opens_order=False
        ),
    )
    with pytest.raises(ValidationFailed, match="no metric"):
        service.create_rule(
            db_session, data=RuleCreate(name="x", sensor_code="CR-2", metric="depth", comparison=">", threshold=1)
        )
    items = [
        {"sensor_code": "CR-1", "measured_at": T0.isoformat(), "value": 1700},  # 85 %: nothing
        {"sensor_code": "CR-1", "measured_at": (T0 + timedelta(minutes=1)).isoformat(), "value": 1850},  # 92.5 %
        {"sensor_code": "CR-2", "measured_at": T0.isoformat(), "value": 4600},  # 92 %, but its own rule: > 3000
    ]
    result = service.ingest(db_session, items=items)
    assert result.alarms_raised == 2
    pairs = {(a.sensor_id, a.rule_id, a.threshold) for a in _alarms(db_session)}
    cr1 = service.require_sensor(db_session, code="CR-1").id
    cr2 = service.require_sensor(db_session, code="CR-2").id
    assert pairs == {(cr1, kind_rule, 1800), (cr2, own.id, 3000)}
    # Raising the limit applies from the next reading on.
    service.update_rule(db_session, rule_id=own.id, data=RuleUpdate(threshold=6000, clear_threshold=5000))
    with pytest.raises(ValidationFailed, match="clear threshold"):
        service.update_rule(db_session, rule_id=own.id, data=RuleUpdate(clear_threshold=7000))
    cleared = service.ingest(
        db_session,
        items=[{"sensor_code": "CR-2", "measured_at": (T0 + timedelta(minutes=1)).isoformat(), "value": 4000}],
    )
    assert cleared.alarms_cleared == 1


def test_a_kind_rule_on_a_metric_no_sensor_of_the_kind_reports_is_refused_naming_theirs(
    db_session: Session, units: dict[str, int]
) -> None:
    """A rule for every water-logging sensor on ``depht`` would never fire: refused, naming what they report. A kind
    without sensors yet takes any metric (its rules may come before its devices)."""
    _sensor(db_session)
    with pytest.raises(ValidationFailed, match=r"no waterlogging sensor reports metric 'depht' \(they report depth\)"):
        _rule(db_session, metric="depht")
    assert _rule(db_session, metric="depth")
    assert _rule(db_session, sensor_kind="river_level", metric="level")


def test_the_alarms_order_is_opened_once_per_alarm(db_session: Session, units: dict[str, int]) -> None:
    _sensor(db_session)
    _rule(db_session, duration_s=0)
    service.ingest(db_session, items=_series("WL-001", [50]))
    db_session.commit()
    [alarm] = _alarms(db_session)
    sensor = service.require_sensor(db_session, code="WL-001")
    rule = service.require_rule(db_session, rule_id=alarm.rule_id)
    again = service.open_order(db_session, alarm=alarm, sensor=sensor, rule=rule)
    assert again is not None and again.id == alarm.order_id
    assert db_session.scalar(select(func.count()).select_from(Order)) == 1


def test_alarm_lists_filter_by_state_kind_and_the_callers_area(db_session: Session, units: dict[str, int]) -> None:
    from cityhub.auth.scope import Scope

    _sensor(db_session)
    service.create_sensor(
        db_session, data=SensorCreate(code="AQ-1", name="空气站", kind="air_quality", metrics={"pm25": "μg/m³"})
    )
    _rule(db_session, duration_s=0, opens_order=False)
    _rule(
        db_session,
        sensor_kind="air_quality",
        metric="pm25",
        threshold=75,
        clear_threshold=None,
        duration_s=0,
        opens_order=False,
    )
    service.ingest(db_session, items=_series("WL-001", [30]))
    service.ingest(db_session, items=[{"sensor_code": "AQ-1", "measured_at": T0.isoformat(), "value": 120}])
    everything, _ = service.list_alarms(db_session, active=True)
    assert {a["sensor_code"] for a in everything} == {"WL-001", "AQ-1"}
    air, _ = service.list_alarms(db_session, kind="air_quality")
    assert [a["sensor_code"] for a in air] == ["AQ-1"]
    street = Scope(
        units=frozenset({units["street"], units["community"]}),
        streets=frozenset({units["street"]}),
        communities=frozenset({units["community"]}),
    )
    mine, _ = service.list_alarms(db_session, scope=service.sensor_scope(street))
    assert [a["sensor_code"] for a in mine] == ["WL-001"]  # the air station stands nowhere in the street
    none, _ = service.list_alarms(db_session, scope=service.sensor_scope(Scope(citizen_user_id=1)))
    assert none == []
    assert service.list_alarms(db_session, active=False)[0] == []


def test_concurrent_batches_for_the_same_sensor_raise_one_alarm(app_db: str) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from cityhub.db import session_scope

    with session_scope() as s:
        _units(s)
        for i in range(5):
            _sensor(s, f"WL-{i}")
        _rule(s, duration_s=0, opens_order=False)
    start = threading.Barrier(6)

    def push(offset: int) -> int:
        items = [
            item for i in range(5) for item in _series(f"WL-{i}", [30, 31, 32], start=T0 + timedelta(seconds=offset))
        ]
        start.wait()  # all batches at once
        with session_scope() as s:
            return service.ingest(s, items=items).alarms_raised

    with ThreadPoolExecutor(6) as pool:
        raised = list(pool.map(push, range(6)))
    with session_scope() as s:
        alarms = _alarms(s)
        # Whichever batch came first raised them; the others, later or earlier, repeated or were late.
        assert sum(raised) == len(alarms) == 5 and {a.state for a in alarms} == {AlarmState.ACTIVE}


def test_a_raised_alarm_is_notified_through_the_outbox_to_its_units_subscribers(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("CITYHUB_SENSOR_REARM_MINUTES", "0")  # the second crossing is a new alarm, not a reopening

    from cityhub.notify import service as notify
    from cityhub.notify.models import OutboxMessage, Topic

    everyone, _ = notify.add_subscription(db_session, target="http://127.0.0.1:9/all", topics=["alarm"])
    mine, _ = notify.add_subscription(db_session, target="http://127.0.0.1:9/c", topics=["alarm"], unit_code="M-SQ")
    notify.add_subscription(db_session, target="http://127.0.0.1:9/w", topics=["alarm"], unit_code="M-SW")
    notify.add_subscription(db_session, target="http://127.0.0.1:9/d", topics=["dispatch"], unit_code="M-SW")
    _sensor(db_session)
    _rule(db_session, duration_s=0)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-001", [30, 35, 8, 40]))  # raised, repeated, cleared, raised
    db_session.commit()
    messages = list(db_session.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topic.ALARM)))
    # Two alarms, each to the district-wide subscription and the community's; not to the water bureau's.
    assert sorted(m.subscription_id for m in messages) == sorted([everyone.id, mine.id] * 2)
    first = min(messages, key=lambda m: m.id)
    assert first.payload is not None and first.payload["sensor"]["code"] == "WL-001"
    assert (first.payload["value"], first.payload["threshold"], first.payload["severity"]) == (30, 20, "critical")
    body = json.loads(notify.render_body(db_session, first))
    assert body["topic"] == "alarm" and body["order"]["channel"] == "sensor"


def test_a_cleared_alarm_is_notified_to_the_subscribers_of_alarm_cleared_with_its_order(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The integrator's platform heard an alarm raised and its order dispatched, replied, closed — but never that the
    alarm itself was over: the water went down, the duty officer cleared it, and its screen kept it red. A
    subscription of ``alarm_cleared`` now hears each clear — by the readings (``cleared_by`` system, the reading
    that recovered) or by a person (their name and note) — with the alarm's keys and its order; the ``alarm``
    subscribers hear the raises as before, nothing more."""
    import json

    monkeypatch.setenv("CITYHUB_SENSOR_REARM_MINUTES", "0")  # the second crossing is a new alarm, not a reopening

    from cityhub.notify import service as notify
    from cityhub.notify.models import OutboxMessage, Topic

    raised, _ = notify.add_subscription(db_session, target="http://127.0.0.1:9/raised", topics=["alarm"])
    ended, _ = notify.add_subscription(
        db_session, target="http://127.0.0.1:9/c", topics=["alarm_cleared"], unit_code="M-SQ"
    )
    notify.add_subscription(db_session, target="http://127.0.0.1:9/w", topics=["alarm_cleared"], unit_code="M-SW")
    _sensor(db_session)
    _rule(db_session, duration_s=0)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-001", [30, 35, 8, 40]))  # raised, repeated, cleared, raised
    db_session.commit()
    first, second = _alarms(db_session)
    service.clear(db_session, alarm_id=second.id, actor=PERSON, note="已排水")
    db_session.commit()

    def sent(topic: Topic) -> list[OutboxMessage]:
        query = select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.id)
        return list(db_session.scalars(query))

    assert [m.subscription_id for m in sent(Topic.ALARM)] == [raised.id, raised.id]  # the two raises only
    by_readings, by_person = sent(Topic.ALARM_CLEARED)  # the community's subscription; not the water bureau's
    assert {by_readings.subscription_id, by_person.subscription_id} == {ended.id}
    assert by_readings.payload is not None and by_person.payload is not None
    assert (by_readings.payload["action"], by_readings.payload["alarm_id"]) == ("alarm_cleared", first.id)
    assert (by_readings.payload["cleared_by"], by_readings.payload["clear_value"]) == ("system", 8)
    assert (by_readings.payload["value"], by_readings.payload["peak_value"], by_readings.payload["unit"]) == (
        30,
        35,
        "cm",
    )
    assert (by_person.payload["alarm_id"], by_person.payload["cleared_by"]) == (second.id, "值班员")
    assert (by_person.payload["clear_value"], by_person.payload["note"]) == (None, "已排水")
    body = json.loads(notify.render_body(db_session, by_readings))
    assert body["topic"] == "alarm_cleared" and body["event"]["cleared_at"].endswith("Z")
    assert body["order"]["id"] == first.order_id and body["order"]["channel"] == "sensor"


def test_only_alarms_at_the_configured_severity_open_orders(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYHUB_ALARM_ORDER_MIN_SEVERITY", "critical")
    _sensor(db_session)
    _rule(db_session, duration_s=0, severity="warning")
    _rule(db_session, name="积水超过 40 厘米", duration_s=0, threshold=40, clear_threshold=30, severity="critical")
    result = service.ingest(db_session, items=_series("WL-001", [30, 45]))
    assert result.alarms_raised == 2 and result.orders_opened == 1
    by_severity = {a.severity: a.order_id for a in _alarms(db_session)}
    assert by_severity["warning"] is None and by_severity["critical"] is not None


def test_a_cameras_detection_becomes_one_video_ai_order_per_episode(db_session: Session, units: dict[str, int]) -> None:
    """视频AI识别: a camera's analytics report their confidence per kind of problem in each frame analysed; a rule
    on it raises one alarm and one order on the video-AI channel for an episode, however many frames show it."""
    camera = {
        "name": "桂花路口 AI 摄像头",
        "kind": "video_ai",
        "metrics": {"street_vending": "", "garbage_exposed": ""},
    }
    _sensor(db_session, "CAM-01", **camera)
    _detection_rule(db_session, "street_vending", name="占道经营")
    db_session.commit()
    frames = [0.05, 0.91, 0.95, 0.88, 0.9, 0.02]
    items = [{**i, "metric": "street_vending"} for i in _series("CAM-01", frames, step_min=1)]
    result = service.ingest(db_session, items=items)
    db_session.commit()
    assert (result.alarms_raised, result.orders_opened, result.alarms_cleared) == (1, 1, 1)
    [alarm] = _alarms(db_session)
    order = db_session.get(Order, alarm.order_id)
    assert order is not None and order.channel == Channel.VIDEO_AI
    assert order.title == "【视频AI识别】桂花路口 AI 摄像头：占道经营"
    assert "识别到“占道经营”（置信度 91%）" in order.content  # as first seen and "桂花路隧道口" in order.content
    assert order.lead_unit_id == units["community"]  # the camera's responsible unit, as for any sensor


def test_a_detections_snapshot_goes_with_its_alarm_and_order(db_session: Session, units: dict[str, int]) -> None:
    """A camera platform links each detection's picture (a reading's ``media_url``): the alarm keeps the raising
    frame's, the order it opens carries it as an attachment; a link that is not http(s) is refused by index and
    field, the other readings kept."""
    _sensor(db_session, "CAM-02", name="市场路口摄像头", kind="video_ai", metrics={"street_vending": ""})
    _rule(
        db_session,
        name="占道经营",
        sensor_kind="video_ai",
        metric="street_vending",
        threshold=0.8,
        clear_threshold=0.3,
        duration_s=0,
    )
    db_session.commit()
    shots = "https://video.example.org/snap/CAM-02"
    items = [{**i, "metric": "street_vending"} for i in _series("CAM-02", [0.1, 0.2, 0.9, 0.95, 0.3], step_min=1)]
    items[1]["media_url"] = "javascript:alert(1)"
    items[2]["media_url"] = f"{shots}/0902.jpg"
    items[3]["media_url"] = f"{shots}/0903.jpg"
    items[4]["media_url"] = ""  # none
    result = service.ingest(db_session, items=items)
    db_session.commit()
    assert [(r.index, r.field, r.message) for r in result.rejected] == [
        (1, "media_url", "media_url must be an http(s) URL")
    ]
    assert (result.stored, result.alarms_raised, result.orders_opened) == (4, 1, 1)
    [alarm] = _alarms(db_session)
    assert alarm.media_url == f"{shots}/0902.jpg"  # the raising frame's, not a later one's
    order = db_session.get(Order, alarm.order_id)
    assert order is not None
    assert [(a.filename, a.url, a.content_type) for a in order.attachments] == [
        ("0902.jpg", f"{shots}/0902.jpg", "image/jpeg")
    ]
    view = service.describe_alarm(db_session, alarm)
    assert view["media_url"] == alarm.media_url
