"""reference versions: a token per reference table, replaced by a trigger on every change of the table

Revision ID: 0011_reference_versions
Revises: 0010_order_list_indexes
Create Date: 2026-11-30 10:30:00.000000

Server processes keep the units, categories, routing rules and thresholds, calendar, time-limit rules and
notification subscriptions in memory (``cityhub.refdata``) and check one token per table per transaction instead of
reading them again for every order. The triggers replace a table's token with a random value on any INSERT, UPDATE,
DELETE (and TRUNCATE on PostgreSQL), whoever runs it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_reference_versions"
down_revision: str | None = "0010_order_list_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in cityhub.refdata.TABLES at the time of this migration (a later change of the list needs its own migration).
TABLES = (
    "units",
    "categories",
    "dispatch_rules",
    "dispatch_thresholds",
    "calendar_days",
    "sla_rules",
    "notify_subscriptions",
)
PG_FUNCTION = "cityhub_bump_reference_version"
PG_TOKEN = "floor(random() * 9007199254740991)::bigint"


def upgrade() -> None:
    op.create_table(
        "reference_versions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reference_versions")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    token = PG_TOKEN if postgres else "random()"
    for table in TABLES:
        op.execute(f"INSERT INTO reference_versions (name, token) VALUES ('{table}', {token})")
    if postgres:
        op.execute(
            f"""CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO reference_versions (name, token) VALUES (TG_TABLE_NAME, {PG_TOKEN})
                ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token;
                RETURN NULL;
            END $$"""
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_reference_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            )
        return
    for table in TABLES:
        for change in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_reference_version_{change.lower()} AFTER {change} ON {table} BEGIN "
                f"INSERT INTO reference_versions (name, token) VALUES ('{table}', random()) "
                "ON CONFLICT (name) DO UPDATE SET token = excluded.token; END"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if postgres:
            op.execute(f"DROP TRIGGER {table}_reference_version ON {table}")
        else:
            for change in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_reference_version_{change}")
    if postgres:
        op.execute(f"DROP FUNCTION {PG_FUNCTION}()")
    op.drop_table("reference_versions")
