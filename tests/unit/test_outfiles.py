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


def test_a_path_through_a_file_is_a_typo_and_a_folder_that_may_not_be_written_is_a_failure(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`db backup` records no failed backup for a typo (TargetRefused), but a folder it may not write — denied, a
    read-only or full disk — is the machine's state: a nightly backup failing so must show as failed (/healthz)."""
    import errno
    import os

    from cityhub import outfiles
    from cityhub.errors import ValidationFailed

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with (
        pytest.raises(outfiles.TargetRefused, match="Not a directory"),
        outfiles.private_files([a_file / "x"], "backup"),
    ):
        pass

    def denied(*args: object, **kwargs: object) -> int:
        # As root (CI) a folder's mode denies nothing: the error the kernel gives an unprivileged backup user.
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(outfiles.os, "open", denied)
    with (
        pytest.raises(ValidationFailed, match="Permission denied") as refused,
        outfiles.private_files([tmp_path / "copy.db"], "backup"),
    ):
        pass
    assert not isinstance(refused.value, outfiles.TargetRefused)
