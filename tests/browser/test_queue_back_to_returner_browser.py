"""The dispatcher's bulk dispatch of a returned order back to the unit that returned it, in a real browser at
1440 × 900: the queue row warns that going back there needs a reason; without one the order stays in the queue with
that said, with one it goes and the result names it as sent back.

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
from web_helpers import actor_of, build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        back = submit(s, data={"channel": "hotline", "content": "河道有污水排放", "street_code": "W-JX"}).order
        orders.act(s, order_id=back.id, action="dispatch", params={"unit_id": world.street_b})
        orders.act(s, order_id=back.id, action="return", actor=actor_of(s, "hand_b"), params={"reason": "非本辖区"})
        number, unit = back.number, world.street_b
    with served_app(env, tmp_path / "serve.log") as base:
        yield {"base": base, "number": number, "unit": unit}


def test_a_bulk_dispatch_back_to_the_returning_unit_is_warned_of_and_needs_a_reason(
    server: dict[str, Any], browser: Any
) -> None:
    expect = sync_api.expect
    base, number = server["base"], server["number"]
    page = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    sign_in(page, f"{base}/login", "disp").goto(base + "/queue")
    row = page.locator(f'[data-testid="queue-item"][data-number="{number}"]')
    expect(row.get_by_test_id("back-warning")).to_contain_text("须说明理由")

    row.get_by_test_id(f"pick-{number}").check()
    page.get_by_test_id("bulk-unit").select_option(str(server["unit"]))
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_test_id("bulk-refused")).to_contain_text("派回退回它的单位须说明理由")
    expect(page.locator(f'[data-testid="queue-item"][data-number="{number}"]')).to_be_visible()  # still waiting

    page.get_by_test_id(f"pick-{number}").check()
    page.get_by_test_id("bulk-unit").select_option(str(server["unit"]))
    page.locator('input[name="bulk_reason"]').fill("经核实属本街道辖区")
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_test_id("bulk-back")).to_contain_text(number)
    expect(page.locator(f'[data-testid="queue-item"][data-number="{number}"]')).to_have_count(0)
