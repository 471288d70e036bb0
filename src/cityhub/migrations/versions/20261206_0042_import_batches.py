"""import_batches, and the import each imported order came from

Revision ID: 0042_import_batches
Revises: 0041_reply_check_scorer
Create Date: 2026-12-06 09:00:00.000000

`import_batches`: one row per import of a file of appeals (the web page, the API, the command line) — the file's
name, when, who (name, and account when a person uploaded it), how many orders it created. `orders.import_batch_id`
(nullable, a reference to it) names the import that created an order, so that 查看导入的工单 lists exactly those
orders rather than every order of the channel; `ix_orders_import_batch_created` (import_batch_id, created_at), partial
on the imported orders only, is the order list's filter newest first. On SQLite the column is added in place
(`ALTER TABLE … ADD COLUMN … REFERENCES`, as 0025 did), not by copying the table.

Existing orders: NULL. Nothing stored tells which import created an order before this revision — the bulk writer's
create event is dated at the appeal's reception, not at its import, and no file name was kept — so no batch is made
up for them: a guessed batch would list other orders under a file's name.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0042_import_batches'
down_revision: str | None = '0041_reply_check_scorer'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A literal copy: a migration never imports the models, which change after it.
IMPORTED = 'import_batch_id IS NOT NULL'


def upgrade() -> None:
    op.create_table(
        'import_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('file_name', sa.String(length=255), nullable=False),
        sa.Column('created_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor_name', sa.String(length=80), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('imported', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            'ALTER TABLE orders ADD COLUMN import_batch_id INTEGER '
            'CONSTRAINT fk_orders_import_batch_id_import_batches REFERENCES import_batches (id)'
        )
    else:
        op.add_column('orders', sa.Column('import_batch_id', sa.Integer(), nullable=True))
        op.create_foreign_key(
            'fk_orders_import_batch_id_import_batches', 'orders', 'import_batches', ['import_batch_id'], ['id']
        )
    op.create_index(
        'ix_orders_import_batch_created',
        'orders',
        ['import_batch_id', 'created_at'],
        unique=False,
        sqlite_where=sa.text(IMPORTED),
        postgresql_where=sa.text(IMPORTED),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_import_batch_created', table_name='orders')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE orders DROP COLUMN import_batch_id')  # SQLite ≥ 3.35; the reference goes with it
    else:
        op.drop_constraint('fk_orders_import_batch_id_import_batches', 'orders', type_='foreignkey')
        op.drop_column('orders', 'import_batch_id')
    op.drop_table('import_batches')
