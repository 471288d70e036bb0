"""kb_entries.public, self_served: the entries citizens see (常见问题解答) and how often one solved their problem

Revision ID: 0057_kb_public
Revises: 0055_assessment_exemptions
Create Date: 2026-12-07 06:30:00.000000

`kb_entries.public` (BOOLEAN, not null, false): the entry is fit for the public (向市民公开) — a citizen typing an
appeal on the web form reads it among the answers that may solve their problem; an entry seeded from a reply to one
citizen names people and places and stays the staff's. `kb_entries.self_served` (INTEGER, not null, 0): how many
times a citizen said the entry solved their problem (市民自助) instead of filing the appeal. Both added in place on
both backends (no table copy); every entry before is not public and counted 0.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0057_kb_public'
down_revision: str | None = '0056_user_notices'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('kb_entries') as batch:
        batch.add_column(sa.Column('public', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('self_served', sa.Integer(), nullable=False, server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table('kb_entries') as batch:
        batch.drop_column('self_served')
        batch.drop_column('public')
