"""A supervisor's 超期 list at 1440 × 900, in a real browser: the overdue orders ticked at once (全选本页), one message,
one click — each urged, the flash naming each order and the unit it went to; and 答复审核's 退回答复 on its row.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope, utcnow
from cityhub.intake.service import submit
from cityhub.knowledge import service as kb
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order, OrderEvent, SlaStatus
from process_helpers import BROWSER_SIDE, CHROMIUM, served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = [
    pytest.mark.sqlite_only(BROWSER_SIDE),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Debian's chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install -e '.[dev]')")

WIDE = {"width": 1440, "height": 900}


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        for n, street in enumerate(("W-JT", "W-JX", "W-JT")):
            order = submit(
                s, data={"channel": "hotline", "content": f"第{n}号路灯不亮已经一周", "street_code": street}
            ).order
            orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": world.streets[street]})
            # past its limit, as the time-limit sweep leaves it
            order.due_at, order.sla_status = utcnow() - timedelta(days=1), SlaStatus.OVERDUE
        weak = submit(s, data={"channel": "hotline", "content": "小区垃圾无人清运", "street_code": "W-JT"}).order
        orders.act(s, order_id=weak.id, action="dispatch", params={"unit_id": world.streets["W-JT"]})
        for action in ("accept", "start"):
            orders.act(s, order_id=weak.id, action=action)
        orders.act(s, order_id=weak.id, action="reply", params={"text": "您好，收悉，谢谢。"})
        kb.check_reply(s, order=weak)
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def test_a_supervisor_urges_every_overdue_order_of_the_page_in_one_step(server: str, browser: Any) -> None:
    page = browser.new_context(locale="zh-CN", viewport=WIDE).new_page()
    sign_in(page, f"{server}/login", "sup").goto(server + "/orders?overdue=1&sort=due")
    assert page.get_by_test_id("view-count").nth(1).inner_text() == "3"  # the tab 超期 says how many
    page.get_by_test_id("urge-pick-all").check()
    page.get_by_test_id("bulk-urge-reason").fill("已超期，请今天内答复市民")
    page.get_by_test_id("bulk-urge-submit").click()
    page.wait_for_load_state()

    assert "/orders?overdue=1" in page.url
    flash = page.get_by_test_id("flash").inner_text()
    assert flash.startswith("已催办 3 件：") and flash.count("景泰街道") == 2 and flash.count("京溪街道") == 1
    with session_scope() as s:
        urged = s.query(OrderEvent).filter_by(action="urge").all()
        assert len(urged) == 3 and {e.reason for e in urged} == {"已超期，请今天内答复市民"}
    assert page.get_by_test_id("urged").count() == 3  # each row now says 催办 1 次


def test_a_weak_reply_goes_back_from_the_review_list(server: str, browser: Any) -> None:
    page = browser.new_context(locale="zh-CN", viewport=WIDE).new_page()
    sign_in(page, f"{server}/login", "sup").goto(server + "/reviews")
    assert page.get_by_test_id("reviews-total").inner_text() == "共 1 件偏弱答复待审核"
    row = page.locator("form.review-return").first
    row.locator("input[name=reason]").fill("请说明清运时间")
    row.locator("button").click()
    page.wait_for_load_state()

    assert page.url.endswith("/reviews") and "已完成退回答复" in page.get_by_test_id("flash").inner_text()
    assert page.locator("form.review-return").count() == 0
    with session_scope() as s:
        assert s.query(Order).filter_by(state="in_progress").count() == 1
