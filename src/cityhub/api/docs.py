"""The API's interactive documentation at ``/docs``: Swagger UI from npm (``swagger-ui-dist``, copied into
``static/vendor/swagger-ui/`` at set-up by :mod:`cityhub.web.vendor`), never from a CDN.

FastAPI's own ``/docs`` and ``/redoc`` pages load their scripts, styles and fonts from public CDNs and start Swagger
UI with an inline script; both are switched off in ``main.create_app``. This page loads the vendored files and its
starter (``static/api-docs.js``) from the server itself, so it works with no network and under the
``script-src 'self'`` content security policy (:mod:`cityhub.api.headers`). Without the vendor files (set-up not
run) it says where the OpenAPI description is instead.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cityhub.web import theme, vendor

router = APIRouter(include_in_schema=False)

SWAGGER_FILES = ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css")


def _html_tag(chosen: str) -> str:
    """<html> in the web UI's theme (``web.theme``): the user's choice written by the server — ``dark-mode`` is
    Swagger UI's own dark stylesheet's class — none for the system's, which ``static/api-docs.js`` follows."""
    if chosen == "dark":
        return '<html lang="en" data-theme="dark" class="dark-mode">'
    if chosen == "light":
        return '<html lang="en" data-theme="light">'
    return '<html lang="en">'


def page(title: str, openapi_url: str, *, chosen: str = theme.SYSTEM) -> str:
    """The HTML of the documentation page in the theme ``chosen`` (the degraded form when the vendor files are
    missing)."""
    title, url = escape(title), escape(openapi_url)
    # The browser's own colours (the degraded page, scroll bars, form controls) follow the theme too.
    scheme = theme.color_scheme(chosen)
    head = (
        f'<!DOCTYPE html>{_html_tag(chosen)}<head><meta charset="utf-8"><meta name="color-scheme" content="{scheme}">'
    )
    present = vendor.available()
    if not all(present.get(name) for name in SWAGGER_FILES):
        return (
            f"{head}<title>{title} API</title></head><body>"
            f"<h1>{title} API</h1><p>The interactive documentation is not installed on this server (run "
            f"<code>make install</code>, which copies Swagger UI from npm). The OpenAPI description is at "
            f'<a href="{url}">{url}</a>.</p></body></html>'
        )
    return (
        f"{head}"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} API</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">'
        # In the head, so the system's dark theme is in place before the first paint; it starts Swagger UI once
        # the page (and the bundle below) is read.
        '<script src="/static/api-docs.js"></script></head><body>'
        f'<div id="swagger-ui" data-openapi-url="{url}"></div>'
        '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script></body></html>'
    )


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    from cityhub import __version__

    chosen = theme.chosen(request.cookies.get(theme.THEME_COOKIE))
    return HTMLResponse(page(f"cityhub {__version__}", "/openapi.json", chosen=chosen))


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    """Browsers ask for /favicon.ico on answers that name no icon (JSON opened in a tab): the web UI's icon."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


# --- the errors, as /openapi.json describes them -------------------------------------------------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "The one error body of /api/v1 (main._error): every 4xx and 5xx answer has it.",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {
            "type": "string",
            "description": "stable machine-readable kind: validation_failed, unreadable_file, unauthenticated, "
            "invalid_credentials, key_expired, csrf_failed, permission_denied, reauthentication_required, "
            "not_found, conflict, invalid_transition, account_locked, too_many_attempts, rate_limited, "
            "http_error, overloaded, storage_unavailable, internal_error",
        },
        "message": {"type": "string", "description": "what is wrong, naming the field or the thing"},
        "details": {
            "type": "object",
            "additionalProperties": True,
            "description": "validation_failed: `errors` (every field refused by the request's schema) or `field` "
            "(the one a rule refused); others as the code says (`permission`, `retry_after`, `expired_at`, …)",
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string", "description": "`title`, `items.0.unit_id`, `query.limit`"},
                            "message": {"type": "string"},
                        },
                    },
                },
                "field": {"type": "string"},
            },
        },
    },
}
OPEN311_ERRORS_SCHEMA: dict[str, Any] = {
    "title": "Open311Errors",
    "type": "array",
    "description": "GeoReport v2's error list (the XML format: <errors><error><code/><description/></error></errors>)",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema}}}}


def describe_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (FastAPI's OpenAPI description, changed in place) with the errors cityhub answers: FastAPI describes
    every 422 as its own ``HTTPValidationError`` (``{"detail": [{"loc", "msg", "type"}]}``), a body no route of
    cityhub gives, and no other refusal. /api/v1's operations answer :data:`ERROR_SCHEMA` for a 422 and any other
    4xx, and 503 when the server is overloaded; Open311's its own error list, as 400, 403 or 404."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    schemas["Open311Errors"] = OPEN311_ERRORS_SCHEMA
    error, open311 = "#/components/schemas/Error", "#/components/schemas/Open311Errors"
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path.startswith("/open311/"):
                responses["4XX"] = _answer("refused: 400 bad input, 403 no or a wrong API key, 404 unknown", open311)
                continue
            if not path.startswith("/api/"):
                continue
            responses["422"] = _answer(
                "validation failed (code validation_failed): `details.errors` names each field, or `details.field` "
                "the one refused",
                error,
            )
            responses["4XX"] = _answer(
                "refused: 401 unauthenticated, 403 permission_denied, 404 not_found (naming the thing), "
                "409 conflict or invalid_transition, 423 account_locked, 429 too_many_attempts or rate_limited",
                error,
            )
            responses["503"] = _answer("overloaded: nothing ran; retry after `Retry-After` seconds", error)
    return spec
