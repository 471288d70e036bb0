"""The routes that answer a plain JSON array page it on request, on both backends: ``limit`` and ``offset`` give
the slice of the stated order, ``X-Total-Count`` the full count, ``Link`` the next and previous pages (followed to
the end they give the whole list), a bad ``limit`` or ``offset`` is a 422 naming it, and without them the whole
array comes as before.

The client acts as a district administrator (bearer token), who may read every one of these lists.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.analytics import risk
from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.dispatch.models import DispatchRule
from cityhub.dispatch.rules import RuleTier, TargetKind
from cityhub.monitoring.models import Alarm, AlarmEvent, AlarmRule, Sensor
from cityhub.org.models import Role, Unit, UnitTier, User

API = "/api/v1"


def _paged_like_the_whole(client: Any, path: str, whole: list[Any], headers: dict[str, str] | None = None) -> None:
    """``path`` (which may carry its own filters) answers ``whole`` without paging, and page by page the same."""
    sep = "&" if "?" in path else "?"
    n = len(whole)
    assert n >= 4, "a list long enough to have a first, a middle and a last page"
    plain = client.get(API + path, headers=headers)
    assert plain.status_code == 200, plain.text
    assert plain.json() == whole
    assert plain.headers["x-total-count"] == str(n) and "link" not in plain.headers

    middle = client.get(f"{API}{path}{sep}limit=2&offset=1", headers=headers)
    assert middle.status_code == 200, middle.text
    assert middle.json() == whole[1:3] and middle.headers["x-total-count"] == str(n)
    links = middle.links
    assert set(links) == ({"next", "prev"} if n > 3 else {"prev"})
    assert client.get(links["prev"]["url"], headers=headers).json() == whole[0:2]
    assert links["prev"]["url"].startswith("http") and "limit=2" in links["prev"]["url"]

    # Following rel="next" from the first page walks the whole list once, in order; the last page links no next.
    got: list[Any] = []
    url: str | None = f"{API}{path}{sep}limit=2"
    pages = 0
    while url:
        page = client.get(url, headers=headers)
        assert page.status_code == 200 and page.headers["x-total-count"] == str(n), page.text
        assert ("prev" in page.links) == (pages > 0)
        got += page.json()
        url = page.links.get("next", {}).get("url")
        pages += 1
    assert got == whole and pages == (n + 1) // 2

    rest = client.get(f"{API}{path}{sep}offset={n - 1}", headers=headers)  # no limit: the rest of the list
    assert rest.json() == whole[-1:] and rest.headers["x-total-count"] == str(n)
    # (a list paged by default, /sensors, links the page before it)
    assert set(rest.links) == ({"prev"} if path.startswith("/sensors") else set())
    beyond = client.get(f"{API}{path}{sep}limit=2&offset={n + 5}", headers=headers)
    assert beyond.status_code == 200 and beyond.json() == [] and beyond.headers["x-total-count"] == str(n)
    assert set(beyond.links) == {"prev"}

    for bad, field in (("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"), ("offset=-1", "offset")):
        refused = client.get(f"{API}{path}{sep}{bad}", headers=headers)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["details"]["errors"][0]["field"] == f"query.{field}", refused.text
        assert field in refused.json()["message"], refused.text


@pytest.fixture
def client(admin_client: Any) -> Any:
    with session_scope() as s:
        admin_client.district_id = s.scalars(select(User.unit_id).where(User.role == Role.ADMIN)).one()
    return admin_client


def _categories(client: Any, names: list[str], parent_id: int | None = None) -> list[dict[str, Any]]:
    made = []
    for name in names:
        response = client.post(f"{API}/categories", json={"name": name, "parent_id": parent_id})
        assert response.status_code == 201, response.text
        made.append(response.json())
    return made


def test_categories_by_code_with_their_filters_kept_in_the_links(client: Any) -> None:
    roots = _categories(client, ["城乡建设", "环境保护", "交通运输", "教育", "卫生健康"])
    children = _categories(client, ["住房", "市政", "园林", "供水", "燃气"], parent_id=roots[1]["id"])
    every = client.get(f"{API}/categories").json()
    assert [c["code"] for c in every] == sorted(c["code"] for c in roots + children)
    _paged_like_the_whole(client, "/categories", every)
    _paged_like_the_whole(client, f"/categories?parent_id={roots[1]['id']}", [c for c in every if c in children])
    # A link keeps the request's other parameters, and says the page's own.
    link = client.get(f"{API}/categories?level=2&limit=2").links["next"]["url"]
    assert "level=2" in link and "limit=2" in link and "offset=2" in link


def test_routing_rules_in_ranking_order_and_thresholds_by_category_code(client: Any) -> None:
    with session_scope() as s:
        for name, tier, priority in [
            ("区级兜底", RuleTier.DISTRICT, 10),
            ("部门", RuleTier.DEPARTMENT, 90),
            ("社区低", RuleTier.COMMUNITY, 10),
            ("街道", RuleTier.STREET, 50),
            ("社区高", RuleTier.COMMUNITY, 80),
            ("社区同级", RuleTier.COMMUNITY, 80),
        ]:
            s.add(
                DispatchRule(
                    name=name,
                    tier=tier,
                    priority=priority,
                    target_kind=TargetKind.UNIT,
                    target_unit_id=client.district_id,
                )
            )
    rules = client.get(f"{API}/dispatch/rules").json()
    assert [r["name"] for r in rules][:4] == ["社区高", "社区同级", "社区低", "街道"]
    assert {r["name"] for r in rules[4:]} == {"区级兜底", "部门"}  # department and district rank alike
    _paged_like_the_whole(client, "/dispatch/rules", rules)

    cats = _categories(client, ["甲", "乙", "丙", "丁", "戊"])
    for category, threshold in zip(reversed(cats), (0.5, 0.6, 0.7, 0.8, 0.9), strict=True):
        set_ = client.put(f"{API}/dispatch/thresholds/{category['id']}", json={"threshold": threshold})
        assert set_.status_code == 200, set_.text
    thresholds = client.get(f"{API}/dispatch/thresholds").json()
    assert [t["category_id"] for t in thresholds] == [c["id"] for c in cats]  # by code, not as set
    _paged_like_the_whole(client, "/dispatch/thresholds", thresholds)


def test_sensors_alarm_rules_and_an_alarms_trail(client: Any) -> None:
    t0 = datetime(2026, 7, 1, 8, tzinfo=UTC)
    with session_scope() as s:
        sensors = [
            Sensor(code=code, name=f"监测点{code}", kind=kind, metrics={"depth": "cm"})
            for code, kind in [(f"WL-0{i}", "waterlogging") for i in (5, 1, 4, 2, 3)] + [("RV-01", "river_level")]
        ]
        rules = [
            AlarmRule(name=f"积水{i}", sensor_kind="waterlogging", metric="depth", comparison=">", threshold=10.0 * i)
            for i in range(1, 6)
        ]
        s.add_all(sensors + rules)
        s.flush()
        alarm = Alarm(
            sensor_id=sensors[0].id,
            rule_id=rules[0].id,
            state="active",
            severity="warning",
            metric="depth",
            comparison=">",
            threshold=10.0,
            raised_at=t0,
            first_value=12.0,
            last_value=15.0,
            peak_value=15.0,
            last_at=t0,
        )
        s.add(alarm)
        s.flush()
        for i, action in enumerate(["raised", "order_opened", "escalated", "acknowledged", "cleared"]):
            s.add(AlarmEvent(alarm_id=alarm.id, action=action, actor="system", at=t0 + timedelta(minutes=i)))
        alarm_id = alarm.id
    listed = client.get(f"{API}/sensors").json()
    assert [x["code"] for x in listed] == ["RV-01", "WL-01", "WL-02", "WL-03", "WL-04", "WL-05"]
    _paged_like_the_whole(client, "/sensors", listed)
    _paged_like_the_whole(client, "/sensors?kind=waterlogging", listed[1:])
    with session_scope() as s:  # more than a page: without a limit, the sensors come 50 at a time, as they always did
        s.add_all(Sensor(code=f"ZZ-{i:02d}", name=f"监测点{i}", kind="waterlogging", metrics={}) for i in range(50))
    first = client.get(f"{API}/sensors")
    assert len(first.json()) == 50 and first.headers["X-Total-Count"] == "56"
    assert 'rel="next"' in first.headers["Link"] and "offset=50" in first.headers["Link"]

    alarm_rules = client.get(f"{API}/alarm-rules").json()
    assert [r["id"] for r in alarm_rules] == sorted(r["id"] for r in alarm_rules)
    _paged_like_the_whole(client, "/alarm-rules", alarm_rules)

    trail = client.get(f"{API}/alarms/{alarm_id}/events").json()
    assert [e["action"] for e in trail] == ["raised", "order_opened", "escalated", "acknowledged", "cleared"]
    _paged_like_the_whole(client, f"/alarms/{alarm_id}/events", trail)


def test_time_limit_rules_and_calendar_days(client: Any) -> None:
    cats = _categories(client, ["市容", "噪音"])
    for body in [
        {"category_id": cats[1]["id"], "urgency": "urgent", "accept_hours": 1, "finish_days": 1},
        {"category_id": cats[0]["id"], "accept_hours": 4, "finish_days": 5},
        {"accept_hours": 24, "finish_days": 10},
        {"category_id": cats[1]["id"], "accept_hours": 2, "finish_days": 3},
        {"urgency": "urgent", "accept_hours": 2, "finish_days": 2},
    ]:
        put = client.put(f"{API}/sla/rules", json=body)
        assert put.status_code == 200, put.text
    table = client.get(f"{API}/sla/rules").json()
    assert [(r["category_id"], r["urgency"]) for r in table][:2] == [(None, None), (None, "urgent")]
    _paged_like_the_whole(client, "/sla/rules", table)

    for day in ("2026-10-08", "2026-10-01", "2026-10-05", "2026-09-27", "2026-10-03"):
        workday = day in ("2026-09-27",)
        put = client.put(f"{API}/calendar/days/{day}", json={"is_workday": workday, "name": "国庆"})
        assert put.status_code == 200, put.text
    days = client.get(f"{API}/calendar/days").json()
    assert [d["day"] for d in days] == sorted(d["day"] for d in days) and len(days) == 5
    _paged_like_the_whole(client, "/calendar/days", days)
    _paged_like_the_whole(client, "/calendar/days?year=2026", days)
    assert client.get(f"{API}/calendar/days?year=2025&limit=2").headers["x-total-count"] == "0"


def test_an_orders_trail_is_paged_as_its_reader_reads_it(client: Any) -> None:
    """A citizen's pages and count are of what they read of their trail: staff's comments are neither in them nor
    counted."""
    with session_scope() as s:
        citizen = User(username="pg-cit", full_name="市民乙", role=Role.CITIZEN, phone="13812345678")
        s.add(citizen)
        s.flush()
        mine = {"Authorization": f"Bearer {create_token(s, user_id=citizen.id, name='t')[1]}"}
        unit = Unit(code="PG-D01", name="城管局", tier=UnitTier.DEPARTMENT, parent_id=client.district_id)
        s.add(unit)
        s.flush()
        unit_id = unit.id
    order = client.post(f"{API}/orders", json={"channel": "app", "content": "小区路灯不亮已经一周"}, headers=mine)
    assert order.status_code == 201, order.text
    url = f"{API}/orders/{order.json()['id']}"
    for action, body in (
        ("comment", {"text": "先核实位置"}),
        ("dispatch", {"unit_id": unit_id}),
        ("comment", {"text": "已联系"}),
        ("accept", {}),
        ("comment", {"text": "明天到场"}),
        ("reply", {"text": "已修复路灯"}),
    ):
        done = client.post(f"{url}/actions/{action}", json=body)
        assert done.status_code == 200, done.text
    staff = client.get(f"{url}/events").json()
    assert [e["action"] for e in staff].count("comment") == 3 and len(staff) == 7
    _paged_like_the_whole(client, f"/orders/{order.json()['id']}/events", staff)
    theirs = client.get(f"{url}/events", headers=mine).json()
    assert "comment" not in [e["action"] for e in theirs] and len(theirs) == 4
    _paged_like_the_whole(client, f"/orders/{order.json()['id']}/events", theirs, headers=mine)


def test_a_units_children_and_ones_own_tokens(client: Any) -> None:
    with session_scope() as s:
        for code in ("PG-S3", "PG-S1", "PG-S5", "PG-S2", "PG-S4"):
            s.add(Unit(code=code, name=f"街道{code}", tier=UnitTier.STREET, parent_id=client.district_id))
        admin = s.scalars(select(User).where(User.role == Role.ADMIN)).one()
        for i in range(4):
            create_token(s, user_id=admin.id, name=f"sync-{i}")
    children = client.get(f"{API}/units/{client.district_id}/children").json()
    assert [u["code"] for u in children] == ["PG-S1", "PG-S2", "PG-S3", "PG-S4", "PG-S5"]
    _paged_like_the_whole(client, f"/units/{client.district_id}/children", children)

    tokens = client.get(f"{API}/auth/tokens").json()
    assert [t["name"] for t in tokens] == ["test", "sync-0", "sync-1", "sync-2", "sync-3"]
    _paged_like_the_whole(client, "/auth/tokens", tokens)


def test_findings_are_paged_in_the_order_computed(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The findings are computed in Python (and kept): their list is paged as computed, recurring problems first,
    then rising trends, then anomalies, a ``kind`` filter applying before the page."""
    day = date(2026, 6, 30)

    def finding(kind: str, place: str) -> risk.Finding:
        return risk.Finding(
            kind=kind,
            place=place,
            place_level="street",
            category="环境保护/噪音",
            window_start=day - timedelta(days=7),
            window_end=day,
            statistic="count",
            value=5.0,
            count=5,
            expected=1.0,
            effect=5.0,
        )

    found = [finding(kind, place) for kind in risk.FINDING_KINDS for place in ("石井街道", "同和街道")]
    monkeypatch.setattr(risk, "cached_findings", lambda *a, **k: found)
    listed = client.get(f"{API}/findings").json()
    assert [(f["kind"], f["place"]) for f in listed] == [(f.kind, f.place) for f in found]
    _paged_like_the_whole(client, "/findings", listed)
    rising_and_anomalies = [f for f in listed if f["kind"] != "recurring"]
    _paged_like_the_whole(client, "/findings?kind=rising&kind=anomaly", rising_and_anomalies)
