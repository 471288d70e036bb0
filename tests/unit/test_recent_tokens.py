"""The in-memory cache of verified API tokens: its time limit, the token's own expiry, its size bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityhub.auth.principal import Principal
from cityhub.auth.service import RecentTokens
from cityhub.org.models import Role

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _principal(user_id: int = 1) -> Principal:
    return Principal(
        user_id=user_id,
        username=f"u{user_id}",
        full_name="黄志强",
        role=Role.DISPATCHER,
        unit_id=None,
        unit_tier=None,
        method="token",
        credential_id=user_id,
    )


def test_an_entry_lives_for_the_configured_seconds() -> None:
    clock = [0.0]
    cache = RecentTokens(clock=lambda: clock[0])
    cache.put("h1", _principal(), None, 2.0)
    assert cache.get("h1", NOW) == _principal()
    clock[0] = 1.99
    assert cache.get("h1", NOW) is not None
    clock[0] = 2.0
    assert cache.get("h1", NOW) is None
    assert len(cache) == 0  # a lapsed entry is dropped when found


def test_zero_seconds_caches_nothing() -> None:
    cache = RecentTokens(clock=lambda: 0.0)
    cache.put("h1", _principal(), None, 0)
    assert cache.get("h1", NOW) is None


def test_the_tokens_own_expiry_ends_the_entry_early() -> None:
    cache = RecentTokens(clock=lambda: 0.0)
    cache.put("h1", _principal(), NOW + timedelta(seconds=1), 60.0)
    assert cache.get("h1", NOW) is not None
    assert cache.get("h1", NOW + timedelta(seconds=1)) is None


def test_the_cache_stays_bounded() -> None:
    clock = [0.0]
    cache = RecentTokens(clock=lambda: clock[0])
    cache.MAX_ENTRIES = 4
    for i in range(4):
        cache.put(f"old{i}", _principal(i), None, 1.0)
    clock[0] = 5.0  # all four lapsed: the next addition sweeps them
    cache.put("new", _principal(9), None, 1.0)
    assert len(cache) == 1 and cache.get("new", NOW) is not None
    for i in range(4):
        cache.put(f"live{i}", _principal(i), None, 10.0)
    assert len(cache) <= 4  # full of live entries: emptied rather than grown
