"""A leader's 考核排名 and 领导交办 in a real browser, in Chinese and English at 1440 × 900 and on a 390-px phone: the
ranking's eight rate columns fit the wide screen and scroll in their own box on a phone (the page itself never
sideways), the rate costing a unit most in bold; a 交办 given a 限期办结 day in the form's date field shows the day
under the order's heading.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's layout: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import sync_api
from cityhub.config import get_settings
from cityhub.db import session_scope, utcnow
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from process_helpers import BROWSER_SIDE, served_app
from web_helpers import actor_of, build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        street = world.streets["W-JT"]
        for i in range(31):  # a ranked street: 31 orders sent to it, a third returned
            order = submit(
                s, data={"channel": "hotline", "title": f"路灯不亮{i}", "content": "小区门口路灯不亮已经一周"}
            ).order
            orders.act(s, order_id=order.id, action="dispatch", actor=actor_of(s, "disp"), params={"unit_id": street})
            step = ("accept", {}) if i % 3 else ("return", {"reason": "非本单位"})
            orders.act(s, order_id=order.id, action=step[0], actor=actor_of(s, "hand_a"), params=step[1])
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def _page(browser: Any, base: str, viewport: dict[str, int], lang: str) -> Any:
    phone = viewport["width"] < 500
    context = browser.new_context(locale=lang, viewport=viewport, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(20_000)
    sign_in(page, f"{base}/login", "lead")
    if lang == "en":
        page.goto(f"{base}/lang/en")
    return page


def test_the_rankings_rates_fit_a_wide_screen_and_scroll_in_their_box_on_a_phone(server: str, browser: Any) -> None:
    month = utcnow().astimezone(get_settings().tz).strftime("%Y-%m")
    for lang in ("zh-CN", "en"):
        for viewport in (WIDE, PHONE):
            page = _page(browser, server, viewport, lang)
            page.goto(f"{server}/dashboard?period={month}#ranking")
            table = page.locator('[data-testid="ranking-street"] table.ranking-rates')
            assert table.locator("th[data-kpi]").count() == 8
            widths = page.evaluate(
                """() => { const w = document.querySelector('[data-testid="ranking-street"] .table-wrap');
                return {page: document.documentElement.scrollWidth, inner: window.innerWidth,
                        box: w.scrollWidth, shown: w.clientWidth}; }"""
            )
            assert widths["page"] <= widths["inner"], (lang, viewport, widths)  # the page never scrolls sideways
            if viewport is WIDE:
                assert widths["box"] <= widths["shown"], (lang, widths)  # all eight rates on a 1440-px screen
            else:
                assert widths["box"] > widths["shown"], (lang, widths)  # the table scrolls in its box
            drag = table.locator('[data-testid="drag"]').first
            drag.scroll_into_view_if_needed()
            assert drag.is_visible() and drag.evaluate("e => e.closest('td').dataset.kpi") == "return_rate"
            page.context.close()


def test_a_leader_gives_a_deadline_in_the_assign_forms_date_field_on_a_phone(server: str, browser: Any) -> None:
    with session_scope() as s:
        order_id = orders.find_order(s, ref="2").id  # type: ignore[union-attr]  # accepted by 景泰街道
    day = utcnow().astimezone(get_settings().tz).date() + timedelta(days=3)
    page = _page(browser, server, PHONE, "zh-CN")
    page.goto(f"{server}/orders/{order_id}")
    form = page.locator('[data-testid="action-assign"]')
    form.locator("summary").click()
    form.locator("textarea[name=reason]").fill("请三天内办结")
    form.locator("#assign-deadline").fill(day.isoformat())
    form.locator('[data-testid="submit-assign"]').click()
    page.wait_for_load_state()
    shown = page.locator('[data-testid="assigned"] [data-testid="assign-deadline"]')
    sync_api.expect(shown).to_have_text(f"限期办结：{day.isoformat()}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.context.close()
