"""dispatch backlog: orders whose duplicate check is left to the background dispatcher

Revision ID: 0013_backlog_duplicates
Revises: 0012_dispatch_backlog
Create Date: 2026-11-30 15:20:00.000000

An order created over the API or Open311 (whose answer shows no duplicates) is checked for duplicates by the
background dispatcher just before its decision (cityhub.dispatch.background): the backlog row says so.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_backlog_duplicates'
down_revision: str | None = '0012_dispatch_backlog'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('dispatch_backlog') as batch:
        batch.add_column(sa.Column('check_duplicates', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('dispatch_backlog') as batch:
        batch.drop_column('check_duplicates')
