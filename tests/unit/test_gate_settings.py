"""How many requests a server process admits at once: by backend unless configured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from cityhub.api.gate import HEAVY_PREFIXES, GateSettings, RequestGate, get_gate_settings
from cityhub.config import get_settings


@pytest.fixture
def fresh_settings():
    get_settings.cache_clear()
    get_gate_settings.cache_clear()
    yield
    get_settings.cache_clear()
    get_gate_settings.cache_clear()


@pytest.mark.parametrize(
    ("url", "expected"),
    [("sqlite:///data/x.db", 1), ("postgresql://u:p@127.0.0.1:5432/cityhub", 4)],
)
def test_default_admits_few_requests_by_backend(monkeypatch, fresh_settings, url, expected):
    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    monkeypatch.delenv("CITYHUB_HTTP_CONCURRENCY", raising=False)
    assert GateSettings().concurrency() == expected


def test_configured_concurrency_wins(monkeypatch, fresh_settings):
    monkeypatch.setenv("CITYHUB_DATABASE_URL", "sqlite:///data/x.db")
    monkeypatch.setenv("CITYHUB_HTTP_CONCURRENCY", "6")
    assert GateSettings().concurrency() == 6
    assert RequestGate(app=None, limit=3).limit == 3  # type: ignore[arg-type]


def test_concurrency_beyond_the_connection_pool_is_refused(monkeypatch):
    monkeypatch.setenv("CITYHUB_HTTP_CONCURRENCY", "1000")
    with pytest.raises(ValueError, match="http_concurrency"):
        GateSettings()


class _Held:
    """An ASGI app that holds the requests ``held`` picks until released, and records what it finished."""

    def __init__(self, held: Callable[[dict[str, Any]], bool]) -> None:
        self.held = held
        self.release = asyncio.Event()
        self.done: list[str] = []

    async def __call__(self, scope: dict[str, Any], _receive: Any, _send: Any) -> None:
        if self.held(scope):
            await self.release.wait()
        self.done.append(f"{scope['method']} {scope['path']}")


def _request(gate: RequestGate, method: str, path: str) -> Any:
    return gate({"type": "http", "method": method, "path": path}, None, None)  # type: ignore[arg-type]


def test_a_heavy_request_does_not_hold_the_places_of_ordinary_ones():
    async def scenario() -> list[str]:
        app = _Held(lambda scope: scope["path"].startswith(HEAVY_PREFIXES))
        gate = RequestGate(app, limit=1, read_limit=1, heavy_limit=1)  # type: ignore[arg-type]
        heavy = asyncio.create_task(_request(gate, "GET", "/dashboard"))
        second_heavy = asyncio.create_task(_request(gate, "GET", "/api/v1/kpi"))
        await asyncio.sleep(0)
        for method in ("GET", "POST"):  # both other lanes go on while the heavy lane is full
            await asyncio.wait_for(_request(gate, method, "/api/v1/orders"), 5)
        assert not second_heavy.done()  # the heavy lane has one place: the second heavy request waits
        app.release.set()
        await asyncio.wait_for(asyncio.gather(heavy, second_heavy), timeout=5)
        return app.done

    assert asyncio.run(scenario()) == ["GET /api/v1/orders", "POST /api/v1/orders", "GET /dashboard", "GET /api/v1/kpi"]


def test_reads_and_writes_have_places_of_their_own():
    async def scenario() -> list[str]:
        app = _Held(lambda scope: scope["method"] == "POST")
        gate = RequestGate(app, limit=1, read_limit=1, heavy_limit=1)  # type: ignore[arg-type]
        write = asyncio.create_task(_request(gate, "POST", "/api/v1/orders"))
        queued = asyncio.create_task(_request(gate, "PATCH", "/api/v1/orders/1"))
        await asyncio.sleep(0)
        await asyncio.wait_for(_request(gate, "GET", "/api/v1/orders"), 5)
        assert not queued.done()  # the write lane's one place is taken
        app.release.set()
        await asyncio.wait_for(asyncio.gather(write, queued), 5)
        return app.done

    assert asyncio.run(scenario()) == ["GET /api/v1/orders", "POST /api/v1/orders", "PATCH /api/v1/orders/1"]
