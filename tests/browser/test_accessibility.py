"""axe-core in a real browser over the web UI's pages, for each role, in Chinese and in English, in the light theme and
in the dark one (a dark system's, which the pages follow until the user chooses): no serious or critical violation —
the contrast of app.css's colour roles in either theme among them — and none of the lesser ones this suite was
written to fix (unnamed landmarks, skipped heading levels, nameless table headers). Also what axe cannot see alone:
the user's theme chosen against the system's, a phone's narrow screen, an action form unfolded, an intake refused
with its field errors, and the intake assistance announces a one-line summary instead of re-reading the whole panel
while the operator types.

axe-core comes from npm (``package.json`` devDependencies, ``npm ci``) and is read from ``node_modules``; it is
evaluated in the page by Playwright, so the app's content security policy stays on. No rule is excluded.
Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. The pages do not depend on the database backend: SQLite only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import sync_api
from cityhub.db import session_scope, utcnow
from cityhub.intake.service import submit
from cityhub.monitoring import service as monitoring
from cityhub.monitoring.schemas import RuleCreate, SensorCreate
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import categories
from cityhub.workorders.service import act
from process_helpers import served_app
from web_helpers import PASSWORD, build_world, module_database, pointed_at, world_env

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = pytest.mark.skipif(not AXE.exists(), reason="axe-core is missing from node_modules (npm ci)")

# Below serious, but fixed here and kept fixed: every navigation landmark named, headings in order, every table
# header named.
ALSO_FAILING = {"landmark-unique", "heading-order", "empty-table-header"}
ORDER = "{order}"  # the order page of the world's accepted order, in a path below
ASSESSMENT = "{assessment}"  # the assessment page of that order's street, with a rate's orders (its drill-down)
# role → the pages it works on (each run in zh-CN; ENGLISH in en too)
PAGES: dict[str | None, list[str]] = {
    None: ["/", "/login", "/login/reset", "/track"],
    "op": ["/intake", "/orders", ORDER, "/orders/import", "/kb", "/account"],
    "disp": ["/queue", ORDER, "/rules"],
    "hand_a": ["/orders?state=open", ORDER, "/notices"],  # the lead unit's: its reply awaits an assisting unit
    "sup": ["/dashboard", "/reviews", "/sla", ASSESSMENT],
    "lead": ["/brain/findings", "/brain/topics", "/brain/graph", "/map"],
    "adm": [
        "/admin",
        "/admin/users",
        "/admin/units",  # its street's community folded under it: the link that opens them
        "/admin/units?q=景泰",  # the street and the community found, each with the units above it
        "/admin/categories",  # a second-level category's subcategories folded under it: the link that opens them
        "/admin/categories?q=construction",  # the match under the categories above it, in the muted colour
        "/admin/calendar",
        "/admin/api-clients",
        "/admin/webhooks",
        "/admin/log",
        "/monitoring",
        "/monitoring/sensors/A11Y-WL",
        "/monitoring/rules",
        "/rules/thresholds",
    ],
    "cit": ["/", "/intake", "/orders"],
}
ENGLISH = {
    "/login",
    "/login/reset",
    "/intake",
    ORDER,
    "/queue",
    "/dashboard",
    "/admin/users",
    "/admin/units?q=景泰",  # each unit in English, its Chinese name of record after it
    "/monitoring/sensors/A11Y-WL",
}


@pytest.fixture(scope="module")
def server(migrated_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server for the module over a database of its own, made once: the tests read it (a theme or a language
    chosen is the browser context's cookie; the intake refused registers nothing)."""
    directory = tmp_path_factory.mktemp("a11y")
    env = {
        "CITYHUB_DATABASE_URL": module_database(migrated_sqlite_template, directory),
        **world_env(directory / "no-model"),
        "CITYHUB_FILES_DIR": str(directory),
    }
    with pointed_at(env), session_scope() as s:
        world = build_world(s)
        s.add(Unit(code="A11Y-C1", name="景泰社区居委会", tier=UnitTier.COMMUNITY, parent_id=world.street_a))
        # 分类管理's folded third level (展开 1 个下级分类) and a search's match under the categories above it.
        noise = categories.create_category(s, name="噪声污染", parent_id=world.cats["环境保护"])
        categories.create_category(s, name="建筑施工噪声", parent_id=noise.id, name_en="Construction noise")
        order = submit(
            s,
            data={
                "channel": "hotline",
                "title": "餐馆油烟噪音扰民",
                "content": "小区楼下餐馆油烟排放严重，噪音扰民",
                "street_code": "W-JT",
                "citizen_name": "张市民",
                "citizen_phone": "13800138000",
            },
        ).order
        for content in ("路灯不亮，晚上出行不便", "人行道井盖缺失，存在安全隐患"):
            submit(s, data={"channel": "hotline", "content": content, "street_code": "W-JX"})
        if order.state.value == "received":
            act(s, order_id=order.id, action="dispatch", params={"unit_id": world.street_a})
        # Accepted, with an assisting unit yet to answer: the lead unit's page names it where 答复 would be.
        act(s, order_id=order.id, action="accept")
        act(s, order_id=order.id, action="add_assist", params={"unit_id": world.street_b})
        order_id = order.id
        monitoring.create_sensor(
            s,
            # Its last reading over an hour old and half an hour its time: silent (离线), so the pages' silent badge
            # and muted values are checked too.
            data=SensorCreate(
                code="A11Y-WL",
                name="景泰隧道积水点",
                kind="waterlogging",
                metrics={"depth": "cm"},
                silent_after_minutes=30,
            ),
        )
        monitoring.create_rule(
            s,
            data=RuleCreate(name="积水超 20", sensor_kind="waterlogging", metric="depth", comparison=">", threshold=20),
        )
        start = utcnow() - timedelta(hours=2)
        items = [
            {"sensor_code": "A11Y-WL", "measured_at": (start + timedelta(minutes=10 * i)).isoformat(), "value": v}
            for i, v in enumerate([12, 31, 33, 35, 15, 10])
        ]
        monitoring.ingest(s, items=items)
    log_path = directory / "serve.log"
    with served_app(env, log_path) as base:
        yield {"base": base, "order": order_id, "unit": world.street_a}


def _page(browser: Any, base: str, username: str | None, lang: str, **context: Any) -> Any:
    ctx = browser.new_context(locale=lang, **context)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    page.goto(f"{base}/lang/{lang}?next=/login")
    if username:
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
    return page


def _violations(page: Any) -> list[str]:
    """axe's findings on the page as it is now (folded sections unfolded, folded again after: an open dropdown — the
    theme switch — covers the page to close at the next click): serious and critical ones, and those of
    ALSO_FAILING, each as 'rule (impact): the first elements'."""
    page.evaluate(
        "document.querySelectorAll('details:not([open])').forEach(d => { d.open = true; d.dataset.unfolded = '1'; })"
    )
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    page.evaluate("document.querySelectorAll('details[data-unfolded]').forEach(d => { d.open = false; })")
    return [
        f"{v['id']} ({v['impact']}): {', '.join(v['targets'])}"
        for v in found
        if v["impact"] in ("serious", "critical") or v["id"] in ALSO_FAILING
    ]


def _background(page: Any) -> tuple[float, ...]:
    """The page's background colour as drawn (Pico's on <html>), red, green and blue."""
    colour = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    return tuple(float(x) for x in re.findall(r"[\d.]+", colour)[:3])


def _is_dark(page: Any) -> bool:
    return max(_background(page)) < 60


def _audit(page: Any, base: str, path: str, order: int, unit: int | None = None) -> list[str]:
    url = base + path.replace(ORDER, f"/orders/{order}").replace(ASSESSMENT, f"/assessment/{unit}?kpi=on_time_accept")
    response = page.goto(url)  # returns once the page has loaded: its scripts, styles and images
    assert response.status == 200, url
    # Only the map fetches after that (its layers): wait for them drawn, not for 500 ms of network silence per page.
    if path == "/map":
        page.wait_for_selector("#map[data-settled]", state="attached")
    return [f"{page.url}: {v}" for v in _violations(page)]


def test_every_page_passes_axe_for_each_role_in_chinese_and_english(server: dict[str, Any], browser: Any) -> None:
    """Every page in both themes: the system's, which the pages follow (跟随系统, no choice made). One test, not one
    per theme: two browsers auditing side by side took both cores from the tests that wait for a process they start
    (the notify worker's, the server's), which then timed out in CI."""
    base, order = server["base"], server["order"]
    problems: list[str] = []
    for scheme, lang in (("light", "zh-CN"), ("light", "en"), ("dark", "zh-CN"), ("dark", "en")):
        for username, paths in PAGES.items():
            wanted = paths if lang == "zh-CN" else [p for p in paths if p in ENGLISH]
            if not wanted:
                continue
            page = _page(browser, base, username, lang, color_scheme=scheme)
            assert page.locator("html").get_attribute("lang") == lang
            assert _is_dark(page) == (scheme == "dark"), _background(page)
            for path in wanted:
                problems += _audit(page, base, path, order, server["unit"])
                if username == "hand_a" and path == ORDER:  # audited with the notice that stands for 答复
                    assert page.locator('[data-testid="reply-awaits"]').count() == 1
            page.context.close()
    assert not problems, "\n".join(problems)


def test_the_users_theme_over_the_systems_and_a_phone_keep_the_contrast_and_the_keyboard(
    server: dict[str, Any], browser: Any
) -> None:
    base, order = server["base"], server["order"]
    # 浅色 chosen under a dark system theme: the page is light from the first paint (the server writes it), and
    # so are the form controls (color-scheme); 深色 under a light system the other way round.
    problems: list[str] = []
    for system, chosen, path in (("dark", "light", "/queue"), ("light", "dark", ORDER)):
        page = _page(browser, base, "disp", "zh-CN", color_scheme=system)
        page.goto(f"{base}/theme/{chosen}?next=/orders")
        assert page.locator("html").get_attribute("data-theme") == chosen
        problems += _audit(page, base, path, order)
        assert _is_dark(page) == (chosen == "dark"), _background(page)
        assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == chosen
        # The switch goes back to the system's.
        page.locator('[data-testid="theme-switch"] summary').click()
        page.locator('[data-testid="theme-system"]').click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("data-theme") is None and _is_dark(page) == (system == "dark")
        page.context.close()
    # On a phone a wide table scrolls sideways inside its wrapper, which the keyboard can reach to scroll it (a
    # sensor's alarm record: the lists of things to open are a card per row there, test_phone_pages.py).
    phone = _page(browser, base, "adm", "zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True)
    problems += _audit(phone, base, "/monitoring/sensors/A11Y-WL", order)
    assert phone.locator(".table-wrap[tabindex='0']").count() >= 1
    # The first Tab reaches the skip link, shown while focused, leading to the main content.
    phone.keyboard.press("Tab")
    skip = phone.locator("a.skip")
    assert skip.evaluate("e => e === document.activeElement") and skip.get_attribute("href") == "#main"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0
    phone.context.close()
    assert not problems, "\n".join(problems)


def test_intake_errors_are_tied_to_their_fields_and_the_assistance_is_announced_briefly(
    server: dict[str, Any], browser: Any
) -> None:
    base = server["base"]
    expect = sync_api.expect
    op = _page(browser, base, "op", "zh-CN")
    op.goto(f"{base}/intake")
    # The panel itself is not a live region (it would be read again at each pause in typing); a status says a line.
    assert op.locator("#assistance").get_attribute("aria-live") is None
    status = op.locator("#assist-status")
    assert status.get_attribute("role") == "status"
    op.fill("#f-title", "餐馆油烟")
    op.fill("#f-content", "小区楼下餐馆油烟排放严重，噪音扰民，晚上十点以后还在营业")
    expect(status).to_contain_text("智能辅助已更新", timeout=30_000)
    expect(status).to_contain_text("疑似重复")
    assert op.locator("#assist-status").count() == 1  # filled in place, never a second status
    problems = [f"assistance: {v}" for v in _violations(op)]
    # An appeal without content is refused; the message is the field's description and the field says it is invalid.
    op.fill("#f-title", "")
    op.fill("#f-content", "")
    op.click("[data-testid=intake-submit]")
    op.wait_for_load_state()
    content = op.locator("#f-content")
    expect(content).to_have_attribute("aria-invalid", "true")
    described = content.get_attribute("aria-describedby")
    assert described and op.locator(f"#{described}").inner_text().strip()
    problems += [f"intake refused: {v}" for v in _violations(op)]
    op.context.close()
    assert not problems, "\n".join(problems)
