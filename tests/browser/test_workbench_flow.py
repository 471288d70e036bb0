"""A real browser against a real ``cityhub serve``: the operator registers an appeal and sees the suggestions, the
dispatcher dispatches it from the queue, the handler accepts and replies, and the audit trail shows every step.

Needs Debian's ``chromium`` at /usr/bin/chromium (``.ci/run`` installs it) and ``playwright`` from PyPI (the
dev extra); the test never downloads a browser. The end-to-end test and the unit filter run on both backends, each
with a server of its own over the test database of the current backend; the others, whose subject is what the
browser does (SQLite only), share one server over a database of their own.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from browser_helpers import sync_api
from cityhub.db import reset_engine, session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Unit
from cityhub.workorders.models import Order
from process_helpers import served_app
from web_helpers import (
    PASSWORD,
    STREETS,
    build_world,
    module_database,
    pointed_at,
    sign_in,
    train_classifier,
    world_env,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, tiny category classifier artefact (trained on synthetic messages) for the server to load."""
    return train_classifier(tmp_path_factory.mktemp("model"))


PAST = {
    "channel": "hotline",
    "title": "餐馆油烟噪音扰民",
    "content": "小区楼下餐馆油烟排放严重，噪音扰民",
    "street_code": "W-JT",
}


@pytest.fixture
def server(app_db: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Seed the small world of ``web_helpers``, then run ``cityhub serve`` on a free loopback port against the test
    database: for the tests run on both backends."""
    env = {"CITYHUB_DATABASE_URL": app_db, **world_env(model_dir), "CITYHUB_FILES_DIR": str(tmp_path / "files")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_engine()
    with session_scope() as s:
        build_world(s)
        past_number = submit(s, data=PAST).order.number
    log_path = tmp_path / "serve.log"
    with served_app(env, log_path) as base:
        yield {"base": base, "past_number": past_number, "street": STREETS["W-JT"], "log": log_path}


@pytest.fixture(scope="module")
def served(
    model_dir: Path, migrated_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The same world and server, once for the module's SQLite-only tests, over a database of its own: they read it,
    and each order a test acts on or looks for in the queue is its own."""
    directory = tmp_path_factory.mktemp("workbench")
    env = {
        "CITYHUB_DATABASE_URL": module_database(migrated_sqlite_template, directory),
        **world_env(model_dir),
        "CITYHUB_FILES_DIR": str(directory / "files"),
    }
    with pointed_at(env), session_scope() as s:
        build_world(s)
        past_number = submit(s, data=PAST).order.number
    log_path = directory / "serve.log"
    with served_app(env, log_path) as base:
        yield {"base": base, "past_number": past_number, "street": STREETS["W-JT"], "log": log_path, "env": env}


@pytest.fixture
def sqlite_server(served: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The module's server (:func:`served`); this process pointed at its database."""
    with pointed_at(served["env"]):
        yield served


def _login(browser: Any, base: str, username: str, refused: list[str]) -> Any:
    """A signed-in page; what the content security policy refuses on it is appended to ``refused``."""
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return sign_in(page, f"{base}/login", username)


def test_operator_dispatcher_and_handler_work_an_appeal_end_to_end(server: dict[str, Any], browser: Any) -> None:
    base = server["base"]
    expect = sync_api.expect
    # The first suggestion loads the classifier and builds the similar-orders index: allow for it.
    expect.set_options(timeout=30_000)
    refused: list[str] = []  # the pages must work under the content security policy, with nothing refused

    # Operator: register an appeal; suggestions appear while typing (htmx), before anything is saved.
    op = _login(browser, base, "op", refused)
    expect(op).to_have_url(f"{base}/intake")
    expect(op.locator("nav")).to_contain_text("受理")
    op.select_option("#f-appeal_type", "complaint")
    op.fill("#f-citizen_name", "张三丰")
    op.fill("#f-citizen_phone", "13800138000")
    op.fill("#f-title", "餐馆油烟扰民")
    op.fill("#f-content", "小区楼下餐馆油烟排放严重，噪音扰民，晚上无法休息")
    op.fill("#f-address", "景泰街道云景路1号")
    citizen_photo = io.BytesIO()
    Image.new("RGB", (12, 9), "grey").save(citizen_photo, "JPEG")
    op.set_input_files(
        "#f-files", [{"name": "市民照片.jpg", "mimeType": "image/jpeg", "buffer": citizen_photo.getvalue()}]
    )
    # the open appeal at the same place is a possible duplicate, listed there (not again among the similar cases)
    expect(op.locator("[data-testid=duplicates]")).to_contain_text(server["past_number"])
    expect(op.locator("[data-testid=classify] li").first).to_contain_text("环境保护")  # runners-up at 0% are left out
    op.locator("[data-testid=classify] [data-pick-category]").first.click()
    assert op.locator("#f-category_id option:checked").inner_text() == "环境保护"
    op.click("[data-testid=intake-submit]")
    expect(op.locator("[data-testid=flash]")).to_contain_text("已受理")
    expect(op.locator("[data-testid=order-state]")).to_contain_text("已受理")
    number = op.locator("h1").inner_text().split()[1]
    expect(op.locator("[data-testid=attachments]")).to_contain_text("市民照片.jpg")  # given with the appeal
    order_path = op.url.removeprefix(base)
    expect(op.locator("[data-testid=candidates]")).to_contain_text(server["street"])

    # Dispatcher: the order waits in the queue with its suggestion; one click dispatches it.
    disp = _login(browser, base, "disp", refused)
    expect(disp).to_have_url(f"{base}/queue")
    item = disp.locator(f"[data-testid=queue-item][data-number='{number}']")
    expect(item).to_contain_text(f"派至 {server['street']}")
    expect(item.locator("[data-testid=decision-place]")).to_contain_text(f"{server['street']}（按地址识别）")
    item.locator("button", has_text="派至").first.click()
    expect(disp.locator("[data-testid=flash]")).to_contain_text(f"已派单：{number}")
    expect(disp.locator(f"[data-testid=queue-item][data-number='{number}']")).to_have_count(0)

    # Handler of the street: accept, then reply; a reply without text is refused with a readable message.
    hand = _login(browser, base, "hand_a", refused)  # the handler of 景泰街道
    # 在办: what its unit has to do (holds), the nearest limit first.
    expect(hand).to_have_url(f"{base}/orders?state=open&held=1&sort=due")
    hand.click(f"text={number}")
    expect(hand.locator("[data-testid=order-state]")).to_contain_text("已派单")
    expect(hand.locator("[data-testid=citizen-phone]")).to_have_text("13800138000")  # its own unit leads it
    hand.click("[data-testid=action-accept] summary")
    hand.click("[data-testid=submit-accept]")
    expect(hand.locator("[data-testid=order-state]")).to_contain_text("已签收")
    # A photo of the work done, from the order page (on a phone the file input offers the camera).
    photo = io.BytesIO()
    Image.new("RGB", (8, 6), "green").save(photo, "PNG")
    hand.click("[data-testid=action-attach] summary")
    hand.set_input_files("#attach-files", [{"name": "整改后.png", "mimeType": "image/png", "buffer": photo.getvalue()}])
    hand.fill("#attach-note", "整改后现场")
    hand.click("[data-testid=submit-attach]")
    expect(hand.locator("[data-testid=flash]")).to_contain_text("已上传 1 个附件")
    href = hand.locator("[data-testid=attachments] a", has_text="整改后.png").get_attribute("href")
    shown = hand.context.new_page()
    shown.goto(f"{base}{href}")  # the file itself, under the session that may read the order
    assert shown.evaluate("document.images[0].naturalWidth") == 8
    shown.close()
    hand.click("[data-testid=action-reply] summary")
    hand.click("[data-testid=submit-reply]")
    expect(hand.locator("[data-testid=field-error-text]")).to_contain_text("请填写「内容」")
    expect(hand.locator("#reply-text")).to_be_focused()  # the field to fill, not the top of the page
    hand.fill("#reply-text", "已责令餐馆加装油烟净化器，经复查油烟已达标。")
    hand.click("[data-testid=submit-reply]")
    expect(hand.locator("[data-testid=order-state]")).to_contain_text("已答复")

    # The audit trail, as the operator sees it, names every step and person.
    op.goto(f"{base}{order_path}")
    rows = op.locator("[data-testid=audit] tbody tr")
    expect(rows).to_have_count(6)
    actions = [rows.nth(i).get_attribute("data-action") for i in range(6)]
    assert actions == ["create", "comment", "dispatch", "accept", "comment", "reply"]
    expect(rows.nth(1)).to_contain_text("附件：市民照片.jpg")
    expect(rows.nth(4)).to_contain_text("附件：整改后.png")
    expect(rows.nth(2)).to_contain_text("黄派单")
    expect(rows.nth(2)).to_contain_text(server["street"])
    expect(rows.nth(5)).to_contain_text("李承办")
    expect(rows.nth(5)).to_contain_text("已责令餐馆加装油烟净化器")
    with session_scope() as s:
        stored = s.query(Order).filter(Order.number == number).one()
        assert stored.reply_text == "已责令餐馆加装油烟净化器，经复查油烟已达标。"
    assert not refused, refused


def test_the_intake_form_is_sent_once_however_often_it_is_submitted(
    sqlite_server: dict[str, Any], browser: Any
) -> None:
    """A double click on 受理 (or a second tap while the answer is on its way) would register the appeal twice: the
    form's second submission is cancelled; coming back to the page from the history lets it be sent again."""
    refused: list[str] = []
    op = _login(browser, sqlite_server["base"], "op", refused)
    # Listened to on the window (after the page's own handler): what the page decided, then no navigation here.
    outcomes = op.evaluate(
        """() => {
            const seen = [];
            window.addEventListener("submit", (e) => { seen.push(e.defaultPrevented); e.preventDefault(); });
            const form = document.getElementById("intake-form");
            form.requestSubmit();
            form.requestSubmit();
            form.requestSubmit();
            window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }));
            form.requestSubmit();
            return seen;
        }"""
    )
    assert outcomes == [False, True, True, False]
    assert refused == []
    op.context.close()


def test_the_suggestions_place_the_appeal_by_the_address_typed_after_its_text(
    sqlite_server: dict[str, Any], browser: Any
) -> None:
    """The form's order is the text, then the address: the address typed last places the appeal (属地识别) and checks
    it for duplicates there too — the suggestions were refreshed by the text only, and said 未识别 until it changed."""
    errors: list[str] = []
    op = _login(browser, sqlite_server["base"], "op", errors)
    op.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    op.select_option("#f-appeal_type", "complaint")
    op.fill("#f-content", "路边的沙井一直往外冒污水，三天没人处理")
    place = op.locator("[data-testid=intake-place]")
    # the first suggestion loads the classifier and builds the similar-orders index: allowed for
    sync_api.expect(place).to_contain_text("未识别", timeout=60_000)
    op.locator("#f-address").press_sequentially("景泰街道云景路1号")
    sync_api.expect(place).to_contain_text(sqlite_server["street"])
    assert errors == []
    op.context.close()


def test_a_citizen_on_a_phone_shares_their_position_with_the_appeal(
    sqlite_server: dict[str, Any], browser: Any
) -> None:
    """使用当前位置: the device's position (here the browser's granted geolocation) fills the form's lat/lng."""
    context = browser.new_context(
        locale="zh-CN", geolocation={"latitude": 23.1812, "longitude": 113.2815}, permissions=["geolocation"]
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{sqlite_server['base']}/login")
    page.fill("#username", "cit")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{sqlite_server['base']}/intake")
    with page.expect_response(lambda r: r.url.endswith("/intake/assist"), timeout=60_000):
        page.fill("#f-content", "路灯不亮")
    # The suggestions are asked for afresh with the position (the text's own request answered before).
    with page.expect_request(lambda r: r.url.endswith("/intake/assist") and "lat=23.181200" in (r.post_data or "")):
        page.click("[data-testid=locate-me]")
    # A citizen is told their position is noted, not two bare numbers (the fields below keep them).
    sync_api.expect(page.locator("[data-testid=locate-status]")).to_have_text("已定位，已记下您所在的位置")
    assert (page.input_value("#f-lat"), page.input_value("#f-lng")) == ("23.181200", "113.281500")
    context.close()


def test_the_dispatcher_ticks_all_and_dispatches_the_chosen_orders_at_once(
    sqlite_server: dict[str, Any], browser: Any
) -> None:
    """批量派单 in the browser: 全选本页 (the page's script) ticks every order that has a suggestion; the dispatcher
    keeps two and sends them to their first suggestions in one submission."""
    expect = sync_api.expect
    expect.set_options(timeout=30_000)
    numbers = []
    with session_scope() as s:
        for text in ("小区门口餐馆油烟直排，熏得没法开窗", "楼下烧烤店油烟很大，晚上还很吵"):
            data = {"channel": "hotline", "content": text, "street_code": "W-JT"}
            numbers.append(submit(s, data=data).order.number)
    refused: list[str] = []
    disp = _login(browser, sqlite_server["base"], "disp", refused)
    picks = disp.locator("input[name=pick]")
    expect(disp.locator(f"[data-testid=pick-{numbers[0]}]")).to_have_count(1)
    disp.check("[data-testid=pick-all]")
    assert picks.count() >= 2 and disp.locator("input[name=pick]:checked").count() == picks.count()
    disp.uncheck("[data-testid=pick-all]")
    assert disp.locator("input[name=pick]:checked").count() == 0
    for number in numbers:
        disp.check(f"[data-testid=pick-{number}]")
    disp.click("[data-testid=bulk-submit]")
    expect(disp.locator("[data-testid=flash]")).to_contain_text("已派出 2 件工单")
    for number in numbers:
        expect(disp.locator(f"[data-testid=queue-item][data-number='{number}']")).to_have_count(0)
    with session_scope() as s:
        states = {o.state.value for o in s.query(Order).filter(Order.number.in_(numbers))}
    assert states == {"dispatched"} and not refused, refused


def test_a_long_list_of_units_is_filtered_by_the_name_typed(server: dict[str, Any], browser: Any) -> None:
    """A district's ~400 units in one list: the box before it keeps the units whose name holds what is typed (in
    Chinese: a select's own type-ahead takes no input method) and chooses the one left; Enter does not send."""
    from cityhub.org.models import UnitTier

    with session_scope() as s:
        street = s.query(Unit).filter(Unit.code == "W-JT").one()
        s.add_all(
            Unit(code=f"W-JT-{i:02d}", name=f"第{i}网格社区", tier=UnitTier.COMMUNITY, parent_id=street.id)
            for i in range(40)
        )
        s.add(Unit(code="W-JT-FE", name="飞鹅社区", tier=UnitTier.COMMUNITY, parent_id=street.id))
        feie = s.query(Unit).filter(Unit.code == "W-JT-FE").one().id
        submit(s, data={"channel": "hotline", "content": "小区门口餐馆油烟直排", "street_code": "W-JT"})
    refused: list[str] = []
    disp = _login(browser, server["base"], "disp", refused)
    disp.set_viewport_size({"width": 1440, "height": 900})
    disp.goto(f"{server['base']}/queue")
    box = disp.locator("#bulk-unit").locator("xpath=preceding-sibling::input[@data-testid='select-filter'][1]")
    box.fill("飞鹅")
    assert disp.input_value("#bulk-unit") == str(feie)
    shown = disp.evaluate(
        "Array.from(document.querySelectorAll('#bulk-unit option')).filter(o => o.value && !o.hidden).length"
    )
    assert shown == 1
    box.press("Enter")  # to the list, not a submission
    assert disp.evaluate("document.activeElement.id") == "bulk-unit" and disp.url.endswith("/queue")
    box.fill("")
    assert disp.evaluate("Array.from(document.querySelectorAll('#bulk-unit option')).every(o => !o.hidden)")
    assert not refused, refused


def test_the_pages_fit_a_phone_screen_and_the_trail_reads_as_entries(
    sqlite_server: dict[str, Any], browser: Any
) -> None:
    """工作台 on a small phone (360 px wide): no page scrolls sideways — a wide table scrolls inside its own box, an
    order's number in its page's heading keeps whole on a line of its own — the
    order's actions come before its trail, and the trail is a list of short entries rather than five narrow
    columns."""
    with session_scope() as s:
        order_id = s.query(Order.id).filter(Order.number == sqlite_server["past_number"]).scalar()
    pages = {
        # The leader's 专报 opened from the dashboard on a phone: its summary cards wrap, its tables scroll.
        "lead": ["/dashboard", f"/api/v1/kpi/report?period={datetime.now(UTC):%Y-%m}&format=html"],
        "op": ["/intake", "/orders", f"/orders/{order_id}"],
        "disp": ["/queue", f"/orders/{order_id}"],
    }
    for username, paths in pages.items():
        context = browser.new_context(locale="zh-CN", viewport={"width": 360, "height": 780}, is_mobile=True)
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto(f"{sqlite_server['base']}/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        for path in paths:
            page.goto(f"{sqlite_server['base']}{path}")
            width, viewport = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            # Laid out for the phone's width (a page without a viewport tag is drawn 980 px wide and shrunk to fit).
            assert viewport == 360, f"{username} {path}: laid out {viewport} px wide on a 360 px screen"
            assert width <= viewport, f"{username} {path}: {width} px wide on a {viewport} px screen"
            if path.startswith("/orders/"):
                # What can be done comes before the trail, which grows with every step of the order.
                actions, trail = (
                    page.locator(f"[data-testid={name}]").evaluate("e => e.getBoundingClientRect().top + scrollY")
                    for name in ("actions", "audit")
                )
                assert actions < trail, f"{username} {path}: the actions under the audit trail on a phone"
        if paths[-1].startswith("/orders/"):
            trail = page.locator("[data-testid=audit] table")
            assert trail.locator("thead").evaluate("e => getComputedStyle(e).display") == "none"
            assert trail.locator("tbody tr").first.evaluate("e => getComputedStyle(e).display") == "block"
        context.close()


def test_the_order_trail_takes_the_full_width_and_still_fits_a_phone(
    sqlite_server: dict[str, Any], browser: Any
) -> None:
    """At 1440 px the audit trail sat in the facts' column: its 说明 wrapped a few characters a line while the column
    of actions beside it stood empty. It now spans both columns, its explanations read as lines; at 390 px the page
    still does not scroll sideways and the actions still come before the trail."""
    from cityhub.workorders import service as orders

    note = "市民再次来电补充：油烟在晚上七点到十点最严重，楼上三户居民均受影响，希望执法人员在晚间到场核查。"
    with session_scope() as s:
        # An order like the module's past one, its own: its steps would change the order the other tests read.
        order_id = submit(s, data=PAST).order.id
        street = s.query(Unit.id).filter(Unit.name == sqlite_server["street"]).scalar()
        steps = [
            ("comment", {"text": note}),
            ("dispatch", {"unit_id": street}),
            ("accept", {}),
            ("reply", {"text": "已处理。"}),
            ("reject_reply", {"reason": "请说明检查了哪几家餐馆、何时复查"}),  # 答复已退回 where the reply stood
        ]
        for action, params in steps:
            orders.act(s, order_id=order_id, action=action, params=params)
    page = _login(browser, sqlite_server["base"], "disp", [])
    for width, lang in ((1440, "zh-CN"), (390, "zh-CN"), (390, "en")):
        page.goto(f"{sqlite_server['base']}/lang/{lang}")
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{sqlite_server['base']}/orders/{order_id}")
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("[data-testid=reply-sent-back]").count() == 1
        facts, actions, trail = (
            page.locator(f"[data-testid={name}]").bounding_box() for name in ("facts", "actions", "audit")
        )
        scroll, viewport = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= viewport, f"{scroll} px wide on a {viewport} px screen ({lang})"
        assert actions["y"] < trail["y"], f"the actions under the audit trail at {width} px"
        if width == 1440:
            # Under both columns: from the facts' left edge to the actions' right one.
            assert trail["x"] <= facts["x"] + 1 and trail["x"] + trail["width"] >= actions["x"] + actions["width"] - 1
            said = page.locator("[data-testid=audit] tr[data-action=comment] td").last.bounding_box()
            assert said["width"] >= 400, f"the trail's 说明 is {said['width']} px wide at 1440 px"


def test_the_menu_the_queue_and_the_intake_suggestions_keep_their_layout(
    sqlite_server: dict[str, Any], browser: Any
) -> None:
    """At 1440 px an administrator's menu is one line, every entry still there, and a phone's 390 px still shows it
    all without scrolling sideways; in each queued order 推荐单位（前三）is a label, no larger than the order's title
    line; the classifier's 选用 buttons stand in one column, each on its suggestion's line, however long its label."""
    expect = sync_api.expect
    expect.set_options(timeout=30_000)
    refused: list[str] = []
    adm = _login(browser, sqlite_server["base"], "adm", refused)
    for width in (1440, 390):
        adm.set_viewport_size({"width": width, "height": 900})
        adm.goto(f"{sqlite_server['base']}/orders")
        links = adm.locator(".topbar nav > ul:first-child a")
        hrefs = links.evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert hrefs == [
            "/",
            "/intake",
            "/queue",
            "/rules",
            "/orders",
            "/reviews",
            "/monitoring",
            "/kb",
            "/dashboard",
            "/brain",
            "/map",
            "/admin",
        ]
        tops = set(links.evaluate_all("links => links.map(a => Math.round(a.getBoundingClientRect().top))"))
        if width == 1440:
            assert len(tops) == 1, f"the menu takes {len(tops)} lines at 1440 px"
        scroll, viewport = adm.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= viewport, f"{scroll} px wide on a {viewport} px screen"

    with session_scope() as s:
        data = {"channel": "hotline", "content": "小区门口餐馆油烟直排，熏得没法开窗", "street_code": "W-JT"}
        number = submit(s, data=data).order.number
    disp = _login(browser, sqlite_server["base"], "disp", refused)
    disp.set_viewport_size({"width": 1440, "height": 900})
    item = disp.locator(f"[data-testid=queue-item][data-number='{number}']")
    heading, title = (
        float(item.locator(selector).evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
        for selector in ("h3", ".item-title")
    )
    assert heading <= title, f"推荐单位 drawn at {heading} px over the order's title at {title} px"

    op = _login(browser, sqlite_server["base"], "op", refused)
    op.set_viewport_size({"width": 1440, "height": 900})
    op.fill("#f-content", "小区楼下餐馆油烟排放严重，噪音扰民，晚上无法休息")
    suggestions = op.locator("[data-testid=classify] li")
    expect(suggestions.first).to_contain_text("环境保护")
    # A long category path on the first line, as a district's deeper taxonomy has them.
    suggestions.first.evaluate(
        "li => li.querySelector('small').before('/城市建设和市政管理/城市公共设施/路灯/照明设施维护管理 ')"
    )
    boxes = suggestions.evaluate_all(
        """items => items.map(li => {
            const b = li.querySelector('button').getBoundingClientRect(), l = li.getBoundingClientRect();
            return [Math.round(b.left), b.top + b.height / 2 - (l.top + l.height / 2), b.bottom <= l.bottom + 1];
        })"""
    )
    assert len({left for left, _, _ in boxes}) == 1, boxes  # one column of buttons
    assert all(abs(off) <= 2 and inside for _, off, inside in boxes), boxes  # each beside its label, not under it
    assert not refused, refused
