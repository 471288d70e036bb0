"""notify_outbox.attempted_at: when a message's last delivery attempt ended

Revision ID: 0049_outbox_attempted_at
Revises: 0048_sent_back_replies
Create Date: 2026-12-06 03:40:00.000000

The 推送订阅 page's 最近失败 (and the API's `delivery.last_failed_at`) says when a subscription's delivery last failed:
the end of the failed attempt, which the outbox did not keep (`claimed_until` is the worker's lease, cleared when the
attempt ends). A nullable column, added in place on both backends (no table copy); the messages attempted before have
none (时间未知).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0049_outbox_attempted_at'
down_revision: str | None = '0048_sent_back_replies'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('notify_outbox', sa.Column('attempted_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notify_outbox') as batch:
        batch.drop_column('attempted_at')
