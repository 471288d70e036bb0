"""What a district leader (领导) and a supervisor reading the same pages meet in the web UI, over the real app on both
backends: the instruction (批示) of a leader's assignment under the order's heading, the unit assessment's way to
the unit's orders and to the orders that lowered a rate, the dashboard's ranking offering a longer period when the
chosen one ranks nobody, and the hot topics' places in the reader's language (the small world of ``web_helpers``:
``lead`` the district's leader, ``sup`` its supervisor, ``disp`` its dispatcher, ``hand_a`` 景泰街道's handler)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import User
from cityhub.workorders import service as orders
from web_helpers import World, act_on, login, small_world


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    return small_world(tmp_path, monkeypatch)


def _actor(s: Any, username: str) -> orders.Actor:
    user = s.scalars(select(User).where(User.username == username)).one()
    return orders.Actor(name=user.full_name, user_id=user.id, unit_id=user.unit_id, role=user.role.value)


def _dispatched(world: World, title: str = "路灯不亮") -> dict[str, Any]:
    """An appeal on 景泰街道 dispatched to the street and accepted by its handler."""
    with session_scope() as s:
        order = submit(s, data={"channel": "hotline", "title": title, "content": "小区门口路灯不亮已经一周"}).order
        orders.act(s, order_id=order.id, action="dispatch", actor=_actor(s, "disp"), params={"unit_id": world.street_a})
        orders.act(s, order_id=order.id, action="accept", actor=_actor(s, "hand_a"))
        return {"id": order.id, "number": order.number}


def _box(html: str, testid: str) -> str | None:
    found = re.search(rf'<p class="notice" data-testid="{testid}">(.*?)</p>', html, flags=re.S)
    return found.group(1) if found else None


def test_a_leaders_instruction_stands_under_the_orders_heading_while_it_is_open(world: World) -> None:
    """领导交办 with an instruction (批示): the unit doing it and the leader following it read what was asked, by whom,
    when and to which unit first thing on the order's page — it stood only in the trail, under the actions; gone
    once the order is answered, as an urge's is."""
    order = _dispatched(world)
    lead, hand = login("lead"), login("hand_a")
    assert _box(hand.get(f"/orders/{order['id']}").text, "assigned") is None
    assert act_on(lead, order["id"], "assign", reason="请街道主要负责人牵头，三天内办结").status_code == 303
    for client in (hand, lead):
        box = _box(client.get(f"/orders/{order['id']}").text, "assigned")
        assert box is not None
        assert "领导交办" in box and "请街道主要负责人牵头，三天内办结" in box and "刘领导" in box
        assert "交办至" not in box  # no unit named: the unit holding it does it
    # A second assignment to another unit names it.
    moved = act_on(lead, order["id"], "assign", unit_id=str(world.street_b), reason="改由京溪街道办理")
    assert moved.status_code == 303
    box = _box(lead.get(f"/orders/{order['id']}").text, "assigned")
    assert box is not None and "改由京溪街道办理" in box and "交办至 京溪街道" in box
    english = login("lead")
    english.cookies.set("cityhub_lang", "en")
    assert "Assigned by a leader" in (_box(english.get(f"/orders/{order['id']}").text, "assigned") or "")
    # Answered: the box goes (the reply is what the page shows then).
    with session_scope() as s:
        hand_b = s.scalars(select(User).where(User.username == "hand_b")).one()
        actor = orders.Actor(name=hand_b.full_name, user_id=hand_b.id, unit_id=hand_b.unit_id, role="handler")
        orders.act(s, order_id=order["id"], action="accept", actor=actor)
        reply = {"text": "已修复路灯，经现场核实恢复照明。"}
        orders.act(s, order_id=order["id"], action="reply", actor=actor, params=reply)
    assert _box(lead.get(f"/orders/{order['id']}").text, "assigned") is None
