"""citizen phone: the phone number an account verified (users.phone_verified, users.phone_verified_at) and the
verification codes sent to it (phone_codes)

Revision ID: 0061_citizen_phone
Revises: 0060_invalid_calls
Create Date: 2026-12-07 22:00:00.000000

A citizen sets their phone on /account and proves it with a six-digit code sent by text message
(``cityhub.auth.phone``): ``users.phone_verified`` is the number as it was verified — the account's phone is verified
while ``users.phone`` still is that number —, and ``phone_codes`` holds the one pending code of an account, hashed,
with its expiry, wrong tries and sends. New columns (nullable) and a new table on both backends.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0061_citizen_phone'
down_revision: str | None = '0060_invalid_calls'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('users', sa.Column('phone_verified', sa.String(length=32), nullable=True))
    op.add_column('users', sa.Column('phone_verified_at', cityhub.db.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        'phone_codes',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('salt', sa.String(length=32), nullable=False),
        sa.Column('sent_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('sends', sa.Integer(), nullable=False),
        sa.Column('window_started_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id'),
    )


def downgrade() -> None:
    op.drop_table('phone_codes')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite 3.35+ drops a column in place (no index or constraint names these).
        op.execute('ALTER TABLE users DROP COLUMN phone_verified_at')
        op.execute('ALTER TABLE users DROP COLUMN phone_verified')
    else:
        op.drop_column('users', 'phone_verified_at')
        op.drop_column('users', 'phone_verified')
