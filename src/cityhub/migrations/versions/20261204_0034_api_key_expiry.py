"""api_keys: an optional expiry

Revision ID: 0034_api_key_expiry
Revises: 0033_order_updated_index
Create Date: 2026-12-04 16:00:00.000000

`api_keys.expires_at`: when a key of the data-sharing API and Open311 stops working (`cityhub apikey create
--expires-in DAYS | --expires DATE`, `apikey expiry`, the API-clients page). The keys issued before keep NULL: no
expiry, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0034_api_key_expiry'
down_revision: str | None = '0033_order_updated_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('api_keys', sa.Column('expires_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('expires_at')
