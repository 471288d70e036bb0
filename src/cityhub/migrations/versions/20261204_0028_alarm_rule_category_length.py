"""alarm_rules.category: as long as a category path (300 characters)

Revision ID: 0028_alarm_rule_category
Revises: 0027_extension_pending_index
Create Date: 2026-12-04 14:00:00.000000

A rule names the category of the order it opens by its path, which may be 300 characters (`categories.path`); the
column held 200, so a rule naming a long path was kept on SQLite and refused by PostgreSQL. The table is small
(rules, not readings): SQLite copies it in a batch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0028_alarm_rule_category'
down_revision: str | None = '0027_extension_pending_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alarm_rules') as batch:
        batch.alter_column('category', type_=sa.String(300), existing_type=sa.String(200), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('alarm_rules') as batch:
        batch.alter_column('category', type_=sa.String(200), existing_type=sa.String(300), existing_nullable=True)
