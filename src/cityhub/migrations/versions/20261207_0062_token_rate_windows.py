"""token_rate_windows: the calls of a personal API token per clock minute, for its rate limit (429)

Revision ID: 0062_token_rate_windows
Revises: 0061_citizen_phone
Create Date: 2026-12-07 22:00:00.000000

One row per token and minute, as ``api_rate_windows`` counts an API key's calls (``sharing.service.hit_rate_limit``):
a personal token's calls of the current minute, counted in a short transaction of their own before the request's
work so that every server process sees the same count (``auth.service.hit_token_rate_limit``,
``CITYHUB_API_TOKEN_RATE_LIMIT``). A new table on both backends; a token's rows go with it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0062_token_rate_windows'
down_revision: str | None = '0061_citizen_phone'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'token_rate_windows',
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('window_start', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_id', 'window_start'),
    )


def downgrade() -> None:
    op.drop_table('token_rate_windows')
