"""A day on a phone (390 × 844 and 360 × 740), by thumb: a handler's 在办 shows its orders first (the further criteria
folded), an order's page has no sideways scrolling — a link pasted into an appeal included — its actions and the top
bar's entries are at least 40 px tall, a link leads down to the actions, a refused form says why under its field, a
photo is uploaded from the phone (its link and 移除 44-px targets) and another sent with the reply; an inspector's
report takes the phone's position; the public progress lookup reads its facts' names whole and its rating by thumb.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's layout: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from cityhub.auth import service as auth
from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Role
from cityhub.org.schemas import UserCreate
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, PHONES, served_app, wait_in_page
from web_helpers import PASSWORD, build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

LONG_LINK = "https://example.gov.cn/notice/" + "a1b2c3d4e5" * 12  # no space to break at
TRACK_PHONE = "13912345678"


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        auth.create_account(
            s,
            data=UserCreate(username="grid", full_name="邓网格", role=Role.INSPECTOR, unit_id=world.street_a),
            password=PASSWORD,
        )
        # Two orders the street holds, one with a link pasted into it; one replied order for the progress lookup.
        for content in (f"小区门口路灯不亮，通知见 {LONG_LINK}", "景泰路人行道井盖破损，行人容易绊倒"):
            held = submit(s, data={"channel": "hotline", "content": content, "street_code": "W-JT"})
            orders.act(s, order_id=held.order.id, action="dispatch", params={"unit_id": world.street_a})
        replied = submit(
            s,
            data={
                "channel": "hotline",
                "content": "景泰街道化粪池满溢，污水流到大街上，多次反映没有效果，请尽快派人来看看",
                "street_code": "W-JT",
                "citizen_phone": TRACK_PHONE,
            },
        )
        for action, params in (
            ("dispatch", {"unit_id": world.street_a}),
            ("accept", {}),
            ("reply", {"text": "经核查属小区内部管网，已督促物业公司清疏。"}),
        ):
            orders.act(s, order_id=replied.order.id, action=action, params=params)
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def _phone(browser: Any, base: str, viewport: dict[str, int], username: str | None = None, **context: Any) -> Any:
    page = browser.new_context(locale="zh-CN", viewport=viewport, is_mobile=True, has_touch=True, **context).new_page()
    page.set_default_timeout(20_000)
    return sign_in(page, f"{base}/login", username) if username else page


def _order_saying(words: str) -> int:
    with session_scope() as s:
        return s.scalars(select(Order.id).where(Order.content.contains(words))).one()


def _sideways(page: Any) -> int:
    """How far the page scrolls sideways (0: it fits the screen)."""
    return int(page.evaluate("document.documentElement.scrollWidth - innerWidth"))


_SHORT_TARGETS = """sel => [...document.querySelectorAll(sel)].filter(e => {
    const r = e.getBoundingClientRect(); return r.width && r.height < 40; })
    .map(e => `${e.textContent.trim().slice(0, 12)} ${Math.round(e.getBoundingClientRect().height)}px`)"""


_SMALL_TARGETS = """sel => [...document.querySelectorAll(sel)].map(e => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.width && (r.height < 44 || r.width < 44))
    .map(([e, r]) => `${e.textContent.trim().slice(0, 12)} ${Math.round(r.width)}x${Math.round(r.height)}`)"""


def test_a_handler_works_an_order_by_thumb(server: str, browser: Any, tmp_path: Path) -> None:
    photo = tmp_path / "scene.jpg"
    Image.new("RGB", (1200, 900), (180, 120, 60)).save(photo)
    for viewport, working in zip(PHONES, (LONG_LINK, "井盖破损"), strict=True):  # one order worked at each size
        page = _phone(browser, server, viewport, "hand_a")
        # 在办, the handler's home: the orders on the first screen, the further criteria folded (只看本单位承办, one of
        # them, opened them all and put the first order two screens down).
        assert "held=1" in page.url
        assert page.locator("details.more-filters").get_attribute("open") is None
        first = page.locator('[data-testid="order-table"] tbody tr a').first.bounding_box()  # its number
        assert first and first["y"] + first["height"] < viewport["height"], (viewport, first)
        assert _sideways(page) == 0
        assert page.evaluate(_SHORT_TARGETS, "header a, header summary, header button, main summary, main button") == []
        # The order with a link pasted into it: the link breaks, the page does not scroll sideways (1527 px wide).
        page.goto(f"{server}/orders/{_order_saying(LONG_LINK)}")
        assert LONG_LINK in page.locator('[data-testid="facts"]').inner_text()
        assert _sideways(page) == 0, viewport
        page.goto(f"{server}/orders/{_order_saying(working)}")
        # The actions below the facts, a link down to them; each action a 40-px target (16-px lines they were).
        page.click('[data-testid="to-actions"]')
        top = page.evaluate("document.getElementById('actions').getBoundingClientRect().top")
        assert -2 < top < viewport["height"] / 2 and page.evaluate("location.hash") == "#actions", top
        assert page.evaluate(_SHORT_TARGETS, '[data-testid="actions"] summary') == []
        page.locator('[data-testid="action-accept"] summary').click()
        page.click('[data-testid="submit-accept"]')
        page.wait_for_load_state()
        assert page.locator('[data-testid="order-state"]').inner_text() == "已签收"
        # 退单 without a reason: the form comes back open, the reason's problem right under its field.
        page.locator('[data-testid="action-return"] summary').click()
        page.click('[data-testid="submit-return"]')
        page.wait_for_load_state()
        field = page.locator("#return-reason").bounding_box()
        error = page.locator('[data-testid="field-error-reason"]').bounding_box()
        assert field and error and 0 <= error["y"] - (field["y"] + field["height"]) < 20, (field, error)
        assert page.locator('[data-testid="field-error-reason"]').inner_text() == "请填写「理由」。"
        assert _sideways(page) == 0
        # A photo from the phone, with a note: shown among the order's attachments.
        page.locator('[data-testid="action-attach"] summary').click()
        page.set_input_files("#attach-files", str(photo))
        page.fill("#attach-note", "现场照片")
        page.click('[data-testid="submit-attach"]')
        page.wait_for_load_state()
        assert page.locator('[data-testid="thumb"]').count() == 1
        assert _sideways(page) == 0
        # The photo's name, the link opening it, and its 移除: thumb's targets (a 19-px line, a 27-px-wide word).
        assert (
            page.evaluate(
                _SMALL_TARGETS, '[data-testid="attachments"] .attachment > a, [data-testid="attachments"] summary'
            )
            == []
        )
        # 答复 with a photo of the work done, in its own form: one tap to send both.
        page.locator('[data-testid="action-reply"] summary').click()
        page.fill("#reply-text", "已到现场处理完毕。")
        page.set_input_files("#reply-files", str(photo))
        assert _sideways(page) == 0
        page.click('[data-testid="submit-reply"]')
        page.wait_for_load_state()
        assert page.locator('[data-testid="order-state"]').inner_text() == "已答复"
        assert page.locator('[data-testid="thumb"]').count() == 2
        page.context.close()


def test_an_inspector_reports_from_where_they_stand(server: str, browser: Any) -> None:
    page = _phone(
        browser,
        server,
        PHONES[1],
        "grid",
        geolocation={"latitude": 23.1805, "longitude": 113.2701},
        permissions=["geolocation"],
    )
    page.goto(server + "/intake")
    locate = page.locator('[data-testid="locate-me"]')
    box = locate.bounding_box()
    assert box and box["height"] >= 40, box  # 使用当前位置 was a 29-px button
    locate.click()
    wait_in_page(page, "document.querySelector('#f-lat').value !== ''")
    assert (page.input_value("#f-lat"), page.input_value("#f-lng")) == ("23.180500", "113.270100")
    assert _sideways(page) == 0
    page.context.close()


def test_the_progress_lookup_reads_whole_on_a_phone(server: str, browser: Any) -> None:
    with session_scope() as s:
        number = s.get_one(Order, _order_saying("化粪池满溢")).number
    for viewport in PHONES:
        page = _phone(browser, server, viewport)
        page.goto(server + "/track")
        page.fill("#track-number", number)
        page.fill("#track-phone", TRACK_PHONE)
        page.click('[data-testid="track-form"] button')
        page.wait_for_load_state()
        assert page.locator('[data-testid="track-state"]').inner_text() == "已答复"
        # Each fact's name on one line (诉|求|内|容 stood a character a line beside the content).
        lines = page.evaluate(
            """[...document.querySelectorAll('[data-testid="track-facts"] th')].map(th => {
                const text = document.createRange(); text.selectNodeContents(th);
                return [th.textContent, new Set([...text.getClientRects()].map(r => Math.round(r.top))).size]; })"""
        )
        assert lines and all(n == 1 for _, n in lines), lines
        # The rating by thumb: each choice's whole line is its target.
        rating = '[data-testid="track-rate"] fieldset label, [data-testid="track-rate"] button'
        assert page.evaluate(_SHORT_TARGETS, rating) == []
        assert _sideways(page) == 0
        page.context.close()
