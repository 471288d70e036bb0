"""Persisted analytics: hot topics (热点问题) — topics with stable ids, their member orders, and the fitted topic
model — and the assessment's exemption requests (考核核减, :mod:`cityhub.analytics.exemptions`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.db import Base, utcnow


class HotTopic(Base):
    """One mined topic; ``id`` is the topic id the model assigned and never changes across updates."""

    __tablename__ = "hot_topics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(300))
    representative_title: Mapped[str] = mapped_column(String(300))
    key_phrases: Mapped[list[str]] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(Integer)
    heat: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str] = mapped_column(String(16))
    first_at: Mapped[datetime | None] = mapped_column()
    last_at: Mapped[datetime | None] = mapped_column()
    places: Mapped[list[str]] = mapped_column(JSON, default=list)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    opposes: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HotTopicOrder(Base):
    """Membership of an order in a topic (an order belongs to at most one topic)."""

    __tablename__ = "hot_topic_orders"

    order_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(ForeignKey("hot_topics.id", ondelete="CASCADE"), index=True)


class HotTopicModelState(Base):
    """The fitted model (vectoriser, centroids, pool of unassigned orders) that incremental updates continue from.

    ``last_order_id`` is the high-water mark: an update reads only orders with a larger id.
    """

    __tablename__ = "hot_topic_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    orders_seen: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    last_order_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    params: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    state: Mapped[bytes] = mapped_column(LargeBinary)


# The one open request of an order and unit (migration 0055): a partial unique index on both backends.
EXEMPTION_PENDING_SQL = "state = 'pending'"


class AssessmentExemption(Base):
    """考核核减: a handling unit asks that one order's facts of some measures not count against it in the assessment
    (the fault was not its own: ``reason_category``), and a supervisor approves or rejects it with a reason. An
    approved request takes those facts of that unit out of its figures, numerator and denominator, in whichever
    period they fall (:func:`cityhub.analytics.kpi.compute`); every request and decision is also an event of the
    order's audit trail. An approval taken back (撤销核减) keeps its decision (``decided_*``) beside the revocation
    (``revoked_*``)."""

    __tablename__ = "assessment_exemptions"
    __table_args__ = (
        Index(
            "uq_assessment_exemptions_pending",
            "order_id",
            "unit_id",
            unique=True,
            sqlite_where=text(EXEMPTION_PENDING_SQL),
            postgresql_where=text(EXEMPTION_PENDING_SQL),
        ),
        Index("ix_assessment_exemptions_state", "state", "requested_at"),
        Index("ix_assessment_exemptions_unit", "unit_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    measures: Mapped[list[str]] = mapped_column(JSON)  # KPI names (analytics.kpi.KPIS) the request is about
    reason_category: Mapped[str] = mapped_column(String(32))  # exemptions.REASONS
    reason_text: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # pending, approved, rejected, revoked
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_by_name: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_name: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # 撤销核减 (migration 0058): who took the approval back, when and why; the decision above stays the approval.
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_by_name: Mapped[str | None] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None] = mapped_column()
    revocation_reason: Mapped[str | None] = mapped_column(Text)
