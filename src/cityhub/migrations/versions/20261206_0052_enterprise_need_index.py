"""ix_orders_enterprise_need_created: the order list's 诉求领域 (enterprise_need) through an index, newest first

Revision ID: 0052_enterprise_need_index
Revises: 0051_order_reported_by
Create Date: 2026-12-06 09:00:00.000000

企业呼's need is read from the order's JSON attributes (`enterprise_need`). Without an index the list of one need read
the orders newest first and looked into each one's attributes until a page was full — every order of the district,
when the need is rare or the list is counted. An expression index (the need, created_at), partial on the orders that
name a need — a few percent of a district's orders —, as every other list filter has one ending in created_at. Its
expression is the one `workorders.models.ENTERPRISE_NEED` writes on each backend, the JSON key a literal:
`json_extract(attributes, '$.enterprise_need')` on SQLite, `(attributes ->> 'enterprise_need')` on PostgreSQL (a
planner reads an expression index only for the same expression). SQLite's reflection does not read an expression
index: a later migration that copies `orders` (Alembic's batch mode recreating the table) must create it again.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0052_enterprise_need_index'
down_revision: str | None = '0051_order_reported_by'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Literal copies: a migration never imports the models, which change after it.
NEED = {
    'sqlite': "json_extract(attributes, '$.enterprise_need')",
    'postgresql': "(attributes ->> 'enterprise_need')",
}


def upgrade() -> None:
    need = NEED[op.get_bind().dialect.name]
    op.execute(
        f'CREATE INDEX ix_orders_enterprise_need_created ON orders ({need}, created_at) WHERE {need} IS NOT NULL'
    )


def downgrade() -> None:
    op.execute('DROP INDEX ix_orders_enterprise_need_created')
