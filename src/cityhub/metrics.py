"""Prometheus metrics: ``GET /metrics`` in the text exposition format, for whoever runs cityhub to graph and alert on.

Two kinds of figures:

- **The platform's state, read from the database at each scrape**: the figures ``/healthz`` and the status page show,
  from the same code (``main.status_summary``, whose order counts a process reuses for
  ``CITYHUB_STATUS_COUNTS_SECONDS``) — orders by state and time-limit mark, the dispatcher's backlog, each scheduled
  job's last success, last failure and failures in a row, the database's revision, whether the answering process has
  its classifier and similar-orders index — and the notification outbox's undelivered messages by status (one
  grouped count over the index of undelivered messages). The same whichever server process answers, except the
  classifier and the index, which are the answering process's own, as on ``/healthz``.
- **HTTP figures of every server process** (:class:`HttpMetrics`): requests by method, route template (never the
  path with its ids) and status class, their duration (from arrival, the admission gate's wait included), and the
  gate's refusals by lane. ``cityhub serve``'s supervisor gives its server processes one directory for their metric
  files (``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's multiprocess mode: :func:`metrics_directory`), so whichever
  process answers a scrape sums every process's counts; the files of a process that ended stay (the totals never go
  down, which Prometheus would read as a restart of the counters), except its live gauges
  (``cityhub_server_processes``), which the supervisor removes (``mark_process_dead``).

Access (:func:`check_access`): off unless ``CITYHUB_METRICS_ENABLED``; then only to clients in
``CITYHUB_METRICS_ALLOWED_NETWORKS`` (the loopback by default), and with ``CITYHUB_METRICS_TOKEN`` set only with
``Authorization: Bearer`` that token.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhub.auth.errors import Unauthenticated
from cityhub.config import MIN_SECRET_LENGTH, SECRET_COMMAND
from cityhub.errors import NotFound, PermissionDenied

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess mode: set by ``cityhub serve``
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format every Prometheus reads
PATH = "/metrics"
LOOPBACK = "127.0.0.0/8,::1"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class MetricsSettings(BaseSettings):
    """The Prometheus metrics endpoint (GET /metrics): whether it answers, and to whom."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    metrics_enabled: bool = Field(
        False,
        description="Serve Prometheus metrics at GET /metrics (text exposition format): the orders, backlog, outbox "
        "and jobs /healthz shows, and every server process's HTTP figures summed. Off: /metrics answers 404 and no "
        "HTTP figures are kept. Read when a server process starts.",
    )
    metrics_allowed_networks: str = Field(
        LOOPBACK,
        description="Comma-separated addresses or networks (CIDR) whose clients may read /metrics (403 for others): "
        "the client address uvicorn sees — behind a proxy in FORWARDED_ALLOW_IPS, its X-Forwarded-For — e.g. "
        "127.0.0.0/8,::1,10.0.5.17 for a Prometheus on another host of the private network.",
    )
    metrics_token: str | None = Field(
        None,
        description="When set, /metrics also needs `Authorization: Bearer <this token>` (401 without it): for a "
        f"Prometheus reaching it through a network or proxy; at least {MIN_SECRET_LENGTH} characters, e.g. from "
        f"{SECRET_COMMAND}.",
    )

    @field_validator("metrics_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"must have at least {MIN_SECRET_LENGTH} characters; generate one with {SECRET_COMMAND}")
        return value

    def networks(self) -> tuple[Network, ...]:
        return parse_networks(self.metrics_allowed_networks)


def parse_networks(value: str) -> tuple[Network, ...]:
    """``127.0.0.0/8, ::1`` → the networks; a ValueError naming a part that is no address or network."""
    networks = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or network (e.g. 10.0.5.0/24)") from None
    return tuple(networks)


def get_metrics_settings() -> MetricsSettings:
    # Not cached: read when a server process builds its middleware and at each scrape (a few a minute).
    return MetricsSettings()


# ------------------------------------------------------------------------------------------------ access


class MetricsTokenRequired(Unauthenticated):
    code = "metrics_token_required"

    @property
    def http_headers(self) -> dict[str, str]:
        return {**super().http_headers, "WWW-Authenticate": 'Bearer realm="cityhub metrics"'}


def check_access(settings: MetricsSettings, client: str | None, authorization: str | None) -> None:
    """Raise what ``/metrics`` answers a client it does not serve: 404 while off, 403 from an address outside
    ``CITYHUB_METRICS_ALLOWED_NETWORKS``, 401 without the bearer token when ``CITYHUB_METRICS_TOKEN`` is set."""
    if not settings.metrics_enabled:
        raise NotFound("the metrics endpoint is off: set CITYHUB_METRICS_ENABLED=true to serve /metrics")
    try:
        address = ipaddress.ip_address((client or "").partition("%")[0])  # an IPv6 zone (fe80::1%eth0) aside
    except ValueError:
        address = None
    if address is None or not any(address in network for network in settings.networks()):
        raise PermissionDenied(
            f"/metrics is served only to CITYHUB_METRICS_ALLOWED_NETWORKS ({settings.metrics_allowed_networks}); "
            f"this client ({client or 'unknown address'}) is not among them"
        )
    if settings.metrics_token is not None:
        scheme, _, given = (authorization or "").partition(" ")
        expected = settings.metrics_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise MetricsTokenRequired(
                "/metrics needs the bearer token set in CITYHUB_METRICS_TOKEN: send `Authorization: Bearer TOKEN`"
                + (" (the token given is not it)" if authorization else "")
            )


# ------------------------------------------------------------------------------------------ HTTP figures

disable_created_metrics()  # no ``*_created`` series beside every counter: they double what a scrape reads

# Not in prometheus-client's global registry: each scrape collects them (one process) or their files (several).
REQUESTS = Counter(
    "cityhub_http_requests",
    "HTTP requests answered, by method, route template and status class.",
    ["method", "route", "status"],
    registry=None,
)
DURATION = Histogram(
    "cityhub_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, the admission gate's wait included.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,
)
REFUSED = Counter(
    "cityhub_http_refused",
    "Requests the admission gate answered 503 without running them, by lane (write, read, heavy, probe).",
    ["lane"],
    registry=None,
)
SERVER_PROCESSES = Gauge(
    "cityhub_server_processes",
    "Server processes serving now, with metrics on (each counts itself; a process that ended is taken out).",
    multiprocess_mode="livesum",
    registry=None,
)
HTTP_METRICS = (REQUESTS, DURATION, REFUSED, SERVER_PROCESSES)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"  # no route: a 404, a slash redirect
REFUSED_ROUTE = "(refused)"  # the gate refused it before any route was looked for
_REFUSED_KEY = "cityhub.refused"


def gate_refused(scope: Scope, lane: str) -> None:
    """Count a request the admission gate refuses (``api/gate.py``), and mark it for :class:`HttpMetrics`."""
    REFUSED.labels(lane).inc()
    scope[_REFUSED_KEY] = True


def route_label(scope: Scope) -> str:
    """The template of the route that answered (``/api/v1/orders/{order_id}``, ``/static/{path}``), never the path
    itself: ids would make a series per order."""
    if scope.get(_REFUSED_KEY):
        return REFUSED_ROUTE
    routes = _routes_of(scope.get("app"))
    route = scope.get("route")  # set by the router on the scope it was handed: FastAPI's routes
    if route is not None:
        template = routes.templates.get(id(route))
        if template is None:  # a FastAPI that copies included routes with their whole path
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
        return template if isinstance(template, str) and template else UNMATCHED
    path = str(scope.get("path", ""))
    for pattern, template in routes.plain:
        if pattern.match(path):
            return template
    return UNMATCHED


@dataclass(frozen=True)
class _Routes:
    templates: dict[int, str]  # id(route) → its whole path template
    plain: tuple[tuple[re.Pattern[str], str], ...]  # Starlette's own routes and mounts: not put on the scope


_ROUTES: weakref.WeakKeyDictionary[Any, _Routes] = weakref.WeakKeyDictionary()  # by application


def _routes_of(app: Any) -> _Routes:
    """The whole path template of each route of ``app``. FastAPI keeps an included router's routes under their own
    path (``/orders/{order_id}``: the API's and the web UI's alike) and puts that route on the scope, so the prefix
    (``/api/v1``) is found here as FastAPI's own OpenAPI description finds it (``iter_route_contexts``); the routes
    that are Starlette's (``/openapi.json``, the ``/static`` mount) are not put on the scope, and are matched here."""
    if app is None:
        return _Routes({}, ())
    known = _ROUTES.get(app)
    if known is not None:
        return known
    from fastapi.routing import APIRoute
    from starlette.routing import Mount, Route

    from cityhub.api.routing import route_contexts

    routes = list(getattr(app, "routes", []))
    templates: dict[int, str] = {}
    for context in route_contexts(routes):
        template = getattr(context, "path_format", None) or getattr(context, "path", None)
        if template:
            templates.setdefault(id(getattr(context, "original_route", context)), template)
    plain = tuple(
        (route.path_regex, route.path_format)
        for route in routes
        if isinstance(route, Route | Mount) and not isinstance(route, APIRoute)
    )
    known = _ROUTES[app] = _Routes(templates, plain)
    return known


class HttpMetrics:
    """Pure ASGI middleware, the outermost but the security headers': counts each HTTP answer and times it, while
    metrics are on (``CITYHUB_METRICS_ENABLED`` when the middleware is built)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.enabled = get_metrics_settings().metrics_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        status = 500  # an exception that escapes is answered 500 further out

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope.get("method", "")
            method = method if method in METHODS else "other"
            route = route_label(scope)
            REQUESTS.labels(method, route, f"{status // 100}xx").inc()
            DURATION.labels(method, route).observe(time.perf_counter() - arrived)


def server_started() -> None:
    """A server process counts itself in ``cityhub_server_processes`` (at its start, with metrics on), and shows each
    lane's refusals from 0: a counter first seen at 1 is missed by ``rate()`` and ``increase()``, and an alert on a
    series that is not there cannot be told from one that found nothing."""
    from cityhub.api.gate import LANES

    if get_metrics_settings().metrics_enabled:
        SERVER_PROCESSES.set(1)
        for lane in LANES:
            REFUSED.labels(lane)


def metrics_directory(port: int) -> str | None:
    """For ``cityhub serve``'s supervisor, with metrics on: a new empty directory for its processes' metric files,
    named in ``PROMETHEUS_MULTIPROC_DIR`` for the processes it starts (whatever the variable said before); None
    with metrics off. The supervisor removes it when it stops."""
    import tempfile

    if not get_metrics_settings().metrics_enabled:
        return None
    path = tempfile.mkdtemp(prefix=f"cityhub-metrics-{port}-")  # mode 0700, the supervisor's own
    os.environ[MULTIPROC_ENV] = path
    return path


def process_ended(pid: int, directory: str) -> None:
    """For the supervisor: a process of its own ended; its live gauges go (its counts stay in the totals)."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, directory)


# ------------------------------------------------------------------------------------ the platform's state

# Series kept whatever their count (0 included), so that an alert's expression always finds them.
INDEX_STATES = ("off", "not built", "building", "ready")
MODEL_STATES = ("off", "missing", "unreadable", "not loaded", "loaded", "reloading", "reload failed")
MODEL_LOADED = frozenset({"loaded", "reloading", "reload failed"})  # a model decides


def _timestamp(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def outbox_counts() -> dict[str, int]:
    """Undelivered notifications of the subscriptions in force by status
    (:func:`cityhub.notify.service.undelivered_counts`)."""
    from cityhub.db import session_scope
    from cityhub.notify.service import undelivered_counts

    with session_scope() as session:
        return undelivered_counts(session)


def state_metrics() -> list[Metric]:
    """The platform's state as metric families: ``main.status_summary`` (cached order counts) and the outbox. A
    database that cannot be read gives ``cityhub_database_up 0`` alone (the HTTP figures are still served)."""
    from sqlalchemy.exc import SQLAlchemyError

    from cityhub import __version__
    from cityhub.main import health_problems, status_summary
    from cityhub.workorders.lifecycle import OPEN_STATES, State
    from cityhub.workorders.models import SlaStatus

    up = GaugeMetricFamily("cityhub_database_up", "1 when this scrape could read the platform's state, else 0.")
    build = InfoMetricFamily("cityhub_build", "The cityhub release answering.")
    build.add_metric([], {"version": __version__})
    try:
        summary = status_summary(with_pairs=True)
        outbox = outbox_counts()
    except SQLAlchemyError as exc:
        log.warning("metrics: the platform's state could not be read: %s", exc)
        up.add_metric([], 0)
        return [up, build]
    up.add_metric([], 1)
    families: list[Metric] = [up, build]

    database = InfoMetricFamily(
        "cityhub_database", "The database's Alembic revision and the one this code needs (they differ: degraded)."
    )
    database.add_metric([], {"revision": str(summary["revision"] or ""), "schema_head": str(summary["schema_head"])})
    problems = GaugeMetricFamily(
        "cityhub_health_problems", "Problems /healthz lists (degraded when above 0): failing jobs, schema, classifier."
    )
    problems.add_metric([], len(health_problems(summary)))
    families += [database, problems]

    pairs: dict[tuple[Any, Any], int] = summary["orders_by_state_and_mark"]
    orders = GaugeMetricFamily(
        "cityhub_orders",
        "Orders by state and time-limit mark (sla: none, ok, warning, overdue; a closed order keeps its last mark), "
        "counted at most CITYHUB_STATUS_COUNTS_SECONDS ago.",
        labels=["state", "sla"],
    )
    open_orders = GaugeMetricFamily(
        "cityhub_open_orders",
        "Open orders (not closed, merged or cancelled) by time-limit mark: overdue is 超期 as the dashboard counts it.",
        labels=["sla"],
    )
    for state in State:
        for sla in SlaStatus:
            orders.add_metric([state.value, sla.value], pairs.get((state, sla), 0))
    for sla in SlaStatus:
        open_orders.add_metric([sla.value], sum(pairs.get((state, sla), 0) for state in OPEN_STATES))
    counted = GaugeMetricFamily("cityhub_orders_counted_timestamp_seconds", "When the order counts were made.")
    counted.add_metric([], summary["orders_counted_at"].timestamp())
    families += [orders, open_orders, counted]

    backlog = summary["dispatch_backlog"]
    waiting = GaugeMetricFamily(
        "cityhub_dispatch_backlog_orders",
        "Orders waiting for the background dispatcher: queued by intake (live) or by a bulk import (bulk).",
        labels=["kind"],
    )
    oldest = GaugeMetricFamily(
        "cityhub_dispatch_backlog_oldest_wait_seconds",
        "How long the oldest order of the backlog has waited (0: none waits).",
        labels=["kind"],
    )
    waiting.add_metric(["live"], backlog["orders"] - backlog["bulk_orders"])
    waiting.add_metric(["bulk"], backlog["bulk_orders"])
    oldest.add_metric(["live"], backlog["oldest_wait_s"] or 0)
    oldest.add_metric(["bulk"], backlog["bulk_oldest_wait_s"] or 0)
    families += [waiting, oldest]

    messages = GaugeMetricFamily(
        "cityhub_notify_outbox_messages",
        "Undelivered notifications of the subscriptions in force by status: pending, sending, failed (retried "
        "later), dead (given up).",
        labels=["status"],
    )
    for status, count in outbox.items():
        messages.add_metric([status], count)
    families.append(messages)

    # ``name``, not ``job``: Prometheus gives every series the scrape job's own ``job`` label.
    last_success = GaugeMetricFamily(
        "cityhub_job_last_success_timestamp_seconds", "When the job's last successful run ended.", labels=["name"]
    )
    last_failure = GaugeMetricFamily(
        "cityhub_job_last_failure_timestamp_seconds", "When the job's last failed run ended.", labels=["name"]
    )
    failures = GaugeMetricFamily(
        "cityhub_job_consecutive_failures",
        "Runs of the job in a row that failed since its last success (0: the last run succeeded).",
        labels=["name"],
    )
    for name, info in sorted(summary["jobs"].items()):
        failures.add_metric([name], info["failures"])
        for family, at in ((last_success, info["last_finished_at"]), (last_failure, info["last_failed_at"])):
            seconds = _timestamp(at)
            if seconds is not None:
                family.add_metric([name], seconds)
    families += [last_success, last_failure, failures]

    model = summary["dispatch_model"]
    model_state = GaugeMetricFamily(
        "cityhub_dispatch_model_state",
        "The answering process's dispatch classifier: 1 for its state (off, missing, unreadable, not loaded, loaded, "
        "reloading, reload failed), 0 for the others.",
        labels=["state"],
    )
    for state_name in MODEL_STATES:
        model_state.add_metric([state_name], int(model == state_name))
    loaded = GaugeMetricFamily(
        "cityhub_dispatch_model_loaded", "1 when the answering process has a dispatch classifier loaded, else 0."
    )
    loaded.add_metric([], int(model in MODEL_LOADED))
    index = summary["similar_orders_index"]
    index_state = GaugeMetricFamily(
        "cityhub_similar_orders_index_state",
        "The answering process's similar-orders index: 1 for its state (off, not built, building, ready), 0 for the "
        "others.",
        labels=["state"],
    )
    for state_name in INDEX_STATES:
        index_state.add_metric([state_name], int(index["state"] == state_name))
    index_orders = GaugeMetricFamily(
        "cityhub_similar_orders_index_orders", "Orders in the answering process's similar-orders index."
    )
    index_orders.add_metric([], index.get("orders", 0))
    families += [model_state, loaded, index_state, index_orders]
    return families


class _Families:
    """A collector handing out families made already (this scrape's)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def exposition() -> bytes:
    """The text a scrape gets: the platform's state, and the HTTP figures — summed over every server process's files
    under ``PROMETHEUS_MULTIPROC_DIR`` when ``cityhub serve`` set it, else this process's (with its own process
    figures: memory, CPU, open files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(state_metrics()))
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

        for collector in (*HTTP_METRICS, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
    return generate_latest(registry)
