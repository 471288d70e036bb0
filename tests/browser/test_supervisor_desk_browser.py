"""A supervisor's 超期 list at 1440 × 900, in a real browser: the overdue orders ticked at once (全选本页), one message,
one click — each urged, the flash naming each order and the unit it went to; a blank message refused with the ticks
kept; 答复审核's 退回答复 on its row; and 回访不满意's 重办 on its row on a 390 × 844 phone; the callback
desk's 回访并办结.

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
from process_helpers import BROWSER_SIDE, served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


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
        # 回访不满意: answered, and the citizen not satisfied
        rated = submit(s, data={"channel": "hotline", "content": "路面积水无人处理", "street_code": "W-JX"}).order
        orders.act(s, order_id=rated.id, action="dispatch", params={"unit_id": world.streets["W-JX"]})
        for action in ("accept", "start"):
            orders.act(s, order_id=rated.id, action=action)
        orders.act(s, order_id=rated.id, action="reply", params={"text": "已安排清理积水，并疏通雨水口。"})
        orders.act(s, order_id=rated.id, action="callback", params={"satisfied": False, "reason": "还是有积水"})
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


def test_a_bulk_urge_refused_for_a_blank_message_keeps_the_orders_ticked(server: str, browser: Any) -> None:
    """Only blanks typed (the box's required lets them through), the list came back with nothing ticked: the ticks
    stay, the flash says so, the message box takes the focus; the message typed then, the same ticks urge."""
    page = browser.new_context(locale="zh-CN", viewport=WIDE).new_page()
    sign_in(page, f"{server}/login", "sup").goto(server + "/orders?overdue=1&sort=due")
    boxes = page.locator("input[name=pick]")
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.get_by_test_id("bulk-urge-reason").fill("   ")
    page.get_by_test_id("bulk-urge-submit").click()
    page.wait_for_load_state()

    assert "所选 2 件工单仍保持勾选" in page.get_by_test_id("flash").inner_text()
    assert [boxes.nth(i).is_checked() for i in range(3)] == [True, False, True]
    assert page.evaluate("document.activeElement.dataset.testid") == "bulk-urge-reason"
    page.get_by_test_id("bulk-urge-reason").fill("请今天内答复市民")
    page.get_by_test_id("bulk-urge-submit").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("flash").inner_text().startswith("已催办 2 件")


def test_an_unsatisfied_callback_is_reopened_from_its_row_on_a_phone(server: str, browser: Any) -> None:
    """回访不满意 on a 390 × 844 phone: 重办 and 办结 under the order's card, within the screen's width; 重办 with its
    reason sends the order back to its unit, the flash naming it, the row gone."""
    page = browser.new_context(locale="zh-CN", viewport=PHONE).new_page()
    sign_in(page, f"{server}/login", "sup").goto(server + "/orders?state=called_back&satisfied=false&sort=oldest")
    row = page.locator("tr.row-actions")
    assert row.count() == 1 and row.locator("button").all_inner_texts() == ["重办", "办结"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = row.locator("form").first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    row.locator("input[name=reason]").first.fill("市民反映仍有积水，请重新处理")
    row.locator("button").first.click()
    page.wait_for_load_state()

    assert "已完成重办" in page.get_by_test_id("flash").inner_text() and page.locator("tr.row-actions").count() == 0
    with session_scope() as s:
        reopened = s.query(OrderEvent).filter_by(action="reopen").one()
        assert reopened.reason == "市民反映仍有积水，请重新处理"
        assert s.get(Order, reopened.order_id).state == "dispatched"  # type: ignore[union-attr]


def test_the_callback_desk_calls_back_and_closes_a_satisfied_order_in_one_step(server: str, browser: Any) -> None:
    """At 1440 × 900: 答复审核 in the menu says the weak reply waiting; 待回访 marks it 答复偏弱; a sound reply is
    called back 满意 and closed with one button, 回访并办结 — the order closed, both steps in its trail; the review's
    reason box offers the common reasons to choose."""
    with session_scope() as s:
        sound = submit(
            s,
            data={
                "channel": "hotline",
                "content": "楼下路灯不亮",
                "street_code": "W-JT",
                "citizen_name": "李先生",
                "citizen_phone": "13800138000",
            },
        ).order
        held = s.query(Order).filter(Order.state == "dispatched").first()  # a street of the world's
        assert held is not None
        orders.act(s, order_id=sound.id, action="dispatch", params={"unit_id": held.lead_unit_id})
        for action in ("accept", "start"):
            orders.act(s, order_id=sound.id, action=action)
        orders.act(s, order_id=sound.id, action="reply", params={"text": "已派人更换灯泡，路灯已恢复照明。"})
        weak = s.query(Order).filter(Order.reply_text == "您好，收悉，谢谢。").one()
        number, sound_id, weak_number = sound.number, sound.id, weak.number
    page = browser.new_context(locale="zh-CN", viewport=WIDE).new_page()
    sign_in(page, f"{server}/login", "sup").goto(server + "/orders?state=replied&no_citizen=false&sort=oldest")
    reviews = page.locator('header a[href="/reviews"]')
    assert reviews.get_by_test_id("nav-count").inner_text() == "1"
    weak_row = page.locator("table.orders tbody tr", has_text=weak_number)
    assert weak_row.get_by_test_id("weak-reply").inner_text() == "答复偏弱"
    assert page.locator("table.orders tbody tr", has_text=number).get_by_test_id("weak-reply").count() == 0

    page.get_by_role("link", name=number).click()
    page.get_by_test_id("action-callback").locator("summary").click()
    page.locator("#callback-satisfied").select_option("true")
    page.locator("#callback-reason").fill("市民表示路灯已修好")
    page.get_by_test_id("callback-and-close").click()
    page.wait_for_load_state()
    # The next order 待回访 lists offered in the flash, the keyboard's focus on it: one Enter, not back to the list.
    assert page.get_by_test_id("flash").inner_text() == f"已完成：回访并办结。 下一个待回访：{weak_number}"
    assert page.evaluate("document.activeElement.dataset.testid") == "next-callback"
    with session_scope() as s:
        assert s.get(Order, sound_id).state == "closed_resolved"  # type: ignore[union-attr]
        trail = [e.action for e in s.query(OrderEvent).filter_by(order_id=sound_id).order_by(OrderEvent.id)]
    assert trail[-2:] == ["callback", "close"]
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith(f"工单 {weak_number}")

    reviews.click()
    box = page.locator(f'[data-testid="review-return-{weak_number}"] input[name="reason"]')
    assert box.get_attribute("list") == "reason-choices-reject_reply"
    offered = page.locator("#reason-choices-reject_reply option")
    assert offered.count() == 4 and offered.first.get_attribute("value") == "答复未回应诉求要点，请针对诉求补充处理结果"
    # The reason offered from the row's own findings, in the words the row shows them, to send or edit.
    first_finding = page.locator(f'tr[data-number="{weak_number}"] [data-testid="review-findings"] li').first
    said = first_finding.evaluate("li => li.firstChild.textContent")
    assert box.input_value().startswith(said) and box.input_value().endswith("请补充后重新答复。")
    assert box.is_editable()
