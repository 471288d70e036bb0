"""unit_aliases: the district's address library (地名别名), and its reference-version trigger

Revision ID: 0043_unit_aliases
Revises: 0042_import_batches
Create Date: 2026-12-06 12:00:00.000000

`unit_aliases`: one row per name a street or community goes by besides its official ones — a landmark (大学城), a
road (石井大道), an old name — normalised as the address resolver matches names, with its kind, who added it and
when. (alias, unit_id) is unique; the same alias on two units is the administrator's choice (it is then ambiguous).
The database's gazetteer (`cityhub.org.places.unit_gazetteer`) is cached per process by the tokens of the tables it
is built from: the table gets a token row in `reference_versions` and the triggers that replace it on every change,
as migration 0011 made them for the other reference tables (the same function on PostgreSQL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0043_unit_aliases'
down_revision: str | None = '0042_import_batches'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'unit_aliases'
# Made by migration 0011 (a literal copy: a migration never imports another).
PG_FUNCTION = 'cityhub_bump_reference_version'
PG_TOKEN = 'floor(random() * 9007199254740991)::bigint'


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('alias', sa.String(length=60), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column(
            'kind',
            sa.Enum('landmark', 'road', 'old_name', 'other', name='alias_kind', native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.Column('created_by_user_id', sa.Integer(), nullable=True),
        sa.Column('created_at', cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['created_by_user_id'], ['users.id'], name=op.f('fk_unit_aliases_created_by_user_id_users'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['unit_id'], ['units.id'], name=op.f('fk_unit_aliases_unit_id_units'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_aliases')),
        sa.UniqueConstraint('alias', 'unit_id', name=op.f('uq_unit_aliases_alias_unit_id')),
    )
    op.create_index(op.f('ix_unit_aliases_alias'), TABLE, ['alias'], unique=False)
    op.create_index(op.f('ix_unit_aliases_unit_id'), TABLE, ['unit_id'], unique=False)
    postgres = op.get_bind().dialect.name == 'postgresql'
    op.execute(f"INSERT INTO reference_versions (name, token) VALUES ('{TABLE}', {PG_TOKEN if postgres else 'random()'})")
    if postgres:
        op.execute(
            f'CREATE TRIGGER {TABLE}_reference_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {TABLE} '
            f'FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()'
        )
        return
    for change in ('INSERT', 'UPDATE', 'DELETE'):
        op.execute(
            f'CREATE TRIGGER {TABLE}_reference_version_{change.lower()} AFTER {change} ON {TABLE} BEGIN '
            f"INSERT INTO reference_versions (name, token) VALUES ('{TABLE}', random()) "
            'ON CONFLICT (name) DO UPDATE SET token = excluded.token; END'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP TRIGGER {TABLE}_reference_version ON {TABLE}')
    else:
        for change in ('insert', 'update', 'delete'):
            op.execute(f'DROP TRIGGER {TABLE}_reference_version_{change}')
    op.execute(f"DELETE FROM reference_versions WHERE name = '{TABLE}'")
    op.drop_index(op.f('ix_unit_aliases_unit_id'), table_name=TABLE)
    op.drop_index(op.f('ix_unit_aliases_alias'), table_name=TABLE)
    op.drop_table(TABLE)
