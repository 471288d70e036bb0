"""One application object per test process, for the tests' clients.

``create_app()`` itself is cheap, but FastAPI analyses every route's dependencies lazily, on an application's first
request — about 0.7 s for cityhub's routes — and a test client on a new application (each sign-in of the web tests)
paid that again every time. The application object holds no settings of its own: its middleware (the admission
gate, the security headers) reads them when the middleware stack is built, so the stack is dropped each time the
application is handed out and built again from the current settings on its next request.
"""

from __future__ import annotations

from typing import Any

_app: Any = None


def shared_app() -> Any:
    """This process's application, its middleware to be built afresh from the current settings."""
    global _app
    if _app is None:
        from cityhub.main import create_app

        _app = create_app()
    _app.middleware_stack = None
    return _app
