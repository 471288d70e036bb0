"""Notifications through the outbox on both backends: same-transaction enqueue, signed delivery to a real local
HTTP receiver, retries with backoff, dead-lettering, lease take-over, SKIP LOCKED claims, the CLI, and delivery
across a ``cityhub worker`` process killed with SIGKILL and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityhub import auditlog
from cityhub.intake.service import submit
from cityhub.notify import service
from cityhub.notify.cli import app as notify_cli
from cityhub.notify.config import NotifySettings
from cityhub.notify.models import OutboxMessage, OutboxStatus, Subscription, Topic
from cityhub.notify.senders import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TOPIC_HEADER, verify
from cityhub.org.models import Unit, UnitTier
from cityhub.timerange import answer_time
from cityhub.workorders import service as orders
from cityhub.workorders.scheduled import sla_sweep

MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a plain working day
ALICE = orders.Actor(name="alice", role="dispatcher")
PROJECT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ local receiver


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request; it can fail or hold chosen requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = 0  # answer 500 to this many requests
        self.always_fail = False
        self.hold_request: int | None = None  # 1-based number of a request to hold until ``release`` is set
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body})
                    number = len(receiver.requests)
                    fail = receiver.always_fail or number <= receiver.fail_first
                if number == receiver.hold_request:
                    receiver.release.wait(60)
                try:
                    self.send_response(500 if fail else 200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"no" if fail else b"ok")
                except OSError:  # the sender was killed while we held its request
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def delivery_ids(self) -> list[str]:
        with self.lock:
            return [r["headers"][DELIVERY_HEADER] for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# ------------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def units(db_session):
    district = Unit(code="N440111", name="通知区", tier=UnitTier.DISTRICT)
    db_session.add(district)
    db_session.flush()
    street = Unit(code="N440111001", name="通知街道", tier=UnitTier.STREET, parent_id=district.id)
    dept = Unit(code="N440111-D01", name="通知城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    dept2 = Unit(code="N440111-D02", name="通知住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    db_session.add_all([street, dept, dept2])
    db_session.commit()
    return {"street": street, "dept": dept, "dept2": dept2}


def _order(db_session: Session, **extra: Any):
    data = {
        "channel": "hotline",
        "content": "路灯不亮已经一周",
        "appeal_type": "complaint",
        "citizen_name": "李四",
        "citizen_phone": "13900001111",
        "created_at": MONDAY,
        **extra,
    }
    return submit(db_session, data=data, actor=ALICE).order


def _act(db_session: Session, order: Any, action: str, now: datetime = MONDAY, **params: Any):
    return orders.act(db_session, order_id=order.id, action=action, actor=ALICE, params=params, now=now)


def _messages(db_session: Session) -> list[OutboxMessage]:
    return list(db_session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _settings(**overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "backoff_base_seconds": 0.0,
        "max_attempts": 5,
        "timeout_seconds": 5.0,
        "batch_size": 10,
        "lease_seconds": 60.0,
        **overrides,
    }
    return NotifySettings(**values)


def _subscribe(
    db_session: Session, url: str, topics: str = "dispatch,warning,overdue,reply,callback", **kw: Any
) -> tuple[Subscription, str]:
    sub, secret = service.add_subscription(db_session, target=url, topics=topics.split(","), **kw)
    db_session.commit()
    return sub, secret


def _assert_signed(request: dict[str, Any], secret: str) -> None:
    headers = request["headers"]
    assert verify(secret, headers[TIMESTAMP_HEADER], request["body"], headers[SIGNATURE_HEADER])
    assert not verify("another-secret", headers[TIMESTAMP_HEADER], request["body"], headers[SIGNATURE_HEADER])


# ------------------------------------------------------------------------------------------------- enqueue


def test_enqueue_shares_the_transaction_of_the_change(db_session, units):
    _subscribe(db_session, "http://127.0.0.1:9/hook")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    assert [m.topic for m in _messages(db_session)] == [Topic.DISPATCH]
    db_session.rollback()
    assert _messages(db_session) == []

    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    [message] = _messages(db_session)
    assert message.order_id == order.id and message.status == OutboxStatus.PENDING and message.attempts == 0
    assert message.payload["action"] == "dispatch" and message.payload["to_state"] == "dispatched"


def test_only_notified_actions_and_matching_subscriptions_enqueue(db_session, units):
    everything, _ = _subscribe(db_session, "http://127.0.0.1:9/all")
    replies, _ = _subscribe(db_session, "http://127.0.0.1:9/replies", topics="reply")
    dept2, _ = _subscribe(db_session, "http://127.0.0.1:9/dept2", topics="dispatch", unit_code="N440111-D02")
    order = _order(db_session, street_code="N440111001")
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    _act(db_session, order, "transfer", unit_id=units["dept2"].id, reason="职责不符")
    _act(db_session, order, "accept")
    _act(db_session, order, "start")
    _act(db_session, order, "urge", reason="市民再次来电")
    _act(db_session, order, "reply", text="已修复")
    _act(db_session, order, "callback", satisfied=False)
    _act(db_session, order, "reopen", reason="仍不亮")
    got = Counter((m.subscription_id, m.topic.value) for m in _messages(db_session))
    assert got == {
        (everything.id, "dispatch"): 3,  # dispatch, transfer, reopen
        (everything.id, "reply"): 1,
        (everything.id, "callback"): 1,
        (replies.id, "reply"): 1,
        (dept2.id, "dispatch"): 2,  # the transfer to dept2 and the reopen (dept2 still leads)
    }
    callback = next(m for m in _messages(db_session) if m.topic == Topic.CALLBACK)
    assert callback.payload["satisfied"] is False


def test_files_a_citizen_adds_to_their_appeal_are_notified_to_the_units_working_it(
    db_session, units, tmp_path, monkeypatch
):
    import io

    from PIL import Image

    from cityhub.workorders import files

    monkeypatch.setenv("CITYHUB_FILES_DIR", str(tmp_path / "files"))
    png = io.BytesIO()
    Image.new("RGB", (4, 3), "navy").save(png, "PNG")
    _subscribe(db_session, "http://127.0.0.1:9/hook", topics="material,dispatch", unit_code="N440111-D02")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept2"].id)
    photo = files.Upload("夜景.png", png.getvalue())
    staff = orders.Actor(name="承办人", user_id=None, role="handler")
    files.attach(db_session, order_id=order.id, uploads=[photo], actor=staff)  # staff's own files: no message
    files.attach(db_session, order_id=order.id, uploads=[photo], actor=orders.SYSTEM, with_appeal=True)
    order.citizen_name = "王芳"
    citizen = orders.Actor(name="王芳", user_id=None, role="citizen")
    files.attach(db_session, order_id=order.id, uploads=[photo], actor=citizen, note="晚上拍的，电话13912345678")
    sent = _messages(db_session)
    assert [m.topic.value for m in sent] == ["dispatch", "material"]
    payload = sent[1].payload
    assert payload["actor"] == "citizen" and payload["text"] == "晚上拍的，电话[电话]"  # receivers get no personal data
    assert [a["filename"] for a in payload["attachments"]] == ["夜景.png"]


def test_a_duplicate_merged_into_an_order_is_notified_to_the_units_working_it(db_session, units):
    """A ``merged_in`` on the master's trail told nobody: the units subscribed to ``merged`` for the master's units
    now hear of it — which order joined it, who merged it, whether intake's duplicate check did — with the master's
    order block, and no personal data of the appeal merged (its own citizen's step reads ``citizen``)."""
    from cityhub.intake.dedupe import auto_merge_params

    lead, _ = _subscribe(db_session, "http://127.0.0.1:9/lead", topics="merged,dispatch", unit_code="N440111-D02")
    _subscribe(db_session, "http://127.0.0.1:9/other", topics="merged", unit_code="N440111-D01")  # not the master's
    _subscribe(db_session, "http://127.0.0.1:9/dispatch")  # not subscribed to merges
    master = _order(db_session)
    _act(db_session, master, "dispatch", unit_id=units["dept2"].id)
    duplicate = _order(db_session, content="路灯不亮一周了还没人修", citizen_name="王芳", citizen_phone="13912345678")
    _act(db_session, duplicate, "merge", master_id=master.id, reason="同一路灯")
    merged = [m for m in _messages(db_session) if m.topic == Topic.MERGED]
    assert [(m.subscription_id, m.order_id) for m in merged] == [(lead.id, master.id)]
    assert merged[0].payload == {
        "action": "merged_in",
        "from_state": None,
        "to_state": "dispatched",
        "actor": "alice",
        "unit_id": None,
        "at": MONDAY.isoformat(),
        "merged_id": duplicate.id,
        "merged_number": duplicate.number,
        "auto": False,
    }
    body = json.loads(service.render_body(db_session, merged[0]))
    assert body["topic"] == "merged" and body["order"]["number"] == master.number
    assert "王芳" not in json.dumps(body, ensure_ascii=False) and "13912345678" not in json.dumps(body)

    # Merged by intake's duplicate check as the citizen filed it: their name is not told.
    again = _order(db_session, content="路灯坏了", citizen_name="王芳", citizen_phone="13912345678")
    citizen = orders.Actor(name="王芳", user_id=None, role="citizen")
    orders.act(db_session, order_id=again.id, action="merge", actor=citizen, params=auto_merge_params(master, 0.9))
    last = [m for m in _messages(db_session) if m.topic == Topic.MERGED][-1]
    assert (last.payload["actor"], last.payload["auto"], last.payload["merged_id"]) == ("citizen", True, again.id)
    db_session.rollback()
    assert _messages(db_session) == []  # written with the merge, gone with it


def test_the_end_of_an_orders_handling_is_notified_under_close(db_session, units):
    """A system following results (the city's 12345 platform) heard of the reply and the callback but never that an
    order was closed, cancelled or merged away — no topic said it, and an order closed without a callback (or a
    consultation answered at once) ended unheard. ``close`` now tells each end once: the step, whether it was
    resolved (null when cancelled or merged) and, for a merge, the order it joined."""
    closing, _ = _subscribe(db_session, "http://127.0.0.1:9/close", topics="close")
    _subscribe(db_session, "http://127.0.0.1:9/other")  # dispatch, reply, callback …: no close
    done = _order(db_session)
    for action, params in (
        ("dispatch", {"unit_id": units["dept"].id}),
        ("accept", {}),
        ("start", {}),
        ("reply", {"text": "已修复"}),
        ("callback", {"satisfied": True}),
        ("close", {}),
    ):
        _act(db_session, done, action, **params)
    unresolved = _order(db_session)
    _act(db_session, unresolved, "dispatch", unit_id=units["dept"].id)
    _act(db_session, unresolved, "accept")
    _act(db_session, unresolved, "reply", text="无法处理")
    _act(db_session, unresolved, "close", resolved=False, reason="市民未接电话")
    cancelled = _order(db_session)
    _act(db_session, cancelled, "cancel", reason="重复来电，误建")
    master = _order(db_session, content="另一处路灯不亮")
    merged = _order(db_session, content="路灯一直不亮")
    _act(db_session, merged, "merge", master_id=master.id)
    answered = _order(db_session, content="社保卡怎么补办", appeal_type="consultation")
    _act(db_session, answered, "instant_answer", answer="携带身份证到社保窗口办理")
    told = [m for m in _messages(db_session) if m.topic == Topic.CLOSE]
    assert all(m.subscription_id == closing.id for m in told)
    assert [(m.order_id, m.payload["action"], m.payload["to_state"], m.payload["resolved"]) for m in told] == [
        (done.id, "close", "closed_resolved", True),
        (unresolved.id, "close", "closed_unresolved", False),
        (cancelled.id, "cancel", "cancelled", None),
        (merged.id, "merge", "merged", None),
        (answered.id, "instant_answer", "closed_resolved", True),
    ]
    assert told[1].payload["reason"] == "市民未接电话" and told[2].payload["reason"] == "重复来电，误建"
    assert told[3].payload["master_id"] == master.id and "master_id" not in told[0].payload
    body = json.loads(service.render_body(db_session, told[0]))
    assert body["topic"] == "close" and body["order"]["state"] == "closed_resolved" and body["event"]["resolved"]


def test_leader_assignment_notifies_only_when_it_dispatches(db_session, units):
    _subscribe(db_session, "http://127.0.0.1:9/hook", topics="dispatch")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    _act(db_session, order, "accept")
    _act(db_session, order, "assign", reason="本周内办结")  # an instruction on the order its unit already holds
    assert len(_messages(db_session)) == 1
    _act(db_session, order, "assign", unit_id=units["dept2"].id)
    assert [m.payload["action"] for m in _messages(db_session)] == ["dispatch", "assign"]


def test_version_moves_once_per_notified_action(db_session, units):
    _subscribe(db_session, "http://127.0.0.1:9/hook")
    order = _order(db_session)
    before = order.version
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    assert order.version == before + 1 and len(_messages(db_session)) == 1


def test_sla_sweep_enqueues_warning_and_overdue_once(db_session, units):
    sub, _ = _subscribe(db_session, "http://127.0.0.1:9/hook", topics="warning,overdue")
    # Another unit's subscriber must hear nothing of this order.
    _subscribe(db_session, "http://127.0.0.1:9/other", topics="overdue", unit_code="N440111-D02")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    _act(db_session, order, "accept")
    quiet = _order(db_session)
    _act(db_session, quiet, "dispatch", unit_id=units["dept"].id)
    _act(db_session, quiet, "accept")
    _act(db_session, quiet, "suspend", MONDAY + timedelta(hours=1), reason="等市民补充材料")
    db_session.commit()

    sla_sweep(db_session, now=order.warn_at + timedelta(minutes=1))
    sla_sweep(db_session, now=order.warn_at + timedelta(minutes=2))
    assert [(m.order_id, m.topic) for m in _messages(db_session)] == [(order.id, Topic.WARNING)]
    sla_sweep(db_session, now=order.due_at + timedelta(minutes=1))
    sla_sweep(db_session, now=order.due_at + timedelta(minutes=2))
    messages = _messages(db_session)
    assert [(m.order_id, m.topic, m.subscription_id) for m in messages] == [
        (order.id, Topic.WARNING, sub.id),
        (order.id, Topic.OVERDUE, sub.id),
    ]
    assert messages[1].payload["mark"] == "overdue" and messages[1].status == OutboxStatus.PENDING
    db_session.rollback()  # the sweep's rows go with its transaction
    assert _messages(db_session) == []


def test_a_moved_running_deadline_is_notified_with_before_and_after(db_session, units, receiver):
    """A calendar edit moves running deadlines (sla_recompute): subscribers of ``deadline`` hear of each moved order
    (by unit as for the other topics), in the edit's transaction, with the deadlines before and after."""
    from datetime import date

    from cityhub.workorders import recompute
    from cityhub.workorders.models import Order, OrderEvent

    _, secret = _subscribe(db_session, receiver.url, topics="deadline")
    dept2, _ = _subscribe(db_session, "http://127.0.0.1:9/dept2", topics="deadline", unit_code="N440111-D02")
    _subscribe(db_session, "http://127.0.0.1:9/old", topics="dispatch,warning,overdue,reply,callback")
    first, second = _order(db_session), _order(db_session)
    _act(db_session, first, "dispatch", unit_id=units["dept"].id)
    _act(db_session, second, "dispatch", unit_id=units["dept2"].id)
    db_session.commit()
    before = len(_messages(db_session))
    admin = orders.Actor(name="管理员", role="admin")

    def typhoon_on_wednesday() -> int:
        _, done = recompute.set_calendar_day(
            db_session,
            day=date(2026, 3, 4),
            is_workday=False,
            name="台风停工",
            actor=admin,
            now=MONDAY + timedelta(hours=1),
        )
        return done.orders

    assert typhoon_on_wednesday() == 2
    moved = [m for m in _messages(db_session) if m.topic == Topic.DEADLINE]
    assert len(_messages(db_session)) == before + 3
    assert Counter((m.order_id, m.subscription_id == dept2.id) for m in moved) == {
        (first.id, False): 1,
        (second.id, False): 1,
        (second.id, True): 1,  # dept2 leads the second order only
    }
    db_session.rollback()  # no edit, no message
    assert not [m for m in _messages(db_session) if m.topic == Topic.DEADLINE]

    assert typhoon_on_wednesday() == 2
    db_session.commit()
    db_session.expire_all()
    event = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == first.id, OrderEvent.action == recompute.ACTION)
    ).one()
    [message] = [m for m in _messages(db_session) if m.topic == Topic.DEADLINE and m.order_id == first.id]
    assert message.payload == {
        "action": "sla_recompute",
        "from_state": "dispatched",
        "to_state": "dispatched",
        "actor": "管理员",
        "unit_id": None,
        "at": (MONDAY + timedelta(hours=1)).isoformat(),
        "reason": recompute.CALENDAR_REASON,
        "cause": "calendar",
        "days": ["2026-03-04"],
        "from": event.payload["from"],
        "to": event.payload["to"],
    }
    assert message.payload["to"]["due_at"] > message.payload["from"]["due_at"]

    service.deliver_due(db_session, settings=_settings())
    [request] = [r for r in receiver.requests if json.loads(r["body"])["order"]["id"] == first.id]
    _assert_signed(request, secret)
    assert request["headers"][TOPIC_HEADER] == "deadline"
    body = json.loads(request["body"])
    due_at = answer_time(db_session.get(Order, first.id).due_at)
    assert body["event"]["to"]["due_at"] == body["order"]["due_at"] == due_at


def test_an_urgency_raise_that_brings_the_deadline_forward_is_notified_as_a_deadline_move(db_session, units):
    """升级 to 紧急 a day after dispatch: the handling unit's ``deadline`` subscribers hear the new due date, with
    the cause; an escalation that moves nothing (no new urgency, or terms no tighter) sends nothing."""
    from cityhub.workorders.models import OrderEvent

    sub, _ = _subscribe(db_session, "http://127.0.0.1:9/hook", topics="deadline", unit_code="N440111-D01")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    _act(db_session, order, "escalate", MONDAY + timedelta(hours=1), reason="督办")  # no urgency: nothing moves
    assert _messages(db_session) == []
    due_normal = order.due_at
    _act(db_session, order, "escalate", MONDAY + timedelta(days=1), reason="市民多次来电", urgency="urgent")
    [message] = _messages(db_session)
    event = db_session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)).all()[
        -1
    ]
    assert message.topic == Topic.DEADLINE and message.subscription_id == sub.id
    assert message.payload == {
        "action": "escalate",
        "from_state": "dispatched",
        "to_state": "dispatched",
        "actor": ALICE.name,
        "unit_id": None,
        "at": (MONDAY + timedelta(days=1)).isoformat(),
        "reason": "市民多次来电",
        "cause": "urgency",
        "urgency": "urgent",
        "previous_urgency": "normal",
        "from": {"warn_at": event.payload["from"]["warn_at"], "due_at": due_normal.isoformat()},
        "to": {"warn_at": order.warn_at.isoformat(), "due_at": order.due_at.isoformat()},
    }
    assert event.payload["to"] == message.payload["to"]  # the audit trail says the same
    _act(db_session, order, "escalate", MONDAY + timedelta(days=2, hours=6), reason="特急", urgency="critical")
    assert len(_messages(db_session)) == 1  # 1 working day from Wednesday afternoon is later than Thursday 10:00


# ------------------------------------------------------------------------------------------------ delivery


def test_delivery_is_signed_and_carries_the_order(db_session, units, receiver):
    _, secret = _subscribe(db_session, receiver.url)
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    _act(db_session, order, "accept")
    _act(db_session, order, "start")
    _act(db_session, order, "reply", text="已修复")
    db_session.commit()

    result = service.deliver_due(db_session, settings=_settings())
    assert result["sent"] == 2 and result["claimed"] == 2
    messages = _messages(db_session)
    assert all(m.status == OutboxStatus.SENT and m.sent_at and m.claimed_by is None for m in messages)
    assert receiver.delivery_ids() == [str(m.id) for m in messages]
    for request, message in zip(receiver.requests, messages, strict=True):
        _assert_signed(request, secret)
        assert request["headers"][TOPIC_HEADER] == message.topic.value
        body = json.loads(request["body"])
        assert body["id"] == str(message.id) and body["topic"] == message.topic.value
        assert body["order"]["number"] == order.number
        assert body["order"]["lead_unit"]["code"] == "N440111-D01"
        # Every instant as the API gives it (UTC, Z): what GET /api/v1/orders/{id} answers (it read +00:00 here).
        assert body["order"]["due_at"] == answer_time(order.due_at) and body["order"]["due_at"].endswith("Z")
        assert body["created_at"].endswith("Z") and body["event"]["at"].endswith("Z")
        assert "citizen_phone" not in body["order"] and "13900001111" not in request["body"].decode()
    assert service.deliver_due(db_session, settings=_settings())["claimed"] == 0
    assert receiver.count() == 2


def test_the_order_block_carries_no_personal_data(db_session, units):
    """Receivers get the title scrubbed and the address cut to its road, as the public sees them; no name, phone,
    house number or exact point."""
    _subscribe(db_session, "http://127.0.0.1:9/hook")
    order = _order(
        db_session,
        title="本人李四，电话１３９ ０００１ １１１１，住云景路12号3栋501",  # as an operator might type it
        content="本人李四，电话１３９ ０００１ １１１１，住云景路12号3栋501，楼道灯坏了一周",
        address="白云区同和街云景路12号3栋501",
        lat=23.21234,
        lng=113.27891,
    )
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    [message] = _messages(db_session)
    body = service.render_body(db_session, message).decode()
    for secret in ("李四", "13900001111", "１３９", "12号", "3栋501", "23.21234", "113.27891"):
        assert secret not in body, secret
    snapshot = json.loads(body)["order"]
    assert snapshot["address"] == "白云区同和街云景路"
    assert snapshot["title"].startswith("本人[已隐去]，电话[电话]，住云景路[门牌号]")


def test_the_citizen_is_told_of_the_answer_and_the_closing_through_the_sms_relay(db_session, units, receiver):
    """Topic ``citizen`` (市民通知): the district's SMS relay receives, for the citizen who appealed, their phone and
    the text message telling them their appeal was answered — the answer's beginning, where to read it whole and
    rate it — and then closed; not the other steps, nor an order without a phone, nor a sensor's. The relay alone
    gets the phone: a subscriber of the reply topic does not."""
    _subscribe(db_session, receiver.url, topics="citizen")
    _subscribe(db_session, "http://127.0.0.1:9/units", topics="reply")
    order = _order(db_session)
    silent = _order(db_session, citizen_phone=None, content="井盖缺失")
    machine = _order(db_session, channel="sensor", citizen_phone="13900002222", content="积水监测点水位超限")
    answer = "经现场核查，该路段路灯线路老化导致不亮，已于3月3日更换线路并恢复照明。" + "今后将加强巡查维护。" * 3
    for one in (order, silent, machine):
        _act(db_session, one, "dispatch", unit_id=units["dept"].id)
        _act(db_session, one, "accept")
        _act(db_session, one, "reply", text=answer)
    _act(db_session, order, "callback", satisfied=True)
    _act(db_session, order, "close")
    db_session.commit()
    citizen = [m for m in _messages(db_session) if m.topic == Topic.CITIZEN]
    assert [(m.order_id, m.payload["action"]) for m in citizen] == [(order.id, "reply"), (order.id, "close")]
    assert len(answer) > service.SMS_REPLY_CHARS  # the message carries its beginning
    service.deliver_due(db_session, settings=_settings(max_attempts=1))
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert [b["topic"] for b in bodies] == ["citizen", "citizen"]
    replied, closed = (b["event"] for b in bodies)
    assert replied["phone"] == closed["phone"] == "13900001111"
    assert replied["text"] == (
        f"【12345】您反映的问题（诉求编号{order.number}）已答复：{answer[: service.SMS_REPLY_CHARS]}… "
        "评价请直接回复本短信：1满意，2基本满意，3不满意（请附原因）。"
        "完整答复可凭诉求编号和本手机号在12345网站“办理进度查询”查看。"
    )
    assert replied["asks_rating"] is True and closed["asks_rating"] is False
    assert closed["text"].startswith(f"【12345】您反映的问题（诉求编号{order.number}）已办结。")
    units_body = service.render_body(db_session, next(m for m in _messages(db_session) if m.topic == Topic.REPLY))
    assert b"13900001111" not in units_body
    # The hotline's own signature and lookup address, where the district set them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYHUB_NOTIFY_SMS_SIGNATURE", "白云12345")
        patch.setenv("CITYHUB_NOTIFY_TRACK_URL", "https://12345.example.gov.cn/track")
        service.get_notify_settings.cache_clear()
        try:
            text = service.citizen_text(order, orders.Action.CLOSE)
        finally:
            patch.undo()
            service.get_notify_settings.cache_clear()
    assert text.startswith("【白云12345】") and "在https://12345.example.gov.cn/track查看" in text


def test_retry_on_500_then_success(db_session, units, receiver):
    _, secret = _subscribe(db_session, receiver.url, topics="dispatch")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    receiver.fail_first = 2

    service.deliver_due(db_session, settings=_settings())
    [message] = _messages(db_session)
    assert message.status == OutboxStatus.FAILED and message.attempts == 1 and "HTTP 500" in message.last_error
    service.deliver_due(db_session, settings=_settings())
    service.deliver_due(db_session, settings=_settings())
    db_session.refresh(message)
    assert message.status == OutboxStatus.SENT and message.attempts == 3 and message.last_error is None
    assert receiver.delivery_ids() == [str(message.id)] * 3
    _assert_signed(receiver.requests[-1], secret)


def test_failure_backs_off(db_session, units, receiver):
    _subscribe(db_session, receiver.url, topics="dispatch")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    receiver.always_fail = True
    before = datetime.now(UTC)
    service.deliver_due(db_session, settings=_settings(backoff_base_seconds=120))
    [message] = _messages(db_session)
    assert message.status == OutboxStatus.FAILED
    assert message.next_attempt_at >= before + timedelta(seconds=60)  # half the first ceiling is fixed
    assert service.deliver_due(db_session, settings=_settings(backoff_base_seconds=120))["claimed"] == 0
    assert receiver.count() == 1


def test_dead_after_max_attempts_and_retry_revives(db_session, units, receiver):
    _subscribe(db_session, receiver.url, topics="dispatch")
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    receiver.always_fail = True
    for _ in range(4):
        service.deliver_due(db_session, settings=_settings(max_attempts=3))
    [message] = _messages(db_session)
    assert message.status == OutboxStatus.DEAD and message.attempts == 3 and "HTTP 500" in message.last_error
    assert receiver.count() == 3

    receiver.always_fail = False
    service.retry(db_session, message_id=message.id)
    db_session.commit()
    assert message.status == OutboxStatus.PENDING and message.attempts == 0
    assert service.deliver_due(db_session, settings=_settings(max_attempts=3))["sent"] == 1
    db_session.refresh(message)
    assert message.status == OutboxStatus.SENT and receiver.count() == 4


def test_unconfigured_sender_dead_letters_with_a_clear_error(db_session, units):
    service.add_subscription(db_session, target="13800000000", topics=["dispatch"], kind="sms")
    db_session.commit()
    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    service.deliver_due(db_session, settings=_settings())
    [message] = _messages(db_session)
    assert message.status == OutboxStatus.DEAD and "register_sender('sms'" in message.last_error


def test_removed_subscription_dead_letters_its_backlog(db_session, units, receiver):
    sub, _ = _subscribe(db_session, receiver.url, topics="dispatch")
    for _ in range(2):
        _act(db_session, _order(db_session), "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    assert service.remove_subscription(db_session, subscription_id=sub.id) == 2
    db_session.commit()
    assert service.deliver_due(db_session, settings=_settings())["claimed"] == 0
    assert receiver.count() == 0
    assert {m.last_error for m in _messages(db_session)} == {"subscription removed"}


def test_expired_lease_is_claimed_again_and_fences_the_old_worker(db_session, units):
    _subscribe(db_session, "http://127.0.0.1:9/hook", topics="dispatch")
    _act(db_session, _order(db_session), "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    now = datetime.now(UTC)
    [first] = service.claim(db_session, token="dead-worker", limit=5, lease_seconds=30, now=now)
    db_session.commit()
    assert service.claim(db_session, token="other", limit=5, lease_seconds=30, now=now + timedelta(seconds=29)) == []
    [again] = service.claim(db_session, token="other", limit=5, lease_seconds=30, now=now + timedelta(seconds=31))
    db_session.commit()
    assert again.id == first.id and again.attempts == 2 and again.claimed_by == "other"
    assert not service._finish(
        db_session, message_id=first.id, token="dead-worker", values={"status": OutboxStatus.SENT}
    )
    assert service._finish(db_session, message_id=first.id, token="other", values={"status": OutboxStatus.SENT})


def test_postgresql_workers_claim_disjoint_batches_without_waiting(db_session, db_engine, db_backend, units):
    if db_backend != "postgresql":
        pytest.skip("SQLite has one writer at a time; SKIP LOCKED is PostgreSQL's")
    _subscribe(db_session, "http://127.0.0.1:9/hook", topics="dispatch")
    for _ in range(6):
        _act(db_session, _order(db_session), "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    first = Session(bind=db_engine)
    second = Session(bind=db_engine)
    try:
        second.connection().exec_driver_sql("SET lock_timeout = '2s'")
        mine = service.claim(first, token="w1", limit=4, lease_seconds=60)  # rows stay locked: no commit yet
        theirs = service.claim(second, token="w2", limit=10, lease_seconds=60)
        assert len(mine) == 4 and len(theirs) == 2
        assert not {m.id for m in mine} & {m.id for m in theirs}
    finally:
        first.rollback()
        second.rollback()
        first.close()
        second.close()


def test_concurrent_workers_deliver_each_message_once(db_session, db_engine, units, receiver):
    _subscribe(db_session, receiver.url, topics="dispatch")
    for _ in range(16):
        _act(db_session, _order(db_session), "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    errors: list[BaseException] = []

    def work(name: str) -> None:
        session = Session(bind=db_engine)
        try:
            service.deliver_due(session, settings=_settings(batch_size=3), worker=name)
        except BaseException as exc:
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ids = [str(m.id) for m in _messages(db_session)]
    assert sorted(receiver.delivery_ids()) == sorted(ids)  # every message, none twice
    assert {m.status for m in _messages(db_session)} == {OutboxStatus.SENT}


# ------------------------------------------------------------------------------------------------------ CLI

runner = CliRunner()


def test_cli_webhooks_and_outbox(app_db, db_session, units):
    added = runner.invoke(
        notify_cli,
        ["webhooks", "add", "--url", "http://127.0.0.1:9/h", "--events", "dispatch,reply", "--unit", "N440111-D01"],
    )
    assert added.exit_code == 0, added.output
    secret = next(line.split(": ", 1)[1] for line in added.stdout.splitlines() if line.startswith("secret: "))
    sub = db_session.scalars(select(Subscription)).one()
    assert sub.secret == secret and sub.topics == ["dispatch", "reply"] and sub.unit_id == units["dept"].id
    [logged] = auditlog.entries(db_session, area="webhook")[0]  # as the page's and the API's changes are
    assert (logged.action, logged.actor, logged.target) == ("create", "cli", str(sub.id))

    listed = runner.invoke(notify_cli, ["webhooks", "list"])
    assert listed.exit_code == 0 and "http://127.0.0.1:9/h" in listed.stdout and secret not in listed.stdout
    # Who added it and how its deliveries go, as the page shows them.
    assert listed.stdout.rstrip("\n").split("\t")[5:] == [
        "by=cli",
        "pending=0",
        "failed=0",
        "dead=0",
        "last_sent=never",
        "last_failed=never",
    ]
    bad = runner.invoke(notify_cli, ["webhooks", "add", "--url", "http://x", "--events", "lunch"])
    assert bad.exit_code == 1 and "unknown topic 'lunch'" in bad.stderr
    for url, said in [
        ("http://", "a webhook URL needs a host: 'http://'"),
        ("https://:8080/h", "a webhook URL needs a host"),
        ("http://example.org:99999/h", "not a URL: Port out of range"),
        ("http://example.org/a b", "has no spaces"),
        ("ftp://example.org/h", "must start with http:// or https://"),
        ("http://example.org/" + "x" * 500, "at most 500 characters"),
    ]:
        refused = runner.invoke(notify_cli, ["webhooks", "add", "--url", url, "--events", "dispatch"])
        assert refused.exit_code == 1 and said in refused.stderr, (url, refused.output)
    assert db_session.scalar(select(func.count()).select_from(Subscription)) == 1

    order = _order(db_session)
    _act(db_session, order, "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    [message] = _messages(db_session)
    message.status = OutboxStatus.DEAD
    db_session.commit()
    assert "\tdead=1\t" in runner.invoke(notify_cli, ["webhooks", "list"]).stdout
    dead = runner.invoke(notify_cli, ["outbox", "list", "--status", "dead"])
    assert dead.exit_code == 0 and dead.stdout.split("\t")[0] == str(message.id)
    assert runner.invoke(notify_cli, ["outbox", "list", "--status", "sent"]).stdout == ""
    assert runner.invoke(notify_cli, ["outbox", "retry", str(message.id)]).exit_code == 0
    db_session.refresh(message)
    assert message.status == OutboxStatus.PENDING
    again = runner.invoke(notify_cli, ["outbox", "retry", str(message.id)])
    assert again.exit_code == 1 and "only dead or failed" in again.stderr

    removed = runner.invoke(notify_cli, ["webhooks", "remove", str(sub.id)])
    assert removed.exit_code == 0 and "1 undelivered" in removed.stdout
    logged_actions = [(e.action, e.actor) for e in auditlog.entries(db_session, area="webhook")[0]]
    assert logged_actions == [("deactivate", "cli"), ("retry", "cli"), ("create", "cli")]
    assert runner.invoke(notify_cli, ["webhooks", "list"]).stdout == ""


# ---------------------------------------------------------------------------- killed and restarted worker


def _statuses(engine: Any) -> dict[int, tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.attempts))
        return {row.id: (OutboxStatus(row.status).value, row.attempts) for row in rows}


def _start_worker(db_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CITYHUB_DATABASE_URL": db_url,
        "CITYHUB_NOTIFY_INTERVAL": "1",
        "CITYHUB_NOTIFY_BATCH_SIZE": "2",
        "CITYHUB_NOTIFY_LEASE_SECONDS": "2",
        "CITYHUB_NOTIFY_TIMEOUT_SECONDS": "30",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cityhub.cli", "worker"],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


def _wait_for(condition: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; worker log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def test_outbox_delivery_across_a_killed_and_restarted_worker(db_url, db_engine, db_session, units, receiver, tmp_path):
    _, secret = _subscribe(db_session, receiver.url, topics="dispatch")
    for _ in range(6):
        _act(db_session, _order(db_session), "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    ids = sorted(_statuses(db_engine))
    assert len(ids) == 6
    receiver.hold_request = 3  # the worker hangs on the first message of its second batch of two
    log = tmp_path / "worker.log"

    worker = _start_worker(db_url, log)
    try:
        _wait_for(lambda: receiver.count() >= 3, 25, "the third delivery to reach the receiver", log)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    at_kill = _statuses(db_engine)
    assert Counter(status for status, _ in at_kill.values()) == {"sent": 2, "sending": 2, "pending": 2}
    in_flight = int(receiver.delivery_ids()[2])
    assert at_kill[in_flight] == ("sending", 1)
    receiver.release.set()

    restarted = _start_worker(db_url, log)
    try:
        _wait_for(
            lambda: all(s == "sent" for s, _ in _statuses(db_engine).values()),
            25,
            "every message to be sent after the restart",
            log,
        )
    finally:
        os.killpg(restarted.pid, signal.SIGKILL)
        restarted.wait(10)

    final = _statuses(db_engine)
    seen = Counter(int(i) for i in receiver.delivery_ids())
    assert set(seen) == set(ids)  # none lost
    assert seen[in_flight] >= 2 and final[in_flight] == ("sent", 2)  # at least once: re-sent after the kill
    for request in receiver.requests:
        _assert_signed(request, secret)
    assert db_session.scalar(select(func.count()).select_from(OutboxMessage)) == 6


def test_sigterm_stops_the_worker_after_its_current_job(db_url, tmp_path):
    """Under systemd a stop is SIGTERM: the worker finishes the job in hand and exits 0, instead of dying mid-send
    and leaving its claimed messages to wait out their lease."""
    log = tmp_path / "worker.log"
    worker = _start_worker(db_url, log)
    try:
        _wait_for(lambda: "worker started" in log.read_text(errors="replace"), 60, "the worker to start", log)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    assert "worker stopping (SIGTERM)" in log.read_text(errors="replace")


def test_notify_prune_deletes_only_what_was_delivered_long_ago(db_session, units, monkeypatch):
    from cityhub import jobs
    from cityhub.db import utcnow
    from cityhub.notify.config import get_notify_settings
    from cityhub.notify.scheduled import notify_prune

    assert "notify-prune" in jobs.JOBS  # run by serve and worker with the other jobs

    _subscribe(db_session, "http://127.0.0.1:9/hook")
    for _ in range(4):
        _act(db_session, _order(db_session), "dispatch", unit_id=units["dept"].id)
    db_session.commit()
    old, recent, failed, pending = _messages(db_session)
    now = utcnow()
    old.status, old.sent_at = OutboxStatus.SENT, now - timedelta(days=31)
    recent.status, recent.sent_at = OutboxStatus.SENT, now - timedelta(days=29)
    failed.status, failed.created_at = OutboxStatus.FAILED, now - timedelta(days=90)
    pending.created_at = now - timedelta(days=90)
    db_session.commit()
    kept = {recent.id, failed.id, pending.id}

    assert notify_prune(db_session) == {"deleted": 1, "keep_sent_days": 30}
    db_session.commit()
    db_session.expire_all()
    assert {m.id for m in _messages(db_session)} == kept  # undelivered messages stay, however old

    monkeypatch.setenv("CITYHUB_NOTIFY_KEEP_SENT_DAYS", "0")
    get_notify_settings.cache_clear()
    try:
        recent.sent_at = now - timedelta(days=400)
        db_session.commit()
        assert notify_prune(db_session) == {"deleted": 0, "keep_sent_days": 0}  # 0: kept for ever
        db_session.commit()
    finally:
        get_notify_settings.cache_clear()
    db_session.expire_all()
    assert {m.id for m in _messages(db_session)} == kept
