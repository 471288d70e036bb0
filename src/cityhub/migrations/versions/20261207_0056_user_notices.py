"""user_notices: a staff member's in-app notices (消息提醒) of the events that need them

Revision ID: 0056_user_notices
Revises: 0055_assessment_exemptions
Create Date: 2026-12-07 06:00:00.000000

One row per reader and event (an order sent to their unit, urged, returned, a reply sent back, an alarm in their
unit's area, an extension or assessment exemption decided — ``cityhub.notify.notices``), written in the event's
transaction; read (``read_at``) when opened, pruned by the ``notice-prune`` job once read long ago. A new table on
both backends, with a partial index of each reader's unread notices (the bell's count).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0056_user_notices'
down_revision: str | None = '0055_assessment_exemptions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNREAD = "read_at IS NULL"


def upgrade() -> None:
    op.create_table(
        'user_notices',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('alarm_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('created_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('read_at', cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_user_notices_user', 'user_notices', ['user_id', 'id'])
    op.create_index(
        'ix_user_notices_unread',
        'user_notices',
        ['user_id', 'id'],
        sqlite_where=sa.text(UNREAD),
        postgresql_where=sa.text(UNREAD),
    )
    op.create_index('ix_user_notices_read_at', 'user_notices', ['read_at'])
    op.create_index('ix_user_notices_order_id', 'user_notices', ['order_id'])
    op.create_index('ix_user_notices_alarm_id', 'user_notices', ['alarm_id'])


def downgrade() -> None:
    op.drop_table('user_notices')
