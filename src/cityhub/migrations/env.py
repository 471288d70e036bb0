"""Alembic environment: the database comes from the Alembic config or CITYHUB_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, event

import cityhub.models  # noqa: F401  (registers every table)
from cityhub.db import Base, make_engine
from cityhub.migrate import include_name

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _atomic_on_sqlite(connection: Connection) -> None:
    """Each migration's transaction really begins on SQLite when Alembic begins it. The sqlite3 module opens a
    transaction only before a write (INSERT, UPDATE, …): the DDL a migration starts with would otherwise be
    committed at once, and a migration failing half-way would leave its first tables and drops behind, neither at
    the old revision nor at the new one. SQLite's DDL is transactional once a transaction is open."""
    if connection.dialect.name != "sqlite":
        return

    def begin(conn: Connection) -> None:
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:
            dbapi.execute("BEGIN IMMEDIATE")

    event.listen(connection, "begin", begin)


def _run(connection: Connection) -> None:
    _atomic_on_sqlite(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER TABLE
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
