"""orders.first_overdue_at: 曾超期 keeps a limit that ran out when a new limit starts.

`overdue_at` is the current limit's mark: a re-dispatch, a transfer or a reopening starts a new limit and clears it,
so 曾超期 (`ever_overdue`, migration 0036) lost an order that was late at one unit and then sent to another — the
lateness an assessment review looks for. `first_overdue_at` is when the order first ran out of a limit, kept across
new limits; only a recompute showing that the limit it marked had not run out lifts it. Existing rows are filled from
the trail's overdue mark (`sla_overdue`, the sweep's time) of the first limit that ended late — a new limit started
after the mark with no recompute lifting it — else from `overdue_at`, else from the running limit's mark not lifted. `ix_orders_ever_overdue` is rebuilt on
the new column.
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


CLOCK_STARTS = ('dispatch', 'transfer', 'assign', 'reopen')
_BATCH = 1000


def upgrade() -> None:
    op.add_column('orders', sa.Column('first_overdue_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
    op.execute('UPDATE orders SET first_overdue_at = overdue_at WHERE overdue_at IS NOT NULL')
    # An earlier limit's lateness is in the trail only: walked here, one pass over the few events that tell it of
    # the orders ever marked (a correlated UPDATE let SQLite look for each order's marks among all marks).
    when = cityhub.db.UTCDateTime(timezone=True)
    events = sa.table(
        'order_events',
        sa.column('id', sa.Integer),
        sa.column('order_id', sa.Integer),
        sa.column('action', sa.String),
        sa.column('to_state', sa.String),
        sa.column('at', when),
        sa.column('payload', sa.JSON),
    )
    marked = sa.select(events.c.order_id).where(events.c.action == 'sla_overdue')
    rows = op.get_bind().execute(
        sa.select(events.c.order_id, events.c.action, events.c.to_state, events.c.at, events.c.payload)
        .where(events.c.order_id.in_(marked), events.c.action.in_(('sla_overdue', 'sla_recompute', *CLOCK_STARTS)))
        .order_by(events.c.order_id, events.c.id)
    )
    earlier: dict[int, object] = {}  # the first mark of a limit that ended late (a new limit started after it)
    current: dict[int, object] = {}  # the running limit's mark not lifted
    for order_id, action, to_state, at, payload in rows:
        if action == 'sla_overdue':
            current.setdefault(order_id, at)
        elif action == 'sla_recompute':
            if ((payload or {}).get('from') or {}).get('sla_status') == 'overdue':
                current.pop(order_id, None)  # the limit had not run out after all
        elif to_state == 'dispatched' and order_id in current:
            earlier.setdefault(order_id, current.pop(order_id))
    orders = sa.table('orders', sa.column('id', sa.Integer), sa.column('first_overdue_at', when))
    for values, only_unset in ((earlier, False), (current, True)):
        statement = orders.update().where(orders.c.id == sa.bindparam('b_id'))
        if only_unset:  # the current limit's own mark (overdue_at) is the more exact time
            statement = statement.where(orders.c.first_overdue_at.is_(None))
        statement = statement.values(first_overdue_at=sa.bindparam('b_at'))
        items = [{'b_id': k, 'b_at': v} for k, v in values.items()]
        for i in range(0, len(items), _BATCH):
            op.get_bind().execute(statement, items[i : i + _BATCH])
    op.drop_index('ix_orders_ever_overdue', table_name='orders')
    _index(NEW)


def downgrade() -> None:
    op.drop_index('ix_orders_ever_overdue', table_name='orders')
    _index(OLD)
    # SQLite drops the column in place (no index names it any more): rebuilding the orders table would take its
    # triggers and every index with it.
    with op.batch_alter_table('orders', recreate='never') as batch:
        batch.drop_column('first_overdue_at')
