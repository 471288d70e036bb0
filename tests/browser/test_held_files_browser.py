"""A real browser on a handler's phone (360 × 740): the 答复 sent without its words comes back with the photo chosen
held for it (已保留的附件: its name and thumbnail), and sent again with the words the photo is attached — not
chosen again from the phone's gallery.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, PHONES, served_app
from web_helpers import build_world, jpeg_photo, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    env = use_world_env(app_db, tmp_path, monkeypatch) | {"CITYHUB_FILES_MAX_COUNT": "2"}
    with session_scope() as s:
        world = build_world(s)
        order = submit(s, data={"channel": "hotline", "content": "景泰路人行道井盖破损", "street_code": "W-JT"}).order
        orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": world.street_a})
        orders.act(s, order_id=order.id, action="accept", params={})
        order_id = order.id
    with served_app(env, tmp_path / "serve.log") as base:
        yield base, order_id


def test_a_reply_refused_on_a_phone_keeps_its_photo_and_attaches_it_when_sent_again(server, browser: Any) -> None:
    base, order_id = server
    page = browser.new_context(locale="zh-CN", viewport=PHONES[1], is_mobile=True, has_touch=True).new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, f"{base}/login", "hand_a")
    page.goto(f"{base}/orders/{order_id}")
    page.click('[data-testid="action-reply"] > summary')
    page.set_input_files("#reply-files", [{"name": "修复后.jpg", "mimeType": "image/jpeg", "buffer": jpeg_photo()}])
    page.click('[data-testid="submit-reply"]')
    held = page.locator('[data-testid="held-file"]')
    held.first.wait_for()
    assert held.count() == 1 and "修复后.jpg" in held.inner_text()
    thumb = page.locator('[data-testid="held-thumb"]')
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('[data-testid=held-thumb]').complete")
    assert thumb.evaluate("img => img.naturalWidth") > 0  # the photo's thumbnail, served to its sender
    box = page.locator('[data-testid="held-files"]').bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONES[1]["width"], box
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") == 0
    # With one held and two at most, a phone's gallery picking two more keeps one, saying why, before anything is sent.
    photo = {"mimeType": "image/jpeg", "buffer": jpeg_photo()}
    page.set_input_files("#reply-files", [{**photo, "name": "a.jpg"}, {**photo, "name": "b.jpg"}])
    refused = page.locator("#reply-files-picked")
    refused.wait_for()
    assert "连同已保留的附件" in refused.inner_text() and "前 1 个" in refused.inner_text()
    assert page.evaluate("document.getElementById('reply-files').files.length") == 1
    page.set_input_files("#reply-files", [])
    # The words written, sent again: no file chosen again.
    page.fill("#reply-text", "已更换井盖，现场已恢复通行。")
    page.click('[data-testid="submit-reply"]')
    page.wait_for_url(f"{base}/orders/{order_id}")
    with session_scope() as s:
        order = s.get_one(Order, order_id)
        assert order.state.value == "replied"
        assert [a.filename for a in order.attachments] == ["修复后.jpg"]
    assert problems == []
