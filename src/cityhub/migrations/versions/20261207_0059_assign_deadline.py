"""orders.assign_deadline, orders.assign_overdue_at: 领导交办's 限期办结

Revision ID: 0059_assign_deadline
Revises: 0058_exemption_revocation
Create Date: 2026-12-07 12:30:00.000000

A leader assigning an order (交办) may give the local day by which it is to be done (``assign_deadline``, a date),
beside the statutory time limit, which it does not move; ``assign_overdue_at`` is when the SLA sweep found that day
passed with the order open (and told the leader and the unit). Both nullable, added in place on both backends
(SQLite: ``ALTER TABLE … ADD COLUMN``, no table copy); orders assigned before have none. The downgrade drops them
(the days given stay in the assign events' payloads).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0059_assign_deadline'
down_revision: str | None = '0058_exemption_revocation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('assign_deadline', sa.Date(), nullable=True))
    op.add_column('orders', sa.Column('assign_overdue_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite 3.35+ drops a column in place (no index or constraint names these).
        op.execute('ALTER TABLE orders DROP COLUMN assign_overdue_at')
        op.execute('ALTER TABLE orders DROP COLUMN assign_deadline')
    else:
        op.drop_column('orders', 'assign_overdue_at')
        op.drop_column('orders', 'assign_deadline')
