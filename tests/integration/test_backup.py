"""`cityhub db backup` takes a consistent copy while writers go on (SQLite online backup, pg_dump)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cityhub.backup import backup, backup_label
from cityhub.db import session_scope
from cityhub.errors import ToolFailed, ValidationFailed
from cityhub.intake.service import submit


def _add_orders(n: int, tag: str) -> None:
    for i in range(n):
        with session_scope() as s:
            data = {"channel": "web", "content": f"{tag} 第{i}条：路面破损需要修补", "external_id": f"{tag}-{i}"}
            submit(s, data=data)


def test_sqlite_backup_is_consistent_while_writing(app_db, db_backend, tmp_path):
    if db_backend != "sqlite":
        pytest.skip("the SQLite online backup")
    _add_orders(20, "before")
    writer = threading.Thread(target=_add_orders, args=(40, "during"))
    writer.start()
    target = tmp_path / "copy.db"
    backup(target)
    writer.join()
    copy = sqlite3.connect(target)
    orders = copy.execute("SELECT count(*) FROM orders").fetchone()[0]
    events = copy.execute("SELECT count(*) FROM order_events WHERE action = 'create'").fetchone()[0]
    assert orders >= 20 and orders == events  # every copied order has its audit event: one snapshot
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_postgres_backup_is_a_restorable_dump(app_db, db_backend, tmp_path):
    if db_backend != "postgresql":
        pytest.skip("pg_dump")
    if shutil.which("pg_restore") is None:
        pytest.skip("pg_restore is not installed")
    _add_orders(5, "pg")
    target = tmp_path / "copy.dump"
    backup(target)
    listing = subprocess.run(["pg_restore", "--list", str(target)], capture_output=True, text=True, check=True)
    assert "TABLE DATA public orders" in listing.stdout


def test_cli_backup_and_bad_targets(app_db, db_backend, tmp_path):
    from cityhub.cli import _mount, app

    _mount()
    result = CliRunner().invoke(app, ["db", "backup", str(tmp_path / "cli.copy")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli.copy").stat().st_size > 0
    with pytest.raises(ValidationFailed):
        backup(tmp_path / "x.db", url="sqlite:///:memory:")


def _cli_backup(target: object) -> object:
    from cityhub.cli import _mount, app

    _mount()
    return CliRunner().invoke(app, ["db", "backup", str(target)])


def test_backups_are_private(app_db, db_backend, tmp_path):
    if db_backend == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump")
    _add_orders(2, "private")
    target = tmp_path / "copy.bak"
    target.write_text("an older copy, readable by all")
    target.chmod(0o644)
    backup(target)
    assert target.stat().st_mode & 0o777 == 0o600  # citizens' personal data
    assert target.stat().st_size > 100 and not (tmp_path / "copy.bak.partial").exists()


def test_bad_backup_targets_are_one_line_and_leave_nothing(app_db, db_backend, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for target, problem in (
        (tmp_path, f"backup target {tmp_path} is a directory; give a file name"),
        ("/proc/cityhub.db", "cannot write backup /proc/cityhub.db: No such file or directory"),
        (a_file / "copy.db", f"cannot write backup {a_file / 'copy.db'}: Not a directory"),
    ):
        result = _cli_backup(target)
        assert result.exit_code != 0
        assert isinstance(result.exception, ValidationFailed) and str(result.exception) == problem
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no .partial left


def test_a_backup_never_replaces_the_live_database(app_db, db_backend, tmp_path):
    if db_backend != "sqlite":
        pytest.skip("a SQLite file")
    from sqlalchemy.engine import make_url

    live = Path(str(make_url(app_db).database))
    _add_orders(3, "live")
    # Compared by stat, not read: closing any descriptor of the file drops this process's SQLite locks on it (POSIX
    # advisory locks are per process), which broke the next tests' connections.
    before = (live.stat().st_ino, live.stat().st_size, live.stat().st_mtime_ns)
    for target in (live, tmp_path / ".." / tmp_path.name / ".." / live.parent.name / live.name, Path(f"{live}-wal")):
        with pytest.raises(ValidationFailed, match="is the live database; give another file"):
            backup(target)
    assert (live.stat().st_ino, live.stat().st_size, live.stat().st_mtime_ns) == before
    link = tmp_path / "link.db"
    link.symlink_to(live)
    with pytest.raises(ValidationFailed, match="is the live database"):
        backup(link)


def test_a_failed_pg_dump_is_one_clear_error_and_leaves_no_file(app_db, db_backend, tmp_path):
    if db_backend != "postgresql":
        pytest.skip("pg_dump")
    from sqlalchemy.engine import make_url

    from cityhub.config import get_settings

    url = make_url(get_settings().database_url).set(database="no_such_cityhub_db")
    target = tmp_path / "copy.dump"
    with pytest.raises(ToolFailed, match=r"pg_dump failed, nothing written to .*no_such_cityhub_db"):
        backup(target, url=url.render_as_string(hide_password=False))
    assert not target.exists() and not target.with_suffix(".dump.partial").exists()


def test_a_failed_pg_dump_names_its_cause(tmp_path):
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    target = tmp_path / "copy.dump"
    with pytest.raises(ToolFailed) as failed:
        backup(target, url="postgresql://cityhub@127.0.0.1:1/cityhub")  # nothing listens on port 1
    message = str(failed.value)
    assert message.startswith(f"pg_dump failed, nothing written to {target}: pg_dump: error: connection to server")
    assert "port 1 failed: Connection refused; Is the server running" in message  # the cause and pg_dump's hint
    assert "\n" not in message and len(message) < 800
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", [["{dir}/copy.dump"], ["--dir", "{dir}/kept", "--keep", "2"]])
def test_a_backup_of_an_unreachable_server_could_not_run(tmp_path: Path, where: list[str]) -> None:
    """`db backup` of a PostgreSQL server nobody answers on is a database it cannot use: exit 2 (docs/operations.md,
    *Exit codes*) with pg_dump's cause in one line, as a cron job's alert reads it; it was 1, a refusal of what was
    asked. Nothing is written."""
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    env = {**os.environ, "CITYHUB_DATABASE_URL": "postgresql://cityhub@127.0.0.1:1/cityhub"}
    done = subprocess.run(
        [sys.executable, "-m", "cityhub.cli", "db", "backup", *(a.format(dir=tmp_path) for a in where)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, ""), done
    assert done.stderr.startswith("error: pg_dump failed, nothing written to "), done.stderr
    assert "Connection refused" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "copy.dump").exists() and list((tmp_path / "kept").glob("*")) == []


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["db", "backup", "{dir}/copy.dump"], "pg_dump is not installed"),
        (["db", "backup", "--dir", "{dir}/kept"], "pg_dump is not installed"),
        (["db", "restore", "--yes", "{dir}/nightly.dump"], "pg_restore and psql are not installed"),
    ],
)
def test_a_missing_postgresql_client_program_is_one_line_naming_it_and_its_package(tmp_path, args, missing):
    """Without PostgreSQL's client programs on PATH, `db backup` and `db restore` say in one line which program is
    missing and how to install it (the Debian package postgresql-client), exit 2 — the command could not run, as
    with a message channel not configured (it was 1, as if what was asked were refused) — and write nothing."""
    (tmp_path / "nightly.dump").write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 200)
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    env = {**os.environ, "PATH": str(empty_path), "CITYHUB_DATABASE_URL": "postgresql://cityhub@127.0.0.1:1/cityhub"}
    done = subprocess.run(
        [sys.executable, "-m", "cityhub.cli", *(a.format(dir=tmp_path) for a in args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.startswith(f"error: {missing} (not found on PATH): install PostgreSQL's client programs, ")
    assert "Debian package postgresql-client (`apt-get install postgresql-client`)" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "nightly.dump"]  # nothing written


def test_a_backup_is_labelled_with_its_database_in_plain_characters():
    assert backup_label(make_url("sqlite:////srv/cityhub/cityhub.db")) == "cityhub"
    assert backup_label(make_url("sqlite:////srv/数据/city-hub.prod.db")) == "city_hub_prod"
    assert backup_label(make_url("postgresql://u@h/cityhub_baiyun")) == "cityhub_baiyun"
    assert backup_label(make_url("postgresql://u@h/白云区")) == "db"
    assert backup_label(make_url("postgresql://u@h/" + "x" * 80)) == "x" * 40


@pytest.mark.parametrize("where", [["{dir}/copy.db"], ["--dir", "{dir}/kept", "--keep", "2"]])
def test_a_backup_of_a_missing_sqlite_file_could_not_run_as_every_command_says(
    tmp_path: Path, cli_run, monkeypatch: pytest.MonkeyPatch, where: list[str]
) -> None:
    """A wrong path in CITYHUB_DATABASE_URL is a database the command cannot use: exit 2, in the words every other
    command says it (it was 1, `database file … does not exist`, as if the backup's own target were refused), and
    nothing is created — neither the database nor a backup."""
    from cityhub.db import reset_engine

    missing = tmp_path / "srv" / "cityhub.db"
    monkeypatch.setenv("CITYHUB_DATABASE_URL", f"sqlite:///{missing}")
    reset_engine()
    code, out, err = cli_run("db", "backup", *(arg.format(dir=tmp_path) for arg in where))
    assert (code, out) == (2, "")
    assert err == (
        f"error: there is no database file {missing}: check CITYHUB_DATABASE_URL, or create it with "
        "`cityhub db upgrade`\n"
    )
    assert list(tmp_path.iterdir()) == []
