"""Consistent backups while the service runs — SQLite's online backup API, pg_dump for PostgreSQL — kept in a
directory with the newest N (``backup_into``), and the restore of one (``check_restore``, ``restore``).

``cityhub db backup`` records each run as the ``job_runs`` row ``db-backup`` (shown by ``/healthz``, the status page
and ``/metrics``); with ``CITYHUB_BACKUP_MAX_AGE_HOURS`` set, ``/healthz`` is ``degraded`` once the last successful
backup is older than that (``stale_backup_problem``).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Mapping
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from cityhub.config import get_settings
from cityhub.errors import Conflict, ToolFailed, ValidationFailed
from cityhub.outfiles import PARTIAL_SUFFIX, TargetRefused, private_files

JOB_NAME = "db-backup"  # the job_runs row of `cityhub db backup`


class BackupSettings(BaseSettings):
    """Database backups (`cityhub db backup`): how old the last successful one may be before /healthz says so."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_BACKUP_", env_file=".env", extra="ignore")

    max_age_hours: float | None = Field(
        None,
        gt=0,
        description="When set, /healthz is degraded (a problem naming it) while no `cityhub db backup` has "
        "succeeded within this many hours (job_runs row db-backup) — e.g. 26 for a nightly backup. Unset: backups "
        "are not watched.",
    )


def get_backup_settings() -> BackupSettings:
    # Not cached: tests and a changed environment take effect at once.
    return BackupSettings()


def backup(target: Path, *, url: str | None = None) -> str:
    """Copy the database at ``url`` (default: the configured one) to ``target``; returns a short description.

    The copy holds citizens' personal data: it is written private (mode 0600) under ``<target>.partial`` and renamed
    once complete (:func:`cityhub.outfiles.private_files`); a bad target is refused before anything is copied
    (TargetRefused)."""
    parsed = make_url(url or get_settings().database_url)
    target = Path(target)
    if parsed.get_backend_name() == "sqlite":
        source_path = parsed.database
        if not source_path or source_path == ":memory:":
            raise ValidationFailed("an in-memory SQLite database cannot be backed up")
        source = Path(source_path)
        if not source.exists():
            raise ValidationFailed(f"database file {source_path} does not exist")
        live = [source.resolve(), *(source.resolve().with_name(source.name + s) for s in ("-wal", "-shm", "-journal"))]
        if target.resolve() in live or (target.exists() and os.path.samefile(target, source)):
            raise TargetRefused(f"backup target {target} is the live database; give another file")
        with private_files([target], "backup") as (tmp,):
            # The online backup API copies every page in one step under a read transaction: writers go on meanwhile
            # (WAL). In several steps, a write by another connection between two steps would restart the copy, and
            # a large database under steady writes might never finish.
            try:
                with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(tmp)) as dst:
                    src.backup(dst)
            except sqlite3.Error as exc:
                raise ValidationFailed(f"backup to {target} failed: {exc}") from None
        return f"sqlite, {target.stat().st_size} bytes"
    if parsed.get_backend_name() == "postgresql":
        (pg_dump,) = client_tools("pg_dump")
        env, dsn = _pg_connection(parsed)
        with private_files([target], "backup") as (tmp,):
            # --format=custom is one consistent snapshot (a single repeatable-read transaction).
            done = subprocess.run(
                [pg_dump, "--format=custom", "--file", str(tmp), dsn], env=env, capture_output=True, text=True
            )
            if done.returncode != 0:  # the server unreachable, a login refused: the command could not run (exit 2)
                raise ToolFailed(
                    f"pg_dump failed, nothing written to {target}: {_tool_problem(done.stderr, done.returncode)}"
                )
        return f"postgresql custom dump, {target.stat().st_size} bytes"
    raise ValidationFailed(f"backup of {parsed.get_backend_name()} databases is not supported")


def client_tools(*names: str) -> list[str]:
    """The paths of PostgreSQL's client programs ``names`` (pg_dump, pg_restore, psql) on ``PATH``; when any is
    missing, ToolFailed in one line naming every missing one and how to install them (the command could not run: the
    command line's exit 2), before anything is written."""
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        them = " and ".join(missing)
        raise ToolFailed(
            f"{them} {'is' if len(missing) == 1 else 'are'} not installed (not found on PATH): install PostgreSQL's "
            "client programs, the Debian package postgresql-client (`apt-get install postgresql-client`), in a "
            "version not older than the server's"
        )
    return [str(found[name]) for name in names]


TOOL_MESSAGE_MAX = 600  # characters of pg_dump's, pg_restore's or psql's message kept in the error line


def _tool_problem(stderr: str, returncode: int | None) -> str:
    """A client tool's message on one line: every non-empty line of its stderr (the cause is often on the first, a
    hint on the next), joined with "; " and cut at ``TOOL_MESSAGE_MAX`` characters."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    problem = "; ".join(lines) or f"exit code {returncode}"
    if len(problem) > TOOL_MESSAGE_MAX:
        problem = problem[: TOOL_MESSAGE_MAX - 1] + "…"
    return problem


def _pg_connection(parsed: URL) -> tuple[dict[str, str], str]:
    """The environment and the connection string of a PostgreSQL client tool for the database ``parsed`` names: the
    password goes in the environment (``PGPASSWORD``), not on the command line where every user's `ps` would show
    it."""
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return env, parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


# ------------------------------------------------------------------------------------ rotation (backup --dir)

# What `db backup --dir` names its files: the backend, the database (`backup_label`), the district's local time
# (sortable), a counter for a second backup within the same second. Only files of this form — or of the form before
# December 2026, without the database — are ever removed by the rotation.
_SUFFIXES = {"sqlite": "db", "postgresql": "dump"}
LABEL_MAX = 40


def backup_label(parsed: URL) -> str:
    """The database a backup comes from as its file name says it: a SQLite file's stem, a PostgreSQL database's name,
    in ASCII letters, digits and underscores (anything else one ``_``), at most ``LABEL_MAX`` characters; ``db``
    when nothing is left."""
    name = (
        Path(str(parsed.database or "")).stem if parsed.get_backend_name() == "sqlite" else str(parsed.database or "")
    )
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:LABEL_MAX] or "db"


def _rotated_name(backend: str, label: str) -> re.Pattern[str]:
    return re.compile(
        rf"cityhub-{backend}-(?:{re.escape(label)}-)?(\d{{8}}-\d{{6}})(?:-([1-9]\d*))?\.{_SUFFIXES[backend]}"
    )


@dataclass
class Rotation:
    """What one ``db backup --dir`` did."""

    written: Path
    description: str
    removed: list[Path] = field(default_factory=list)
    kept: int = 0  # this command's backups of the backend left in the directory, the new one included


def rotated_backups(directory: Path, backend: str, label: str) -> list[Path]:
    """The backups ``db backup --dir`` made of the ``backend`` database ``label`` (:func:`backup_label`) in
    ``directory``, oldest first (by the time and counter in their names): regular files named as it names them —
    and as it named them before December 2026, without the database, when the advice was a directory per
    database — nothing else: other databases', the other backend's and other files, directories and symbolic links
    are never among them."""
    pattern = _rotated_name(backend, label)
    found: list[tuple[tuple[str, int], Path]] = []
    for path in directory.iterdir():
        match = pattern.fullmatch(path.name)
        if match is None or path.is_symlink() or not path.is_file():
            continue
        found.append(((match.group(1), int(match.group(2) or 1)), path))
    return [path for _, path in sorted(found)]


def backup_into(
    directory: Path, *, keep: int | None = None, url: str | None = None, now: datetime | None = None
) -> Rotation:
    """Back the database up into a new file in ``directory`` named for the backend, the database and the district's
    local time (``cityhub-sqlite-cityhub-20261206-021500.db``, ``cityhub-postgresql-cityhub-….dump``), then, with
    ``keep``, remove this command's oldest backups of that database there beyond the newest ``keep`` (never the new
    one, never any other file). A failed backup raises before anything is removed; a ``directory`` that is a file,
    or a ``keep`` below 1, is TargetRefused before anything is done."""
    from cityhub.db import utcnow

    settings = get_settings()
    parsed = make_url(url or settings.database_url)
    backend = parsed.get_backend_name()
    if backend not in _SUFFIXES:
        raise ValidationFailed(f"backup of {backend} databases is not supported")
    if keep is not None and keep < 1:
        raise TargetRefused(f"--keep {keep}: keep at least 1 backup")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TargetRefused(f"backup directory {directory} is not a directory")
    stamp = (now or utcnow()).astimezone(settings.tz).strftime("%Y%m%d-%H%M%S")
    label = backup_label(parsed)
    target = directory / f"cityhub-{backend}-{label}-{stamp}.{_SUFFIXES[backend]}"
    counter = 1
    while target.exists() or target.is_symlink():  # a second backup within the same second
        counter += 1
        target = directory / f"cityhub-{backend}-{label}-{stamp}-{counter}.{_SUFFIXES[backend]}"
    description = backup(target, url=url)
    rotation = Rotation(written=target, description=description)
    older = [p for p in rotated_backups(directory, backend, label) if p != target]
    if keep is not None:
        excess = older[: max(0, len(older) - (keep - 1))]
        for path in excess:
            path.unlink(missing_ok=True)
            rotation.removed.append(path)
    rotation.kept = len(older) - len(rotation.removed) + 1
    return rotation


def stale_backup_problem(job: Mapping[str, Any] | None, now: datetime) -> str | None:
    """What ``/healthz`` says when ``CITYHUB_BACKUP_MAX_AGE_HOURS`` is set and the last successful backup (``job``:
    the ``db-backup`` row as the status summary holds it, None when there is none) is older than that; None
    otherwise."""
    max_age = get_backup_settings().max_age_hours
    if max_age is None:
        return None
    last = job.get("last_finished_at") if job is not None else None
    if last is None:
        return f"backup: no successful database backup recorded (CITYHUB_BACKUP_MAX_AGE_HOURS={max_age:g})"
    age_h = (now - last).total_seconds() / 3600
    if age_h <= max_age:
        return None
    return (
        f"backup: the last successful database backup ended {age_h:.0f} hours ago, more than "
        f"CITYHUB_BACKUP_MAX_AGE_HOURS={max_age:g}"
    )


# ---------------------------------------------------------------------------------------------------- restore

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"


@dataclass(frozen=True)
class RestorePlan:
    """A backup checked for a restore into the configured database: what it is and which migration it holds."""

    backend: str
    source: Path
    revision: str
    database: str  # the database it replaces, as the operator knows it: a file, or a database on a server


@dataclass(frozen=True)
class Restored:
    plan: RestorePlan
    kept_aside: Path | None = None  # SQLite: the database as it was before, renamed
    had_database: bool = True  # SQLite: whether there was a database file to replace


def check_restore(source: Path, *, url: str | None = None) -> RestorePlan:
    """Check ``source`` for a restore into the database at ``url`` (default: the configured one) before anything is
    changed or asked: a file, a backup of that backend (SQLite: a database that passes ``PRAGMA integrity_check``;
    PostgreSQL: an archive of ``pg_dump --format=custom`` that ``pg_restore`` reads) of a cityhub database (its
    ``alembic_version`` names a migration this code knows), the client tools there, and no other process on the
    database. ValidationFailed or Conflict (database in use), one line, otherwise."""
    parsed = make_url(url or get_settings().database_url)
    backend = parsed.get_backend_name()
    source = Path(source)
    if not source.exists():
        raise ValidationFailed(f"no backup file {source}")
    if not source.is_file():
        raise ValidationFailed(f"{source} is not a file; give a backup file")
    with source.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValidationFailed("an in-memory SQLite database cannot be restored into")
        if head.startswith(PG_CUSTOM_MAGIC):
            raise ValidationFailed(f"{source} is a PostgreSQL dump; the configured database is SQLite")
        if head != SQLITE_MAGIC:
            raise ValidationFailed(f"{source} is not a backup: not a SQLite database")
        live = Path(str(parsed.database))
        if live.exists() and os.path.samefile(live, source):
            raise ValidationFailed(f"{source} is the live database itself; give a backup file")
        plan = RestorePlan("sqlite", source, _known(source, _sqlite_backup_revision(source)), str(live))
    elif backend == "postgresql":
        if head == SQLITE_MAGIC:
            raise ValidationFailed(f"{source} is a SQLite database; the configured database is PostgreSQL")
        if not head.startswith(PG_CUSTOM_MAGIC):
            raise ValidationFailed(f"{source} is not a backup: not a pg_dump archive (custom format)")
        revision = _known(source, _pg_backup_revision(source))
        plan = RestorePlan("postgresql", source, revision, f"{parsed.database} on {parsed.host or 'localhost'}")
    else:
        raise ValidationFailed(f"restore of {backend} databases is not supported")
    refuse_while_in_use(url)
    return plan


def refuse_while_in_use(url: str | None = None) -> None:
    """Conflict, one line, while another process has the database at ``url`` (default: the configured one) open:
    what must not change under a running server — ``db restore``, ``db downgrade``. SQLite: the exclusive lock is
    refused (:func:`_exclusive_sqlite`; a file that is not there is nobody's); PostgreSQL: other client sessions are
    connected (:func:`_refuse_other_sessions`)."""
    parsed = make_url(url or get_settings().database_url)
    if parsed.get_backend_name() == "sqlite":
        live = Path(str(parsed.database or ""))
        if parsed.database not in (None, "", ":memory:") and live.exists():
            with closing(_exclusive_sqlite(live)):
                pass
    elif parsed.get_backend_name() == "postgresql":
        _refuse_other_sessions(parsed)


def _known(source: Path, revision: str) -> str:
    """``revision``, the migration the backup ``source`` is at, when this code knows it; ValidationFailed if not."""
    from cityhub import migrate

    if not migrate.known(revision):
        raise ValidationFailed(
            f"{source} is at migration {revision}, which this version of cityhub does not know (a newer release "
            "made it); restore it with that release"
        )
    return revision


def restore(plan: RestorePlan, *, url: str | None = None, now: datetime | None = None) -> Restored:
    """Put the backup ``plan`` names in the place of the database at ``url`` (default: the configured one).

    SQLite: under an exclusive lock on the database (refused, Conflict, while another connection has it open), the
    database is written back into its main file and renamed aside with its ``-wal``/``-shm``
    (``<file>.before-restore-<local time>``; what is stale of them then removed, ``_drop_stale_side_files``), and
    a copy of the backup, made beside it first with the database's owner and mode, renamed into its place.
    PostgreSQL (refused while other sessions are connected): in one transaction (``psql``), every object of the
    ``public`` schema the database's user owns is dropped and the archive restored (``pg_restore --clean
    --if-exists --no-owner``); any failure rolls it all back."""
    from cityhub.db import utcnow

    parsed = make_url(url or get_settings().database_url)
    if plan.backend == "sqlite":
        stamp = (now or utcnow()).astimezone(get_settings().tz).strftime("%Y%m%d-%H%M%S")
        return _restore_sqlite(plan, Path(str(parsed.database)), stamp)
    _restore_pg(plan, parsed)
    return Restored(plan)


def _sqlite_backup_revision(source: Path) -> str:
    """The migration of the SQLite backup ``source``, read without writing anything beside it (``immutable``: a
    finished backup has no journal), after ``PRAGMA integrity_check``."""
    try:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?immutable=1", uri=True)) as conn:
            check = [line.strip() for row in conn.execute("PRAGMA integrity_check(3)") for line in row[0].splitlines()]
            if check != ["ok"]:
                said = "; ".join(line for line in check if line)
                raise ValidationFailed(f"{source} is damaged: its integrity check says {said[:300]}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                raise ValidationFailed(f"{source} is not a backup of cityhub: it has no alembic_version table")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(f"{source} is not a backup: {exc}") from None
    if row is None or not row[0]:
        raise ValidationFailed(f"{source} is not a backup of cityhub: its alembic_version is empty")
    return str(row[0])


def _exclusive_sqlite(live: Path) -> sqlite3.Connection:
    """A connection holding the SQLite database ``live`` exclusively (no other connection, in any process, may open
    it while this one is open); Conflict, one line, while another has it open. In WAL mode every open connection
    keeps a shared lock, so the exclusive lock is refused even to one that does nothing."""
    conn = sqlite3.connect(live, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")  # the lock stays: locking_mode EXCLUSIVE keeps it until the connection closes
    except sqlite3.OperationalError as exc:
        conn.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise Conflict(
                f"database in use: another process has {live} open; stop every cityhub process (serve, worker) first"
            ) from None
        raise ValidationFailed(f"cannot open the database {live}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


_SIDE_FILES = ("-wal", "-shm", "-journal")


def _restore_sqlite(plan: RestorePlan, live: Path, stamp: str) -> Restored:
    incoming = live.with_name(f"{live.name}.restoring{PARTIAL_SUFFIX}")
    try:
        live.parent.mkdir(parents=True, exist_ok=True)
        incoming.unlink(missing_ok=True)
        shutil.copyfile(plan.source, incoming)
        if live.exists():  # the service's user must still own and write it, whoever runs the restore
            st = live.stat()
            os.chmod(incoming, st.st_mode & 0o777)
            if (st.st_uid, st.st_gid) != (incoming.stat().st_uid, incoming.stat().st_gid):
                os.chown(incoming, st.st_uid, st.st_gid)
        else:
            os.chmod(incoming, 0o600)
        with incoming.open("rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        incoming.unlink(missing_ok=True)
        raise ValidationFailed(f"cannot put the backup beside {live}: {exc.strerror or exc}") from None
    if not live.exists():
        os.replace(incoming, live)
        return Restored(plan, kept_aside=None, had_database=False)
    aside = live.with_name(f"{live.name}.before-restore-{stamp}")
    counter = 1
    while aside.exists():
        counter += 1
        aside = live.with_name(f"{live.name}.before-restore-{stamp}-{counter}")
    try:
        with closing(_exclusive_sqlite(live)) as conn:
            # Everything the WAL holds goes into the main file, which then stands alone: the -wal left at the
            # database's path would otherwise be read into the restored file.
            conn.execute("PRAGMA journal_mode=DELETE")
            os.rename(live, aside)
            for suffix in _SIDE_FILES:
                side = Path(f"{live}{suffix}")
                if side.exists():
                    os.rename(side, Path(f"{aside}{suffix}"))
            os.replace(incoming, live)
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    _drop_stale_side_files(aside)
    return Restored(plan, kept_aside=aside)


JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")  # the header of a rollback journal that holds pages


def _drop_stale_side_files(database: Path) -> None:
    """Remove what is left beside the set-aside ``database`` that holds nothing of it: its WAL was written back and
    its journal mode is DELETE, so a ``-shm`` (the index of a WAL) is stale, and a ``-wal`` that is empty or a
    ``-journal`` without a journal's header (the exclusive connection's, truncated or zeroed, not deleted) are
    leftovers. A ``-wal`` with frames or a journal with a header — which SQLite would read — stays."""
    Path(f"{database}-shm").unlink(missing_ok=True)
    wal = Path(f"{database}-wal")
    if wal.is_file() and wal.stat().st_size == 0:
        wal.unlink()
    journal = Path(f"{database}-journal")
    if journal.is_file():
        with journal.open("rb") as fh:
            head = fh.read(len(JOURNAL_MAGIC))
        if head != JOURNAL_MAGIC:
            journal.unlink()


def _pg_backup_revision(source: Path) -> str:
    """The migration of the pg_dump archive ``source`` (its ``alembic_version`` row, read by ``pg_restore``)."""
    pg_restore, _ = _pg_tools()
    listing = subprocess.run([pg_restore, "--list", str(source)], capture_output=True, text=True)
    if listing.returncode != 0:
        problem = _tool_problem(listing.stderr, listing.returncode)
        raise ValidationFailed(f"{source} is not a backup: pg_restore cannot read it: {problem}")
    if not re.search(r"TABLE DATA \S+ alembic_version ", listing.stdout):
        raise ValidationFailed(f"{source} is not a backup of cityhub: it has no alembic_version table")
    data = subprocess.run(
        [pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(source)],
        capture_output=True,
        text=True,
    )
    rows = data.stdout.partition("FROM stdin;\n")[2].partition("\\.")[0].split()
    if data.returncode != 0 or not rows:
        raise ValidationFailed(f"{source} is not a backup of cityhub: its alembic_version is empty")
    return rows[0]


def _pg_tools() -> tuple[str, str]:
    pg_restore, psql = client_tools("pg_restore", "psql")
    return pg_restore, psql


def _refuse_other_sessions(parsed: URL) -> None:
    """Conflict, one line, while other client sessions are connected to the database (``pg_stat_activity``)."""
    from sqlalchemy import text

    from cityhub.db import make_engine

    engine = make_engine(parsed.render_as_string(hide_password=False), poolclass=_null_pool())
    try:
        with engine.connect() as conn:
            others = conn.execute(
                text(
                    "SELECT count(*), string_agg(DISTINCT coalesce(nullif(application_name, ''), usename), ', ') "
                    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                )
            ).one()
    finally:
        engine.dispose()
    if others[0]:
        raise Conflict(
            f"database in use: {others[0]} other session(s) connected to {parsed.database} ({others[1]}); stop every "
            "cityhub process (serve, worker) first"
        )


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


# Run before the archive, in its transaction: the objects of the schema the database's user owns (tables with their
# indexes, triggers and sequences, views, functions, types — not an extension's), so that objects a later migration
# made, which an older archive does not hold, go too (`db upgrade` would meet them again).
_PG_CLEAR_PUBLIC = """
DO $cityhub$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND pg_has_role(c.relowner, 'USAGE')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
        WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure::text AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public' AND pg_has_role(p.proowner, 'USAGE')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.sig);
  END LOOP;
  FOR r IN SELECT t.oid::regtype::text AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r') AND pg_has_role(t.typowner, 'USAGE')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                        AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', r.name);
  END LOOP;
END
$cityhub$;
"""


def _restore_pg(plan: RestorePlan, parsed: URL) -> None:
    pg_restore, psql = _pg_tools()
    _refuse_other_sessions(parsed)  # again: one may have come since the check
    env, dsn = _pg_connection(parsed)
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        # One transaction, committed only after pg_restore has written the whole archive: psql stops at the first
        # error (ON_ERROR_STOP), and a script that ends without its COMMIT is rolled back when psql disconnects.
        loader = subprocess.Popen(
            [psql, "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", dsn, "--file", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env=env,
        )
        assert loader.stdin is not None
        reader: subprocess.Popen[bytes] | None = None
        complete = False
        try:
            loader.stdin.write(b"BEGIN;\n" + _PG_CLEAR_PUBLIC.encode())
            reader = subprocess.Popen(
                [pg_restore, "--clean", "--if-exists", "--no-owner", "--file=-", str(plan.source)],
                stdout=subprocess.PIPE,
                stderr=restore_err,
            )
            assert reader.stdout is not None
            shutil.copyfileobj(reader.stdout, loader.stdin, 1 << 20)
            complete = reader.wait() == 0
            if complete:
                loader.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:  # psql stopped at an error
            pass
        finally:
            if reader is not None and reader.poll() is None:
                reader.kill()
                reader.wait()
            with suppress(BrokenPipeError):
                loader.stdin.close()
            loader.wait()
        if reader is not None and reader.returncode != 0:
            restore_err.seek(0)
            problem = _tool_problem(restore_err.read().decode(errors="replace"), reader.returncode)
            raise ValidationFailed(f"pg_restore failed, the database is as it was: {problem}")
        if loader.returncode != 0 or not complete:
            psql_err.seek(0)
            problem = _tool_problem(psql_err.read().decode(errors="replace"), loader.returncode)
            raise ValidationFailed(f"restore failed, the database is as it was: {problem}")
