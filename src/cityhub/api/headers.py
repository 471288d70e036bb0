"""Security headers on every HTTP answer: no framing (clickjacking), no content sniffing, no cross-site referrer.

Pure ASGI middleware, the outermost of the app, so pages, API answers, static files, error pages and the admission
gate's refusals all carry them. A header an answer already sets is kept, except the Content-Security-Policy, to
which ``frame-ancestors 'none'`` is added when it lacks that directive.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS = b"frame-ancestors 'none'"
# Set when the answer has no such header of its own.
DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),  # browsers without CSP frame-ancestors
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
_CSP = b"content-security-policy"


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` (raw ASGI pairs) with the security headers added."""
    names = {name.lower() for name, _ in headers}
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() == _CSP and b"frame-ancestors" not in value.lower():
            value = value.rstrip(b"; ") + b"; " + FRAME_ANCESTORS if value.strip() else FRAME_ANCESTORS
        out.append((name, value))
    if _CSP not in names:
        out.append((_CSP, FRAME_ANCESTORS))
    out.extend((name, value) for name, value in DEFAULTS if name not in names)
    return out


class SecurityHeaders:
    """Adds the security headers to the start of every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_security_headers(list(message.get("headers", ())))}
            await send(message)

        await self.app(scope, receive, send_with_headers)
