"""monitoring: sensors, alarm rules, readings, rule states, alarms and their trail

Revision ID: 0017_monitoring
Revises: 0016_login_lockouts
Create Date: 2026-12-02 00:35:47.058439

New tables only. `alarms.open_key` ("<sensor id>:<rule id>" while an alarm is open, NULL once cleared) is unique:
at most one open alarm per sensor and rule, on both backends (NULLs are distinct in a unique constraint).
`sensor_readings` is unique per (sensor, metric, time), which also indexes a sensor's series.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0017_monitoring'
down_revision: str | None = '0016_login_lockouts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sensors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lng', sa.Float(), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('street_id', sa.Integer(), nullable=True),
    sa.Column('community_id', sa.Integer(), nullable=True),
    sa.Column('capacity', sa.Float(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('latest', sa.JSON(), nullable=True),
    sa.Column('last_reading_at', cityhub.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['units.id'], name=op.f('fk_sensors_community_id_units'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['street_id'], ['units.id'], name=op.f('fk_sensors_street_id_units'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_sensors_unit_id_units'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sensors')),
    sa.UniqueConstraint('code', name=op.f('uq_sensors_code'))
    )
    with op.batch_alter_table('sensors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sensors_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sensors_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_sensors_street_id'), ['street_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sensors_unit_id'), ['unit_id'], unique=False)

    op.create_table('alarm_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('sensor_kind', sa.String(length=20), nullable=True),
    sa.Column('sensor_id', sa.Integer(), nullable=True),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('comparison', sa.String(length=2), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('clear_threshold', sa.Float(), nullable=True),
    sa.Column('of_capacity', sa.Boolean(), nullable=False),
    sa.Column('duration_s', sa.Integer(), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('opens_order', sa.Boolean(), nullable=False),
    sa.Column('category', sa.String(length=200), nullable=True),
    sa.Column('urgency', sa.String(length=10), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.id'], name=op.f('fk_alarm_rules_sensor_id_sensors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_rules'))
    )
    with op.batch_alter_table('alarm_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alarm_rules_sensor_id'), ['sensor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alarm_rules_sensor_kind'), ['sensor_kind'], unique=False)

    op.create_table('sensor_readings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sensor_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('measured_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('received_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.id'], name=op.f('fk_sensor_readings_sensor_id_sensors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sensor_readings')),
    sa.UniqueConstraint('sensor_id', 'metric', 'measured_at', name=op.f('uq_sensor_readings_sensor_id_metric_measured_at'))
    )
    op.create_table('alarm_rule_states',
    sa.Column('sensor_id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('last_at', cityhub.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('breach_since', cityhub.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('armed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['alarm_rules.id'], name=op.f('fk_alarm_rule_states_rule_id_alarm_rules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.id'], name=op.f('fk_alarm_rule_states_sensor_id_sensors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sensor_id', 'rule_id', name=op.f('pk_alarm_rule_states'))
    )
    op.create_table('alarms',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sensor_id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('open_key', sa.String(length=40), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('comparison', sa.String(length=2), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('raised_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_value', sa.Float(), nullable=False),
    sa.Column('last_value', sa.Float(), nullable=False),
    sa.Column('peak_value', sa.Float(), nullable=False),
    sa.Column('last_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('acknowledged_at', cityhub.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=80), nullable=True),
    sa.Column('cleared_at', cityhub.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cleared_by', sa.String(length=80), nullable=True),
    sa.Column('clear_value', sa.Float(), nullable=True),
    sa.Column('updated_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_alarms_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rule_id'], ['alarm_rules.id'], name=op.f('fk_alarms_rule_id_alarm_rules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.id'], name=op.f('fk_alarms_sensor_id_sensors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarms')),
    sa.UniqueConstraint('open_key', name=op.f('uq_alarms_open_key'))
    )
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alarms_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alarms_rule_id'), ['rule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alarms_sensor_id'), ['sensor_id'], unique=False)
        batch_op.create_index('ix_alarms_state_raised', ['state', 'raised_at'], unique=False)

    op.create_table('alarm_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alarm_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_alarm_events_actor_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], name=op.f('fk_alarm_events_alarm_id_alarms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_events'))
    )
    with op.batch_alter_table('alarm_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alarm_events_alarm_id'), ['alarm_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alarm_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alarm_events_alarm_id'))

    op.drop_table('alarm_events')
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.drop_index('ix_alarms_state_raised')
        batch_op.drop_index(batch_op.f('ix_alarms_sensor_id'))
        batch_op.drop_index(batch_op.f('ix_alarms_rule_id'))
        batch_op.drop_index(batch_op.f('ix_alarms_order_id'))

    op.drop_table('alarms')
    op.drop_table('alarm_rule_states')
    op.drop_table('sensor_readings')
    with op.batch_alter_table('alarm_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alarm_rules_sensor_kind'))
        batch_op.drop_index(batch_op.f('ix_alarm_rules_sensor_id'))

    op.drop_table('alarm_rules')
    with op.batch_alter_table('sensors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sensors_unit_id'))
        batch_op.drop_index(batch_op.f('ix_sensors_street_id'))
        batch_op.drop_index(batch_op.f('ix_sensors_kind'))
        batch_op.drop_index(batch_op.f('ix_sensors_community_id'))

    op.drop_table('sensors')
