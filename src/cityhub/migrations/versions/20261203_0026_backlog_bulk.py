"""dispatch backlog: orders queued by a bulk import wait behind the appeals intake queues

Revision ID: 0026_backlog_bulk
Revises: 0025_order_split_from
Create Date: 2026-12-03 11:40:00.000000

`dispatch_backlog.bulk` (boolean, default false): the orders of an import handed to automatic dispatch are queued
with it set, and the background dispatcher takes them after every other waiting order (index on bulk, queued_at),
so that an import of thousands of rows does not hold up the appeals arriving meanwhile. Existing rows: false. The
backlog holds only orders waiting for their decision (seconds' worth), so the table copy SQLite needs is small.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0026_backlog_bulk'
down_revision: str | None = '0025_order_split_from'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('dispatch_backlog') as batch:
        batch.add_column(sa.Column('bulk', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index('ix_dispatch_backlog_bulk_queued_at', ['bulk', 'queued_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dispatch_backlog') as batch:
        batch.drop_index('ix_dispatch_backlog_bulk_queued_at')
        batch.drop_column('bulk')
