"""job runs: failed runs are recorded (when, how many in a row, what went wrong)

Revision ID: 0014_job_failures
Revises: 0013_backlog_duplicates
Create Date: 2026-12-01 03:10:00.000000

A job whose run raised was only logged; the status page and /healthz showed its last success as if nothing had
happened since (cityhub.jobs.record_failure).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0014_job_failures'
down_revision: str | None = '0013_backlog_duplicates'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job_runs') as batch:
        batch.add_column(sa.Column('last_failed_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('failures', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('job_runs') as batch:
        batch.drop_column('failures')
        batch.drop_column('last_error')
        batch.drop_column('last_failed_at')
