"""Identity settings (environment prefix ``CITYHUB_``), kept beside the code that reads them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cityhub.config import Settings, get_settings

# The longest a personal API token may live: a forgotten token in a script stops working within a year.
MAX_TOKEN_DAYS = 365


class AuthSettings(BaseSettings):
    """Identity: browser sessions, login lockout and rate limits, API tokens, password hashing, OIDC sign-on."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    # Browser sessions.
    session_cookie_name: str = Field("cityhub_session", description="Name of the browser session cookie.")
    csrf_cookie_name: str = Field("cityhub_csrf", description="Name of the CSRF token cookie sent with the session.")
    session_cookie_secure: bool = Field(
        True,
        description="Send cookies over https only; turn off for plain-http localhost development.",
    )
    session_hours: float = Field(12, gt=0, description="Hours a browser session lasts.")
    # Lockout: after N consecutive failures password logins of that name are locked for M minutes (423).
    login_max_failures: int = Field(
        5, ge=1, description="Consecutive failed logins of a name after which its password logins are locked (423)."
    )
    lockout_minutes: float = Field(
        15, gt=0, description="Minutes password logins stay locked after too many failures (sessions, tokens go on)."
    )
    # Rate limit (429): failed attempts per username and per client IP within the window.
    login_window_seconds: int = Field(
        300,
        ge=1,
        description=(
            "Window, in seconds, in which failed logins (and failed progress lookups, /track, and password-reset "
            "requests and wrong codes, /login/reset) are counted for the rate limit (429)."
        ),
    )
    login_max_per_username: int = Field(
        10,
        ge=1,
        description=(
            "Failed logins per username (progress lookups: per order number; password resets: per name typed) "
            "within the window before further attempts get 429."
        ),
    )
    login_max_per_ip: int = Field(
        50,
        ge=1,
        description=(
            "Failed logins, progress lookups and password-reset attempts per client IP within the window before "
            "further attempts get 429."
        ),
    )
    api_token_days: int = Field(
        365, ge=1, le=MAX_TOKEN_DAYS, description="Default lifetime, in days, of a personal API token."
    )
    # See auth.service.hit_token_rate_limit: as an API key's calls per minute (sharing.service.hit_rate_limit).
    api_token_rate_limit: int = Field(
        0,
        ge=0,
        description="Calls per clock minute each personal API token may make (Authorization: Bearer), counted over "
        "every route it calls, refused and failed calls included; the next is 429 rate_limited with Retry-After, as "
        "for an API key. 0 (the default): no limit. Each counted call is a short write to the database "
        "(token_rate_windows), as an API key's is.",
    )
    # See auth.service.RecentTokens.
    token_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="A verified API token is trusted from memory for this long; revocations and locks made in "
        "another server process take up to this long to count (0: every request reads the database).",
    )
    # Argon2id cost; the defaults follow argon2-cffi (RFC 9106 low-memory profile).
    argon2_time_cost: int = Field(3, ge=1, description="Argon2id time cost (iterations) of password hashes.")
    argon2_memory_kib: int = Field(65536, ge=8, description="Argon2id memory cost of password hashes, in KiB.")

    # OIDC single sign-on. Off unless an issuer and a client id are set.
    oidc_issuer: str | None = Field(
        None, description="OIDC issuer URL; single sign-on is on when this and the client id are set."
    )
    oidc_client_id: str | None = Field(None, description="OIDC client id registered with the identity provider.")
    oidc_client_secret: str | None = Field(None, description="OIDC client secret (confidential clients).")
    oidc_redirect_uri: str | None = Field(
        None, description="OIDC redirect URI; unset: this server's /api/v1/auth/oidc/callback."
    )
    oidc_scopes: str = Field("openid profile email phone", description="Space-separated scopes OIDC sign-on asks for.")
    oidc_username_claim: str = Field(
        "preferred_username", description="Identity-provider claim matched against cityhub usernames."
    )
    oidc_allow_citizen_signup: bool = Field(
        False,
        description="Create a citizen account on first sign-on of an unknown user; accounts are otherwise matched "
        "to existing users only (staff are never created).",
    )
    oidc_after_login: str = Field("/", description="Path the browser is sent to after OIDC sign-on.")

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
