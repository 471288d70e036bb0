"""Routing rules (派单规则), per-category auto-dispatch thresholds and the latest dispatch decision per order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.db import Base, utcnow
from cityhub.dispatch.rules import RuleTier, TargetKind
from cityhub.org.models import _enum


class DispatchRule(Base):
    """Category × place × keywords → unit, editable by an administrator.

    ``category_id`` matches the category and its descendants (NULL: any); ``place_unit_id`` matches orders whose
    street or community lies in that unit (NULL: anywhere). The target is a fixed unit or the order's own
    community / street. ``tier`` orders matching rules (community before street before department).
    """

    __tablename__ = "dispatch_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"), index=True)
    place_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    exclude_keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_kind: Mapped[TargetKind] = mapped_column(_enum(TargetKind, "dispatch_target_kind"), default=TargetKind.UNIT)
    target_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    tier: Mapped[RuleTier] = mapped_column(_enum(RuleTier, "dispatch_rule_tier"))
    valid_from: Mapped[datetime | None] = mapped_column()
    valid_until: Mapped[datetime | None] = mapped_column()
    # Set for rules created by ``seed_default_rules`` so that seeding again recognises them.
    seed_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DispatchThreshold(Base):
    """Classifier probability from which orders of a category (and its descendants) are dispatched automatically."""

    __tablename__ = "dispatch_thresholds"

    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True)
    threshold: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DispatchSuggestion(Base):
    """The latest suggestion for an order: what the dispatcher's queue shows (the audit trail keeps the history)."""

    __tablename__ = "dispatch_suggestions"

    order_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    auto: Mapped[bool] = mapped_column(Boolean, default=False)
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text)
    # [{"unit_id", "unit_name", "score", "rule_id", "tier", "reasons": [...]}]
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # {"label", "probability", "top3": [[label, p], ...]} or None without a model
    prediction: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {"street_id", "community_id", "source": "order" | "address" | "text" | None}
    place: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(120))


class DispatchBacklog(Base):
    """A new order waiting for the background dispatcher's automatic decision (see :mod:`cityhub.dispatch.background`).

    Written by intake in the transaction that creates the order, deleted by the dispatcher in the transaction that
    decides: an order is never decided twice and never forgotten, whatever restarts in between.
    """

    __tablename__ = "dispatch_backlog"
    # The dispatcher's order: live appeals before bulk imports, oldest first within each.
    __table_args__ = (Index("ix_dispatch_backlog_bulk_queued_at", "bulk", "queued_at"),)

    order_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    queued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Rounds that failed on this order with an unexpected error, and when it may be tried again (NULL: now).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column()
    # Created over the API or Open311 with the duplicate check left to the dispatcher (CITYHUB_DEDUPE_IN_BACKGROUND):
    # it looks for an earlier duplicate to merge into before deciding.
    check_duplicates: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Queued by a bulk import (``cityhub.intake.importer``, ``dispatch``): decided after every order not so queued,
    # so that an import of thousands of rows does not hold up the appeals that arrive while it is worked through.
    bulk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
