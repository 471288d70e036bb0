"""The configuration log (操作日志) on both backends: every change of a sensor or an alarm rule — through the
service, the API and the web pages — is one entry naming who, what changed from what to what, and why; read by
administrators and supervisors, refused to others."""

from __future__ import annotations

from sqlalchemy import select

from cityhub import auditlog
from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.monitoring import service
from cityhub.monitoring.schemas import RuleCreate, RuleUpdate, SensorCreate, SensorUpdate
from cityhub.org.models import Role, User
from cityhub.workorders.service import Actor

ENGINEER = Actor(name="运维 张工", role="admin")
SENSOR = {"code": "LOG-WL-1", "name": "隧道积水监测点", "kind": "waterlogging", "metrics": {"depth": "cm"}}
RULE = {
    "name": "积水超过 15 厘米",
    "sensor_kind": "waterlogging",
    "metric": "depth",
    "comparison": ">",
    "threshold": 15,
    "clear_threshold": 5,
}


def _changes(entry: auditlog.LogEntry) -> dict[str, list[object]]:
    return {name: list(pair) for name, pair in entry.changes.items()}


def test_each_change_of_a_sensor_or_rule_is_logged_with_before_and_after(db_session) -> None:
    service.create_sensor(db_session, data=SensorCreate.model_validate(SENSOR), actor=ENGINEER)
    rule = service.create_rule(db_session, data=RuleCreate.model_validate(RULE), actor=ENGINEER)
    service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(threshold=30, clear_threshold=10), actor=ENGINEER)
    service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(threshold=30), actor=ENGINEER)  # no change
    service.update_sensor(db_session, code="LOG-WL-1", data=SensorUpdate(address="桂花路隧道口"), actor=ENGINEER)
    service.retire(db_session, code="LOG-WL-1", actor=ENGINEER, reason="道路改造，设备拆除")
    service.reactivate(db_session, code="LOG-WL-1", actor=Actor(name="运维 李工"))
    db_session.commit()

    log = list(db_session.scalars(select(auditlog.LogEntry).order_by(auditlog.LogEntry.id)))
    assert [(e.area, e.target, e.action) for e in log] == [
        ("sensor", "LOG-WL-1", "create"),
        ("alarm_rule", str(rule.id), "create"),
        ("alarm_rule", str(rule.id), "update"),
        ("sensor", "LOG-WL-1", "update"),
        ("sensor", "LOG-WL-1", "retire"),
        ("sensor", "LOG-WL-1", "reactivate"),
    ]
    created, _, raised, moved, retired, back = log
    assert created.actor == "运维 张工" and _changes(created)["name"] == [None, "隧道积水监测点"]
    assert _changes(raised) == {"threshold": [15.0, 30.0], "clear_threshold": [5.0, 10.0]}
    assert _changes(moved) == {"address": [None, "桂花路隧道口"]}
    assert _changes(retired) == {"active": [True, False]} and retired.reason == "道路改造，设备拆除"
    assert _changes(back) == {"active": [False, True]} and back.actor == "运维 李工"
    newest, more = auditlog.entries(db_session, area="sensor", target="LOG-WL-1", limit=2)
    assert [e.action for e in newest] == ["reactivate", "retire"] and more


def test_the_log_is_read_over_the_api_and_on_its_page_by_whom_it_concerns(admin_client) -> None:
    client = admin_client
    assert client.post("/api/v1/sensors", json=SENSOR).status_code == 201
    rule = client.post("/api/v1/alarm-rules", json=RULE).json()
    changed = client.patch(f"/api/v1/alarm-rules/{rule['id']}", json={"threshold": 25})
    assert changed.status_code == 200, changed.text

    page = client.get("/api/v1/admin/log").json()
    assert [(i["area"], i["action"]) for i in page["items"]] == [
        ("alarm_rule", "update"),
        ("alarm_rule", "create"),
        ("sensor", "create"),
    ]
    assert page["items"][0]["changes"] == {"threshold": [15.0, 25.0]} and page["items"][0]["actor_user_id"]
    only = client.get("/api/v1/admin/log", params={"area": "sensor", "target": "LOG-WL-1"}).json()["items"]
    assert [i["action"] for i in only] == ["create"]
    bad = client.get("/api/v1/admin/log", params={"area": "moon"})
    assert bad.status_code == 422 and "unknown area 'moon'" in bad.text

    with session_scope() as s:
        unit_id = s.scalars(select(User.unit_id).where(User.role == Role.ADMIN)).first()
        tokens = {}
        for role in (Role.SUPERVISOR, Role.OPERATOR):
            user = User(username=f"log-{role.value}", full_name="某某", role=role, unit_id=unit_id)
            s.add(user)
            s.flush()
            tokens[role] = create_token(s, user_id=user.id, name="test")[1]
    supervisor = client.get("/api/v1/admin/log", headers={"Authorization": f"Bearer {tokens[Role.SUPERVISOR]}"})
    assert supervisor.status_code == 200 and len(supervisor.json()["items"]) == 3
    operator = client.get("/api/v1/admin/log", headers={"Authorization": f"Bearer {tokens[Role.OPERATOR]}"})
    assert operator.status_code == 403
