"""API clients of the data-sharing API and Open311 (machine integrators, not people): keys, limits, statistics."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cityhub.db import Base, utcnow


class ApiClient(Base):
    """An integrating system (数据共享接口调用方): its scopes and its per-key rate limit."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # Space-separated, e.g. "open311:write sharing:read".
    scopes: Mapped[str] = mapped_column(String(300), default="")
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, default=60)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="client", order_by="ApiKey.id")

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class ApiKey(Base):
    """One key of a client. Only the SHA-256 of the key is stored; ``prefix`` names it in lists and revocations."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    # When the key stops working (refused with 401 saying so); None: it works until revoked (migration 0034).
    expires_at: Mapped[datetime | None] = mapped_column()

    client: Mapped[ApiClient] = relationship(back_populates="keys")


class ApiRateWindow(Base):
    """Calls of one key in one fixed one-minute window; a row per window so that every process sees the count."""

    __tablename__ = "api_rate_windows"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class ApiCallStat(Base):
    """Call counter per client, day (local) and endpoint, with the number of error answers (status >= 400)."""

    __tablename__ = "api_call_stats"

    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(160), primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)


class Open311Token(Base):
    """Open311 token of a request posted through GeoReport: ``GET tokens/{token}`` maps it to the request id."""

    __tablename__ = "open311_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
