"""推送订阅 in a real browser against a real ``cityhub serve``: an administrator reaches the page from 系统管理, adds a
subscription and reads its secret once, retries a failed delivery, removes a subscription after confirming; the page
passes axe-core (as ``test_accessibility`` audits the others), and a phone reads it without sideways scrolling.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); axe-core from ``node_modules``.
The page's markup does not depend on the database backend: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.notify import service
from cityhub.notify.models import OutboxMessage, OutboxStatus, Subscription
from cityhub.workorders.service import act
from process_helpers import served_app
from web_helpers import build_world, sign_in, use_world_env

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [
    pytest.mark.sqlite_only("the page's markup does not depend on the database backend: run on SQLite only"),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is missing from node_modules (npm ci)"),
]


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The small world of ``web_helpers`` with one subscription whose delivery of a dispatch failed for good."""
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        sub, _ = service.add_subscription(s, target="https://old-receiver.example/hook", topics=["dispatch"])
        order = submit(s, data={"channel": "hotline", "content": "路灯不亮，晚上出行不便", "street_code": "W-JT"}).order
        if order.state.value == "received":
            act(s, order_id=order.id, action="dispatch", params={"unit_id": world.street_a})
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.subscription_id == sub.id)).one()
        message.status, message.attempts, message.last_error = OutboxStatus.DEAD, 8, "HTTP 503 from receiver"
        ids = {"subscription": sub.id, "message": message.id}
    with served_app(env, tmp_path / "serve.log") as base:
        yield {"base": base, **ids}


def _axe(page: Any) -> list[str]:
    """axe's serious and critical findings on the page, its folded sections unfolded."""
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = false; })")
    also = {"landmark-unique", "heading-order", "empty-table-header"}  # as test_accessibility holds every page to
    return [
        f"{v['id']} ({v['impact']}): {', '.join(v['targets'])}"
        for v in found
        if v["impact"] in ("serious", "critical") or v["id"] in also
    ]


def test_an_administrator_manages_webhooks_in_the_browser(server: dict[str, Any], browser: Any) -> None:
    base = server["base"]
    ctx = browser.new_context(locale="zh-CN")
    ctx.set_default_timeout(20_000)
    page = sign_in(ctx.new_page(), f"{base}/login", "adm")
    page.goto(f"{base}/admin")
    page.get_by_role("link", name="推送订阅").click()
    page.wait_for_url(f"{base}/admin/webhooks")
    assert page.locator('[data-testid="webhook"]').count() == 1
    assert "系统" in page.locator('[data-testid="webhook"]').inner_text()  # added by cityhub itself (code), named so
    assert _axe(page) == []

    # The failed delivery, sent again.
    failed = page.locator(f'[data-testid="failed-delivery"][data-id="{server["message"]}"]')
    assert "已停止" in failed.inner_text() and "HTTP 503 from receiver" in failed.inner_text()
    failed.locator('[data-testid="retry-delivery"]').click()
    page.wait_for_load_state()
    assert f"消息 #{server['message']} 将立即重新投递。" in page.locator('[data-testid="flash"]').inner_text()
    assert page.locator('[data-testid="failed-delivery"]').count() == 0

    # A new subscription: a bad address told at its field, then the secret shown once.
    page.locator("summary", has_text="新建订阅").click()
    page.fill("#w-url", "receiver.example/hook")
    page.check('input[name="events"][value="reply"]')
    page.select_option("#w-unit", "W-JT")
    page.get_by_role("button", name="创建订阅并生成密钥").click()
    page.wait_for_load_state()
    assert "订阅地址须以 http:// 或 https:// 开头" in page.locator('[data-testid="field-error-url"]').inner_text()
    assert page.locator("#w-url").get_attribute("aria-invalid") == "true"
    page.fill("#w-url", "https://new-receiver.example/hook")
    page.get_by_role("button", name="创建订阅并生成密钥").click()
    page.wait_for_load_state()
    secret = page.locator('[data-testid="new-secret"] code.secret').inner_text()
    with session_scope() as s:
        made = s.scalars(select(Subscription).where(Subscription.target == "https://new-receiver.example/hook")).one()
        assert made.secret == secret and made.topics == ["reply"]
    assert _axe(page) == []
    page.goto(f"{base}/admin/webhooks")
    assert secret not in page.content() and page.locator('[data-testid="webhook"]').count() == 2

    # Removed after the confirmation (dismissed once: nothing happens).
    old = page.locator(f'[data-testid="webhook"][data-id="{server["subscription"]}"]')
    page.once("dialog", lambda dialog: dialog.dismiss())
    old.locator('[data-testid="remove-webhook"]').click()
    assert page.locator('[data-testid="webhook"]').count() == 2
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    old.locator('[data-testid="remove-webhook"]').click()
    page.wait_for_url(f"{base}/admin/webhooks")
    page.wait_for_selector('[data-testid="flash"]')
    assert messages and "https://old-receiver.example/hook" in messages[0]
    assert page.locator('[data-testid="webhook"]').count() == 1
    with session_scope() as s:
        assert not s.get(Subscription, server["subscription"]).active  # type: ignore[union-attr]
    ctx.close()

    # A phone reads it without scrolling sideways (the tables scroll inside their wrappers).
    phone_ctx = browser.new_context(locale="en", viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = sign_in(phone_ctx.new_page(), f"{base}/login", "adm")
    phone.goto(f"{base}/lang/en?next=/admin/webhooks")
    assert phone.locator("h1").inner_text() == "Webhooks"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert _axe(phone) == []
    phone_ctx.close()
