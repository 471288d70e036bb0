"""A session's CSRF token as pages carry it: masked afresh in every response.

Pages are served compressed (gzip), and a secret that is the same in every compressed response beside text an
attacker can make the page repeat can be guessed from the responses' sizes (BREACH). So a page never carries the
session's token itself: :func:`mask` writes it XOR-ed with a fresh random pad, pad first, and :func:`matches` takes
back either form — the masked one from pages, the plain one that ``POST /api/v1/auth/login`` hands to scripts.
"""

from __future__ import annotations

import base64
import binascii
import secrets


def mask(token: str) -> str:
    """The token XOR-ed with a random pad of its length, the pad in front, URL-safe base64 without padding."""
    raw = token.encode()
    pad = secrets.token_bytes(len(raw))
    return base64.urlsafe_b64encode(pad + bytes(a ^ b for a, b in zip(raw, pad, strict=True))).rstrip(b"=").decode()


def _unmasked(sent: str, length: int) -> bytes | None:
    try:
        blob = base64.urlsafe_b64decode(sent + "=" * (-len(sent) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(blob) != 2 * length:
        return None
    pad, body = blob[:length], blob[length:]
    return bytes(a ^ b for a, b in zip(body, pad, strict=True))


def matches(sent: str | None, expected: str | None) -> bool:
    """Whether ``sent`` is the session's ``expected`` token, plain or masked (constant-time comparisons)."""
    if not sent or not expected:
        return False
    if secrets.compare_digest(sent.encode(), expected.encode()):
        return True
    token = _unmasked(sent, len(expected.encode()))
    return token is not None and secrets.compare_digest(token, expected.encode())
