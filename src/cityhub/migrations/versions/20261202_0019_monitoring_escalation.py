"""monitoring: alarm escalation and retired sensors

Revision ID: 0019_monitoring_escalation
Revises: 0018_order_search
Create Date: 2026-12-02 04:10:00.000000

`alarm_rules.escalate_after_minutes` (NULL: the setting's default, 0: never), `alarms.escalated_at` (set once,
when the alarm-escalation job escalated it) and `alarms.recorded_at` (when the readings that raised it arrived; the
escalation counts from there, so readings imported late do not escalate at once). A retired sensor keeps `sensors.active` false (the one flag) and says
when, by whom and why (`retired_at`, `retired_by`, `retired_reason`). Columns only, all nullable: no rewrite of
existing rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0019_monitoring_escalation'
down_revision: str | None = '0018_order_search'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alarm_rules') as batch:
        batch.add_column(sa.Column('escalate_after_minutes', sa.Integer(), nullable=True))
    with op.batch_alter_table('alarms') as batch:
        batch.add_column(sa.Column('escalated_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('recorded_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('sensors') as batch:
        batch.add_column(sa.Column('retired_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('retired_by', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('retired_reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sensors') as batch:
        batch.drop_column('retired_reason')
        batch.drop_column('retired_by')
        batch.drop_column('retired_at')
    with op.batch_alter_table('alarms') as batch:
        batch.drop_column('recorded_at')
        batch.drop_column('escalated_at')
    with op.batch_alter_table('alarm_rules') as batch:
        batch.drop_column('escalate_after_minutes')
