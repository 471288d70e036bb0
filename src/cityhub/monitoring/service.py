"""Monitoring (监测预警): sensors and alarm rules, reading ingestion and evaluation, alarms that open orders.

Readings are checked one by one (a bad one is reported by its index and field, the good ones kept), stored in one
bulk insert, and run through the rules that apply to their sensor and metric by the pure :mod:`rules` evaluation.
At most one alarm per sensor and rule is open (``alarms.open_key``); repeated crossings while it is open update it
(storm de-duplication). A raised alarm of a rule that opens orders becomes an order through
:func:`cityhub.intake.service.submit` on the sensor channel, idempotent by its external id.
"""

from __future__ import annotations

import logging
import math
import mimetypes
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from cityhub import auditlog
from cityhub.auth.scope import Scope
from cityhub.config import get_settings
from cityhub.db import upsert_insert, utcnow
from cityhub.errors import (
    CityhubError,
    Conflict,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    check_length,
    refuse_nulls,
)
from cityhub.monitoring.models import Alarm, AlarmEvent, AlarmRule, Reading, RuleState, Sensor
from cityhub.monitoring.rules import (
    DETECTIONS,
    SILENCE_METRIC,
    SILENCE_RULE_NAME,
    AlarmState,
    Change,
    Comparison,
    EvalState,
    RuleKind,
    RuleSpec,
    SensorKind,
    SensorState,
    SensorStatus,
    Severity,
    Transition,
    beyond,
    check_clear_threshold,
    cleared_by_person,
    evaluate,
    figure,
    implausible,
    is_confidence,
    metric_name,
    silent_after,
    silent_since,
)
from cityhub.monitoring.schemas import (
    NOTE_MAX_CHARS,
    READING_FIELDS,
    IngestResult,
    RejectedReading,
    RuleCreate,
    RuleUpdate,
    SensorCreate,
    SensorUpdate,
)
from cityhub.monitoring.series import Series, downsample
from cityhub.monitoring.settings import get_monitoring_settings
from cityhub.org.models import Unit, UnitTier
from cityhub.timerange import time_problem
from cityhub.workorders import service as orders
from cityhub.workorders.models import Attachment, Order
from cityhub.workorders.schemas import link_name, web_address

log = logging.getLogger(__name__)

KIND_LABELS = {
    "waterlogging": "内涝",
    "river_level": "河道水位",
    "water_quality": "水质",
    "air_quality": "空气质量",
    "crowd_count": "人流",
    "video_ai": "视频AI识别",
    "traffic": "交通运行",
    "other": "监测",
}
COMPARISON_WORDS = {">": "超过", ">=": "达到", "<": "低于", "<=": "不高于"}
SEVERITY_LABELS = {"info": "提示", "warning": "预警", "critical": "严重"}
# Readings looked up / written per statement (SQLite's bound-parameter limit).
CHUNK = 500


# ------------------------------------------------------------------------------------------------------ sensors


@dataclass(frozen=True)
class _Spot:
    lat: float | None
    lng: float | None
    address: str | None
    title: str
    content: str = ""


def _unit_by_code(session: Session, code: str, field_name: str) -> Unit:
    unit = session.scalars(select(Unit).where(Unit.code == code)).one_or_none()
    if unit is None:
        raise ValidationFailed(f"unknown unit code '{code}'", details={"field": field_name})
    return unit


def _place_sensor(session: Session, sensor: Sensor, unit_code: str | None) -> None:
    """Set the sensor's street and community from where it stands, and its responsible unit: the one named, else
    the community, else the street."""
    from cityhub.org.places import locate_appeal

    place = locate_appeal(session, _Spot(sensor.lat, sensor.lng, sensor.address, sensor.name))
    sensor.street_id = place.street_id if place else None
    sensor.community_id = place.community_id if place else None
    if unit_code:
        unit = _unit_by_code(session, unit_code, "unit_code")
        sensor.unit_id = unit.id
        if sensor.street_id is None and unit.tier in (UnitTier.STREET, UnitTier.COMMUNITY):
            sensor.street_id = unit.id if unit.tier == UnitTier.STREET else unit.parent_id
            sensor.community_id = unit.id if unit.tier == UnitTier.COMMUNITY else None
    else:
        sensor.unit_id = sensor.community_id or sensor.street_id


# What an unplaced sensor is told (the API's ``warnings``, the CLI's import): no unit answers for it.
UNPLACED = (
    "not placed: its position and address lie in no community or street and no unit_code was given, so no unit "
    "answers for it and its alarms' orders wait for a dispatcher; give unit_code, or correct lat/lng or address"
)


def get_sensor(session: Session, *, code: str) -> Sensor | None:
    """Return the sensor with this code."""
    return session.scalars(select(Sensor).where(Sensor.code == code)).one_or_none()


def require_sensor(session: Session, *, code: str) -> Sensor:
    sensor = get_sensor(session, code=code)
    if sensor is None:
        raise NotFound(f"sensor '{code}' not found")
    return sensor


# What the configuration log (cityhub.auditlog) keeps of a sensor and of an alarm rule, before and after a change:
# for a rule, what can be set (its sensor by id).
_SENSOR_FACTS = (
    "name",
    "kind",
    "metrics",
    "lat",
    "lng",
    "address",
    "capacity",
    "unit_id",
    "active",
    "silent_after_minutes",
)
_RULE_FACTS = (*(name for name in RuleCreate.model_fields if name != "sensor_code"), "sensor_id", "kind")


def _facts(thing: Sensor | AlarmRule) -> dict[str, Any]:
    return auditlog.snapshot(thing, _SENSOR_FACTS if isinstance(thing, Sensor) else _RULE_FACTS)


def _log(
    session: Session,
    thing: Sensor | AlarmRule,
    action: str,
    actor: orders.Actor,
    before: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    area, target = ("sensor", thing.code) if isinstance(thing, Sensor) else ("alarm_rule", str(thing.id))
    auditlog.record(
        session, actor=actor, area=area, target=target, action=action, before=before, after=_facts(thing), reason=reason
    )


def create_sensor(session: Session, *, data: SensorCreate, actor: orders.Actor = orders.SYSTEM) -> Sensor:
    """Register a sensor; Conflict when its code is taken."""
    if get_sensor(session, code=data.code) is not None:
        raise Conflict(f"sensor code '{data.code}' is taken", details={"field": "code"})
    sensor = Sensor(
        code=data.code,
        name=data.name.strip(),
        kind=data.kind.value,
        metrics=dict(data.metrics),
        lat=data.lat,
        lng=data.lng,
        address=data.address,
        capacity=data.capacity,
        active=data.active,
        silent_after_minutes=data.silent_after_minutes,
    )
    _place_sensor(session, sensor, data.unit_code)
    session.add(sensor)
    session.flush()
    _log(session, sensor, "create", actor)
    return sensor


def update_sensor(
    session: Session,
    *,
    code: str,
    data: SensorUpdate,
    actor: orders.Actor = orders.SYSTEM,
    metrics: Mapping[str, str] | None = None,
) -> Sensor:
    """Change a sensor; a new position or unit places it again. ``active`` retires or reactivates it (as
    :func:`retire` and :func:`reactivate` do). ``metrics`` (a sensors file's column) replaces what it reports."""
    sensor = require_sensor(session, code=code)
    changes = data.model_dump(exclude_unset=True)
    refuse_nulls(changes, ("name", "active"))
    unit_code = changes.pop("unit_code", None)
    active = changes.pop("active", None)
    if active is False and sensor.active:
        retire(session, code=code, actor=actor)
    elif active is True and not sensor.active:
        reactivate(session, code=code, actor=actor)
    before = _facts(sensor)
    for name, value in changes.items():
        setattr(sensor, name, value)
    if metrics is not None and dict(metrics) != sensor.metrics:
        sensor.metrics = dict(metrics)
    if (sensor.lat is None) != (sensor.lng is None):
        raise ValidationFailed("lat and lng must be given together", details={"field": "lat"})
    if unit_code is not None or {"lat", "lng", "address"} & changes.keys():
        _place_sensor(session, sensor, unit_code)
    session.flush()
    _log(session, sensor, "update", actor, before)
    return sensor


def _lock_sensor(session: Session, code: str) -> Sensor:
    """The sensor, its row locked on PostgreSQL as ingestion locks it: a retirement and a batch of its readings
    happen one after the other."""
    query = select(Sensor).where(Sensor.code == code)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    sensor = session.scalars(query).one_or_none()
    if sensor is None:
        raise NotFound(f"sensor '{code}' not found")
    return sensor


def retire(
    session: Session,
    *,
    code: str,
    actor: orders.Actor,
    reason: str | None = None,
    scope: ColumnElement[bool] | None = None,
) -> Sensor:
    """Retire a sensor (停用: removed from the street). Its readings and alarms stay; its open alarms are cleared as
    a person clears them, with the reason in their trail and on their orders; it accepts no readings until
    reactivated. Conflict when it is retired already."""
    reason = _note(reason, "reason")
    if scope is not None and not list_sensors(session, scope=scope, code=code, limit=1):
        raise NotFound(f"sensor '{code}' not found")
    sensor = _lock_sensor(session, code)
    if not sensor.active:
        raise Conflict(f"sensor '{code}' is retired already", details={"field": "code"})
    note = "sensor retired" + (f": {reason}" if reason else "")
    _lock_held(session, [sensor.id])
    open_ids = session.scalars(
        select(Alarm.id).where(Alarm.sensor_id == sensor.id, Alarm.open_key.is_not(None)).order_by(Alarm.id)
    ).all()
    for alarm_id in open_ids:
        alarm = _lock_alarm(session, require_alarm(session, alarm_id=alarm_id))
        if alarm.open_key is not None:  # not cleared meanwhile by the readings or a person
            _clear(session, alarm, actor=actor, note=note)
    sensor.active = False
    sensor.retired_at, sensor.retired_by, sensor.retired_reason = utcnow(), actor.name, reason
    session.flush()
    _log(session, sensor, "retire", actor, {**_facts(sensor), "active": True}, reason=reason)
    return sensor


def reactivate(session: Session, *, code: str, actor: orders.Actor, scope: ColumnElement[bool] | None = None) -> Sensor:
    """Put a retired sensor back in service (启用): it accepts readings again. Conflict when it is in service."""
    if scope is not None and not list_sensors(session, scope=scope, code=code, limit=1):
        raise NotFound(f"sensor '{code}' not found")
    sensor = _lock_sensor(session, code)
    if sensor.active:
        raise Conflict(f"sensor '{code}' is in service, not retired", details={"field": "code"})
    log.info("sensor %s reactivated by %s (retired %s)", code, actor.name, sensor.retired_at)
    sensor.active = True
    sensor.retired_at = sensor.retired_by = sensor.retired_reason = None
    sensor.in_service_since = utcnow()  # its silence counts from now at the earliest, not from its last reading
    session.flush()
    _log(session, sensor, "reactivate", actor, {**_facts(sensor), "active": False})
    return sensor


def retired_message(sensor: Sensor) -> str:
    """Why a retired sensor's reading is refused, naming the sensor."""
    since = f" since {_local(sensor.retired_at)}" if sensor.retired_at else ""
    return f"sensor '{sensor.code}' is retired{since}; reactivate it to accept readings"


def sensor_scope(scope: Scope) -> ColumnElement[bool] | None:
    """The WHERE condition over ``Sensor`` for a data scope: a street sees the sensors on its street and those its
    units answer for, as it sees orders; None: everything."""
    if scope.everything:
        return None
    if scope.citizen_user_id is not None or not scope.units:
        return false()
    conditions = [Sensor.unit_id.in_(sorted(scope.units))]
    if scope.streets:
        conditions.append(Sensor.street_id.in_(sorted(scope.streets)))
    if scope.communities:
        conditions.append(Sensor.community_id.in_(sorted(scope.communities)))
    return or_(*conditions)


def _quiet(sensor: Any, default: int, now: datetime) -> tuple[int | None, datetime | None]:
    """How long ``sensor`` (a :class:`Sensor`, or a row of its ``silent_after_minutes``, ``last_reading_at``,
    ``created_at`` and ``in_service_since``) may stay quiet — its own minutes, else ``default``; None: never silent —
    and since when it has been silent at ``now`` (None: it is not), counting from its last reading, its registration
    or its return to service, whichever is latest. The one statement of the
    rule, for the sensors' conditions, the readings' evaluation and the sensor-silence job."""
    after = silent_after(sensor.silent_after_minutes, default)
    since = silent_since(
        last_reading_at=sensor.last_reading_at,
        registered_at=sensor.created_at,
        after_minutes=after,
        now=now,
        back_in_service_at=sensor.in_service_since,
    )
    return after, since


@dataclass(frozen=True)
class SensorCondition:
    """Where a sensor stands now: its :class:`SensorState`, since when it has been silent, how long it may stay quiet
    (minutes; None: never silent) and how many alarms of threshold rules it has open."""

    state: SensorState
    silent_since: datetime | None
    silent_after: int | None
    alarms: int


def sensor_conditions(
    session: Session, sensors: Sequence[Sensor], *, now: datetime | None = None
) -> dict[int, SensorCondition]:
    """Each sensor's condition (by id): retired, silent (by the clock: no reading for longer than it may stay quiet —
    whether or not the sensor-silence job has raised its alarm yet), alarming or normal. One query for the open
    alarms."""
    now = now or utcnow()
    default = get_monitoring_settings().sensor_silent_after_minutes
    counts = open_alarm_counts(session, [s.id for s in sensors])
    found: dict[int, SensorCondition] = {}
    for sensor in sensors:
        after, since = _quiet(sensor, default, now)
        alarms = counts.get(sensor.id, 0)
        if not sensor.active:
            state, since = SensorState.RETIRED, None
        elif since is not None:
            state = SensorState.SILENT
        else:
            state = SensorState.ALARMING if alarms else SensorState.NORMAL
        found[sensor.id] = SensorCondition(state, since, after, alarms)
    return found


def list_sensors(
    session: Session,
    *,
    kind: str | None = None,
    active: bool | None = None,
    scope: ColumnElement[bool] | None = None,
    code: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[Sensor]:
    """Sensors by code."""
    query = sensors_query(kind=kind, active=active, scope=scope, code=code).limit(limit).offset(offset)
    return list(session.scalars(query))


def sensors_in_state(
    session: Session,
    state: SensorState,
    *,
    kind: str | None = None,
    scope: ColumnElement[bool] | None = None,
    now: datetime | None = None,
) -> list[Sensor]:
    """The sensors in service (of ``kind``, in ``scope``) whose status now is ``state`` — normal, alarming or silent —
    by code. Every such sensor is read and judged (:func:`sensor_conditions`): a status is by the clock and the open
    alarms, not a column."""
    sensors = list(session.scalars(sensors_query(kind=kind, active=True, scope=scope)))
    conditions = sensor_conditions(session, sensors, now=now)
    return [s for s in sensors if conditions[s.id].state == state]


def sensors_with_status(
    session: Session,
    status: SensorStatus,
    *,
    kind: str | None = None,
    scope: ColumnElement[bool] | None = None,
    limit: int = 500,
) -> list[Sensor]:
    """The first ``limit`` sensors a list's ``status`` filter keeps (in service, one status of theirs, retired, all),
    by code: for the page and the command line (the API pages them itself)."""
    if status.state is None:
        return list_sensors(session, kind=kind, active=status.active, scope=scope, limit=limit)
    return sensors_in_state(session, status.state, kind=kind, scope=scope)[:limit]


def sensors_query(
    *,
    kind: str | None = None,
    active: bool | None = None,
    scope: ColumnElement[bool] | None = None,
    code: str | None = None,
) -> Select[Sensor]:
    """The query of :func:`list_sensors` (by code, unique), for a caller that pages it."""
    query = select(Sensor).order_by(Sensor.code)
    if code is not None:
        query = query.where(Sensor.code == code)
    if kind:
        query = query.where(Sensor.kind == kind)
    if active is not None:
        query = query.where(Sensor.active == active)
    if scope is not None:
        query = query.where(scope)
    return query


# -------------------------------------------------------------------------------------------------------- rules


def _check_category(session: Session, category: str | None) -> None:
    if category:
        from cityhub.workorders.categories import find_category

        if find_category(session, name_or_path=category) is None:
            raise ValidationFailed(f"unknown category '{category}'", details={"field": "category"})


def create_rule(session: Session, *, data: RuleCreate, actor: orders.Actor = orders.SYSTEM) -> AlarmRule:
    """Add an alarm rule for a kind of sensor or for one sensor."""
    try:
        sensor = require_sensor(session, code=data.sensor_code) if data.sensor_code else None
    except NotFound as exc:  # a field of the rule, not the resource asked for
        raise ValidationFailed(exc.message, details={"field": "sensor_code"}) from None
    if sensor is not None and data.metric not in sensor.metrics:
        raise ValidationFailed(
            f"sensor '{sensor.code}' has no metric '{data.metric}' (it has {', '.join(sensor.metrics)})",
            details={"field": "metric"},
        )
    if sensor is None and data.sensor_kind is not None:
        _check_kind_metric(session, data.sensor_kind.value, data.metric)
    if sensor is not None and data.of_capacity and sensor.capacity is None:
        raise ValidationFailed(f"sensor '{sensor.code}' has no capacity", details={"field": "of_capacity"})
    _check_category(session, data.category)
    rule = AlarmRule(
        **data.model_dump(exclude={"sensor_kind", "sensor_code"}, mode="json"),
        sensor_kind=data.sensor_kind.value if data.sensor_kind else None,
        sensor_id=sensor.id if sensor else None,
    )
    session.add(rule)
    session.flush()
    _log(session, rule, "create", actor)
    return rule


def _check_kind_metric(session: Session, kind: str, metric: str) -> None:
    """ValidationFailed naming what the sensors of ``kind`` report when none of them reports ``metric`` (a rule on a
    misspelt metric, ``depht``, would never fire); a kind without sensors yet takes any metric."""
    reported: set[str] = set()
    for metrics in session.scalars(select(Sensor.metrics).where(Sensor.kind == kind)):
        reported.update(metrics or {})
    if reported and metric not in reported:
        raise ValidationFailed(
            f"no {kind} sensor reports metric '{metric}' (they report {', '.join(sorted(reported))})",
            details={"field": "metric"},
        )


def require_rule(session: Session, *, rule_id: int) -> AlarmRule:
    rule = session.get(AlarmRule, rule_id)
    if rule is None:
        raise NotFound(f"alarm rule {rule_id} not found")
    return rule


def update_rule(session: Session, *, rule_id: int, data: RuleUpdate, actor: orders.Actor = orders.SYSTEM) -> AlarmRule:
    """Change a rule's limits, severity, order settings or active flag (its metric and target stay). Deactivating it
    clears its open alarms as a person clears them (报警规则停用 in their trail and on their orders): no reading
    would clear them any more, and they would go on escalating."""
    rule = require_rule(session, rule_id=rule_id)
    changes = data.model_dump(exclude_unset=True, mode="json")
    refuse_nulls(changes, ("name", "threshold", "duration_s", "severity", "opens_order", "urgency", "active"))
    if rule.kind == RuleKind.SILENCE:
        for name in ("threshold", "clear_threshold", "duration_s"):
            if name in changes and changes[name] != getattr(rule, name):
                raise ValidationFailed(
                    "the silence rule has no threshold of its own: a sensor is silent after its own "
                    "silent_after_minutes, else CITYHUB_SENSOR_SILENT_AFTER_MINUTES",
                    details={"field": name},
                )
    threshold = changes.get("threshold", rule.threshold)
    clear = changes.get("clear_threshold", rule.clear_threshold)
    problem = check_clear_threshold(rule.comparison, threshold, clear)
    if problem:
        raise ValidationFailed(problem, details={"field": "clear_threshold"})
    if "category" in changes:
        _check_category(session, changes["category"])
    before = _facts(rule)
    if changes.get("active") is False and rule.active:
        holding = select(Alarm.sensor_id).where(Alarm.rule_id == rule.id, Alarm.open_key.is_not(None))
        _lock_held(session, sorted(set(session.scalars(holding).all())))
        open_ids = session.scalars(
            select(Alarm.id).where(Alarm.rule_id == rule.id, Alarm.open_key.is_not(None)).order_by(Alarm.id)
        ).all()
        note = f"alarm rule deactivated: {rule.name}"
        for alarm_id in open_ids:
            alarm = _lock_alarm(session, require_alarm(session, alarm_id=alarm_id))
            if alarm.open_key is not None:  # not cleared meanwhile by the readings or a person
                _clear(session, alarm, actor=actor, note=note)
    for name, value in changes.items():
        setattr(rule, name, value)
    session.flush()
    _log(session, rule, "update", actor, before)
    return rule


def list_rules(session: Session, *, active: bool | None = None) -> list[AlarmRule]:
    return list(session.scalars(rules_query(active=active)))


def rules_query(*, active: bool | None = None) -> Select[AlarmRule]:
    """The alarm rules by id, for :func:`list_rules` and a caller that pages them."""
    query = select(AlarmRule).order_by(AlarmRule.id)
    if active is not None:
        query = query.where(AlarmRule.active == active)
    return query


def _spec(rule: AlarmRule, sensor: Sensor) -> RuleSpec | None:
    spec = RuleSpec(Comparison(rule.comparison), rule.threshold, rule.clear_threshold, rule.duration_s)
    if rule.of_capacity:
        return spec.scaled(sensor.capacity) if sensor.capacity else None
    return spec


def rules_for(rules: Sequence[AlarmRule], sensor: Sensor, metric: str) -> list[AlarmRule]:
    """The active rules on ``metric`` of ``sensor``: its own, which replace its kind's on that metric, else its
    kind's."""
    own = [r for r in rules if r.active and r.metric == metric and r.sensor_id == sensor.id]
    if own:
        return own
    return [
        r for r in rules if r.active and r.metric == metric and r.sensor_id is None and r.sensor_kind == sensor.kind
    ]


# ----------------------------------------------------------------------------------------------------- readings


@dataclass
class _Good:
    index: int
    sensor: Sensor
    metric: str
    at: datetime
    value: float
    media_url: str | None = None  # a link to what the reading is about: a camera's snapshot


@dataclass
class _Tally:
    raised: int = 0
    repeated: int = 0
    cleared: int = 0
    orders: int = 0
    reopened: int = 0
    joined: int = 0  # raised alarms that joined an open order instead of opening one
    alarms: list[Alarm] = field(default_factory=list)
    # Alarms cleared automatically by this batch, told (their order, the alarm_cleared notification) once it is
    # evaluated: one the same batch reopens was never cleared as far as anyone outside can tell.
    untold: dict[int, Alarm] = field(default_factory=dict)


def _parse_time(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        at = raw
    elif isinstance(raw, str) and raw.strip():
        try:
            at = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {raw!r}") from None
    else:
        raise ValueError("missing; give an ISO 8601 time with time zone")
    if at.tzinfo is None:
        raise ValueError(f"{raw!s} has no time zone (add +08:00 or Z)")
    if problem := time_problem(at):
        raise ValueError(f"{raw!s} is out of range: {problem}")
    return at


def _parse_value(raw: Any) -> float:
    if isinstance(raw, bool) or raw is None:
        raise ValueError("missing or not a number" if raw is None else f"not a number: {raw!r}")
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:
            raise ValueError(f"not a finite number: {raw!r}") from None
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"not a number: {raw!r}") from None
    else:
        raise ValueError(f"not a number: {raw!r}")
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def _parse_media_url(raw: Any) -> str | None:
    """A reading's optional ``media_url`` (empty: none): an http(s) link, as an order's attachment must be."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise ValueError(f"not a link: {raw!r}")
    return web_address(raw, field="media_url")


def _unknown_field(item: Mapping[Any, Any]) -> str | None:
    """The first key of ``item`` that is no field of a reading, else None."""
    return next((str(key) for key in item if key not in READING_FIELDS), None)


def check_readings(
    session: Session,
    items: Sequence[Any],
    *,
    sensor_code: str | None = None,
    now: datetime | None = None,
    known_fields_only: bool = False,
) -> tuple[list[_Good], list[RejectedReading]]:
    """Split raw readings into good ones and rejections naming index, field and problem.

    ``known_fields_only`` (the API's JSON readings) rejects a reading naming a field a reading does not have; a file's
    rows may carry other columns. A reading of one sensor's route (``sensor_code``) naming another sensor is
    rejected, not stored as the route's."""
    now = now or utcnow()
    latest_allowed = now + timedelta(seconds=get_monitoring_settings().reading_future_seconds)
    codes = [sensor_code] if sensor_code else [i.get("sensor_code") for i in items if isinstance(i, Mapping)]
    # Text PostgreSQL cannot compare (NUL) names no sensor: such a reading is rejected as unknown below.
    wanted = sorted({c for c in codes if isinstance(c, str) and c and "\x00" not in c})
    sensors: dict[str, Sensor] = {}
    # On PostgreSQL the sensors' rows are locked (in code order: no deadlock between two batches): batches for the
    # same sensors are evaluated one after the other, as SQLite's single writer does anyway.
    lock = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(wanted), CHUNK):
        query = select(Sensor).where(Sensor.code.in_(wanted[start : start + CHUNK])).order_by(Sensor.code)
        for found in session.scalars(query.with_for_update() if lock else query):
            sensors[found.code] = found
    good: list[_Good] = []
    bad: list[RejectedReading] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            bad.append(RejectedReading(index=index, field="(reading)", message="not an object"))
            continue
        if known_fields_only and (unknown := _unknown_field(item)) is not None:
            message = f"not a field of a reading (those are {', '.join(READING_FIELDS)})"
            bad.append(RejectedReading(index=index, field=unknown, message=message))
            continue
        named = item.get("sensor_code")
        if sensor_code and named not in (None, "", sensor_code):
            message = (
                f"names sensor {named!r}, not this route's '{sensor_code}' (readings of several sensors: "
                "POST /api/v1/sensors/readings)"
            )
            bad.append(RejectedReading(index=index, field="sensor_code", message=message))
            continue
        code = sensor_code or named
        if not isinstance(code, str) or not code:
            bad.append(RejectedReading(index=index, field="sensor_code", message="missing"))
            continue
        sensor = sensors.get(code)
        if sensor is None:
            bad.append(RejectedReading(index=index, field="sensor_code", message=f"unknown sensor '{code}'"))
            continue
        if not sensor.active:
            bad.append(RejectedReading(index=index, field="sensor_code", message=retired_message(sensor)))
            continue
        metric = item.get("metric")
        if metric in (None, "") and len(sensor.metrics) == 1:
            metric = next(iter(sensor.metrics))
        if not isinstance(metric, str) or metric not in sensor.metrics:
            known = ", ".join(sensor.metrics)
            if metric in (None, ""):
                message = f"missing: sensor '{code}' measures {known}; name one"
            else:
                message = f"sensor '{code}' has no metric {metric!r} (it has {known})"
            bad.append(RejectedReading(index=index, field="metric", message=message))
            continue
        try:
            at = _parse_time(item.get("measured_at"))
        except ValueError as exc:
            bad.append(RejectedReading(index=index, field="measured_at", message=str(exc)))
            continue
        if at > latest_allowed:
            bad.append(
                RejectedReading(
                    index=index,
                    field="measured_at",
                    message=f"{at.isoformat()} is in the future (server time {now:%Y-%m-%dT%H:%M:%SZ})",
                )
            )
            continue
        try:
            value = _parse_value(item.get("value"))
        except ValueError as exc:
            bad.append(RejectedReading(index=index, field="value", message=str(exc)))
            continue
        if problem := implausible(metric, value):
            bad.append(RejectedReading(index=index, field="value", message=problem))
            continue
        try:
            media_url = _parse_media_url(item.get("media_url"))
        except ValueError as exc:
            bad.append(RejectedReading(index=index, field="media_url", message=str(exc)))
            continue
        good.append(_Good(index, sensor, metric, at, value, media_url))
    return good, bad


def ingest(
    session: Session,
    *,
    items: Sequence[Any],
    sensor_code: str | None = None,
    now: datetime | None = None,
    open_orders: bool = True,
    known_fields_only: bool = False,
) -> IngestResult:
    """Store and evaluate readings (``sensor_code``: all of one sensor, the items need not name it).

    Every bad reading is reported by index and field, the good ones are kept. A reading already stored (same
    sensor, metric, time and value) is counted as a duplicate and not evaluated again; one saying another value
    for a time already read is refused. ``known_fields_only``: as :func:`check_readings`.
    """
    now = now or utcnow()
    good, bad = check_readings(session, items, sensor_code=sensor_code, now=now, known_fields_only=known_fields_only)
    fresh, duplicates, conflicts = _new_readings(session, good)
    bad = sorted([*bad, *conflicts], key=lambda r: r.index)
    if fresh:
        dialect = session.get_bind().dialect.name
        conflict_insert = upsert_insert(dialect)
        rows = [
            {"sensor_id": g.sensor.id, "metric": g.metric, "measured_at": g.at, "value": g.value, "received_at": now}
            for g in fresh
        ]
        # ON CONFLICT: another request storing the same reading at the same moment.
        statement = conflict_insert(Reading).on_conflict_do_nothing(
            index_elements=["sensor_id", "metric", "measured_at"]
        )
        for start in range(0, len(rows), 5_000):
            session.execute(statement, rows[start : start + 5_000])
    tally, late = _evaluate(session, fresh, now=now, open_orders=open_orders)
    return IngestResult(
        received=len(items),
        stored=len(fresh),
        duplicates=duplicates,
        late=late,
        rejected=bad,
        alarms_raised=tally.raised,
        alarms_repeated=tally.repeated,
        alarms_cleared=tally.cleared,
        orders_opened=tally.orders,
        alarms_reopened=tally.reopened,
        alarms_joined=tally.joined,
    )


def _new_readings(session: Session, good: list[_Good]) -> tuple[list[_Good], int, list[RejectedReading]]:
    """The readings not stored yet, each once; how many were there already (the same value, sent again); and those
    that say another value for a sensor, metric and time already read (in the batch or stored) — refused by index,
    not dropped as repeats. Only a reading not after its metric's latest can have been stored before, so only those
    are looked up."""
    first: dict[tuple[int, str, datetime], _Good] = {}
    unique: list[_Good] = []
    conflicts: list[RejectedReading] = []
    for g in good:
        key = (g.sensor.id, g.metric, g.at)
        earlier = first.get(key)
        if earlier is None:
            first[key] = g
            unique.append(g)
        elif earlier.value != g.value:
            message = (
                f"reading {earlier.index} of this batch has value {earlier.value:g} for this sensor, metric and time"
            )
            conflicts.append(RejectedReading(index=g.index, field="value", message=message))
    maybe_old = [g for g in unique if g.sensor.last_reading_at is not None and g.at <= g.sensor.last_reading_at]
    stored: dict[tuple[int, str, datetime], float] = {}
    for start in range(0, len(maybe_old), CHUNK):
        chunk = maybe_old[start : start + CHUNK]
        keys = [(g.sensor.id, g.metric, g.at) for g in chunk]
        rows = session.execute(
            select(Reading.sensor_id, Reading.metric, Reading.measured_at, Reading.value).where(
                tuple_(Reading.sensor_id, Reading.metric, Reading.measured_at).in_(keys)
            )
        )
        stored.update(((r.sensor_id, r.metric, r.measured_at), r.value) for r in rows)
    fresh: list[_Good] = []
    for g in unique:
        value = stored.get((g.sensor.id, g.metric, g.at))
        if value is None:
            fresh.append(g)
        elif value != g.value:
            message = f"value {value:g} is stored for this sensor, metric and time"
            conflicts.append(RejectedReading(index=g.index, field="value", message=message))
    return fresh, len(good) - len(fresh) - len(conflicts), conflicts


def _evaluate(session: Session, fresh: list[_Good], *, now: datetime, open_orders: bool) -> tuple[_Tally, int]:
    tally = _Tally()
    if not fresh:
        return tally, 0
    series: dict[tuple[int, str], list[tuple[datetime, float]]] = defaultdict(list)
    sensors: dict[int, Sensor] = {}
    media: dict[tuple[int, str, datetime], str] = {}
    for g in fresh:
        series[(g.sensor.id, g.metric)].append((g.at, g.value))
        sensors[g.sensor.id] = g.sensor
        if g.media_url:
            media[(g.sensor.id, g.metric, g.at)] = g.media_url
    _remember_latest(session, sensors, series)
    rules = list_rules(session, active=True)
    sensor_ids = sorted(sensors)
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        if open_orders:
            # The areas where an alarm raised here may join another sensor's order, before the orders, alarms and rule
            # states (:func:`_lock_held`): a batch holding an order its sensor's alarm is on never waits for an area
            # another holds while that one waits for the order. Judged before the evaluation, so by every sensor with
            # a reading past an order-opening rule's limit (a raise is always at such a reading): normal batches take
            # none.
            _lock_join_areas(
                session,
                [
                    (sensors[sensor_id], rule.metric)
                    for (sensor_id, metric), readings in series.items()
                    for rule in rules_for(rules, sensors[sensor_id], metric)
                    if opens_order(rule)
                    and (spec := _spec(rule, sensors[sensor_id])) is not None
                    and any(beyond(spec.comparison, value, spec.threshold) for _, value in readings)
                ],
            )
        _lock_held(session, sensor_ids)
    # Rule states are read and written as plain rows (one executemany each way): a batch touches one per sensor and
    # rule, and ORM objects cost more than the evaluation itself.
    states: dict[tuple[int, int], EvalState] = {}
    alarms: dict[tuple[int, int], Alarm] = {}
    for start in range(0, len(sensor_ids), CHUNK):
        ids = sensor_ids[start : start + CHUNK]
        state_rows = select(
            RuleState.sensor_id,
            RuleState.rule_id,
            RuleState.last_at,
            RuleState.last_value,
            RuleState.breach_since,
            RuleState.armed,
        ).where(RuleState.sensor_id.in_(ids))
        if postgresql:
            # Locked (last of all, :func:`_lock_held`) and read after the orders and alarms: an order's close
            # committed while this batch waited is read here, its moved-on time included.
            state_rows = state_rows.order_by(RuleState.sensor_id, RuleState.rule_id).with_for_update()
        rows = session.execute(state_rows)
        for r in rows:
            states[(r.sensor_id, r.rule_id)] = EvalState(
                last_at=r.last_at, last_value=r.last_value, breach_since=r.breach_since, armed=r.armed
            )
        open_alarms = select(Alarm).where(Alarm.sensor_id.in_(ids), Alarm.open_key.is_not(None))
        open_alarms = open_alarms.execution_options(populate_existing=True)
        for open_alarm in session.scalars(open_alarms):
            alarms[(open_alarm.sensor_id, open_alarm.rule_id)] = open_alarm
    late = 0
    changed: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    evaluated: list[tuple[Sensor, str, AlarmRule, RuleSpec, list[Transition]]] = []
    for (sensor_id, metric), readings in series.items():
        sensor = sensors[sensor_id]
        series_late = 0
        for rule in rules_for(rules, sensor, metric):
            spec = _spec(rule, sensor)
            if spec is None:
                continue
            key = (sensor_id, rule.id)
            known = states.get(key)
            before = replace(known or EvalState(), open=key in alarms)
            result = evaluate(spec, before, readings)
            series_late = max(series_late, result.late)
            after = result.state
            if after != before or known is None:
                values = {
                    "sensor_id": sensor_id,
                    "rule_id": rule.id,
                    "last_at": after.last_at,
                    "last_value": after.last_value,
                    "breach_since": after.breach_since,
                    "armed": after.armed,
                }
                (added if known is None else changed).append(values)
            if result.transitions:
                evaluated.append((sensor, metric, rule, spec, result.transitions))
        late += series_late
    for sensor, metric, rule, spec, transitions in evaluated:
        key = (sensor.id, rule.id)
        alarm = alarms.get(key)
        for transition in transitions:
            shot = media.get((sensor.id, metric, transition.at))
            alarm = _apply(
                session, sensor, rule, spec, alarm, transition, tally, open_orders=open_orders, now=now, media_url=shot
            )
        if alarm is not None and alarm.open_key is not None:
            alarms[key] = alarm
        else:
            alarms.pop(key, None)
    silence = {r.id for r in rules if r.kind == RuleKind.SILENCE}
    if silence:
        default = get_monitoring_settings().sensor_silent_after_minutes
        for (sensor_id, rule_id), alarm in sorted(alarms.items()):
            sensor = sensors[sensor_id]
            # The sensor reports again (late readings alone do not do).
            if rule_id in silence and _quiet(sensor, default, now)[1] is None:
                _resume(session, alarm, sensor, now)
                tally.cleared += 1
    for alarm in tally.untold.values():
        _tell_cleared(session, alarm, actor=orders.SYSTEM, note=READINGS_BACK)
    if changed:
        session.execute(update(RuleState), changed)  # by primary key (sensor_id, rule_id), executemany
    if added:
        session.execute(insert(RuleState), added)
    session.flush()
    return tally, late


def _lock_held(session: Session, sensor_ids: Sequence[int]) -> None:
    """On PostgreSQL, before a batch reads what it evaluates against: lock the orders its sensors' open alarms are on
    (by id), then those alarms (by id) — the rule states follow as they are read (:func:`_evaluate`). The order every
    writer of them takes (the life cycle's close, :func:`resolve_ended`; a person's clear or acknowledgement,
    :func:`_lock_alarm`; the escalation job), so a batch never holds an alarm while waiting for its order, and what
    it reads is either before an order's close (which then waits for the batch) or after it — never the rule states
    before and the alarms after. An alarm moved meanwhile to another order (its order merged) has that order locked in
    a further round (bounded): an alarm can move off an order only while that order is locked, so once every order of
    the open alarms is held they stay where they are. Until December 2026 a batch read the rule states before a close
    committed and wrote them after it: the moved-on time was lost and a reading measured before the close opened a
    new order. Also a retirement's and a rule's deactivation's clears, for the sensors whose alarms they clear (their
    orders all at once, by id, not one alarm's at a time). Nothing on SQLite: one writer."""
    if session.get_bind().dialect.name != "postgresql":
        return
    held: set[int] = set()
    for _ in range(5):
        found: set[int] = set()
        for start in range(0, len(sensor_ids), CHUNK):
            ids = sensor_ids[start : start + CHUNK]
            found.update(
                order_id
                for order_id in session.scalars(
                    select(Alarm.order_id).where(
                        Alarm.sensor_id.in_(ids), Alarm.open_key.is_not(None), Alarm.order_id.is_not(None)
                    )
                ).all()
                if order_id is not None
            )
        wanted = sorted(found - held)
        if not wanted:
            break
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            session.execute(select(Order.id).where(Order.id.in_(chunk)).order_by(Order.id).with_for_update(of=Order))
        held.update(wanted)
    alarm_ids = sorted(
        alarm_id
        for start in range(0, len(sensor_ids), CHUNK)
        for alarm_id in session.scalars(
            select(Alarm.id).where(Alarm.sensor_id.in_(sensor_ids[start : start + CHUNK]), Alarm.open_key.is_not(None))
        ).all()
    )
    for start in range(0, len(alarm_ids), CHUNK):
        chunk = alarm_ids[start : start + CHUNK]
        session.execute(select(Alarm.id).where(Alarm.id.in_(chunk)).order_by(Alarm.id).with_for_update(of=Alarm))


def _remember_latest(
    session: Session, sensors: Mapping[int, Sensor], series: Mapping[tuple[int, str], list[tuple[datetime, float]]]
) -> None:
    """Keep each sensor's latest reading per metric, written in one executemany; the loaded sensors are given the
    new values as their committed state (they are not dirtied: no per-object UPDATE at the next flush)."""
    news: dict[int, dict[str, Any]] = {}
    for (sensor_id, metric), readings in series.items():
        sensor = sensors[sensor_id]
        at, value = max(readings, key=lambda r: r[0])
        row = news.setdefault(
            sensor_id, {"id": sensor_id, "latest": dict(sensor.latest or {}), "last_reading_at": sensor.last_reading_at}
        )
        known = row["latest"].get(metric)
        if known is None or datetime.fromisoformat(known["at"]) < at:
            row["latest"][metric] = {"value": value, "at": at.isoformat()}
        if row["last_reading_at"] is None or row["last_reading_at"] < at:
            row["last_reading_at"] = at
    session.execute(update(Sensor), list(news.values()))
    for sensor_id, row in news.items():
        set_committed_value(sensors[sensor_id], "latest", row["latest"])
        set_committed_value(sensors[sensor_id], "last_reading_at", row["last_reading_at"])


def _worse(comparison: str, a: float, b: float) -> float:
    return max(a, b) if comparison in (">", ">=") else min(a, b)


def _event(session: Session, alarm: Alarm, action: str, *, actor: orders.Actor, at: datetime, **extra: Any) -> None:
    note = extra.pop("note", None)
    session.add(
        AlarmEvent(
            alarm_id=alarm.id,
            action=action,
            actor=actor.name,
            actor_user_id=actor.user_id,
            at=at,
            note=note,
            payload=extra or None,
        )
    )


def _apply(
    session: Session,
    sensor: Sensor,
    rule: AlarmRule,
    spec: RuleSpec,
    alarm: Alarm | None,
    transition: Transition,
    tally: _Tally,
    *,
    open_orders: bool,
    now: datetime,
    media_url: str | None = None,
) -> Alarm | None:
    """Write one transition; return the rule's open alarm afterwards (None once cleared). ``now``: when the readings
    arrived (an alarm's ``recorded_at``; its ``raised_at`` is the breaching reading's own time). ``media_url``: the
    raising reading's link (a camera's snapshot), kept by the alarm and carried by its order."""
    value, at = transition.value, transition.at
    if transition.change == Change.RAISE:
        wanted = open_orders and opens_order(rule)
        cleared = _recently_cleared(session, sensor, rule, at=at, wanted=wanted)
        if cleared is not None:
            _reopen(session, cleared, sensor, rule, transition, tally)
            return cleared
        alarm = Alarm(
            sensor_id=sensor.id,
            rule_id=rule.id,
            open_key=f"{sensor.id}:{rule.id}",
            state=AlarmState.ACTIVE.value,
            severity=rule.severity,
            metric=rule.metric,
            comparison=rule.comparison,
            threshold=spec.threshold,
            raised_at=at,
            recorded_at=now,
            first_value=value,
            last_value=value,
            peak_value=value,
            last_at=at,
            count=1,
            media_url=media_url,
        )
        session.add(alarm)
        session.flush()
        _event(session, alarm, "raised", actor=orders.SYSTEM, at=at, value=value, since=_iso(transition.since))
        tally.raised += 1
        # The same problem has its order open — the sensor's earlier alarm of this metric's, or a sensor's of its kind
        # standing near whose alarm of the metric is recent: the alarm joins it; else it opens its own.
        joined = _join_open_order(session, alarm=alarm, sensor=sensor) if wanted else None
        if joined is not None:
            tally.joined += 1
        elif wanted:
            tally.orders += open_order(session, alarm=alarm, sensor=sensor, rule=rule) is not None
        _notify_raised(session, alarm, sensor, rule, joined=joined)
        return alarm
    if alarm is None:  # a repeat or clear always follows a raise or an open alarm
        return None
    if transition.change == Change.REPEAT:
        alarm.count += 1
        alarm.last_value, alarm.last_at = value, at
        alarm.peak_value = _worse(alarm.comparison, alarm.peak_value, value)
        tally.repeated += 1
        return alarm
    _close(session, alarm, actor=orders.SYSTEM, at=at, value=value, note=READINGS_BACK, tell=False)
    tally.untold[alarm.id] = alarm
    tally.cleared += 1
    return None


READINGS_BACK = "readings back within the limit"


def _recently_cleared(session: Session, sensor: Sensor, rule: AlarmRule, *, at: datetime, wanted: bool) -> Alarm | None:
    """The alarm of ``sensor`` and ``rule`` that a crossing at ``at`` reopens instead of raising a new one: the latest,
    if the readings cleared it (not a person, a retirement or the rule's deactivation: those are final) at most
    ``CITYHUB_SENSOR_REARM_MINUTES`` before, the sensor not put back in service since, and its order — when it has
    one, or should — still being handled (an answered order's problem back is a new alarm and a new order)."""
    from cityhub.workorders.lifecycle import OPEN_STATES

    minutes = get_monitoring_settings().sensor_rearm_minutes
    if minutes <= 0:
        return None
    alarm = session.scalars(
        select(Alarm).where(Alarm.sensor_id == sensor.id, Alarm.rule_id == rule.id).order_by(Alarm.id.desc()).limit(1)
    ).first()
    if alarm is None or alarm.open_key is not None or alarm.cleared_at is None:
        return None
    automatic = alarm.cleared_by == orders.SYSTEM.name and alarm.clear_value is not None
    if not automatic or at - alarm.cleared_at > timedelta(minutes=minutes):
        return None
    if sensor.in_service_since is not None and sensor.in_service_since > alarm.cleared_at:
        return None
    if alarm.order_id is None:
        return None if wanted else alarm
    order = session.get(Order, alarm.order_id)
    return alarm if order is not None and order.state in OPEN_STATES else None


def _order_told_of_reopening(session: Session, alarm_id: int) -> bool:
    """Whether the alarm's order has heard that it was reopened (:func:`_reopen`): then its further automatic clears
    and reopenings are counted on the alarm, not written on the order."""
    rows = session.scalars(
        select(AlarmEvent.payload).where(AlarmEvent.alarm_id == alarm_id, AlarmEvent.action == "reopened")
    )
    return any((payload or {}).get("told") for payload in rows)


def reopened_count(session: Session, alarm_id: int) -> int:
    """How many times the alarm has been reopened (its ``reopened`` events)."""
    return session.scalar(_reopened_count(alarm_id)) or 0


def _reopened_count(alarm_id: Any) -> Select[Any]:
    return select(func.count()).where(AlarmEvent.alarm_id == alarm_id, AlarmEvent.action == "reopened")


def _reopen(
    session: Session, alarm: Alarm, sensor: Sensor, rule: AlarmRule, transition: Transition, tally: _Tally
) -> None:
    """Open ``alarm`` again at ``transition``'s crossing: active again (acknowledged if a person had acknowledged
    it), counted, its last and worst values moved on, a ``reopened`` event. Cleared earlier in the same batch, nothing
    was told of the clear and nothing is told of this; else the ``alarm`` topic hears ``alarm_reopened`` (the same
    alarm id, ``reopened`` its times) and, the first time it hears of one, its order's trail a comment saying further
    crossings are counted on the alarm — a value flapping around its limit writes two lines there (the first clear,
    the first reopening), not two per flap."""
    value, at = transition.value, transition.at
    cleared_at, times = alarm.cleared_at, reopened_count(session, alarm.id) + 1
    alarm.state = (AlarmState.ACKNOWLEDGED if alarm.acknowledged_at else AlarmState.ACTIVE).value
    alarm.open_key = f"{sensor.id}:{rule.id}"
    alarm.cleared_at = alarm.cleared_by = alarm.clear_value = None
    # A new episode: escalated anew when nobody acknowledges it in the rule's time from now (its earlier escalation
    # stays in its trail); until December 2026 an alarm escalated once was never escalated again.
    alarm.escalated_at = None
    alarm.count += 1
    alarm.last_value, alarm.last_at = value, at
    alarm.peak_value = _worse(alarm.comparison, alarm.peak_value, value)
    session.flush()
    quiet = tally.untold.pop(alarm.id, None) is not None
    told = not quiet and not _order_told_of_reopening(session, alarm.id)
    _event(
        session,
        alarm,
        "reopened",
        actor=orders.SYSTEM,
        at=at,
        value=value,
        since=_iso(transition.since),
        times=times,
        told=told,
    )
    tally.reopened += 1
    if quiet:
        return
    if told:
        shown = figure(value, sensor.metrics.get(alarm.metric), confidence=is_confidence(sensor.kind, alarm.metric))
        text = (
            f"alarm #{alarm.id} crossed the limit again at {_local(at)}: {alarm.metric} {shown}, "
            f"{_minutes_after(cleared_at, at)} min after it cleared; reopened, no new alarm; "
            "further crossings are counted on the alarm"
        )
        _tell_order(session, alarm, actor=orders.SYSTEM, text=text)
    payload = _alarm_payload(alarm, sensor, rule, "alarm_reopened") | {
        "reopened": times,
        "reopened_at": at.isoformat(),
        "last_value": value,
        "count": alarm.count,
    }
    _notify(session, alarm, sensor, payload)


def _minutes_after(start: datetime | None, end: datetime) -> int:
    return 0 if start is None else max(0, int((end - start).total_seconds() // 60))


def opens_order(rule: AlarmRule) -> bool:
    """Whether an alarm raised by ``rule`` opens an order: the rule says so and its severity is at least
    ``CITYHUB_ALARM_ORDER_MIN_SEVERITY``."""
    floor = Severity(get_monitoring_settings().alarm_order_min_severity)
    return rule.opens_order and Severity(rule.severity).rank >= floor.rank


def _alarm_payload(alarm: Alarm, sensor: Sensor, rule: AlarmRule, action: str) -> dict[str, Any]:
    return {
        "action": action,
        "alarm_id": alarm.id,
        "sensor": {"code": sensor.code, "name": sensor.name, "kind": sensor.kind, "address": sensor.address},
        "rule": {"id": rule.id, "name": rule.name},
        "kind": rule.kind,  # threshold, or silence (the sensor stopped reporting: value and threshold in minutes)
        "severity": alarm.severity,
        "metric": alarm.metric,
        "value": alarm.first_value,
        "comparison": alarm.comparison,
        "threshold": alarm.threshold,
        "unit": sensor.metrics.get(alarm.metric, ""),
        "at": alarm.raised_at.isoformat(),
    }


def _notify_raised(session: Session, alarm: Alarm, sensor: Sensor, rule: AlarmRule, *, joined: Joined | None) -> None:
    """The ``alarm`` notification through the outbox, in this transaction: subscriptions of the sensor's responsible
    unit, street or community, or of every unit (the order it opened is notified as any order too: dispatch).
    ``joined``: the open order the alarm joined instead of opening one (``joined`` in the body; null otherwise)."""
    payload = _alarm_payload(alarm, sensor, rule, "alarm_raised")
    _notify(session, alarm, sensor, payload | {"joined": joined.payload() if joined is not None else None})


def _notify(session: Session, alarm: Alarm, sensor: Sensor, payload: dict[str, Any], *, cleared: bool = False) -> None:
    """Enqueue ``payload`` about ``alarm`` under the topic ``alarm`` (or ``alarm_cleared``) for the subscriptions of
    every unit or of the sensor's responsible unit, street or community."""
    from cityhub.notify import notices
    from cityhub.notify.models import Topic
    from cityhub.notify.service import on_alarm_raised

    if not cleared:  # the responsible people's 消息提醒 of an alarm raised or escalated (a reopening tells no one)
        notices.on_alarm(session, alarm=alarm, sensor=sensor, action=str(payload.get("action")))
    on_alarm_raised(
        session,
        order_id=alarm.order_id,
        units=(sensor.unit_id, sensor.street_id, sensor.community_id),
        payload=payload,
        topic=Topic.ALARM_CLEARED if cleared else Topic.ALARM,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _close(
    session: Session,
    alarm: Alarm,
    *,
    actor: orders.Actor,
    at: datetime,
    value: float | None,
    note: str | None,
    tell: bool = True,
) -> None:
    """Clear ``alarm``, in its trail; ``tell``: and on its order and to the ``alarm_cleared`` subscriptions now
    (else the caller does, :func:`_tell_cleared`)."""
    alarm.state = AlarmState.CLEARED.value
    alarm.open_key = None
    alarm.cleared_at, alarm.cleared_by, alarm.clear_value = at, actor.name, value
    # Before any new alarm of the same sensor and rule is inserted: the open key is unique.
    session.flush()
    _event(session, alarm, "cleared", actor=actor, at=at, note=note, value=value)
    if tell:
        _tell_cleared(session, alarm, actor=actor, note=note)


def _tell_cleared(session: Session, alarm: Alarm, *, actor: orders.Actor, note: str | None) -> None:
    """A clear on the alarm's order (an automatic one with the reading that recovered and its measurement unit; a
    person's, a tool's or a retirement's with its note) — but not an automatic clear of an alarm reopened before:
    its order heard that further crossings are counted on the alarm — and to the ``alarm_cleared`` subscriptions."""
    at, value = alarm.cleared_at or utcnow(), alarm.clear_value
    if value is not None:
        sensor = session.get(Sensor, alarm.sensor_id)
        unit = sensor.metrics.get(alarm.metric, "") if sensor is not None else ""
        shown = figure(value, unit, confidence=sensor is not None and is_confidence(sensor.kind, alarm.metric))
        text = f"alarm #{alarm.id} cleared at {_local(at)}: readings back within the limit, now {shown}"
        if not _order_told_of_reopening(session, alarm.id):
            _tell_order(session, alarm, actor=actor, text=text)
    else:
        text = f"alarm #{alarm.id} cleared by {actor.name} at {_local(at)}"
        _tell_order(session, alarm, actor=actor, text=text, note=note)
    _notify_cleared(session, alarm, note=note)


def _notify_cleared(session: Session, alarm: Alarm, *, note: str | None) -> None:
    """The ``alarm_cleared`` notification through the outbox, in this transaction, to the subscriptions of that topic
    of every unit or of the sensor's responsible unit, street or community: the alarm's keys as when it was raised,
    and when, by whom (``system`` when the readings recovered) and at which reading it cleared."""
    sensor, rule = session.get(Sensor, alarm.sensor_id), session.get(AlarmRule, alarm.rule_id)
    assert sensor is not None and rule is not None
    payload = _alarm_payload(alarm, sensor, rule, "alarm_cleared") | {
        "cleared_at": _iso(alarm.cleared_at),
        "cleared_by": alarm.cleared_by,
        "clear_value": alarm.clear_value,
        "last_value": alarm.last_value,
        "peak_value": alarm.peak_value,
        "count": alarm.count,
        "note": note,
        "reopened": reopened_count(session, alarm.id),
    }
    _notify(session, alarm, sensor, payload, cleared=True)


def order_closed_note(number: str) -> str:
    """Why an alarm was cleared when its order was closed (a fixed form, as :func:`_tell_order`'s)."""
    return f"order {number} closed while the alarm was open"


def order_cancelled_note(number: str, reason: str | None) -> str:
    """Why an alarm was cleared when its order was cancelled (作废: a false detection), with the canceller's reason
    (a fixed form, as :func:`_tell_order`'s, the reason after ``note: ``)."""
    text = f"order {number} cancelled while the alarm was open"
    return f"{text}; note: {reason}" if reason else text


def resolve_ended(
    session: Session, *, order_id: int | None = None, actor: orders.Actor = orders.SYSTEM, now: datetime | None = None
) -> int:
    """Answer for the open alarms of orders no longer handled as a problem of their own — of ``order_id`` (called by
    the life cycle as it closes, cancels or merges it, :func:`cityhub.workorders.service.act`, ``actor`` who did) or
    of every such order (the escalation job, for alarms left open before December 2026 or skipped, see below):

    - **closed (办结)**: cleared as the system — the unit has answered for the problem, so a camera that still sees it
      (or sees it again) raises a new alarm at its next crossing and that alarm opens a new order, instead of the old
      alarm counting on, unseen, on a closed order and being escalated. Not disarming.
    - **cancelled (作废)**: a false detection — cleared as a person's clear by whoever cancelled it, the cancel's
      reason in each alarm's ``cleared`` event, and *disarming* as a person's clear does
      (:func:`rules.cleared_by_person`): a camera still reading the same false scene opens no new order until its
      readings have recovered once.
    - **merged (合并)**: the master order holds the problem now — the alarms move to it (``alarms.order_id``, an
      ``order_moved`` event in each alarm's trail), count under it (its joins, its escalation, its close clear them)
      and stay open; the trails of both orders say so.

    A cleared alarm's rule state is moved on to the order's end (``last_at``): a reading measured before the close
    or cancel that arrives after it is stored and counted late, evaluated no further (:func:`rules.evaluate`), so it
    does not open a new order straight away. Each cleared alarm's ``cleared`` event and the ``alarm_cleared``
    notification name the order; the order's trail gets one comment naming its alarms.

    A chain of merges (A into B, B into C) is followed to its end in one go (:func:`_chain_end`); an order ended
    without ``closed_at`` (behind the life cycle's back) is judged by its ending event (:func:`_ended_at`).

    Locks (PostgreSQL), always in one order — the order's row, then its alarms by id, then their rule states, as a
    batch of readings (:func:`_lock_held`) and a person's clear (:func:`_lock_alarm`) take them — and, but for the
    order the life cycle already holds, with ``SKIP LOCKED``: an order, alarm or rule state another transaction holds
    is left to the escalation job's next run, so the job never waits. A batch of readings on the order's alarms
    waits for the life cycle's order (or this for the batch's): what the batch reads is from before the end or after
    it, never between. How many alarms were cleared or moved."""
    from cityhub.workorders.lifecycle import CLOSED_STATES, State

    now = now or utcnow()
    postgresql = session.get_bind().dialect.name == "postgresql"
    ended = [s.value for s in (*CLOSED_STATES, State.CANCELLED, State.MERGED)]
    holding = select(Alarm.id).where(Alarm.order_id == Order.id, Alarm.open_key.is_not(None)).exists()
    query = (
        select(Order)
        .where(Order.state.in_(ended), holding)
        .order_by(Order.id)
        .execution_options(populate_existing=True)
    )
    if order_id is not None:
        query = query.where(Order.id == order_id)
    if postgresql:
        # The life cycle's own order is locked by this transaction already: SKIP LOCKED does not skip it.
        query = query.with_for_update(of=Order, skip_locked=True)
    done = 0
    for order in session.scalars(query).all():
        alarms = select(Alarm).where(Alarm.order_id == order.id, Alarm.open_key.is_not(None)).order_by(Alarm.id)
        alarms = alarms.execution_options(populate_existing=True)
        if postgresql:
            alarms = alarms.with_for_update(of=Alarm, skip_locked=True)
        found = list(session.scalars(alarms).all())
        if not found:
            continue
        if order.state == State.MERGED:
            done += _move_to_master(session, order, found, actor=actor, now=now, job=order_id is None)
        else:
            _clear_ended(session, order, found, actor=actor, now=now)
            done += len(found)
    return done


def _words(ids: Sequence[int]) -> tuple[str, str]:
    """``alarm #3`` or ``alarms #3, #4``, and ``it was`` or ``they were``: the comments' forms."""
    many = len(ids) > 1
    return f"{'alarms' if many else 'alarm'} {', '.join(f'#{i}' for i in ids)}", "they were" if many else "it was"


def _clear_ended(session: Session, order: Order, found: list[Alarm], *, actor: orders.Actor, now: datetime) -> None:
    """Clear the open alarms of a closed or cancelled ``order`` (:func:`resolve_ended`)."""
    from cityhub.workorders.lifecycle import Action, State
    from cityhub.workorders.models import OrderEvent

    cancelled = order.state == State.CANCELLED
    if cancelled:
        reason = session.scalars(
            select(OrderEvent.reason)
            .where(OrderEvent.order_id == order.id, OrderEvent.action == Action.CANCEL.value)
            .order_by(OrderEvent.id.desc())
            .limit(1)
        ).first()
        note, by = order_cancelled_note(order.number, reason), actor
    else:
        note, by = order_closed_note(order.number), orders.SYSTEM
    for alarm in found:
        _close(session, alarm, actor=by, at=now, value=None, note=note, tell=False)
        _notify_cleared(session, alarm, note=note)
    _settle_states(session, found, until=_ended_at(session, order, now), disarm=cancelled)
    named, were = _words([a.id for a in found])
    if cancelled:
        text = (
            f"{named} cleared at {_local(now)}: the order was cancelled while {were} open; "
            "a crossing once the readings are back within the limit opens a new order"
        )
    else:
        text = (
            f"{named} cleared at {_local(now)}: the order was closed while {were} open; "
            "a crossing from now on opens a new order"
        )
    orders.act(session, order_id=order.id, action="comment", actor=orders.SYSTEM, params={"text": text}, now=now)


def _ended_at(session: Session, order: Order, now: datetime) -> datetime:
    """When ``order`` ended, as the late readings are judged by it: its ``closed_at``; for an order ended behind the
    life cycle's back without one, the time of its latest event entering the state it is in; with none either, ``now``
    (when its alarms are cleared: the moment the product answers for it). Until December 2026 such an order's alarms
    were cleared with no late-reading protection at all."""
    from cityhub.workorders.models import OrderEvent

    if order.closed_at is not None:
        return order.closed_at
    entered = session.scalar(
        select(func.max(OrderEvent.at)).where(OrderEvent.order_id == order.id, OrderEvent.to_state == order.state.value)
    )
    return entered or now


def _settle_states(session: Session, alarms: Sequence[Alarm], *, until: datetime | None, disarm: bool) -> None:
    """The rule states of alarms cleared because their order ended at ``until`` (:func:`_ended_at`): moved on to it,
    never back (a reading measured before is late: stored, evaluated no further) and, ``disarm``, disarmed as by a
    person's clear. On PostgreSQL a state another transaction holds is skipped (``SKIP LOCKED``, see
    :func:`resolve_ended`) — a guard only: a batch of readings locks the orders of its alarms before their states
    (:func:`_lock_held`), so it holds none of an order being ended here."""
    keys = sorted({(a.sensor_id, a.rule_id) for a in alarms})
    query = (
        select(RuleState)
        .where(tuple_(RuleState.sensor_id, RuleState.rule_id).in_(keys))
        .order_by(RuleState.sensor_id, RuleState.rule_id)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for row in session.scalars(query).all():
        if until is not None and (row.last_at is None or row.last_at < until):
            row.last_at = until
        if disarm:
            _disarm(session, row)
    session.flush()


def _disarm(session: Session, row: RuleState) -> None:
    """A rule state as a person's clear of its open alarm leaves it (:func:`rules.cleared_by_person`): the wait for
    the duration restarted, disarmed while the last reading still breaches."""
    rule, sensor = session.get(AlarmRule, row.rule_id), session.get(Sensor, row.sensor_id)
    spec = _spec(rule, sensor) if rule is not None and sensor is not None else None
    if spec is None:
        return
    known = EvalState(
        open=True, last_at=row.last_at, last_value=row.last_value, breach_since=row.breach_since, armed=row.armed
    )
    after = cleared_by_person(spec, known)
    row.breach_since, row.armed = after.breach_since, after.armed


def _move_to_master(
    session: Session, order: Order, found: list[Alarm], *, actor: orders.Actor, now: datetime, job: bool
) -> int:
    """Move the open alarms of a merged ``order`` to its master (:func:`resolve_ended`): each alarm's ``order_id``, an
    ``order_moved`` event, a comment on the merged order and a note beside the master (its version kept, as the merge's
    own note: a handler acting on it with the version they read is not refused). ``job``: the escalation job, which
    locks the master too with ``SKIP LOCKED`` (the life cycle's merge writes beside the master already)."""
    from cityhub.workorders.lifecycle import TERMINAL_STATES
    from cityhub.workorders.service import note_beside

    end = _chain_end(session, order)
    if end is None:
        return 0
    master_query = select(Order).where(Order.id == end)
    if job and session.get_bind().dialect.name == "postgresql":
        master_query = master_query.with_for_update(of=Order, skip_locked=True)
    master = session.scalars(master_query).first()
    if master is None:
        return 0
    for alarm in found:
        alarm.order_id = master.id
        moved = {"from_order_id": order.id, "from_number": order.number, "order_id": master.id, "number": master.number}
        _event(session, alarm, "order_moved", actor=actor, at=now, **moved)
    session.flush()
    count = session.scalar(select(func.count()).select_from(Alarm).where(Alarm.order_id == master.id)) or 0
    named, were = _words([a.id for a in found])
    text = f"{named} moved to order {master.number} at {_local(now)}: this order was merged into it while {were} open"
    orders.act(session, order_id=order.id, action="comment", actor=orders.SYSTEM, params={"text": text}, now=now)
    beside = (
        f"{named} moved here at {_local(now)} from order {order.number}, merged into this order; "
        f"alarms on this order: {count}"
    )
    note_beside(
        session,
        order=master,
        action="comment",
        actor=orders.SYSTEM,
        at=now,
        payload={"text": beside},
        from_state=master.state.value,
    )
    if master.state in TERMINAL_STATES:
        # The chain's end has ended itself (closed or cancelled behind the life cycle's back, or while a batch held
        # these alarms): they are answered for there at once, not at the next run.
        _clear_ended(session, master, found, actor=actor, now=now)
    return len(found)


MERGE_CHAIN_MAX = 20


def _chain_end(session: Session, order: Order) -> int | None:
    """The order a merged ``order``'s alarms belong on: its master, or — that master merged in turn (A into B, B into
    C) — the end of the chain, followed in one go (at most :data:`MERGE_CHAIN_MAX` steps; None on a cycle or a chain
    longer than that, logged: left where they are). Until December 2026 the escalation job moved them one step per
    run."""
    from cityhub.workorders.lifecycle import State

    seen, current = {order.id}, order.master_order_id
    for _ in range(MERGE_CHAIN_MAX):
        if current is None or current in seen:
            break
        seen.add(current)
        row = session.execute(select(Order.state, Order.master_order_id).where(Order.id == current)).first()
        if row is None:
            return None
        if row.state != State.MERGED:
            return current
        if row.master_order_id is None:  # merged into nothing (behind the life cycle's back): nowhere to go
            return None
        current = row.master_order_id
    if current is not None:
        log.warning(
            "order %s: its merge chain loops or is longer than %s orders; alarms left", order.id, MERGE_CHAIN_MAX
        )
    return None


def _tell_order(session: Session, alarm: Alarm, *, actor: orders.Actor, text: str, note: str | None = None) -> None:
    """What happened to ``alarm`` on its order's trail, as a comment by whoever did it (the units handling the order
    read it there): acknowledged, cleared, raised again while the order is open.

    Like every explanation the product writes (``web.machine_text``), ``text`` and the notes the system adds are in
    English, in fixed forms separated by ``; ``, which the order's page shows in the reader's language (an older
    comment, written in Chinese, as it was written); a person's ``note`` is theirs, after ``note: ``."""
    if alarm.order_id is None:
        return
    if note:
        text += f"; note: {note}"
    orders.act(session, order_id=alarm.order_id, action="comment", actor=actor, params={"text": text})


# ------------------------------------------------------------------------------------------------------- orders


def _local(at: datetime) -> str:
    return at.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: int) -> str:
    if seconds <= 0:
        return ""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    if seconds % 60 == 0:
        return f"{seconds // 60} 分钟"
    return f"{seconds} 秒"


def alarm_external_id(alarm: Alarm, sensor: Sensor) -> str:
    """The order's external id on the sensor channel: the same alarm always names the same order."""
    return f"alarm:{sensor.code}:r{alarm.rule_id}:{alarm.raised_at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"[:128]


def order_text(alarm: Alarm, sensor: Sensor, rule: AlarmRule) -> tuple[str, str]:
    """The order's title and content, in Chinese, naming sensor, place, value and limit (for a camera's detection:
    what was seen, and how sure its analytics were)."""
    if rule.kind == RuleKind.SILENCE:
        return _silence_text(alarm, sensor, rule)
    if sensor.kind == SensorKind.VIDEO_AI:
        return _detection_text(alarm, sensor, rule)
    kind = KIND_LABELS.get(sensor.kind, "监测")
    unit = sensor.metrics.get(alarm.metric, "")
    word = COMPARISON_WORDS.get(alarm.comparison, alarm.comparison)
    value, limit = f"{alarm.last_value:g}{unit}", f"{alarm.threshold:g}{unit}"
    measure = metric_name(alarm.metric)
    title = f"【{kind}报警】{sensor.name} {measure} {value}，{word}限值 {limit}"
    where = f"，位于{sensor.address}" if sensor.address else ""
    held = _duration(rule.duration_s)
    lines = [
        f"监测点“{sensor.name}”（编号 {sensor.code}{where}）于 {_local(alarm.raised_at)} "
        f"监测到{measure}为 {value}，{word}报警限值 {limit}" + (f"（持续 {held}以上）" if held else "") + "。",
        f"报警规则：{rule.name}；级别：{SEVERITY_LABELS.get(alarm.severity, alarm.severity)}。",
        "请责任单位尽快到场核查处置，并在处置后答复。",
    ]
    return title[:300], "\n".join(lines)


def _silence_text(alarm: Alarm, sensor: Sensor, rule: AlarmRule) -> tuple[str, str]:
    """A silent sensor's order (when the silence rule opens orders): the device to be checked, not a problem on the
    street."""
    kind = KIND_LABELS.get(sensor.kind, "监测")
    where = f"，位于{sensor.address}" if sensor.address else ""
    last = f"最后一次数据为 {_local(sensor.last_reading_at)}" if sensor.last_reading_at else "登记后从未上报数据"
    lines = [
        f"{kind}监测点“{sensor.name}”（编号 {sensor.code}{where}）已超过 {alarm.threshold:g} 分钟未上报数据，"
        f"{last}。其所在位置的状况目前无法监测。",
        f"报警规则：{rule.name}；级别：{SEVERITY_LABELS.get(alarm.severity, alarm.severity)}。",
        "请责任单位联系设备运维核查设备供电、通信和运行情况，恢复上报后报警自动解除。",
    ]
    return f"【监测点离线】{sensor.name} 超过 {alarm.threshold:g} 分钟无数据"[:300], "\n".join(lines)


def _detection_text(alarm: Alarm, sensor: Sensor, rule: AlarmRule) -> tuple[str, str]:
    seen = DETECTIONS.get(alarm.metric, alarm.metric)
    # The peak (as the 监测预警 page's 峰值 says it), which when the order is opened is the raising frame's.
    sure = figure(alarm.peak_value, confidence=True) if 0 <= alarm.peak_value <= 1 else "—"
    where = f"，位于{sensor.address}" if sensor.address else ""
    lines = [
        f"摄像头“{sensor.name}”（编号 {sensor.code}{where}）的视频智能分析于 {_local(alarm.raised_at)} 识别到"
        f"“{seen}”（置信度 {sure}）。",
        f"识别规则：{rule.name}；级别：{SEVERITY_LABELS.get(alarm.severity, alarm.severity)}。",
        "请责任单位到场核实处置（可调阅该摄像头录像），并在处置后答复。",
    ]
    return f"【视频AI识别】{sensor.name}：{seen}"[:300], "\n".join(lines)


def _snapshot(url: str) -> dict[str, Any]:
    """The attachment of an alarm's order that links to its reading's picture or clip, named after the link's
    last path segment."""
    name = link_name(url, "snapshot")
    return {"filename": name, "url": url, "content_type": mimetypes.guess_type(name)[0]}


def open_order(session: Session, *, alarm: Alarm, sensor: Sensor, rule: AlarmRule) -> Order | None:
    """Open (or find the already opened) order of ``alarm`` through intake, on the sensor channel, placed where the
    sensor is; an order intake left undispatched goes to the sensor's responsible unit. Stores its id on the alarm."""
    from cityhub.intake.service import submit
    from cityhub.org.service import unit_directory
    from cityhub.workorders.categories import find_category
    from cityhub.workorders.lifecycle import Action, State
    from cityhub.workorders.models import AppealType, Channel

    directory = unit_directory(session)
    community = directory.get(sensor.community_id) if sensor.community_id else None
    street = directory.get(sensor.street_id) if sensor.street_id else None
    category = rule.category if rule.category and find_category(session, name_or_path=rule.category) else None
    title, content = order_text(alarm, sensor, rule)
    data = {
        # A camera's detection comes in on the video-AI channel (视频AI), a measurement on the sensor channel.
        "channel": (Channel.VIDEO_AI if sensor.kind == SensorKind.VIDEO_AI else Channel.SENSOR).value,
        "appeal_type": AppealType.REPORT.value,
        "external_id": alarm_external_id(alarm, sensor),
        "title": title,
        "content": content,
        "address": sensor.address,
        "lat": sensor.lat,
        "lng": sensor.lng,
        "urgency": rule.urgency,
        "category": category,
        "community_code": community.code if community else None,
        "street_code": street.code if street and not community else None,
        "created_at": min(alarm.raised_at, utcnow()),
        "attachments": [_snapshot(alarm.media_url)] if alarm.media_url else [],
        "attributes": {
            "source": "monitoring",
            "alarm_id": alarm.id,
            "sensor_code": sensor.code,
            "sensor_kind": sensor.kind,
            "rule_id": rule.id,
            "metric": alarm.metric,
            "value": alarm.last_value,
            "threshold": alarm.threshold,
            "comparison": alarm.comparison,
            "severity": alarm.severity,
            # Since December 2026: the reading's measurement unit (none for a detection's confidence) and time.
            **({"measure_unit": measure} if (measure := sensor.metrics.get(alarm.metric)) else {}),
            "measured_at": alarm.last_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
    }
    result = submit(session, data=data, actor=orders.SYSTEM, similar=False)
    order = result.order
    alarm.order_id = order.id
    _event(session, alarm, "order_opened", actor=orders.SYSTEM, at=utcnow(), order_id=order.id, number=order.number)
    if result.created and order.state == State.RECEIVED and sensor.unit_id is not None:
        unit = directory.get(sensor.unit_id)
        if unit is not None and unit.active:
            orders.act(
                session,
                order_id=order.id,
                action=Action.DISPATCH,
                actor=orders.SYSTEM,
                params={"unit_id": unit.id, "reason": f"monitoring: responsible unit of sensor {sensor.code}"},
            )
    return order


@dataclass(frozen=True)
class Joined:
    """The open order a new alarm joined instead of opening one (:func:`_join_open_order`): the order, how many
    alarms it holds now, and — when it was another sensor's alarm's — that sensor's code and how far it stands."""

    order: Order
    alarms: int
    near_sensor_code: str | None = None
    distance_m: int | None = None
    # The joining sensor's community and the order's, by code, when they differ (two cameras either side of a
    # community boundary): the order stays with its unit, and says so.
    across_communities: dict[str, str] | None = None

    def payload(self) -> dict[str, Any]:
        """As the ``order_joined`` event and the ``alarm`` webhook's ``joined`` say it."""
        return {
            "order_id": self.order.id,
            "number": self.order.number,
            "alarms": self.alarms,
            "near_sensor_code": self.near_sensor_code,
            "distance_m": self.distance_m,
            "across_communities": self.across_communities,
        }


def _join_box(lat: float, within: float) -> tuple[float, float]:
    """Half the sides, in degrees of latitude and longitude, of the box within ``within`` metres of a point at
    ``lat``: where :func:`_order_to_join` looks for sensors near."""
    return within / 111_320, within / (111_320 * max(math.cos(math.radians(lat)), 0.01))


def _lock_join_areas(session: Session, raising: Sequence[tuple[Sensor, str]]) -> None:
    """On PostgreSQL, before alarms are raised that may join another sensor's order (``raising``: each sensor and
    metric), take a transaction-level advisory lock on every cell of a grid of ``CITYHUB_ALARM_JOIN_WITHIN_M`` that
    the sensor's join box touches, keyed by the sensor's kind and the metric — all at once, in key order, so two
    transactions never wait for each other's. Two sensors within that distance share a key (the one's cell lies in the
    other's box), so two batches raising near each other decide one after the other and the second sees the first's
    order: without it each locked only its own sensor's row and both opened an order. A sensor without a position
    joins its own orders only, which its row lock orders already; SQLite has one writer."""
    import hashlib

    within = get_monitoring_settings().alarm_join_within_m
    if within <= 0 or session.get_bind().dialect.name != "postgresql":
        return
    cell = within / 111_320  # degrees, on both axes
    keys: set[int] = set()
    for sensor, metric in raising:
        if sensor.lat is None or sensor.lng is None or metric == SILENCE_METRIC:
            continue
        dlat, dlng = _join_box(sensor.lat, within)
        rows = range(math.floor((sensor.lat - dlat) / cell), math.floor((sensor.lat + dlat) / cell) + 1)
        columns = range(math.floor((sensor.lng - dlng) / cell), math.floor((sensor.lng + dlng) / cell) + 1)
        for row in rows:
            for column in columns:
                name = f"cityhub:alarm-join:{sensor.kind}:{metric}:{row}:{column}".encode()
                keys.add(int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True))
    for key in sorted(keys):
        session.execute(select(func.pg_advisory_xact_lock(key)))


def _order_to_join(session: Session, *, alarm: Alarm, sensor: Sensor) -> tuple[Order, Sensor | None, float] | None:
    """The open order (received to suspended: not yet replied) of the same problem as ``alarm``: an earlier alarm's
    of the same sensor and metric, whenever it was raised (None as the sensor: its own); else one of another sensor
    of the same kind standing within ``CITYHUB_ALARM_JOIN_WITHIN_M`` whose alarm of the same metric — for a camera
    the same kind of detection — is still open or crossed within ``CITYHUB_ALARM_JOIN_WINDOW_MINUTES`` (the
    nearest, with its distance). A silence alarm joins its own sensor's only: a device gone quiet is that device's."""
    from cityhub.intake.dedupe import distance_m
    from cityhub.workorders.lifecycle import OPEN_STATES

    handled = Order.state.in_([s.value for s in OPEN_STATES])
    own = session.scalars(
        select(Order)
        .join(Alarm, Alarm.order_id == Order.id)
        .where(Alarm.sensor_id == sensor.id, Alarm.metric == alarm.metric, Alarm.id != alarm.id, handled)
        .order_by(Alarm.id.desc())
        .limit(1)
    ).first()
    if own is not None:
        return own, None, 0.0
    settings = get_monitoring_settings()
    within = settings.alarm_join_within_m
    if within <= 0 or alarm.metric == SILENCE_METRIC or sensor.lat is None or sensor.lng is None:
        return None
    # A box around the sensor first (by its latitude's degrees), the distance then.
    dlat, dlng = _join_box(sensor.lat, within)
    since = alarm.raised_at - timedelta(minutes=settings.alarm_join_window_minutes)
    rows = session.execute(
        select(Order, Sensor)
        .join(Alarm, Alarm.order_id == Order.id)
        .join(Sensor, Sensor.id == Alarm.sensor_id)
        .where(
            Alarm.metric == alarm.metric,
            Alarm.sensor_id != sensor.id,
            Sensor.kind == sensor.kind,
            Sensor.lat.between(sensor.lat - dlat, sensor.lat + dlat),
            Sensor.lng.between(sensor.lng - dlng, sensor.lng + dlng),
            or_(Alarm.open_key.is_not(None), Alarm.last_at >= since),
            handled,
        )
        .order_by(Alarm.id.desc())
        .limit(50)
    ).all()
    near = [
        (distance_m(sensor.lat, sensor.lng, other.lat, other.lng), -order.id, order, other)
        for order, other in rows
        if other.lat is not None and other.lng is not None
    ]
    near = [n for n in near if n[0] <= within]
    if not near:
        return None
    metres, _, order, other = min(near, key=lambda n: (n[0], n[1]))
    return order, other, metres


def alarms_of_order(session: Session, order_id: int) -> list[tuple[int, str]]:
    """The alarms an order holds — the one that opened it and those that joined it — as (alarm id, sensor code), in
    the order they were raised."""
    rows = session.execute(
        select(Alarm.id, Sensor.code)
        .join(Sensor, Sensor.id == Alarm.sensor_id)
        .where(Alarm.order_id == order_id)
        .order_by(Alarm.id)
    )
    return [(alarm_id, code) for alarm_id, code in rows]


def _join_open_order(session: Session, *, alarm: Alarm, sensor: Sensor) -> Joined | None:
    """Join ``alarm`` to the open order of the same problem (:func:`_order_to_join`) instead of opening another: kept
    on the alarm, its ``order_joined`` event (the order, how many alarms it holds, the nearby sensor and its distance
    when it was another's), and a comment on the order saying the sensor alarmed again — or that another sensor so
    near saw the same — with how many alarms the order holds; its snapshot, when it has one, among the order's files
    (by the system). None when there is no such order."""
    from cityhub.workorders.lifecycle import OPEN_STATES

    found = _order_to_join(session, alarm=alarm, sensor=sensor)
    if found is None:
        return None
    order, near, metres = found
    if session.get_bind().dialect.name == "postgresql":
        # Chosen by a plain read: locked now and read again. An order being closed or merged at this moment is waited
        # for; ended meanwhile, it is no longer the problem being handled and the alarm opens its own order (until
        # December 2026 the join's comment then failed on the order's stale version and the whole batch was refused).
        locked = select(Order).where(Order.id == order.id).with_for_update(of=Order)
        order = session.scalars(locked.execution_options(populate_existing=True)).one()
        if order.state not in OPEN_STATES:
            return None
    alarm.order_id = order.id
    session.flush()
    count = session.scalar(select(func.count()).select_from(Alarm).where(Alarm.order_id == order.id)) or 1
    theirs = ours = None
    if near is not None and sensor.community_id and order.community_id and sensor.community_id != order.community_id:
        theirs, ours = session.get(Unit, sensor.community_id), session.get(Unit, order.community_id)
    across = {"sensor_community": theirs.code, "order_community": ours.code} if theirs and ours else None
    joined = Joined(
        order=order,
        alarms=count,
        near_sensor_code=near.code if near is not None else None,
        distance_m=round(metres) if near is not None else None,
        across_communities=across,
    )
    _event(session, alarm, "order_joined", actor=orders.SYSTEM, at=utcnow(), **joined.payload())
    unit, sure = sensor.metrics.get(alarm.metric, ""), is_confidence(sensor.kind, alarm.metric)
    value, limit = (figure(v, unit, confidence=sure) for v in (alarm.first_value, alarm.threshold))
    reading = f"{alarm.metric} {value} {alarm.comparison} limit {limit}"
    if near is None:
        text = f'sensor "{sensor.name}" alarmed again (alarm #{alarm.id}) at {_local(alarm.raised_at)}: {reading}'
    else:
        text = (
            f'sensor "{sensor.name}" alarmed (alarm #{alarm.id}) at {_local(alarm.raised_at)}: {reading}; '
            f'{joined.distance_m} m from sensor "{near.name}", whose alarm this order is handling'
        )
    if theirs is not None and ours is not None:
        # One pile seen from either side of a community boundary is one problem: the order is not moved nor split
        # (the dispatcher may hand it on or add the other community as assisting), but nobody is left unaware.
        text += f'; sensor "{sensor.name}" stands in {theirs.name}, this order in {ours.name}: not moved'
    text += f"; this order is still being handled: no new order; alarms on this order: {count}"
    if alarm.media_url:
        text += f"; snapshot: {alarm.media_url}"
        # Among the order's files, as the opening alarm's is: the unit sees what each camera saw, not only the first.
        order.attachments.append(Attachment(**_snapshot(alarm.media_url), uploaded_by=orders.SYSTEM.name))
    _tell_order(session, alarm, actor=orders.SYSTEM, text=text)
    return joined


# ------------------------------------------------------------------------------------------------------- alarms


def require_alarm(session: Session, *, alarm_id: int, scope: ColumnElement[bool] | None = None) -> Alarm:
    query = select(Alarm).join(Sensor, Sensor.id == Alarm.sensor_id).where(Alarm.id == alarm_id)
    if scope is not None:
        query = query.where(scope)
    alarm = session.scalars(query).one_or_none()
    if alarm is None:
        raise NotFound(f"alarm {alarm_id} not found")
    return alarm


def list_alarms(
    session: Session,
    *,
    active: bool | None = None,
    state: AlarmState | None = None,
    sensor_code: str | None = None,
    kind: str | None = None,
    severity: Severity | None = None,
    scope: ColumnElement[bool] | None = None,
    limit: int = 50,
    offset: int = 0,
    worst_first: bool = False,
) -> tuple[list[dict[str, Any]], bool]:
    """Alarms, newest first (``worst_first``: the most severe first, those not yet acknowledged before those seen,
    then newest — the duty officer's list), as the API shows them (with sensor, rule, the sensor's latest reading of
    the metric, and the order: its number, state and lead unit); and whether more follow. ``active=true``: open ones
    (active or acknowledged); ``false``: cleared."""
    lead = aliased(Unit)
    query = (
        select(
            Alarm,
            Sensor.code,
            Sensor.name,
            Sensor.kind,
            AlarmRule.name,
            Order.number,
            AlarmRule.kind,
            Sensor.metrics,
            Sensor.latest,
            Order.state,
            lead.name,
            _reopened_count(Alarm.id).scalar_subquery(),
        )
        .join(Sensor, Sensor.id == Alarm.sensor_id)
        .join(AlarmRule, AlarmRule.id == Alarm.rule_id)
        .outerjoin(Order, Order.id == Alarm.order_id)
        .outerjoin(lead, lead.id == Order.lead_unit_id)
        .order_by(
            *(
                (
                    case({v.value: -v.rank for v in Severity}, value=Alarm.severity, else_=0),
                    case((Alarm.state == AlarmState.ACKNOWLEDGED.value, 1), else_=0),
                )
                if worst_first
                else ()
            ),
            Alarm.raised_at.desc(),
            Alarm.id.desc(),
        )
        .limit(limit + 1)
        .offset(offset)
    )
    if active is True:
        query = query.where(Alarm.open_key.is_not(None))
    elif active is False:
        query = query.where(Alarm.open_key.is_(None))
    if state is not None:
        query = query.where(Alarm.state == state.value)
    if sensor_code:
        query = query.where(Sensor.code == sensor_code)
    if kind:
        query = query.where(Sensor.kind == kind)
    if severity is not None:
        query = query.where(Alarm.severity == severity.value)
    if scope is not None:
        query = query.where(scope)
    rows = session.execute(query).all()
    return [alarm_view(*row) for row in rows[:limit]], len(rows) > limit


def alarm_view(
    alarm: Alarm,
    sensor_code: str,
    sensor_name: str,
    sensor_kind: str,
    rule_name: str,
    order_number: str | None,
    rule_kind: str = RuleKind.THRESHOLD.value,
    metrics: Mapping[str, str] | None = None,
    latest: Mapping[str, Any] | None = None,
    order_state: str | None = None,
    order_lead_unit_name: str | None = None,
    reopened: int = 0,
) -> dict[str, Any]:
    """An alarm as the API and the pages show it. Beside the alarm's own figures — ``last_value`` is its last reading
    past the limit, which stays as it was while the readings fall back inside it (but not past the clear threshold)
    or once it is cleared — the sensor's latest reading of the metric now (``current_value``, ``current_at``; None
    for a silence alarm or a sensor that has none), the metric's measurement unit, and who has its order."""
    view = {
        c: getattr(alarm, c)
        for c in (
            "id",
            "sensor_id",
            "rule_id",
            "state",
            "severity",
            "metric",
            "comparison",
            "threshold",
            "raised_at",
            "first_value",
            "last_value",
            "peak_value",
            "last_at",
            "count",
            "order_id",
            "acknowledged_at",
            "acknowledged_by",
            "escalated_at",
            "cleared_at",
            "cleared_by",
            "media_url",
        )
    }
    view.update(
        sensor_code=sensor_code,
        sensor_name=sensor_name,
        sensor_kind=sensor_kind,
        rule_name=rule_name,
        order_number=order_number,
        kind=rule_kind,
        unit=(metrics or {}).get(alarm.metric) or None,
        order_state=order_state,
        order_lead_unit_name=order_lead_unit_name,
        reopened=reopened or 0,
    )
    current = (latest or {}).get(alarm.metric)
    known = isinstance(current, dict) and current.get("value") is not None
    view["current_value"] = current["value"] if known and current else None
    view["current_at"] = datetime.fromisoformat(current["at"]).astimezone(UTC) if known and current else None
    return view


def describe_alarm(session: Session, alarm: Alarm) -> dict[str, Any]:
    sensor = session.get(Sensor, alarm.sensor_id)
    rule = session.get(AlarmRule, alarm.rule_id)
    order = session.get(Order, alarm.order_id) if alarm.order_id else None
    lead = session.get(Unit, order.lead_unit_id) if order is not None and order.lead_unit_id else None
    assert sensor is not None and rule is not None
    return alarm_view(
        alarm,
        sensor.code,
        sensor.name,
        sensor.kind,
        rule.name,
        order.number if order is not None else None,
        rule.kind,
        metrics=sensor.metrics,
        latest=sensor.latest,
        order_state=order.state if order is not None else None,
        order_lead_unit_name=lead.name if lead is not None else None,
        reopened=reopened_count(session, alarm.id),
    )


def alarm_events(session: Session, *, alarm_id: int) -> list[AlarmEvent]:
    return list(session.scalars(alarm_events_query(alarm_id=alarm_id)))


def alarm_events_query(*, alarm_id: int) -> Select[AlarmEvent]:
    """The alarm's trail, oldest first (by id), for :func:`alarm_events` and a caller that pages it."""
    return select(AlarmEvent).where(AlarmEvent.alarm_id == alarm_id).order_by(AlarmEvent.id)


def _lock_alarm(session: Session, alarm: Alarm) -> Alarm:
    """On PostgreSQL, lock ``alarm``'s order, then the alarm, and read it again — the order a batch of readings, the
    life cycle's close and the escalation job take them in (:func:`_lock_held`): a person's acknowledgement or clear
    writes the alarm, then a comment on its order, and took them the other way round (until December 2026), so a
    readings file that had commented on the order and then counted a reading on the alarm deadlocked with it. Followed
    again (bounded) when a merge moved the alarm to another order meanwhile."""
    if session.get_bind().dialect.name != "postgresql":
        return alarm
    for _ in range(5):
        order_id = alarm.order_id
        if order_id is not None:
            session.execute(select(Order.id).where(Order.id == order_id).with_for_update(of=Order))
        locked = select(Alarm).where(Alarm.id == alarm.id).with_for_update(of=Alarm)
        alarm = session.scalars(locked.execution_options(populate_existing=True)).one()
        if alarm.order_id == order_id:
            break
    return alarm


def acknowledge(
    session: Session,
    *,
    alarm_id: int,
    actor: orders.Actor,
    note: str | None = None,
    scope: ColumnElement[bool] | None = None,
) -> Alarm:
    """A person has seen the alarm (确认); it stays open and keeps counting."""
    note = _note(note, "note")
    alarm = _lock_alarm(session, require_alarm(session, alarm_id=alarm_id, scope=scope))
    if alarm.state != AlarmState.ACTIVE:
        raise InvalidTransition(state=alarm.state, action="acknowledge", reason="only an active alarm is acknowledged")
    now = utcnow()
    alarm.state = AlarmState.ACKNOWLEDGED.value
    alarm.acknowledged_at, alarm.acknowledged_by = now, actor.name
    _event(session, alarm, "acknowledged", actor=actor, at=now, note=note)
    seen = f"alarm #{alarm.id} acknowledged by {actor.name} at {_local(now)}"
    _tell_order(session, alarm, actor=actor, text=seen, note=note)
    session.flush()
    return alarm


def clear(
    session: Session,
    *,
    alarm_id: int,
    actor: orders.Actor,
    note: str | None = None,
    scope: ColumnElement[bool] | None = None,
) -> Alarm:
    """A person clears the alarm (解除). While the readings still breach, the rule raises again only after they
    have recovered once."""
    note = _note(note, "note")
    return _clear(session, require_alarm(session, alarm_id=alarm_id, scope=scope), actor=actor, note=note)


def _note(text: str | None, field: str) -> str | None:
    """A person's note or reason as kept: trimmed, None when empty, refused beyond ``NOTE_MAX_CHARS``."""
    text = (text or "").strip() or None
    check_length(text, field, NOTE_MAX_CHARS)
    return text


def _clear(session: Session, alarm: Alarm, *, actor: orders.Actor, note: str | None) -> Alarm:
    alarm = _lock_alarm(session, alarm)
    if alarm.open_key is None:
        raise InvalidTransition(state=alarm.state, action="clear", reason="the alarm is already cleared")
    require_rule(session, rule_id=alarm.rule_id)
    # Read afresh (and locked, after the order and the alarm): ingestion writes rule states as plain rows, not through
    # objects this session may hold.
    row = session.get(
        RuleState,
        (alarm.sensor_id, alarm.rule_id),
        populate_existing=True,
        with_for_update=session.get_bind().dialect.name == "postgresql",
    )
    if row is not None:
        _disarm(session, row)
    _close(session, alarm, actor=actor, at=utcnow(), value=None, note=note)
    session.flush()
    return alarm


# ------------------------------------------------------------------------------------------------------ silence


def silence_rule(session: Session) -> AlarmRule:
    """The one built-in rule whose alarms say a sensor went silent, made (in the configuration log, by the system)
    when first needed: warning, opening no order — a device to be repaired is no citizen's appeal — which its
    ``opens_order`` switch on the rules page changes, as any rule's; ``active`` false stops silence alarms."""
    from sqlalchemy.exc import IntegrityError

    query = select(AlarmRule).where(AlarmRule.kind == RuleKind.SILENCE.value)
    rule = session.scalars(query).one_or_none()
    if rule is not None:
        return rule
    rule = AlarmRule(
        kind=RuleKind.SILENCE.value,
        name=SILENCE_RULE_NAME,
        metric=SILENCE_METRIC,
        comparison=Comparison.GE.value,
        threshold=0.0,  # unused: each sensor's own time, else the setting
        severity=Severity.WARNING.value,
        opens_order=False,
        urgency="normal",
        active=True,
    )
    try:
        with session.begin_nested():  # another worker making it at the same moment: its rule is the one
            session.add(rule)
            session.flush()
    except IntegrityError:
        return session.scalars(query).one()
    _log(session, rule, "create", orders.SYSTEM)
    return rule


def _silence_note(sensor: Sensor, minutes: int, heard: datetime) -> str:
    """Why the sensor is silent (a fixed form, as :func:`_tell_order`'s): ``heard``, when it was last heard of
    (:func:`_quiet`), was its last reading, its return to service or its registration."""
    if sensor.last_reading_at is not None and heard <= sensor.last_reading_at:
        return f"sensor silent: no reading for over {minutes} min, the last at {_local(sensor.last_reading_at)}"
    if heard > sensor.created_at:
        return f"sensor silent: no reading within {minutes} min of its return to service at {_local(heard)}"
    return f"sensor silent: no reading within {minutes} min of its registration"


def _raise_silence(
    session: Session, sensor: Sensor, rule: AlarmRule, *, since: datetime, after: int, now: datetime
) -> Alarm:
    """The silence alarm of ``sensor``: raised at the moment it became silent, its values the minutes it had been
    quiet when found, its threshold the minutes it may be; in its trail, notified, and an order when the rule says."""
    heard = since - timedelta(minutes=after)
    quiet = round((now - heard).total_seconds() / 60)
    alarm = Alarm(
        sensor_id=sensor.id,
        rule_id=rule.id,
        open_key=f"{sensor.id}:{rule.id}",
        state=AlarmState.ACTIVE.value,
        severity=rule.severity,
        metric=SILENCE_METRIC,
        comparison=Comparison.GE.value,
        threshold=float(after),
        raised_at=since,
        recorded_at=now,
        first_value=float(quiet),
        last_value=float(quiet),
        peak_value=float(quiet),
        last_at=since,
        count=1,
    )
    session.add(alarm)
    session.flush()
    _event(
        session,
        alarm,
        "raised",
        actor=orders.SYSTEM,
        at=since,
        note=_silence_note(sensor, after, heard),
        last_reading_at=_iso(sensor.last_reading_at),
        after_minutes=after,
        found_at=now.isoformat(),
    )
    joined = _join_open_order(session, alarm=alarm, sensor=sensor) if opens_order(rule) else None
    if opens_order(rule) and joined is None:
        open_order(session, alarm=alarm, sensor=sensor, rule=rule)
    _notify_raised(session, alarm, sensor, rule, joined=joined)
    return alarm


def _resume(session: Session, alarm: Alarm, sensor: Sensor, now: datetime) -> None:
    """Clear a silence alarm: the sensor reports again (at its latest reading), or — no reading since the one the
    alarm last heard (its threshold's minutes before it was raised) — may now stay quiet longer."""
    heard = alarm.raised_at - timedelta(minutes=alarm.threshold)
    if sensor.last_reading_at is not None and sensor.last_reading_at > heard:
        at = sensor.last_reading_at
        note = f"readings resumed, the latest at {_local(at)}"
    else:
        at, note = now, "silence time lengthened"
    _close(session, alarm, actor=orders.SYSTEM, at=max(at, alarm.raised_at), value=None, note=note)


def detect_silence(session: Session, *, now: datetime | None = None) -> dict[str, int]:
    """The sensor-silence job: raise the silence alarm of every sensor in service quiet for longer than it may be
    (its ``silent_after_minutes``, else ``CITYHUB_SENSOR_SILENT_AFTER_MINUTES``) that has none open — one per sensor,
    as the open key keeps every alarm — and clear those of sensors no longer silent (readings clear them as they
    arrive; this catches a sensor given a longer time). The sensors to alarm are locked and read again, as ingestion
    locks them, so a reading committed meanwhile is seen."""
    now = now or utcnow()
    default = get_monitoring_settings().sensor_silent_after_minutes
    rule = silence_rule(session)
    rows = session.execute(
        select(
            Sensor.id,
            Sensor.last_reading_at,
            Sensor.created_at,
            Sensor.silent_after_minutes,
            Sensor.in_service_since,
        ).where(Sensor.active.is_(True))
    ).all()
    silent = {row.id for row in rows if _quiet(row, default, now)[1] is not None}
    open_alarms = {
        alarm.sensor_id: alarm
        for alarm in session.scalars(select(Alarm).where(Alarm.rule_id == rule.id, Alarm.open_key.is_not(None)))
    }
    raised = cleared = 0
    wanted = sorted(silent - set(open_alarms)) if rule.active else []
    lock = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(wanted), CHUNK):
        query = (
            select(Sensor)
            .where(Sensor.id.in_(wanted[start : start + CHUNK]), Sensor.active.is_(True))
            .order_by(Sensor.code)
            .execution_options(populate_existing=True)
        )
        for sensor in session.scalars(query.with_for_update() if lock else query):
            after, since = _quiet(sensor, default, now)
            if since is None or after is None:  # it reported meanwhile
                continue
            _raise_silence(session, sensor, rule, since=since, after=after, now=now)
            raised += 1
    for sensor_id in sorted(set(open_alarms) - silent):
        reporting = session.get(Sensor, sensor_id)
        if reporting is not None:
            _resume(session, open_alarms[sensor_id], reporting, now)
            cleared += 1
    session.flush()
    return {"silent": len(silent), "raised": raised, "cleared": cleared}


# ------------------------------------------------------------------------------------------------- escalation

URGENCY_ABOVE = {"normal": "urgent", "urgent": "critical"}


def escalate_after(rule_minutes: int | None, default: int) -> int | None:
    """Minutes after which an active alarm of a rule is escalated: the rule's own, else the default; None: never."""
    minutes = default if rule_minutes is None else rule_minutes
    return minutes if minutes > 0 else None


def escalate_due(session: Session, *, now: datetime | None = None) -> dict[str, int]:
    """Escalate (升级) every alarm still active — not acknowledged, not cleared — longer after it was raised (after
    its readings arrived, and after it was last reopened) than its
    rule's ``escalate_after_minutes`` (else ``CITYHUB_ALARM_ESCALATE_AFTER_MINUTES``): once per alarm, claimed in
    one UPDATE (``escalated_at``), then an ``escalated`` event in its trail, an escalation on the ``alarm`` topic and
    its order, when still open, escalated through the life cycle with its urgency one step higher (audited) — once:
    an order another of its alarms escalated already is not escalated again (``order_escalated_before``)."""
    from cityhub.workorders.lifecycle import OPEN_STATES, TERMINAL_STATES, Action

    now = now or utcnow()
    # Alarms still open on an order closed, cancelled or merged before December 2026, behind the life cycle's back, or
    # skipped as it ended (locked by a batch of readings) are answered for: cleared or moved, not escalated.
    resolve_ended(session, now=now)
    default = get_monitoring_settings().alarm_escalate_after_minutes
    groups: dict[int, list[int]] = defaultdict(list)
    for rule_id, minutes in session.execute(select(AlarmRule.id, AlarmRule.escalate_after_minutes)):
        after = escalate_after(minutes, default)
        if after is not None:
            groups[after].append(rule_id)
    if not groups:
        return {"escalated": 0, "orders_escalated": 0}
    # Counted from when the alarm was known here: an alarm raised by readings that arrived late (a file imported hours
    # after they were measured) gives the duty officer the rule's time too, not none.
    known_since = func.coalesce(Alarm.recorded_at, Alarm.raised_at)
    # …and from its latest reopening (re-arm, its ``reopened`` event's time): an alarm cleared by the readings and open
    # again gives the duty officer the rule's time anew, not an escalation at once for being raised long ago.
    reopened_at = (
        select(func.max(AlarmEvent.at))
        .where(AlarmEvent.alarm_id == Alarm.id, AlarmEvent.action == "reopened")
        .correlate(Alarm)
        .scalar_subquery()
    )
    open_since = func.coalesce(reopened_at, Alarm.raised_at)
    due = or_(
        *(
            and_(
                Alarm.rule_id.in_(ids),
                Alarm.raised_at <= now - timedelta(minutes=minutes),
                known_since <= now - timedelta(minutes=minutes),
                open_since <= now - timedelta(minutes=minutes),
            )
            for minutes, ids in sorted(groups.items())
        )
    )
    # Never an alarm whose order has ended (closed, cancelled, merged): one skipped above, locked by a batch, waits for
    # the next run here too.
    # An alias per subquery: none may be correlated by mistake to another's order when they are nested below.
    theirs, held_order, other_order = aliased(Order), aliased(Order), aliased(Order)
    ended = select(theirs.id).where(theirs.id == Alarm.order_id, theirs.state.in_([s.value for s in TERMINAL_STATES]))
    wanted = and_(Alarm.state == AlarmState.ACTIVE.value, Alarm.escalated_at.is_(None), due, ~ended.exists())
    if session.get_bind().dialect.name == "postgresql":
        # The locks in the order every writer of alarms and orders here takes them (:func:`resolve_ended`): the open
        # orders to escalate first, then the alarms by id, each with SKIP LOCKED — so the job never waits for a batch
        # of readings or a person's clear (which take them in the same order) and can be part of no deadlock; what it
        # skips it escalates at its next run.
        mine = select(held_order.id).where(
            held_order.state.in_([s.value for s in OPEN_STATES]),
            held_order.id.in_(select(Alarm.order_id).where(wanted, Alarm.order_id.is_not(None))),
        )
        locking = mine.order_by(held_order.id).with_for_update(of=held_order, skip_locked=True)
        held = list(session.scalars(locking).all())
        elsewhere = select(other_order.id).where(
            other_order.id == Alarm.order_id,
            other_order.state.in_([s.value for s in OPEN_STATES]),
            other_order.id.not_in(held),
        )
        wanted = and_(wanted, ~elsewhere.exists())
        free = session.scalars(
            select(Alarm.id).where(wanted).order_by(Alarm.id).with_for_update(of=Alarm, skip_locked=True)
        ).all()
        wanted = and_(wanted, Alarm.id.in_(free))
    # The claim: a second run (or worker) finds them escalated; an acknowledgement committed first keeps one out.
    claimed = session.scalars(
        update(Alarm)
        .where(wanted)
        .values(escalated_at=now)
        .returning(Alarm.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return {"escalated": 0, "orders_escalated": 0}
    rows = session.execute(
        select(Alarm, Sensor, AlarmRule)
        .join(Sensor, Sensor.id == Alarm.sensor_id)
        .join(AlarmRule, AlarmRule.id == Alarm.rule_id)
        .where(Alarm.id.in_(sorted(claimed)))
        .order_by(Alarm.id)
        .execution_options(populate_existing=True)
    ).all()
    escalated_orders = 0
    # An order holding several alarms (a sensor's again, a camera's near another's: one problem) is escalated by its
    # alarms once — by the first escalated — not one urgency step per alarm (two cameras made it 特急 by themselves).
    order_ids = sorted({alarm.order_id for alarm, _, _ in rows if alarm.order_id is not None})
    # By the alarms' ``escalated`` events that escalated their order (``urgency_from``), not ``escalated_at``: a
    # reopening forgets that (its episode is escalated anew), and the order escalated in an earlier episode is not
    # escalated a second time for the same problem.
    escalated_before = (
        {
            order_id
            for order_id, payload in session.execute(
                select(Alarm.order_id, AlarmEvent.payload)
                .join(AlarmEvent, AlarmEvent.alarm_id == Alarm.id)
                .where(Alarm.order_id.in_(order_ids), AlarmEvent.action == "escalated")
            )
            if isinstance(payload, dict) and payload.get("order_id") == order_id and "urgency_from" in payload
        }
        if order_ids
        else set()
    )
    for alarm, sensor, rule in rows:
        minutes = escalate_after(rule.escalate_after_minutes, default) or 0
        extra: dict[str, Any] = {"after_minutes": minutes}
        order = session.get(Order, alarm.order_id) if alarm.order_id is not None else None
        if order is not None and order.state in OPEN_STATES and order.id in escalated_before:
            extra |= {"order_id": order.id, "order_escalated_before": True}
        elif order is not None and order.state in OPEN_STATES:
            escalated_before.add(order.id)
            before = str(order.urgency)
            params: dict[str, Any] = {
                "reason": f'alarm #{alarm.id} (sensor "{sensor.name}") not acknowledged within {minutes} min: '
                "escalated automatically",
                "alarm_id": alarm.id,
            }
            if before in URGENCY_ABOVE:
                params["urgency"] = URGENCY_ABOVE[before]
            try:
                # A savepoint: an order the life cycle refuses costs its own escalation, not the whole run's
                # (which would fail again at every interval).
                with session.begin_nested():
                    orders.act(session, order_id=order.id, action=Action.ESCALATE, actor=orders.SYSTEM, params=params)
            except CityhubError as exc:
                log.warning("alarm %s escalated; its order %s not: %s", alarm.id, order.id, exc)
                extra |= {"order_id": order.id, "order_error": str(exc)}
            else:
                extra |= {"order_id": order.id, "urgency_from": before, "urgency_to": str(order.urgency)}
                escalated_orders += 1
        note = f"not acknowledged within {minutes} min: escalated"
        _event(session, alarm, "escalated", actor=orders.SYSTEM, at=now, note=note, **extra)
        payload = _alarm_payload(alarm, sensor, rule, "alarm_escalated") | {
            "escalation": True,
            "escalated_at": now.isoformat(),
            "after_minutes": minutes,
        }
        _notify(session, alarm, sensor, payload)
    session.flush()
    return {"escalated": len(rows), "orders_escalated": escalated_orders}


def _check_metric(sensor: Sensor, metric: str) -> None:
    """ValidationFailed naming the metrics ``sensor`` reports unless ``metric`` is one of them."""
    if metric not in sensor.metrics:
        known = ", ".join(sensor.metrics)
        raise ValidationFailed(
            f"sensor '{sensor.code}' has no metric {metric!r} (it has {known})", details={"field": "metric"}
        )


def readings_of(
    session: Session, *, sensor: Sensor, metric: str | None = None, since: datetime | None = None, limit: int = 500
) -> list[Reading]:
    """A sensor's readings, newest first (of ``metric``, one it reports)."""
    if metric:
        _check_metric(sensor, metric)
    if since is not None and since.tzinfo is None:
        raise ValidationFailed("since must carry a time zone", details={"field": "since"})
    query = select(Reading).where(Reading.sensor_id == sensor.id).order_by(Reading.measured_at.desc()).limit(limit)
    if metric:
        query = query.where(Reading.metric == metric)
    if since:
        query = query.where(Reading.measured_at >= since)
    return list(session.scalars(query))


# The chart windows of a sensor's page (24 小时, 7 天, 30 天) and the buckets a series is cut into by default.
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
SERIES_BUCKETS = 240
SERIES_MAX_BUCKETS = 2000
SERIES_MAX_SPAN = timedelta(days=400)


def series_of(
    session: Session, *, sensor: Sensor, metric: str, start: datetime, end: datetime, buckets: int = SERIES_BUCKETS
) -> Series:
    """A metric's readings in ``[start, end]``, downsampled to at most ``buckets`` buckets (min and max of each)."""
    _check_metric(sensor, metric)
    for name, at in (("from", start), ("to", end)):
        if at.tzinfo is None:
            raise ValidationFailed(f"{name} must carry a time zone", details={"field": name})
    if end <= start:
        raise ValidationFailed("'to' must be after 'from'", details={"field": "to"})
    if end - start > SERIES_MAX_SPAN:
        raise ValidationFailed(f"at most {SERIES_MAX_SPAN.days} days in one series", details={"field": "from"})
    if not 1 <= buckets <= SERIES_MAX_BUCKETS:
        raise ValidationFailed(f"buckets must be 1 to {SERIES_MAX_BUCKETS}", details={"field": "buckets"})
    # Two columns in time order through the (sensor, metric, time) unique index; a month of minute readings is
    # some 43,000 rows, bucketed here in one pass.
    rows = session.execute(
        select(Reading.measured_at, Reading.value)
        .where(
            Reading.sensor_id == sensor.id,
            Reading.metric == metric,
            Reading.measured_at >= start,
            Reading.measured_at <= end,
        )
        .order_by(Reading.measured_at)
    )
    return downsample(((at, value) for at, value in rows), start=start, end=end, buckets=buckets)


def thresholds_of(session: Session, *, sensor: Sensor, metric: str) -> list[tuple[AlarmRule, RuleSpec]]:
    """The active rules applying to a sensor's metric, with their limits for this sensor (capacity applied)."""
    found = []
    for rule in rules_for(list_rules(session, active=True), sensor, metric):
        spec = _spec(rule, sensor)
        if spec is not None:
            found.append((rule, spec))
    return found


def open_alarm_counts(session: Session, sensor_ids: Iterable[int], *, silence: bool = False) -> dict[int, int]:
    """How many alarms each sensor has open: of threshold rules, and its silence alarm too when ``silence``."""
    ids = sorted(set(sensor_ids))
    counts: dict[int, int] = {}
    for start in range(0, len(ids), CHUNK):
        query = (
            select(Alarm.sensor_id, func.count())
            .where(Alarm.sensor_id.in_(ids[start : start + CHUNK]), Alarm.open_key.is_not(None))
            .group_by(Alarm.sensor_id)
        )
        if not silence:
            query = query.join(AlarmRule, AlarmRule.id == Alarm.rule_id).where(AlarmRule.kind != RuleKind.SILENCE.value)
        counts.update((sensor_id, n) for sensor_id, n in session.execute(query))
    return counts


def open_alarm_severities(
    session: Session, *where: ColumnElement[bool], kind: RuleKind | None = None
) -> dict[str, int]:
    """How many alarms are open, by severity, of the sensors ``where`` selects (conditions on :class:`Sensor`); of
    the rules of ``kind`` only — threshold: what the readings say about the place; silence: sensors gone quiet —
    when given."""
    query = (
        select(Alarm.severity, func.count())
        .join(Sensor, Sensor.id == Alarm.sensor_id)
        .where(Alarm.open_key.is_not(None), *where)
        .group_by(Alarm.severity)
    )
    if kind is not None:
        query = query.join(AlarmRule, AlarmRule.id == Alarm.rule_id).where(AlarmRule.kind == kind.value)
    return {severity: n for severity, n in session.execute(query)}


# ------------------------------------------------------------------------------------------------------ files

SENSOR_HEADERS = ("code", "name", "kind", "metrics")
SENSOR_OPTIONAL = ("lat", "lng", "address", "unit_code", "capacity", "active", "silent_after_minutes")
READING_HEADERS = ("sensor_code", "measured_at", "value")


@dataclass(frozen=True)
class RowProblem:
    row: int  # as the file shows it, the header being row 1
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.message}"


@dataclass
class FileReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    ingest: IngestResult | None = None
    # The codes of the sensors created or updated that no unit answers for.
    unplaced: list[str] = field(default_factory=list)


def parse_metrics(text: str) -> dict[str, str]:
    """``"depth:cm"`` / ``"pm25:μg/m³;pm10:μg/m³;aqi"`` → {metric: measurement unit}."""
    metrics: dict[str, str] = {}
    for part in text.replace("；", ";").split(";"):
        if part.strip():
            name, _, unit = part.replace("：", ":").partition(":")
            metrics[name.strip()] = unit.strip()
    return metrics


def import_sensors(
    session: Session, *, rows: Sequence[tuple[int, Mapping[str, str]]], actor: orders.Actor = orders.SYSTEM
) -> FileReport:
    """Register or update the sensors of a file's rows (by code), each change in the configuration log by
    ``actor``. Each bad row is rejected by number and field, the others kept. A known sensor keeps what the columns
    the file does not have would say (``org.service.given_cells``: a file without lat and lng leaves its position);
    an empty cell clears its field, but for ``active``."""
    from pydantic import ValidationError

    from cityhub.org.service import given_cells, yes_or_no

    report = FileReport(read=len(rows))
    seen: dict[str, int] = {}
    for number, raw in rows:
        code = (raw.get("code") or "").strip()
        if code in seen:
            report.rejected.append(RowProblem(number, "code", f"'{code}' already on row {seen[code]}"))
            continue
        cells = given_cells(raw, (*SENSOR_HEADERS, *SENSOR_OPTIONAL))
        values: dict[str, Any] = {k: (v or "").strip() or None for k, v in cells.items()}
        try:
            values["metrics"] = parse_metrics(values.get("metrics") or "")
            if "active" in values:
                values["active"] = yes_or_no(values["active"] or "", blank=True)
        except ValueError as exc:
            report.rejected.append(RowProblem(number, "active", str(exc)))
            continue
        try:
            data = SensorCreate.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(p) for p in err["loc"]) or "(row)"
            report.rejected.append(RowProblem(number, name, err["msg"]))
            continue
        existing = get_sensor(session, code=data.code)
        try:
            if existing is None:
                create_sensor(session, data=data, actor=actor)
                report.created += 1
            else:
                if existing.kind != data.kind.value:
                    raise ValidationFailed(
                        f"sensor '{code}' is a {existing.kind} sensor, not {data.kind.value}", details={"field": "kind"}
                    )
                update_sensor(
                    session,
                    code=data.code,
                    actor=actor,
                    metrics=data.metrics,
                    # An empty active column leaves a known sensor as it is: re-importing an old file does not
                    # put a retired sensor back in service.
                    data=SensorUpdate.model_validate(
                        data.model_dump(
                            exclude_unset=True,
                            exclude={"code", "kind", "metrics"}
                            | (set() if (raw.get("active") or "").strip() else {"active"}),
                        )
                    ),
                )
                report.updated += 1
        except (ValidationFailed, Conflict) as exc:
            report.rejected.append(RowProblem(number, str(exc.details.get("field", "(row)")), exc.message))
            continue
        seen[code] = number
        placed = get_sensor(session, code=data.code)
        if placed is not None and placed.unit_id is None:
            report.unplaced.append(data.code)
    return report


def import_readings(
    session: Session, *, rows: Sequence[tuple[int, Mapping[str, str]]], batch: int | None = None
) -> FileReport:
    """Store and evaluate a file's readings (``sensor_code, measured_at, metric, value`` [, ``media_url``]), in
    batches; each bad row is rejected by number and field."""
    batch = batch or get_monitoring_settings().reading_batch_max
    report = FileReport(read=len(rows))
    total = IngestResult(
        received=0,
        stored=0,
        duplicates=0,
        late=0,
        rejected=[],
        alarms_raised=0,
        alarms_repeated=0,
        alarms_cleared=0,
        orders_opened=0,
    )
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        result = ingest(session, items=[dict(raw) for _, raw in chunk])
        for name in ("received", "stored", "duplicates", "late", "alarms_raised", "alarms_repeated"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
        for name in ("alarms_cleared", "orders_opened", "alarms_reopened", "alarms_joined"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
        report.rejected.extend(RowProblem(chunk[r.index][0], r.field, r.message) for r in result.rejected)
    report.ingest = total
    return report
