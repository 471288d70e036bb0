"""Consistent backups while the service runs: SQLite's online backup API, pg_dump for PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from cityhub.config import get_settings
from cityhub.errors import ValidationFailed
from cityhub.outfiles import private_files


def backup(target: Path, *, url: str | None = None) -> str:
    """Copy the database at ``url`` (default: the configured one) to ``target``; returns a short description.

    The copy holds citizens' personal data: it is written private (mode 0600) under ``<target>.partial`` and renamed
    once complete (:func:`cityhub.outfiles.private_files`); a bad target is refused before anything is copied."""
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
            raise ValidationFailed(f"backup target {target} is the live database; give another file")
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
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise ValidationFailed("pg_dump is not installed (Debian package postgresql-client)")
        # The password goes in the environment, not on the command line where every user's `ps` would show it.
        env = dict(os.environ)
        if parsed.password is not None:
            env["PGPASSWORD"] = str(parsed.password)
        dsn = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
        with private_files([target], "backup") as (tmp,):
            # --format=custom is one consistent snapshot (a single repeatable-read transaction).
            done = subprocess.run(
                [pg_dump, "--format=custom", "--file", str(tmp), dsn], env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise ValidationFailed(f"pg_dump failed, nothing written to {target}: {_pg_dump_problem(done)}")
        return f"postgresql custom dump, {target.stat().st_size} bytes"
    raise ValidationFailed(f"backup of {parsed.get_backend_name()} databases is not supported")


PG_DUMP_MESSAGE_MAX = 600  # characters of pg_dump's message kept in the error line


def _pg_dump_problem(done: subprocess.CompletedProcess[str]) -> str:
    """pg_dump's message on one line: every non-empty line of its stderr (the cause is often on the first, a hint on
    the next), joined with "; " and cut at ``PG_DUMP_MESSAGE_MAX`` characters."""
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    problem = "; ".join(lines) or f"exit code {done.returncode}"
    if len(problem) > PG_DUMP_MESSAGE_MAX:
        problem = problem[: PG_DUMP_MESSAGE_MAX - 1] + "…"
    return problem
