"""What the pages outside the workbenches' template and the top bar look like in a real browser: the analysis report
(专报, opened from the dashboard) and the API documentation (/docs) in the web UI's theme — the user's choice, else
the system's — the report light again when printed; and an administrator's menu on one line at 1440 px in English,
with nothing wider than a 390-px phone; and at 360 px a bulk dispatch's result, an import's chip and the
configuration log as cards.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. The pages do not depend on the database backend: SQLite only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.knowledge import service as kb
from cityhub.knowledge.schemas import EntryCreate, EntryUpdate
from cityhub.web import vendor
from cityhub.workorders import service as orders
from process_helpers import served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only("the pages do not depend on the database backend: run on SQLite only")

REPORT = "/api/v1/kpi/report?period=2026-Q4&format=html"


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        submit(s, data={"channel": "hotline", "content": "路灯不亮，晚上出行不便", "street_code": "W-JX"})
        # A reply the reply check finds weak: a row of 答复审核.
        weak = submit(
            s, data={"channel": "hotline", "content": "云景路的路灯不亮三天了，请尽快维修", "street_code": "W-JT"}
        )
        for action, params in (
            ("dispatch", {"unit_id": world.street_a}),
            ("accept", {}),
            ("reply", {"text": "收悉，谢谢。"}),
        ):
            orders.act(s, order_id=weak.order.id, action=action, params=params)
        kb.check_reply(s, order=weak.order)
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def _signed_in(browser: Any, base: str, username: str, lang: str = "zh-CN", **context: Any) -> Any:
    page = browser.new_context(locale=lang, **context).new_page()
    page.set_default_timeout(20_000)
    return sign_in(page, f"{base}/lang/{lang}?next=/login", username)


def _lightness(page: Any, element: str, prop: str) -> float:
    """The largest of red, green and blue of an element's computed colour ``prop`` (a transparent background: the
    canvas's white)."""
    colour = page.evaluate(f"getComputedStyle(document.querySelector('{element}'))['{prop}']")
    parts = [float(x) for x in re.findall(r"[\d.]+", colour)]
    return 255.0 if len(parts) == 4 and parts[3] == 0 else max(parts[:3])


def _report_is_dark(page: Any) -> bool:
    dark = _lightness(page, "body", "backgroundColor") < 60
    assert (_lightness(page, "h2", "color") > 128) == dark  # headings readable on either background
    return dark


def _docs_is_dark(page: Any) -> bool:
    page.wait_for_selector(".swagger-ui .info .title")
    dark = _lightness(page, ".swagger-ui .info .title", "color") > 128  # light text: Swagger UI's dark stylesheet
    # …on its dark background (none in the light one: the page's white)
    assert (_lightness(page, "html", "backgroundColor") < 60) == dark
    return dark


def test_the_report_and_the_api_docs_follow_the_theme_and_the_report_prints_light(server: str, browser: Any) -> None:
    docs_installed = not vendor.missing()
    for system, choice, dark in (
        ("dark", None, True),  # 跟随系统 under a dark system
        ("light", None, False),
        ("dark", "light", False),  # 浅色 chosen under a dark system
        ("light", "dark", True),
    ):
        page = _signed_in(browser, server, "lead", color_scheme=system)
        if choice:
            page.goto(f"{server}/theme/{choice}?next=/dashboard")
        assert page.goto(server + REPORT).status == 200
        assert _report_is_dark(page) == dark, (system, choice)
        if dark:  # on paper (and as the PDF) the report is light whatever the screen's theme
            page.emulate_media(media="print")
            assert not _report_is_dark(page)
            page.emulate_media(media="screen")
        if docs_installed:
            page.goto(server + "/docs")
            assert _docs_is_dark(page) == dark, (system, choice)
        page.context.close()
    if docs_installed:
        # Following the system, /docs changes with it while open, as the web UI's pages do.
        page = _signed_in(browser, server, "lead", color_scheme="light")
        page.goto(server + "/docs")
        assert not _docs_is_dark(page)
        page.emulate_media(color_scheme="dark")
        assert _docs_is_dark(page)
        page.context.close()


def _menu_lines(page: Any) -> int:
    """How many lines the top bar's first list (the role's pages) takes."""
    tops = page.evaluate("[...document.querySelectorAll('header nav > ul:first-child > li')].map(li => li.offsetTop)")
    return len(set(tops))


def test_an_administrators_english_menu_fits_one_line_at_1440_and_a_phone_keeps_its_width(
    server: str, browser: Any
) -> None:
    for lang in ("en", "zh-CN"):
        wide = _signed_in(browser, server, "adm", lang, viewport={"width": 1440, "height": 900})
        assert wide.locator("header nav > ul:first-child > li").count() == 12  # cityhub and eleven pages
        assert _menu_lines(wide) == 1, lang
        # The account's links stay on the menu's line.
        menu = wide.locator("header nav > ul:first-child").bounding_box()
        account = wide.locator("header nav > ul:last-child").bounding_box()
        assert menu and account and abs(menu["y"] - account["y"]) < 2
        # The dashboard's three lists share the page's width (they kept to its left half beside two empty tracks).
        wide.goto(server + "/dashboard")
        main = wide.locator("main").bounding_box()
        lists = [
            wide.locator(f'[data-testid="{name}"]').bounding_box() for name in ("by-state", "by-category", "by-street")
        ]
        assert main and all(lists) and lists[2]["x"] + lists[2]["width"] > main["x"] + 0.9 * main["width"], lists
        # 系统管理's cards name their pages in whole words ("Configuration log" broke as "Configurat|ion log").
        wide.goto(server + "/admin")
        cut = wide.evaluate(
            """[...document.querySelectorAll('[data-testid="admin-pages"] h2')].filter(h => {
                h.style.overflowWrap = 'normal'; h.style.wordBreak = 'normal';
                return h.scrollWidth > h.clientWidth; }).map(h => h.textContent)"""
        )
        assert cut == [], (lang, cut)
        # The order list's criteria leave room for its orders on the first screen, 筛选 and 清除条件 side by side at
        # their own width (筛选 spanned the page, 清除条件 on a line below it, the first order below the fold).
        wide.goto(server + "/orders?overdue=1")
        submit_button = wide.locator('form.filters button[type="submit"]').bounding_box()
        reset = wide.locator('[data-testid="reset-filters"]').bounding_box()
        assert submit_button and reset and submit_button["width"] < 300 and abs(submit_button["y"] - reset["y"]) < 2
        wide.goto(server + "/orders")
        first_row = wide.locator('[data-testid="order-table"] tbody tr').first.bounding_box()
        assert first_row and first_row["y"] + first_row["height"] < 900, first_row
        # 知识库's search on one line: the box, 含已停用, 只看公开 and 筛选 centred on one another (the box took the
        # whole width, the choices and the button below it at different heights).
        wide.goto(server + "/kb")
        row = [
            wide.locator(f'[data-testid="kb-search"] {part}').bounding_box()
            for part in ("input[type=search]", "label >> nth=0", "label >> nth=1", "button")
        ]
        middles = [box["y"] + box["height"] / 2 for box in row if box]
        assert len(middles) == 4 and max(middles) - min(middles) < 3, row
        wide.context.close()
        phone = _signed_in(browser, server, "adm", lang, viewport={"width": 390, "height": 844}, is_mobile=True)
        for path in ("/orders", "/admin", "/dashboard"):
            phone.goto(server + path)
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390, (lang, path)
        # 答复审核 on a phone: each reply a card like the order list's, its title across the card (a six-column
        # table squeezed the title into a column two characters wide).
        phone.goto(server + "/reviews")
        title = phone.locator('[data-testid="review-row"] td').nth(1).bounding_box()
        assert title and title["width"] > 300, title
        phone.context.close()


def _one_line(page: Any, selector: str) -> list[str]:
    """The texts of the elements ``selector`` finds that the browser broke over more than one line."""
    return list(
        page.evaluate(
            f"[...document.querySelectorAll('{selector}')].filter(e => e.getClientRects().length > 1)"
            ".map(e => e.textContent)"
        )
    )


def test_a_phone_reads_a_bulk_dispatch_an_imports_chip_and_the_configuration_log_without_sideways_scrolling(
    server: str, browser: Any, tmp_path: Path
) -> None:
    """At 360 px: a bulk dispatch's result names each order whole (BY20261205-|000003 broke at its hyphen); the chip
    of one import's orders keeps its ✕ beside its words (it took a line of its own); 系统日志 is a card per entry
    with the changes at the card's width (six columns scrolled sideways, the changes a column of five characters,
    the page tens of thousands of pixels tall). At 1440 px the log keeps who and the item's kind whole (系统管|理员)."""
    with session_scope() as s:
        appeals = ("景泰街道夜间施工噪音扰民", "小区垃圾站臭味很大", "河道有污水排放", "工地扬尘严重", "餐馆油烟扰民")
        for text in appeals:
            submit(s, data={"channel": "hotline", "content": text, "street_code": "W-JT"})
        entry = kb.create_entry(
            s,
            data=EntryCreate(question="社保卡丢了怎么补办？", answer="到社保网点补办。", keywords=["社保卡"]),
            actor=orders.Actor(name="周管理"),
        )
        kb.update_entry(s, entry_id=entry.id, data=EntryUpdate(answer="携带身份证到社保网点补办。"))
        table = tmp_path / "kb.csv"
        # A long answer: the changes take the row's room, as a real answer's do.
        answer = "申请人须在本区连续缴纳社会保险满一年，家庭人均可支配收入和人均住房面积均低于当年公布的标准，" * 3
        table.write_text(f"question,answer\n公租房申请条件,{answer}\n", encoding="utf-8")
        kb.import_entries(s, path=table, actor=orders.Actor(name="区数据管理员"))
    phone = {"viewport": {"width": 360, "height": 740}, "is_mobile": True}

    page = _signed_in(browser, server, "disp", **phone)
    page.goto(server + "/queue")
    page.locator('[data-testid="pick-all"]').check()
    page.select_option('[data-testid="bulk-unit"]', label="京溪街道")
    page.click('[data-testid="bulk-submit"]')
    page.wait_for_load_state()
    sent = page.locator('[data-testid="bulk-sent"]')
    if sent.get_attribute("open") is None:
        sent.locator("summary").click()
    assert page.locator('[data-testid="bulk-sent"] a').count() == 6
    assert _one_line(page, '[data-testid="bulk-result"] a') == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.context.close()

    page = _signed_in(browser, server, "op", **phone)
    page.goto(server + "/orders/import")
    upload = tmp_path / "orders.csv"
    rows = "留言主题,留言详情\n路灯不亮,京溪路路灯不亮一周\n井盖缺失,景泰路井盖丢失很危险\n"
    upload.write_text(rows, encoding="utf-8")
    page.set_input_files("#i-file", str(upload))
    page.click('[data-testid="import-submit"]')
    page.click('[data-testid="import-see-orders"]')
    page.wait_for_load_state()
    words = page.locator('[data-testid="batch-chip"] > span').bounding_box()
    remove = page.locator('[data-testid="batch-remove"]').bounding_box()
    assert words and remove and remove["y"] < words["y"] + words["height"] and remove["x"] > words["x"], (words, remove)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.context.close()

    for lang in ("zh-CN", "en"):
        page = _signed_in(browser, server, "adm", lang, **phone)
        page.goto(server + "/admin/log?area=kb_entry")
        wrap = page.evaluate("(w => [w.scrollWidth, w.clientWidth])(document.querySelector('.table-wrap'))")
        assert wrap[0] <= wrap[1], (lang, wrap)
        changes = page.locator('[data-testid="log-entry"] td.log-changes').first.bounding_box()
        assert changes and changes["width"] > 300, (lang, changes)
        reason = page.locator('[data-testid="log-entry"] td:nth-child(6)').first
        label = reason.evaluate("td => getComputedStyle(td, '::before').content")
        said = (reason.inner_text(), label)
        wanted = ("由 kb.csv 导入", '"原因："') if lang == "zh-CN" else ("imported from kb.csv", '"Reason: "')
        assert said == wanted, said
        page.context.close()
        wide = _signed_in(browser, server, "adm", lang, viewport={"width": 1440, "height": 900})
        wide.goto(server + "/admin/log?area=kb_entry")
        assert _one_line(wide, '[data-testid="log-entry"] td:nth-child(2), [data-testid="log-entry"] .log-area') == []
        wide.context.close()


_UNDER_THE_BAR = """() => {
    const focused = document.activeElement, bar = document.querySelector('[data-testid="bulk-dispatch"]');
    if (!focused || focused === document.body || bar.contains(focused)) return null;
    const f = focused.getBoundingClientRect(), b = bar.getBoundingClientRect();
    return b.top <= 1 && f.top < b.bottom && f.bottom > b.top ? (focused.textContent || focused.value).trim() : '';
}"""


def test_the_queues_bulk_bar_hides_nothing_the_keyboard_focuses(server: str, browser: Any) -> None:
    """批量派单's bar stays at the top of a wide screen while the queue scrolls: going back through the queue with
    Shift+Tab, every step stays in sight below it (one in twenty hid under it, its explanation's two lines in it). On
    a 360-px phone the bar stays where it is (stuck, it took 40 % of the screen, half the steps under it)."""
    with session_scope() as s:
        for n in range(8):
            submit(
                s,
                data={"channel": "hotline", "content": f"第{n}号楼下餐馆油烟扰民，夜间噪音很大", "street_code": "W-JT"},
            )
    for lang in ("zh-CN", "en"):
        for viewport, sticks in (({"width": 1440, "height": 900}, True), ({"width": 360, "height": 740}, False)):
            page = _signed_in(browser, server, "disp", lang, viewport=viewport, is_mobile=not sticks)
            page.goto(server + "/queue")
            assert page.locator('[data-testid="queue-item"]').count() >= 8
            bar = page.locator('[data-testid="bulk-dispatch"]')
            assert (bar.evaluate("b => getComputedStyle(b).position") == "sticky") == sticks, (lang, viewport)
            for _ in range(80):  # to the end of the page…
                page.keyboard.press("Tab")
            hidden = []
            for _ in range(60):  # …and back up through the orders
                page.keyboard.press("Shift+Tab")
                if under := page.evaluate(_UNDER_THE_BAR):
                    hidden.append(under)
            assert hidden == [], (lang, viewport, hidden)
            page.context.close()
