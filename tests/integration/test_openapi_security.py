"""/openapi.json names the credential each route takes (``securitySchemes``, each operation's ``security``), checked
against what the routes answer: a route declaring a credential refuses a caller without one and takes the one it
declares; a public route (none declared, or an optional key) serves a caller without one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app_helpers import shared_app
from cityhub.api.credentials import API_KEY, BEARER
from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.sharing import service as sharing


@pytest.fixture
def client(app_db: str) -> Iterator[TestClient]:
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        yield c


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every operation as (method, path template, a URL for it: ids 1, days 2026-12-01, formats json, operation)."""

    def url(path: str) -> str:
        filled = {"day": "2026-12-01", "fmt": "json"}
        return re.sub(r"\{(\w+)\}", lambda m: filled.get(m.group(1), "1"), path)

    return [
        (method.upper(), path, url(path), operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


def _refused_credential(answer: Any) -> str | None:
    """The message of an answer refusing the request's credential (none, a wrong one, or one the route does not
    take) — 401, or 403 for no permission's sake (API keys are refused with 403, as GeoReport has it); None for any
    other answer (a caller whose role may not call the route was let in as who they are)."""
    if answer.status_code not in (401, 403):
        return None
    body = answer.json()
    if isinstance(body, list):  # Open311's error list
        return str(body[0]["description"])
    if "permission" in body.get("details", {}):
        return None
    return str(body["message"])


def test_every_route_names_the_credential_it_takes_and_public_ones_none(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes[BEARER]["type"] == "http" and schemes[BEARER]["scheme"] == "bearer"
    assert (schemes[API_KEY]["type"], schemes[API_KEY]["in"], schemes[API_KEY]["name"]) == (
        "apiKey",
        "header",
        "X-API-Key",
    )
    with session_scope() as s:
        district = Unit(code="SEC-QU", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        admin = User(username="sec-admin", full_name="管理员", role=Role.ADMIN, unit_id=district.id)
        s.add(admin)
        s.flush()
        token = create_token(s, user_id=admin.id, name="test")[1]
        key = sharing.create_key(
            s, client_name="sec", scopes="admin open311:write sharing:read sensors:write sms:write", rate_limit=10_000
        )[1]
    credentials = {BEARER: {"Authorization": f"Bearer {token}"}, API_KEY: {"X-API-Key": key}}
    operations = _operations(spec)
    declared: dict[str, list[str]] = {}
    for method, path, url, operation in operations:
        security = operation.get("security")
        # Under /api/v1 a parameter no route takes is refused once the caller is let in: nothing runs.
        params = {"zz_not_a_param": "1"} if path.startswith("/api/") else {}
        anonymous = _refused_credential(client.request(method, url, params=params))
        if security is None or {} in security:
            assert anonymous is None, (method, path, "public, but refused without a credential", anonymous)
        else:
            assert anonymous is not None, (method, path, "declares a credential, but served a caller without one")
            # What the refusal asks for is among what the route declares.
            asked = {BEARER} if "Bearer" in anonymous else set()
            asked |= {API_KEY} if "API key" in anonymous else set()
            assert asked and asked <= {name for alternative in security for name in alternative}, (
                method,
                path,
                anonymous,
                security,
            )
        for alternative in security or []:
            for name in alternative:
                taken = _refused_credential(client.request(method, url, params=params, headers=credentials[name]))
                assert taken is None, (method, path, f"declares {name}, but refuses it", taken)
                declared.setdefault(name, []).append(f"{method} {path}")
        if security is None:
            declared.setdefault("public", []).append(f"{method} {path}")
    # Staff and citizens' routes take the bearer token; the key routes as docs/api.md lists them; the public ones.
    assert (
        "GET /api/v1/orders" in declared[BEARER]
        and "POST /api/v1/orders/{order_id}/actions/{action}" in (declared[BEARER])
    )
    assert {
        "GET /api/v1/sharing/orders",
        "GET /api/v1/sharing/aggregates/{dimension}",
        "GET /api/v1/sharing/stats",
        "POST /open311/v2/requests.{fmt}",
        "POST /api/v1/sensors/readings",
        "POST /api/v1/sensors/{code}/readings",
        "POST /api/v1/sms/inbound",
    } <= set(declared[API_KEY])
    assert {"POST /api/v1/auth/login", "POST /api/v1/track", "GET /healthz"} <= set(declared["public"])


def test_the_description_says_which_credential_and_where_the_integrators_guide_is(client: TestClient) -> None:
    """/openapi.json (the head of /docs) begins with what an integrator needs first: it said only "cityhub"."""
    description = client.get("/openapi.json").json()["info"]["description"]
    for said in (
        "/api/v1",
        "/open311/v2",
        "Authorization: Bearer",
        "X-API-Key",
        "cityhub apikey create",
        "docs/api.md",
    ):
        assert said in description, said


def test_open311_windows_say_their_90_day_limit(client: TestClient) -> None:
    """GeoReport's span limit (start_date with end_date at most 90 days) is said where an integrator reads the
    parameters: it said "give end_date too for a longer one"."""
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/open311/v2/requests.{fmt}", "/open311/v2/servicerequestupdates.{fmt}"):
        described = {p["name"]: p.get("description", "") for p in paths[path]["get"]["parameters"]}
        for name in ("start_date", "end_date"):
            assert "at most 90 days" in described[name] or "not span more than 90 days" in described[name], (
                path,
                name,
            )
