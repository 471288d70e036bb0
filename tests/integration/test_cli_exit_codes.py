"""One rule for the exit codes of every command (docs/operations.md, *Exit codes*): 0 done; 1 the command ran and
refused (a thing not found, a conflict, a step the order's state does not allow, an import that took none of its
rows); 2 the command could not run (its command line, invalid settings, a database it cannot use).

Before, a service error reaching ``cli.main`` exited 2 while the commands' own "not found" exited 1, the alarm and
knowledge commands' unknown ids exited 2, and the imports disagreed: ``import orders`` exited 0 with every row
rejected, ``sensors import`` and ``calendar import`` 1 as soon as one row was."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cityhub.db import session_scope
from cityhub.org.models import Unit, UnitTier

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def district(app_db: str) -> int:
    with session_scope() as s:
        unit = Unit(code="440111", name="白云区", tier=UnitTier.DISTRICT)
        s.add(unit)
        s.flush()
        return unit.id


def test_a_refusal_exits_1_and_a_command_that_could_not_run_2(district: int, cli_run: CliRun) -> None:
    # Refusals, whether the command says them itself or a service error reaches cli.main: 1, one line each.
    refusals = [
        (("orders", "show", "99999"), "order '99999' not found"),
        (("alarms", "ack", "99999999999"), "alarm 99999999999 not found"),  # an id no key can hold (was 2)
        (("alarm-rules", "set", "99999999999", "--threshold", "3"), "alarm rule 99999999999 not found"),
        (("kb", "deactivate", "99999999999"), "knowledge entry 99999999999 not found"),
        (("alarms", "clear", "12345"), "alarm 12345 not found"),  # a NotFound reaching cli.main (was 2)
    ]
    for args, message in refusals:
        code, out, err = cli_run(*args)
        assert (code, out, err.strip()) == (1, "", f"error: {message}"), (args, code, err)
    created = json.loads(cli_run("orders", "create", "--content", "小区路灯不亮已经一周")[1])
    code, _, err = cli_run("orders", "act", created["number"], "close")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "close" in err
    # The command line itself: click's usage errors, 2 as before — in one line like every other error (they were a
    # usage block and a boxed message), with where to read how the command is used.
    usage = {
        ("orders", "show"): "error: Missing argument 'ref'. Try 'cityhub orders show --help' for help.",
        ("orders", "show", "1", "--no-such-option"): "error: No such option: --no-such-option",
        ("orders", "lst"): "error: No such command 'lst'. Try 'cityhub orders --help' for help.",
        ("alarms", "list", "--limit", "x"): "error: Invalid value for '--limit': Input should be a valid integer",
    }
    for args, said in usage.items():
        code, out, err = cli_run(*args)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and err.startswith(said), (args, err)
    # A group without its command shows the group's help, as before.
    code, out, _ = cli_run("orders")
    assert code == 2 and "Usage: cityhub orders" in out and "show" in out
    # A database it cannot use, invalid settings: 2 as before (test_db_backends, test_config_cli).


def test_an_import_that_took_none_of_its_rows_exits_1_and_one_that_kept_some_0(
    district: int, cli_run: CliRun, tmp_path: Path
) -> None:
    """A script must not read an import whose every row was rejected as done; rows rejected beside rows kept are
    listed and counted, exit 0 — as ``import orders`` documented (and ``org import`` did)."""
    orders = tmp_path / "orders.csv"
    orders.write_text("id,title,content,created_at\nx1,路灯,路灯不亮,2999-01-08\nx2,井盖,井盖丢了,2999-01-08\n")
    code, _, err = cli_run("import", "orders", str(orders))
    assert code == 1, err  # was 0
    assert "read 2, imported 0, skipped 0 already present, rejected 2" in err
    assert err.strip().splitlines()[-1] == "error: orders.csv: nothing imported: all 2 rows read were rejected"
    orders.write_text("id,title,content,created_at\nx1,路灯,路灯不亮,2019-01-08\nx2,井盖,井盖丢了,2999-01-08\n")
    code, _, err = cli_run("import", "orders", str(orders))
    assert code == 0 and "imported 1, skipped 0 already present, rejected 1" in err
    code, _, err = cli_run("import", "orders", str(orders))  # again: the good row already there, taken
    assert code == 0 and "imported 0, skipped 1 already present, rejected 1" in err

    sensors = tmp_path / "sensors.csv"
    sensors.write_text("code,name,kind,metrics\nWL-1,桂花隧道,waterlogging,depth:cm\nWL-2,北站,nonsense,depth:cm\n")
    code, out, err = cli_run("sensors", "import", str(sensors))
    assert code == 0 and "1 sensors created" in out and "rejected: row 3" in err  # was 1
    sensors.write_text("code,name,kind,metrics\nWL-3,北站,nonsense,depth:cm\n")
    code, _, err = cli_run("sensors", "import", str(sensors))
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: 1 of 1 rows rejected (first: row 2")

    days = tmp_path / "days.csv"
    days.write_text("2030-10-08,上班,国庆节\n2030-13-01,放假,\n", encoding="utf-8")
    code, out, _ = cli_run("calendar", "import", str(days), "--no-recompute")
    assert code == 0 and out.startswith("1 days entered") and "1 rows refused" in out  # was 1
    days.write_text("2030-13-01,放假,\n", encoding="utf-8")
    code, out, _ = cli_run("calendar", "import", str(days), "--no-recompute")
    assert code == 1 and out.startswith("0 days entered")

    entries = tmp_path / "kb.csv"
    entries.write_text("question,answer\n,没有问题的回答\n", encoding="utf-8")
    code, out, err = cli_run("kb", "import", str(entries))
    assert code == 1 and json.loads(out)["rejected"]  # was 0
    assert err.strip() == "error: kb.csv: nothing imported: all 1 rows read were rejected"


def test_jobs_status_names_the_jobs_that_have_not_run_yet(app_db: str, cli_run: CliRun) -> None:
    """Before any job had run, ``jobs status`` printed nothing at all — as if there were no jobs."""
    from cityhub import jobs

    code, out, _ = cli_run("jobs", "status")
    lines = out.splitlines()
    assert code == 0 and [line.split("\t")[0] for line in lines] == sorted(jobs.JOBS)
    assert "sla-sweep\tnever run\tevery " in out and all("\tnever run\tevery " in line for line in lines)
    as_json = [json.loads(line) for line in cli_run("jobs", "status", "--json")[1].splitlines()]
    assert [r["name"] for r in as_json] == sorted(jobs.JOBS)
    assert all(r["last_started_at"] is None and r["failures"] == 0 for r in as_json)
    jobs.run_job("files-prune")
    out = cli_run("jobs", "status")[1]
    assert "files-prune\tlast finished 20" in out and "\tok" in out and "sla-sweep\tnever run" in out
