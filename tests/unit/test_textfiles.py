"""Users' text files in UTF-8 or GBK: one reader for imports, training data and address lists."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhub.errors import NotFound, ValidationFailed
from cityhub.nlp import classifier
from cityhub.nlp.cli import app as nlp_app
from cityhub.textfiles import SAMPLE_BYTES, UnreadableFile, read_text

LABELLED = "id,title,content,created_at,category\n1,路灯坏了,嘉禾街路灯不亮,2020-01-01,城乡建设\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_read_text_in_utf8_with_or_without_bom_and_gbk(tmp_path: Path, encoding: str) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(LABELLED.encode(encoding))
    assert read_text(f) == LABELLED


def test_missing_file_and_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"none\.txt: file not found"):
        read_text(tmp_path / "none.txt")
    with pytest.raises(UnreadableFile, match="is a directory"):
        read_text(tmp_path)
    # Tables (order imports, labelled data) say it in the same words.
    with pytest.raises(UnreadableFile, match=r"none\.csv: file not found"):
        classifier.read_labelled_csv(tmp_path / "none.csv")


def test_bad_bytes_after_the_sample_name_their_line(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    lines = ("x" * 99 + "\n") * (SAMPLE_BYTES // 100 + 10)
    f.write_bytes(lines.encode() + b"\xff\xfe\n")
    with pytest.raises(UnreadableFile) as info:
        read_text(f)
    assert f"line {lines.count(chr(10)) + 1}" in info.value.message and "a.txt" in info.value.message


def test_a_pipe_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as fh:
            fh.write("白云区嘉禾街望南社区\n".encode("gbk"))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert read_text(fifo) == "白云区嘉禾街望南社区\n"
    finally:
        writer.join(timeout=5)


def test_labelled_csv_in_gbk_and_a_malformed_row_is_skipped_not_fatal(tmp_path: Path) -> None:
    f = tmp_path / "train.csv"
    text = LABELLED + "2,停水,京溪街停水,三天了,2020-01-02,城乡建设\n3,噪音,施工噪音扰民,2020-01-03,环境保护\n"
    f.write_bytes(text.encode("gbk"))
    records, report = classifier.read_labelled_csv(f)
    assert [r.id for r in records] == ["1", "3"] and records[0].title == "路灯坏了"
    assert report.rows == 3 and report.kept == 2
    assert report.skipped == [{"row": 3, "id": "2", "reason": "6 fields, the header has 5"}]
    assert len(report.sha256) == 64


def test_locate_reads_a_gbk_address_list(tmp_path: Path) -> None:
    f = tmp_path / "addr.txt"
    f.write_bytes("白云区嘉禾街望南社区\n".encode("gbk"))
    result = CliRunner().invoke(nlp_app, ["locate", "--input", str(f), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["street_code"] == "440111012"


def test_locate_reads_standard_input_as_it_reads_a_file() -> None:
    for raw in ("白云区嘉禾街望南社区\n".encode("gbk"), "\ufeff白云区嘉禾街望南社区\n".encode()):
        result = CliRunner().invoke(nlp_app, ["locate", "--input", "-", "--json"], input=raw)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert (answer["input"], answer["street_code"]) == ("白云区嘉禾街望南社区", "440111012")
    result = CliRunner().invoke(nlp_app, ["locate", "--input", "-"], input="白云区".encode("utf-16"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: standard input is UTF-16 text; save it as UTF-8 (or GBK) and try again"
    ]


def test_lines_end_where_an_editor_ends_them() -> None:
    from cityhub.textfiles import text_lines

    assert text_lines("a\u2028b\x0cc\x85d\r\ne\rf\ng\n") == ["a\u2028b\x0cc\x85d", "e", "f", "g"]
    assert text_lines("") == [] and text_lines("\n") == [""] and text_lines("x") == ["x"]


def test_locate_answers_each_line_once_even_with_a_line_separator_inside(tmp_path: Path) -> None:
    f = tmp_path / "addr.txt"
    f.write_text("白云区嘉禾街\u2028望南社区\n京溪街南方医院附近\n", encoding="utf-8")
    result = CliRunner().invoke(nlp_app, ["locate", "--input", str(f), "--json"])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.split("\n") if line]  # JSON lines end at LF only
    assert [a["input"] for a in answers] == ["白云区嘉禾街\u2028望南社区", "京溪街南方医院附近"]
    assert answers[0]["street_code"] == "440111012"


def test_locate_names_an_unreadable_file_in_one_line(tmp_path: Path) -> None:
    f = tmp_path / "addr.txt"
    f.write_bytes("白云区".encode("utf-16"))
    result = CliRunner().invoke(nlp_app, ["locate", "--input", str(f), "--json"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {f} is UTF-16 text; save it as UTF-8 (or GBK) and try again"]


def test_labelled_excel_with_the_message_boards_chinese_headers(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "一级标签"])
    sheet.append([24, "A00045581", "路灯坏了", "2020/1/6 12:09:38", "嘉禾街路灯不亮", "城乡建设"])
    sheet.append([37, "U0008473", "", "2020/1/4 11:17:46", "", "环境保护"])
    f = tmp_path / "附件2.xlsx"
    workbook.save(f)
    records, report = classifier.read_labelled_csv(f)
    assert [(r.id, r.title, r.content, r.category) for r in records] == [
        ("24", "路灯坏了", "嘉禾街路灯不亮", "城乡建设")
    ]
    assert report.skipped == [{"row": 3, "id": "37", "reason": "empty text"}]


def test_labelled_tab_separated_gbk_with_chinese_headers(tmp_path: Path) -> None:
    f = tmp_path / "train.tsv"
    f.write_bytes("编号\t主题\t详情\t一级分类\n7\t停水\t京溪街停水三天\t城乡建设\n".encode("gbk"))
    records, _ = classifier.read_labelled_csv(f)
    assert [(r.id, r.title, r.category) for r in records] == [("7", "停水", "城乡建设")]


def test_labelled_file_without_a_label_column_is_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "train.csv"
    f.write_text("id,title,content\n1,路灯坏了,不亮\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="lacks a category column"):
        classifier.read_labelled_csv(f)


def test_a_labelled_file_naming_a_column_twice_is_refused_naming_both(tmp_path: Path) -> None:
    """Two 一级分类 columns (a spreadsheet's copied column): which holds the label was a silent guess (the first)."""
    f = tmp_path / "train.csv"
    f.write_text("编号,主题,详情,一级分类,一级分类\n7,停水,京溪街停水三天,城乡建设,环境保护\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="columns 4 and 5 are both named '一级分类'"):
        classifier.read_labelled_csv(f)
    result = CliRunner().invoke(nlp_app, ["train", "--data", str(f), "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "columns 4 and 5 are both named '一级分类'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_texts_to_classify_from_a_chinese_headed_file_or_plain_lines(tmp_path: Path) -> None:
    table = tmp_path / "new.csv"
    table.write_text("留言编号,留言主题,留言详情\n9,路灯坏了,嘉禾街路灯不亮\n", encoding="utf-8")
    ids, texts = classifier.read_texts(table)
    assert ids == ["9"] and "路灯坏了" in texts[0] and "嘉禾街路灯不亮" in texts[0]
    lines = tmp_path / "new.txt"
    lines.write_bytes("路灯坏了\n\n停水三天\n".encode("gbk"))
    assert classifier.read_texts(lines) == ([1, 3], ["路灯坏了", "停水三天"])


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_a_few_stray_bytes_in_the_sample_do_not_change_the_encoding(encoding: str) -> None:
    from cityhub.textfiles import detect_encoding

    text = (LABELLED * 40).encode(encoding)
    damaged = text[:500] + b"\xff" + text[500:]
    assert detect_encoding(damaged) == ("utf-8" if encoding == "utf-8" else "gb18030")
    # Text in another encoding fails everywhere, not at a spot: still refused.
    with pytest.raises(UnreadableFile):
        detect_encoding(("id,title\n" + "1,café crème brûlée à la carte\n" * 40).encode("cp1252"))


def test_bad_bytes_in_the_sample_name_their_line(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes((LABELLED * 40).encode() + b"\xff\xfe\n" + (LABELLED * 40).encode())
    with pytest.raises(UnreadableFile) as info:
        read_text(f)
    assert "line 81: bytes that are not utf-8" in info.value.message


def test_csv_records_read_long_fields_and_resume_after_an_unclosed_quote() -> None:
    import io

    from cityhub.textfiles import csv_records

    text = 'a,b\r\n1,"' + "x" * 300_000 + '"\r\n2,"open\r\n3,three\r\n4,two lines\r\n'
    records = list(csv_records(io.StringIO(text, newline="")))
    assert [(cells[0], len(cells[1]), problem) for cells, problem in records] == [
        ("a", 1, None),
        ("1", 300_000, None),
        ("2", 4, "a quoted field opened on line 3 is not closed before the end of the file"),
        ("3", 5, None),
        ("4", 9, None),
    ]
    # A quote opened at the very end: nothing is swallowed.
    assert list(csv_records(["a,b\n", '1,"'])) == [
        (["a", "b"], None),
        (["1", ""], "a quoted field opened on line 2 is not closed before the end of the file"),
    ]
