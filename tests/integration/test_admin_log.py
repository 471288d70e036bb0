"""The configuration log (操作日志) on both backends: every change of a sensor or an alarm rule — through the
service, the API and the web pages — is one entry naming who, what changed from what to what, and why; read by
administrators, refused to others."""

from __future__ import annotations

import json

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
    for role in (Role.SUPERVISOR, Role.OPERATOR):
        refused = client.get("/api/v1/admin/log", headers={"Authorization": f"Bearer {tokens[role]}"})
        assert refused.status_code == 403 and "log:read" in refused.text


def test_routing_rules_and_thresholds_are_logged_down_to_their_deletion(db_session) -> None:
    from cityhub.dispatch import service as dispatch
    from cityhub.dispatch.schemas import RuleCreate as RoutingCreate
    from cityhub.dispatch.schemas import RuleUpdate as RoutingUpdate
    from cityhub.org.models import Unit, UnitTier
    from cityhub.workorders.categories import seed_default_taxonomy
    from cityhub.workorders.models import Category

    seed_default_taxonomy(db_session)
    unit = Unit(code="LOG-D1", name="区城管局", tier=UnitTier.DEPARTMENT)
    db_session.add(unit)
    db_session.flush()
    category = db_session.scalars(select(Category).order_by(Category.id)).first()
    assert category is not None
    rule = dispatch.create_rule(
        db_session,
        data=RoutingCreate(name="油烟 → 城管", keywords=["油烟"], target_unit_id=unit.id),
        actor=ENGINEER,
    )
    dispatch.update_rule(db_session, rule_id=rule.id, data=RoutingUpdate(keywords=["油烟", "噪音"]), actor=ENGINEER)
    dispatch.delete_rule(db_session, rule_id=rule.id, actor=ENGINEER)
    dispatch.set_threshold(db_session, category_id=category.id, threshold=0.9, actor=ENGINEER)
    dispatch.set_threshold(db_session, category_id=category.id, threshold=0.95, actor=ENGINEER)
    dispatch.delete_threshold(db_session, category_id=category.id, actor=ENGINEER)
    db_session.commit()

    log = list(db_session.scalars(select(auditlog.LogEntry).order_by(auditlog.LogEntry.id)))
    assert [(e.area, e.action) for e in log] == [
        ("dispatch_rule", "create"),
        ("dispatch_rule", "update"),
        ("dispatch_rule", "delete"),
        ("dispatch_threshold", "create"),
        ("dispatch_threshold", "update"),
        ("dispatch_threshold", "delete"),
    ]
    assert {e.target for e in log[:3]} == {str(rule.id)} and {e.target for e in log[3:]} == {str(category.id)}
    assert _changes(log[1]) == {"keywords": [["油烟"], ["油烟", "噪音"]]}
    deleted = _changes(log[2])
    assert deleted["name"] == ["油烟 → 城管", None] and deleted["keywords"] == [["油烟", "噪音"], None]
    assert [_changes(e) for e in log[3:]] == [
        {"threshold": [None, 0.9]},
        {"threshold": [0.9, 0.95]},
        {"threshold": [0.95, None]},
    ]
    assert all(e.actor == "运维 张工" for e in log)


def test_the_log_is_printed_by_the_command_line(app_db, cli_run) -> None:
    with session_scope() as s:
        rule = service.create_rule(s, data=RuleCreate.model_validate(RULE), actor=ENGINEER)
        rule_id = rule.id
    code, _, err = cli_run("alarm-rules", "set", str(rule_id), "--threshold", "20")
    assert code == 0, err
    code, out, _ = cli_run("admin-log", "--area", "alarm_rule", "--target", str(rule_id))
    lines = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [(f[1], f[2], f[4]) for f in lines] == [
        ("cli", "alarm_rule", "update"),
        ("运维 张工", "alarm_rule", "create"),
    ]
    assert lines[0][5] == '{"threshold": [15.0, 20.0]}'
    code, _, err = cli_run("admin-log", "--area", "moon")
    assert code != 0 and "unknown area 'moon'" in err


def test_accounts_are_logged_without_their_passwords(db_session) -> None:
    from cityhub.auth import service as auth
    from cityhub.org.models import Unit, UnitTier
    from cityhub.org.schemas import UserCreate

    unit = Unit(code="LOG-S1", name="稻香街道", tier=UnitTier.STREET)
    db_session.add(unit)
    db_session.flush()
    data = UserCreate(username="log-hand", full_name="吴承办", role=Role.HANDLER, unit_id=unit.id)
    user = auth.create_account(db_session, data=data, password="Correct-Horse-Battery-42", actor=ENGINEER)
    auth.update_account(db_session, user=user, changes={"role": Role.DISPATCHER}, actor=ENGINEER)
    auth.set_password(db_session, username="log-hand", password="Another-Long-Passphrase-7", actor=ENGINEER)
    auth.lock_user(db_session, username="log-hand", minutes=30, actor=ENGINEER)
    auth.unlock_user(db_session, username="log-hand", actor=ENGINEER)
    db_session.commit()

    log = list(db_session.scalars(select(auditlog.LogEntry).where(auditlog.LogEntry.area == "user")))
    assert [(e.target, e.action) for e in log] == [
        ("log-hand", "create"),
        ("log-hand", "update"),
        ("log-hand", "reset_password"),
        ("log-hand", "lock"),
        ("log-hand", "unlock"),
    ]
    assert _changes(log[1]) == {"role": ["handler", "dispatcher"]}
    assert _changes(log[4])["locked_until"][1] is None and _changes(log[3])["locked_until"][1]
    text = str([e.changes for e in log])
    assert "Correct-Horse" not in text and "Another-Long" not in text and "password" not in text


def test_time_limit_rules_and_calendar_days_are_logged(db_session) -> None:
    from datetime import date

    from cityhub.workorders import recompute, sla

    spec = sla.RuleSpec(category_id=None, urgency="urgent", accept_hours=2, finish_days=3)
    rule, _ = recompute.set_sla_rule(db_session, spec=spec, actor=ENGINEER)
    recompute.set_sla_rule(db_session, spec=sla.RuleSpec(None, "urgent", 2, 2), actor=ENGINEER)
    recompute.delete_sla_rule(db_session, rule_id=rule.id, actor=ENGINEER)
    recompute.set_calendar_day(db_session, day=date(2027, 2, 8), is_workday=False, name="春节", actor=ENGINEER)
    recompute.set_calendar_day(db_session, day=date(2027, 2, 8), is_workday=False, name="春节假期", actor=ENGINEER)
    recompute.delete_calendar_day(db_session, day=date(2027, 2, 8), actor=ENGINEER)
    db_session.commit()

    log = list(db_session.scalars(select(auditlog.LogEntry).order_by(auditlog.LogEntry.id)))
    assert [(e.area, e.target, e.action) for e in log] == [
        ("sla_rule", str(rule.id), "create"),
        ("sla_rule", str(rule.id), "update"),
        ("sla_rule", str(rule.id), "delete"),
        ("calendar_day", "2027-02-08", "create"),
        ("calendar_day", "2027-02-08", "update"),
        ("calendar_day", "2027-02-08", "delete"),
    ]
    assert _changes(log[1]) == {"finish_days": [3.0, 2.0]}
    assert _changes(log[2])["finish_days"] == [2.0, None] and _changes(log[2])["urgency"] == ["urgent", None]
    assert _changes(log[4]) == {"name": ["春节", "春节假期"]}
    assert _changes(log[5]) == {"is_workday": [False, None], "name": ["春节假期", None]}


def test_api_clients_and_their_keys_are_logged_by_prefix_never_by_key(db_session) -> None:
    from cityhub.sharing import service as sharing

    _, key = sharing.create_key(db_session, client_name="街道小程序", scopes="open311:write", actor=ENGINEER)
    _, second = sharing.create_key(db_session, client_name="街道小程序", actor=ENGINEER)
    sharing.set_scopes(db_session, client_name="街道小程序", scopes="open311:write,sharing:read", actor=ENGINEER)
    sharing.set_rate_limit(db_session, client_name="街道小程序", rate_limit=120, actor=ENGINEER)
    sharing.revoke(db_session, prefix=key[:12], actor=ENGINEER)
    db_session.commit()

    log = list(db_session.scalars(select(auditlog.LogEntry).where(auditlog.LogEntry.area == "api_client")))
    assert [(e.target, e.action) for e in log] == [
        ("街道小程序", "create"),
        ("街道小程序", "issue_key"),
        ("街道小程序", "issue_key"),
        ("街道小程序", "update"),
        ("街道小程序", "update"),
        ("街道小程序", "revoke_key"),
    ]
    assert _changes(log[0])["scopes"] == [None, "open311:write"]
    assert _changes(log[3]) == {"scopes": ["open311:write", "open311:write sharing:read"]}
    assert _changes(log[4])["rate_limit"][1] == 120
    prefixes = [_changes(e)["key"][1] for e in (log[1], log[2], log[5])]
    assert (
        [len(p) for p in prefixes] == [len(prefixes[0])] * 3
        and prefixes[0] == prefixes[2]
        and key.startswith(prefixes[0])
    )
    text = str([e.changes for e in log])
    assert key not in text and second not in text


def test_units_and_categories_are_logged(db_session) -> None:
    from cityhub.org import service as org
    from cityhub.org.models import UnitTier
    from cityhub.org.schemas import UnitCreate, UnitUpdate
    from cityhub.workorders import categories

    street = org.create_unit(
        db_session, data=UnitCreate(code="LOG-JD", name="稻香街道", tier=UnitTier.STREET), actor=ENGINEER
    )
    org.update_unit(db_session, unit_id=street.id, data=UnitUpdate(duties="辖区城市管理"), actor=ENGINEER)
    node = categories.create_category(db_session, name="共享单车", actor=ENGINEER)
    categories.update_category(db_session, category_id=node.id, name="共享单车停放", actor=ENGINEER)
    categories.update_category(db_session, category_id=node.id, active=False, actor=ENGINEER)
    db_session.commit()

    log = list(db_session.scalars(select(auditlog.LogEntry).order_by(auditlog.LogEntry.id)))
    assert [(e.area, e.target, e.action) for e in log] == [
        ("unit", "LOG-JD", "create"),
        ("unit", "LOG-JD", "update"),
        ("category", node.code, "create"),
        ("category", node.code, "update"),
        ("category", node.code, "update"),
    ]
    assert _changes(log[0])["name"] == [None, "稻香街道"] and _changes(log[0])["has_boundary"] == [None, False]
    assert _changes(log[1]) == {"duties": [None, "辖区城市管理"]}
    assert _changes(log[3]) == {"name": ["共享单车", "共享单车停放"], "path": ["共享单车", "共享单车停放"]}
    assert _changes(log[4]) == {"active": [True, False]}


def test_a_time_among_the_changes_is_answered_in_utc_as_every_other(admin_client) -> None:
    """docs/api.md: every instant of an answer is RFC 3339 in UTC with Z. A routing rule's ``valid_until`` in the
    log's ``changes`` came as the database wrote it (``2026-12-31T16:00:00+00:00``)."""
    unit_id = admin_client.get("/api/v1/auth/me").json()["unit_id"]
    body = {
        "name": "限期规则",
        "keywords": ["路灯"],
        "target_unit_id": unit_id,
        "valid_until": "2027-01-01T00:00:00+08:00",
    }
    created = admin_client.post("/api/v1/dispatch/rules", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["valid_until"] == "2026-12-31T16:00:00Z"
    entry = admin_client.get("/api/v1/admin/log", params={"area": "dispatch_rule"}).json()["items"][0]
    assert entry["changes"]["valid_until"] == [None, "2026-12-31T16:00:00Z"]


def test_knowledge_entries_are_logged_created_changed_retired_and_imported(db_session, tmp_path) -> None:
    """知识库 edits were in no log: who changed the answer 秒回 gives citizens, and from what, was nowhere. Each
    change through the service is one entry (area ``kb_entry``, the entry's id) with before and after; an import's
    entries name the file."""
    from datetime import UTC, datetime

    from cityhub.knowledge import service as kb
    from cityhub.knowledge.schemas import EntryCreate, EntryUpdate

    keeper = Actor(name="督办员 陈", role="supervisor")
    entry = kb.create_entry(
        db_session,
        data=EntryCreate(question="居住证怎么办理", answer="到社区服务中心办理。", keywords=["居住证"]),
        actor=keeper,
    )
    until = datetime(2030, 12, 31, 16, 0, tzinfo=UTC)
    kb.update_entry(
        db_session,
        entry_id=entry.id,
        data=EntryUpdate(answer="携带身份证到社区服务中心办理。", valid_until=until),
        actor=keeper,
    )
    kb.update_entry(
        db_session, entry_id=entry.id, data=EntryUpdate(answer="携带身份证到社区服务中心办理。"), actor=keeper
    )
    kb.deactivate_entry(db_session, entry_id=entry.id, actor=ENGINEER)
    kb.deactivate_entry(db_session, entry_id=entry.id, actor=ENGINEER)  # already retired: nothing changed
    path = tmp_path / "kb.csv"
    path.write_text("question,answer,keywords\n公租房申请条件,连续缴纳社保满1年,公租房\n", encoding="utf-8")
    kb.import_entries(db_session, path=path, actor=ENGINEER)
    path.write_text("question,answer\n公租房申请条件,连续缴纳社保满2年\n", encoding="utf-8")
    kb.import_entries(db_session, path=path, actor=ENGINEER)
    kb.import_entries(db_session, path=path, actor=ENGINEER)  # the same file again: nothing changed
    seed = tmp_path / "f4.csv"
    seed.write_text(
        "留言编号,留言主题,留言详情,答复意见\n"
        "101,咨询公积金提取,离职后公积金怎么提取？,离职后账户封存满6个月可申请提取，携带身份证到公积金中心办理。\n",
        encoding="utf-8",
    )
    kb.seed_from_replies(db_session, path=seed)
    db_session.commit()

    log = list(db_session.scalars(select(auditlog.LogEntry).order_by(auditlog.LogEntry.id)))
    housing = kb.list_entries(db_session, q="公租房")[0][0]
    seeded = kb.get_entry_by_source(db_session, source="import:f4:101")
    assert housing is not None and seeded is not None
    assert [(e.area, e.target, e.action, e.actor, e.reason) for e in log] == [
        ("kb_entry", str(entry.id), "create", "督办员 陈", None),
        ("kb_entry", str(entry.id), "update", "督办员 陈", None),
        ("kb_entry", str(entry.id), "retire", "运维 张工", None),
        ("kb_entry", str(housing.id), "create", "运维 张工", "imported from kb.csv"),
        ("kb_entry", str(housing.id), "update", "运维 张工", "imported from kb.csv"),
        ("kb_entry", str(seeded.id), "create", "system", "imported from f4.csv"),
    ]
    created, changed, retired, imported, reimported, _ = log
    assert _changes(created) == {
        "question": [None, "居住证怎么办理"],
        "answer": [None, "到社区服务中心办理。"],
        "category_id": [None, None],
        "keywords": [None, ["居住证"]],
        "valid_from": [None, None],
        "valid_until": [None, None],
        "active": [None, True],
        "public": [None, False],
        "source": [None, None],
    }
    assert _changes(changed) == {
        "answer": ["到社区服务中心办理。", "携带身份证到社区服务中心办理。"],
        "valid_until": [None, until.isoformat()],
    }
    assert _changes(retired) == {"active": [True, False]}
    assert _changes(imported)["answer"] == [None, "连续缴纳社保满1年"]
    # A file without the keywords column leaves them: the answer alone changed.
    assert _changes(reimported) == {"answer": ["连续缴纳社保满1年", "连续缴纳社保满2年"]}


def test_knowledge_entries_changed_over_the_api_and_the_command_line_are_logged(
    admin_client, app_db, cli_run, tmp_path
):
    client = admin_client
    made = client.post("/api/v1/kb/entries", json={"question": "老年卡怎么办", "answer": "到社区办理。"})
    assert made.status_code == 201, made.text
    entry_id = made.json()["id"]
    patched = client.patch(f"/api/v1/kb/entries/{entry_id}", json={"answer": "带身份证到社区办理。", "version": 1})
    assert patched.status_code == 200, patched.text
    assert client.delete(f"/api/v1/kb/entries/{entry_id}").status_code == 200
    items = client.get("/api/v1/admin/log", params={"area": "kb_entry", "target": str(entry_id)}).json()["items"]
    assert [(i["action"], i["actor"]) for i in items] == [
        ("retire", "管理员"),
        ("update", "管理员"),
        ("create", "管理员"),
    ]
    assert all(i["actor_user_id"] for i in items)
    assert items[1]["changes"] == {"answer": ["到社区办理。", "带身份证到社区办理。"]}

    code, out, err = cli_run("kb", "add", "--question", "医保怎么转移", "--answer", "到医保窗口办理转移。")
    assert code == 0, err
    cli_id = json.loads(out)["id"]
    assert cli_run("kb", "deactivate", str(cli_id))[0] == 0
    path = tmp_path / "entries.csv"
    path.write_text("question,answer\n社保卡补办,到社保网点补办。\n", encoding="utf-8")
    assert cli_run("kb", "import", str(path))[0] == 0
    code, out, _ = cli_run("admin-log", "--area", "kb_entry", "--limit", "3")
    lines = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [(f[1], f[4], f[6]) for f in lines] == [
        ("cli", "create", "imported from entries.csv"),
        ("cli", "retire", ""),
        ("cli", "create", ""),
    ]
    assert lines[1][3] == lines[2][3] == str(cli_id)
