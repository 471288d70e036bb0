"""A real browser on the small map of one place, on a phone (390 × 844 and 360 × 740): an order's page draws its point
over the units' outlines (the one map's drawing, from /api/v1/places/boundaries) and the page scrolls past it — by
finger and by wheel —; an order without a point has no map; a grid inspector taps the place of a report on the
intake form's map, which fills its position and says which street and community it falls in — or plainly that it
falls in none — before the report is sent; the keyboard goes into the map and out of it.

Needs Debian's ``chromium`` at /usr/bin/chromium, ``playwright`` (the dev extra) and Leaflet's files in
``web/static/vendor``; skipped with the reason otherwise. What is measured is the browser's: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from cityhub.auth import service as auth
from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.org.schemas import UserCreate
from cityhub.web import vendor
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, PHONES, served_app, wait_in_page
from web_helpers import PASSWORD, build_world, module_database, pointed_at, sign_in, square, use_world_env, world_env

pytestmark = [
    pytest.mark.sqlite_only(BROWSER_SIDE),
    pytest.mark.skipif(
        bool(vendor.missing()),
        reason="the map needs Leaflet in web/static/vendor (npm ci; python -m cityhub.web.vendor)",
    ),
]


JINGTAI = square(113.26, 23.16, 113.30, 23.20)
FEIE = square(113.27, 23.17, 113.29, 23.19)
POINT = (23.1805, 113.2801)  # in 飞鹅
NOWHERE = (23.215, 113.245)  # north-west of 景泰, in no unit's boundary


def _seed() -> dict[str, int]:
    """The world with the outlines of 景泰 and its 飞鹅, a grid inspector of 飞鹅, and three orders: one with its point
    and a long text, one without a point, a citizen's own with its point. Returns their ids."""
    with session_scope() as s:
        world = build_world(s)
        s.execute(update(Unit).where(Unit.id == world.district).values(code="440111"))  # the packaged outline
        s.execute(update(Unit).where(Unit.id == world.street_a).values(boundary=JINGTAI))
        feie = Unit(code="W-JT-FE", name="飞鹅社区", tier=UnitTier.COMMUNITY, parent_id=world.street_a, boundary=FEIE)
        s.add(feie)
        s.flush()
        auth.create_account(
            s,
            data=UserCreate(username="grid", full_name="邓网格", role=Role.INSPECTOR, unit_id=feie.id),
            password=PASSWORD,
        )
        # A long appeal, so that the page goes on below the map; one more without a point.
        content = "飞鹅新村路口井盖破损，晚上行人容易绊倒。" * 12
        data = {"channel": "grid", "content": content, "street_code": "W-JT", "lat": POINT[0], "lng": POINT[1]}
        pointed = submit(s, data=data).order.id
        unpointed = submit(s, data={"channel": "hotline", "content": "景泰路路灯不亮", "street_code": "W-JT"}).order.id
        # A citizen's own appeal with its point, in 景泰's 飞鹅.
        mine = submit(s, data={**data, "channel": "web", "content": "飞鹅新村路口路灯不亮"}).order.id
        cit = s.scalar(select(User.id).where(User.username == "cit"))
        s.execute(
            update(Order)
            .where(Order.id == mine)
            .values(citizen_user_id=cit, street_id=world.street_a, community_id=feie.id)
        )
    return {"pointed": pointed, "unpointed": unpointed, "mine": mine}


@pytest.fixture(scope="module")
def served(migrated_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server for the module, over a database of its own seeded once (:func:`_seed`): its tests read the orders
    and outlines, and the one that sends a report sends its own (found by its text). The two tests that take the
    outlines away have a server of their own (:func:`own_server`)."""
    directory = tmp_path_factory.mktemp("place-map")
    env = {
        "CITYHUB_DATABASE_URL": module_database(migrated_sqlite_template, directory),
        **world_env(directory / "no-model"),
        "CITYHUB_FILES_DIR": str(directory),
    }
    with pointed_at(env):
        ids = _seed()
    with served_app(env, directory / "serve.log") as base:
        yield {"base": base, **ids, "env": env}


@pytest.fixture
def server(served: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The module's server (:func:`served`); this process pointed at its database."""
    with pointed_at(served["env"]):
        yield served


@pytest.fixture
def own_server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A server of the test's own over ``app_db``, seeded by :func:`_seed`: for a test that changes the outlines."""
    env = use_world_env(app_db, tmp_path, monkeypatch)
    ids = _seed()
    with served_app(env, tmp_path / "serve.log") as base:
        yield {"base": base, **ids}


def _phone(browser: Any, base: str, viewport: dict[str, int], username: str, **context: Any) -> Any:
    page = browser.new_context(locale="zh-CN", viewport=viewport, is_mobile=True, has_touch=True, **context).new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.problems = problems
    return sign_in(page, f"{base}/login", username)


def _screen_point(page: Any, selector: str, lat: float, lng: float) -> tuple[float, float]:
    """Where the map in ``selector`` draws (lat, lng), in the page's coordinates."""
    x, y = page.evaluate(
        """([selector, lat, lng]) => {
            const element = document.querySelector(selector), box = element.getBoundingClientRect();
            const p = element.cityhubMap.latLngToContainerPoint([lat, lng]);
            return [box.left + p.x, box.top + p.y];
        }""",
        [selector, lat, lng],
    )
    return x, y


def _swipe_up(page: Any, x: float, y: float) -> None:
    """A finger put down at (x, y) and moved 200 px up, as the browser gets it from a touch screen."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 11):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y - 20 * step}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def _sideways(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def test_an_orders_page_shows_its_point_on_a_map_the_page_scrolls_past(server: dict[str, Any], browser: Any) -> None:
    for viewport in PHONES:
        page = _phone(browser, server["base"], viewport, "hand_a")
        page.goto(f"{server['base']}/orders/{server['pointed']}")
        # The outlines the one map draws: the district's packaged one, 景泰's and 飞鹅's; the point on them.
        page.wait_for_selector('#order-map[data-loaded="3"]')
        # The point as the reader's order view gives it: a handler of another unit than the lead's reads it masked,
        # to two decimals, as the facts beside it say.
        shown = [float(v) for v in page.inner_text('[data-testid="position"]').split(",")]
        assert shown == [round(POINT[0], 2), round(POINT[1], 2)]
        assert page.get_attribute("#order-map", "data-point") == f"{shown[0]},{shown[1]}"
        drawn = page.evaluate(
            """() => { const map = document.querySelector('#order-map').cityhubMap, seen = [];
                map.eachLayer(l => { if (l.getLatLng && l.options.pane === 'place') seen.push(l.getLatLng()); });
                return seen.map(p => [p.lat, p.lng]); }"""
        )
        assert drawn == [shown]
        x, y = _screen_point(page, "#order-map", *shown)
        box = page.locator("#order-map").bounding_box()
        assert box and box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"]
        # It fits the phone: nothing runs past the screen, and the map leaves most of the screen to the page.
        assert _sideways(page) == 0 and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert box["height"] <= viewport["height"] / 2
        # One finger on the map scrolls the page (the map pans by its buttons and two fingers, not by one).
        assert page.evaluate("getComputedStyle(document.querySelector('#order-map')).touchAction") == "pan-x pan-y"
        page.locator("#order-map").scroll_into_view_if_needed()
        box = page.locator("#order-map").bounding_box()
        before = page.evaluate("window.scrollY")
        centre = page.evaluate("document.querySelector('#order-map').cityhubMap.getCenter()")
        zoom = page.evaluate("document.querySelector('#order-map').cityhubMap.getZoom()")
        _swipe_up(page, box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8)
        wait_in_page(page, f"window.scrollY > {before} + 50", timeout=10)
        assert page.evaluate("document.querySelector('#order-map').cityhubMap.getCenter()") == centre
        # The wheel over the map scrolls the page too, and leaves the map's zoom alone.
        page.evaluate("window.scrollTo(0, 0)")
        page.locator("#order-map").scroll_into_view_if_needed()
        box = page.locator("#order-map").bounding_box()
        before = page.evaluate("window.scrollY")
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 300)
        wait_in_page(page, f"window.scrollY > {before} + 50", timeout=10)
        assert page.evaluate("document.querySelector('#order-map').cityhubMap.getZoom()") == zoom
        assert not page.problems, page.problems
        # An order without a point: its facts, no map.
        page.goto(f"{server['base']}/orders/{server['unpointed']}")
        assert page.locator('[data-testid="facts"]').is_visible()
        assert page.locator("[data-place-map]").count() == 0 and page.locator('[data-testid="position"]').count() == 0
        page.context.close()


def test_a_citizens_appeal_map_shows_where_in_the_district_the_point_lies(server: dict[str, Any], browser: Any) -> None:
    """A citizen's appeal page zoomed to its point: with no background tiles (none offline), a dot on grey that said
    nothing of where it is. The view now fits the district's outline around the point, their street's and
    community's outlines drawn stronger; a staff member's order page is zoomed to the point as before."""
    page = _phone(browser, server["base"], {"width": 390, "height": 844}, "cit")
    page.goto(f"{server['base']}/orders/{server['mine']}")
    page.wait_for_selector('#order-map[data-loaded="3"]')
    seen = page.evaluate(
        """async () => {
            const map = document.querySelector('#order-map').cityhubMap, view = map.getBounds();
            const data = await (await fetch('/api/v1/places/boundaries')).json();
            const district = L.geoJSON(data.features.filter(f => f.properties.tier === 'district')).getBounds();
            return { district: view.contains(district), feie: view.contains([[23.17, 113.27], [23.19, 113.29]]),
                     point: view.contains([23.1805, 113.2801]), zoom: map.getZoom() };
        }"""
    )
    assert seen["district"] and seen["feie"] and seen["point"], seen
    assert seen["zoom"] < 15, seen
    box = page.locator("#order-map").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] <= 844 / 2
    assert not page.problems, page.problems
    page.context.close()
    # staff: zoomed to the point, as before
    page = _phone(browser, server["base"], {"width": 390, "height": 844}, "sup")
    page.goto(f"{server['base']}/orders/{server['mine']}")
    page.wait_for_selector('#order-map[data-loaded="3"]')
    assert page.evaluate("document.querySelector('#order-map').cityhubMap.getZoom()") == 15
    page.context.close()


def test_an_inspector_picks_the_place_on_the_map_and_hears_where_it_lies(server: dict[str, Any], browser: Any) -> None:
    for viewport in PHONES:
        page = _phone(browser, server["base"], viewport, "grid")
        page.goto(f"{server['base']}/intake")
        page.wait_for_selector('#place-map[data-loaded="3"]')
        assert _sideways(page) == 0
        assert page.locator('[data-testid="place-clear"]').is_hidden()  # no point yet
        # A tap inside 飞鹅: the position into the form, and where it lies said before sending.
        page.locator("#place-map").scroll_into_view_if_needed()
        page.touchscreen.tap(*_screen_point(page, "#place-map", *POINT))
        wait_in_page(page, "document.querySelector('#f-lat').value !== ''")
        lat, lng = float(page.input_value("#f-lat")), float(page.input_value("#f-lng"))
        assert abs(lat - POINT[0]) < 0.002 and abs(lng - POINT[1]) < 0.002, (lat, lng)
        where = page.locator('[data-testid="place-where"]')
        wait_in_page(page, "document.querySelector('#place-where').getAttribute('data-placed') === 'yes'")
        assert where.inner_text() == "该位置属于景泰街道 飞鹅社区"
        # A tap where no unit's boundary reaches: said plainly.
        page.touchscreen.tap(*_screen_point(page, "#place-map", *NOWHERE))
        wait_in_page(page, "document.querySelector('#place-where').getAttribute('data-placed') === 'no'")
        assert "不在本区任何镇街或村社的范围内" in where.inner_text()
        # Cleared, the form has no position and says nothing of one.
        page.locator('[data-testid="place-clear"]').click()
        wait_in_page(page, "document.querySelector('#f-lat').value === ''")
        assert page.input_value("#f-lng") == "" and where.inner_text() == ""
        assert page.get_attribute("#place-map", "data-point") == ""
        assert not page.problems, page.problems
        page.context.close()
    # Picked and sent: the report is where the map said.
    page = _phone(browser, server["base"], PHONES[0], "grid")
    page.goto(f"{server['base']}/intake")
    page.wait_for_selector('#place-map[data-loaded="3"]')
    page.locator("#place-map").scroll_into_view_if_needed()
    page.touchscreen.tap(*_screen_point(page, "#place-map", *POINT))
    wait_in_page(page, "document.querySelector('#place-where').getAttribute('data-placed') === 'yes'")
    page.fill("#f-content", "飞鹅新村路口有一处积水，车辆经过溅到行人")
    page.click('[data-testid="intake-submit"]')
    page.wait_for_load_state()
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.content.contains("积水"))).one()
        feie = s.scalars(select(Unit).where(Unit.code == "W-JT-FE")).one()
        assert order.community_id == feie.id and order.place_source == "coordinates"
        assert order.lat is not None and abs(order.lat - POINT[0]) < 0.002
    page.context.close()


def test_without_any_street_or_community_outline_the_pick_map_says_so(own_server: dict[str, Any], browser: Any) -> None:
    """A district that has entered no outline of its streets and communities (the demo's): a point is placed by
    none, and the map says that no position can tell the unit yet — not that the point lies outside them all."""
    server = own_server
    with session_scope() as s:
        s.execute(update(Unit).where(Unit.tier != UnitTier.DISTRICT).values(boundary=None))
    page = _phone(browser, server["base"], PHONES[0], "grid")
    page.goto(f"{server['base']}/intake")
    page.wait_for_selector('#place-map[data-loaded="1"]')  # the district's outline alone
    page.locator("#place-map").scroll_into_view_if_needed()
    page.touchscreen.tap(*_screen_point(page, "#place-map", *POINT))
    wait_in_page(page, "document.querySelector('#place-where').getAttribute('data-placed') === 'no'")
    said = page.locator('[data-testid="place-where"]').inner_text()
    assert "尚未录入镇街和村社的边界" in said and "不在本区" not in said
    assert not page.problems, page.problems
    page.context.close()


def test_a_point_tapped_before_the_outlines_are_read_is_said_once_they_are(
    own_server: dict[str, Any], browser: Any
) -> None:
    """On a slow line the outlines may come after the first tap: where the point lies is said only once they are
    read, so a district without street or community outlines is not told the point lies outside them all."""
    server = own_server
    with session_scope() as s:
        s.execute(update(Unit).where(Unit.tier != UnitTier.DISTRICT).values(boundary=None))
    page = _phone(browser, server["base"], PHONES[0], "grid")
    held: list[Any] = []
    page.route("**/api/v1/places/boundaries*", lambda route: held.append(route))  # answered below, after the tap
    page.goto(f"{server['base']}/intake")
    page.locator("#place-map").scroll_into_view_if_needed()
    while not held:
        page.wait_for_timeout(50)
    assert page.get_attribute("#place-map", "data-loaded") is None
    box = page.locator("#place-map").bounding_box()  # the district's centre, not yet fitted to its outline
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_in_page(page, "document.querySelector('#f-lat').value !== ''")
    page.wait_for_timeout(500)  # the position's own answer has come by now
    assert page.get_attribute("#place-where", "data-placed") is None
    held[0].continue_()
    wait_in_page(page, "document.querySelector('#place-where').getAttribute('data-placed') === 'no'")
    said = page.locator('[data-testid="place-where"]').inner_text()
    assert "尚未录入镇街和村社的边界" in said and "不在本区" not in said
    assert page.get_attribute("#place-map", "data-loaded") == "1"
    assert not page.problems, page.problems
    page.context.close()


def test_the_keyboard_goes_into_the_pick_map_and_out_of_it(server: dict[str, Any], browser: Any) -> None:
    """The map is one tab stop (its arrows pan it) between the address and the rest of the form: Tab leaves it. A
    citizen's form (我要反映) has it as an inspector's does."""
    page = _phone(browser, server["base"], PHONES[0], "cit")
    page.goto(f"{server['base']}/intake")
    page.wait_for_selector('#place-map[data-loaded="3"]')
    page.focus("#f-address")
    path = []
    for _ in range(8):
        page.keyboard.press("Tab")
        path.append(
            page.evaluate(
                """() => { const a = document.activeElement, map = document.querySelector('#place-map');
                    if (a === map) return 'map';
                    return map.contains(a) ? 'in-map' : a.id || a.getAttribute('name') || a.tagName; }"""
            )
        )
        if path[-1] not in ("map", "in-map", "locate-me") and "map" in path:
            break
    assert "map" in path, path
    after = path[path.index("map") + 1 :]
    assert after and any(step not in ("map", "in-map") for step in after), path
    # The map's own arrows pan it (Leaflet's keyboard), without a point being set.
    page.focus("#place-map")
    centre = page.evaluate("document.querySelector('#place-map').cityhubMap.getCenter().lng")
    page.keyboard.press("ArrowRight")
    wait_in_page(page, f"document.querySelector('#place-map').cityhubMap.getCenter().lng > {centre}", timeout=10)
    assert page.input_value("#f-lat") == ""
    page.context.close()


def test_the_maps_zoom_buttons_are_named_in_the_pages_language(server: dict[str, Any], browser: Any) -> None:
    """The map's + and − were Leaflet's, titled Zoom in / Zoom out on a Chinese page — the words a screen reader
    said of them on a citizen's 我要反映 and their order's page. They are now named in the page's language."""
    page = _phone(browser, server["base"], PHONES[0], "cit")
    for path in ("/intake", f"/orders/{server['pointed']}"):
        if path.startswith("/orders"):
            page = _phone(browser, server["base"], PHONES[0], "hand_a")
        page.goto(f"{server['base']}{path}")
        page.wait_for_selector(".leaflet-control-zoom-in")
        named = page.eval_on_selector_all(
            ".leaflet-control-zoom a", "els => els.map(e => [e.title, e.getAttribute('aria-label')])"
        )
        assert named == [["放大地图", "放大地图"], ["缩小地图", "缩小地图"]], (path, named)
        page.context.add_cookies([{"name": "cityhub_lang", "value": "en", "url": server["base"]}])
        page.goto(f"{server['base']}{path}")
        page.wait_for_selector(".leaflet-control-zoom-in")
        assert page.get_attribute(".leaflet-control-zoom-in", "title") == "Zoom in"
        assert page.problems == [], page.problems
        page.context.close()


def test_the_phones_position_is_put_on_the_map_and_placed_too(server: dict[str, Any], browser: Any) -> None:
    """使用当前位置: the device's position goes on the map, and the line under it says where it lies, as a tap."""
    page = _phone(
        browser,
        server["base"],
        PHONES[1],
        "grid",
        geolocation={"latitude": POINT[0], "longitude": POINT[1]},
        permissions=["geolocation"],
    )
    page.goto(f"{server['base']}/intake")
    page.wait_for_selector('#place-map[data-loaded="3"]')
    page.locator('[data-testid="locate-me"]').click()
    wait_in_page(page, "document.querySelector('#place-where').getAttribute('data-placed') === 'yes'")
    assert page.inner_text('[data-testid="place-where"]') == "该位置属于景泰街道 飞鹅社区"
    assert page.get_attribute("#place-map", "data-point") == f"{POINT[0]},{POINT[1]}"
    x, y = _screen_point(page, "#place-map", *POINT)
    box = page.locator("#place-map").bounding_box()
    assert box and box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"]
    page.context.close()
