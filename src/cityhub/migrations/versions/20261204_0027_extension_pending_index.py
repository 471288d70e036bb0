"""orders: the extension requests waiting for a decision, newest first

Revision ID: 0027_extension_pending_index
Revises: 0026_backlog_bulk
Create Date: 2026-12-04 14:00:00.000000

A partial index `ix_orders_extension_pending` on `orders (created_at)` holding only the orders whose extension
request waits for a supervisor (`extension_pending`): the order list's filter 待审批延期 (`extension_pending=true` in
the API) reads a page of them without walking the table. A few rows at any time, so the index costs next to nothing;
created in place on both backends (no table copy).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0027_extension_pending_index'
down_revision: str | None = '0026_backlog_bulk'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_orders_extension_pending',
        'orders',
        ['created_at'],
        unique=False,
        sqlite_where=sa.text('extension_pending = 1'),
        postgresql_where=sa.text('extension_pending'),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_extension_pending', table_name='orders')
