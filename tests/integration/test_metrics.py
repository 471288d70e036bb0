"""GET /metrics (cityhub.metrics): who may read it, and that what it says is the platform's state — orders by state
and time-limit mark, the outbox, the jobs, the backlog, the revision — and the HTTP answers by route template, on
both backends."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, select

from app_helpers import shared_app
from cityhub import migrate
from cityhub.db import session_scope, utcnow
from cityhub.dispatch.models import DispatchBacklog
from cityhub.intake.service import submit
from cityhub.notify import service as notify
from cityhub.notify.models import OutboxMessage, OutboxStatus, Subscription, Topic
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service
from cityhub.workorders.models import JobRun, Order
from cityhub.workorders.scheduled import sla_sweep
from web_helpers import enter_holidays_ahead

LOOPBACK = ("127.0.0.1", 40123)
TOKEN = "t" * 40
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a plain working week
ADMIN = service.Actor(name="管理员", role="admin")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) → value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


@pytest.fixture
def metrics_on(app_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CITYHUB_METRICS_ENABLED", "true")
    return app_db


def _scrape(client: TestClient, **headers: str) -> Samples:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples_of(answer.text)


# ------------------------------------------------------------------------------------------------ access


def test_metrics_are_off_unless_enabled(app_db: str) -> None:
    with TestClient(shared_app(), client=LOOPBACK) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 404
    body = answer.json()
    assert body["code"] == "not_found" and "set CITYHUB_METRICS_ENABLED=true" in body["message"]


def test_metrics_are_served_only_to_the_allowed_networks(metrics_on: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(shared_app(), client=LOOPBACK) as client:
        assert client.get("/metrics").status_code == 200
    with TestClient(shared_app(), client=("203.0.113.9", 5000)) as client:  # anyone else, by default
        answer = client.get("/metrics")
    assert answer.status_code == 403
    message = answer.json()["message"]
    assert "CITYHUB_METRICS_ALLOWED_NETWORKS (127.0.0.0/8,::1)" in message and "203.0.113.9" in message
    assert "cityhub_orders" not in answer.text

    monkeypatch.setenv("CITYHUB_METRICS_ALLOWED_NETWORKS", "10.0.5.0/24, ::1")
    with TestClient(shared_app(), client=("10.0.5.17", 5000)) as client:
        assert client.get("/metrics").status_code == 200
    for refused in ("10.0.6.1", "127.0.0.1", "testclient"):  # the loopback too, once the setting names others
        with TestClient(shared_app(), client=(refused, 5000)) as client:
            assert client.get("/metrics").status_code == 403


def test_with_a_token_set_metrics_need_it_as_the_bearer(metrics_on: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_METRICS_TOKEN", TOKEN)
    with TestClient(shared_app(), client=LOOPBACK) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json()["code"] == "metrics_token_required"
        assert "Authorization: Bearer" in missing.json()["message"]
        wrong = client.get("/metrics", headers={"Authorization": f"Bearer {'u' * 40}"})
        assert wrong.status_code == 401 and "the token given is not it" in wrong.json()["message"]
        assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    with TestClient(shared_app(), client=("203.0.113.9", 5000)) as client:  # the token does not open other addresses
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403


def test_a_short_token_or_a_network_that_is_none_is_refused_as_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from cityhub.metrics import MetricsSettings

    monkeypatch.setenv("CITYHUB_METRICS_TOKEN", "short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        MetricsSettings()
    monkeypatch.delenv("CITYHUB_METRICS_TOKEN")
    monkeypatch.setenv("CITYHUB_METRICS_ALLOWED_NETWORKS", "127.0.0.1,prometheus.internal")
    with pytest.raises(ValidationError, match=r"'prometheus\.internal' is not an IP address or network"):
        MetricsSettings()


# ---------------------------------------------------------------------------------------- what they say


def _orders() -> dict[str, int]:
    """Five orders: two urgent ones dispatched and overdue, one urgent overdue then cancelled, one normal dispatched
    and within its limit, one received and waiting for the dispatcher (in the backlog for two minutes)."""
    with session_scope() as session:
        unit = Unit(code="MT-D01", name="测试城管局", tier=UnitTier.DEPARTMENT)
        session.add(unit)
        session.flush()
        ids = {}
        plan = (("late1", "urgent"), ("late2", "urgent"), ("cancelled", "urgent"), ("in_time", "normal"), ("new", ""))
        for name, urgency in plan:
            data = {"channel": "hotline", "content": "路灯不亮", "urgency": urgency or "normal", "created_at": MONDAY}
            ids[name] = submit(session, data=data, actor=ADMIN).order.id
            if urgency:
                service.act(
                    session, order_id=ids[name], action="dispatch", params={"unit_id": unit.id}, now=MONDAY, actor=ADMIN
                )
        late = MONDAY + timedelta(days=2, hours=1)  # urgent: due Wednesday 10:00
        sla_sweep(session, now=late)
        session.expire_all()
        service.act(
            session, order_id=ids["cancelled"], action="cancel", params={"reason": "重复"}, now=late, actor=ADMIN
        )
        session.execute(delete(DispatchBacklog))  # whatever intake queued: the backlog is this one order
        session.add(DispatchBacklog(order_id=ids["new"], queued_at=utcnow() - timedelta(seconds=120)))
    with session_scope() as session:
        rows = {name: session.get(Order, oid) for name, oid in ids.items()}
        marks = {name: (str(o.state.value), str(o.sla_status.value)) for name, o in rows.items() if o is not None}
    assert marks == {  # what the scenario made, as the orders' own columns say it
        "late1": ("dispatched", "overdue"),
        "late2": ("dispatched", "overdue"),
        "cancelled": ("cancelled", "overdue"),  # a closed order keeps its last mark
        "in_time": ("dispatched", "ok"),
        "new": ("received", marks["new"][1]),
    }
    return ids


def _outbox_and_jobs() -> dict[str, datetime]:
    """Outbox: 2 pending, 1 failed, 3 dead, 4 sent, and a removed subscription's 2 messages (dead on removal);
    jobs: sla-sweep succeeded, flaky failed 3 times in a row."""
    succeeded = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    failed = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    with session_scope() as session:
        sub = Subscription(kind="webhook", target="https://receiver.example/hook", events=",dispatch,")
        session.add(sub)
        session.flush()
        counts = {
            OutboxStatus.PENDING: 2,
            OutboxStatus.FAILED: 1,
            OutboxStatus.DEAD: 3,
            OutboxStatus.SENT: 4,
        }
        for status, n in counts.items():
            for _ in range(n):
                session.add(OutboxMessage(topic=Topic.DISPATCH, subscription_id=sub.id, payload={}, status=status))
        removed = Subscription(kind="webhook", target="https://gone.example/hook", events=",dispatch,")
        session.add(removed)
        session.flush()
        for status in (OutboxStatus.PENDING, OutboxStatus.FAILED):
            session.add(OutboxMessage(topic=Topic.DISPATCH, subscription_id=removed.id, payload={}, status=status))
        session.flush()
        assert notify.remove_subscription(session, subscription_id=removed.id) == 2
        session.add(JobRun(name="sla-sweep", last_finished_at=succeeded, last_result={"at": "x"}, failures=0))
        session.add(JobRun(name="flaky", last_failed_at=failed, last_error="RuntimeError: 502", failures=3))
    return {"succeeded": succeeded, "failed": failed}


def test_the_exposition_says_the_orders_outbox_jobs_backlog_and_revision(metrics_on: str) -> None:
    _orders()
    times = _outbox_and_jobs()
    enter_holidays_ahead()  # so that the only problem /healthz names is the failing job
    with TestClient(shared_app(), client=LOOPBACK) as client:
        m = _scrape(client)
        health = client.get("/healthz").json()

    assert value(m, "cityhub_database_up") == 1
    assert value(m, "cityhub_orders", state="dispatched", sla="overdue") == 2
    assert value(m, "cityhub_orders", state="cancelled", sla="overdue") == 1
    assert value(m, "cityhub_orders", state="dispatched", sla="ok") == 1
    assert value(m, "cityhub_orders", state="in_progress", sla="overdue") == 0  # every pair is there, 0 included
    assert sum(v for (name, _), v in m.items() if name == "cityhub_orders") == 5
    received = [v for (name, labels), v in m.items() if name == "cityhub_orders" and ("state", "received") in labels]
    assert sum(received) == 1
    # The open orders overdue now (超期): not the cancelled one, which keeps its mark.
    assert value(m, "cityhub_open_orders", sla="overdue") == 2
    assert value(m, "cityhub_open_orders", sla="ok") == 1
    # The same count /healthz answers from.
    assert health["orders_total"] == 5 and health["sla"]["overdue"] == 3
    assert value(m, "cityhub_orders_counted_timestamp_seconds") == pytest.approx(
        datetime.fromisoformat(health["orders_counted_at"]).timestamp()
    )

    assert value(m, "cityhub_notify_outbox_messages", status="pending") == 2
    assert value(m, "cityhub_notify_outbox_messages", status="failed") == 1
    # Not the removed subscription's, dead on purpose and never retried (the 推送订阅 page does not list them).
    assert value(m, "cityhub_notify_outbox_messages", status="dead") == 3
    assert value(m, "cityhub_notify_outbox_messages", status="sending") == 0
    assert value(m, "cityhub_notify_outbox_messages", status="sent") is None  # delivered ones are not counted

    assert value(m, "cityhub_job_last_success_timestamp_seconds", name="sla-sweep") == times["succeeded"].timestamp()
    assert value(m, "cityhub_job_consecutive_failures", name="sla-sweep") == 0
    assert value(m, "cityhub_job_last_failure_timestamp_seconds", name="flaky") == times["failed"].timestamp()
    assert value(m, "cityhub_job_consecutive_failures", name="flaky") == 3
    assert value(m, "cityhub_job_last_success_timestamp_seconds", name="flaky") is None  # never succeeded
    assert value(m, "cityhub_health_problems") == 1 == len(health["problems"])

    assert value(m, "cityhub_dispatch_backlog_orders", kind="live") == 1
    assert value(m, "cityhub_dispatch_backlog_orders", kind="bulk") == 0
    assert (value(m, "cityhub_dispatch_backlog_oldest_wait_seconds", kind="live") or 0) >= 120

    head = migrate.head()
    assert value(m, "cityhub_database_info", revision=head, schema_head=head) == 1
    assert value(m, "cityhub_dispatch_model_state", state=health["dispatch_model"]) == 1
    assert sum(v for (name, _), v in m.items() if name == "cityhub_dispatch_model_state") == 1
    assert value(m, "cityhub_similar_orders_index_state", state=health["similar_orders_index"]["state"]) == 1


def test_order_counts_are_the_cached_ones_of_healthz(metrics_on: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scrape walks the orders no more often than /healthz does: within CITYHUB_STATUS_COUNTS_SECONDS it answers
    the count made before (one pass, shared with /healthz and the status page)."""
    monkeypatch.setenv("CITYHUB_STATUS_COUNTS_SECONDS", "3600")
    with TestClient(shared_app(), client=LOOPBACK) as client:
        assert client.get("/healthz").json()["orders_total"] == 0  # counted now, kept for an hour
        _orders()
        before = _scrape(client)
        assert sum(v for (name, _), v in before.items() if name == "cityhub_orders") == 0
        from cityhub.main import forget_order_counts

        forget_order_counts()
        after = _scrape(client)
    assert sum(v for (name, _), v in after.items() if name == "cityhub_orders") == 5


def test_http_answers_are_counted_by_route_template_not_by_path(metrics_on: str) -> None:
    ids = _orders()
    with session_scope() as session:
        numbers = [session.scalars(select(Order.number).where(Order.id == oid)).one() for oid in ids.values()]
    with TestClient(shared_app(), client=LOOPBACK) as client:
        before = _scrape(client)
        for oid in ids.values():
            assert client.get(f"/api/v1/orders/{oid}").status_code == 401  # signed out: refused, but routed
        assert client.get("/no/such/page/12345").status_code == 404
        after = _scrape(client)
        text = client.get("/metrics").text

    def delta(**labels: str) -> float:
        name = "cityhub_http_requests_total"
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta(method="GET", route="/api/v1/orders/{order_id}", status="4xx") == len(ids)
    assert delta(method="GET", route="(unmatched)", status="4xx") == 1
    assert delta(method="GET", route="/metrics", status="2xx") == 1  # the scrape before
    count = "cityhub_http_request_duration_seconds_count"
    assert (value(after, count, method="GET", route="/api/v1/orders/{order_id}") or 0) - (
        value(before, count, method="GET", route="/api/v1/orders/{order_id}") or 0
    ) == len(ids)
    routes = {dict(labels)["route"] for (name, labels) in after if name.startswith("cityhub_http_request")}
    assert "/api/v1/orders/{order_id}" in routes
    assert not [route for route in routes if re.search(r"/\d+(/|$)", route)]  # no path with an id in it
    assert not any(number in text for number in numbers)


def test_a_database_that_cannot_be_read_gives_database_up_0_and_the_http_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.db import reset_engine

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a database without cityhub's tables: every read of the state fails
    monkeypatch.setenv("CITYHUB_DATABASE_URL", f"sqlite:///{empty}")
    monkeypatch.setenv("CITYHUB_METRICS_ENABLED", "true")
    reset_engine()
    try:
        with TestClient(shared_app(), client=LOOPBACK) as client:
            client.get("/no/such/page")
            m = _scrape(client)
    finally:
        reset_engine()
    assert value(m, "cityhub_database_up") == 0
    assert not [name for name, _ in m if name.startswith(("cityhub_orders", "cityhub_job_", "cityhub_notify"))]
    assert (value(m, "cityhub_http_requests_total", method="GET", route="(unmatched)", status="4xx") or 0) >= 1
