"""order_events: the unit, action and order of each event, for one unit's assessment figures

Revision ID: 0038_event_unit_index
Revises: 0036_overdue_indexes
Create Date: 2026-12-04 20:00:00.000000

`ix_order_events_unit_action` on `order_events (unit_id, action, order_id)`: one unit's drill-down of the
assessment (`analytics.kpi.drilldown`, `GET /api/v1/kpi/drilldown`, `cityhub analytics drilldown`), the one map's
on-time rate of a unit and a unit's own row of `GET /api/v1/kpi` walk only the trails of the orders that can hold a
fact of that unit (`kpi._can_hold`: an assignment, accept or reply naming it, or the order's lead unit), found from
this index alone; without it they walked the trails of every order of the period (a year's drill-down at 200,000
orders: 2.3 s → 6.5 s when the district-wide figures became one walk of the trails).
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0038_event_unit_index'
down_revision: str | None = '0036_overdue_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_order_events_unit_action', 'order_events', ['unit_id', 'action', 'order_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_order_events_unit_action', table_name='order_events')
