"""orders: where the street and community came from, and the backlog of orders never placed

Revision ID: 0015_order_place_source
Revises: 0014_job_failures
Create Date: 2026-12-01 12:40:00.000000

Intake now places an appeal among the units when it is received (coordinates, address, text) and records from
what (`place_source`, indexed with the creation time for the order list's filter); the dispatcher sees it and
may correct it. Orders written in bulk (imports) and orders from
before are placed by the `place-orders` job, which reads them through a partial index of the never-placed ones.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015_order_place_source'
down_revision: str | None = '0014_job_failures'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPLACED_SQL = "place_source IS NULL AND street_id IS NULL AND community_id IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('place_source', sa.String(length=16), nullable=True))
    op.create_index('ix_orders_place_source_created', 'orders', ['place_source', 'created_at'], unique=False)
    op.create_index(
        'ix_orders_unplaced',
        'orders',
        ['id'],
        unique=False,
        sqlite_where=sa.text(UNPLACED_SQL),
        postgresql_where=sa.text(UNPLACED_SQL),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_unplaced', table_name='orders')
    op.drop_index('ix_orders_place_source_created', table_name='orders')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('place_source')
