"""orders.reported_by_id: who registered the order (登记人), so that its registrant can follow it

Revision ID: 0051_order_reported_by
Revises: 0050_sensor_in_service_since
Create Date: 2026-12-06 04:20:00.000000

A grid inspector's report placed outside their grid, or sent on to a unit their data scope does not hold, was lost
to them (the page said it was out of their scope). The order keeps who registered it — the signed-in person whose
intake made it (`workorders.service.create_order`: the actor's account) — and its registrant reads it (the order
list's 我提交的, `mine`). Filled for the orders before from their trail's `create` event, where a person's account
made it; a nullable column, added in place on both backends, with an index for the list (`reported_by_id,
created_at`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0051_order_reported_by'
down_revision: str | None = '0050_sensor_in_service_since'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':  # the column with its reference, in place (no table copy)
        op.execute(
            'ALTER TABLE orders ADD COLUMN reported_by_id INTEGER '
            'CONSTRAINT fk_orders_reported_by_id_users REFERENCES users (id)'
        )
    else:
        op.add_column('orders', sa.Column('reported_by_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_orders_reported_by_id_users', 'orders', 'users', ['reported_by_id'], ['id'])
    op.execute(
        "UPDATE orders SET reported_by_id = ("
        "SELECT e.actor_id FROM order_events e WHERE e.order_id = orders.id AND e.action = 'create' "
        "ORDER BY e.id LIMIT 1) "
        "WHERE EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = orders.id AND e.action = 'create' "
        "AND e.actor_id IS NOT NULL)"
    )
    op.create_index('ix_orders_reported_by_created', 'orders', ['reported_by_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_reported_by_created', table_name='orders')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE orders DROP COLUMN reported_by_id')  # SQLite ≥ 3.35; the reference goes with it
    else:
        op.drop_constraint('fk_orders_reported_by_id_users', 'orders', type_='foreignkey')
        op.drop_column('orders', 'reported_by_id')
