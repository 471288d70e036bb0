"""监测预警: sensors with their latest readings and state, open alarms with acknowledge / clear for the roles that
handle them (``alarms:handle``), each alarm linked to its order. Everyone sees the sensors of their own area, as
they see orders (``monitoring.service.sensor_scope``); the same service calls as ``/api/v1/alarms``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.scope import scope_of
from cityhub.errors import InvalidTransition, NotFound
from cityhub.monitoring import service
from cityhub.monitoring.rules import SensorKind
from cityhub.org.service import unit_directory
from cityhub.web import support
from cityhub.web.support import FormBody, render

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
