"""The one map's built-in layers and indicators (一张图): base outline, units, orders, hotspots; the live figures.

Every function reads within the caller's data scope (:mod:`cityhub.auth.scope`, the clause order lists use) and
shows an order's text and point as the caller's order views do (:meth:`OrderRead.masked`: the title through
``masking.scrub_text``, the point to two decimals, for whoever sees that order masked).

Coordinates are GeoJSON ``[lng, lat]``. The packaged district outline is GCJ-02 (Aliyun DataV); orders carry
whatever their channel sent — the demo generator's points are a rough "WGS-84-ish" box around each street's
approximate centre, so on the map they may lie a few hundred metres off the outline (and the demo's box spills
over it); with no tile layer nothing else is misaligned.

Figures that cost more than an index range — the units' representative points, the risk findings, the on-time
rate, the orders layer's grid cells — are kept per process for a short time (:class:`_TtlCache`), keyed by database
and data scope (and, for the cells, the view and filters).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any, Literal, TypeVar

from sqlalchemy import Float, Integer, case, cast, func, literal_column, select, text
from sqlalchemy.orm import Session

from cityhub.auth import permissions
from cityhub.auth.scope import Scope, sees_personal_data_of
from cityhub.caching import TtlCache
from cityhub.config import get_settings
from cityhub.errors import ValidationFailed
from cityhub.masking import coarsen_coordinate, scrub_text
from cityhub.onemap.registry import (
    BBox,
    FeatureCollection,
    Indicator,
    IndicatorValue,
    Layer,
    MapContext,
    register_indicator,
    register_layer,
)
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.org.service import unit_directory
from cityhub.timerange import answer_time
from cityhub.workorders.lifecycle import OPEN_STATES, State
from cityhub.workorders.models import OVERDUE_NOW_SQL, Order

log = logging.getLogger(__name__)
OVERSEERS = frozenset({Role.LEADER, Role.SUPERVISOR, Role.ADMIN})  # who may open the dashboard
# At this zoom level and closer the orders layer shows single orders (when no more than MAX_POINTS are in view).
POINT_ZOOM = 14
MAX_POINTS = 2000
DEFAULT_ZOOM = 11  # the whole district on a screen
MASKED_CELL_DEGREES = 0.01  # the smallest grid cell for a caller who sees orders masked (points at two decimals)
CELL_PIXELS = 48  # a grid cell is about this many screen pixels wide at the requested zoom
UNIT_POINT_DAYS = 365  # a unit without a boundary stands at the mean of its orders' points of this many days
UNIT_POINT_MIN_ORDERS = 5  # … when it has at least this many (a mean of one order would be that order's point)
ON_TIME_DAYS = 30  # the on-time rate of the last 30 days, as the dashboard's default period
HOT_TOPIC_DAYS = 30
HOT_TOPIC_COUNT = 10
CACHE_SECONDS = 60.0
# 超期 on the map is the order list's (``/orders?overdue=1``), the dashboard's: open and past the limit now, one text
# (``OVERDUE_NOW_SQL``) for all — an order returned after its limit ran out is open and still late; one closed late is
# not overdue now, whatever states the map is asked for.
_OVERDUE_NOW = text(OVERDUE_NOW_SQL)
COUNTS_SECONDS = 15.0  # the open/overdue/today counts: fresh at every 30-second refresh, shared within one
OPEN = sorted(OPEN_STATES)

T = TypeVar("T")


_TtlCache = TtlCache  # the class moved to cityhub.caching, shared with the risk findings


def _own_session(session: Session) -> Session:
    """A new session on the same database as ``session``, for a background refresh."""
    return Session(bind=session.get_bind().engine)


_unit_points_cache = _TtlCache(600.0)
_figures_cache = _TtlCache(CACHE_SECONDS, size=256)
_counts_cache = _TtlCache(COUNTS_SECONDS, size=256)


def clear_caches() -> None:
    """Forget every cached figure (tests; after a reseed)."""
    from cityhub.analytics import risk

    for c in (_unit_points_cache, _figures_cache, _counts_cache):
        c.clear()
    risk.clear_cache()


def _db_key(session: Session) -> str:
    return str(session.get_bind().engine.url)


def collection(features: list[dict[str, Any]], **meta: Any) -> FeatureCollection:
    return {"type": "FeatureCollection", "features": features, **meta}


def _point(lng: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lng, lat]}


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=get_settings().tz).astimezone(UTC)


def _today(ctx: MapContext) -> date:
    return ctx.now.astimezone(get_settings().tz).date()


def sees_all_clear(principal: Any) -> bool:
    """Whether the caller sees every order's citizen data in clear (an aggregate's point is then not coarsened)."""
    return principal.role in permissions.UNMASKED_ROLES


def parse_bbox(text: str | None) -> BBox | None:
    """``west,south,east,north`` in degrees; ValidationFailed naming the field otherwise."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise ValidationFailed(
            "bbox must be four numbers: west,south,east,north (degrees)", details={"field": "bbox"}
        ) from None
    if not all(map(lambda v: v == v and abs(v) != float("inf"), (west, south, east, north))):
        raise ValidationFailed("bbox must be finite numbers", details={"field": "bbox"})
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ValidationFailed(
            "bbox must have west < east within -180..180 and south < north within -90..90", details={"field": "bbox"}
        )
    return BBox(west, south, east, north)


# ---------------------------------------------------------------------------------------------- base outline


@cache
def _packaged_outlines() -> dict[str, dict[str, Any]]:
    """code → the packaged district outline feature (GCJ-02, Aliyun DataV)."""
    text = (resources.files("cityhub.onemap") / "data" / "district_outlines.geojson").read_text(encoding="utf-8")
    return {f["properties"]["code"]: f for f in json.loads(text)["features"]}


def base_features(ctx: MapContext) -> FeatureCollection:
    """The district outline: the district units' own boundaries, else the packaged outline of a district with the same
    code (白云区 440111) — the map's base, drawn under everything."""
    return collection(_district_outlines(ctx.session), crs_note="GCJ-02")


def _district_outlines(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Unit.id, Unit.code, Unit.name, Unit.boundary).where(Unit.tier == UnitTier.DISTRICT, Unit.active)
    ).all()
    features = []
    for uid, code, name, boundary in rows:
        geometry = boundary or (_packaged_outlines().get(code) or {}).get("geometry")
        if geometry:
            features.append(
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {"unit_id": uid, "code": code, "name": name, "own_boundary": boundary is not None},
                }
            )
    return features


def boundary_features(session: Session) -> FeatureCollection:
    """The map's outlines alone, for a small map of a place (an order's point, an appeal's point being picked): the
    district outline (as the base layer) and the active streets' and communities' own boundaries — names and tiers,
    no counts, no representative points of orders — the same for every reader. Kept per process while the units
    are unchanged (:func:`cityhub.refdata.cached`)."""
    from cityhub import refdata

    def build(session: Session) -> FeatureCollection:
        district = UnitTier.DISTRICT.value
        features = [{**f, "properties": {**f["properties"], "tier": district}} for f in _district_outlines(session)]
        rows = session.execute(
            select(Unit.id, Unit.code, Unit.name, Unit.tier, Unit.parent_id, Unit.boundary)
            .where(Unit.tier.in_([UnitTier.STREET, UnitTier.COMMUNITY]), Unit.active)
            .order_by(Unit.code)
        )
        for uid, code, name, tier, parent_id, boundary in rows:
            if not boundary:
                continue  # a unit without one stands nowhere on this map (the one map's units layer has its point)
            properties = {"unit_id": uid, "code": code, "name": name, "tier": tier.value, "parent_id": parent_id}
            features.append({"type": "Feature", "geometry": boundary, "properties": properties})
        return collection(features, crs_note="GCJ-02")

    return refdata.cached(session, "onemap.boundaries", ("units",), build)


# ----------------------------------------------------------------------------------------------------- units


def _centroid(geometry: dict[str, Any]) -> tuple[float, float] | None:
    """The mean vertex of a Polygon's / MultiPolygon's outer rings (lng, lat): a label point, not an exact centroid."""
    rings: list[Any] = []
    if geometry.get("type") == "Polygon":
        rings = geometry.get("coordinates", [])[:1]
    elif geometry.get("type") == "MultiPolygon":
        rings = [poly[0] for poly in geometry.get("coordinates", []) if poly]
    points = [p for ring in rings for p in ring]
    if not points:
        return None
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def unit_points(session: Session, now: datetime) -> dict[int, tuple[float, float]]:
    """unit id → a representative point (lng, lat) for streets and communities without a boundary: the mean of the
    points of their orders of the last year (at least ``UNIT_POINT_MIN_ORDERS``), rounded to 3 decimals (~100 m).
    Kept per process for ten minutes (then refreshed in the background)."""

    def compute(session: Session) -> dict[int, tuple[float, float]]:
        since = now - timedelta(days=UNIT_POINT_DAYS)
        out: dict[int, tuple[float, float]] = {}
        for column in (Order.street_id, Order.community_id):
            rows = session.execute(
                select(column, func.avg(Order.lng), func.avg(Order.lat), func.count())
                .where(Order.created_at >= since, Order.lat.is_not(None), Order.lng.is_not(None), column.is_not(None))
                .group_by(column)
            ).all()
            for uid, lng, lat, n in rows:
                if n >= UNIT_POINT_MIN_ORDERS:
                    out[int(uid)] = (round(float(lng), 3), round(float(lat), 3))
        return out

    def refresh() -> dict[int, tuple[float, float]]:
        with _own_session(session) as own:
            return compute(own)

    return _unit_points_cache.get((_db_key(session), now.date()), lambda: compute(session), refresh)


def _units_in_view(ctx: MapContext) -> list[tuple[int, str, str, UnitTier, int | None, Any]]:
    """The streets and communities the caller's map shows: all of them for a district-wide scope or a department
    (their counts are still of its own orders), a street its own and its communities', a community itself."""
    query = select(Unit.id, Unit.code, Unit.name, Unit.tier, Unit.parent_id, Unit.boundary).where(
        Unit.tier.in_([UnitTier.STREET, UnitTier.COMMUNITY]), Unit.active
    )
    scope = ctx.scope
    if not scope.everything:
        if scope.streets or scope.communities:
            query = query.where(Unit.id.in_(sorted(scope.streets | scope.communities)))
        elif not scope.units:
            return []  # staff without a unit see no orders
    return [tuple(r) for r in ctx.session.execute(query.order_by(Unit.code))]


def place_counts(ctx: MapContext) -> dict[tuple[int | None, int | None], tuple[int, int, int]]:
    """(street id, community id) → (open, overdue, received today) of the orders in the caller's scope, with the
    unplaced under (None, None): the units layer's counts and, summed, the indicators' totals. Two index-friendly
    GROUP BYs (open orders by state, today's by creation time); kept per process and scope for ``COUNTS_SECONDS``,
    so the units layer and the indicators of one refresh count once."""
    midnight = _local_midnight(_today(ctx))
    scope = [ctx.clause] if ctx.clause is not None else []

    def compute() -> dict[tuple[int | None, int | None], tuple[int, int, int]]:
        out: dict[tuple[int | None, int | None], list[int]] = defaultdict(lambda: [0, 0, 0])
        overdue = func.sum(case((_OVERDUE_NOW, 1), else_=0))
        for street, community, n, late in ctx.session.execute(
            select(Order.street_id, Order.community_id, func.count(), overdue)
            .where(Order.state.in_(OPEN), *scope)
            .group_by(Order.street_id, Order.community_id)
        ):
            out[(street, community)][0] += int(n)
            out[(street, community)][1] += int(late or 0)
        for street, community, n in ctx.session.execute(
            select(Order.street_id, Order.community_id, func.count())
            .where(Order.created_at >= midnight, *scope)
            .group_by(Order.street_id, Order.community_id)
        ):
            out[(street, community)][2] += int(n)
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    return _counts_cache.get((_db_key(ctx.session), ctx.scope, midnight), compute)


def _unit_counts(ctx: MapContext) -> dict[int, list[int]]:
    """unit id → [open, overdue, today] of the orders in scope placed in it (a street's include its communities')."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (street, community), values in place_counts(ctx).items():
        for uid in {street, community} - {None}:
            c = counts[int(uid)]  # type: ignore[arg-type]
            for k in range(3):
                c[k] += values[k]
    return counts


def unit_features(ctx: MapContext) -> FeatureCollection:
    """Streets and communities: the boundary when the unit has one, else a representative point
    (:func:`unit_points`), with their open, overdue and today's orders within the caller's scope. A unit with neither
    has ``geometry: null`` and its counts still."""
    units = _units_in_view(ctx)
    counts = _unit_counts(ctx)
    points = unit_points(ctx.session, ctx.now)
    t = ctx.t
    features = []
    for uid, code, name, tier, parent_id, boundary in units:
        n_open, n_overdue, n_today = counts.get(uid, [0, 0, 0])
        if boundary:
            geometry = boundary
            label = _centroid(boundary)
        else:
            label = points.get(uid)
            geometry = _point(*label) if label else None
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "unit_id": uid,
                    "code": code,
                    "name": name,
                    # The name in the reader's language (an English name where the unit has one): what the map writes.
                    "name_shown": t.unit_name(name),
                    "tier": tier.value,
                    "parent_id": parent_id,
                    "open": n_open,
                    "overdue": n_overdue,
                    "today": n_today,
                    "label_point": list(label) if label else None,
                    # The orders these counts are of: open, placed in the unit's area, whoever leads them (a street's
                    # own office leads few of them).
                    "link": f"/orders?state=open&{'community_id' if tier == UnitTier.COMMUNITY else 'street_id'}={uid}",
                },
            }
        )
    return collection(features)


# ---------------------------------------------------------------------------------------------------- orders


def _order_conditions(ctx: MapContext) -> list[Any]:
    """Open (or the asked states) orders with a point, in the view, in the caller's scope, with the map's filters."""
    from cityhub.workorders.service import _category_subtree

    q = ctx.query
    where: list[Any] = [
        Order.state.in_(list(q.states) if q.states else OPEN),
        Order.lat.is_not(None),
        Order.lng.is_not(None),
    ]
    if q.bbox is not None:
        where += [Order.lng >= q.bbox.west, Order.lng <= q.bbox.east]
        where += [Order.lat >= q.bbox.south, Order.lat <= q.bbox.north]
    if q.category_id is not None:
        where.append(Order.category_id.in_(_category_subtree(ctx.session, q.category_id)))
    if q.since is not None:
        where.append(Order.created_at >= q.since)
    if ctx.clause is not None:
        where.append(ctx.clause)
    return where


def cell_size(zoom: int) -> float:
    """A grid cell's side in degrees at a Leaflet zoom level: ``CELL_PIXELS`` of the 256-pixel world tile."""
    return 360.0 / (2**zoom) * CELL_PIXELS / 256


def _grid_index(session: Session, column: Any, offset: float, size: float) -> Any:
    """floor((column + offset) / size) as an integer; ``offset`` makes the value positive, where SQLite's CAST
    (which truncates) is a floor — PostgreSQL's CAST rounds, so it gets floor()."""
    value = (column + offset) / size
    if session.get_bind().dialect.name == "sqlite":
        return cast(value, Integer)
    return cast(func.floor(value), Integer)


def order_features(ctx: MapContext) -> FeatureCollection:
    """Open orders with a point. From ``POINT_ZOOM`` on, and when no more than ``MAX_POINTS`` are in view, each order
    (number, title as the caller's order view shows it, state, overdue, link); otherwise counts per grid cell of
    about ``CELL_PIXELS`` screen pixels, aggregated in SQL, at the mean point of the cell's orders."""
    zoom = ctx.query.zoom if ctx.query.zoom is not None else DEFAULT_ZOOM
    where = _order_conditions(ctx)
    if zoom >= POINT_ZOOM:
        rows = (
            ctx.session.execute(
                select(
                    Order.id,
                    Order.number,
                    Order.title,
                    Order.state,
                    case((_OVERDUE_NOW, True), else_=False).label("overdue"),
                    Order.lat,
                    Order.lng,
                    Order.created_at,
                    Order.category_id,
                    Order.citizen_name,
                    Order.citizen_phone,
                    Order.citizen_user_id,
                    Order.lead_unit_id,
                    Order.channel,
                    Order.street_id,
                    Order.community_id,
                    Order.reported_by_id,
                )
                .where(*where)
                .order_by(Order.created_at.desc(), Order.id.desc())
                .limit(MAX_POINTS + 1)
            )
            .mappings()
            .all()
        )
        if len(rows) <= MAX_POINTS:
            return collection([_order_feature(ctx, r) for r in rows], mode="points", zoom=zoom)
    return _cells(ctx, where, zoom)


def _order_feature(ctx: MapContext, r: Any) -> dict[str, Any]:
    clear = sees_personal_data_of(
        ctx.principal,
        citizen_user_id=r["citizen_user_id"],
        lead_unit_id=r["lead_unit_id"],
        channel=r["channel"],
        street_id=r["street_id"],
        community_id=r["community_id"],
        reported_by_id=r["reported_by_id"],
    )
    lat, lng, title = r["lat"], r["lng"], r["title"]
    if not clear:
        title = scrub_text(title, known=(r["citizen_name"], r["citizen_phone"]))
        lat, lng = coarsen_coordinate(lat), coarsen_coordinate(lng)
    created = r["created_at"]
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return {
        "type": "Feature",
        "geometry": _point(lng, lat),
        "properties": {
            "id": r["id"],
            "number": r["number"],
            "title": title,
            "state": State(r["state"]).value,
            "overdue": bool(r["overdue"]),
            "created_at": answer_time(created) if created else None,
            "category_id": r["category_id"],
            "masked": not clear,
            "link": f"/orders/{r['id']}",
        },
    }


def _cells(ctx: MapContext, where: list[Any], zoom: int) -> FeatureCollection:
    size = cell_size(zoom)
    if not sees_all_clear(ctx.principal):
        # Which cell an order falls in tells where it is to the cell's size: no finer than a masked point (2 decimals).
        size = max(size, MASKED_CELL_DEGREES)
    gx = _grid_index(ctx.session, Order.lng, 180.0, size).label("gx")
    gy = _grid_index(ctx.session, Order.lat, 90.0, size).label("gy")

    def compute() -> list[Any]:
        # Per cell and street: a cell is named by the street most of its orders are in (the list's 景泰街道等 2 个镇街,
        # not 第 3 片); the sums and the mean point are the cell's own once its streets' rows are added up.
        return list(
            ctx.session.execute(
                select(
                    gx,
                    gy,
                    Order.street_id,
                    func.count(),
                    func.sum(case((_OVERDUE_NOW, 1), else_=0)),
                    func.sum(cast(Order.lng, Float)),
                    func.sum(cast(Order.lat, Float)),
                )
                .where(*where)
                .group_by(literal_column("gx"), literal_column("gy"), Order.street_id)
            ).all()
        )

    # The cells of one view, scope and filter, as the counts: kept COUNTS_SECONDS, so the 30-second polls of every
    # screen showing the district read one scan (~0.3 s at 100,000 open orders on SQLite) between them.
    q = ctx.query
    rows = _counts_cache.get(
        ("cells", _db_key(ctx.session), ctx.scope, q.bbox, q.category_id, q.states, q.since, size), compute
    )
    # A cell's point is the mean of its orders' points: for a caller who sees orders masked, to two decimals like the
    # point of each masked order (a cell of one order would otherwise give its exact place away).
    digits = 4 if sees_all_clear(ctx.principal) else 2
    cells: dict[tuple[int, int], _Cell] = {}
    for x, y, street_id, n, overdue, lng, lat in rows:
        cell = cells.setdefault((int(x), int(y)), _Cell())
        cell.add(street_id, int(n), int(overdue or 0), float(lng), float(lat))
    units = unit_directory(ctx.session)
    features: list[dict[str, Any]] = []
    total = 0
    for (x, y), cell in cells.items():
        total += cell.count
        west, south = x * size - 180.0, y * size - 90.0
        features.append(
            {
                "type": "Feature",
                "geometry": _point(round(cell.lng / cell.count, digits), round(cell.lat / cell.count, digits)),
                "properties": {
                    "cell": True,
                    "count": cell.count,
                    "overdue": cell.overdue,
                    "bbox": [round(west, 6), round(south, 6), round(west + size, 6), round(south + size, 6)],
                    # The street most of the cell's orders are in (null: none placed in a street), and how many
                    # streets' orders the cell holds.
                    "street": units[cell.street_id].name if cell.street_id in units else None,
                    "streets": sum(1 for street in cell.streets if street is not None),
                },
            }
        )
    features.sort(key=lambda f: -f["properties"]["count"])
    return collection(features, mode="cells", zoom=zoom, cell_degrees=round(size, 6), total=total)


class _Cell:
    """One grid cell's orders, added up from its rows per street."""

    __slots__ = ("count", "lat", "lng", "overdue", "streets")

    def __init__(self) -> None:
        self.count = self.overdue = 0
        self.lng = self.lat = 0.0
        self.streets: dict[int | None, int] = {}

    def add(self, street_id: int | None, n: int, overdue: int, lng: float, lat: float) -> None:
        self.count += n
        self.overdue += overdue
        self.lng += lng
        self.lat += lat
        self.streets[street_id] = self.streets.get(street_id, 0) + n

    @property
    def street_id(self) -> int | None:
        """The street most of the cell's orders are in (the lowest id of a tie, so the name stays put)."""
        placed = [(-n, street) for street, n in self.streets.items() if street is not None]
        return min(placed)[1] if placed else None


# -------------------------------------------------------------------------------------------------- hotspots


def findings_in_scope(ctx: MapContext) -> list[Any]:
    """The risk findings of today that have a place (recurring problems and rising trends) over the caller's scope,
    from the analytics layer's per-process cache (:func:`cityhub.analytics.risk.cached_findings`: five minutes per
    scope, then refreshed in the background)."""
    from cityhub.analytics import risk

    found = risk.cached_findings(ctx.session, scope=ctx.scope, today=_today(ctx))
    return [f for f in found if f.kind in ("recurring", "rising")]


def _topic_points(ctx: MapContext, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The period's hot topics (stored, mined) with the mean point of their placed orders of the period in scope."""
    from cityhub.analytics import topics_store
    from cityhub.analytics.models import HotTopicOrder
    from cityhub.analytics.topic_views import heat_words

    if not topics_store.stored_topic_count(ctx.session):
        return []
    topics = topics_store.topics_for_period(ctx.session, start=start, end=end, k=HOT_TOPIC_COUNT, where=ctx.clause)
    if not topics:
        return []
    where = [
        HotTopicOrder.topic_id.in_([t["id"] for t in topics]),
        topics_store.counted(),
        Order.created_at >= start,
        Order.created_at < end,
        Order.lat.is_not(None),
        Order.lng.is_not(None),
    ]
    if ctx.clause is not None:
        where.append(ctx.clause)
    rows = ctx.session.execute(
        select(HotTopicOrder.topic_id, func.avg(Order.lng), func.avg(Order.lat), func.count())
        .join(Order, Order.id == HotTopicOrder.order_id)
        .where(*where)
        .group_by(HotTopicOrder.topic_id)
    ).all()
    digits = 3 if sees_all_clear(ctx.principal) else 2
    where_of = {tid: (round(float(lng), digits), round(float(lat), digits), int(n)) for tid, lng, lat, n in rows}
    out = []
    for t in topics:
        if t["id"] not in where_of:
            continue
        lng, lat, placed = where_of[t["id"]]
        out.append(
            {
                "type": "Feature",
                "geometry": _point(lng, lat),
                "properties": {
                    "source": "hot_topic",
                    "id": f"T{t['id']}",
                    "title": t["label"],
                    "summary": t["topic"],
                    "count": t["count"],
                    "placed": placed,
                    "heat": t["heat"],
                    # The heat as the topic pages say it (很高 · 第 3), in the reader's language.
                    "heat_text": getattr(heat_words(ctx.lang, t), "short", None),
                    "places": t["period_places"] or t["places"][:5],
                    "new": t["new"],
                },
            }
        )
    return out


def hotspot_features(ctx: MapContext) -> FeatureCollection:
    """Where problems concentrate: the risk findings' places (a recurring problem at a community, a rising trend at
    a street or community, at the unit's boundary label point or representative point) and the hot topics of the
    last 30 days (at the mean point of their placed orders). ``heat``: a finding's rate ratio against what was
    expected, a topic's heat score; ``heat_text`` says either in words (为预期的 12.2 倍; 很高 · 第 3). A finding's
    ``summary`` is in the reader's language, as the 风险预警 pages word it (``machine_text.finding_words``)."""
    from cityhub.web.machine_text import finding_words

    units = {
        code: (uid, boundary)
        for uid, code, boundary in ctx.session.execute(
            select(Unit.id, Unit.code, Unit.boundary).where(Unit.tier.in_([UnitTier.STREET, UnitTier.COMMUNITY]))
        )
    }
    points = unit_points(ctx.session, ctx.now)
    features: list[dict[str, Any]] = []
    for f in findings_in_scope(ctx):
        code = f.community_code or f.street_code
        if code is None or code not in units:
            continue
        uid, boundary = units[code]
        at = (_centroid(boundary) if boundary else None) or points.get(uid)
        if at is None:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": _point(*at),
                "properties": {
                    "source": "finding",
                    "id": f.id,
                    "kind": f.kind,
                    "title": f.category_leaf or "",
                    "summary": ctx.t("map.finding.summary", **finding_words(ctx.t, f)),
                    "place": f.place,
                    "count": f.count,
                    "expected": round(f.expected, 2),
                    "heat": round(f.effect, 2),
                    # a finding's heat is how many times what was expected, and says so (not a topic's 热度)
                    "heat_text": ctx.t("map.finding.ratio", ratio=f"{f.effect:.1f}"),
                    "q_value": f.q_value,
                    "unit_id": uid,
                },
            }
        )
    today = _today(ctx)
    start = _local_midnight(today - timedelta(days=HOT_TOPIC_DAYS - 1))
    features += _topic_points(ctx, start, _local_midnight(today + timedelta(days=1)))
    return collection(features)


# ------------------------------------------------------------------------------------------------ indicators


def _totals(ctx: MapContext) -> tuple[int, int, int]:
    """(open, overdue, received today) in the caller's scope: the sums of :func:`place_counts`."""
    values = list(place_counts(ctx).values())
    return sum(v[0] for v in values), sum(v[1] for v in values), sum(v[2] for v in values)


def orders_today(ctx: MapContext) -> IndicatorValue:
    return IndicatorValue(_totals(ctx)[2], link=f"/orders?created_from={_today(ctx)}")


def open_orders(ctx: MapContext) -> IndicatorValue:
    link = "/orders?" + "&".join(f"state={s.value}" for s in OPEN)
    return IndicatorValue(_totals(ctx)[0], link=link)


def overdue_orders(ctx: MapContext) -> IndicatorValue:
    n = _totals(ctx)[1]
    link = "/orders?overdue=1"  # the list's 超期: the open orders past their limit now, as counted here
    return IndicatorValue(n, level="alert" if n else "ok", link=link)


def on_time_rate(ctx: MapContext) -> IndicatorValue:
    """按时办结率 of the last 30 days by the assessment's one definition (``kpi.facts('on_time_completion')``): the
    district's for a district-wide scope, else the caller's unit's (a street's with its communities')."""
    from cityhub.analytics import kpi

    today = _today(ctx)
    period = kpi.parse_period(f"{today - timedelta(days=ON_TIME_DAYS - 1)}..{today}")
    if ctx.scope.everything:
        unit: int | None = None
    elif ctx.principal.unit_id is not None and ctx.scope.units:
        unit = ctx.principal.unit_id
    else:
        return IndicatorValue(None, detail=period.label)

    def compute() -> tuple[int, int]:
        facts = kpi.facts(ctx.session, kpi="on_time_completion", period=period, unit_id=unit)
        return sum(1 for f in facts if f.hit), len(facts)

    key = (_db_key(ctx.session), "on_time", unit, today)
    if ctx.quick and not _figures_cache.has(key):
        return IndicatorValue(None, computing=True)
    hits, total = _figures_cache.get(key, compute)
    rate = hits / total if total else None
    level: Literal["ok", "warn", "alert"] | None = None
    if rate is not None:
        level = "ok" if rate >= 0.9 else "warn" if rate >= 0.75 else "alert"
    link = "/dashboard" if ctx.principal.role in OVERSEERS else None
    return IndicatorValue(rate, detail=ctx.t("map.ind.detail.on_time", hits=hits, n=total), level=level, link=link)


def active_hotspots(ctx: MapContext) -> IndicatorValue:
    from cityhub.analytics import risk

    if ctx.quick and not risk.has_cached_findings(ctx.session, scope=ctx.scope, today=_today(ctx)):
        return IndicatorValue(None, computing=True)
    return IndicatorValue(len(hotspot_features(ctx)["features"]))


# ---------------------------------------------------------------------------------------------- registration

register_layer(Layer("base", "map.layer.base", base_features, color="#5b6b7f", kind="areas"))
register_layer(Layer("units", "map.layer.units", unit_features, color="#2f7d5b", kind="areas"))
register_layer(Layer("orders", "map.layer.orders", order_features, color="#1f6feb"))
register_layer(Layer("hotspots", "map.layer.hotspots", hotspot_features, color="#d1453b"))
# Provided by the monitoring package (cityhub.monitoring) once it registers them: listed as not connected till then.
register_layer(Layer("sensors", "map.layer.sensors", None, color="#7c4dcc", source="monitoring"))
register_layer(Layer("alarms", "map.layer.alarms", None, color="#e8910c", source="monitoring"))

register_indicator(Indicator("orders_today", "map.ind.orders_today", orders_today))
register_indicator(Indicator("open", "map.ind.open", open_orders))
register_indicator(Indicator("overdue", "map.ind.overdue", overdue_orders))
register_indicator(Indicator("on_time_rate", "map.ind.on_time_rate", on_time_rate, fmt="percent"))
register_indicator(Indicator("active_hotspots", "map.ind.active_hotspots", active_hotspots))
register_indicator(Indicator("active_alarms", "map.ind.active_alarms", None, source="monitoring"))
register_indicator(Indicator("silent_sensors", "map.ind.silent_sensors", None, source="monitoring"))
register_indicator(Indicator("air_quality", "map.ind.air_quality", None, fmt="number", unit="AQI", source="monitoring"))
register_indicator(Indicator("water_quality", "map.ind.water_quality", None, fmt="number", source="monitoring"))
register_indicator(Indicator("congestion", "map.ind.congestion", None, fmt="number", source="monitoring"))


def compute_indicators(ctx: MapContext) -> list[dict[str, Any]]:
    """Every registered indicator's current value (pending ones: ``available: false``)."""
    from cityhub.onemap.registry import indicators

    out = []
    for ind in indicators():
        value = None if ind.compute is None else ind.compute(ctx)
        out.append(
            {
                "name": ind.name,
                "title_key": ind.title_key,
                "format": ind.fmt,
                "unit": ind.unit,
                "source": ind.source,
                "available": not ind.pending,
                "value": None if value is None else value.value,
                "detail": None if value is None else value.detail,
                "level": None if value is None else value.level,
                "link": None if value is None else value.link,
                "computing": value is not None and value.computing,
                "apart": None if value is None else value.apart,
                "apart_key": None if value is None else value.apart_key,
            }
        )
    return out


def context(
    session: Session,
    principal: Any,
    scope: Scope,
    query: Any,
    now: datetime | None = None,
    *,
    quick: bool = False,
    lang: str | None = None,
) -> MapContext:
    from cityhub.db import utcnow
    from cityhub.web.i18n import DEFAULT_LANGUAGE

    return MapContext(
        session=session,
        principal=principal,
        scope=scope,
        query=query,
        now=now or utcnow(),
        quick=quick,
        lang=lang or DEFAULT_LANGUAGE,
    )
