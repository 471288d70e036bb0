"""A real browser on a citizen's phone (360 × 740) choosing files for their appeal (我要反映) and for 补充材料: a
file over the size limit, or files past the count, are left out and said at once, beside the field — not after the
phone has sent them all and the server refused the lot.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, PHONES, served_app
from web_helpers import build_world, jpeg_photo, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch) | {"CITYHUB_FILES_MAX_MB": "1", "CITYHUB_FILES_MAX_COUNT": "2"}
    with session_scope() as s:
        build_world(s)
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def test_a_file_too_large_or_too_many_is_left_out_and_said_as_it_is_chosen(server: str, browser: Any) -> None:
    page = browser.new_context(locale="zh-CN", viewport=PHONES[1], is_mobile=True, has_touch=True).new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, f"{server}/login", "cit")
    page.goto(f"{server}/intake")
    photo = {"name": "井盖.jpg", "mimeType": "image/jpeg", "buffer": jpeg_photo()}
    big = {"name": "录像.mp4", "mimeType": "video/mp4", "buffer": b"\0" * (1024 * 1024 + 1)}
    page.set_input_files("#f-files", [photo, big])
    said = page.locator('[data-testid="files-picked-refused"]')
    assert said.get_attribute("role") == "alert"
    assert said.inner_text() == "文件“录像.mp4”超过 1 MB，没有选上：请压缩后重新选择，或换一个文件。"
    assert page.evaluate("document.getElementById('f-files').files.length") == 1
    # Three photos where two may go: the first two kept, the third said; a good choice then clears the words.
    page.set_input_files("#f-files", [photo, {**photo, "name": "b.jpg"}, {**photo, "name": "c.jpg"}])
    assert said.inner_text() == "一次最多上传 2 个文件，只选上了前 2 个。"
    assert page.evaluate("[...document.getElementById('f-files').files].map(f => f.name)") == ["井盖.jpg", "b.jpg"]
    page.set_input_files("#f-files", [photo])
    assert said.is_hidden()
    page.set_input_files("#f-files", [photo, big])
    page.select_option("#f-appeal_type", "complaint")
    page.fill("#f-content", "景泰街道云景路井盖松动，车辆经过响声很大")
    page.click('[data-testid="intake-submit"]')
    page.wait_for_load_state()
    order_id = int(page.url.rsplit("/", 1)[1])
    with session_scope() as s:
        assert s.get(Order, order_id) is not None
    files = page.inner_text('[data-testid="attachments"]')
    assert "井盖.jpg" in files and "录像.mp4" not in files
    # 补充材料 on their order's page: the same.
    page.locator('details:has([data-testid="submit-attach"]) > summary').click()
    page.set_input_files("#attach-files", [big])
    assert "录像.mp4" in page.locator("#attach-files-picked").inner_text()
    assert page.evaluate("document.getElementById('attach-files').files.length") == 0
    assert problems == [], problems
    page.context.close()
