"""Identity settings (environment prefix ``CITYHUB_``), kept beside the code that reads them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cityhub.config import Settings, get_settings


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    # Browser sessions. Secure cookies need https; plain-http localhost development turns it off.
    session_cookie_name: str = "cityhub_session"
    csrf_cookie_name: str = "cityhub_csrf"
    session_cookie_secure: bool = True
    session_hours: float = Field(12, gt=0)
    # Lockout: after N consecutive failures the account is locked for M minutes (423).
    login_max_failures: int = Field(5, ge=1)
    lockout_minutes: float = Field(15, gt=0)
    # Rate limit (429): failed attempts per username and per client IP within the window.
    login_window_seconds: int = Field(300, ge=1)
    login_max_per_username: int = Field(10, ge=1)
    login_max_per_ip: int = Field(50, ge=1)
    api_token_days: int = Field(365, ge=1, description="default lifetime of a personal API token")
    # A verified API token is trusted from memory for this long (see auth.service.RecentTokens); 0 = every request
    # reads it from the database. Revocations and locks made in another server process take up to this long.
    token_cache_seconds: float = Field(2.0, ge=0, le=60)
    # Argon2id cost; the defaults follow argon2-cffi (RFC 9106 low-memory profile).
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8)

    # OIDC single sign-on. Off unless an issuer and a client id are set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = Field(None, description="default: this server's /api/v1/auth/oidc/callback")
    oidc_scopes: str = "openid profile email phone"
    oidc_username_claim: str = "preferred_username"
    # Accounts are matched to existing users; only citizens may be created on first sign-on, and only if allowed.
    oidc_allow_citizen_signup: bool = False
    oidc_after_login: str = "/"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)


_cache: tuple[Settings, AuthSettings] | None = None


def get_auth_settings() -> AuthSettings:
    """The identity settings, re-read whenever the core settings are (``reset_engine`` clears those)."""
    global _cache
    core = get_settings()
    if _cache is None or _cache[0] is not core:
        _cache = (core, AuthSettings())
    return _cache[1]
