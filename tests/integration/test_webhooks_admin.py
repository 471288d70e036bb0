"""Webhook subscriptions managed by administrators on both backends: the service (who added a subscription, how its
deliveries go, every change in the configuration log), the REST API under ``/api/v1/notify`` (permissions, 4xx naming
the field, the secret answered once) and the 推送订阅 page (the secret shown once, errors at their field, removal and
retry, in the administration menu)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app_helpers import shared_app
from cityhub import auditlog
from cityhub.auth import passwords
from cityhub.auth.service import create_token
from cityhub.db import reset_engine, session_scope, utcnow
from cityhub.errors import Conflict
from cityhub.intake.service import submit
from cityhub.notify import service
from cityhub.notify.models import OutboxMessage, OutboxStatus, Subscription
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from web_helpers import login

API = "/api/v1/notify"
PASSWORD = "correct-horse-battery"
ADMIN = orders.Actor(name="王管理", user_id=None, role="admin")


@dataclass
class World:
    units: dict[str, int]
    headers: dict[str, dict[str, str]]


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")
    reset_engine()
    with session_scope() as s:
        units: dict[str, int] = {}
        for code, tier, parent in [
            ("WH-QU", UnitTier.DISTRICT, None),
            ("WH-S1", UnitTier.STREET, "WH-QU"),
            ("WH-C1", UnitTier.COMMUNITY, "WH-S1"),
        ]:
            unit = Unit(code=code, name=f"{code}单位", tier=tier, parent_id=units.get(parent or ""))
            s.add(unit)
            s.flush()
            units[code] = unit.id
        headers: dict[str, dict[str, str]] = {}
        for name, role in [("wh-adm", Role.ADMIN), ("wh-sup", Role.SUPERVISOR)]:
            user = User(
                username=name,
                full_name=f"{name}姓名",
                role=role,
                unit_id=units["WH-QU"],
                password_hash=passwords.hash_password(PASSWORD),
            )
            s.add(user)
            s.flush()
            headers[name] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}
    return World(units, headers)


def _dispatched_order(unit_id: int) -> int:
    """An order dispatched to ``unit_id``: one ``dispatch`` message per subscription of the topic."""
    with session_scope() as s:
        order = submit(s, data={"channel": "hotline", "content": "路灯不亮已经一周", "appeal_type": "complaint"}).order
        orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": unit_id})
        return order.id


def _log(area_target: str | None = None) -> list[auditlog.LogEntry]:
    with session_scope() as s:
        rows, _ = auditlog.entries(s, area="webhook", target=area_target)
        s.expunge_all()
        return rows


def test_the_service_logs_every_change_and_tells_how_deliveries_go(world: World) -> None:
    """Added, removed and a retried delivery each in the configuration log, with the actor and never the secret; the
    overview says who added a subscription and counts its outbox by state."""
    with session_scope() as s:
        sub, secret = service.add_subscription(
            s, target=" https://receiver.example/hook ", topics=["reply", "dispatch", "reply"], unit_code="WH-S1",
            description="区网格平台", actor=ADMIN,
        )  # fmt: skip
        sub_id = sub.id
        other, _ = service.add_subscription(s, target="http://127.0.0.1:9/all", topics=["dispatch"])
        other_id = other.id
    [created] = _log(str(sub_id))
    assert (created.action, created.actor) == ("create", "王管理")
    assert created.changes == {
        "url": [None, "https://receiver.example/hook"],
        "events": [None, "reply,dispatch"],
        "unit": [None, "WH-S1"],
        "description": [None, "区网格平台"],
    }
    assert secret not in str(created.changes)

    order_id = _dispatched_order(world.units["WH-S1"])
    with session_scope() as s:
        messages = {
            m.subscription_id: m for m in s.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order_id))
        }
        assert set(messages) == {sub_id, other_id}
        messages[sub_id].status = OutboxStatus.DEAD
        messages[sub_id].last_error = "HTTP 500 from receiver"
        messages[other_id].status = OutboxStatus.SENT
        messages[other_id].sent_at = utcnow()
        dead_id = messages[sub_id].id
    with session_scope() as s:
        overview = {o.subscription.id: o for o in service.subscriptions_overview(s)}
        assert overview[sub_id].created_by == "王管理" and overview[other_id].created_by == "system"
        mine = overview[sub_id].delivery
        assert (mine.pending, mine.failed, mine.dead, mine.last_sent_at) == (0, 0, 1, None)
        assert mine.last_failure is not None and mine.last_failure.id == dead_id
        theirs = overview[other_id].delivery
        assert theirs.last_sent_at is not None and theirs.last_failure is None and theirs.dead == 0

        service.retry(s, message_id=dead_id, actor=ADMIN)
    with session_scope() as s, pytest.raises(Conflict, match="only dead or failed"):
        service.retry(s, message_id=dead_id, actor=ADMIN)  # pending now
    retried, _created = _log(str(sub_id))
    assert (retried.action, retried.actor) == ("retry", "王管理")
    assert retried.changes == {"message": [None, dead_id], "status": ["dead", "pending"]}

    with session_scope() as s:
        assert service.remove_subscription(s, subscription_id=sub_id, actor=ADMIN) == 1  # the pending retry
    removed = _log(str(sub_id))[0]
    assert (removed.action, removed.actor) == ("deactivate", "王管理")  # the row is kept
    assert removed.changes["url"] == ["https://receiver.example/hook", None]
    with session_scope() as s:
        assert [o.subscription.id for o in service.subscriptions_overview(s)] == [other_id]
        with pytest.raises(Conflict, match="was removed") as refused:
            service.retry(s, message_id=dead_id)
        # details.status is the message's, as for a message in another state
        assert refused.value.details == {"status": "dead", "subscription_removed": True}


def test_administrators_manage_webhooks_through_the_api(world: World) -> None:
    client = TestClient(shared_app(), raise_server_exceptions=False)
    adm, sup = world.headers["wh-adm"], world.headers["wh-sup"]
    body = {"url": "https://receiver.example/hook", "events": ["dispatch", "reply"], "unit": "WH-C1"}

    assert client.get(f"{API}/webhooks").status_code == 401
    for method, path in [("GET", "/webhooks"), ("POST", "/webhooks"), ("GET", "/outbox"), ("DELETE", "/webhooks/1")]:
        refused = client.request(method, API + path, headers=sup, json=body if method == "POST" else None)
        assert refused.status_code == 403 and refused.json()["code"] == "permission_denied", (method, path)

    for bad, field in [
        ({**body, "url": "ftp://receiver.example/hook"}, "url"),
        ({**body, "url": "https://"}, "url"),
        ({**body, "events": ["dispatch", "lunch"]}, "events"),
        ({**body, "events": []}, "events"),
        ({**body, "unit": "NO-SUCH"}, "unit"),
        ({**body, "description": "长" * 201}, "description"),
    ]:
        refused = client.post(f"{API}/webhooks", headers=adm, json=bad)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "validation_failed" and refused.json()["details"]["field"] == field, bad
    unknown = client.post(f"{API}/webhooks", headers=adm, json={**body, "secret": "mine"})
    assert unknown.status_code == 422 and unknown.json()["details"]["errors"][0]["field"] == "secret"

    made = client.post(f"{API}/webhooks", headers=adm, json=body)
    assert made.status_code == 201, made.text
    created = made.json()
    sub_id, secret = created["id"], created["secret"]
    assert made.headers["Location"] == f"{API}/webhooks/{sub_id}"
    assert created["events"] == ["dispatch", "reply"] and created["unit"]["code"] == "WH-C1"
    assert created["created_by"] == "wh-adm姓名" and created["created_at"].endswith("Z")
    assert created["delivery"] == {
        "last_sent_at": None,
        "last_failure": None,
        "last_failed_at": None,
        "pending": 0,
        "failed": 0,
        "dead": 0,
    }
    with session_scope() as s:
        assert s.get(Subscription, sub_id).secret == secret  # type: ignore[union-attr]

    listed = client.get(f"{API}/webhooks", headers=adm)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "1"
    [row] = listed.json()
    assert row["id"] == sub_id and "secret" not in row and secret not in listed.text
    assert client.get(f"{API}/webhooks/{sub_id}", headers=adm).json() == row

    # A delivery that failed for good, listed by status and retried.
    _dispatched_order(world.units["WH-C1"])
    with session_scope() as s:
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.subscription_id == sub_id)).one()
        message.status, message.attempts, message.last_error = OutboxStatus.DEAD, 8, "HTTP 503"
        message_id = message.id
    failed = client.get(f"{API}/outbox", headers=adm, params={"status": ["failed", "dead"]})
    assert failed.status_code == 200
    assert [(m["id"], m["status"], m["url"]) for m in failed.json()["items"]] == [
        (message_id, "dead", "https://receiver.example/hook")
    ]
    assert client.get(f"{API}/outbox", headers=adm, params={"status": "sent"}).json()["items"] == []
    bad_status = client.get(f"{API}/outbox", headers=adm, params={"status": "lost"})
    assert bad_status.status_code == 422 and bad_status.json()["details"]["errors"][0]["field"] == "query.status.0"
    assert client.get(f"{API}/webhooks/{sub_id}", headers=adm).json()["delivery"]["dead"] == 1

    retried = client.post(f"{API}/outbox/{message_id}/retry", headers=adm)
    assert retried.status_code == 200 and retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    again = client.post(f"{API}/outbox/{message_id}/retry", headers=adm)
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert client.post(f"{API}/outbox/999999/retry", headers=adm).status_code == 404
    assert client.post(f"{API}/outbox/99999999999999999999/retry", headers=adm).status_code == 404

    assert client.delete(f"{API}/webhooks/{sub_id}", headers=adm).status_code == 204
    gone = client.delete(f"{API}/webhooks/{sub_id}", headers=adm)
    assert gone.status_code == 404 and gone.json()["message"] == f"subscription {sub_id} not found"
    assert client.get(f"{API}/webhooks", headers=adm).json() == []

    log = client.get("/api/v1/admin/log", headers=adm, params={"area": "webhook"}).json()["items"]
    assert [(e["action"], e["actor"], e["target"]) for e in log] == [
        ("deactivate", "wh-adm姓名", str(sub_id)),
        ("retry", "wh-adm姓名", str(sub_id)),
        ("create", "wh-adm姓名", str(sub_id)),
    ]


def test_the_webhooks_page_adds_shows_removes_and_retries(world: World) -> None:
    """推送订阅: in the administration menu only for administrators; a new subscription's secret shown once; a bad
    address told at its field; the delivery state of each subscription; a failed delivery retried; a removal."""
    assert login("wh-sup").get("/admin/webhooks", follow_redirects=False).status_code == 403
    admin = login("wh-adm")
    assert 'href="/admin/webhooks"' in admin.get("/admin").text
    assert 'href="/admin/webhooks"' not in login("wh-sup").get("/admin", follow_redirects=True).text

    def post(path: str, **data: Any) -> Any:
        return admin.post(path, data={"csrf_token": admin.cookies["cityhub_csrf"], **data}, follow_redirects=False)

    assert admin.post("/admin/webhooks", data={"url": "https://a.example/h", "events": ["reply"]}).status_code == 403
    bad = post("/admin/webhooks", url="ftp://receiver.example/hook", events=["dispatch"], unit="WH-S1")
    assert bad.status_code == 422 and 'data-testid="field-error-url"' in bad.text
    assert "订阅地址须以 http:// 或 https:// 开头" in bad.text
    assert 'value="ftp://receiver.example/hook"' in bad.text and 'value="WH-S1" selected' in bad.text  # kept
    no_topic = post("/admin/webhooks", url="https://receiver.example/hook")
    assert no_topic.status_code == 422 and "请至少选择一个主题" in no_topic.text

    made = post("/admin/webhooks", url="https://receiver.example/hook", events=["dispatch", "reply"], unit="WH-S1")
    assert made.status_code == 201 and "cityhub_flash" not in made.headers.get("set-cookie", "")
    secret = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)  # type: ignore[union-attr]
    with session_scope() as s:
        sub = s.scalars(select(Subscription)).one()
        sub_id = sub.id
        assert sub.secret == secret and sub.topics == ["dispatch", "reply"] and sub.unit_id == world.units["WH-S1"]
    page = admin.get("/admin/webhooks")
    assert secret not in page.text and "https://receiver.example/hook" in page.text
    row = re.search(rf'data-testid="webhook" data-id="{sub_id}">.*?</tr>', page.text, re.S).group(0)  # type: ignore[union-attr]
    assert "派单、答复" in row and "WH-S1单位" in row and "wh-adm姓名" in row and "待发 0 · 重试中 0 · 已停止 0" in row
    assert 'data-testid="no-failed"' in page.text

    _dispatched_order(world.units["WH-S1"])
    with session_scope() as s:
        message = s.scalars(select(OutboxMessage)).one()
        message.status, message.attempts, message.last_error = OutboxStatus.FAILED, 3, "HTTP 502 from receiver"
        message_id = message.id
        order = s.get(Order, message.order_id)
        assert order is not None
        order_id, number = order.id, order.number
    page = admin.get("/admin/webhooks").text
    assert (
        "待发 0 · 重试中 1 · 已停止 0" in page and f"最近失败：时间未知 #{message_id} HTTP 502 from receiver" in page
    )  # failed before times were kept
    failed = re.search(rf'data-testid="failed-delivery" data-id="{message_id}">.*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    assert (
        "重试中" in failed
        and "已尝试 3 次" in failed
        and f'action="/admin/webhooks/outbox/{message_id}/retry"' in failed
        and f'<a href="/orders/{order_id}">{number}</a>' in failed  # the order by its number, as everywhere
    )

    retried = post(f"/admin/webhooks/outbox/{message_id}/retry")
    assert retried.status_code == 303 and retried.headers["location"] == "/admin/webhooks"
    assert f"消息 #{message_id} 将立即重新投递。" in admin.get("/admin/webhooks").text
    with session_scope() as s:
        assert s.get(OutboxMessage, message_id).status == OutboxStatus.PENDING  # type: ignore[union-attr]
    post(f"/admin/webhooks/outbox/{message_id}/retry")
    assert f"消息 #{message_id} 未重试" in admin.get("/admin/webhooks").text
    assert post("/admin/webhooks/outbox/999999/retry").status_code == 404

    assert 'data-confirm="确定停用对 https://receiver.example/hook 的订阅' in admin.get("/admin/webhooks").text
    removed = post(f"/admin/webhooks/{sub_id}/remove")
    assert removed.status_code == 303
    after = admin.get("/admin/webhooks").text
    assert f"订阅 #{sub_id} 已停用，1 条未送达的消息已停止投递。" in after and "还没有推送订阅。" in after
    assert post(f"/admin/webhooks/{sub_id}/remove").status_code == 404

    log = admin.get("/admin/log", params={"area": "webhook"}).text
    assert log.count('data-area="webhook"') == 3 and "重新投递" in log and 'href="/admin/webhooks"' in log
    assert "<td>停用</td>" in log and "<td>删除</td>" not in log  # deactivated, as it is: the row stays


def test_the_time_a_delivery_last_failed_is_shown_with_its_message(world: World) -> None:
    """最近失败 showed the newest undelivered message (#id and error), not when delivery failed. Now the service, the
    API (``delivery.last_failed_at``, a new key), the page and ``cityhub notify webhooks list`` tell the time the
    subscription's delivery last failed, with the message that failed then — an older message retried later is the
    last failure, not the newest one."""
    from typer.testing import CliRunner

    from cityhub.notify.cli import app as notify_cli
    from cityhub.notify.config import NotifySettings
    from cityhub.web.support import _env

    settings = NotifySettings(backoff_base_seconds=600.0, max_attempts=5, timeout_seconds=5.0, batch_size=10)
    with session_scope() as s:
        sub, _ = service.add_subscription(s, target="http://127.0.0.1:9/refused", topics=["dispatch"], actor=ADMIN)
        sub_id = sub.id
    _dispatched_order(world.units["WH-S1"])
    _dispatched_order(world.units["WH-S1"])
    with session_scope() as s:
        older, _newer = s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)).all()
        assert service.deliver_due(s, settings=settings)["failed"] == 2  # nothing listens on port 9
    with session_scope() as s:
        s.get(OutboxMessage, older).next_attempt_at = utcnow()  # type: ignore[union-attr]  # due again now
    before = utcnow()
    with session_scope() as s:
        assert service.deliver_due(s, settings=settings)["failed"] == 1
    after = utcnow()

    with session_scope() as s:
        [row] = [o for o in service.subscriptions_overview(s) if o.subscription.id == sub_id]
        delivery = row.delivery
        assert delivery.failed == 2 and delivery.last_failure is not None
        assert delivery.last_failure.id == older and delivery.last_failure.attempts == 2  # not the newest, #newer
        assert delivery.last_failed_at is not None and before <= delivery.last_failed_at <= after
        failed_at = delivery.last_failed_at

    client = TestClient(shared_app(), raise_server_exceptions=False)
    answered = client.get(f"{API}/webhooks/{sub_id}", headers=world.headers["wh-adm"]).json()["delivery"]
    assert answered["last_failure"]["id"] == older and answered["last_failure"]["status"] == "failed"
    assert answered["last_failed_at"].endswith("Z")
    assert abs(datetime.fromisoformat(answered["last_failed_at"]) - failed_at) < timedelta(milliseconds=1)

    page = login("wh-adm").get("/admin/webhooks").text
    shown = re.search(r'data-testid="last-failure">(.*?)</small>', page, re.S).group(1)  # type: ignore[union-attr]
    assert shown.startswith(f"最近失败：{_env.filters['when'](failed_at)} #{older} "), shown

    listed = CliRunner().invoke(notify_cli, ["webhooks", "list"])
    assert listed.exit_code == 0 and f"\tlast_failed={failed_at.isoformat()}" in listed.stdout, listed.stdout
