# ruff: noqa: F811  (fixtures imported from the neighbouring test modules are parameters here)
"""Alarm escalation and retired sensors on both backends: an alarm left unacknowledged past its rule's time is
escalated once (trail event, notification, its order's urgency raised through the audited life cycle); a retired
sensor's open alarms are cleared with the reason, its readings refused by name, and it can be reactivated."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_monitoring import EN, PERSON, T0, ZH, _rule, _sensor, _series, _units, units  # noqa: F401  (the fixture)

from cityhub import jobs
from cityhub.db import session_scope
from cityhub.errors import Conflict
from cityhub.monitoring import service
from cityhub.monitoring.models import Alarm, AlarmEvent, Sensor
from cityhub.monitoring.rules import AlarmState
from cityhub.monitoring.schemas import RuleUpdate, SensorUpdate
from cityhub.notify import service as notify
from cityhub.notify.models import OutboxMessage, Topic
from cityhub.web.machine_text import explain
from cityhub.workorders.models import Order, OrderEvent, Urgency


def _only_alarm(session: Session, code: str) -> Alarm:
    return session.scalars(select(Alarm).join(Sensor, Sensor.id == Alarm.sensor_id).where(Sensor.code == code)).one()


def _events(session: Session, alarm_id: int) -> list[str]:
    return [e.action for e in service.alarm_events(session, alarm_id=alarm_id)]


def test_an_unacknowledged_alarm_is_escalated_once_after_its_time_and_its_order_urgency_raised(
    db_session: Session, units: dict[str, int]
) -> None:
    everyone, _ = notify.add_subscription(db_session, target="http://127.0.0.1:9/all", topics=["alarm"])
    _sensor(db_session, "WL-A")
    _sensor(db_session, "WL-B")
    _rule(db_session, duration_s=0, urgency="normal", escalate_after_minutes=30)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-A", [30]) + _series("WL-B", [31]), now=T0)
    db_session.commit()
    alarm, other = _only_alarm(db_session, "WL-A"), _only_alarm(db_session, "WL-B")
    service.acknowledge(db_session, alarm_id=other.id, actor=PERSON)  # seen: never escalated
    db_session.commit()
    raised_notes = db_session.query(OutboxMessage).filter(OutboxMessage.topic == Topic.ALARM).count()

    assert service.escalate_due(db_session, now=T0 + timedelta(minutes=29)) == {"escalated": 0, "orders_escalated": 0}
    assert service.escalate_due(db_session, now=T0 + timedelta(minutes=31)) == {"escalated": 1, "orders_escalated": 1}
    db_session.commit()
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=5)) == {"escalated": 0, "orders_escalated": 0}
    db_session.commit()

    db_session.refresh(alarm)
    db_session.refresh(other)
    assert alarm.escalated_at == T0 + timedelta(minutes=31) and alarm.state == AlarmState.ACTIVE
    assert other.escalated_at is None
    assert _events(db_session, alarm.id) == ["raised", "order_opened", "escalated"]
    escalated = service.alarm_events(db_session, alarm_id=alarm.id)[-1]
    assert escalated.actor == "system" and escalated.note == "not acknowledged within 30 min: escalated"
    assert explain(ZH, escalated.note) == "超过 30 分钟未确认，已升级"
    assert escalated.payload == {
        "after_minutes": 30,
        "order_id": alarm.order_id,
        "urgency_from": "normal",
        "urgency_to": "urgent",
    }
    order = db_session.get(Order, alarm.order_id)
    assert order is not None and order.urgency == Urgency.URGENT and order.escalation_level == 1
    trail = list(db_session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)))
    step = trail[-1]
    assert step.action == "escalate" and step.actor_name == "system"
    assert explain(ZH, step.reason) == f"监测报警 #{alarm.id}（桂花路隧道积水监测点）超过 30 分钟未确认，自动升级"
    assert explain(EN, step.reason) == (
        f"alarm #{alarm.id} (桂花路隧道积水监测点) not acknowledged within 30 minutes: escalated automatically"
    )
    assert step.payload is not None and (step.payload["urgency"], step.payload["previous_urgency"]) == (
        "urgent",
        "normal",
    )
    messages = list(db_session.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topic.ALARM)))
    assert len(messages) == raised_notes + 1
    note = max(messages, key=lambda m: m.id)
    assert note.subscription_id == everyone.id and note.order_id == order.id
    assert note.payload is not None and note.payload["action"] == "alarm_escalated" and note.payload["escalation"]
    assert note.payload["alarm_id"] == alarm.id and note.payload["after_minutes"] == 30


def test_readings_that_arrive_late_give_the_rule_s_time_from_their_arrival(
    db_session: Session, units: dict[str, int]
) -> None:
    """A file of readings imported hours after they were measured raises an alarm dated then; the duty officer still
    has the rule's 30 minutes from the import to acknowledge it."""
    _sensor(db_session, "WL-L")
    _rule(db_session, duration_s=0, escalate_after_minutes=30)
    db_session.commit()
    arrived = T0 + timedelta(hours=3)
    service.ingest(db_session, items=_series("WL-L", [30]), now=arrived)
    db_session.commit()
    alarm = _only_alarm(db_session, "WL-L")
    assert alarm.raised_at == T0 and alarm.recorded_at == arrived
    assert service.escalate_due(db_session, now=arrived + timedelta(minutes=29))["escalated"] == 0
    assert service.escalate_due(db_session, now=arrived + timedelta(minutes=31))["escalated"] == 1


def test_a_reopened_alarm_gives_the_rule_s_time_from_its_reopening(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An alarm cleared by the readings and crossing again within the re-arm window is reopened (its first raise time
    kept): the duty officer has the rule's 30 minutes from the reopening, not an escalation at once for being raised
    40 minutes before."""
    monkeypatch.setenv("CITYHUB_SENSOR_REARM_MINUTES", "30")
    _sensor(db_session, "WL-R")
    _rule(db_session, duration_s=0, escalate_after_minutes=30)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-R", [30, 8], step_min=20), now=T0 + timedelta(minutes=20))
    db_session.commit()
    reopened_at = T0 + timedelta(minutes=40)  # 20 minutes after the clear: reopened
    result = service.ingest(db_session, items=_series("WL-R", [31], start=reopened_at), now=reopened_at)
    db_session.commit()
    alarm = _only_alarm(db_session, "WL-R")
    assert result.alarms_reopened == 1 and alarm.state == AlarmState.ACTIVE and alarm.raised_at == T0
    assert service.escalate_due(db_session, now=reopened_at + timedelta(minutes=5))["escalated"] == 0
    assert service.escalate_due(db_session, now=reopened_at + timedelta(minutes=29))["escalated"] == 0
    assert service.escalate_due(db_session, now=reopened_at + timedelta(minutes=31))["escalated"] == 1


def test_the_default_time_applies_to_rules_without_their_own_and_zero_never_escalates(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYHUB_ALARM_ESCALATE_AFTER_MINUTES", "10")
    _sensor(db_session, "WL-D")
    _sensor(db_session, "WL-N", kind="river_level", metrics={"depth": "cm"})
    _rule(db_session, duration_s=0, opens_order=False)  # default: 10 minutes
    _rule(db_session, duration_s=0, sensor_kind="river_level", escalate_after_minutes=0)  # never
    db_session.commit()
    service.ingest(db_session, items=_series("WL-D", [30]) + _series("WL-N", [30]), now=T0)
    db_session.commit()
    assert service.escalate_due(db_session, now=T0 + timedelta(minutes=9))["escalated"] == 0
    assert service.escalate_due(db_session, now=T0 + timedelta(days=3)) == {"escalated": 1, "orders_escalated": 0}
    db_session.commit()
    assert _only_alarm(db_session, "WL-D").escalated_at is not None
    assert _only_alarm(db_session, "WL-N").escalated_at is None
    monkeypatch.setenv("CITYHUB_ALARM_ESCALATE_AFTER_MINUTES", "0")
    rule_id = _only_alarm(db_session, "WL-N").rule_id
    service.update_rule(db_session, rule_id=rule_id, data=RuleUpdate(escalate_after_minutes=60))
    db_session.commit()
    assert service.escalate_due(db_session, now=T0 + timedelta(days=3))["escalated"] == 1


def test_the_alarm_escalation_job_runs_on_demand(app_db: str) -> None:
    with session_scope() as s:
        _units(s)
        _sensor(s, "WL-J")
        _rule(s, duration_s=0, urgency="critical", escalate_after_minutes=1)
    with session_scope() as s:
        service.ingest(s, items=_series("WL-J", [30]), now=T0)  # raised two days ago (T0): due at once
    assert "alarm-escalation" in jobs.JOBS
    assert jobs.run_job("alarm-escalation") == {"escalated": 1, "orders_escalated": 1}
    assert jobs.run_job("alarm-escalation") == {"escalated": 0, "orders_escalated": 0}
    with session_scope() as s:
        alarm = _only_alarm(s, "WL-J")
        order = s.get(Order, alarm.order_id)
        assert order is not None and order.urgency == Urgency.CRITICAL and order.escalation_level == 1
        payload = s.scalars(
            select(OrderEvent.payload).where(OrderEvent.order_id == order.id, OrderEvent.action == "escalate")
        ).one()
        assert payload is not None and "urgency" not in payload  # critical already: escalated, not raised


def test_retiring_a_sensor_clears_its_alarms_with_the_reason_and_refuses_its_readings(
    db_session: Session, units: dict[str, int]
) -> None:
    _sensor(db_session, "WL-R")
    _sensor(db_session, "WL-K")
    _rule(db_session, duration_s=0)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-R", [30, 32]))
    db_session.commit()
    alarm = _only_alarm(db_session, "WL-R")
    sensor = service.retire(db_session, code="WL-R", actor=PERSON, reason="道路改造，设备拆除")
    db_session.commit()
    assert not sensor.active and sensor.retired_by == PERSON.name and sensor.retired_reason == "道路改造，设备拆除"
    db_session.refresh(alarm)
    assert alarm.state == AlarmState.CLEARED and alarm.open_key is None and alarm.cleared_by == PERSON.name
    cleared = db_session.scalars(
        select(AlarmEvent).where(AlarmEvent.alarm_id == alarm.id, AlarmEvent.action == "cleared")
    ).one()
    assert cleared.note == "sensor retired: 道路改造，设备拆除" and cleared.actor == PERSON.name
    comment = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == alarm.order_id, OrderEvent.action == "comment")
    ).one()
    assert comment.payload is not None
    assert re.fullmatch(
        rf"监测报警 #{alarm.id} 已解除：值班员，[\d: -]+；说明：监测点停用：道路改造，设备拆除",
        explain(ZH, comment.payload["text"]),
    )
    with pytest.raises(Conflict, match="retired already"):
        service.retire(db_session, code="WL-R", actor=PERSON)
    db_session.rollback()

    later = T0 + timedelta(hours=1)
    result = service.ingest(db_session, items=_series("WL-R", [5], start=later) + _series("WL-K", [6, 7], start=later))
    assert result.stored == 2 and [(r.index, r.field) for r in result.rejected] == [(0, "sensor_code")]
    assert "sensor 'WL-R' is retired" in result.rejected[0].message
    assert [s.code for s in service.list_sensors(db_session, active=True)] == ["WL-K"]
    db_session.commit()

    service.reactivate(db_session, code="WL-R", actor=PERSON)
    db_session.commit()
    again = service.ingest(db_session, items=_series("WL-R", [5], start=later + timedelta(hours=1)))
    assert again.stored == 1 and not again.rejected
    with pytest.raises(Conflict, match="in service"):
        service.reactivate(db_session, code="WL-R", actor=PERSON)
    db_session.rollback()
    # One concept: a PATCH of ``active`` is a retirement.
    service.update_sensor(db_session, code="WL-K", data=SensorUpdate(active=False), actor=PERSON)
    assert db_session.scalars(select(Sensor.retired_at).where(Sensor.code == "WL-K")).one() is not None


def test_deactivating_a_rule_clears_its_open_alarms_which_then_neither_stay_open_nor_escalate(
    db_session: Session, units: dict[str, int]
) -> None:
    """A rule switched off is no longer evaluated, so no reading could clear its open alarms: they stayed active on
    the lists and the map for good and were escalated (their orders' urgency raised) half an hour later."""
    _sensor(db_session, "WL-D")
    rule_id = _rule(db_session, duration_s=0, escalate_after_minutes=30)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-D", [30, 32]), now=T0)
    db_session.commit()
    alarm = _only_alarm(db_session, "WL-D")
    service.update_rule(db_session, rule_id=rule_id, data=RuleUpdate(active=False), actor=PERSON)
    db_session.commit()
    db_session.refresh(alarm)
    assert alarm.state == AlarmState.CLEARED and alarm.open_key is None and alarm.cleared_by == PERSON.name
    cleared = db_session.scalars(
        select(AlarmEvent).where(AlarmEvent.alarm_id == alarm.id, AlarmEvent.action == "cleared")
    ).one()
    assert cleared.note == "alarm rule deactivated: 积水深度超过 20 厘米" and cleared.actor == PERSON.name
    comment = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == alarm.order_id, OrderEvent.action == "comment")
    ).one()
    assert comment.payload is not None
    assert explain(ZH, comment.payload["text"]).endswith("；说明：报警规则停用：积水深度超过 20 厘米")
    assert explain(EN, comment.payload["text"]).endswith("; note: alarm rule deactivated: 积水深度超过 20 厘米")
    assert service.escalate_due(db_session, now=T0 + timedelta(hours=1)) == {"escalated": 0, "orders_escalated": 0}
    # Deactivating it again, or changing an inactive rule, clears nothing more.
    service.update_rule(db_session, rule_id=rule_id, data=RuleUpdate(active=False, threshold=25), actor=PERSON)
    assert _events(db_session, alarm.id) == ["raised", "order_opened", "cleared"]
