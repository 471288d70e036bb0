"""notify: outbox messages and webhook subscriptions

Revision ID: 0004_notify
Revises: 0003_sharing
Create Date: 2026-11-22 05:26:43.756996
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = "0004_notify"
down_revision: str | None = "0003_sharing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "notify_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("events", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("created_at", cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_notify_subscriptions_unit_id_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_subscriptions")),
    )
    with op.batch_alter_table("notify_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_subscriptions_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "topic",
            sa.Enum(
                "dispatch", "warning", "overdue", "reply", "callback", name="notify_topic", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "sending", "sent", "failed", "dead", name="notify_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", cityhub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_until", cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", cityhub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_notify_outbox_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["notify_subscriptions.id"],
            name=op.f("fk_notify_outbox_subscription_id_notify_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_outbox")),
    )
    with op.batch_alter_table("notify_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_outbox_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_notify_outbox_status_next", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notify_outbox_subscription_id"), ["subscription_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("notify_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_outbox_subscription_id"))
        batch_op.drop_index("ix_notify_outbox_status_next")
        batch_op.drop_index(batch_op.f("ix_notify_outbox_order_id"))

    op.drop_table("notify_outbox")
    with op.batch_alter_table("notify_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_subscriptions_unit_id"))

    op.drop_table("notify_subscriptions")
