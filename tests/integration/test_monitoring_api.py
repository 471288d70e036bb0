"""The monitoring API over the real app on both backends: sensors and rules (admin), readings pushed with an API
key of scope sensors:write (batch: every rejected reading by index, the good ones kept), alarms listed in the
caller's area, acknowledged and cleared by permitted roles; 4xx with messages for bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app_helpers import shared_app
from cityhub.auth.service import create_token
from cityhub.db import reset_engine, session_scope
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.sharing import service as sharing
from cityhub.workorders import service as orders

API = "/api/v1"
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1], [113.0, 23.0]]],
}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@dataclass
class Env:
    client: TestClient
    units: dict[str, int]
    headers: dict[str, dict[str, str]]

    def call(self, method: str, path: str, who: str = "adm", **kw: Any) -> Any:
        return self.client.request(method, API + path, headers=self.headers.get(who, {}), **kw)


@pytest.fixture
def env(app_db: str) -> Any:
    reset_engine()
    with session_scope() as s:
        units: dict[str, int] = {}
        for code, name, tier, parent, boundary in [
            ("MA-QU", "青禾区", UnitTier.DISTRICT, None, None),
            ("MA-S1", "稻香街道", UnitTier.STREET, "MA-QU", None),
            ("MA-C1", "桂花社区居委会", UnitTier.COMMUNITY, "MA-S1", SQUARE),
            ("MA-S2", "麦田街道", UnitTier.STREET, "MA-QU", None),
        ]:
            unit = Unit(code=code, name=name, tier=tier, parent_id=units.get(parent or ""), boundary=boundary)
            s.add(unit)
            s.flush()
            units[code] = unit.id
        headers: dict[str, dict[str, str]] = {}
        for name, role, unit_code in [
            ("adm", Role.ADMIN, "MA-QU"),
            ("dsp", Role.DISPATCHER, "MA-S1"),  # the street where the sensor stands
            ("far", Role.DISPATCHER, "MA-S2"),  # another street
            ("ldr", Role.LEADER, "MA-QU"),
            ("cit", Role.CITIZEN, None),
        ]:
            user = User(username=f"ma-{name}", full_name=name, role=role, unit_id=units.get(unit_code or ""))
            s.add(user)
            s.flush()
            headers[name] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}
        headers["key"] = {"X-API-Key": sharing.create_key(s, client_name="iot-platform", scopes="sensors:write")[1]}
        headers["reader"] = {"X-API-Key": sharing.create_key(s, client_name="dashboard", scopes="sharing:read")[1]}
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        yield Env(client, units, headers)


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["message"])


SENSOR = {
    "code": "WL-API-1",
    "name": "桂花路隧道积水监测点",
    "kind": "waterlogging",
    "metrics": {"depth": "cm"},
    "lat": 23.05,
    "lng": 113.05,
    "address": "桂花路隧道口",
}
RULE = {
    "name": "积水超过 20 厘米",
    "sensor_kind": "waterlogging",
    "metric": "depth",
    "comparison": ">",
    "threshold": 20,
    "clear_threshold": 10,
    "severity": "critical",
}


def _reading(minutes: int, value: Any, **extra: Any) -> dict[str, Any]:
    return {"measured_at": (T0 + timedelta(minutes=minutes)).isoformat(), "value": value, **extra}


def test_sensors_and_rules_are_managed_by_administrators_with_clear_errors(env: Env) -> None:
    assert env.call("POST", "/sensors", "dsp", json=SENSOR).status_code == 403
    assert env.client.post(API + "/sensors", json=SENSOR).status_code == 401
    created = env.call("POST", "/sensors", json=SENSOR)
    assert created.status_code == 201, created.text
    assert created.json()["unit_id"] == env.units["MA-C1"] and created.json()["street_id"] == env.units["MA-S1"]
    assert "taken" in _error(env.call("POST", "/sensors", json=SENSOR), 409)
    # A position half given is refused at its field (it named the body).
    half = env.call("POST", "/sensors", json={**{k: v for k, v in SENSOR.items() if k != "lng"}, "code": "HALF"})
    assert half.status_code == 422 and [e["field"] for e in half.json()["details"]["errors"]] == ["lng"], half.text
    bad = env.call("POST", "/sensors", json={**SENSOR, "code": "x y", "kind": "volcano", "metrics": {}})
    assert bad.status_code == 422 and {"code", "kind", "metrics"} <= {
        e["field"].split(".")[-1] for e in bad.json()["details"]["errors"]
    }
    assert "unknown unit code" in _error(
        env.call("POST", "/sensors", json={**SENSOR, "code": "B", "unit_code": "?"}), 422
    )

    assert env.call("POST", "/alarm-rules", "dsp", json=RULE).status_code == 403
    assert "exactly one of sensor_kind and sensor_code" in _error(
        env.call("POST", "/alarm-rules", json={**RULE, "sensor_code": "WL-API-1"}), 422
    )
    wrong_side = env.call("POST", "/alarm-rules", json={**RULE, "clear_threshold": 30})
    assert "clear threshold" in _error(wrong_side, 422)
    # Named as PATCH names it (it said "(body)"), whatever the rule's target.
    assert [e["field"] for e in wrong_side.json()["details"]["errors"]] == ["clear_threshold"]
    assert "unknown category" in _error(env.call("POST", "/alarm-rules", json={**RULE, "category": "不存在"}), 422)
    ghost = env.call("POST", "/alarm-rules", json={**RULE, "sensor_kind": None, "sensor_code": "GHOST"})
    assert ghost.status_code == 422 and ghost.json()["details"] == {"field": "sensor_code"}, ghost.text
    rule = env.call("POST", "/alarm-rules", json=RULE)
    assert rule.status_code == 201, rule.text
    changed = env.call("PATCH", f"/alarm-rules/{rule.json()['id']}", json={"duration_s": 300})
    assert changed.status_code == 200 and changed.json()["duration_s"] == 300
    assert env.call("PATCH", "/alarm-rules/999999", json={"duration_s": 1}).status_code == 404
    assert [r["name"] for r in env.call("GET", "/alarm-rules", "dsp").json()] == [RULE["name"]]
    assert env.call("GET", "/alarm-rules", "cit").status_code == 403
    # A category path as long as a path may be (three names of 80 characters) is kept on both backends.
    parent = None
    for level in "甲乙丙":
        made = env.call("POST", "/categories", json={"name": level * 80, "parent_id": parent})
        assert made.status_code == 201, made.text
        parent = made.json()["id"]
    deep = "/".join(level * 80 for level in "甲乙丙")
    long_rule = env.call("POST", "/alarm-rules", json={**RULE, "name": "长类别", "category": deep})
    assert long_rule.status_code == 201, long_rule.text
    assert long_rule.json()["category"] == deep
    blank = env.call("POST", "/alarm-rules", json={**RULE, "name": "无类别", "category": "  "})
    assert blank.status_code == 201 and blank.json()["category"] is None, blank.text  # blank: no category


def test_readings_with_an_api_key_raise_an_alarm_that_opens_an_order_and_staff_handle_it(env: Env) -> None:
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    assert env.call("POST", "/alarm-rules", json=RULE).status_code == 201
    body = {"readings": [_reading(0, 5), _reading(5, 25), _reading(10, 30)]}
    assert env.call("POST", "/sensors/WL-API-1/readings", "reader", json=body).status_code == 403  # wrong scope
    assert env.call("POST", "/sensors/WL-API-1/readings", "dsp", json=body).status_code == 403  # not a manager
    assert env.call("POST", "/sensors/NOPE/readings", "key", json=body).status_code == 404
    pushed = env.call("POST", "/sensors/WL-API-1/readings", "key", json=body)
    assert pushed.status_code == 200, pushed.text
    assert pushed.json() | {"rejected": []} == {
        "received": 3,
        "stored": 3,
        "duplicates": 0,
        "late": 0,
        "rejected": [],
        "alarms_raised": 1,
        "alarms_repeated": 1,
        "alarms_cleared": 0,
        "orders_opened": 1,
        "alarms_reopened": 0,
        "alarms_joined": 0,
    }
    # Sent again (a device retrying): nothing new.
    again = env.call("POST", "/sensors/WL-API-1/readings", "key", json=body).json()
    assert (again["stored"], again["duplicates"], again["alarms_raised"]) == (0, 3, 0)
    # Another value for a time already read is no retry: refused by index, the stored value kept.
    other = {"readings": [_reading(0, 5), _reading(5, 99), _reading(2, 7), _reading(2, 8)]}  # 2 min: late
    told = env.call("POST", "/sensors/WL-API-1/readings", "key", json=other).json()
    assert (told["stored"], told["duplicates"]) == (1, 1)
    assert [(r["index"], r["field"]) for r in told["rejected"]] == [(1, "value"), (3, "value")]
    assert (
        "value 25 is stored" in told["rejected"][0]["message"]
        and "reading 2 of this batch" in told["rejected"][1]["message"]
    )
    # Each call of the client is counted, as the data-sharing API's are (the count once waited for the SQLite write
    # lock its own request still held, and was lost after 30 s).
    from cityhub.sharing import service as sharing

    with session_scope() as s:
        counted = [r for r in sharing.call_stats(s) if r["endpoint"] == "POST /api/v1/sensors/{code}/readings"]
    by_client = {r["client"]: (r["calls"], r["errors"]) for r in counted}
    assert sorted(by_client.values()) == [(1, 1), (4, 1)]  # the reader's 403; the writer's 404 and three pushes

    listed = env.call("GET", "/alarms?active=true", "dsp").json()["items"]
    assert len(listed) == 1 and listed[0]["sensor_code"] == "WL-API-1" and listed[0]["count"] == 2
    alarm = listed[0]
    assert alarm["order_number"] and alarm["severity"] == "critical"
    assert env.call("GET", "/alarms", "far").json()["items"] == []  # another street's dispatcher
    assert env.call("GET", f"/alarms/{alarm['id']}", "far").status_code == 404
    assert env.call("GET", "/alarms", "cit").status_code == 403
    assert env.call("GET", "/sensors", "far").json() == []
    assert env.call("GET", "/sensors/WL-API-1", "far").status_code == 404
    latest = env.call("GET", "/sensors/WL-API-1", "dsp").json()["latest"]["depth"]
    assert latest["value"] == 30

    # The order is the sensor channel's, and its own trail records it.
    with session_scope() as s:
        order = orders.require_order(s, order_id=alarm["order_id"])
        assert order.channel.value == "sensor" and order.lead_unit_id == env.units["MA-C1"]

    assert env.call("POST", f"/alarms/{alarm['id']}/acknowledge", "ldr").status_code == 403  # leaders read only
    acked = env.call("POST", f"/alarms/{alarm['id']}/acknowledge", "dsp", json={"note": "已派人"})
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert "not allowed" in _error(env.call("POST", f"/alarms/{alarm['id']}/acknowledge", "dsp"), 409)
    assert env.call("POST", f"/alarms/{alarm['id']}/clear", "far").status_code == 404
    cleared = env.call("POST", f"/alarms/{alarm['id']}/clear", "dsp")
    assert cleared.status_code == 200 and cleared.json()["state"] == "cleared" and cleared.json()["cleared_by"] == "dsp"
    trail = env.call("GET", f"/alarms/{alarm['id']}/events", "dsp").json()
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("raised", "system"),
        ("order_opened", "system"),
        ("acknowledged", "dsp"),
        ("cleared", "dsp"),
    ]
    events = env.call("GET", f"/orders/{alarm['order_id']}/events", "adm").json()
    assert events[-1]["action"] == "comment"


def test_a_batch_reports_every_rejected_reading_by_index_and_keeps_the_good_ones(env: Env) -> None:
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {
        "readings": [
            _reading(0, 3, sensor_code="WL-API-1"),
            _reading(1, 3, sensor_code="GHOST"),
            _reading(2, "high", sensor_code="WL-API-1"),
            {"sensor_code": "WL-API-1", "measured_at": future, "value": 1},
            17,
            _reading(3, 4, sensor_code="WL-API-1", metric="depth"),
            _reading(4, 10**400, sensor_code="WL-API-1"),
            _reading(5, 1, sensor_code=["WL-API-1"]),
        ]
    }
    result = env.call("POST", "/sensors/readings", "key", json=body)
    assert result.status_code == 200, result.text
    data = result.json()
    assert data["stored"] == 2
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [
        (1, "sensor_code"),
        (2, "value"),
        (3, "measured_at"),
        (4, "(reading)"),
        (6, "value"),
        (7, "sensor_code"),
    ]
    assert "unknown sensor 'GHOST'" in data["rejected"][0]["message"]
    assert "time zone" in _error(env.call("GET", "/sensors/WL-API-1/readings?since=2026-01-01T00:00:00"), 422)
    stored = env.call("GET", "/sensors/WL-API-1/readings", "adm").json()
    assert [r["value"] for r in stored] == [4, 3]
    assert env.call("POST", "/sensors/readings", "key", json={"readings": "nope"}).status_code == 422
    assert env.call("POST", "/sensors/readings", json={"readings": []}).json()["received"] == 0  # an admin person


def test_a_value_no_device_can_read_is_rejected_by_index_and_the_good_readings_are_kept(env: Env) -> None:
    """A depth of 1e300 was stored and shown as "1e+300cm" on the list and the map: a known metric's value outside
    what it can physically read is refused naming the reading and ``value``, as a non-finite one is; the batch's good
    readings are stored and a metric the catalogue does not know takes any finite number."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    cam = {**SENSOR, "code": "CAM-API-1", "kind": "video_ai", "metrics": {"street_vending": "", "smoke": ""}}
    assert env.call("POST", "/sensors", json=cam).status_code == 201
    body = {
        "readings": [
            _reading(0, 1e300, sensor_code="WL-API-1"),
            _reading(1, 12.5, sensor_code="WL-API-1"),
            _reading(2, -4000, sensor_code="WL-API-1"),
            _reading(3, "nan", sensor_code="WL-API-1"),
            _reading(4, 1.5, sensor_code="CAM-API-1", metric="street_vending"),
            _reading(5, 0.9, sensor_code="CAM-API-1", metric="street_vending"),
            _reading(6, 1e300, sensor_code="CAM-API-1", metric="smoke"),  # no bounds known: finite is enough
            _reading(7, 14, sensor_code="WL-API-1"),
        ]
    }
    result = env.call("POST", "/sensors/readings", "key", json=body)
    assert result.status_code == 200, result.text
    data = result.json()
    assert (data["received"], data["stored"]) == (8, 4)
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [(i, "value") for i in (0, 2, 3, 4)]
    assert "1e+300 is outside what depth can read (-50 to 10000)" in data["rejected"][0]["message"]
    assert "not a finite number" in data["rejected"][2]["message"]
    assert "outside what street_vending can read (0 to 1)" in data["rejected"][3]["message"]
    assert [r["value"] for r in env.call("GET", "/sensors/WL-API-1/readings").json()] == [14, 12.5]
    assert env.call("GET", "/sensors/WL-API-1").json()["latest"]["depth"]["value"] == 14
    # One sensor's route answers alike.
    one = env.call("POST", "/sensors/WL-API-1/readings", "key", json={"readings": [_reading(8, 1e6), _reading(9, 3)]})
    assert [(r["index"], r["field"]) for r in one.json()["rejected"]] == [(0, "value")] and one.json()["stored"] == 1


def test_a_reading_naming_a_field_no_reading_has_or_another_sensor_is_rejected_naming_it(env: Env) -> None:
    """A gateway's ``media_ur`` (for ``media_url``) was dropped and the reading stored without its snapshot, and a
    reading naming sensor B sent to A's route was stored as A's; each is now rejected by index, naming the field, the
    others kept. A missing metric of a sensor measuring several says so, not "has no metric None"."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    assert env.call("POST", "/sensors", json={**SENSOR, "code": "WL-API-2"}).status_code == 201
    two = {**SENSOR, "code": "AQ-API-1", "kind": "air_quality", "metrics": {"pm25": "μg/m³", "aqi": ""}}
    assert env.call("POST", "/sensors", json=two).status_code == 201
    body = {
        "readings": [
            _reading(0, 3, sensor_code="WL-API-1", media_ur="https://cam.example/1.jpg"),
            _reading(1, 4, sensor_code="WL-API-1", media_url="https://cam.example/2.jpg"),
            _reading(2, 5, sensor_code="AQ-API-1"),
        ]
    }
    data = env.call("POST", "/sensors/readings", "key", json=body).json()
    assert data["stored"] == 1
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [(0, "media_ur"), (2, "metric")]
    assert "not a field of a reading" in data["rejected"][0]["message"]
    assert data["rejected"][1]["message"] == "missing: sensor 'AQ-API-1' measures pm25, aqi; name one"

    own = {"readings": [_reading(3, 6, sensor_code="WL-API-2"), _reading(4, 7, sensor_code="WL-API-1"), _reading(5, 8)]}
    data = env.call("POST", "/sensors/WL-API-1/readings", "key", json=own).json()
    assert data["stored"] == 2
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [(0, "sensor_code")]
    assert "'WL-API-2'" in data["rejected"][0]["message"]
    assert [r["value"] for r in env.call("GET", "/sensors/WL-API-1/readings").json()] == [8, 7, 4]
    assert env.call("GET", "/sensors/WL-API-2/readings").json() == []


def test_readings_sent_as_a_bare_array_are_told_the_body_is_an_object(env: Env) -> None:
    """A gateway posting its readings as a JSON array instead of ``{"readings": [...]}`` was told
    ``0.sensor_code: Extra inputs are not permitted`` — as if the field were wrong, not the body's shape. The answer
    now names the body: an object is expected. Nothing is stored either way."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    bare = [_reading(0, 3, sensor_code="WL-API-1")]
    for path in ("/sensors/readings", "/sensors/WL-API-1/readings"):
        answer = env.call("POST", path, "key", json=bare)
        assert answer.status_code == 422, answer.text
        assert answer.json()["details"]["errors"] == [
            {"field": "(body)", "message": "Input should be a valid dictionary or object to extract fields from"}
        ]
    assert env.call("GET", "/sensors/WL-API-1/readings").json() == []


def test_one_reading_sent_without_its_list_is_told_to_wrap_it_in_readings(env: Env) -> None:
    """A device posting its one reading as the body — ``{"metric", "measured_at", "value"}`` — was told ``metric:
    Extra inputs are not permitted``, as if ``metric`` were misspelt. It is now told the body is one item, to be sent
    in ``{"readings": [...]}``, naming ``readings``; a body with no field of a reading is refused as before."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    said = 'Field required: this body is one item; send the items as a list, {"readings": [{…}, …]}'
    for path, body in (
        ("/sensors/WL-API-1/readings", _reading(0, 3, metric="depth")),
        ("/sensors/readings", _reading(0, 3, sensor_code="WL-API-1", unit="cm")),
    ):
        answer = env.call("POST", path, "key", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["details"]["errors"] == [{"field": "readings", "message": said}], path
    other = env.call("POST", "/sensors/readings", "key", json={"zz_not_a_field": 1})
    assert other.json()["details"]["errors"] == [
        {"field": "zz_not_a_field", "message": "Extra inputs are not permitted"}
    ]
    assert env.call("GET", "/sensors/WL-API-1/readings").json() == []


def test_text_no_database_stores_is_refused_wherever_it_is_in_the_body(env: Env) -> None:
    """A lone surrogate (JSON's \\ud800) in a metric's unit or a reading's sensor code: 422 naming the field, not
    a 500 from the answer or the sensor lookup."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    reading = {"sensor_code": "\ud800", "measured_at": T0.isoformat(), "value": 1}
    for path, who, body, field in [
        ("/sensors", "adm", {**SENSOR, "code": "WL-API-2", "metrics": {"depth": "\ud800"}}, "metrics.depth"),
        ("/sensors", "adm", {**SENSOR, "code": "WL-API-2", "metrics": {"depth": "c\x00m"}}, "metrics.depth"),
        (
            "/sensors/readings",
            "key",
            {"readings": [_reading(0, 3, sensor_code="WL-API-1"), reading]},
            "readings.1.sensor_code",
        ),
    ]:
        raw = json.dumps(body)  # ASCII-escaped: the lone surrogate is sent as JSON writes it
        headers = {**env.headers[who], "Content-Type": "application/json"}
        response = env.client.post(API + path, content=raw, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["details"]["field"] == field
    assert env.call("GET", "/sensors/WL-API-1/readings").json() == []  # the batch was refused whole


def test_null_for_a_field_that_is_never_empty_is_refused_naming_it(env: Env) -> None:
    """A sensor's name or a rule's severity set to null is the client's mistake (422), not an integrity error; null
    still empties what may be empty (an address, a clear threshold)."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    rule_id = env.call("POST", "/alarm-rules", json=RULE).json()["id"]
    for path, field in [
        ("/sensors/WL-API-1", "name"),
        ("/sensors/WL-API-1", "active"),
        (f"/alarm-rules/{rule_id}", "severity"),
        (f"/alarm-rules/{rule_id}", "threshold"),
        (f"/alarm-rules/{rule_id}", "opens_order"),
    ]:
        response = env.call("PATCH", path, json={field: None})
        assert response.status_code == 422, (path, field, response.text)
        assert response.json()["details"]["field"] == field and f"{field} cannot be null" in response.json()["message"]
    assert env.call("PATCH", "/sensors/WL-API-1", json={"address": None}).json()["address"] is None
    assert env.call("PATCH", f"/alarm-rules/{rule_id}", json={"clear_threshold": None}).status_code == 200


def test_a_blank_name_is_refused_and_a_name_is_kept_trimmed(env: Env) -> None:
    """A sensor registered as "   " was kept with an empty name (and a PATCH kept "   "), as was a rule's: the lists,
    the map's popups and the alarms' orders named nothing."""
    for method, path, body in [
        ("POST", "/sensors", SENSOR | {"name": "   "}),
        ("POST", "/alarm-rules", RULE | {"name": " \t"}),
    ]:
        response = env.call(method, path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["details"]["errors"][0]["field"] == "name" and "blank" in response.text
    assert env.call("POST", "/sensors", json=SENSOR | {"name": " 桂花路隧道 "}).json()["name"] == "桂花路隧道"
    rule_id = env.call("POST", "/alarm-rules", json=RULE).json()["id"]
    for path in ("/sensors/WL-API-1", f"/alarm-rules/{rule_id}"):
        assert env.call("PATCH", path, json={"name": "  "}).status_code == 422, path
        assert env.call("PATCH", path, json={"name": " 新名称 "}).json()["name"] == "新名称"


def test_readings_of_a_metric_the_sensor_does_not_report_are_refused_as_its_series_are(env: Env) -> None:
    """GET /sensors/{code}/readings?metric=dpeth (a typo) answered an empty list, as if the sensor were silent."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    for path in ("readings", "series"):
        response = env.call("GET", f"/sensors/WL-API-1/{path}", params={"metric": "dpeth"})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["message"] == "sensor 'WL-API-1' has no metric 'dpeth' (it has depth)"
        assert response.json()["details"]["field"] == "metric"
    assert env.call("GET", "/sensors/WL-API-1/readings", params={"metric": "depth"}).json() == []


def test_times_at_the_ends_of_the_calendar_are_refused_naming_the_parameter(env: Env) -> None:
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    for path, name, value in [
        ("readings", "since", "0001-01-01T00:00:00+08:00"),
        ("series", "to", "9999-12-31T23:59:59-08:00"),
        ("series", "from", "0001-01-01T00:00:00+08:00"),
    ]:
        response = env.call("GET", f"/sensors/WL-API-1/{path}", params={name: value})
        assert response.status_code == 422, (path, name, response.text)
        assert response.json()["details"]["errors"][0]["field"] == f"query.{name}"
    year_one = {"sensor_code": "WL-API-1", "measured_at": "0001-01-01T00:00:00+08:00", "value": 1}
    result = env.call("POST", "/sensors/readings", "key", json={"readings": [year_one]}).json()
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [(0, "measured_at")]


def test_batches_beyond_the_limit_are_refused_whole(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_READING_BATCH_MAX", "2")
    body = {"readings": [_reading(i, 1, sensor_code="X") for i in range(3)]}
    assert "at most 2" in _error(env.call("POST", "/sensors/readings", "key", json=body), 422)
    from cityhub.monitoring.settings import MonitoringSettings

    described = MonitoringSettings.model_fields["reading_batch_max"].description or ""  # docs/configuration.md
    assert "422" in described and "413" not in described


def test_the_times_inside_a_sensors_latest_readings_and_an_alarms_trail_are_in_utc(env: Env) -> None:
    """docs/api.md: every answer gives an instant in UTC with Z, the times inside an event's payload too. A sensor's
    ``latest`` kept each reading's time as it was sent (``…+08:00``) and an alarm's ``raised`` event its ``since`` in
    the district's time, beside ``at`` and ``last_reading_at`` in UTC."""
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    assert env.call("POST", "/alarm-rules", json={**RULE, "duration_s": 0}).status_code == 201
    local = timezone(timedelta(hours=8))
    sent = [(T0 + timedelta(minutes=m)).astimezone(local) for m in (0, 5)]
    body = {"readings": [{"measured_at": t.isoformat(), "value": v} for t, v in zip(sent, (25, 30), strict=True)]}
    assert env.call("POST", "/sensors/WL-API-1/readings", "key", json=body).json()["alarms_raised"] == 1
    sensor = env.call("GET", "/sensors/WL-API-1").json()
    assert sensor["latest"]["depth"] == {"value": 30, "at": sent[1].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert env.call("GET", "/sensors").json()[0]["latest"] == sensor["latest"]
    alarm = env.call("GET", "/alarms").json()["items"][0]
    trail = env.call("GET", f"/alarms/{alarm['id']}/events").json()
    raised = next(e for e in trail if e["action"] == "raised")
    assert raised["payload"]["since"] == sent[0].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), raised
    texts = json.dumps([sensor, trail])
    assert "+08:00" not in texts and "+00:00" not in texts


def test_a_sensor_placed_in_no_unit_is_told_so_at_registration(env: Env) -> None:
    """A sensor whose position and address lie in no unit got unit_id null silently, and its orders waited for a
    dispatcher; its registration's answer now says so (``placed``, ``warnings``), until a unit is given."""
    lost = env.call("POST", "/sensors", json=SENSOR | {"code": "WL-LOST", "lat": 23.5, "lng": 113.5, "address": None})
    assert lost.status_code == 201, lost.text
    body = lost.json()
    assert body["unit_id"] is None and body["placed"] is False
    assert len(body["warnings"]) == 1 and "unit_code" in body["warnings"][0]
    placed = env.call("POST", "/sensors", json=SENSOR).json()
    assert placed["placed"] is True and placed["warnings"] == []
    fixed = env.call("PATCH", "/sensors/WL-LOST", json={"unit_code": "MA-S2"}).json()
    assert fixed["placed"] is True and fixed["warnings"] == []
