"""A unit's handler at a desk (1440 × 900) starting the day: their workbench, 在办, shows their orders in the first
screen — the further criteria, which a wide screen unfolds on any other list, stay folded under the tabs that name
them (unfolded, they left one order above the fold) — and open with one click.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's doing: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from process_helpers import BROWSER_SIDE, CHROMIUM, served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = [
    pytest.mark.sqlite_only(BROWSER_SIDE),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Debian's chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install -e '.[dev]')")

DESK = {"width": 1440, "height": 900}


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        for title in ("路灯不亮", "井盖缺失", "占道经营", "油烟扰民"):
            data = {"channel": "hotline", "title": title, "content": title, "street_code": "W-JT"}
            order = submit(s, data=data).order
            orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": world.street_a})
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def test_a_handlers_workbench_shows_their_orders_in_the_first_screen_of_a_desk(server: str, browser: Any) -> None:
    page = browser.new_context(locale="zh-CN", viewport=DESK).new_page()
    page.set_default_timeout(20_000)
    sign_in(page, f"{server}/login", "hand_a")  # lands on 在办
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
