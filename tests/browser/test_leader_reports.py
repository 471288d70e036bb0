"""A leader's analysis on a phone: the 专报's PDF says at once that it is being made (2–4.5 s, and a tap showed
nothing meanwhile) and is saved when it comes, the plain link kept for a browser without app.js; the one map's
indicators come before the map on a narrow screen (a leader scrolled ~1,000 px of map and its orders to reach
them), beside it on a wide one.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is measured is the browser's behaviour and layout: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import sync_api
from cityhub.db import session_scope
from process_helpers import BROWSER_SIDE, PHONES, served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        build_world(s)
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def _page(browser: Any, base: str, viewport: dict[str, int], *, phone: bool = True) -> Any:
    context = browser.new_context(
        locale="zh-CN", viewport=viewport, is_mobile=phone, has_touch=phone, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return sign_in(page, f"{base}/login", "lead")


def test_the_reports_pdf_says_it_is_being_made_until_it_is_saved(server: str, browser: Any) -> None:
    page = _page(browser, server, PHONES[0])
    page.goto(server + "/dashboard")
    link = page.locator('[data-testid="report-pdf"]')
    href = link.get_attribute("href")
    assert href and "format=pdf" in href  # the plain link, for a browser without app.js
    held: list[Any] = []  # the report is being made until the test answers
    page.route("**/api/v1/kpi/report?*format=pdf*", lambda route: held.append(route))
    link.tap()
    expect = sync_api.expect
    expect(link).to_have_attribute("aria-busy", "true")
    expect(link).to_have_text("正在生成…")
    expect(page.locator('[data-testid="report-status"]')).to_have_text("正在生成专报的 PDF 文件，请稍候")
    assert page.url.endswith("/dashboard")
    link.dispatch_event("click")  # a second tap while it is made asks for no second report
    with page.expect_download() as saved:
        held[0].fulfill(
            status=200,
            headers={"Content-Disposition": 'attachment; filename="report-2026-11.pdf"'},
            content_type="application/pdf",
            body=b"%PDF-1.4\n%%EOF\n",
        )
    assert saved.value.suggested_filename == "report-2026-11.pdf"
    expect(link).to_have_text("PDF")
    expect(link).not_to_have_attribute("aria-busy", "true")
    assert len(held) == 1
    page.context.close()


def test_the_one_maps_indicators_come_before_the_map_on_a_phone_and_beside_it_on_a_wide_screen(
    server: str, browser: Any
) -> None:
    for viewport in PHONES:
        page = _page(browser, server, viewport)
        page.goto(server + "/map")
        page.wait_for_load_state("networkidle")  # the panel fetched afresh once the page is read
        panel = page.locator('[data-testid="map-panel"]').bounding_box()
        view = page.locator(".map-wrap").bounding_box()
        layers = page.locator('[data-testid="map-layers"]').bounding_box()
        assert panel and view and layers
        assert panel["y"] + panel["height"] <= view["y"] and panel["y"] < viewport["height"], (viewport, panel, view)
        assert view["y"] < layers["y"], (viewport, view, layers)
        page.context.close()
    page = _page(browser, server, {"width": 1440, "height": 900}, phone=False)
    page.goto(server + "/map")
    page.wait_for_load_state("networkidle")
    panel = page.locator('[data-testid="map-panel"]').bounding_box()
    view = page.locator(".map-wrap").bounding_box()
    layers = page.locator('[data-testid="map-layers"]').bounding_box()
    assert panel and view and layers
    assert view["x"] + view["width"] <= panel["x"] and abs(panel["y"] - view["y"]) < 2, (panel, view)
    assert panel["y"] + panel["height"] <= layers["y"] and abs(layers["x"] - panel["x"]) < 2, (panel, layers)
    page.context.close()
