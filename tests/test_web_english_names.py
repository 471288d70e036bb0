"""Units and categories named in the reader's language (``Translator.unit_name`` / ``category_name``,
``cityhub.localnames``): an English page shows the English name where one is set and the Chinese name where none
is; a Chinese page the Chinese name; the units form keeps the English name (both backends)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.db import reset_engine, session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders.models import Category
from web_helpers import build_world, hidden, login, train_classifier, world_env


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_classifier(tmp_path_factory.mktemp("model"))


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> dict[str, Any]:
    for key, value in world_env(model_dir).items():
        monkeypatch.setenv(key, value)
    reset_engine()
    with session_scope() as s:
        built = build_world(s)
        # 景泰街道 and 环境保护 have English names; 京溪街道, its community 槎龙社区居委会 and 交通运输 have none.
        s.get(Unit, built.street_a).name_en = "Jingtai Subdistrict"  # type: ignore[union-attr]
        s.add(Unit(code="W-CL", name="槎龙社区居委会", tier=UnitTier.COMMUNITY, parent_id=built.street_b))
        s.get(Category, built.cats["环境保护"]).name_en = "Environmental protection"  # type: ignore[union-attr]
        orders = {}
        for street, category in (("W-JT", "环境保护"), ("W-JX", "交通运输")):
            data = {"channel": "hotline", "content": "小区楼下餐馆油烟排放严重", "street_code": street}
            order = submit(s, data={**data, "category_id": built.cats[category]}).order
            s.flush()
            orders[street] = order.id
        return {"orders": orders, "street_a": built.street_a, "street_b": built.street_b}


def _facts(html: str) -> str:
    """The order page's facts table, as text."""
    table = html.split('data-testid="facts"')[1].split("</table>")[0]
    return unescape(re.sub(r"<[^>]+>", " ", table))


def _rows(html: str) -> str:
    """The order list's rows, as text."""
    body = html.split("<tbody")[1].split("</tbody>")[0]
    return unescape(re.sub(r"<[^>]+>", " ", body))


def test_an_english_page_names_units_and_categories_in_english_where_they_have_english_names(world) -> None:
    supervisor = login("sup")
    chinese = _facts(supervisor.get(f"/orders/{world['orders']['W-JT']}").text)
    assert "景泰街道" in chinese and "环境保护" in chinese and "Jingtai" not in chinese
    listed = _rows(supervisor.get("/orders").text)
    assert "环境保护" in listed and "Environmental protection" not in listed

    supervisor.cookies.set("cityhub_lang", "en")
    english = _facts(supervisor.get(f"/orders/{world['orders']['W-JT']}").text)
    assert "Jingtai Subdistrict" in english and "Environmental protection" in english
    assert "景泰街道" not in english and "环境保护" not in english
    listed = _rows(supervisor.get("/orders").text)
    assert "Environmental protection" in listed and "环境保护" not in listed
    # The list's place-source choices begin with a capital, as the other choices (not "from the address").
    assert ">From the address</option>" in supervisor.get("/orders").text
    # No English name: a street's name romanised (org.placenames), a category's Chinese name, on an English page too.
    fallback = _facts(supervisor.get(f"/orders/{world['orders']['W-JX']}").text)
    assert "Jingxi Subdistrict" in fallback and "京溪街道" not in fallback and "交通运输" in fallback
    assert "交通运输" in listed


def test_the_units_form_keeps_an_english_name_and_the_list_searches_the_chinese_one(world) -> None:
    admin = login("adm")
    page = admin.get(f"/admin/units/{world['street_a']}")
    assert 'name="name_en"' in page.text and 'value="Jingtai Subdistrict"' in page.text
    with session_scope() as s:
        before = s.scalar(select(Unit.name).where(Unit.id == world["street_a"]))
    form = {
        "csrf_token": hidden(page.text),
        "name": before or "",
        "name_en": "Jingtai Sub-district",
        "tier": "street",
        "parent_id": "",
        "short_name": "",
        "duties": "",
        "contacts": "",
        "boundary": "",
        "active": "1",
    }
    with session_scope() as s:
        form["parent_id"] = str(s.scalar(select(Unit.parent_id).where(Unit.id == world["street_a"])))
    saved = admin.post(f"/admin/units/{world['street_a']}", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with session_scope() as s:
        unit = s.get(Unit, world["street_a"])
        assert unit is not None and unit.name_en == "Jingtai Sub-district" and unit.name == "景泰街道"
    form["name_en"] = ""
    assert admin.post(f"/admin/units/{world['street_a']}", data=form, follow_redirects=False).status_code == 303
    with session_scope() as s:
        assert s.scalar(select(Unit.name_en).where(Unit.id == world["street_a"])) is None


def test_the_units_page_names_a_community_without_an_english_name_in_pinyin_to_an_english_reader(world) -> None:
    """组织机构 in English: each unit by the name English pages show — a community without an English name by its
    name romanised — followed by the Chinese name of record, which the search finds; in Chinese, the Chinese name
    alone. The unit's own page is headed so too."""
    admin = login("adm")
    with session_scope() as s:
        community = s.scalar(select(Unit.id).where(Unit.code == "W-CL"))
    chinese = admin.get("/admin/units", params={"q": "槎龙"}).text
    assert "槎龙社区居委会" in _unit_rows(chinese) and "Chalong" not in chinese
    admin.cookies.set("cityhub_lang", "en")
    rows = _unit_rows(admin.get("/admin/units", params={"q": "槎龙"}).text)
    assert "Chalong Community 槎龙社区居委会" in rows
    assert "Jingxi Subdistrict" in rows  # the community's street, above it
    tree = _unit_rows(admin.get("/admin/units", params={"open": world["street_b"]}).text)
    assert "Jingtai Subdistrict 景泰街道" in tree and "Chalong Community 槎龙社区居委会" in tree
    page = admin.get(f"/admin/units/{community}").text
    assert re.search(r"<h1>Chalong Community ", page) and 'value="槎龙社区居委会"' in page
    assert 'name="name_en" maxlength="200" lang="en" value=""' in page  # nothing stored behind the administrator


def _unit_rows(html: str) -> str:
    """The units page's rows, as text with one space between words."""
    body = html.split('data-testid="units"')[1].split("</table>")[0]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_a_category_path_in_a_list_may_break_after_each_part(world) -> None:
    """An English path's parts are joined without spaces (Urban-rural development/Urban construction and municipal
    management/…): the order list's category column may break after each ``/`` (``path_breaks``), else it kept the
    list wider than a 1440-px screen."""
    from cityhub.workorders.categories import create_category

    with session_scope() as s:
        parent = s.scalars(select(Category).where(Category.name == "环境保护")).one()
        leaf = create_category(s, name="餐饮油烟", parent_id=parent.id, name_en="Cooking fumes")
        data = {"channel": "hotline", "content": "楼下餐馆油烟直排", "street_code": "W-JT", "category_id": leaf.id}
        submit(s, data=data)
    supervisor = login("sup")
    supervisor.cookies.set("cityhub_lang", "en")
    assert "Environmental protection/<wbr>Cooking fumes" in supervisor.get("/orders").text


def test_the_urge_form_and_the_users_list_name_the_unit_in_english(world) -> None:
    """The 督办催办 form said whom the urge goes to — "The urge goes to 景泰街道" on an English page — and the users'
    list each account's unit in Chinese: both through the reader's language, as the rest of the page (likewise the
    答复审核 list's and the monitors' units)."""
    from cityhub.workorders import service as orders

    order = world["orders"]["W-JT"]
    with session_scope() as s:
        orders.act(s, order_id=order, action="dispatch", params={"unit_id": world["street_a"]})
    supervisor = login("sup")
    supervisor.cookies.set("cityhub_lang", "en")
    said = re.search(r'data-testid="urge-to">(.*?)</p>', supervisor.get(f"/orders/{order}").text, flags=re.S)
    assert said is not None and "The urge goes to Jingtai Subdistrict," in unescape(said.group(1))
    admin = login("adm")
    admin.cookies.set("cityhub_lang", "en")
    cells = re.findall(r'<td class="whole" data-label="[^"]*">([^<]*)</td>', admin.get("/admin/users").text)
    assert "Jingtai Subdistrict" in cells and "景泰街道" not in cells


def test_the_progress_lookup_names_the_unit_and_category_in_english_on_an_english_page(world) -> None:
    """/track, which signs nobody in, named the unit and the category in Chinese on an English page (Handled by
    景泰街道, Passed on · 景泰街道, Category 环境保护) where the signed-in pages name them in English. It now reads the
    English names too; a Chinese page keeps the Chinese ones."""
    from fastapi.testclient import TestClient

    from app_helpers import shared_app
    from web_helpers import act_on

    phone = "13800005555"
    with session_scope() as s:
        category = s.scalar(select(Category.id).where(Category.name == "环境保护"))
        data = {"channel": "hotline", "content": "景泰街道餐馆油烟", "street_code": "W-JT", "citizen_phone": phone}
        order = submit(s, data={**data, "category_id": category}).order
        s.flush()
        order_id, number = order.id, order.number
    assert act_on(login("disp"), order_id, "dispatch", unit_id=str(world["street_a"])).status_code == 303
    visitor = TestClient(shared_app(), raise_server_exceptions=False)

    def tracked() -> str:
        form = visitor.get("/track").text
        return visitor.post("/track", data={"number": number, "phone": phone, "csrf_token": hidden(form)}).text

    visitor.get("/lang/en")
    page = tracked()
    assert '<td data-testid="track-unit">Jingtai Subdistrict</td>' in page
    assert "<td>Environmental protection</td>" in page and "Passed on · Jingtai Subdistrict" in page
    assert "景泰街道" not in page.replace("景泰街道餐馆油烟", "") and "环境保护" not in page
    visitor.get("/lang/zh-CN")
    assert '<td data-testid="track-unit">景泰街道</td>' in tracked()
