"""dispatch backlog: new orders waiting for the background dispatcher

Revision ID: 0012_dispatch_backlog
Revises: 0011_reference_versions
Create Date: 2026-11-30 12:05:00.000000

With automatic dispatch in the background, intake records each new order here in the creating transaction and
the dispatcher deletes the row in the transaction that decides (cityhub.dispatch.background).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0012_dispatch_backlog'
down_revision: str | None = '0011_reference_versions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'dispatch_backlog',
        sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('queued_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('retry_at', cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('order_id'),
    )
    op.create_index('ix_dispatch_backlog_queued_at', 'dispatch_backlog', ['queued_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dispatch_backlog_queued_at', table_name='dispatch_backlog')
    op.drop_table('dispatch_backlog')
