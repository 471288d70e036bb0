"""监测预警 on the one map (一张图): the sensors and open alarms as layers, and the figures the monitors give — open
alarms, air quality (PM2.5), water quality (dissolved oxygen) — as indicators, registered in
:mod:`cityhub.onemap.registry` (listed in its ``PLUGINS``). Everything is read within the caller's data scope as the
monitoring pages read it (:func:`cityhub.monitoring.service.sensor_scope`).
"""

from __future__ import annotations

from datetime import datetime
from statistics import mean
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, select
from sqlalchemy.orm import aliased

from cityhub.config import get_settings
from cityhub.monitoring.models import Alarm, AlarmRule, Sensor
from cityhub.monitoring.rules import RuleKind, SensorState, Severity, figure, is_confidence
from cityhub.monitoring.service import open_alarm_counts, open_alarm_severities, sensor_conditions, sensor_scope
from cityhub.onemap.registry import (
    FeatureCollection,
    Indicator,
    IndicatorValue,
    Layer,
    MapContext,
    register_indicator,
    register_layer,
)
from cityhub.onemap.service import collection
from cityhub.org.models import Unit

# National ambient air quality standard GB 3095-2012, PM2.5 24-hour mean: 35 µg/m³ (grade I "good") and 75 (grade
# II, above which the air is polluted). Surface water GB 3838-2002, dissolved oxygen: at least 5 mg/L for class III
# (drinking-water sources, fisheries) and 2 mg/L for class V (the lowest class with a use).
PM25_GOOD, PM25_POLLUTED = 35.0, 75.0
DO_CLASS_III, DO_CLASS_V = 5.0, 2.0
# The urban road traffic performance index (交通运行指数, 0–10) in its five grades: 0–2 畅通, 2–4 基本畅通,
# 4–6 轻度拥堵, 6–8 中度拥堵, 8–10 严重拥堵.
TPI_SLOW, TPI_CONGESTED = 4.0, 6.0
Level = Literal["ok", "warn", "alert"]


def _where(ctx: MapContext, *extra: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Sensor.active.is_(True), *extra]
    if (scoped := sensor_scope(ctx.scope)) is not None:
        conditions.append(scoped)
    return conditions


def _in_view(ctx: MapContext) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Sensor.lat.is_not(None), Sensor.lng.is_not(None)]
    box = ctx.query.bbox
    if box is not None:
        conditions += [Sensor.lng >= box.west, Sensor.lng <= box.east, Sensor.lat >= box.south, Sensor.lat <= box.north]
    return conditions


def _latest_text(ctx: MapContext, sensor: Sensor) -> str:
    """The sensor's latest value of each metric, named in the reader's language, with its unit and local time, e.g.
    ``积水深度 42cm（12-04 10:05）``."""
    tz = get_settings().tz
    parts = []
    for metric, latest in sorted((sensor.latest or {}).items()):
        at = datetime.fromisoformat(latest["at"]).astimezone(tz).strftime("%m-%d %H:%M")
        unit = sensor.metrics.get(metric, "") if sensor.metrics else ""
        name = ctx.t.label("metric", metric)
        shown = figure(latest["value"], confidence=is_confidence(sensor.kind, metric))  # a camera's 93%, as the pages
        parts.append(ctx.t("map.sensor.reading", metric=name, value=shown, unit=unit, at=at))
    return ctx.t("map.sensor.reading_sep").join(parts)


def _silent_text(ctx: MapContext, sensor: Sensor, since: datetime) -> str:
    """Why a silent sensor's values are not to be read as the place's: since when it has said nothing."""
    if sensor.last_reading_at is None:
        return ctx.t("map.sensor.never")
    tz = get_settings().tz
    return ctx.t(
        "map.sensor.silent",
        since=since.astimezone(tz).strftime("%m-%d %H:%M"),
        last=sensor.last_reading_at.astimezone(tz).strftime("%m-%d %H:%M"),
    )


def sensor_features(ctx: MapContext) -> FeatureCollection:
    """Active sensors with a position in the view, each with its latest readings, its status (``silent``: drawn as
    a dashed grey ring, the popup saying since when) and whether an alarm is open."""
    sensors = list(
        ctx.session.scalars(select(Sensor).where(*_where(ctx, *_in_view(ctx))).order_by(Sensor.code).limit(5000))
    )
    conditions = sensor_conditions(ctx.session, sensors)
    open_any = open_alarm_counts(ctx.session, [s.id for s in sensors], silence=True)
    features = []
    for s in sensors:
        condition = conditions[s.id]
        summary = _latest_text(ctx, s)
        if condition.silent_since is not None:
            parts = (_silent_text(ctx, s, condition.silent_since), summary)
            summary = ctx.t("map.sensor.reading_sep").join(p for p in parts if p)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [s.lng, s.lat]},
                "properties": {
                    "code": s.code,
                    "kind": s.kind,
                    "title": s.name,
                    "summary": summary,
                    "alarm": s.id in open_any,
                    "status": condition.state.value,
                    "silent_since": condition.silent_since.isoformat() if condition.silent_since else None,
                    "last_reading_at": s.last_reading_at.isoformat() if s.last_reading_at else None,
                    "link": f"/monitoring/sensors/{s.code}",
                    "link_kind": "monitoring",
                },
            }
        )
    return collection(features)


def alarm_features(ctx: MapContext) -> FeatureCollection:
    """Open alarms (active or acknowledged) at their sensor, worst first: what crossed which limit, since when, and
    the order it opened."""
    from cityhub.web import machine_text
    from cityhub.workorders.models import Order

    lead = aliased(Unit)
    query = (
        select(Alarm, Sensor, AlarmRule.name, Order.id, Order.number, Order.state, lead.name)
        .join(Sensor, Sensor.id == Alarm.sensor_id)
        .join(AlarmRule, AlarmRule.id == Alarm.rule_id)
        .outerjoin(Order, Order.id == Alarm.order_id)
        .outerjoin(lead, lead.id == Order.lead_unit_id)
        .where(Alarm.open_key.is_not(None), *_where(ctx, *_in_view(ctx)))
        .order_by(case({s.value: -s.rank for s in Severity}, value=Alarm.severity, else_=0), Alarm.raised_at.desc())
        .limit(2000)
    )
    tz = get_settings().tz
    features: list[dict[str, Any]] = []
    for alarm, sensor, rule_name, order_id, number, order_state, lead_name in ctx.session.execute(query):
        since = alarm.raised_at.astimezone(tz).strftime("%m-%d %H:%M")
        unit = (sensor.metrics or {}).get(alarm.metric, "")
        latest = (sensor.latest or {}).get(alarm.metric)
        # The reading now, not the alarm's last one past the limit, which stays while the readings are back inside it
        # but not yet past the clear threshold (a river at 5.08 m read "5.2 >= 5.2"); a silence alarm has none.
        now = latest.get("value") if isinstance(latest, dict) else None
        sure = is_confidence(sensor.kind, alarm.metric)  # a camera's confidence in percent, as the pages show it
        summary = ctx.t(
            "map.alarm.summary_now" if now is not None else "map.alarm.summary",
            metric=ctx.t.label("metric", alarm.metric),
            value=figure(now if now is not None else alarm.last_value, unit, confidence=sure),
            comparison=ctx.t.label("comparison", alarm.comparison),
            threshold=figure(alarm.threshold, unit, confidence=sure),
            peak=figure(alarm.peak_value, confidence=sure),
            count=alarm.count,
            since=since,
        )
        if number is not None:  # who has its order now
            holder = ctx.t(
                "map.alarm.order",
                number=number,
                state=ctx.t.label("state", order_state),
                unit=lead_name or ctx.t("mon.order_no_unit"),
            )
            summary = ctx.t("map.sensor.reading_sep").join((summary, holder))
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [sensor.lng, sensor.lat]},
                "properties": {
                    "id": alarm.id,
                    "title": f"{sensor.name} · {machine_text.rule_name(ctx.t, rule_name)}",
                    "summary": summary,
                    "severity": alarm.severity,
                    "state": alarm.state,
                    "order": number,
                    "link": f"/orders/{order_id}" if order_id is not None else f"/monitoring/sensors/{sensor.code}",
                    "link_kind": "order" if order_id is not None else "monitoring",
                },
            }
        )
    return collection(features)


def active_alarms(ctx: MapContext) -> IndicatorValue:
    """Open alarms of threshold rules in scope — what the readings say about the places — ``alert`` when one is
    critical; the open silence alarms (离线: a sensor gone quiet, a dead battery rather than a flood) counted apart
    beside them (``apart``), not in the figure or its level."""
    counts = open_alarm_severities(ctx.session, *_where(ctx), kind=RuleKind.THRESHOLD)
    total = sum(counts.values())
    silent = sum(open_alarm_severities(ctx.session, *_where(ctx), kind=RuleKind.SILENCE).values())
    level: Level = "alert" if counts.get("critical") else "warn" if total else "ok"
    return IndicatorValue(total, level=level, link="/monitoring", apart=silent, apart_key="map.ind.silence_alarms")


def silent_sensors(ctx: MapContext) -> IndicatorValue:
    """Sensors in service and in scope that went silent (离线): their places are not watched; ``warn`` when one is."""
    sensors = list(ctx.session.scalars(select(Sensor).where(*_where(ctx))))
    silent = sum(c.state == SensorState.SILENT for c in sensor_conditions(ctx.session, sensors).values())
    return IndicatorValue(
        silent,
        detail=ctx.t("map.ind.detail.in_service", n=len(sensors)),
        level="warn" if silent else "ok",
        link="/monitoring",
    )


def _latest_mean(ctx: MapContext, kind: str, metric: str) -> tuple[float | None, int]:
    """The mean of the sensors' latest ``metric`` — of those still reporting: a silent station's last value is no
    longer the air or water there."""
    sensors = list(ctx.session.scalars(select(Sensor).where(*_where(ctx, Sensor.kind == kind))))
    conditions = sensor_conditions(ctx.session, sensors)
    values = [
        float(s.latest[metric]["value"])
        for s in sensors
        if s.latest and metric in s.latest and conditions[s.id].state != SensorState.SILENT
    ]
    return (round(mean(values), 1) if values else None), len(values)


def air_quality(ctx: MapContext) -> IndicatorValue:
    """The mean of the air stations' latest PM2.5 (µg/m³), graded by GB 3095-2012."""
    value, stations = _latest_mean(ctx, "air_quality", "pm25")
    if value is None:
        return IndicatorValue(None)
    level: Level = "ok" if value <= PM25_GOOD else "warn" if value <= PM25_POLLUTED else "alert"
    return IndicatorValue(
        value, detail=ctx.t("map.ind.detail.air_quality", n=stations), level=level, link="/monitoring?kind=air_quality"
    )


def water_quality(ctx: MapContext) -> IndicatorValue:
    """The mean of the water stations' latest dissolved oxygen (mg/L), graded by GB 3838-2002."""
    value, stations = _latest_mean(ctx, "water_quality", "do")
    if value is None:
        return IndicatorValue(None)
    level: Level = "ok" if value >= DO_CLASS_III else "warn" if value >= DO_CLASS_V else "alert"
    return IndicatorValue(
        value,
        detail=ctx.t("map.ind.detail.water_quality", n=stations),
        level=level,
        link="/monitoring?kind=water_quality",
    )


def congestion(ctx: MapContext) -> IndicatorValue:
    """The mean of the road segments' latest traffic performance index (交通运行指数, 0–10), graded as the index is:
    below 4 畅通 / 基本畅通, 4–6 轻度拥堵, 6 and more 中度 / 严重拥堵."""
    value, segments = _latest_mean(ctx, "traffic", "tpi")
    if value is None:
        return IndicatorValue(None)
    level: Level = "ok" if value < TPI_SLOW else "warn" if value < TPI_CONGESTED else "alert"
    return IndicatorValue(
        value,
        detail=ctx.t(f"map.ind.detail.congestion.{level}", n=segments),
        level=level,
        link="/monitoring?kind=traffic",
    )


register_layer(Layer("sensors", "map.layer.sensors", sensor_features, color="#7c4dcc", source="monitoring"))
register_layer(Layer("alarms", "map.layer.alarms", alarm_features, color="#e8910c", source="monitoring"))
register_indicator(Indicator("active_alarms", "map.ind.active_alarms", active_alarms, source="monitoring"))
register_indicator(
    Indicator("air_quality", "map.ind.air_quality", air_quality, fmt="number", unit="µg/m³", source="monitoring")
)
register_indicator(
    Indicator("water_quality", "map.ind.water_quality", water_quality, fmt="number", unit="mg/L", source="monitoring")
)
register_indicator(Indicator("silent_sensors", "map.ind.silent_sensors", silent_sensors, source="monitoring"))
register_indicator(Indicator("congestion", "map.ind.congestion", congestion, fmt="number", source="monitoring"))
