"""How many requests a server process admits at once: by backend unless configured."""

from __future__ import annotations

import pytest

from cityhub.api.gate import GateSettings, RequestGate, get_gate_settings
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
    [("sqlite:///data/x.db", 2), ("postgresql://u:p@127.0.0.1:5432/cityhub", 4)],
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


def test_a_heavy_request_does_not_hold_the_places_of_ordinary_ones():
    import asyncio

    from cityhub.api.gate import HEAVY_PREFIXES

    async def scenario() -> list[str]:
        release_heavy = asyncio.Event()
        done: list[str] = []

        async def app(scope, receive, send):
            if scope["path"].startswith(HEAVY_PREFIXES):
                await release_heavy.wait()
            done.append(scope["path"])

        gate = RequestGate(app, limit=1, read_limit=1, heavy_limit=1)
        heavy = asyncio.create_task(gate({"type": "http", "method": "GET", "path": "/dashboard"}, None, None))
        second_heavy = asyncio.create_task(gate({"type": "http", "method": "GET", "path": "/api/v1/kpi"}, None, None))
        await asyncio.sleep(0)
        for method in ("GET", "POST"):  # both other lanes go on while the heavy lane is full
            await asyncio.wait_for(gate({"type": "http", "method": method, "path": "/api/v1/orders"}, None, None), 5)
        assert done == ["/api/v1/orders", "/api/v1/orders"]
        assert not second_heavy.done()  # the heavy lane has one place: the second heavy request waits
        release_heavy.set()
        await asyncio.wait_for(asyncio.gather(heavy, second_heavy), timeout=5)
        return done

    assert asyncio.run(scenario()) == ["/api/v1/orders", "/api/v1/orders", "/dashboard", "/api/v1/kpi"]


def test_reads_and_writes_have_places_of_their_own():
    import asyncio

    async def scenario() -> None:
        release = asyncio.Event()
        done: list[str] = []

        async def app(scope, receive, send):
            if scope["method"] == "POST":
                await release.wait()
            done.append(scope["method"])

        gate = RequestGate(app, limit=1, read_limit=1, heavy_limit=1)
        write = asyncio.create_task(gate({"type": "http", "method": "POST", "path": "/api/v1/orders"}, None, None))
        queued = asyncio.create_task(gate({"type": "http", "method": "PATCH", "path": "/api/v1/orders/1"}, None, None))
        await asyncio.sleep(0)
        await asyncio.wait_for(gate({"type": "http", "method": "GET", "path": "/api/v1/orders"}, None, None), 5)
        assert done == ["GET"] and not queued.done()  # the write lane's one place is taken
        release.set()
        await asyncio.wait_for(asyncio.gather(write, queued), 5)
        assert done == ["GET", "POST", "PATCH"]

    asyncio.run(scenario())
