"""orders: an index of updated_at for the data-sharing feed's changes

Revision ID: 0033_order_updated_index
Revises: 0031_perf_event_action_at
Create Date: 2026-12-04 15:30:00.000000

`ix_orders_updated` on `orders (updated_at)`: `GET /api/v1/sharing/orders?updated_since=…` (a harvester's changes
feed, cursor or offset) reads the orders changed since a moment through it instead of scanning every order.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0033_order_updated_index'
down_revision: str | None = '0031_perf_event_action_at'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_orders_updated', 'orders', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_updated', table_name='orders')
