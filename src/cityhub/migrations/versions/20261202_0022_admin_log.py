"""configuration log: who changed accounts, time limits, the calendar, sensors and rules

Revision ID: 0022_admin_log
Revises: 0021_alarm_media
Create Date: 2026-12-02 16:00:00.000000

`admin_log` (`cityhub.auditlog`): one row per change of what the platform runs by — area (unit, user,
api_client, category, sla_rule, calendar_day, sensor, alarm_rule, dispatch_rule, dispatch_threshold),
target (a login name, a rule's id, a day, a sensor's code), action (create, update, delete, retire, reactivate,
reset_password, lock, unlock, issue_key, revoke_key), the changed fields as
`{field: [before, after]}`, actor and reason. A new table: existing rows untouched.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0022_admin_log'
down_revision: str | None = '0021_alarm_media'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'admin_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('actor_user_id', sa.Integer(), nullable=True),
        sa.Column('area', sa.String(length=20), nullable=False),
        sa.Column('target', sa.String(length=120), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_admin_log_at', 'admin_log', ['at'])
    op.create_index('ix_admin_log_target', 'admin_log', ['area', 'target', 'id'])


def downgrade() -> None:
    op.drop_index('ix_admin_log_target', table_name='admin_log')
    op.drop_index('ix_admin_log_at', table_name='admin_log')
    op.drop_table('admin_log')
