"""Pure parts of notifications: backoff, signatures, topic choice, topic lists, sender registry."""

from __future__ import annotations

import random
import time

import pytest

from cityhub.errors import ValidationFailed
from cityhub.notify.models import Topic
from cityhub.notify.senders import (
    Envelope,
    NotConfigured,
    get_sender,
    register_sender,
    sender_kinds,
    sign,
    verify,
)
from cityhub.notify.service import backoff_delay, normalize_topics, topic_for
from cityhub.workorders.lifecycle import OrderView, State, apply


def test_backoff_grows_exponentially_within_jitter_and_is_capped():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(600.0, 10.0 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, base=10, cap=600, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jitter spreads workers that failed together
    assert backoff_delay(30, base=10, cap=600, rng=rng) <= 600


def test_signature_round_trip_and_tampering():
    body = b'{"id":"1","topic":"dispatch","order":{"number":"BY1"}}'
    now = str(int(time.time()))
    signature = sign("s3cret", now, body)
    assert signature.startswith("sha256=") and verify("s3cret", now, body, signature)
    assert not verify("s3cret", now, body + b" ", signature)
    assert not verify("other", now, body, signature)
    assert not verify("s3cret", str(int(now) + 1), body, signature)  # the timestamp is signed too
    old = str(int(time.time()) - 3600)
    assert not verify("s3cret", old, body, sign("s3cret", old, body))  # replayed
    assert verify("s3cret", old, body, sign("s3cret", old, body), tolerance=None)


@pytest.mark.parametrize(
    ("state", "lead", "action", "params", "topic"),
    [
        (State.RECEIVED, None, "dispatch", {"unit_id": 1}, Topic.DISPATCH),
        (State.ACCEPTED, 1, "transfer", {"unit_id": 2, "reason": "x"}, Topic.DISPATCH),
        (State.DISPATCHED, 1, "transfer", {"unit_id": 2, "reason": "x"}, Topic.DISPATCH),
        (State.RECEIVED, None, "assign", {"unit_id": 1}, Topic.DISPATCH),
        (State.IN_PROGRESS, 1, "assign", {"unit_id": 2}, Topic.DISPATCH),
        (State.IN_PROGRESS, 1, "assign", {"reason": "本周内办结"}, None),
        (State.DISPATCHED, 1, "assign", {"unit_id": 1}, None),
        (State.IN_PROGRESS, 1, "reply", {"text": "done"}, Topic.REPLY),
        (State.REPLIED, 1, "callback", {"satisfied": True}, Topic.CALLBACK),
        (State.DISPATCHED, 1, "accept", {}, None),
        (State.IN_PROGRESS, 1, "urge", {"reason": "请尽快处理"}, None),
        (State.REPLIED, 1, "close", {"reason": "r", "resolved": True}, Topic.CLOSE),
        (State.RECEIVED, None, "cancel", {"reason": "重复来电"}, Topic.CLOSE),
    ],
)
def test_topic_for_actions(state, lead, action, params, topic):
    assert topic_for(apply(OrderView(state=state, lead_unit_id=lead), action, params)) == topic


def test_reopen_is_a_dispatch():
    view = OrderView(state=State.CALLED_BACK, lead_unit_id=1, satisfied=False)
    assert topic_for(apply(view, "reopen", {"reason": "still broken"})) == Topic.DISPATCH


def test_topic_lists_are_normalized_and_checked():
    assert normalize_topics([" Dispatch", "warning", "dispatch", ""]) == ",dispatch,warning,"
    with pytest.raises(ValidationFailed, match="unknown topic 'lunch'"):
        normalize_topics(["dispatch", "lunch"])
    with pytest.raises(ValidationFailed):
        normalize_topics([" ", ""])


def test_plug_in_points_refuse_clearly_until_registered():
    envelope = Envelope(delivery_id="1", topic="dispatch", body=b"{}", target="13800000000")
    assert {"webhook", "sms", "wecom", "dingtalk"} <= set(sender_kinds())
    for kind in ("sms", "wecom", "dingtalk"):
        with pytest.raises(NotConfigured, match=f"register_sender\\('{kind}'"):
            get_sender(kind).send(envelope, timeout=1)
    with pytest.raises(NotConfigured, match="unknown sender kind"):
        get_sender("pigeon")

    sent: list[Envelope] = []

    class FakeSms:
        def send(self, envelope: Envelope, *, timeout: float) -> None:
            sent.append(envelope)

    original = get_sender("sms")
    register_sender("sms", FakeSms())
    try:
        get_sender("sms").send(envelope, timeout=1)
        assert sent == [envelope]
    finally:
        register_sender("sms", original)
