"""orders: full-text search terms, their index, and the citizen's name and phone indexed

Revision ID: 0018_order_search
Revises: 0017_monitoring
Create Date: 2026-12-02 04:30:00.000000

The order search (``q``) read every order with ``LIKE '%q%'``. Each order now carries its index terms
(``orders.search_terms``: CJK bigrams and Latin/digit words of title, content and address, computed by
``cityhub.workorders.search.order_search_terms``), indexed by an FTS5 table ``order_fts`` kept in step by triggers
(SQLite) or a GIN index on ``to_tsvector('simple', search_terms)`` (PostgreSQL). The search's exact matches of
the citizen's name and phone get plain indexes, so that the OR of them with the text stays index-driven.

The existing orders are backfilled in batches of ``BATCH`` orders read by id (never all in memory), in the
migration's one transaction, then the index is built in one pass over the column. Measured
(``bench/bench_order_search.py``, a shared 2-core machine, demo orders of ~75 characters): SQLite 120–170 s per
million orders (1,000,000: terms 99 s, FTS5 index 65 s, commit 6 s), PostgreSQL about 260 s per million (200,000:
terms 37 s, GIN index 15 s). Run it when the district can do without the order list for that long: the upgrade
holds the write lock (SQLite) or the updated rows (PostgreSQL) until it commits; on PostgreSQL every order gets a
new row version, so the table about doubles until a VACUUM.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0018_order_search'
down_revision: str | None = '0017_monitoring'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

# As in cityhub.workorders.search at the time of this migration (a later change of the index needs its own migration;
# tests hold a schema made from the metadata to the same statements).
SQLITE_DDL = (
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
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS orders_search_update",
    "DROP TRIGGER IF EXISTS orders_search_delete",
    "DROP TRIGGER IF EXISTS orders_search_insert",
    "DROP TABLE IF EXISTS order_fts",
    "DROP TABLE IF EXISTS order_search_pause",
)
PG_DDL = ("CREATE INDEX ix_orders_search ON orders USING gin (to_tsvector('simple'::regconfig, search_terms))",)
PG_DROP = ("DROP INDEX IF EXISTS ix_orders_search",)


def backfill(conn: Any, batch: int | None = None) -> int:
    """Write the search terms of every order, ``batch`` (:data:`BATCH`) orders at a time by id; returns how many."""
    from cityhub.workorders.search import order_search_terms

    postgres = conn.dialect.name == "postgresql"
    read = sa.text("SELECT id, title, content, address FROM orders WHERE id > :last ORDER BY id LIMIT :n")
    if postgres:
        write = sa.text(
            "UPDATE orders SET search_terms = d.terms "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:terms AS text[])) AS d(id, terms) WHERE orders.id = d.id"
        )
    else:
        write = sa.text("UPDATE orders SET search_terms = :terms WHERE id = :id")
    last, done = 0, 0
    while True:
        rows = conn.execute(read, {"last": last, "n": batch or BATCH}).all()
        if not rows:
            return done
        computed = [(row[0], order_search_terms(row[1], row[2], row[3])) for row in rows]
        if postgres:
            conn.execute(write, {"ids": [c[0] for c in computed], "terms": [c[1] for c in computed]})
        else:
            conn.execute(write, [{"id": i, "terms": t} for i, t in computed])
        last = rows[-1][0]
        done += len(rows)


def create_index(conn: Any) -> None:
    """Build the search index over the backfilled terms (SQLite: in one pass, then the triggers that keep it)."""
    if conn.dialect.name == "postgresql":
        for statement in PG_DDL:
            conn.exec_driver_sql(statement)
        return
    conn.exec_driver_sql(SQLITE_DDL[0])
    conn.exec_driver_sql("INSERT INTO order_fts(order_fts) VALUES ('rebuild')")
    for statement in SQLITE_DDL[1:]:
        conn.exec_driver_sql(statement)


def drop_index(conn: Any) -> None:
    for statement in PG_DROP if conn.dialect.name == "postgresql" else SQLITE_DROP:
        conn.exec_driver_sql(statement)


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('search_terms', sa.Text(), nullable=True))
    op.create_index('ix_orders_citizen_name', 'orders', ['citizen_name'], unique=False)
    op.create_index('ix_orders_citizen_phone', 'orders', ['citizen_phone'], unique=False)
    conn = op.get_bind()
    backfill(conn)
    create_index(conn)


def downgrade() -> None:
    drop_index(op.get_bind())
    op.drop_index('ix_orders_citizen_phone', table_name='orders')
    op.drop_index('ix_orders_citizen_name', table_name='orders')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('search_terms')
