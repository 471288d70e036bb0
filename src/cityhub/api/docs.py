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

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from cityhub.web import vendor

router = APIRouter(include_in_schema=False)

SWAGGER_FILES = ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css")


def page(title: str, openapi_url: str) -> str:
    """The HTML of the documentation page (the degraded form when the vendor files are missing)."""
    title, url = escape(title), escape(openapi_url)
    present = vendor.available()
    if not all(present.get(name) for name in SWAGGER_FILES):
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} API</title></head><body>'
            f"<h1>{title} API</h1><p>The interactive documentation is not installed on this server (run "
            f"<code>make install</code>, which copies Swagger UI from npm). The OpenAPI description is at "
            f'<a href="{url}">{url}</a>.</p></body></html>'
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} API</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head><body>'
        f'<div id="swagger-ui" data-openapi-url="{url}"></div>'
        '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>'
        '<script src="/static/api-docs.js"></script></body></html>'
    )


@router.get("/docs", response_class=HTMLResponse)
def docs() -> HTMLResponse:
    from cityhub import __version__

    return HTMLResponse(page(f"cityhub {__version__}", "/openapi.json"))


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    """Browsers ask for /favicon.ico on answers that name no icon (JSON opened in a tab): the web UI's icon."""
    return RedirectResponse("/static/favicon.svg", status_code=301)
