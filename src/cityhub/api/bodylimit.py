"""How much of a request's body cityhub reads: the API's cap, and the capped reading the forms share.

FastAPI reads a route's JSON body whole before any dependency runs, so the API's cap cannot be a dependency: it is a
pure ASGI middleware (:class:`BodyLimit`) in front of the app. For an ``/api/v1`` request that is not a
``multipart/form-data`` upload (an import's file streams to disk, under limits of its own) it lets at most
``CITYHUB_HTTP_MAX_BODY_MB`` through: a body declared larger (``Content-Length``) is not read at all, one sent in
chunks is read to one byte past the cap. Past it the app is given an empty body and the request is marked
(:func:`too_large`): the router's checks answer ``413 payload_too_large`` once the caller's credential and role have
answered (:func:`cityhub.api.deps.checked_request`), as for every other problem of a request, and the answer closes
the connection (the rest of the body is never read). A body within the cap is passed on untouched (one sent in chunks
is read, then handed on whole).

The web pages' forms and Open311's POST read their bodies themselves, through :func:`read_capped`, with their own
smaller caps (a form's text is a few KiB; files come as multipart uploads).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhub.errors import PayloadTooLarge

# The scope key marking a request whose body went past the cap: the cap, in bytes.
_TOO_LARGE = "cityhub.body_too_large"
_MiB = 1024 * 1024


class BodyLimit:
    """Caps the body of the requests ``limit_of(path)`` gives a cap for (bytes; None: not capped here)."""

    def __init__(self, app: ASGIApp, limit_of: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_of(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None or _content_type(scope) == b"multipart/form-data":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared <= limit:
            await self.app(scope, receive, send)  # the server reads no more than it declared
            return
        if declared is None and _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)  # neither: no body (a GET, most often)
            return
        body = b"" if declared is not None else await _read_up_to(receive, limit)
        if body is None or declared is not None:
            scope[_TOO_LARGE] = limit
            body = b""
            send = _closing(send)
        await self.app(scope, _replay(body, receive), send)


def too_large(request: Request) -> None:
    """Raise :class:`PayloadTooLarge` when :class:`BodyLimit` cut this request's body (the router's checks call it)."""
    limit = request.scope.get(_TOO_LARGE)
    if limit is not None:
        size = f"{limit // _MiB} MiB" if limit % _MiB == 0 else f"{limit} bytes"
        raise PayloadTooLarge(
            f"the body is larger than {size} (CITYHUB_HTTP_MAX_BODY_MB); send fewer items per request",
            details={"limit_bytes": limit},
        )


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The request's body read up to ``limit`` bytes; None past it (the rest is not read into memory). Kept as
    Starlette's ``Request.body()`` keeps it, so a later reading of the same request gets it again."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    request._body = body = b"".join(chunks)  # what Request.body() sets and Request.stream() replays
    return body


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _content_type(scope: Scope) -> bytes:
    return (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


async def _read_up_to(receive: Receive, limit: int) -> bytes | None:
    """A chunked body, read until it ends or goes past ``limit`` (None then)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away: the app finds out on its next receive
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives ``body`` whole first, then waits for the client to go away (any further body is not
    passed on)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message

    return replay


def _closing(send: Send) -> Send:
    """A send whose answer closes the connection: the unread rest of the body must not be read as the next request."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return closing
