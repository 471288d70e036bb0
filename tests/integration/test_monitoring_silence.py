# ruff: noqa: F811  (fixtures imported from the neighbouring test modules are parameters here)
"""Sensors that go silent (离线), on both backends: a sensor in service without a reading for longer than it may
stay quiet (its own time, else the setting; 0 never) is silent by the clock; the sensor-silence job raises one
silence alarm per sensor (no storm), in its trail and notified, opening no order unless the silence rule is switched
to; readings that resume clear it (trail entry), as does a longer time; the rule keeps no limit of its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_monitoring import T0, _rule, _sensor, _series, _units, units  # noqa: F401  (the fixture)

from cityhub import jobs
from cityhub.auditlog import LogEntry
from cityhub.db import session_scope, utcnow
from cityhub.errors import ValidationFailed
from cityhub.monitoring import service
from cityhub.monitoring.models import Alarm, AlarmRule, Sensor
from cityhub.monitoring.rules import SILENCE_METRIC, AlarmState, RuleKind, SensorState
from cityhub.monitoring.schemas import RuleUpdate, SensorUpdate
from cityhub.notify import service as notify
from cityhub.notify.models import OutboxMessage, Topic
from cityhub.workorders.models import Order


def _silence_alarms(session: Session, code: str) -> list[Alarm]:
    return list(
        session.scalars(
            select(Alarm)
            .join(Sensor, Sensor.id == Alarm.sensor_id)
            .join(AlarmRule, AlarmRule.id == Alarm.rule_id)
            .where(Sensor.code == code, AlarmRule.kind == RuleKind.SILENCE.value)
            .order_by(Alarm.id)
        )
    )


def _found(session: Session, minutes: float) -> dict[str, int]:
    """What the job finds ``minutes`` after T0."""
    return service.detect_silence(session, now=T0 + timedelta(minutes=minutes))


def _state(session: Session, code: str, now: object) -> service.SensorCondition:
    sensor = service.require_sensor(session, code=code)
    return service.sensor_conditions(session, [sensor], now=now)[sensor.id]  # type: ignore[arg-type]


def test_a_quiet_sensor_goes_silent_raises_one_alarm_and_readings_resuming_clear_it(
    db_session: Session, units: dict[str, int]
) -> None:
    everyone, _ = notify.add_subscription(db_session, target="http://127.0.0.1:9/all", topics=["alarm"])
    _sensor(db_session, "WL-Q", silent_after_minutes=30)
    _sensor(db_session, "WL-D")  # the default time: 120 minutes
    _sensor(db_session, "WL-0", silent_after_minutes=0)  # never silent: reports only when it sees something
    db_session.commit()
    service.ingest(db_session, items=_series("WL-Q", [3]) + _series("WL-D", [4]) + _series("WL-0", [0]), now=T0)
    db_session.commit()

    assert _state(db_session, "WL-Q", T0 + timedelta(minutes=29)).state == SensorState.NORMAL
    assert _found(db_session, 29) == {"silent": 0, "raised": 0, "cleared": 0}
    assert _found(db_session, 31) == {"silent": 1, "raised": 1, "cleared": 0}
    db_session.commit()
    # No storm: one open silence alarm per sensor however often the job finds it silent.
    later = T0 + timedelta(hours=3)
    assert service.detect_silence(db_session, now=later) == {"silent": 2, "raised": 1, "cleared": 0}
    assert service.detect_silence(db_session, now=later + timedelta(hours=1))["raised"] == 0
    db_session.commit()

    condition = _state(db_session, "WL-Q", later)
    assert (condition.state, condition.silent_since, condition.silent_after) == (
        SensorState.SILENT,
        T0 + timedelta(minutes=30),
        30,
    )
    assert _state(db_session, "WL-0", later + timedelta(days=30)).state == SensorState.NORMAL
    [alarm] = _silence_alarms(db_session, "WL-Q")
    assert (alarm.state, alarm.metric, alarm.comparison, alarm.threshold) == ("active", SILENCE_METRIC, ">=", 30)
    assert alarm.raised_at == T0 + timedelta(minutes=30) and alarm.first_value == 31
    assert alarm.order_id is None  # a device to repair is no citizen's appeal: no order by default
    assert db_session.scalar(select(func.count()).select_from(Order)) == 0
    [raised] = service.alarm_events(db_session, alarm_id=alarm.id)
    assert raised.action == "raised" and raised.actor == "system"
    assert (
        (raised.note or "").startswith("sensor silent: no reading for over 30 min, the last at ")
        and raised.payload
        and raised.payload["after_minutes"] == 30
    )
    described = service.describe_alarm(db_session, alarm)
    assert (described["kind"], described["rule_name"]) == ("silence", "监测点离线")
    messages = list(db_session.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topic.ALARM)))
    assert {m.payload["sensor"]["code"] for m in messages if m.payload} == {"WL-Q", "WL-D"}
    note = messages[0]
    assert note.subscription_id == everyone.id and note.payload and note.payload["kind"] == "silence"

    # The sensor reports again: its silence alarm clears itself at the reading, in its trail.
    result = service.ingest(db_session, items=_series("WL-Q", [5], start=later), now=later)
    db_session.commit()
    assert result.alarms_cleared == 1
    db_session.refresh(alarm)
    assert (alarm.state, alarm.open_key, alarm.cleared_by, alarm.cleared_at) == ("cleared", None, "system", later)
    cleared = service.alarm_events(db_session, alarm_id=alarm.id)[-1]
    assert cleared.action == "cleared" and (cleared.note or "").startswith("readings resumed, the latest at ")
    assert _state(db_session, "WL-Q", later).state == SensorState.NORMAL
    assert service.detect_silence(db_session, now=later + timedelta(minutes=5))["raised"] == 0
    # Late readings (a file of old ones) do not bring it back: WL-D stays silent by its newest reading's time.
    service.ingest(db_session, items=_series("WL-D", [4], start=T0 - timedelta(hours=1)), now=later)
    db_session.commit()
    assert [a.state for a in _silence_alarms(db_session, "WL-D")] == ["active"]
    # Given a longer time, WL-D is no longer silent: the job clears its alarm.
    service.update_sensor(db_session, code="WL-D", data=SensorUpdate(silent_after_minutes=24 * 60))
    assert service.detect_silence(db_session, now=later) == {"silent": 0, "raised": 0, "cleared": 1}
    db_session.commit()
    lengthened = _silence_alarms(db_session, "WL-D")
    assert [a.state for a in lengthened] == ["cleared"]
    # It says why: no reading came (it said "readings resumed" at the reading it had last heard).
    assert service.alarm_events(db_session, alarm_id=lengthened[0].id)[-1].note == "silence time lengthened"


def test_a_sensor_that_never_reported_goes_silent_from_its_registration_and_a_retired_one_never(
    db_session: Session, units: dict[str, int]
) -> None:
    _sensor(db_session, "WL-NEW", silent_after_minutes=60)
    _sensor(db_session, "WL-OFF", silent_after_minutes=60)
    db_session.commit()
    service.retire(db_session, code="WL-OFF", actor=service.orders.SYSTEM)
    now = utcnow()
    assert service.detect_silence(db_session, now=now + timedelta(minutes=59))["raised"] == 0
    assert service.detect_silence(db_session, now=now + timedelta(minutes=61))["raised"] == 1
    db_session.commit()
    [alarm] = _silence_alarms(db_session, "WL-NEW")
    assert service.alarm_events(db_session, alarm_id=alarm.id)[0].note == (
        "sensor silent: no reading within 60 min of its registration"
    )
    assert _silence_alarms(db_session, "WL-OFF") == []
    assert _state(db_session, "WL-OFF", now + timedelta(days=9)).state == SensorState.RETIRED
    # Retiring a silent sensor clears its silence alarm as it clears any.
    service.retire(db_session, code="WL-NEW", actor=service.orders.SYSTEM, reason="拆除")
    db_session.commit()
    assert [a.state for a in _silence_alarms(db_session, "WL-NEW")] == [AlarmState.CLEARED]


def test_a_reactivated_sensor_is_silent_by_its_time_from_its_return_to_service_not_from_its_old_reading(
    db_session: Session, units: dict[str, int]
) -> None:
    _sensor(db_session, "WL-R", silent_after_minutes=30)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-R", [3]), now=T0)  # days ago
    service.retire(db_session, code="WL-R", actor=service.orders.SYSTEM, reason="维修")
    db_session.commit()
    service.reactivate(db_session, code="WL-R", actor=service.orders.SYSTEM)
    db_session.commit()
    back = db_session.scalars(select(Sensor.in_service_since).where(Sensor.code == "WL-R")).one()
    logged = db_session.scalars(
        select(LogEntry.at).where(LogEntry.target == "WL-R", LogEntry.action == "reactivate")
    ).one()
    assert back is not None and abs(logged - back) < timedelta(seconds=5)  # the sensor keeps the moment it was logged

    soon = back + timedelta(minutes=29)
    assert _state(db_session, "WL-R", soon).state == SensorState.NORMAL
    assert service.detect_silence(db_session, now=soon)["raised"] == 0
    later = back + timedelta(minutes=31)
    condition = _state(db_session, "WL-R", later)
    assert (condition.state, condition.silent_since) == (SensorState.SILENT, back + timedelta(minutes=30))
    assert service.detect_silence(db_session, now=later) == {"silent": 1, "raised": 1, "cleared": 0}
    db_session.commit()
    [alarm] = _silence_alarms(db_session, "WL-R")
    assert (alarm.raised_at, alarm.first_value) == (back + timedelta(minutes=30), 31)
    note = service.alarm_events(db_session, alarm_id=alarm.id)[0].note or ""
    assert note.startswith("sensor silent: no reading within 30 min of its return to service at ")
    # A reading after its return brings it back; one older than its return (a device's buffer) does not.
    service.ingest(db_session, items=_series("WL-R", [4], start=back - timedelta(minutes=5)), now=later)
    db_session.commit()
    assert [a.state for a in _silence_alarms(db_session, "WL-R")] == ["active"]
    service.ingest(db_session, items=_series("WL-R", [4], start=later), now=later)
    db_session.commit()
    assert [a.state for a in _silence_alarms(db_session, "WL-R")] == ["cleared"]


def test_the_silence_rule_opens_orders_only_when_switched_on_and_keeps_no_limit_of_its_own(
    db_session: Session, units: dict[str, int]
) -> None:
    _sensor(db_session, "WL-O", silent_after_minutes=30)
    _rule(db_session)  # a threshold rule beside it: untouched
    db_session.commit()
    service.ingest(db_session, items=_series("WL-O", [3]), now=T0)
    rule = service.silence_rule(db_session)
    assert service.silence_rule(db_session).id == rule.id  # the one rule
    assert (rule.kind, rule.opens_order, rule.severity) == ("silence", False, "warning")
    with pytest.raises(ValidationFailed) as refused:
        service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(threshold=60))
    assert refused.value.details == {"field": "threshold"} and "silent_after_minutes" in refused.value.message
    service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(threshold=0, opens_order=True, severity="info"))
    db_session.commit()

    assert service.detect_silence(db_session, now=T0 + timedelta(hours=1))["raised"] == 1
    db_session.commit()
    [alarm] = _silence_alarms(db_session, "WL-O")
    order = db_session.get(Order, alarm.order_id)
    assert order is not None and order.title.startswith("【监测点离线】桂花路隧道积水监测点 超过 30 分钟无数据")
    assert "最后一次数据为" in order.content and order.lead_unit_id == units["community"]

    # Switched off (deactivated): its open alarms are cleared and no more are raised.
    service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(active=False))
    db_session.commit()
    assert [a.state for a in _silence_alarms(db_session, "WL-O")] == ["cleared"]
    assert service.detect_silence(db_session, now=T0 + timedelta(hours=9))["raised"] == 0


def test_the_default_time_comes_from_the_setting_and_zero_switches_it_off(
    db_session: Session, units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYHUB_SENSOR_SILENT_AFTER_MINUTES", "10")
    _sensor(db_session, "WL-S")
    _sensor(db_session, "WL-OWN", silent_after_minutes=300)
    db_session.commit()
    service.ingest(db_session, items=_series("WL-S", [3]) + _series("WL-OWN", [3]), now=T0)
    assert _found(db_session, 11) == {"silent": 1, "raised": 1, "cleared": 0}
    monkeypatch.setenv("CITYHUB_SENSOR_SILENT_AFTER_MINUTES", "0")
    assert _state(db_session, "WL-S", T0 + timedelta(days=3)).state == SensorState.NORMAL
    assert _state(db_session, "WL-OWN", T0 + timedelta(days=3)).state == SensorState.SILENT  # its own time holds
    assert service.detect_silence(db_session, now=T0 + timedelta(days=3)) == {"silent": 1, "raised": 1, "cleared": 1}


def test_the_sensor_silence_job_runs_on_demand_and_has_its_schedule_row(app_db: str) -> None:
    with session_scope() as s:
        _units(s)
        _sensor(s, "WL-J", silent_after_minutes=5)
    with session_scope() as s:
        service.ingest(s, items=_series("WL-J", [3]), now=T0)  # days ago
    assert "sensor-silence" in jobs.JOBS
    assert jobs.run_job("sensor-silence") == {"silent": 1, "raised": 1, "cleared": 0}
    assert jobs.run_job("sensor-silence") == {"silent": 1, "raised": 0, "cleared": 0}
    with session_scope() as s:
        assert [a.state for a in _silence_alarms(s, "WL-J")] == ["active"]
        from cityhub.workorders.models import JobRun

        run = s.get(JobRun, "sensor-silence")
        assert run is not None and run.last_result == {"silent": 1, "raised": 0, "cleared": 0}


def test_the_migration_fills_the_return_to_service_of_sensors_reactivated_before(empty_db_url: str) -> None:
    """Migration 0050: a sensor reactivated before the column existed gets its latest reactivation from the
    configuration log; a sensor never retired, or retired still, gets none."""
    from alembic import command
    from sqlalchemy import update

    from cityhub import migrate
    from cityhub.db import make_engine

    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as session:
            _units(session)
            for code in ("WL-BACK", "WL-NEVER", "WL-OFF"):
                _sensor(session, code)
            session.commit()
            for code in ("WL-BACK", "WL-OFF"):
                service.retire(session, code=code, actor=service.orders.SYSTEM, reason="维修")
                session.commit()
            service.reactivate(session, code="WL-BACK", actor=service.orders.SYSTEM)
            session.commit()
            logged = session.scalars(select(LogEntry.at).where(LogEntry.target == "WL-BACK")).all()
            session.execute(update(Sensor).values(in_service_since=None))  # as the release before left it
            session.commit()
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), "0049_outbox_attempted_at")
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            got = {code: at for code, at in session.execute(select(Sensor.code, Sensor.in_service_since))}
            assert got == {"WL-BACK": max(logged), "WL-NEVER": None, "WL-OFF": None}
    finally:
        engine.dispose()
