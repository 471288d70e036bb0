"""login lockouts per login name, apart from an administrator's lock

Revision ID: 0016_login_lockouts
Revises: 0015_order_place_source
Create Date: 2026-12-02 09:00:00.000000

Failed password logins locked the account itself (`users.failed_logins`, `users.locked_until`): anyone could lock
any account, the lock cut off its open sessions and API tokens, and only names that exist were ever locked (which
told the names apart). The count and the lockout now live per login name in `login_lockouts`, existing or not, and
stop password logins only; `users.locked_until` is an administrator's lock alone. A lock set by failed logins before
this upgrade stays as an administrator's for the minutes it has left.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0016_login_lockouts'
down_revision: str | None = '0015_order_place_source'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'login_lockouts',
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('locked_until', cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('username', name=op.f('pk_login_lockouts')),
    )
    op.create_index(op.f('ix_login_lockouts_last_failure_at'), 'login_lockouts', ['last_failure_at'], unique=False)
    # In place (SQLite's own DROP COLUMN): rebuilding `users` in batch mode would drop the table that sessions,
    # tokens and orders refer to.
    with op.batch_alter_table('users', recreate='never') as batch:
        batch.drop_column('failed_logins')


def downgrade() -> None:
    with op.batch_alter_table('users', recreate='never') as batch:
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
    op.drop_index(op.f('ix_login_lockouts_last_failure_at'), table_name='login_lockouts')
    op.drop_table('login_lockouts')
