"""分类管理 (``/admin/categories``): an administrator adds a subcategory, renames one, gives it its English name and
stops it from the page, each change in the configuration log as the API's; a refused form says every problem and
keeps what was typed, each field pointing at its own form's message; a save on an older state of the node is refused;
the third level folds under its parent and a search finds a code or an English name under the nodes above it; the
configuration log links a category's entry to its page; others are refused the page (both backends)."""

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
from cityhub.workorders import categories
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


def _described(page: str) -> dict[str, str]:
    """Each invalid field's name → the text of the message its ``aria-describedby`` points at (the id unique)."""
    said = {}
    for tag in re.findall(r"<input [^>]*aria-invalid=\"true\"[^>]*>", page):
        name = re.search(r'name="(\w+)"', tag)
        target = re.search(r'aria-describedby="([^"]+)"', tag)
        assert name is not None and target is not None
        assert page.count(f'id="{target.group(1)}"') == 1, target.group(1)
        message = re.search(rf'id="{re.escape(target.group(1))}"[^>]*>([^<]*)<', page)
        assert message is not None
        said[name.group(1)] = unescape(message.group(1))
    return said


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
    # Each field points at its own message, the new subcategory form's ids apart from the edit form's on that page.
    assert 'id="k-err-name"' in refused.text and _described(refused.text) == {
        "name": said["name"],
        "name_en": said["name_en"],
    }
    with session_scope() as s:
        assert s.scalars(select(Category).where(Category.parent_id == parent_id)).first() is None

    taken = post("/admin/categories", name="交通运输", name_en="")
    assert taken.status_code == 422 and "同一上级分类下已有同名分类" in _errors(taken).get("name", ""), _errors(taken)

    seen = hidden(admin.get(f"/admin/categories/{parent_id}").text, "seen")
    blank = post(f"/admin/categories/{parent_id}", name=" ", name_en=long_en, active="1", seen=seen)
    assert blank.status_code == 422
    said = _errors(blank)
    assert said.keys() >= {"name", "name_en"}, said
    assert 'id="e-err-name"' in blank.text and _described(blank.text).keys() == {"name", "name_en"}
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


def _rows(page: str) -> dict[str, dict[str, str]]:
    """Each row's code → its depth, whether a search matched it, and its toggle's words and address (if any)."""
    rows = {}
    for tr in re.findall(r'<tr data-testid="category-row".*?</tr>', page, re.S):
        code = re.search(r'data-code="([^"]+)"', tr)
        depth = re.search(r"--depth: (\d+)", tr)
        match = re.search(r'data-match="(\w+)"', tr)
        toggle = re.search(r'<a href="([^"]+)"[^>]*data-testid="category-toggle">([^<]*)<', tr)
        assert code is not None and depth is not None
        rows[code.group(1)] = {
            "depth": depth.group(1),
            "match": match.group(1) if match else "",
            "toggle": unescape(toggle.group(2)) if toggle else "",
            "href": unescape(toggle.group(1)) if toggle else "",
        }
    return rows


def test_the_tree_folds_the_third_level_and_a_search_finds_a_code_or_english_name_under_its_parents(world) -> None:
    """Some 650 nodes: a second-level node's subcategories fold under it, opened by a plain link (``?open=``); a
    search finds a node by its code or English name too, and shows it under the nodes above it."""
    with session_scope() as s:
        noise = categories.create_category(s, name="噪声污染", parent_id=world["环境保护"], name_en="Noise")
        site = categories.create_category(s, name="建筑施工噪声", parent_id=noise.id, name_en="Construction noise")
        life = categories.create_category(s, name="社会生活噪声", parent_id=noise.id)
        codes = {"noise": noise.code, "site": site.code, "life": life.code}
        ids = {"noise": noise.id, "site": site.id}
    admin = login("adm")

    folded = _rows(admin.get("/admin/categories").text)
    assert folded["W0"]["depth"] == "0" and folded[codes["noise"]]["depth"] == "1"
    assert codes["site"] not in folded and codes["life"] not in folded  # folded under their parent
    assert folded[codes["noise"]]["toggle"] == "展开 2 个下级分类"
    assert folded["W0"]["toggle"] == ""  # a top-level node shows its children

    opened_at = folded[codes["noise"]]["href"]
    assert opened_at == f"/admin/categories?open={ids['noise']}#category-{ids['noise']}"
    opened = _rows(admin.get(opened_at.split("#")[0]).text)
    assert opened[codes["site"]]["depth"] == opened[codes["life"]]["depth"] == "2"
    assert opened[codes["noise"]]["toggle"] == "收起 2 个下级分类"
    assert opened[codes["noise"]]["href"] == f"/admin/categories#category-{ids['noise']}"  # folds them again
    stopped_too = _rows(admin.get("/admin/categories", params={"inactive": "1"}).text)
    assert stopped_too[codes["noise"]]["href"].startswith(f"/admin/categories?open={ids['noise']}&inactive=1#")

    # A third-level node's page leads back to the tree opened at it.
    back = re.search(r'href="([^"]+)" data-testid="category-back"', admin.get(f"/admin/categories/{ids['site']}").text)
    assert (
        back is not None and unescape(back.group(1)) == f"/admin/categories?open={ids['noise']}#category-{ids['site']}"
    )

    by_code = admin.get("/admin/categories", params={"q": codes["site"].lower()})
    found = _rows(by_code.text)
    assert {code: row["match"] for code, row in found.items()} == {
        "W0": "false",
        codes["noise"]: "false",
        codes["site"]: "true",
    }
    assert found[codes["site"]]["depth"] == "2" and found[codes["noise"]]["toggle"] == ""  # unfolded, no toggle
    assert "共 1 个" in unescape(by_code.text)
    by_english = _rows(admin.get("/admin/categories", params={"q": "construction"}).text)
    assert [code for code, row in by_english.items() if row["match"] == "true"] == [codes["site"]]
    by_name = _rows(admin.get("/admin/categories", params={"q": "噪声污染"}).text)  # a node and those below it
    assert [code for code, row in by_name.items() if row["match"] == "true"] == [
        codes["noise"],
        codes["site"],
        codes["life"],
    ]


def test_the_configuration_log_links_a_category_entry_to_the_category_page(world) -> None:
    admin = login("adm")
    made = _poster(admin)("/admin/categories", name="噪音扰民", name_en="", parent_id=str(world["环境保护"]))
    assert made.status_code == 303
    child = _node(int(made.headers["location"].rsplit("/", 1)[1]))
    log = admin.get("/admin/log", params={"area": "category"}).text
    entry = re.search(
        rf'<tr data-testid="log-entry" data-area="category" data-target="{re.escape(child.code)}">.*?</tr>', log, re.S
    )
    assert entry is not None
    assert f'<a href="/admin/categories/{child.id}">{child.code}</a>' in entry.group(0)
