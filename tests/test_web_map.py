"""The one map's pages (``/map``, ``/map?screen=1``, ``/map/panel``) over the real app on both backends: who gets the
menu entry and the page, the indicator panel within the user's scope, the layers and legend from the registry, the
big screen without the menu, and the clear message when Leaflet's files are not installed.

The organisation and accounts are the small world of ``web_helpers``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app_helpers import shared_app
from cityhub.db import reset_engine, session_scope
from cityhub.intake.service import submit
from cityhub.onemap import registry, service
from cityhub.web import vendor
from web_helpers import ACCOUNTS, build_world, login, world_env


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    for key, value in world_env(tmp_path / "no-model").items():
        monkeypatch.setenv(key, value)
    reset_engine()
    service.clear_caches()
    with session_scope() as s:
        world = build_world(s)
        for i, street in enumerate(["W-JT", "W-JT", "W-JX"]):
            submit(
                s,
                data={
                    "channel": "hotline",
                    "title": f"路灯不亮第{i}处",
                    "content": f"小区门口第{i}盏路灯坏了",
                    "street_code": street,
                    "lat": 23.18 + i / 100,
                    "lng": 113.28 + i / 100,
                },
                similar=False,
                defer_duplicates=True,
            )
        return {"street_a": world.street_a}


def _indicator(page: str, name: str) -> str:
    match = re.search(rf'data-testid="ind-value-{name}">(?:<a [^>]*>)?([^<]*)<', page)
    assert match, name
    return match.group(1).strip()


def test_staff_have_the_map_in_their_menu_and_citizens_neither_menu_nor_page(org) -> None:
    for username, (role, *_rest) in ACCOUNTS.items():
        client = login(username)
        menu = client.get("/orders").text
        if role.value == "citizen":
            assert 'href="/map"' not in menu
            assert client.get("/map").status_code == 403
            assert client.get("/map/panel").status_code == 403
        else:
            assert 'href="/map"' in menu, username
            page = client.get("/map")
            assert page.status_code == 200 and 'aria-current="page">一张图' in page.text, username
    anonymous = TestClient(shared_app(), raise_server_exceptions=False)
    response = anonymous.get("/map?screen=1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=%2Fmap")


def test_the_map_page_lists_the_registry_layers_and_the_scoped_indicators(org, monkeypatch) -> None:
    registry.indicators()  # the built-in and plug-in entries registered
    # A figure listed for a package that is not installed (nothing computes it yet).
    pending = registry.Indicator("probe", "map.ind.congestion", None, source="elsewhere")
    monkeypatch.setitem(registry._indicators, "probe", pending)
    page = login("lead").get("/map").text
    assert "<h1>一张图" in page and 'href="/map?screen=1"' in page
    for name in ("base", "units", "orders", "hotspots", "sensors", "alarms"):
        assert f'data-layer="{name}" checked' in page, name  # the monitoring package's layers too
    # A figure without a source is shown as not connected, not as zero; one without sensors as unknown.
    probe = re.search(r'data-testid="ind-probe">(.*?)</div>', page, re.S)
    assert probe is not None and "未接入" in probe.group(1)
    congestion = re.search(r'data-testid="ind-congestion">(.*?)</div>', page, re.S)
    assert congestion is not None and "未接入" not in congestion.group(1)
    assert 'data-testid="ind-value-congestion">—' in congestion.group(1)  # no road segments
    assert 'data-testid="ind-air_quality"' in page
    assert (_indicator(page, "orders_today"), _indicator(page, "open"), _indicator(page, "overdue")) == ("3", "3", "0")
    config = json.loads(
        re.search(r'<script type="application/json" id="map-config">(.*?)</script>', page, re.S).group(1)
    )
    assert [layer["name"] for layer in config["layers"]] == ["base", "units", "orders", "hotspots", "sensors", "alarms"]
    assert config["scoped"] is False and config["refresh"] == 30 and config["states"]["received"] == "已受理"
    # A street's handler: its own street's figures, and the page says whose map it is.
    street = login("hand_a").get("/map").text
    assert (_indicator(street, "orders_today"), _indicator(street, "open")) == ("2", "2")
    assert 'data-testid="map-scope">（景泰街道管辖范围）' in street
    panel = login("hand_b").get("/map/panel")
    assert panel.status_code == 200 and 'id="map-panel"' in panel.text and "<html" not in panel.text
    assert _indicator(panel.text, "open") == "1"


def test_the_page_leaves_the_slow_figures_to_the_panels_first_fetch(org) -> None:
    client = login("lead")
    page = client.get("/map").text
    # Nothing computed yet in this process: the findings and the on-time rate are shown as being computed, and the
    # panel marks itself partial so that static/map.js fetches it again at once.
    assert 'data-partial="1"' in page and "计算中…" in page
    assert _indicator(page, "active_hotspots") == "…" and _indicator(page, "on_time_rate") == "…"
    panel = client.get("/map/panel").text
    assert "data-partial" not in panel and _indicator(panel, "active_hotspots") == "0"
    assert _indicator(panel, "on_time_rate") == "—"  # nothing replied in 30 days: no rate, not 0 %
    # Once computed (kept per process), the page shows them at once.
    again = client.get("/map").text
    assert "data-partial" not in again and _indicator(again, "active_hotspots") == "0"


def test_the_big_screen_fills_the_window_without_the_menu_and_keeps_the_session(org) -> None:
    client = login("hand_a")
    screen = client.get("/map?screen=1")
    assert screen.status_code == 200 and 'class="screen"' in screen.text
    assert 'class="topbar"' not in screen.text and 'href="/orders"' not in screen.text
    assert _indicator(screen.text, "open") == "2"  # still the handler's street
    assert '"screen": true' in screen.text
    assert 'class="map-panel big"' in client.get("/map/panel?screen=1").text
    assert screen.headers["cache-control"] == "no-store"


def test_without_leaflet_the_map_says_so_and_the_figures_still_show(org, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(vendor, "VENDOR_DIR", tmp_path / "absent")
    for path in ("/map", "/map?screen=1"):
        page = login("lead").get(path).text
        assert "leaflet.js" not in page and 'id="map"' not in page
        notice = re.search(r'<p class="error map-unavailable"[^>]*>([^<]*)</p>', page)
        assert notice and "hidden" not in notice.group(0) and "Leaflet" in notice.group(1)
        assert _indicator(page, "open") == "3"
    assert "/static/vendor/leaflet/leaflet.js" in _with_vendor_files(tmp_path)


def _with_vendor_files(tmp_path: Path) -> str:
    """The page once the vendor files exist (copied from a fake node_modules into a temporary vendor dir)."""
    node_modules = tmp_path / "node_modules"
    for rel in vendor.FILES.values():
        (node_modules / rel).parent.mkdir(parents=True, exist_ok=True)
        (node_modules / rel).write_text("/* stub */")
    vendor.copy(node_modules, tmp_path / "absent")
    return login("lead").get("/map").text


def test_a_units_counts_link_to_the_orders_they_count(org) -> None:
    """A street's 在办 on the map counts the open orders placed in it, whoever leads them (here nobody yet: they wait
    for dispatch); its link lists those orders — it listed the orders the street's own office leads, none of these —
    and the list's 镇街 filter shows as chosen."""
    client = login("lead")
    units = client.get("/api/v1/map/layers/units").json()["features"]
    street = next(f["properties"] for f in units if f["properties"]["unit_id"] == org["street_a"])
    assert street["open"] == 2
    listed = client.get(street["link"])
    assert listed.status_code == 200
    numbers = re.findall(r'<td><a href="/orders/\d+">([^<]+)</a></td>', listed.text)
    assert len(numbers) == street["open"]
    assert re.search(rf'<option value="{org["street_a"]}" selected>', listed.text)


def test_an_indicators_text_is_in_the_readers_language(org) -> None:
    # An indicator a package registers words its detail with ctx.t: the panel builds its context in the reader's
    # language (it was always the default's, so an English map showed the detail in Chinese).
    def silent(ctx: registry.MapContext) -> registry.IndicatorValue:
        return registry.IndicatorValue(1, detail=ctx.t("map.sensor.never"))

    registry.register_indicator(registry.Indicator("plug_silent", "map.ind.silent_sensors", silent))
    try:
        client = login("lead")
        assert "离线：登记后从未上报数据" in client.get("/map/panel").text
        client.cookies.set("cityhub_lang", "en")
        for path in ("/map/panel", "/map", "/map?screen=1"):
            panel = client.get(path).text
            assert "Silent: never reported since registered" in panel and "离线" not in panel, path
        figures = {i["name"]: i for i in client.get("/api/v1/map/indicators").json()["indicators"]}
        assert figures["plug_silent"]["detail"] == "Silent: never reported since registered"  # the API's too
    finally:
        registry._indicators.pop("plug_silent", None)
