"""assessment_exemptions: a unit's request that an order not count against it in the assessment (考核核减)

Revision ID: 0055_assessment_exemptions
Revises: 0054_english_names
Create Date: 2026-12-07 02:45:00.000000

A handling unit asks that one order's facts of some measures (按时办结, 满意率 …) be left out of its assessment, for
a reason of a fixed list (诉求不合理, 无法联系 …); a supervisor approves or rejects it with a reason
(``cityhub.analytics.exemptions``). An approved request takes those facts out of the unit's figures. A new table on
both backends, with a partial unique index keeping one open (pending) request per order and unit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0055_assessment_exemptions'
down_revision: str | None = '0054_english_names'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "state = 'pending'"


def upgrade() -> None:
    op.create_table(
        'assessment_exemptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('measures', sa.JSON(), nullable=False),
        sa.Column('reason_category', sa.String(length=32), nullable=False),
        sa.Column('reason_text', sa.Text(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=True),
        sa.Column('requested_by_name', sa.String(length=80), nullable=False),
        sa.Column('requested_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_by_name', sa.String(length=80), nullable=True),
        sa.Column('decided_at', cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id']),
        sa.ForeignKeyConstraint(['requested_by_id'], ['users.id']),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_assessment_exemptions_order_id', 'assessment_exemptions', ['order_id'])
    op.create_index('ix_assessment_exemptions_state', 'assessment_exemptions', ['state', 'requested_at'])
    op.create_index('ix_assessment_exemptions_unit', 'assessment_exemptions', ['unit_id', 'state'])
    op.create_index(
        'uq_assessment_exemptions_pending',
        'assessment_exemptions',
        ['order_id', 'unit_id'],
        unique=True,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_table('assessment_exemptions')
