"""Annotated dependencies of the HTTP layer: a database session per request, the caller, pagination.

The caller authenticates with ``Authorization: Bearer <personal API token>`` or with the session cookie set by
``POST /api/v1/auth/login``. Cookie-authenticated unsafe methods must echo the session's CSRF token in the
``X-CSRF-Token`` header (double submit: the token is also in the readable ``cityhub_csrf`` cookie); bearer
requests need no CSRF token, since browsers never attach them on their own.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Annotated, Any, TypeVar, TypeVarTuple, get_args, get_origin

import anyio
from fastapi import Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import solve_dependencies
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool

from cityhub.api.bodylimit import too_large
from cityhub.api.credentials import BEARER, takes
from cityhub.auth import csrf, permissions
from cityhub.auth import service as auth
from cityhub.auth.errors import CsrfFailed, Unauthenticated
from cityhub.auth.principal import Principal
from cityhub.auth.settings import get_auth_settings
from cityhub.db import MAX_BIG_ID, MAX_ID, rollback_after, session_factory, session_scope
from cityhub.errors import CityhubError, Conflict, NotFound, PermissionDenied, ValidationFailed, text_problem
from cityhub.sharing.service import KEY_PREFIX, RateLimited
from cityhub.workorders.service import Actor

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _finish(session: Session) -> None:
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        raise Conflict("the order was changed by someone else at the same time; reload and try again") from None
    except BaseException as exc:
        rollback_after(session, exc)
        raise
    finally:
        session.close()


def _abandon(session: Session, error: BaseException) -> None:
    try:
        rollback_after(session, error)
    finally:
        session.close()


async def get_db() -> AsyncIterator[Session]:
    """One session and transaction per request: committed on success, rolled back on any error.

    Only the steps that touch the database run in a worker thread. Creating the session takes no connection, and a
    route that has committed its own work (in the thread that wrote it, so that no lock is held while the request
    waits for another thread) leaves nothing to finish, so its session closes here without a thread.
    """
    session = session_factory()()
    try:
        yield session
    except BaseException as exc:
        # Shielded: a request cancelled by a client that went away must still end its transaction and give back
        # the connection (and, on SQLite, the write lock) at once.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_abandon, session, exc)
        if isinstance(exc, StaleDataError):
            raise Conflict("the order was changed by someone else at the same time; reload and try again") from None
        raise
    if session.in_transaction():
        await run_in_threadpool(_finish, session)
    else:
        session.close()


# scope="function": commit before the response is sent, so a 2xx means the change is durable.
DbSession = Annotated[Session, Depends(get_db, scope="function")]


# Where an API key goes instead: said to a client that sends one where a person's credential is needed.
KEY_ROUTES = "API keys (X-API-Key) are for the data-sharing API, Open311 and the sensor readings only"


def missing_credential(request: Request, *, takes: str = "") -> Unauthenticated:
    """The 401 of a request carrying no person's credential, saying what the route takes (``takes``: what else it
    does, such as an API key) — and, to a client that sent an API key the route does not take, that it does not."""
    wanted = f"a personal API token (Authorization: Bearer {auth.TOKEN_PREFIX}…) or a signed-in session{takes}"
    if not takes and (request.headers.get("x-api-key") or request.query_params.get("api_key")):
        return Unauthenticated(
            f"authentication required: this route does not take an API key; send {wanted}. {KEY_ROUTES}"
        )
    return Unauthenticated(f"authentication required: send {wanted}")


@takes(BEARER)
async def get_principal(request: Request, db: DbSession) -> Principal:
    """The authenticated caller, or 401 in the one error body.

    An API token verified a moment ago is let through here, on the event loop (:class:`auth.service.RecentTokens`);
    otherwise the credential is read in a worker thread, on the request's session.
    """
    header = request.headers.get("authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthenticated("unsupported Authorization header; use 'Bearer <token>'")
        token = credentials.strip()
        if token.startswith(KEY_PREFIX):
            raise Unauthenticated(
                f"the bearer token is an API key ({KEY_PREFIX}…), which this route does not take: it takes a personal "
                f"API token ({auth.TOKEN_PREFIX}…, POST /api/v1/auth/tokens); {KEY_ROUTES}"
            )
        known = auth.recent_token_owner(token)
        principal = known if known is not None else await run_in_threadpool(auth.authenticate_token, db, token=token)
        await _count_token_call(request, principal)
        return principal
    cookie = request.cookies.get(get_auth_settings().session_cookie_name)
    if not cookie:
        raise missing_credential(request)
    principal = await run_in_threadpool(auth.authenticate_session, db, token=cookie)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not csrf.matches(sent, principal.csrf_token):
            raise CsrfFailed(f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request")
    return principal


def _token_calls(token_id: int, limit: int) -> int | None:
    with session_scope() as session:
        return auth.hit_token_rate_limit(session, token_id=token_id, limit=limit)


async def _count_token_call(request: Request, principal: Principal) -> None:
    """Count the call against the personal token's calls per minute (``CITYHUB_API_TOKEN_RATE_LIMIT``; 0: none) and
    refuse it past them, 429 with Retry-After — as an API key's (``sharing.http.authorize``): in a short transaction
    of its own, committed before the request's work, so that a call refused or failed counts too and every server
    process sees the count. Once per request, whoever asks for the caller again (``access_answers_first``)."""
    limit = get_auth_settings().api_token_rate_limit
    if limit <= 0 or getattr(request.state, "token_call_counted", False):
        return
    request.state.token_call_counted = True
    retry_after = await run_in_threadpool(_token_calls, principal.credential_id, limit)
    if retry_after is not None:
        raise RateLimited(limit=limit, retry_after=retry_after, of=" of this personal API token")


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as JSON, serialised here, in the route's worker thread.

    A sync route that returns a model has FastAPI validate it again in another worker thread; routes on the hot
    path return this instead (their ``response_model`` still documents the body).
    """
    return Response(content=model.model_dump_json(), status_code=status_code, media_type="application/json")


async def get_actor(principal: CurrentPrincipal) -> Actor:
    """The acting person as the services record it: user id, name, unit and role."""
    return principal.actor


CurrentActor = Annotated[Actor, Depends(get_actor)]


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only callers whose role holds ``permission`` (else 403)."""

    async def check(principal: CurrentPrincipal) -> Principal:  # pure: runs on the event loop, no worker thread
        if not permissions.allows(principal.role, permission):
            raise PermissionDenied(f"role {principal.role.value} may not do this", details={"permission": permission})
        return principal

    return check


# --- ids in paths ---------------------------------------------------------------------------------------------

# Each id a path of the API or the web pages carries: what it names (as the routes' own "not found" say it) and the
# largest key of its table.
_PATH_IDS: dict[str, tuple[str, int]] = {
    "order_id": ("order", MAX_BIG_ID),
    "attachment_id": ("attachment", MAX_ID),
    "token_id": ("token", MAX_ID),
    "entry_id": ("knowledge entry", MAX_ID),
    "category_id": ("category", MAX_ID),
    "topic_id": ("hot topic", MAX_ID),
    "unit_id": ("unit", MAX_ID),
    "alias_id": ("place alias", MAX_ID),
    "user_id": ("user", MAX_ID),
    "alarm_id": ("alarm", MAX_ID),
    "client_id": ("API client", MAX_ID),
    "rule_id": ("dispatch rule", MAX_ID),
    "subscription_id": ("subscription", MAX_ID),
    "message_id": ("outbox message", MAX_BIG_ID),
    "exemption_id": ("exemption request", MAX_ID),
    "notice_id": ("notice", MAX_BIG_ID),
}


def _rule_kind(path: str) -> str:
    if "/alarm-rules/" in path or "/monitoring/rules/" in path:
        return "alarm rule"
    return "time-limit rule" if "/sla/" in path else "dispatch rule"


async def known_path_ids(request: Request) -> None:
    """An id in the path beyond what its table's key can hold names nothing: 404 naming the thing, as for any id
    no row has, before any query. One check for every route of the API and the web pages: PostgreSQL refused to
    compare such an id with a 32-bit key (an "integer out of range", answered 422) where SQLite looked and found
    nothing (404), and some routes bounded their ids themselves (422)."""
    for name, raw in request.path_params.items():
        known = _PATH_IDS.get(name)
        if known is None:
            continue
        try:
            value = int(raw)
        except (TypeError, ValueError):
            continue  # not a number: the route's validation names it
        noun, limit = known
        if value <= limit:
            continue
        if name == "rule_id":
            noun = _rule_kind(request.url.path)
        elif name == "attachment_id" and "order_id" in request.path_params:
            raise NotFound(f"attachment {value} of order {request.path_params['order_id']} not found")
        raise NotFound(f"{noun} {value} not found")


# The largest page and offset of every paged route, a *Page body's or a plain array's.
LIMIT_MAX = 500
OFFSET_MAX = 10_000_000


class Page:
    def __init__(self, limit: int = 50, offset: int = 0) -> None:
        self.limit = limit
        self.offset = offset


async def _page(
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX, description="Rows to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


Paging = Annotated[Page, Depends(_page)]


# --- optional paging of the routes that answer a whole list ---------------------------------------------------

TOTAL_COUNT_HEADER = "X-Total-Count"


class ListPage:
    """An optional page of a route whose body is a plain JSON array (categories, rules, an order's trail, …): the
    array stays the body, so a client that sends neither ``limit`` nor ``offset`` gets the whole list as before.
    ``limit`` cuts it (and turns on the links), ``offset`` skips rows. Every answer says the full count in
    ``X-Total-Count``; a page with rows beyond it or before it links them (RFC 8288 ``Link``, rel ``next`` and
    ``prev``: the request's own address with ``limit`` and ``offset`` set, its other parameters kept).

    Applied in SQL to a route's query (:meth:`scalars`, :meth:`rows`: ``LIMIT``/``OFFSET``, and a count only when
    the page does not tell it), or to a list the route computes in Python (:meth:`of`). The query's ``ORDER BY``
    must end on a unique key, so that the pages neither repeat nor skip a row."""

    def __init__(self, request: Request, response: Response, limit: int | None = None, offset: int = 0) -> None:
        self.request = request
        self.response = response
        self.limit = limit
        self.offset = offset

    def scalars(self, db: Session, stmt: Select[T]) -> list[T]:
        """The page of ``stmt``'s first column (ORM objects of ``select(Model)``)."""
        rows = list(db.scalars(self._cut(stmt)))
        self._answer(self._total(db, stmt, len(rows)))
        return rows

    def rows(self, db: Session, stmt: Select[*Ts]) -> list[Row[*Ts]]:
        """The page of ``stmt``'s rows (several columns or models each)."""
        rows = list(db.execute(self._cut(stmt)))
        self._answer(self._total(db, stmt, len(rows)))
        return rows

    def of(self, items: Sequence[T]) -> list[T]:
        """The page of a list computed in Python."""
        stop = None if self.limit is None else self.offset + self.limit
        self._answer(len(items))
        return list(items[self.offset : stop])

    def _cut(self, stmt: Select[*Ts]) -> Select[*Ts]:
        if self.limit is not None:
            stmt = stmt.limit(self.limit)
        return stmt.offset(self.offset) if self.offset else stmt

    def _total(self, db: Session, stmt: Select[*Ts], got: int) -> int:
        if (got and (self.limit is None or got < self.limit)) or (not got and not self.offset):
            return self.offset + got  # the page ends the list: it tells the count
        return int(db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)

    def _answer(self, total: int) -> None:
        self.response.headers[TOTAL_COUNT_HEADER] = str(total)
        if self.limit is None:
            return
        links = []
        if self.offset + self.limit < total:
            links.append((self.offset + self.limit, "next"))
        if self.offset > 0:
            links.append((max(0, self.offset - self.limit), "prev"))
        if links:
            url = self.request.url
            self.response.headers["Link"] = ", ".join(
                f'<{url.include_query_params(limit=self.limit, offset=offset)}>; rel="{rel}"' for offset, rel in links
            )


async def _list_page(
    request: Request,
    response: Response,
    limit: Annotated[
        int | None, Query(ge=1, le=LIMIT_MAX, description="Page size; without it, the whole list.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX, description="Rows to skip.")] = 0,
) -> ListPage:
    return ListPage(request, response, limit, offset)


async def _list_page_of_50(
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX, description="Rows to skip.")] = 0,
) -> ListPage:
    return ListPage(request, response, limit, offset)


# A route answering a plain array: optional ``limit``/``offset``, ``X-Total-Count`` and ``Link`` (:class:`ListPage`).
ListPaging = Annotated[ListPage, Depends(_list_page)]
# The same for a route that always answered a page of 50 by default (``GET /sensors``): it keeps that default.
ListPagingOf50 = Annotated[ListPage, Depends(_list_page_of_50)]


# --- storable text ---------------------------------------------------------------------------------------------


def unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string in the JSON ``value`` (keys included) that cannot be stored: its place, as the validation
    errors name a field (``keywords.0``, ``readings.2.sensor_code``; ``(body)`` for the whole body), and why."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path or "(body)", problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := text_problem(key):
                return (path or "(body)", f"has a key that {problem}")
            if found := unstorable_text(item, f"{path}.{key}" if path else key):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := unstorable_text(item, f"{path}.{index}" if path else str(index)):
                return found
    return None


async def _json_body(request: Request) -> Any:
    """The request's JSON body for the router's checks of it; None when it has none, or is not JSON, or is malformed
    (the route's validation says where). Parsed once: the route's own parsing and the other checks reuse it."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")) or not await request.body():
        return None
    try:
        return await request.json()
    except ValueError:
        return None


async def storable_body(request: Request) -> None:
    """Refuse a JSON body holding text no database stores — NUL, lone surrogates — wherever it is (a keyword in a
    list, a metric's unit in an object, a reading in a batch), 422 naming the field. One check of the API's router
    for every route, so that no field needs a validator of its own, and nothing such reaches a query, a row or the
    answer that would echo it (a 500, which also drops a kept-alive connection)."""
    body = await _json_body(request)
    if found := unstorable_text(body):
        field, problem = found
        raise ValidationFailed(f"{field} {problem}", details={"field": field})


# --- fields a body does not have ----------------------------------------------------------------------------------


def _body_models(annotation: Any) -> list[type[BaseModel]]:
    """The models a body field's annotation holds: itself, of an optional or a union, of a list's items (a dict's
    keys are data, not fields: not looked into)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (dict, Mapping):
        return []
    return [model for arg in get_args(annotation) for model in _body_models(arg)]


def unknown_field(models: list[type[BaseModel]], value: Any, path: str = "") -> str | None:
    """The place (``priorty``, ``items.2.unit``) of the first key of the JSON ``value`` that the model it is sent to
    has no field for, at any depth; None when every key is known (or the model takes any, ``extra="allow"``)."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := unknown_field(models, item, f"{path}.{index}" if path else str(index)):
                return found
        return None
    if not isinstance(value, dict) or len(models) != 1 or models[0].model_config.get("extra") == "allow":
        return None  # one of several models (a union): which one the value is for is the validation's to say
    model = models[0]
    fields = {(field.alias or name): field for name, field in model.model_fields.items()}
    for key, item in value.items():
        place = f"{path}.{key}" if path else key
        field = fields.get(key)
        if field is None:
            return place
        if (inner := _body_models(field.annotation)) and (found := unknown_field(inner, item, place)):
            return found
    return None


def _an_item_alone(models: list[type[BaseModel]], body: Any) -> dict[str, Any] | None:
    """The error for a body that is one of the items its route takes in a list — a reading's fields (some of them)
    sent without ``{"readings": [...]}`` around them, which was refused as ``metric: Extra inputs are not permitted``
    as if the field were misspelt — naming the list's field; None for any other body. A model says which field holds its
    items and what an item's fields are with the class attribute ``items_field``."""
    wrapper = getattr(models[0], "items_field", None) if len(models) == 1 else None
    if not wrapper or not isinstance(body, dict) or not body:
        return None
    name, item_fields = wrapper
    if name in body or not set(body) & set(item_fields):
        return None  # the list is there, or nothing of an item is: a field the route does not take, as anywhere
    said = f'Field required: this body is one item; send the items as a list, {{"{name}": [{{…}}, …]}}'
    return {"type": "missing", "loc": ("body", name), "msg": said}


def _takes_a_list(annotation: Any) -> bool:
    """Whether a body parameter's type is (or may be) a list — ``list[Model]`` — rather than one object."""
    return get_origin(annotation) is list or any(_takes_a_list(arg) for arg in get_args(annotation))


async def known_body_fields(request: Request) -> None:
    """Refuse a JSON body that names a field its route does not take, 422 naming it — as pydantic's own ``extra``
    check words it, so that one form reaches the client — rather than drop it with what it held (``priorty`` for
    ``priority`` changed nothing and answered 200; ``citizen_mobile`` for ``citizen_phone`` lost the number). One
    check of the API's router for every route, whatever each body model says of extra fields (the web pages and
    the command line fill the same models from forms and files, and may carry more)."""
    route = request.scope.get("route")
    params = getattr(getattr(route, "dependant", None), "body_params", None)
    if not params or (body := await _json_body(request)) is None:
        return
    models = [m for param in params for m in _body_models(param.field_info.annotation)]
    if len(params) != 1 or not models:
        return  # several body parameters (embedded) or no model: the route's validation is the check
    if isinstance(body, list) and not _takes_a_list(params[0].field_info.annotation):
        return  # an array where the route takes an object: its validation says so, not "0.sensor_code" unknown
    if unwrapped := _an_item_alone(models, body):
        raise RequestValidationError([unwrapped])
    if found := unknown_field(models, body):
        error = {"type": "extra_forbidden", "loc": ("body", *found.split(".")), "msg": "Extra inputs are not permitted"}
        raise RequestValidationError([error])


# --- query parameters a route does not take -------------------------------------------------------------------


async def other_query_parameters() -> None:
    """Declared (``dependencies=[Depends(other_query_parameters)]``) by a route that reads query parameters beyond
    its signature — the one map's layers hand them to plug-in layers — so that :func:`known_query_params` lets them
    through."""


def _query_names(dependant: Dependant) -> frozenset[str] | None:
    """The names of the query parameters the route and its dependencies declare (a query model's fields
    included); None when the route takes others too (:func:`other_query_parameters`)."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is other_query_parameters:
            return None
        for param in current.query_params:
            annotation = param.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(field.alias or name for name, field in annotation.model_fields.items())
            else:
                names.add(param.alias)
        pending.extend(current.dependencies)
    return frozenset(names)


_QUERY_NAMES: dict[int, tuple[Dependant, frozenset[str] | None]] = {}


async def known_query_params(request: Request) -> None:
    """Refuse a query parameter the route does not take, 422 naming it and the ones it does (``?stat=open`` listed
    every order, as if no filter had been asked for). One check of the API's router for every route, built from each
    route's declared parameters (its dependencies' too: paging's ``limit``/``offset``, an API key's ``api_key``)."""
    dependant: Dependant | None = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _QUERY_NAMES.get(id(dependant))
    if known is None or known[0] is not dependant:
        known = _QUERY_NAMES[id(dependant)] = (dependant, _query_names(dependant))
    names = known[1]
    if names is None:
        return
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in names]
    if unknown:
        takes = f"this route takes {', '.join(sorted(names))}" if names else "this route takes no query parameters"
        said = f"unknown parameter ({takes})"
        raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", q), "msg": said} for q in unknown])


# --- who may call first -----------------------------------------------------------------------------------------


async def access_answers_first(request: Request) -> None:
    """Let the route's own dependencies — the caller's authentication, the permission its route asks for — answer
    a request the router found a problem with, before that problem is answered: an unknown caller gets 401 (a caller
    without the permission 403) whatever their request holds, never a 422 describing the route's body or query.

    Run only once a problem is found (:func:`checked_request`, and the application's answer to a malformed JSON
    body, which FastAPI refuses before any dependency), so it costs an ordinary request nothing. The dependencies
    are solved on a stack of their own, closed here: a session one opened is given back before the problem is
    answered. Their own parameters' errors are left to the problem's answer."""
    route = request.scope.get("route")
    dependant: Dependant | None = getattr(route, "dependant", None)
    if dependant is None:
        return
    gates = [sub for sub in dependant.dependencies if sub.call not in _REQUEST_CHECKS]
    if not gates or not _SOLVER_FITS:
        return
    stacks = ("fastapi_inner_astack", "fastapi_function_astack")
    saved = {key: request.scope.get(key) for key in stacks}
    try:
        async with AsyncExitStack() as stack:
            request.scope.update(dict.fromkeys(stacks, stack))
            await solve_dependencies(
                request=request,
                dependant=Dependant(dependencies=gates, path=dependant.path),
                dependency_overrides_provider=getattr(route, "dependency_overrides_provider", None),
                async_exit_stack=stack,
                embed_body_fields=False,
            )
    finally:
        request.scope.update(saved)


async def checked_request(request: Request) -> None:
    """The API router's checks of every request: a body past the API's cap (413, :mod:`cityhub.api.bodylimit`), an
    id in its path no table can hold (404), a query parameter or a body field the route does not take, text no
    database stores (422) — each answered only after the route's authentication and permission have let the caller
    through (:func:`access_answers_first`)."""
    try:
        too_large(request)
        await known_path_ids(request)
        await known_query_params(request)
        await storable_body(request)
        await known_body_fields(request)
    except (CityhubError, RequestValidationError):
        await access_answers_first(request)
        raise


# solve_dependencies is FastAPI's own, not its documented API: should a release call it otherwise, a problem found is
# answered as before (a 422 ahead of a 401) rather than a 500 — said once in the log at start.
_SOLVER_ARGUMENTS = {"request", "dependant", "dependency_overrides_provider", "async_exit_stack", "embed_body_fields"}
_SOLVER_FITS = set(inspect.signature(solve_dependencies).parameters) >= _SOLVER_ARGUMENTS
if not _SOLVER_FITS:
    log.warning("this FastAPI's solve_dependencies takes other arguments: request checks answer before authentication")
_REQUEST_CHECKS = frozenset({checked_request, known_path_ids, known_query_params, storable_body, known_body_fields})
