"""A unit's handler's day on the order page, over the real app on both backends: a street's handler passes an order
down to one of its communities (下派) and the lead unit's handler asks another unit to assist (申请协办); 签收并开始办理
in one step; the 退单 form says whose queue the order goes back to, and the dispatcher's 派单 starts from the unit the
return suggested; an assisting unit reads its own part and the lead unit's time limit.

The organisation and accounts are the small world of ``web_helpers`` (hand_a: 景泰街道's handler, hand_b: 京溪街道's).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityhub.db import reset_engine, session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from web_helpers import build_world, login, world_env


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    for key, value in world_env(tmp_path / "no-model").items():
        monkeypatch.setenv(key, value)
    reset_engine()
    with session_scope() as s:
        world = build_world(s)
        ours = Unit(code="W-JT-01", name="云景社区", tier=UnitTier.COMMUNITY, parent_id=world.street_a)
        theirs = Unit(code="W-JX-01", name="京溪社区", tier=UnitTier.COMMUNITY, parent_id=world.street_b)
        s.add_all([ours, theirs])
        s.flush()
        return {"street_a": world.street_a, "street_b": world.street_b, "ours": ours.id, "theirs": theirs.id}


def _sent_to(unit_id: int, street: str = "W-JT") -> int:
    """A new appeal on ``street``, dispatched to ``unit_id`` by the district's dispatcher."""
    with session_scope() as s:
        order = submit(
            s, data={"channel": "hotline", "content": "小区门口路灯不亮已经一周", "street_code": street}
        ).order
        orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": unit_id})
        return order.id


def _act(client: TestClient, order_id: int, action: str, **data: Any) -> Any:
    with session_scope() as s:
        version = s.get(Order, order_id).version  # type: ignore[union-attr]
    return client.post(
        f"/orders/{order_id}/act/{action}",
        data={"csrf_token": client.cookies["cityhub_csrf"], "version": str(version), **data},
        follow_redirects=False,
    )


def _select(page: str, select_id: str) -> str:
    found = re.search(rf'<select id="{select_id}".*?</select>', page, flags=re.S)
    assert found is not None, select_id
    return found.group(0)


def _order(order_id: int) -> Order:
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None
        s.expunge(order)
        return order


def _order_assists(order_id: int) -> list[tuple[int, str]]:
    with session_scope() as s:
        order = orders.get_order(s, order_id=order_id)
        assert order is not None
        return [(a.unit_id, a.status.value) for a in order.assists]


def test_a_streets_handler_passes_an_order_down_to_its_own_community_from_the_order_page(org) -> None:
    order_id = _sent_to(org["street_a"])
    hand_a = login("hand_a")
    page = hand_a.get(f"/orders/{order_id}").text
    assert ">下派</summary>" in page
    offered = _select(page, "transfer-unit_id")
    # Its own communities only: not another street's, nor a street or department the dispatchers would choose.
    assert f'value="{org["ours"]}"' in offered
    assert f'value="{org["theirs"]}"' not in offered and f'value="{org["street_b"]}"' not in offered
    assert "只能下派至本街道所属村社" in page

    elsewhere = _act(hand_a, order_id, "transfer", unit_id=str(org["theirs"]), reason="属地在该社区")
    assert elsewhere.status_code == 422 and _order(order_id).lead_unit_id == org["street_a"]
    down = _act(hand_a, order_id, "transfer", unit_id=str(org["ours"]), reason="属地在云景社区，请核处")
    assert down.status_code == 303, down.text
    passed = _order(order_id)
    assert (passed.lead_unit_id, passed.state.value) == (org["ours"], "dispatched")
    # the trail names it 下派 to the centre's staff too, not their own 转派
    trail = re.search(r'data-testid="audit">.*?</section>', login("disp").get(f"/orders/{order_id}").text, re.S)
    assert trail is not None and "<td>下派" in trail.group(0) and "<td>转派" not in trail.group(0)


def test_the_lead_units_handler_asks_another_unit_to_assist_saying_what_help_it_needs(org) -> None:
    order_id = _sent_to(org["street_a"])
    hand_a = login("hand_a")
    page = hand_a.get(f"/orders/{order_id}").text
    assert ">申请协办</summary>" in page and ">增加协办</summary>" not in page
    assert re.search(r'<(textarea|input) id="add_assist-reason"[^>]* required', page)  # what help it needs
    bare = _act(hand_a, order_id, "add_assist", unit_id=str(org["street_b"]))
    assert bare.status_code == 422 and not _order_assists(order_id)  # what help is needed: said, or nothing asked
    asked = _act(hand_a, order_id, "add_assist", unit_id=str(org["street_b"]), reason="请协助排查京溪段线路")
    assert asked.status_code == 303, asked.text
    assert "申请协办" in unescape(hand_a.get(asked.headers["location"]).text)  # the flash, as the button said
    assert _order_assists(order_id) == [(org["street_b"], "dispatched")]
    # The assisting unit's handler reads its part and the lead unit's limit, which is the order's.
    helper = login("hand_b").get(f"/orders/{order_id}").text
    notice = re.search(r'data-testid="own-assist">(.*?)</p>', helper, flags=re.S)
    assert notice is not None
    assert "待签收" in notice.group(1) and "景泰街道" in notice.group(1) and "协办没有单独的时限" in notice.group(1)
    assert 'data-testid="own-assist"' not in page  # the lead unit's own page has none


def test_a_handler_accepts_and_starts_work_in_one_step_each_audited(org) -> None:
    order_id = _sent_to(org["street_a"])
    hand_a = login("hand_a")
    page = hand_a.get(f"/orders/{order_id}").text
    assert 'data-testid="accept-and-start"' in page
    done = _act(hand_a, order_id, "accept", and_start="1")
    assert done.status_code == 303, done.text
    assert _order(order_id).state.value == "in_progress"
    with session_scope() as s:
        trail = [(e.action, e.actor_name) for e in orders.history(s, order_id=order_id)][-2:]
    assert trail == [("accept", "李承办"), ("start", "李承办")]
    # 签收 alone stays what it was.
    other = _sent_to(org["street_a"])
    assert _act(hand_a, other, "accept").status_code == 303 and _order(other).state.value == "accepted"


def test_the_return_form_says_whose_dispatch_queue_the_order_goes_back_to(org) -> None:
    order_id = _sent_to(org["street_a"])
    hint = re.search(r'data-testid="return-hint">([^<]*)<', login("hand_a").get(f"/orders/{order_id}").text)
    assert hint is not None and "回到白云区派单员的待派单队列" in hint.group(1)  # the district's dispatchers
    assert "本单位不再承办" in hint.group(1)


def test_the_dispatch_form_starts_from_the_unit_the_return_suggested(org) -> None:
    order_id = _sent_to(org["street_a"])
    hand_a = login("hand_a")
    returned = _act(hand_a, order_id, "return", reason="非本街道事项", suggest_unit_id=str(org["street_b"]))
    assert returned.status_code == 303, returned.text
    offered = _select(login("disp").get(f"/orders/{order_id}").text, "dispatch-unit_id")
    chosen = re.findall(r'<option value="(\d+)" selected>', offered)
    assert chosen == [str(org["street_b"])]
