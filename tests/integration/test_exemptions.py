"""考核核减: a unit's request that an order not count against it, a supervisor's decision, and what it does to the
assessment — on the hand-counted history of test_kpi, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from test_kpi import EXPECTED, MARCH, D, H, T, _act, _new, history  # noqa: F401  (the fixture)

from app_helpers import shared_app
from cityhub.analytics import exemptions, kpi
from cityhub.auth.service import create_token
from cityhub.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.sharing import georeport
from cityhub.workorders import service
from cityhub.workorders.models import Order, OrderEvent
from cityhub.workorders.schemas import CITIZEN_STEPS

LATER = T.replace(month=5)  # decisions come long after the facts: the figures of March change all the same


@pytest.fixture
def staff(db_session, history):  # noqa: F811
    """A handler of D2, a handler of D, a supervisor and a leader, as actors."""
    s = db_session
    district = history["units"]["S"].parent_id
    users = {
        "h2": User(username="x-h2", full_name="住建承办", role=Role.HANDLER, unit_id=history["d2"]),
        "h1": User(username="x-h1", full_name="城管承办", role=Role.HANDLER, unit_id=history["d"]),
        "sup": User(username="x-sup", full_name="考核科", role=Role.SUPERVISOR, unit_id=district),
        "lead": User(username="x-lead", full_name="领导", role=Role.LEADER, unit_id=district),
    }
    s.add_all(users.values())
    s.flush()
    return {
        k: service.Actor(name=u.full_name, user_id=u.id, unit_id=u.unit_id, role=u.role.value) for k, u in users.items()
    }


def _figure(s, code: str, name: str) -> tuple[int, int]:
    row = next(r for r in kpi.compute(s, period=MARCH) if r.code == code)
    return row.rates[name].numerator, row.rates[name].denominator


def _trail(s, order_id: int) -> list[str]:
    return list(s.scalars(select(OrderEvent.action).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)))


def test_an_approved_exemption_leaves_the_late_reply_out_of_the_units_figures(db_session, history, staff):  # noqa: F811
    """o4 was answered late by D2 (按时办结 1/2): approved, its fact leaves numerator and denominator (1/1), the
    score rises, the drill-down lists it apart; the trail holds the request and the decision, the state unchanged."""
    s, o4 = db_session, history["orders"]["o4"]
    assert _figure(s, "K-D2", "on_time_completion") == EXPECTED["D2"]["on_time_completion"]
    before = next(r for r in kpi.compute(s, period=MARCH) if r.code == "K-D2")
    state = s.get(Order, o4).state
    req = exemptions.request(
        s,
        order_id=o4,
        measures=["on_time_completion"],
        reason_category="force_majeure",
        reason_text="暴雨停工",
        actor=staff["h2"],
        now=LATER,
    )
    s.commit()
    assert req.state == "pending" and _figure(s, "K-D2", "on_time_completion") == (1, 2)  # a request changes nothing
    exemptions.decide(s, exemption_id=req.id, approve=True, reason="气象部门证明", actor=staff["sup"], now=LATER)
    s.commit()
    after = next(r for r in kpi.compute(s, period=MARCH) if r.code == "K-D2")
    assert (after.rates["on_time_completion"].numerator, after.rates["on_time_completion"].denominator) == (1, 1)
    assert after.exempted == {"on_time_completion": 1} and after.exempted_orders == 1
    assert after.score > before.score
    assert after.as_dict()["kpis"]["on_time_completion"]["exempted"] == 1
    dd = kpi.drilldown(s, unit="K-D2", kpi="on_time_completion", period=MARCH)
    assert [i["order_id"] for i in dd.exempted] == [o4] and o4 not in [i["order_id"] for i in dd.denominator]
    assert dd.as_dict()["exempted_count"] == 1
    assert o4 not in [f.order_id for f in kpi.facts(s, kpi="on_time_completion", period=MARCH, unit_id=history["d2"])]
    # Other measures and other units keep their figures.
    assert _figure(s, "K-D2", "on_time_accept") == EXPECTED["D2"]["on_time_accept"]
    assert _figure(s, "K-D1", "on_time_completion") == EXPECTED["D"]["on_time_completion"]
    assert _trail(s, o4)[-2:] == ["exemption_request", "exemption_approve"]
    events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == o4).order_by(OrderEvent.id)).all()[-2:]
    assert all(e.from_state == e.to_state == state.value for e in events)
    assert events[1].reason == "气象部门证明" and events[1].payload["exemption_id"] == req.id
    assert s.get(Order, o4).state == state
    # Between the unit and its supervisors: not a step of the citizen's progress, nor an Open311 service request update.
    assert set(exemptions.EVENTS) <= georeport.INTERNAL_ACTIONS and not set(exemptions.EVENTS) & CITIZEN_STEPS


def test_a_rejected_request_changes_no_figure(db_session, history, staff):  # noqa: F811
    s, o2 = db_session, history["orders"]["o2"]
    req = exemptions.request(
        s, order_id=o2, measures=["satisfaction"], reason_category="unrelated_rating", actor=staff["h1"], now=LATER
    )
    with pytest.raises(ValidationFailed, match="reason"):
        exemptions.decide(s, exemption_id=req.id, approve=False, reason=" ", actor=staff["sup"])
    exemptions.decide(s, exemption_id=req.id, approve=False, reason="市民不满意的正是答复", actor=staff["sup"])
    s.commit()
    assert _figure(s, "K-D1", "satisfaction") == EXPECTED["D"]["satisfaction"]
    assert _trail(s, o2)[-2:] == ["exemption_request", "exemption_reject"]
    with pytest.raises(Conflict, match="already rejected"):
        exemptions.decide(s, exemption_id=req.id, approve=True, actor=staff["sup"])
    # Rejected, the unit may ask again (one open request at a time, not one ever).
    again = exemptions.request(
        s, order_id=o2, measures=["satisfaction"], reason_category="other", reason_text="补充材料", actor=staff["h1"]
    )
    assert again.state == "pending"


def test_the_kept_figures_follow_a_decision(db_session, history, staff):  # noqa: F811
    """The figures of March are kept per process; an approval made later is counted at once (no cache cleared)."""
    s, o2 = db_session, history["orders"]["o2"]
    s.commit()
    assert _figure(s, "K-D1", "satisfaction") == (1, 2)
    computed = kpi.computations
    assert _figure(s, "K-D1", "satisfaction") == (1, 2) and kpi.computations == computed  # kept
    req = exemptions.request(
        s, order_id=o2, measures=["satisfaction", "reopen_rate"], reason_category="unreasonable", actor=staff["h1"]
    )
    s.commit()
    exemptions.decide(s, exemption_id=req.id, approve=True, reason="诉求超出政策范围", actor=staff["sup"])
    s.commit()
    assert _figure(s, "K-D1", "satisfaction") == (1, 1)
    assert _figure(s, "K-D1", "reopen_rate") == (0, 1)


def test_requests_are_refused_saying_why(db_session, history, staff):  # noqa: F811
    s, o = db_session, history["orders"]
    ask = {"measures": ["on_time_completion"], "reason_category": "unreachable"}
    with pytest.raises(ValidationFailed, match="no assessment figure"):  # o4 is D2's, not D's
        exemptions.request(s, order_id=o["o4"], actor=staff["h1"], **ask)
    with pytest.raises(PermissionDenied, match="own unit"):
        exemptions.request(s, order_id=o["o4"], actor=staff["h1"], unit_id=history["d2"], **ask)
    with pytest.raises(PermissionDenied, match="may not ask"):
        exemptions.request(s, order_id=o["o4"], actor=staff["sup"], unit_id=history["d2"], **ask)
    with pytest.raises(ValidationFailed, match="satisfaction"):  # o4 had no callback
        exemptions.request(
            s, order_id=o["o4"], actor=staff["h2"], measures=["satisfaction"], reason_category="other", reason_text="x"
        )
    with pytest.raises(ValidationFailed, match="repeat_rate"):
        exemptions.request(
            s, order_id=o["o4"], actor=staff["h2"], measures=["repeat_rate"], reason_category="other", reason_text="x"
        )
    with pytest.raises(ValidationFailed, match="reason_text"):
        exemptions.request(
            s, order_id=o["o4"], actor=staff["h2"], measures=["on_time_completion"], reason_category="other"
        )
    with pytest.raises(ValidationFailed, match="reason_category"):
        exemptions.request(
            s, order_id=o["o4"], actor=staff["h2"], measures=["on_time_completion"], reason_category="bad luck"
        )
    with pytest.raises(NotFound):
        exemptions.request(s, order_id=10**9, actor=staff["h2"], **ask)
    first = exemptions.request(s, order_id=o["o4"], actor=staff["h2"], **ask)
    with pytest.raises(Conflict, match=f"#{first.id}"):
        exemptions.request(s, order_id=o["o4"], actor=staff["h2"], **ask)
    with pytest.raises(PermissionDenied, match="may not decide"):
        exemptions.decide(s, exemption_id=first.id, approve=True, actor=staff["lead"])
    with pytest.raises(PermissionDenied, match="may not decide"):
        exemptions.decide(s, exemption_id=first.id, approve=True, actor=staff["h2"])
    with pytest.raises(NotFound):  # out of the decider's scope
        exemptions.decide(s, exemption_id=first.id, approve=True, actor=staff["sup"], units={history["d"]})
    exemptions.decide(s, exemption_id=first.id, approve=True, actor=staff["sup"])
    with pytest.raises(ValidationFailed, match="still counted"):  # left out already
        exemptions.request(s, order_id=o["o4"], actor=staff["h2"], **ask)


def test_a_list_by_state_and_unit(db_session, history, staff):  # noqa: F811
    s, o = db_session, history["orders"]
    a = exemptions.request(
        s, order_id=o["o4"], measures=["on_time_completion"], reason_category="unreachable", actor=staff["h2"]
    )
    b = exemptions.request(
        s, order_id=o["o2"], measures=["on_time_accept"], reason_category="not_own_duty", actor=staff["h1"]
    )
    exemptions.decide(s, exemption_id=b.id, approve=True, actor=staff["sup"])
    pending, more = exemptions.search(s, state="pending")
    assert [r.id for r in pending] == [a.id] and not more
    mine, _ = exemptions.search(s, unit_ids={history["d"]})
    assert [r.id for r in mine] == [b.id]
    [shown] = exemptions.as_dicts(s, mine)
    assert shown["unit_code"] == "K-D1" and shown["order_number"] and shown["state"] == "approved"
    with pytest.raises(ValidationFailed, match="state"):
        exemptions.search(s, state="open")


@pytest.fixture
def api(app_db, db_session, history, staff):  # noqa: F811
    """The app, and bearer headers of the staff above."""
    headers = {
        name: {"Authorization": f"Bearer {create_token(db_session, user_id=a.user_id, name='t')[1]}"}
        for name, a in staff.items()
    }
    db_session.commit()  # the app reads over its own connections
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        yield client, headers


def test_the_api_creates_lists_and_decides_requests(api, history):  # noqa: F811
    client, h = api
    o4, url = history["orders"]["o4"], "/api/v1/kpi/exemptions"
    body = {
        "order_id": o4,
        "measures": ["on_time_completion"],
        "reason_category": "force_majeure",
        "reason_text": "台风",
    }
    assert client.post(url, json=body, headers=h["h1"]).status_code == 404  # D's handler does not see D2's order
    assert client.post(url, json=body, headers=h["sup"]).status_code == 403
    bad = client.post(url, json={**body, "measures": ["repeat_rate"]}, headers=h["h2"])
    assert bad.status_code == 422 and "repeat_rate" in bad.json()["message"]
    made = client.post(url, json=body, headers=h["h2"])
    assert made.status_code == 201, made.text
    req = made.json()
    assert req["state"] == "pending" and req["unit_code"] == "K-D2" and req["order_number"]
    again = client.post(url, json=body, headers=h["h2"])
    assert again.status_code == 409 and f"#{req['id']}" in again.json()["message"]
    pending = client.get(url, params={"state": "pending"}, headers=h["sup"]).json()
    assert [r["id"] for r in pending] == [req["id"]]
    assert client.get(url, params={"unit_id": history["d"]}, headers=h["sup"]).json() == []
    assert client.get(url, headers=h["h1"]).json() == []  # another unit's requests are not D's to read
    assert client.get(f"{url}/{req['id']}", headers=h["h1"]).status_code == 404
    assert client.get(url, params={"state": "open"}, headers=h["sup"]).status_code == 422
    decision = f"{url}/{req['id']}/decision"
    assert client.post(decision, json={"approve": True}, headers=h["h2"]).status_code == 403
    refused = client.post(decision, json={"approve": False}, headers=h["sup"])
    assert refused.status_code == 422 and "reason" in refused.json()["message"]
    done = client.post(decision, json={"approve": True, "reason": "台风预警证明"}, headers=h["sup"])
    assert done.status_code == 200 and done.json()["state"] == "approved" and done.json()["decided_by"] == "考核科"
    assert client.post(decision, json={"approve": True}, headers=h["sup"]).status_code == 409
    figures = client.get("/api/v1/kpi", params={"period": "2026-03"}, headers=h["lead"]).json()
    d2 = next(u for u in figures["units"] if u["code"] == "K-D2")
    assert d2["kpis"]["on_time_completion"] == {"numerator": 1, "denominator": 1, "rate": 1.0, "exempted": 1}
    assert d2["exempted_orders"] == 1
    drill = client.get(
        "/api/v1/kpi/drilldown",
        params={"period": "2026-03", "unit_id": history["d2"], "kpi": "on_time_completion"},
        headers=h["lead"],
    ).json()
    assert drill["exempted_count"] == 1 and drill["exempted"][0]["order_id"] == o4
    assert client.get(url, params={"state": "approved"}, headers=h["h2"]).json()[0]["id"] == req["id"]


def test_the_command_line_lists_asks_and_decides(app_db, db_session, history, cli_run):  # noqa: F811
    o4 = history["orders"]["o4"]
    number = db_session.get(Order, o4).number
    db_session.commit()
    code, out, err = cli_run(
        "analytics",
        "exemptions",
        "request",
        number,
        "--unit",
        "K-D2",
        "--measures",
        "on_time_completion",
        "--reason",
        "unreachable",
        "--actor",
        "考核科",
    )
    assert code == 0, err
    assert "pending" in out
    code, out, _ = cli_run("analytics", "exemptions", "list", "--state", "pending", "--format", "json")
    [row] = json.loads(out)
    assert row["order_number"] == number and row["unit_code"] == "K-D2" and row["requested_by"] == "考核科"
    code, _, err = cli_run("analytics", "exemptions", "decide", str(row["id"]), "--reject")
    assert code == 1 and err.count("\n") == 1 and "reason" in err
    code, out, _ = cli_run("analytics", "exemptions", "decide", str(row["id"]), "--approve", "--reason", "属实")
    assert code == 0 and "approved" in out
    code, _, err = cli_run("analytics", "exemptions", "decide", str(row["id"]), "--approve")
    assert code == 1 and "already approved" in err
    code, _, err = cli_run("analytics", "exemptions", "list", "--state", "open")
    assert code == 1 and err.startswith("error: unknown state")
    code, out, _ = cli_run(
        "analytics", "drilldown", "--unit", "K-D2", "--kpi", "on_time_completion", "--period", "2026-03"
    )
    assert code == 0 and "left out by approved exemptions" in out and number in out


def test_a_communitys_exemption_leaves_its_streets_figure_too(db_session, history, staff):  # noqa: F811
    """A street answers for its communities' facts (中事不出镇): an order a community answered late, exempted for the
    community, leaves the street's figure as it leaves the community's."""
    s = db_session
    community, oid = _community_order(s, history)
    assert _figure(s, "K-C1", "on_time_completion") == (0, 1) and _figure(s, "K-S1", "on_time_completion") == (0, 1)
    grid = service.Actor(name="社区网格员", unit_id=community.id, role=Role.INSPECTOR.value)
    req = exemptions.request(
        s, order_id=oid, measures=["on_time_completion"], reason_category="unreachable", actor=grid
    )
    exemptions.decide(s, exemption_id=req.id, approve=True, actor=staff["sup"])
    assert _figure(s, "K-C1", "on_time_completion") == (0, 0) and _figure(s, "K-S1", "on_time_completion") == (0, 0)
    row = next(r for r in kpi.compute(s, period=MARCH) if r.code == "K-S1")
    assert row.exempted == {"on_time_completion": 1} and row.exempted_orders == 1


def _community_order(s, history):  # noqa: F811
    """A community K-C1 of the street K-S1, and an order it answered late (按时办结 0/1 for both)."""
    street = history["units"]["S"]
    community = Unit(code="K-C1", name="测试社区", tier=UnitTier.COMMUNITY, parent_id=street.id)
    s.add(community)
    s.flush()
    oid = _new(s, T, "13700000001")
    _act(s, oid, "dispatch", T, unit_id=community.id)
    _act(s, oid, "accept", T + H)
    _act(s, oid, "reply", T + 10 * D, text="已处理")  # past its limit
    return community, oid


def test_a_street_asks_for_one_of_its_communities_and_no_further(db_session, history, staff):  # noqa: F811
    """A street's figures count its communities': its staff may ask for an order a community holds facts of, naming
    the community; a community's staff ask for their own community only, and neither for a unit out of their scope."""
    s = db_session
    street = history["units"]["S"]
    community, oid = _community_order(s, history)
    other_street = Unit(code="K-S2", name="别的街道", tier=UnitTier.STREET, parent_id=street.parent_id)
    s.add(other_street)
    s.flush()
    ask = {"order_id": oid, "measures": ["on_time_completion"], "reason_category": "unreachable"}
    outsider = service.Actor(name="别街承办", unit_id=other_street.id, role=Role.HANDLER.value)
    with pytest.raises(PermissionDenied, match="own unit"):
        exemptions.request(s, actor=outsider, unit_id=community.id, **ask)
    grid = service.Actor(name="社区网格员", unit_id=community.id, role=Role.INSPECTOR.value)
    with pytest.raises(PermissionDenied, match="own unit"):
        exemptions.request(s, actor=grid, unit_id=street.id, **ask)
    with pytest.raises(PermissionDenied, match="own unit"):  # a department's staff: their own unit only
        exemptions.request(s, actor=staff["h1"], unit_id=community.id, **ask)
    street_staff = service.Actor(name="街道承办", unit_id=street.id, role=Role.HANDLER.value)
    with pytest.raises(ValidationFailed, match="no assessment figure"):  # the street itself holds no fact of it
        exemptions.request(s, actor=street_staff, **ask)
    req = exemptions.request(s, actor=street_staff, unit_id=community.id, **ask)
    assert req.unit_id == community.id and req.requested_by_name == "街道承办"
    event = s.scalars(select(OrderEvent).where(OrderEvent.order_id == oid).order_by(OrderEvent.id.desc())).first()
    assert event.action == "exemption_request" and event.unit_id == community.id
    assert event.payload["actor_unit_id"] == street.id  # who asked, beside the unit exempted
    exemptions.decide(s, exemption_id=req.id, approve=True, actor=staff["sup"])
    assert _figure(s, "K-C1", "on_time_completion") == (0, 0) and _figure(s, "K-S1", "on_time_completion") == (0, 0)


def test_the_api_lets_a_street_ask_for_its_community(api, db_session, history):  # noqa: F811
    s = db_session
    community, oid = _community_order(s, history)
    street_user = User(username="x-street", full_name="街道承办", role=Role.HANDLER, unit_id=history["units"]["S"].id)
    other_street = Unit(code="K-S2", name="别的街道", tier=UnitTier.STREET, parent_id=history["units"]["S"].parent_id)
    s.add(other_street)
    s.flush()
    outsider = User(username="x-street2", full_name="别街承办", role=Role.HANDLER, unit_id=other_street.id)
    s.add_all([street_user, outsider])
    s.flush()
    header = {"Authorization": f"Bearer {create_token(s, user_id=street_user.id, name='t')[1]}"}
    foreign = {"Authorization": f"Bearer {create_token(s, user_id=outsider.id, name='t')[1]}"}
    s.commit()
    client, _ = api
    body = {"order_id": oid, "measures": ["on_time_completion"], "reason_category": "unreachable"}
    # Another street's handler: the order is not theirs to read, nor the community theirs to ask for.
    refused = client.post("/api/v1/kpi/exemptions", json={**body, "unit_id": community.id}, headers=foreign)
    assert refused.status_code == 404, refused.text
    made = client.post("/api/v1/kpi/exemptions", json={**body, "unit_id": community.id}, headers=header)
    assert made.status_code == 201, made.text
    assert made.json()["unit_code"] == "K-C1" and made.json()["requested_by"] == "街道承办"


def test_a_revoked_exemption_counts_again(db_session, history, staff):  # noqa: F811
    """撤销核减: a supervisor takes an approval back, saying why; the facts count again in the kept figures at once,
    the trail and the request say who revoked it and why, and the unit may ask again."""
    s, o4 = db_session, history["orders"]["o4"]
    ask = {"order_id": o4, "measures": ["on_time_completion"], "reason_category": "force_majeure"}
    req = exemptions.request(s, actor=staff["h2"], **ask)
    with pytest.raises(Conflict, match="only an approved"):  # pending: decided, not revoked
        exemptions.revoke(s, exemption_id=req.id, reason="x", actor=staff["sup"])
    exemptions.decide(s, exemption_id=req.id, approve=True, reason="证明属实", actor=staff["sup"], now=LATER)
    s.commit()
    assert _figure(s, "K-D2", "on_time_completion") == (1, 1)
    with pytest.raises(ValidationFailed, match="reason"):
        exemptions.revoke(s, exemption_id=req.id, reason=" ", actor=staff["sup"])
    with pytest.raises(PermissionDenied, match="may not decide"):
        exemptions.revoke(s, exemption_id=req.id, reason="x", actor=staff["lead"])
    with pytest.raises(NotFound):  # out of the decider's scope
        exemptions.revoke(s, exemption_id=req.id, reason="x", actor=staff["sup"], units={history["d"]})
    chief = service.Actor(name="考核科长", user_id=None, unit_id=staff["sup"].unit_id, role=Role.SUPERVISOR.value)
    row = exemptions.revoke(s, exemption_id=req.id, reason="证明系伪造", actor=chief, now=LATER + D)
    s.commit()
    assert row.state == "revoked"
    # The approval stays on the request beside its revocation: who, when and why of each.
    assert (row.decided_by_id, row.decided_by_name, row.decided_at, row.decision_reason) == (
        staff["sup"].user_id,
        "考核科",
        LATER,
        "证明属实",
    )
    assert (row.revoked_by_id, row.revoked_by_name, row.revoked_at, row.revocation_reason) == (
        None,
        "考核科长",
        LATER + D,
        "证明系伪造",
    )
    listed = exemptions.as_dicts(s, [row])[0]
    assert (listed["decided_by"], listed["decision_reason"]) == ("考核科", "证明属实")
    assert (listed["revoked_by"], listed["revoked_at"], listed["revocation_reason"]) == (
        "考核科长",
        LATER + D,
        "证明系伪造",
    )
    assert _figure(s, "K-D2", "on_time_completion") == EXPECTED["D2"]["on_time_completion"]  # kept figures redone
    d2 = next(r for r in kpi.compute(s, period=MARCH) if r.code == "K-D2")
    assert d2.exempted == {} and d2.exempted_orders == 0
    assert _trail(s, o4)[-3:] == ["exemption_request", "exemption_approve", "exemption_revoke"]
    event = s.scalars(select(OrderEvent).where(OrderEvent.order_id == o4).order_by(OrderEvent.id.desc())).first()
    assert event.reason == "证明系伪造" and event.payload["exemption_id"] == req.id and event.unit_id == history["d2"]
    assert "exemption_revoke" in georeport.INTERNAL_ACTIONS and "exemption_revoke" not in CITIZEN_STEPS
    with pytest.raises(Conflict, match="revoked"):
        exemptions.revoke(s, exemption_id=req.id, reason="again", actor=staff["sup"])
    assert [r.id for r in exemptions.search(s, state="revoked")[0]] == [req.id]
    assert exemptions.request(s, actor=staff["h2"], **ask).state == "pending"  # counted again: may ask again


def test_who_asked_is_told_of_a_revocation(api, history):  # noqa: F811
    """撤销核减 tells the person who asked for the exemption through the bell (消息提醒), as its approval did — in
    their language, with who took it back and why; the one who revoked it is not told."""
    client, h = api
    url = "/api/v1/kpi/exemptions"
    body = {"order_id": history["orders"]["o4"], "measures": ["on_time_completion"], "reason_category": "unreachable"}
    rid = client.post(url, json=body, headers=h["h2"]).json()["id"]
    assert client.post(f"{url}/{rid}/decision", json={"approve": True}, headers=h["sup"]).status_code == 200
    assert client.post(f"{url}/{rid}/revoke", json={"reason": "证明系伪造"}, headers=h["sup"]).status_code == 200
    told = client.get("/api/v1/notices", headers=h["h2"]).json()["items"]
    assert [n["kind"] for n in told] == ["exemption_revoked", "exemption_approved"]  # newest first
    revoked = told[0]
    assert (
        revoked["params"] == {"actor": "考核科", "reason": "证明系伪造"} and revoked["order"]["id"] == body["order_id"]
    )
    assert "考核核减已被撤销" in revoked["text"]
    english = client.get("/api/v1/notices", headers={**h["h2"], "Accept-Language": "en"}).json()["items"][0]
    assert "was revoked" in english["text"]
    assert all(
        n["kind"] != "exemption_revoked" for n in client.get("/api/v1/notices", headers=h["sup"]).json()["items"]
    )


def test_the_migration_keeps_the_approval_of_a_request_revoked_before(empty_db_url):
    """Migration 0058 on a request revoked under 0057 (its decision columns then held the revocation): the upgrade
    moves the revocation to ``revoked_*`` and takes the approval back from the order's trail; the downgrade writes the
    revocation over the decision again, as the code before read it. Other rows keep their decision."""
    from alembic import command
    from sqlalchemy.orm import Session

    from cityhub import migrate
    from cityhub.analytics.models import AssessmentExemption
    from cityhub.db import make_engine

    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as s:
            district = Unit(code="K0", name="测试区", tier=UnitTier.DISTRICT)
            s.add(district)
            s.flush()
            d2 = Unit(code="K-D2", name="住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
            s.add(d2)
            sup = User(username="x-sup", full_name="考核科", role=Role.SUPERVISOR, unit_id=district.id)
            chief = User(username="x-chief", full_name="考核科长", role=Role.SUPERVISOR, unit_id=district.id)
            s.add_all([sup, chief])
            s.flush()
            ids = {}
            for name, phone in (("revoked", "13800000004"), ("approved", "13800000005")):
                oid = _new(s, T, phone)
                _act(s, oid, "dispatch", T, unit_id=d2.id)
                _act(s, oid, "accept", T + H)
                _act(s, oid, "reply", T + 10 * D, text="已处理")
                asker = service.Actor(name="住建承办", unit_id=d2.id, role=Role.HANDLER.value)
                req = exemptions.request(
                    s, order_id=oid, measures=["on_time_completion"], reason_category="unreachable", actor=asker
                )
                approver = service.Actor(name="考核科", user_id=sup.id, unit_id=district.id, role="supervisor")
                exemptions.decide(s, exemption_id=req.id, approve=True, reason=f"{name}属实", actor=approver, now=LATER)
                ids[name] = req.id
            revoker = service.Actor(name="考核科长", user_id=chief.id, unit_id=district.id, role="supervisor")
            exemptions.revoke(s, exemption_id=ids["revoked"], reason="证明系伪造", actor=revoker, now=LATER + D)
            s.commit()
            sup_id, chief_id = sup.id, chief.id
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), "0057_kb_public")
        with engine.connect() as conn:
            held = conn.execute(
                text("SELECT id, decided_by_id, decided_by_name, decision_reason FROM assessment_exemptions")
            ).all()
        assert sorted(tuple(r) for r in held) == sorted(
            [(ids["revoked"], chief_id, "考核科长", "证明系伪造"), (ids["approved"], sup_id, "考核科", "approved属实")]
        )
        engine.dispose()
        migrate.upgrade(empty_db_url)
        with Session(engine) as s:
            got = {k: s.get(AssessmentExemption, i) for k, i in ids.items()}
            decision = {
                k: (r.decided_by_id, r.decided_by_name, r.decided_at, r.decision_reason) for k, r in got.items()
            }
            revocation = {
                k: (r.revoked_by_id, r.revoked_by_name, r.revoked_at, r.revocation_reason) for k, r in got.items()
            }
        assert decision == {
            "revoked": (sup_id, "考核科", LATER, "revoked属实"),
            "approved": (sup_id, "考核科", LATER, "approved属实"),
        }
        assert revocation == {"revoked": (chief_id, "考核科长", LATER + D, "证明系伪造"), "approved": (None,) * 4}
    finally:
        engine.dispose()


def test_the_api_and_the_command_line_revoke(api, history, cli_run):  # noqa: F811
    client, h = api
    url = "/api/v1/kpi/exemptions"
    body = {"order_id": history["orders"]["o4"], "measures": ["on_time_completion"], "reason_category": "unreachable"}
    rid = client.post(url, json=body, headers=h["h2"]).json()["id"]
    revoke = f"{url}/{rid}/revoke"
    assert client.post(revoke, json={"reason": "x"}, headers=h["sup"]).status_code == 409  # not approved yet
    assert client.post(f"{url}/{rid}/decision", json={"approve": True}, headers=h["sup"]).status_code == 200
    assert client.post(revoke, json={"reason": "x"}, headers=h["h2"]).status_code == 403
    assert client.post(revoke, json={}, headers=h["sup"]).status_code == 422
    refused = client.post(revoke, json={"reason": "  "}, headers=h["sup"])
    assert refused.status_code == 422 and refused.json()["details"]["why"] == "revoke_needs_reason"
    done = client.post(revoke, json={"reason": "复核不属实"}, headers=h["sup"])
    assert done.status_code == 200, done.text
    got = done.json()
    assert (
        got["state"] == "revoked" and got["decided_by"] == "考核科" and got["decision_reason"] is None
    )  # the approval
    assert got["revoked_by"] == "考核科" and got["revocation_reason"] == "复核不属实" and got["revoked_at"]
    assert client.get(f"{url}/{rid}", headers=h["sup"]).json()["revocation_reason"] == "复核不属实"
    assert client.post(revoke, json={"reason": "x"}, headers=h["sup"]).status_code == 409
    assert [r["id"] for r in client.get(url, params={"state": "revoked"}, headers=h["sup"]).json()] == [rid]
    figures = client.get("/api/v1/kpi", params={"period": "2026-03"}, headers=h["lead"]).json()
    d2 = next(u for u in figures["units"] if u["code"] == "K-D2")
    assert d2["kpis"]["on_time_completion"]["exempted"] == 0 and d2["exempted_orders"] == 0
    # The command line: another request, approved and revoked.
    again = client.post(url, json=body, headers=h["h2"]).json()["id"]
    code, _, err = cli_run("analytics", "exemptions", "revoke", str(again), "--reason", "x")
    assert code == 1 and err.count("\n") == 1 and "only an approved" in err
    assert cli_run("analytics", "exemptions", "decide", str(again), "--approve")[0] == 0
    code, out, err = cli_run("analytics", "exemptions", "revoke", str(again), "--reason", "复核", "--actor", "考核科")
    assert code == 0 and "revoked" in out, err
    code, _, err = cli_run("analytics", "exemptions", "revoke", str(again), "--reason", " ")
    assert code == 1 and err.count("\n") == 1 and "reason" in err


def test_two_requests_at_once_meet_the_unique_index_as_a_conflict(api, history, monkeypatch):  # noqa: F811
    """Two requests of a unit for one order at the same moment: neither sees the other's row, the second reaches the
    partial unique index — 409 as the service's own check answers, not a 500."""
    client, h = api
    url = "/api/v1/kpi/exemptions"
    body = {"order_id": history["orders"]["o4"], "measures": ["on_time_completion"], "reason_category": "unreachable"}
    first = client.post(url, json=body, headers=h["h2"])
    assert first.status_code == 201
    checked = exemptions.open_request

    def blind_once(*args, **kwargs):  # the check misses the first (not committed yet), the index does not
        monkeypatch.setattr(exemptions, "open_request", checked)
        return None

    monkeypatch.setattr(exemptions, "open_request", blind_once)
    second = client.post(url, json=body, headers=h["h2"])
    assert second.status_code == 409, second.text
    assert second.json()["details"] == {"why": "waiting", "exemption_id": first.json()["id"]}
    third = client.post(url, json=body, headers=h["h2"])  # one after the other: the same answer
    assert (third.status_code, third.json()["message"]) == (409, second.json()["message"])
    assert [r["id"] for r in client.get(url, params={"state": "pending"}, headers=h["sup"]).json()] == [
        first.json()["id"]
    ]


def test_pending_requests_are_counted_up_to_a_cap(db_session, history, staff):  # noqa: F811
    s, o = db_session, history["orders"]
    for oid, actor in ((o["o4"], "h2"), (o["o2"], "h1"), (o["o1"], "h1")):
        exemptions.request(
            s, order_id=oid, measures=["on_time_accept"], reason_category="unreachable", actor=staff[actor]
        )
    assert exemptions.count(s, state="pending") == 3
    assert exemptions.count(s, state="pending", cap=2) == 2
    assert exemptions.count(s, state="pending", unit_ids={history["d"]}, cap=100) == 2


def test_the_report_says_how_many_orders_exemptions_left_out(db_session, history, staff, tmp_path):  # noqa: F811
    """The 专报's assessment section says, per street and for the district, how many orders' facts approved
    exemptions left out of the figures it shows — in Chinese and English, in the HTML and the workbook."""
    from openpyxl import load_workbook

    from cityhub.analytics import reports

    s = db_session
    community, oid = _community_order(s, history)
    grid = service.Actor(name="社区网格员", unit_id=community.id, role=Role.INSPECTOR.value)
    for order_id, actor in ((oid, grid), (history["orders"]["o4"], staff["h2"])):
        req = exemptions.request(
            s, order_id=order_id, measures=["on_time_completion"], reason_category="unreachable", actor=actor
        )
        exemptions.decide(s, exemption_id=req.id, approve=True, actor=staff["sup"])
    s.commit()
    data = reports.build_report(s, period=MARCH, charts=False)
    assert data.exempted_orders == 2  # the community's (its street's too, counted once) and the department's
    street = next(u for u in data.kpis if u.code == "K-S1")
    assert street.exempted_orders == 1
    zh = reports.render_html(data, lang="zh")
    note = zh[zh.index('data-testid="exempted-note"') :]
    assert "核减工单" in zh and "全区 2 件工单" in note[: note.index("</p>")]
    en = reports.render_html(reports.build_report(s, period=MARCH, charts=False, lang="en"), lang="en")
    note = en[en.index('data-testid="exempted-note"') :]
    assert "Exempted orders" in en and "facts of 2 orders of the district" in note[: note.index("</p>")]
    book = load_workbook(reports.write_xlsx(data, tmp_path / "r.xlsx", lang="zh"))
    sheet = next(ws for ws in book.worksheets if ws.cell(1, 1).value == "单位" and ws.max_column > 10)
    header = [c.value for c in sheet[1]]
    column = header.index("核减工单")
    rows = {r[0]: r[column] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["测试街道"] == 1 and rows["全区核减工单合计"] == 2
