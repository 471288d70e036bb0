"""A citizen's whole journey in a real browser, on a phone (390 × 844, Chinese) and at a desk (1440 × 900, English):
their position taken by 使用当前位置 and said as noted, not as two bare numbers; their appeal filed with a photo and
read as their 诉求 (appeal), placed by its street and community; its progress looked up on /track without signing in,
its number whole on its line; the answer read and rated, and the rating thanked.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is checked is the pages in a browser: SQLite only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from browser_helpers import sync_api
from cityhub.db import session_scope
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, served_app
from web_helpers import build_world, jpeg_photo, sign_in, square, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

POINT = (23.1805, 113.2801)  # in 景泰街道's 飞鹅社区
PHONE = "13800005555"


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        s.execute(update(Unit).where(Unit.id == world.street_a).values(boundary=square(113.26, 23.16, 113.30, 23.20)))
        s.add(
            Unit(
                code="W-JT-FE",
                name="飞鹅社区",
                tier=UnitTier.COMMUNITY,
                parent_id=world.street_a,
                boundary=square(113.27, 23.17, 113.29, 23.19),
            )
        )
    with served_app(env, tmp_path / "serve.log") as base:
        yield {"base": base, "street_a": world.street_a}


def _answered(order_id: int, street_a: int) -> str:
    """The appeal dispatched to 景泰街道, taken on and answered, as the staff's desks do it; its number."""
    with session_scope() as s:
        orders.act(s, order_id=order_id, action="dispatch", params={"unit_id": street_a})
        orders.act(s, order_id=order_id, action="accept")
        orders.act(s, order_id=order_id, action="start")
        orders.act(s, order_id=order_id, action="reply", params={"text": "已加固井盖，并设置警示标志。"})
        order = s.get(Order, order_id)
        assert order is not None
        return order.number


@pytest.mark.parametrize(
    ("lang", "viewport"),
    [("zh-CN", {"width": 390, "height": 844}), ("en", {"width": 1440, "height": 900})],
    ids=["phone-zh", "desk-en"],
)
def test_a_citizen_files_follows_and_rates_their_appeal(
    server: dict[str, Any], browser: Any, lang: str, viewport: dict[str, int]
) -> None:
    expect = sync_api.expect
    base = server["base"]
    zh = lang == "zh-CN"
    phone = viewport["width"] < 700
    options: dict[str, Any] = {"is_mobile": True, "has_touch": True} if phone else {}
    context = browser.new_context(
        locale=lang,
        viewport=viewport,
        geolocation={"latitude": POINT[0], "longitude": POINT[1]},
        permissions=["geolocation"],
        **options,
    )
    context.add_cookies([{"name": "cityhub_lang", "value": lang, "url": base}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, f"{base}/login", "cit")
    page.goto(f"{base}/intake")
    # 使用当前位置: the position noted, its numbers not said (the map's line names the place).
    page.click('[data-testid="locate-me"]')
    located = page.get_by_test_id("locate-status")
    expect(located).to_have_text("已定位，已记下您所在的位置" if zh else "Located: your position is noted")
    expect(page.get_by_test_id("place-where")).to_contain_text(
        "景泰街道 飞鹅社区" if zh else "Jingtai Subdistrict Fei'e"
    )
    page.select_option("#f-appeal_type", "complaint")
    page.fill("#f-content", "飞鹅新村路口井盖破损，晚上行人容易绊倒")
    page.fill("#f-citizen_phone", PHONE)
    page.set_input_files("#f-files", [{"name": "井盖.jpg", "mimeType": "image/jpeg", "buffer": jpeg_photo()}])
    page.click('[data-testid="intake-submit"]')
    page.wait_for_url(re.compile(r"/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    # Their appeal, by its street and community; the point a small detail, the photo shown.
    heading = page.locator("h1").inner_text()
    assert heading.startswith("诉求 BY" if zh else "Appeal BY"), heading
    expect(page.get_by_test_id("flash")).to_contain_text("诉求编号" if zh else "appeal number")
    place = page.get_by_test_id("place-units").inner_text()
    assert place.startswith("景泰街道 · 飞鹅社区" if zh else "Jingtai Subdistrict · Fei'e Community"), place
    assert page.get_by_test_id("thumb").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    number = _answered(order_id, server["street_a"])

    # /track, signed in to nothing: the appeal's number whole on its line, the answer there.
    visitor = browser.new_context(locale=lang, viewport=viewport, **options)
    visitor.add_cookies([{"name": "cityhub_lang", "value": lang, "url": base}])
    track = visitor.new_page()
    track.goto(f"{base}/track")
    expect(track.locator('label[for="track-number"]')).to_have_text("诉求编号" if zh else "Appeal number")
    track.fill("#track-number", number)
    track.fill("#track-phone", PHONE)
    track.click('[data-testid="track-form"] button[type="submit"]')
    expect(track.get_by_test_id("track-reply")).to_have_text("已加固井盖，并设置警示标志。")
    lines = track.evaluate("document.querySelector('.track-number .nowrap').getClientRects().length")
    assert lines == 1
    assert track.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    visitor.close()

    # The answer read on their page and rated there: thanked as /track thanks them.
    page.reload()
    rate = page.get_by_test_id("action-callback")
    rate.locator("select").select_option("true")
    rate.locator('button[type="submit"]').click()
    expect(page.get_by_test_id("flash")).to_have_text(
        "感谢您的评价，我们已记录。" if zh else "Thank you, your rating is recorded."
    )
    expect(page.get_by_test_id("satisfied")).to_contain_text("满意" if zh else "Satisfied")
    assert problems == [], problems
    context.close()
