"""The one map's pure parts: the view's bounds, the grid cell size, the per-process cache that answers an expired
figure while it is computed again in the background, and the registry's pending entries."""

from __future__ import annotations

import threading

import pytest

from cityhub.errors import ValidationFailed
from cityhub.onemap import registry, service


def test_bbox_is_four_finite_ordered_numbers() -> None:
    assert service.parse_bbox(" 113.1,23.1,113.5,23.4 ") == registry.BBox(113.1, 23.1, 113.5, 23.4)
    assert service.parse_bbox(None) is None and service.parse_bbox("") is None
    for bad in ("1,2,3", "a,b,c,d", "113.5,23.1,113.1,23.4", "1,2,3,inf", "-181,0,1,1", "0,95,1,96"):
        with pytest.raises(ValidationFailed) as caught:
            service.parse_bbox(bad)
        assert caught.value.details == {"field": "bbox"}


def test_a_grid_cell_is_about_the_same_screen_size_at_every_zoom() -> None:
    assert service.cell_size(11) == pytest.approx(0.032959, abs=1e-6)
    assert service.cell_size(12) == pytest.approx(service.cell_size(11) / 2)


def test_an_expired_value_is_answered_while_a_background_thread_computes_the_next() -> None:
    cache = service._TtlCache(seconds=0.0)
    assert cache.get("k", lambda: 1) == 1  # nothing cached: computed in place
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 2

    assert cache.get("k", lambda: pytest.fail("not in place"), slow) == 1  # expired: the old value, at once
    assert started.wait(5)
    assert cache.get("k", lambda: pytest.fail("not in place"), slow) == 1  # one refresh per key at a time
    release.set()
    for _ in range(100):
        if cache._items["k"][1] == 2:
            break
        threading.Event().wait(0.02)
    assert cache._items["k"][1] == 2
    # Without a refresh function an expired value is computed in place.
    assert cache.get("k", lambda: 3) == 3


def test_the_monitoring_package_fills_the_layers_and_figures_listed_for_it() -> None:
    names = {layer.name: layer for layer in registry.layers()}
    assert [n for n in names][:4] == ["base", "units", "orders", "hotspots"]
    assert not names["sensors"].pending and not names["alarms"].pending and names["sensors"].source == "monitoring"
    figures = {i.name: i for i in registry.indicators()}
    assert not [n for n, i in figures.items() if i.pending]  # the monitoring package connects all it lists
    assert {"air_quality", "water_quality", "active_alarms", "congestion"} <= set(figures)
    assert not figures["on_time_rate"].pending and figures["on_time_rate"].fmt == "percent"


def test_a_value_being_computed_is_waited_for_not_computed_again_beside_it() -> None:
    cache = service._TtlCache(seconds=60.0)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> int:
        calls.append("first")
        started.set()
        release.wait(5)
        return 1

    answers: dict[str, int] = {}
    first = threading.Thread(target=lambda: answers.setdefault("first", cache.get("k", slow)))
    first.start()
    assert started.wait(5)
    second = threading.Thread(
        target=lambda: answers.setdefault("second", cache.get("k", lambda: calls.append("x") or 2))
    )
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the first computation, not computing its own
    release.set()
    first.join(5)
    second.join(5)
    assert answers == {"first": 1, "second": 1} and calls == ["first"]
    # Another key is not held up by it; a computation that fails leaves the next caller to compute.
    assert cache.get("other", lambda: 3) == 3

    def failing() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get("bad", failing)
    assert cache.get("bad", lambda: 4) == 4
