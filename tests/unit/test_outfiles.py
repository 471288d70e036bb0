"""The CSV cells written for people to open in a spreadsheet (cityhub.outfiles.SpreadsheetCsv)."""

from __future__ import annotations

import csv
import io

import pytest

from cityhub.outfiles import SpreadsheetCsv, spreadsheet_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://example.com/x","点击")', '\'=HYPERLINK("http://example.com/x","点击")'),
        ("=1+1", "'=1+1"),
        ("+86 138 1234 5678", "'+86 138 1234 5678"),
        ("-路灯不亮", "'-路灯不亮"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-2+3", "'-2+3"),
        ("-inf", "'-inf"),
        ('＝HYPERLINK("http://example.com/x")', '\'＝HYPERLINK("http://example.com/x")'),  # full-width, as typed
        ("＋1+1", "'＋1+1"),
        ("－1", "'－1"),
        ("＠SUM(A1)", "'＠SUM(A1)"),
        # Numbers stay numbers, whichever way they come; the lone "-" of no value; texts that start otherwise.
        ("-3.5", "-3.5"),
        ("+12", "+12"),
        ("-1e-3", "-1e-3"),
        ("-", "-"),
        ("路灯不亮 =1+1", "路灯不亮 =1+1"),
        ("'=1+1", "'=1+1"),
        ("", ""),
        (-3.5, -3.5),
        (None, None),
        (True, True),
    ],
)
def test_a_text_a_spreadsheet_would_run_gets_a_quote_in_front(value: object, written: object) -> None:
    assert spreadsheet_cell(value) == written


def test_the_writer_quotes_every_cell_of_every_row() -> None:
    out = io.StringIO()
    writer = SpreadsheetCsv(out)
    writer.writerow(["title", "lat"])
    writer.writerows([["=cmd|' /C calc'!A0", -33.9], ["路灯", 23.1]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["title", "lat"],
        ["'=cmd|' /C calc'!A0", "-33.9"],
        ["路灯", "23.1"],
    ]
