"""Alembic environment: the database comes from the Alembic config or CITYHUB_DATABASE_URL."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy import Connection, event
from sqlalchemy.exc import SAWarning

import cityhub.models  # noqa: F401  (registers every table)
from cityhub.db import Base, make_engine
from cityhub.migrate import include_name

config = context.config
NEED_INDEX = "ix_orders_enterprise_need_created"
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


def _foreign_keys_off_on_sqlite(connection: Connection) -> bool:
    """Turn SQLite's foreign-key enforcement off for the migrations (True when it was turned off here).

    A batch operation copies a table, drops the old one and renames the copy: with enforcement on (every connection
    of ours, ``db.make_engine``), dropping a table deletes its rows first and the deletion cascades — a downgrade of
    ``sensors`` or ``alarm_rules`` (0019) took every alarm with it. SQLite's own procedure for such changes turns
    enforcement off around them and checks the keys before committing (:func:`_check_foreign_keys`). The pragma is
    a no-op inside a transaction, so it is set before the migrations' transaction begins (a connection handed in
    with one already open keeps enforcement on)."""
    if connection.dialect.name != "sqlite":
        return False
    dbapi = connection.connection.dbapi_connection
    if dbapi is None or dbapi.in_transaction:
        return False
    dbapi.execute("PRAGMA foreign_keys=OFF")
    return True


def _check_foreign_keys(connection: Connection) -> None:
    """Refuse (rolling the migrations back) a schema change that left a row naming a missing row."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise RuntimeError(
            f"the migration left {len(broken)} rows naming missing rows (first: {table} row {rowid} → {parent})"
        )


def _run(connection: Connection) -> None:
    relaxed = _foreign_keys_off_on_sqlite(connection)
    _atomic_on_sqlite(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER TABLE
        compare_type=True,
        include_name=include_name,
    )
    try:
        with context.begin_transaction(), warnings.catch_warnings():
            # A batch operation on SQLite reflects the tables its table refers to: `orders`' expression index (0052)
            # cannot be reflected, and SQLAlchemy warned of it — a traceback-like line in the middle of an operator's
            # `db upgrade` or `db downgrade` (0053's way back). The reflected `orders` is only read, never copied; a
            # migration that copies `orders` itself must create that index again (0052 says so).
            warnings.filterwarnings(
                "ignore",
                message=f"Skipped unsupported reflection of expression-based index {NEED_INDEX}",
                category=SAWarning,
            )
            context.run_migrations()
            if relaxed:
                _check_foreign_keys(connection)
    finally:
        if relaxed and (dbapi := connection.connection.dbapi_connection) is not None:
            dbapi.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
