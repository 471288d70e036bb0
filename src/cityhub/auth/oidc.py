"""OIDC single sign-on with Authlib's Starlette client.

The provider is configured by ``CITYHUB_OIDC_ISSUER`` (discovery at ``<issuer>/.well-known/openid-configuration``),
``CITYHUB_OIDC_CLIENT_ID`` / ``_CLIENT_SECRET`` and optionally ``_REDIRECT_URI``. The authorization-code flow uses
PKCE and a nonce; its short-lived state (state, nonce, code verifier) travels in a cookie signed with
``settings.secret_key`` (itsdangerous), so the app needs no session middleware and any process can finish a flow
another one started. An account is bound to the provider's issuer and the person's subject
(``users.sso_identity``) at its first sign-on, where it is found by a claim (``preferred_username`` by default);
later sign-ons find it by that binding alone, so a person renamed at the provider cannot take another's account.
Only citizens can be created on first sign-on, and only when ``CITYHUB_OIDC_ALLOW_CITIZEN_SIGNUP`` is on.
"""

from __future__ import annotations

import warnings
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.auth.errors import AccountLocked, Unauthenticated
from cityhub.auth.service import bind_sso, is_locked
from cityhub.auth.settings import AuthSettings, get_auth_settings
from cityhub.config import get_settings
from cityhub.errors import NotFound, PermissionDenied
from cityhub.org import service as org
from cityhub.org.models import Role, User
from cityhub.org.schemas import USERNAME_PATTERN, UserCreate

with warnings.catch_warnings():
    # Authlib announces a move from httpx to "httpx2"; the httpx it falls back to is what the project ships.
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError

from joserfc.errors import JoseError

# What a failed exchange with the provider raises: its error answer, an ID token that does not verify or lacks a
# required claim (Authlib checks it with joserfc), the network.
SIGN_ON_ERRORS = (OAuthError, JoseError, OSError)

CLIENT_NAME = "cityhub"
STATE_COOKIE = "cityhub_oidc"
STATE_MAX_AGE = 600

__all__ = [
    "SIGN_ON_ERRORS",
    "STATE_COOKIE",
    "STATE_MAX_AGE",
    "OAuthError",
    "client",
    "dump_state",
    "load_state",
    "match_user",
]

_registry: tuple[tuple[str, ...], Any] | None = None


def client() -> Any:
    """The Authlib client of the configured provider (rebuilt when the settings change)."""
    global _registry
    s = get_auth_settings()
    if not s.oidc_enabled:
        raise NotFound("single sign-on is not configured")
    assert s.oidc_issuer is not None and s.oidc_client_id is not None
    key = (s.oidc_issuer, s.oidc_client_id, s.oidc_client_secret or "", s.oidc_scopes)
    if _registry is None or _registry[0] != key:
        oauth = OAuth()
        oauth.register(
            CLIENT_NAME,
            client_id=s.oidc_client_id,
            client_secret=s.oidc_client_secret,
            server_metadata_url=s.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": s.oidc_scopes, "code_challenge_method": "S256"},
        )
        _registry = (key, oauth.create_client(CLIENT_NAME))
    return _registry[1]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt="cityhub-oidc-state")


def dump_state(data: dict[str, Any]) -> str:
    return _serializer().dumps(data)


def load_state(value: str | None) -> dict[str, Any]:
    """The flow state from the signed cookie; empty (so the flow fails cleanly) if absent, forged or stale."""
    if not value:
        return {}
    try:
        data = _serializer().loads(value, max_age=STATE_MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def identity_of(claims: dict[str, Any], settings: AuthSettings) -> str:
    """The stable identity of a signed-in person: the provider's issuer and the subject it gives them (``<iss>
    <sub>``), which the provider never reassigns — unlike a username the person may be able to change."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 255:
        raise Unauthenticated("the identity provider sent no usable 'sub' claim")
    issuer = claims.get("iss") if isinstance(claims.get("iss"), str) else settings.oidc_issuer
    return f"{(issuer or '').rstrip('/')} {subject}"[:400]


def match_user(session: Session, *, claims: dict[str, Any], settings: AuthSettings | None = None) -> User:
    """The account for a signed-in identity: the one bound to it (:func:`identity_of`), else the account named by the
    username claim, bound to it now unless it is bound to another identity already; a citizen account is created only
    if the settings allow it."""
    s = settings or get_auth_settings()
    identity = identity_of(claims, s)
    user = session.scalar(select(User).where(User.sso_identity == identity))
    if user is not None:
        return _usable(user)
    username = claims.get(s.oidc_username_claim)
    if not isinstance(username, str) or not USERNAME_PATTERN.match(username):
        raise Unauthenticated(f"the identity provider sent no usable '{s.oidc_username_claim}' claim")
    user = org.get_user_by_username(session, username=username)
    if user is not None and user.sso_identity is not None:
        # Another person of the provider now goes by this username (a rename): not this account's owner.
        raise PermissionDenied(f"account '{username}' is bound to another sign-on identity; ask an administrator")
    if user is None:
        if not s.oidc_allow_citizen_signup:
            raise PermissionDenied(f"no cityhub account for '{username}'; ask an administrator")
        name = claims.get("name") or username
        phone = claims.get("phone_number")
        user = org.create_user(
            session,
            data=UserCreate(
                username=username,
                full_name=str(name)[:80],
                role=Role.CITIZEN,
                phone=str(phone)[:32] if phone else None,
                email=str(claims["email"])[:120] if claims.get("email") else None,
            ),
        )
    _usable(user)
    bind_sso(session, user=user, identity=identity)
    return user


def _usable(user: User) -> User:
    if not user.active:
        raise PermissionDenied(f"account '{user.username}' is disabled")
    if is_locked(user):
        raise AccountLocked("account locked; try again later")
    return user
