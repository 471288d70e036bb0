"""Engine, sessions and the declarative base. SQLite (WAL) is the embedded default, PostgreSQL production."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

from cityhub.config import get_settings, normalise_database_url

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

log = logging.getLogger(__name__)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: cityhub stores only timezone-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


def _held_in_utc(target: Any, value: Any, oldvalue: Any, initiator: Any) -> Any:
    del target, oldvalue, initiator
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo is not None else value


@event.listens_for(Base, "mapper_configured", propagate=True)
def _hold_times_in_utc(mapper: Any, class_: type) -> None:
    """An attribute of a ``UTCDateTime`` column set to an aware time holds it in UTC, as a loaded one does: an
    object answered right after it was written (``POST`` → 201) reads as it will once read back (``GET``)."""
    for prop in mapper.column_attrs:
        if any(isinstance(column.type, UTCDateTime) for column in prop.columns):
            event.listen(getattr(class_, prop.key), "set", _held_in_utc, retval=True)


POOL_SIZE = 32
POOL_MAX_OVERFLOW = 32


def upsert_insert(dialect: str) -> Any:
    """The ``insert`` construct with ON CONFLICT of a backend (``dialect``: ``session.get_bind().dialect.name``):
    PostgreSQL's, else SQLite's — the two backends cityhub runs on."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if dialect == "postgresql" else sqlite_insert


def hit_minute_window(session: Session, model: Any, key: str, key_value: int, limit: int, now: datetime) -> int | None:
    """Count one call of ``key_value`` (a row of ``model``'s ``key`` column: an API key's, a personal token's) in the
    current clock minute — a row per key and minute (``window_start``, ``calls``), counted by an upsert so that every
    server process sees the same count — and past ``limit`` return the seconds to the next minute, else None. The
    first call of a minute drops the key's finished minutes (the cheap moment to)."""
    import math
    from datetime import timedelta

    from sqlalchemy import delete

    window = now.replace(second=0, microsecond=0)
    column = getattr(model, key)
    stmt = upsert_insert(session.get_bind().dialect.name)(model).values(
        {key: key_value, "window_start": window, "calls": 1}
    )
    stmt = stmt.on_conflict_do_update(index_elements=[key, "window_start"], set_={"calls": model.calls + 1})
    calls = int(session.execute(stmt.returning(model.calls)).scalar_one())
    if calls == 1:
        session.execute(delete(model).where(column == key_value, model.window_start < window))
    if calls <= limit:
        return None
    return max(1, math.ceil((window + timedelta(minutes=1) - now).total_seconds()))


# The largest key a table holds: INTEGER keys are 32-bit on PostgreSQL; orders' keys are BIGINT there, and SQLite's
# INTEGER is 64-bit everywhere. A larger id names no row, and neither database can be asked about it (SQLite cannot
# bind it, PostgreSQL refuses it as out of range): the API's paths (``api.deps.known_path_ids``) and the command
# line's id arguments (``clitools.id_argument``) answer "not found" before any query.
MAX_ID = 2_147_483_647
MAX_BIG_ID = 9_223_372_036_854_775_807


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout first, and WAL only when the file is not in WAL yet: switching the journal mode takes a lock,
    # so a connection opened while another one writes would otherwise fail or stall right here.
    cursor.execute("PRAGMA busy_timeout=30000")
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    if _checkpoints_in_background:
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # a thread of its own checkpoints (start_sqlite_checkpointer)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


# In a server process, SQLite's WAL is copied back into the database by a thread of its own: left to SQLite, the
# commit that fills the WAL past 1,000 pages does it (and its fsyncs) while it still holds the write lock, so every
# writer behind it waits — at 50 creations/s that was every second or two. A passive checkpoint runs beside
# readers and writers.
_checkpoints_in_background = False
checkpoint_stats: dict[str, Any] = {"runs": 0, "last": None}  # of this process's checkpointer (tests read it)


def start_sqlite_checkpointer(url: str, every_s: float) -> threading.Event | None:
    """Checkpoint the SQLite database ``url`` every ``every_s`` seconds from a daemon thread, and turn SQLite's
    automatic checkpoints off for this process's connections opened from now on. Returns the event that stops
    it; None for PostgreSQL, an in-memory database or ``every_s`` 0."""
    global _checkpoints_in_background
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") or every_s <= 0:
        return None
    _checkpoints_in_background = True
    engine = side_engine(url, "wal checkpoints", pool_size=1, max_overflow=0)
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                with engine.connect() as conn:
                    busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
                checkpoint_stats["runs"] += 1
                checkpoint_stats["last"] = (busy, frames, copied)
            except Exception:  # the next one tries again; meanwhile the WAL grows
                log.exception("WAL checkpoint of %s failed", parsed.database)

    threading.Thread(target=run, name="cityhub-wal-checkpoint", daemon=True).start()
    return stop


# SQLite has one writer at a time. Writers queue for it outside SQLite, taken just before a connection's first
# write statement and released when that transaction ends: the threads of a process on a Python lock, then the
# processes (server workers, the job worker, the command line) on a POSIX lock of a side file. A waiter wakes
# within a millisecond of the release instead of sleeping in SQLite's busy handler (sleeps of up to 100 ms, and
# no order among processes: one of two server processes could starve for seconds). The transaction then starts
# with BEGIN IMMEDIATE, which finds the database's lock free (a program that does not queue, such as the sqlite3
# shell, is still waited for by busy_timeout). Reads before the first write run outside the transaction, as the
# sqlite3 module runs them, so a transaction never has to upgrade a read snapshot that another writer moved.
SQLITE_LOCK_TIMEOUT_S = 30.0
_WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_HOLDS_WRITE_LOCK = "cityhub_sqlite_write_lock"


class SqliteWriterQueue:
    """The write lock of one SQLite file: a thread lock for this process, a record lock on ``<file>-writers.lock``
    across processes. ``acquire``/``release`` as for a lock; the release may come from another thread."""

    def __init__(self, database: str) -> None:
        self.threads = threading.Lock()
        self.path = database + "-writers.lock"
        self._fd: int | None = None

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        limit = timeout if blocking and timeout >= 0 else (SQLITE_LOCK_TIMEOUT_S if blocking else 0.0)
        deadline = time.monotonic() + limit
        if not self.threads.acquire(blocking, timeout if blocking else -1):
            return False
        try:
            fd = self._file()
            pause = 0.0002
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except OSError:  # another process writes
                    if time.monotonic() >= deadline:
                        self.threads.release()
                        return False
                    time.sleep(pause)
                    pause = min(pause * 2, 0.001)
        except BaseException:
            self.threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


_sqlite_writer_queues: dict[str, SqliteWriterQueue] = {}
_sqlite_writer_queues_guard = threading.Lock()


def _forget_writer_queues() -> None:
    # A forked child starts with no lock held: its copies of the parent's locks (maybe held by a parent thread
    # at the fork) are dropped, and POSIX record locks are not inherited.
    global _sqlite_writer_queues_guard
    _sqlite_writer_queues.clear()
    _sqlite_writer_queues_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_writer_queues)


def _is_write(statement: str) -> bool:
    head = statement.lstrip()[:7].upper()
    if head.startswith(_WRITE_PREFIXES):
        return True
    # A CTE in front of a write ("WITH … UPDATE"); the sqlite3 module would run it outside any transaction.
    return head.startswith("WITH") and any(f" {w} " in f" {statement.upper()} " for w in _WRITE_PREFIXES)


def _is_savepoint(statement: str) -> bool:
    """A SAVEPOINT opened outside a transaction would be the transaction itself (the sqlite3 module runs it as it
    comes), its RELEASE a COMMIT: the writes of a ``begin_nested`` block before the transaction's first write would be
    committed there, whatever the transaction does after. Such a savepoint begins the transaction, and takes the
    write lock, as a first write does (a savepoint is opened to write in it)."""
    return statement.lstrip()[:9].upper() == "SAVEPOINT"


def sqlite_write_lock(database: str) -> SqliteWriterQueue:
    """The writer queue of one SQLite database file (one per file and process)."""
    key = str(Path(database).resolve())
    with _sqlite_writer_queues_guard:
        queue = _sqlite_writer_queues.get(key)
        if queue is None:
            queue = _sqlite_writer_queues[key] = SqliteWriterQueue(key)
        return queue


def _install_sqlite_writer_queue(engine: Engine, database: str) -> None:
    lock = sqlite_write_lock(database)
    dialect = engine.dialect
    plain_commit, plain_rollback = dialect.do_commit, dialect.do_rollback

    def release(holder: Any) -> None:
        try:
            info = holder.info
        except (AttributeError, NotImplementedError):  # the bare connection of the engine's first connect
            return
        if info.pop(_HOLDS_WRITE_LOCK, False):
            lock.release()

    def before_cursor_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        fairy = conn.connection
        dbapi = fairy.dbapi_connection
        if dbapi is None or dbapi.in_transaction or not (_is_write(statement) or _is_savepoint(statement)):
            return
        if not lock.acquire(timeout=SQLITE_LOCK_TIMEOUT_S):
            raise sqlite3.OperationalError("database is locked (other writers held it too long)")
        try:
            dbapi.execute("BEGIN IMMEDIATE")
        except BaseException:
            lock.release()
            raise
        fairy.info[_HOLDS_WRITE_LOCK] = True

    # The lock is released after the transaction has really ended (the engine's commit/rollback events fire before).
    def do_commit(dbapi_connection: Any) -> None:
        try:
            plain_commit(dbapi_connection)
        finally:
            release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:  # also the pool's reset of a returned connection
        try:
            plain_rollback(dbapi_connection)
        finally:
            release(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    # A connection closed or invalidated while it held the lock (its transaction is gone with it).
    event.listen(engine, "close", lambda _dbapi, record: release(record))
    event.listen(engine, "invalidate", lambda _dbapi, record, _exc: release(record))


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: the configured database), creating SQLite folders."""
    url = url or get_settings().database_url
    parsed = make_url(url)
    in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
    if "poolclass" not in kwargs and not in_memory:
        # The server admits up to CITYHUB_HTTP_CONCURRENCY requests at once (api/gate.py), each holding a connection
        # and sometimes a second one (statistics, rate counters): the pool keeps that many open, so a request
        # never waits for a connection, nor pays for opening one.
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_MAX_OVERFLOW)
    if parsed.get_backend_name() == "sqlite":
        if not in_memory:
            Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if not in_memory:
            _install_sqlite_writer_queue(engine, str(parsed.database))
        return engine
    engine = create_engine(normalise_database_url(url), **kwargs)
    if "pool_pre_ping" not in kwargs:  # a caller that chose SQLAlchemy's own rule keeps it
        _ping_after_idle(engine, get_settings().db_ping_idle_seconds)
    return engine


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Test a pooled connection at checkout only when it sat unused for more than ``idle_seconds``.

    SQLAlchemy's ``pool_pre_ping`` tests every checkout. A connection the server dropped (a restart, an idle timeout
    on the server or a proxy) is one that sat unused; one checked in a moment ago is alive, so testing it is a wasted
    round trip. A failed test raises ``DisconnectionError``, on which the pool discards the connection and opens a
    fresh one, as pre-ping does.
    """
    from sqlalchemy import exc

    def checkin(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= idle_seconds:
            return  # new, or back in the pool a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"pooled connection is gone: {error}") from error

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


@lru_cache(maxsize=64)
def _url_key(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def database_key(session: Session) -> str:
    """The key of the session's database in per-process caches: its URL without the password.

    Rendered once per URL (rendering quotes every part: a measurable share of an intake when done at every flush).
    """
    return _url_key(session.get_bind().engine.url)


# Side engines: a small pool of its own on a database, for work that must not share the request's connection nor
# take a second one from the request pool (concurrent requests each waiting for a second connection that none
# releases would exhaust it). One per (database URL, purpose) and process.
_side_engines: dict[tuple[str, str], Engine] = {}
_side_engines_guard = threading.Lock()


def side_engine(url: URL | str, purpose: str, *, pool_size: int = 1, max_overflow: int = 2, **kwargs: Any) -> Engine:
    """The process's engine for ``purpose`` on the database ``url`` (made on first use with these arguments)."""
    from sqlalchemy.pool import QueuePool

    key = (url if isinstance(url, str) else url.render_as_string(hide_password=False), purpose)
    with _side_engines_guard:
        engine = _side_engines.get(key)
        if engine is None:
            engine = _side_engines[key] = make_engine(
                key[0], poolclass=QueuePool, pool_size=pool_size, max_overflow=max_overflow, **kwargs
            )
        return engine


def _forget_side_engines() -> None:
    # A forked child must not use its parent's open connections (nor a lock another thread held at the fork).
    global _side_engines_guard
    for engine in _side_engines.values():
        engine.dispose(close=False)
    _side_engines.clear()
    _side_engines_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_side_engines)

_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None
# Run with the configured database's URL before the process's engine is made; it raises to refuse the database
# (the command line's check, cityhub.cli.main: no command works on a missing SQLite file or a newer release's schema).
_before_open: Callable[[str], None] | None = None


@contextmanager
def checked_before_open(check: Callable[[str], None]) -> Iterator[None]:
    """Within the block, :func:`get_engine` runs ``check`` with the database's URL before it makes the engine."""
    global _before_open
    previous, _before_open = _before_open, check
    try:
        yield
    finally:
        _before_open = previous


# Threads of one process asking for the engine at once (a server's warm-ups at start) make one: without it two
# engines were made, and a thread could find the engine made but not yet its session factory.
_engine_guard = threading.Lock()


def _renew_engine_guard() -> None:
    global _engine_guard
    _engine_guard = threading.Lock()  # a lock another thread held at the fork is never released in the child


os.register_at_fork(after_in_child=_renew_engine_guard)


def get_engine() -> Engine:
    global _engine, _factory
    if (engine := _engine) is not None:
        return engine
    with _engine_guard:
        if (engine := _engine) is None:
            if _before_open is not None:
                _before_open(get_settings().database_url)
            engine = make_engine()
            _factory = sessionmaker(bind=engine, expire_on_commit=False)
            _engine = engine  # last: who finds the engine finds its factory
    return engine


def reset_engine() -> None:
    """Forget the cached engine (tests and CLI switch databases through the environment)."""
    global _engine, _factory
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _factory = None
    get_settings.cache_clear()


def session_factory() -> sessionmaker[Session]:
    get_engine()
    assert _factory is not None
    return _factory


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        rollback_after(session, exc)
        raise
    finally:
        session.close()


def rollback_after(session: Session, error: BaseException) -> None:
    """Roll back ``session``'s transaction after ``error``, which the caller then raises: a rollback that fails too
    (its connection gone with the server) is logged, never raised, so it does not take the place of ``error``."""
    try:
        session.rollback()
    except Exception:
        log.warning("rollback after %s failed too", type(error).__name__, exc_info=True)


def rowcount(result: Any) -> int:
    """Rows an INSERT / UPDATE / DELETE touched (DML results are CursorResults at run time; the typed
    ``Session.execute`` only promises a Result)."""
    return int(getattr(result, "rowcount", 0) or 0)


_T = TypeVar("_T")
# Values bound in one IN (…) or one executemany at most: far below SQLite's and PostgreSQL's limits on parameters.
IN_BATCH = 500


def in_batches(items: Sequence[_T], size: int = IN_BATCH) -> Iterator[list[_T]]:
    """``items`` in consecutive lists of at most ``size``: for an IN (…) list or a bulk write of unbounded length."""
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def contains_text(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` holds ``text``, Latin letters in either case on every backend (SQLite's ``LIKE`` ignores their
    case, PostgreSQL's does not), with ``%``, ``_`` and the escape character taken as themselves."""
    condition: ColumnElement[bool] = column.icontains(text, autoescape=True)
    return condition
