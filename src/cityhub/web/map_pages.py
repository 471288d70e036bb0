"""The one map, one screen (一张图 / 大屏): ``/map`` and its big-screen mode ``/map?screen=1``.

The page draws the layers of :mod:`cityhub.onemap.registry` with Leaflet (from npm, ``web/vendor.py``; no tile server:
the district outline and the units are the base) from ``/api/v1/map/layers/{name}``, which the browser reads with the
same session cookie, so the map shows exactly the caller's data scope. The indicator panel is rendered here
(``/map/panel``, the fragment ``static/map.js`` fetches again every ``REFRESH_SECONDS``). Staff only, as the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.config import get_settings
from cityhub.onemap import registry, service
from cityhub.onemap.registry import MapQuery
from cityhub.org.models import Role, Unit
from cityhub.web import support
from cityhub.web.i18n import COUNT_PARAMS
from cityhub.web.support import PageError, render
from cityhub.workorders.lifecycle import State

router = APIRouter(include_in_schema=False)
REFRESH_SECONDS = 30
LEAFLET = ("leaflet/leaflet.js", "leaflet/leaflet.css")


def _staff(request: Request, db: DbSession) -> Principal:
    principal = support.require_user(request, db, permissions.ORDER_READ)
    if principal.role == Role.CITIZEN:
        raise PageError(403, "err.forbidden")
    return principal


def map_ready() -> bool:
    """Whether Leaflet's files are served (``make install``): without them no map is drawn, in words or at all."""
    return all(support.vendor.available().get(name, False) for name in LEAFLET)


# The small map of one place (static/map.js ``placeMap``): its words, by the key of map.js's ``T``.
_PLACE_TEXT = ("asking", "placed", "nowhere", "unoutlined", "failed")
DISTRICT_CENTRE = (23.29, 113.32)  # where the one map opens before the outline is drawn


def zoom_titles(t: Any) -> dict[str, str]:
    """The words of a map's zoom buttons, their title and what a screen reader says (Leaflet's own are English:
    Zoom in, Zoom out — on a Chinese page too), for both maps."""
    return {"in": t("map.zoom.in"), "out": t("map.zoom.out")}


def place_map(
    t: Any,
    *,
    lat: float | None = None,
    lng: float | None = None,
    pick: dict[str, str] | None = None,
    citizen: bool = False,
    around: tuple[int | None, ...] | None = None,
) -> dict[str, Any] | None:
    """The configuration of a small map of one place: the point (``lat``, ``lng``) over the units' outlines the one
    map draws (``GET /api/v1/places/boundaries``), in the one map's colours; ``pick``: the ids of the form's ``lat``,
    ``lng``, the line saying where the point lies (``GET /api/v1/places/at``) and the button clearing it — a tap puts
    the point there. None without Leaflet's files (the page then shows the numbers and the form its fields alone).
    ``citizen``: its words as a citizen reads them (``t.theirs``: no outline entered is the staff's matter).
    ``around``: the point is shown where it lies in the district rather than zoomed to — the view fits the district's
    outline and the point, and the outlines of the units given (the order's street and community, ids; None left out)
    are drawn stronger: without background tiles a point zoomed to is a dot on grey (a citizen's appeal page)."""
    if not map_ready():
        return None
    layers = {name: registry.layer(name) for name in ("base", "units", "orders")}
    return {
        "boundaries": "/api/v1/places/boundaries",
        "at": "/api/v1/places/at",
        "lat": lat,
        "lng": lng,
        "centre": list(DISTRICT_CENTRE),
        "pick": pick,
        "around": None if around is None else [i for i in around if i is not None],
        "layers": {name: {"name": name, "color": layer.color} for name, layer in layers.items() if layer is not None},
        "text": {key: t.theirs(f"place_map.js.{key}", citizen) for key in _PLACE_TEXT},
        "zoom": zoom_titles(t),
    }


def _panel(request: Request, db: DbSession, principal: Principal, *, quick: bool = False) -> dict[str, Any]:
    """The indicators; ``quick`` (the page itself): figures that take seconds are left to the panel's first fetch.
    Their texts (``ctx.t``) in the reader's language, as the layers' popups."""
    ctx = service.context(
        db, principal, scope_of(db, principal), MapQuery(), quick=quick, lang=support.language(request)
    )
    values = service.compute_indicators(ctx)
    return {"indicators": values, "as_of": ctx.now, "partial": any(v["computing"] for v in values)}


def _scope_name(db: DbSession, principal: Principal) -> str | None:
    """The caller's unit when their map is limited to it (None: the whole district)."""
    if scope_of(db, principal).everything or principal.unit_id is None:
        return None
    unit = db.get(Unit, principal.unit_id)
    return unit.name if unit else None


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request, db: DbSession) -> Response:
    """一张图: the district's map with its layers, legend and filters beside the live indicators; ``?screen=1`` is
    the big-screen mode (full window, dark, large figures, no menu) for a wall display."""
    principal = _staff(request, db)
    t = support.translator(request)
    screen = request.query_params.get("screen", "") in {"1", "true", "yes"}
    layers = registry.layers()
    states = {s.value: t.label("state", s) for s in State}
    js_text = {
        key: t(f"map.js.{key}")
        for key in (
            "open",
            "overdue",
            "today",
            "orders_in_cell",
            "cell_street",
            "cell_streets",
            "cell_rank",
            "cell_part",
            "zoom_in",
            "view_orders",
            "view_order",
            "view_monitoring",
            "silent",
            "heat",
            "reports",
            "expected",
            "updated",
            "load_failed",
            "session_ended",
            "no_leaflet",
            "finding_recurring",
            "finding_rising",
            "hot_topic",
            "masked",
            "order_count",
            "street",
            "community",
            "list_points",
            "list_more",
            "list_cells",
            "cell_item",
            "list_none",
            "list_off",
        )
    }
    context = {
        "principal": principal,
        "layers": layers,
        "map_ready": map_ready(),
        "map_config": {
            "refresh": REFRESH_SECONDS,
            # The district's time zone: the big screen's clock and "updated at" read as the server's times do, on a
            # screen whose own zone is another (a browser set to UTC shows the same hour as the panel).
            "timeZone": get_settings().timezone,
            "text": js_text,
            "zoom": zoom_titles(t),
            # Counts in the script's own messages written as the pages write them (i18n.count_text).
            "counts": {"group": t("num.group"), "names": sorted(COUNT_PARAMS)},
            "states": states,
            "screen": screen,
            "scoped": not scope_of(db, principal).everything,
            "pointZoom": service.POINT_ZOOM,
            "layers": [{**layer.describe(), "title": t(layer.title_key)} for layer in layers if not layer.pending],
        },
        "scope_name": _scope_name(db, principal),
        "categories": [c for c in support.active_categories(db) if c.level <= 2],
        "screen": screen,
        **_panel(request, db, principal, quick=True),
    }
    return render(request, "screen.html" if screen else "map.html", **context)


@router.get("/map/panel", response_class=HTMLResponse)
def map_panel(request: Request, db: DbSession) -> Response:
    """The indicator panel alone (the fragment the page fetches every 30 seconds)."""
    principal = _staff(request, db)
    screen = request.query_params.get("screen", "") in {"1", "true", "yes"}
    return render(request, "_map_panel.html", principal=principal, screen=screen, **_panel(request, db, principal))
