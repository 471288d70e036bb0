"""Where a page puts the keyboard's focus, per role: the hotline's intake form opens at the caller's number for whoever
takes calls at a desk (it took 12 Tabs past the menu), never on a citizen's or a grid inspector's phone, where a
focused field throws the keyboard over the page; a refused form focuses its first marked field. And what a box says
before anything is typed in it: the order list's search fits its box on a small phone, for staff as for a citizen.
And what a handler's workbench shows first at a desk: their orders, the further criteria folded under the tabs.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's doing: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.auth import service as auth
from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Role
from cityhub.org.schemas import UserCreate
from cityhub.workorders import service as orders
from process_helpers import BROWSER_SIDE, PHONES, served_app
from web_helpers import PASSWORD, build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

DESK = {"width": 1440, "height": 900}


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        # 景泰街道's handler has four orders sent to it this morning.
        for title in ("路灯不亮", "井盖缺失", "占道经营", "油烟扰民"):
            data = {"channel": "hotline", "title": title, "content": title, "street_code": "W-JT"}
            order = submit(s, data=data).order
            orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": world.street_a})
        auth.create_account(
            s,
            data=UserCreate(username="grid", full_name="吴网格", role=Role.INSPECTOR, unit_id=world.street_a),
            password=PASSWORD,
        )
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def _page(browser: Any, base: str, username: str, *, phone: bool) -> Any:
    viewport = PHONES[0] if phone else DESK
    page = browser.new_context(locale="zh-CN", viewport=viewport, is_mobile=phone, has_touch=phone).new_page()
    page.set_default_timeout(20_000)
    return sign_in(page, f"{base}/login", username)


def _focused(page: Any) -> str:
    """The focused element's id, else its tag (BODY: nothing focused)."""
    return str(page.evaluate("(document.activeElement.id || document.activeElement.tagName)"))


def test_the_hotline_intake_opens_at_the_callers_number_and_a_phone_gets_no_keyboard(server: str, browser: Any) -> None:
    for username in ("op", "disp"):
        page = _page(browser, server, username, phone=False)
        page.goto(server + "/intake")
        assert _focused(page) == "f-citizen_phone", username
        page.keyboard.type("13800138000")
        assert page.input_value("#f-citizen_phone") == "13800138000"
        # Sent without a kind of appeal or a text: the form comes back focused at the first field it marks.
        page.click('[data-testid="intake-submit"]')
        page.wait_for_selector('[aria-invalid="true"]')
        marked = page.locator('main [aria-invalid="true"]').first.get_attribute("id")
        # app.js sets the focus once it has run (after the page is drawn: later on a loaded machine)
        page.wait_for_function("id => document.activeElement.id === id", arg=marked, timeout=10_000)
        assert _focused(page) == marked, username
        page.context.close()
    for username in ("cit", "grid"):
        page = _page(browser, server, username, phone=True)
        page.goto(server + "/intake")
        assert page.locator("main [autofocus]").count() == 0, username
        assert _focused(page) == "BODY", username
        page.context.close()


# A text box's placeholder: how wide it is written, and the room the box has for it (as test_phone_pages measures).
_PLACEHOLDER_ROOM = """i => { const css = getComputedStyle(i), pen = document.createElement('canvas').getContext('2d');
    pen.font = css.font;
    return [Math.ceil(pen.measureText(i.placeholder).width),
            Math.floor(i.clientWidth - parseFloat(css.paddingLeft) - parseFloat(css.paddingRight))]; }"""


def test_the_staffs_order_search_says_all_it_asks_at_360_px(server: str, browser: Any) -> None:
    """The order list's search box shows its whole placeholder at 360 px to staff as to a citizen, in both languages
    (a handler's workbench on a phone read 编号、标题、内容或地址中的词，多个词用空格分开… cut), the full hint in its
    title."""
    for username in ("hand_a", "disp", "sup"):
        for lang in ("zh-CN", "en"):
            page = _page(browser, server, username, phone=True)
            page.set_viewport_size(PHONES[1])
            page.goto(f"{server}/lang/{lang}?next=/orders")
            fold = page.locator('[data-testid="filter-fold"]')
            if fold.get_attribute("open") is None:  # the whole list folds its search on a phone
                fold.locator("> summary").click()
            box = page.locator('[data-testid="filters"] input[type=search]')
            written, room = box.evaluate(_PLACEHOLDER_ROOM)
            assert 0 < written <= room, (username, lang, written, room)
            assert len(box.get_attribute("title") or "") > len(box.get_attribute("placeholder") or ""), lang
            page.context.close()


def test_a_handlers_workbench_shows_their_orders_in_the_first_screen_of_a_desk(server: str, browser: Any) -> None:
    """A handler at 1440 × 900 starting the day: 在办 shows their orders in the first screen — the further criteria,
    which a wide screen unfolds on any other list, stay folded under the tabs that name them (unfolded, they left one
    order above the fold) — and open with one click."""
    page = _page(browser, server, "hand_a", phone=False)  # lands on 在办
    rows = page.locator("table.orders tbody tr")
    assert rows.count() == 4
    assert page.locator("details.more-filters").get_attribute("open") is None
    for i in range(3):  # at least three orders whole in the first screen
        box = rows.nth(i).bounding_box()
        assert box is not None and box["y"] + box["height"] <= DESK["height"], i
    page.click("details.more-filters summary")
    assert page.locator('[data-testid="filter-held"]').is_checked()  # the tab's criteria, there when wanted
    # Any other list on a wide screen opens them as before.
    page.goto(f"{server}/orders?channel=hotline")
    assert page.locator("details.more-filters").get_attribute("open") is not None
    page.context.close()
