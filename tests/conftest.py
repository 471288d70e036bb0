"""Shared fixtures: real databases (SQLite and PostgreSQL), never mocks.

Databases
---------
``db_url`` is parametrized over the two backends (test ids ``[sqlite]`` and ``[postgresql]``). Each backend
has ONE database per test session, migrated once with ``cityhub.migrate.upgrade`` (Alembic, never
``create_all``). After every test that used it, all rows of all tables (except ``alembic_version``) are
deleted (on PostgreSQL by DELETE with foreign-key triggers off, ~5 ms, falling back to TRUNCATE, ~200 ms, for
a non-superuser), so each test starts from an empty, migrated schema. Sequences are not reset.

Why cleaning and not a SAVEPOINT rollback per test: services and CLI commands open their own sessions through
``cityhub.db.session_scope()`` and commit; concurrency tests (order numbering, ``FOR UPDATE SKIP LOCKED``)
need several connections that see each other's commits. Only cleaning after the test keeps all of these
honest on both backends. Tests must therefore not rely on primary-key values.

- ``db_url``: URL of the migrated, empty database of the current backend.
- ``db_backend``: ``"sqlite"`` or ``"postgresql"``.
- ``db_engine``: an engine on ``db_url`` (one per backend per session).
- ``db_session``: a ``Session`` on it; uncommitted work is rolled back, committed rows are cleaned.
- ``app_db``: points the global settings at ``db_url`` (``CITYHUB_DATABASE_URL`` + ``reset_engine()``), for
  code that uses ``session_scope()``; yields the URL.
- ``empty_db_url``: a brand-new, NOT migrated database per test (migration up/down tests), dropped afterwards.

PostgreSQL
----------
A throw-away cluster is started once per session — per worker under pytest-xdist — (``initdb`` in a temp dir,
``pg_ctl start`` on 127.0.0.1 with a free port, unix sockets in the temp dir, fsync off) and deleted at the end. As
root, the server runs as the ``postgres`` OS user. ``CITYHUB_TEST_PG_URL`` points at an existing server instead: its
role must be allowed to CREATE DATABASE; the tests create and drop databases named ``cityhub_test*`` there (one
``cityhub_test_gwN`` per xdist worker). Autovacuum runs there, woken by the rows each cleaning deletes, and analyses
a table without the rows of a test's open transaction: a test that reads thousands of rows it holds uncommitted
calls ``sql_helpers.weigh_as_held`` once they are written, lest they be planned as an empty table.
Without PostgreSQL the ``[postgresql]`` variants skip — except with ``CI=true``, where they fail: CI must test
both backends. ``CITYHUB_TEST_BACKENDS=sqlite`` limits a local run to SQLite.

Tests under ``tests/integration`` get the ``integration`` marker automatically.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cityhub import migrate
from cityhub.db import make_engine, reset_engine
from cityhub.workorders.search import is_index_table
from process_helpers import free_port

# Every password hash of the tests at Argon2id's cheapest cost (the settings' defaults, RFC 9106's low-memory profile,
# cost ~0.1 s a hash, and each test's district creates eight accounts); subprocesses inherit it. Hashing and
# verifying are the same code at any cost; the defaults themselves are the settings' (config tests).
os.environ.setdefault("CITYHUB_ARGON2_TIME_COST", "1")
os.environ.setdefault("CITYHUB_ARGON2_MEMORY_KIB", "64")

BACKENDS = ("sqlite", "postgresql")
INTEGRATION_DIR = Path(__file__).parent / "integration"
# Under pytest-xdist (`make test` runs one worker per core) each worker has its own database on a shared server.
PG_DB_NAME = "cityhub_test" + (f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else "")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _enabled_backends() -> set[str]:
    raw = os.environ.get("CITYHUB_TEST_BACKENDS", "")
    return {b.strip() for b in raw.split(",") if b.strip()} or set(BACKENDS)


# Modules whose tests share what a module-scoped fixture builds — a browser module's one server over its own database
# (`web_helpers.module_database`), the backup tests' districts, the worker processes' shared server. Under xdist
# (`make test`: -n 2) pytest spreads tests one by one, so each worker built these for its share of the module; one
# worker runs each of them whole instead (:func:`pytest_xdist_make_scheduler`), the other tests spread as before.
# (xdist's own `--dist loadgroup` would say the same with marks, but does not group under pytest 9.2:
# pytest-dev/pytest-xdist#1386.)
ONE_WORKER_MODULES = frozenset(
    {
        "tests/browser/test_accessibility.py",
        "tests/browser/test_hotline_keyboard.py",
        "tests/browser/test_map_browser.py",
        "tests/browser/test_phone_pages.py",
        "tests/browser/test_place_map_browser.py",
        "tests/browser/test_workbench_flow.py",
        "tests/integration/test_backup_restore.py",
        "tests/integration/test_serve_workers.py",
    }
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's default spreading (`--dist load`), except that each of :data:`ONE_WORKER_MODULES` is one unit of work:
    a scope per test elsewhere (xdist's scope scheduler, its largest units first)."""
    if config.getoption("dist", "load") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return ModulesTogether(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True, scope="session")
def _default_database_is_throwaway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep code that forgets to ask for a test database away from the developer's real one."""
    previous = os.environ.get("CITYHUB_DATABASE_URL")
    path = tmp_path_factory.mktemp("default-db") / "cityhub.db"
    os.environ["CITYHUB_DATABASE_URL"] = f"sqlite:///{path}"
    reset_engine()
    yield
    reset_engine()
    if previous is None:
        os.environ.pop("CITYHUB_DATABASE_URL", None)
    else:
        os.environ["CITYHUB_DATABASE_URL"] = previous


# --------------------------------------------------------------------------------------------- PostgreSQL


def find_pg_bindir() -> Path | None:
    """Directory with initdb, pg_ctl and postgres; Debian keeps them in /usr/lib/postgresql/NN/bin."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.parent.name.split(".") if x.isdigit())

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for cand in candidates:
        if all(os.access(cand / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return cand
    return None


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    admin_url: str  # a URL of a maintenance database (``postgres``) with CREATE DATABASE rights
    _engine: Engine | None = field(default=None, repr=False)

    def _admin(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        return self._engine

    def url_for(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create_database(self, name: str, *, template: str = "template0") -> str:
        """A new database ``name`` (dropped first if it exists): empty, or a copy of the database ``template`` (which
        nobody may be connected to: see ``copy_database``)."""
        with self._admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE "{template}"'))
        return self.url_for(name)

    def copy_database(self, name: str, original: str) -> str:
        """A new database ``name``, a copy of the database ``original`` (a file copy: far quicker than writing its
        rows again). PostgreSQL copies only a database nobody is on, and a process's side engines and background
        threads (the similar-orders index) keep or open connections: the sessions on ``original`` are ended first,
        and again if one came back in between."""
        for attempt in range(5):
            with self._admin().connect() as conn:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": original},
                )
            try:
                return self.create_database(name, template=original)
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55006" or attempt == 4:  # 55006: object_in_use
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def drop_database(self, name: str) -> None:
        with self._admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class _Cluster:
    """A throw-away cluster in a temp dir; run as the ``postgres`` OS user when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        # As root, TMPDIR may sit in a folder the postgres user cannot enter; /tmp it can.
        parent = "/tmp" if self.as_root and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="cityhub-pg-", dir=parent))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError("running as root but there is no 'postgres' OS user to run the server") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = (
                ["runuser", "-u", "postgres", "--", *cmd]
                if shutil.which("runuser")
                else ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
            )
        proc = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{shlex.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}\n{log}")
        return proc

    def start(self) -> int:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "-N")
        last: Exception | None = None
        for _ in range(3):  # another process may grab the free port between our probe and the bind
            port = free_port()
            opts = (
                f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", opts, "start")
                return port
            except RuntimeError as exc:
                last = exc
        raise RuntimeError(f"could not start PostgreSQL: {last}")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _pg_unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true but PostgreSQL is unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the session: CITYHUB_TEST_PG_URL, or a throw-away cluster."""
    external = os.environ.get("CITYHUB_TEST_PG_URL")
    if external:
        server = PgServer(admin_url=external)
        yield server
        server.dispose()
        return
    bindir = find_pg_bindir()
    if bindir is None:
        _pg_unavailable("no initdb/pg_ctl/postgres found (install Debian's 'postgresql' package)")
        return
    try:
        cluster = _Cluster(bindir)
    except RuntimeError as exc:
        _pg_unavailable(str(exc))
        return
    try:
        port = cluster.start()
    except RuntimeError as exc:
        cluster.destroy()
        pytest.fail(f"PostgreSQL cluster failed to start: {exc}", pytrace=False)
    server = PgServer(admin_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    try:
        yield server
    finally:
        server.dispose()
        cluster.destroy()


# ------------------------------------------------------------------------------------- per-backend databases


class _BackendDatabases:
    """One migrated database and one engine per backend, made on first use."""

    def __init__(self, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> None:
        self._request = request
        self._tmp = tmp
        self.urls: dict[str, str] = {}
        self.engines: dict[str, Engine] = {}

    def get(self, backend: str) -> str:
        if backend not in self.urls:
            if backend == "sqlite":
                url = f"sqlite:///{self._tmp.mktemp('sqlite') / 'test.db'}"
            else:
                server: PgServer = self._request.getfixturevalue("pg_server")
                url = server.create_database(PG_DB_NAME)
            migrate.upgrade(url)
            self.urls[backend] = url
            self.engines[backend] = make_engine(url)
        return self.urls[backend]

    def clean(self, backend: str) -> None:
        engine = self.engines[backend]
        if backend == "sqlite":
            with engine.connect() as conn:
                # The full-text search's FTS5 tables are emptied by the triggers on orders, never directly.
                tables = [
                    name
                    for name in inspect(conn).get_table_names()
                    if name != "alembic_version" and not name.startswith("sqlite_") and not is_index_table(name)
                ]
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                try:
                    for name in tables:
                        conn.exec_driver_sql(f'DELETE FROM "{name}"')
                    conn.commit()
                finally:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            return
        with engine.connect() as conn:
            tables = [n for n in inspect(conn).get_table_names() if n != "alembic_version"]
            if not tables:
                return
            # A test that leaves a transaction open would otherwise hang the suite here.
            conn.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
            try:
                # DELETE with foreign-key triggers off takes ~5 ms; TRUNCATE of every table ~200 ms.
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            except DBAPIError:  # not a superuser (CITYHUB_TEST_PG_URL): the slow, always-allowed way
                conn.rollback()
                conn.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
                conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " RESTART IDENTITY CASCADE")
            else:
                for name in tables:
                    conn.exec_driver_sql(f'DELETE FROM "{name}"')
            conn.commit()

    def dispose(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


@pytest.fixture(scope="session")
def _backend_dbs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_BackendDatabases]:
    dbs = _BackendDatabases(request, tmp_path_factory)
    yield dbs
    dbs.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated to the head, made once per session (per xdist worker): a template that
    ``web_helpers.module_database`` copies for a module that keeps a database of its own (one server for all its
    tests) instead of running the migrations again. Nothing writes to it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, _backend_dbs: _BackendDatabases) -> Iterator[str]:
    """URL of an empty, migrated database; parametrized over SQLite and PostgreSQL."""
    backend: str = request.param
    if backend not in _enabled_backends():
        pytest.skip(f"backend {backend} disabled by CITYHUB_TEST_BACKENDS")
    only = request.node.get_closest_marker("sqlite_only")
    if only is not None and backend != "sqlite":
        pytest.skip(only.args[0] if only.args else "the test does not depend on the database backend: SQLite only")
    url = _backend_dbs.get(backend)
    try:
        yield url
    finally:
        _backend_dbs.clean(backend)


@pytest.fixture
def db_backend(db_url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``: the backend of this test's ``db_url``."""
    return make_url(db_url).get_backend_name()


@pytest.fixture
def db_engine(db_url: str, db_backend: str, _backend_dbs: _BackendDatabases) -> Engine:
    """The engine of this test's database (shared by the session, so connections are pooled)."""
    return _backend_dbs.engines[db_backend]


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    """A session on the test database; uncommitted work is rolled back, committed rows are cleaned."""
    session = Session(bind=db_engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the global settings (``session_scope()``, CLI, app) at the test database."""
    monkeypatch.setenv("CITYHUB_DATABASE_URL", db_url)
    reset_engine()
    try:
        yield db_url
    finally:
        # Dispose while the env still names the test DB; monkeypatch restores the env afterwards.
        reset_engine()


_fresh_names = itertools.count(1)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database with no tables at all (for migration tests), dropped after the test."""
    backend: str = request.param
    if backend not in _enabled_backends():
        pytest.skip(f"backend {backend} disabled by CITYHUB_TEST_BACKENDS")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = f"{PG_DB_NAME}_empty_{os.getpid()}_{next(_fresh_names)}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def cli_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """``cityhub ARGS`` as the shell runs it (``cli.main``: domain errors are one line and exit 1): exit code,
    stdout, stderr. The database is the environment's (``app_db`` sets it)."""
    from cityhub import cli

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr("sys.argv", ["cityhub", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def admin_client(app_db: str) -> Iterator[object]:
    """A TestClient on the app, authenticated as a district administrator with a bearer token."""
    from fastapi.testclient import TestClient

    from app_helpers import shared_app
    from cityhub.auth.service import create_token
    from cityhub.db import session_scope
    from cityhub.org.models import Role, Unit, UnitTier, User

    with session_scope() as s:
        district = Unit(code="T-QU", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        admin = User(username="t-admin", full_name="管理员", role=Role.ADMIN, unit_id=district.id)
        s.add(admin)
        s.flush()
        _, token = create_token(s, user_id=admin.id, name="test")
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


@pytest.fixture(autouse=True)
def _no_similar_orders_index_outlives_a_test() -> Iterator[None]:
    """The similar-orders index, the reference tables' caches, the status counts, the KPI figures, the risk findings
    and the correlation graphs (both answer the last value computed while the next is computed) are per-process caches
    keyed by database URL; tables are emptied between tests and SQLite hands ids out again, so every test starts and
    ends without them (the findings of test_web_brain's world were answered to test_risk_api's first request)."""
    from cityhub import main, refdata
    from cityhub.analytics import correlation, kpi, risk
    from cityhub.nlp.similar import reset_indexes

    reset_indexes()
    refdata.clear()
    main.forget_order_counts()
    correlation.clear_cache()
    risk.clear_cache()
    kpi.clear_cache()
    yield
    reset_indexes()
    refdata.clear()
    main.forget_order_counts()
    correlation.clear_cache()
    risk.clear_cache()
    kpi.clear_cache()


@pytest.fixture(autouse=True)
def _dedupe_settings_follow_the_environment() -> Iterator[None]:
    """``get_dedupe_settings`` is cached: a test that sets ``CITYHUB_DEDUPE_*`` with monkeypatch (and calls intake)
    must not leave its values to the tests after it. Torn down after monkeypatch has restored the environment."""
    yield
    from cityhub.intake.dedupe import get_dedupe_settings

    get_dedupe_settings.cache_clear()


@pytest.fixture
def live_server(app_db: str) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a thread, over ``app_db``; yields its base URL."""
    import threading
    import time

    import uvicorn

    from cityhub.main import create_app

    config = uvicorn.Config(create_app(), host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The store of attached files (``CITYHUB_FILES_DIR``), empty, of this test alone."""
    root = tmp_path / "files"
    monkeypatch.setenv("CITYHUB_FILES_DIR", str(root))
    return root
