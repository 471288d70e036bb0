"""orders: a partial index of the orders not accepted in time (签收超时)

Revision ID: 0030_accept_overdue_index
Revises: 0029_user_sso_identity
Create Date: 2026-12-04 14:30:00.000000

A partial index `ix_orders_accept_overdue` on `orders (created_at)` holding only the orders the sweep marked as not
accepted within the time allowed (`accept_overdue`): the order list's filter 签收超时 (`accept_overdue=true` in
`GET /api/v1/orders`) reads a page of them newest first without walking the orders that were accepted in time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0030_accept_overdue_index'
down_revision: str | None = '0029_user_sso_identity'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_orders_accept_overdue',
        'orders',
        ['created_at'],
        unique=False,
        sqlite_where=sa.text('accept_overdue = 1'),
        postgresql_where=sa.text('accept_overdue'),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_accept_overdue', table_name='orders')
