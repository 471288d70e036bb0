"""HTTP routes of monitoring: sensors and alarm rules (administrators), readings (API clients with the
``sensors:write`` scope, or administrators), alarms (staff in their data scope)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from starlette.concurrency import run_in_threadpool

from cityhub.api.credentials import API_KEY, BEARER, takes
from cityhub.api.deps import (
    CurrentActor,
    CurrentPrincipal,
    DbSession,
    ListPaging,
    ListPagingOf50,
    Paging,
    get_principal,
    missing_credential,
    require,
)
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.auth.settings import get_auth_settings
from cityhub.db import utcnow
from cityhub.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cityhub.monitoring import service
from cityhub.monitoring.rules import AlarmState, SensorKind, SensorStatus, Severity
from cityhub.monitoring.schemas import (
    AlarmAction,
    AlarmEventRead,
    AlarmPage,
    AlarmRead,
    IngestResult,
    ReadingsIn,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    SensorCreate,
    SensorRead,
    SensorRetire,
    SensorUpdate,
    SeriesBucket,
    SeriesPoint,
    SeriesRead,
)
from cityhub.monitoring.settings import get_monitoring_settings
from cityhub.sharing.http import MeteredDb, MeteredRoute, authorize
from cityhub.timerange import RequestTime

READ = Depends(require(permissions.ALARMS_READ))
MANAGE = Depends(require(permissions.SENSORS_MANAGE))
HANDLE = Depends(require(permissions.ALARMS_HANDLE))

router = APIRouter(prefix="/sensors", tags=["monitoring"])
# Readings come from machines with API keys: their calls are counted per client like the data-sharing API's. Their
# session is the metered one (MeteredDb), which MeteredRoute commits before it counts the call: with the request's
# write still open, the count would wait for SQLite's write lock that the request itself holds.
readings_router = APIRouter(prefix="/sensors", tags=["monitoring"], route_class=MeteredRoute)
rules_router = APIRouter(prefix="/alarm-rules", tags=["monitoring"], dependencies=[Depends(get_principal)])
alarms_router = APIRouter(prefix="/alarms", tags=["monitoring"], dependencies=[Depends(get_principal)])


def _scope(db: Any, principal: Principal) -> Any:
    return service.sensor_scope(scope_of(db, principal))


def _read(db: Any, sensors: list[Any]) -> list[SensorRead]:
    """The sensors as the API shows them, each with its status (silent since when, alarming, …) now."""
    conditions = service.sensor_conditions(db, sensors)
    return [
        SensorRead.model_validate(s).model_copy(
            update={
                "status": conditions[s.id].state,
                "silent_since": conditions[s.id].silent_since,
                "placed": s.unit_id is not None,
                "warnings": [] if s.unit_id is not None else [service.UNPLACED],
            }
        )
        for s in sensors
    ]


def _read_one(db: Any, sensor: Any) -> SensorRead:
    return _read(db, [sensor])[0]


@takes(BEARER, API_KEY)
async def reading_writer(
    request: Request,
    db: MeteredDb,
    x_api_key: Annotated[str | None, Header(description="API key of a client with the sensors:write scope")] = None,
) -> str:
    """An API client holding ``sensors:write`` (``X-API-Key``), or a signed-in person with ``sensors:manage``."""
    if x_api_key:
        caller = await run_in_threadpool(authorize, request, raw_key=x_api_key, scope="sensors:write")
        return f"client:{caller.client_name}"
    if not request.headers.get("authorization") and not request.cookies.get(get_auth_settings().session_cookie_name):
        raise missing_credential(request, takes=", or an API key of scope sensors:write in X-API-Key")
    principal = await get_principal(request, db)
    if not permissions.allows(principal.role, permissions.SENSORS_MANAGE):
        raise PermissionDenied(
            f"role {principal.role.value} may not push readings", details={"permission": permissions.SENSORS_MANAGE}
        )
    return f"user:{principal.username}"


Writer = Annotated[str, Depends(reading_writer)]


def _check_size(body: ReadingsIn) -> None:
    limit = get_monitoring_settings().reading_batch_max
    if len(body.readings) > limit:
        raise ValidationFailed(
            f"{len(body.readings)} readings in one request; at most {limit} (CITYHUB_READING_BATCH_MAX)",
            details={"field": "readings"},
        )


# --------------------------------------------------------------------------------------------------- sensors


@router.get("", response_model=list[SensorRead], dependencies=[READ])
def list_sensors(
    db: DbSession,
    principal: CurrentPrincipal,
    page: ListPagingOf50,
    kind: SensorKind | None = None,
    status_: Annotated[
        SensorStatus,
        Query(
            alias="status",
            description="in service (default); those in service whose status now is normal, alarming or silent (离线); "
            "retired (停用); or all",
        ),
    ] = SensorStatus.ACTIVE,
    active: Annotated[
        bool | None, Query(deprecated=True, description="the earlier filter: true in service, false retired")
    ] = None,
) -> list[SensorRead]:
    """Sensors in the caller's area (a street: its own and its communities'), by code, with their latest reading and
    ``status`` now (normal, alarming, silent — no reading for longer than ``silent_after_minutes`` or the default, since
    ``silent_since`` — or retired);
    those in service unless ``status`` (or the earlier ``active``) says otherwise — ``status=silent`` lists the silent
    ones; 50 unless ``limit`` says more, the count in ``X-Total-Count`` and the next page in ``Link``."""
    scope = _scope(db, principal)
    if active is None and status_.state is not None:
        return _read(db, page.of(service.sensors_in_state(db, status_.state, kind=kind, scope=scope)))
    query = service.sensors_query(kind=kind, active=status_.active if active is None else active, scope=scope)
    return _read(db, list(page.scalars(db, query)))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SensorRead, dependencies=[MANAGE])
def create_sensor(body: SensorCreate, db: DbSession, actor: CurrentActor) -> SensorRead:
    """Register a sensor; its responsible unit defaults to the community (else street) where it stands."""
    return _read_one(db, service.create_sensor(db, data=body, actor=actor))


def _visible_sensor(db: Any, principal: Principal, code: str) -> Any:
    found = service.list_sensors(db, scope=_scope(db, principal), limit=1, code=code)
    if not found:
        raise NotFound(f"sensor '{code}' not found")
    return found[0]


@router.get("/{code}", response_model=SensorRead, dependencies=[READ])
def get_sensor(code: str, db: DbSession, principal: CurrentPrincipal) -> SensorRead:
    """One sensor (404 outside the caller's area, as a missing one)."""
    return _read_one(db, _visible_sensor(db, principal, code))


@router.patch("/{code}", response_model=SensorRead, dependencies=[MANAGE])
def update_sensor(code: str, body: SensorUpdate, db: DbSession, actor: CurrentActor) -> SensorRead:
    """Change a sensor; ``active`` false retires it and true reactivates it, as the two actions below do."""
    return _read_one(db, service.update_sensor(db, code=code, data=body, actor=actor))


@router.post("/{code}/retire", response_model=SensorRead, dependencies=[MANAGE])
def retire_sensor(
    code: str, db: DbSession, principal: CurrentPrincipal, actor: CurrentActor, body: SensorRetire | None = None
) -> SensorRead:
    """Retire a sensor removed from the street (停用): its history stays, its open alarms are cleared (the reason in
    their trail and on their orders), its readings are refused (409) until it is reactivated, and it leaves the map
    and the lists (``status=retired`` shows it). 409 when it is retired already."""
    sensor = service.retire(
        db, code=code, actor=actor, reason=body.reason if body else None, scope=_scope(db, principal)
    )
    return _read_one(db, sensor)


@router.post("/{code}/reactivate", response_model=SensorRead, dependencies=[MANAGE])
def reactivate_sensor(code: str, db: DbSession, principal: CurrentPrincipal, actor: CurrentActor) -> SensorRead:
    """Put a retired sensor back in service (启用); 409 when it is in service."""
    return _read_one(db, service.reactivate(db, code=code, actor=actor, scope=_scope(db, principal)))


@router.get("/{code}/series", response_model=SeriesRead, dependencies=[READ])
def sensor_series(
    code: str,
    db: DbSession,
    principal: CurrentPrincipal,
    metric: Annotated[str | None, Query(max_length=40, description="default: the sensor's only metric")] = None,
    from_: Annotated[
        RequestTime | None, Query(alias="from", description="ISO 8601 with zone; default: to − 24 h")
    ] = None,
    to: Annotated[RequestTime | None, Query(description="ISO 8601 with zone; default: now")] = None,
    buckets: Annotated[int, Query(ge=1, le=service.SERIES_MAX_BUCKETS)] = service.SERIES_BUCKETS,
) -> SeriesRead:
    """A metric's readings over a window for a chart: every reading when there are at most two per bucket, else each
    bucket's lowest and highest reading at their own times (a spike is kept), with per-bucket count, min, max and
    mean. At most 400 days."""
    sensor = _visible_sensor(db, principal, code)
    if metric is None:
        if len(sensor.metrics) != 1:
            raise ValidationFailed(
                f"sensor '{code}' has several metrics ({', '.join(sensor.metrics)}): name one",
                details={"field": "metric"},
            )
        metric = next(iter(sensor.metrics))
    end = to or utcnow()
    start = from_ or end - timedelta(hours=24)
    series = service.series_of(db, sensor=sensor, metric=metric, start=start, end=end, buckets=buckets)
    return SeriesRead(
        sensor_code=sensor.code,
        metric=metric,
        unit=sensor.metrics.get(metric, ""),
        start=start,
        end=end,
        count=series.count,
        downsampled=series.downsampled,
        points=[SeriesPoint(at=at, value=value) for at, value in series.points],
        buckets=[
            SeriesBucket(start=b.start, end=b.end, count=b.count, min=b.min, max=b.max, mean=b.mean)
            for b in series.buckets
        ],
    )


@router.get("/{code}/readings", dependencies=[READ])
def sensor_readings(
    code: str,
    db: DbSession,
    principal: CurrentPrincipal,
    metric: str | None = None,
    since: RequestTime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    """The sensor's readings, newest first."""
    sensor = _visible_sensor(db, principal, code)
    rows = service.readings_of(db, sensor=sensor, metric=metric, since=since, limit=limit)
    return [{"metric": r.metric, "measured_at": r.measured_at, "value": r.value} for r in rows]


@readings_router.post("/readings", response_model=IngestResult)
def push_batch(body: ReadingsIn, db: MeteredDb, _writer: Writer) -> IngestResult:
    """Readings of many sensors, each naming its ``sensor_code``. Bad readings are reported by index and field in
    ``rejected``; the good ones are stored and evaluated (200 even when some were rejected)."""
    _check_size(body)
    return service.ingest(db, items=body.readings, known_fields_only=True)


@readings_router.post("/{code}/readings", response_model=IngestResult)
def push_readings(code: str, body: ReadingsIn, db: MeteredDb, _writer: Writer) -> IngestResult:
    """Readings of one sensor (items need not repeat its code); 409 for a retired sensor."""
    _check_size(body)
    sensor = service.get_sensor(db, code=code)
    if sensor is None:
        raise NotFound(f"sensor '{code}' not found")
    if not sensor.active:
        raise Conflict(service.retired_message(sensor), details={"field": "code", "sensor_code": code})
    return service.ingest(db, items=body.readings, sensor_code=code, known_fields_only=True)


# ------------------------------------------------------------------------------------------------------ rules


@rules_router.get("", response_model=list[RuleRead], dependencies=[READ])
def list_rules(db: DbSession, page: ListPaging, active: bool | None = None) -> list[RuleRead]:
    """Alarm rules by id; optionally paged."""
    return [RuleRead.model_validate(r) for r in page.scalars(db, service.rules_query(active=active))]


@rules_router.post("", status_code=status.HTTP_201_CREATED, response_model=RuleRead, dependencies=[MANAGE])
def create_rule(body: RuleCreate, db: DbSession, actor: CurrentActor) -> RuleRead:
    """A threshold rule for every sensor of a kind, or for one sensor (which then replaces its kind's rules on that
    metric)."""
    return RuleRead.model_validate(service.create_rule(db, data=body, actor=actor))


@rules_router.get("/{rule_id}", response_model=RuleRead, dependencies=[READ])
def get_rule(rule_id: int, db: DbSession) -> RuleRead:
    return RuleRead.model_validate(service.require_rule(db, rule_id=rule_id))


@rules_router.patch("/{rule_id}", response_model=RuleRead, dependencies=[MANAGE])
def update_rule(rule_id: int, body: RuleUpdate, db: DbSession, actor: CurrentActor) -> RuleRead:
    """Change limits, duration, severity, order settings or the active flag; applies from the next reading (each
    change is in the configuration log, ``GET /api/v1/admin/log``). Deactivating a rule clears its open alarms."""
    return RuleRead.model_validate(service.update_rule(db, rule_id=rule_id, data=body, actor=actor))


# ----------------------------------------------------------------------------------------------------- alarms


@alarms_router.get("", response_model=AlarmPage, dependencies=[READ])
def list_alarms(
    db: DbSession,
    principal: CurrentPrincipal,
    page: Paging,
    active: Annotated[bool | None, Query(description="true: open (active or acknowledged); false: cleared")] = None,
    state: AlarmState | None = None,
    sensor: Annotated[str | None, Query(max_length=64, description="sensor code")] = None,
    kind: SensorKind | None = None,
    severity: Severity | None = None,
) -> AlarmPage:
    """Alarms of the sensors in the caller's area, newest first."""
    items, has_more = service.list_alarms(
        db,
        active=active,
        state=state,
        sensor_code=sensor,
        kind=kind,
        severity=severity,
        scope=_scope(db, principal),
        limit=page.limit,
        offset=page.offset,
    )
    return AlarmPage(
        items=[AlarmRead.model_validate(i) for i in items], limit=page.limit, offset=page.offset, has_more=has_more
    )


@alarms_router.get("/{alarm_id}", response_model=AlarmRead, dependencies=[READ])
def get_alarm(alarm_id: int, db: DbSession, principal: CurrentPrincipal) -> AlarmRead:
    alarm = service.require_alarm(db, alarm_id=alarm_id, scope=_scope(db, principal))
    return AlarmRead.model_validate(service.describe_alarm(db, alarm))


@alarms_router.get("/{alarm_id}/events", response_model=list[AlarmEventRead], dependencies=[READ])
def alarm_events(alarm_id: int, db: DbSession, principal: CurrentPrincipal, page: ListPaging) -> list[AlarmEventRead]:
    """The alarm's trail, oldest first: raised, order opened, acknowledged, cleared — by whom and when. Optionally
    paged."""
    service.require_alarm(db, alarm_id=alarm_id, scope=_scope(db, principal))
    return [AlarmEventRead.model_validate(e) for e in page.scalars(db, service.alarm_events_query(alarm_id=alarm_id))]


@alarms_router.post("/{alarm_id}/acknowledge", response_model=AlarmRead, dependencies=[HANDLE])
def acknowledge(
    alarm_id: int, db: DbSession, principal: CurrentPrincipal, actor: CurrentActor, body: AlarmAction | None = None
) -> AlarmRead:
    """Acknowledge an active alarm (确认): it stays open and keeps counting."""
    alarm = service.acknowledge(
        db, alarm_id=alarm_id, actor=actor, note=body.note if body else None, scope=_scope(db, principal)
    )
    return AlarmRead.model_validate(service.describe_alarm(db, alarm))


@alarms_router.post("/{alarm_id}/clear", response_model=AlarmRead, dependencies=[HANDLE])
def clear(
    alarm_id: int, db: DbSession, principal: CurrentPrincipal, actor: CurrentActor, body: AlarmAction | None = None
) -> AlarmRead:
    """Clear an open alarm (解除); noted on its order. While the readings still breach, the rule raises again only
    after they have recovered."""
    alarm = service.clear(
        db, alarm_id=alarm_id, actor=actor, note=body.note if body else None, scope=_scope(db, principal)
    )
    return AlarmRead.model_validate(service.describe_alarm(db, alarm))
