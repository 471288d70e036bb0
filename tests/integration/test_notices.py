"""Staff notices (消息提醒) on SQLite and PostgreSQL: who is told of an order sent, urged, returned, sent back, of an
extension or exemption decided and of a sensor alarm — the unit's staff whose role takes the step, the dispatchers
whose scope holds a returned order, never the actor nor everyone — and the API reading them, each reader their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_monitoring import T0, _flapping, _rule, _sensor, _units

from cityhub.analytics import exemptions
from cityhub.auth.service import create_token
from cityhub.db import session_scope, utcnow
from cityhub.notify import notices
from cityhub.notify.models import UserNotice
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import service
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import OrderCreate
from cityhub.workorders.service import Actor


@dataclass
class Org:
    units: dict[str, int]
    users: dict[str, User]

    def actor(self, key: str) -> Actor:
        u = self.users[key]
        return Actor(name=u.full_name, user_id=u.id, unit_id=u.unit_id, role=u.role.value)

    def id(self, key: str) -> int:
        return self.users[key].id


def _org(s: Session) -> Org:
    district = Unit(code="N-QU", name="白云区", tier=UnitTier.DISTRICT)
    s.add(district)
    s.flush()
    street = Unit(code="N-JD", name="景泰街道", tier=UnitTier.STREET, parent_id=district.id)
    other_street = Unit(code="N-JX", name="京溪街道", tier=UnitTier.STREET, parent_id=district.id)
    dept = Unit(code="N-CG", name="区城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    dept2 = Unit(code="N-ZJ", name="区住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    s.add_all([street, other_street, dept, dept2])
    s.flush()
    community = Unit(code="N-SQ", name="云苑社区", tier=UnitTier.COMMUNITY, parent_id=street.id)
    s.add(community)
    s.flush()
    units = {
        "district": district.id,
        "street": street.id,
        "other_street": other_street.id,
        "dept": dept.id,
        "dept2": dept2.id,
        "community": community.id,
    }
    people = {
        "h_dept": (Role.HANDLER, "dept"),
        "h_dept_b": (Role.HANDLER, "dept"),
        "op_dept": (Role.OPERATOR, "dept"),  # reads orders, signs for none
        "admin_dept": (Role.ADMIN, "dept"),  # holds every permission, no unit's staff
        "h_dept2": (Role.HANDLER, "dept2"),
        "h_comm": (Role.HANDLER, "community"),
        "gridder": (Role.INSPECTOR, "community"),
        "disp_district": (Role.DISPATCHER, "district"),
        "disp_street": (Role.DISPATCHER, "street"),
        "disp_other": (Role.DISPATCHER, "other_street"),
        "sup": (Role.SUPERVISOR, "district"),
        "leader": (Role.LEADER, "district"),
    }
    users = {
        key: User(username=f"n-{key}", full_name=f"人员{key}", role=role, unit_id=units[unit])
        for key, (role, unit) in people.items()
    }
    s.add_all(users.values())
    s.flush()
    return Org(units, users)


@pytest.fixture
def org(db_session: Session) -> Org:
    org = _org(db_session)
    db_session.commit()
    return org


def _order(s: Session, org: Org, **extra: object) -> int:
    data = OrderCreate(channel="hotline", title="路灯不亮", content="小区门口路灯不亮已经一周，晚上出行不便", **extra)
    order, _ = service.create_order(s, data=data)
    s.flush()
    return order.id


def _told(s: Session, order_id: int | None = None, kind: str | None = None) -> dict[str, set[int]]:
    """kind → the users told, of the notices of ``order_id``."""
    query = select(UserNotice)
    if order_id is not None:
        query = query.where(UserNotice.order_id == order_id)
    told: dict[str, set[int]] = {}
    for n in s.scalars(query):
        told.setdefault(n.kind, set()).add(n.user_id)
    return told if kind is None else {kind: told.get(kind, set())}


def test_the_units_staff_who_take_the_step_are_told_never_the_actor_nor_others(db_session: Session, org: Org) -> None:
    s = db_session
    order_id = _order(s, org)
    assert _told(s, order_id) == {}  # a received order needs no one yet (the dispatchers' queue shows it)
    service.act(
        s, order_id=order_id, action="dispatch", actor=org.actor("disp_district"), params={"unit_id": org.units["dept"]}
    )
    s.commit()
    # Its handlers sign for it; not the unit's operator, its administrator, another unit, nor the dispatcher.
    assert _told(s, order_id) == {"dispatched": {org.id("h_dept"), org.id("h_dept_b")}}

    service.act(s, order_id=order_id, action="accept", actor=org.actor("h_dept"))
    service.act(s, order_id=order_id, action="urge", actor=org.actor("sup"), params={"reason": "今天必须答复市民"})
    service.act(
        s,
        order_id=order_id,
        action="request_extension",
        actor=org.actor("h_dept"),
        params={"days": 3, "reason": "待材料"},
    )
    service.act(s, order_id=order_id, action="reject_extension", actor=org.actor("sup"), params={"reason": "不予延期"})
    service.act(s, order_id=order_id, action="reply", actor=org.actor("h_dept"), params={"text": "已修复路灯"})
    service.act(s, order_id=order_id, action="reject_reply", actor=org.actor("sup"), params={"reason": "未附照片"})
    s.commit()
    unit = {org.id("h_dept"), org.id("h_dept_b")}
    told = _told(s, order_id)
    assert told == {
        "dispatched": unit,
        "urged": unit,
        "extension_requested": {org.id("sup")},  # the supervisors decide it
        "extension_rejected": unit,
        "reply_rejected": unit,
    }, told  # the accept and the reply are the unit's own steps: nobody is told of them
    urged = s.scalars(select(UserNotice).where(UserNotice.kind == "urged")).first()
    assert urged is not None and urged.params == {"actor": "人员sup", "reason": "今天必须答复市民"}

    # A leader's 交办 of the order its unit holds tells the unit — but never the one who acts (here contrived: one of
    # the unit's own handlers acting as the leader would).
    as_colleague = Actor(name="人员h_dept_b", user_id=org.id("h_dept_b"), unit_id=org.units["dept"], role="leader")
    service.act(s, order_id=order_id, action="assign", actor=as_colleague, params={"reason": "请加快办理"})
    s.commit()
    assert _told(s, order_id, "assigned") == {"assigned": {org.id("h_dept")}}
    # One notice per reader and event.
    rows = s.scalars(select(UserNotice.user_id).where(UserNotice.kind == "dispatched")).all()
    assert sorted(rows) == sorted(unit)


def test_a_returned_order_tells_the_dispatchers_whose_scope_holds_it(db_session: Session, org: Org) -> None:
    s = db_session
    order_id = _order(s, org, street_code="N-JD", community_code="N-SQ")
    service.act(
        s,
        order_id=order_id,
        action="dispatch",
        actor=org.actor("disp_street"),
        params={"unit_id": org.units["community"]},
    )
    s.commit()
    # A community's inspector signs for its orders as its handlers do.
    assert _told(s, order_id) == {"dispatched": {org.id("h_comm"), org.id("gridder")}}
    service.act(s, order_id=order_id, action="return", actor=org.actor("h_comm"), params={"reason": "不属于本社区职责"})
    s.commit()
    # The district's dispatchers and the street's (its community returned it), not another street's; not the handler.
    returned = _told(s, order_id, "returned")["returned"]
    assert returned == {org.id("disp_district"), org.id("disp_street")}
    row = s.scalars(select(UserNotice).where(UserNotice.kind == "returned")).first()
    assert row is not None and row.params["unit"] == "云苑社区" and row.params["reason"] == "不属于本社区职责"


def test_an_exemption_decided_tells_whoever_asked(db_session: Session, org: Org) -> None:
    s = db_session
    order_id = _order(s, org)
    service.act(
        s, order_id=order_id, action="dispatch", actor=org.actor("disp_district"), params={"unit_id": org.units["dept"]}
    )
    service.act(s, order_id=order_id, action="accept", actor=org.actor("h_dept"))
    service.act(s, order_id=order_id, action="reply", actor=org.actor("h_dept"), params={"text": "已修复"})
    s.commit()
    measures = exemptions.open_by_unit(s, order_id=order_id, unit_ids={org.units["dept"]})[org.units["dept"]]
    req = exemptions.request(
        s,
        order_id=order_id,
        measures=measures[:1],
        reason_category="other",
        reason_text="市民不在家",
        actor=org.actor("h_dept"),
    )
    exemptions.decide(s, exemption_id=req.id, approve=False, reason="理由不充分", actor=org.actor("sup"))
    s.commit()
    assert _told(s, order_id, "exemption_rejected") == {"exemption_rejected": {org.id("h_dept")}}


def test_an_alarm_tells_its_responsible_units_staff_once_however_it_flaps(db_session: Session) -> None:
    s = db_session
    units = _units(s)
    people = {
        "h_comm": (Role.HANDLER, units["community"]),
        "op_comm": (Role.OPERATOR, units["community"]),  # sees alarms
        "h_street": (Role.HANDLER, units["street"]),  # the street's: not the responsible unit
        "h_water": (Role.HANDLER, units["water"]),
    }
    users = {k: User(username=f"a-{k}", full_name=k, role=r, unit_id=u) for k, (r, u) in people.items()}
    s.add_all(users.values())
    s.commit()
    _sensor(s)
    _rule(s, duration_s=0, clear_threshold=None)
    s.commit()
    _flapping(s, T0, 20, True)  # one alarm, reopened nine times
    # The alarm's order went to the community: its handler is told of that order (one notice, not two), the
    # community's operator of the alarm; the street's and another unit's staff of neither.
    told = _told(s)
    assert told == {"dispatched": {users["h_comm"].id}, "alarm_raised": {users["op_comm"].id}}, told
    notice = s.scalars(select(UserNotice).where(UserNotice.kind == "alarm_raised")).one()
    assert notice.alarm_id is not None and notice.params["code"] == "WL-001" and notice.order_id is not None
    assert len(s.scalars(select(UserNotice.id).where(UserNotice.user_id == users["h_comm"].id)).all()) == 1


def test_an_alarm_left_unacknowledged_tells_its_responsible_staff_again_when_escalated(db_session: Session) -> None:
    from test_monitoring import _series

    from cityhub.monitoring import service as monitoring

    s = db_session
    units = _units(s)
    staff = User(username="e-h", full_name="社区承办", role=Role.HANDLER, unit_id=units["community"])
    s.add(staff)
    s.commit()
    _sensor(s, "WL-E")
    _rule(s, duration_s=0, urgency="normal", escalate_after_minutes=30)
    s.commit()
    monitoring.ingest(s, items=_series("WL-E", [30]), now=T0)
    s.commit()
    assert monitoring.escalate_due(s, now=T0 + timedelta(minutes=31))["escalated"] == 1
    assert monitoring.escalate_due(s, now=T0 + timedelta(hours=5))["escalated"] == 0  # once
    s.commit()
    kinds = s.scalars(select(UserNotice.kind).where(UserNotice.user_id == staff.id).order_by(UserNotice.id)).all()
    # The alarm's order sent to the community (the notice of its raising), then the escalation.
    assert kinds == ["dispatched", "alarm_escalated"]


def test_read_notices_are_pruned_after_the_days_set_unread_ones_kept(
    db_session: Session, org: Org, monkeypatch
) -> None:
    from cityhub.notify.config import get_notify_settings
    from cityhub.notify.scheduled import notice_prune

    s = db_session
    order_id = _order(s, org)
    service.act(
        s, order_id=order_id, action="dispatch", actor=org.actor("disp_district"), params={"unit_id": org.units["dept"]}
    )
    s.commit()
    old, kept = s.scalars(select(UserNotice).order_by(UserNotice.id)).all()
    old.read_at = utcnow() - timedelta(days=91)
    s.commit()
    monkeypatch.setenv("CITYHUB_NOTIFY_NOTICE_KEEP_READ_DAYS", "90")
    get_notify_settings.cache_clear()
    try:
        assert notice_prune(s) == {"deleted": 1, "keep_read_days": 90}
    finally:
        get_notify_settings.cache_clear()
    s.commit()
    assert [n.id for n in s.scalars(select(UserNotice))] == [kept.id]


# ---------------------------------------------------------------------------------------------------------- API


def _bearer(s: Session, user_id: int) -> dict[str, str]:
    _, token = create_token(s, user_id=user_id, name="test")
    return {"Authorization": f"Bearer {token}"}


def test_the_api_reads_ones_own_notices_and_marks_them_read(admin_client) -> None:
    with session_scope() as s:
        org = _org(s)
        order_id = _order(s, org)
        number = s.scalar(select(Order.number).where(Order.id == order_id))
        service.act(
            s,
            order_id=order_id,
            action="dispatch",
            actor=org.actor("disp_district"),
            params={"unit_id": org.units["dept"]},
        )
        service.act(s, order_id=order_id, action="accept", actor=org.actor("h_dept"))
        service.act(s, order_id=order_id, action="urge", actor=org.actor("sup"), params={"reason": "请尽快"})
        mine, theirs = _bearer(s, org.id("h_dept")), _bearer(s, org.id("h_dept_b"))
        nobody = _bearer(s, org.id("h_dept2"))
    c = admin_client
    listed = c.get("/api/v1/notices", headers=mine, params={"unread": "true"})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [i["kind"] for i in body["items"]] == ["urged", "dispatched"] and body["unread"] == 2  # newest first
    urged, _ = body["items"]
    assert urged["order"] == {"id": order_id, "number": number, "title": "路灯不亮"}
    assert urged["link"] == f"/orders/{order_id}" and urged["read_at"] is None
    assert urged["text"] == f"工单 {number}「路灯不亮」被催办" and urged["params"]["reason"] == "请尽快"
    english = c.get("/api/v1/notices", headers={**mine, "Accept-Language": "en"}).json()["items"][0]["text"]
    assert english == f'Order {number} "路灯不亮" was urged'
    assert c.get("/api/v1/notices/unread-count", headers=mine).json() == {"unread": 2}

    # Another's notice is not found, as a missing one; it stays unread for its reader.
    assert c.post(f"/api/v1/notices/{urged['id']}/read", headers=nobody).status_code == 404
    assert c.post("/api/v1/notices/999999/read", headers=mine).status_code == 404
    read = c.post(f"/api/v1/notices/{urged['id']}/read", headers=mine)
    assert read.status_code == 200 and read.json()["read_at"] is not None, read.text
    assert c.get("/api/v1/notices/unread-count", headers=mine).json() == {"unread": 1}
    assert [i["id"] for i in c.get("/api/v1/notices?unread=false", headers=mine).json()["items"]] == [urged["id"]]
    assert c.get("/api/v1/notices", headers=nobody).json()["items"] == []

    paged = c.get("/api/v1/notices?limit=1", headers=mine).json()
    assert len(paged["items"]) == 1 and paged["has_more"] is True
    done = c.post("/api/v1/notices/read-all", headers=mine)
    assert done.status_code == 200 and done.json() == {"marked": 1, "unread": 0}
    assert c.get("/api/v1/notices/unread-count", headers=mine).json() == {"unread": 0}
    # The colleague's own notices are theirs, untouched.
    assert c.get("/api/v1/notices/unread-count", headers=theirs).json() == {"unread": 2}
    assert c.get("/api/v1/notices").status_code == 200  # every signed-in user has an inbox (the admin's is empty)
    assert c.get("/api/v1/notices", headers={"Authorization": ""}).status_code == 401


def test_a_notice_quotes_a_long_title_short() -> None:
    from cityhub.notify.notice_views import TITLE_CHARS, notice_text

    long = "白云大道北与黄石路交界处的人行天桥电梯已经停运两个多月无人维修"
    notice = notices.Notice(
        id=1,
        kind="urged",
        params={},
        created_at=utcnow(),
        read_at=None,
        order_id=7,
        order_number="BY1",
        order_title=long,
        alarm_id=None,
    )
    assert notice_text("zh-CN", notice) == f"工单 BY1「{long[: TITLE_CHARS - 1]}…」被催办"
    assert notice_text("en", notice).startswith('Order BY1 "白云大道北') and notice.link == "/orders/7"


def test_a_leader_is_told_when_the_order_they_assigned_is_answered_and_closed(db_session: Session, org: Org) -> None:
    """领导交办: the leader who assigned an order (to a unit, or an instruction to the unit holding it) is told of its
    answer — which unit replied — and of its closing; of an order no leader assigned, no leader is told anything."""
    s = db_session
    assigned, other = _order(s, org), _order(s, org)
    leader = org.actor("leader")
    service.act(s, order_id=assigned, action="assign", actor=leader, params={"unit_id": org.units["dept"]})
    service.act(
        s, order_id=other, action="dispatch", actor=org.actor("disp_district"), params={"unit_id": org.units["dept"]}
    )
    service.act(s, order_id=assigned, action="assign", actor=leader, params={"reason": "三天内办结"})  # 批示: once told
    for order_id in (assigned, other):
        service.act(s, order_id=order_id, action="accept", actor=org.actor("h_dept"))
        service.act(s, order_id=order_id, action="reply", actor=org.actor("h_dept"), params={"text": "已修复路灯"})
        service.act(s, order_id=order_id, action="callback", actor=org.actor("sup"), params={"satisfied": True})
        service.act(s, order_id=order_id, action="close", actor=org.actor("sup"))
    s.commit()
    rows = s.scalars(select(UserNotice).where(UserNotice.user_id == org.id("leader")).order_by(UserNotice.id)).all()
    assert [(r.kind, r.order_id) for r in rows] == [("assigned_replied", assigned), ("assigned_closed", assigned)]
    assert rows[0].params == {"actor": "人员h_dept", "unit": "区城管局"} and rows[1].params == {"actor": "人员sup"}
    # The unit's staff are told of neither (their own reply; the closing is not theirs to act on).
    assert _told(s, assigned, "assigned_closed") == {"assigned_closed": {org.id("leader")}}
    # Ended otherwise — cancelled (作废) or merged into another order (合并) — the leader is told so, and why or where.
    cancelled, merged, master = _order(s, org), _order(s, org), _order(s, org)
    for order_id in (cancelled, merged):
        service.act(s, order_id=order_id, action="assign", actor=leader, params={"unit_id": org.units["dept"]})
    service.act(s, order_id=cancelled, action="cancel", actor=org.actor("sup"), params={"reason": "重复登记"})
    service.act(s, order_id=merged, action="merge", actor=org.actor("sup"), params={"master_id": master})
    s.commit()
    ended = s.scalars(
        select(UserNotice).where(UserNotice.user_id == org.id("leader"), UserNotice.order_id.in_([cancelled, merged]))
    ).all()
    number = s.get(Order, master).number  # type: ignore[union-attr]
    assert {(r.kind, r.order_id): r.params for r in ended} == {
        ("assigned_cancelled", cancelled): {"actor": "人员sup", "reason": "重复登记"},
        ("assigned_merged", merged): {"actor": "人员sup", "master": number},
    }


def test_a_bulk_urge_tells_each_units_staff_once(db_session: Session, org: Org) -> None:
    """批量催办 of three orders of 区城管局 and one of 区住建局: 区城管局's handlers each get one notice naming three
    orders (not three), 区住建局's one 催办 of its one order, as a single urge tells it."""
    s = db_session
    ids = []
    for unit in ("dept", "dept", "dept", "dept2"):
        order_id = _order(s, org)
        service.act(
            s,
            order_id=order_id,
            action="dispatch",
            actor=org.actor("disp_district"),
            params={"unit_id": org.units[unit]},
        )
        ids.append(order_id)
    s.commit()
    s.execute(UserNotice.__table__.delete())
    outcomes = service.act_each(
        s,
        [(i, None) for i in ids],
        action=service.Action.URGE,
        params={"reason": "今天务必答复"},
        actor=org.actor("sup"),
    )
    s.commit()
    assert all(o.done for o in outcomes)
    rows = s.scalars(select(UserNotice).order_by(UserNotice.user_id)).all()
    assert sorted((r.user_id, r.kind, r.order_id) for r in rows) == sorted(
        [
            (org.id("h_dept"), "urged_bulk", None),
            (org.id("h_dept_b"), "urged_bulk", None),
            (org.id("h_dept2"), "urged", ids[3]),
        ]
    )
    bulk = next(r for r in rows if r.kind == "urged_bulk")
    assert bulk.params == {"actor": "人员sup", "reason": "今天务必答复", "count": 3, "order_ids": ids[:3]}
    single = next(r for r in rows if r.kind == "urged")
    assert single.params == {"actor": "人员sup", "reason": "今天务必答复"}  # as service.act's own 催办 writes it


def test_the_api_says_a_notice_of_an_order_moved_away_is_no_longer_viewable(admin_client) -> None:
    with session_scope() as s:
        org = _org(s)
        order_id = _order(s, org)
        disp = org.actor("disp_district")
        service.act(s, order_id=order_id, action="dispatch", actor=disp, params={"unit_id": org.units["dept"]})
        service.act(
            s,
            order_id=order_id,
            action="transfer",
            actor=disp,
            params={"unit_id": org.units["dept2"], "reason": "职责"},
        )
        before, after = _bearer(s, org.id("h_dept")), _bearer(s, org.id("h_dept2"))
    c = admin_client
    (moved,) = c.get("/api/v1/notices", headers=before).json()["items"]
    assert moved["kind"] == "dispatched" and moved["viewable"] is False and moved["link"] == f"/orders/{order_id}"
    assert c.get(f"/api/v1/orders/{order_id}", headers=before).status_code == 404
    (theirs,) = c.get("/api/v1/notices", headers=after).json()["items"]
    assert theirs["kind"] == "transferred" and theirs["viewable"] is True


def test_a_bulk_dispatch_tells_each_unit_once_of_its_orders_not_once_an_order(db_session: Session, org: Org) -> None:
    """批量派单 of three orders to 区城管局 and one to 区住建局 (seventeen gave a handler seventeen 已派至本单位):
    区城管局's handlers each get one notice naming how many and which, leading to their orders to sign for; 区住建局's
    the one 派单 notice of its one order, with its reason, as a single dispatch tells it."""
    from cityhub.dispatch import service as dispatch

    s = db_session
    ids = [_order(s, org) for _ in range(4)]
    s.commit()
    units = ("dept", "dept", "dept", "dept2")
    picks = [dispatch.Pick(i, org.units[u], reason="职责所在") for i, u in zip(ids, units, strict=True)]
    outcomes = dispatch.dispatch_picked(s, picks, actor=org.actor("disp_district"))
    s.commit()
    assert all(o.dispatched for o in outcomes)
    rows = s.scalars(select(UserNotice).order_by(UserNotice.user_id)).all()
    assert sorted((r.user_id, r.kind, r.order_id) for r in rows) == sorted(
        [
            (org.id("h_dept"), "dispatched_bulk", None),
            (org.id("h_dept_b"), "dispatched_bulk", None),
            (org.id("h_dept2"), "dispatched", ids[3]),
        ]
    )
    bulk = next(r for r in rows if r.kind == "dispatched_bulk")
    assert bulk.params == {"actor": "人员disp_district", "count": 3, "order_ids": ids[:3]}
    single = next(r for r in rows if r.kind == "dispatched")
    assert single.params == {"actor": "人员disp_district", "reason": "职责所在"}  # as service.act's own 派单 writes it
    read = notices.Notice(bulk.id, bulk.kind, bulk.params, bulk.created_at, None, None, None, None, None)
    assert read.link == "/orders?to_accept=1&sort=due"  # the unit's orders to sign for
