"""分类管理 (``/admin/categories``): an administrator adds a subcategory, renames one, gives it its English name and
stops it from the page, each change in the configuration log as the API's; a refused form says every problem and
keeps what was typed; a save on an older state of the node is refused; others are refused the page (both
backends)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.auditlog import LogEntry
from cityhub.db import reset_engine, session_scope
from cityhub.intake.service import submit
from cityhub.workorders.models import Category
from web_helpers import build_world, hidden, login, train_classifier, world_env


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_classifier(tmp_path_factory.mktemp("model"))


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> dict[str, int]:
    for key, value in world_env(model_dir).items():
        monkeypatch.setenv(key, value)
    reset_engine()
    with session_scope() as s:
        return build_world(s).cats


def _poster(client: Any) -> Any:
    def post(path: str, **data: str) -> Any:
        return client.post(path, data={"csrf_token": client.cookies["cityhub_csrf"], **data}, follow_redirects=False)

    return post


def _errors(page: Any) -> dict[str, str]:
    found = re.findall(r'data-testid="field-error-(\w+)">([^<]*)<', page.text)
    return {field: unescape(text) for field, text in found}


def _node(code_or_id: str | int) -> Category:
    with session_scope() as s:
        stmt = select(Category).where(
            Category.id == code_or_id if isinstance(code_or_id, int) else Category.code == code_or_id
        )
        node = s.scalars(stmt).one()
        s.expunge(node)
        return node


def _log(target: str) -> list[str]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(LogEntry.action)
                .where(LogEntry.area == "category", LogEntry.target == target)
                .order_by(LogEntry.id)
            )
        )


def test_an_administrator_adds_renames_names_in_english_and_stops_a_category(world) -> None:
    admin = login("adm")
    post = _poster(admin)
    assert any(href == "/admin/categories" for href in re.findall(r'href="([^"]+)"', admin.get("/admin").text))
    parent_id = world["环境保护"]
    tree = admin.get("/admin/categories")
    assert tree.status_code == 200 and 'data-code="W0"' in tree.text

    made = post("/admin/categories", name="噪音扰民", name_en="Noise", parent_id=str(parent_id))
    assert made.status_code == 303, made.text
    child = _node(int(made.headers["location"].rsplit("/", 1)[1]))
    assert (child.parent_id, child.path, child.name_en, child.level) == (parent_id, "环境保护/噪音扰民", "Noise", 2)
    assert "噪音扰民" in unescape(admin.get(made.headers["location"]).text)  # the flash and the page name it
    assert _log(child.code) == ["create"]
    row = re.search(
        rf'data-code="{re.escape(child.code)}"[^>]*style="--depth: (\d)"', admin.get("/admin/categories").text
    )
    assert row is not None and row.group(1) == "1"  # under its parent in the tree

    # An order filed under the child counts for it and for its parent (a level-1 node is never 0 above its orders).
    appeal = {"channel": "hotline", "content": "夜间工地噪音扰民", "street_code": "W-JT", "category_id": child.id}
    with session_scope() as s:
        submit(s, data=appeal)
    tree = admin.get("/admin/categories").text
    counts = dict(re.findall(r'data-code="(W0|W1)".*?data-testid="orders">(\d+)<', tree, re.S))
    assert counts == {"W0": "1", "W1": "0"}, counts

    page = admin.get(f"/admin/categories/{child.id}")
    seen = hidden(page.text, "seen")
    renamed = post(f"/admin/categories/{child.id}", name="噪声扰民", name_en="Noise nuisance", active="1", seen=seen)
    assert renamed.status_code == 303
    child = _node(child.id)
    assert (child.name, child.path, child.name_en, child.active) == (
        "噪声扰民",
        "环境保护/噪声扰民",
        "Noise nuisance",
        True,
    )

    top = post("/admin/categories", name="文化旅游", name_en="")
    assert top.status_code == 303
    assert _node(int(top.headers["location"].rsplit("/", 1)[1])).parent_id is None

    seen = hidden(admin.get(f"/admin/categories/{parent_id}").text, "seen")
    stopped = post(f"/admin/categories/{parent_id}", name="环境保护", name_en="", seen=seen)  # 启用 unticked
    assert stopped.status_code == 303
    assert not _node(parent_id).active and not _node(child.id).active  # its subtree stopped with it
    assert _log(child.code) == ["create", "update"] and _log("W0") == ["update"]
    assert 'data-code="W0"' not in admin.get("/admin/categories").text
    assert 'data-code="W0"' in admin.get("/admin/categories", params={"inactive": "1"}).text
    found = admin.get("/admin/categories", params={"q": "噪声", "inactive": "1"}).text
    assert f'data-code="{child.code}"' in found and 'data-code="W1"' not in found


def test_a_refused_category_form_says_every_problem_and_keeps_what_was_typed(world) -> None:
    admin = login("adm")
    post = _poster(admin)
    parent_id = world["环境保护"]
    long_en = "N" * 121
    refused = post("/admin/categories", name="噪音/扰民", name_en=long_en, parent_id=str(parent_id))
    assert refused.status_code == 422
    said = _errors(refused)
    assert "/" in said.get("name", "") and "120" in said.get("name_en", ""), said
    assert 'value="噪音/扰民"' in refused.text and long_en in refused.text
    with session_scope() as s:
        assert s.scalars(select(Category).where(Category.parent_id == parent_id)).first() is None

    taken = post("/admin/categories", name="交通运输", name_en="")
    assert taken.status_code == 422 and "同一上级分类下已有同名分类" in _errors(taken).get("name", ""), _errors(taken)

    seen = hidden(admin.get(f"/admin/categories/{parent_id}").text, "seen")
    blank = post(f"/admin/categories/{parent_id}", name=" ", name_en=long_en, active="1", seen=seen)
    assert blank.status_code == 422
    said = _errors(blank)
    assert said.keys() >= {"name", "name_en"}, said
    assert long_en in blank.text and _node(parent_id).name == "环境保护"

    # Someone else renamed it meanwhile: the older form is refused, what was typed kept.
    other = post(f"/admin/categories/{parent_id}", name="生态环境", name_en="", active="1", seen=seen)
    assert other.status_code == 303
    stale = post(f"/admin/categories/{parent_id}", name="环保", name_en="", active="1", seen=seen)
    assert stale.status_code == 409 and 'value="环保"' in stale.text
    assert _node(parent_id).name == "生态环境"
    again = post(f"/admin/categories/{parent_id}", name="环保", name_en="", active="1", seen=hidden(stale.text, "seen"))
    assert again.status_code == 303 and _node(parent_id).name == "环保"


def test_only_category_managers_reach_the_categories_page(world) -> None:
    for username in ("lead", "sup", "disp"):
        client = login(username)
        assert client.get("/admin/categories", follow_redirects=False).status_code == 403
        refused = _poster(client)("/admin/categories", name="文化旅游", name_en="")
        assert refused.status_code == 403
    with session_scope() as s:
        assert s.scalars(select(Category).where(Category.name == "文化旅游")).first() is None
