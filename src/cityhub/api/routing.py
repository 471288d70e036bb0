"""The application's routes as FastAPI itself walks them: with each route's whole path and its routers'
dependencies. FastAPI keeps an included router's routes under their own path (``/orders/{order_id}``, the API's and
the web UI's alike) and finds the prefix (``/api/v1``) by walking the nested routers when it writes its OpenAPI
description (``fastapi.routing.iter_route_contexts``); what cityhub derives from its routes walks them the same way —
the credentials each operation declares (:mod:`cityhub.api.credentials`), the route templates of the HTTP metrics
(:mod:`cityhub.metrics`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def route_contexts(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route of ``routes`` (an application's) with its whole ``path_format`` and ``dependant`` and, as
    ``original_route``, the route object the router puts on a request's scope; where FastAPI has no such walk (an
    older one copies included routes into the application's with their whole paths), the routes themselves."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return iter(routes)
    return iter_route_contexts(list(routes))
