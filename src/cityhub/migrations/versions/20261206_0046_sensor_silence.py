"""sensors that go silent: a sensor's own time, the silence rule

Revision ID: 0046_sensor_silence
Revises: 0045_sla_round_the_clock
Create Date: 2026-12-06 12:00:00.000000

`sensors.silent_after_minutes` (nullable: NULL the setting CITYHUB_SENSOR_SILENT_AFTER_MINUTES, 0 never): how long
a sensor may go without a reading before it is silent (离线). `alarm_rules.kind` — `threshold` for every rule
stored so far (the server default fills them), `silence` for the one built-in rule whose alarms say a sensor went
silent, made by the sensor-silence job when first needed (not here: a database emptied by the tests or restored
from an older dump gets it from the job as well); `uq_alarm_rules_silence`, a unique index partial on that kind,
keeps it one when two workers make it at once. Columns with defaults and an index: no rewrite of existing rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0046_sensor_silence'
down_revision: str | None = '0045_sla_round_the_clock'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A literal copy: a migration never imports the models, which change after it.
SILENCE = "kind = 'silence'"


def upgrade() -> None:
    # In place on both backends (SQLite's ALTER TABLE … ADD COLUMN), not by copying the tables: on SQLite a copy drops
    # the old table, whose foreign-key cascade would delete every alarm of its rules.
    op.add_column('sensors', sa.Column('silent_after_minutes', sa.Integer(), nullable=True))
    op.add_column('alarm_rules', sa.Column('kind', sa.String(length=12), server_default='threshold', nullable=False))
    op.create_index(
        'uq_alarm_rules_silence',
        'alarm_rules',
        ['kind'],
        unique=True,
        sqlite_where=sa.text(SILENCE),
        postgresql_where=sa.text(SILENCE),
    )


def downgrade() -> None:
    op.drop_index('uq_alarm_rules_silence', table_name='alarm_rules')
    # The silence rule and its alarms with their trails (spelt out: SQLite may not enforce the cascades).
    rule = "SELECT id FROM alarm_rules WHERE kind = 'silence'"
    op.execute(f"DELETE FROM alarm_events WHERE alarm_id IN (SELECT id FROM alarms WHERE rule_id IN ({rule}))")
    op.execute(f"DELETE FROM alarm_rule_states WHERE rule_id IN ({rule})")
    op.execute(f"DELETE FROM alarms WHERE rule_id IN ({rule})")
    op.execute("DELETE FROM alarm_rules WHERE kind = 'silence'")
    if op.get_bind().dialect.name == 'sqlite':  # SQLite ≥ 3.35, in place (a copy of alarm_rules would cascade)
        op.execute('ALTER TABLE alarm_rules DROP COLUMN kind')
        op.execute('ALTER TABLE sensors DROP COLUMN silent_after_minutes')
    else:
        op.drop_column('alarm_rules', 'kind')
        op.drop_column('sensors', 'silent_after_minutes')
