# ruff: noqa: F811  (fixtures imported from the neighbouring test modules are parameters here)
"""A sensor's life through the API and the CLI on both backends: retired by a manager (open alarms cleared with the
reason, readings refused by name — 409 for the sensor's own push, per item in a batch that keeps the good ones —
off the default lists), reactivated; its readings as a downsampled series within the caller's area."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from test_monitoring_api import RULE, SENSOR, T0, Env, _error, _reading, env  # noqa: F401  (the fixture)
from test_monitoring_cli import district  # noqa: F401  (the fixture)

from cityhub.db import session_scope
from cityhub.monitoring.models import Alarm, AlarmEvent

OTHER = SENSOR | {"code": "WL-API-2", "name": "桂花桥积水监测点"}


def test_a_manager_retires_and_reactivates_a_sensor_through_the_api(env: Env) -> None:
    for sensor in (SENSOR, OTHER):
        assert env.call("POST", "/sensors", json=sensor).status_code == 201
    assert env.call("POST", "/alarm-rules", json=RULE).status_code == 201
    pushed = env.call("POST", "/sensors/WL-API-1/readings", "key", json={"readings": [_reading(0, 30)]}).json()
    assert pushed["alarms_raised"] == 1
    alarm_id = env.call("GET", "/alarms?active=true", "adm").json()["items"][0]["id"]

    assert env.call("POST", "/sensors/WL-API-1/retire", "dsp", json={"reason": "x"}).status_code == 403
    assert env.call("POST", "/sensors/NOPE/retire", json={}).status_code == 404
    retired = env.call("POST", "/sensors/WL-API-1/retire", json={"reason": "道路改造拆除"})
    assert retired.status_code == 200, retired.text
    assert retired.json()["active"] is False and retired.json()["retired_reason"] == "道路改造拆除"
    assert "retired already" in _error(env.call("POST", "/sensors/WL-API-1/retire"), 409)
    alarm = env.call("GET", f"/alarms/{alarm_id}").json()
    assert alarm["state"] == "cleared" and alarm["cleared_by"] == "adm"
    trail = env.call("GET", f"/alarms/{alarm_id}/events").json()
    assert trail[-1]["action"] == "cleared" and trail[-1]["note"] == "sensor retired: 道路改造拆除"

    own = env.call("POST", "/sensors/WL-API-1/readings", "key", json={"readings": [_reading(5, 3)]})
    assert "sensor 'WL-API-1' is retired" in _error(own, 409)
    batch = {
        "readings": [
            _reading(5, 3, sensor_code="WL-API-2"),
            _reading(5, 3, sensor_code="WL-API-1"),
            _reading(6, 4, sensor_code="WL-API-2"),
        ]
    }
    result = env.call("POST", "/sensors/readings", "key", json=batch).json()
    assert result["stored"] == 2 and [(r["index"], r["field"]) for r in result["rejected"]] == [(1, "sensor_code")]
    assert "sensor 'WL-API-1' is retired" in result["rejected"][0]["message"]

    assert [s["code"] for s in env.call("GET", "/sensors").json()] == ["WL-API-2"]
    assert [s["code"] for s in env.call("GET", "/sensors?status=retired").json()] == ["WL-API-1"]
    assert len(env.call("GET", "/sensors?status=all").json()) == 2
    # The earlier filter still answers as it did.
    assert [s["code"] for s in env.call("GET", "/sensors?active=false").json()] == ["WL-API-1"]
    assert "WL-API-1" not in [s["code"] for s in env.call("GET", "/sensors?active=true").json()]
    assert env.call("GET", "/sensors?status=gone").status_code == 422
    assert env.call("GET", "/sensors/WL-API-1", "dsp").json()["active"] is False  # its page still reads it
    layer = env.call("GET", "/map/layers/sensors").json()
    assert [f["properties"]["code"] for f in layer["features"]] == ["WL-API-2"]

    back = env.call("POST", "/sensors/WL-API-1/reactivate")
    assert back.status_code == 200 and back.json()["active"] is True and back.json()["retired_at"] is None
    # Its last reading is two hours old (the default time): back in service, it is given its time afresh.
    assert (back.json()["status"], back.json()["silent_since"]) == ("normal", None)
    assert "in service" in _error(env.call("POST", "/sensors/WL-API-1/reactivate"), 409)
    again = env.call("POST", "/sensors/WL-API-1/readings", "key", json={"readings": [_reading(7, 3)]})
    assert again.status_code == 200 and again.json()["stored"] == 1
    with session_scope() as s:
        actions = s.scalars(select(AlarmEvent.action).where(AlarmEvent.alarm_id == alarm_id)).all()
        assert sorted(actions) == ["cleared", "order_opened", "raised"]


def test_the_series_is_downsampled_within_the_callers_area(env: Env) -> None:
    assert env.call("POST", "/sensors", json=SENSOR).status_code == 201
    values = [5.0] * 600
    values[333] = 88.0
    body = {
        "readings": [
            _reading(i // 6, v) | {"measured_at": (T0 + timedelta(seconds=10 * i)).isoformat()}
            for i, v in enumerate(values)
        ]
    }
    assert env.call("POST", "/sensors/WL-API-1/readings", "key", json=body).json()["stored"] == 600
    start, end = T0.isoformat(), (T0 + timedelta(hours=2)).isoformat()
    got = env.call("GET", "/sensors/WL-API-1/series", "dsp", params={"from": start, "to": end, "buckets": 50})
    assert got.status_code == 200, got.text
    data = got.json()
    assert data["downsampled"] and data["count"] == 600 and data["unit"] == "cm" and data["metric"] == "depth"
    assert len(data["points"]) <= 100 and max(p["value"] for p in data["points"]) == 88.0
    assert sum(b["count"] for b in data["buckets"]) == 600
    assert env.call("GET", "/sensors/WL-API-1/series", "far").status_code == 404  # another street's dispatcher
    assert "no metric 'pm25'" in _error(env.call("GET", "/sensors/WL-API-1/series?metric=pm25"), 422)
    assert "after" in _error(env.call("GET", "/sensors/WL-API-1/series", params={"from": end, "to": start}), 422)
    naive = env.call("GET", "/sensors/WL-API-1/series", params={"from": "2026-11-01T00:00:00", "to": end})
    assert "time zone" in _error(naive, 422)
    assert env.call("GET", "/sensors/WL-API-1/series?buckets=0").status_code == 422


def test_the_cli_retires_and_reactivates_a_sensor(
    tmp_path: Any, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("code,name,kind,metrics,lat,lng\nWL-1,桂花隧道,waterlogging,depth:cm,23.05,113.05\n")
    assert cli_run("sensors", "import", str(sensors))[0] == 0
    assert (
        cli_run(
            "alarm-rules",
            "add",
            "--name",
            "积水",
            "--metric",
            "depth",
            "--when",
            ">",
            "--threshold",
            "20",
            "--kind",
            "waterlogging",
        )[0]
        == 0
    )
    readings = tmp_path / "readings.csv"
    readings.write_text("sensor_code,measured_at,metric,value\nWL-1,2026-11-30T09:00:00+08:00,depth,30\n")
    assert cli_run("sensors", "readings", str(readings))[0] == 0
    code, out, _ = cli_run("sensors", "retire", "WL-1", "--reason", "设备拆除")
    assert code == 0 and out.strip() == "sensor WL-1 retired; 1 open alarm cleared"
    with session_scope() as s:
        note = s.scalars(select(AlarmEvent.note).where(AlarmEvent.action == "cleared")).one()
        assert note == "sensor retired: 设备拆除" and s.scalars(select(Alarm.state)).one() == "cleared"
    code, _, err = cli_run("sensors", "retire", "WL-1")
    assert code == 1 and "retired already" in err
    assert cli_run("sensors", "import", str(sensors))[0] == 0  # the old file again: no active column, still retired
    assert cli_run("sensors", "list")[1] == ""
    assert cli_run("sensors", "list", "--status", "retired")[1].startswith("WL-1\twaterlogging\tretired\t")
    assert "not one of" in cli_run("sensors", "list", "--status", "gone")[2]
    readings.write_text("sensor_code,measured_at,metric,value\nWL-1,2026-11-30T10:00:00+08:00,depth,3\n")
    code, _, err = cli_run("sensors", "readings", str(readings))
    assert code == 1 and "rejected: readings.csv: row 2: sensor_code: sensor 'WL-1' is retired" in err
    code, out, _ = cli_run("sensors", "reactivate", "WL-1")
    assert code == 0 and out.strip() == "sensor WL-1 back in service"
    assert cli_run("sensors", "readings", str(readings))[0] == 0
