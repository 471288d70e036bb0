"""**Pure** alarm evaluation: a rule, where its evaluation stands for one sensor, and that sensor's new readings →
the next state and the alarm transitions (raise, repeat, clear). No I/O; the service loads and stores.

- The condition (``value <cmp> threshold``) must hold for ``duration_s`` by the readings' own times before the alarm
  is raised; a reading that does not breach restarts that wait.
- While the alarm is open every breaching reading is a *repeat*: the service counts it on the one open alarm
  (storm de-duplication), it never raises a second one.
- The alarm clears when a reading is back past the clear threshold (hysteresis): for ``>``/``>=`` when it is no
  longer beyond the clear threshold, which is at or below the threshold (and the mirror for ``<``/``<=``). Readings
  between the two keep the alarm as it is, so noise around the limit does not flap.
- Readings are evaluated in time order; one not later than the last reading evaluated (late, out of order, or sent
  again) is stored but changes nothing: the state already reflects a later moment.
- After a person clears an alarm whose condition still holds, the rule is *disarmed* until the readings recover,
  so that the next breaching reading does not raise the same alarm again.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta


class SensorKind(enum.StrEnum):
    WATERLOGGING = "waterlogging"  # 内涝
    RIVER_LEVEL = "river_level"  # 河道水位
    WATER_QUALITY = "water_quality"  # 水质
    AIR_QUALITY = "air_quality"  # 空气质量
    CROWD_COUNT = "crowd_count"  # 人流
    VIDEO_AI = "video_ai"  # 视频AI识别: a camera whose video analytics report what they detect (``DETECTIONS``)
    TRAFFIC = "traffic"  # 交通运行: a road segment's traffic performance index (``tpi``, 0–10), from traffic data
    OTHER = "other"


# What the video analytics of a city-management camera detect (视频AI识别), as the metrics a ``video_ai`` sensor
# reports: one per kind, its value the detector's confidence (0–1) in the latest frame analysed, 0 once the scene
# is clear — so an alarm rule ("garbage_exposed >= 0.8", cleared below 0.3) raises one alarm and one order per
# episode however many frames show it, as for any other sensor. Other codes may be used; these are named.
DETECTIONS: dict[str, str] = {
    "garbage_exposed": "暴露垃圾",
    "materials_stacked": "乱堆物料",
    "street_vending": "占道经营",
    "out_of_store": "出店经营",
    "road_waterlogging": "道路积水",
    "illegal_parking": "机动车违停",
    "bike_disorder": "非机动车乱停放",
    "helmetless_ebike": "骑电动车未戴头盔",
}


# The measured quantities of the built-in sensor kinds, as an order raised by an alarm names them (积水深度 31.1cm,
# not depth 31.1cm); a metric of another name is named as it is. The web UI's catalogue (metric.*) agrees.
MEASURES: dict[str, str] = {
    "depth": "积水深度",
    "level": "水位",
    "do": "溶解氧",
    "ph": "pH",
    "pm25": "PM2.5",
    "aqi": "AQI",
    "people": "人数",
    "tpi": "交通运行指数",
}


# What each known metric can physically read, whatever unit a sensor reports it in (a depth in cm or mm, a river
# level in m above the local datum) — so the bounds are generous: a value outside is a broken probe or a mis-scaled
# gateway, not a measurement, and is refused at ingestion naming the reading and ``value`` (a depth of 1e300 was
# stored and shown as "1e+300cm" on the list and the map). A metric not named here need only be a finite number.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "depth": (-50.0, 10_000.0),  # standing water: a probe's offset reads a little below a dry road; 10 m in mm
    "level": (-500.0, 9_000.0),  # a water level above (or below) its gauge's datum, in m
    "do": (0.0, 50.0),  # dissolved oxygen, mg/L (supersaturated water stays below 20)
    "ph": (0.0, 14.0),
    "pm25": (0.0, 5_000.0),  # µg/m³: a dust storm's hourly PM2.5 stays below 2,000
    "aqi": (0.0, 1_000.0),  # HJ 633-2012 grades up to 500; a platform may report beyond
    "people": (0.0, 10_000_000.0),
    "tpi": (0.0, 10.0),  # the traffic performance index (交通运行指数) is 0–10 by definition
    **{code: (0.0, 1.0) for code in DETECTIONS},  # a video detector's confidence
}


def implausible(metric: str, value: float) -> str | None:
    """Why ``value`` cannot be a reading of ``metric`` (outside :data:`PLAUSIBLE`), or None."""
    bounds = PLAUSIBLE.get(metric)
    if bounds is None or bounds[0] <= value <= bounds[1]:
        return None
    return f"{value:g} is outside what {metric} can read ({bounds[0]:g} to {bounds[1]:g}): a faulty device or scale?"


def metric_name(metric: str) -> str:
    """What a metric is called in an order's Chinese text: a measure's or a detection's name, else its key."""
    return MEASURES.get(metric) or DETECTIONS.get(metric) or metric


def is_confidence(sensor_kind: str | None, metric: str) -> bool:
    """Whether ``metric`` of a sensor of ``sensor_kind`` is a detection's confidence (0–1): a video-AI camera's
    metrics but its silence."""
    return sensor_kind == SensorKind.VIDEO_AI and metric != SILENCE_METRIC


def figure(value: float, unit: str | None = "", *, confidence: bool = False) -> str:
    """A reading as every page and text shows it: a detection's confidence in whole percent (0.935 → "94%"), as the
    order's text says it; any other value as a plain number with its measurement unit (26.0, "cm" → "26cm")."""
    return f"{value:.0%}" if confidence else f"{value:g}{unit or ''}"


class SensorStatus(enum.StrEnum):
    """Which sensors a list shows (``status=``): in service (the default), those in service whose status now is normal,
    alarming or silent (离线) — the values of :class:`SensorState` — retired (停用), or all."""

    ACTIVE = "active"
    NORMAL = "normal"
    ALARMING = "alarming"
    SILENT = "silent"
    RETIRED = "retired"
    ALL = "all"

    @property
    def active(self) -> bool | None:
        """The sensors' ``active`` flag this status asks for (None: either)."""
        return None if self == SensorStatus.ALL else self != SensorStatus.RETIRED

    @property
    def state(self) -> SensorState | None:
        """The status now (by the clock and the open alarms, no column) that a sensor in service must be in; None:
        any."""
        return (
            SensorState(self.value)
            if self in (SensorStatus.NORMAL, SensorStatus.ALARMING, SensorStatus.SILENT)
            else None
        )


class SensorState(enum.StrEnum):
    """What a sensor's status says (the lists, its page, the map, ``status`` in the API): retired (停用), silent
    (离线: no reading for longer than it may stay quiet — what it last said is no longer known to hold), alarming (an
    alarm of a threshold rule open), else normal (正常)."""

    NORMAL = "normal"
    ALARMING = "alarming"
    SILENT = "silent"
    RETIRED = "retired"


class RuleKind(enum.StrEnum):
    THRESHOLD = "threshold"  # a reading's value against a limit (the rules people write)
    SILENCE = "silence"  # the one built-in rule: no reading for too long (监测点离线)


# The silence rule's "metric": its alarms' values are the minutes the sensor had been quiet when they were raised,
# their threshold the minutes it may be quiet.
SILENCE_METRIC = "silent_minutes"
# The name the silence rule is made with (the product's, not an administrator's: a page shows it in its reader's
# language, ``web.machine_text.rule_name``, until an administrator renames it).
SILENCE_RULE_NAME = "监测点离线"


def silent_since(
    *,
    last_reading_at: datetime | None,
    registered_at: datetime,
    after_minutes: int | None,
    now: datetime,
    back_in_service_at: datetime | None = None,
) -> datetime | None:
    """When a sensor became silent — the minutes it may stay quiet after it was last heard of: its last reading (never
    having reported, its registration), or its return to service when that is later (a retired sensor reactivated is
    given its time afresh, not judged by what it said before it was retired) — if that is not after ``now``; None
    while it is not silent or when ``after_minutes`` is None (never)."""
    if after_minutes is None:
        return None
    heard = last_reading_at or registered_at
    if back_in_service_at is not None and back_in_service_at > heard:
        heard = back_in_service_at
    since = heard + timedelta(minutes=after_minutes)
    return since if since <= now else None


def silent_after(own_minutes: int | None, default: int) -> int | None:
    """Minutes a sensor may stay quiet: its own, else the default; None: never silent (0)."""
    minutes = default if own_minutes is None else own_minutes
    return minutes if minutes > 0 else None


class Comparison(enum.StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


class Severity(enum.StrEnum):
    INFO = "info"  # 提示
    WARNING = "warning"  # 预警
    CRITICAL = "critical"  # 严重

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class AlarmState(enum.StrEnum):
    ACTIVE = "active"  # 报警中
    ACKNOWLEDGED = "acknowledged"  # 已确认
    CLEARED = "cleared"  # 已解除


OPEN_ALARM_STATES = frozenset({AlarmState.ACTIVE, AlarmState.ACKNOWLEDGED})


def beyond(comparison: Comparison | str, value: float, limit: float) -> bool:
    """Whether ``value <comparison> limit``."""
    match Comparison(comparison):
        case Comparison.GT:
            return value > limit
        case Comparison.GE:
            return value >= limit
        case Comparison.LT:
            return value < limit
        case Comparison.LE:
            return value <= limit


def check_clear_threshold(comparison: Comparison | str, threshold: float, clear: float | None) -> str | None:
    """Why a clear threshold does not fit its rule (it must be on the safe side of the threshold), or None."""
    if clear is None or not math.isfinite(clear):
        return None if clear is None else "clear threshold must be a finite number"
    upward = Comparison(comparison) in (Comparison.GT, Comparison.GE)
    if upward and clear > threshold:
        return f"clear threshold {clear:g} must not be above the threshold {threshold:g} of a '{comparison}' rule"
    if not upward and clear < threshold:
        return f"clear threshold {clear:g} must not be below the threshold {threshold:g} of a '{comparison}' rule"
    return None


@dataclass(frozen=True)
class RuleSpec:
    comparison: Comparison
    threshold: float
    clear_threshold: float | None = None
    duration_s: int = 0

    @property
    def clear_limit(self) -> float:
        return self.threshold if self.clear_threshold is None else self.clear_threshold

    def scaled(self, factor: float) -> RuleSpec:
        """The rule with both thresholds multiplied (shares of a sensor's capacity)."""
        clear = None if self.clear_threshold is None else self.clear_threshold * factor
        return replace(self, threshold=self.threshold * factor, clear_threshold=clear)


@dataclass(frozen=True)
class EvalState:
    """A rule's evaluation for one sensor. ``open``: an alarm is open (active or acknowledged)."""

    open: bool = False
    last_at: datetime | None = None
    last_value: float | None = None
    breach_since: datetime | None = None
    armed: bool = True


class Change(enum.StrEnum):
    RAISE = "raise"
    REPEAT = "repeat"
    CLEAR = "clear"


@dataclass(frozen=True)
class Transition:
    change: Change
    at: datetime
    value: float
    since: datetime | None = None  # RAISE: when the condition started to hold


@dataclass(frozen=True)
class Evaluation:
    state: EvalState
    transitions: list[Transition] = field(default_factory=list)
    late: int = 0  # readings not after the last one evaluated: stored, not evaluated


def evaluate(spec: RuleSpec, state: EvalState, readings: Iterable[tuple[datetime, float]]) -> Evaluation:
    """Run ``readings`` (any order) through the rule from ``state``."""
    transitions: list[Transition] = []
    late = 0
    is_open, last_at, last_value = state.open, state.last_at, state.last_value
    since, armed = state.breach_since, state.armed
    wait = timedelta(seconds=max(spec.duration_s, 0))
    for at, value in sorted(readings, key=lambda r: r[0]):
        if last_at is not None and at <= last_at:
            late += 1
            continue
        last_at, last_value = at, value
        breaching = beyond(spec.comparison, value, spec.threshold)
        recovered = not beyond(spec.comparison, value, spec.clear_limit)
        if is_open:
            if breaching:
                transitions.append(Transition(Change.REPEAT, at, value))
            elif recovered:
                transitions.append(Transition(Change.CLEAR, at, value))
                is_open, since = False, None
            continue
        if recovered:
            armed = True
        if not breaching:
            since = None
            continue
        since = since or at
        if armed and at - since >= wait:
            transitions.append(Transition(Change.RAISE, at, value, since=since))
            is_open = True
    return Evaluation(
        EvalState(open=is_open, last_at=last_at, last_value=last_value, breach_since=since, armed=armed),
        transitions,
        late,
    )


def cleared_by_person(spec: RuleSpec, state: EvalState) -> EvalState:
    """The state after a person clears the open alarm: closed, and disarmed while the last reading still breaches
    (the rule raises again only after the readings have recovered)."""
    still = state.last_value is not None and beyond(spec.comparison, state.last_value, spec.clear_limit)
    return replace(state, open=False, breach_since=None, armed=not still)
