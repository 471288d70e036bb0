"""An id in a path that no table can hold — beyond 32 bits for most keys, beyond 64 for orders' — names nothing: every
route of the API and of the web pages answers 404 naming the thing, on both backends, as for an id no row has.

PostgreSQL refused to compare such an id with a 32-bit key ("integer out of range", answered 422), SQLite looked and
found nothing (404), and the routes that bounded their ids themselves answered 422 on both."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import select

from cityhub.auth.service import open_session
from cityhub.auth.settings import get_auth_settings
from cityhub.db import session_scope
from cityhub.org.models import User

BEYOND_32 = 2**40
BEYOND_64 = 2**70
# What a route needs besides its path to get as far as looking the id up.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/orders/{order_id}/actions/{action}"): {"json": {"unit_id": 1}},
    ("POST", "/api/v1/dispatch/{order_id}/category"): {"json": {"category_id": 1}},
    ("POST", "/api/v1/dispatch/{order_id}/place"): {"json": {"unit_id": 1}},
    ("PUT", "/api/v1/dispatch/thresholds/{category_id}"): {"json": {"threshold": 0.5}},
    ("POST", "/api/v1/orders/{order_id}/attachments"): {"files": {"files": ("a.txt", b"x", "text/plain")}},
    ("DELETE", "/api/v1/orders/{order_id}/attachments/{attachment_id}"): {"params": {"reason": "错传"}},
    ("POST", "/api/v1/kpi/exemptions/{exemption_id}/decision"): {"json": {"approve": True}},
}
NOUNS = {
    "order_id": "order",
    "attachment_id": "attachment",
    "token_id": "token",
    "entry_id": "knowledge entry",
    "category_id": "category",
    "topic_id": "hot topic",
    "unit_id": "unit",
    "alias_id": "place alias",
    "user_id": "user",
    "alarm_id": "alarm",
    "client_id": "API client",
    "subscription_id": "subscription",
    "message_id": "outbox message",
    "exemption_id": "exemption request",
    "notice_id": "notice",
}


def _api_cases(client: Any) -> Iterator[tuple[str, str, str, str]]:
    """(method, template, url, the param set beyond range) for every integer path parameter of the API."""
    for template, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            params = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            ids = [p["name"] for p in params if p["schema"].get("type") == "integer"]
            for name in ids:
                for value in (BEYOND_32, BEYOND_64) if name == "order_id" else (BEYOND_32,):
                    url = template
                    for p in params:
                        given = value if p["name"] == name else (1 if p["name"] in ids else "dispatch")
                        url = url.replace("{" + p["name"] + "}", str(given))
                    yield method.upper(), template, url, name


def _page_routes(app: Any) -> Iterator[tuple[str, str]]:
    def walk(routes: list[Any]) -> Iterator[APIRoute]:
        for route in routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
            elif isinstance(route, APIRoute):
                yield route

    for route in walk(app.routes):
        if route.include_in_schema or not re.search(r"\{\w+_id(:int)?\}", route.path):
            continue
        for method in route.methods or ():
            yield method, route.path


def _check(response: Any, value: int, name: str, what: str) -> None:
    assert response.status_code == 404, f"{what}: {response.status_code} {response.text[:200]}"
    body = response.json()
    noun = NOUNS.get(name, "rule")
    assert body["code"] == "not_found" and f"{noun} {value}" in body["message"], (what, body)
    assert body["message"].endswith("not found"), (what, body)


def test_every_id_in_an_api_path_beyond_its_key_is_not_found(admin_client) -> None:
    cases = list(_api_cases(admin_client))
    assert len(cases) > 40  # the API's routes with ids, all of them
    for method, template, url, name in cases:
        value = BEYOND_64 if str(BEYOND_64) in url else BEYOND_32
        response = admin_client.request(method, url, **BODIES.get((method, template), {"json": {}}))
        _check(response, value, name, f"{method} {url}")
    rule = admin_client.get(f"/api/v1/alarm-rules/{BEYOND_32}").json()
    assert rule["message"] == f"alarm rule {BEYOND_32} not found"
    rule = admin_client.delete(f"/api/v1/sla/rules/{BEYOND_32}").json()
    assert rule["message"] == f"time-limit rule {BEYOND_32} not found"


def test_every_id_in_a_page_path_beyond_its_key_is_page_not_found(admin_client) -> None:
    with session_scope() as s:
        admin = s.scalars(select(User).where(User.username == "t-admin")).one()
        signed_in = open_session(s, user=admin, method="password", client_ip="testclient", user_agent=None)
    admin_client.headers.pop("Authorization")
    admin_client.cookies.set(get_auth_settings().session_cookie_name, signed_in.session_token)
    routes = list(_page_routes(admin_client.app))
    assert len(routes) > 20
    for method, template in routes:
        for value in (BEYOND_32, BEYOND_64) if "{order_id}" in template else (BEYOND_32,):
            url = re.sub(r"\{(\w+_id)(:int)?\}", str(value), template)
            url = re.sub(r"\{\w+(:\w+)?\}", "x", url)
            form = {"csrf_token": signed_in.csrf_token}
            page = admin_client.request(method, url, headers={"Accept": "text/html"}, data=form)
            assert page.status_code == 404, (method, url, page.status_code, page.text[:200])
            assert "text/html" in page.headers["content-type"], (method, url)


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


# Every id or order reference the command line takes as an argument: the command, with what else it needs, then
# the id, and what the one line says.
CLI_IDS: dict[tuple[str, ...], tuple[list[str], str]] = {
    ("orders", "show"): ([str(BEYOND_64)], "order"),
    ("orders", "history"): ([str(BEYOND_64)], "order"),
    ("orders", "act"): ([str(BEYOND_64), "accept"], "order"),
    ("orders", "attach"): ([str(BEYOND_64), "{file}"], "order"),
    ("orders", "detach"): ([str(BEYOND_64), "1", "--reason", "错传"], "order"),
    ("orders", "similar"): ([str(BEYOND_64)], "order"),
    ("dispatch", "suggest"): ([str(BEYOND_64)], "order"),
    ("alarms", "ack"): ([str(BEYOND_32)], "alarm"),
    ("alarms", "clear"): ([str(BEYOND_32)], "alarm"),
    ("alarm-rules", "set"): ([str(BEYOND_32), "--threshold", "3"], "alarm rule"),
    ("dispatch", "rules", "set"): ([str(BEYOND_32), "--priority", "3"], "dispatch rule"),
    ("dispatch", "rules", "remove"): ([str(BEYOND_32)], "dispatch rule"),
    ("kb", "deactivate"): ([str(BEYOND_32)], "knowledge entry"),
    ("notify", "webhooks", "remove"): ([str(BEYOND_32)], "subscription"),
    ("notify", "outbox", "retry"): ([str(BEYOND_32)], "outbox message"),
    ("analytics", "exemptions", "decide"): ([str(BEYOND_32), "--approve"], "exemption request"),
    ("analytics", "exemptions", "revoke"): ([str(BEYOND_32), "--reason", "核实有误"], "exemption request"),
    ("analytics", "exemptions", "request"): (
        [str(BEYOND_64), "--unit", "T-QU", "--measures", "satisfaction", "--reason", "unreachable"],
        "order",
    ),
}


def test_every_id_given_to_the_command_line_beyond_its_key_is_not_found_in_one_line(
    admin_client, cli_run, tmp_path
) -> None:
    """`cityhub alarms ack 99999999999999999999`, `orders show …` and every other command taking an id printed a
    traceback: SQLite's driver cannot bind such a number (OverflowError), PostgreSQL refuses it as out of range."""
    import typer

    from cityhub import cli

    cli._mount()
    taking_ids = {
        path
        for path, command in _commands(typer.main.get_command(cli.app))
        for p in command.params
        if p.param_type_name == "argument" and (p.name == "ref" or (p.name.endswith("_id") and p.bare_type() == "int"))
    }
    assert taking_ids == set(CLI_IDS)  # a new command taking an id belongs in the table
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not much of a photo")
    detached = f"attachment {BEYOND_32} not found"
    code, _, err = cli_run("orders", "detach", "1", str(BEYOND_32), "--reason", "错传")
    assert code != 0 and err.strip() == f"error: {detached}", err
    for path, (args, noun) in CLI_IDS.items():
        args = [a.replace("{file}", str(photo)) for a in args]
        code, _, err = cli_run(*path, *args)
        value = args[0]
        assert code != 0 and len(err.strip().splitlines()) == 1, (path, err)
        assert re.fullmatch(rf"error: {noun} '?{value}'? not found", err.strip()), (path, err)
