"""orders: the transaction that last stored or changed each order, for the data-sharing feed of changes

Revision ID: 0040_order_changed_xid
Revises: 0039_first_overdue
Create Date: 2026-12-04 19:00:00.000000

`orders.changed_xid` (BIGINT, 0 for every order stored before: settled, in the order of their ids) is written by the
database on every insert and update of an order — PostgreSQL: the transaction's 64-bit id (`pg_current_xact_id()`) by
the BEFORE INSERT OR UPDATE row trigger `orders_changed_xid`; SQLite: a number drawn from `order_change_counter` with
every row written, by the AFTER triggers `orders_changed_insert` and `orders_changed_update` — and read through
`ix_orders_changed` on `orders (changed_xid, id)` by `GET /api/v1/sharing/orders?feed=changes`, which hands out only
the orders whose transaction has settled, so that none committed late is passed (see cityhub.workorders.changes).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0040_order_changed_xid'
down_revision: str | None = '0039_first_overdue'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Literal copies of cityhub.workorders.changes: a migration never imports what changes after it.
PG_DDL = (
    "CREATE FUNCTION orders_stamp_changed_xid() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "NEW.changed_xid := pg_current_xact_id()::text::bigint; RETURN NEW; END $$",
    "CREATE TRIGGER orders_changed_xid BEFORE INSERT OR UPDATE ON orders "
    "FOR EACH ROW EXECUTE FUNCTION orders_stamp_changed_xid()",
)
PG_DROP = ("DROP TRIGGER IF EXISTS orders_changed_xid ON orders", "DROP FUNCTION IF EXISTS orders_stamp_changed_xid()")
_SQLITE_STAMP = (
    "INSERT INTO order_change_counter (id, last) VALUES (1, (SELECT coalesce(max(changed_xid), 0) + 1 FROM orders)) "
    "ON CONFLICT (id) DO UPDATE SET last = last + 1; "
    "UPDATE orders SET changed_xid = (SELECT last FROM order_change_counter WHERE id = 1) WHERE id = new.id; "
)
SQLITE_DDL = (
    "CREATE TABLE order_change_counter (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL)",
    f"CREATE TRIGGER orders_changed_insert AFTER INSERT ON orders WHEN new.changed_xid = 0 BEGIN {_SQLITE_STAMP}END",
    "CREATE TRIGGER orders_changed_update AFTER UPDATE ON orders WHEN new.changed_xid IS old.changed_xid "
    f"BEGIN {_SQLITE_STAMP}END",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS orders_changed_update",
    "DROP TRIGGER IF EXISTS orders_changed_insert",
    "DROP TABLE IF EXISTS order_change_counter",
)


def _run(conn: Any, statements: Sequence[str]) -> None:
    for statement in statements:
        conn.exec_driver_sql(statement)


def upgrade() -> None:
    conn = op.get_bind()
    # A constant default: PostgreSQL adds the column without rewriting the table, every existing order at 0.
    op.add_column('orders', sa.Column('changed_xid', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    op.create_index('ix_orders_changed', 'orders', ['changed_xid', 'id'], unique=False)
    _run(conn, SQLITE_DDL if conn.dialect.name == 'sqlite' else PG_DDL)


def downgrade() -> None:
    conn = op.get_bind()
    _run(conn, SQLITE_DROP if conn.dialect.name == 'sqlite' else PG_DROP)
    op.drop_index('ix_orders_changed', table_name='orders')
    if conn.dialect.name == 'sqlite':
        conn.exec_driver_sql('ALTER TABLE orders DROP COLUMN changed_xid')
    else:
        op.drop_column('orders', 'changed_xid')
