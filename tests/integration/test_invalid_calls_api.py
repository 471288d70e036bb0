"""无效来电 over the API (``/api/v1/invalid-calls``, ``/api/v1/invalid-calls/calls``), on SQLite and PostgreSQL: the
dashboard's readers only, each within their data scope; a period's tally per kind and per operator, the calls paged
with the phone as the reader sees citizens' phones; a bad period or kind named; in /openapi.json."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from test_invalid_calls import _desk, _local_today

from app_helpers import shared_app
from cityhub.auth.service import create_token
from cityhub.db import utcnow
from cityhub.intake import invalid_calls
from cityhub.org.models import Role, User

PHONE = "13800001111"


@pytest.fixture
def desk(app_db, db_session):
    """Two desks' calls (the district's operator 甲: 2 hang-ups and a wrong number; the street's 乙: a silent call and
    a hang-up; one of last year), and the bearer headers of an administrator, a leader (the district), the street's
    supervisor, an operator and a citizen."""
    s = db_session
    a, b, district, street = _desk(s)
    for kind, who in (("hang_up", a), ("hang_up", a), ("wrong_number", a), ("silent", b), ("hang_up", b)):
        invalid_calls.record(s, kind=kind, user_id=who.id, unit_id=who.unit_id, phone=PHONE)
    old = invalid_calls.record(s, kind="harassment", user_id=a.id, unit_id=a.unit_id)
    old.created_at = utcnow() - timedelta(days=400)
    users = {
        "admin": User(username="ic-admin", full_name="管理员", role=Role.ADMIN, unit_id=district.id),
        "leader": User(username="ic-lead", full_name="领导", role=Role.LEADER, unit_id=district.id),
        "street_supervisor": User(username="ic-sup", full_name="街道督办", role=Role.SUPERVISOR, unit_id=street.id),
        "operator": User(username="ic-op", full_name="话务", role=Role.OPERATOR, unit_id=district.id),
        "citizen": User(username="ic-cit", full_name="市民", role=Role.CITIZEN),
    }
    s.add_all(users.values())
    s.flush()
    headers = {
        name: {"Authorization": f"Bearer {create_token(s, user_id=u.id, name='t')[1]}"} for name, u in users.items()
    }
    s.commit()
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        yield client, headers


def _period() -> str:
    today = _local_today()
    return f"{today - timedelta(days=2)}..{today}"


def test_the_tally_is_the_dashboards_per_kind_and_operator_within_the_readers_scope(desk) -> None:
    client, headers = desk
    got = client.get("/api/v1/invalid-calls", params={"period": _period()}, headers=headers["leader"])
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["period"] == _period() and body["scoped"] is False and body["total"] == 5
    assert body["by_kind"] == {
        "hang_up": 3,
        "silent": 1,
        "harassment": 0,
        "wrong_number": 1,
        "transferred": 0,
        "other": 0,
    }
    assert [(o["name"], o["total"], o["by_kind"]) for o in body["by_operator"]] == [
        ("甲话务", 3, {"hang_up": 2, "wrong_number": 1}),
        ("乙话务", 2, {"silent": 1, "hang_up": 1}),
    ]
    assert body["start"].endswith("Z") and body["end"] > body["start"]
    # The street's supervisor: the calls of its own desk only.
    street = client.get("/api/v1/invalid-calls", params={"period": _period()}, headers=headers["street_supervisor"])
    assert street.status_code == 200, street.text
    assert street.json()["scoped"] is True and street.json()["total"] == 2
    assert [o["name"] for o in street.json()["by_operator"]] == ["乙话务"]
    # Without a period: the dashboard's last 30 days.
    recent = client.get("/api/v1/invalid-calls", headers=headers["admin"])
    assert recent.status_code == 200 and recent.json()["total"] == 5


def test_only_the_dashboards_readers_read_invalid_calls(desk) -> None:
    client, headers = desk
    for who in ("operator", "citizen"):
        for url in ("/api/v1/invalid-calls", "/api/v1/invalid-calls/calls"):
            refused = client.get(url, headers=headers[who])
            assert refused.status_code == 403, (who, url, refused.text)
            assert refused.json()["code"] == "permission_denied"
    assert client.get("/api/v1/invalid-calls").status_code == 401
    keyed = client.get("/api/v1/invalid-calls", headers={"X-API-Key": "chk_nothing"})
    assert keyed.status_code == 401 and "API key" in keyed.json()["message"]


def test_a_bad_period_or_kind_is_422_naming_it(desk) -> None:
    client, headers = desk
    for url in ("/api/v1/invalid-calls", "/api/v1/invalid-calls/calls"):
        bad = client.get(url, params={"period": "moon"}, headers=headers["admin"])
        assert bad.status_code == 422, bad.text
        assert bad.json()["details"]["field"] == "period" and "period" in bad.json()["message"]
    kind = client.get("/api/v1/invalid-calls/calls", params={"kind": "moon"}, headers=headers["admin"])
    assert kind.status_code == 422 and kind.json()["details"]["field"] == "kind"
    assert "hang_up" in kind.json()["message"]


def test_the_calls_are_listed_newest_first_paged_with_the_phone_as_the_reader_sees_it(desk) -> None:
    client, headers = desk
    url = "/api/v1/invalid-calls/calls"
    first = client.get(url, params={"period": _period(), "limit": 2}, headers=headers["admin"])
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["total"] == 5 and page["has_more"] is True and len(page["items"]) == 2
    rest = client.get(url, params={"period": _period(), "limit": 2, "offset": 4}, headers=headers["admin"]).json()
    assert rest["has_more"] is False and len(rest["items"]) == 1
    every = client.get(url, params={"period": _period()}, headers=headers["admin"]).json()["items"]
    assert [c["id"] for c in every] == sorted((c["id"] for c in every), reverse=True)  # recorded in this order
    assert {(c["operator"], c["unit"], c["kind"]) for c in every} == {
        ("甲话务", "测试区", "hang_up"),
        ("甲话务", "测试区", "wrong_number"),
        ("乙话务", "测试街道", "silent"),
        ("乙话务", "测试街道", "hang_up"),
    }
    assert all(c["created_at"].endswith("Z") for c in every)
    assert {c["phone"] for c in every} == {PHONE}  # an administrator reads personal data
    masked = client.get(url, params={"period": _period()}, headers=headers["leader"]).json()["items"]
    assert {c["phone"] for c in masked} == {"138****1111"}
    street = client.get(url, params={"period": _period()}, headers=headers["street_supervisor"]).json()
    assert street["total"] == 2 and {c["operator"] for c in street["items"]} == {"乙话务"}
    assert {c["phone"] for c in street["items"]} == {PHONE}
    hang_ups = client.get(url, params={"period": _period(), "kind": "hang_up"}, headers=headers["admin"]).json()
    assert hang_ups["total"] == 3 and {c["kind"] for c in hang_ups["items"]} == {"hang_up"}


def test_openapi_describes_the_invalid_call_routes(desk) -> None:
    client, _ = desk
    spec = client.get("/openapi.json").json()
    tally = spec["paths"]["/api/v1/invalid-calls"]["get"]
    listed = spec["paths"]["/api/v1/invalid-calls/calls"]["get"]
    assert tally["security"] == [{"bearerToken": []}] and listed["security"] == [{"bearerToken": []}]
    assert tally["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/InvalidCallTally")
    schemas = spec["components"]["schemas"]
    assert {"by_kind", "by_operator", "scoped"} <= set(schemas["InvalidCallTally"]["properties"])
    assert {"created_at", "kind", "operator", "unit", "phone"} <= set(schemas["InvalidCallRead"]["properties"])
    assert {p["name"] for p in listed["parameters"]} >= {"period", "kind", "limit", "offset"}
