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
