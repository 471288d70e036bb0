"""The category taxonomy: import formats, stable codes, look-ups, ``categories`` commands (both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cityhub.errors import NotFound, ValidationFailed
from cityhub.workorders import categories
from cityhub.workorders.models import Category

REAL_TAXONOMY = Path("../shared/data/teddycup2020_c/csv/label_taxonomy_3level.csv")
REAL_TAXONOMY_WORKBOOK = Path("../shared/data/teddycup2020_c/raw/附件1_三级标签体系.xlsx")

LEVELS_CSV = """一级分类,二级分类,三级分类
城乡建设,住房保障与房地产,保障房
城乡建设,住房保障与房地产,物业管理
城乡建设,安全生产,其他
交通运输,公路,其他
交通运输,交通运输,出租车
环境保护,,
,噪声,施工噪声
城乡建设,,规划
城乡建设,市政/绿化,路灯
"""


def _write(tmp_path: Path, text: str, name: str = "taxonomy.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(Category))


def test_level_columns_import_with_bad_rows(db_session, tmp_path):
    report = categories.import_taxonomy(db_session, path=_write(tmp_path, LEVELS_CSV))
    assert {(e.row, e.field) for e in report.rejected} == {(8, "一级分类"), (9, "二级分类"), (10, "二级分类")}
    # 3 roots, 4 second-level and 5 third-level nodes from the 6 good rows
    assert report.by_level == {1: 3, 2: 4, 3: 5}
    assert report.created == _count(db_session) == 12

    node = categories.find_category(db_session, name_or_path="城乡建设/住房保障与房地产/保障房")
    assert node is not None and node.level == 3
    assert node.code == "C01.01.001"
    assert categories.find_category(db_session, name_or_path="环境保护").code == "C03"
    chain = categories.category_chain(db_session, category_id=node.id)
    assert [db_session.get(Category, i).name for i in chain] == ["保障房", "住房保障与房地产", "城乡建设"]


def test_reimport_changes_nothing_and_new_nodes_take_next_codes(db_session, tmp_path):
    path = _write(tmp_path, LEVELS_CSV)
    categories.import_taxonomy(db_session, path=path)
    codes = {c.path: c.code for c in categories.list_categories(db_session)}

    again = categories.import_taxonomy(db_session, path=path)
    assert again.created == again.updated == 0 and again.unchanged == len(codes)

    # A new first-level name listed first does not renumber the others.
    more = "level1,level2,level3\n农村农业,农业生产,种植\n城乡建设,住房保障与房地产,公租房\n"
    added = categories.import_taxonomy(db_session, path=_write(tmp_path, more, "more.csv"))
    assert added.created == 4
    after = {c.path: c.code for c in categories.list_categories(db_session)}
    assert {p: after[p] for p in codes} == codes
    assert after["农村农业"] == "C04"
    assert after["城乡建设/住房保障与房地产/公租房"] == "C01.01.003"


def test_find_category_prefers_exact_path_then_shallowest_unique_name(db_session, tmp_path):
    categories.import_taxonomy(db_session, path=_write(tmp_path, LEVELS_CSV))
    # 交通运输 is a first-level name and a second-level one: the shallowest wins
    assert categories.find_category(db_session, name_or_path="交通运输").level == 1
    assert categories.find_category(db_session, name_or_path=" 交通运输 / 交通运输 ").level == 2
    # 其他 exists twice at level 3: ambiguous
    assert categories.find_category(db_session, name_or_path="其他") is None
    assert categories.find_category(db_session, name_or_path="公路/其他").path == "交通运输/公路/其他"
    assert categories.find_category(db_session, name_or_path="物业管理").path == "城乡建设/住房保障与房地产/物业管理"
    assert categories.find_category(db_session, name_or_path="不存在") is None
    # Widths do not matter: a half-width slash or bracket as a file or a classifier's label has it.
    assert categories.find_category(db_session, name_or_path="公路／其他").path == "交通运输/公路/其他"
    with pytest.raises(ValidationFailed, match="unknown category_id"):  # an id a request carried
        categories.category_chain(db_session, category_id=10**9)
    # Several at once: the same answers as one by one, exact paths or not.
    names = ["交通运输", " 交通运输 / 交通运输 ", "其他", "公路/其他", "物业管理", "不存在", ""]
    found = categories.find_categories(db_session, names=names)
    assert set(found) == set(names)
    for name in names:
        single = categories.find_category(db_session, name_or_path=name)
        assert (found[name].id if found[name] else None) == (single.id if single else None), name


FLAT_CSV = """code,name,parent_code
B1.1.1,保障房,B1.1
B1.1,住房保障,B1
B1,城乡建设,
B2.1,孤儿,B9
X1,循环甲,X2
X2,循环乙,X1
B1.2,,B1
B1.3,住房保障,B1
"""


def test_flat_import_resolves_parents_and_reports_problems(db_session, tmp_path):
    report = categories.import_taxonomy(db_session, path=_write(tmp_path, FLAT_CSV))
    assert {(e.row, e.field) for e in report.rejected} == {
        (5, "parent_code"),
        (6, "parent_code"),
        (7, "parent_code"),
        (8, "name"),
        (9, "name"),
    }
    assert report.created == 3
    leaf = categories.find_category(db_session, name_or_path="城乡建设/住房保障/保障房")
    assert leaf is not None and leaf.code == "B1.1.1" and leaf.level == 3

    # Renaming a parent rewrites its descendants' paths.
    renamed = FLAT_CSV.replace("B1.1,住房保障,B1", "B1.1,住房保障与房地产,B1")
    again = categories.import_taxonomy(db_session, path=_write(tmp_path, renamed, "renamed.csv"))
    # B1.1 renamed, the leaf's path follows; B1.3 住房保障 no longer clashes with B1.1 and is created.
    assert (again.created, again.updated) == (1, 2)
    db_session.expire_all()
    assert db_session.get(Category, leaf.id).path == "城乡建设/住房保障与房地产/保障房"


def test_wrong_headers_and_missing_file(db_session, tmp_path):
    with pytest.raises(ValidationFailed, match="wrong headers"):
        categories.import_taxonomy(db_session, path=_write(tmp_path, "a,b\n1,2\n"))
    with pytest.raises(NotFound):
        categories.import_taxonomy(db_session, path=tmp_path / "missing.csv")


@pytest.mark.parametrize("path", [REAL_TAXONOMY, REAL_TAXONOMY_WORKBOOK], ids=["csv", "xlsx"])
def test_real_taxonomy_file(db_session, path):
    if not path.exists():
        pytest.skip("shared taxonomy data not available")
    report = categories.import_taxonomy(db_session, path=path)
    assert not report.rejected
    assert report.rows == 517
    # 15 first-level, 118 distinct (level 1, level 2) pairs, 517 leaves (103 / 390 distinct names)
    assert report.by_level == {1: 15, 2: 118, 3: 517}
    names_2 = {c.name for c in categories.list_categories(db_session, level=2)}
    names_3 = {c.name for c in categories.list_categories(db_session, level=3)}
    assert (len(names_2), len(names_3)) == (103, 390)

    # The bundled taxonomy is the same one with English names: it creates nothing, and names every node in English.
    seeded = categories.seed_default_taxonomy(db_session)
    assert seeded.created == 0 and seeded.updated == report.created
    assert all(c.name_en for c in categories.list_categories(db_session))


def test_seed_is_idempotent_and_deterministic(db_session):
    first = categories.seed_default_taxonomy(db_session)
    assert first.created == _count(db_session) > 0
    second = categories.seed_default_taxonomy(db_session)
    assert second.created == 0 and second.unchanged == first.created
    roots = categories.list_categories(db_session, level=1)
    assert [c.code for c in roots] == [f"C{i:02d}" for i in range(1, len(roots) + 1)]
    by_id = {c.id: c for c in categories.list_categories(db_session)}
    for node in by_id.values():
        parent = by_id.get(node.parent_id)
        assert (parent is None) == (node.level == 1)
        assert parent is None or (node.code.startswith(parent.code + ".") and node.path.startswith(parent.path))
    leaf = categories.list_categories(db_session, level=3)[0]
    assert len(categories.category_chain(db_session, category_id=leaf.id)) == 3


runner = CliRunner()


def test_cli(app_db, tmp_path):
    result = runner.invoke(categories.categories_app, ["import", str(_write(tmp_path, LEVELS_CSV))])
    assert result.exit_code == 0, result.output
    assert "created 12" in result.stdout
    assert len(result.stderr.strip().splitlines()) == 3

    listed = runner.invoke(categories.categories_app, ["list", "--level", "1"])
    assert [line.split("\t")[2] for line in listed.stdout.splitlines()] == [
        "城乡建设",
        "交通运输",
        "环境保护",
    ]

    seeded = runner.invoke(categories.categories_app, ["seed"])
    assert seeded.exit_code == 0 and "created" in seeded.stdout

    missing = runner.invoke(categories.categories_app, ["import", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0 and len(missing.stderr.strip().splitlines()) == 1


def test_excel_taxonomy_reads_like_the_csv(db_session, tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for line in LEVELS_CSV.splitlines():
        sheet.append([cell or None for cell in line.split(",")])
    path = tmp_path / "附件1_三级标签体系.xlsx"
    workbook.save(path)

    from_excel = categories.import_taxonomy(db_session, path=path)
    db_session.rollback()
    from_csv = categories.import_taxonomy(db_session, path=_write(tmp_path, LEVELS_CSV))
    assert from_excel.model_dump() == from_csv.model_dump()
    assert from_excel.created == 12 and [e.row for e in from_excel.rejected] == [8, 9, 10]


def test_cli_imports_an_excel_taxonomy(app_db, tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["一级分类", "二级分类", "三级分类"])
    workbook.active.append(["城乡建设", "住房保障", "保障房"])
    path = tmp_path / "taxonomy.xlsx"
    workbook.save(path)
    result = runner.invoke(categories.categories_app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "created 3" in result.stdout


def test_a_category_is_found_whatever_the_width_of_its_brackets(db_session, tmp_path):
    """A taxonomy names 交通运输（公交） with full-width brackets; a file, a form or the classifier (which learns every
    label in one form) may say 交通运输(公交): the same category."""
    categories.import_taxonomy(db_session, path=_write(tmp_path, "level1,level2\n交通运输（公交）,线路调整\n"))
    found = categories.find_category(db_session, name_or_path="交通运输(公交)")
    assert found is not None and found.name == "交通运输（公交）"
    assert categories.find_category(db_session, name_or_path="交通运输(公交)/线路调整").name == "线路调整"
    names = categories.find_categories(db_session, names=["交通运输(公交)", "交通运输（公交）"])
    assert names["交通运输(公交)"] == names["交通运输（公交）"] is not None
