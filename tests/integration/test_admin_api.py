"""The reference-data API over the real app on both backends: units, users, categories, SLA rules, calendar.

Round trips through the HTTP layer, permission denials (401 without credentials, 403 for non-admin writes,
403 for citizens on the staff directory), 404s and 422 bodies, all in the one error body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app_helpers import shared_app
from cityhub.auth import passwords
from cityhub.auth.service import create_token
from cityhub.db import reset_engine, session_scope
from cityhub.org.models import Role, Unit, UnitTier, User

API = "/api/v1"
PASSWORD = "correct-horse-battery"


@dataclass
class Env:
    client: TestClient
    units: dict[str, int]
    users: dict[str, int]
    headers: dict[str, dict[str, str]]

    def get(self, path: str, who: str = "adm", **kw: Any) -> Any:
        return self.client.get(API + path, headers=self.headers.get(who, {}), **kw)

    def send(self, method: str, path: str, who: str = "adm", **kw: Any) -> Any:
        return self.client.request(method, API + path, headers=self.headers.get(who, {}), **kw)


@pytest.fixture
def env(app_db: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    reset_engine()
    with session_scope() as s:
        units: dict[str, int] = {}
        for code, tier, parent in [
            ("AD-QU", UnitTier.DISTRICT, None),
            ("AD-S1", UnitTier.STREET, "AD-QU"),
            ("AD-C1", UnitTier.COMMUNITY, "AD-S1"),
            ("AD-P1", UnitTier.DEPARTMENT, "AD-QU"),
        ]:
            unit = Unit(code=code, name=f"{code}单位", tier=tier, parent_id=units.get(parent or ""))
            s.add(unit)
            s.flush()
            units[code] = unit.id
        users: dict[str, int] = {}
        headers: dict[str, dict[str, str]] = {}
        for name, role, unit_code in [
            ("adm", Role.ADMIN, "AD-QU"),
            ("dsp", Role.DISPATCHER, "AD-S1"),
            ("sup", Role.SUPERVISOR, "AD-QU"),
            ("cit", Role.CITIZEN, None),
        ]:
            user = User(
                username=f"ad-{name}",
                full_name=name,
                role=role,
                unit_id=units[unit_code] if unit_code else None,
                password_hash=passwords.hash_password(PASSWORD),
            )
            s.add(user)
            s.flush()
            users[name] = user.id
            headers[name] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        yield Env(client, units, users, headers)


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code and body["message"]
    return body


def _fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["details"]["errors"]}


# --- units -------------------------------------------------------------------------------------------------


def test_unit_round_trip_and_tree(env: Env) -> None:
    created = env.send(
        "POST",
        "/units",
        json={"code": "AD-C2", "name": "望岗社区居委会", "tier": "community", "parent_id": env.units["AD-S1"]},
    )
    assert created.status_code == 201, created.text
    unit = created.json()
    assert unit["short_name"] == "望岗社区" and unit["parent_id"] == env.units["AD-S1"]

    assert env.get(f"/units/{unit['id']}", "dsp").json()["code"] == "AD-C2"
    children = env.get(f"/units/{env.units['AD-S1']}/children").json()
    assert sorted(c["code"] for c in children) == ["AD-C1", "AD-C2"]

    patched = env.send("PATCH", f"/units/{unit['id']}", json={"duties": "环境卫生", "active": False})
    assert patched.status_code == 200 and patched.json()["duties"] == "环境卫生" and not patched.json()["active"]
    # Untouched fields stay as they were.
    assert patched.json()["name"] == "望岗社区居委会"

    listed = env.get("/units", params={"tier": "community", "active": "false"}).json()
    assert [u["code"] for u in listed["items"]] == ["AD-C2"]
    assert [u["code"] for u in env.get("/units", params={"q": "S1"}).json()["items"]] == ["AD-S1"]
    # Latin letters in either case, on both backends; % and _ are characters, not wildcards.
    assert [u["code"] for u in env.get("/units", params={"q": "ad-s1"}).json()["items"]] == ["AD-S1"]
    assert env.get("/units", params={"q": "%"}).json()["items"] == []
    assert env.get("/units", params={"q": "AD_S"}).json()["items"] == []
    page = env.get("/units", params={"limit": 2, "offset": 1}).json()
    assert len(page["items"]) == 2 and page["has_more"] and page["offset"] == 1


def test_unit_errors(env: Env) -> None:
    _error(env.get("/units/987654"), 404, "not_found")
    _error(env.get("/units/987654/children"), 404, "not_found")
    _error(env.send("PATCH", "/units/987654", json={"name": "x"}), 404, "not_found")
    dup = env.send("POST", "/units", json={"code": "AD-S1", "name": "重复", "tier": "street"})
    _error(dup, 409, "conflict")
    bad = _error(env.send("POST", "/units", json={"code": "a b", "name": "", "tier": "moon"}), 422, "validation_failed")
    assert {"code", "name", "tier"} <= _fields(bad)
    # A unit cannot move below its own sub-unit.
    cycle = env.send("PATCH", f"/units/{env.units['AD-S1']}", json={"parent_id": env.units["AD-C1"]})
    assert _error(cycle, 422, "validation_failed")["details"] == {"field": "parent_id"}
    _error(env.get("/units/0"), 422, "validation_failed")
    _error(env.get("/units", params={"q": "a\x00b"}), 422, "validation_failed")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/units", {"code": "AD-X", "name": "X", "tier": "street"}),
        ("PATCH", "/units/{S1}", {"name": "改名"}),
        ("POST", "/users", {"username": "newbie", "full_name": "新人", "role": "citizen"}),
        ("PATCH", "/users/{dsp}", {"full_name": "改名"}),
        ("POST", "/users/{dsp}/lock", None),
        ("POST", "/users/{dsp}/unlock", None),
        ("POST", "/categories", {"name": "新类"}),
        ("PUT", "/sla/rules", {"accept_hours": 1, "finish_days": 1}),
        ("DELETE", "/sla/rules/1", None),
        ("PUT", "/calendar/days/2026-10-10", {"is_workday": True}),
        ("DELETE", "/calendar/days/2026-10-10", None),
        ("POST", "/calendar/import", {"text": "2026-10-10,workday,调休上班"}),
    ],
)
def test_writes_need_admin_and_login(env: Env, method: str, path: str, body: Any) -> None:
    path = path.format(S1=env.units["AD-S1"], dsp=env.users["dsp"])
    for who in ("dsp", "sup", "cit"):
        denied = _error(env.send(method, path, who, json=body), 403, "permission_denied")
        assert denied["details"]["permission"].endswith(":manage")
    _error(env.send(method, path, "nobody", json=body), 401, "unauthenticated")
    # Nothing was written by the refused calls.
    assert env.get(f"/users/{env.users['dsp']}").json()["full_name"] == "dsp"
    assert env.get(f"/units/{env.units['AD-S1']}").json()["name"] == "AD-S1单位"


@pytest.mark.parametrize(
    "path",
    ["/units", "/units/{S1}", "/users", "/categories", "/sla/rules", "/calendar/days", "/calendar/check/2026-10-01"],
)
def test_reads_need_login(env: Env, path: str) -> None:
    path = path.format(S1=env.units["AD-S1"])
    _error(env.get(path, "nobody"), 401, "unauthenticated")
    assert env.get(path, "sup").status_code == 200


def test_citizens_see_no_staff_directory_but_the_reference_tables(env: Env) -> None:
    _error(env.get("/users", "cit"), 403, "permission_denied")
    _error(env.get(f"/users/{env.users['dsp']}", "cit"), 403, "permission_denied")
    _error(env.get("/units", "cit"), 403, "permission_denied")
    for path in ("/categories", "/sla/rules", "/calendar/days", "/calendar/check/2026-10-01"):
        assert env.get(path, "cit").status_code == 200, path


# --- users -------------------------------------------------------------------------------------------------


def test_the_staff_directory_lists_staff_and_only_admins_see_citizens(env: Env) -> None:
    citizen = env.users["cit"]
    for who in ("dsp", "sup"):
        names = {u["username"] for u in env.get("/users", who).json()["items"]}
        assert names == {"ad-adm", "ad-dsp", "ad-sup"}, who
        assert env.get("/users", who, params={"role": "citizen"}).json()["items"] == []
        assert env.get("/users", who, params={"q": "cit"}).json()["items"] == []
        _error(env.get(f"/users/{citizen}", who), 404, "not_found")
        assert env.get(f"/users/{env.users['dsp']}", who).json()["username"] == "ad-dsp"
    assert [u["username"] for u in env.get("/users", params={"role": "citizen"}).json()["items"]] == ["ad-cit"]
    assert [u["username"] for u in env.get("/users", params={"q": "AD-CIT"}).json()["items"]] == ["ad-cit"]
    assert env.get("/users", params={"q": "ad_cit"}).json()["items"] == []
    assert env.get(f"/users/{citizen}").json()["username"] == "ad-cit"


def test_user_round_trip_never_shows_a_password_hash(env: Env) -> None:
    created = env.send(
        "POST",
        "/users",
        json={
            "username": "handler.li",
            "full_name": "李承办",
            "role": "handler",
            "unit_id": env.units["AD-P1"],
            "phone": "13800000000",
            "password": PASSWORD,
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["has_password"] and not user["locked"] and user["role"] == "handler"
    assert "password_hash" not in user and PASSWORD not in created.text and "argon2" not in created.text
    # The password works: the new account can log in.
    login = env.client.post(f"{API}/auth/login", json={"username": "handler.li", "password": PASSWORD})
    assert login.status_code == 200, login.text

    listed = env.get("/users", params={"role": "handler"}).json()
    assert [u["username"] for u in listed["items"]] == ["handler.li"]
    assert "argon2" not in env.get("/users").text

    moved = env.send("PATCH", f"/users/{user['id']}", json={"role": "dispatcher", "unit_id": env.units["AD-S1"]})
    assert moved.status_code == 200 and moved.json()["role"] == "dispatcher"
    assert moved.json()["unit_id"] == env.units["AD-S1"]
    as_citizen = env.send("PATCH", f"/users/{user['id']}", json={"role": "citizen", "unit_id": None})
    assert as_citizen.json()["role"] == "citizen" and as_citizen.json()["unit_id"] is None
    disabled = env.send("PATCH", f"/users/{user['id']}", json={"active": False})
    assert disabled.json()["active"] is False
    assert env.get("/users", params={"active": "false"}).json()["items"][0]["id"] == user["id"]


def test_user_validation(env: Env) -> None:
    weak = env.send("POST", "/users", json={"username": "weak", "full_name": "W", "role": "citizen", "password": "x"})
    assert _error(weak, 422, "validation_failed")["details"] == {"field": "password", "reason": "too_short"}
    for guessable in ("password12", "1234567890", "abcdabcdab", "weakling-2026"):  # the last holds the username
        body = {"username": "weakling", "full_name": "W", "role": "citizen", "password": guessable}
        refused = _error(env.send("POST", "/users", json=body), 422, "validation_failed")
        assert refused["details"]["field"] == "password" and "password" in refused["message"], guessable
    assert env.get("/users", params={"q": "weakling"}).json()["items"] == []
    staff = env.send("POST", "/users", json={"username": "nounit", "full_name": "N", "role": "handler"})
    assert _error(staff, 422, "validation_failed")["details"] == {"field": "unit_id"}
    dup = env.send("POST", "/users", json={"username": "ad-dsp", "full_name": "D", "role": "citizen"})
    _error(dup, 409, "conflict")
    # Logins match names exactly: one differing only in case would pass for the other account.
    alike = env.send("POST", "/users", json={"username": "AD-Dsp", "full_name": "D", "role": "citizen"})
    assert "ad-dsp" in _error(alike, 409, "conflict")["message"]
    for field, value in (("email", "notanemail"), ("email", "a b@x.org"), ("phone", "abc"), ("phone", "12")):
        body = {"username": "contact", "full_name": "C", "role": "citizen", field: value}
        assert field in _fields(_error(env.send("POST", "/users", json=body), 422, "validation_failed")), value
        patched = env.send("PATCH", f"/users/{env.users['cit']}", json={field: value})
        assert field in _fields(_error(patched, 422, "validation_failed")), value
    body = {"username": "contact", "full_name": "C", "role": "citizen", "email": "c@x.org", "phone": "138-1234 5678"}
    made = env.send("POST", "/users", json=body).json()
    assert (made["email"], made["phone"]) == ("c@x.org", "13812345678")
    bad = env.send("POST", "/users", json={"username": "空 格", "full_name": "", "role": "king"})
    assert {"username", "full_name", "role"} <= _fields(_error(bad, 422, "validation_failed"))
    citizen_unit = env.send("PATCH", f"/users/{env.users['cit']}", json={"unit_id": env.units["AD-S1"]})
    _error(citizen_unit, 422, "validation_failed")
    _error(env.send("PATCH", f"/users/{env.users['dsp']}", json={"username": "x"}), 422, "validation_failed")
    _error(env.get("/users/987654"), 404, "not_found")
    _error(env.send("POST", "/users/987654/lock"), 404, "not_found")


def test_lock_and_unlock(env: Env) -> None:
    dsp = env.users["dsp"]
    locked = env.send("POST", f"/users/{dsp}/lock", json={"minutes": 30})
    assert locked.status_code == 200 and locked.json()["locked"] and locked.json()["locked_until"]
    # A locked account's API tokens stop working at once.
    _error(env.get("/units", "dsp"), 401, "unauthenticated")
    unlocked = env.send("POST", f"/users/{dsp}/unlock")
    assert unlocked.status_code == 200 and not unlocked.json()["locked"]
    assert env.get("/units", "dsp").status_code == 200
    # Locked until unlocked when no duration is given.
    assert env.send("POST", f"/users/{dsp}/lock").json()["locked"]


def test_failed_logins_show_as_a_password_lockout_that_unlock_lifts(env: Env) -> None:
    dsp = env.users["dsp"]
    for _ in range(5):  # CITYHUB_LOGIN_MAX_FAILURES
        env.client.post(f"{API}/auth/login", json={"username": "ad-dsp", "password": "not-my-password"})
    shown = env.get(f"/users/{dsp}").json()
    assert shown["login_locked_until"] and not shown["locked"] and shown["locked_until"] is None
    listed = {u["username"]: u for u in env.get("/users").json()["items"]}
    assert listed["ad-dsp"]["login_locked_until"] == shown["login_locked_until"]
    assert listed["ad-sup"]["login_locked_until"] is None
    assert env.get("/units", "dsp").status_code == 200  # the account's token still works
    assert env.send("POST", f"/users/{dsp}/unlock").json()["login_locked_until"] is None
    login = env.client.post(f"{API}/auth/login", json={"username": "ad-dsp", "password": PASSWORD})
    assert login.status_code == 200, login.text


def test_admin_cannot_lock_out_themself(env: Env) -> None:
    me = env.users["adm"]
    _error(env.send("POST", f"/users/{me}/lock"), 409, "conflict")
    _error(env.send("PATCH", f"/users/{me}", json={"active": False}), 409, "conflict")
    _error(env.send("PATCH", f"/users/{me}", json={"role": "citizen", "unit_id": None}), 409, "conflict")
    assert env.send("PATCH", f"/users/{me}", json={"phone": "020-1234"}).status_code == 200


# --- categories --------------------------------------------------------------------------------------------


def test_category_round_trip(env: Env) -> None:
    top = env.send("POST", "/categories", json={"name": "城乡建设"})
    assert top.status_code == 201, top.text
    top_id = top.json()["id"]
    assert top.json()["level"] == 1 and top.json()["code"].startswith("C")
    mid = env.send("POST", "/categories", json={"name": "住房保障", "parent_id": top_id}).json()
    leaf = env.send("POST", "/categories", json={"name": "保障房", "parent_id": mid["id"]}).json()
    assert leaf["path"] == "城乡建设/住房保障/保障房" and leaf["level"] == 3
    assert leaf["code"].startswith(mid["code"] + ".")
    # ``q``: the text in the path, or in the code (or English name) whatever its case.
    assert [c["id"] for c in env.get("/categories", params={"q": "住房保障"}).json()] == [mid["id"], leaf["id"]]
    assert [c["id"] for c in env.get("/categories", params={"q": leaf["code"].lower()}).json()] == [leaf["id"]]

    _error(env.send("POST", "/categories", json={"name": "住房保障", "parent_id": top_id}), 409, "conflict")
    _error(env.send("POST", "/categories", json={"name": "a/b"}), 422, "validation_failed")
    _error(env.send("POST", "/categories", json={"name": "x", "parent_id": 987654}), 422, "validation_failed")

    renamed = env.send("PATCH", f"/categories/{mid['id']}", json={"name": "住房"})
    assert renamed.status_code == 200 and renamed.json()["path"] == "城乡建设/住房"
    assert env.get(f"/categories/{leaf['id']}").json()["path"] == "城乡建设/住房/保障房"
    assert [c["name"] for c in env.get("/categories", params={"level": 2}).json()] == ["住房"]
    assert [c["id"] for c in env.get("/categories", params={"parent_id": mid["id"]}).json()] == [leaf["id"]]

    tree = env.get("/categories/tree").json()
    assert tree[0]["name"] == "城乡建设" and tree[0]["children"][0]["children"][0]["name"] == "保障房"

    # Retiring a branch retires what hangs below it; inactive nodes are left out unless asked for.
    assert env.send("PATCH", f"/categories/{mid['id']}", json={"active": False}).json()["active"] is False
    assert env.get(f"/categories/{leaf['id']}").json()["active"] is False
    assert [c["name"] for c in env.get("/categories").json()] == ["城乡建设"]
    assert len(env.get("/categories", params={"include_inactive": "true"}).json()) == 3
    revive_leaf = env.send("PATCH", f"/categories/{leaf['id']}", json={"active": True})
    _error(revive_leaf, 422, "validation_failed")
    assert env.send("PATCH", f"/categories/{mid['id']}", json={"active": True}).json()["active"] is True
    _error(env.get("/categories/987654"), 404, "not_found")
    nameless = _error(env.send("PATCH", f"/categories/{mid['id']}", json={"name": None}), 422, "validation_failed")
    assert nameless["details"]["field"] == "name" and "name cannot be null" in nameless["message"]


# --- SLA rules ---------------------------------------------------------------------------------------------


def test_sla_rules_round_trip(env: Env) -> None:
    category = env.send("POST", "/categories", json={"name": "市容环境"}).json()
    default = env.send("PUT", "/sla/rules", json={"accept_hours": 2, "finish_days": 5})
    assert default.status_code == 200, default.text
    rule = env.send(
        "PUT",
        "/sla/rules",
        json={
            "category_id": category["id"],
            "urgency": "urgent",
            "accept_hours": 1,
            "finish_days": 2,
            "warning_share": 0.5,
        },
    ).json()
    assert rule["category_path"] == "市容环境" and rule["warning_share"] == 0.5
    # PUT replaces the rule of the same category × urgency rather than adding another.
    again = env.send(
        "PUT",
        "/sla/rules",
        json={"category_id": category["id"], "urgency": "urgent", "accept_hours": 3, "finish_days": 4},
    ).json()
    assert again["id"] == rule["id"] and again["accept_hours"] == 3 and again["warning_share"] is None
    listed = env.get("/sla/rules", "sup").json()
    assert [(r["category_id"], r["urgency"]) for r in listed] == [(None, None), (category["id"], "urgent")]

    assert env.send("DELETE", f"/sla/rules/{rule['id']}").status_code == 204
    assert len(env.get("/sla/rules").json()) == 1
    _error(env.send("DELETE", f"/sla/rules/{rule['id']}"), 404, "not_found")

    bad = env.send("PUT", "/sla/rules", json={"accept_hours": 0, "finish_days": -1, "warning_share": 1.5})
    assert {"accept_hours", "finish_days", "warning_share"} <= _fields(_error(bad, 422, "validation_failed"))
    missing = env.send("PUT", "/sla/rules", json={"category_id": 987654, "accept_hours": 1, "finish_days": 1})
    assert _error(missing, 422, "validation_failed")["details"] == {"field": "category_id"}


# --- calendar ----------------------------------------------------------------------------------------------


def test_calendar_round_trip(env: Env) -> None:
    # 2026-10-01 is National Day in the official calendar.
    official = env.get("/calendar/check/2026-10-01").json()
    assert official == {"day": "2026-10-01", "is_workday": False, "source": "official", "name": "国庆节"}
    put = env.send("PUT", "/calendar/days/2026-10-01", json={"is_workday": True, "name": "应急值守"})
    assert put.status_code == 200 and put.json() == {"day": "2026-10-01", "is_workday": True, "name": "应急值守"}
    assert env.get("/calendar/check/2026-10-01").json()["source"] == "override"
    assert env.get("/calendar/check/2026-10-01").json()["is_workday"] is True
    env.send("PUT", "/calendar/days/2027-01-04", json={"is_workday": False})
    assert [d["day"] for d in env.get("/calendar/days").json()] == ["2026-10-01", "2027-01-04"]
    assert [d["day"] for d in env.get("/calendar/days", params={"year": 2027}).json()] == ["2027-01-04"]

    assert env.send("DELETE", "/calendar/days/2026-10-01").status_code == 204
    assert env.get("/calendar/check/2026-10-01").json()["is_workday"] is False
    _error(env.send("DELETE", "/calendar/days/2026-10-01"), 404, "not_found")

    # A year the built-in calendar does not know falls back to Monday-Friday (2100-01-04 is a Monday) ...
    far = env.get("/calendar/check/2100-01-04").json()
    assert far["source"] == "weekday" and far["is_workday"] is True
    # ... less the holidays the law gives, computed for such a year.
    new_year = env.get("/calendar/check/2100-01-01").json()
    assert new_year == {"day": "2100-01-01", "is_workday": False, "source": "statutory", "name": "元旦"}
    _error(env.get("/calendar/check/2026-02-30"), 422, "validation_failed")
    _error(env.send("PUT", "/calendar/days/2026-10-02", json={"name": "x"}), 422, "validation_failed")
    _error(env.send("PUT", "/calendar/days/1800-01-01", json={"is_workday": True}), 422, "validation_failed")
    _error(env.get("/calendar/days", params={"year": 99999}), 422, "validation_failed")


def test_calendar_import_takes_the_notice_as_published_and_lists_what_it_refuses(env: Env) -> None:
    from holiday_notices import NOTICES

    text = NOTICES[2025].replace("共5天", "共4天")  # 劳动节's count no longer fits its dates
    done = env.send("POST", "/calendar/import", json={"text": text})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["entered"], body["holidays"], body["workdays"]) == (27, 23, 4)
    assert body["refused"] == [
        {
            "row": 6,
            "problem": "notice_total",
            "value": "劳动节",
            "message": "line 6 (劳动节): its 共N天 does not match its dates",
        }
    ]
    assert env.get("/calendar/check/2025-01-28").json()["source"] == "override"
    assert {d["day"] for d in env.get("/calendar/days", params={"year": 2025}).json()} >= {"2025-01-26", "2025-10-08"}
    rows = env.send("POST", "/calendar/import", json={"text": "2031-02-03,holiday,春节\n2031-13-01,holiday,x"})
    assert rows.json()["entered"] == 1 and rows.json()["refused"][0]["problem"] == "date"
    _error(env.send("POST", "/calendar/import", json={"text": ""}), 422, "validation_failed")
    for text in ("  \n\n", "date,kind,name\n"):  # no day in it: refused, not "0 entered"
        refused = _error(env.send("POST", "/calendar/import", json={"text": text}), 422, "validation_failed")
        assert refused["details"] == {"field": "text"} and "no calendar days" in refused["message"]


def test_values_the_database_cannot_hold_are_client_errors(env: Env) -> None:
    # A coordinate beyond any float is a bad boundary, not a crash.
    ring = [[10**400, 0], [1, 1], [1, 0], [10**400, 0]]
    body = {"code": "AD-B", "name": "B", "tier": "street", "boundary": {"type": "Polygon", "coordinates": [ring]}}
    _error(env.send("POST", "/units", json=body), 422, "validation_failed")
    # An id in a path beyond any key is a unit not found (tests/integration/test_path_ids.py for every route).
    assert _error(env.get(f"/units/{2**40}"), 404, "not_found")["message"] == f"unit {2**40} not found"
    # An id filter beyond any key names nothing, however large: an empty list on both databases (PostgreSQL refused
    # one beyond 32 bits, both one beyond 64).
    for far in (2**40, 2**70):
        orders = env.get("/orders", params={"unit_id": far})
        assert orders.status_code == 200 and orders.json()["items"] == [], orders.text
    # PostgreSQL text cannot hold NUL: the API refuses it on either backend, naming the field.
    token = _error(env.send("POST", "/auth/tokens", json={"name": "a\x00b"}), 422, "validation_failed")
    assert "NUL" in token["message"] and token["details"]["field"] == "name"


# --- English names -----------------------------------------------------------------------------------------


def test_a_unit_and_a_category_keep_an_optional_english_name_through_the_api(env: Env) -> None:
    """``name_en`` is given at creation, changed, cleared with null (an empty one too), left as it is when a
    change does not name it; ``name`` stays the Chinese name of record."""
    unit = env.send(
        "POST",
        "/units",
        json={"code": "AD-P2", "name": "白云区住房和城乡建设局", "tier": "department", "name_en": " Housing Bureau "},
    ).json()
    assert unit["name"] == "白云区住房和城乡建设局" and unit["name_en"] == "Housing Bureau"
    assert env.get(f"/units/{env.units['AD-S1']}").json()["name_en"] is None
    patched = env.send("PATCH", f"/units/{unit['id']}", json={"duties": "住房"}).json()
    assert patched["name_en"] == "Housing Bureau"
    renamed = env.send("PATCH", f"/units/{unit['id']}", json={"name_en": "Baiyun District Housing Bureau"}).json()
    assert renamed["name_en"] == "Baiyun District Housing Bureau" and renamed["name"] == "白云区住房和城乡建设局"
    assert env.send("PATCH", f"/units/{unit['id']}", json={"name_en": ""}).json()["name_en"] is None
    _error(env.send("PATCH", f"/units/{unit['id']}", json={"name_en": "x" * 201}), 422, "validation_failed")

    top = env.send("POST", "/categories", json={"name": "城乡建设", "name_en": "Urban-rural development"}).json()
    assert top["name"] == "城乡建设" and top["name_en"] == "Urban-rural development"
    leaf = env.send("POST", "/categories", json={"name": "住房保障", "parent_id": top["id"]}).json()
    assert leaf["name_en"] is None and leaf["path"] == "城乡建设/住房保障"
    kept = env.send("PATCH", f"/categories/{top['id']}", json={"active": True}).json()
    assert kept["name_en"] == "Urban-rural development"
    changed = env.send("PATCH", f"/categories/{leaf['id']}", json={"name_en": "Housing security"}).json()
    assert changed["name_en"] == "Housing security" and changed["name"] == "住房保障"
    assert env.get("/categories/tree").json()[0]["children"][0]["name_en"] == "Housing security"
    assert env.send("PATCH", f"/categories/{leaf['id']}", json={"name_en": None}).json()["name_en"] is None
    _error(env.send("POST", "/categories", json={"name": "x", "name_en": "y" * 121}), 422, "validation_failed")
    logged = env.get("/admin/log", params={"area": "category"}).json()
    assert any("name_en" in (e.get("changes") or {}) for e in logged["items"])
