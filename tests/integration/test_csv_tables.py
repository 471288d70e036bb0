"""The tables the reference-data imports read (divisions, categories, knowledge entries, sensors): a row that
cannot be read as the header's cells is rejected by number, and the other rows are kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from cityhub.db import session_scope
from cityhub.knowledge.models import KnowledgeEntry
from cityhub.monitoring.models import Sensor
from cityhub.org.models import Unit
from cityhub.workorders.models import Category

Run = Callable[..., tuple[int, str, str]]


def test_cells_beyond_the_header_reject_their_row(app_db: str, cli_run: Run, tmp_path: Path) -> None:
    cats = tmp_path / "cats.csv"
    cats.write_text(
        "一级分类,二级分类,三级分类\n环境保护,噪音污染,带,逗号多余\n环境保护,噪音污染,工地\n", encoding="utf-8"
    )
    code, out, err = cli_run("categories", "import", str(cats))
    assert "row 2: cells: row has 4 cells, the header has 3" in err + out
    with session_scope() as s:
        assert set(s.scalars(select(Category.name))) == {"环境保护", "噪音污染", "工地"}

    org = tmp_path / "org.csv"
    org.write_text(
        "code,name,level,parent_code\n440111999,某街道,street,\n440111999005,多余列,community,440111999,extra\n",
        encoding="utf-8",
    )
    code, out, err = cli_run("org", "import", str(org))
    assert "row 3: cells: row has 5 cells, the header has 4" in err + out
    with session_scope() as s:
        assert set(s.scalars(select(Unit.code))) == {"440111999"}

    kb = tmp_path / "kb.csv"
    kb.write_text("question,answer\n如何办理护照,到出入境窗口办理\n多余,答案,extra\n", encoding="utf-8")
    code, out, err = cli_run("kb", "import", str(kb))
    report = json.loads(out)
    assert report["rows"] == 2 and report["created"] == 1
    assert report["rejected"] == [{"row": 3, "field": "cells", "reason": "row has 3 cells, the header has 2"}]

    sensors = tmp_path / "sensors.csv"
    sensors.write_text(
        "code,name,kind,metrics\nWL-1,桂花路隧道,waterlogging,depth:cm\nWL-2,多余,waterlogging,depth:cm,extra\n",
        encoding="utf-8",
    )
    code, out, err = cli_run("sensors", "import", str(sensors))
    assert code == 0 and "read 2 rows: 1 sensors created" in out  # the good row kept (docs/operations.md)
    assert "rejected: sensors.csv: row 3: cells: row has 5 cells, the header has 4" in err
    with session_scope() as s:
        assert set(s.scalars(select(Sensor.code))) == {"WL-1"}


def test_an_unclosed_quote_and_a_long_field_reject_their_rows_only(app_db: str, cli_run: Run, tmp_path: Path) -> None:
    kb = tmp_path / "kb.csv"
    kb.write_text(
        f'question,answer\n很长的问题,{"长" * 140_000}\n"未闭合的问题,答案\n如何办理护照,到出入境窗口办理\n',
        encoding="utf-8",
    )
    code, out, err = cli_run("kb", "import", str(kb))
    assert code == 0, err
    report = json.loads(out)
    assert report["rejected"] == [
        {
            "row": 3,
            "field": "quote",
            "reason": "a quoted field opened on line 3 is not closed before the end of the file",
        },
        {"row": 2, "field": "answer", "reason": "longer than 20000 characters"},
    ]
    with session_scope() as s:
        assert list(s.scalars(select(KnowledgeEntry.question))) == ["如何办理护照"]


def test_a_question_repeated_in_a_knowledge_file_rejects_the_later_row(
    app_db: str, cli_run: Run, tmp_path: Path
) -> None:
    kb = tmp_path / "kb.csv"
    kb.write_text(
        "question,answer,keywords\n如何办理护照测试,携带身份证到街道办理,护照;办理\n如何办理护照测试,重复的第二个答案,\n",
        encoding="utf-8",
    )
    for created in (1, 0):
        code, out, err = cli_run("kb", "import", str(kb))
        assert code == 0, err
        report = json.loads(out)
        assert (report["created"], report["updated"]) == (created, 0)
        assert report["rejected"] == [{"row": 3, "field": "question", "reason": "already on row 2"}]
    with session_scope() as s:
        [entry] = s.scalars(select(KnowledgeEntry))
        assert entry.answer == "携带身份证到街道办理"
