"""Export orders with their audit trails, then read each format back."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityhub.intake.bulk import write_orders
from cityhub.intake.exporter import ExportFilter, events_path, export_orders
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Category


def seed(session: Session) -> dict[str, int]:
    street = Unit(code="S01", name="白云街道", tier=UnitTier.STREET)
    session.add(street)
    session.flush()
    community = Unit(code="S01-C01", name="白云社区", tier=UnitTier.COMMUNITY, parent_id=street.id)
    cat = Category(code="K1", name="城乡建设", level=1, path="城乡建设")
    session.add_all([community, cat])
    session.flush()
    records = []
    for i in range(5):
        created = datetime(2020, 1, 1 + i, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai on Jan 1..5
        record = {
            "external_id": f"e{i}",
            "title": f"标题{i}",
            "content": f"内容{i}\n第二行",
            "appeal_type": "complaint",
            "citizen_phone": "13812345678",
            "created_at": created,
            "street_id": street.id,
            "community_id": community.id,
            "lead_unit_id": street.id,
            "category_id": cat.id if i % 2 == 0 else None,
            "attributes": {"来源": "测试"},
        }
        if i == 4:
            record.update(state=State.REPLIED, replied_at=created, reply_text="已处理")
            record["events"] = [
                {"action": "create", "to_state": "received", "at": created},
                {
                    "action": "reply",
                    "from_state": "received",
                    "to_state": "replied",
                    "at": created,
                    "unit_id": street.id,
                    "payload": {"note": "ok"},
                },
            ]
        records.append(record)
    write_orders(session, records)
    session.commit()
    return {"street": street.id}


def test_csv_has_orders_and_a_second_events_file(db_session: Session, tmp_path: Path) -> None:
    seed(db_session)
    out = tmp_path / "orders.csv"
    result = export_orders(db_session, out=out, fmt="csv")
    assert (result.orders, result.events) == (5, 6)
    with out.open(encoding="utf-8-sig", newline="") as fh:
        orders = list(csv.DictReader(fh))
    with events_path(out).open(encoding="utf-8-sig", newline="") as fh:
        events = list(csv.DictReader(fh))
    assert [o["external_id"] for o in orders] == [f"e{i}" for i in range(5)]
    first = orders[0]
    assert first["citizen_phone"] == "138****5678"
    assert (first["street_code"], first["community_name"], first["lead_unit_name"]) == (
        "S01",
        "白云社区",
        "白云街道",
    )
    assert first["category_path"] == "城乡建设" and orders[1]["category_path"] == ""
    assert first["content"] == "内容0\n第二行"
    assert json.loads(first["attributes"]) == {"来源": "测试"}
    assert datetime.fromisoformat(first["created_at"]) == datetime(2020, 1, 1, 2, 0, tzinfo=UTC)
    replied = [e for e in events if e["order_number"] == orders[4]["number"]]
    assert [e["action"] for e in replied] == ["create", "reply"]
    assert replied[1]["unit_code"] == "S01" and json.loads(replied[1]["payload"]) == {"note": "ok"}


def test_filters_and_unmasked(db_session: Session, tmp_path: Path) -> None:
    seed(db_session)
    out = tmp_path / "some.csv"
    flt = ExportFilter(since=date(2020, 1, 2), until=date(2020, 1, 4))
    result = export_orders(db_session, out=out, fmt="csv", flt=flt, unmasked=True)
    with out.open(encoding="utf-8-sig", newline="") as fh:
        orders = list(csv.DictReader(fh))
    assert [o["external_id"] for o in orders] == ["e1", "e2", "e3"]
    assert result.events == 3
    assert orders[0]["citizen_phone"] == "13812345678"
    result = export_orders(db_session, out=out, fmt="csv", flt=ExportFilter(states=(State.REPLIED,)))
    assert (result.orders, result.events) == (1, 2)


def test_the_masked_export_shows_what_the_masked_order_views_show(db_session: Session, tmp_path: Path) -> None:
    """By default an export hides the citizen as a leader's order view does: name and phone masked, what they typed
    into title, content, reply and the trail scrubbed, the address and point coarsened; --unmasked writes it all."""
    street = Unit(code="S09", name="三元里街道", tier=UnitTier.STREET)
    db_session.add(street)
    db_session.flush()
    created = datetime(2020, 2, 1, 2, 0, tzinfo=UTC)
    write_orders(
        db_session,
        [
            {
                "external_id": "m1",
                "title": "李雪梅反映5栋1907室楼上噪音",
                "content": "本人李雪梅，住三元里大道88号5栋1907室，手机13912345678",
                "appeal_type": "complaint",
                "citizen_name": "李雪梅",
                "citizen_phone": "13912345678",
                "address": "白云区三元里街道三元里大道88号5栋1907室",
                "lat": 23.16321,
                "lng": 113.26487,
                "created_at": created,
                "lead_unit_id": street.id,
                "state": State.REPLIED,
                "replied_at": created,
                "reply_text": "已到5栋1907室核查，李雪梅表示满意",
                "attributes": {
                    "open311": {"client": "随手拍", "email": "lxm1907@example.com"},
                    "联系方式": "13912345678",
                },
                "events": [
                    {"action": "create", "to_state": "received", "at": created, "actor_name": "李雪梅"},
                    {
                        "action": "reply",
                        "from_state": "received",
                        "to_state": "replied",
                        "at": created,
                        "reason": "联系李雪梅 139 1234 5678",
                        "payload": {"text": "已到5栋1907室核查，李雪梅表示满意", "note": "ok"},
                    },
                ],
            }
        ],
    )
    db_session.commit()
    out = tmp_path / "masked.csv"
    export_orders(db_session, out=out, fmt="csv")
    written = out.read_text(encoding="utf-8-sig") + events_path(out).read_text(encoding="utf-8-sig")
    # Nor in the channel's attributes (an Open311 client's e-mail, an imported file's extra columns), nor as who did
    # the citizen's own steps.
    for secret in ("李雪梅", "13912345678", "1234 5678", "88号", "5栋", "1907", "23.16321", "lxm1907@example.com"):
        assert secret not in written, secret
    with out.open(encoding="utf-8-sig", newline="") as fh:
        (order,) = csv.DictReader(fh)
    assert (order["citizen_name"], order["citizen_phone"]) == ("李**", "139****5678")
    assert order["address"] == "白云区三元里街道三元里大道" and float(order["lat"]) == 23.16
    assert order["content"] == "本人[已隐去]，住三元里大道[门牌号]，手机[已隐去]"
    with events_path(out).open(encoding="utf-8-sig", newline="") as fh:
        reply = next(e for e in csv.DictReader(fh) if e["action"] == "reply")
    assert json.loads(reply["payload"]) == {"text": "已到[门牌号]核查，[已隐去]表示满意", "note": "ok"}
    assert json.loads(order["attributes"])["open311"]["client"] == "随手拍"
    with events_path(out).open(encoding="utf-8-sig", newline="") as fh:
        assert next(e for e in csv.DictReader(fh) if e["action"] == "create")["actor_name"] == "citizen"

    export_orders(db_session, out=out, fmt="csv", unmasked=True)
    whole = out.read_text(encoding="utf-8-sig") + events_path(out).read_text(encoding="utf-8-sig")
    secrets = ("李雪梅", "13912345678", "1234 5678", "88号5栋1907室", "23.16321", "lxm1907@example.com")
    assert all(secret in whole for secret in secrets)


def test_xlsx_has_an_events_sheet(db_session: Session, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    seed(db_session)
    out = tmp_path / "orders.xlsx"
    export_orders(db_session, out=out, fmt="xlsx")
    workbook = load_workbook(out, read_only=True)
    orders = list(workbook["orders"].iter_rows(values_only=True))
    events = list(workbook["events"].iter_rows(values_only=True))
    header = orders[0]
    assert len(orders) == 6 and len(events) == 7
    row = dict(zip(header, orders[1], strict=True))
    assert row["citizen_phone"] == "138****5678"
    assert row["created_at"] == datetime(2020, 1, 1, 10, 0)  # local wall-clock time in Excel
    assert events[0][:3] == ("order_number", "order_id", "id")


def test_xlsx_writes_a_text_starting_with_an_equals_sign_as_text(db_session: Session, tmp_path: Path) -> None:
    """A citizen's message beginning ``=`` is their words, not a formula Excel would run (and whose value, never
    computed, a reader of the file would not see)."""
    from openpyxl import load_workbook

    words = '=HYPERLINK("http://example.com/x","点击查看处理结果")'
    created = datetime(2020, 1, 1, 2, 0, tzinfo=UTC)
    write_orders(
        db_session,
        [{"external_id": "f1", "title": "=1+1", "content": words, "created_at": created, "appeal_type": "complaint"}],
    )
    db_session.commit()
    out = tmp_path / "orders.xlsx"
    export_orders(db_session, out=out, fmt="xlsx", unmasked=True)
    sheet = load_workbook(out)["orders"]
    header = [c.value for c in sheet[1]]
    cells = {name: sheet.cell(row=2, column=header.index(name) + 1) for name in ("title", "content")}
    assert [(c.value, c.data_type) for c in cells.values()] == [("=1+1", "s"), (words, "s")]
    values = next(load_workbook(out, read_only=True, data_only=True)["orders"].iter_rows(min_row=2, values_only=True))
    assert words in values


def test_csv_writes_a_text_a_spreadsheet_would_run_as_text(db_session: Session, tmp_path: Path) -> None:
    """CSV injection: a citizen's message beginning =, +, -, @ (or a tab, a carriage return) ran as a formula when an
    operator opened the export in Excel or WPS. Such a text gets a ' in front (OWASP); numbers stay numbers."""
    words = '=HYPERLINK("http://example.com/x","点击查看处理结果")'
    created = datetime(2020, 1, 1, 2, 0, tzinfo=UTC)
    record = {
        "external_id": "f1",
        "title": "+1 路灯不亮",
        "content": words,
        "citizen_name": "@某人",
        "address": "-3.5",
        "lat": -33.9,
        "lng": 151.2,
        "created_at": created,
        "appeal_type": "complaint",
        "events": [{"action": "create", "to_state": "received", "at": created, "reason": "=cmd|' /C calc'!A0"}],
    }
    write_orders(db_session, [record])
    db_session.commit()
    out = tmp_path / "orders.csv"
    export_orders(db_session, out=out, fmt="csv", unmasked=True)
    with out.open(encoding="utf-8-sig", newline="") as fh:
        (order,) = csv.DictReader(fh)
    assert (order["title"], order["content"], order["citizen_name"]) == ("'+1 路灯不亮", "'" + words, "'@某人")
    assert (order["address"], order["lat"], order["lng"]) == ("-3.5", "-33.9", "151.2")
    with events_path(out).open(encoding="utf-8-sig", newline="") as fh:
        (event,) = csv.DictReader(fh)
    assert (event["action"], event["reason"]) == ("create", "'=cmd|' /C calc'!A0")


def test_parquet_nests_the_events(db_session: Session, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    seed(db_session)
    out = tmp_path / "orders.parquet"
    export_orders(db_session, out=out, fmt="parquet")
    table = pq.read_table(out)
    assert table.num_rows == 5
    rows = table.to_pylist()
    assert [len(r["events"]) for r in rows] == [1, 1, 1, 1, 2]
    assert rows[4]["events"][1]["action"] == "reply"
    assert rows[4]["events"][1]["at"] == datetime(2020, 1, 5, 2, 0, tzinfo=UTC)
    assert rows[0]["citizen_phone"] == "138****5678"
    assert rows[0]["lat"] is None and rows[0]["likes"] == 0


def test_cli_export_and_bad_options(app_db: str, db_session: Session, tmp_path: Path) -> None:
    from cityhub.cli import _mount, app

    seed(db_session)
    _mount()
    runner = CliRunner()
    out = tmp_path / "x.parquet"
    result = runner.invoke(app, ["export", "orders", "--format", "parquet", "--out", str(out), "--state", "received"])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == 4
    reversed_range = ["--since", "2024-03-31", "--until", "2024-03-01"]
    for bad in (["--format", "json"], ["--state", "nope"], ["--since", "yesterday"], reversed_range):
        result = runner.invoke(app, ["export", "orders", "--out", str(tmp_path / "y"), *bad])
        assert result.exit_code == 1, bad
        assert result.stderr.startswith("error:")


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_exports_are_private(db_session: Session, tmp_path: Path, fmt: str) -> None:
    seed(db_session)
    out = tmp_path / f"orders.{fmt}"
    out.write_text("an older export, readable by all")
    out.chmod(0o644)
    result = export_orders(db_session, out=out, fmt=fmt)
    assert result.orders == 5
    for name in result.files:  # citizens' personal data: names, phones, addresses
        assert Path(name).stat().st_mode & 0o777 == 0o600, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(f).name for f in result.files)


def test_cli_export_to_a_bad_path_is_one_line_and_leaves_nothing(app_db: str, db_session: Session, tmp_path: Path):
    from cityhub.cli import _mount, app

    seed(db_session)
    _mount()
    runner = CliRunner()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for fmt, out, problem in (
        ("csv", "/proc/cityhub.csv", "cannot write export /proc/cityhub.csv: No such file or directory"),
        ("xlsx", str(tmp_path), f"export target {tmp_path} is a directory; give a file name"),
        ("parquet", str(a_file / "x.parquet"), f"cannot write export {a_file / 'x.parquet'}: Not a directory"),
    ):
        result = runner.invoke(app, ["export", "orders", "--format", fmt, "--out", out, "--quiet"])
        assert result.exit_code == 1, result.output
        assert result.stderr == f"error: {problem}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_failed_export_leaves_no_file(db_session: Session, tmp_path: Path) -> None:
    from cityhub.errors import ValidationFailed

    seed(db_session)
    out = tmp_path / "orders.csv"

    def fail_midway(done: int, _total: int) -> None:
        raise ValidationFailed("stopped")

    with pytest.raises(ValidationFailed, match="stopped"):
        export_orders(db_session, out=out, fmt="csv", on_progress=fail_midway)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_empty_database_exports_headers_only(db_session: Session, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"empty.{fmt}"
    result = export_orders(db_session, out=out, fmt=fmt)
    assert result.orders == 0
    assert out.exists() and out.stat().st_size > 0
