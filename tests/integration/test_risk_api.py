"""Findings and the correlation graph over the API on both backends; a proactive order is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cityhub.analytics import risk
from cityhub.analytics.correlation import parse_period
from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.demo.service import seed_reference_data
from cityhub.intake.service import submit
from cityhub.org.models import Role, Unit, User
from cityhub.workorders.models import Order, OrderEvent

NOISE = "环境保护/环境污染/噪音污染"
OTHER = ("城乡建设/城市建设和市政管理/环境卫生", "政法/交通管理/交通安全管理")


@pytest.fixture
def client(admin_client):
    """The shared administrator client over the Baiyun reference data and a month of orders on one street."""
    with session_scope() as s:
        seed_reference_data(s)
        street = s.scalars(select(Unit).where(Unit.name == "石井街道")).one()
        communities = list(s.scalars(select(Unit).where(Unit.parent_id == street.id)).all())[:6]
        handler = User(username="risk-handler", full_name="承办人", role=Role.HANDLER, unit_id=street.id)
        s.add(handler)
        s.flush()
        start = datetime(2026, 6, 1, 2, tzinfo=UTC)
        for i in range(40):  # background over the month
            c = communities[1 + i % 5]
            submit(
                s,
                data={
                    "channel": "web",
                    "content": f"反映路边垃圾和停车问题{i}",
                    "citizen_phone": f"1390000{i:04d}",
                    "category": OTHER[i % 2],
                    "street_code": street.code,
                    "community_code": c.code,
                    "created_at": (start + timedelta(hours=17 * i)).isoformat(),
                },
            )
        for i in range(8):  # one community, one problem, eight callers
            submit(
                s,
                data={
                    "channel": "hotline",
                    "content": f"工地夜间施工噪音扰民，学生无法休息，第{i}次反映",
                    "address": "石井街道鸿鹄路工地旁",
                    "citizen_phone": f"1380000{i:04d}",
                    "category": NOISE,
                    "street_code": street.code,
                    "community_code": communities[0].code,
                    "created_at": (start + timedelta(days=2 * i + 1)).isoformat(),
                },
            )
        _, handler_token = create_token(s, user_id=handler.id, name="t")
        hot_community = communities[0].name
    admin_client.handler = {"Authorization": f"Bearer {handler_token}"}
    admin_client.hot = hot_community
    return admin_client


def test_findings_list_and_open_a_proactive_order(client) -> None:
    r = client.get("/api/v1/findings", params={"period": "2026-06", "kind": "recurring", "with_orders": True})
    assert r.status_code == 200, r.text
    found = r.json()
    noise = [f for f in found if f["category"] == NOISE]
    assert len(noise) == 1 and noise[0]["count"] == 8 and noise[0]["q_value"] <= 0.05
    assert noise[0]["place"] == client.hot.removesuffix("居委会")
    # The places its orders' texts name (read for the finding's own orders only).
    assert noise[0]["detail"]["top_places"][:1] == ["鸿鹄路"], noise[0]["detail"]
    finding_id = noise[0]["id"]

    denied = client.post(f"/api/v1/findings/{finding_id}/open", params={"period": "2026-06"}, headers=client.handler)
    assert denied.status_code == 403

    opened = client.post(f"/api/v1/findings/{finding_id}/open", params={"period": "2026-06"})
    assert opened.status_code == 201, opened.text
    order = opened.json()
    assert order["channel"] == "grid" and order["appeal_type"] == "report"
    again = client.post(f"/api/v1/findings/{finding_id}/open", params={"period": "2026-06"})
    assert again.json()["id"] == order["id"]
    with session_scope() as s:
        row = s.get(Order, order["id"])
        assert row is not None and row.attributes["source"] == "risk"
        assert sorted(row.attributes["order_ids"]) == sorted(noise[0]["order_ids"])
        assert row.category is not None and row.category.path == NOISE
        actions = [e.action for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id == row.id))]
        assert actions[0] == "create"
        # The proactive order does not feed the statistics it came from.
        again_found = risk.findings(s, period=parse_period("2026-06"), kinds=["recurring"])
        assert [f.count for f in again_found if f.category == NOISE] == [8]

    assert client.post("/api/v1/findings/Fdeadbeef0000/open", params={"period": "2026-06"}).status_code == 404


def test_the_findings_list_is_answered_from_the_cache_and_names_a_bad_kind(client, monkeypatch) -> None:
    risk.clear_cache()
    computed: list[object] = []
    real = risk.findings

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        computed.append(kwargs.get("period"))
        return real(*args, **kwargs)

    monkeypatch.setattr(risk, "findings", counting)
    first = client.get("/api/v1/findings", params={"period": "2026-06", "kind": "recurring"})
    every = client.get("/api/v1/findings", params={"period": "2026-06"})
    assert first.status_code == every.status_code == 200
    assert len(computed) == 1  # one computation of every kind, for the scope and period
    assert first.json() == [f for f in every.json() if f["kind"] == "recurring"] != []
    bad = client.get("/api/v1/findings", params={"kind": ["recurring", "earthquake"]})
    assert bad.status_code == 422 and "earthquake" in bad.text, bad.text
    risk.clear_cache()


def test_graph_related_and_export(client) -> None:
    r = client.get("/api/v1/graph/related", params={"node": "噪音", "place": "石井街道", "period": "2026-06"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["matched"] == 8 and body["universe"] == 48
    # When the graph's orders were read, as the API's other times: UTC with Z.
    built = datetime.fromisoformat(body["built_at"])
    assert body["built_at"].endswith("Z") and datetime.now(UTC) - timedelta(minutes=10) < built <= datetime.now(UTC)
    assert "学生" in [i["name"] for i in body["items"]]
    assert client.get("/api/v1/graph/related", params={"node": "地铁"}).status_code == 404

    exported = client.get("/api/v1/graph/export", params={"format": "json", "period": "2026-06"})
    assert exported.status_code == 200
    data = exported.json()
    assert {"nodes", "links"} <= data.keys() and any(n["id"] == "keyword:噪音" for n in data["nodes"])
    assert data["graph"]["built_at"].endswith("Z")
    graphml = client.get("/api/v1/graph/export", params={"format": "graphml", "period": "2026-06"})
    assert graphml.status_code == 200 and "<graphml" in graphml.text
    assert 'attr.name="built_at"' in graphml.text
    assert client.get("/api/v1/graph/export", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_serving_process_computes_the_district_s_findings_before_anyone_asks(client) -> None:
    """``cityhub serve`` warms the findings up in the background (main._warm_up_findings): the one map's hotspots and
    the 风险预警 page of a district-wide reader are then answered from the cache."""
    from cityhub import main
    from cityhub.auth.scope import Scope

    risk.clear_cache()
    with session_scope() as s:
        assert not risk.has_cached_findings(s, scope=Scope(everything=True))
    main._warm_up_findings()
    with session_scope() as s:
        assert risk.has_cached_findings(s, scope=Scope(everything=True))
        assert risk.cached_findings(s, scope=Scope(everything=True)) == risk.findings(s, scope=None)
    risk.clear_cache()


def test_a_call_cancelled_as_invalid_is_no_report_of_a_recurring_problem(client) -> None:
    """作废 (a prank, a wrong number) is no one's problem: the 专报's 有效工单 left such calls out, the findings and the
    correlation graph counted them as reports. One of the eight noise calls cancelled, the finding counts seven and
    names seven orders; the cancelled one is in none of the graph's counts either."""
    from cityhub.analytics.correlation import load_facts
    from cityhub.workorders import service as orders

    with session_scope() as s:
        before = risk.findings(s, period=parse_period("2026-06"), kinds=["recurring"])
        [noise] = [f for f in before if f.category == NOISE]
        cancelled = sorted(noise.order_ids)[0]
        orders.act(s, order_id=cancelled, action="cancel", params={"reason": "恶意来电"})
    with session_scope() as s:
        after = risk.findings(s, period=parse_period("2026-06"), kinds=["recurring"])
        [noise] = [f for f in after if f.category == NOISE]
        assert noise.count == 7 and cancelled not in noise.order_ids
        start, end = parse_period("2026-06").bounds()
        facts = load_facts(s, start=start, end=end)
        assert len(facts) == 47 and cancelled not in {f.id for f in facts}
