"""监测预警: sensors with their latest readings and state, open alarms with acknowledge / clear for the roles that
handle them (``alarms:handle``), each alarm linked to its order. Everyone sees the sensors of their own area, as
they see orders (``monitoring.service.sensor_scope``); the same service calls as ``/api/v1/alarms``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.scope import scope_of
from cityhub.errors import CityhubError, InvalidTransition, NotFound
from cityhub.monitoring import service
from cityhub.monitoring.rules import SensorKind
from cityhub.monitoring.schemas import RuleCreate, RuleUpdate
from cityhub.org.service import unit_directory
from cityhub.web import support
from cityhub.web.forms import field_errors, saved
from cityhub.web.support import FormBody, PageError, render

router = APIRouter(include_in_schema=False)

ALARMS_SHOWN = 200
SENSORS_SHOWN = 1000


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring_page(request: Request, db: DbSession) -> Response:
    principal = support.require_user(request, db, permissions.ALARMS_READ)
    kind = request.query_params.get("kind") or None
    if kind not in {k.value for k in SensorKind}:
        kind = None
    scope = service.sensor_scope(scope_of(db, principal))
    alarms, more_alarms = service.list_alarms(db, active=True, kind=kind, scope=scope, limit=ALARMS_SHOWN)
    recent, _ = service.list_alarms(db, active=False, kind=kind, scope=scope, limit=10)
    sensors = service.list_sensors(db, kind=kind, scope=scope, limit=SENSORS_SHOWN)
    open_counts = service.open_alarm_counts(db, [s.id for s in sensors])
    units = unit_directory(db)
    return render(
        request,
        "monitoring.html",
        principal=principal,
        kinds=[k.value for k in SensorKind],
        kind=kind or "",
        alarms=alarms,
        more_alarms=more_alarms,
        recent=recent,
        sensors=sensors,
        open_counts=open_counts,
        unit_names={u.id: u.name for u in units.values()},
        critical=sum(1 for a in alarms if a["severity"] == "critical"),
        can_handle=permissions.allows(principal.role, permissions.ALARMS_HANDLE),
    )


def _handle(request: Request, db: Any, form: Any, alarm_id: int, action: str) -> Response:
    principal = support.require_user(request, db, permissions.ALARMS_HANDLE)
    support.check_csrf(request, principal, form)
    scope = service.sensor_scope(scope_of(db, principal))
    handler = service.acknowledge if action == "acknowledge" else service.clear
    back = support.safe_next(form.get("next"), "/monitoring")
    try:
        handler(db, alarm_id=alarm_id, actor=principal.actor, note=form.text("note"), scope=scope)
        db.commit()
    except NotFound:
        raise support.PageError(404, "err.page_not_found") from None
    except InvalidTransition:
        db.rollback()
        return support.redirect(back, flash=("mon.not_open", {"id": alarm_id}))
    done = "mon.acknowledged" if action == "acknowledge" else "mon.cleared"
    return support.redirect(back, flash=(done, {"id": alarm_id}))


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
        "active": "1" if rule.active else "",
    }


def _rule_payload(form: Any, *, new: bool) -> dict[str, Any]:
    """A rule form as the service's input; the duration is typed in minutes."""
    minutes = form.get("duration_min").strip()
    try:
        duration = round(float(minutes) * 60) if minutes else 0
    except ValueError:
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
        "active": form.get("active") == "1",
    }
    if new:
        target = form.get("target")
        kind, _, code = target.partition(":")
        data |= {"sensor_kind": code if kind == "kind" else None, "sensor_code": code if kind == "sensor" else None}
        data |= {"metric": form.get("metric").strip(), "comparison": form.get("comparison")}
        data["of_capacity"] = form.get("of_capacity") == "1"
    return data


def _rules_page(
    request: Request,
    db: Session,
    principal: Any,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    editing: int | None = None,
    status_code: int = 200,
) -> Response:
    rules = service.list_rules(db)
    sensors = service.list_sensors(db, limit=SENSORS_SHOWN)
    return render(
        request,
        "monitoring_rules.html",
        principal=principal,
        status_code=status_code,
        rules=rules,
        sensor_names={s.id: f"{s.name}（{s.code}）" for s in sensors},
        sensors=sensors,
        kinds=[k.value for k in SensorKind],
        can_edit=permissions.allows(principal.role, permissions.SENSORS_MANAGE),
        values=values
        or {"severity": "warning", "urgency": "normal", "opens_order": "1", "active": "1", "comparison": ">"},
        errors=errors or {},
        editing=editing,
        edit_values={r.id: _rule_values(r) for r in rules},
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
        db, t, lambda: service.create_rule(db, data=RuleCreate.model_validate(_rule_payload(form, new=True)))
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
        rule = service.update_rule(db, rule_id=rule_id, data=RuleUpdate.model_validate(_rule_payload(form, new=False)))
        db.commit()
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        errors = {f"{rule_id}:{k}": v for k, v in field_errors(t, exc).items()}
        return _rules_page(request, db, principal, errors=errors, editing=rule_id, status_code=422)
    return support.redirect("/monitoring/rules", flash=("mon.rule_updated", {"name": rule.name}))
