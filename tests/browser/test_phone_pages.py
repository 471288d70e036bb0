"""The pages the day on a phone (test_phone_day.py) does not walk, by thumb at 390 × 844 and 360 × 740: the
dispatcher's queue ticks an order for a bulk dispatch in a 44-px square around its box (an 18-px box beside the
order's link it was) and each choice of the bulk dispatch is a 44-px square beside its 派至 button, the suggestions'
reasons folded (a queued order was ~600 px tall: one a screen, two now); the routing rules, units, accounts,
knowledge entries, sensors, alarms and alarm rules are a card per row — no table scrolled sideways with its names a
character or two a line (组织机构 was 76,000 px tall, 广|州|市|白|云|区…) — the links of a card, of the order list
and the configuration log, of the dashboard's and an assessment's figures, the city brain's tabs, the map's zoom and
the big screen's layers are 44-px targets. A leader between meetings: the dashboard's tile figures, the 专报's
downloads, the one map's indicators, a finding's name and 退出大屏 are 44-px targets, a figure stands on its name's
line, the 专报's assessment table keeps each unit's name whole and in view, the map's filters read whole.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's layout: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cityhub.auth import service as auth
from cityhub.db import session_scope, utcnow
from cityhub.dispatch import service as dispatch
from cityhub.dispatch.schemas import RuleCreate
from cityhub.intake.service import submit
from cityhub.knowledge import service as kb
from cityhub.knowledge.schemas import EntryCreate
from cityhub.monitoring import service as monitoring
from cityhub.monitoring.schemas import RuleCreate as AlarmRuleCreate
from cityhub.monitoring.schemas import SensorCreate
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.org.schemas import UserCreate
from cityhub.workorders import categories
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Category, Order, Urgency
from process_helpers import BROWSER_SIDE, PHONES, served_app
from test_web_brain import PERIOD
from test_web_brain import world as brain_world  # noqa: F401  (a fixture: June's recurring problems)
from web_helpers import PASSWORD, build_world, module_database, pointed_at, sign_in, world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

DEPARTMENT = "广州市白云区人力资源和社会保障局"
COMMUNITY = "广州市白云区景泰街道云苑社区居民委员会"
APPEALS = ("景泰街道夜间施工噪音扰民", "小区垃圾站臭味很大", "河道有污水排放", "工地扬尘严重")


def _queued(s: Any, texts: tuple[str, ...], **data: str) -> None:
    """Environmental appeals the routing rule suggests a street for: queued orders with a choice each (at 京溪街道 and
    景泰街道 by turns, unless ``data`` says)."""
    environmental = {
        "channel": "hotline",
        "category_id": s.scalars(select(Category.id).where(Category.name == "环境保护")).one(),
    }
    for n, text in enumerate(texts):
        submit(s, data={**environmental, "content": text, "street_code": "W-JT" if n % 2 else "W-JX", **data})


@pytest.fixture(scope="module")
def served(migrated_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server for the module, over a database of its own made once: its tests read it, and the one that
    dispatches orders queues its own first."""
    directory = tmp_path_factory.mktemp("phone-pages")
    env = {
        "CITYHUB_DATABASE_URL": module_database(migrated_sqlite_template, directory),
        **world_env(directory / "no-model"),
        "CITYHUB_FILES_DIR": str(directory),
    }
    with pointed_at(env), session_scope() as s:
        world = build_world(s)
        _queued(s, APPEALS)
        # An order the street holds: the figures of its assessment.
        held = submit(
            s, data={"channel": "hotline", "content": "景泰路人行道井盖破损，行人容易绊倒", "street_code": "W-JT"}
        )
        orders.act(s, order_id=held.order.id, action="dispatch", params={"unit_id": world.street_a})
        # The long names a real district has: a department, its handler, a rule sending to it, a knowledge entry.
        department = Unit(code="W-RS", name=DEPARTMENT, tier=UnitTier.DEPARTMENT, parent_id=world.district)
        s.add(department)
        # …and a community, folded under its street on 组织机构 (展开 1 个村社, a thumb's target) until opened.
        s.add(Unit(code="W-JT-C1", name=COMMUNITY, tier=UnitTier.COMMUNITY, parent_id=world.street_a))
        # …and a third-level category, folded under its parent on 分类管理 until opened or found.
        noise = categories.create_category(s, name="噪声污染", parent_id=world.cats["环境保护"])
        categories.create_category(s, name="建筑施工噪声", parent_id=noise.id, name_en="Construction noise")
        s.flush()
        auth.create_account(
            s,
            data=UserCreate(
                username="h-rs", full_name="区人力资源和社会保障局承办人", role=Role.HANDLER, unit_id=department.id
            ),
            password=PASSWORD,
        )
        dispatch.create_rule(
            s,
            data=RuleCreate(
                name="职责 区人社局",
                keywords=["社保", "医保", "养老保险", "失业保险", "工伤认定", "劳动合同", "拖欠工资", "招聘"],
                target_unit_id=department.id,
            ),
        )
        kb.create_entry(
            s,
            data=EntryCreate(
                question="城乡居民医保每年什么时候缴费，每人交多少钱？",
                answer="城乡居民医保按年度缴费，缴费期一般为每年9月至12月，可通过微信、支付宝或到社区服务站缴纳。" * 2,
                category_id=world.cats["住房保障"],
                keywords=["医保", "缴费", "城乡居民"],
            ),
        )
        # A water-logging point over its limit: an alarm to acknowledge or clear.
        monitoring.create_sensor(
            s,
            data=SensorCreate(
                code="W-WL-001",
                name="鹤龙路涵洞积水监测点",
                kind="waterlogging",
                metrics={"depth": "cm"},
                address="广州市白云区鹤龙街道鹤龙路涵洞",
                unit_id=world.street_a,
            ),
        )
        monitoring.create_rule(
            s,
            data=AlarmRuleCreate(
                name="积水超过 15 厘米", sensor_kind="waterlogging", metric="depth", comparison=">", threshold=15
            ),
        )
        start = utcnow() - timedelta(minutes=50)
        monitoring.ingest(
            s,
            items=[
                {"sensor_code": "W-WL-001", "measured_at": (start + timedelta(minutes=10 * i)).isoformat(), "value": v}
                for i, v in enumerate([8, 18, 21, 24, 26])
            ],
        )
    with served_app(env, directory / "serve.log") as base:
        yield {"base": base, "env": env}


@pytest.fixture
def server(served: dict[str, Any]) -> Iterator[str]:
    """The module's server; this process pointed at its database."""
    with pointed_at(served["env"]):
        yield served["base"]


def _phone(browser: Any, base: str, viewport: dict[str, int], username: str) -> Any:
    page = browser.new_context(locale="zh-CN", viewport=viewport, is_mobile=True, has_touch=True).new_page()
    page.set_default_timeout(20_000)
    return sign_in(page, f"{base}/login", username)


def _sideways(page: Any) -> list[int]:
    """How far the page scrolls sideways, then each table's wrapper (all 0: they fit the screen)."""
    return page.evaluate(
        """[document.documentElement.scrollWidth - innerWidth,
            ...[...document.querySelectorAll('main .table-wrap')].map(w => w.scrollWidth - w.clientWidth)]"""
    )


# What the thumb taps, under 44 px either way: a box to tick by its label (the whole line, or the square around it).
_SMALL_TARGETS = """sel => [...document.querySelectorAll(sel)].filter(e => e.getBoundingClientRect().width).map(e => {
    const r = (e.closest('label') || e).getBoundingClientRect();
    return [(e.getAttribute('data-testid') || e.textContent).trim().slice(0, 16), Math.round(r.width),
            Math.round(r.height)]; }).filter(([, w, h]) => w < 43.5 || h < 43.5)"""

# A cell's text a few characters a line (广|州|市|白|云|区 stood a character a line in a squeezed column).
_SQUEEZED = """sel => [...document.querySelectorAll(sel)].flatMap(e => [...e.childNodes]).filter(n =>
    n.nodeType === 3 && n.textContent.trim().length >= 4).map(n => {
    const range = document.createRange(); range.selectNodeContents(n);
    return [n.textContent.trim(), new Set([...range.getClientRects()].map(r => Math.round(r.top))).size]; })
    .filter(([text, lines]) => lines > 1 && text.length / lines < 5)"""


def _urgent_dispatched() -> int:
    """How many urgent orders are dispatched (the ones the bulk dispatch's test queues are)."""
    where = (Order.state == State.DISPATCHED, Order.urgency == Urgency.URGENT)
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Order).where(*where)) or 0


def test_a_dispatcher_ticks_orders_for_a_bulk_dispatch_by_thumb(server: str, browser: Any) -> None:
    # The two it dispatches, its own: urgent, they come first in the queue, and at 京溪街道 (the module's queue and
    # 景泰街道's assessment stay as the other tests read them).
    with session_scope() as s:
        _queued(
            s,
            ("小区门口餐馆油烟直排，熏得没法开窗", "楼下烧烤店油烟很大，晚上还很吵"),
            urgency="urgent",
            street_code="W-JX",
        )
    for viewport in PHONES:
        page = _phone(browser, server, viewport, "disp")
        page.goto(server + "/queue")
        assert page.locator('[data-testid="queue-item"]').count() >= 2
        ticks = '[data-testid^="pick-"], [data-testid^="choose-"]'  # 全选本页, each order's box, each choice
        assert page.locator('[data-testid^="choose-"]').count() >= 2
        assert page.evaluate(_SMALL_TARGETS, ticks) == [], viewport
        assert _sideways(page)[0] == 0
        page.context.close()
    # Two orders ticked by a thumb that lands beside their boxes, inside the square around each, and sent each to the
    # street suggested for it.
    page = _phone(browser, server, PHONES[1], "disp")
    page.goto(server + "/queue")
    dispatched = _urgent_dispatched()
    boxes = page.locator('[data-testid="queue-item"]:has([data-testid^="choose-"]) header input[type=checkbox]')
    for n in range(2):
        boxes.nth(n).scroll_into_view_if_needed()
        box = boxes.nth(n).bounding_box()
        assert box
        page.touchscreen.tap(box["x"] - 6, box["y"] + box["height"] / 2)
        assert boxes.nth(n).is_checked(), n
    page.click('[data-testid="bulk-submit"]')
    page.wait_for_load_state()
    assert page.locator('[data-testid="bulk-result"]').count() == 1
    assert _urgent_dispatched() == dispatched + 2, page.locator('[data-testid="bulk-result"]').inner_text()
    # The routing rules: a card each, the keywords at the screen's width, the rule's link a thumb's target.
    page.goto(server + "/rules")
    scrolled = "(w => w.scrollWidth - w.clientWidth)(document.querySelector('[data-testid=rules]').parentElement)"
    assert (_sideways(page)[0], page.evaluate(scrolled)) == (0, 0)
    assert page.evaluate(_SQUEEZED, '[data-testid="rules"] td') == []
    assert page.evaluate(_SMALL_TARGETS, '[data-testid="rules"] td a') == []
    page.context.close()


# A queued order's box on the page, its suggestions' reasons as written in their cards, and its fold of them.
_QUEUED = """item => ({
    top: item.getBoundingClientRect().top + scrollY, bottom: item.getBoundingClientRect().bottom + scrollY,
    reasons: [...item.querySelectorAll('.reasons')].map(r => r.textContent.trim()),
    shown: [...item.querySelectorAll('.reasons, .decision-reason')].filter(e => e.checkVisibility()).length,
    fold: item.querySelector('details[data-testid=why]') ? {
        visible: !!item.querySelector('details[data-testid=why]').getClientRects().length,
        open: item.querySelector('details[data-testid=why]').open,
        text: item.querySelector('details[data-testid=why]').innerText} : null})"""


def test_the_queue_shows_two_orders_a_phones_screen_their_reasons_folded_and_a_wide_screen_as_before(
    server: str, browser: Any
) -> None:
    """A queued order was ~600 px tall at 390 × 844, most of it its suggestions' reasons: one order a screen. On a
    phone each suggestion is a line (its 批量派单 box beside its 派至 button) and the reasons and the decision's grounds
    fold under 推荐理由和派单依据 — all of them there, a tap away; a wide screen shows them in place, no fold to
    open."""
    page = _phone(browser, server, PHONES[0], "disp")
    page.goto(server + "/queue")
    first, second = (page.locator('[data-testid="queue-item"]').nth(n).evaluate(_QUEUED) for n in range(2))
    assert second["bottom"] - first["top"] <= PHONES[0]["height"], (first, second)  # two orders a screen
    suggested = page.locator('[data-testid="queue-item"]:has(.card)')
    assert suggested.count() >= 2
    for n in range(2):
        item = suggested.nth(n).evaluate(_QUEUED)
        assert item["reasons"] and item["shown"] == 0, item  # none in the cards…
        assert item["fold"] == {"visible": True, "open": False, "text": "推荐理由和派单依据"}, item  # …but folded
        fold = suggested.nth(n).locator('[data-testid="why"]')
        box = fold.locator("summary").bounding_box()
        assert box and box["height"] >= 43.5
        fold.locator("summary").tap()
        opened = suggested.nth(n).evaluate(_QUEUED)
        assert opened["fold"]["open"] and "依据" in opened["fold"]["text"], opened
        assert all(reason in opened["fold"]["text"] for reason in item["reasons"]), opened  # each one, whole
    assert _sideways(page)[0] == 0
    page.context.close()

    wide = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900}).new_page()
    sign_in(wide, f"{server}/login", "disp").goto(server + "/queue")
    item = wide.locator('[data-testid="queue-item"]:has(.card)').first.evaluate(_QUEUED)
    assert item["fold"] and item["fold"]["open"], item  # opened in place…
    assert item["shown"] == len(item["reasons"]) + 1, item  # …each suggestion's reasons and the grounds
    summary = wide.locator('[data-testid="queue-item"]:has(.card) details.why > summary').first
    assert not summary.is_visible()  # no fold to open
    wide.context.close()


# A text box's placeholder: how wide it is written, and the room the box has for it.
_PLACEHOLDER_ROOM = """i => { const css = getComputedStyle(i), pen = document.createElement('canvas').getContext('2d');
    pen.font = css.font;
    return [Math.ceil(pen.measureText(i.placeholder).width),
            Math.floor(i.clientWidth - parseFloat(css.paddingLeft) - parseFloat(css.paddingRight))]; }"""


def test_an_order_lists_numbers_and_the_logs_targets_are_thumb_targets_and_the_kb_search_says_all_it_asks(
    server: str, browser: Any
) -> None:
    """The order list's numbers (19 px tall they were) and the configuration log's links (#12, a unit, an account)
    are 44-px targets on a phone; 知识库's search box shows its whole placeholder at 360 px in both languages (it was
    cut: 在问题和答复中搜索（多个词用空格分开）)."""
    for viewport in PHONES:
        for username, path, links in (
            ("disp", "/orders", '[data-testid="order-table"] td a'),
            ("adm", "/admin/log", '[data-testid="admin-log"] td a'),
        ):
            page = _phone(browser, server, viewport, username)
            page.goto(server + path)
            assert page.locator(links).count() >= 3, path
            assert page.evaluate(_SMALL_TARGETS, links) == [], (path, viewport)
            assert _sideways(page)[0] == 0, path
            page.context.close()
    for lang in ("zh-CN", "en"):
        page = _phone(browser, server, PHONES[1], "adm")
        page.goto(f"{server}/lang/{lang}?next=/kb")
        written, room = page.locator('[data-testid="kb-search"] input[type=search]').evaluate(_PLACEHOLDER_ROOM)
        assert 0 < written <= room, (lang, written, room)
        page.context.close()


def test_a_citizens_search_of_their_appeals_says_all_it_asks_at_360_px(server: str, browser: Any) -> None:
    """我的诉求's search box shows its whole placeholder at 360 px in both languages (it was cut: 编号、标题、内容
    或地址中的词，多个词用空格分开…), the full text in its title."""
    for lang in ("zh-CN", "en"):
        page = _phone(browser, server, PHONES[1], "cit")
        page.goto(f"{server}/lang/{lang}?next=/orders")
        fold = page.locator('[data-testid="filter-fold"]')
        if fold.get_attribute("open") is None:  # the whole list folds its search on a phone
            fold.locator("> summary").click()
        box = page.locator('[data-testid="filters"] input[type=search]')
        written, room = box.evaluate(_PLACEHOLDER_ROOM)
        assert 0 < written <= room, (lang, written, room)
        assert len(box.get_attribute("title") or "") > len(box.get_attribute("placeholder") or ""), lang
        page.context.close()


def test_the_administrators_lists_and_the_overseers_pages_read_and_tap_on_a_phone(server: str, browser: Any) -> None:
    with session_scope() as s:
        street = s.scalars(select(Unit.id).where(Unit.code == "W-JT")).one()
    page = _phone(browser, server, PHONES[1], "adm")
    for path, rows in (
        ("/admin/units", '[data-testid="unit-row"]'),
        (f"/admin/units?open={street}", '[data-testid="unit-row"]'),
        ("/admin/units?q=社区", '[data-testid="unit-row"]'),  # a match with the units above it
        ("/admin/categories", '[data-testid="category-row"]'),  # 展开 1 个下级分类, a thumb's target
        ("/admin/categories?q=construction", '[data-testid="category-row"]'),  # a match under the nodes above it
        ("/admin/users", '[data-testid="user-row"]'),
        ("/kb", '[data-testid="kb-row"]'),
        ("/monitoring", '[data-testid="alarms"] tbody tr'),
        ("/monitoring/rules", '[data-testid="alarm-rule"]'),
    ):
        page.goto(server + path)
        assert page.locator(rows).count() >= 1, path
        assert _sideways(page) == [0] * len(_sideways(page)), path
        assert page.evaluate(_SQUEEZED, "main td, main td a") == [], path
        # The way on from a row: its links and buttons (a unit's page, an alarm's 确认 and 解除).
        assert page.evaluate(_SMALL_TARGETS, f"{rows} td a, {rows} td button, {rows} input[type=checkbox]") == [], path
    page.context.close()
    for username, path, targets in (
        ("lead", "/dashboard", "main table a"),  # a state's orders, a unit's assessment, a hot topic
        ("sup", f"/assessment/{street}", '[data-testid="assessment"] td a'),  # each figure's orders
        ("sup", "/brain/findings", '[data-testid="brain-subnav"] a'),
        ("lead", "/map", ".leaflet-control-zoom a"),
        ("lead", "/map?screen=1", ".leaflet-control-zoom a, .layer-toggle input, [data-testid=screen-exit]"),
    ):
        page = _phone(browser, server, PHONES[0], username)
        page.goto(server + path)
        page.wait_for_selector(targets.split(",")[0])
        assert page.locator(targets).count() >= 1, path
        assert page.evaluate(_SMALL_TARGETS, targets) == [], path
        assert _sideways(page)[0] == 0, path
        page.context.close()


def test_a_leaders_figures_and_the_reports_downloads_are_thumb_targets(server: str, browser: Any) -> None:
    """Between meetings, by thumb: each figure of the dashboard's tiles opens its orders (超期 0 was a 20 × 34-px link),
    the 专报's HTML · PDF · Excel are 44-px targets (19-px words), and so are the one map's indicators (18 × 30)."""
    for viewport in PHONES:
        page = _phone(browser, server, viewport, "lead")
        page.goto(server + "/dashboard")
        figures = '[data-testid="tiles"] a'
        assert page.locator(figures).count() >= 5
        assert page.locator('[data-testid="report-links"] a').count() == 3
        assert page.evaluate(_SMALL_TARGETS, f'{figures}, [data-testid="report-links"] a') == [], viewport
        # HTML · PDF · Excel on one line (the line broke after a dangling ·)
        tops = page.evaluate(
            """Array.from(document.querySelectorAll('[data-testid="report-links"] a'))
                .map((a) => Math.round(a.getBoundingClientRect().top))"""
        )
        assert len(set(tops)) == 1, (viewport, tops)
        assert _sideways(page)[0] == 0
        page.goto(server + "/map")
        page.wait_for_selector('[data-testid="map-panel"] .ind-value a')
        assert page.evaluate(_SMALL_TARGETS, '[data-testid="map-panel"] .ind-value a') == [], viewport
        assert _sideways(page)[0] == 0
        page.context.close()


def test_the_reports_assessment_table_reads_on_a_phone(server: str, browser: Any) -> None:
    """The 专报 opened from the dashboard on a phone: the assessment's table scrolls within its width, each unit's name
    on one line (景|泰|街|道 stood a character a line beside its eight rates) and still in view once scrolled."""
    page = _phone(browser, server, PHONES[1], "lead")
    page.goto(server + "/dashboard")
    with page.expect_popup() as opened:
        page.locator('[data-testid="report-links"] a').first.tap()
    report = opened.value
    report.wait_for_load_state()
    names = "table.kpis td:first-child"
    assert report.locator(names).count() >= 1
    assert report.evaluate(_SQUEEZED, names) == []
    assert report.evaluate("document.documentElement.scrollWidth - innerWidth") == 0
    table = report.locator("table.kpis")
    before = report.locator(names).first.bounding_box()
    table.evaluate("t => { t.scrollLeft = t.scrollWidth; }")
    after = report.locator(names).first.bounding_box()
    assert before and after and abs(after["x"] - before["x"]) < 1, (before, after)  # the name stays in view
    page.context.close()


def test_the_one_maps_filters_read_whole_on_a_phone(server: str, browser: Any) -> None:
    """一张图's filters on a phone: each name on one line above its choice (分|类 and 受理时|间 stood a character or two
    a line beside the select, squeezed by the rule that makes a fieldset's ticks their whole line)."""
    for viewport in PHONES:
        page = _phone(browser, server, viewport, "lead")
        page.goto(server + "/map")
        lines = page.evaluate(
            """[...document.querySelectorAll('[data-testid="map-filters"] label')].map(label => {
                const text = document.createRange(); text.selectNodeContents(label.firstChild);
                const select = label.querySelector('select').getBoundingClientRect();
                return [label.firstChild.textContent.trim(),
                        new Set([...text.getClientRects()].map(r => Math.round(r.top))).size,
                        Math.round(select.width)]; })"""
        )
        assert [name for name, _, _ in lines] == ["分类", "受理时间"], lines
        room = page.evaluate("document.querySelector('[data-testid=\"map-filters\"]').clientWidth")
        assert all(n == 1 and width > room * 0.8 for _, n, width in lines), (viewport, lines, room)
        assert _sideways(page)[0] == 0
        page.context.close()


@pytest.mark.usefixtures("brain_world")
def test_a_findings_name_is_a_thumbs_target(browser: Any, app_db: str, tmp_path: Path) -> None:
    """风险预警 on a phone: each finding's name, the way to its orders, is a 44-px target (a 25-px line it was), and a
    long one wraps as one text within the screen."""
    env = {"CITYHUB_DATABASE_URL": app_db, **world_env(tmp_path / "no-model"), "CITYHUB_FILES_DIR": str(tmp_path)}
    with served_app(env, tmp_path / "serve.log") as base:
        page = _phone(browser, base, PHONES[1], "lead")
        page.goto(f"{base}/brain/findings?period={PERIOD}")
        titles = '[data-testid="findings"] a.finding-title'
        assert page.locator(titles).count() >= 2
        assert page.evaluate(_SMALL_TARGETS, titles) == []
        assert _sideways(page)[0] == 0
        page.context.close()


# Each row of a table of figures: how far its cells' first lines of text stand apart vertically (0: on one line).
_ROW_LINES = """sel => [...document.querySelectorAll(sel)].map(tr => {
    const tops = [...tr.cells].map(td => { const text = document.createRange(); text.selectNodeContents(td);
        const first = [...text.getClientRects()].filter(r => r.height)[0];
        return first ? first.top + first.height / 2 : null; })
        .filter(top => top !== null);
    return [tr.cells[0].textContent.trim(), Math.round(Math.max(...tops) - Math.min(...tops))]; })
    .filter(([, apart]) => apart > 3)"""


def test_a_figure_stands_on_its_names_line_on_a_phone(server: str, browser: Any) -> None:
    """The dashboard's and an assessment's figures on their names' lines: beside a 44-px link the figure stood at the
    top of the row, 10 px above its name (办结-已解决 … 51)."""
    with session_scope() as s:
        street = s.scalars(select(Unit.id).where(Unit.code == "W-JT")).one()
    for username, path, rows in (
        ("lead", "/dashboard", '[data-testid="by-state"] tr, [data-testid="by-street"] tr'),
        ("sup", f"/assessment/{street}", '[data-testid="assessment"] tbody tr'),
    ):
        page = _phone(browser, server, PHONES[0], username)
        page.goto(server + path)
        assert page.locator(rows).count() >= 2, path
        assert page.evaluate(_ROW_LINES, rows) == [], path
        page.context.close()


def test_an_assessments_orders_read_with_their_titles_on_a_phone(server: str, browser: Any) -> None:
    """单位考核's drill-down on a small phone: each order's title under its number, as wide as the number — a column
    of its own beside 计入事项 and 计入分子 left it two characters a line (怡景/南路/垃圾/桶满/溢)."""
    with session_scope() as s:
        street = s.scalars(select(Unit.id).where(Unit.code == "W-JT")).one()
    page = _phone(browser, server, PHONES[1], "sup")
    page.goto(f"{server}/assessment/{street}?kpi=return_rate#drill")
    titles = page.locator('[data-testid="drill"] tr[data-order] td:first-child small')
    assert titles.count() >= 1
    for i in range(titles.count()):
        number = titles.nth(i).locator("xpath=..").locator("a").first.bounding_box()
        title = titles.nth(i).bounding_box()
        assert number and title and title["width"] >= min(number["width"], 120), (number, title)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONES[1]["width"]
    page.context.close()
