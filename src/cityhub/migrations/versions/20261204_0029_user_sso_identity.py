"""users.sso_identity: the single sign-on identity an account is bound to

Revision ID: 0029_user_sso_identity
Revises: 0028_alarm_rule_category
Create Date: 2026-12-04 14:10:00.000000

Single sign-on matched an identity to an account by a claim the person may be able to change at the provider
(`preferred_username`): an identity renamed to `admin` signed on as cityhub's `admin`. An account is now bound, at its
first sign-on, to the provider's issuer and the person's subject (`<iss> <sub>`, unique); later sign-ons find the
account by it. Existing rows: NULL (bound at their next sign-on).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0029_user_sso_identity'
down_revision: str | None = '0028_alarm_rule_category'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('users', sa.Column('sso_identity', sa.String(length=400), nullable=True))
    op.create_index('ix_users_sso_identity', 'users', ['sso_identity'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_users_sso_identity', table_name='users')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE users DROP COLUMN sso_identity')  # SQLite ≥ 3.35
    else:
        op.drop_column('users', 'sso_identity')
