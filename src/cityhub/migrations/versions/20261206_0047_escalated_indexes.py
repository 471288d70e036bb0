"""orders: the escalated orders and those a leader assigned, newest first

Revision ID: 0047_escalated_indexes
Revises: 0046_sensor_silence
Create Date: 2026-12-06 03:00:00.000000

Two partial indexes on `orders (created_at)`: `ix_orders_escalated` holding only the orders raised to a higher level
(`escalation_level > 0`, the order list's 已升级 and `escalated=true` in the API) and `ix_orders_leader_assigned`
holding only those a leader assigned (`leader_assigned`, 领导交办). Alone, either filter read every order of the table
for a page of a few (the quick views combine them with the open orders, which had an index); a few rows each, so the
indexes cost next to nothing. Created in place on both backends (no table copy).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0047_escalated_indexes'
down_revision: str | None = '0046_sensor_silence'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_orders_escalated',
        'orders',
        ['created_at'],
        unique=False,
        sqlite_where=sa.text('escalation_level > 0'),
        postgresql_where=sa.text('escalation_level > 0'),
    )
    op.create_index(
        'ix_orders_leader_assigned',
        'orders',
        ['created_at'],
        unique=False,
        sqlite_where=sa.text('leader_assigned = 1'),
        postgresql_where=sa.text('leader_assigned'),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_leader_assigned', table_name='orders')
    op.drop_index('ix_orders_escalated', table_name='orders')
