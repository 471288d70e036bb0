"""orders: files uploaded to cityhub itself, beside attachments given by link

Revision ID: 0023_attachment_files
Revises: 0022_admin_log
Create Date: 2026-12-02 19:40:00.000000

`attachments.sha256`: set for a file kept in cityhub's own file store (`cityhub.workorders.files`, under
CITYHUB_FILES_DIR, by its content's SHA-256); null for an attachment given by its http(s) link.
`attachments.uploaded_by` / `uploaded_by_id`: who attached it (a person's name, "cli"; their account, who may remove
it again), null for those given with the appeal.
Nullable columns only: no rewrite of existing rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023_attachment_files'
down_revision: str | None = '0022_admin_log'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('attachments') as batch:
        batch.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('uploaded_by', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('uploaded_by_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            'fk_attachments_uploaded_by_id_users', 'users', ['uploaded_by_id'], ['id'], ondelete='SET NULL'
        )
        # Whether another attachment holds the same bytes (a removal, the store's pruning).
        batch.create_index('ix_attachments_sha256', ['sha256'])


def downgrade() -> None:
    with op.batch_alter_table('attachments') as batch:
        batch.drop_index('ix_attachments_sha256')
        batch.drop_constraint('fk_attachments_uploaded_by_id_users', type_='foreignkey')
        batch.drop_column('uploaded_by_id')
        batch.drop_column('uploaded_by')
        batch.drop_column('sha256')
