"""orders.first_overdue_at: 曾超期 keeps a limit that ran out when a new limit starts.

`overdue_at` is the current limit's mark: a re-dispatch, a transfer or a reopening starts a new limit and clears it,
so 曾超期 (`ever_overdue`, migration 0036) lost an order that was late at one unit and then sent to another — the
lateness an assessment review looks for. `first_overdue_at` is when the order first ran out of a limit, kept across
new limits; only a recompute showing that the limit it marked had not run out lifts it. Existing rows are filled from
`overdue_at`, else from the earliest overdue mark of the trail (`sla_overdue`, the sweep's time) not lifted by a
recompute before the next dispatch, transfer, assignment or reopening. `ix_orders_ever_overdue` is rebuilt on the new column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0039_first_overdue'
down_revision: str | None = '0038_event_unit_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Literal copies: a migration never imports the models, which change after it.
OLD = 'overdue_at IS NOT NULL'
NEW = 'first_overdue_at IS NOT NULL'


def _index(predicate: str) -> None:
    op.create_index(
        'ix_orders_ever_overdue',
        'orders',
        ['created_at'],
        unique=False,
        sqlite_where=sa.text(predicate),
        postgresql_where=sa.text(predicate),
    )


def upgrade() -> None:
    op.add_column('orders', sa.Column('first_overdue_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
    lifted_status = (
        "json_extract(r.payload, '$.from.sla_status')"
        if op.get_bind().dialect.name == 'sqlite'
        else "(r.payload::json -> 'from' ->> 'sla_status')"
    )
    op.execute(
        f"""
        UPDATE orders SET first_overdue_at = COALESCE(overdue_at, (
            SELECT MIN(m.at) FROM order_events m
            WHERE m.order_id = orders.id AND m.action = 'sla_overdue'
              AND NOT EXISTS (
                SELECT 1 FROM order_events r
                WHERE r.order_id = m.order_id AND r.id > m.id AND r.action = 'sla_recompute'
                  AND {lifted_status} = 'overdue'
                  AND NOT EXISTS (
                    SELECT 1 FROM order_events d
                    WHERE d.order_id = m.order_id AND d.id > m.id AND d.id < r.id AND d.to_state = 'dispatched'
                      AND d.action IN ('dispatch', 'transfer', 'assign', 'reopen')
                  )
              )
        ))
        """
    )
    op.drop_index('ix_orders_ever_overdue', table_name='orders')
    _index(NEW)


def downgrade() -> None:
    op.drop_index('ix_orders_ever_overdue', table_name='orders')
    _index(OLD)
    # SQLite drops the column in place (no index names it any more): rebuilding the orders table would take its
    # triggers and every index with it.
    with op.batch_alter_table('orders', recreate='never') as batch:
        batch.drop_column('first_overdue_at')
