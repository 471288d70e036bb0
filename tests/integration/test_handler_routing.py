"""A unit's handler routes what its unit leads: 申请协办 (the lead unit invites an assisting unit, saying what help it
needs) and a street's 下派 (转派 to one of the street's own communities) — through the API's life-cycle actions, each
audited, the assisting unit or the community then finding the order in its 待签收."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cityhub.auth.scope import awaiting_acceptance_by
from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.errors import PermissionDenied
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order, OrderEvent
from cityhub.workorders.schemas import OrderFilter


def _unit(client, code: str, tier: UnitTier, parent_id: int, role: Role | None = Role.HANDLER):
    """A unit under ``parent_id`` and, with ``role``, the bearer headers of one of its staff."""
    with session_scope() as s:
        unit = Unit(code=code, name=f"单位{code}", tier=tier, parent_id=parent_id)
        s.add(unit)
        s.flush()
        if role is None:
            return unit.id, None
        user = User(username=f"{role.value}-{code}", full_name=f"工作人员{code}", role=role, unit_id=unit.id)
        s.add(user)
        s.flush()
        _, token = create_token(s, user_id=user.id, name="test")
        return unit.id, {"Authorization": f"Bearer {token}"}


def _district(admin_client) -> int:
    with session_scope() as s:
        return s.scalars(select(User.unit_id).where(User.role == Role.ADMIN)).one()


def _order_with(admin_client, unit_id: int, **extra) -> int:
    created = admin_client.post(
        "/api/v1/orders", json={"channel": "web", "content": "小区路灯不亮已经一周，晚上出行不便", **extra}
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    sent = admin_client.post(f"/api/v1/orders/{order_id}/actions/dispatch", json={"unit_id": unit_id})
    assert sent.status_code == 200, sent.text
    return order_id


def _act(client, order_id: int, action: str, headers, **body):
    return client.post(f"/api/v1/orders/{order_id}/actions/{action}", json=body, headers=headers)


def _actions(client, order_id: int, headers) -> list[str]:
    answer = client.get(f"/api/v1/orders/{order_id}/actions", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _to_accept(unit_id: int) -> set[int]:
    """What the unit's 待签收 lists (``auth.scope.awaiting_acceptance_by``)."""
    with session_scope() as s:
        return set(s.scalars(select(Order.id).where(awaiting_acceptance_by([unit_id]))))


def test_the_lead_units_handler_asks_another_unit_to_assist_and_it_finds_the_order_to_sign_for(admin_client):
    district = _district(admin_client)
    lead, lead_staff = _unit(admin_client, "HR-D01", UnitTier.DEPARTMENT, district)
    helper, helper_staff = _unit(admin_client, "HR-D02", UnitTier.DEPARTMENT, district)
    _, other_staff = _unit(admin_client, "HR-D03", UnitTier.DEPARTMENT, district)
    order_id = _order_with(admin_client, lead)
    assert _act(admin_client, order_id, "accept", lead_staff).status_code == 200

    assert "add_assist" in _actions(admin_client, order_id, lead_staff)
    # Another unit's handler does not even see the order: nothing to invite anyone to.
    assert _act(admin_client, order_id, "add_assist", other_staff, unit_id=helper, reason="帮忙").status_code == 404
    # What help is needed is the point of the request: without it, refused naming the field.
    bare = _act(admin_client, order_id, "add_assist", lead_staff, unit_id=helper)
    assert bare.status_code == 422 and bare.json()["details"]["field"] == "reason", bare.text
    asked = _act(admin_client, order_id, "add_assist", lead_staff, unit_id=helper, reason="请协助核查路灯线路产权")
    assert asked.status_code == 200, asked.text
    assert [(a["unit_id"], a["status"]) for a in asked.json()["assists"]] == [(helper, "dispatched")]

    assert order_id in _to_accept(helper)  # the assisting unit's 待签收
    assert _act(admin_client, order_id, "assist_accept", helper_staff).status_code == 200
    with session_scope() as s:
        event = s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id, OrderEvent.action == "add_assist")
        ).one()
        assert (event.unit_id, event.actor_name, event.reason) == (helper, "工作人员HR-D01", "请协助核查路灯线路产权")
        assert event.payload["actor_unit_id"] == lead
    # The assisting unit cannot bring in a third: the lead unit invites, the centre routes.
    third, _ = _unit(admin_client, "HR-D04", UnitTier.DEPARTMENT, district, role=None)
    refused = _act(admin_client, order_id, "add_assist", helper_staff, unit_id=third, reason="也请他们来")
    assert refused.status_code == 403, refused.text
    assert "add_assist" not in _actions(admin_client, order_id, helper_staff)


def test_a_streets_handler_passes_an_order_down_to_one_of_its_communities_and_nowhere_else(admin_client):
    district = _district(admin_client)
    street, street_staff = _unit(admin_client, "HR-S01", UnitTier.STREET, district)
    community, community_staff = _unit(admin_client, "HR-S01-C1", UnitTier.COMMUNITY, street)
    other_street, _ = _unit(admin_client, "HR-S02", UnitTier.STREET, district, role=None)
    elsewhere, _ = _unit(admin_client, "HR-S02-C1", UnitTier.COMMUNITY, other_street, role=None)
    department, department_staff = _unit(admin_client, "HR-D21", UnitTier.DEPARTMENT, district)
    order_id = _order_with(admin_client, street)
    assert "transfer" in _actions(admin_client, order_id, street_staff)

    outside = _act(admin_client, order_id, "transfer", street_staff, unit_id=elsewhere, reason="属地在该社区")
    assert outside.status_code == 422 and outside.json()["details"]["field"] == "unit_id", outside.text
    not_community = _act(admin_client, order_id, "transfer", street_staff, unit_id=department, reason="职能部门")
    assert not_community.status_code == 422, not_community.text
    down = _act(admin_client, order_id, "transfer", street_staff, unit_id=community, reason="属地在本社区，请核处")
    assert down.status_code == 200, down.text
    assert (down.json()["state"], down.json()["lead_unit_id"]) == ("dispatched", community)
    assert order_id in _to_accept(community)
    assert _act(admin_client, order_id, "accept", community_staff).status_code == 200
    with session_scope() as s:
        event = s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id, OrderEvent.action == "transfer")
        ).one()
        assert (event.unit_id, event.reason, event.payload["actor_unit_id"]) == (
            community,
            "属地在本社区，请核处",
            street,
        )

    # A department's handler has no communities to pass an order down to: not offered, refused.
    dept_order = _order_with(admin_client, department)
    assert "transfer" not in _actions(admin_client, dept_order, department_staff)
    assert (
        _act(admin_client, dept_order, "transfer", department_staff, unit_id=community, reason="x").status_code == 403
    )
    # Nor may a community's handler pass on what it holds.
    assert "transfer" not in _actions(admin_client, order_id, community_staff)


def test_passing_an_order_down_keeps_the_streets_time_limit(admin_client):
    """下派 hands the order on within the street: the community works within the street's limit — only its own 签收
    clock starts — where a 转派 restarted the whole limit, so a street passing an order down the day it fell due gave
    it a whole limit again. A dispatcher's 转派 still starts it afresh."""
    from datetime import timedelta

    from cityhub.db import utcnow

    district = _district(admin_client)
    street, street_staff = _unit(admin_client, "HK-S01", UnitTier.STREET, district)
    community, _ = _unit(admin_client, "HK-S01-C1", UnitTier.COMMUNITY, street)
    order_id = _order_with(admin_client, street)
    # the street has held it for days: its limit falls due in two hours
    soon = utcnow().replace(microsecond=0) + timedelta(hours=2)
    with session_scope() as s:
        order = s.get(Order, order_id)
        order.warn_at, order.due_at = soon - timedelta(hours=1), soon
    down = _act(admin_client, order_id, "transfer", street_staff, unit_id=community, reason="属地在本社区，请核处")
    assert down.status_code == 200, down.text
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert (order.warn_at, order.due_at) == (soon - timedelta(hours=1), soon)
        assert order.accept_due_at is not None and order.accept_due_at <= soon
        event = s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id, OrderEvent.action == "transfer")
        ).one()
        assert event.payload["due_at"].startswith(soon.isoformat()[:16])  # the round's limit, as assessment reads it
    # the district's dispatcher moving it elsewhere starts the limit again
    other, _ = _unit(admin_client, "HK-D01", UnitTier.DEPARTMENT, district, role=None)
    moved = admin_client.post(f"/api/v1/orders/{order_id}/actions/transfer", json={"unit_id": other, "reason": "职能"})
    assert moved.status_code == 200, moved.text
    with session_scope() as s:
        assert s.get(Order, order_id).due_at > soon


def _trail(order_id: int) -> list[tuple[str, str]]:
    with session_scope() as s:
        events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
        return [(e.action, e.actor_name) for e in events]


def test_the_api_accepts_and_starts_work_in_one_call_each_step_audited(admin_client):
    """签收并开始办理 through the API: ``accept`` with ``start: true`` — two events, as the order page's; ``start`` is
    taken by accept only, a strict true or false."""
    district = _district(admin_client)
    lead, staff = _unit(admin_client, "HR-S01", UnitTier.DEPARTMENT, district)
    order_id = _order_with(admin_client, lead)
    assert _act(admin_client, order_id, "accept", staff, start="yes").status_code == 422
    done = _act(admin_client, order_id, "accept", staff, start=True)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "in_progress"
    assert _trail(order_id)[-2:] == [("accept", "工作人员HR-S01"), ("start", "工作人员HR-S01")]
    other = _order_with(admin_client, lead)
    alone = _act(admin_client, other, "accept", staff, start=False)
    assert alone.status_code == 200 and alone.json()["state"] == "accepted"
    wrong = _act(admin_client, other, "return", staff, reason="不属本单位职责", start=True)
    assert wrong.status_code == 422 and wrong.json()["details"]["field"] == "start", wrong.text
    assert _trail(other)[-1][0] == "accept"


def test_the_command_line_accepts_and_starts_with_start(admin_client, cli_run):
    """``cityhub orders act N accept --start``: the same two steps; --start on another action is one line, exit 1."""
    district = _district(admin_client)
    lead, _ = _unit(admin_client, "HR-C01", UnitTier.DEPARTMENT, district)
    order_id = _order_with(admin_client, lead)
    code, _, err = cli_run("orders", "act", str(order_id), "urge", "--reason", "请尽快", "--start")
    assert code == 1 and "--start is taken only by accept" in err
    code, out, _ = cli_run("orders", "act", str(order_id), "accept", "--start", "--actor", "值班员")
    assert code == 0 and "accept → in_progress" in out, out
    assert _trail(order_id)[-2:] == [("accept", "值班员"), ("start", "值班员")]


def test_a_units_led_and_assisted_orders_are_told_apart_and_the_centre_finds_every_assist(admin_client):
    """The list's criteria behind a unit's 预警 / 超期 (what it leads), its 协办 (what it assists on and does not lead)
    and the centre's 协办 (every order with an assisting unit); 批量签收 signs for and starts each order picked."""
    district = _district(admin_client)
    lead, lead_staff = _unit(admin_client, "HR-F01", UnitTier.DEPARTMENT, district)
    helper, _ = _unit(admin_client, "HR-F02", UnitTier.DEPARTMENT, district)
    assisted, plain, own = (_order_with(admin_client, unit) for unit in (lead, lead, helper))
    assert _act(admin_client, assisted, "accept", lead_staff).status_code == 200
    asked = _act(admin_client, assisted, "add_assist", lead_staff, unit_id=helper, reason="请协助核查")
    assert asked.status_code == 200, asked.text

    def found(**criteria) -> set[int]:
        with session_scope() as s:
            rows, _, _ = orders.search_orders(s, filters=OrderFilter(**criteria), limit=100)
            return {o.id for o in rows} & {assisted, plain, own}

    assert found(held_by=[helper]) == {assisted, own}
    assert found(led_by=[helper]) == {own}
    assert found(assisting_by=[helper]) == {assisted}
    assert found(assisting_by=[lead]) == set()  # the lead unit's own order is not its 协办
    assert found(assisted=True) == {assisted}
    assert found(assisted=False) == {plain, own}

    with session_scope() as s:
        actor = orders.Actor(name="工作人员HR-F01", user_id=None, unit_id=lead, role=Role.HANDLER.value)
        outcomes = orders.act_each(
            s, [(plain, None), (assisted, None)], action="accept", params={}, actor=actor, start=True
        )
    assert [(o.order_id, o.done) for o in outcomes] == [(plain, True), (assisted, False)]  # accepted already
    assert _trail(plain)[-2:] == [("accept", "工作人员HR-F01"), ("start", "工作人员HR-F01")]
    # Starting work is a handler's: a role that may not start is refused before anything is signed for.
    with session_scope() as s, pytest.raises(PermissionDenied):
        orders.accept(s, order_id=own, actor=orders.Actor(name="督办", role=Role.SUPERVISOR.value), start=True)
    assert _trail(own)[-1][0] == "dispatch"


def test_the_apis_order_list_tells_a_units_led_assisted_and_waiting_orders_apart(admin_client):
    """The list's 待签收, 本单位牵头 and 协办 (a unit's and the centre's) through ``GET /api/v1/orders``, as the pages
    read them: a client of the unit's staff (a department's own system) asks for its new work and its assists."""
    district = _district(admin_client)
    lead, lead_staff = _unit(admin_client, "HR-G01", UnitTier.DEPARTMENT, district)
    helper, helper_staff = _unit(admin_client, "HR-G02", UnitTier.DEPARTMENT, district)
    assisted, plain, own = (_order_with(admin_client, unit) for unit in (lead, lead, helper))
    assert _act(admin_client, assisted, "accept", lead_staff).status_code == 200
    assert (
        _act(admin_client, assisted, "add_assist", lead_staff, unit_id=helper, reason="请协助核查").status_code == 200
    )

    def listed(headers, **query) -> set[int]:
        answer = admin_client.get("/api/v1/orders", params={**query, "limit": 100}, headers=headers)
        assert answer.status_code == 200, answer.text
        return {o["id"] for o in answer.json()["items"]} & {assisted, plain, own}

    assert listed(helper_staff, to_accept="true") == {assisted, own}  # its own order and the assist, not accepted
    assert listed(helper_staff, led="true") == {own}
    assert listed(helper_staff, assisting="true") == {assisted}
    assert listed(lead_staff, to_accept="true") == {plain}  # the assisted order it accepted is no longer waiting
    assert listed(lead_staff, led="true") == {assisted, plain}
    assert listed(None, with_assist="true") == {assisted}  # the centre's 协办: the administrator reads every order
    assert listed(None, with_assist="false") == {plain, own}
    assert listed(None, led="true") == {assisted, plain, own}  # a unit reading every order is not narrowed
    bad = admin_client.get("/api/v1/orders", params={"led": "perhaps"}, headers=helper_staff)
    assert bad.status_code == 422 and "led" in bad.text
