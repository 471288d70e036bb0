"""The public create/rename/(de)activate functions of the category taxonomy, on both backends."""

from __future__ import annotations

import pytest

from cityhub.errors import Conflict, NotFound, ValidationFailed
from cityhub.workorders import categories


def test_create_takes_the_next_free_code_and_refuses_clashes(db_session):
    categories.seed_default_taxonomy(db_session)
    top = categories.create_category(db_session, name=" 智慧城市 ")
    assert (top.code, top.level, top.path, top.name) == ("C16", 1, "智慧城市", "智慧城市")
    child = categories.create_category(db_session, name="数据开放", parent_id=top.id)
    assert (child.code, child.level, child.path) == ("C16.01", 2, "智慧城市/数据开放")
    leaf = categories.create_category(db_session, name="接口", parent_id=child.id)
    assert leaf.code == "C16.01.001"

    with pytest.raises(Conflict):
        categories.create_category(db_session, name="数据开放", parent_id=top.id)
    with pytest.raises(ValidationFailed) as bad:
        categories.create_category(db_session, name="a/b")
    assert bad.value.details == {"field": "name"}
    with pytest.raises(ValidationFailed):
        categories.create_category(db_session, name="  ")
    with pytest.raises(ValidationFailed) as missing:
        categories.create_category(db_session, name="x", parent_id=987654)
    assert missing.value.details == {"field": "parent_id"}
    categories.update_category(db_session, category_id=top.id, active=False)
    with pytest.raises(ValidationFailed) as inactive:
        categories.create_category(db_session, name="新", parent_id=top.id)
    assert inactive.value.details == {"field": "parent_id"}


def test_rename_rewrites_subtree_paths_and_retire_revive(db_session):
    top = categories.create_category(db_session, name="城乡建设")
    mid = categories.create_category(db_session, name="住房保障", parent_id=top.id)
    leaf = categories.create_category(db_session, name="保障房", parent_id=mid.id)
    sibling = categories.create_category(db_session, name="物业", parent_id=top.id)

    renamed = categories.update_category(db_session, category_id=mid.id, name="住房")
    assert (renamed.path, leaf.path, renamed.code) == ("城乡建设/住房", "城乡建设/住房/保障房", mid.code)
    with pytest.raises(Conflict):
        categories.update_category(db_session, category_id=sibling.id, name="住房")
    # The same name (after trimming) is no rename and no clash with itself.
    assert categories.update_category(db_session, category_id=mid.id, name=" 住房 ").name == "住房"

    categories.update_category(db_session, category_id=mid.id, active=False)
    assert (mid.active, leaf.active, top.active, sibling.active) == (False, False, True, True)
    with pytest.raises(ValidationFailed) as parent_first:
        categories.update_category(db_session, category_id=leaf.id, active=True)
    assert parent_first.value.details == {"field": "active"}
    categories.update_category(db_session, category_id=mid.id, active=True)
    assert mid.active and not leaf.active  # revives this node only
    with pytest.raises(NotFound):
        categories.update_category(db_session, category_id=987654, name="x")


def test_a_search_finds_a_node_by_its_path_code_or_english_name(db_session):
    """``q`` (the page's search, the API's): the text in the path as before, and now in the code or the English name
    whatever its case — what an administrator looking for a node types."""
    categories.seed_default_taxonomy(db_session)
    top = categories.create_category(db_session, name="智慧城市", name_en="Smart city")
    child = categories.create_category(db_session, name="数据开放", parent_id=top.id, name_en="Open data 100%")
    leaf = categories.create_category(db_session, name="接口_文档", parent_id=child.id)

    def found(q: str) -> list[str]:
        return [n.code for n in categories.list_categories(db_session, q=q)]

    assert found("数据开放") == [child.code, leaf.code]  # a name in the path: the node and those below it
    assert found("智慧城市/数据") == [child.code, leaf.code]
    assert found(child.code.lower()) == [child.code, leaf.code]  # a code, and the codes below it
    assert found("OPEN DATA") == [child.code]  # an English name, whatever its case
    assert found("smart") == [top.code]
    assert found("100%") == [child.code] and found("_文") == [leaf.code]  # LIKE's wildcards are text
    assert found("没有这个分类") == []
