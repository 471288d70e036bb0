"""A street's handler's morning in a real browser at 1440 × 900: an order sent to the street is signed for and started
in one click (签收并开始办理), another unit is asked to assist from the unit picker (申请协办, saying what help is
needed), and that unit's handler finds the order in its 待签收 and reads its own part beside the lead
unit's time limit; on a phone, the unit improves a reply its supervisor sent back (答复退回完善) from the first screen.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is checked is the pages in a browser: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import sync_api
from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from process_helpers import BROWSER_SIDE, served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        sent = submit(
            s, data={"channel": "hotline", "content": "景泰路人行道井盖破损，行人容易绊倒", "street_code": "W-JT"}
        )
        orders.act(s, order_id=sent.order.id, action="dispatch", params={"unit_id": world.street_a})
        order_id, number = sent.order.id, sent.order.number
    with served_app(env, tmp_path / "serve.log") as base:
        yield {"base": base, "order_id": order_id, "number": number}


def _signed_in(browser: Any, base: str, username: str) -> Any:
    page = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    return sign_in(page, f"{base}/login", username)


def test_a_handler_signs_for_starts_and_asks_another_unit_to_assist(server: dict[str, Any], browser: Any) -> None:
    expect = sync_api.expect
    base, order_id = server["base"], server["order_id"]
    hand = _signed_in(browser, base, "hand_a")
    hand.goto(f"{base}/orders/{order_id}")
    hand.click("[data-testid=action-accept] summary")
    hand.click("[data-testid=accept-and-start]")
    expect(hand.get_by_test_id("order-state")).to_contain_text("办理中")

    hand.click("[data-testid=action-add_assist] summary")
    hand.select_option("#add_assist-unit_id", label="京溪街道")
    hand.fill("#add_assist-reason", "请协助核实京溪段井盖权属")
    hand.click("[data-testid=submit-add_assist]")
    expect(hand.locator("body")).to_contain_text("已完成：申请协办")

    helper = _signed_in(browser, base, "hand_b")
    helper.goto(f"{base}/orders?to_accept=1")
    expect(helper.locator("main")).to_contain_text(server["number"])
    helper.goto(f"{base}/orders/{order_id}")
    expect(helper.get_by_test_id("assist-asked")).to_contain_text("请协助核实京溪段井盖权属")
    own = helper.get_by_test_id("own-assist")
    expect(own).to_contain_text("待签收")
    expect(own).to_contain_text("主办单位景泰街道")


def test_a_handler_on_a_phone_ticks_all_on_to_accept_and_signs_for_and_starts_them(
    server: dict[str, Any], browser: Any
) -> None:
    """批量签收 on a phone (390 × 844): 全选本页 ticks the orders sent to the unit, 签收并开始办理所选 takes both steps
    for each, the flash naming them; the list is empty after."""
    expect = sync_api.expect
    base = server["base"]
    with session_scope() as s:
        second = submit(
            s, data={"channel": "hotline", "content": "景泰路路灯不亮已经一周", "street_code": "W-JT"}
        ).order
        street = orders.get_order(s, order_id=server["order_id"]).lead_unit_id  # type: ignore[union-attr]
        orders.act(s, order_id=second.id, action="dispatch", params={"unit_id": street})
        numbers = [server["number"], second.number]
    page = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, has_touch=True).new_page()
    page.set_default_timeout(20_000)
    hand = sign_in(page, f"{base}/login", "hand_a")
    hand.goto(f"{base}/orders?to_accept=1&sort=due")
    hand.get_by_test_id("accept-pick-all").check()
    for number in numbers:
        expect(hand.get_by_test_id(f"accept-pick-{number}")).to_be_checked()
    hand.get_by_test_id("bulk-accept-start").click()
    expect(hand.locator("body")).to_contain_text("已签收并开始办理 2 件")
    expect(hand.locator("[data-testid=order-table] tbody")).to_contain_text("没有符合条件的工单")
    with session_scope() as s:
        states = {orders.get_order(s, order_id=i).state.value for i in (server["order_id"], second.id)}  # type: ignore[union-attr]
    assert states == {"in_progress"}


def test_a_handler_on_a_phone_improves_a_reply_sent_back_from_the_first_screen(
    server: dict[str, Any], browser: Any
) -> None:
    """答复退回完善 on a phone (390 × 844): why the reply was sent back is in the first screen, its link leads to the
    答复 form open and holding the reply sent back; edited and sent, the order is replied with the new words."""
    expect = sync_api.expect
    base, order_id = server["base"], server["order_id"]
    with session_scope() as s:
        orders.act(s, order_id=order_id, action="accept", params={})
        orders.act(s, order_id=order_id, action="reply", params={"text": "井盖已更换。"})
        orders.act(s, order_id=order_id, action="reject_reply", params={"reason": "请写明更换日期和复查安排"})
    hand = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    ).new_page()
    hand.set_default_timeout(20_000)
    sign_in(hand, f"{base}/login", "hand_a")
    hand.goto(f"{base}/orders/{order_id}")
    notice = hand.get_by_test_id("sent-back")
    expect(notice).to_contain_text("请写明更换日期和复查安排")
    box = notice.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 844, box  # whole in the first screen
    hand.get_by_test_id("sent-back-prefilled").get_by_role("link").click()
    reply = hand.locator("#reply-text")
    expect(reply).to_be_in_viewport()
    expect(reply).to_have_value("井盖已更换。")
    reply.fill("井盖已于12月7日更换，12月14日复查。")
    hand.click("[data-testid=submit-reply]")
    expect(hand.locator("body")).to_contain_text("已完成：答复")
    expect(hand.get_by_test_id("reply")).to_contain_text("12月14日复查")
