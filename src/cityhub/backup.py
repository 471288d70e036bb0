"""Consistent backups while the service runs: SQLite's online backup API, pg_dump for PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from cityhub.config import get_settings
from cityhub.errors import ValidationFailed


def backup(target: Path, *, url: str | None = None) -> str:
    """Copy the database at ``url`` (default: the configured one) to ``target``; returns a short description."""
    parsed = make_url(url or get_settings().database_url)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "sqlite":
        source_path = parsed.database
        if not source_path or source_path == ":memory:":
            raise ValidationFailed("an in-memory SQLite database cannot be backed up")
        if not Path(source_path).exists():
            raise ValidationFailed(f"database file {source_path} does not exist")
        tmp = target.with_suffix(target.suffix + ".partial")
        tmp.unlink(missing_ok=True)
        # The online backup API copies pages under a read transaction: writers may go on meanwhile (WAL).
        with sqlite3.connect(source_path) as src, sqlite3.connect(tmp) as dst:
            src.backup(dst, pages=4096)
        tmp.replace(target)
        return f"sqlite, {target.stat().st_size} bytes"
    if parsed.get_backend_name() == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise ValidationFailed("pg_dump is not installed (Debian package postgresql-client)")
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        # --format=custom is one consistent snapshot (a single repeatable-read transaction).
        subprocess.run([pg_dump, "--format=custom", "--file", str(target), dsn], check=True)
        return f"postgresql custom dump, {target.stat().st_size} bytes"
    raise ValidationFailed(f"backup of {parsed.get_backend_name()} databases is not supported")
