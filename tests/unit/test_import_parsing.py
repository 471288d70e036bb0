"""Parsing pieces of the bulk importer: dates, encodings, headers, stable ids, category resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from cityhub.intake.importer import (
    CategoryIndex,
    ColumnMap,
    RowError,
    known_headers,
    parse_datetime,
    stable_external_id,
)
from cityhub.textfiles import UnreadableFile, detect_encoding
from cityhub.web.i18n import catalogue

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019/1/8 10:20:30", datetime(2019, 1, 8, 10, 20, 30)),
        ("2019/12/30 9:05", datetime(2019, 12, 30, 9, 5)),
        ("2019-01-08 10:20:30", datetime(2019, 1, 8, 10, 20, 30)),
        ("2019-01-08T10:20:30", datetime(2019, 1, 8, 10, 20, 30)),
        ("2019-01-08", datetime(2019, 1, 8)),
        ("2019年1月8日 10:20", datetime(2019, 1, 8, 10, 20)),
        (43473.5, datetime(2019, 1, 8, 12, 0)),  # Excel serial
        ("43473.5", datetime(2019, 1, 8, 12, 0)),
        (datetime(2019, 1, 8, 10, 20, 30), datetime(2019, 1, 8, 10, 20, 30)),
    ],
)
def test_naive_times_are_read_in_the_district_time_zone(raw: object, expected: datetime) -> None:
    parsed = parse_datetime(raw)
    assert parsed == expected.replace(tzinfo=SHANGHAI)


def test_aware_times_keep_their_offset() -> None:
    parsed = parse_datetime("2019-01-08T02:20:30+00:00")
    assert parsed == datetime(2019, 1, 8, 2, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["2019/2/30 10:00:00", "yesterday", "2019-13-01", "0001-01-01"])
def test_bad_dates_name_the_field(raw: str) -> None:
    with pytest.raises(RowError) as info:
        parse_datetime(raw, field="replied_at")
    assert info.value.field == "replied_at"


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_empty_dates_are_none(raw: object) -> None:
    assert parse_datetime(raw) is None


TEXT = "留言编号,留言主题\n1,小区噪音扰民，请有关部门处理\n"


def test_encodings_utf8_bom_and_gbk() -> None:
    assert detect_encoding(TEXT.encode("utf-8")) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbf" + TEXT.encode("utf-8")) == "utf-8-sig"
    assert detect_encoding((TEXT * 20).encode("gbk")) == "gb18030"


def test_a_sample_cut_inside_a_character_is_still_utf8() -> None:
    data = (TEXT * 10).encode("utf-8")
    assert detect_encoding(data[:-1]) == "utf-8"


@pytest.mark.parametrize(
    "data",
    [
        "id,title\n1,café crème brûlée à la carte\n".encode("cp1252"),
        TEXT.encode("utf-16"),
        b"\x00\x01\x02binary\x00",
    ],
)
def test_other_encodings_are_one_clear_error(data: bytes) -> None:
    with pytest.raises(UnreadableFile) as info:
        detect_encoding(data, name="x.csv")
    assert "x.csv" in info.value.message


def test_headers_in_chinese_and_english() -> None:
    cmap = ColumnMap.from_header(["\ufeff留言编号", " 留言主题 ", "Content", "CREATED_AT", "一级分类", "备注"])
    assert cmap.fields == {"external_id": 0, "title": 1, "content": 2, "created_at": 3, "category1": 4}
    assert cmap.extras == [("备注", 5)]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_file_headed_with_the_pages_field_names_is_read_by_them(lang: str) -> None:
    # The import page lists the headers it reads under each field's name (诉求内容, 来源渠道 …): a file headed with
    # those names had its content and channel kept as unknown columns, the orders filed under the title alone.
    names = {field: catalogue(lang)[f"field.{field}"] for field, _ in known_headers()}
    cmap = ColumnMap.from_header(list(names.values()))
    assert cmap.fields == {field: index for index, field in enumerate(names)}
    assert cmap.extras == []


def test_external_id_column_wins_over_id() -> None:
    cmap = ColumnMap.from_header(["id", "external_id", "title"])
    assert cmap.fields["external_id"] == 1
    assert ("id", 0) in cmap.extras


def test_a_header_naming_a_column_twice_is_unreadable_naming_both() -> None:
    """Which 留言详情 is the content was a guess (the first), and the second column of an unknown name overwrote the
    first's values in the attributes. Case and spaces aside the names are the same; unnamed columns are not."""
    with pytest.raises(UnreadableFile, match="columns 2 and 4 are both named '留言详情'"):
        ColumnMap.from_header(["留言主题", "留言详情", "备注", " 留言详情 "])
    with pytest.raises(UnreadableFile, match="columns 3 and 4 are both named 'note'"):
        ColumnMap.from_header(["title", "content", "Note", "NOTE"])
    assert ColumnMap.from_header(["title", "", "content", "", "x"]).fields == {"title": 0, "content": 2}


def test_a_file_without_text_columns_is_unreadable() -> None:
    with pytest.raises(UnreadableFile):
        ColumnMap.from_header(["一级分类", "二级分类", "三级分类"])


def test_stable_external_id_depends_on_every_cell_of_the_row() -> None:
    row = ["hotline", "我家楼下路灯不亮了请处理", "13811110001", "白云区三元里大道1号", ""]
    first = stable_external_id(row)
    assert first == stable_external_id(list(row)) == stable_external_id(row[:-1])  # padding is no cell
    for index in range(4):  # another citizen's appeal in the same words is another order
        assert stable_external_id([*row[:index], row[index] + "x", *row[index + 1 :]]) != first
    assert len(first) <= 128


def _index(paths: dict[str, int]) -> CategoryIndex:
    index = CategoryIndex.__new__(CategoryIndex)
    index.by_path = paths
    names: dict[str, list[int]] = {}
    for path, cat_id in paths.items():
        names.setdefault(path.rsplit("/", 1)[-1], []).append(cat_id)
    index.by_name = {n: ids[0] for n, ids in names.items() if len(ids) == 1}
    return index


def test_categories_resolve_the_deepest_known_level() -> None:
    index = _index(
        {
            "城乡建设": 1,
            "城乡建设/住房保障": 2,
            "城乡建设/住房保障/保障房": 3,
            "教育文体/其他": 4,
            "交通运输/其他": 5,
        }
    )
    assert index.resolve(["城乡建设", "住房保障", "保障房"]) == 3
    assert index.resolve(["城乡建设", "住房保障", "不存在"]) == 2
    assert index.resolve(["城乡建设", "", ""]) == 1
    assert index.resolve(["不存在"]) is None
    assert index.resolve_text("城乡建设/住房保障") == 2
    assert index.resolve_text("保障房") == 3
    assert index.resolve_text("其他") is None  # ambiguous name


@pytest.mark.parametrize(
    "value",
    [
        datetime(2019, 1, 8, 10, 20, 30, tzinfo=SHANGHAI),
        datetime(2019, 1, 8, 10, 20, 30, 5, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("America/New_York")),
        datetime(2020, 2, 29, 0, 0, tzinfo=SHANGHAI),
    ],
)
def test_sqlite_datetime_is_what_sqlalchemy_stores(value: datetime) -> None:
    from sqlalchemy.dialects import sqlite

    from cityhub.db import UTCDateTime
    from cityhub.intake.bulk import sqlite_datetime

    dialect = sqlite.dialect()
    column_type = UTCDateTime()
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    assert sqlite_datetime(value) == processor(value)


def test_sqlite_datetime_refuses_naive_times() -> None:
    from cityhub.intake.bulk import sqlite_datetime

    with pytest.raises(ValueError):
        sqlite_datetime(datetime(2019, 1, 8))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019/1/8 9:05:07", datetime(2019, 1, 8, 9, 5, 7)),
        ("2019-1-8T23:59:59", datetime(2019, 1, 8, 23, 59, 59)),
        ("2019/01/08 10:20:30.250", datetime(2019, 1, 8, 10, 20, 30, 250000)),
    ],
)
def test_common_and_fallback_forms_agree(raw: str, expected: datetime) -> None:
    assert parse_datetime(raw) == expected.replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize("raw", ["2019/2/29 10:00:00", "2019/1/8 24:00:00", "2019/1/8 10:61:00"])
def test_impossible_common_forms_are_row_errors(raw: str) -> None:
    with pytest.raises(RowError):
        parse_datetime(raw)
