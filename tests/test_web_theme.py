"""The web UI's colour theme (``web/theme.py``): 跟随系统 / 浅色 / 深色 kept in a cookie and written by the server as
``data-theme`` on <html> (none for the system's), the switch beside the language's coming back to the same page; the
big screen always dark; and ``static/app.css`` keeping every colour in one of its roles — no colour written anywhere
else in it, nor in ``static/map.js``, which draws the map's layers in those roles.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageColor

from cityhub.db import reset_engine, session_scope
from cityhub.onemap import registry
from cityhub.web import theme
from web_helpers import build_world, login, world_env

STATIC = Path(theme.__file__).parent / "static"
TEMPLATES = Path(theme.__file__).parent / "templates"


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in world_env(tmp_path / "no-model").items():
        monkeypatch.setenv(key, value)
    reset_engine()
    with session_scope() as s:
        build_world(s)


def _html_tag(page: str) -> str:
    match = re.search(r"<html[^>]*>", page)
    assert match, page[:200]
    return match.group(0)


def _current_choice(page: str) -> str:
    """The switch's entry marked as the one in force."""
    found = re.findall(r'data-testid="theme-(\w+)" aria-current="true"', page)
    assert len(found) == 1, found
    return found[0]


def test_the_theme_follows_the_system_until_the_user_chooses_and_the_switch_comes_back(org) -> None:
    client = login("lead")
    page = client.get("/orders?state=open").text
    # No choice yet: no data-theme, so Pico and app.css follow the system's prefers-color-scheme.
    assert "data-theme" not in _html_tag(page) and _current_choice(page) == "system"
    # The bar shows 主题; the choice in force is said to a screen reader (and marked in the list).
    assert '主题<span class="visually-hidden">：跟随系统</span>' in page
    # Each entry of the switch comes back to this very page, its query too.
    assert 'href="/theme/dark?next=/orders%3Fstate%3Dopen"' in page
    switched = client.get("/theme/dark?next=/orders%3Fstate%3Dopen", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/orders?state=open"
    assert client.cookies["cityhub_theme"] == "dark"
    page = client.get("/orders?state=open").text
    assert 'data-theme="dark"' in _html_tag(page) and _current_choice(page) == "dark" and "：深色</span>" in page
    client.get("/theme/light?next=/dashboard")
    page = client.get("/dashboard").text
    assert 'data-theme="light"' in _html_tag(page) and _current_choice(page) == "light"
    # 跟随系统 forgets the choice: no cookie, no data-theme.
    back = client.get("/theme/system?next=/dashboard", follow_redirects=False)
    assert back.headers["location"] == "/dashboard" and "cityhub_theme" not in client.cookies
    assert "data-theme" not in _html_tag(client.get("/dashboard").text)
    # In English too, and on the pages of no one signed in.
    client.get("/lang/en")
    client.get("/theme/dark")
    page = client.get("/login").text
    assert 'data-theme="dark"' in _html_tag(page) and 'Theme<span class="visually-hidden">: Dark</span>' in page


def test_a_wrong_theme_is_refused_by_name_and_the_switch_never_leaves_the_site(org) -> None:
    client = login("lead")
    refused = client.get("/theme/blue?next=/orders", follow_redirects=False)
    assert refused.status_code == 404
    assert "没有“blue”这个主题，可选：system, light, dark。" in unescape(refused.text)
    assert "cityhub_theme" not in client.cookies
    away = client.get("/theme/dark?next=https://evil.example", follow_redirects=False)
    assert away.headers["location"] == "/" and client.cookies["cityhub_theme"] == "dark"


def test_the_big_screen_is_dark_whatever_the_users_theme(org) -> None:
    client = login("lead")
    client.get("/theme/light")
    screen = client.get("/map?screen=1").text
    assert 'data-theme="dark"' in _html_tag(screen)


# ----------------------------------------------------------------------------------- app.css's colour roles

_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_NAMED = set(ImageColor.colormap)  # the CSS colour keywords (white, red, …)
_COLOUR = re.compile(
    r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?|hwb|lab|lch|oklab|oklch|color|color-mix|light-dark)\(", re.IGNORECASE
)


def _declarations(css: str) -> list[tuple[str, str]]:
    """(property, value) of every declaration of a stylesheet (the innermost blocks: rules inside @media too)."""
    found = []
    for block in re.findall(r"\{([^{}]*)\}", _COMMENT.sub("", css)):
        for declaration in block.split(";"):
            prop, colon, value = declaration.partition(":")
            if colon:
                found.append((prop.strip(), value.strip()))
    return found


def _colours_in(value: str) -> list[str]:
    """The colour literals of a value: #hex, colour functions, colour keywords (quoted text left out)."""
    value = re.sub(r"\"[^\"]*\"|'[^']*'", "", value)
    words = [w for w in re.findall(r"(?<![-\w])[a-zA-Z]+(?![-\w(])", value) if w.lower() in _NAMED]
    return _COLOUR.findall(value) + words


def test_every_colour_of_app_css_is_a_role_defined_once_with_its_light_and_dark_value() -> None:
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    declarations = _declarations(css)
    # No colour outside a custom property's definition: the next colour goes through a role.
    written = [f"{prop}: {value}" for prop, value in declarations if not prop.startswith("--") and _colours_in(value)]
    assert not written, "colours outside app.css's roles:\n" + "\n".join(written)
    roles: dict[str, str] = {}
    for prop, value in declarations:
        if prop.startswith("--ch-") and prop not in ("--ch-light", "--ch-dark"):
            assert prop not in roles, f"{prop} is defined twice"
            roles[prop] = value
            # A themed role gives both values.
            assert ("--ch-light" in value) == ("--ch-dark" in value), f"{prop}: {value}"
    # Every role used is defined, in the stylesheet, the map's script and the templates.
    used = set(re.findall(r"var\((--ch-[\w-]+)", css))
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"var\((--ch-[\w-]+)", template.read_text(encoding="utf-8")))
    script = (STATIC / "map.js").read_text(encoding="utf-8")
    used |= {f"--ch-{name}" for name in re.findall(r'colour\("([\w-]+)"', script)}
    used = {name for name in used if not name.endswith("-")}  # a name made up in place: --ch-layer-{{ layer.name }}
    assert used - set(roles) - {"--ch-light", "--ch-dark"} == set(), "roles used but not defined"
    # Each layer of the one map has its colour among the roles (map.js draws it, the toggles show its swatch).
    assert {f"--ch-layer-{layer.name}" for layer in registry.layers()} <= set(roles)


def test_the_map_script_writes_no_colour_of_its_own() -> None:
    script = (STATIC / "map.js").read_text(encoding="utf-8")
    assert _COLOUR.findall(script) == []
    assert "layer.color" not in script.replace('colour("layer-" + layer.name, layer.color)', "")


def test_the_colour_check_finds_a_colour_written_outside_the_roles() -> None:
    bad = (
        ":root { --ch-x: #fff; }\n@media (x) { .a:hover { color: #123456; background: white; } }\n"
        ".b { border: 1px solid rgb(0 0 0); }"
    )
    found: list[Any] = [v for p, v in _declarations(bad) if not p.startswith("--") and _colours_in(v)]
    assert found == ["#123456", "white", "1px solid rgb(0 0 0)"]
    assert _colours_in('"Microsoft YaHei", sans-serif') == [] and _colours_in("var(--ch-bad) nowrap") == []
