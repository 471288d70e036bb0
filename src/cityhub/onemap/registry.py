"""The one map's registries (一张图): its layers and its indicators, each one entry, so another package can add its own.

A **layer** is a name, a title (an i18n key of ``web/locales``), a colour and a function from a :class:`MapContext`
(the caller, their data scope, the map's view and filters) to a GeoJSON FeatureCollection. The API serves every
registered layer at ``GET /api/v1/map/layers/{name}`` and lists them at ``GET /api/v1/map/layers``; the map page
draws whatever that list names, with a toggle and a legend entry each.

An **indicator** is a name, a title, a format and a function from the same context to an :class:`IndicatorValue`;
``GET /api/v1/map/indicators`` and the map's side panel show them in registry order.

Layers and indicators another package provides — the monitoring package's (``cityhub.monitoring``, 监测预警)
sensors, alarms, air and water quality, traffic congestion — are registered here as *pending*: listed, shown as
"not connected" (未接入), never computed. A package fills one by registering an entry of the same name
(:func:`register_layer`, :func:`register_indicator`) in a module named in :data:`PLUGINS`, which the registry imports
once, on first use.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from cityhub.auth.principal import Principal
from cityhub.auth.scope import Scope
from cityhub.web.i18n import DEFAULT_LANGUAGE, Translator

# Modules that register layers or indicators when imported, one entry each. A module that is not installed is
# skipped; one that fails to import raises.
PLUGINS: list[str] = ["cityhub.monitoring.onemap"]

FeatureCollection = dict[str, Any]
Format = Literal["count", "percent", "number"]


@dataclass(frozen=True)
class BBox:
    """A view's bounds in degrees (GeoJSON order: west, south, east, north)."""

    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True)
class MapQuery:
    """What the map asks of a layer: its view (bounds, Leaflet zoom level) and the filters a layer may honour."""

    bbox: BBox | None = None
    zoom: int | None = None
    category_id: int | None = None
    states: tuple[str, ...] = ()
    since: datetime | None = None
    extra: Mapping[str, str] = field(default_factory=dict)  # other query parameters, for plug-in layers


@dataclass(frozen=True)
class MapContext:
    """Everything a layer or indicator function gets: the session, the caller and their data scope (the same
    :mod:`cityhub.auth.scope` clause order lists use), the query and the time of the request."""

    session: Session
    principal: Principal
    scope: Scope
    query: MapQuery
    now: datetime
    # Only what is at hand: a figure that would take seconds to compute (the risk findings, the on-time rate) is
    # answered as ``computing`` instead — the map page renders at once and fetches its panel again right away.
    quick: bool = False
    # The reader's UI language (cityhub.web.i18n), for the text a layer's features carry (``summary``).
    lang: str = DEFAULT_LANGUAGE

    @property
    def t(self) -> Translator:
        """Messages and labels in the reader's language: ``ctx.t("map.…", …)``, ``ctx.t.label("metric", …)``; units'
        and categories' names too (``ctx.t.unit_name``, through the context's session: :mod:`cityhub.localnames`)."""
        from cityhub.localnames import english_names

        return Translator(self.lang, names=lambda: english_names(self.session))

    @property
    def clause(self) -> ColumnElement[bool] | None:
        """The data scope as a WHERE condition over ``Order`` (None: everything)."""
        return self.scope.clause()


@dataclass(frozen=True)
class Layer:
    name: str
    title_key: str  # i18n key, e.g. "map.layer.orders"
    features: Callable[[MapContext], FeatureCollection] | None  # None: pending (not connected yet)
    color: str = "#1f6feb"
    kind: Literal["points", "areas"] = "points"
    default_on: bool = True
    source: str = "cityhub"  # the package that provides it

    @property
    def pending(self) -> bool:
        return self.features is None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title_key": self.title_key,
            "color": self.color,
            "kind": self.kind,
            "default_on": self.default_on and not self.pending,
            "available": not self.pending,
            "source": self.source,
            "url": None if self.pending else f"/api/v1/map/layers/{self.name}",
        }


@dataclass(frozen=True)
class IndicatorValue:
    value: float | int | None
    detail: str | None = None  # e.g. the period or the numerator/denominator, already readable
    level: Literal["ok", "warn", "alert"] | None = None
    link: str | None = None  # a page listing what the figure counts
    computing: bool = False  # not at hand yet (a quick context): shown as being computed
    # A figure counted apart from ``value`` and shown beside it, so the two are not read as one (当前告警 3 · 离线 2):
    # the count and the catalogue key that says it (given ``n``).
    apart: int | None = None
    apart_key: str | None = None


@dataclass(frozen=True)
class Indicator:
    name: str
    title_key: str
    compute: Callable[[MapContext], IndicatorValue] | None  # None: pending (not connected yet)
    fmt: Format = "count"
    unit: str | None = None  # a unit shown after the figure (µg/m³, AQI …), not translated
    source: str = "cityhub"

    @property
    def pending(self) -> bool:
        return self.compute is None


_layers: dict[str, Layer] = {}
_indicators: dict[str, Indicator] = {}
_plugins_loaded = False
_lock = threading.Lock()


def register_layer(layer: Layer) -> None:
    """Add ``layer``, or replace the entry of the same name (a pending one, or an earlier registration)."""
    _layers[layer.name] = layer


def register_indicator(indicator: Indicator) -> None:
    """Add ``indicator``, or replace the entry of the same name (a pending one, or an earlier registration)."""
    _indicators[indicator.name] = indicator


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    with _lock:
        if _plugins_loaded:
            return
        from cityhub.onemap import service  # noqa: F401  (registers the built-in layers and indicators)

        for module in PLUGINS:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is None or not module.startswith(exc.name):
                    raise  # the module exists but something it imports does not: a real error
        _plugins_loaded = True


def layers() -> list[Layer]:
    """Every layer, in registration order."""
    _load_plugins()
    return list(_layers.values())


def layer(name: str) -> Layer | None:
    _load_plugins()
    return _layers.get(name)


def indicators() -> list[Indicator]:
    """Every indicator, in registration order."""
    _load_plugins()
    return list(_indicators.values())
