"""Bulk import end to end on a migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityhub.db import session_scope
from cityhub.intake.bulk import write_orders
from cityhub.intake.importer import ImportReport, UnreadableFile, import_orders
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders.lifecycle import AssistStatus
from cityhub.workorders.models import Category, Order, OrderAssist, OrderEvent

DATA = Path("../shared/data/teddycup2020_c")

HEADER = [
    "留言编号",
    "留言用户",
    "留言主题",
    "留言时间",
    "留言详情",
    "点赞数",
    "一级分类",
    "二级分类",
    "答复意见",
    "答复时间",
    "lat",
    "lng",
    "诉求类型",
    "来源网站",
]
GOOD_ROWS = [
    [
        "101",
        "U1",
        "噪音扰民",
        "2019/1/8 10:20:30",
        "夜间施工噪音很大",
        "3",
        "城乡建设",
        "住房保障",
        "",
        "",
        "",
        "",
        "投诉",
        "问政",
    ],
    [
        "102",
        "U2",
        "",
        "2019-01-09 08:00:00",
        "  公交站台破损，希望尽快修复，谢谢有关部门的关心和支持  ",
        "",
        "交通运输",
        "",
        "已安排维修。",
        "2019/1/10 9:00:00",
        "28.2",
        "112.9",
        "",
        "",
    ],
    [
        "103",
        "U3",
        "咨询社保",
        "2019-01-10",
        "社保怎么转移",
        "0",
        "不存在的分类",
        "",
        "",
        "",
        "",
        "",
        "咨询",
        "",
    ],
]
BAD_ROWS = [
    ["201", "U4", "坏日期", "2019/2/30 10:00:00", "内容", "", "", "", "", "", "", "", "", ""],
    ["202", "U5", "坏纬度", "2019/2/1 10:00:00", "内容", "", "", "", "", "", "95", "112", "", ""],
    ["203", "U6", "", "2019/2/1 10:00:00", "   ", "", "", "", "", "", "", "", "", ""],
    ["204", "U7", "坏类型", "2019/2/1 10:00:00", "内容", "", "", "", "", "", "", "", "抱怨", ""],
]


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", header: list[str] = HEADER) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def seed_categories(session: Session) -> dict[str, int]:
    ids: dict[str, int] = {}
    for code, path in [("C1", "城乡建设"), ("C2", "城乡建设/住房保障"), ("C3", "交通运输")]:
        parent = path.rsplit("/", 1)[0] if "/" in path else None
        cat = Category(
            code=code,
            name=path.rsplit("/", 1)[-1],
            level=path.count("/") + 1,
            parent_id=ids.get(parent) if parent else None,
            path=path,
        )
        session.add(cat)
        session.flush()
        ids[path] = cat.id
    session.commit()
    return ids


def count(session: Session, model: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_round_trip_with_bad_rows(db_session: Session, tmp_path: Path) -> None:
    cats = seed_categories(db_session)
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS + BAD_ROWS)

    report = import_orders(db_session, path=path)

    assert (report.read, report.imported, report.skipped, report.rejected) == (7, 3, 0, 4)
    rejected = {(i.row, i.field) for i in report.issues if i.level == "error"}
    # Header is row 1, so the n-th data row is row n + 1.
    assert rejected == {(5, "created_at"), (6, "lat"), (7, "content"), (8, "appeal_type")}
    warnings = [i for i in report.issues if i.level == "warning"]
    assert [(w.row, w.field) for w in warnings] == [(4, "category")]

    orders = {o.external_id: o for o in db_session.execute(select(Order)).scalars()}
    assert set(orders) == {"101", "102", "103"}
    first, second, third = orders["101"], orders["102"], orders["103"]
    assert first.created_at == datetime(2019, 1, 8, 2, 20, 30, tzinfo=UTC)  # 10:20:30 in Shanghai
    assert first.category_id == cats["城乡建设/住房保障"]
    assert first.appeal_type.value == "complaint"
    assert first.likes == 3
    assert first.attributes == {"来源网站": "问政"}
    assert first.channel.value == "import"
    assert first.number.startswith("BY20190108-")
    assert second.title == "公交站台破损，希望尽快修复，谢谢有关部门的关心和支持"[:30]
    assert second.content == "公交站台破损，希望尽快修复，谢谢有关部门的关心和支持"
    assert second.category_id == cats["交通运输"]
    assert (second.lat, second.lng) == (28.2, 112.9)
    assert second.appeal_type.value == "consultation"  # absent → the documented default
    assert second.state.value == "replied"
    assert second.replied_at == datetime(2019, 1, 10, 1, 0, tzinfo=UTC)
    assert third.category_id is None
    assert third.state.value == "received"
    # Imported orders are in the full-text search at once.
    from cityhub.workorders.schemas import OrderFilter
    from cityhub.workorders.service import search_order_rows

    found, _, _ = search_order_rows(db_session, filters=OrderFilter(q="公交站台 修复"), columns=["id"])
    assert [r["id"] for r in found] == [second.id]

    trail = [
        (e.action, e.from_state, e.to_state, e.actor_name, e.at)
        for e in db_session.execute(
            select(OrderEvent).where(OrderEvent.order_id == second.id).order_by(OrderEvent.id)
        ).scalars()
    ]
    assert trail == [
        ("create", None, "received", "import", second.created_at),
        ("reply", "received", "replied", "import", second.replied_at),
    ]
    assert count(db_session, OrderEvent) == 4  # every order has its trail


def test_reimport_adds_nothing(db_session: Session, tmp_path: Path) -> None:
    no_ids = [row[1:] for row in GOOD_ROWS]  # without an id column the rows get content hashes
    path = write_csv(tmp_path / "orders.csv", no_ids, header=HEADER[1:])
    first = import_orders(db_session, path=path)
    again = import_orders(db_session, path=path)
    assert first.imported == 3
    assert (again.imported, again.skipped) == (0, 3)
    assert count(db_session, Order) == 3
    assert count(db_session, OrderEvent) == 4


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030"])
def test_chinese_csv_encodings(db_session: Session, tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS, encoding=encoding)
    report = import_orders(db_session, path=path)
    assert report.imported == 3
    titles = set(db_session.execute(select(Order.title)).scalars())
    assert "噪音扰民" in titles and "咨询社保" in titles


def test_unreadable_file_is_one_error(db_session: Session, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("title,content\ncafé,crème brûlée à volonté\n".encode("cp1252"))
    with pytest.raises(UnreadableFile):
        import_orders(db_session, path=path)
    with pytest.raises(UnreadableFile):
        import_orders(db_session, path=tmp_path / "missing.csv")
    assert count(db_session, Order) == 0


def test_excel_cells_of_every_type(db_session: Session, tmp_path: Path) -> None:
    from openpyxl import Workbook

    from cityhub.web.i18n import Translator
    from cityhub.web.machine_text import import_issue

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["留言编号", "留言主题", "留言时间", "留言详情", "点赞数", "lat", "lng"])
    sheet.append([301, "表格一", datetime(2019, 3, 1, 9, 30), "详情一", 5, 28.1, 112.5])
    sheet.append([302, "表格二", "2019/3/2 10:00:00", "详情二", None, None, None])
    sheet.append([303, "表格三", "not a date", "详情三", None, None, None])
    path = tmp_path / "orders.xlsx"
    workbook.save(path)

    report = import_orders(db_session, path=path)

    assert (report.imported, report.rejected) == (2, 1)
    assert [(i.row, i.field) for i in report.issues] == [(4, "created_at")]
    order = db_session.execute(select(Order).where(Order.external_id == "301")).scalar_one()
    assert order.created_at == datetime(2019, 3, 1, 1, 30, tzinfo=UTC)
    assert (order.likes, order.lat, order.lng) == (5, 28.1, 112.5)
    sheet.title = "信箱"
    workbook.save(path)
    with pytest.raises(UnreadableFile, match=r"^orders\.xlsx: no sheet named '来信' \(sheets: 信箱\)$") as refused:
        import_orders(db_session, path=path, sheet="来信")
    said = import_issue(Translator("zh-CN"), refused.value.message)
    assert said == "orders.xlsx：没有名为“来信”的工作表（现有：信箱）"
    assert import_orders(db_session, path=path, sheet="信箱").skipped == 2


def test_a_count_beyond_the_column_rejects_its_row_only(db_session: Session, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "留言编号,留言主题,留言时间,留言详情,点赞数,反对数\n"
        "401,点赞太多,2019/3/1 9:30:00,详情一,3000000000,0\n"
        "402,反对太多,2019/3/1 9:31:00,详情二,0,99999999999999999999\n"
        "403,正常,2019/3/1 9:32:00,详情三,2147483647,1\n",
        encoding="utf-8",
    )
    report = import_orders(db_session, path=path)
    assert (report.imported, report.rejected) == (1, 2)
    assert [(i.row, i.field) for i in report.issues] == [(2, "likes"), (3, "opposes")]
    assert report.issues[0].message == "too large: '3000000000' (at most 2147483647)"
    order = db_session.execute(select(Order).where(Order.external_id == "403")).scalar_one()
    assert (order.likes, order.opposes) == (2147483647, 1)


class Killed(Exception):
    pass


def _import_killed_after_two_batches(db_session, path) -> None:
    """Import ``path`` in batches of 5, the process killed after the second batch's commit."""

    def die_after_two(report: ImportReport) -> None:
        if report.batches == 2:
            raise Killed

    with pytest.raises(Killed):
        import_orders(db_session, path=path, batch_size=5, on_batch=die_after_two)
    db_session.rollback()


def test_a_run_killed_midway_is_completed_by_rerunning(db_session: Session, tmp_path: Path) -> None:
    base = datetime(2020, 5, 1, 8, 0)
    rows = [
        [f"k{i}", f"U{i}", f"主题{i}", (base + timedelta(hours=i)).strftime("%Y/%m/%d %H:%M:%S"), f"内容{i}"]
        for i in range(23)
    ]
    path = write_csv(tmp_path / "orders.csv", rows, header=HEADER[:5])
    _import_killed_after_two_batches(db_session, path)
    assert count(db_session, Order) == 10  # two committed batches survive the crash

    report = import_orders(db_session, path=path, batch_size=5)
    assert (report.imported, report.skipped) == (13, 10)
    ext_ids = db_session.execute(select(Order.external_id)).scalars().all()
    assert sorted(ext_ids) == sorted(f"k{i}" for i in range(23))
    numbers = db_session.execute(select(Order.number)).scalars().all()
    assert len(set(numbers)) == 23
    assert count(db_session, OrderEvent) == 23


def test_write_orders_skips_known_and_repeated_ids_and_returns_ids_in_order(db_session: Session) -> None:
    unit = Unit(code="U-1", name="住建局", tier=UnitTier.DEPARTMENT)
    db_session.add(unit)
    db_session.commit()
    at = datetime(2021, 6, 1, 1, 0, tzinfo=UTC)

    def rec(ext: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "external_id": ext,
            "title": f"t{ext}",
            "content": "c",
            "appeal_type": "complaint",
            "created_at": at,
            **extra,
        }

    first = write_orders(db_session, [rec("a"), rec("b")])
    db_session.commit()
    result = write_orders(
        db_session,
        [
            rec("a"),
            rec("c", assists=[{"unit_id": unit.id, "status": AssistStatus.DISPATCHED}]),
            rec("c"),
            rec(None),
            rec(None),
            rec(
                "d",
                channel="hotline",
                events=[{"action": "create", "to_state": "received", "actor_name": "张三"}],
            ),
        ],
        prefix="TS",
    )
    db_session.commit()

    assert first.inserted == 2
    assert result.inserted == 4
    assert result.skipped_external_ids == ["a", "c"]
    got = [db_session.execute(select(Order.external_id, Order.number).where(Order.id == i)).one() for i in result.ids]
    assert [g.external_id for g in got] == ["c", None, None, "d"]
    assert all(g.number.startswith("TS20210601-") for g in got)
    assert len({g.number for g in got}) == 4
    assists = db_session.execute(select(OrderAssist)).scalars().all()
    assert [(a.order_id, a.unit_id) for a in assists] == [(result.ids[0], unit.id)]
    custom = db_session.execute(select(OrderEvent).where(OrderEvent.order_id == result.ids[3])).scalar_one()
    assert (custom.actor_name, custom.at) == ("张三", at)
    default = db_session.execute(select(OrderEvent).where(OrderEvent.order_id == result.ids[1])).scalar_one()
    assert (default.action, default.actor_name, default.payload["number"]) == (
        "create",
        "import",
        got[1].number,
    )


def test_write_orders_refuses_bad_values(db_session: Session) -> None:
    from cityhub.errors import ValidationFailed

    good = {"title": "t", "content": "c", "appeal_type": "complaint", "created_at": datetime.now(UTC)}
    with pytest.raises(ValidationFailed):
        write_orders(db_session, [{**good, "appeal_type": "grumble"}])
    with pytest.raises(ValidationFailed):
        write_orders(db_session, [{**good, "no_such_column": 1}])


def test_warnings_on_every_row_never_hide_a_rejected_row(db_session: Session, tmp_path: Path) -> None:
    """A file without times warns on every row; the report still keeps every rejected row (up to its limit), a
    bounded number of warnings, and all warnings counted by kind with their first row as the example."""
    from cityhub.intake import importer

    rows = [[f"w{i}", "", "", "", f"第{i}号路灯不亮", *[""] * 9] for i in range(1, 1301)]
    for i in (1200, 1250):
        rows[i - 1][10] = "28.2"  # lat without lng: rejected
    path = write_csv(tmp_path / "no_times.csv", rows)

    report = import_orders(db_session, path=path, batch_size=500)

    assert (report.imported, report.rejected, report.warnings) == (1298, 2, 1298)  # a rejected row warns of nothing
    errors = [(i.row, i.field) for i in report.issues if i.level == "error"]
    assert errors == [(1201, "lng"), (1251, "lng")]  # the header is row 1
    kept = [i for i in report.issues if i.level == "warning"]
    assert len(kept) == importer.MAX_KEPT_WARNINGS and kept[0].row == 2
    [(kind, count)] = report.warning_counts.items()
    assert count == 1298 and report.warning_examples[kind].row == 2
    assert [i.row for i in report.issues] == sorted(i.row for i in report.issues)


def test_cli_summary_errors_file_and_exit_codes(app_db: str, tmp_path: Path) -> None:
    from cityhub.cli import _mount, app

    _mount()
    runner = CliRunner()
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS + BAD_ROWS)
    errors = tmp_path / "errors.csv"
    errors.write_text("an older report, readable by all\n")
    errors.chmod(0o644)
    result = runner.invoke(app, ["import", "orders", str(path), "--json", "--errors", str(errors)])
    assert result.exit_code == 0, result.output
    assert errors.stat().st_mode & 0o777 == 0o600  # its rows hold phone numbers as typed: private, as exports are
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["read"], summary["imported"], summary["rejected"]) == (7, 3, 4)
    with errors.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["row"], r["field"]) for r in rows if r["level"] == "error"} == {
        ("5", "created_at"),
        ("6", "lat"),
        ("7", "content"),
        ("8", "appeal_type"),
    }

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00\x01garbage")
    result = runner.invoke(app, ["import", "orders", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("relative", "replied"),
    [
        ("csv/f3_hot_topic_messages_4326.csv", False),
        ("csv/f4_messages_with_replies_2816.csv", True),
        ("dev/messages_labeled_raw.csv", False),
        ("raw/附件4_留言与答复_full2816.xlsx", True),
    ],
)
def test_real_files(db_session: Session, db_backend: str, relative: str, replied: bool) -> None:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not available")
    if db_backend != "sqlite":
        # The other tests cover PostgreSQL; these files span ~1,300 days, one number block each (slow there).
        pytest.skip("real files are imported on SQLite only")
    report = import_orders(db_session, path=path)
    assert report.rejected == 0
    assert report.imported + report.skipped == report.read > 0
    assert count(db_session, Order) == report.imported
    states = set(db_session.execute(select(Order.state)).scalars())
    assert {s.value for s in states} == ({"replied"} if replied else {"received"})


def _stored(session: Session, order_id: int) -> dict[str, Any]:
    """The row exactly as the database holds it (no ORM type processing), without per-order identifiers (nor the
    number of the write that stored it, cityhub.workorders.changes)."""
    from sqlalchemy import text

    row = session.execute(text("SELECT * FROM orders WHERE id = :id"), {"id": order_id}).mappings().one()
    return {k: v for k, v in row.items() if k not in ("id", "number", "external_id", "changed_xid")}


def test_write_orders_stores_exactly_what_the_orm_stores(db_session: Session) -> None:
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    values: dict[str, Any] = {
        "channel": "hotline",
        "appeal_type": "complaint",
        "urgency": "urgent",
        "state": "replied",
        "title": "噪音扰民",
        "content": "夜间施工噪音很大",
        "citizen_name": "张三",
        "lat": 28.25,
        "lng": 112.875,
        "created_at": datetime(2019, 1, 8, 10, 20, 30, 123456, tzinfo=shanghai),
        "updated_at": datetime(2019, 1, 8, 2, 20, 30, tzinfo=UTC),
        "replied_at": datetime(2019, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        "reply_text": "已处理",
        "instant_answered": True,
        "satisfied": False,
        "likes": 7,
        "attributes": {"来源网站": "问政", "n": 1},
        "sla_remaining": {"due": 3600},
    }
    result = write_orders(db_session, [{**values, "external_id": "fast"}])
    orm_values = {**values, "channel": "hotline", "external_id": "orm", "number": "ORM-1"}
    from cityhub.workorders.lifecycle import State
    from cityhub.workorders.models import AppealType, Channel, Urgency

    orm_values.update(
        channel=Channel.HOTLINE, appeal_type=AppealType.COMPLAINT, urgency=Urgency.URGENT, state=State.REPLIED
    )
    orm_order = Order(**orm_values)
    db_session.add(orm_order)
    db_session.commit()

    assert _stored(db_session, result.ids[0]) == _stored(db_session, orm_order.id)
    db_session.expire_all()
    fast = db_session.get(Order, result.ids[0])
    assert fast is not None
    assert fast.created_at == values["created_at"] and fast.created_at.tzinfo is not None
    assert fast.replied_at == values["replied_at"]
    assert (fast.channel.value, fast.state.value, fast.urgency.value) == ("hotline", "replied", "urgent")
    assert fast.attributes == values["attributes"] and fast.instant_answered is True and fast.satisfied is False
    event = db_session.execute(select(OrderEvent).where(OrderEvent.order_id == fast.id)).scalar_one()
    assert (event.at, event.to_state, event.payload) == (
        values["created_at"],
        "replied",
        {"channel": "hotline", "number": fast.number},
    )


def test_write_orders_refuses_naive_times_and_missing_fields(db_session: Session) -> None:
    from cityhub.errors import ValidationFailed

    good = {"title": "t", "content": "c", "appeal_type": "complaint", "created_at": datetime.now(UTC)}
    with pytest.raises(ValidationFailed):
        write_orders(db_session, [{k: v for k, v in good.items() if k != "appeal_type"}])
    with pytest.raises(ValidationFailed):
        write_orders(db_session, [{**good, "events": [{"action": "create", "to_state": "received", "bogus": 1}]}])
    with pytest.raises(ValidationFailed):
        write_orders(db_session, [{**good, "created_at": datetime(2020, 1, 1)}])
    with pytest.raises(ValidationFailed):
        write_orders(db_session, [{**good, "replied_at": datetime(2020, 1, 1)}])
    db_session.rollback()
    assert count(db_session, Order) == 0


def test_import_restores_the_connection_settings(db_session: Session, db_backend: str, tmp_path: Path) -> None:
    if db_backend != "sqlite":
        pytest.skip("the bulk settings are SQLite pragmas")
    from sqlalchemy import text

    def settings() -> tuple[int, int]:
        conn = db_session.connection()
        pair = (
            conn.execute(text("PRAGMA cache_size")).scalar_one(),
            conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one(),
        )
        db_session.commit()
        return pair

    before = settings()
    import_orders(db_session, path=write_csv(tmp_path / "orders.csv", GOOD_ROWS))
    assert count(db_session, Order) == 3
    assert settings() == before


def test_street_and_community_columns_place_the_rows_by_code_or_name(db_session: Session, tmp_path: Path) -> None:
    s = db_session
    district = Unit(code="IM-QU", name="青禾区", tier=UnitTier.DISTRICT)
    s.add(district)
    s.flush()
    street = Unit(code="IM-JD", name="稻香街道", tier=UnitTier.STREET, parent_id=district.id)
    town = Unit(code="IM-Z", name="麦田镇", tier=UnitTier.STREET, parent_id=district.id)
    s.add_all([street, town])
    s.flush()
    community = Unit(code="IM-SQ", name="桂花社区居委会", tier=UnitTier.COMMUNITY, parent_id=street.id)
    village = Unit(code="IM-C", name="大源村委会", tier=UnitTier.COMMUNITY, parent_id=town.id)
    s.add_all([community, village])
    s.commit()
    header = ["编号", "留言详情", "留言时间", "所属街道", "所属社区"]
    rows = [
        ["p1", "路灯不亮", "2024-05-01 08:00", "IM-JD", ""],  # a code
        ["p2", "井盖松动", "2024-05-01 09:00", "稻香街", "桂花社区"],  # short names
        ["p3", "垃圾堆积", "2024-05-01 10:00", "", "大源村"],  # a community alone brings its street
        ["p4", "噪音扰民", "2024-05-01 11:00", "不存在街道", ""],  # unknown: a warning, the text kept
        ["p5", "占道经营", "2024-05-01 12:00", "", ""],  # nothing named: left to the placing job
    ]
    report = import_orders(s, path=write_csv(tmp_path / "placed.csv", rows, header=header))
    assert (report.imported, report.rejected, report.warnings) == (5, 0, 1)
    [warning] = report.issues
    assert (warning.row, warning.field, warning.level) == (5, "street", "warning")
    assert "unknown place '不存在街道'" in warning.message

    got = {o.external_id: o for o in s.scalars(select(Order))}
    assert (got["p1"].street_id, got["p1"].community_id, got["p1"].place_source) == (street.id, None, "order")
    assert (got["p2"].street_id, got["p2"].community_id) == (street.id, community.id)
    assert (got["p3"].street_id, got["p3"].community_id) == (town.id, village.id)
    assert (got["p4"].street_id, got["p4"].place_source, got["p4"].attributes) == (None, None, {"street": "不存在街道"})
    assert (got["p5"].street_id, got["p5"].place_source) == (None, None)


def test_an_id_already_holding_another_message_is_a_rejected_row(db_session: Session, tmp_path: Path) -> None:
    header = ["id", "title", "content", "created_at"]
    first = write_csv(
        tmp_path / "first.csv",
        [
            ["271446", "K市楚旺农牧发展有限公司拖欠工资", "拖欠工资三个月", "2019-01-08 10:00:00"],
            ["271447", "路灯不亮", "小区路灯坏了", "2019-01-08 11:00:00"],
        ],
        header=header,
    )
    assert import_orders(db_session, path=first).imported == 2
    second = write_csv(
        tmp_path / "second.csv",
        [
            # the same message again, its whitespace (and an Excel-escaped line break) aside: already present
            ["271447", " 路灯  不亮", "小区路灯_x000D_\n坏了 ", "2019-01-08 11:00:00"],
            # another message under a stored id
            ["271446", "A5区M5市百货城附属楼14室小孩想上学", "孩子上学问题", "2019-02-01 09:00:00"],
            ["300", "新留言", "内容一", "2019-02-02 09:00:00"],
            # the same id twice in the file: the same message skipped, another one rejected
            ["300", "新留言", "内容一", "2019-02-02 09:00:00"],
            ["300", "另一条留言", "内容二", "2019-02-03 09:00:00"],
        ],
        header=header,
    )
    errors = io.StringIO()

    report = import_orders(db_session, path=second, issues_to=errors)

    assert (report.read, report.imported, report.skipped, report.rejected) == (5, 1, 2, 2)
    stored = db_session.execute(select(Order.number).where(Order.external_id == "271446")).scalar_one()
    assert [(i.row, i.field, i.message) for i in report.issues] == [
        (3, "external_id", f"id 271446 already holds a different message (order {stored})"),
        (6, "external_id", "id 300 already holds a different message (row 4)"),
    ]
    written = list(csv.reader(io.StringIO(errors.getvalue())))
    assert [r[:3] for r in written[1:]] == [["3", "error", "external_id"], ["6", "error", "external_id"]]
    titles = dict(db_session.execute(select(Order.external_id, Order.title)).all())
    assert titles == {"271446": "K市楚旺农牧发展有限公司拖欠工资", "271447": "路灯不亮", "300": "新留言"}


def test_a_conflict_in_a_later_batch_names_the_row_and_drops_its_warnings(db_session: Session, tmp_path: Path) -> None:
    header = ["id", "title", "content", "created_at", "分类"]
    rows = [
        ["a1", "主题一", "内容一", "2019-01-08 10:00:00", ""],
        ["a2", "主题二", "内容二", "2019-01-08 10:00:00", ""],
        ["a1", "主题三", "内容三", "2019-01-08 10:00:00", "没有这个分类"],
        ["a3", "主题四", "内容四", "2019-01-08 10:00:00", "没有这个分类"],
    ]
    report = import_orders(db_session, path=write_csv(tmp_path / "b.csv", rows, header=header), batch_size=2)
    assert (report.imported, report.rejected, report.warnings) == (3, 1, 1)
    assert [(i.row, i.level, i.field) for i in report.issues] == [
        (4, "error", "external_id"),
        (5, "warning", "category"),
    ]


def test_rows_the_import_would_alter_are_rejected_by_field(db_session: Session, tmp_path: Path) -> None:
    header = ["id", "title", "content", "created_at", "reply_text", "replied_at"]
    soon = (datetime.now(UTC) + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=8)))
    rows = [
        ["t1", "长" * 400, "内容", "2019-01-08 10:00:00", "", ""],
        ["t2", "主题", "内容", "2019-01-08 10:00:00", "已答复", "2019-01-07 10:00:00"],
        ["t3", "主题", "内容", "2099-01-08 10:00:00", "", ""],
        ["t4", "主题", "内容", "2019-01-08 10:00:00", "", "2019-01-09 10:00:00"],
        ["t5", "主题", "内容", "", "已答复", "2019-01-09 10:00:00"],
        ["t6", "主题", "内容", "2019-01-08 10:00:00", "已答复", "2099-01-09 10:00:00"],
        # good rows: a title at the limit, a reply on the minute of the message, a clock a little behind ours
        ["g1", "长" * 300, "内容", "2019-01-08 10:00:00", "", ""],
        ["g2", "主题", "内容", "2019-01-08 10:00:00", "已答复", "2019-01-08 10:00:00"],
        ["g3", "主题", "内容", soon.strftime("%Y-%m-%d %H:%M:%S"), "", ""],
    ]
    report = import_orders(db_session, path=write_csv(tmp_path / "alter.csv", rows, header=header))

    assert (report.imported, report.rejected) == (3, 6)
    rejected = {(i.row, i.field): i.message for i in report.issues if i.level == "error"}
    assert list(rejected) == [
        (2, "title"),
        (3, "replied_at"),
        (4, "created_at"),
        (5, "replied_at"),
        (6, "created_at"),
        (7, "replied_at"),
    ]
    assert "longer than 300 characters" in rejected[(2, "title")]
    assert "before created_at" in rejected[(3, "replied_at")]
    assert "in the future" in rejected[(4, "created_at")] and "in the future" in rejected[(7, "replied_at")]
    assert "without a reply" in rejected[(5, "replied_at")]
    stored = dict(db_session.execute(select(Order.external_id, Order.title)).all())
    assert sorted(stored) == ["g1", "g2", "g3"] and stored["g1"] == "长" * 300


def test_a_row_received_before_1990_is_rejected_naming_created_at(db_session: Session, tmp_path: Path) -> None:
    """The Unix epoch (an empty time some systems export) is no time an appeal came in, as the API says too."""
    rows = [["e1", "主题", "内容", "1970-01-01 08:00:00"], ["g1", "主题", "内容", "1990-01-02 08:00:00"]]
    report = import_orders(
        db_session, path=write_csv(tmp_path / "epoch.csv", rows, header=["id", "title", "content", "created_at"])
    )
    assert (report.imported, report.rejected) == (1, 1)
    [issue] = report.issues
    assert (issue.row, issue.field) == (2, "created_at") and "before 1990-01-01" in issue.message


def test_a_machine_channels_row_without_a_type_is_a_report(db_session: Session, tmp_path: Path) -> None:
    """As over the API: a camera's or sensor's detection is a problem found, a person's appeal a consultation."""
    rows = [["v1", "占道经营", "视频", ""], ["s1", "积水超限", "sensor", ""], ["h1", "咨询社保", "热线", ""]]
    rows.append(["v2", "表扬", "视频", "表扬"])
    path = write_csv(tmp_path / "machines.csv", rows, header=["id", "content", "channel", "诉求类型"])
    assert import_orders(db_session, path=path).imported == 4
    kinds = dict(db_session.execute(select(Order.external_id, Order.appeal_type)).all())
    assert kinds == {"v1": "report", "s1": "report", "h1": "consultation", "v2": "praise"}


def test_a_row_longer_than_the_header_is_rejected(db_session: Session, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(
        "id,title,content,created_at\n"
        "w1,主题,内容,2019-01-08 10:00:00,网站\n"
        "w2,主题,内容,2019-01-08 10:00:00,,\n"  # empty cells past the header are no values
        "w3,主题,内容,2019-01-08 10:00:00\n",
        encoding="utf-8",
    )
    report = import_orders(db_session, path=path)
    assert (report.imported, report.rejected) == (2, 1)
    assert [(i.row, i.field, i.message) for i in report.issues] == [(2, "cells", "row has 5 cells, the header has 4")]


def test_rows_are_numbered_as_in_the_file_and_unnamed_columns_are_kept(db_session: Session, tmp_path: Path) -> None:
    """Blank lines before the header count (a row number points at the line a person opens); a column without a
    header between named ones keeps its values in the attributes (第N列); past the last named column a value is
    still a shifted row."""
    path = tmp_path / "loose.csv"
    path.write_text(
        "\n,,,,\n"
        "id,title,,content,created_at\n"
        "u1,主题一,备注甲,内容,2019-01-08 10:00:00\n"
        "u2,,,,2019-01-08 10:00:00\n"
        "u3,主题三,,内容,2019-01-08 10:00:00,网站\n",
        encoding="utf-8",
    )
    report = import_orders(db_session, path=path)
    assert (report.imported, report.rejected) == (1, 2)
    assert [(i.row, i.field) for i in report.issues] == [(5, "content"), (6, "cells")]  # lines 5 and 6
    attributes = db_session.execute(select(Order.attributes).where(Order.external_id == "u1")).scalar_one()
    assert attributes == {"第3列": "备注甲"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_undecodable_bytes_reject_their_row_only(db_session: Session, tmp_path: Path, encoding: str) -> None:
    lines = ["留言编号,留言主题,留言详情,留言时间"] + [
        f"e{i},主题{i},第{i}条留言的详情，内容足够长以跨过解码器的读取块,2019-01-08 10:00:00" for i in range(2, 3002)
    ]
    data = "\n".join(lines).encode(encoding)
    marker = b"e2500,"  # data row 2500 (the header is row 1)
    at = data.index(marker) + len(marker)
    path = tmp_path / "enc.csv"
    path.write_bytes(data[:at] + b"\xff\xfe" + data[at:])
    errors = io.StringIO()

    report = import_orders(db_session, path=path, batch_size=500, issues_to=errors)

    assert (report.read, report.imported, report.rejected) == (3000, 2999, 1)
    [issue] = report.issues
    assert (issue.row, issue.field) == (2500, "encoding")
    assert "\\xff" in issue.message and ("utf-8" in issue.message or "gb18030" in issue.message)
    assert "2500,error,encoding" in errors.getvalue()
    assert count(db_session, Order) == 2999
    assert db_session.execute(select(Order.id).where(Order.external_id == "e2500")).first() is None


def test_a_file_unreadable_midway_keeps_and_reports_the_rows_before(
    app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.cli import _mount, app
    from cityhub.db import session_factory

    _mount()
    monkeypatch.setattr("cityhub.textfiles.CSV_FIELD_LIMIT", 100_000)
    rows = [f"m{i},主题{i},内容{i},2019-01-08 10:00:00" for i in range(2, 12)]
    rows[7] = "m9,主题9,坏行,2019-01-08 10:00:00,多余"  # a rejected row before the error is reported too
    rows.insert(8, 'm10,主题10,"' + "长" * 140_000 + '",2019-01-08 10:00:00')  # beyond the CSV field limit
    path = tmp_path / "broken.csv"
    path.write_text("id,title,content,created_at\n" + "\n".join(rows) + "\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["import", "orders", str(path), "--batch-size", "3", "--json"])

    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: broken.csv: malformed CSV") and "import stopped" in lines[-1]
    assert "rejected: broken.csv: row 9: cells: row has 5 cells, the header has 4" in lines
    assert any(line.startswith("broken.csv: read 8, imported 7 as import batch ") for line in lines)
    assert json.loads(result.stdout)["imported"] == 7
    with session_factory()() as session:
        assert count(session, Order) == 7


def test_quiet_drops_the_rows_but_keeps_the_summary(app_db: str, tmp_path: Path) -> None:
    from cityhub.cli import _mount, app

    _mount()
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS + BAD_ROWS)
    result = CliRunner().invoke(app, ["import", "orders", str(path), "-q"])
    assert result.exit_code == 0  # rejected rows are reported, not fatal (the documented convention)
    batch = _batch_of_the_import()
    assert result.stderr.strip().splitlines() == [
        f"orders.csv: read 7, imported 3 as import batch {batch} (/orders?import_batch_id={batch}), skipped 0 already"
        " present, rejected 4 — rejected rows were not imported (--errors FILE lists them)"
    ]
    # Again: nothing imported, no batch to name.
    again = CliRunner().invoke(app, ["import", "orders", str(path), "-q"])
    assert again.stderr.strip().splitlines()[0].startswith("orders.csv: read 7, imported 0, skipped 3 already present,")
    # An imported order, shown at the command line, names its import as the API tells staff (it said null).
    with session_scope() as s:
        number = s.scalars(select(Order.number).where(Order.import_batch_id == batch)).first()
    shown = json.loads(CliRunner().invoke(app, ["orders", "show", number]).stdout)
    assert shown["import_batch"] == {**shown["import_batch"], "id": batch, "file_name": "orders.csv", "imported": 3}


def _batch_of_the_import() -> int:
    """The one import batch the test's import made."""
    from cityhub.workorders.models import ImportBatch

    with session_scope() as s:
        [batch] = s.scalars(select(ImportBatch.id)).all()
        return batch


def test_cli_dispatch_hands_the_new_orders_to_the_background_dispatcher(
    app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--dispatch``: the summary says how many were queued; a configuration where no background dispatcher runs is
    named instead of queueing orders nobody would take."""
    from cityhub.cli import _mount, app
    from cityhub.config import get_settings
    from cityhub.db import session_factory
    from cityhub.dispatch import background
    from cityhub.intake.dedupe import get_dedupe_settings

    _mount()
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS)
    result = CliRunner().invoke(app, ["import", "orders", str(path), "-q", "--dispatch"])
    assert result.exit_code == 0, result.output
    batch = _batch_of_the_import()
    assert result.stderr.strip().splitlines() == [
        f"orders.csv: read 3, imported 3 as import batch {batch} (/orders?import_batch_id={batch}), skipped 0 already"
        " present, rejected 0, queued 2 for dispatch"
    ]  # row 102 came with its reply: replied, not waiting to be sent out
    with session_factory()() as s:
        assert background.status(s).orders == 2

    # Automatic dispatch off and no automatic merges: the dispatcher still decides for them (their suggestions kept).
    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "false")
    get_dedupe_settings.cache_clear()
    other = write_csv(tmp_path / "more.csv", [["more-1", *GOOD_ROWS[0][1:]]])
    result = CliRunner().invoke(app, ["import", "orders", str(other), "--dispatch"])
    assert result.exit_code == 0, result.output
    assert "warning: --dispatch" not in result.stderr and "queued 1 for dispatch" in result.stderr.splitlines()[-1]
    # Nothing in the background: said, and nothing queued for nobody.
    monkeypatch.setenv("CITYHUB_DISPATCH_IN_BACKGROUND", "false")
    get_settings.cache_clear()
    last = write_csv(tmp_path / "last.csv", [["last-1", *GOOD_ROWS[0][1:]]])
    result = CliRunner().invoke(app, ["import", "orders", str(last), "--dispatch"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "warning: --dispatch: no background dispatcher runs with this configuration" in result.stderr
    assert "queued" not in result.stderr.splitlines()[-1]


HISTORY_HEADER = ["留言编号", "留言主题", "留言详情", "留言时间", "答复意见", "答复时间"]
HISTORY_ROWS = [
    ["h1", "路灯不亮", "小区路灯坏了", "2010-03-01 09:00:00", "已修复。", "2010-03-05 10:00:00"],
    ["h2", "噪音扰民", "夜间施工", "2011-05-01 22:00:00", "", ""],
    ["h3", "没有时间", "内容", "", "", ""],
]


def test_history_is_stored_closed_with_its_audit_trail(app_db: str, tmp_path: Path) -> None:
    from cityhub.cli import _mount, app
    from cityhub.db import session_factory

    _mount()
    path = write_csv(tmp_path / "history.csv", HISTORY_ROWS, header=HISTORY_HEADER)
    result = CliRunner().invoke(app, ["import", "orders", str(path), "--as-history", "--json"])
    assert result.exit_code == 0, result.output
    assert "row 4: created_at: missing: an order imported as history needs the time it came in" in result.stderr
    assert (json.loads(result.stdout)["imported"], json.loads(result.stdout)["rejected"]) == (2, 1)

    with session_factory()() as s:
        got = {o.external_id: o for o in s.scalars(select(Order))}
        assert set(got) == {"h1", "h2"}
        replied, unreplied = got["h1"], got["h2"]
        assert (replied.state.value, replied.resolved, replied.closed_at) == (
            "closed_resolved",
            True,
            replied.replied_at,
        )
        assert (unreplied.state.value, unreplied.resolved, unreplied.closed_at) == (
            "closed_unresolved",
            False,
            unreplied.created_at,
        )
        trails = {
            o.external_id: [
                (e.action, e.from_state, e.to_state, e.actor_name, e.at, e.reason, (e.payload or {}).get("history"))
                for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id == o.id).order_by(OrderEvent.id))
            ]
            for o in got.values()
        }
    assert trails["h1"] == [
        ("create", None, "received", "import", replied.created_at, None, None),
        ("reply", "received", "replied", "import", replied.replied_at, None, None),
        ("close", "replied", "closed_resolved", "import", replied.replied_at, "imported as history", True),
    ]
    assert trails["h2"] == [
        ("create", None, "received", "import", unreplied.created_at, None, None),
        ("close", "received", "closed_unresolved", "import", unreplied.created_at, "imported as history", True),
    ]


def test_history_stays_out_of_the_queue_the_sla_sweep_and_the_reply_check(db_session: Session, tmp_path: Path) -> None:
    from cityhub.dispatch.service import pending_order_ids, queue
    from cityhub.knowledge.service import check_pending_replies
    from cityhub.workorders.scheduled import sla_sweep

    path = write_csv(tmp_path / "history.csv", HISTORY_ROWS[:2], header=HISTORY_HEADER)
    assert import_orders(db_session, path=path, as_history=True).imported == 2
    events = count(db_session, OrderEvent)

    assert queue(db_session)[0] == [] and pending_order_ids(db_session) == []
    sweep = sla_sweep(db_session)
    assert (sweep["overdue"], sweep["warning"], sweep["accept_overdue"]) == (0, 0, 0)
    assert check_pending_replies(db_session) == {"checked": 0, "weak": 0}
    assert count(db_session, OrderEvent) == events


def test_the_reply_check_job_leaves_imported_replies_alone(db_session: Session, tmp_path: Path) -> None:
    from cityhub.knowledge.models import ReplyCheck
    from cityhub.knowledge.service import check_pending_replies

    # Without --as-history a replied row is a replied order; its reply was written before the import.
    path = write_csv(tmp_path / "replied.csv", HISTORY_ROWS[:1], header=HISTORY_HEADER)
    assert import_orders(db_session, path=path).imported == 1
    assert check_pending_replies(db_session) == {"checked": 0, "weak": 0}
    assert count(db_session, ReplyCheck) == 0


# ------------------------------------------------------------------------------ columns chosen, uploads, the actor

NYC_HEADER = ["unique_key", "created_date", "complaint_type", "descriptor", "incident_address", "title"]
NYC_ROWS = [
    ["61276295", "2024-05-27 02:08:51", "Street Condition", "Pothole", "QUEENS BOULEVARD", "kept as an attribute"],
    ["61279486", "2024-05-27 01:27:34", "Noise - Residential", "Loud Music/Party", "", ""],
]


def test_columns_chosen_for_fields_under_other_headers(db_session: Session, tmp_path: Path) -> None:
    """An export with its own headers (here a 311 system's): each chosen column feeds its field, a column the
    aliases would have given that field is kept as an attribute instead, the rest are read as always."""
    from cityhub.intake.importer import parse_column_choices

    path = write_csv(tmp_path / "nyc.csv", NYC_ROWS, header=NYC_HEADER)
    choices = parse_column_choices(
        [
            "title=complaint_type",
            "content = Descriptor",  # spaces around, and the header's case, do not matter
            "external_id=unique_key",
            "created_at=created_date",
            "address=incident_address",
        ]
    )

    report = import_orders(db_session, path=path, columns=choices)

    assert (report.imported, report.rejected) == (2, 0), report.issues
    stored = {o.external_id: o for o in db_session.scalars(select(Order))}
    first = stored["61276295"]
    assert (first.title, first.content, first.address) == ("Street Condition", "Pothole", "QUEENS BOULEVARD")
    assert first.attributes == {"title": "kept as an attribute"}
    assert first.created_at.astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None) == datetime(
        2024, 5, 27, 2, 8, 51
    )
    assert stored["61279486"].content == "Loud Music/Party"


def test_a_column_choice_that_does_not_fit_is_refused_by_name(db_session: Session, tmp_path: Path) -> None:
    from cityhub.errors import ValidationFailed
    from cityhub.intake.importer import parse_column_choices

    with pytest.raises(ValidationFailed, match=r"unknown field 'body'.*known: external_id"):
        parse_column_choices(["body=descriptor"])
    with pytest.raises(ValidationFailed, match="'content' is not FIELD=HEADER"):
        parse_column_choices(["content"])
    path = write_csv(tmp_path / "nyc.csv", NYC_ROWS, header=NYC_HEADER)
    with pytest.raises(UnreadableFile, match=r"column 'body' chosen for content is not in the header.*unique_key"):
        import_orders(db_session, path=path, columns={"content": "body"})
    assert count(db_session, Order) == 0


def test_the_cli_takes_column_choices(app_db: str, tmp_path: Path) -> None:
    from cityhub.cli import _mount, app

    _mount()
    path = write_csv(tmp_path / "nyc.csv", NYC_ROWS, header=NYC_HEADER)
    runner = CliRunner()
    refused = runner.invoke(app, ["import", "orders", str(path), "--column", "body=descriptor"])
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        "error: unknown field 'body' in column choice 'body=descriptor' (known: "
        + ", ".join(name for name, _ in __import__("cityhub.intake.importer").intake.importer.known_headers())
        + ")"
    ]
    args = ["--column", "content=descriptor", "--column", "external_id=unique_key", "--json"]
    result = runner.invoke(app, ["import", "orders", str(path), *args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 2


def test_a_file_naming_a_column_twice_is_refused_whole_naming_both(app_db: str, tmp_path: Path) -> None:
    """Two 留言详情 columns: which is the content was a guess, so nothing is imported and the line says why."""
    from cityhub.cli import _mount, app

    _mount()
    path = tmp_path / "twice.csv"
    path.write_text("留言编号,留言主题,留言详情,留言详情\n1,路灯,嘉禾街路灯不亮,望岗社区\n", encoding="utf-8")
    refused = CliRunner().invoke(app, ["import", "orders", str(path)])
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        "error: the header row: columns 3 and 4 are both named '留言详情': rename one so that each column has its "
        "own name"
    ]
    with session_scope() as s:
        assert count(s, Order) == 0


def test_an_import_names_the_person_in_every_event(db_session: Session, tmp_path: Path) -> None:
    from cityhub.org.models import Role, User
    from cityhub.workorders.service import Actor

    clerk = User(username="import-clerk", full_name="话务员甲", role=Role.OPERATOR)
    db_session.add(clerk)
    db_session.commit()
    path = write_csv(tmp_path / "history.csv", HISTORY_ROWS[:2], header=HISTORY_HEADER)
    actor = Actor(name=clerk.full_name, user_id=clerk.id, role=clerk.role.value)

    assert import_orders(db_session, path=path, as_history=True, actor=actor).imported == 2
    path = write_csv(tmp_path / "new.csv", [["n1", "井盖缺失", "人民路井盖缺失", "2020-01-01 08:00:00", "", ""]])
    assert import_orders(db_session, path=path, actor=actor).imported == 1  # one event: written by the fast path

    events = db_session.execute(select(OrderEvent.action, OrderEvent.actor_name, OrderEvent.actor_id)).all()
    assert sorted(a for a, _, _ in events) == ["close", "close", "create", "create", "create", "reply"]
    assert {(name, user) for _, name, user in events} == {("话务员甲", clerk.id)}


def test_an_upload_is_read_from_a_copy_and_refused_by_its_name(
    db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from cityhub.errors import ValidationFailed
    from cityhub.intake import importer

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the copies go, to see them removed
    sheet = "id,title,content\nu1,井盖缺失,人民路井盖缺失\n".encode()
    for name, data, message in [
        ("a.exe", sheet, "a.exe: not a CSV or Excel file"),
        ("a.csv", b"", "a.csv: the file is empty"),
        ("../../etc/a.pdf", sheet, "a.pdf: not a CSV or Excel file"),
    ]:
        with pytest.raises(ValidationFailed, match=message):
            importer.import_upload(db_session, filename=name, data=data)
    monkeypatch.setattr(importer, "UPLOAD_MAX_BYTES", len(sheet) - 1)
    with pytest.raises(ValidationFailed, match=r"a\.csv: larger than"):
        importer.import_upload(db_session, filename="a.csv", data=sheet)
    monkeypatch.setattr(importer, "UPLOAD_MAX_BYTES", 1 << 20)
    with pytest.raises(UnreadableFile, match=r"^清单.csv is empty \(no header row\)"):
        importer.import_upload(db_session, filename="清单.csv", data=b"\n\n")
    monkeypatch.setattr("cityhub.textfiles.CSV_FIELD_LIMIT", 100_000)
    broken = 'id,title,content\nb1,主题,内容\nb2,主题,"' + "长" * 140_000 + '"\n'
    with pytest.raises(importer.ImportStopped, match=r"^broken.csv: malformed CSV") as stopped:
        importer.import_upload(db_session, filename="C:\\x/broken.csv", data=broken.encode())
    assert (stopped.value.report.file, stopped.value.report.imported) == ("broken.csv", 1)

    report = importer.import_upload(db_session, filename="/home/someone/清单.csv", data=sheet)

    assert (report.file, report.imported) == ("清单.csv", 1)
    assert list(tmp_path.iterdir()) == []  # no copy left behind


def test_every_kind_of_refused_row_is_said_in_chinese_on_the_import_page(db_session: Session, tmp_path: Path) -> None:
    """Each of the importer's row messages has its catalogue form (``machine_text.import_issue``): none reaches the
    page in English."""
    from cityhub.web.i18n import Translator
    from cityhub.web.machine_text import import_issue

    header = ["id", "title", "content", "created_at", "reply_text", "replied_at", "likes", "lat", "lng", "诉求类型"]
    header += ["一级分类", "街道"]
    ok = ["标题", "内容", "2019-01-08 10:00:00", "", "", "", "", "", "", "", ""]
    rows = [
        ["r1", "长" * 400, *ok[1:]],
        ["r2", "", "", *ok[2:]],
        ["r3", *ok[:2], "2019/2/30 10:00", *ok[3:]],
        ["r4", *ok[:2], "某天", *ok[3:]],
        ["r5", *ok[:2], "2099-01-01 10:00:00", *ok[3:]],
        ["r6", *ok[:2], "", *ok[3:]],
        ["r7", *ok[:3], "答复", "2019-01-01 10:00:00", *ok[5:]],
        ["r8", *ok[:3], "", "2019-01-09 10:00:00", *ok[5:]],
        ["r9", *ok[:3], "答复", "", *ok[5:]],
        ["r10", *ok[:5], "很多", *ok[6:]],
        ["r11", *ok[:5], "-3", *ok[6:]],
        ["r12", *ok[:6], "95", "113", *ok[8:]],
        ["r13", *ok[:6], "23", "", *ok[8:]],
        ["r14", *ok[:6], "北纬", "113", *ok[8:]],
        ["r15", *ok[:8], "抱怨", *ok[9:]],
        ["r16", *ok[:9], "没有这个分类", ""],
        ["r17", *ok[:10], "没有这个街道"],
        ["r18", *ok, "多余"],
        ["r16", "另一条", *ok[1:]],
    ]
    path = write_csv(tmp_path / "bad.csv", rows, header=header)
    report = import_orders(db_session, path=path, as_history=False)
    assert report.rejected + report.warnings == 19 and "already holds a different message" in report.issues[-1].message
    zh = Translator("zh-CN")
    untranslated = [(i.row, i.message) for i in report.issues if import_issue(zh, i.message) == i.message]
    assert untranslated == []
    history = write_csv(tmp_path / "history.csv", [["h9", *ok[:2], "", *ok[3:]]], header=header)
    [issue] = import_orders(db_session, path=history, as_history=True).issues
    assert import_issue(zh, issue.message) == "作为历史工单导入，每行须有受理时间"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_choice_is_read_by_its_name_on_the_pages_in_either_language(
    db_session: Session, tmp_path: Path, lang: str
) -> None:
    """A file written from what the pages show in English (Request for help, 12345 hotline, Grid inspector, Public
    opinion, Video AI) was refused row by row, though every Chinese name was read: each channel, appeal type and
    urgency by its name in either language, in any letter case, is its code."""
    from cityhub.web.i18n import Translator
    from cityhub.workorders.models import AppealType, Channel, Urgency

    t = Translator(lang)
    header = ["id", "title", "content", "created_at", "channel", "appeal_type", "urgency"]
    when = "2026-12-01 09:00:00"
    rows, expected = [], {}
    channels, appeals, urgencies = list(Channel), list(AppealType), list(Urgency)
    for i in range(max(len(channels), len(appeals), len(urgencies))):
        channel, appeal, urgency = channels[i % len(channels)], appeals[i % len(appeals)], urgencies[i % len(urgencies)]
        names = [t.label("channel", channel), t.label("appeal", appeal), t.label("urgency", urgency)]
        if i % 2:
            names = [name.upper() for name in names]
        rows.append([f"L{i}", "路灯不亮", f"云景路路灯坏了{i}", when, *names])
        expected[f"L{i}"] = (channel.value, appeal.value, urgency.value)

    report = import_orders(db_session, path=write_csv(tmp_path / f"names-{lang}.csv", rows, header=header))

    assert [(i.row, i.field, i.message) for i in report.issues if i.level == "error"] == []
    stored = select(Order.external_id, Order.channel, Order.appeal_type, Order.urgency)
    assert {e: (c, a, u) for e, c, a, u in db_session.execute(stored)} == expected


def test_a_choice_is_read_as_the_pages_name_it_and_a_refused_one_lists_those_names(
    db_session: Session, tmp_path: Path
) -> None:
    """A 渠道 column may say 网格上报 or 移动端 (as the intake and import forms name the channels); a refused 紧急程度
    lists the values a clerk would write (一般、紧急、特急), not the codes."""
    from cityhub.web.i18n import Translator
    from cityhub.web.machine_text import import_issue

    header = ["id", "title", "content", "created_at", "渠道", "紧急程度"]
    when = "2026-12-01 09:00:00"
    rows = [
        ["c1", "路灯不亮", "云景路路灯坏了", when, "网格上报", "紧急"],
        ["c2", "井盖缺失", "路口井盖丢失", when, "移动端", "特急"],
        ["c3", "垃圾堆放", "门口垃圾无人清运", when, "批量导入", "超急"],
    ]
    report = import_orders(db_session, path=write_csv(tmp_path / "choices.csv", rows, header=header))

    assert report.imported == 2
    channels = {e: c for e, c in db_session.execute(select(Order.external_id, Order.channel))}
    assert channels == {"c1": "grid", "c2": "app"}
    [refused] = report.issues
    assert refused.field == "urgency"
    # The command line's words name what the import takes, the pages' names and the codes
    assert refused.message == "invalid value '超急' (allowed: 一般 (normal), 紧急 (urgent), 特急 (critical))"
    said = import_issue(Translator("zh-CN"), refused.message, refused.field)
    assert said == "无效的值“超急”（可用：一般、紧急、特急）"
    said = import_issue(Translator("en"), refused.message, refused.field)
    assert said == "Invalid value '超急' (allowed: Normal, Urgent, Critical)"


def test_an_errors_file_that_is_the_input_is_refused_and_the_input_kept(
    app_db: str, cli_run: Any, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS + BAD_ROWS)
    before = path.read_bytes()
    for spelling in (path, tmp_path / "." / "orders.csv"):
        code, _, err = cli_run("import", "orders", str(path), "--errors", str(spelling))
        assert code == 1
        assert err.strip().splitlines() == [
            f"error: --errors {spelling} is the input file; give another name (it would be overwritten)"
        ]
    assert path.read_bytes() == before


def test_the_errors_file_is_written_only_once_the_input_opened(app_db: str, cli_run: Any, tmp_path: Path) -> None:
    errors = tmp_path / "errors.csv"
    errors.write_text("an earlier run's report\n", encoding="utf-8")
    code, _, err = cli_run("import", "orders", str(tmp_path / "missing.csv"), "--errors", str(errors))
    assert code == 1 and "missing.csv: file not found" in err
    assert errors.read_text(encoding="utf-8") == "an earlier run's report\n"
    # A path that cannot be written is one line naming it, before anything is imported.
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS)
    for target, problem in (
        (tmp_path, f"error: --errors {tmp_path} is a directory; give a file name"),
        (path / "x.csv", f"error: --errors {path / 'x.csv'}: {path} is a file; give a directory for the file"),
    ):
        code, _, err = cli_run("import", "orders", str(path), "--errors", str(target))
        assert (code, err.strip().splitlines()) == (1, [problem])
    code, _, err = cli_run("import", "orders", str(path), "--errors", str(tmp_path / "new" / "errors.csv"), "-q")
    assert code == 0, err
    assert (tmp_path / "new" / "errors.csv").read_text(encoding="utf-8-sig").startswith("row,level,field,message")


def test_a_long_field_rejects_its_row_only(app_db: str, cli_run: Any, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "id,title,content,created_at\n"
        "L1,短,内容一,2024-05-01 10:00:00\n"
        f"L2,长内容,{'长' * 200_000},2024-05-01 10:00:00\n"
        "L3,之后,内容三,2024-05-01 10:00:00\n",
        encoding="utf-8",
    )
    code, out, err = cli_run("import", "orders", str(path), "--json")
    assert code == 0, err
    assert "rejected: long.csv: row 3: content: longer than 20000 characters (200000)" in err.splitlines()
    assert json.loads(out)["imported"] == 2


def test_an_unclosed_quote_rejects_its_row_and_keeps_the_rows_it_would_swallow(
    app_db: str, cli_run: Any, tmp_path: Path
) -> None:
    from cityhub.db import session_factory

    path = tmp_path / "badquote.csv"
    path.write_text('id,title,content\nQ1,ok,"多行\n内容"\nQ2,bad,"unterminated\nQ3,after,x\nQ4,,y\n', encoding="utf-8")
    code, out, err = cli_run("import", "orders", str(path), "--json")
    assert code == 0, err
    said = "row 3: quote: a quoted field opened on line 4 is not closed before the end of the file"
    assert f"rejected: badquote.csv: {said}" in err.splitlines()
    assert json.loads(out) | {"warning_kinds": None} == json.loads(out) | {
        "read": 4,
        "imported": 3,
        "rejected": 1,
        "warning_kinds": None,
    }
    with session_factory()() as session:
        contents = dict(session.execute(select(Order.external_id, Order.content)).all())
    assert contents == {"Q1": "多行\n内容", "Q3": "x", "Q4": "y"}


def test_importing_a_file_again_warns_of_nothing_and_the_cli_says_so(app_db: str, tmp_path: Path) -> None:
    """A second import of the same file imports nothing, so it warns of nothing: the warnings (and the rows they are
    counted by) are of the rows imported now, not of rows already present, which their first import warned of."""
    from cityhub.cli import _mount, app
    from cityhub.db import session_factory

    _mount()
    rows = [[f"t{i}", "", f"路灯{i}", "", f"第{i}号路灯不亮", *[""] * 9] for i in range(1, 4)]  # no times
    path = write_csv(tmp_path / "no_times.csv", rows)
    with session_factory()() as session:
        first = import_orders(session, path=path)
        assert (first.imported, first.warnings, first.warned_rows) == (3, 3, 3)
        again = import_orders(session, path=path)
    assert (again.imported, again.skipped, again.warnings, again.warned_rows) == (0, 3, 0, 0)
    assert not again.warning_counts and not again.issues

    result = CliRunner().invoke(app, ["import", "orders", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert not [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["imported"], summary["skipped_existing"], summary["warnings"], summary["warned_rows"]) == (
        0,
        3,
        0,
        0,
    )


def test_a_row_with_two_warnings_is_one_warned_row(db_session: Session, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "two.csv", [["w1", "", "主题", "", "内容", "", "不存在的分类", *[""] * 7]])
    report = import_orders(db_session, path=path)
    assert (report.imported, report.warnings, report.warned_rows) == (1, 2, 1)


@pytest.mark.parametrize("header", ["来话时间", "来电时间", "登记时间"])
def test_a_hotline_exports_time_of_call_is_the_time_of_receipt(
    db_session: Session, tmp_path: Path, header: str
) -> None:
    path = write_csv(
        tmp_path / "hotline.csv", [["H-1", "路灯不亮", "2026-11-20 09:10:00"]], header=["工单编号", "内容", header]
    )
    report = import_orders(db_session, path=path)
    assert (report.imported, report.warnings) == (1, 0), report.issues
    stored = db_session.scalars(select(Order)).one()
    assert stored.created_at.astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None) == datetime(
        2026, 11, 20, 9, 10
    )


def test_a_phone_that_is_no_number_is_a_warning_naming_the_field_and_the_row_is_kept(
    db_session: Session, tmp_path: Path
) -> None:
    """联系电话 ``abc``: the appeal is imported without a phone (the API refuses such a phone), the text kept among
    its attributes, and a warning names the field; a number written with spaces and dashes is stored as the API
    stores it."""
    path = write_csv(
        tmp_path / "phones.csv",
        [
            [f"P-{i}", "路灯不亮", "2026-11-20 09:10:00", phone]
            for i, phone in enumerate(("abc", "138-1234 5678", ""), 1)
        ],
        header=["工单编号", "内容", "来话时间", "联系电话"],
    )
    report = import_orders(db_session, path=path)
    assert (report.imported, report.rejected, report.warned_rows) == (3, 0, 1)
    [warning] = report.issues
    assert (warning.row, warning.level, warning.field) == (2, "warning", "citizen_phone")
    assert "'abc'" in warning.message
    stored = {o.external_id: o for o in db_session.scalars(select(Order))}
    assert (stored["P-1"].citizen_phone, stored["P-1"].attributes) == (None, {"citizen_phone": "abc"})
    assert stored["P-2"].citizen_phone == "13812345678"
    assert stored["P-3"].citizen_phone is None and not stored["P-3"].attributes


def _batch_orders(session: Session, batch_id: int | None) -> set[str]:
    """The external ids of the orders the order list's batch filter lists for ``batch_id``."""
    from cityhub.workorders.schemas import OrderFilter
    from cityhub.workorders.service import search_order_rows

    rows, _, _ = search_order_rows(
        session, filters=OrderFilter(import_batch_id=batch_id), columns=["id", "external_id"], limit=100
    )
    return {r["external_id"] for r in rows}


def test_an_import_batch_names_exactly_the_orders_the_import_created(db_session: Session, tmp_path: Path) -> None:
    """Each import is one batch — its file, when, who and how many it created — and only the orders it created name
    it: not the rows it found already imported (they stay in the batch that created them), not the channel's other
    orders; an import that created nothing leaves no batch."""
    from cityhub.org.models import Role, User
    from cityhub.workorders.models import ImportBatch
    from cityhub.workorders.service import Actor

    clerk = User(username="batch-clerk", full_name="话务员乙", role=Role.OPERATOR)
    db_session.add(clerk)
    db_session.commit()
    actor = Actor(name=clerk.full_name, user_id=clerk.id, role=clerk.role.value)
    header = ["留言编号", "留言详情", "留言时间"]
    rows = [[f"b{i}", f"第{i}件诉求", f"2026-11-0{i} 09:00:00"] for i in range(1, 6)]
    first = import_orders(db_session, path=write_csv(tmp_path / "十一月.csv", rows[:3], header=header), actor=actor)
    # The second file repeats b3 (its first batch of one row creates nothing) and brings b4, b5.
    second = import_orders(
        db_session, path=write_csv(tmp_path / "补录.csv", rows[2:], header=header), batch_size=1, actor=actor
    )
    again = import_orders(db_session, path=write_csv(tmp_path / "十一月.csv", rows[:3], header=header))

    assert (first.imported, second.imported, second.skipped, again.imported) == (3, 2, 1, 0)
    assert first.batch_id is not None and second.batch_id is not None and first.batch_id != second.batch_id
    assert again.batch_id is None and count(db_session, ImportBatch) == 2
    assert second.summary()["import_batch_id"] == second.batch_id
    assert _batch_orders(db_session, first.batch_id) == {"b1", "b2", "b3"}
    assert _batch_orders(db_session, second.batch_id) == {"b4", "b5"}  # the channel holds five
    batch = db_session.get(ImportBatch, second.batch_id)
    assert batch is not None
    assert (batch.file_name, batch.actor_name, batch.actor_id, batch.imported) == ("补录.csv", "话务员乙", clerk.id, 2)
    assert abs(batch.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert _batch_orders(db_session, second.batch_id + 100) == set()


def test_an_import_killed_midway_counts_what_its_batch_created(db_session: Session, tmp_path: Path) -> None:
    """The batch's count moves with each committed batch of rows; the command line's import names no account."""
    from cityhub.workorders.models import ImportBatch

    rows = [[f"k{i}", f"内容{i}", "2020-05-01 08:00:00"] for i in range(12)]
    path = write_csv(tmp_path / "orders.csv", rows, header=["留言编号", "留言详情", "留言时间"])
    _import_killed_after_two_batches(db_session, path)
    [killed] = db_session.scalars(select(ImportBatch)).all()
    assert (killed.imported, killed.actor_name, killed.actor_id) == (10, "import", None)
    assert len(_batch_orders(db_session, killed.id)) == 10
    rerun = import_orders(db_session, path=path, batch_size=5)
    assert (rerun.imported, len(_batch_orders(db_session, rerun.batch_id))) == (2, 2)


def test_migration_0042_leaves_the_orders_imported_before_in_no_batch(empty_db_url: str, tmp_path: Path) -> None:
    """Orders imported before 0042 (their column dropped by a downgrade to 0041, added again by 0042) name no batch —
    nothing kept tells which import made them — and an import after it lists its own orders only."""
    from alembic import command

    from cityhub import migrate
    from cityhub.db import make_engine

    migrate.upgrade(empty_db_url)
    header = ["留言编号", "留言详情", "留言时间"]
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as session:
            old = write_csv(tmp_path / "old.csv", [["o1", "旧诉求", "2026-10-01 09:00:00"]], header=header)
            assert import_orders(session, path=old).imported == 1
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), "0041_reply_check_scorer")
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            assert session.scalars(select(Order.import_batch_id)).all() == [None]
            new = write_csv(tmp_path / "new.csv", [["n1", "新诉求", "2026-11-01 09:00:00"]], header=header)
            report = import_orders(session, path=new)
            assert (report.imported, _batch_orders(session, report.batch_id)) == (1, {"n1"})
    finally:
        engine.dispose()


def test_an_enterprise_appeals_columns_are_checked_and_a_bad_row_rejected_by_field(
    db_session: Session, tmp_path: Path
) -> None:
    """企业名称 / 统一社会信用代码 / 诉求领域 (or enterprise_name, credit_code, enterprise_need) are an enterprise
    appeal's, checked as the API checks one (``intake.enterprise.checked``): a code that does not check, a need of
    no kind, a code without the enterprise's name reject their row by number and field; every good row is kept, its
    code written as codes are, its need by its code whichever name the file gave it. Said in Chinese and English."""
    from cityhub.web.i18n import Translator
    from cityhub.web.machine_text import import_issue

    when = "2026-11-20 09:10:00"
    name, code = "广州云景制衣有限公司", "91350100M000100Y43"
    rows = [
        ["E-1", "新厂房申请用电报装两个月了还没接电", when, "企业呼", f" {name} ", "91350100m000100-y43", "用电"],
        ["E-2", "园区用水水压不足", when, "企业呼", "广州景泰食品有限公司", code[:-1] + "4", "用水"],
        ["E-3", "缺工三十人", when, "企业呼", "广州白云皮具有限公司", "", "电力"],
        ["E-4", "融资难", when, "企业呼", "", code, "资金"],
        ["E-5", "用工对接", when, "热线", "广州白云皮具有限公司", "", "labour"],
        ["E-6", "小区停电了", when, "热线", "", "", ""],
    ]
    header = ["工单编号", "内容", "来话时间", "来源渠道", "企业名称", "统一社会信用代码", "诉求领域"]
    report = import_orders(db_session, path=write_csv(tmp_path / "企业.csv", rows, header=header))
    assert (report.imported, report.rejected) == (3, 3)
    assert [(i.row, i.level, i.field) for i in report.issues] == [
        (3, "error", "credit_code"),
        (4, "error", "enterprise_need"),
        (5, "error", "enterprise_name"),
    ]
    stored = {o.external_id: o.attributes for o in db_session.scalars(select(Order))}
    assert stored == {
        "E-1": {"enterprise_name": name, "credit_code": code, "enterprise_need": "power"},
        "E-5": {"enterprise_name": "广州白云皮具有限公司", "enterprise_need": "labour"},
        "E-6": None,
    }
    # On the command line the need's names, as the pages say them, which the import takes with the codes (it said
    # "allowed: water, power, …" of a column holding 用电 and 用工).
    assert report.issues[1].message == (
        "invalid value '电力' (allowed: 用水 (water), 用电 (power), 用地 (land), 用工 (labour), 资金 (funding), "
        "其他 (other))"
    )
    said = {
        lang: [import_issue(Translator(lang), i.message, i.field) for i in report.issues] for lang in ("zh-CN", "en")
    }
    assert said["zh-CN"] == [
        "统一社会信用代码校验不通过：最后一位应为3，请核对是否有字符输错",
        "无效的值“电力”（可用：用水、用电、用地、用工、资金、其他）",
        "请填写企业名称",
    ]
    assert said["en"] == [
        "The unified social credit code does not check: its last character should be 3 — a character mistyped?",
        "Invalid value '电力' (allowed: Water, Power, Land, Labour, Funding, Other)",
        "Give the enterprise's name",
    ]

    # The fields' own names as headers (an export of the API's attributes): the same checks.
    english = write_csv(
        tmp_path / "enterprise.csv",
        [["X-1", "接电慢", when, name, code, "power"], ["X-2", "接电慢", when, name, code[:17], "power"]],
        header=["id", "content", "created_at", "enterprise_name", "credit_code", "enterprise_need"],
    )
    report = import_orders(db_session, path=english)
    assert (report.imported, report.rejected) == (1, 1)
    [issue] = report.issues
    assert (issue.row, issue.field) == (3, "credit_code") and "has 17 characters, not 18" in issue.message
    assert import_issue(Translator("zh-CN"), issue.message, issue.field) == "统一社会信用代码应为18位，这里是17位"
