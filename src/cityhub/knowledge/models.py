"""Knowledge entries, the revision counter that keeps every process's search index in step, reply checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.db import Base, utcnow


class KnowledgeEntry(Base):
    """One question with its approved answer (知识条目), valid for a period, optionally tied to a category."""

    __tablename__ = "kb_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="SET NULL"), index=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime | None] = mapped_column()
    valid_until: Mapped[datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    # Fit for the public (向市民公开): a citizen typing an appeal reads it (常见问题解答); an entry seeded from a
    # reply to one citizen names people and places and stays the staff's. Operators answer from every entry (秒回).
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # How many times a citizen said this answer solved their problem and filed nothing (市民自助).
    self_served: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Where the entry came from: "manual", "import:<file>", "import:f4:<message id>"; unique when given.
    source: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class KnowledgeRevision(Base):
    """A single row counting changes of the knowledge base; search indexes rebuild when it moves."""

    __tablename__ = "kb_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplyCheck(Base):
    """The latest reply-quality score of an order's reply (答复质量检查), for the supervisor's review list."""

    __tablename__ = "reply_checks"

    order_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    checked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reply_digest: Mapped[str] = mapped_column(String(64))  # the reply scored; a new reply is re-checked
    # reply_quality.SCORER_VERSION of the score; null: scored before versions were kept. Another is scored again.
    scorer: Mapped[int | None] = mapped_column(Integer)
    relevance: Mapped[float] = mapped_column(Float)
    completeness: Mapped[float] = mapped_column(Float)
    basis: Mapped[float] = mapped_column(Float)
    timeliness: Mapped[float | None] = mapped_column(Float)
    overall: Mapped[float] = mapped_column(Float)
    weak: Mapped[bool] = mapped_column(Boolean, index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
