"""gzip for the answers worth it: Starlette's GZipMiddleware, told which content types are compressed already.

Pages weigh 50–110 KB of HTML (an order page's lists of units and categories) and compress about five-fold; the npm
scripts and styles under /static/ as much. Answers below ``CITYHUB_HTTP_GZIP_MIN_BYTES`` and the types below go as
they are. A secret repeated in every page would leak through compressed sizes (BREACH): the session's CSRF token is
masked per answer (:mod:`cityhub.auth.csrf`), and the login and progress-lookup forms carry a fresh token each time.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

# Formats that are compressed already (a workbook is a zip archive) or gain too little to be worth the time.
ALREADY_COMPRESSED = (
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
)
# Level 6 (zlib's default) compresses an order page within a few per cent of level 9 in a third of the time.
LEVEL = 6


def options(min_bytes: int) -> dict[str, Any]:
    """Starlette's ``GZipMiddleware`` arguments for answers of ``min_bytes`` or more."""
    return {
        "minimum_size": min_bytes,
        "compresslevel": LEVEL,
        "exclude_content_types": DEFAULT_EXCLUDED_CONTENT_TYPES + ALREADY_COMPRESSED,
    }
