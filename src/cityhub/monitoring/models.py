"""Sensors, alarm rules, readings, each rule's evaluation state per sensor, alarms and their trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.db import Base, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class Sensor(Base):
    """One monitoring device (监测点): what it measures, where it is and which unit answers for it."""

    __tablename__ = "sensors"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # waterlogging, river_level, water_quality, air_quality, crowd_count, video_ai, traffic, other
    # (rules.SensorKind).
    kind: Mapped[str] = mapped_column(String(20), index=True)
    # The metrics it reports and their measurement units: {"depth": "cm"}.
    metrics: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    # The unit responsible (default: the community, else the street, where the sensor stands) and its place.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"), index=True)
    # For crowd counts: the number of people the place holds (rules may compare with a share of it).
    capacity: Mapped[float | None] = mapped_column(Float)
    # False: retired (removed from the street). Its readings and alarms stay; it accepts no readings, is off the map
    # and out of the lists by default, and may be reactivated. One concept: ``retire`` / ``reactivate`` set both.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    retired_at: Mapped[datetime | None] = mapped_column()
    # When it was last put back in service (启用) after being retired: its silence counts from then at the earliest
    # (migration 0050); None for a sensor never retired and reactivated.
    in_service_since: Mapped[datetime | None] = mapped_column()
    retired_by: Mapped[str | None] = mapped_column(String(80))
    retired_reason: Mapped[str | None] = mapped_column(String(500))
    # The latest reading per metric: {"depth": {"value": 12.0, "at": "2026-12-01T08:00:00+00:00"}}.
    latest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_reading_at: Mapped[datetime | None] = mapped_column()
    # How long it may stay quiet (no reading since its last, or since it was registered) before it is silent (离线)
    # and the sensor-silence job raises the silence rule's alarm; None: CITYHUB_SENSOR_SILENT_AFTER_MINUTES, 0: never
    # (a device that reports only when it sees something).
    silent_after_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The one silence rule (rules.RuleKind.SILENCE) is unique: the job creating it on two workers at once makes one.
SILENCE_RULE_SQL = "kind = 'silence'"


class AlarmRule(Base):
    """A threshold on one metric, for every sensor of a kind or for one sensor (报警规则); or the one built-in rule
    whose alarms say a sensor went silent (``kind`` silence: no target, no threshold of its own — each sensor's
    ``silent_after_minutes`` or the setting — made by the sensor-silence job)."""

    __tablename__ = "alarm_rules"
    __table_args__ = (
        Index(
            "uq_alarm_rules_silence",
            "kind",
            unique=True,
            sqlite_where=text(SILENCE_RULE_SQL),
            postgresql_where=text(SILENCE_RULE_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # threshold (a reading's value against a limit) or silence (no reading for too long); rules.RuleKind.
    kind: Mapped[str] = mapped_column(String(12), default="threshold", server_default="threshold")
    name: Mapped[str] = mapped_column(String(120))
    sensor_kind: Mapped[str | None] = mapped_column(String(20), index=True)
    sensor_id: Mapped[int | None] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(40))
    comparison: Mapped[str] = mapped_column(String(2))  # > >= < <=
    threshold: Mapped[float] = mapped_column(Float)
    # Back past this value the alarm clears (hysteresis); None: the threshold itself.
    clear_threshold: Mapped[float | None] = mapped_column(Float)
    # The thresholds are shares of the sensor's capacity (crowd counts: 0.9 = 90 % full).
    of_capacity: Mapped[bool] = mapped_column(Boolean, default=False)
    # The condition must hold this long (by the readings' times) before the alarm is raised.
    duration_s: Mapped[int] = mapped_column(Integer, default=0)
    severity: Mapped[str] = mapped_column(String(10), default="warning")  # info, warning, critical
    opens_order: Mapped[bool] = mapped_column(Boolean, default=True)
    category: Mapped[str | None] = mapped_column(String(300))  # category path (as long as categories.path) or name
    urgency: Mapped[str] = mapped_column(String(10), default="normal")
    # An alarm still active (not acknowledged) this long after it was raised is escalated; None: the setting
    # CITYHUB_ALARM_ESCALATE_AFTER_MINUTES, 0: never.
    escalate_after_minutes: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reading(Base):
    """One measurement; a re-sent one (same sensor, metric and time) is stored once."""

    __tablename__ = "sensor_readings"
    __table_args__ = (UniqueConstraint("sensor_id", "metric", "measured_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(40))
    measured_at: Mapped[datetime] = mapped_column()
    value: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleState(Base):
    """Where a rule's evaluation stands for one sensor: the latest reading evaluated, since when the condition has
    held, whether a person's clear waits for the readings to recover before the rule may raise again."""

    __tablename__ = "alarm_rule_states"

    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"), primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alarm_rules.id", ondelete="CASCADE"), primary_key=True)
    last_at: Mapped[datetime | None] = mapped_column()
    last_value: Mapped[float | None] = mapped_column(Float)
    breach_since: Mapped[datetime | None] = mapped_column()
    armed: Mapped[bool] = mapped_column(Boolean, default=True)


class Alarm(Base):
    """An alarm (报警) of one rule on one sensor. At most one is open (active or acknowledged) per sensor and rule:
    ``open_key`` is set while it is open and unique, NULL once cleared."""

    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_state_raised", "state", "raised_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alarm_rules.id", ondelete="CASCADE"), index=True)
    open_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    state: Mapped[str] = mapped_column(String(12))  # active, acknowledged, cleared
    severity: Mapped[str] = mapped_column(String(10))
    metric: Mapped[str] = mapped_column(String(40))
    comparison: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)  # the limit in force when raised (capacity applied)
    raised_at: Mapped[datetime] = mapped_column()  # the breaching reading's own time
    # When the readings that raised it arrived (NULL: raised before this was recorded); escalation counts from here.
    recorded_at: Mapped[datetime | None] = mapped_column()
    first_value: Mapped[float] = mapped_column(Float)
    last_value: Mapped[float] = mapped_column(Float)
    peak_value: Mapped[float] = mapped_column(Float)
    last_at: Mapped[datetime] = mapped_column()
    count: Mapped[int] = mapped_column(Integer, default=1)  # breaching readings while open (storm de-duplication)
    media_url: Mapped[str | None] = mapped_column(String(500))  # the raising reading's link: a camera's snapshot
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    # When it was escalated (升级: still unacknowledged after its rule's time); once per alarm.
    escalated_at: Mapped[datetime | None] = mapped_column()
    cleared_at: Mapped[datetime | None] = mapped_column()
    cleared_by: Mapped[str | None] = mapped_column(String(80))  # "system" for an automatic clear
    clear_value: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlarmEvent(Base):
    """The trail of an alarm: raised, order opened, acknowledged, escalated, cleared (by whom, when, why)."""

    __tablename__ = "alarm_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alarm_id: Mapped[int] = mapped_column(BigId, ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(80))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
