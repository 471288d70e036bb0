"""Forms and wide figures on a phone (390 × 844 and 360 × 740) and a desk (1440 × 900): a 常用视图's orders come first
(its search and filters folded under 搜索和筛选, open on a desk), the dashboard's 企业诉求 is a card per need with each
figure named (seven columns scrolled sideways without a sign of it), the order page's 次数统计 reads on one line
(催办/升级/延期/退单/重办 stood four lines tall), 统计周期's placeholder is whole in its box with a line under it saying
in words what may be typed.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's layout: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, PHONES, served_app
from test_phone_pages import _PLACEHOLDER_ROOM
from web_helpers import build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

DESK = {"width": 1440, "height": 900}
URGED = "景泰路人行道井盖破损，行人容易绊倒"


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        # Three orders the street holds (a handler's 在办), one of them urged twice and returned once.
        for content in ("小区门口路灯不亮，晚上出行不便", URGED, "景泰街道夜间施工噪音扰民"):
            held = submit(s, data={"channel": "hotline", "content": content, "street_code": "W-JT"})
            orders.act(s, order_id=held.order.id, action="dispatch", params={"unit_id": world.street_a})
        urged = s.scalars(select(Order).where(Order.content == URGED)).one()
        urged.urge_count, urged.return_count = 2, 1
        # An enterprise's appeals (企业呼): the dashboard's 企业诉求.
        for need in ("power", "labour"):
            submit(
                s,
                data={
                    "channel": "enterprise",
                    "content": "园区停电影响生产，请协调供电部门尽快恢复",
                    "street_code": "W-JX",
                    "attributes": {"enterprise_name": "广州云景制衣有限公司", "enterprise_need": need},
                },
            )
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def _page(browser: Any, base: str, viewport: dict[str, int], username: str, locale: str = "zh-CN") -> Any:
    phone = viewport["width"] < 700
    page = browser.new_context(locale=locale, viewport=viewport, is_mobile=phone, has_touch=phone).new_page()
    page.set_default_timeout(20_000)
    return sign_in(page, f"{base}/login", username)


def _sideways(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - innerWidth"))


# A text's lines on the screen: its element's text nodes, each line a distinct top.
_LINES = """e => { const range = document.createRange(); range.selectNodeContents(e);
    return new Set([...range.getClientRects()].filter(r => r.width).map(r => Math.round(r.top))).size; }"""


def test_a_quick_views_first_order_shows_whole_in_a_phones_first_screen(server: str, browser: Any) -> None:
    """A handler picks 在办, then 预警 … on a phone: the first order is whole in the first screen (its search, state and
    sort filled it: the order began at 650 of 740 px) under a fold 搜索和筛选 that opens with a tap; a list that is no
    tab shows the form open, and a desk shows it open on a tab too, with no fold to open."""
    for viewport in PHONES:
        page = _page(browser, server, viewport, "hand_a")  # lands on 在办
        page.goto(server + "/orders")
        page.locator('[data-testid="quick-view"]').first.tap()
        page.wait_for_url("**/orders?*held=1*")
        first = page.locator('[data-testid="order-table"] tbody tr').first.bounding_box()
        assert first and first["y"] + first["height"] <= viewport["height"], (viewport, first)
        fold = page.locator('[data-testid="filter-fold"]')
        assert fold.get_attribute("open") is None and not page.locator("#q").is_visible()
        fold.locator("> summary").tap()
        assert page.locator("#q").is_visible() and page.locator("#sort").is_visible()
        assert _sideways(page) == 0
        page.goto(server + "/orders?channel=hotline")  # no tab's list: the form as it was
        assert page.locator("#q").is_visible()
        page.context.close()
    page = _page(browser, server, DESK, "hand_a")
    assert "held=1" in page.url
    assert page.locator("#q").is_visible() and page.locator("#state").is_visible()
    assert not page.locator('[data-testid="filter-fold"] > summary').is_visible()
    page.context.close()


def test_the_whole_order_list_shows_its_first_order_in_a_phones_first_screen(server: str, browser: Any) -> None:
    """A supervisor's 工单列表 on a phone, no criterion set: the search, state, sort and buttons filled the first
    screen, no order in it. The form folds as on a tab; a search's results show under it open."""
    for viewport in PHONES:
        page = _page(browser, server, viewport, "sup")
        page.goto(server + "/orders")
        first = page.locator('[data-testid="order-table"] tbody tr').first.bounding_box()
        assert first and first["y"] + first["height"] <= viewport["height"], (viewport, first)
        assert page.locator('[data-testid="filter-fold"]').get_attribute("open") is None
        page.goto(server + "/orders?q=%E6%B2%B9%E7%83%9F")  # 油烟
        assert page.locator("#q").is_visible()
        page.context.close()


def test_the_enterprise_figures_are_a_card_per_need_on_a_phone(server: str, browser: Any) -> None:
    """企业诉求 on a phone: no column scrolled out of sight — each need a card, each figure beside its name — and a
    desk's table as before, a column each."""
    for viewport in PHONES:
        page = _page(browser, server, viewport, "lead")
        page.goto(server + "/dashboard")
        table = page.locator('[data-testid="enterprise-needs"] table')
        assert table.locator("tbody tr, tr[data-need]").count() >= 2
        scrolled = table.evaluate("t => t.parentElement.scrollWidth - t.parentElement.clientWidth")
        assert (scrolled, _sideways(page)) == (0, 0), viewport
        cell = table.locator("tr[data-need=power] td").nth(1)  # 件数
        assert cell.evaluate("td => getComputedStyle(td, '::before').content").startswith('"件数'), viewport
        assert not table.locator("thead").is_visible()
        page.context.close()
    page = _page(browser, server, DESK, "lead")
    page.goto(server + "/dashboard")
    table = page.locator('[data-testid="enterprise-needs"] table')
    assert table.locator("thead").is_visible()
    tops = table.locator("tr[data-need=power] td").evaluate_all("tds => tds.map(td => td.getBoundingClientRect().top)")
    assert len(tops) == 7 and len(set(tops)) == 1, tops  # one row
    page.context.close()


def test_the_order_pages_counts_are_named_on_one_line(server: str, browser: Any) -> None:
    """The order page's facts on a phone, both languages: the counts' name is one line beside 催办 2 次 · 退单 1 次."""
    with session_scope() as s:
        order_id = s.scalars(select(Order.id).where(Order.content == URGED)).one()
    for viewport in PHONES:
        for locale in ("zh-CN", "en"):
            page = _page(browser, server, viewport, "sup", locale)
            page.goto(f"{server}/lang/{locale}?next=/orders/{order_id}")
            counts = page.locator('[data-testid="counts"]')
            assert "2" in counts.inner_text()
            name = counts.locator("xpath=preceding-sibling::th")
            assert name.evaluate(_LINES) == 1, (viewport, locale, name.inner_text())
            page.context.close()


def test_the_assessments_period_box_says_what_it_takes_and_its_placeholder_fits_a_phone(
    server: str, browser: Any
) -> None:
    """单位考核's 统计周期 on a phone, both languages: its placeholder is whole in its box (the English one was cut off
    at 360–390 px) and a line under it says in words what may be typed, shown, the box described by it."""
    with session_scope() as s:
        street = s.scalars(select(Order.lead_unit_id).where(Order.content == URGED)).one()
    for viewport in PHONES:
        for locale in ("zh-CN", "en"):
            page = _page(browser, server, viewport, "sup", locale)
            page.goto(f"{server}/lang/{locale}?next=/assessment/{street}")
            box = page.locator('[data-testid="period-input"]')
            written, room = box.evaluate(_PLACEHOLDER_ROOM)
            assert 0 < written <= room, (viewport, locale, written, room)
            words = page.locator(f"#{box.get_attribute('aria-describedby')}")
            assert words.is_visible() and len(words.inner_text()) > 30, (viewport, locale)
            below = words.bounding_box()
            above = box.bounding_box()
            assert below and above and below["y"] >= above["y"] + above["height"], (viewport, locale)
            assert _sideways(page) == 0
            page.context.close()
