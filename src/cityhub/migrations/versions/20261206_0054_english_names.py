"""units.name_en, categories.name_en: the English name an English page shows beside the Chinese name of record

Revision ID: 0054_english_names
Revises: 0053_attachment_publication
Create Date: 2026-12-06 20:45:00.000000

The web UI has an English locale, but units and categories had Chinese names only, so an English page read
城乡建设/住房保障 and 白云区住房和城乡建设局 everywhere. Each gets an optional English name (`name_en`), shown by
English pages when set (`cityhub.localnames`); the Chinese `name` stays the name of record (the API's `name`,
exports, search). Two nullable columns, added in place on both backends: no table copy, so the reference-version
triggers of both tables stay (a batch copy on SQLite would drop them); every unit and category before has none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0054_english_names'
down_revision: str | None = '0053_attachment_publication'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('units', sa.Column('name_en', sa.String(length=200), nullable=True))
    op.add_column('categories', sa.Column('name_en', sa.String(length=120), nullable=True))


def downgrade() -> None:
    for table in ('categories', 'units'):
        if op.get_bind().dialect.name == 'sqlite':
            # In place (SQLite ≥ 3.35): a batch copy of the table would lose its reference-version triggers.
            op.execute(f'ALTER TABLE {table} DROP COLUMN name_en')
        else:
            op.drop_column(table, 'name_en')
