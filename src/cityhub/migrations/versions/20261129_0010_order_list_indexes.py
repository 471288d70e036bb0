"""order list indexes: channel, SLA status, lead unit and community, each with the creation time

Revision ID: 0010_order_list_indexes
Revises: 0009_hot_topics
Create Date: 2026-11-29 16:20:00.000000

The order list is newest first. A filter without an index that also yields that order makes the database read
every matching row and sort them — at a million orders a page by channel took 15 s on SQLite and "overdue"
scanned the whole table when nothing matched. An index on (filter column, created_at) gives the first page
of any of these filters after reading about one page of index entries. The community index replaces the
single-column one, which it contains.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0010_order_list_indexes'
down_revision: str | None = '0009_hot_topics'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    'ix_orders_channel_created': ['channel', 'created_at'],
    'ix_orders_sla_created': ['sla_status', 'created_at'],
    'ix_orders_lead_created': ['lead_unit_id', 'created_at'],
    'ix_orders_community_created': ['community_id', 'created_at'],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, 'orders', columns, unique=False)
    op.drop_index('ix_orders_community_id', table_name='orders')


def downgrade() -> None:
    op.create_index('ix_orders_community_id', 'orders', ['community_id'], unique=False)
    for name in INDEXES:
        op.drop_index(name, table_name='orders')
