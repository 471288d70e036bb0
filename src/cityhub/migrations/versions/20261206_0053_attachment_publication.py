"""attachments.public_token, published_at: a stored photo staff published for Open311's media_url

Revision ID: 0053_attachment_publication
Revises: 0052_enterprise_need_index
Create Date: 2026-12-06 09:30:00.000000

Staff moderate the photos of an order for publication (公开): a published photo has an opaque token, the last part
of its public address `/open311/v2/media/{token}`, and the time it was published; withdrawn (撤回公开), both are
empty again. Two nullable columns and a unique index, added in place on both backends (no table copy); every
attachment before is not published.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0053_attachment_publication'
down_revision: str | None = '0052_enterprise_need_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('attachments', sa.Column('public_token', sa.String(length=64), nullable=True))
    op.add_column('attachments', sa.Column('published_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_attachments_public_token'), 'attachments', ['public_token'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_attachments_public_token'), table_name='attachments')
    with op.batch_alter_table('attachments') as batch:
        batch.drop_column('published_at')
        batch.drop_column('public_token')
