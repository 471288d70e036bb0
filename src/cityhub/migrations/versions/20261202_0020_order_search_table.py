"""order search: the terms in a table of their own, with the order's number among them

Revision ID: 0020_order_search_table
Revises: 0019_monitoring_escalation
Create Date: 2026-12-02 08:00:00.000000

Migration 0018 kept each order's search terms in a column of ``orders``. The terms are about as long as the texts,
so every scan of ``orders`` on SQLite read ~40 % more pages for the search's sake alone (the one map's district view
at 200,000 orders: 225 → 441 ms). They move to ``order_search`` (``order_id`` → ``orders.id``, ``terms``), one row
per order, and the index follows them — SQLite: the FTS5 table ``order_fts`` with external content
``order_search``, kept by triggers on that table; PostgreSQL: the GIN index ``ix_order_search`` on
``to_tsvector('simple', terms)``. The order's number is now among the terms, so a part of a number is found as
``LIKE`` finds it, as before migration 0018.

The terms are copied, not recomputed, where the number is plain letters, digits and hyphens (its terms are then its
lower-cased pieces); other orders are computed again in batches of ``BATCH``. On SQLite the column is dropped in
place (``ALTER TABLE … DROP COLUMN``: a copy of ``orders`` would cascade the drop of the old table into the audit
trail), which leaves the rows' pages partly empty: ``cityhub db compact`` (``VACUUM``) packs them afterwards, and only
then do scans of ``orders`` read fewer pages. On PostgreSQL the column is dropped at once and its space is reused as
rows are rewritten (``cityhub db compact``: ``VACUUM FULL`` of ``orders``).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0020_order_search_table'
down_revision: str | None = '0019_monitoring_escalation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

# The index as migration 0018 made it (dropped here, made again by the downgrade).
OLD_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE order_fts USING fts5(search_terms, content='orders', content_rowid='id', "
    "tokenize='unicode61')",
    "CREATE TABLE order_search_pause (paused INTEGER NOT NULL)",
    "CREATE TRIGGER orders_search_insert AFTER INSERT ON orders "
    "WHEN new.search_terms IS NOT NULL AND NOT EXISTS (SELECT 1 FROM order_search_pause) BEGIN "
    "INSERT INTO order_fts(rowid, search_terms) VALUES (new.id, new.search_terms); END",
    "CREATE TRIGGER orders_search_delete AFTER DELETE ON orders WHEN old.search_terms IS NOT NULL BEGIN "
    "INSERT INTO order_fts(order_fts, rowid, search_terms) VALUES ('delete', old.id, old.search_terms); END",
    "CREATE TRIGGER orders_search_update AFTER UPDATE OF search_terms ON orders BEGIN "
    "INSERT INTO order_fts(order_fts, rowid, search_terms) "
    "SELECT 'delete', old.id, old.search_terms WHERE old.search_terms IS NOT NULL; "
    "INSERT INTO order_fts(rowid, search_terms) SELECT new.id, new.search_terms WHERE new.search_terms IS NOT NULL; "
    "END",
)
OLD_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS orders_search_update",
    "DROP TRIGGER IF EXISTS orders_search_delete",
    "DROP TRIGGER IF EXISTS orders_search_insert",
    "DROP TABLE IF EXISTS order_fts",
    "DROP TABLE IF EXISTS order_search_pause",
)
OLD_PG_DDL = ("CREATE INDEX ix_orders_search ON orders USING gin (to_tsvector('simple'::regconfig, search_terms))",)
OLD_PG_DROP = ("DROP INDEX IF EXISTS ix_orders_search",)

# As in cityhub.workorders.search at the time of this migration (tests hold a schema made from the metadata to the
# same statements).
SQLITE_DDL = (
    "CREATE VIRTUAL TABLE order_fts USING fts5(terms, content='order_search', content_rowid='order_id', "
    "tokenize='unicode61')",
    "CREATE TABLE order_search_pause (paused INTEGER NOT NULL)",
    "CREATE TRIGGER order_search_insert AFTER INSERT ON order_search "
    "WHEN NOT EXISTS (SELECT 1 FROM order_search_pause) BEGIN "
    "INSERT INTO order_fts(rowid, terms) VALUES (new.order_id, new.terms); END",
    "CREATE TRIGGER order_search_delete AFTER DELETE ON order_search BEGIN "
    "INSERT INTO order_fts(order_fts, rowid, terms) VALUES ('delete', old.order_id, old.terms); END",
    "CREATE TRIGGER order_search_update AFTER UPDATE ON order_search BEGIN "
    "INSERT INTO order_fts(order_fts, rowid, terms) VALUES ('delete', old.order_id, old.terms); "
    "INSERT INTO order_fts(rowid, terms) VALUES (new.order_id, new.terms); END",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS order_search_update",
    "DROP TRIGGER IF EXISTS order_search_delete",
    "DROP TRIGGER IF EXISTS order_search_insert",
    "DROP TABLE IF EXISTS order_fts",
    "DROP TABLE IF EXISTS order_search_pause",
)
PG_DDL = ("CREATE INDEX ix_order_search ON order_search USING gin (to_tsvector('simple'::regconfig, terms))",)
PG_DROP = ("DROP INDEX IF EXISTS ix_order_search",)


def _run(conn: Any, statements: Sequence[str]) -> None:
    for statement in statements:
        conn.exec_driver_sql(statement)


def copy_terms(conn: Any, batch: int | None = None) -> int:
    """Fill ``order_search`` from ``orders``; returns how many orders were computed again (not copied)."""
    from cityhub.workorders.search import order_search_terms

    postgres = conn.dialect.name == "postgresql"
    plain = "number !~ '[^A-Za-z0-9-]'" if postgres else "number NOT GLOB '*[^A-Za-z0-9-]*'"
    conn.exec_driver_sql(
        "INSERT INTO order_search (order_id, terms) "
        "SELECT id, lower(replace(number, '-', ' ')) || ' ' || search_terms FROM orders "
        f"WHERE search_terms IS NOT NULL AND {plain}"
    )
    read = sa.text(
        "SELECT id, number, title, content, address FROM orders "
        f"WHERE id > :last AND NOT (search_terms IS NOT NULL AND {plain}) ORDER BY id LIMIT :n"
    )
    write = sa.text("INSERT INTO order_search (order_id, terms) VALUES (:id, :terms)")
    last, done = 0, 0
    while True:
        rows = conn.execute(read, {"last": last, "n": batch or BATCH}).all()
        if not rows:
            return done
        conn.execute(
            write, [{"id": r[0], "terms": order_search_terms(r[2], r[3], r[4], number=r[1])} for r in rows]
        )
        last = rows[-1][0]
        done += len(rows)


def create_index(conn: Any) -> None:
    """Build the index over the filled table (SQLite: in one pass, then the triggers that keep it)."""
    if conn.dialect.name == "postgresql":
        _run(conn, PG_DDL)
        return
    conn.exec_driver_sql(SQLITE_DDL[0])
    conn.exec_driver_sql("INSERT INTO order_fts(order_fts) VALUES ('rebuild')")
    _run(conn, SQLITE_DDL[1:])


def upgrade() -> None:
    conn = op.get_bind()
    _run(conn, OLD_PG_DROP if conn.dialect.name == "postgresql" else OLD_SQLITE_DROP)
    op.create_table('order_search',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_search_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_order_search'))
    )
    copy_terms(conn)
    create_index(conn)
    # Both backends drop it in place (SQLite since 3.35): no copy of the table.
    conn.exec_driver_sql("ALTER TABLE orders DROP COLUMN search_terms")


def downgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    _run(conn, PG_DROP if postgres else SQLITE_DROP)
    if postgres:
        op.add_column('orders', sa.Column('search_terms', sa.Text(), nullable=True))
    else:
        conn.exec_driver_sql("ALTER TABLE orders ADD COLUMN search_terms TEXT")
    # The number's terms stay among them: a search by part of a number then finds candidates LIKE turns away.
    conn.exec_driver_sql(
        "UPDATE orders SET search_terms = (SELECT terms FROM order_search WHERE order_search.order_id = orders.id)"
    )
    op.drop_table('order_search')
    if postgres:
        _run(conn, OLD_PG_DDL)
        return
    conn.exec_driver_sql(OLD_SQLITE_DDL[0])
    conn.exec_driver_sql("INSERT INTO order_fts(order_fts) VALUES ('rebuild')")
    _run(conn, OLD_SQLITE_DDL[1:])
