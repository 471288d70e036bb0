"""The web UI's colour theme, chosen by the user like the language and kept in a cookie.

跟随系统 (``system``, also when no cookie is set) writes no ``data-theme`` on <html>: Pico and ``static/app.css``
follow the browser's ``prefers-color-scheme``. 浅色 / 深色 write ``data-theme="light"`` / ``"dark"``, so the server
draws the chosen theme from the first paint (no script, no flash of the other theme). The colours themselves are
roles in ``app.css``, each given once with its light and its dark value.
"""

from __future__ import annotations

THEME_COOKIE = "cityhub_theme"
SYSTEM = "system"
THEMES = (SYSTEM, "light", "dark")


def chosen(cookie: str | None) -> str:
    """The theme a request is drawn in: the cookie's choice, else the system's."""
    return cookie if cookie in THEMES else SYSTEM


def color_scheme(theme: str) -> str:
    """The ``<meta name="color-scheme">`` of a page drawn in ``theme``: the browser's own colours (scroll bars, form
    controls, an unstyled page) follow the chosen theme, or either one with the system's."""
    return theme if theme in ("light", "dark") else "light dark"
