"""invalid_calls: 无效来电 recorded at the intake desk (hung up, silent, harassment, wrong number, transferred …)

Revision ID: 0060_invalid_calls
Revises: 0059_assign_deadline
Create Date: 2026-12-07 19:00:00.000000

One row per call that became no appeal, recorded by the operator who took it (``cityhub.intake.invalid_calls``):
its kind, the caller's phone if typed, the operator and their unit, the time — counted per kind and per operator for
a period on the dashboard and by ``cityhub analytics invalid-calls``. A new table on both backends.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0060_invalid_calls'
down_revision: str | None = '0059_assign_deadline'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'invalid_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('citizen_phone', sa.String(length=32), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('unit_id', sa.Integer(), nullable=True),
        sa.Column('created_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_invalid_calls_created_at', 'invalid_calls', ['created_at'])
    op.create_index('ix_invalid_calls_user', 'invalid_calls', ['user_id', 'created_at'])
    op.create_index('ix_invalid_calls_unit_id', 'invalid_calls', ['unit_id'])


def downgrade() -> None:
    op.drop_table('invalid_calls')
