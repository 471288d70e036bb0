"""How many requests a server process admits at once: by backend unless configured."""

from __future__ import annotations

import pytest

from cityhub.api.gate import GateSettings, RequestGate
from cityhub.config import get_settings


@pytest.fixture
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


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
