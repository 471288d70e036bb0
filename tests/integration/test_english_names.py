"""English names of units and categories (``name_en``, migration 0054): the migration both ways on both backends,
and the imports that carry them — the taxonomy's (flat and level columns) and the divisions'."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from cityhub import localnames, migrate, refdata
from cityhub.db import make_engine, session_scope
from cityhub.org import service as org
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import categories
from cityhub.workorders.models import Category


def _write(tmp_path: Path, content: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_the_migration_adds_the_english_names_empty_and_takes_them_away_keeping_the_rows(empty_db_url: str) -> None:
    from alembic import command

    command.upgrade(migrate.alembic_config(empty_db_url), "0053_attachment_publication")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO units (code, name, tier, active, created_at) VALUES ('M-1', '白云区', "
                    "'district', true, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO categories (code, name, level, path, active) VALUES ('C01', '城乡建设', 1, "
                    "'城乡建设', true)"
                )
            )
        engine.dispose()
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            assert session.scalar(select(Unit.name_en).where(Unit.code == "M-1")) is None
            assert session.scalar(select(Category.name_en).where(Category.code == "C01")) is None
            session.execute(text("UPDATE units SET name_en = 'Baiyun District'"))
            session.commit()
            # The reference-version triggers still fire (a table copy would have dropped them).
            before = session.scalar(text("SELECT token FROM reference_versions WHERE name = 'units'"))
            session.execute(text("UPDATE units SET name_en = 'Baiyun'"))
            session.commit()
            assert session.scalar(text("SELECT token FROM reference_versions WHERE name = 'units'")) != before
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), "0053_attachment_publication")
        columns = {table: {c["name"] for c in inspect(engine).get_columns(table)} for table in ("units", "categories")}
        assert "name_en" not in columns["units"] and "name_en" not in columns["categories"]
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM units")).scalars().all() == ["白云区"]
            before = conn.execute(text("SELECT token FROM reference_versions WHERE name = 'units'")).scalar()
            conn.execute(text("UPDATE units SET name = '白云区 '"))
        with engine.begin() as conn:
            assert conn.execute(text("SELECT token FROM reference_versions WHERE name = 'units'")).scalar() != before
        engine.dispose()
        migrate.upgrade(empty_db_url)
    finally:
        engine.dispose()


def test_the_taxonomy_import_takes_english_names_from_level_columns_and_keeps_them_when_a_file_has_none(
    db_session: Session, tmp_path: Path
) -> None:
    refdata.clear()
    levels = "level1,level2,level1_en,level2_en\n城乡建设,住房保障,Urban-rural development,Housing security\n"
    levels += "城乡建设,安全生产,,Work safety\n"
    report = categories.import_taxonomy(db_session, path=_write(tmp_path, levels))
    assert report.created == 3 and not report.rejected
    english = {c.path: c.name_en for c in categories.list_categories(db_session)}
    assert english == {
        "城乡建设": "Urban-rural development",
        "城乡建设/住房保障": "Housing security",
        "城乡建设/安全生产": "Work safety",
    }
    # A file without English columns leaves them; one changing an English name counts the node as updated.
    again = categories.import_taxonomy(db_session, path=_write(tmp_path, "level1,level2\n城乡建设,住房保障\n"))
    assert again.unchanged == 2 and again.updated == 0
    changed = categories.import_taxonomy(
        db_session, path=_write(tmp_path, "level1,level1_en\n城乡建设,Urban and rural development\n")
    )
    assert changed.updated == 1
    flat = "code,name,parent_code,name_en\nC01,城乡建设,,\nC01.01,住房保障,C01,Housing\n"
    report = categories.import_taxonomy(db_session, path=_write(tmp_path, flat))
    english = {c.code: c.name_en for c in categories.list_categories(db_session)}
    assert english["C01"] is None and english["C01.01"] == "Housing"  # an empty cell of the column clears it
    too_long = categories.import_taxonomy(
        db_session, path=_write(tmp_path, "level1,level1_en\n交通运输," + "x" * 121 + "\n")
    )
    assert [(e.row, e.field) for e in too_long.rejected] == [(2, "level1_en")]


def test_the_divisions_import_takes_an_optional_english_name(db_session: Session, tmp_path: Path) -> None:
    table = "code,name,level,parent_code,name_en\n910001,测试区,district,,Ceshi District\n"
    table += "910001001,甲街道,street,910001,\n"
    report = org.import_divisions(db_session, path=_write(tmp_path, table))
    assert report.created == 2 and not report.rejected
    english = {u.code: u.name_en for u in db_session.scalars(select(Unit).where(Unit.code.like("910001%")))}
    assert english == {"910001": "Ceshi District", "910001001": None}
    # Without the column the English names stay; with it, a changed one updates the unit.
    plain = org.import_divisions(
        db_session, path=_write(tmp_path, "code,name,level,parent_code\n910001,测试区,district,\n")
    )
    assert plain.unchanged == 1
    assert db_session.scalar(select(Unit.name_en).where(Unit.code == "910001")) == "Ceshi District"
    changed = org.import_divisions(
        db_session,
        path=_write(tmp_path, "code,name,level,parent_code,name_en\n910001,测试区,district,,Test District\n"),
    )
    assert changed.updated == 1
    assert db_session.scalar(select(Unit.name_en).where(Unit.code == "910001")) == "Test District"


def test_the_bundled_taxonomy_and_the_demo_districts_departments_and_streets_come_with_english_names(
    db_session: Session,
) -> None:
    categories.seed_default_taxonomy(db_session)
    nodes = categories.list_categories(db_session)
    assert len(nodes) > 500 and [c.path for c in nodes if not c.name_en] == []
    english = {c.path: c.name_en for c in nodes}
    assert (
        english["城乡建设"] == "Urban-rural development" and english["环境保护/环境污染/噪音污染"] == "Noise pollution"
    )

    org.seed_baiyun(db_session, users=False)
    units = {u.code: u for u in db_session.scalars(select(Unit).where(Unit.code.like("440111%")))}
    assert units["440111-D01"].name_en == "Baiyun District Housing and Urban-Rural Development Bureau"
    assert units["440111"].name_en == "Baiyun District" and units["440111004"].name_en == "Jingtai Subdistrict"
    assert units["440111103"].name_en == "Renhe Town"
    departments = [u for u in units.values() if u.tier.value in ("department", "subcentre")]
    streets = [u for u in units.values() if u.tier.value == "street"]
    assert len(departments) == 24 and all(u.name_en for u in departments)
    assert len(streets) == 24 and all(u.name_en and u.name_en.endswith((" Subdistrict", " Town")) for u in streets)
    # The communities have none stored: an English page shows their names romanised (org.placenames).
    assert all(u.name_en is None for u in units.values() if u.tier.value == "community")
    english_names = localnames.build(db_session)
    assert english_names.unit("飞鹅新村社区居委会") == "Fei'exincun Community"
    assert english_names.unit("大源村委会") == "Dayuan Village" and english_names.unit("大源村") == "Dayuan Village"


def test_a_place_without_an_english_name_is_named_in_pinyin_and_an_administrators_english_name_wins(
    db_session: Session,
) -> None:
    """``localnames.build``: a street or community without ``name_en`` by its romanised name (its short name too),
    one with ``name_en`` by that even where it differs from the romanisation; a department without one stays
    Chinese; a name two units share, one named otherwise by its administrator, stays Chinese (which was meant is
    unknown). Nothing is written: ``name_en`` stays empty."""
    district = Unit(code="P-QU", name="测试区", tier=UnitTier.DISTRICT)
    db_session.add(district)
    db_session.flush()
    street = Unit(code="P-JT", name="景泰街道", short_name="景泰", tier=UnitTier.STREET, parent_id=district.id)
    named = Unit(code="P-SL", name="松柏岗社区居委会", tier=UnitTier.COMMUNITY, name_en="Songbaigang Neighbourhood")
    db_session.add_all(
        [
            street,
            named,
            Unit(code="P-CL", name="槎龙社区居委会", short_name="槎龙社区", tier=UnitTier.COMMUNITY),
            Unit(code="P-D1", name="区住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id),
            Unit(code="P-H1", name="华园社区居委会", tier=UnitTier.COMMUNITY),
            Unit(code="P-H2", name="华园社区居委会", tier=UnitTier.COMMUNITY, name_en="Huayuan Garden Community"),
        ]
    )
    db_session.flush()
    names = localnames.build(db_session)
    assert names.unit("测试区") == "Ceshi District"
    assert names.unit("景泰街道") == "Jingtai Subdistrict" and names.unit("景泰") == "Jingtai Subdistrict"
    assert names.unit("槎龙社区居委会") == "Chalong Community" and names.unit("槎龙社区") == "Chalong Community"
    assert names.unit("松柏岗社区居委会") == "Songbaigang Neighbourhood"
    assert names.unit("区住建局") == "区住建局"
    assert names.unit("华园社区居委会") == "华园社区居委会"
    assert db_session.scalar(select(Unit.name_en).where(Unit.code == "P-CL")) is None


def test_org_list_and_categories_list_add_the_english_names_behind_english_keeping_their_columns(
    app_db: str, cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    """The lists' tab-separated columns are a contract for scripts: unchanged without ``--english``; with it, two
    more at the end — the English name given (empty: none) and the name English pages show."""
    with session_scope() as s:
        district = Unit(
            code="L-QU", name="白云区", short_name="白云", tier=UnitTier.DISTRICT, name_en="Baiyun District"
        )
        s.add(district)
        s.flush()
        s.add_all(
            [
                Unit(
                    code="L-CL",
                    name="槎龙社区居委会",
                    short_name="槎龙社区",
                    tier=UnitTier.COMMUNITY,
                    parent_id=district.id,
                ),
                Unit(
                    code="L-D1", name="区住建局", short_name="区住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id
                ),
            ]
        )
        top = Category(code="C01", name="城乡建设", level=1, path="城乡建设", name_en="Urban-rural development")
        s.add(top)
        s.flush()
        s.add(Category(code="C01.01", name="住房保障", level=2, path="城乡建设/住房保障", parent_id=top.id))

    code, out, _ = cli_run("org", "list")
    assert code == 0
    assert [line.split("\t") for line in out.splitlines()] == [
        ["L-CL", "community", "槎龙社区居委会", "槎龙社区", "L-QU"],
        ["L-D1", "department", "区住建局", "区住建局", "L-QU"],
        ["L-QU", "district", "白云区", "白云", ""],
    ]
    code, out, _ = cli_run("org", "list", "--english")
    assert code == 0
    assert [line.split("\t") for line in out.splitlines()] == [
        ["L-CL", "community", "槎龙社区居委会", "槎龙社区", "L-QU", "", "Chalong Community"],
        ["L-D1", "department", "区住建局", "区住建局", "L-QU", "", "区住建局"],
        ["L-QU", "district", "白云区", "白云", "", "Baiyun District", "Baiyun District"],
    ]

    code, out, _ = cli_run("categories", "list")
    assert code == 0
    assert [line.split("\t") for line in out.splitlines()] == [
        ["C01", "1", "城乡建设"],
        ["C01.01", "2", "城乡建设/住房保障"],
    ]
    code, out, _ = cli_run("categories", "list", "--english")
    assert code == 0
    assert [line.split("\t") for line in out.splitlines()] == [
        ["C01", "1", "城乡建设", "Urban-rural development", "Urban-rural development"],
        ["C01.01", "2", "城乡建设/住房保障", "", "Urban-rural development/住房保障"],
    ]
