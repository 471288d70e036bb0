"""Annotated dependencies of the HTTP layer: a database session per request, the caller, pagination.

The caller authenticates with ``Authorization: Bearer <personal API token>`` or with the session cookie set by
``POST /api/v1/auth/login``. Cookie-authenticated unsafe methods must echo the session's CSRF token in the
``X-CSRF-Token`` header (double submit: the token is also in the readable ``cityhub_csrf`` cookie); bearer
requests need no CSRF token, since browsers never attach them on their own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityhub.auth import permissions
from cityhub.auth import service as auth
from cityhub.auth.errors import CsrfFailed, Unauthenticated
from cityhub.auth.principal import Principal
from cityhub.auth.settings import get_auth_settings
from cityhub.db import session_factory
from cityhub.errors import Conflict, PermissionDenied
from cityhub.workorders.service import Actor

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


def get_db() -> Iterator[Session]:
    """One session and transaction per request: committed on success, rolled back on any error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except StaleDataError:
        session.rollback()
        raise Conflict("the order was changed by someone else at the same time; reload and try again") from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a 2xx means the change is durable.
DbSession = Annotated[Session, Depends(get_db, scope="function")]


def get_principal(request: Request, db: DbSession) -> Principal:
    """The authenticated caller, or 401 in the one error body."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthenticated("unsupported Authorization header; use 'Bearer <token>'")
        return auth.authenticate_token(db, token=credentials.strip())
    cookie = request.cookies.get(get_auth_settings().session_cookie_name)
    if not cookie:
        raise Unauthenticated("authentication required: log in or send an API token")
    principal = auth.authenticate_session(db, token=cookie)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not (principal.csrf_token and sent and secrets.compare_digest(sent, principal.csrf_token)):
            raise CsrfFailed(f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_actor(principal: CurrentPrincipal) -> Actor:
    """The acting person as the services record it: user id, name, unit and role."""
    return principal.actor


CurrentActor = Annotated[Actor, Depends(get_actor)]


def require(permission: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through only callers whose role holds ``permission`` (else 403)."""

    def check(principal: CurrentPrincipal) -> Principal:
        if not permissions.allows(principal.role, permission):
            raise PermissionDenied(f"role {principal.role.value} may not do this", details={"permission": permission})
        return principal

    return check


class Page:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


Paging = Annotated[Page, Depends()]
