"""when each user last opened an order's page (the citizen's added files marked as new until then)

Revision ID: 0024_order_views
Revises: 0023_attachment_files
Create Date: 2026-12-03 06:00:00.000000

`order_views`: (order_id, user_id) → viewed_at, written when a user opens the page of an order its citizen added
files to, so the order lists and the dispatcher's queue mark those files as new to each reader only until they
have looked. A new table: existing rows untouched (every earlier addition is new to everyone once).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0024_order_views'
down_revision: str | None = '0023_attachment_files'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'order_views',
        sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('viewed_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('order_id', 'user_id'),
    )


def downgrade() -> None:
    op.drop_table('order_views')
