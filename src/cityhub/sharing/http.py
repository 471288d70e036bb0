"""HTTP glue of API clients: key authentication with rate limit, and per-client call statistics per route.

Both the data-sharing API and Open311 routes use :class:`MeteredRoute`: after each call of an identified client
it adds one to that client's counter of the day and route (and to its error count when the status is >= 400).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cityhub.api.credentials import API_KEY, BEARER, takes
from cityhub.db import rollback_after, session_factory, session_scope
from cityhub.errors import CityhubError, PermissionDenied
from cityhub.sharing import service
from cityhub.sharing.service import Caller, RateLimited

log = logging.getLogger(__name__)

CALLER_STATE = "api_caller"


def authorize(request: Request, *, raw_key: str | None, scope: str | None) -> Caller:
    """Authenticate the key, count the call against its rate limit and check the scope.

    The rate counter is committed in its own short transaction before the request's work starts, so a call
    that is refused or fails still counts, and every server process sees the same counter.
    """
    if not raw_key and scope != "admin" and request.headers.get("authorization", "").lower().startswith("bearer "):
        raise PermissionDenied(
            "an API key is required (api_key parameter or X-API-Key header): this route does not take a personal API "
            "token (Authorization: Bearer); an administrator issues keys with `cityhub apikey create` or on 数据共享"
        )
    with session_scope() as session:
        caller = service.authenticate(session, raw_key=raw_key)
        request.state.api_caller = caller  # counted in the statistics even when refused below
        retry_after = service.hit_rate_limit(session, caller=caller)
    if retry_after is not None:
        raise RateLimited(limit=caller.rate_limit, retry_after=retry_after)
    if scope is not None:
        service.require_scope(caller, scope)
    return caller


def person_is_admin(request: Request) -> bool:
    """True when the request carries a person's credential (a bearer token or a browser session) whose role may
    manage the API clients (``apiclients:manage``): such a person reads every client's statistics without a key."""
    from cityhub.auth import permissions
    from cityhub.auth import service as auth
    from cityhub.auth.errors import Unauthenticated
    from cityhub.auth.settings import get_auth_settings

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    cookie = request.cookies.get(get_auth_settings().session_cookie_name)
    if not (scheme.lower() == "bearer" and token.strip()) and not cookie:
        return False
    try:
        with session_scope() as session:
            if scheme.lower() == "bearer" and token.strip():
                principal = auth.authenticate_token(session, token=token.strip())
            else:
                principal = auth.authenticate_session(session, token=cookie or "")
    except Unauthenticated:
        return False
    return permissions.allows(principal.role, permissions.API_CLIENTS_MANAGE)


def status_of(exc: BaseException) -> int:
    if isinstance(exc, CityhubError):
        return exc.http_status
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    return 500


def _record(request: Request, endpoint: str, status: int) -> None:
    caller: Caller | None = getattr(request.state, CALLER_STATE, None)
    if caller is None:
        return
    try:
        with session_scope() as session:
            service.record_call(session, client_id=caller.client_id, endpoint=endpoint, error=status >= 400)
    except Exception:  # statistics must never turn a served answer into an error
        log.exception("could not record an API call of client %s", caller.client_name)


class MeteredRoute(APIRoute):
    """A route that counts identified clients' calls; subclasses may render errors in their own format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        methods = "/".join(sorted(self.methods or ()))

        async def handler(request: Request) -> Response:
            endpoint = f"{methods} {self.full_path(request)}"
            try:
                response = await original(request)
                session: Session | None = getattr(request.state, "db", None)
                if session is not None:
                    # Commit before answering: a client that reads right after a 201 must see the new rows.
                    await run_in_threadpool(session.commit)
            except Exception as exc:
                session = getattr(request.state, "db", None)
                if session is not None:
                    await run_in_threadpool(session.rollback)
                await run_in_threadpool(_record, request, endpoint, status_of(exc))
                rendered = self.render_error(request, exc)
                if rendered is None:
                    raise
                return rendered
            await run_in_threadpool(_record, request, endpoint, response.status_code)
            return response

        return handler

    def full_path(self, request: Request) -> str:
        """The route's path template with the prefixes of the routers it was included in."""
        # An included route may keep its own, un-prefixed path: take the prefix from the URL instead.
        try:
            concrete = self.path_format.format(**request.path_params)
        except (KeyError, IndexError, ValueError):
            return self.path
        url_path = request.url.path
        return url_path[: -len(concrete)] + self.path if url_path.endswith(concrete) else self.path

    def render_error(self, request: Request, exc: Exception) -> Response | None:
        """The error answer for ``exc``, or None to leave it to the application's handlers (a rate limit's 429
        with its Retry-After too: ``CityhubError.http_headers``)."""
        del request, exc
        return None


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, committed by :class:`MeteredRoute` before the answer is sent."""
    session = session_factory()()
    request.state.db = session
    try:
        yield session
        session.commit()
    except BaseException as exc:
        rollback_after(session, exc)
        raise
    finally:
        session.close()


MeteredDb = Annotated[Session, Depends(get_session)]


def require_key(scope: str) -> Callable[..., Caller]:
    """Dependency: the client of the ``X-API-Key`` header (or ``api_key`` query parameter) holding ``scope``."""

    @takes(API_KEY)
    def dependency(
        request: Request,
        x_api_key: Annotated[str | None, Header(description="API key of the client")] = None,
        api_key: Annotated[str | None, Query(description="API key, when a header cannot be sent")] = None,
    ) -> Caller:
        return authorize(request, raw_key=x_api_key or api_key, scope=scope)

    return dependency


@takes(BEARER, API_KEY)
def require_admin(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="API key with the admin scope")] = None,
    api_key: Annotated[str | None, Query(description="API key, when a header cannot be sent")] = None,
) -> Caller | None:
    """Dependency: an admin person (identity layer hook) or a client key with the ``admin`` scope."""
    if person_is_admin(request):
        return None
    return authorize(request, raw_key=x_api_key or api_key, scope="admin")


SharingReader = Annotated[Caller, Depends(require_key("sharing:read"))]
StatsReader = Annotated[Caller | None, Depends(require_admin)]
