"""The dispatcher's queue at 1440 × 900, in a real browser: a queued order was ~550 px tall — its suggestions'
full-width buttons in cards, their reasons, the grounds repeating the first one's, the bulk bar three rows — so that
one order filled a screen; now three or more do, with every reason still on the page. An order without a suggestion
is dispatched in place from the bulk bar's one list of the district's units (each such order carried its own copy),
its name filter box working as before.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's layout: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service as orders
from process_helpers import BROWSER_SIDE, served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

WIDE = {"width": 1440, "height": 900}


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        # A district's many units: the list of them gets its name filter box (app.js, from 30 options on).
        s.add_all(
            Unit(code=f"W-JT-C{n}", name=f"云苑第{n}社区居委会", tier=UnitTier.COMMUNITY, parent_id=world.street_a)
            for n in range(30)
        )
        environmental = {"channel": "hotline", "category_id": world.cats["环境保护"]}
        for n in range(8):
            text = f"第{n}号楼下餐馆油烟直排，夜间施工噪音扰民，楼下垃圾堆放多日无人清理，请有关部门尽快核实处理"
            submit(s, data={**environmental, "content": text, "street_code": "W-JT" if n % 2 else "W-JX"})
        # Sent back by the street the rule names: no suggestion left, the unit picked in place.
        back = submit(s, data={**environmental, "content": "河道有污水排放", "street_code": "W-JX"}).order
        orders.act(s, order_id=back.id, action="dispatch", params={"unit_id": world.street_b})
        orders.act(s, order_id=back.id, action="return", params={"reason": "非本辖区"})
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


# How many queued orders a screen holds whole: the first scrolled to just under the stuck bulk bar.
_ORDERS_A_SCREEN = """() => {
    const items = [...document.querySelectorAll('[data-testid="queue-item"]')];
    const bar = document.querySelector('[data-testid="bulk-dispatch"]').getBoundingClientRect().height;
    scrollTo(0, items[0].getBoundingClientRect().top + scrollY - bar);
    return items.filter(i => {
        const r = i.getBoundingClientRect();
        return r.top >= bar - 1 && r.bottom <= innerHeight;
    }).length;
}"""

# Each suggestion's reasons as the page shows them, and whether the fold's summary is seen.
_REASONS = """item => ({
    reasons: [...item.querySelectorAll('.reasons')].filter(r => r.checkVisibility()).map(r => r.textContent),
    grounds: [...item.querySelectorAll('.decision-reason')].filter(r => r.checkVisibility()).map(r => r.textContent),
    summary: item.querySelector('details.why > summary').checkVisibility()})"""


def test_a_wide_screen_shows_three_queued_orders_with_their_reasons(server: str, browser: Any) -> None:
    page = browser.new_context(locale="zh-CN", viewport=WIDE).new_page()
    sign_in(page, f"{server}/login", "disp").goto(server + "/queue")
    assert page.locator('[data-testid="queue-item"]').count() == 9
    assert page.evaluate(_ORDERS_A_SCREEN) >= 3  # one, before
    bar = page.locator('[data-testid="bulk-dispatch"]').bounding_box()
    assert bar and bar["height"] < 100  # one line (three rows, 200 px, it was)
    item = page.locator('[data-testid="queue-item"]:has(.card)').first
    shown = item.evaluate(_REASONS)
    assert shown["reasons"] and all("规则 #" in r for r in shown["reasons"]), shown  # in place, no fold to open
    assert not shown["summary"], shown
    assert all("规则 #" not in g for g in shown["grounds"]), shown  # the first suggestion's rule not said again
    page.context.close()


def test_a_wide_screen_shows_the_reasons_without_app_js(server: str, browser: Any) -> None:
    """推荐理由和派单依据 were opened by app.js: where it did not run (blocked, failed to load) a wide screen showed
    every order's reasons folded, a click each. They are sent open, the fold's summary hidden on a wide screen."""
    page = browser.new_context(locale="zh-CN", viewport=WIDE, java_script_enabled=False).new_page()
    sign_in(page, f"{server}/login", "disp").goto(server + "/queue")
    item = page.locator('[data-testid="queue-item"]:has(.card)').first
    shown = item.evaluate(_REASONS)
    assert shown["reasons"] and all("规则 #" in r for r in shown["reasons"]), shown
    assert not shown["summary"], shown
    page.context.close()


def test_a_dispatcher_works_the_queue_by_keyboard(server: str, browser: Any) -> None:
    """A fast dispatcher's hands stay on the keys: J / K go to the next / previous order, the focus on its first
    派至 button (Enter sends it there), X ticks it for 批量派单, / goes to the search box. Tab went through each
    order's box, number, choices and buttons."""
    page = browser.new_context(locale="zh-CN", viewport=WIDE).new_page()
    sign_in(page, f"{server}/login", "disp").goto(server + "/queue")
    assert page.locator('[data-testid="queue-keys"]').is_visible()
    items = page.locator('[data-testid="queue-item"]')
    focused = "() => (document.activeElement.closest('article') || {dataset: {}}).dataset.number"
    on_button = "() => document.activeElement.matches('.candidates button[type=submit]')"
    page.keyboard.press("j")
    first = items.nth(0).get_attribute("data-number")
    assert page.evaluate(focused) == first and page.evaluate(on_button)
    page.keyboard.press("j")
    second = items.nth(1).get_attribute("data-number")
    assert page.evaluate(focused) == second
    page.keyboard.press("x")
    assert page.locator(f'[data-testid="pick-{second}"]').is_checked()
    page.keyboard.press("k")
    assert page.evaluate(focused) == first
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "queue-q"
    page.keyboard.type("j")  # typed in the box: a letter, not a move
    assert page.locator("#queue-q").input_value() == "j"
    page.locator("#queue-q").fill("")
    page.keyboard.press("Escape")
    page.locator("h1").click()
    page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the first order to its first suggestion
    assert f"已派单：{first}" in page.locator("body").inner_text()
    page.context.close()


def test_an_order_without_a_suggestion_is_dispatched_from_the_bars_list(server: str, browser: Any) -> None:
    page = browser.new_context(locale="zh-CN", viewport=WIDE).new_page()
    sign_in(page, f"{server}/login", "disp").goto(server + "/queue")
    form = page.locator('form[data-testid^="manual-"]')
    assert form.count() == 1 and form.is_visible()
    select = form.locator("select[name=unit_id]")
    names = select.locator("option").all_text_contents()
    assert names == ["—", *page.locator("#bulk-unit option").all_text_contents()[1:]], names
    assert "景泰街道" in names
    # The name filter box (app.js, select[data-filter]) beside it: what is typed chooses the one unit left.
    box = form.locator('[data-testid="select-filter"]')
    box.fill("景泰")
    assert select.evaluate("s => s.options[s.selectedIndex].textContent") == "景泰街道"
    form.locator('input[name="reason"]').fill("云景路属景泰街道")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{server}/queue")
    assert "已派单" in page.locator("body").inner_text() and "景泰街道" in page.locator("body").inner_text()
    assert page.locator('form[data-testid^="manual-"]').count() == 0
    page.context.close()
