"""The order page's long lists — the district's units, the categories — once a page, over the real app on both
backends: each of the forms choosing a unit (派单, 转派, 增加协办, 交办, 退单's 建议改派至) or a category (拆单, 分类)
carried its own copy, ~160 KB of a dispatcher's page; now the first form lends its list and the others borrow it
(``select[data-options-from]``, app.js), each field's name, value and test id as before. Without app.js a borrowing
form offers its whole list on asking (``?lists=``). And the caller-history line keeps an English unit's name whole.

The organisation and accounts are the small world of ``web_helpers`` (disp: the district's dispatcher; adm: an
administrator; hand_a: 景泰街道's handler); no classifier.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Order
from web_helpers import act_on, login, select_of, small_world

BUREAU = "广州市生态环境局白云分局"
BUREAU_EN = "Guangzhou Ecology and Environment Bureau, Baiyun Branch"


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    world = small_world(tmp_path, monkeypatch)
    with session_scope() as s:
        bureau = Unit(code="W-EEB", name=BUREAU, name_en=BUREAU_EN, tier=UnitTier.DEPARTMENT, parent_id=world.district)
        s.add(bureau)
        s.flush()
        bureau_id = bureau.id
    return {"street_a": world.street_a, "street_b": world.street_b, "cats": world.cats, "bureau": bureau_id}


def _order(**extra: Any) -> Order:
    data = {"channel": "hotline", "content": "小区楼下餐馆油烟排放严重", "street_code": "W-JT", **extra}
    with session_scope() as s:
        order = submit(s, data=data).order
        s.flush()
        s.expunge(order)
        return order


def _options(page: str, value: int, name: str) -> int:
    """How many times the page offers ``value`` named ``name`` (units and categories share numbers)."""
    return len(re.findall(rf'<option value="{value}"[^>]*>{name}</option>', page))


def test_the_order_page_carries_each_long_list_once_the_other_forms_borrowing_it(org: dict[str, Any]) -> None:
    cats = org["cats"]
    other = cats["交通运输"]  # neither the order's category nor a suggestion: only in the lists
    queued = _order(category_id=cats["环境保护"])
    page = login("disp").get(f"/orders/{queued.id}").text
    assert _options(page, other, "交通运输") == 1  # 拆单 lends the categories, 分类 borrows them (each carried ~650)
    choice = select_of(page, "category-choice")
    assert 'name="category_id"' in choice and 'data-testid="category-choice"' in choice
    assert 'data-options-from="split-category_id"' in choice
    assert f'value="{other}"' in select_of(page, "split-category_id")
    dispatched = _order(category_id=cats["环境保护"])
    with session_scope() as s:
        orders.act(s, order_id=dispatched.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
    page = login("adm").get(f"/orders/{dispatched.id}").text
    assert _options(page, org["bureau"], BUREAU) == 1  # 转派 lends the units; 增加协办, 交办 and 退单 borrow them
    assert f'value="{org["bureau"]}"' in select_of(page, "transfer-unit_id")
    for borrower in ("add_assist-unit_id", "assign-unit_id", "return-suggest_unit_id"):
        picker = select_of(page, borrower)
        assert 'data-options-from="transfer-unit_id"' in picker, borrower
        assert re.findall(r'<option value="([^"]*)"', picker) == [""], borrower  # — until app.js lends the rest
    # 退单 does not offer the unit returning it: app.js leaves it out of what it borrows.
    assert f'data-options-except="{org["street_a"]}"' in select_of(page, "return-suggest_unit_id")
    # The forms post as before: the borrowed field's name and a unit of the lent list.
    assert act_on(login("adm"), dispatched.id, "add_assist", unit_id=str(org["bureau"])).status_code == 303
    with session_scope() as s:
        assert [a.unit_id for a in s.get(Order, dispatched.id).assists] == [org["bureau"]]  # type: ignore[union-attr]


def test_a_borrowing_form_keeps_its_preset_choice_and_without_app_js_offers_its_whole_list(org: dict[str, Any]) -> None:
    order = _order(category_id=org["cats"]["环境保护"])
    with session_scope() as s:
        orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
    adm = login("adm")
    page = adm.get(f"/orders/{order.id}").text
    link = re.search(r'<noscript><a href="([^"]+)"[^>]*data-testid="whole-list-add_assist-unit_id">([^<]+)</a>', page)
    assert link is not None and link.group(2) == "列出全部单位"
    assert unescape(link.group(1)) == f"/orders/{order.id}?lists=add_assist#add_assist-unit_id"
    again = adm.get(unescape(link.group(1))).text
    picker = select_of(again, "add_assist-unit_id")  # now the lender: the whole list, its form open
    assert "data-options-from" not in picker and f'value="{org["bureau"]}"' in picker
    assert re.search(r'<details open data-testid="action-add_assist">', again)
    assert 'data-options-from="add_assist-unit_id"' in select_of(again, "transfer-unit_id")
    assert _options(again, org["bureau"], BUREAU) == 1
    # 分类 lends the categories when asked, 拆单 borrowing them.
    queued = _order(category_id=org["cats"]["环境保护"])
    disp = login("disp")
    page = disp.get(f"/orders/{queued.id}").text
    assert 'data-testid="whole-list-category-choice"' in page
    again = disp.get(f"/orders/{queued.id}?lists=category").text
    assert 'data-options-from="category-choice"' in select_of(again, "split-category_id")
    assert f'value="{org["cats"]["交通运输"]}"' in select_of(again, "category-choice")


def test_the_caller_history_keeps_an_english_unit_name_with_commas_whole(org: dict[str, Any]) -> None:
    phone = "13912345678"
    first = _order(citizen_phone=phone, content="河道有污水排放")
    with session_scope() as s:
        orders.act(s, order_id=first.id, action=Action.DISPATCH, params={"unit_id": org["bureau"]})
    again = _order(citizen_phone=phone, content="上周反映的河道污水还在排放")
    disp = login("disp")
    page = disp.get("/lang/en", params={"next": f"/orders/{again.id}"}).text
    items = re.findall(r'<li data-testid="order-caller-earlier">(.*?)</li>', page, flags=re.S)
    assert len(items) == 1, page[:200]
    said = unescape(re.sub(r"<[^>]+>", "", items[0]))
    # state · unit · time: the unit's own comma is no longer one of the line's separators
    assert f"{first.number} " in said and f" · Dispatched · {BUREAU_EN} · " in said, said
