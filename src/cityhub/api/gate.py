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
"""

from __future__ import annotations

import asyncio
import time
from functools import lru_cache

from anyio import to_thread
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhub.db import POOL_MAX_OVERFLOW, POOL_SIZE

# Requests that compute over a whole period or graph (seconds, not milliseconds) wait in a lane of their own, so
# that a leader refreshing the dashboard never holds the places intake and the order lists need.
HEAVY_PREFIXES = ("/api/v1/kpi", "/api/v1/graph", "/api/v1/findings", "/dashboard")


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


class RequestGate:
    """Pure ASGI middleware holding each HTTP request until a place in its lane is free.

    Three lanes: ``limit`` places for requests that may write, ``read_limit`` for reads, ``heavy_limit`` for the
    requests under ``HEAVY_PREFIXES`` whatever their method.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int | None = None,
        read_limit: int | None = None,
        heavy_limit: int | None = None,
        shed_wait_ms: float | None = None,
    ) -> None:
        self.app = app
        settings = get_gate_settings()
        self.limit = limit or settings.concurrency()
        self.read_limit = read_limit or settings.http_read_concurrency
        self.heavy_limit = heavy_limit or settings.http_heavy_concurrency
        self.shed_wait_s = (settings.http_shed_wait_ms if shed_wait_ms is None else shed_wait_ms) / 1000
        self._lanes: dict[str, asyncio.Semaphore] | None = None

    def _lane(self, scope: Scope) -> asyncio.Semaphore:
        if self._lanes is None:
            self._lanes = {
                "write": asyncio.Semaphore(self.limit),
                "read": asyncio.Semaphore(self.read_limit),
                "heavy": asyncio.Semaphore(self.heavy_limit),
            }
            # Every admitted request must find a worker thread for its next step, with room to spare for the
            # threads that commit and for other callers of the pool.
            limiter = to_thread.current_default_thread_limiter()
            limiter.total_tokens = max(limiter.total_tokens, self.limit + self.read_limit + self.heavy_limit + 8)
        if str(scope.get("path", "")).startswith(HEAVY_PREFIXES):
            return self._lanes["heavy"]
        return self._lanes["read" if scope.get("method") in _READS else "write"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        admitted = arrived

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                done = time.perf_counter()
                timing = f"gate;dur={(admitted - arrived) * 1000:.1f}, app;dur={(done - admitted) * 1000:.1f}"
                headers = [*message.get("headers", ()), (b"server-timing", timing.encode())]
                if self.shed_wait_s and admitted - arrived > self.shed_wait_s:
                    headers.append((b"connection", b"close"))  # see GateSettings.http_shed_wait_ms
                message = {**message, "headers": headers}
            await send(message)

        async with self._lane(scope):
            admitted = time.perf_counter()
            await self.app(scope, receive, send_timed)


_READS = frozenset({"GET", "HEAD", "OPTIONS"})
