"""Run Alembic migrations programmatically (``cityhub db upgrade`` and the test fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

from cityhub.config import get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().database_url)
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (default: the configured one) to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def current(url: str | None = None) -> str | None:
    """The Alembic revision of the database at ``url`` (default: the configured one), over a connection of its own."""
    from cityhub.db import make_engine

    engine = make_engine(url or get_settings().database_url)
    try:
        with engine.connect() as conn:
            return revision(conn)
    finally:
        engine.dispose()


def revision(conn: Connection) -> str | None:
    """The Alembic revision of the database ``conn`` is connected to; None before the first migration."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
