"""The authorization matrix: ONE table (role × endpoint) drives a parametrized test over the real app on both
backends, for an order in the caller's scope ("own") and one outside it ("other").

Reading a cell: ``Y`` the role may use the endpoint, ``.`` it may not (403, whatever the order), ``u`` the role
may but not as the caller's unit (403 on an own order, looked at: a handler's 下派 is a street's, to its own
communities; another unit's answers 404, as if missing). For an allowed endpoint, an own order succeeds; another
unit's order answers 404 (as if missing) unless the caller's data scope is the whole district (``SEES_ALL``), when it
succeeds too. The ``unmasked`` row says who sees the citizen's name
and phone in clear on an order they can read. The org and the callers are built once per backend; each case
gets a fresh order brought to the state its action needs.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from app_helpers import shared_app
from cityhub.auth.service import create_token, open_session
from cityhub.auth.settings import get_auth_settings
from cityhub.db import reset_engine, session_scope
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import files, service
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import OrderCreate

CALLERS = "op dsp hdl hst hcm ins sup ldr adm cit"
# fmt: off
TABLE = {
    # endpoint                 op dsp hdl hst hcm ins sup ldr adm cit
    "read:list":              "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "read:get":               "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "read:events":            "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "read:actions":           "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "unmasked":               "Y  Y   Y   Y   Y   Y   Y   .   Y   Y",
    "create":                 "Y  Y   .   .   .   Y   .   .   Y   Y",
    "import":                 "Y  Y   .   .   .   .   .   .   Y   .",
    "auth:me":                "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "auth:tokens":            "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "act:instant_answer":     "Y  .   .   .   .   .   .   .   Y   .",
    "act:dispatch":           ".  Y   .   .   .   .   .   .   Y   .",
    "act:transfer":           ".  Y   u   Y   u   u   .   .   Y   .",
    "act:add_assist":         ".  Y   Y   Y   Y   Y   .   .   Y   .",
    "act:merge":              ".  Y   .   .   .   .   .   .   Y   .",
    "act:split":              "Y  Y   .   .   .   .   .   .   Y   .",
    "act:cancel":             ".  Y   .   .   .   .   .   .   Y   .",
    "act:accept":             ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:return":             ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:start":              ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:reply":              ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:request_extension":  ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:suspend":            ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:resume":             ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:assist_accept":      ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:assist_reply":       ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:assist_return":      ".  .   Y   Y   Y   Y   .   .   Y   .",
    "act:urge":               ".  .   .   .   .   .   Y   Y   Y   .",
    "act:escalate":           ".  .   .   .   .   .   Y   Y   Y   .",
    "act:approve_extension":  ".  .   .   .   .   .   Y   .   Y   .",
    "act:reject_extension":   ".  .   .   .   .   .   Y   .   Y   .",
    "act:reject_reply":       ".  .   .   .   .   .   Y   .   Y   .",
    "act:callback":           ".  .   .   .   .   .   Y   .   Y   Y",
    "act:close":              ".  .   .   .   .   .   Y   .   Y   .",
    "act:reopen":             ".  Y   .   .   .   .   Y   .   Y   .",
    "act:assign":             ".  .   .   .   .   .   .   Y   Y   .",
    "act:comment":            "Y  Y   Y   Y   Y   Y   Y   Y   Y   .",
    "files:attach":           "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "files:read":             "Y  Y   Y   Y   Y   Y   Y   Y   Y   Y",
    "files:remove":           ".  .   .   .   .   .   Y   .   Y   .",
    "files:publish":          ".  .   .   .   .   .   Y   .   Y   .",
}
# fmt: on
SEES_ALL = {"op", "sup", "ldr", "adm"}  # district units, leader and admin: scope is the whole district
UNSCOPED = {"create", "import", "auth:me", "auth:tokens"}  # no order involved: only "own" applies

# Who each caller is: role and unit code ("" = none).
CALLER_UNITS = {
    "op": (Role.OPERATOR, "QU"),
    "dsp": (Role.DISPATCHER, "S1"),
    "hdl": (Role.HANDLER, "P1"),
    "hst": (Role.HANDLER, "S1"),
    "hcm": (Role.HANDLER, "C1"),
    "ins": (Role.INSPECTOR, "C1"),
    "sup": (Role.SUPERVISOR, "QU"),
    "ldr": (Role.LEADER, "QU"),
    "adm": (Role.ADMIN, "QU"),
    "cit": (Role.CITIZEN, ""),
}
# The unit an own order is led by: the caller's unit, or a department for district callers and citizens.
OWN_LEAD = {
    **{"op": "P1", "dsp": "S1", "hdl": "P1", "hst": "S1", "hcm": "C1", "ins": "C1"},
    **{"sup": "P1", "ldr": "P1", "adm": "P1"},
}

# Steps from "received" to the state an action needs, and the action's parameters.
SETUP: dict[str, list[str]] = {
    "instant_answer": [],
    "dispatch": [],
    "cancel": [],
    "accept": ["dispatch"],
    "return": ["dispatch"],
    "transfer": ["dispatch"],
    "add_assist": ["dispatch"],
    "urge": ["dispatch"],
    "escalate": ["dispatch"],
    "assign": ["dispatch"],
    "merge": ["dispatch"],
    "split": ["dispatch"],
    "comment": ["dispatch"],
    "assist_accept": ["dispatch", "add_assist"],
    "assist_reply": ["dispatch", "add_assist"],
    "assist_return": ["dispatch", "add_assist"],
    "start": ["dispatch", "accept"],
    "request_extension": ["dispatch", "accept"],
    "suspend": ["dispatch", "accept"],
    "reply": ["dispatch", "accept"],
    "approve_extension": ["dispatch", "accept", "request_extension"],
    "reject_extension": ["dispatch", "accept", "request_extension"],
    "resume": ["dispatch", "accept", "suspend"],
    "reject_reply": ["dispatch", "accept", "reply"],
    "callback": ["dispatch", "accept", "reply"],
    "close": ["dispatch", "accept", "reply", "callback"],
    "reopen": ["dispatch", "accept", "reply", "unsatisfied"],
}
TEXT = {"reason": "测试原因", "text": "已处理", "answer": "请携带身份证办理"}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(out, "PNG")
    return out.getvalue()


PNG = _png()  # a photo given with an appeal


def _cells(row: str) -> dict[str, bool]:
    return dict(zip(CALLERS.split(), (c == "Y" for c in row.split()), strict=True))


def _unit_bound(endpoint: str, caller: str) -> bool:
    """The role may, the caller's unit may not (a ``u`` cell)."""
    return dict(zip(CALLERS.split(), TABLE[endpoint].split(), strict=True))[caller] == "u"


def _cases() -> Iterator[Any]:
    for endpoint in TABLE:
        if endpoint == "unmasked":
            continue
        for caller in CALLERS.split():
            for scope in ("own",) if endpoint in UNSCOPED else ("own", "other"):
                yield pytest.param(endpoint, caller, scope, id=f"{endpoint}-{caller}-{scope}")


def expected_status(endpoint: str, caller: str, scope: str) -> int:
    hidden = scope == "other" and caller not in SEES_ALL and endpoint != "read:list"
    if _unit_bound(endpoint, caller):
        return 404 if hidden else 403
    if not _cells(TABLE[endpoint])[caller]:
        # Removing another's file is refused once the order is seen: whoever attached a file may remove it, so
        # the attachment is looked at (the row's ``.``: a file someone else attached).
        return 404 if endpoint == "files:remove" and hidden else 403
    if hidden:
        return 404
    return {"create": 201, "auth:tokens": 201, "files:attach": 201, "files:remove": 204}.get(endpoint, 200)


@dataclass
class World:
    client: TestClient
    units: dict[str, int]
    users: dict[str, int]
    tokens: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, _backend_dbs: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    backend = request.param
    enabled = {b.strip() for b in os.environ.get("CITYHUB_TEST_BACKENDS", "").split(",") if b.strip()}
    if enabled and backend not in enabled:
        pytest.skip(f"backend {backend} disabled by CITYHUB_TEST_BACKENDS")
    url = _backend_dbs.get(backend)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYHUB_DATABASE_URL", url)
        mp.setenv("CITYHUB_FILES_DIR", str(tmp_path_factory.mktemp("files")))
        reset_engine()
        try:
            with session_scope() as s:
                units: dict[str, int] = {}
                for code, tier, parent in [
                    ("QU", UnitTier.DISTRICT, None),
                    ("S1", UnitTier.STREET, "QU"),
                    ("S2", UnitTier.STREET, "QU"),
                    ("C1", UnitTier.COMMUNITY, "S1"),
                    ("C2", UnitTier.COMMUNITY, "S2"),
                    ("P1", UnitTier.DEPARTMENT, "QU"),
                    ("P2", UnitTier.DEPARTMENT, "QU"),
                    ("Q1", UnitTier.DEPARTMENT, "QU"),
                    ("Q2", UnitTier.DEPARTMENT, "QU"),
                ]:
                    unit = Unit(code=f"MX-{code}", name=code, tier=tier, parent_id=units.get(parent or ""))
                    s.add(unit)
                    s.flush()
                    units[code] = unit.id
                users: dict[str, int] = {}
                tokens: dict[str, str] = {}
                for caller, (role, unit_code) in [*CALLER_UNITS.items(), ("cit2", (Role.CITIZEN, ""))]:
                    user = User(username=f"mx-{caller}", full_name=caller, role=role, unit_id=units.get(unit_code))
                    s.add(user)
                    s.flush()
                    users[caller] = user.id
                    tokens[caller] = create_token(s, user_id=user.id, name="matrix")[1]
            with TestClient(shared_app(), raise_server_exceptions=False) as client:
                yield World(client, units, users, tokens)
        finally:
            reset_engine()
            _backend_dbs.clean(backend)


def _order(world: World, caller: str, scope: str, action: str | None) -> int:
    """A fresh order in the caller's scope (or outside it), brought to the state ``action`` needs."""
    u = world.units
    own = scope == "own"
    street, community = ("S1", "C1") if own else ("S2", "C2")
    lead = u[OWN_LEAD.get(caller, "P1")] if own else u["P2"]
    citizen = world.users["cit"] if own else world.users["cit2"]
    assisting = u["Q2"]
    if action and action.startswith("assist_"):
        # Co-handling: another unit leads, the caller's unit assists (its scope includes co-handled orders).
        lead = u["Q1"] if own else u["P2"]
        caller_unit = CALLER_UNITS[caller][1]
        if own and CALLER_UNITS[caller][0] in (Role.HANDLER, Role.INSPECTOR):
            assisting = u[caller_unit]
    with session_scope() as s:
        data = OrderCreate(
            channel="hotline",
            content="路灯不亮",
            citizen_name="王五",
            citizen_phone="13812345678",
            citizen_user_id=citizen,
        )
        order, _ = service.create_order(s, data=data)
        order.street_id, order.community_id = u[street], u[community]
        s.flush()
        steps = SETUP.get(action or "", ["dispatch"])
        for step in steps:
            params: dict[str, Any] = {"reason": "r", "text": "t"}
            if step == "dispatch":
                params["unit_id"] = lead
            elif step == "add_assist":
                params["unit_id"] = assisting
            elif step == "request_extension":
                params["days"] = 2
            elif step in ("callback", "unsatisfied"):
                params["satisfied"] = step == "callback"
                step = "callback"
            service.act(s, order_id=order.id, action=step, params=params)
        return order.id


def _action_body(world: World, caller: str, scope: str, action: str, order_id: int) -> dict[str, Any]:
    u = world.units
    body: dict[str, Any] = dict(TEXT)
    if action == "dispatch":
        body["unit_id"] = u[OWN_LEAD.get(caller, "P1")] if scope == "own" else u["P2"]
    elif action == "transfer" and caller == "hst":
        body["unit_id"] = u["C1"]  # a street's handler passes an order down (下派) to one of its communities
    elif action in ("transfer", "add_assist"):
        body["unit_id"] = u["Q1"]
    elif action == "request_extension":
        body["days"] = 2
    elif action == "callback":
        body["satisfied"] = True
    elif action == "merge":
        body["master_id"] = _order(world, caller, scope, "comment")
    elif action == "split":
        body["content"] = "另外楼下餐馆油烟直排"
    if action.startswith("assist_") and caller == "adm":
        body["unit_id"] = u["Q2"]
    return body


@pytest.mark.parametrize(("endpoint", "caller", "scope"), list(_cases()))
def test_matrix(world: World, endpoint: str, caller: str, scope: str) -> None:
    expected = expected_status(endpoint, caller, scope)
    headers = {"Authorization": f"Bearer {world.tokens[caller]}"}
    c = world.client
    kind, _, name = endpoint.partition(":")
    if endpoint == "create":
        response = c.post("/api/v1/orders", json={"channel": "web", "content": "井盖缺失"}, headers=headers)
    elif endpoint == "import":
        sheet = f"id,title,content\nimp-{caller},井盖缺失,人民路井盖缺失\n".encode()
        response = c.post("/api/v1/orders/import", files={"file": ("a.csv", sheet, "text/csv")}, headers=headers)
    elif endpoint == "auth:me":
        response = c.get("/api/v1/auth/me", headers=headers)
    elif endpoint == "auth:tokens":
        # Tokens are made signed in: a bearer token makes none without the account's password (test_auth.py).
        with session_scope() as s:
            user = s.get(User, world.users[caller])
            assert user is not None
            signed_in = open_session(s, user=user, method="password", client_ip="testclient", user_agent=None)
        cookies = {get_auth_settings().session_cookie_name: signed_in.session_token}
        response = TestClient(c.app, raise_server_exceptions=False, cookies=cookies).post(
            "/api/v1/auth/tokens", json={"name": "x"}, headers={"X-CSRF-Token": signed_in.csrf_token}
        )
    elif endpoint == "read:list":
        order_id = _order(world, caller, scope, None)
        response = c.get("/api/v1/orders", headers=headers)
    elif kind == "read":
        order_id = _order(world, caller, scope, None)
        suffix = {"get": "", "events": "/events", "actions": "/actions"}[name]
        response = c.get(f"/api/v1/orders/{order_id}{suffix}", headers=headers)
    elif kind == "files":
        order_id = _order(world, caller, scope, None)
        with session_scope() as s:  # a photo given with the appeal, received by the system
            (row,) = files.attach(
                s,
                order_id=order_id,
                uploads=[files.Upload("a.png", PNG)],
                actor=service.SYSTEM,
                with_appeal=True,
            )
            base = f"/api/v1/orders/{order_id}/attachments"
            path = {
                "attach": base,
                "read": f"{base}/{row.id}/content",
                "remove": f"{base}/{row.id}",
                "publish": f"{base}/{row.id}/publish",  # 公开 for Open311: those who moderate the order's files
            }[name]
        if name == "attach":
            response = c.post(
                path, files=[("files", ("b.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"))], headers=headers
            )
        elif name == "read":
            response = c.get(path, headers=headers)
        elif name == "publish":
            response = c.post(path, headers=headers)
        else:
            response = c.delete(path, params={"reason": "传错"}, headers=headers)
    else:
        full = expected != 403 or _unit_bound(endpoint, caller)  # a whole request, refused for the caller's unit
        order_id = _order(world, caller, scope, name) if full else _order(world, caller, scope, None)
        body = _action_body(world, caller, scope, name, order_id) if full else dict(TEXT)
        response = c.post(f"/api/v1/orders/{order_id}/actions/{name}", json=body, headers=headers)

    assert response.status_code == expected, response.text
    if endpoint == "files:read" and expected == 200:
        # The original to whoever reads the appeal's personal data; to the others an EXIF-free copy (JPEG).
        unmasked = _cells(TABLE["unmasked"])[caller]
        assert (response.content == PNG) == unmasked
        assert response.headers["content-type"] == ("image/png" if unmasked else "image/jpeg")
        return
    payload = response.json() if response.content else None
    if expected >= 400:
        assert set(payload) == {"code", "message", "details"}
        assert payload["code"] == {403: "permission_denied", 404: "not_found"}[expected]
        if expected == 404:  # exactly what a missing order answers, apart from the id
            missing = c.get("/api/v1/orders/987654321", headers=headers).json()
            assert payload["message"].replace(str(order_id), "N") == missing["message"].replace("987654321", "N")
        return
    if endpoint == "read:list":
        visible = scope == "own" or caller in SEES_ALL
        assert (order_id in [o["id"] for o in payload["items"]]) == visible
    if endpoint == "read:get":
        unmasked = _cells(TABLE["unmasked"])[caller]
        assert (payload["citizen_phone"] == "13812345678") == unmasked
        assert payload["citizen_phone"] in ("13812345678", "138****5678")
    if kind == "act":
        # Read as admin: an action may move the order out of the caller's scope (a handler's return).
        admin = {"Authorization": f"Bearer {world.tokens['adm']}"}
        trail = c.get(f"/api/v1/orders/{order_id}/events", headers=admin).json()
        assert trail[-1]["action"] == name and trail[-1]["actor_id"] == world.users[caller]
    if endpoint == "import":  # the audit trail names the caller
        assert (payload["imported"], payload["rejected"]) == (1, 0)
        with session_scope() as s:
            imported = s.scalars(select(Order).where(Order.external_id == f"imp-{caller}")).one()
            assert [(e.action, e.actor_id) for e in imported.events] == [("create", world.users[caller])]
    if endpoint == "create" and caller == "cit":  # filed as the citizen's own: they see it, another does not
        other = {"Authorization": f"Bearer {world.tokens['cit2']}"}
        assert c.get(f"/api/v1/orders/{payload['id']}", headers=headers).status_code == 200
        assert c.get(f"/api/v1/orders/{payload['id']}", headers=other).status_code == 404
