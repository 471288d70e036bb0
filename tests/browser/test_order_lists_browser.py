"""The order page's long lists in a real browser: the first form choosing a unit (or a category) carries the list,
the page's other such forms borrow it (``select[data-options-from]``, app.js) — and post what was chosen from it: 分类
from 拆单's categories, 增加协办 from 转派's units, 退单's 建议改派至 without the unit returning it, then 派单 from the
lending form itself. Without JavaScript a borrowing form offers its whole list through a link (列出全部单位), the page
again with that form lending it.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. What is tested is the browser's side of the page: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, served_app
from web_helpers import build_world, sign_in, stored_order, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

WIDE = {"width": 1440, "height": 900}
BUREAU = "广州市生态环境局白云分局"


@pytest.fixture
def world(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        w = build_world(s)
        bureau = Unit(code="W-EEB", name=BUREAU, tier=UnitTier.DEPARTMENT, parent_id=w.district)
        s.add(bureau)
        s.flush()
        data = {"channel": "hotline", "category_id": w.cats["环境保护"], "street_code": "W-JT"}
        queued = submit(s, data={**data, "content": "河道有污水排放，气味很大"}).order
        sent = submit(s, data={**data, "content": "小区楼下餐馆油烟直排"}).order
        orders.act(s, order_id=sent.id, action="dispatch", params={"unit_id": w.street_a})
        ids = {"bureau": bureau.id, "queued": queued.id, "sent": sent.id, "street_a": w.street_a}
        ids |= {"street_b": w.street_b, "traffic": w.cats["交通运输"]}
    with served_app(env, tmp_path / "serve.log") as base:
        yield {"base": base, **ids}


def _assisting(order_id: int) -> list[int]:
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return [a.unit_id for a in order.assists]


def test_the_forms_post_what_is_chosen_from_the_borrowed_lists(world: dict[str, Any], browser: Any) -> None:
    base = world["base"]
    page = sign_in(browser.new_context(locale="zh-CN", viewport=WIDE).new_page(), f"{base}/login", "disp")
    page.goto(f"{base}/orders/{world['queued']}")
    # 分类 borrows 拆单's categories: offered once in each, chosen and posted.
    choice = page.locator("#category-choice")
    assert choice.locator(f'option[value="{world["traffic"]}"]').count() == 1
    assert page.locator("#split-category_id").locator(f'option[value="{world["traffic"]}"]').count() == 1
    choice.select_option(str(world["traffic"]))
    page.get_by_test_id("category-submit").click()
    page.wait_for_load_state()
    assert stored_order(world["queued"]).category_id == world["traffic"]
    # 派单 from the lending list itself, its name filter box working.
    page.get_by_test_id("action-dispatch").locator("summary").click()
    page.locator("#dispatch-unit_id").select_option(str(world["bureau"]))
    page.get_by_test_id("submit-dispatch").click()
    page.wait_for_load_state()
    assert stored_order(world["queued"]).lead_unit_id == world["bureau"]
    page.context.close()

    # 增加协办 borrows 转派's units (the administrator's page of a dispatched order).
    page = sign_in(browser.new_context(locale="zh-CN", viewport=WIDE).new_page(), f"{base}/login", "adm")
    page.goto(f"{base}/orders/{world['sent']}")
    page.get_by_test_id("action-add_assist").locator("summary").click()
    assist = page.locator("#add_assist-unit_id")
    names = assist.locator("option").all_text_contents()
    assert names == ["—", *page.locator("#transfer-unit_id option").all_text_contents()[1:]], names
    assist.select_option(str(world["bureau"]))
    page.get_by_test_id("submit-add_assist").click()
    page.wait_for_load_state()
    assert _assisting(world["sent"]) == [world["bureau"]]
    page.context.close()

    # 退单's 建议改派至 borrows the handler's list, the unit returning the order left out.
    page = sign_in(browser.new_context(locale="zh-CN", viewport=WIDE).new_page(), f"{base}/login", "hand_a")
    page.goto(f"{base}/orders/{world['sent']}")
    page.get_by_test_id("action-return").locator("summary").click()
    suggest = page.locator("#return-suggest_unit_id")
    assert suggest.locator(f'option[value="{world["street_b"]}"]').count() == 1
    assert suggest.locator(f'option[value="{world["street_a"]}"]').count() == 0
    page.locator("#return-reason").fill("非本街道事项")
    suggest.select_option(str(world["street_b"]))
    page.get_by_test_id("submit-return").click()
    page.wait_for_load_state()
    returned = stored_order(world["sent"])
    assert returned.state == State.RETURNED
    page.context.close()

    # 派单 of the returned order starts from the unit the return suggested.
    page = sign_in(browser.new_context(locale="zh-CN", viewport=WIDE).new_page(), f"{base}/login", "disp")
    page.goto(f"{base}/orders/{world['sent']}")
    assert page.locator("#dispatch-unit_id").input_value() == str(world["street_b"])
    page.context.close()


def test_without_javascript_a_borrowing_form_offers_its_whole_list(world: dict[str, Any], browser: Any) -> None:
    base = world["base"]
    context = browser.new_context(locale="zh-CN", viewport=WIDE, java_script_enabled=False)
    page = sign_in(context.new_page(), f"{base}/login", "adm")
    page.goto(f"{base}/orders/{world['sent']}")
    page.get_by_test_id("action-add_assist").locator("summary").click()
    assert page.locator("#add_assist-unit_id option").all_text_contents() == ["—"]
    page.get_by_test_id("whole-list-add_assist-unit_id").click()
    page.wait_for_load_state()
    assist = page.locator("#add_assist-unit_id")
    assert assist.is_visible()  # its form open, the list its own now
    assert assist.locator(f'option[value="{world["bureau"]}"]').count() == 1
    assist.select_option(str(world["bureau"]))
    page.get_by_test_id("submit-add_assist").click()
    page.wait_for_load_state()
    assert _assisting(world["sent"]) == [world["bureau"]]
    context.close()
