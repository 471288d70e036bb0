"""A real browser on the one map (一张图) of a real ``cityhub serve``: the district outline, the units, the orders
counted in grid cells at district zoom and drawn one by one up close, a popup that links to the order (its title
masked for a leader, as the order page shows it), the indicator panel, and the big screen.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` from PyPI (the dev extra), and Leaflet's files
in ``web/static/vendor`` (``make install``); skipped with the reason otherwise. Runs on both backends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from browser_helpers import sync_api
from cityhub.config import get_settings
from cityhub.db import reset_engine, session_scope
from cityhub.intake.service import submit
from cityhub.monitoring import service as monitoring
from cityhub.monitoring.schemas import SensorCreate
from cityhub.org.models import Unit
from cityhub.web import vendor
from cityhub.web.i18n import LANGUAGE_COOKIE
from process_helpers import BROWSER_SIDE, served_app, wait_in_page
from web_helpers import PASSWORD, build_world, module_database, pointed_at, world_env

pytestmark = [
    pytest.mark.skipif(
        bool(vendor.missing()),
        reason="the map needs Leaflet in web/static/vendor (npm ci; python -m cityhub.web.vendor)",
    ),
]
NAME = "李雪梅"
# (lat, lng) of the open orders, all in 景泰 (W-JT): two apart and a cluster of four in the middle of one grid cell at
# zoom 11 and at zoom 12 (cells of 0.033° and 0.016°), the zoom the district opens at.
POINTS = [
    (23.1894, 113.2773),
    (23.1897, 113.2769),
    (23.1890, 113.2771),
    (23.1893, 113.2776),
    (23.25, 113.3),
    (23.3, 113.35),
]


def _seed() -> list[int]:
    """The world, its district the packaged 白云区, and the six open orders of :data:`POINTS`; returns their ids."""
    with session_scope() as s:
        world = build_world(s)
        # The district is 白云区: the map's base is the packaged outline of 440111.
        s.execute(update(Unit).where(Unit.id == world.district).values(code="440111"))
        ids = []
        for i, (lat, lng) in enumerate(POINTS):
            data = {
                "channel": "hotline",
                "title": f"{NAME}反映路灯不亮" if i == 0 else f"第{i}处路灯不亮",
                "content": f"小区门口第{i}盏路灯坏了",
                "citizen_name": NAME if i == 0 else None,
                "street_code": "W-JT",
                "lat": lat,
                "lng": lng,
            }
            ids.append(submit(s, data=data, similar=False, defer_duplicates=True).order.id)
    return ids


@pytest.fixture
def own_server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A server of the test's own over ``app_db`` (its backend's database), seeded by :func:`_seed`: for the runs on
    PostgreSQL, and for a test that adds to what the map draws (the others' server must not show it)."""
    env = {"CITYHUB_DATABASE_URL": app_db, **world_env(tmp_path / "no-model"), "CITYHUB_DEDUPE_AUTO_MERGE": "false"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_engine()
    ids = _seed()
    log_path = tmp_path / "serve.log"
    with served_app(env, log_path, ready=(200, 503)) as base:
        yield {"base": base, "ids": ids}


@pytest.fixture(scope="module")
def served(migrated_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server for the module's SQLite runs, over a database of its own seeded once (:func:`_seed`): the tests
    only read it (what they change is their browser context's)."""
    directory = tmp_path_factory.mktemp("map")
    env = {
        "CITYHUB_DATABASE_URL": module_database(migrated_sqlite_template, directory),
        **world_env(directory / "no-model"),
        "CITYHUB_DEDUPE_AUTO_MERGE": "false",
    }
    with pointed_at(env):
        ids = _seed()
    with served_app(env, directory / "serve.log", ready=(200, 503)) as base:
        yield {"base": base, "ids": ids, "env": env}


@pytest.fixture
def server(db_backend: str, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The map's server for the test's backend: on SQLite the module's (:func:`served`, this process pointed at its
    database), on PostgreSQL one of the test's own (:func:`own_server`)."""
    if db_backend != "sqlite":
        yield request.getfixturevalue("own_server")
        return
    served_ = request.getfixturevalue("served")
    with pointed_at(served_["env"]):
        yield served_


def _sign_in_as_lead(page: Any, base: str) -> None:
    """Sign the page in as the district's leader: the map's and the big screen's reader."""
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard")


def test_the_map_draws_its_layers_and_a_popup_leads_to_the_order(server, browser) -> None:
    base = server["base"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(60_000)  # a loaded machine (two cores shared) is slow, not wrong
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    _sign_in_as_lead(page, base)
    page.click('nav a[href="/map"]')
    page.wait_for_url(f"{base}/map")
    # The base outline, the two streets and the orders, in cells at district zoom.
    page.wait_for_selector('#map[data-loaded-base="1"][data-loaded-units][data-mode-orders="cells"]')
    assert page.get_attribute("#map", "data-loaded-units") == "2"
    cells = page.locator(".leaflet-marker-icon.cell-icon")
    counts = [int(text) for text in cells.all_inner_texts()]
    assert sorted(counts) == [1, 1, 4]
    assert page.locator('[data-testid="ind-value-open"]').inner_text() == str(len(POINTS))
    # A cell's popup says how many orders it holds; "zoom in" zooms to it, where the orders are drawn one by one.
    page.locator(".leaflet-marker-icon.cell-icon", has_text="4").click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "景泰街道一带在办工单 4 件" in popup.inner_text()  # the cell named by its orders' street
    popup.locator("[data-zoom]").click()
    page.wait_for_selector('#map[data-mode-orders="points"]')
    wait_in_page(page, "document.querySelector('#map').getAttribute('data-loaded-orders') === '4'")
    # Click the first order's marker (drawn on the canvas) where the map puts its (masked, two-decimal) point. On a
    # loaded machine the zoom may still be animating or the layer redrawing when the point is computed: the click is
    # tried again (with the point computed afresh) until the popup opens.
    order_popup = page.locator('[data-testid="order-popup"]')
    for _attempt in range(10):
        x, y = page.evaluate(
            """([lat, lng]) => {
                const map = window.cityhubMap, box = document.querySelector('#map').getBoundingClientRect();
                const p = map.latLngToContainerPoint([lat, lng]);
                return [box.left + p.x, box.top + p.y];
            }""",
            [round(POINTS[0][0], 2), round(POINTS[0][1], 2)],
        )
        page.mouse.click(x, y)
        try:
            order_popup.wait_for(timeout=3000)
            break
        except sync_api.TimeoutError:
            page.wait_for_timeout(500)
    order_popup.wait_for()
    text = order_popup.inner_text()
    assert NAME not in text and "路灯不亮" in text and "已脱敏" in text  # the leader's order view is masked
    link = order_popup.locator("a")
    number = link.inner_text()
    link.click()
    page.wait_for_url(re.compile(r".*/orders/\d+$"))
    assert int(page.url.rsplit("/", 1)[1]) in server["ids"][:4] and number in page.content()
    # The big screen: the whole window, no menu, the same session and the map drawn.
    page.goto(f"{base}/map?screen=1")
    page.wait_for_selector('body.screen #map[data-loaded-base="1"][data-loaded-orders]')
    assert page.locator("header.topbar").count() == 0
    assert page.locator('[data-testid="ind-value-open"]').inner_text() == str(len(POINTS))
    assert not errors, errors


def test_the_maps_list_writes_a_large_count_as_the_pages_do_in_both_languages(server, browser) -> None:
    """The list beside the map said "3006 open orders in the map's view" where the pages write 3,006: the script's
    own messages group a count's digits as the language does (i18n.count_text), told by the page which parameters
    are counts. The orders layer's answer is made to count 3006 open orders (six are served)."""

    def many(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        if body.get("mode") == "cells":
            body["total"] = 3006
        route.fulfill(response=answer, json=body)

    for lang, said in (("zh-CN", "地图范围内共 3,006 件在办工单"), ("en", "3,006 open orders in the map's view")):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_cookies([{"name": LANGUAGE_COOKIE, "value": lang, "url": server["base"]}])
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.route(re.compile(r".*/api/v1/map/layers/orders\b.*"), many)
        _sign_in_as_lead(page, server["base"])
        page.goto(f"{server['base']}/map")
        page.wait_for_selector('#map[data-mode-orders="cells"]')
        wait_in_page(page, "document.querySelector('#map-orders-note').textContent.includes('3')")
        assert said in page.inner_text('[data-testid="map-orders-note"]'), lang
        context.close()


@pytest.mark.sqlite_only(BROWSER_SIDE)
def test_the_map_draws_its_layers_in_the_colours_of_the_pages_theme(server, browser) -> None:
    """map.js takes its colours from app.css's roles: the dark theme's under a dark system (the user's 跟随系统), the
    light theme's once the system turns light with the page open — its layers drawn again — the map's background
    with them."""
    context = browser.new_context(color_scheme="dark", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    _sign_in_as_lead(page, server["base"])
    page.goto(f"{server['base']}/map")
    page.wait_for_selector('#map[data-loaded-base="1"][data-loaded-units]')
    drawn = """() => { const seen = new Set(); window.cityhubMap.eachLayer(l => {
        if (l.options && l.options.color) { seen.add(l.options.color); seen.add(l.options.fillColor); } });
        return [...seen]; }"""
    background = "getComputedStyle(document.querySelector('#map')).backgroundColor"
    dark = set(page.evaluate(drawn))
    assert {"#4fc3f7", "#0f2a44", "#9be7c4"} <= dark and "#5b6b7f" not in dark, dark  # outline, district, streets
    assert page.evaluate(background) == "rgb(10, 26, 43)"
    page.emulate_media(color_scheme="light")
    wanted, gone = {"#5b6b7f", "#eef3f8", "#2f7d5b"}, {"#4fc3f7", "#9be7c4", "#4cb782"}
    for _attempt in range(240):  # each layer is fetched and drawn again, each in its own time: wait for all of them
        light = set(page.evaluate(drawn))
        if wanted <= light and not light & gone:
            break
        page.wait_for_timeout(250)
    assert wanted <= light and not light & gone, light
    assert page.evaluate(background) == "rgb(223, 231, 239)"
    context.close()


@pytest.mark.sqlite_only(BROWSER_SIDE)
def test_the_big_screen_clock_keeps_the_district_time_on_a_screen_set_to_another_zone(server, browser) -> None:
    """The big screen's clock and the map's "updated at" read in the district's zone, as the figures the server
    writes beside them do — also on a wall screen whose own zone is UTC or New York."""
    district = get_settings().tz
    # The day as the pages write it, in English too (there it read 12/7/2026, month first).
    for zone, lang in (("UTC", "zh-CN"), ("America/New_York", "zh-CN"), ("UTC", "en")):
        context = browser.new_context(locale=lang, timezone_id=zone, viewport={"width": 1920, "height": 1080})
        context.add_cookies([{"name": "cityhub_lang", "value": lang, "url": server["base"]}])
        page = context.new_page()
        page.set_default_timeout(60_000)
        _sign_in_as_lead(page, server["base"])
        page.goto(f"{server['base']}/map?screen=1")
        page.wait_for_selector("body.screen #map[data-loaded-orders]")
        wait_in_page(page, "/\\d+:\\d+:\\d+/.test(document.querySelector('#map-status').textContent)")
        now = datetime.now(district)
        shown_clock = page.inner_text("#screen-clock")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown_clock), (lang, shown_clock)
        y, mo, d, h, mi, sec = (int(x) for x in re.findall(r"\d+", shown_clock))
        shown = datetime(y, mo, d, h, mi, sec, tzinfo=district)
        assert abs((shown - now).total_seconds()) < 120, (zone, shown, now)
        h, mi, sec = (int(x) for x in re.search(r"(\d+):(\d+):(\d+)", page.inner_text("#map-status")).groups())
        updated = now.replace(hour=h, minute=mi, second=sec)
        assert min(abs((updated - now).total_seconds()), 86400 - abs((updated - now).total_seconds())) < 120, zone
        context.close()


@pytest.mark.sqlite_only(BROWSER_SIDE)
def test_the_api_documentation_works_offline_under_the_policy(server, browser) -> None:
    """/docs: Swagger UI from the server's own vendored files lists the API's operations; the page asks no other
    host for anything and the content security policy refuses nothing."""
    base = server["base"]
    page = browser.new_page()
    page.set_default_timeout(60_000)
    hosts: set[str] = set()
    problems: list[str] = []
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    assert "cityhub" in page.inner_text(".swagger-ui .info .title")
    # Swagger UI 5 draws a list of 100 operations or more only where the window shows it (virtualised): the
    # operations are read while the page scrolls down to its end.
    paths: set[str] = set()
    while True:
        paths |= {p.replace("\u200b", "") for p in page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()}
        before = page.evaluate("window.scrollY")
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(150)
        if page.evaluate("window.scrollY") == before:
            break
    assert "/api/v1/orders" in paths and "/api/v1/orders/urge" in paths and "/open311/v2/requests.{fmt}" in paths
    assert hosts == {base.split("/")[2]}, hosts
    assert not problems, problems


@pytest.mark.sqlite_only(BROWSER_SIDE)
def test_a_keyboard_reaches_the_maps_orders_through_its_list_and_opens_one(server, browser) -> None:
    """The map's points are drawn on a canvas and take no focus: the list beside the map holds what it shows — areas
    far away (a button zooms the map to one), orders up close (links) — and follows the map's filters."""
    base = server["base"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(60_000)
    _sign_in_as_lead(page, base)
    page.goto(f"{base}/map")
    page.wait_for_selector('#map[data-mode-orders="cells"]')
    listing = page.locator('[data-testid="map-orders-list"]')
    assert "6 件在办工单" in page.inner_text('[data-testid="map-orders-note"]')
    assert listing.locator("button[data-zoom]").count() == 3
    # An area's button reads as a link: its lines start beside the bullet (a button centres them, away on a phone).
    assert listing.locator("button[data-zoom]").first.evaluate("b => getComputedStyle(b).textAlign") == "start"

    def tab_into_list() -> str:
        for _ in range(150):
            page.keyboard.press("Tab")
            inside = page.evaluate(
                "() => document.querySelector('#map-orders-list').contains(document.activeElement) &&"
                " document.activeElement.tagName"
            )
            if inside:
                return str(inside)
        raise AssertionError("Tab never reached the map's list")

    # The largest area first: Enter on its button zooms the map to it, where its orders are listed one by one.
    assert tab_into_list() == "BUTTON"
    assert "4 件" in page.evaluate("document.activeElement.textContent")
    # Named by the street its orders are in; the street's three areas told apart by their rank in the list.
    assert page.evaluate("document.activeElement.textContent").startswith("景泰街道一带 第 1 片：4 件")
    names = [text.split("：")[0] for text in listing.locator("button[data-zoom]").all_inner_texts()]
    assert names == ["景泰街道一带 第 1 片", "景泰街道一带 第 2 片", "景泰街道一带 第 3 片"]
    page.keyboard.press("Enter")
    page.wait_for_selector('#map[data-mode-orders="points"]')
    wait_in_page(page, "document.querySelectorAll('#map-orders-list a').length === 4")
    # The button zoomed away from is gone: the focus waits on the list's heading, not lost to the page's top.
    wait_in_page(page, "document.activeElement && document.activeElement.id === 'map-orders-title'")
    assert tab_into_list() == "A"
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert "已脱敏" in listing.inner_text() and NAME not in listing.inner_text()  # the leader's view is masked
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/orders/\d+$"))
    assert page.url.endswith(focused) and int(page.url.rsplit("/", 1)[1]) in server["ids"][:4]
    # The list follows the map's filters: the layer off, it says so; the order list's link keeps the category.
    page.go_back()
    page.wait_for_selector("#map[data-loaded-orders]")
    page.uncheck('input[data-layer="orders"]')
    wait_in_page(page, "document.querySelector('#map-orders-note').textContent.includes('工单图层已关闭')")
    assert listing.locator("li").count() == 0
    page.select_option('[data-testid="map-category"]', index=1)
    link = page.get_attribute('[data-testid="map-orders-all"]', "href")
    assert link is not None and "state=open" in link and "category_id=" in link


@pytest.mark.sqlite_only(BROWSER_SIDE)
def test_the_big_screen_fits_a_1440_screen_and_a_phone_in_both_languages(own_server, browser) -> None:
    """The big screen's figures stay inside their panel at 1440×900 — an air-quality figure with its unit (60.5
    µg/m³) widened its column and pushed the other past the panel's edge, cut off — and on a phone (390 px) the page
    does not run wider than the screen and the title reads on a line or two (it stood one character a line in the
    wall display's two columns, the exit link past the screen's edge). Its sensor is drawn on the map: a server of
    its own."""
    server = own_server
    with session_scope() as s:
        monitoring.create_sensor(
            s,
            data=SensorCreate(
                code="AQ-W1", name="景泰空气站", kind="air_quality", metrics={"pm25": "µg/m³"}, lat=23.19, lng=113.28
            ),
        )
        at = datetime.now(UTC).replace(microsecond=0).isoformat()
        monitoring.ingest(s, items=[{"metric": "pm25", "measured_at": at, "value": 60.5}], sensor_code="AQ-W1")
    for lang in ("zh-CN", "en"):
        for width, height in ((1440, 900), (390, 844)):
            context = browser.new_context(viewport={"width": width, "height": height})
            context.add_cookies([{"name": LANGUAGE_COOKIE, "value": lang, "url": server["base"]}])
            page = context.new_page()
            page.set_default_timeout(60_000)
            _sign_in_as_lead(page, server["base"])
            page.goto(f"{server['base']}/map?screen=1")
            page.wait_for_selector('body.screen #map[data-loaded-base="1"]')
            assert "60.5" in page.inner_text('[data-testid="ind-value-air_quality"]')
            fit = page.evaluate(
                """() => {
                    const side = document.querySelector('.screen-side'), box = side.getBoundingClientRect();
                    const cut = [...document.querySelectorAll('.ind')]
                        .filter(e => e.getBoundingClientRect().right > box.right + 0.5)
                        .map(e => e.textContent.trim().split(/\\s+/)[0]);
                    const h1 = document.querySelector('.screen-head h1'), style = getComputedStyle(h1);
                    const exit = document.querySelector('[data-testid="screen-exit"]').getBoundingClientRect();
                    return {
                        cut,
                        sideScrolls: side.scrollWidth > side.clientWidth,
                        pageWidth: document.documentElement.scrollWidth,
                        titleEms: h1.getBoundingClientRect().height / parseFloat(style.fontSize),
                        exitRight: exit.right,
                    };
                }"""
            )
            where = (lang, width)
            assert fit["cut"] == [] and not fit["sideScrolls"], (where, fit)
            assert fit["pageWidth"] <= width and fit["exitRight"] <= width, (where, fit)
            assert fit["titleEms"] < 3, (where, fit)  # two lines at most
            context.close()
