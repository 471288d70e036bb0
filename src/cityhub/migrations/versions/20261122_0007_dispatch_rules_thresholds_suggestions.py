"""dispatch rules, thresholds and suggestions

Revision ID: 0007_dispatch
Revises: 0006_kb
Create Date: 2026-11-22 05:40:31.398841
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = "0007_dispatch"
down_revision: str | None = "0006_kb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dispatch_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("place_unit_id", sa.Integer(), nullable=True),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("exclude_keywords", sa.JSON(), nullable=False),
        sa.Column(
            "target_kind",
            sa.Enum(
                "unit", "local_community", "local_street", name="dispatch_target_kind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("target_unit_id", sa.Integer(), nullable=True),
        sa.Column(
            "tier",
            sa.Enum(
                "community", "street", "department", "district", name="dispatch_rule_tier", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("valid_from", cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seed_key", sa.String(length=80), nullable=True),
        sa.Column("created_at", cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_dispatch_rules_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["place_unit_id"], ["units.id"], name=op.f("fk_dispatch_rules_place_unit_id_units"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["target_unit_id"], ["units.id"], name=op.f("fk_dispatch_rules_target_unit_id_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_rules")),
        sa.UniqueConstraint("seed_key", name=op.f("uq_dispatch_rules_seed_key")),
    )
    with op.batch_alter_table("dispatch_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispatch_rules_category_id"), ["category_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_rules_target_unit_id"), ["target_unit_id"], unique=False)

    op.create_table(
        "dispatch_thresholds",
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("updated_at", cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_dispatch_thresholds_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_id", name=op.f("pk_dispatch_thresholds")),
    )
    op.create_table(
        "dispatch_suggestions",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("decided_at", cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("auto", sa.Boolean(), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=True),
        sa.Column("place", sa.JSON(), nullable=True),
        sa.Column("model_version", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_dispatch_suggestions_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_dispatch_suggestions")),
    )
    with op.batch_alter_table("dispatch_suggestions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispatch_suggestions_decided_at"), ["decided_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dispatch_suggestions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispatch_suggestions_decided_at"))

    op.drop_table("dispatch_suggestions")
    op.drop_table("dispatch_thresholds")
    with op.batch_alter_table("dispatch_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispatch_rules_target_unit_id"))
        batch_op.drop_index(batch_op.f("ix_dispatch_rules_category_id"))

    op.drop_table("dispatch_rules")
