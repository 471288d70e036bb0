"""Security headers on every HTTP answer: no framing (clickjacking), no content sniffing, no cross-site referrer,
and a content security policy that lets a page run only the server's own scripts.

Pure ASGI middleware, the outermost of the app, so pages, API answers, static files, error pages and the admission
gate's refusals all carry them. A header an answer already sets is kept, except the Content-Security-Policy, to
which ``frame-ancestors 'none'`` is added when it lacks that directive.

The policy (:data:`POLICY`): scripts, styles, fonts, images and requests from the server itself only — the web UI's
scripts are files under ``/static/`` (its own and the npm ones copied at set-up), no page has an inline script or
event handler, so an injected ``<script>`` or ``onerror=`` does not run. Inline *styles* stay allowed: Leaflet and
htmx position and show elements through style attributes. ``data:`` images are pico's and Leaflet's icons.

An answer to a request that came over HTTPS (uvicorn reads the scheme from ``X-Forwarded-Proto`` of a proxy in
``FORWARDED_ALLOW_IPS``) also carries ``Strict-Transport-Security`` (:data:`HSTS`, a year): a browser that has seen
the site once never again sends its session cookie's first request over plain HTTP, where it could be redirected or
read. Answers over plain HTTP (a localhost demo) do not: there the header would mean nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS = b"frame-ancestors 'none'"
POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    b"font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    + FRAME_ANCESTORS
)
# Set when the answer has no such header of its own.
DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),  # browsers without CSP frame-ancestors
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
_CSP = b"content-security-policy"
_HSTS = b"strict-transport-security"
HSTS = b"max-age=31536000"


def with_security_headers(headers: list[tuple[bytes, bytes]], *, https: bool = False) -> list[tuple[bytes, bytes]]:
    """``headers`` (raw ASGI pairs) with the security headers added (``https``: the request came over HTTPS)."""
    names = {name.lower() for name, _ in headers}
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() == _CSP and b"frame-ancestors" not in value.lower():
            value = value.rstrip(b"; ") + b"; " + FRAME_ANCESTORS if value.strip() else FRAME_ANCESTORS
        out.append((name, value))
    if _CSP not in names:
        out.append((_CSP, POLICY))
    out.extend((name, value) for name, value in DEFAULTS if name not in names)
    if https and _HSTS not in names:
        out.append((_HSTS, HSTS))
    return out


class SecurityHeaders:
    """Adds the security headers to the start of every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_security_headers(list(message.get("headers", ())), https=https)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
