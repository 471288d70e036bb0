"""Division import, the Baiyun demo organisation, unit and user services, ``cityhub org`` (both backends)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cityhub.db import session_scope
from cityhub.errors import Conflict, NotFound, ValidationFailed
from cityhub.org import service
from cityhub.org.cli import app as org_app
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.org.schemas import UnitCreate, UnitUpdate, UserCreate

GUANGZHOU = Path("../shared/data/china_admin_divisions/guangzhou/guangzhou_divisions.csv")
SQUARE = [[113.2, 23.2], [113.3, 23.2], [113.3, 23.3], [113.2, 23.2]]

# Row numbers count the header as row 1. Children come before their parents on purpose.
BAD_CSV = """code,name,level,parent_code
900001001001,甲社区居委会,community,900001001
900001001,甲一街道,street,900001
900001,测试区,district,9000
900001002,乙镇,town,900001
900001002001,乙村委会,village,900001002
900001003001,丙社区居委会,community,900001003
900001004,,street,900001
900001005,丁省,province,900001
900001006,戊街道,street,900001
900001006,戊街道重复,street,900001
900001004001,己社区居委会,community,900001004
"""


def _write(tmp_path: Path, text: str, name: str = "divisions.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def _count(session, tier: UnitTier) -> int:
    return session.scalar(select(func.count()).select_from(Unit).where(Unit.tier == tier))


def test_import_keeps_good_rows_and_reports_bad_ones(db_session, tmp_path):
    report = service.import_divisions(db_session, path=_write(tmp_path, BAD_CSV, bom=True))

    rejected = {(e.row, e.field) for e in report.rejected}
    assert rejected == {(7, "parent_code"), (8, "name"), (9, "level"), (11, "code"), (12, "parent_code")}
    assert "province" in next(e.reason for e in report.rejected if e.row == 9)
    assert report.created == 6
    assert report.roots == ["900001"]  # its city 9000 is in neither the file nor the database
    district = service.get_unit_by_code(db_session, code="900001")
    street = service.get_unit_by_code(db_session, code="900001001")
    community = service.get_unit_by_code(db_session, code="900001001001")
    assert district.parent_id is None
    assert street.parent_id == district.id and street.short_name == "甲一"
    assert community.parent_id == street.id and community.short_name == "甲社区"
    assert service.get_unit_by_code(db_session, code="900001002001").short_name == "乙村"
    assert service.get_unit_by_code(db_session, code="900001002").tier == UnitTier.STREET
    assert service.get_unit_by_code(db_session, code="900001006").name == "戊街道"


def test_import_reads_an_excel_workbook_as_the_csv(db_session, tmp_path):
    """The same divisions as a workbook (codes typed as numbers, as Excel stores them): the same rows rejected by
    the same numbers, the same units created."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for line in BAD_CSV.strip().splitlines():
        sheet.append([int(v) if v.isdigit() else v for v in line.split(",")])
    path = tmp_path / "divisions.xlsx"
    workbook.save(path)
    report = service.import_divisions(db_session, path=path)
    assert {(e.row, e.field) for e in report.rejected} == {
        (7, "parent_code"),
        (8, "name"),
        (9, "level"),
        (11, "code"),
        (12, "parent_code"),
    }
    assert report.created == 6 and service.get_unit_by_code(db_session, code="900001001001") is not None


def test_reimport_is_idempotent_and_updates_names(db_session, tmp_path):
    path = _write(tmp_path, BAD_CSV)
    service.import_divisions(db_session, path=path)
    units_before = db_session.scalar(select(func.count()).select_from(Unit))

    again = service.import_divisions(db_session, path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)

    renamed = _write(tmp_path, BAD_CSV.replace("甲一街道", "甲新街道"), name="renamed.csv")
    third = service.import_divisions(db_session, path=renamed)
    assert (third.created, third.updated) == (0, 1)
    assert db_session.scalar(select(func.count()).select_from(Unit)) == units_before
    street = service.get_unit_by_code(db_session, code="900001001")
    assert (street.name, street.short_name) == ("甲新街道", "甲新")


def test_reimport_keeps_a_short_name_chosen_by_hand(db_session, tmp_path):
    path = _write(tmp_path, BAD_CSV)
    service.import_divisions(db_session, path=path)
    street = service.get_unit_by_code(db_session, code="900001001")
    service.update_unit(db_session, unit_id=street.id, data=UnitUpdate(short_name="甲街"))
    service.import_divisions(db_session, path=_write(tmp_path, BAD_CSV.replace("甲一街道", "甲新街道"), "r.csv"))
    assert street.short_name == "甲街"


def test_root_code_restricts_to_subtree(db_session, tmp_path):
    text = BAD_CSV + "900002,另一区,district,9000\n900002001,另一街道,street,900002\n"
    report = service.import_divisions(db_session, path=_write(tmp_path, text), root_code="900001002")
    assert report.created == 2
    assert report.outside_root > 0
    assert service.get_unit_by_code(db_session, code="900002") is None
    assert service.get_unit_by_code(db_session, code="900001002001") is not None
    with pytest.raises(ValidationFailed, match="root code"):
        service.import_divisions(db_session, path=_write(tmp_path, text, "b.csv"), root_code="123")


def test_import_under_an_existing_parent(db_session, tmp_path):
    service.import_divisions(db_session, path=_write(tmp_path, BAD_CSV))
    extra = (
        "code,name,level,parent_code\n900001009,新街道,street,900001\n900001009001,新社区居委会,community,900001009\n"
    )
    report = service.import_divisions(db_session, path=_write(tmp_path, extra, "extra.csv"))
    assert report.created == 2 and not report.rejected and not report.roots
    district = service.get_unit_by_code(db_session, code="900001")
    assert service.get_unit_by_code(db_session, code="900001009").parent_id == district.id


def test_cycle_is_rejected(db_session, tmp_path):
    text = "code,name,level,parent_code\n1,甲街道,street,2\n2,乙街道,street,1\n3,丙区,district,\n"
    report = service.import_divisions(db_session, path=_write(tmp_path, text))
    assert {(e.row, e.field) for e in report.rejected} == {(2, "parent_code"), (3, "parent_code")}
    assert report.created == 1


def test_wrong_headers_and_missing_file(db_session, tmp_path):
    with pytest.raises(ValidationFailed, match="parent_code"):
        service.import_divisions(db_session, path=_write(tmp_path, "code,name,level\n1,甲,district\n"))
    with pytest.raises(NotFound):
        service.import_divisions(db_session, path=tmp_path / "nope.csv")


def test_gbk_file_is_read(db_session, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("code,name,level,parent_code\n900009,广东测试区,district,\n".encode("gbk"))
    service.import_divisions(db_session, path=path)
    assert service.get_unit_by_code(db_session, code="900009").name == "广东测试区"


@pytest.fixture
def guangzhou() -> Path:
    if not GUANGZHOU.exists():
        pytest.skip("shared Guangzhou divisions data not available")
    return GUANGZHOU


def test_real_guangzhou_file_baiyun_subtree(db_session, guangzhou):
    report = service.import_divisions(db_session, path=guangzhou, root_code="440111")
    assert not report.rejected
    assert report.by_tier == {"district": 1, "street": 24, "community": 404}
    baiyun = service.get_unit_by_code(db_session, code="440111")
    streets = service.list_units(db_session, tier=UnitTier.STREET, parent_id=baiyun.id)
    assert len(streets) == 24
    assert {"三元里", "太和", "钟落潭", "大源"} <= {s.short_name for s in streets}
    assert len(service.unit_subtree_ids(db_session, unit_id=baiyun.id)) == 1 + 24 + 404


def test_real_guangzhou_file_whole_city(db_session, guangzhou):
    report = service.import_divisions(db_session, path=guangzhou)
    assert not report.rejected
    assert len(report.roots) == report.by_tier["district"]  # the file lists no city row
    assert report.created == report.rows
    again = service.import_divisions(db_session, path=guangzhou)
    assert again.unchanged == report.created and again.created == again.updated == 0


def test_seed_baiyun_is_idempotent(db_session):
    service.seed_baiyun(db_session)
    units = db_session.scalar(select(func.count()).select_from(Unit))
    users = db_session.scalar(select(func.count()).select_from(User))
    service.seed_baiyun(db_session)
    assert db_session.scalar(select(func.count()).select_from(Unit)) == units
    assert db_session.scalar(select(func.count()).select_from(User)) == users

    district = service.get_unit_by_code(db_session, code="440111")
    assert _count(db_session, UnitTier.STREET) == 24
    assert _count(db_session, UnitTier.COMMUNITY) == 404
    assert len(service.unit_subtree_ids(db_session, unit_id=district.id)) == units
    departments = service.list_units(db_session, tier=UnitTier.DEPARTMENT)
    assert len(departments) >= 15
    assert all(d.duties and d.contacts and d.code.startswith("440111-") for d in departments)
    assert service.list_units(db_session, tier=UnitTier.SUBCENTRE)
    assert set(Counter(u.role for u in service.list_users(db_session))) == set(Role)
    for username in ("operator", "dispatcher", "handler", "supervisor", "leader", "admin", "citizen"):
        assert service.get_user_by_username(db_session, username=username) is not None
    # every department and street can act on the orders it receives
    handler_units = {u.unit_id for u in service.list_users(db_session, role=Role.HANDLER)}
    assert {d.id for d in departments} <= handler_units
    assert {u.unit.tier for u in service.list_users(db_session, role=Role.HANDLER)} >= {
        UnitTier.DEPARTMENT,
        UnitTier.STREET,
        UnitTier.COMMUNITY,
    }
    assert all(u.password_hash is None for u in service.list_users(db_session))


def test_unit_crud_and_subtree(db_session):
    district = service.create_unit(db_session, data=UnitCreate(code="T1", name="测试区", tier=UnitTier.DISTRICT))
    street = service.create_unit(
        db_session,
        data=UnitCreate(code="T1-01", name="测试街道", tier=UnitTier.STREET, parent_id=district.id),
    )
    community = service.create_unit(
        db_session,
        data=UnitCreate(code="T1-01-01", name="测试社区居委会", tier=UnitTier.COMMUNITY, parent_id=street.id),
    )
    assert community.short_name == "测试社区"
    assert service.unit_subtree_ids(db_session, unit_id=district.id) == {district.id, street.id, community.id}
    assert service.unit_subtree_ids(db_session, unit_id=community.id) == {community.id}
    assert [u.code for u in service.list_units(db_session, q="测试街")] == ["T1-01"]

    with pytest.raises(Conflict):
        service.create_unit(db_session, data=UnitCreate(code="T1", name="重复", tier=UnitTier.DISTRICT))
    with pytest.raises(ValidationFailed, match="under itself"):
        service.update_unit(db_session, unit_id=district.id, data=UnitUpdate(parent_id=community.id))
    with pytest.raises(ValidationFailed, match="Polygon"):
        service.update_unit(db_session, unit_id=street.id, data=UnitUpdate.model_construct(boundary={"type": "Point"}))

    boundary = {"type": "Polygon", "coordinates": [SQUARE]}
    updated = service.update_unit(db_session, unit_id=street.id, data=UnitUpdate(boundary=boundary, name="新街道"))
    db_session.expire_all()
    again = service.get_unit(db_session, unit_id=street.id)
    assert again.boundary == boundary and updated.name == "新街道"
    with pytest.raises(NotFound):
        service.unit_subtree_ids(db_session, unit_id=10**9)


def test_user_rules(db_session):
    unit = service.create_unit(db_session, data=UnitCreate(code="T2", name="测试局", tier=UnitTier.DEPARTMENT))
    user = service.create_user(
        db_session, data=UserCreate(username="h1", full_name="甲", role=Role.HANDLER, unit_id=unit.id)
    )
    assert service.get_user_by_username(db_session, username="h1").id == user.id
    with pytest.raises(Conflict):
        service.create_user(
            db_session, data=UserCreate(username="h1", full_name="乙", role=Role.HANDLER, unit_id=unit.id)
        )
    with pytest.raises(ValidationFailed, match="needs a unit"):
        service.create_user(db_session, data=UserCreate(username="d1", full_name="丙", role=Role.DISPATCHER))
    with pytest.raises(ValidationFailed, match="citizen"):
        service.create_user(
            db_session, data=UserCreate(username="c1", full_name="丁", role=Role.CITIZEN, unit_id=unit.id)
        )
    assert [u.username for u in service.list_users(db_session, role=Role.HANDLER, unit_id=unit.id)] == ["h1"]


runner = CliRunner()


def test_cli_import_list_and_seed(app_db, tmp_path):
    path = _write(tmp_path, BAD_CSV)
    result = runner.invoke(org_app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "created 6" in result.stdout
    problems = result.stderr.strip().splitlines()
    assert len(problems) == 5 and problems[0].startswith(f"rejected: {path.name}: row 7: parent_code: ")

    listed = runner.invoke(org_app, ["list", "--parent", "900001", "--tier", "street"])
    assert listed.exit_code == 0
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        "900001001",
        "900001002",
        "900001006",
    ]

    users_before = _user_count()
    seeded = runner.invoke(org_app, ["seed-baiyun", "--no-demo-users"])
    assert seeded.exit_code == 0 and "street" in seeded.stdout
    assert _user_count() == users_before  # the organisation only
    seeded = runner.invoke(org_app, ["seed-baiyun", "--demo-users"])
    assert seeded.exit_code == 0 and _user_count() > users_before


def _user_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def test_cli_seed_baiyun_creates_demo_users_only_in_the_demo_environment(app_db, monkeypatch):
    from cityhub.config import get_settings

    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "development")
    get_settings.cache_clear()
    try:
        assert runner.invoke(org_app, ["seed-baiyun"]).exit_code == 0
        assert _user_count() == 0
        monkeypatch.setenv("CITYHUB_ENVIRONMENT", "demo")
        get_settings.cache_clear()
        assert runner.invoke(org_app, ["seed-baiyun"]).exit_code == 0
        assert _user_count() > 0
    finally:
        get_settings.cache_clear()


def test_cli_import_failures(app_db, tmp_path):
    missing = runner.invoke(org_app, ["import", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0
    assert len(missing.stderr.strip().splitlines()) == 1 and "not found" in missing.stderr

    headers = runner.invoke(org_app, ["import", str(_write(tmp_path, "a,b\n1,2\n"))])
    assert headers.exit_code != 0 and "wrong headers" in headers.stderr

    twice = _write(tmp_path, "code,name,level,parent_code,name\n440111,白云区,district,,云区\n", "twice.csv")
    repeated = runner.invoke(org_app, ["import", str(twice)])
    assert repeated.exit_code != 0 and len(repeated.stderr.strip().splitlines()) == 1
    assert "columns 2 and 5 are both named 'name'" in repeated.stderr

    all_bad = runner.invoke(org_app, ["import", str(_write(tmp_path, "code,name,level,parent_code\n1,,x,\n", "b.csv"))])
    assert all_bad.exit_code != 0
