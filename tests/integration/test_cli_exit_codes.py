"""One rule for the exit codes of every command (docs/operations.md, *Exit codes*): 0 done; 1 the command ran and
refused (a thing not found, a conflict, a step the order's state does not allow, an import that took none of its
rows); 2 the command could not run (its command line, invalid settings, a database it cannot use).

Before, a service error reaching ``cli.main`` exited 2 while the commands' own "not found" exited 1, the alarm and
knowledge commands' unknown ids exited 2, and the imports disagreed: ``import orders`` exited 0 with every row
rejected, ``sensors import`` and ``calendar import`` 1 as soon as one row was."""

from __future__ import annotations

import json
import re
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
    # 交办 naming no unit without an instruction (交办意见) records nothing worth a 领导交办: refused, one line.
    assert cli_run("orders", "act", created["number"], "dispatch", "-p", f"unit_id={district}")[0] == 0
    code, _, err = cli_run("orders", "act", created["number"], "assign")
    assert (code, err.strip()) == (1, "error: action 'assign' needs 'reason' (order in state 'dispatched')"), err
    # a refusal names the parameter at fault, as the API's details.field does, where its message does not
    code, _, err = cli_run(
        "orders", "act", created["number"], "return", "-p", "reason=不归我们管", "-p", "suggest_unit_id=99999999"
    )
    assert (code, err.strip()) == (1, "error: unknown or inactive unit 99999999 (suggest_unit_id)"), err
    # The command line itself: click's usage errors, 2 as before — in one line like every other error (they were a
    # usage block and a boxed message), with where to read how the command is used.
    usage = {
        ("orders", "show"): "error: Missing argument 'ref'. Try 'cityhub orders show --help' for help.",
        ("orders", "show", "1", "--no-such-option"): "error: No such option: --no-such-option",
        ("orders", "lst"): "error: No such command 'lst'. Try 'cityhub orders --help' for help.",
        ("alarms", "list", "--limit", "x"): "error: Invalid value for '--limit': Input should be a valid integer",
        # an action the life cycle does not have (was 1, "not allowed in state 'received': unknown action")
        ("orders", "act", created["number"], "dispach"): (
            "error: Invalid value for 'action': unknown action 'dispach' (one of: instant_answer, dispatch, accept,"
        ),
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
    assert code == 0, err
    kept = r"imported 1 as import batch (\d+) \(/orders\?import_batch_id=\1\), skipped 0 already present, rejected 1"
    assert re.search(kept, err), err
    code, _, err = cli_run("import", "orders", str(orders))  # again: the good row already there, taken
    assert code == 0 and "imported 0, skipped 1 already present, rejected 1" in err

    sensors = tmp_path / "sensors.csv"
    sensors.write_text("code,name,kind,metrics\nWL-1,桂花隧道,waterlogging,depth:cm\nWL-2,北站,nonsense,depth:cm\n")
    code, out, err = cli_run("sensors", "import", str(sensors))
    assert code == 0 and "1 sensors created" in out and "rejected: sensors.csv: row 3: kind: " in err  # was 1
    sensors.write_text("code,name,kind,metrics\nWL-3,北站,nonsense,depth:cm\n")
    code, _, err = cli_run("sensors", "import", str(sensors))
    assert code == 1
    assert err.strip().splitlines()[-1] == "error: sensors.csv: nothing imported: all 1 rows read were rejected"

    days = tmp_path / "days.csv"
    days.write_text("2030-10-08,上班,国庆节\n2030-13-01,放假,\n", encoding="utf-8")
    code, out, _ = cli_run("calendar", "import", str(days), "--no-recompute")
    assert code == 0 and out.startswith("1 days entered") and "1 rows rejected" in out  # was 1
    days.write_text("2030-13-01,放假,\n", encoding="utf-8")
    code, out, err = cli_run("calendar", "import", str(days), "--no-recompute")
    assert code == 1 and out.startswith("0 days entered")
    assert err.strip().splitlines()[-1] == "error: days.csv: nothing imported: all 1 rows read were rejected"  # none

    entries = tmp_path / "kb.csv"
    entries.write_text("question,answer\n,没有问题的回答\n", encoding="utf-8")
    code, out, err = cli_run("kb", "import", str(entries))
    assert code == 1 and json.loads(out)["rejected"]  # was 0
    assert err.strip().splitlines()[-1] == "error: kb.csv: nothing imported: all 1 rows read were rejected"


# Each import with one good row and one bad row (row 3), and its header alone: (arguments, file, header, good, bad).
IMPORTS = [
    (
        ("import", "orders"),
        "orders.csv",
        "id,title,content,created_at",
        "o1,路灯,路灯不亮,2019-01-08",
        "o2,井盖,井盖丢了,2999-01-08",
    ),
    (
        ("org", "import"),
        "units.csv",
        "code,name,level,parent_code",
        "440111001,景泰街道,street,440111",
        "440111002,,street,440111",
    ),
    # After `org import`, whose good row made the street 440111001.
    (("org", "aliases", "import"), "aliases.csv", "alias,unit_code,kind", "景泰大道,440111001,road", "北门,NOPE,"),
    (("categories", "import"), "categories.csv", "code,name,parent_code", "C1,市容环境,", "C2,,C1"),
    (
        ("sensors", "import"),
        "sensors.csv",
        "code,name,kind,metrics",
        "WL-1,桂花隧道,waterlogging,depth:cm",
        "WL-2,北站,nonsense,depth:cm",
    ),
    (
        ("sensors", "readings"),
        "readings.csv",
        "sensor_code,measured_at,value",
        "WL-1,2026-11-30T08:00:00+08:00,5",
        "WL-1,2026-11-30T08:05:00+08:00,abc",
    ),
    (("kb", "import"), "kb.csv", "question,answer", "如何办理护照,到出入境窗口办理", ",没有问题的回答"),
    (("calendar", "import"), "days.csv", "date,kind,name", "2030-10-08,上班,国庆节", "2030-13-01,放假,"),
]


def test_every_import_lists_its_rejected_rows_in_one_form_and_keeps_the_good_ones(
    district: int, cli_run: CliRun, tmp_path: Path
) -> None:
    """Each import said its rejected rows its own way — ``row 3: field: …`` (orders, org, categories), ``rejected:
    row 3, field kind: …`` (sensors), ``error: FILE: row 3: …`` (calendar, though it exited 0), only in its JSON
    (kb). Now one form, ``rejected: FILE: row N: field: problem``, before a summary line counting the rejected rows,
    and no ``error:`` while rows were taken (exit 0)."""
    for args, name, header, good, bad in IMPORTS:
        path = tmp_path / name
        path.write_text(f"{header}\n{good}\n{bad}\n", encoding="utf-8")
        code, out, err = cli_run(*args, str(path), *(("--no-recompute",) if args[0] == "calendar" else ()))
        lines = err.strip().splitlines()
        assert code == 0, (args, err)
        assert lines[0].startswith(f"rejected: {name}: row 3: "), (args, err)
        assert len(lines[0].split(": ")) >= 5, (args, lines[0])  # rejected: FILE: row N: field: problem
        assert not any(line.startswith("error:") for line in lines), (args, err)
        summary = (out if args[0] != "kb" else "") + err
        assert re.search(r"\b(rejected 1|1 rejected|1 rows rejected)\b", summary), (args, summary)


def test_every_import_refuses_a_table_with_no_rows_naming_it(district: int, cli_run: CliRun, tmp_path: Path) -> None:
    """A header alone: ``import orders``, ``sensors import``, ``sensors readings`` and ``kb import`` exited 0 having
    read nothing, ``org import`` and ``categories import`` 1 with ``error: nothing imported`` naming no file."""
    for args, name, header, _good, _bad in IMPORTS:
        path = tmp_path / name
        path.write_text(f"{header}\n", encoding="utf-8")
        code, _, err = cli_run(*args, str(path))
        last = err.strip().splitlines()[-1]
        assert code == 1, (args, err)
        if args[0] == "calendar":  # says what a calendar file holds (as its page and the API do)
            assert last.startswith(f"error: {path}: no calendar days in it"), last
        else:
            assert last == f"error: {name}: nothing imported: no rows in it, only a header", (args, err)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    for args, *_ in IMPORTS:
        code, _, err = cli_run(*args, str(empty))
        assert code == 1 and len(err.strip().splitlines()) == 1 and "empty.csv" in err, (args, err)


def test_a_service_a_command_needs_failing_exits_2_and_a_refusal_1(
    district: int, cli_run: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``orders attach`` caught the file store's failure itself and exited 1, as for a refusal: a script retried
    nothing, or gave up on a file that was fine. A service the command needs failing is 2 (could not run)."""
    created = json.loads(cli_run("orders", "create", "--content", "小区路灯不亮已经一周")[1])
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("CITYHUB_FILES_DIR", str(blocker / "files"))  # a file stands where a directory must be made
    code, out, err = cli_run("orders", "attach", created["number"], str(photo))
    assert (code, out) == (2, "") and err.startswith("error: the file store cannot be written"), err  # was 1
    code, _, err = cli_run("orders", "attach", "BY20000101-000001", str(photo))  # a refusal stays 1
    assert (code, err.strip()) == (1, "error: order 'BY20000101-000001' not found")
    code, _, err = cli_run("orders", "act", created["number"], "close")  # the service's refusal: 1
    assert code == 1 and err.startswith("error: action 'close' is not allowed")


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
