"""orders: partial indexes for the open orders overdue now (超期) and the orders ever overdue (曾超期)

Revision ID: 0036_overdue_indexes
Revises: 0034_api_key_expiry
Create Date: 2026-12-04 18:00:00.000000

The order list's 超期 (`overdue=true` in `GET /api/v1/orders`) now means the open orders past their time limit now,
as the dashboard and the one map count them, not every order once marked overdue (a closed order keeps its last
status); `ever_overdue=true` (曾超期) is every order whose current limit ran out. `ix_orders_open_sla` on
`orders (sla_status, created_at)` holds the open orders only, so a page of those overdue now is read newest first
without walking the many orders closed late (which `ix_orders_sla_created` holds too); `ix_orders_ever_overdue` on
`orders (created_at)` holds only the orders ever overdue. The predicates are written as `workorders.models.OPEN_SQL`
and `EVER_OVERDUE_SQL` are (SQLite uses a partial index only for a query repeating its predicate).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0036_overdue_indexes'
down_revision: str | None = '0034_api_key_expiry'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Literal copies: a migration never imports the models, which change after it.
OPEN = "state IN ('accepted', 'dispatched', 'in_progress', 'received', 'returned', 'suspended')"
EVER_OVERDUE = 'overdue_at IS NOT NULL'


def upgrade() -> None:
    for name, columns, predicate in (
        ('ix_orders_open_sla', ['sla_status', 'created_at'], OPEN),
        ('ix_orders_ever_overdue', ['created_at'], EVER_OVERDUE),
    ):
        op.create_index(
            name,
            'orders',
            columns,
            unique=False,
            sqlite_where=sa.text(predicate),
            postgresql_where=sa.text(predicate),
        )


def downgrade() -> None:
    op.drop_index('ix_orders_ever_overdue', table_name='orders')
    op.drop_index('ix_orders_open_sla', table_name='orders')
