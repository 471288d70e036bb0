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


def backup(target: Path, *, url: str | None = None) -> str:
    """Copy the database at ``url`` (default: the configured one) to ``target``; returns a short description."""
    parsed = make_url(url or get_settings().database_url)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".partial")  # renamed to ``target`` once complete
    if parsed.get_backend_name() == "sqlite":
        source_path = parsed.database
        if not source_path or source_path == ":memory:":
            raise ValidationFailed("an in-memory SQLite database cannot be backed up")
        if not Path(source_path).exists():
            raise ValidationFailed(f"database file {source_path} does not exist")
        tmp.unlink(missing_ok=True)
        # The online backup API copies every page in one step under a read transaction: writers go on meanwhile
        # (WAL). In several steps, a write by another connection between two steps would restart the copy, and a
        # large database under steady writes might never finish.
        with closing(sqlite3.connect(source_path)) as src, closing(sqlite3.connect(tmp)) as dst:
            src.backup(dst)
        tmp.replace(target)
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
        # --format=custom is one consistent snapshot (a single repeatable-read transaction).
        done = subprocess.run(
            [pg_dump, "--format=custom", "--file", str(tmp), dsn], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            problem = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise ValidationFailed(f"pg_dump failed, nothing written to {target}: {problem}")
        tmp.replace(target)
        return f"postgresql custom dump, {target.stat().st_size} bytes"
    raise ValidationFailed(f"backup of {parsed.get_backend_name()} databases is not supported")
