"""短信回访 on both backends: the answer's text message asks the citizen to rate it by replying 1, 2 or 3, and the SMS
relay posts the reply to ``POST /api/v1/sms/inbound`` (an API key of scope ``sms:write``) — read in every form, the
phone's order waiting for it rated through the progress lookup's callback, audited as the citizen's by SMS, once per
message; several orders waiting asks which; an unknown phone is told none waits, nothing of anyone else said; the
same from ``cityhub notify sms-inbound``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import web_helpers
from app_helpers import shared_app
from cityhub.auth import passwords
from cityhub.db import session_scope
from cityhub.notify.models import OutboxMessage, Topic
from cityhub.org.models import Role, Unit, User
from cityhub.sharing import service as sharing
from cityhub.workorders.models import Order, OrderEvent

PHONE = "13812345678"
# What the product writes (``workorders.sms``), as the citizen and the staff read it.
NO_REASON = "短信回复不满意，未说明原因"
RATING_PROMPT = "评价请直接回复本短信：1满意，2基本满意，3不满意（请附原因）。"


@pytest.fixture
def plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")  # the test client speaks plain http


@pytest.fixture
def env(plain_http, admin_client) -> dict[str, Any]:
    """The district's administrator, a relay's client holding ``sms:write`` and one holding another scope."""
    with session_scope() as s:
        relay = sharing.create_key(s, client_name="sms-relay", scopes="sms:write")[1]
        reader = sharing.create_key(s, client_name="dashboard", scopes="sharing:read")[1]
        unit_id = s.scalars(select(Unit.id).where(Unit.code == "T-QU")).one()
    anonymous = TestClient(shared_app(), raise_server_exceptions=False)
    return {"admin": admin_client, "unit_id": unit_id, "relay": relay, "reader": reader, "client": anonymous}


def _replied(env: dict[str, Any], phone: str = PHONE, reply: str = "已更换灯泡，路灯恢复照明。") -> tuple[int, str]:
    """An appeal from ``phone`` dispatched, accepted and replied: it waits for the citizen's rating."""
    c = env["admin"]
    order = c.post(
        "/api/v1/orders",
        json={"channel": "hotline", "title": "路灯不亮", "content": "云景路3号路灯坏了一周", "citizen_phone": phone},
    ).json()
    for action, body in (("dispatch", {"unit_id": env["unit_id"]}), ("accept", {}), ("reply", {"text": reply})):
        answer = c.post(f"/api/v1/orders/{order['id']}/actions/{action}", json=body)
        assert answer.status_code == 200, (action, answer.text)
    return order["id"], order["number"]


def _sms(env: dict[str, Any], key: str | None = "relay", **body: Any) -> Any:
    headers = {"X-API-Key": env[key]} if key else {}
    return env["client"].post("/api/v1/sms/inbound", json=body, headers=headers)


def _callbacks(order_id: int) -> list[OrderEvent]:
    with session_scope() as s:
        events = s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id, OrderEvent.action == "callback")
        ).all()
        s.expunge_all()
        return list(events)


def test_the_answer_s_text_message_asks_for_a_rating_by_reply(env) -> None:
    """Topic ``citizen``: the answer's message ends with how to rate it by replying (its number in the message), and
    says so in ``asks_rating`` beside the keys it had; the closing's message does not ask."""
    created = env["admin"].post(
        "/api/v1/notify/webhooks", json={"url": "http://127.0.0.1:9/relay", "events": ["citizen"]}
    )
    assert created.status_code == 201, created.text
    order_id, number = _replied(env)
    with session_scope() as s:
        [message] = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topic.CITIZEN)).all()
        payload = message.payload
    assert {"action", "to_state", "at", "phone", "text"} <= set(payload)
    assert payload["asks_rating"] is True and payload["phone"] == PHONE
    assert number in payload["text"] and RATING_PROMPT in payload["text"]
    assert "1满意，2基本满意，3不满意" in payload["text"] and len(payload["text"]) <= 201  # three SMS segments
    env["admin"].post("/api/v1/notify/webhooks", json={"url": "http://127.0.0.1:9/units", "events": ["callback"]})
    assert _sms(env, phone=PHONE, text="2").json()["outcome"] == "rated"
    with session_scope() as s:
        [told] = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topic.CALLBACK)).all()
        assert (told.payload["satisfied"], told.payload["rating"], told.payload["via"]) == (
            True,
            "basically_satisfied",
            "sms",
        )
        assert told.payload["actor"] == "市民（尾号5678，短信）"
    closed = env["admin"].post(f"/api/v1/orders/{order_id}/actions/close", json={})
    assert closed.status_code == 200, closed.text
    with session_scope() as s:
        last = s.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == Topic.CITIZEN).order_by(OutboxMessage.id.desc())
        ).first()
        assert last is not None and last.payload["action"] == "close"
        assert last.payload["asks_rating"] is False and RATING_PROMPT not in last.payload["text"]


READINGS = [
    ("1", "satisfied", True, None),
    ("１", "satisfied", True, None),
    ("非常满意，谢谢", "satisfied", True, "谢谢"),
    ("2", "basically_satisfied", True, None),
    ("基本满意", "basically_satisfied", True, None),
    ("评价：２ 处理有点慢", "basically_satisfied", True, "处理有点慢"),
    ("３ 路灯晚上还是不亮", "unsatisfied", False, "路灯晚上还是不亮"),
    ("不满意，还没修好", "unsatisfied", False, "还没修好"),
    ("3不满意 原因：没人来看过", "unsatisfied", False, "没人来看过"),
]


def test_every_form_of_a_rating_is_read_and_recorded_as_the_callback(env) -> None:
    for i, (text, rating, satisfied, reason) in enumerate(READINGS):
        phone = f"1390000{i:04d}"
        order_id, number = _replied(env, phone)
        answer = _sms(env, phone=f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}", text=text)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["outcome"], body["number"], body["rating"], body["satisfied"], body["reason"]) == (
            "rated",
            number,
            rating,
            satisfied,
            reason,
        ), text
        assert body["reply_text"].startswith("【12345】感谢您的评价") and number in body["reply_text"]
        with session_scope() as s:
            order = s.get(Order, order_id)
            assert order is not None and order.state == "called_back" and order.satisfied is satisfied, text
        [event] = _callbacks(order_id)
        assert event.reason == reason and event.payload["rating"] == rating, text


def test_a_message_that_says_no_rating_is_asked_again(env) -> None:
    order_id, number = _replied(env)
    for text in ("你好", "1 不满意", "3号楼的灯"):
        body = _sms(env, phone=PHONE, text=text).json()
        assert body["outcome"] == "unreadable" and body["number"] == number, text
        assert body["reply_text"].startswith("【12345】未能识别您的评价") and "1满意" in body["reply_text"]
    assert _callbacks(order_id) == []


def test_unsatisfied_with_and_without_a_reason(env) -> None:
    """A 不满意 by text message without a word of why is still a 不满意 — recorded with a reason saying none was given
    (the citizen rarely writes a second message; the supervisors' 回访不满意 must hear of it); with words, theirs."""
    bare_id, _ = _replied(env)
    said_id, _ = _replied(env, "13900001111")
    bare = _sms(env, phone=PHONE, text="3").json()
    assert (bare["outcome"], bare["satisfied"], bare["reason"]) == ("rated", False, NO_REASON)
    assert "核实" in bare["reply_text"]
    said = _sms(env, phone="13900001111", text="3，晚上还是不亮").json()
    assert (said["outcome"], said["satisfied"], said["reason"]) == ("rated", False, "晚上还是不亮")
    assert [e.reason for e in _callbacks(bare_id)] == [NO_REASON]
    assert [e.reason for e in _callbacks(said_id)] == ["晚上还是不亮"]
    listed = env["admin"].get("/api/v1/orders", params={"satisfied": "false", "state": "called_back"}).json()
    assert {o["id"] for o in listed["items"]} == {bare_id, said_id}  # both wait for the supervisor's 重办 or 办结


def test_several_orders_waiting_ask_which_and_a_named_number_is_rated(env) -> None:
    first_id, first = _replied(env)
    second_id, second = _replied(env)
    other_id, other = _replied(env, "13900002222")  # another citizen's: never named to this phone
    ask = _sms(env, phone=PHONE, text="1").json()
    assert ask["outcome"] == "ask_which" and ask["numbers"] == [first, second]
    assert first in ask["reply_text"] and second in ask["reply_text"] and other not in ask["reply_text"]
    # the citizen's word for their appeal, 诉求, as on their pages and /track (it said 工单)
    assert "您有2件诉求待评价" in ask["reply_text"] and "请回复诉求编号加评价数字" in ask["reply_text"]
    assert "工单" not in ask["reply_text"]
    assert _callbacks(first_id) == [] and _callbacks(second_id) == []
    named = _sms(env, phone=PHONE, text=f"诉求{second.lower()} 3 还是不亮").json()  # as the answer asked
    assert (named["outcome"], named["number"], named["reason"]) == ("rated", second, "还是不亮")
    assert named["reply_text"].startswith(f"【12345】感谢您的评价！诉求{second}已记录为")
    assert _callbacks(first_id) == [] and len(_callbacks(second_id)) == 1
    # One left waiting: a bare digit rates it.
    assert _sms(env, phone=PHONE, text="2").json()["number"] == first
    # Another citizen's number from this phone: not theirs, nothing said of it, nothing rated.
    foreign = _sms(env, phone=PHONE, text=f"{other} 1").json()
    assert foreign["outcome"] == "no_order" and other not in foreign["reply_text"] and foreign["number"] is None
    assert _callbacks(other_id) == []


def test_the_relay_s_retry_rates_once(env) -> None:
    order_id, number = _replied(env)
    message = {"phone": PHONE, "text": "3", "message_id": "relay-0001", "received_at": "2026-12-07T09:30:00+08:00"}
    first = _sms(env, **message).json()
    again = _sms(env, **message).json()
    assert first["outcome"] == "rated" and again["outcome"] == "repeated"
    assert again["reply_text"] == first["reply_text"] and again["reason"] == NO_REASON
    assert again["rating"] == "unsatisfied" and again["number"] == number
    [event] = _callbacks(order_id)
    assert event.payload["sms_message_id"] == "relay-0001"
    # Another message of the phone with nothing waiting now: none waits (not the first message's answer).
    assert _sms(env, phone=PHONE, text="3", message_id="relay-0002").json()["outcome"] == "no_order"


def test_an_unknown_phone_is_told_no_order_waits_and_nothing_else(env) -> None:
    _, number = _replied(env)
    answer = _sms(env, phone="13700000000", text="1")
    assert answer.status_code == 200
    body = answer.json()
    assert body["outcome"] == "no_order" and body["number"] is None and body["numbers"] == []
    assert "未找到" in body["reply_text"] and number not in answer.text and PHONE not in answer.text


def test_a_rated_or_closed_order_is_not_rated_again(env) -> None:
    rated_id, rated = _replied(env)
    closed_id, closed = _replied(env, "13900003333")
    track = env["client"].post("/api/v1/track/rate", json={"number": rated, "phone": PHONE, "satisfied": True})
    assert track.status_code == 200, track.text
    assert _sms(env, phone=PHONE, text="3").json()["outcome"] == "no_order"
    named = _sms(env, phone=PHONE, text=f"{rated} 3").json()
    assert named["outcome"] == "not_rateable" and named["number"] == rated and "已评价" in named["reply_text"]
    env["admin"].post(f"/api/v1/orders/{closed_id}/actions/callback", json={"satisfied": True})
    env["admin"].post(f"/api/v1/orders/{closed_id}/actions/close", json={})
    with session_scope() as s:
        assert s.scalars(select(Order.state).where(Order.id == closed_id)).one() == "closed_resolved"
    assert _sms(env, phone="13900003333", text="1").json()["outcome"] == "no_order"
    late = _sms(env, phone="13900003333", text=f"{closed} 3 还没修").json()
    assert late["outcome"] == "not_rateable" and closed in late["reply_text"]
    assert len(_callbacks(rated_id)) == 1 and len(_callbacks(closed_id)) == 1


def test_the_trail_says_the_citizen_rated_by_sms(env) -> None:
    order_id, _ = _replied(env)
    body = _sms(env, phone=PHONE, text="2 处理有点慢", message_id="m-9", received_at="2026-12-07T09:30:00+08:00")
    assert body.json()["outcome"] == "rated", body.text
    [event] = _callbacks(order_id)
    assert event.actor_name == "市民（尾号5678，短信）" and event.actor_id is None
    assert event.payload["via"] == "sms" and event.payload["rating"] == "basically_satisfied"
    assert event.payload["satisfied"] is True and event.payload["sms_message_id"] == "m-9"
    assert event.payload["received_at"].startswith("2026-12-07T01:30:00")
    trail = env["admin"].get(f"/api/v1/orders/{order_id}/events").json()
    assert any(e["action"] == "callback" and e["actor_name"] == "市民（尾号5678，短信）" for e in trail)
    with session_scope() as s:
        district = s.scalars(select(Unit).where(Unit.code == "T-QU")).one()
        s.add(
            User(
                username="sms-sup",
                full_name="督办员",
                role=Role.SUPERVISOR,
                unit_id=district.id,
                password_hash=passwords.hash_password(web_helpers.PASSWORD),
            )
        )
    page = web_helpers.login("sms-sup")
    chinese = page.get(f"/orders/{order_id}").text
    assert "市民（尾号5678，短信）" in chinese and "基本满意" in chinese
    page.cookies.set("cityhub_lang", "en")
    english = page.get(f"/orders/{order_id}").text
    assert "Citizen (phone ending 5678, by SMS)" in english and "Basically satisfied" in english


def test_only_a_key_of_scope_sms_write_posts_replies(env) -> None:
    order_id, _ = _replied(env)
    keyless = _sms(env, key=None, phone=PHONE, text="1")
    assert keyless.status_code == 403 and "API key is required" in keyless.text
    refused = _sms(env, key="reader", phone=PHONE, text="1")
    assert refused.status_code == 403 and "sms:write" in refused.text
    token = env["admin"].headers["Authorization"]
    personal = env["client"].post(
        "/api/v1/sms/inbound", json={"phone": PHONE, "text": "1"}, headers={"Authorization": token}
    )
    assert personal.status_code in (401, 403)  # a person's token is not the relay's key
    assert _callbacks(order_id) == []
    assert _sms(env, phone=PHONE, text="1").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "1"}, "phone"),
        ({"phone": PHONE}, "text"),
        ({"phone": "abc", "text": "1"}, "phone"),
        ({"phone": PHONE, "text": "  "}, "text"),
        ({"phone": PHONE, "text": "1", "received_at": "2026-12-07T09:30:00"}, "received_at"),
        ({"phone": PHONE, "text": "1", "received_at": "yesterday"}, "received_at"),
        ({"phone": PHONE, "text": "1", "satisfied": True}, "satisfied"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(env, body, field) -> None:
    answer = _sms(env, **body)
    assert 400 <= answer.status_code < 500 and field in answer.text, answer.text


def test_the_command_line_replays_a_relay_s_messages(env, cli_run, tmp_path: Path) -> None:
    first_id, first = _replied(env)
    second_id, _ = _replied(env, "13900004444")
    code, out, err = cli_run("notify", "sms-inbound", "--phone", PHONE, "--text", "3 还是不亮", "--message-id", "a1")
    assert code == 0, err
    assert out.startswith(f"rated\t{first}\t【12345】感谢您的评价")
    log = tmp_path / "relay.csv"
    log.write_text(
        "phone,text,message_id,received_at\n"
        f"{PHONE},3 还是不亮,a1,\n"  # the same message again: rates nothing twice
        "13900004444,满意,a2,2026-12-07T10:00:00+08:00\n"
        ",1,a3,\n"
        "13700000000,1,a4,\n",
        encoding="utf-8",
    )
    code, out, err = cli_run("notify", "sms-inbound", "--file", str(log))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"row 2\trepeated\t{first}") and lines[1].startswith("row 3\trated\t")
    assert lines[2].startswith("row 5\tno_order\t-\t")
    assert f"rejected: {log}: row 4: phone: " in err
    assert len(_callbacks(first_id)) == 1 and len(_callbacks(second_id)) == 1
    code, _, err = cli_run("notify", "sms-inbound", "--phone", PHONE)
    assert code != 0 and "--text" in err
    code, _, err = cli_run("notify", "sms-inbound", "--phone", "x", "--text", "1")
    assert code == 1 and "phone" in err and len(err.strip().splitlines()) == 1
