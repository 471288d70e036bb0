"""Pydantic schemas of monitoring: sensors, alarm rules, ingestion results, alarms."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from cityhub.monitoring.rules import (
    AlarmState,
    Comparison,
    RuleKind,
    SensorKind,
    SensorState,
    Severity,
    check_clear_threshold,
)
from cityhub.timerange import answer_times
from cityhub.workorders.models import Urgency

# A person's note on an alarm (确认 / 解除) and a sensor's reason for retiring (停用).
NOTE_MAX_CHARS = 500

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _category(value: str | None) -> str | None:
    """A rule's category as kept: trimmed, blank meaning none (the order it opens is classified as any other)."""
    value = _no_nul(value)
    return (value or "").strip() or None


def _name(value: str | None) -> str | None:
    """A sensor's or rule's name as kept: trimmed, never blank (the lists, the map and the orders show it)."""
    if value is None:
        return None
    value = (_no_nul(value) or "").strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class SensorBase(BaseModel):
    name: str = Field(..., min_length=1, max_length=120)
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    address: str | None = Field(None, max_length=300)
    capacity: float | None = Field(
        None, gt=0, lt=1e9, allow_inf_nan=False, description="crowd counts: people the place holds"
    )
    active: bool = True
    silent_after_minutes: int | None = Field(
        None,
        ge=0,
        le=7 * 24 * 60,
        description="minutes it may go without a reading before it is silent (离线); "
        "null: CITYHUB_SENSOR_SILENT_AFTER_MINUTES, 0: never",
    )

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str | None:
        return _name(value)

    @field_validator("address")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _no_nul(value)


class SensorCreate(SensorBase):
    code: str = Field(..., pattern=CODE_PATTERN, description="the device's own identifier, unique")
    kind: SensorKind
    metrics: dict[str, str] = Field(
        ..., min_length=1, max_length=20, description='metrics and their measurement units, e.g. {"depth": "cm"}'
    )
    unit_code: str | None = Field(
        None, max_length=32, description="code of the responsible unit; default: the community or street it is in"
    )

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, unit in value.items():
            if not re.match(METRIC_PATTERN, name):
                raise ValueError(f"metric name {name!r}: lower-case letters, digits and _, starting with a letter")
            if len(unit) > 20 or "\x00" in unit:
                raise ValueError(f"measurement unit of {name!r}: at most 20 characters, no NUL")
        return value

    # Checked even when not given, at this field (an order's are so): the pair's refusal named the body, not a field.
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False, validate_default=True)

    @field_validator("lng")
    @classmethod
    def _with_lat(cls, value: float | None, info: ValidationInfo) -> float | None:
        # A latitude refused on its own (out of range) is not in ``info.data``: that error says it all.
        if "lat" in info.data and (info.data["lat"] is None) != (value is None):
            raise ValueError("lat and lng must be given together")
        return value


class SensorUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=120)
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    address: str | None = Field(None, max_length=300)
    capacity: float | None = Field(None, gt=0, lt=1e9, allow_inf_nan=False)
    active: bool | None = None
    unit_code: str | None = Field(None, max_length=32)
    silent_after_minutes: int | None = Field(None, ge=0, le=7 * 24 * 60, description="null: the default")

    @field_validator("name")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        return _name(value)

    @field_validator("address", "unit_code")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _no_nul(value)


class SensorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    kind: str
    metrics: dict[str, str]
    lat: float | None
    lng: float | None
    address: str | None
    unit_id: int | None
    street_id: int | None
    community_id: int | None
    capacity: float | None
    active: bool = Field(description="false: retired (停用) — keeps its history, accepts no readings")
    retired_at: datetime | None
    retired_by: str | None
    retired_reason: str | None
    latest: dict[str, Any] | None
    last_reading_at: datetime | None = Field(description="its latest reading's time; null: it never reported")
    silent_after_minutes: int | None = Field(
        None, description="its own time to go silent; null: CITYHUB_SENSOR_SILENT_AFTER_MINUTES, 0: never"
    )
    status: SensorState = Field(
        SensorState.NORMAL,
        description="retired (停用), silent (离线: no reading for longer than it may stay quiet — what it last said "
        "no longer holds), alarming (an alarm of a threshold rule open) or normal",
    )
    silent_since: datetime | None = Field(
        None, description="when it became silent (its last reading, or registration, plus its time); null unless silent"
    )
    created_at: datetime
    placed: bool = Field(
        True,
        description="false: no responsible unit (unit_id null) — its position and address lie in no community or "
        "street and no unit_code was given; its alarms' orders wait for a dispatcher",
    )
    warnings: list[str] = Field(
        default_factory=list, description="what the sensor lacks and how to mend it (an unplaced sensor's)"
    )

    @field_serializer("latest", when_used="json")
    def _latest_times(self, latest: dict[str, Any] | None) -> dict[str, Any] | None:
        return answer_times(latest)  # each metric's reading time (kept as it came), in UTC as every answer's times


class RuleBase(BaseModel):
    name: str = Field(..., min_length=1, max_length=120)
    metric: str = Field(..., pattern=METRIC_PATTERN)
    comparison: Comparison
    threshold: float
    clear_threshold: float | None = Field(
        None, description="back past this value the alarm clears (hysteresis); default: the threshold"
    )
    of_capacity: bool = Field(False, description="thresholds are shares of the sensor's capacity (0.9 = 90 %)")
    duration_s: int = Field(0, ge=0, le=7 * 86_400, description="the condition must hold this long before raising")
    severity: Severity = Severity.WARNING
    opens_order: bool = True
    category: str | None = Field(None, max_length=300, description="category path or name of the order opened")
    urgency: Urgency = Urgency.NORMAL
    escalate_after_minutes: int | None = Field(
        None,
        ge=0,
        le=7 * 24 * 60,
        description="an alarm still unacknowledged this long after it was raised is escalated; "
        "null: CITYHUB_ALARM_ESCALATE_AFTER_MINUTES, 0: never",
    )
    active: bool = True

    @field_validator("name")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        return _name(value)

    @field_validator("category")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _category(value)

    @field_validator("threshold")
    @classmethod
    def _finite_threshold(cls, value: float) -> float | None:
        return _finite(value)

    @field_validator("clear_threshold")
    @classmethod
    def _hysteresis(cls, value: float | None, info: ValidationInfo) -> float | None:
        """On the safe side of the threshold, refused naming ``clear_threshold`` (as ``PATCH`` does), not the body;
        checked when the comparison and threshold before it are valid (else they are refused themselves)."""
        value = _finite(value)
        comparison, threshold = info.data.get("comparison"), info.data.get("threshold")
        if comparison is not None and threshold is not None:
            problem = check_clear_threshold(comparison, threshold, value)
            if problem:
                raise ValueError(problem)
        return value


class RuleCreate(RuleBase):
    sensor_kind: SensorKind | None = Field(None, description="the rule applies to every sensor of this kind …")
    sensor_code: str | None = Field(None, max_length=64, description="… or to this one sensor")

    @model_validator(mode="after")
    def _one_target(self) -> RuleCreate:
        if (self.sensor_kind is None) == (self.sensor_code is None):
            raise ValueError("give exactly one of sensor_kind and sensor_code")
        return self


class RuleUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=120)
    threshold: float | None = None
    clear_threshold: float | None = None
    duration_s: int | None = Field(None, ge=0, le=7 * 86_400)
    severity: Severity | None = None
    opens_order: bool | None = None
    category: str | None = Field(None, max_length=300)
    urgency: Urgency | None = None
    escalate_after_minutes: int | None = Field(None, ge=0, le=7 * 24 * 60, description="null: the default")
    active: bool | None = None

    @field_validator("name")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        return _name(value)

    @field_validator("category")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _category(value)

    @field_validator("threshold", "clear_threshold")
    @classmethod
    def _finite_numbers(cls, value: float | None) -> float | None:
        return _finite(value)


class RuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: RuleKind = Field(
        RuleKind.THRESHOLD,
        description="threshold, or silence: the one built-in rule raising an alarm when a sensor stops reporting "
        "(its threshold unused: each sensor's silent_after_minutes, else the setting)",
    )
    name: str
    sensor_kind: str | None
    sensor_id: int | None
    metric: str
    comparison: str
    threshold: float
    clear_threshold: float | None
    of_capacity: bool
    duration_s: int
    severity: str
    opens_order: bool
    category: str | None
    urgency: str
    escalate_after_minutes: int | None
    active: bool
    created_at: datetime


# The fields of a reading pushed over the API (``ReadingsIn``); any other is refused, naming it, as a field a JSON body
# does not take is everywhere in the API (``media_ur`` would lose the snapshot unseen).
READING_FIELDS = ("sensor_code", "metric", "measured_at", "value", "media_url")


class ReadingsIn(BaseModel):
    """Readings to store and evaluate. Items are checked one by one (a bad one is reported by its index and the
    others kept), so they are taken as plain objects here."""

    # A body that is one item itself (a reading's fields, no ``readings``) is told to wrap it (``api.deps``).
    items_field: ClassVar[tuple[str, tuple[str, ...]]] = ("readings", READING_FIELDS)

    readings: list[Any] = Field(
        ...,
        description="each {sensor_code (batch only), metric (optional when the sensor has one), measured_at "
        "(ISO 8601 with time zone), value (number), media_url (optional: an http(s) link to what the reading is "
        "about, such as a camera's snapshot; an alarm it raises and the order that opens carry it)}; a reading "
        "naming another field is rejected, naming it",
    )


class RejectedReading(BaseModel):
    index: int
    field: str
    message: str


class IngestResult(BaseModel):
    received: int
    stored: int
    duplicates: int = Field(description="readings already stored (same sensor, metric, time and value), or repeated")
    late: int = Field(description="stored, but not after the latest reading evaluated, so not evaluated")
    rejected: list[RejectedReading]
    alarms_raised: int
    alarms_repeated: int
    alarms_cleared: int
    orders_opened: int
    alarms_reopened: int = Field(
        0,
        description="alarms cleared automatically shortly before (CITYHUB_SENSOR_REARM_MINUTES) that these readings "
        "crossed again: reopened, not raised anew (not counted in alarms_raised)",
    )
    alarms_joined: int = Field(
        0,
        description="alarms raised that joined an open order of the same problem instead of opening one (not counted "
        "in orders_opened): their sensor's own earlier alarm's, or a nearby sensor's of the same kind and metric "
        "(CITYHUB_ALARM_JOIN_WITHIN_M, CITYHUB_ALARM_JOIN_WINDOW_MINUTES)",
    )


class AlarmRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sensor_id: int
    sensor_code: str
    sensor_name: str
    sensor_kind: str
    rule_id: int
    rule_name: str
    kind: RuleKind = Field(
        RuleKind.THRESHOLD,
        description="threshold, or silence: the sensor stopped reporting (metric silent_minutes: value the minutes "
        "it had been quiet, threshold the minutes it may be)",
    )
    state: AlarmState
    severity: str
    metric: str
    comparison: str
    threshold: float
    raised_at: datetime
    first_value: float
    last_value: float
    peak_value: float
    last_at: datetime
    count: int
    order_id: int | None
    order_number: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalated_at: datetime | None = Field(
        description="when it was escalated (升级), still unacknowledged; null again once it is reopened, until that "
        "episode is escalated"
    )
    cleared_at: datetime | None
    cleared_by: str | None
    media_url: str | None = Field(
        None, description="the link the reading that raised it gave (a camera's snapshot); its order's attachment"
    )
    unit: str | None = Field(None, description="the measurement unit of metric, as the sensor reports it (cm, m, …)")
    current_value: float | None = Field(
        None,
        description="the sensor's latest reading of metric now, whatever the alarm's state (last_value is the last "
        "reading past the limit); null for a silence alarm or a sensor without one",
    )
    current_at: datetime | None = Field(None, description="when current_value was measured")
    order_state: str | None = Field(None, description="the state of its order now (received, dispatched, …)")
    order_lead_unit_name: str | None = Field(None, description="the unit handling its order now (承办单位)")
    reopened: int = Field(
        0,
        description="times it was reopened: crossed again within CITYHUB_SENSOR_REARM_MINUTES of being cleared "
        "automatically (last_at, last_value: the latest crossing)",
    )


class AlarmPage(BaseModel):
    items: list[AlarmRead]
    limit: int
    offset: int
    has_more: bool


class AlarmEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str
    actor: str
    at: datetime
    note: str | None
    payload: dict[str, Any] | None

    @field_serializer("payload", when_used="json")
    def _payload_times(self, payload: dict[str, Any] | None) -> dict[str, Any] | None:
        return answer_times(payload)  # since when a condition held, …: in UTC, as the event's own ``at``


class AlarmAction(BaseModel):
    note: str | None = Field(None, max_length=NOTE_MAX_CHARS)

    @field_validator("note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _no_nul(value)


class SensorRetire(BaseModel):
    reason: str | None = Field(None, max_length=NOTE_MAX_CHARS, description="why it was removed, e.g. 道路改造拆除")

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _no_nul(value)


class SeriesPoint(BaseModel):
    at: datetime
    value: float


class SeriesBucket(BaseModel):
    start: datetime
    end: datetime
    count: int
    min: float
    max: float
    mean: float


class SeriesRead(BaseModel):
    """A metric's readings over a window: every reading when they are few, else each bucket's lowest and highest
    (in time order, so a spike is never averaged away)."""

    sensor_code: str
    metric: str
    unit: str
    start: datetime
    end: datetime
    count: int = Field(description="readings in the window")
    downsampled: bool
    points: list[SeriesPoint] = Field(description="what to draw, in time order")
    buckets: list[SeriesBucket] = Field(description="per bucket: count, min, max, mean (empty buckets left out)")
