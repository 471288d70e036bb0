"""The order list reads plain rows (not ORM objects) for speed: each item must be exactly what the single-order
endpoint answers, masking included, and the list's filters must find their index at any table size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from cityhub.auth.service import create_token
from cityhub.db import session_scope, utcnow
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import service
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import OrderFilter
from sql_helpers import selects_naming


@pytest.fixture
def client(admin_client):
    with session_scope() as s:
        district_id = s.scalars(select(User.unit_id).where(User.role == Role.ADMIN)).one()
        lead = Unit(code="LR-D01", name="城管局", tier=UnitTier.DEPARTMENT, parent_id=district_id)
        helper = Unit(code="LR-D02", name="住建局", tier=UnitTier.DEPARTMENT, parent_id=district_id)
        leader = User(username="lr-leader", full_name="区领导", role=Role.LEADER, unit_id=district_id)
        s.add_all([lead, helper, leader])
        s.flush()
        admin_client.units = (lead.id, helper.id)
        admin_client.leader = {"Authorization": f"Bearer {create_token(s, user_id=leader.id, name='t')[1]}"}
    return admin_client


def test_list_items_equal_single_reads_for_every_caller(client):
    lead, helper = client.units
    made = client.post(
        "/api/v1/orders",
        json={
            "channel": "hotline",
            "content": "井盖缺失有安全隐患",
            "citizen_name": "李四",
            "citizen_phone": "13900001111",
        },
    ).json()
    url = f"/api/v1/orders/{made['id']}/actions"
    assert client.post(f"{url}/dispatch", json={"unit_id": lead}).status_code == 200
    assert client.post(f"{url}/add_assist", json={"unit_id": helper}).status_code == 200
    client.post("/api/v1/orders", json={"channel": "web", "content": "另一件事：路面坑洼"})
    for headers in ({}, client.leader):
        single = client.get(f"/api/v1/orders/{made['id']}", headers=headers).json()
        page = client.get("/api/v1/orders", params={"channel": "hotline"}, headers=headers).json()
        assert page["items"] == [single] and page["has_more"] is False
        assert single["assists"] and single["assists"][0]["unit_id"] == helper
    assert client.get(f"/api/v1/orders/{made['id']}", headers=client.leader).json()["citizen_phone"] == "139****1111"


def test_orders_about_to_miss_their_signing_limit_are_listed_before_they_are_late(client):
    """只看签收超时 (``accept_overdue``) lists an order once the sweep marked it late: ``accept_due_soon`` lists the
    orders dispatched and not signed for whose 签收时限 is within 30 minutes — or passed and not marked yet — and
    ``false`` the others; what is stored (``sla_status``, ``accept_overdue``) stays as it was."""
    lead, _ = client.units

    def dispatched(content, due_in, **stored):
        made = client.post("/api/v1/orders", json={"channel": "hotline", "content": content}).json()
        assert client.post(f"/api/v1/orders/{made['id']}/actions/dispatch", json={"unit_id": lead}).status_code == 200
        with session_scope() as s:
            s.execute(update(Order).where(Order.id == made["id"]).values(accept_due_at=utcnow() + due_in, **stored))
        return made["id"]

    soon = dispatched("小区门口路灯不亮", timedelta(minutes=10))
    unmarked = dispatched("人行道井盖缺失", timedelta(minutes=-5))  # late, the sweep not run yet
    later = dispatched("公园长椅损坏", timedelta(hours=5))
    marked = dispatched("楼下夜市噪音扰民", timedelta(hours=-1), accept_overdue=True)  # 签收超时 already
    signed = dispatched("道路积水无人处理", timedelta(minutes=10))
    assert client.post(f"/api/v1/orders/{signed}/actions/accept", json={}).status_code == 200

    def listed(**params):
        return {o["id"]: o for o in client.get("/api/v1/orders", params=params).json()["items"]}

    due_soon = listed(accept_due_soon="true")
    assert set(due_soon) == {soon, unmarked}
    assert due_soon[soon]["accept_overdue"] is False and due_soon[soon]["sla_status"] == "ok"
    assert {later, marked, signed} <= set(listed(accept_due_soon="false")) and soon not in listed(
        accept_due_soon="false"
    )
    assert set(listed(accept_overdue="true")) == {marked}
    assert client.get("/api/v1/orders", params={"accept_due_soon": "x"}).status_code == 422


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"channel": ["hotline"]}, "ix_orders_channel_created"),
        ({"overdue": True}, "ix_orders_open_sla"),
        # the dashboard's tile linked to 超期 with every open state named: still the partial index
        ({"overdue": True, "state": ["accepted", "dispatched", "in_progress"]}, "ix_orders_open_sla"),
        ({"ever_overdue": True}, "ix_orders_ever_overdue"),
        ({"sla_status": "warning"}, "ix_orders_sla_created"),
        ({"unit_id": 1}, "ix_orders_lead_created"),
        ({"community_id": 1}, "ix_orders_community_created"),
        ({"state": ["received"]}, "ix_orders_state_created"),
        ({"extension_pending": True}, "ix_orders_extension_pending"),
        ({"accept_overdue": True}, "ix_orders_accept_overdue"),
        ({"escalated": True}, "ix_orders_escalated"),
        ({"leader_assigned": True}, "ix_orders_leader_assigned"),
        # the orders of one import: a partial index of the imported orders, which `= ?` implies
        ({"import_batch_id": 1}, "ix_orders_import_batch_created"),
        # 企业呼's need: an expression index of the orders naming one, which `IN (…)` on that expression implies
        ({"enterprise_need": ["land"]}, "ix_orders_enterprise_need_created"),
    ],
)
def test_each_list_filter_reads_its_index(db_session, db_backend, filters, index):
    """Without such an index a page by channel sorted a million rows (15 s on SQLite at 1,000,000 orders)."""
    with selects_naming(db_session.get_bind(), "FROM orders") as statements:
        service.search_order_rows(db_session, filters=OrderFilter(**filters), columns=["id", "created_at"], limit=20)
    statement, parameters = statements[0]
    conn = db_session.connection()
    if db_backend == "sqlite":
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    else:  # an empty table is read whichever way is cheapest: ask for a plan that neither scans nor sorts
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_sort = off"))
        plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    if db_backend == "sqlite":
        assert index in plan, plan
    else:
        # PostgreSQL's cost-based choice between two usable indexes depends on statistics (on a near-empty table it
        # may walk ix_orders_created and filter); what must hold is an index walk in date order, no scan, no sort.
        assert "Index" in plan and "Seq Scan" not in plan, plan
    # The index gives the newest first: no sort of all matches (PostgreSQL may order ties of created_at by id in
    # an "Incremental Sort" over the presorted index output, which is cheap).
    assert "TEMP B-TREE" not in plan and "->  Sort " not in plan and not plan.startswith("Sort "), plan
    db_session.rollback()


def test_rows_and_objects_agree_on_paging(db_session):
    from cityhub.workorders.schemas import OrderCreate

    for n in range(7):
        service.create_order(db_session, data=OrderCreate(channel="web", content=f"第{n}件：路灯不亮"))
    db_session.flush()
    for offset in (0, 3, 6):
        objects, more_o, total_o = service.search_orders(
            db_session, filters=OrderFilter(), limit=3, offset=offset, count=True
        )
        rows, more_r, total_r = service.search_order_rows(
            db_session, filters=OrderFilter(), columns=["id"], limit=3, offset=offset, count=True
        )
        assert [o.id for o in objects] == [r["id"] for r in rows]
        assert (more_o, total_o) == (more_r, total_r) == (offset + 3 < 7, 7)
    assert db_session.scalar(select(Order.id).limit(1)) is not None
