"""Run Alembic migrations programmatically (``cityhub db upgrade`` and the test fixtures)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url

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


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Whether Alembic's autogenerate compares a database object with the models: not the full-text search's index
    (SQLite's FTS5 table and the tables behind it, PostgreSQL's expression index), nor SQLite's counter of order
    changes (cityhub.workorders.changes), which the models do not hold."""
    from cityhub.workorders.changes import is_counter_table
    from cityhub.workorders.search import PG_INDEX, is_index_table

    if type_ == "table" and name is not None:
        return not is_index_table(name) and not is_counter_table(name)
    return not (type_ == "index" and name == PG_INDEX)


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (default: the configured one) to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str, url: str | None = None) -> None:
    """Migrate the database at ``url`` (default: the configured one) back to ``revision`` (an id such as
    ``0057_kb_public``): the later migrations' tables and columns are dropped with their data."""
    command.downgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    """This code's migration scripts (read once: they ship with the package)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head() -> str:
    """The revision this code's migrations end at."""
    return str(scripts().get_current_head())


def known(revision: str | None) -> bool:
    """Whether this code's migrations hold ``revision`` (None, a database never migrated, counts as known)."""
    try:
        return revision is None or scripts().get_revision(revision) is not None
    except CommandError:  # alembic: "No such revision"
        return False


def schema_problem(url: str | None = None, *, revision: str | Literal[False] | None = False) -> str | None:
    """One line saying how the database at ``url`` (default: the configured one) and this code disagree, or None.

    ``revision``: the database's revision when the caller has it (else it is read over a connection of its own).
    A database behind the code needs ``cityhub db upgrade``; one ahead of it was migrated by a newer release.
    """
    now = current(url) if revision is False else revision
    latest = head()
    if now == latest:
        return None
    if not known(now):
        return (
            f"the database is at migration {now}, which this version of cityhub does not know "
            "(a newer release migrated it)"
        )
    return (
        f"the database is at migration {now or '(none)'}, this version of cityhub needs {latest}: "
        "run `cityhub db upgrade`"
    )


def missing_file(url: str | None = None) -> str | None:
    """One line naming the SQLite file ``url`` (default: the configured database) names, when there is no such file:
    opening it would create an empty one (and its folders), and a wrong path would become a database whose tables a
    command then misses or, worse, reads as empty. None for a file that is there, an in-memory database and
    PostgreSQL."""
    parsed = make_url(url or get_settings().database_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if Path(str(parsed.database)).exists():
        return None
    return (
        f"there is no database file {parsed.database}: check CITYHUB_DATABASE_URL, or create it with "
        "`cityhub db upgrade`"
    )


def open_problem(url: str | None = None) -> str | None:
    """One line saying why a command must not work on the database at ``url`` (default: the configured one), or
    None: a SQLite file that is not there (:func:`missing_file`), or a schema a newer release migrated (this code
    would write what that release does not expect). A schema behind the code is left to the command: its first
    query that misses a table or column names it (cityhub.cli)."""
    missing = missing_file(url)
    if missing is not None:
        return missing
    now = current(url)
    return None if known(now) else schema_problem(url, revision=now)


def current(url: str | None = None) -> str | None:
    """The Alembic revision of the database at ``url`` (default: the configured one), over a connection of its own;
    None for a database never migrated, and for a SQLite file that is not there (not created by asking)."""
    from cityhub.db import make_engine

    if missing_file(url) is not None:
        return None
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


def compact(url: str | None = None) -> tuple[int, int]:
    """Give the space of deleted rows and dropped columns back (``cityhub db compact``): SQLite rewrites the file
    (``VACUUM``), PostgreSQL every table (``VACUUM (FULL, ANALYZE)``). Both hold each table exclusively while they
    work: run it in a quiet hour, after a migration that says so (0020). Returns the database's size in bytes before
    and after."""
    from cityhub.db import make_engine

    engine = make_engine(url or get_settings().database_url)
    try:
        with engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            before = _size(auto)
            if conn.dialect.name == "sqlite":
                # The copy VACUUM builds goes to a temporary file, not memory (cityhub's connections keep
                # temporaries in memory: a large database would need as much RAM again).
                auto.exec_driver_sql("PRAGMA temp_store=FILE")
                auto.exec_driver_sql("VACUUM")
                auto.exec_driver_sql("ANALYZE")
            else:
                auto.exec_driver_sql("VACUUM (FULL, ANALYZE)")
            return before, _size(auto)
    finally:
        engine.dispose()


def _size(conn: Connection) -> int:
    if conn.dialect.name == "sqlite":
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
        return int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
    return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)
