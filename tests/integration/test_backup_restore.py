"""`cityhub db backup --dir DIR --keep N` keeps the newest N of its own backups and touches nothing else; each run is
the job row `db-backup` (/healthz, /metrics), watched for age with CITYHUB_BACKUP_MAX_AGE_HOURS; `cityhub db
restore FILE` puts a backup back, refusing a file that is no backup and a database another process has open.

The restores run `cityhub` as the operator does, in processes of their own, on a database of their own per test
(``empty_db_url``: the suite's shared database has this process's connections open, which a restore refuses): a copy
of the one the module made once per backend with ``db upgrade`` and an import (:class:`_Districts`)."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app_helpers import shared_app
from cityhub.backup import backup_label
from cityhub.db import make_engine, reset_engine, session_scope, utcnow
from cityhub.errors import ValidationFailed
from cityhub.migrate import head
from cityhub.workorders.models import JobRun
from process_helpers import served_app, wait_until
from web_helpers import enter_holidays_ahead

HEAD = head()  # the code's migration

CliRun = Callable[..., tuple[int, str, str]]
SUFFIX = {"sqlite": "db", "postgresql": "dump"}
OTHER = {"sqlite": "postgresql", "postgresql": "sqlite"}


def _job_samples(exposition: str, metric: str) -> dict[str, float]:
    """The samples of ``metric`` by their ``name`` label (the job)."""
    return {
        s.labels["name"]: s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == metric
    }


def _need_client_tools(backend: str, *tools: str) -> None:
    if backend == "postgresql":
        for tool in tools:
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed")


def _written(out: str) -> list[str]:
    """The files ``db backup`` says it wrote."""
    return [line.split(" ")[3] for line in out.splitlines() if line.startswith("backup written to ")]


# ------------------------------------------------------------------------------------------------- rotation


def test_rotation_keeps_the_newest_n_of_its_own_backups_and_nothing_else_is_touched(
    app_db: str, db_backend: str, tmp_path: Path, cli_run: CliRun
) -> None:
    _need_client_tools(db_backend, "pg_dump")
    folder = tmp_path / "backups"
    folder.mkdir()
    ext, other = SUFFIX[db_backend], OTHER[db_backend]
    older = [
        folder / f"cityhub-{db_backend}-20200101-000000.{ext}",
        folder / f"cityhub-{db_backend}-20200101-000000-2.{ext}",
    ]
    for path in older:
        path.write_text("a backup of 2020")
    untouched = {
        "notes.txt": "the operator's notes",
        f"cityhub-{db_backend}-manual.{ext}": "a copy named by hand",
        f"cityhub-{other}-20200101-000000.{SUFFIX[other]}": "the other backend's backup",
        f"cityhub-{db_backend}-20200101-000000.{ext}.partial": "an interrupted write",
        f"mine-cityhub-{db_backend}-20200101-000000.{ext}": "a name that only contains the pattern",
        f"cityhub-{db_backend}-otherdb-20200101-000000.{ext}": "another database's backup",
    }
    for name, content in untouched.items():
        (folder / name).write_text(content)
    (folder / f"cityhub-{db_backend}-20190101-000000.{ext}").mkdir()  # a directory named like a backup
    (folder / f"cityhub-{db_backend}-20180101-000000.{ext}").symlink_to(folder / "notes.txt")

    written: list[str] = []
    removed: list[str] = []
    for _ in range(4):
        code, out, err = cli_run("db", "backup", "--dir", str(folder), "--keep", "3")
        assert code == 0, err
        written += _written(out)
        removed += [line.removeprefix("removed old backup ") for line in out.splitlines() if line.startswith("removed")]
    # oldest first, by the time in the name and then the counter of a second backup within the same second
    assert removed == [str(older[0]), str(older[1]), written[0]]
    assert len(written) == 4 and all(Path(w).parent == folder for w in written)
    # named for the database they come from; those named before that (no database) rotated with them
    label = backup_label(make_url(app_db))
    assert all(
        re.fullmatch(rf"cityhub-{db_backend}-{label}-\d{{8}}-\d{{6}}(-\d+)?\.{ext}", Path(w).name) for w in written
    )
    ours = sorted(p.name for p in folder.iterdir() if p.name.startswith(f"cityhub-{db_backend}-{label}-"))
    assert ours == sorted(Path(w).name for w in written[-3:])  # exactly the newest three
    assert all((folder / name).read_text() == content for name, content in untouched.items())
    assert (folder / f"cityhub-{db_backend}-20190101-000000.{ext}").is_dir()
    assert (folder / f"cityhub-{db_backend}-20180101-000000.{ext}").is_symlink()
    assert not any(p.exists() for p in older)
    assert all((folder / name).stat().st_mode & 0o777 == 0o600 for name in ours)  # citizens' personal data


def test_a_failed_backup_removes_nothing(
    db_url: str, db_backend: str, tmp_path: Path, cli_run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_client_tools(db_backend, "pg_dump")
    folder = tmp_path / "backups"
    folder.mkdir()
    ext = SUFFIX[db_backend]
    for name in (f"cityhub-{db_backend}-20200101-000000.{ext}", f"cityhub-{db_backend}-20200102-000000.{ext}", "x.txt"):
        (folder / name).write_text(name)
    if db_backend == "sqlite":  # a file that is not a database: the copy fails
        broken = tmp_path / "broken.db"
        broken.write_text("not a database, " * 100)
        url = f"sqlite:///{broken}"
        problem = f"error: backup to {folder}/cityhub-sqlite-"
    else:  # a database the server does not have: pg_dump fails
        url = make_url(db_url).set(database="no_such_cityhub_db").render_as_string(hide_password=False)
        problem = f"error: pg_dump failed, nothing written to {folder}/cityhub-postgresql-"
    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    reset_engine()
    before = {p.name: p.read_text() for p in folder.iterdir()}
    code, out, err = cli_run("db", "backup", "--dir", str(folder), "--keep", "1")
    # the SQLite copy's own failure exits 1; pg_dump failing (a database it cannot use) 2, as operations.md's table says
    assert code == (1 if db_backend == "sqlite" else 2) and out == ""
    assert err.startswith(problem) and err.count("\n") == 1
    assert {p.name: p.read_text() for p in folder.iterdir()} == before  # nothing removed, nothing left behind


# ------------------------------------------------------------------------------------------- the job row


def test_backup_runs_are_the_job_db_backup_on_healthz_and_metrics(
    app_db: str, db_backend: str, tmp_path: Path, cli_run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_client_tools(db_backend, "pg_dump")
    monkeypatch.setenv("CITYHUB_METRICS_ENABLED", "true")
    enter_holidays_ahead()
    code, out, err = cli_run("db", "backup", "--dir", str(tmp_path / "backups"), "--keep", "2")
    assert code == 0, err
    name = Path(_written(out)[0]).name
    with TestClient(shared_app(), client=("127.0.0.1", 40123)) as client:
        body = client.get("/healthz").json()
        assert body["status"] == "ok", body["problems"]
        job = body["jobs"]["db-backup"]
        assert job["failures"] == 0 and job["last_result"]["file"] == name and job["last_result"]["removed"] == 0
        assert str(tmp_path) not in client.get("/healthz").text  # the public probe names no directory
        exposition = client.get("/metrics").text
        assert _job_samples(exposition, "cityhub_job_last_success_timestamp_seconds")["db-backup"] > 0
        assert _job_samples(exposition, "cityhub_job_consecutive_failures")["db-backup"] == 0
        page = client.get("/", headers={"Accept": "text/html"})
        assert "数据库备份" in page.text  # the status page names the job

    def copy_fails(target: Path, *, url: str | None = None) -> str:  # the disk filled up while copying
        raise ValidationFailed(f"backup to {target} failed: database or disk is full")

    with monkeypatch.context() as patched:
        patched.setattr("cityhub.backup.backup", copy_fails)
        code, _, err = cli_run("db", "backup", "--dir", str(tmp_path / "backups"))
    assert code == 1 and err.startswith(f"error: backup to {tmp_path / 'backups'}") and err.count("\n") == 1
    with TestClient(shared_app(), client=("127.0.0.1", 40123)) as client:
        body = client.get("/healthz").json()
        assert body["status"] == "degraded" and body["problems"] == ["job db-backup: last 1 run(s) failed"]
        exposition = client.get("/metrics").text
        assert _job_samples(exposition, "cityhub_job_consecutive_failures")["db-backup"] == 1
        assert _job_samples(exposition, "cityhub_job_last_failure_timestamp_seconds")["db-backup"] > 0
    code, out, _ = cli_run("jobs", "status")
    assert "FAILING (1 in a row): backup to " in out and "failed: database or disk is full" in out

    code, _, err = cli_run("db", "backup", str(tmp_path / "pre-upgrade.copy"))  # FILE, as before: a run too
    assert code == 0, err
    with session_scope() as s:
        row = s.get(JobRun, "db-backup")
        assert (
            row is not None
            and row.failures == 0
            and row.last_result == {"file": "pre-upgrade.copy", "bytes": row.last_result["bytes"]}
        )


def test_a_mistyped_backup_target_is_refused_and_not_a_failed_backup(
    app_db: str, db_backend: str, tmp_path: Path, cli_run: CliRun
) -> None:
    """An operator's typo — a directory given as FILE, a file as --dir, a folder that cannot be made — is refused in
    one line before anything is copied, and is no failed backup: /healthz stays ok and the last success stands."""
    _need_client_tools(db_backend, "pg_dump")
    enter_holidays_ahead()
    assert cli_run("db", "backup", str(tmp_path / "good.copy"))[0] == 0
    with session_scope() as s:
        before = s.get(JobRun, "db-backup")
        assert before is not None
        last = (before.last_finished_at, before.last_result, before.failures, before.last_failed_at)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for argv, problem in (
        ([str(tmp_path)], f"backup target {tmp_path} is a directory; give a file name"),
        (["--dir", str(a_file)], f"backup directory {a_file} is not a directory"),
        ([str(a_file / "copy.db")], f"cannot write backup {a_file / 'copy.db'}: Not a directory"),
        (["--dir", str(a_file / "backups")], f"cannot write backup {a_file / 'backups'}/cityhub-"),
    ):
        code, out, err = cli_run("db", "backup", *argv)
        assert code == 1 and out == "" and err.startswith(f"error: {problem}") and err.count("\n") == 1, err
    with session_scope() as s:
        after = s.get(JobRun, "db-backup")
        assert (
            after is not None
            and (after.last_finished_at, after.last_result, after.failures, after.last_failed_at) == last
        )
    with TestClient(shared_app()) as client:
        body = client.get("/healthz").json()
        assert body["status"] == "ok", body["problems"]
    assert "FAILING" not in cli_run("jobs", "status")[1]


def test_healthz_says_when_the_last_backup_is_too_old(
    app_db: str, db_backend: str, tmp_path: Path, cli_run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_client_tools(db_backend, "pg_dump")
    enter_holidays_ahead()

    def health() -> dict[str, object]:
        with TestClient(shared_app()) as client:
            answer: dict[str, object] = client.get("/healthz").json()
            return answer

    assert health()["status"] == "ok"  # off by default: no backup at all is nobody's concern
    monkeypatch.setenv("CITYHUB_BACKUP_MAX_AGE_HOURS", "26")
    body = health()
    assert body["status"] == "degraded"
    assert body["problems"] == ["backup: no successful database backup recorded (CITYHUB_BACKUP_MAX_AGE_HOURS=26)"]

    assert cli_run("db", "backup", "--dir", str(tmp_path))[0] == 0
    assert health()["status"] == "ok"
    with session_scope() as s:
        s.execute(
            update(JobRun).where(JobRun.name == "db-backup").values(last_finished_at=utcnow() - timedelta(hours=30))
        )
    body = health()
    assert body["status"] == "degraded"
    assert body["problems"] == [
        "backup: the last successful database backup ended 30 hours ago, more than CITYHUB_BACKUP_MAX_AGE_HOURS=26"
    ]


# ---------------------------------------------------------------------------------------------------- restore


def _cityhub(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``cityhub ARGS`` in a process of its own on the database ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "cityhub.cli", *args],
        env={**os.environ, "CITYHUB_DATABASE_URL": url},
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=600,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _import(url: str, folder: Path, *ids: str) -> None:
    csv = folder / f"orders-{'-'.join(ids)}.csv"
    csv.write_text("id,title,content,created_at\n" + "".join(f"{i},路灯,{i} 路灯不亮,2025-01-08\n" for i in ids))
    _ok(_cityhub(url, "import", "orders", str(csv)))


def _external_ids(url: str) -> list[str]:
    """The orders' ids from the import, read over a connection closed again at once (a restore refuses a database
    someone has open)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT external_id FROM orders")).scalars())
    finally:
        engine.dispose()


# The module's template databases on PostgreSQL, named as conftest's: one per xdist worker, on a server they may share.
PG_TEMPLATE = "cityhub_test_district" + (
    f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else ""
)


class _Districts:
    """Per backend, the database every :func:`district` starts from, made once for the module by the operator's own
    commands (``db upgrade``, then the import of x1 and x2: two processes, ~3 s on SQLite, that each test ran again);
    each test gets a copy of its own."""

    def __init__(self, request: pytest.FixtureRequest, directory: Path) -> None:
        self._request = request
        self._directory = directory
        self._made: dict[str, str] = {}  # backend → the template's URL
        self._pg: Any = None  # conftest's PgServer, once a PostgreSQL template is made

    def _template(self, backend: str) -> str:
        if backend not in self._made:
            if backend == "sqlite":
                url = f"sqlite:///{self._directory / 'district.db'}"
            else:
                self._pg = self._request.getfixturevalue("pg_server")
                url = self._pg.create_database(PG_TEMPLATE)
            _ok(_cityhub(url, "db", "upgrade"))
            _import(url, self._directory, "x1", "x2")
            self._made[backend] = url
        return self._made[backend]

    def copy_to(self, url: str) -> None:
        """Make the database ``url`` (new, or empty) a copy of its backend's template."""
        parsed = make_url(url)
        template = make_url(self._template(parsed.get_backend_name()))
        if parsed.get_backend_name() == "sqlite":
            source, copy = sqlite3.connect(str(template.database)), sqlite3.connect(str(parsed.database))
            try:
                source.backup(copy)  # the whole database, whatever its write-ahead log still holds
            finally:
                copy.close()
                source.close()
            return
        self._pg.copy_database(str(parsed.database), str(template.database))

    def drop(self) -> None:
        if self._pg is not None:
            self._pg.drop_database(PG_TEMPLATE)


@pytest.fixture(scope="module")
def _districts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Districts]:
    districts = _Districts(request, tmp_path_factory.mktemp("district"))
    yield districts
    districts.drop()


@pytest.fixture
def district(empty_db_url: str, _districts: _Districts) -> str:
    """A migrated database of its own with two orders, x1 and x2: a copy of the module's (:class:`_Districts`)."""
    _districts.copy_to(empty_db_url)
    return empty_db_url


def test_restore_puts_the_backup_back(district: str, tmp_path: Path) -> None:
    backend = make_url(district).get_backend_name()
    _need_client_tools(backend, "pg_dump", "pg_restore", "psql")
    copy = tmp_path / "nightly" / f"copy.{SUFFIX[backend]}"
    _ok(_cityhub(district, "db", "backup", str(copy)))
    _import(district, tmp_path, "x3")  # written after the backup
    assert _external_ids(district) == ["x1", "x2", "x3"]

    asked = _cityhub(district, "db", "restore", str(copy), stdin="n\n")
    assert asked.returncode == 1 and "Replace the database" in asked.stdout and asked.stderr == "error: aborted\n"
    assert _external_ids(district) == ["x1", "x2", "x3"]

    out = _ok(_cityhub(district, "db", "restore", str(copy), stdin="y\n"))
    assert f"restored {copy} into " in out and f"database at revision {HEAD}" in out
    assert _external_ids(district) == ["x1", "x2"]  # the data of the backup, x3 gone with the database it was in
    if backend == "sqlite":
        live = Path(str(make_url(district).database))
        aside = [p for p in live.parent.iterdir() if p.name.startswith(f"{live.name}.before-restore-")]
        main_file = [p for p in aside if not p.name.endswith(("-wal", "-shm", "-journal"))]
        assert len(main_file) == 1 and f"kept as {main_file[0]}" in out
        # alone: no stale -shm of the WAL it no longer has, no empty -journal of the lock held to set it aside
        assert aside == main_file, sorted(p.name for p in aside)
        # the database as it was, whole in its file (its WAL written back before it was set aside)
        with sqlite3.connect(f"{main_file[0].as_uri()}?immutable=1", uri=True) as old:
            assert sorted(r[0] for r in old.execute("SELECT external_id FROM orders")) == ["x1", "x2", "x3"]
    _import(district, tmp_path, "x4")  # the restored database works on
    assert _external_ids(district) == ["x1", "x2", "x4"]


def test_restore_refuses_a_file_that_is_no_backup(
    district: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    backend = make_url(district).get_backend_name()
    _need_client_tools(backend, "pg_dump", "pg_restore", "psql")
    text_file = tmp_path / "orders.csv"
    text_file.write_text("id,title\n")
    other_kind = tmp_path / f"other.{SUFFIX[OTHER[backend]]}"
    foreign = tmp_path / f"foreign.{SUFFIX[backend]}"  # a real backup of that backend, of a database not cityhub's
    if backend == "sqlite":
        other_kind.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 200)
        with sqlite3.connect(foreign) as conn:
            conn.execute("CREATE TABLE t (x)")
        conn.close()
        damaged = tmp_path / "damaged.db"
        _ok(_cityhub(district, "db", "backup", str(damaged)))
        future = tmp_path / "future.db"  # a newer release's: this code cannot know what it holds
        shutil.copyfile(damaged, future)
        with sqlite3.connect(future) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
        conn.close()
        with damaged.open("r+b") as fh:  # pages past the first overwritten
            fh.seek(8192)
            fh.write(b"\xff" * 40960)
    else:
        with sqlite3.connect(other_kind) as conn:
            conn.execute("CREATE TABLE alembic_version (version_num)")
        conn.close()
        server = request.getfixturevalue("pg_server")
        name = f"{make_url(district).database}_foreign"
        foreign_url = server.create_database(name)
        try:
            _ok(_cityhub(foreign_url, "db", "backup", str(foreign)))  # an empty database: no alembic_version
        finally:
            server.drop_database(name)
        damaged = tmp_path / "damaged.dump"
        _ok(_cityhub(district, "db", "backup", str(damaged)))
        damaged.write_bytes(damaged.read_bytes()[:200])  # cut short
    refusals = {
        tmp_path / "missing.db": f"no backup file {tmp_path / 'missing.db'}",
        tmp_path: f"{tmp_path} is not a file; give a backup file",
        text_file: f"{text_file} is not a backup: not a "
        + ("SQLite database" if backend == "sqlite" else "pg_dump archive (custom format)"),
        other_kind: f"{other_kind} is a "
        + (
            "PostgreSQL dump; the configured database is SQLite"
            if backend == "sqlite"
            else "SQLite database; the configured database is PostgreSQL"
        ),
        foreign: f"{foreign} is not a backup of cityhub: it has no alembic_version table",
        damaged: f"{damaged} is ",
    }
    if backend == "sqlite":
        refusals[future] = (
            f"{future} is at migration 9999_future, which this version of cityhub does not know (a newer release "
            "made it); restore it with that release"
        )
    live_name = make_url(district).database if backend == "sqlite" else None

    def listing() -> list[str]:  # but the live database's own files (a restore's check may write its WAL back)
        return sorted(p.name for p in tmp_path.iterdir() if not (live_name and str(p).startswith(live_name)))

    before = listing()
    for source, problem in refusals.items():
        done = _cityhub(district, "db", "restore", str(source), "--yes")
        assert done.returncode == 1, (source, done.stdout)
        assert done.stderr.startswith(f"error: {problem}") and done.stderr.count("\n") == 1, done.stderr
    assert _external_ids(district) == ["x1", "x2"]
    assert listing() == before  # nothing set aside or left behind
    if backend == "sqlite":
        live = Path(str(make_url(district).database))
        assert not [p for p in live.parent.iterdir() if ".before-restore-" in p.name or ".restoring" in p.name]


HOLD_SQLITE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM orders").fetchone()
print("holding", flush=True)
sys.stdin.read()
"""

HOLD_PG = """
import sys
import psycopg
conn = psycopg.connect(sys.argv[1], application_name="cityhub-serve")
conn.execute("SELECT count(*) FROM orders").fetchone()
print("holding", flush=True)
sys.stdin.read()
"""


def _refused_as_in_use(url: str, copy: Path) -> str:
    done = _cityhub(url, "db", "restore", str(copy), "--yes")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: database in use: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def _no_other_sessions(url: str) -> bool:
    """PostgreSQL: whether the sessions of processes that ended are gone from the server (a backend leaves once it
    has seen its client's connection close)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            return conn.execute(text(query)).scalar_one() == 0
    finally:
        engine.dispose()


def test_restore_refuses_a_database_another_process_has_open(district: str, tmp_path: Path) -> None:
    backend = make_url(district).get_backend_name()
    _need_client_tools(backend, "pg_dump", "pg_restore", "psql")
    copy = tmp_path / f"copy.{SUFFIX[backend]}"
    _ok(_cityhub(district, "db", "backup", str(copy)))
    _import(district, tmp_path, "x3")

    with served_app({"CITYHUB_DATABASE_URL": district}, tmp_path / "serve.log"):  # the server left running
        _refused_as_in_use(district, copy)
    assert _external_ids(district) == ["x1", "x2", "x3"]  # nothing changed
    if backend == "postgresql":
        wait_until(lambda: _no_other_sessions(district))

    # Any process with the database open, one that only read once and waits too.
    with _held_open(district):
        said = _refused_as_in_use(district, copy)
        if backend == "postgresql":
            assert "1 other session(s) connected to" in said and "(cityhub-serve)" in said
    assert _external_ids(district) == ["x1", "x2", "x3"]
    _ok(_cityhub(district, "db", "restore", str(copy), "--yes"))  # nobody on it: the same restore goes through
    assert _external_ids(district) == ["x1", "x2"]


@contextmanager
def _held_open(url: str) -> Iterator[None]:
    """Another process with the database ``url`` open (it read once and waits), until the block ends; then, on
    PostgreSQL, until its session is gone from the server."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        script, target = HOLD_SQLITE, str(parsed.database)
    else:
        script, target = HOLD_PG, parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", script, target], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    if parsed.get_backend_name() == "postgresql":
        wait_until(lambda: _no_other_sessions(url))


def test_downgrade_refuses_a_database_another_process_has_open(district: str) -> None:
    """`db downgrade` would drop tables and columns from under a running server: refused as `db restore` is."""
    earlier = "0056_user_notices"
    with _held_open(district):
        done = _cityhub(district, "db", "downgrade", earlier, "--yes")
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith("error: database in use: ") and done.stderr.count("\n") == 1, done.stderr
        assert "stop every cityhub process (serve, worker) first" in done.stderr
    assert _ok(_cityhub(district, "db", "current")).strip() == HEAD  # nothing done
    assert _external_ids(district) == ["x1", "x2"]
    _ok(_cityhub(district, "db", "downgrade", earlier, "--yes"))  # nobody on it: the same downgrade goes through
    assert _ok(_cityhub(district, "db", "current")).strip() == earlier


def test_upgrade_and_restore_log_only_the_migrations_they_run(empty_db_url: str, tmp_path: Path) -> None:
    """Alembic's opening lines ("Context impl …", "Will assume … DDL") were the only log of a `db upgrade` with
    nothing to do and of a `db restore`: an operator sees its "Running upgrade" lines, nothing else."""
    backend = make_url(empty_db_url).get_backend_name()
    _need_client_tools(backend, "pg_dump", "pg_restore", "psql")
    up = _cityhub(empty_db_url, "db", "upgrade")
    assert up.returncode == 0 and "Running upgrade 0058_exemption_revocation -> 0059_assign_deadline" in up.stderr
    assert "Context impl" not in up.stderr and "Will assume" not in up.stderr, up.stderr
    again = _cityhub(empty_db_url, "db", "upgrade")
    assert (again.returncode, again.stdout, again.stderr) == (0, f"database at revision {HEAD}\n", "")
    copy = tmp_path / f"copy.{SUFFIX[backend]}"
    _ok(_cityhub(empty_db_url, "db", "backup", str(copy)))
    restored = _cityhub(empty_db_url, "db", "restore", str(copy), "--yes")
    assert restored.returncode == 0 and restored.stderr == "", restored.stderr
    assert restored.stdout.endswith(f"database at revision {HEAD}\n")


def test_restore_of_an_older_backup_says_to_upgrade_or_upgrades(empty_db_url: str, tmp_path: Path) -> None:
    backend = make_url(empty_db_url).get_backend_name()
    _need_client_tools(backend, "pg_dump", "pg_restore", "psql")
    _ok(_cityhub(empty_db_url, "db", "upgrade", "0041_reply_check_scorer"))
    copy = tmp_path / f"before-0042.{SUFFIX[backend]}"
    _ok(_cityhub(empty_db_url, "db", "backup", str(copy)))
    _ok(_cityhub(empty_db_url, "db", "upgrade"))
    _import(empty_db_url, tmp_path, "x1")

    out = _ok(_cityhub(empty_db_url, "db", "restore", str(copy), "--yes"))
    assert (
        f"the backup is at migration 0041_reply_check_scorer, this version of cityhub needs {HEAD}: run "
        "`cityhub db upgrade` before starting cityhub (or restore with --upgrade)"
    ) in out
    assert _ok(_cityhub(empty_db_url, "db", "current")).strip() == "0041_reply_check_scorer"
    # What the newer migration made is gone with the rest (PostgreSQL: not left beside the restored tables).
    assert f"database at revision {HEAD}" in _ok(_cityhub(empty_db_url, "db", "upgrade"))
    assert _external_ids(empty_db_url) == []

    _import(empty_db_url, tmp_path, "x2")
    out = _ok(_cityhub(empty_db_url, "db", "restore", str(copy), "--yes", "--upgrade"))
    assert f"database at revision {HEAD}" in out and "run `cityhub db upgrade`" not in out
    assert _external_ids(empty_db_url) == []
