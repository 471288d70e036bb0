"""Server-side login sessions, personal API tokens, login attempts and password lockouts (rows, so every process
sees them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cityhub.db import Base, utcnow
from cityhub.org.models import User


class AuthSession(Base):
    """A browser login. Only the SHA-256 of the cookie value is stored, so a database leak yields no sessions."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Double-submit CSRF token: echoed by the client in X-CSRF-Token on unsafe methods.
    csrf_token: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16), default="password")  # password | oidc
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A personal API token (Authorization: Bearer …), shown once at creation and stored as a SHA-256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, so a user can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class TokenRateWindow(Base):
    """Calls of one personal API token in one fixed one-minute window (its rate limit, as ``api_rate_windows``
    counts an API key's): a row per window so that every server process sees the count."""

    __tablename__ = "token_rate_windows"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class LoginAttempt(Base):
    """One password login attempt; failures within a window drive the per-username and per-IP rate limits."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_client_ip_at", "client_ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean)


class LoginLockout(Base):
    """Consecutive failed password logins of one login name and the password lockout they caused.

    Kept per name whether or not an account has it, so that a name that exists answers exactly as one that does
    not. It stops password logins only: sessions and API tokens opened before keep working (an administrator's
    lock, ``users.locked_until``, stops everything).
    """

    __tablename__ = "login_lockouts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # since the last success, lockout or unlock
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None] = mapped_column()


class PhoneCode(Base):
    """The one pending code that proves an account's phone (``cityhub.auth.phone``): sent by text message, kept only
    as a salted SHA-256, valid until ``expires_at`` and for a few wrong tries; ``sends`` counts the codes sent since
    ``window_started_at`` (the resend limit)."""

    __tablename__ = "phone_codes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))  # the number the code was sent to
    code_hash: Mapped[str] = mapped_column(String(64))
    salt: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong codes typed for this one
    sends: Mapped[int] = mapped_column(Integer, default=1)
    window_started_at: Mapped[datetime] = mapped_column()
