"""The hotline operator's calls, taken with the keyboard alone at a desk (a headset on, no mouse): what the intake
form's suggestions do to the focus while they refresh, and what their buttons say to a screen reader.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's doing: SQLite only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from browser_helpers import sync_api
from cityhub.db import session_scope
from cityhub.intake.models import InvalidCall
from cityhub.intake.service import submit
from cityhub.knowledge import service as kb
from cityhub.knowledge.schemas import EntryCreate
from process_helpers import served_app
from web_helpers import build_world, module_database, pointed_at, sign_in, train_classifier, world_env

DESK = {"width": 1920, "height": 1080}
QUESTIONS = ("离职后住房公积金怎么提取", "住房公积金怎么贷款")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_classifier(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def served(
    model_dir: Path, migrated_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One server for the module's calls, over a database of its own: the world and the two answers, made once.
    Each test makes its own calls with phone numbers no other test dials (a caller's history, a repeat, a number
    searched are theirs alone), and a repeat call merged into its open order is at a street of its own."""
    directory = tmp_path_factory.mktemp("hotline")
    env = {
        "CITYHUB_DATABASE_URL": module_database(migrated_sqlite_template, directory),
        **world_env(model_dir),
        "CITYHUB_FILES_DIR": str(directory),
        # The orders a test makes in this process enter the server's similar-orders index before its next query, as
        # they did the index a server started for each test built at its first: not up to half a second later.
        "CITYHUB_DEDUPE_REFRESH_SECONDS": "0",
    }
    with pointed_at(env), session_scope() as s:
        build_world(s)
        for question in QUESTIONS:
            kb.create_entry(
                s,
                data=EntryCreate.model_validate(
                    {"question": question, "answer": f"{question}：请到公积金中心办理。", "keywords": "公积金"}
                ),
            )
    with served_app(env, directory / "serve.log") as base:
        yield {"base": base, "env": env}


@pytest.fixture
def server(served: dict[str, Any]) -> Iterator[str]:
    """The module's server; this process pointed at its database (the orders a test makes before it calls)."""
    with pointed_at(served["env"]):
        yield served["base"]


def _operator(browser: Any, base: str) -> Any:
    page = browser.new_context(locale="zh-CN", viewport=DESK).new_page()
    page.set_default_timeout(30_000)  # the first suggestion loads the classifier
    sign_in(page, f"{base}/login", "op")
    page.goto(f"{base}/intake")
    return page


def _focused(page: Any) -> str:
    """The focused element's id, else its tag (BODY: nothing focused)."""
    return str(page.evaluate("(document.activeElement.id || document.activeElement.tagName)"))


def _tab_to(page: Any, selector: str, most: int = 30) -> int:
    """Tab until the element ``selector`` names has the focus; returns how many Tabs it took."""
    for tabs in range(1, most + 1):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return tabs
    raise AssertionError(f"{selector} never took the focus in {most} Tabs")


def test_choosing_a_suggested_category_with_the_keyboard_keeps_the_focus(server: str, browser: Any) -> None:
    """选用 fills the category, which refreshes the suggestions: the focus goes to the category chosen and stays
    there, not to the top of the page with the button the refresh replaced (Tab then went through the menu)."""
    expect = sync_api.expect
    page = _operator(browser, server)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert _focused(page) == "f-appeal_type"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # 投诉
    _tab_to(page, "#f-content")
    page.keyboard.type("小区楼下餐馆油烟排放严重，噪音扰民，晚上无法休息")
    pick = page.locator("[data-testid=classify] [data-pick-category]").first
    expect(pick).to_be_visible(timeout=30_000)
    _tab_to(page, "[data-testid=classify] [data-pick-category]")
    chosen = pick.get_attribute("data-pick-category")
    status = page.locator("#assist-status")
    status.evaluate("e => { e.textContent = '' }")
    page.keyboard.press("Enter")
    expect(status).not_to_be_empty()  # the suggestions came back for the category chosen
    assert page.input_value("#f-category_id") == chosen
    assert _focused(page) == "f-category_id"
    # Two Tabs on (the urgency), the appeal is registered.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "intake-submit"
    page.context.close()


def test_the_suggestions_buttons_say_which_answer_and_which_category_they_use(server: str, browser: Any) -> None:
    """A screen reader hears each 秒回 button with the question it answers and each 选用 with its category: the
    panel's buttons were all alike by name (以此答复并办结（秒回） three times), saying nothing of which they used."""
    expect = sync_api.expect
    page = _operator(browser, server)
    _tab_to(page, "#f-content")
    page.keyboard.type("请问离职后住房公积金怎么提取")
    answers = page.locator("[data-testid=kb] button")
    expect(answers).to_have_count(2, timeout=30_000)
    for question in QUESTIONS:
        named = re.compile(rf"^以此答复并办结（秒回）\s*：{question}$")  # the visible words first, then which
        expect(page.get_by_role("button", name=named)).to_have_count(1)
    picks = page.locator("[data-testid=classify] [data-pick-category]")
    expect(picks.first).to_be_visible()
    labels = [label.split()[0] for label in page.locator("[data-testid=classify] li > span").all_inner_texts()]
    for pick, label in zip(picks.all(), labels, strict=True):
        said = pick.aria_snapshot()
        assert re.fullmatch(rf"- button \"选用\s+{re.escape(label)}\"", said), (said, label)
    page.context.close()


def test_calls_follow_one_another_with_one_key_between_them(server: str, browser: Any) -> None:
    """A call answered on the spot (秒回) or registered lands on its order page with the number to read out and the
    focus on 受理下一个来电: Enter opens a fresh form at the caller's number (it took Tabs through the menu to 受理).
    Not on a citizen's page, whose appeal is no call."""
    expect = sync_api.expect
    page = _operator(browser, server)
    page.keyboard.type("13800138001")
    _tab_to(page, "#f-content")
    page.keyboard.type("请问离职后住房公积金怎么提取")
    answer = page.get_by_role("button", name=re.compile(QUESTIONS[0]))
    expect(answer).to_have_count(1, timeout=30_000)
    _tab_to(page, "[data-testid=kb] button")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=flash]")).to_contain_text("已秒回并办结")
    expect(page.locator("[data-testid=next-call]")).to_be_focused()  # autofocus comes after the page is drawn
    page.keyboard.press("Enter")
    page.wait_for_url("**/intake")
    assert _focused(page) == "f-citizen_phone"
    # The next caller's complaint, registered with its button (Enter in the address goes on to the next field).
    page.keyboard.type("13900139001")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # 投诉
    _tab_to(page, "#f-content")
    page.keyboard.type("小区楼下餐馆油烟排放严重")
    _tab_to(page, "#f-address")
    page.keyboard.type("景泰街道云景路1号")
    _tab_to(page, "[data-testid=intake-submit]")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=flash]")).to_contain_text("已受理")
    expect(page.locator("[data-testid=next-call]")).to_be_focused()  # autofocus comes after the page is drawn
    page.context.close()
    citizen = browser.new_context(locale="zh-CN", viewport=DESK).new_page()
    sign_in(citizen, f"{server}/login", "cit")
    citizen.goto(f"{server}/intake")
    citizen.select_option("#f-appeal_type", "complaint")
    citizen.fill("#f-content", "小区楼下餐馆油烟排放严重")
    citizen.click("[data-testid=intake-submit]")
    expect(citizen.locator("[data-testid=flash]")).to_be_visible()
    assert citizen.locator("[data-testid=next-call]").count() == 0
    citizen.context.close()


def test_a_caller_who_hangs_up_leaves_a_form_the_operator_clears_with_one_link(server: str, browser: Any) -> None:
    """Mid-call the caller hangs up: what was typed stays on the form (nothing is registered), and 清空，接下一个来电,
    right after the form's buttons, opens a fresh one at the caller's number — there was no way but the menu."""
    expect = sync_api.expect
    page = _operator(browser, server)
    page.keyboard.type("13800138002")
    _tab_to(page, "#f-title")
    page.keyboard.type("路灯不亮")
    _tab_to(page, "button[name=preview]")
    page.keyboard.press("Tab")
    clear = page.get_by_role("button", name="清空，接下一个来电")
    expect(clear).to_be_focused()
    assert page.input_value("#f-title") == "路灯不亮"
    page.once("dialog", lambda dialog: dialog.accept())  # what was typed goes: asked first
    page.keyboard.press("Enter")
    expect(page.locator("#f-citizen_phone")).to_be_focused()
    assert page.input_value("#f-citizen_phone") == page.input_value("#f-title") == ""
    page.context.close()


def test_a_callers_orders_found_by_phone_take_the_focus_while_they_wait(server: str, browser: Any) -> None:
    """The caller's earlier order, searched by their phone from the order list: the first order found has the focus,
    Enter opens it — it sat some 40 Tabs below the page's top, past every filter a wide screen unfolds. A list not
    searched (a quick view, a drill-down) keeps the focus where a page starts."""
    with session_scope() as s:
        number = submit(
            s, data={"channel": "hotline", "content": "小区楼下路灯不亮", "citizen_phone": "13700137000"}
        ).order.number
    page = _operator(browser, server)
    page.goto(f"{server}/orders")
    assert _focused(page) == "BODY"
    page.locator("#q").focus()
    page.keyboard.type("137 0013 7000")
    page.keyboard.press("Enter")
    page.wait_for_url("**/orders?q=*")
    assert page.evaluate("document.activeElement.textContent") == number
    page.keyboard.press("Enter")
    page.wait_for_url("**/orders/*")
    assert page.locator("h1").inner_text().split()[1] == number
    page.context.close()


def test_the_callers_history_is_announced_by_its_count_not_read_out_whole(server: str, browser: Any) -> None:
    """来电历史 refreshes as the number is typed: a screen reader hears how many earlier appeals the number has, once,
    from a status beside it — the list itself was a live region, read out whole (every order's title, state and date)
    at each pause in typing."""
    expect = sync_api.expect
    with session_scope() as s:
        for content in ("小区楼下路灯不亮", "小区门口井盖松动"):
            submit(s, data={"channel": "hotline", "content": content, "citizen_phone": "13700137200"})
    page = _operator(browser, server)
    history = page.locator("#caller-history")
    assert history.get_attribute("aria-live") is None
    page.keyboard.type("13700137200")
    expect(history).to_contain_text("井盖松动")
    status = page.locator("#caller-status")
    assert status.get_attribute("role") == "status"
    expect(status).to_have_text("该号码以往的诉求（共 2 件）")
    page.keyboard.press("Backspace")
    page.keyboard.type("1")
    expect(status).to_have_text("该号码没有以往的诉求。")
    assert page.locator("#caller-status").count() == 1  # filled in place
    # Shortened below a number that can be searched: the count said before goes, with the list (it stayed).
    page.keyboard.type("1")
    expect(status).to_have_text("该号码没有以往的诉求。")  # 137001372011: still searchable
    for _ in range(6):
        page.keyboard.press("Backspace")  # 137001: too short
    expect(status).to_have_text("")
    expect(history).to_have_text("")
    page.context.close()


def _answering(page: Any) -> tuple[list[str], dict[str, bool]]:
    """The page's dialogs (confirm) answered as the test says — no until ``accept["yes"]`` — each one's question kept
    in ``asked``."""
    asked: list[str] = []
    accept = {"yes": False}

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        if accept["yes"]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    return asked, accept


def test_clearing_for_the_next_call_asks_first_only_when_something_was_typed(server: str, browser: Any) -> None:
    """清空，接下一个来电 threw a half-typed call away at a stray key: it asks first (the browser's own dialog, Enter
    or Escape) once something is typed or chosen, and clears an untouched form at once."""
    expect = sync_api.expect
    page = _operator(browser, server)
    asked, accept = _answering(page)
    _tab_to(page, "[data-testid=new-call]")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # nothing typed: cleared without a question
    assert asked == []
    expect(page.locator("#f-citizen_phone")).to_be_focused()
    page.keyboard.type("13800138003")
    _tab_to(page, "#f-content")
    page.keyboard.type("小区楼下路灯不亮")
    _tab_to(page, "[data-testid=new-call]")
    page.keyboard.press("Enter")
    assert asked == ["清空已填写的内容，接下一个来电？已填写的内容不会保存。"]
    assert page.input_value("#f-content") == "小区楼下路灯不亮"  # kept: the operator said no
    expect(page.locator("[data-testid=new-call]")).to_be_focused()
    accept["yes"] = True
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert len(asked) == 2 and page.input_value("#f-content") == page.input_value("#f-citizen_phone") == ""
    page.context.close()


def test_an_invalid_call_asks_first_only_when_the_appeal_was_typed(server: str, browser: Any) -> None:
    """无效来电's buttons record the call and drop the form: a misclick on 挂断 threw a half-typed appeal away. They ask
    first once the appeal's words were typed; the phone alone, which they record, asks nothing."""
    page = _operator(browser, server)
    asked, accept = _answering(page)
    page.fill("#f-citizen_phone", "13800138071")
    page.fill("#f-content", "我家楼下的路灯坏了一个星期")
    page.click("[data-testid=invalid-hang_up]")
    assert asked == ["记为无效来电？已填写的诉求内容不会保存。"]
    assert page.input_value("#f-content") == "我家楼下的路灯坏了一个星期"  # kept: the operator said no
    accept["yes"] = True
    with page.expect_navigation():
        page.click("[data-testid=invalid-hang_up]")
    assert len(asked) == 2 and "已记录无效来电（挂断）" in page.content()
    page.fill("#f-citizen_phone", "13800138072")
    with page.expect_navigation():
        page.click("[data-testid=invalid-silent]")  # the phone alone: recorded at once
    assert len(asked) == 2 and "已记录无效来电（无声）" in page.content()
    with session_scope() as s:
        phones = set(s.scalars(select(InvalidCall.citizen_phone).where(InvalidCall.citizen_phone.like("1380013807%"))))
    assert phones == {"13800138071", "13800138072"}
    page.context.close()


def test_enter_in_a_one_line_field_goes_to_the_next_field_and_registers_nothing(server: str, browser: Any) -> None:
    """Enter in the title or the address (accepting an input method's word, or by habit) registered the call half
    typed: it moves to the next field; the form's buttons still register it by key."""
    expect = sync_api.expect
    page = _operator(browser, server)
    # Without app.js too: the form's default button is disabled, so a browser's implicit submission does nothing.
    default = page.locator("#intake-form button[type=submit]").first
    assert default.is_disabled() and default.get_attribute("data-testid") == "no-implicit-submit"
    page.keyboard.type("13900139002")
    _tab_to(page, "#f-title")
    page.keyboard.type("油烟扰民")
    page.keyboard.press("Enter")
    assert _focused(page) == "f-content"
    page.keyboard.type("小区楼下餐馆油烟排放严重")
    _tab_to(page, "#f-address")
    page.keyboard.type("景泰街道云景路1号")
    page.keyboard.press("Enter")
    assert _focused(page) == "f-files"
    assert page.locator("[data-testid=flash]").count() == 0 and page.url.endswith("/intake")
    assert page.input_value("#f-title") == "油烟扰民" and page.input_value("#f-address") == "景泰街道云景路1号"
    page.focus("#f-title")  # back to the title
    page.keyboard.press("Enter")
    assert _focused(page) == "f-content" and page.url.endswith("/intake")
    page.select_option("#f-appeal_type", "complaint")
    _tab_to(page, "[data-testid=intake-submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("[data-testid=flash]")).to_contain_text("已受理", timeout=30_000)
    page.context.close()


def test_asking_for_suggestions_brings_the_focus_to_them(server: str, browser: Any) -> None:
    """查询建议 posts the form and the page comes back: the focus was at the page's top (Tab went through the menu
    again); it is at the suggestions, the next Tab at their first 秒回 button."""
    page = _operator(browser, server)
    _tab_to(page, "#f-content")
    page.keyboard.type("请问离职后住房公积金怎么提取")
    _tab_to(page, "button[name=preview]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert _focused(page) == "assist-heading"
    assert page.input_value("#f-content") == "请问离职后住房公积金怎么提取"
    page.keyboard.press("Tab")
    assert (page.evaluate("document.activeElement.dataset.testid") or "").startswith("kb-answer-")
    page.context.close()


def test_a_consultation_is_answered_on_the_spot_two_keys_after_its_question(server: str, browser: Any) -> None:
    """From the question to 秒回 took 10 to 14 Tabs (past the address, files, category, urgency, the form's buttons
    and the caller's history): while answers are suggested, the Tab after the question is a link to them, and Enter
    on it focuses the first; Enter again answers the call."""
    expect = sync_api.expect
    page = _operator(browser, server)
    skip = page.get_by_role("link", name="跳到知识库秒回答复")
    page.keyboard.type("13800138004")
    _tab_to(page, "#f-content")
    expect(skip).to_have_count(0)  # nothing to answer with yet: no extra stop
    page.keyboard.type("请问离职后住房公积金怎么提取")
    expect(page.locator("[data-testid=kb] button")).to_have_count(2, timeout=30_000)
    assert _focused(page) == "f-content"
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    assert (page.evaluate("document.activeElement.dataset.testid") or "").startswith("kb-answer-")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=flash]")).to_contain_text("已秒回并办结")
    page.context.close()


def test_ctrl_enter_in_the_callers_words_registers_the_appeal(server: str, browser: Any) -> None:
    """The caller's words end in the content's box, five Tabs above 受理登记: Ctrl+Enter there registers the appeal
    as the button does (Enter alone still starts a new line), and one refused comes back at the field to fix, with
    what was typed."""
    expect = sync_api.expect
    page = _operator(browser, server)
    page.keyboard.type("13900139003")
    _tab_to(page, "#f-content")
    page.keyboard.type("小区楼下餐馆油烟排放严重")
    page.keyboard.press("Enter")
    page.keyboard.type("晚上无法休息")
    assert page.url.endswith("/intake")
    page.keyboard.press("Control+Enter")  # no kind of appeal chosen: refused, at that field
    expect(page.locator("#err-appeal_type")).to_be_visible(timeout=30_000)
    expect(page.locator("#f-appeal_type")).to_be_focused()  # app.js focuses it once the page is drawn (slow under load)
    assert page.input_value("#f-content") == "小区楼下餐馆油烟排放严重\n晚上无法休息"
    page.keyboard.press("ArrowDown")  # 投诉
    _tab_to(page, "#f-content")
    page.keyboard.press("Control+Enter")
    expect(page.locator("[data-testid=flash]")).to_contain_text("已受理")
    expect(page.locator("[data-testid=next-call]")).to_be_focused()  # autofocus comes after the page is drawn
    page.context.close()


def test_registering_a_repeat_call_into_its_open_order_asks_first(server: str, browser: Any) -> None:
    """受理并并入 cannot be undone: its button asks before the form goes (the intake form's other buttons do not) —
    declined, nothing is registered and the call stays typed; accepted, the call is merged into the open order."""
    from sqlalchemy import func, select

    from cityhub.workorders.models import Order

    expect = sync_api.expect
    page = _operator(browser, server)

    def call(content: str) -> None:
        page.keyboard.type("13911113333")
        page.select_option("#f-appeal_type", "complaint")
        page.fill("#f-content", content)
        page.fill("#f-address", "景泰街道云景路8号")

    call("楼下餐馆油烟很大，每天晚上排放油烟熏到楼上住户，窗户都不敢开")
    page.click('[data-testid="intake-submit"]')
    expect(page.locator('[data-testid="next-call"]')).to_be_visible()
    with session_scope() as s:
        first = s.scalars(select(Order).order_by(Order.id.desc())).first()
        assert first is not None
        number, first_id = first.number, first.id
        before = s.scalar(select(func.count()).select_from(Order))
    page.goto(f"{server}/intake")
    call("楼下餐馆油烟很大，晚上排油烟，熏得窗户不敢开")
    button = page.locator(f'[data-testid="merge-into-{first_id}"]').first
    expect(button).to_be_visible(timeout=30_000)
    asked: list[str] = []

    def decline(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    button.click()
    page.wait_for_timeout(500)
    assert asked and number in asked[0] and "不能撤销" in asked[0]
    assert page.url.endswith("/intake") and page.input_value("#f-content").startswith("楼下餐馆油烟很大")
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == before
    page.once("dialog", lambda dialog: dialog.accept())
    button.click()
    expect(page.get_by_text(f"已受理并并入工单 {number} 办理")).to_be_visible()
    with session_scope() as s:
        repeat = s.scalars(select(Order).order_by(Order.id.desc())).first()
        assert repeat is not None and repeat.master_order_id == first_id
    page.context.close()


def test_the_street_an_address_resolves_to_is_said_under_it_on_a_small_monitor(server: str, browser: Any) -> None:
    """属地识别 where the operator looks while the caller spells the address: the street it resolves to is said under
    the address field, in view on the desk's 1280 × 720 monitors — the suggestions' line lay below five similar cases,
    past the screen's bottom, and the operator scrolled for it mid-call. A form posted back says it there too."""
    page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 720}).new_page()
    page.set_default_timeout(30_000)  # the first suggestion loads the classifier
    sign_in(page, f"{server}/login", "op")
    page.goto(f"{server}/intake")
    page.select_option("#f-appeal_type", "complaint")
    page.fill("#f-content", "小区门口的路灯坏了一个多月了，晚上很黑")
    page.locator("#f-address").press_sequentially("景泰街道云景路1号")
    line = page.locator("[data-testid=address-place]")
    sync_api.expect(line).to_contain_text("景泰街道", timeout=60_000)  # the first suggestion loads the classifier
    box = line.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720, box
    page.get_by_test_id("intake-preview").click()
    sync_api.expect(line).to_contain_text("景泰街道", timeout=30_000)
    page.context.close()


def test_a_safety_matter_is_taken_as_critical_with_one_key_after_the_callers_words(server: str, browser: Any) -> None:
    """A fire with someone trapped: under the caller's words the desk says it may endanger people, and the next Tab
    is its button — Enter sets the urgency to 特急 (the field at the form's end, where the focus then is) and the note,
    said, goes away; the call is registered 特急 with Ctrl+Enter."""
    page = _operator(browser, server)
    page.select_option("#f-appeal_type", "help")
    page.locator("#f-content").focus()
    page.keyboard.type("庆丰村一户人家着火了，冒黑烟，里面可能有人被困")
    note = page.locator("[data-testid=safety]")
    sync_api.expect(note).to_contain_text("着火、被困", timeout=60_000)  # the first suggestion loads the classifier
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "safety-urgent"
    page.keyboard.press("Enter")
    assert page.locator("#f-urgency").input_value() == "critical" and _focused(page) == "f-urgency"
    sync_api.expect(note).to_have_count(0, timeout=30_000)
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/orders/*")
    assert "求助 · 特急" in page.locator("main").inner_text()
    page.context.close()


FUMES = "楼下餐馆油烟很大，每天晚上排放油烟熏到楼上住户，窗户都不敢开"


def _reported(phone: str, content: str = FUMES) -> tuple[str, int]:
    """A caller's open complaint at 景泰街道云景路8号 (a restaurant's fumes unless told): its number and id."""
    with session_scope() as s:
        data = {
            "channel": "hotline",
            "appeal_type": "complaint",
            "content": content,
            "citizen_phone": phone,
            "address": "景泰街道云景路8号",
        }
        order = submit(s, data=data).order
        return order.number, order.id


def test_a_repeat_calls_merge_button_is_two_keys_after_the_address(server: str, browser: Any) -> None:
    """受理并并入 lay ten Tabs past the address (the files, category, urgency, the form's buttons, the caller's list):
    while an open order the call repeats is listed, the Tab after the address is a link to its button, as the
    question's is to 秒回 — Enter focuses it, Enter asks (a merge is not undone) and, accepted, merges the call."""
    expect = sync_api.expect
    # A matter of its own (a building site's noise at night): the module's complaints of a restaurant's fumes at the
    # address, older, would be listed first, the place and the words alike.
    number, order_id = _reported("13911114444", "楼下工地每天晚上十一点还在打桩施工，噪音很大，吵得孩子睡不着觉")
    page = _operator(browser, server)
    skip = page.get_by_role("link", name="跳到受理并并入")
    page.keyboard.type("13911114444")
    page.select_option("#f-appeal_type", "complaint")
    page.fill("#f-content", "楼下工地晚上还在打桩，噪音很大，吵得孩子睡不着")
    page.locator("#f-address").focus()
    expect(skip).to_have_count(0)  # nothing to merge into yet: no extra stop
    page.keyboard.type("景泰街道云景路8号")
    first = page.locator("#assistance button[name=merge_into]").first
    expect(first).to_be_visible(timeout=60_000)
    assert first.get_attribute("value") == str(order_id)  # the caller's open order
    assert _focused(page) == "f-address"
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.name") == "merge_into"
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"已受理并并入工单 {number} 办理")).to_be_visible()
    page.context.close()


def test_an_order_number_typed_for_the_phone_shows_that_order_beside_the_form(server: str, browser: Any) -> None:
    """A caller asking after their case reads out its number: typed where the phone goes, that order's state, unit
    and time limit show beside the form (the operator left the form for 工单 → search), the call's words kept."""
    expect = sync_api.expect
    number, order_id = _reported("13911115555")
    page = _operator(browser, server)
    page.fill("#f-content", "来电询问油烟投诉的办理进度")
    page.locator("#f-citizen_phone").focus()
    page.keyboard.type(number.lower())
    line = page.get_by_test_id("order-asked-line")
    expect(line).to_contain_text(number, timeout=30_000)
    expect(line).to_contain_text("受理")
    expect(page.get_by_test_id("caller-status")).to_have_text(f"已找到工单 {number}")
    assert page.url.endswith("/intake") and page.input_value("#f-content") == "来电询问油烟投诉的办理进度"
    assert line.get_by_role("link").first.get_attribute("href") == f"/orders/{order_id}"
    page.context.close()
