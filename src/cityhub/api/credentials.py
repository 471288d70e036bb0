"""Which credential each route takes, as ``/openapi.json`` declares it (``components.securitySchemes`` and each
operation's ``security``), for Swagger UI's Authorize button and generated clients.

The routes authenticate in cityhub's own dependencies — :func:`cityhub.api.deps.get_principal` (a personal API
token, or a signed-in session), the API-key checks of :mod:`cityhub.sharing.http` and Open311 — not through
``fastapi.security``'s classes, whose refusals would be theirs (other statuses, bodies and messages) and which would
run before the router's own checks (:func:`cityhub.api.deps.checked_request`). Each such dependency, or an endpoint
that reads a key itself, says what it takes with :func:`takes`; :func:`describe_security` then names, for every
operation, the schemes of the dependencies its route solves — a route needing none is public and names none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from cityhub.api.routing import route_contexts

BEARER = "bearerToken"
API_KEY = "apiKey"
SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "a personal API token (`chub_…`) of a user account, with the account's role and unit, made "
        "with `POST /api/v1/auth/tokens` from a signed-in session (`POST /api/v1/auth/login`, then its answer's "
        "`csrf_token` as the `X-CSRF-Token` header). A browser signed in to cityhub also sends its session cookie "
        "from here: enough to read, but a change (POST, PUT, PATCH, DELETE) with the cookie alone is refused "
        "(403 `csrf_failed`) — authorize with a token, which is taken before the cookie",
    },
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "an API key (`chk_…`) of an API client, with scopes: `cityhub apikey create` or the 数据共享 "
        "page (the data-sharing API and Open311 also take it as the `api_key` query parameter, Open311's "
        "`POST requests` as its `api_key` form field)",
    },
}

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__cityhub_credentials__"


def takes(*schemes: str, optional: bool = False) -> Callable[[F], F]:
    """Mark a dependency (or an endpoint) as authenticating the caller with one of ``schemes`` (names of
    :data:`SCHEMES`); ``optional``: a caller without one is served too (a key only identifies its client)."""
    unknown = set(schemes) - set(SCHEMES)
    if unknown or not schemes:
        raise ValueError(f"unknown credential schemes {sorted(unknown)} (known: {', '.join(SCHEMES)})")

    def mark(function: F) -> F:
        setattr(function, _MARK, (tuple(schemes), optional))
        return function

    return mark


def _calls(dependant: Any) -> Iterator[Any]:
    """The callables a route solves: its endpoint and every dependency, its routers' included, at any depth."""
    pending = [dependant]
    while pending:
        current = pending.pop()
        yield current.call
        pending.extend(current.dependencies)


def requirement(dependant: Any) -> list[dict[str, list[str]]] | None:
    """The OpenAPI ``security`` of a route: one alternative per scheme its dependencies take (``{}`` among them
    when every one of them is optional); None for a route that takes no credential."""
    schemes: dict[str, None] = {}
    optional = True
    for call in _calls(dependant):
        marked = getattr(call, _MARK, None)
        if marked is None:
            continue
        schemes.update(dict.fromkeys(marked[0]))
        optional = optional and marked[1]
    if not schemes:
        return None
    alternatives: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    return [*alternatives, {}] if optional else alternatives


def describe_security(spec: dict[str, Any], routes: Iterable[Any]) -> dict[str, Any]:
    """``spec`` (FastAPI's OpenAPI description, changed in place) with cityhub's credentials: the schemes in
    ``components.securitySchemes``, and each operation's ``security`` from the route's dependencies
    (:func:`requirement`); a public operation has none."""
    spec.setdefault("components", {})["securitySchemes"] = SCHEMES
    paths = spec.get("paths", {})
    for route in route_contexts(routes):
        dependant = getattr(route, "dependant", None)
        if not getattr(route, "include_in_schema", True):
            continue
        operations = paths.get(getattr(route, "path_format", None) or "")
        if dependant is None or operations is None:
            continue
        security = requirement(dependant)
        for method in getattr(route, "methods", None) or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            if security is None:
                operation.pop("security", None)
            else:
                operation["security"] = security
    return spec
