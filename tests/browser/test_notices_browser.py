"""消息 in a real browser against a real ``cityhub serve``: a handler sees the bell's unread count, opens the 消息
page, follows a notice to its order — marked read, the bell counting one fewer — and marks the rest read; on a phone
(390 × 844) the page reads without sideways scrolling, and with scripts off it works the same (``test_accessibility``
audits the page with axe-core).

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra).
The page's markup does not depend on the database backend: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from process_helpers import served_app
from web_helpers import actor_of, build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only("the page's markup does not depend on the database backend: run on SQLite only")


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The small world of ``web_helpers``: two appeals dispatched to 景泰街道 by the dispatcher, one of them urged."""
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        made = []
        for title in ("路灯不亮", "井盖缺失"):
            order = submit(
                s, data={"channel": "hotline", "title": title, "content": f"小区门口{title}，晚上出行危险"}
            ).order
            orders.act(
                s, order_id=order.id, action="dispatch", actor=actor_of(s, "disp"), params={"unit_id": world.street_a}
            )
            made.append((order.id, order.number))
        orders.act(s, order_id=made[0][0], action="accept", actor=actor_of(s, "hand_a"))
        orders.act(s, order_id=made[0][0], action="urge", actor=actor_of(s, "sup"), params={"reason": "市民再次来电"})
    with served_app(env, tmp_path / "serve.log") as base:
        yield {"base": base, "urged": made[0], "other": made[1]}


def test_the_bell_leads_to_the_notices_and_a_notice_to_its_order(server: dict[str, Any], browser: Any) -> None:
    base = server["base"]
    urged_id, urged_number = server["urged"]
    ctx = browser.new_context(locale="zh-CN")
    ctx.set_default_timeout(20_000)
    page = sign_in(ctx.new_page(), f"{base}/login", "hand_a")
    bell = page.locator('[data-testid="bell"]')
    assert bell.locator('[data-testid="bell-count"]').inner_text() == "3"  # two dispatched, one urged
    bell.click()
    page.wait_for_url(f"{base}/notices")
    assert page.locator("h1").inner_text() == "消息提醒"
    listed = page.locator('[data-testid="notice"]')
    assert listed.count() == 3 and page.locator('[data-testid="notice"][data-read="false"]').count() == 3
    first = listed.first
    assert first.get_attribute("data-kind") == "urged"
    assert f"工单 {urged_number}「路灯不亮」被催办" in first.inner_text() and "市民再次来电" in first.inner_text()

    first.locator('[data-testid="notice-link"]').click()
    page.wait_for_url(f"{base}/orders/{urged_id}")
    assert urged_number in page.locator("h1").inner_text()
    assert page.locator('[data-testid="bell-count"]').inner_text() == "2"
    page.goto(f"{base}/notices")
    assert page.locator('[data-testid="notice"]').first.get_attribute("data-read") == "true"
    page.locator('[data-testid="read-all"]').click()
    page.wait_for_load_state()
    assert "已将 2 条消息标为已读" in page.locator('[data-testid="flash"]').inner_text()
    assert page.locator('[data-testid="bell-count"]').count() == 0
    assert page.locator('[data-testid="notice"][data-read="false"]').count() == 0
    ctx.close()

    # A phone, scripts off: the bell in the header, the list without sideways scrolling, a notice to its order.
    phone_ctx = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, java_script_enabled=False
    )
    phone_ctx.set_default_timeout(20_000)
    phone = sign_in(phone_ctx.new_page(), f"{base}/login", "hand_b")  # 京溪街道's: nothing for them
    assert phone.locator('[data-testid="bell"]').is_visible()
    phone.goto(f"{base}/notices")
    assert phone.locator('[data-testid="notices-empty"]').inner_text() == "暂无消息"
    phone_ctx.close()
    phone_ctx = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, java_script_enabled=False
    )
    phone_ctx.set_default_timeout(20_000)
    phone = sign_in(phone_ctx.new_page(), f"{base}/login", "hand_a")
    phone.locator('[data-testid="bell"]').click()
    phone.wait_for_url(f"{base}/notices")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.locator('[data-testid="notice"]').count() == 3
    phone.locator('[data-testid="notice-link"]').nth(1).click()
    phone.wait_for_url(f"{base}/orders/*")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone_ctx.close()
