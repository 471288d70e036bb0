"""HTTP routes of identity: password login/logout, who am I, personal API tokens, OIDC sign-on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import RedirectResponse

from cityhub.api.deps import CurrentPrincipal, DbSession, ListPaging, other_query_parameters, require
from cityhub.auth import oidc, permissions
from cityhub.auth import service as auth
from cityhub.auth.errors import ReauthenticationRequired, Unauthenticated
from cityhub.auth.principal import Principal
from cityhub.auth.schemas import (
    LoginRequest,
    LoginResponse,
    Me,
    PasswordChange,
    PasswordChanged,
    TokenCreate,
    TokenCreated,
    TokenRead,
)
from cityhub.auth.settings import get_auth_settings
from cityhub.org.models import Role, User

router = APIRouter(prefix="/auth", tags=["auth"])

TokenOwner = Annotated[Principal, Depends(require(permissions.TOKENS))]


def _client_ip(request: Request) -> str:
    # Behind a reverse proxy, run uvicorn with --proxy-headers so that this is the real client address.
    return request.client.host if request.client else "unknown"


def _me(principal: Principal) -> Me:
    return Me(
        id=principal.user_id,
        username=principal.username,
        full_name=principal.full_name,
        role=principal.role,
        unit_id=principal.unit_id,
        unit_tier=principal.unit_tier.value if principal.unit_tier else None,
        auth_method=principal.method,
        permissions=permissions.permissions_of(principal.role),
        phone_verified=principal.verified_phone is not None,
    )


def _user_me(user: User, method: str) -> Me:
    return Me(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        unit_id=user.unit_id,
        unit_tier=user.unit.tier.value if user.unit else None,
        auth_method=method,
        permissions=permissions.permissions_of(user.role),
        phone_verified=user.role == Role.CITIZEN and user.verified_phone is not None,
    )


def _set_session_cookies(response: Response, result: auth.LoginResult) -> None:
    s = get_auth_settings()
    max_age = int(s.session_hours * 3600)
    response.set_cookie(
        s.session_cookie_name,
        result.session_token,
        max_age=max_age,
        httponly=True,
        secure=s.session_cookie_secure,
        samesite="lax",
        path="/",
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(
        s.csrf_cookie_name,
        result.csrf_token,
        max_age=max_age,
        httponly=False,
        secure=s.session_cookie_secure,
        samesite="lax",
        path="/",
    )


def _clear_session_cookies(response: Response) -> None:
    s = get_auth_settings()
    for name in (s.session_cookie_name, s.csrf_cookie_name):
        response.delete_cookie(name, path="/", secure=s.session_cookie_secure, samesite="lax")


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, request: Request, response: Response, db: DbSession) -> LoginResponse:
    """Password login: sets the HttpOnly session cookie and returns the CSRF token (429 rate limit, 423 locked)."""
    result = auth.login(
        db,
        username=body.username,
        password=body.password,
        client_ip=_client_ip(request),
        user_agent=request.headers.get("user-agent"),
        replacing=request.cookies.get(get_auth_settings().session_cookie_name),
    )
    _set_session_cookies(response, result)
    return LoginResponse(
        user=_user_me(result.user, "session"), csrf_token=result.csrf_token, expires_at=result.expires_at
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: CurrentPrincipal, db: DbSession) -> Response:
    """End the cookie session (a bearer token is revoked with DELETE /auth/tokens/{id} instead)."""
    if principal.method == "session":
        auth.end_session(db, session_id=principal.credential_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_session_cookies(response)
    return response


@router.get("/me", response_model=Me)
def me(principal: CurrentPrincipal) -> Me:
    return _me(principal)


@router.post("/password", response_model=PasswordChanged)
def change_password(body: PasswordChange, principal: CurrentPrincipal, db: DbSession) -> PasswordChanged:
    """Change one's own password: the current one is required (a wrong one counts towards the account's lockout;
    422 naming ``current_password``), the new one must be strong (422 naming ``password``). The account's other
    browser sessions end; ``revoke_tokens`` also revokes its personal API tokens."""
    done = auth.change_password(
        db,
        principal=principal,
        current=body.current_password,
        new=body.new_password,
        revoke_api_tokens=body.revoke_tokens,
    )
    return PasswordChanged(sessions_ended=done.sessions_ended, tokens_revoked=done.tokens_revoked)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(body: TokenCreate, principal: TokenOwner, db: DbSession) -> TokenCreated:
    """Create a personal API token for `Authorization: Bearer …`; the secret is returned only here.

    From a signed-in session (password or single sign-on) as before. A request authenticated with an API token must
    also give the account's `password` (403 `reauthentication_required` without it; a wrong one is refused naming
    `password` and counts towards the account's lockout): a token that could make tokens would outlive its own
    expiry and any revocation of it, minting its successor before it ends."""
    if principal.method == "token":
        if body.password is None:
            raise ReauthenticationRequired(
                "an API token cannot create API tokens on its own: give the account's password in 'password', or "
                "create the token signed in (the account page)",
                details={"field": "password"},
            )
        auth.confirm_password(db, user_id=principal.user_id, password=body.password, field="password")
    row, secret = auth.create_token(db, user_id=principal.user_id, name=body.name, days=body.days)
    return TokenCreated(**TokenRead.model_validate(row).model_dump(), token=secret)


@router.get("/tokens", response_model=list[TokenRead])
def list_tokens(principal: TokenOwner, db: DbSession, page: ListPaging) -> list[TokenRead]:
    """The caller's API tokens, oldest first (revoked and expired ones too); optionally paged."""
    return [TokenRead.model_validate(t) for t in page.scalars(db, auth.tokens_query(user_id=principal.user_id))]


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: int, principal: TokenOwner, db: DbSession) -> Response:
    auth.revoke_token(db, user_id=principal.user_id, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -------------------------------------------------------------------------------------------- OIDC sign-on


def _state_cookie(response: Response, value: str | None) -> None:
    s = get_auth_settings()
    if value is None:
        response.delete_cookie(oidc.STATE_COOKIE, path="/api/v1/auth/oidc", secure=s.session_cookie_secure)
        return
    response.set_cookie(
        oidc.STATE_COOKIE,
        value,
        max_age=oidc.STATE_MAX_AGE,
        httponly=True,
        secure=s.session_cookie_secure,
        samesite="lax",  # the provider's redirect back is a top-level GET, which Lax cookies accompany
        path="/api/v1/auth/oidc",
    )


@router.get("/oidc/login", response_class=RedirectResponse, status_code=status.HTTP_302_FOUND)
async def oidc_login(request: Request) -> Response:
    """Start single sign-on: redirect to the identity provider (404 when SSO is not configured)."""
    provider = oidc.client()
    redirect_uri = get_auth_settings().oidc_redirect_uri or str(request.url_for("oidc_callback"))
    request.scope["session"] = {}
    try:
        response: Response = await provider.authorize_redirect(request, redirect_uri)
    except (oidc.OAuthError, OSError) as exc:
        raise Unauthenticated(f"identity provider unavailable: {exc}") from None
    _state_cookie(response, oidc.dump_state(request.scope["session"]))
    return response


# The identity provider's redirect carries what it chooses (code, state, iss, session_state, error, …), read by
# authlib from the request: no parameter of it is refused.
@router.get("/oidc/callback", name="oidc_callback", dependencies=[Depends(other_query_parameters)])
async def oidc_callback(request: Request, db: DbSession) -> Response:
    """Finish single sign-on: exchange the code, verify the ID token, open a session, go to the app."""
    provider = oidc.client()
    request.scope["session"] = oidc.load_state(request.cookies.get(oidc.STATE_COOKIE))
    try:
        token = await provider.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        if not claims:
            claims = dict(await provider.userinfo(token=token))
    except oidc.SIGN_ON_ERRORS as exc:
        raise Unauthenticated(f"single sign-on failed: {exc}") from None
    user = oidc.match_user(db, claims=claims)
    result = auth.open_session(
        db,
        user=user,
        method="oidc",
        client_ip=_client_ip(request),
        user_agent=request.headers.get("user-agent"),
        replacing=request.cookies.get(get_auth_settings().session_cookie_name),
    )
    response = RedirectResponse(get_auth_settings().oidc_after_login, status_code=status.HTTP_303_SEE_OTHER)
    _set_session_cookies(response, result)
    _state_cookie(response, None)
    return response
