"""The one map's API (``/api/v1/map``) over the real app on both backends: GeoJSON shape, data scope, masking of
what a caller's order views mask, server-side aggregation by zoom, the indicators, refusals of bad parameters.

The world: 白云区 (code 440111, no boundary of its own: the packaged DataV outline is its base), two streets — 景泰
with its community 飞鹅 (given a boundary) and 京溪 — a district leader (sees all, masked), a district dispatcher (sees
all, in clear), a handler of 景泰 (its street only) and a citizen.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app_helpers import shared_app
from cityhub.auth.service import create_token
from cityhub.db import reset_engine, session_scope, utcnow
from cityhub.intake.service import submit
from cityhub.onemap import registry, service
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Category, Order, SlaStatus

NAME, PHONE = "李雪梅", "13912345678"
FEIE = {
    "type": "Polygon",
    "coordinates": [[[113.27, 23.17], [113.29, 23.17], [113.29, 23.19], [113.27, 23.19], [113.27, 23.17]]],
}


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "false")
    reset_engine()
    service.clear_caches()
    with session_scope() as s:
        district = Unit(code="440111", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        jt = Unit(code="440111004", name="景泰街道", tier=UnitTier.STREET, parent_id=district.id)
        jx = Unit(code="440111010", name="京溪街道", tier=UnitTier.STREET, parent_id=district.id)
        s.add_all([jt, jx])
        s.flush()
        feie = Unit(code="440111004001", name="飞鹅社区", tier=UnitTier.COMMUNITY, parent_id=jt.id, boundary=FEIE)
        noise = Category(code="M1", name="噪音", level=1, path="噪音")
        road = Category(code="M2", name="道路", level=1, path="道路")
        s.add_all([feie, noise, road])
        s.flush()
        heads = {}
        for username, role, unit in (
            ("m-lead", Role.LEADER, district.id),
            ("m-disp", Role.DISPATCHER, district.id),
            ("m-jt", Role.HANDLER, jt.id),
            ("m-jx", Role.HANDLER, jx.id),
            ("m-cit", Role.CITIZEN, None),
        ):
            user = User(username=username, full_name=username, role=role, unit_id=unit)
            s.add(user)
            s.flush()
            heads[username] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}

        def order(street: str, community: str | None, lat: float | None, lng: float | None, **extra: Any) -> int:
            data = {
                "channel": "hotline",
                "title": extra.pop("title", "夜间施工噪音扰民"),
                "content": extra.pop("content", "晚上十一点还在施工，噪音很大"),
                "street_code": street,
                "community_code": community,
                "lat": lat,
                "lng": lng,
                "category_id": extra.pop("category_id", noise.id),
                **extra,
            }
            return submit(s, data=data, similar=False, defer_duplicates=True).order.id

        # 景泰 / 飞鹅: six reports of noise by six people; the first names the citizen in its title.
        in_feie = [
            order(
                "440111004",
                "440111004001",
                23.18 + i * 0.0011,
                113.28 + i * 0.0013,
                citizen_name=NAME if i == 0 else None,
                citizen_phone=PHONE if i == 0 else f"1380000000{i}",
                title=f"{NAME}反映三元里大道88号5栋夜间噪音" if i == 0 else f"飞鹅新村{i}巷夜间施工噪音",
            )
            for i in range(6)
        ]
        # 京溪: road problems, one overdue, one without a point; one more closed (not open, never on the layer).
        in_jx = [
            order("440111010", None, 23.19 + i * 0.001, 113.32 + i * 0.001, category_id=road.id, title=f"路面坑洼{i}")
            for i in range(3)
        ]
        no_point = order("440111010", None, None, None, category_id=road.id, title="路灯不亮")
        s.execute(update(Order).where(Order.id == in_jx[0]).values(sla_status=SlaStatus.OVERDUE))
        closed = order("440111010", None, 23.2, 113.33, category_id=road.id, title="已办结的问题")
        for action, params in (
            (Action.DISPATCH, {"unit_id": jx.id}),
            (Action.ACCEPT, {}),
            (Action.REPLY, {"text": "已修复"}),
        ):
            orders.act(s, order_id=closed, action=action, params=params)
        return {
            "district": district.id,
            "jt": jt.id,
            "jx": jx.id,
            "feie": feie.id,
            "noise": noise.id,
            "road": road.id,
            "feie_orders": in_feie,
            "jx_orders": in_jx,
            "no_point": no_point,
            "closed": closed,
            "heads": heads,
        }


@pytest.fixture
def client(world: dict[str, Any]) -> TestClient:
    return TestClient(shared_app(), raise_server_exceptions=False)


def _get(client: TestClient, world: dict[str, Any], who: str, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=world["heads"][who])
    assert response.status_code == 200, response.text
    return response.json()


def _collection(data: dict[str, Any]) -> list[dict[str, Any]]:
    assert data["type"] == "FeatureCollection" and isinstance(data["features"], list)
    for feature in data["features"]:
        assert feature["type"] == "Feature" and "properties" in feature
        assert feature["geometry"] is None or feature["geometry"]["type"] in {"Point", "Polygon", "MultiPolygon"}
    return data["features"]


def test_the_layer_list_names_the_registry_and_only_staff_may_read_it(client, world) -> None:
    listed = _get(client, world, "m-lead", "/api/v1/map/layers")["layers"]
    names = [layer["name"] for layer in listed]
    assert names[:4] == ["base", "units", "orders", "hotspots"]
    # The monitoring package provides its layers (cityhub.monitoring.onemap, in the registry's PLUGINS).
    monitoring = {layer["name"]: layer for layer in listed if layer["source"] == "monitoring"}
    assert set(monitoring) == {"sensors", "alarms"} and all(m["available"] for m in monitoring.values())
    assert all(layer["url"] is None for layer in listed if not layer["available"])
    missing = client.get("/api/v1/map/layers/nowhere", headers=world["heads"]["m-lead"])
    assert missing.status_code == 404 and "base, units, orders, hotspots" in missing.json()["message"]
    assert client.get("/api/v1/map/layers").status_code == 401
    assert client.get("/api/v1/map/layers/orders", headers=world["heads"]["m-cit"]).status_code == 403
    assert client.get("/api/v1/map/indicators", headers=world["heads"]["m-cit"]).status_code == 403


def test_the_base_is_the_packaged_district_outline_until_the_district_has_its_own(client, world) -> None:
    response = client.get("/api/v1/map/layers/base", headers=world["heads"]["m-jt"])
    assert response.headers["content-type"].startswith("application/geo+json")
    (outline,) = _collection(response.json())
    assert outline["geometry"]["type"] == "MultiPolygon" and outline["properties"]["own_boundary"] is False
    lng, lat = outline["geometry"]["coordinates"][0][0][0]
    assert 113.1 < lng < 113.6 and 23.1 < lat < 23.5  # Baiyun, GCJ-02
    with session_scope() as s:
        s.execute(update(Unit).where(Unit.id == world["district"]).values(boundary=FEIE))
    (own,) = _collection(_get(client, world, "m-jt", "/api/v1/map/layers/base"))
    assert own["geometry"] == FEIE and own["properties"]["own_boundary"] is True


def test_units_carry_their_counts_and_a_street_sees_only_its_own_area(client, world) -> None:
    units = {f["properties"]["name"]: f for f in _collection(_get(client, world, "m-lead", "/api/v1/map/layers/units"))}
    assert set(units) == {"景泰街道", "京溪街道", "飞鹅社区"}
    assert units["飞鹅社区"]["geometry"] == FEIE  # its own boundary
    jt = units["景泰街道"]
    assert jt["geometry"]["type"] == "Point"  # no boundary: the mean of its orders' points (six of them)
    lng, lat = jt["geometry"]["coordinates"]
    assert 113.28 < lng < 113.29 and 23.18 < lat < 23.19
    assert (jt["properties"]["open"], jt["properties"]["overdue"], jt["properties"]["today"]) == (6, 0, 6)
    jx = units["京溪街道"]["properties"]
    assert (jx["open"], jx["overdue"], jx["today"]) == (4, 1, 5)  # the closed one was received today too
    street = _collection(_get(client, world, "m-jt", "/api/v1/map/layers/units"))
    assert {f["properties"]["name"] for f in street} == {"景泰街道", "飞鹅社区"}


def test_orders_up_close_are_single_points_masked_as_the_callers_order_view(client, world) -> None:
    view = {"zoom": 16, "bbox": "113.2,23.1,113.4,23.3"}
    clear = _collection(_get(client, world, "m-disp", "/api/v1/map/layers/orders", **view))
    assert len(clear) == 9  # open with a point: 6 + 3; not the closed one, not the one without a point
    first = next(f for f in clear if f["properties"]["id"] == world["feie_orders"][0])
    assert NAME in first["properties"]["title"] and first["properties"]["masked"] is False
    assert first["geometry"]["coordinates"] == [113.28, 23.18]
    assert (
        first["properties"]["link"] == f"/orders/{world['feie_orders'][0]}"
        and first["properties"]["state"] == "received"
    )
    overdue = {f["properties"]["id"] for f in clear if f["properties"]["overdue"]}
    assert overdue == {world["jx_orders"][0]}

    masked = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/orders", **view))
    seen = next(f for f in masked if f["properties"]["id"] == world["feie_orders"][0])
    assert seen["properties"]["masked"] is True
    assert NAME not in seen["properties"]["title"] and "88号" not in seen["properties"]["title"]
    lead_api = client.get(f"/api/v1/orders/{world['feie_orders'][0]}", headers=world["heads"]["m-lead"]).json()
    assert seen["properties"]["title"] == lead_api["title"]  # exactly what the leader's order view shows
    assert seen["geometry"]["coordinates"] == [lead_api["lng"], lead_api["lat"]]
    for f in masked:
        lng, lat = f["geometry"]["coordinates"]
        assert round(lng, 2) == lng and round(lat, 2) == lat

    street = _collection(_get(client, world, "m-jt", "/api/v1/map/layers/orders", **view))
    assert {f["properties"]["id"] for f in street} == set(world["feie_orders"])


def test_orders_filter_by_view_category_state_and_time(client, world) -> None:
    def ids(**params: Any) -> set[int]:
        found = _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=16, **params)
        assert found["mode"] == "points"
        return {f["properties"]["id"] for f in _collection(found)}

    assert ids(bbox="113.31,23.18,113.34,23.2") == set(world["jx_orders"])
    assert ids(category_id=world["noise"]) == set(world["feie_orders"])
    assert ids(state="closed_resolved") == set() and ids(state="replied") == {world["closed"]}
    assert ids(since=(utcnow() + timedelta(hours=1)).isoformat()) == set()
    assert len(ids(since=(utcnow() - timedelta(hours=1)).isoformat())) == 9
    beyond = client.get(
        "/api/v1/map/layers/orders", params={"since": "0001-01-01T00:00:00+08:00"}, headers=world["heads"]["m-disp"]
    )
    assert beyond.status_code == 422 and beyond.json()["details"]["errors"][0]["field"] == "query.since"


def test_orders_at_district_zoom_are_counted_per_grid_cell_in_sql(client, world, monkeypatch) -> None:
    data = _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=10)
    cells = _collection(data)
    assert data["mode"] == "cells" and data["total"] == 9 and sum(c["properties"]["count"] for c in cells) == 9
    assert sum(c["properties"]["overdue"] for c in cells) == 1
    for cell in cells:
        west, south, east, north = cell["properties"]["bbox"]
        lng, lat = cell["geometry"]["coordinates"]
        assert west <= lng <= east and south <= lat <= north and cell["properties"]["cell"] is True
    finer = _collection(_get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=13))
    assert len(finer) >= len(cells) and sum(c["properties"]["count"] for c in finer) == 9
    # Each cell is named by the street most of its orders are in (the list reads 景泰街道一带, not 第 2 片).
    by_street: dict[str, int] = {}
    for cell in finer:
        assert cell["properties"]["streets"] == 1
        by_street[cell["properties"]["street"]] = (
            by_street.get(cell["properties"]["street"], 0) + cell["properties"]["count"]
        )
    assert by_street == {"景泰街道": 6, "京溪街道": 3}
    (whole,) = _collection(_get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=5))
    assert whole["properties"]["count"] == 9 and whole["properties"]["overdue"] == 1
    assert (whole["properties"]["street"], whole["properties"]["streets"]) == ("景泰街道", 2)
    # Too many orders in view even up close: cells again rather than thousands of markers.
    monkeypatch.setattr(service, "MAX_POINTS", 3)
    crowded = _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=17)
    assert crowded["mode"] == "cells" and crowded["total"] == 9
    # A masked caller's cells stand at two decimals, as each masked order's point does.
    for cell in _collection(_get(client, world, "m-lead", "/api/v1/map/layers/orders", zoom=15)):
        lng, lat = cell["geometry"]["coordinates"]
        assert round(lng, 2) == lng and round(lat, 2) == lat
    street = _get(client, world, "m-jx", "/api/v1/map/layers/orders", zoom=10)
    assert street["total"] == 3


def test_the_cells_of_a_view_are_counted_once_for_the_polls_of_every_screen(client, world) -> None:
    """A 30-second poll of the same view and scope reads the cells counted within COUNTS_SECONDS; another scope or
    filter counts its own."""
    from sqlalchemy import event

    from cityhub.db import get_engine

    scans: list[str] = []

    def capture(_conn, _cursor, statement, _parameters, _context, _many):  # type: ignore[no-untyped-def]
        if "gx" in statement:
            scans.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        first = _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=10)
        assert _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=10) == first
        assert len(scans) == 1
        assert _get(client, world, "m-jx", "/api/v1/map/layers/orders", zoom=10)["total"] == 3  # its own scope
        _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=10, state="received")
        assert len(scans) == 3
        service.clear_caches()
        assert _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=10) == first
        assert len(scans) == 4
    finally:
        event.remove(engine, "before_cursor_execute", capture)


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"bbox": "113.2,23.1,113.4"}, "bbox", "four numbers"),
        ({"bbox": "a,b,c,d"}, "bbox", "four numbers"),
        ({"bbox": "113.4,23.1,113.2,23.3"}, "bbox", "west < east"),
        ({"bbox": "113.2,23.1,113.4,nan"}, "bbox", "finite"),
        ({"zoom": "30"}, "query.zoom", "less than or equal to 22"),
        ({"zoom": "near"}, "query.zoom", "integer"),
        ({"state": "lost"}, "query.state.0", "received"),
        ({"since": "2026-12-01T00:00:00"}, "since", "time zone"),
        ({"category_id": "0"}, "query.category_id", "greater than or equal to 1"),
    ],
)
def test_bad_parameters_answer_422_naming_the_field(client, world, params, field, words) -> None:
    response = client.get("/api/v1/map/layers/orders", params=params, headers=world["heads"]["m-lead"])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    fields = [body["details"].get("field")] + [e["field"] for e in body["details"].get("errors", [])]
    assert field in fields and words in response.text


def test_indicators_are_the_scoped_counts_and_the_assessment_on_time_rate(client, world) -> None:
    def figures(who: str) -> dict[str, Any]:
        data = _get(client, world, who, "/api/v1/map/indicators")
        return {i["name"]: i for i in data["indicators"]}

    district = figures("m-lead")
    assert [district[n]["value"] for n in ("orders_today", "open", "overdue")] == [11, 10, 1]
    # The one completed order was replied at once: the assessment's on-time completion counts it, 1 of 1.
    assert district["on_time_rate"]["value"] == 1.0 and district["on_time_rate"]["detail"] == "计入 1 件，按时 1 件"
    assert district["on_time_rate"]["format"] == "percent"
    assert district["congestion"]["available"] is True and district["congestion"]["value"] is None  # no road segments
    assert district["active_alarms"]["value"] == 0 and district["active_alarms"]["level"] == "ok"
    assert district["air_quality"]["available"] is True and district["air_quality"]["value"] is None  # no stations
    jt = figures("m-jt")
    assert [jt[n]["value"] for n in ("orders_today", "open", "overdue")] == [6, 6, 0]
    assert jt["on_time_rate"]["value"] is None  # 景泰 replied nothing
    jx = figures("m-jx")
    assert [jx[n]["value"] for n in ("orders_today", "open", "overdue")] == [5, 4, 1]
    assert jx["on_time_rate"]["value"] == 1.0


def test_hotspots_place_the_risk_findings_at_their_unit(client, world) -> None:
    # Many road orders in another community make six noise reports in 飞鹅 more than chance.
    with session_scope() as s:
        s.add(Unit(code="440111010001", name="京溪社区", tier=UnitTier.COMMUNITY, parent_id=world["jx"]))
        s.flush()
        for i in range(40):
            submit(
                s,
                data={
                    "channel": "hotline",
                    "title": f"京溪道路破损{i}",
                    "content": f"京溪某路段第{i}处路面破损",
                    "street_code": "440111010",
                    "community_code": "440111010001",
                    "category_id": world["road"],
                    "citizen_phone": f"1370000{i:04d}",
                },
                similar=False,
                defer_duplicates=True,
            )
    service.clear_caches()
    spots = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/hotspots"))
    recurring = [f for f in spots if f["properties"].get("kind") == "recurring"]
    assert recurring, spots
    feie = next(f for f in recurring if f["properties"]["unit_id"] == world["feie"])
    assert feie["properties"]["title"] == "噪音" and feie["properties"]["count"] == 6
    assert feie["properties"]["heat"] > 1 and feie["properties"]["place"].startswith("飞鹅")
    lng, lat = feie["geometry"]["coordinates"]
    assert 113.27 <= lng <= 113.29 and 23.17 <= lat <= 23.19  # inside 飞鹅's boundary
    # The popup's line in the reader's language, as the 风险预警 pages word a finding: the place is data.
    assert feie["properties"]["summary"].startswith("飞鹅") and "6 人次反映" in feie["properties"]["summary"]
    # its figure says what it is — times what was expected — not a topic's 热度
    assert feie["properties"]["heat_text"] == f"为预期的 {feie['properties']['heat']:.1f} 倍"
    client.cookies.set("cityhub_lang", "en")
    english = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/hotspots"))
    client.cookies.delete("cityhub_lang")
    summary = next(f for f in english if f["properties"].get("id") == feie["properties"]["id"])["properties"]["summary"]
    # the community in its pinyin name, as English pages name a place without an English name
    assert summary.startswith("Fei'e Community") and " to " in summary and "6 callers, where about " in summary, summary
    ratio = next(f for f in english if f["properties"].get("id") == feie["properties"]["id"])["properties"]["heat_text"]
    assert ratio.endswith("× expected"), ratio
    assert "人次" not in summary and "反复出现" not in summary and "至" not in summary
    figures = {i["name"]: i["value"] for i in _get(client, world, "m-lead", "/api/v1/map/indicators")["indicators"]}
    assert figures["active_hotspots"] == len(spots)
    # 京溪's handler sees no finding of 景泰's community.
    service.clear_caches()
    others = _collection(_get(client, world, "m-jx", "/api/v1/map/layers/hotspots"))
    assert all(f["properties"].get("unit_id") != world["feie"] for f in others)


def test_a_layer_registered_by_another_package_is_served_and_listed(client, world) -> None:
    def sensors(ctx: registry.MapContext) -> dict[str, Any]:
        point = {"type": "Point", "coordinates": [113.3, 23.2]}
        return service.collection(
            [{"type": "Feature", "geometry": point, "properties": {"title": ctx.principal.username}}]
        )

    original = registry.layer("sensors")
    assert original is not None and original.source == "monitoring"
    registry.register_layer(registry.Layer("sensors", "map.layer.sensors", sensors, source="monitoring"))
    try:
        listed = {x["name"]: x for x in _get(client, world, "m-jt", "/api/v1/map/layers")["layers"]}
        assert listed["sensors"]["available"] is True and listed["sensors"]["url"] == "/api/v1/map/layers/sensors"
        (feature,) = _collection(_get(client, world, "m-jt", "/api/v1/map/layers/sensors"))
        assert feature["properties"]["title"] == "m-jt"
    finally:
        registry.register_layer(original)


def test_sensors_alarms_and_the_monitors_figures_are_on_the_map_in_scope(client, world) -> None:
    """监测预警 on the one map: a waterlogging point in 景泰 whose readings cross its rule is drawn with its latest
    depth, its alarm leads to the order it opened, the air and water stations give the panel's figures; 京溪's
    handler sees none of 景泰's."""
    from datetime import UTC, datetime

    from cityhub.monitoring import service as monitoring
    from cityhub.monitoring.schemas import RuleCreate, SensorCreate

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with session_scope() as s:
        for code, kind, metric, unit, lat, lng, street in (
            ("WL-JT", "waterlogging", "depth", "cm", 23.181, 113.281, "440111004"),
            ("AQ-JT", "air_quality", "pm25", "μg/m³", 23.182, 113.282, "440111004"),
            ("WQ-JX", "water_quality", "do", "mg/L", 23.191, 113.321, "440111010"),
            ("TR-JT", "traffic", "tpi", "", 23.183, 113.283, "440111004"),
            ("TR-JX", "traffic", "tpi", "", 23.192, 113.322, "440111010"),
        ):
            monitoring.create_sensor(
                s,
                data=SensorCreate(
                    code=code,
                    name=f"{code} 监测点",
                    kind=kind,
                    metrics={metric: unit},
                    lat=lat,
                    lng=lng,
                    unit_code=street,
                ),
            )
        monitoring.create_rule(
            s,
            data=RuleCreate.model_validate(
                {
                    "name": "积水超过 20 厘米",
                    "sensor_kind": "waterlogging",
                    "metric": "depth",
                    "comparison": ">",
                    "threshold": 20,
                    "clear_threshold": 10,
                    "duration_s": 0,
                    "severity": "critical",
                }
            ),
        )
        readings = [
            {
                "sensor_code": "WL-JT",
                "metric": "depth",
                "measured_at": (start + timedelta(minutes=m)).isoformat(),
                "value": v,
            }
            for m, v in ((0, 5), (10, 25), (20, 32))
        ]
        readings += [{"sensor_code": "AQ-JT", "metric": "pm25", "measured_at": start.isoformat(), "value": 82}]
        readings += [{"sensor_code": "WQ-JX", "metric": "do", "measured_at": start.isoformat(), "value": 6.4}]
        # Two road segments, their latest index counting: 景泰's jams (7.1 after 3.0), 京溪's flows (2.3).
        readings += [
            {"sensor_code": "TR-JT", "measured_at": (start + timedelta(minutes=m)).isoformat(), "value": v}
            for m, v in ((0, 3.0), (10, 7.1))
        ]
        readings += [{"sensor_code": "TR-JX", "measured_at": start.isoformat(), "value": 2.3}]
        result = monitoring.ingest(s, items=readings)
        assert result.alarms_raised == 1 and result.orders_opened == 1

    sensors = {
        f["properties"]["code"]: f for f in _collection(_get(client, world, "m-lead", "/api/v1/map/layers/sensors"))
    }
    assert set(sensors) == {"WL-JT", "AQ-JT", "WQ-JX", "TR-JT", "TR-JX"}
    flooded = sensors["WL-JT"]["properties"]
    # The popups' text in the reader's language: the metric by its name, no English words in a Chinese map.
    assert flooded["alarm"] is True and flooded["kind"] == "waterlogging"
    assert re.fullmatch(r"积水深度 32cm（\d\d-\d\d \d\d:\d\d）", flooded["summary"]), flooded["summary"]
    assert sensors["WL-JT"]["geometry"]["coordinates"] == [113.281, 23.181]
    # The water goes down to 14 cm: under the limit, not yet past the clear threshold (10), so the alarm stays open.
    # Its popup says the depth now (it said "32 > 20", the last reading past the limit), the limit with its sign and
    # unit, and who has the order it opened.
    with session_scope() as s:
        later = {"sensor_code": "WL-JT", "measured_at": (start + timedelta(minutes=30)).isoformat(), "value": 14}
        assert monitoring.ingest(s, items=[later]).alarms_cleared == 0
    (alarm,) = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/alarms"))
    props = alarm["properties"]
    assert props["severity"] == "critical" and props["link"].startswith("/orders/") and props["link_kind"] == "order"
    summary = props["summary"]
    when, number = r"\d\d-\d\d \d\d:\d\d", r"BY[\d-]+"
    pattern = rf"积水深度 现为 14cm（限值 > 20cm；峰值 32，共 2 次，{when} 起）；工单 {number}：已派单 · 景泰街道"
    assert re.fullmatch(pattern, summary), summary
    client.cookies.set("cityhub_lang", "en")  # the page's language switch
    english = _get(client, world, "m-lead", "/api/v1/map/layers/alarms")["features"][0]["properties"]
    client.cookies.delete("cityhub_lang")
    assert english["summary"].startswith("Water depth now 14cm (limit > 20cm; peak 32, ×2, since ")
    assert re.search(r"; order BY[\d-]+: Dispatched · ", english["summary"]), english["summary"]
    figures = {i["name"]: i for i in _get(client, world, "m-lead", "/api/v1/map/indicators")["indicators"]}
    assert figures["active_alarms"]["value"] == 1 and figures["active_alarms"]["level"] == "alert"
    assert figures["active_alarms"]["apart"] == 0  # no sensor gone silent: no silence alarm beside it
    assert figures["air_quality"]["value"] == 82.0 and figures["air_quality"]["level"] == "alert"  # above 75
    assert figures["water_quality"]["value"] == 6.4 and figures["water_quality"]["level"] == "ok"  # class III
    # Traffic: the mean of the segments' latest index, (7.1 + 2.3) / 2 = 4.7 — lightly congested.
    assert (figures["congestion"]["value"], figures["congestion"]["level"]) == (4.7, "warn")
    # Said in words with what the figure is the mean of (TPI · 2 before: an abbreviation and a bare count).
    assert figures["congestion"]["detail"] == "轻度拥堵 · 2 个路段的均值（0–10，越高越堵）"
    assert figures["congestion"]["link"] == "/monitoring?kind=traffic"
    assert figures["air_quality"]["detail"] == "1 个站点的 PM2.5 均值"
    assert figures["water_quality"]["detail"] == "1 个站点的溶解氧均值"
    client.cookies.set("cityhub_lang", "en")
    english = {i["name"]: i for i in _get(client, world, "m-lead", "/api/v1/map/indicators")["indicators"]}
    client.cookies.delete("cityhub_lang")
    assert english["congestion"]["detail"] == "slow · mean of 2 road segments, 0–10, higher is slower"
    assert english["water_quality"]["detail"] == "dissolved oxygen, mean of 1 station"

    # 京溪's handler: its own water station only, no alarm of 景泰's; a view elsewhere draws nothing.
    mine = _collection(_get(client, world, "m-jx", "/api/v1/map/layers/sensors"))
    assert sorted(f["properties"]["code"] for f in mine) == ["TR-JX", "WQ-JX"]
    assert _collection(_get(client, world, "m-jx", "/api/v1/map/layers/alarms")) == []
    jx = {i["name"]: i for i in _get(client, world, "m-jx", "/api/v1/map/indicators")["indicators"]}
    assert jx["active_alarms"]["value"] == 0 and jx["air_quality"]["value"] is None
    assert (jx["congestion"]["value"], jx["congestion"]["level"]) == (2.3, "ok")
    far = _get(client, world, "m-lead", "/api/v1/map/layers/sensors", bbox="113.0,22.0,113.1,22.1")
    assert _collection(far) == []

    # Worst first: a later, milder alarm (a jam's 提示) comes after the flooding's 严重 one.
    with session_scope() as s:
        monitoring.create_rule(
            s,
            data=RuleCreate(
                name="拥堵", sensor_kind="traffic", metric="tpi", comparison=">", threshold=5, severity="info"
            ),
        )
        later = (start + timedelta(minutes=40)).isoformat()
        assert (
            monitoring.ingest(s, items=[{"sensor_code": "TR-JT", "measured_at": later, "value": 7.5}]).alarms_raised
            == 1
        )
    layer = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/alarms"))
    assert [f["properties"]["severity"] for f in layer] == ["critical", "info"]


def test_a_cameras_confidence_reads_in_percent_on_the_map_as_on_the_pages(client, world) -> None:
    """A detection's popups said 0.93 and 峰值 0.94 beside an order saying 置信度 94%."""
    from datetime import UTC, datetime

    from cityhub.monitoring import service as monitoring
    from cityhub.monitoring.schemas import RuleCreate, SensorCreate

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with session_scope() as s:
        camera = SensorCreate(
            code="CAM-JT",
            name="景泰市场摄像头",
            kind="video_ai",
            metrics={"garbage_exposed": ""},
            lat=23.181,
            lng=113.281,
            unit_code="440111004",
        )
        monitoring.create_sensor(s, data=camera)
        rule = RuleCreate(
            name="暴露垃圾", sensor_kind="video_ai", metric="garbage_exposed", comparison=">=", threshold=0.8
        )
        monitoring.create_rule(s, data=rule)
        frames = [
            {"sensor_code": "CAM-JT", "measured_at": (start + timedelta(minutes=m)).isoformat(), "value": v}
            for m, v in ((0, 0.94), (1, 0.93))
        ]
        assert monitoring.ingest(s, items=frames).alarms_raised == 1
    (sensor,) = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/sensors"))
    assert re.fullmatch(r"暴露垃圾 93%（\d\d-\d\d \d\d:\d\d）", sensor["properties"]["summary"]), sensor
    (alarm,) = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/alarms"))
    summary = alarm["properties"]["summary"]
    assert summary.startswith("暴露垃圾 现为 93%（限值 ≥ 80%；峰值 94%，共 2 次，"), summary


def test_the_map_counts_as_overdue_exactly_the_orders_the_lists_overdue_criterion_lists(client, world) -> None:
    """超期 is one definition (``models.OVERDUE_NOW_SQL``): open and past the limit now. An order returned (退单)
    after its limit ran out is still open and late: on the map's counts, cells and points as in ``/orders?overdue=1``;
    one replied after its limit, closed late, is on neither, even when the map is asked for replied orders."""
    from cityhub.workorders.scheduled import sla_sweep

    with session_scope() as s:
        late_return, late_reply = world["jx_orders"][1], world["closed"]
        orders.act(s, order_id=late_return, action=Action.DISPATCH, params={"unit_id": world["jx"]})
        s.execute(update(Order).where(Order.id == late_return).values(due_at=utcnow() - timedelta(hours=1)))
        assert sla_sweep(s)  # the sweep marks it overdue, as it would at its limit
        orders.act(s, order_id=late_return, action=Action.RETURN, params={"reason": "不属于本单位职责"})
        # Replied after its limit: the status it was closed with stays 超期 (the review's 曾超期).
        s.execute(update(Order).where(Order.id == late_reply).values(sla_status=SlaStatus.OVERDUE))
    listed = client.get(
        "/api/v1/orders", params={"overdue": "true", "limit": 100}, headers=world["heads"]["m-disp"]
    ).json()
    listed_ids = {o["id"] for o in listed["items"]}
    assert listed_ids == {world["jx_orders"][0], late_return}
    service.clear_caches()
    figures = {i["name"]: i for i in _get(client, world, "m-disp", "/api/v1/map/indicators")["indicators"]}
    assert figures["overdue"]["value"] == len(listed_ids)
    units = {
        f["properties"]["unit_id"]: f["properties"]
        for f in _collection(_get(client, world, "m-disp", "/api/v1/map/layers/units"))
    }
    assert units[world["jx"]]["overdue"] == 2
    points = _collection(_get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=16))
    assert {f["properties"]["id"] for f in points if f["properties"]["overdue"]} == listed_ids
    cells = _collection(_get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=10))
    assert sum(c["properties"]["overdue"] for c in cells) == 2
    # Asked for the replied orders, the map shows the late-replied one, not as overdue now, as the list does.
    replied = _get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=16, state="replied")
    assert [(f["properties"]["id"], f["properties"]["overdue"]) for f in _collection(replied)] == [(late_reply, False)]
    far = _collection(_get(client, world, "m-disp", "/api/v1/map/layers/orders", zoom=10, state="replied"))
    assert sum(c["properties"]["overdue"] for c in far) == 0
    none = client.get(
        "/api/v1/orders", params={"overdue": "true", "state": "replied"}, headers=world["heads"]["m-disp"]
    ).json()
    assert none["items"] == []


def test_a_units_name_on_the_map_is_in_the_readers_language_where_it_has_one(client, world) -> None:
    """``name`` stays the Chinese name of record; ``name_shown`` — what the map writes — is the English name for an
    English reader where the unit has one (景泰街道 here), else a place's name romanised (``org.placenames``)."""
    with session_scope() as s:
        s.execute(update(Unit).where(Unit.id == world["jt"]).values(name_en="Jingtai Subdistrict"))
    client.cookies.set("cityhub_lang", "en")
    shown = {
        f["properties"]["name"]: f["properties"]["name_shown"]
        for f in _collection(_get(client, world, "m-lead", "/api/v1/map/layers/units"))
    }
    client.cookies.delete("cityhub_lang")
    assert shown == {"景泰街道": "Jingtai Subdistrict", "京溪街道": "Jingxi Subdistrict", "飞鹅社区": "Fei'e Community"}
    chinese = _collection(_get(client, world, "m-lead", "/api/v1/map/layers/units"))
    assert {f["properties"]["name_shown"] for f in chinese} == {"景泰街道", "京溪街道", "飞鹅社区"}
