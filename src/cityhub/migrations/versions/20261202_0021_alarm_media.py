"""monitoring: the snapshot of the reading that raised an alarm

Revision ID: 0021_alarm_media
Revises: 0020_order_search_table
Create Date: 2026-12-02 15:10:00.000000

`alarms.media_url`: the http(s) link the reading that raised an alarm gave (a reading's `media_url`: a video-AI
camera's snapshot or clip); the order the alarm opens carries it as an attachment. A nullable column only: no
rewrite of existing rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021_alarm_media'
down_revision: str | None = '0020_order_search_table'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alarms') as batch:
        batch.add_column(sa.Column('media_url', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alarms') as batch:
        batch.drop_column('media_url')
