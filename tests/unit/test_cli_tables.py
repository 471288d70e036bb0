"""Tables a command prints for a terminal: columns line up where a Chinese character takes two columns."""

from __future__ import annotations

import unicodedata

from cityhub.clitools import aligned


def _column_of(line: str, cell: str) -> int:
    """The terminal column at which ``cell`` starts in ``line``."""
    before = line[: line.index(cell)]
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in before)


def test_columns_line_up_in_terminal_columns_with_chinese_names() -> None:
    rows = [
        ("admin", "admin", "系统管理员", "白云区"),
        ("operator", "operator", "陈晓敏", "白云区12345政府服务热线分中心"),
        ("citizen", "citizen", "张伟", ""),
    ]
    lines = aligned(rows)
    assert len({_column_of(line, row[2]) for line, row in zip(lines, rows, strict=True)}) == 1
    assert _column_of(lines[0], "白云区") == _column_of(lines[1], "白云区12345")
    assert lines[2] == "  citizen   citizen   张伟"  # nothing padded at the end of a line
    assert all(line.startswith("  ") for line in lines)


def test_a_short_row_and_no_rows() -> None:
    assert aligned([("a", "bb"), ("ccc",)]) == ["  a    bb", "  ccc"]
    assert aligned([]) == []
