"""orders: the order one was split from (拆单)

Revision ID: 0025_order_split_from
Revises: 0024_order_views
Create Date: 2026-12-03 06:30:00.000000

`orders.split_from_id` (nullable, indexed, a reference to `orders.id`): an appeal raising several problems for
different units is split — each further problem becomes an order of its own that names the one it came from. On
SQLite the column is added in place (`ALTER TABLE … ADD COLUMN … REFERENCES`), not by copying the table, so the
migration takes no longer on millions of orders than on a few. Existing rows: NULL (never split).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025_order_split_from'
down_revision: str | None = '0024_order_views'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            'ALTER TABLE orders ADD COLUMN split_from_id INTEGER '
            'CONSTRAINT fk_orders_split_from_id_orders REFERENCES orders (id)'
        )
    else:
        op.add_column('orders', sa.Column('split_from_id', sa.BigInteger(), nullable=True))
        op.create_foreign_key('fk_orders_split_from_id_orders', 'orders', 'orders', ['split_from_id'], ['id'])
    op.create_index('ix_orders_split_from_id', 'orders', ['split_from_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_split_from_id', table_name='orders')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE orders DROP COLUMN split_from_id')  # SQLite ≥ 3.35; the reference goes with it
    else:
        op.drop_constraint('fk_orders_split_from_id_orders', 'orders', type_='foreignkey')
        op.drop_column('orders', 'split_from_id')
