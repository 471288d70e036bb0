"""监测预警: sensors with their latest readings and state, open alarms with acknowledge / clear for the roles that
handle them (``alarms:handle``), each alarm linked to its order. Everyone sees the sensors of their own area, as
they see orders (``monitoring.service.sensor_scope``); the same service calls as ``/api/v1/alarms``."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.scope import scope_of
from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.errors import CityhubError, Conflict, InvalidTransition, NotFound
from cityhub.monitoring import chart, service
from cityhub.monitoring.models import Sensor
from cityhub.monitoring.rules import RuleKind, SensorKind, SensorState, SensorStatus, figure, is_confidence
from cityhub.monitoring.schemas import RuleCreate, RuleUpdate
from cityhub.monitoring.settings import get_monitoring_settings
from cityhub.org.service import unit_directory
from cityhub.web import machine_text, support
from cityhub.web.forms import field_errors, saved
from cityhub.web.i18n import LANGUAGES, Translator
from cityhub.web.support import FormBody, PageError, render

router = APIRouter(include_in_schema=False)

ALARMS_SHOWN = 200
SENSORS_SHOWN = 1000


def _sensor_filter(kind: str | None, scope: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    """The page's choice of sensors as conditions on :class:`Sensor` (a kind, the reader's scope)."""
    return [*([Sensor.kind == kind] if kind else []), *([] if scope is None else [scope])]


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring_page(request: Request, db: DbSession) -> Response:
    principal = support.require_user(request, db, permissions.ALARMS_READ)
    kind = request.query_params.get("kind") or None
    if kind not in {k.value for k in SensorKind}:
        kind = None
    scope = service.sensor_scope(scope_of(db, principal))
    alarms, more_alarms = service.list_alarms(
        db, active=True, kind=kind, scope=scope, limit=ALARMS_SHOWN, worst_first=True
    )
    recent, _ = service.list_alarms(db, active=False, kind=kind, scope=scope, limit=10)
    try:
        status = SensorStatus(request.query_params.get("status") or "active")
    except ValueError:
        status = SensorStatus.ACTIVE
    sensors = service.sensors_with_status(db, status, kind=kind, scope=scope, limit=SENSORS_SHOWN)
    conditions = service.sensor_conditions(db, sensors)
    units = unit_directory(db)
    return render(
        request,
        "monitoring.html",
        principal=principal,
        kinds=[k.value for k in SensorKind],
        kind=kind or "",
        status=status.value,
        statuses=[s.value for s in SensorStatus],
        alarms=alarms,
        more_alarms=more_alarms,
        recent=recent,
        sensors=sensors,
        conditions=conditions,
        silent=sum(c.state == SensorState.SILENT for c in conditions.values()),
        unit_names={u.id: u.name for u in units.values()},
        # The alarms of threshold rules, and apart from them the silence alarms: a dead battery is no flood.
        open_counts=service.open_alarm_severities(db, *_sensor_filter(kind, scope), kind=RuleKind.THRESHOLD),
        silence_alarms=sum(
            service.open_alarm_severities(db, *_sensor_filter(kind, scope), kind=RuleKind.SILENCE).values()
        ),
        here=f"{request.url.path}?{urlencode({'kind': kind or '', 'status': status.value})}",
        can_handle=permissions.allows(principal.role, permissions.ALARMS_HANDLE),
    )


# --------------------------------------------------------------------------------------------- sensor page

ALARMS_ON_SENSOR = 50
LATEST_SHOWN = 20


def _gap(points: list[tuple[datetime, float]], width: timedelta) -> timedelta:
    """How long a silence breaks the line: three buckets, or three of the sensor's usual intervals if longer (an
    hourly gauge over a day is a line, not 24 dots)."""
    steps = sorted(b[0] - a[0] for a, b in pairwise(points))
    usual = steps[len(steps) // 2] if steps else timedelta(0)
    return max(width, usual) * 3


def _sensor_charts(db: Session, t: Any, sensor: Any, window: str, alarms: list[dict[str, Any]]) -> list[Any]:
    end = utcnow()
    start = end - service.WINDOWS[window]
    tz = get_settings().tz
    charts = []
    for metric, unit in sensor.metrics.items():
        series = service.series_of(db, sensor=sensor, metric=metric, start=start, end=end)
        lines = []
        # A camera's confidence reads in percent on its axis and limits, as in the caption (until December 2026 they
        # read 0–1 under a caption of 88%–94%).
        sure = is_confidence(sensor.kind, metric)
        for _rule, spec in service.thresholds_of(db, sensor=sensor, metric=metric):
            shown = figure(spec.threshold, unit, confidence=sure)
            lines.append(chart.Threshold(spec.threshold, t("mon.chart.threshold", value=shown)))
            if spec.clear_threshold is not None and spec.clear_threshold != spec.threshold:
                label = t("mon.chart.clear_threshold", value=figure(spec.clear_threshold, unit, confidence=sure))
                lines.append(chart.Threshold(spec.clear_threshold, label, kind="clear"))
        marks = [
            chart.AlarmMark(
                a["raised_at"],
                machine_text.rule_name(t, a["rule_name"]),
                a["severity"],
                a["escalated_at"] is not None,
                a["id"],
            )
            for a in alarms
            if a["metric"] == metric
        ]
        drawn = chart.build(
            series.points,
            start=start,
            end=end,
            tz=tz,
            thresholds=lines,
            alarms=marks,
            gap=_gap(series.points, series.bucket_width),
            confidence=sure,
        )
        charts.append(
            {
                "metric": metric,
                "unit": unit,
                "chart": drawn,
                "count": series.count,
                "downsampled": series.downsampled,
                "low": min((v for _, v in series.points), default=None),
                "high": max((v for _, v in series.points), default=None),
            }
        )
    return charts


@router.get("/monitoring/sensors/{code}", response_class=HTMLResponse)
def sensor_page(request: Request, db: DbSession, code: str) -> Response:
    """One sensor (监测点): its facts, a chart per metric over 24 小时 / 7 天 / 30 天 with the rules' thresholds and the
    alarms raised, the latest readings, its alarms (open first) with their trail and orders. 404 outside the
    user's area, as the API."""
    principal = support.require_user(request, db, permissions.ALARMS_READ)
    scope = service.sensor_scope(scope_of(db, principal))
    found = service.list_sensors(db, scope=scope, code=code, limit=1)
    if not found:
        raise PageError(404, "err.page_not_found")
    sensor = found[0]
    window = request.query_params.get("window") or "24h"
    if window not in service.WINDOWS:
        window = "24h"
    alarms, more_alarms = service.list_alarms(db, sensor_code=code, limit=ALARMS_ON_SENSOR)
    alarms.sort(key=lambda a: a["state"] == "cleared")  # open first; stable: newest first within each
    events: dict[int, list[Any]] = {a["id"]: service.alarm_events(db, alarm_id=a["id"]) for a in alarms}
    units = unit_directory(db)
    t = support.translator(request)
    return render(
        request,
        "monitoring_sensor.html",
        principal=principal,
        sensor=sensor,
        condition=service.sensor_conditions(db, [sensor])[sensor.id],
        silent_default=get_monitoring_settings().sensor_silent_after_minutes,
        window=window,
        windows=list(service.WINDOWS),
        charts=_sensor_charts(db, t, sensor, window, alarms),
        readings=service.readings_of(db, sensor=sensor, limit=LATEST_SHOWN),
        alarms=alarms,
        more_alarms=more_alarms,
        events=events,
        unit_names={u.id: u.name for u in units.values()},
        can_handle=permissions.allows(principal.role, permissions.ALARMS_HANDLE),
        can_manage=permissions.allows(principal.role, permissions.SENSORS_MANAGE),
    )


def _sensor_action(request: Request, db: Any, form: Any, code: str, action: str) -> Response:
    principal = support.require_user(request, db, permissions.SENSORS_MANAGE, form=form)
    scope = service.sensor_scope(scope_of(db, principal))

    def act() -> object:
        if action == "retire":
            return service.retire(db, code=code, actor=principal.actor, reason=form.text("reason"), scope=scope)
        return service.reactivate(db, code=code, actor=principal.actor, scope=scope)

    done = "mon.sensor_retired" if action == "retire" else "mon.sensor_reactivated"
    return support.form_action(
        db,
        act,
        back=f"/monitoring/sensors/{code}",
        done=(done, {"code": code}),
        refused=("mon.sensor_unchanged", {"code": code}),
        refused_by=Conflict,
    )


@router.post("/monitoring/sensors/{code}/retire", response_class=HTMLResponse)
def retire_sensor(request: Request, db: DbSession, code: str, form: FormBody) -> Response:
    return _sensor_action(request, db, form, code, "retire")


@router.post("/monitoring/sensors/{code}/reactivate", response_class=HTMLResponse)
def reactivate_sensor(request: Request, db: DbSession, code: str, form: FormBody) -> Response:
    return _sensor_action(request, db, form, code, "reactivate")


def _handle(request: Request, db: Any, form: Any, alarm_id: int, action: str) -> Response:
    principal = support.require_user(request, db, permissions.ALARMS_HANDLE, form=form)
    scope = service.sensor_scope(scope_of(db, principal))
    handler = service.acknowledge if action == "acknowledge" else service.clear
    done = "mon.acknowledged" if action == "acknowledge" else "mon.cleared"
    return support.form_action(
        db,
        lambda: handler(db, alarm_id=alarm_id, actor=principal.actor, note=form.text("note"), scope=scope),
        back=support.safe_next(form.get("next"), "/monitoring"),
        done=(done, {"id": alarm_id}),
        refused=("mon.not_open", {"id": alarm_id}),
        refused_by=InvalidTransition,
    )


@router.post("/monitoring/alarms/{alarm_id:int}/acknowledge", response_class=HTMLResponse)
def acknowledge_alarm(request: Request, db: DbSession, alarm_id: int, form: FormBody) -> Response:
    return _handle(request, db, form, alarm_id, "acknowledge")


@router.post("/monitoring/alarms/{alarm_id:int}/clear", response_class=HTMLResponse)
def clear_alarm(request: Request, db: DbSession, alarm_id: int, form: FormBody) -> Response:
    return _handle(request, db, form, alarm_id, "clear")


# --------------------------------------------------------------------------------------------------- rules

RULE_FIELDS = (
    "name",
    "target",
    "metric",
    "comparison",
    "threshold",
    "clear_threshold",
    "of_capacity",
    "duration_min",
    "severity",
    "opens_order",
    "category",
    "urgency",
    "escalate_after_minutes",
    "active",
)


def _rule_values(rule: Any) -> dict[str, str]:
    def number(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    return {
        "name": rule.name,
        "metric": rule.metric,
        "comparison": rule.comparison,
        "threshold": number(rule.threshold),
        "clear_threshold": number(rule.clear_threshold),
        "of_capacity": "1" if rule.of_capacity else "",
        "duration_min": number(rule.duration_s / 60),
        "severity": rule.severity,
        "opens_order": "1" if rule.opens_order else "",
        "category": rule.category or "",
        "urgency": rule.urgency,
        "escalate_after_minutes": "" if rule.escalate_after_minutes is None else str(rule.escalate_after_minutes),
        "active": "1" if rule.active else "",
    }


def _metric_code(typed: str) -> str:
    """The metric a rule form names: its code, or its name in either language (积水深度 → depth) as the form offers
    them; anything else as typed (a sensor's own code), for the service to check."""
    for lang in LANGUAGES:
        for code, name in Translator(lang).named("metric").items():
            if typed.casefold() == name.casefold():
                return code
    return typed


def _rule_payload(form: Any, *, new: bool) -> dict[str, Any]:
    """A rule form as the service's input; the duration is typed in minutes."""
    minutes = form.get("duration_min").strip()
    try:
        duration = round(float(minutes) * 60) if minutes else 0
    except (ValueError, OverflowError):  # not a number, NaN, or infinite
        duration = -1  # refused by the schema, at its field
    data: dict[str, Any] = {
        "name": form.get("name").strip(),
        "threshold": form.get("threshold").strip(),
        "clear_threshold": form.text("clear_threshold"),
        "duration_s": duration,
        "severity": form.get("severity"),
        "opens_order": form.get("opens_order") == "1",
        "category": form.text("category"),
        "urgency": form.get("urgency"),
        # Empty: the default time (CITYHUB_ALARM_ESCALATE_AFTER_MINUTES); 0: never.
        "escalate_after_minutes": form.text("escalate_after_minutes"),
        "active": form.get("active") == "1",
    }
    if new:
        target = form.get("target")
        kind, _, code = target.partition(":")
        data |= {"sensor_kind": code if kind == "kind" else None, "sensor_code": code if kind == "sensor" else None}
        data |= {"metric": _metric_code(form.get("metric").strip()), "comparison": form.get("comparison")}
        data["of_capacity"] = form.get("of_capacity") == "1"
    return data


def _rule_units(rules: list[Any], sensors: list[Any]) -> dict[int, list[str]]:
    """The measurement units a rule's limits are read in: those its sensors in service report its metric in (a
    rule stores none — its numbers are in whatever each sensor sends). One unit is shown beside the limits; several
    are a warning: the same number is 15 cm at one sensor and 15 m at another."""
    units: dict[int, list[str]] = {}
    for rule in rules:
        found = {
            s.metrics[rule.metric]
            for s in sensors
            if s.active
            and rule.metric in s.metrics
            and (s.id == rule.sensor_id if rule.sensor_id else s.kind == rule.sensor_kind)
        }
        units[rule.id] = sorted(u for u in found if u)
    return units


def _rules_page(
    request: Request,
    db: Session,
    principal: Any,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    editing: int | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The rules page; ``typed``: what was typed into the form of the rule being edited (``editing``)."""
    rules = service.list_rules(db)
    sensors = service.list_sensors(db, limit=SENSORS_SHOWN)
    return render(
        request,
        "monitoring_rules.html",
        principal=principal,
        status_code=status_code,
        rules=rules,
        rule_units=_rule_units(rules, sensors),
        sensor_names={s.id: f"{s.name}（{s.code}）" for s in sensors},
        sensors=sensors,
        kinds=[k.value for k in SensorKind],
        # Offered to the metric field by name (its code the value): those the catalogues name and the sensors'.
        metrics=sorted(set(Translator(support.language(request)).named("metric")).union(*(s.metrics for s in sensors))),
        can_edit=permissions.allows(principal.role, permissions.SENSORS_MANAGE),
        values=values
        or {"severity": "warning", "urgency": "normal", "opens_order": "1", "active": "1", "comparison": ">"},
        errors=errors or {},
        editing=editing,
        edit_values={r.id: _rule_values(r) for r in rules},
        typed=typed or {},
        escalate_default=get_monitoring_settings().alarm_escalate_after_minutes,
        silent_default=get_monitoring_settings().sensor_silent_after_minutes,
        silence=RuleKind.SILENCE.value,
    )


@router.get("/monitoring/rules", response_class=HTMLResponse)
def rules_page(request: Request, db: DbSession) -> Response:
    """The alarm rules (报警规则): read by whoever sees the monitors, written by ``sensors:manage`` roles."""
    return _rules_page(request, db, support.require_user(request, db, permissions.ALARMS_READ))


@router.post("/monitoring/rules", response_class=HTMLResponse)
def create_rule(request: Request, db: DbSession, form: FormBody) -> Response:
    principal = support.require_user(request, db, permissions.SENSORS_MANAGE, form=form)
    t = support.translator(request)
    rule, errors = saved(
        db,
        t,
        lambda: service.create_rule(
            db, data=RuleCreate.model_validate(_rule_payload(form, new=True)), actor=principal.actor
        ),
    )
    if rule is None:
        return _rules_page(request, db, principal, values=form.values(RULE_FIELDS), errors=errors, status_code=422)
    return support.redirect("/monitoring/rules", flash=("mon.rule_created", {"name": rule.name}))


@router.post("/monitoring/rules/{rule_id:int}", response_class=HTMLResponse)
def update_rule(request: Request, db: DbSession, rule_id: int, form: FormBody) -> Response:
    """A rule's limits, duration, severity, order settings and activity; its metric and target stay."""
    principal = support.require_user(request, db, permissions.SENSORS_MANAGE, form=form)
    t = support.translator(request)
    try:
        payload = _rule_payload(form, new=False)
        if service.require_rule(db, rule_id=rule_id).kind == RuleKind.SILENCE:
            # Its form has no limits: each sensor's own time, else the setting.
            payload = {k: v for k, v in payload.items() if k not in ("threshold", "clear_threshold", "duration_s")}
        rule = service.update_rule(db, rule_id=rule_id, data=RuleUpdate.model_validate(payload), actor=principal.actor)
        db.commit()
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        errors = {f"{rule_id}:{k}": v for k, v in field_errors(t, exc).items()}
        # What was typed stays in the form (its metric and target are not in it: those of the rule).
        typed = form.values([f for f in RULE_FIELDS if f not in ("target", "metric")])
        return _rules_page(request, db, principal, errors=errors, editing=rule_id, typed=typed, status_code=422)
    return support.redirect("/monitoring/rules", flash=("mon.rule_updated", {"name": rule.name}))
