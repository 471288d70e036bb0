"""Admission control: at most ``CITYHUB_HTTP_CONCURRENCY`` requests run inside the application at once.

Every answer says how long it waited here and how long the application then took, in a ``Server-Timing`` header
(``gate;dur=…, app;dur=…``, milliseconds): what a client measured beyond their sum was spent on the network, in
the server's event loop before the request reached this point, or in the client itself.

Route functions and their dependencies are synchronous, so Starlette runs each step of a request (the session
dependency, authentication, the route, the commit at the end) as a separate call in one shared pool of worker
threads (40 by default). A request keeps its database connection, and on SQLite the write lock or on PostgreSQL
its row locks, *between* those steps. Without a bound, a burst of 50 creations filled every worker thread with
requests waiting for a lock whose holder then waited for a free thread to commit: nothing moved until the
30-second busy timeout. Admitting fewer requests than there are threads (and than the connection pool holds)
means the requests inside can always take their next step; the others wait here, on the event loop, for a
place, in arrival order, holding no thread, connection or lock.

Waiting is bounded. A request that finds ``CITYHUB_HTTP_QUEUE_LIMIT`` others already waiting in its lane, or that
waits ``CITYHUB_HTTP_QUEUE_TIMEOUT_MS`` without a place, is answered ``503 Service Unavailable`` with
``Retry-After`` (the lane's recent time per request × the requests ahead ÷ its places) and the error body of every
other error, code ``overloaded``; a browser asking for a page gets the UI's error page instead, which reloads itself
after that time. Nothing of such a request ran, so retrying it is safe (a creation is not created twice): under a
load the process cannot serve, clients learn it at once and back off, instead of holding connections until their
own time-outs and then retrying blindly into a queue that only grows.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from functools import lru_cache

from anyio import to_thread
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhub.db import POOL_MAX_OVERFLOW, POOL_SIZE
from cityhub.errors import Overloaded

# Requests that compute over a whole period or graph (seconds, not milliseconds) wait in a lane of their own, so
# that a leader refreshing the dashboard never holds the places intake and the order lists need.
HEAVY_PREFIXES = ("/api/v1/kpi", "/api/v1/graph", "/api/v1/findings", "/dashboard", "/brain/findings", "/brain/graph")
# Health probes wait in a small lane of their own: behind a thousand reads, a busy but healthy process would answer
# its load balancer's probe 503 (or late) and be taken out of service just when it is needed most.
PROBE_PATHS = ("/healthz", "/metrics")  # and Prometheus's scrapes (cityhub.metrics)
PROBE_PLACES = 2
# The lanes a request waits in, by name: what a 503's ``details.lane`` says and ``cityhub_http_refused_total`` counts.
LANES = ("write", "read", "heavy", "probe")


class GateSettings(BaseSettings):
    """Admission control: how many HTTP requests one server process runs at once, per lane."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    http_concurrency: int | None = Field(
        None,
        ge=1,
        le=(POOL_SIZE + POOL_MAX_OVERFLOW) // 4,
        description="Requests that may change data (POST, PUT, PATCH, DELETE) one server process runs at once; "
        "unset: 1 on SQLite, 4 on PostgreSQL.",
    )
    # Reads take no write lock, and wait on the database more than they compute, so more of them overlap usefully.
    http_read_concurrency: int = Field(
        6,
        ge=1,
        le=(POOL_SIZE + POOL_MAX_OVERFLOW) // 4,
        description="Reads (GET, HEAD, OPTIONS) one server process runs at once, besides the writes.",
    )
    # With several server processes (`cityhub serve --workers N`) the kernel hands each new connection to one of them
    # by a hash, blind to their load, and a kept-alive connection stays where it landed. A process that falls
    # behind keeps its clients busy, so their connections never idle out and move: measured at 50 clients creating
    # orders beyond what the machine could take, one process ran at 95 % of a core with almost every client while
    # the other idled at 20 %. Closing the connection after an answer that waited long sends that client's next
    # request through a new connection, which lands on any process.
    http_shed_wait_ms: float = Field(
        250.0,
        ge=0,
        description="An answer that waited longer than this at the admission gate closes its kept-alive connection "
        "(`Connection: close`), so the client's next request may go to a less busy server process; 0: never.",
    )
    http_heavy_concurrency: int = Field(
        1,
        ge=1,
        le=8,
        description="Heavy requests (KPIs, graph, findings, dashboard) one server process runs at once, besides "
        "the others.",
    )

    http_queue_limit: int = Field(
        1000,
        ge=0,
        description="Requests that may wait for a place in one lane of one server process; one more is answered 503 "
        "Service Unavailable with Retry-After at once (nothing of it ran: a retry is safe); 0: no limit.",
    )
    http_queue_timeout_ms: float = Field(
        30000.0,
        ge=0,
        description="A request still waiting for a place after this long is answered 503 Service Unavailable with "
        "Retry-After (nothing of it ran: a retry is safe); 0: it waits as long as it takes.",
    )

    http_max_body_mb: float = Field(
        16.0,
        gt=0,
        description="Largest body, in MiB, of an /api/v1 request other than a multipart file upload (a JSON batch of "
        "sensor readings is the largest a client sends: 50,000 readings fit in about 8 MiB); a larger one is "
        "answered 413 payload_too_large and not read. The web pages' forms and Open311's POST have caps of their "
        "own (256 KiB), file uploads CITYHUB_FILES_MAX_MB.",
    )

    http_gzip_min_bytes: int = Field(
        1024,
        ge=0,
        description="Answers of at least this many bytes go gzip-compressed to a client that accepts it (an order "
        "page of ~110 KB travels as ~20 KB; images, archives, workbooks and PDFs are left as they are; a page's "
        "CSRF token is masked afresh in every answer, so compression tells nothing of it); 0: never compress (a "
        "proxy in front that compresses does not need it twice).",
    )

    def concurrency(self) -> int:
        return self.http_concurrency or default_concurrency()


def default_concurrency() -> int:
    """Few: one process runs Python on one core at a time, so more requests inside add waiting, not speed.

    Worse, they slow the writes. A request holding SQLite's write lock (or PostgreSQL row locks) gives the interpreter
    up at every statement and must win it back from every other busy thread, so the more requests compute at once,
    the longer each write transaction lasts and the longer every other writer waits for it. Measured at 1,000,000
    orders with 50 clients creating orders (bench/bench_api.py): on SQLite, 8 at once held the write lock 13 ms per
    creation and reached 39 creations/s; 3 at once, 9.6 ms; 2 at once, 6.4 ms and 75/s. Once creation had become
    cheaper, one at a time per process (two processes: two writers) beat two at 50 paced clients, p95 28–44 ms
    against 54–64 ms in alternating runs. PostgreSQL has no single write lock and its statements wait on the
    network, where another request can use the interpreter: 4 (1, 2 and 4 measured alike there).
    """
    from cityhub.config import get_settings

    return 1 if get_settings().is_sqlite else 4


@lru_cache
def get_gate_settings() -> GateSettings:
    return GateSettings()


# The answer to a refused request where the JSON error body does not fit (a browser's page, an Open311 client):
# (scope, the refusal) → a response, or None for the JSON error body. ``main.create_app`` wires it.
Refusal = Callable[[Scope, Overloaded], Response | None]


class _Lane:
    """One lane's places, how many wait for one, and how long its requests recently took inside."""

    def __init__(self, name: str, places: int) -> None:
        self.name = name
        self.places = places
        self.semaphore = asyncio.Semaphore(places)
        self.waiting = 0
        self.seconds_inside = 0.05  # exponentially weighted mean of the time a request holds a place

    def ran(self, seconds: float) -> None:
        self.seconds_inside += 0.1 * (seconds - self.seconds_inside)

    def retry_after(self) -> int:
        """Whole seconds until the requests waiting now should be through: at least 1, at most 120."""
        return min(120, max(1, math.ceil(self.waiting * self.seconds_inside / self.places)))


class RequestGate:
    """Pure ASGI middleware holding each HTTP request until a place in its lane is free.

    Four lanes: ``limit`` places for requests that may write, ``read_limit`` for reads, ``heavy_limit`` for the
    requests under ``HEAVY_PREFIXES`` whatever their method, ``PROBE_PLACES`` for health probes. At most
    ``queue_limit`` requests wait in a lane (0: no limit), each at most ``queue_timeout_ms`` (0: no limit); beyond
    either, 503 with Retry-After: ``refusal``'s answer, else the JSON error body.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int | None = None,
        read_limit: int | None = None,
        heavy_limit: int | None = None,
        shed_wait_ms: float | None = None,
        queue_limit: int | None = None,
        queue_timeout_ms: float | None = None,
        refusal: Refusal | None = None,
    ) -> None:
        self.app = app
        settings = get_gate_settings()
        self.limit = limit or settings.concurrency()
        self.read_limit = read_limit or settings.http_read_concurrency
        self.heavy_limit = heavy_limit or settings.http_heavy_concurrency
        self.shed_wait_s = (settings.http_shed_wait_ms if shed_wait_ms is None else shed_wait_ms) / 1000
        self.queue_limit = settings.http_queue_limit if queue_limit is None else queue_limit
        timeout_ms = settings.http_queue_timeout_ms if queue_timeout_ms is None else queue_timeout_ms
        self.queue_timeout_s = timeout_ms / 1000 or None
        self.refusal = refusal
        self._lanes: dict[str, _Lane] | None = None

    def _lane(self, scope: Scope) -> _Lane:
        if self._lanes is None:
            places_of = (self.limit, self.read_limit, self.heavy_limit, PROBE_PLACES)
            self._lanes = {name: _Lane(name, n) for name, n in zip(LANES, places_of, strict=True)}
            # Every admitted request must find a worker thread for its next step, with room to spare for the
            # threads that commit and for other callers of the pool.
            limiter = to_thread.current_default_thread_limiter()
            places = self.limit + self.read_limit + self.heavy_limit + PROBE_PLACES
            limiter.total_tokens = max(limiter.total_tokens, places + 8)
        path = str(scope.get("path", ""))
        if path in PROBE_PATHS:
            return self._lanes["probe"]
        if path.startswith(HEAVY_PREFIXES):
            return self._lanes["heavy"]
        return self._lanes["read" if scope.get("method") in _READS else "write"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        admitted = arrived
        lane = self._lane(scope)

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                done = time.perf_counter()
                timing = f"gate;dur={(admitted - arrived) * 1000:.1f}, app;dur={(done - admitted) * 1000:.1f}"
                headers = [*message.get("headers", ()), (b"server-timing", timing.encode())]
                if self.shed_wait_s and admitted - arrived > self.shed_wait_s:
                    headers.append((b"connection", b"close"))  # see GateSettings.http_shed_wait_ms
                message = {**message, "headers": headers}
            await send(message)

        if self.queue_limit and lane.waiting >= self.queue_limit:
            await self._refuse(scope, send, lane, arrived, f"{lane.waiting} requests are waiting ahead of this one")
            return
        lane.waiting += 1
        try:
            if lane.semaphore.locked():
                await asyncio.wait_for(lane.semaphore.acquire(), self.queue_timeout_s)
            else:
                await lane.semaphore.acquire()  # a free place: no timer, no task
        except TimeoutError:
            waited = f"no place was free for {time.perf_counter() - arrived:.0f} s"
            await self._refuse(scope, send, lane, arrived, waited)
            return
        finally:
            lane.waiting -= 1
        admitted = time.perf_counter()
        try:
            await self.app(scope, receive, send_timed)
        finally:
            lane.semaphore.release()
            lane.ran(time.perf_counter() - admitted)

    async def _refuse(self, scope: Scope, send: Send, lane: _Lane, arrived: float, why: str) -> None:
        """Answer 503 without running the request."""
        from cityhub.metrics import gate_refused

        gate_refused(scope, lane.name)
        retry_after = lane.retry_after()
        refused = Overloaded(
            f"the server is busy ({why}); nothing was done, retry after {retry_after} s",
            retry_after=retry_after,
            details={"lane": lane.name, "waiting": lane.waiting},
        )
        response = self.refusal(scope, refused) if self.refusal is not None else None
        if response is None:
            body = {"code": refused.code, "message": refused.message, "details": refused.details}
            response = Response(json.dumps(body), status_code=refused.http_status, media_type="application/json")
        response.headers.update(refused.http_headers)
        response.headers["Connection"] = "close"  # the body may be unread; a next request may find another process
        response.headers["Server-Timing"] = f"gate;dur={(time.perf_counter() - arrived) * 1000:.1f}, app;dur=0.0"
        await response(scope, _nothing_to_receive, send)


def wants_page(scope: Scope) -> bool:
    """A browser asking for a page: a GET accepting HTML."""
    accept = b""
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            accept = value
    return scope.get("method") == "GET" and b"text/html" in accept


async def _nothing_to_receive() -> Message:
    return {"type": "http.disconnect"}


_READS = frozenset({"GET", "HEAD", "OPTIONS"})
