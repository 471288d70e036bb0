"""Output paths of the command line: a path that cannot be written, or that is the command's own input, is one
line naming it, said before the work; nothing is written over an input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from cityhub.db import make_engine

ORDERS = (
    "id,title,content,created_at\n"
    "A1,路灯不亮,嘉禾街路灯坏了,2024-05-01 10:00:00\n"
    "A2,噪音,夜间施工噪音,2024-05-02 10:00:00\n"
)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_hot_topic_state_paths(cli_run: Any, tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS, encoding="utf-8")
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x", encoding="utf-8")
    garbage = tmp_path / "garbage.pkl"
    garbage.write_text("garbage\n", encoding="utf-8")
    cases = {
        tmp_path: f"error: --state {tmp_path} is a directory; give a file name",
        orders: f"error: --state {orders} is the input file; give another name (it would be overwritten)",
        a_file / "x.pkl": f"error: --state {a_file / 'x.pkl'}: {a_file} is a file; give a directory for the file",
        garbage: f"error: {garbage} is not a hot-topic state written by cityhub (give another file)",
    }
    for state, message in cases.items():
        code, _, err = cli_run("analytics", "hot-topics", "--input", str(orders), "--state", str(state))
        assert (code, _one_line(err)) == (1, message)
    assert orders.read_text(encoding="utf-8") == ORDERS
    assert garbage.read_text(encoding="utf-8") == "garbage\n"


def test_graph_out_paths(cli_run: Any, tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS, encoding="utf-8")
    cases = {
        tmp_path: f"error: --out {tmp_path} is a directory; give a file name",
        orders: f"error: --out {orders} is the input file; give another name (it would be overwritten)",
    }
    for out, message in cases.items():
        code, _, err = cli_run("analytics", "graph", "build", "--input", str(orders), "--out", str(out))
        assert (code, _one_line(err)) == (1, message)
    assert orders.read_text(encoding="utf-8") == ORDERS


def test_report_and_demo_csv_targets(app_db: str, cli_run: Any, tmp_path: Path) -> None:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x", encoding="utf-8")
    code, _, err = cli_run("report", "--period", "2026-11", "--out", str(a_file), "--format", "html")
    assert code != 0 and _one_line(err) == f"error: --out: {a_file} is a file; give a directory for the report"
    code, _, err = cli_run("report", "--period", "2026-11", "--out", str(a_file / "sub"), "--format", "html")
    assert code != 0
    assert _one_line(err) == f"error: --out: cannot write the report into {a_file / 'sub'}: Not a directory"
    for given in (["--period", "2026-11", "--week", "2026-W43"], []):  # the week used to win silently
        code, _, err = cli_run("report", *given, "--out", str(tmp_path), "--format", "html")
        said = "both given" if given else "neither given"
        assert code != 0 and f"give the period or the week, one of them ({said})" in _one_line(err)
    assert not list(tmp_path.glob("*.html"))
    code, _, err = cli_run("demo", "csv", str(tmp_path), "-n", "2")
    assert code != 0 and _one_line(err) == f"error: target {tmp_path} is a directory; give a file name"
    code, _, err = cli_run("demo", "csv", str(a_file / "x.csv"), "-n", "2")
    assert (
        code != 0
        and _one_line(err) == f"error: target {a_file / 'x.csv'}: {a_file} is a file; give a directory for the file"
    )
    assert a_file.read_text(encoding="utf-8") == "x"


def test_db_upgrade_to_an_unknown_revision_is_one_line(app_db: str, cli_run: Any) -> None:
    code, _, err = cli_run("db", "upgrade", "bogusrev")
    assert (code, _one_line(err)) == (1, "error: db upgrade bogusrev: Can't locate revision identified by 'bogusrev'")


def test_db_upgrade_of_a_database_a_newer_release_migrated_says_so(app_db: str, cli_run: Any) -> None:
    """Alembic only said it could not locate the revision, as if the database were broken."""
    engine = make_engine(app_db)
    try:
        with engine.begin() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        code, _, err = cli_run("db", "upgrade")
        assert (code, _one_line(err)) == (
            2,  # could not run (docs/operations.md, Exit codes)
            "error: db upgrade: the database is at migration 9999_future, which this version of cityhub does not "
            "know (a newer release migrated it); install that release or restore a backup",
        )
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        engine.dispose()


def test_hot_topics_of_a_file_without_orders_is_one_line(cli_run: Any, tmp_path: Path) -> None:
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("id,title,content,created_at,category\n", encoding="utf-8")
    code, _, err = cli_run("analytics", "hot-topics", "--input", str(header_only))
    assert (code, _one_line(err)) == (
        1,
        f"error: {header_only}: no orders to mine (the file has no rows with a title or content)",
    )


def test_hot_topics_refuses_a_state_without_input_and_a_threshold_outside_0_1(cli_run: Any, tmp_path: Path) -> None:
    """A state file is read and written only with --input: without one it was ignored unseen; a threshold of -1
    put every order in one topic."""
    code, _, err = cli_run("analytics", "hot-topics", "--state", str(tmp_path / "s.pkl"))
    assert code == 2 and "a state file goes with --input" in err and not (tmp_path / "s.pkl").exists()
    orders = tmp_path / "o.csv"
    orders.write_text("id,title,content\n1,路灯,路灯不亮\n", encoding="utf-8")
    for bad in ("-1", "0", "1.5"):
        code, _, err = cli_run("analytics", "hot-topics", "--input", str(orders), "--threshold", bad)
        assert code == 2 and "--threshold" in err, bad


def test_invalid_values_name_their_field_in_one_line(app_db: str, cli_run: Any, tmp_path: Path) -> None:
    divisions = tmp_path / "divisions.csv"
    divisions.write_text(
        "code,name,level,parent_code\n440111,白云区,district,\n440111012,嘉禾街道,street,440111\n", encoding="utf-8"
    )
    assert cli_run("org", "import", str(divisions))[0] == 0
    code, _, err = cli_run("dispatch", "rules", "add", "--name", "x", "--unit", "440111012", "--tier", "planet")
    assert code == 1
    assert _one_line(err) == "error: tier: Input should be 'community', 'street', 'department' or 'district'"
    code, _, err = cli_run("dispatch", "rules", "add", "--name", "x", "--unit", "440111012", "--keywords", ",,,")
    assert code == 1 and _one_line(err).startswith("error: keywords: keywords are all blank")
    code, _, err = cli_run("users", "create", "--username", "a b", "--role", "admin")
    assert code == 1 and _one_line(err) == "error: username: String should match pattern '^[A-Za-z0-9_.@-]{2,64}$'"


def test_an_empty_actor_and_a_limit_below_one_are_refused(app_db: str, cli_run: Any, tmp_path: Path) -> None:
    code, out, err = cli_run("orders", "create", "--content", "路灯不亮", "--channel", "hotline")
    assert code == 0, err
    number = json.loads(out)["number"]
    code, _, err = cli_run("orders", "act", number, "accept", "--actor", " ")
    assert (code, _one_line(err)) == (1, "error: --actor: empty; give the name the audit trail records")
    code, out, _ = cli_run("orders", "show", number)
    assert json.loads(out)["state"] == "received"
    replies = tmp_path / "replies.csv"
    replies.write_text("留言编号,留言主题,留言详情,答复意见\n1,路灯,路灯不亮,已修复\n", encoding="utf-8")
    for limit in ("0", "-1"):
        code, _, err = cli_run("kb", "seed-replies", str(replies), "--limit", limit)
        assert code == 2 and "--limit" in err
