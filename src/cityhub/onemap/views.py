"""HTTP routes of the one map (一张图) under ``/api/v1/map``: the layer list, each layer as GeoJSON, the indicators.

Staff only (roles holding ``order:read``; citizens 403): every layer and figure is read within the caller's data
scope (:func:`cityhub.auth.scope.scope_of`, exactly as order lists), an order's title and point as their order view
shows it (masked per order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from cityhub.api.deps import CurrentPrincipal, DbSession, other_query_parameters
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.errors import NotFound, PermissionDenied, ValidationFailed
from cityhub.onemap import registry, service
from cityhub.onemap.registry import MapQuery
from cityhub.org.models import Role
from cityhub.timerange import RequestTime, answer_time
from cityhub.web.support import language
from cityhub.workorders.lifecycle import State

router = APIRouter(prefix="/map", tags=["one map"])
GEOJSON = "application/geo+json"
_KNOWN_PARAMS = {"bbox", "zoom", "category_id", "state", "since"}


def _staff(principal: CurrentPrincipal) -> Principal:
    if principal.role == Role.CITIZEN or not permissions.allows(principal.role, permissions.ORDER_READ):
        raise PermissionDenied("the one map is for staff", details={"permission": permissions.ORDER_READ})
    return principal


Staff = Annotated[Principal, Depends(_staff)]
BBoxQ = Annotated[
    str | None,
    Query(
        max_length=200,
        description="The view: west,south,east,north in degrees (GeoJSON order), e.g. 113.15,23.14,113.50,23.45.",
    ),
]
ZoomQ = Annotated[
    int | None,
    Query(
        ge=0,
        le=22,
        description=f"The map's zoom level (Leaflet). The orders layer aggregates into grid cells below "
        f"{service.POINT_ZOOM} or when more than {service.MAX_POINTS} orders are in view. "
        f"Default {service.DEFAULT_ZOOM}.",
    ),
]
SinceQ = Annotated[RequestTime | None, Query(description="Only orders created at or after this time (ISO 8601).")]


def _query(
    request: Request,
    bbox: str | None,
    zoom: int | None,
    category_id: int | None,
    state: list[State] | None,
    since: datetime | None,
) -> MapQuery:
    if since is not None and since.tzinfo is None:
        raise ValidationFailed("since needs a time zone (e.g. 2026-12-01T00:00:00+08:00)", details={"field": "since"})
    extra = {k: v for k, v in request.query_params.items() if k not in _KNOWN_PARAMS}
    return MapQuery(
        bbox=service.parse_bbox(bbox),
        zoom=zoom,
        category_id=category_id,
        states=tuple(s.value for s in state or ()),
        since=since,
        extra=extra,
    )


@router.get("/layers")
def list_layers(_principal: Staff) -> dict[str, Any]:
    """The map's layers in drawing order: name, title (an i18n key), colour, whether it is drawn by default and
    whether it is available (a layer the monitoring package has not connected yet is listed, not served)."""
    return {"layers": [layer.describe() for layer in registry.layers()]}


# The query parameters beyond the signature go to plug-in layers (MapQuery.extra).
@router.get("/layers/{name}", response_class=JSONResponse, dependencies=[Depends(other_query_parameters)])
def layer_features(
    name: str,
    request: Request,
    db: DbSession,
    principal: Staff,
    bbox: BBoxQ = None,
    zoom: ZoomQ = None,
    category_id: Annotated[int | None, Query(ge=1, description="Only this category and its subcategories.")] = None,
    state: Annotated[list[State] | None, Query(description="Order states (default: the open ones).")] = None,
    since: SinceQ = None,
) -> JSONResponse:
    """One layer as a GeoJSON FeatureCollection, within the caller's data scope (layers use the filters that apply
    to them: the orders layer all of them)."""
    layer = registry.layer(name)
    if layer is None:
        known = ", ".join(x.name for x in registry.layers())
        raise NotFound(f"no map layer '{name}' (layers: {known})")
    if layer.features is None:
        raise NotFound(f"map layer '{name}' is not connected yet (provided by {layer.source})")
    query = _query(request, bbox, zoom, category_id, state, since)
    # A feature's text (a sensor's readings, an alarm's summary) in the reader's language, as the page's.
    ctx = service.context(db, principal, scope_of(db, principal), query, lang=language(request))
    data = layer.features(ctx)
    db.commit()
    return JSONResponse({**data, "layer": name}, media_type=GEOJSON)


@router.get("/indicators")
def indicators(request: Request, db: DbSession, principal: Staff) -> dict[str, Any]:
    """The live figures of the map's side panel within the caller's scope: orders today, open, overdue, the on-time
    completion rate of the last 30 days (the assessment's definition), active hotspots; those of the monitoring
    package (alarms, air and water quality, traffic congestion) are listed with ``available: false`` until it is
    installed; a figure without sensors of its kind is null."""
    ctx = service.context(db, principal, scope_of(db, principal), MapQuery(), lang=language(request))
    values = service.compute_indicators(ctx)
    db.commit()
    return {"as_of": answer_time(ctx.now), "scoped": not ctx.scope.everything, "indicators": values}
