"""sensors.in_service_since: when a retired sensor was put back in service

Revision ID: 0050_sensor_in_service_since
Revises: 0049_outbox_attempted_at
Create Date: 2026-12-06 04:00:00.000000

A sensor reactivated (启用) after being retired was silent (离线) at once: its silence counted from its last reading,
from before it was retired. It counts from its return to service at the earliest now, which the sensor keeps
(`in_service_since`, set by `monitoring.service.reactivate`). Filled for the sensors in service from the latest
`reactivate` entry of the configuration log (area `sensor`, the sensor's code as target). A nullable column added in
place on both backends.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0050_sensor_in_service_since'
down_revision: str | None = '0049_outbox_attempted_at'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sensors', sa.Column('in_service_since', cityhub.db.UTCDateTime(timezone=True), nullable=True))
    in_service = 'active' if op.get_bind().dialect.name == 'postgresql' else 'active = 1'
    op.execute(
        "UPDATE sensors SET in_service_since = ("
        "SELECT max(admin_log.at) FROM admin_log WHERE admin_log.area = 'sensor' "
        f"AND admin_log.action = 'reactivate' AND admin_log.target = sensors.code) WHERE {in_service}"
    )


def downgrade() -> None:
    with op.batch_alter_table('sensors') as batch:
        batch.drop_column('in_service_since')
