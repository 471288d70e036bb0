"""The monitoring CLI on both backends: sensors imported from CSV (bad rows named by number and field, good ones
kept), alarm rules, readings from a file evaluated like pushed ones, alarms listed, acknowledged and cleared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cityhub.db import session_scope
from cityhub.monitoring.models import Alarm, Reading, Sensor
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders.models import Order

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1], [113.0, 23.0]]],
}


@pytest.fixture
def district(app_db: str) -> dict[str, int]:
    with session_scope() as s:
        district = Unit(code="MC-QU", name="青禾区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        street = Unit(code="MC-JD", name="稻香街道", tier=UnitTier.STREET, parent_id=district.id)
        s.add(street)
        s.flush()
        community = Unit(code="MC-SQ", name="桂花社区", tier=UnitTier.COMMUNITY, parent_id=street.id, boundary=SQUARE)
        s.add(community)
        s.flush()
        return {"street": street.id, "community": community.id}


def test_sensors_import_rejects_bad_rows_by_number_and_field_and_keeps_the_good_ones(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    path = tmp_path / "sensors.csv"
    path.write_text(
        "code,name,kind,metrics,lat,lng,address,unit_code,capacity,active\n"
        "WL-1,桂花路隧道,waterlogging,depth:cm,23.05,113.05,桂花路隧道口,,,\n"
        "AQ-1,稻香空气站,air_quality,pm25:μg/m³;pm10:μg/m³,,,,MC-JD,,是\n"
        "BAD-1,坏类型,volcano,depth:cm,,,,,,\n"
        "WL-1,重复,waterlogging,depth:cm,,,,,,\n"
        "BAD-2,坏单位,waterlogging,depth:cm,,,,NOPE,,\n"
        "BAD-3,坏坐标,waterlogging,depth:cm,95,113,,,,\n",
        encoding="utf-8",
    )
    code, out, err = cli_run("sensors", "import", str(path))
    assert code == 0  # the good rows were kept (docs/operations.md, Exit codes)
    assert "read 6 rows: 2 sensors created, 0 updated, 4 rejected" in out
    assert "rejected: sensors.csv: row 4: kind: " in err
    assert "rejected: sensors.csv: row 5: code: 'WL-1' already on row 2" in err
    assert "rejected: sensors.csv: row 6: unit_code: unknown unit code 'NOPE'" in err
    assert "rejected: sensors.csv: row 7: lat: " in err
    assert "error:" not in err
    with session_scope() as s:
        sensors = {x.code: x for x in s.scalars(select(Sensor))}
        assert set(sensors) == {"WL-1", "AQ-1"}
        assert sensors["WL-1"].unit_id == district["community"] and sensors["AQ-1"].unit_id == district["street"]
        assert sensors["AQ-1"].metrics == {"pm25": "μg/m³", "pm10": "μg/m³"}

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("code,name\nX,Y\n", encoding="utf-8")
    code, _, err = cli_run("sensors", "import", str(wrong))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "missing kind, metrics" in err


def test_rules_readings_and_alarms_from_the_shell(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("code,name,kind,metrics,lat,lng\nWL-1,桂花路隧道,waterlogging,depth:cm,23.05,113.05\n")
    assert cli_run("sensors", "import", str(sensors))[0] == 0
    code, out, err = cli_run(
        "alarm-rules",
        "add",
        "--name",
        "积水超 20",
        "--kind",
        "waterlogging",
        "--metric",
        "depth",
        "--when",
        ">",
        "--threshold",
        "20",
        "--clear",
        "10",
        "--duration",
        "600",
        "--escalate-after",
        "45",
    )
    assert code == 0, err
    assert "kind=waterlogging\tdepth > 20 clear 10 for 600s" in out and "\tescalate 45m\t" in out
    rule_id = out.split("\t", 1)[0]
    code, out, err = cli_run("alarm-rules", "set", rule_id, "--escalate-after", "0")
    assert code == 0 and "\tnever escalate\t" in out, err
    code, _, err = cli_run("alarm-rules", "set", rule_id, "--escalate-after", "-5")
    assert code == 1 and err.startswith("error: escalate_after_minutes:"), err
    code, _, err = cli_run(
        "alarm-rules",
        "add",
        "--name",
        "x",
        "--kind",
        "waterlogging",
        "--metric",
        "depth",
        "--when",
        "=>",
        "--threshold",
        "20",
    )
    assert code == 1 and err.startswith("error: comparison:")

    readings = tmp_path / "readings.csv"
    lines = ["sensor_code,measured_at,metric,value"]
    lines += [
        f"WL-1,2026-11-30T08:{m:02d}:00+08:00,depth,{v}"
        for m, v in zip(range(0, 60, 5), [5, 25, 30, 35, 40, 45, 42, 15, 8, 9, 7, 6], strict=True)
    ]
    lines += ["WL-1,2026-11-30T09:00:00+08:00,depth,abc", "WL-9,2026-11-30T09:00:00+08:00,depth,1"]
    readings.write_text("\n".join(lines) + "\n")
    code, out, err = cli_run("sensors", "readings", str(readings))
    assert code == 0
    assert "read 14 readings: stored 12" in out and "alarms raised 1, repeated 3, cleared 1; orders opened 1" in out
    assert "rejected: readings.csv: row 14: value: not a number: 'abc'" in err
    assert "rejected: readings.csv: row 15: sensor_code: unknown sensor 'WL-9'" in err
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Reading)) == 12
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        alarm_id = s.scalar(select(Alarm.id))
    code, out, _ = cli_run("alarms", "list")
    assert code == 0 and f"{alarm_id}\tcleared\twarning\tWL-1" in out and "×4" in out
    assert cli_run("alarms", "list", "--active")[1] == ""
    code, _, err = cli_run("alarms", "clear", str(alarm_id))
    assert code == 1 and "already cleared" in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli_run("sensors", "list")
    # Its last reading is of 2026-11-30: in service, but silent (离线) for days — what it last said no longer holds.
    assert code == 0 and out.startswith("WL-1\twaterlogging\tsilent\t桂花社区\t0\tdepth=6cm")


def test_a_sensors_file_changing_a_sensors_metrics_is_in_the_configuration_log_by_the_command_line(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    """Re-importing a sensor with other metrics changed them before the log took its 'before': the change was not
    logged at all (nothing else changed), and every import was logged as the system's, not the command line's."""
    from cityhub import auditlog

    path = tmp_path / "sensors.csv"
    path.write_text("code,name,kind,metrics\nAQ-9,稻香空气站,air_quality,pm25:μg/m³\n", encoding="utf-8")
    assert cli_run("sensors", "import", str(path))[0] == 0
    path.write_text("code,name,kind,metrics\nAQ-9,稻香空气站,air_quality,pm25:μg/m³;pm10:μg/m³\n", encoding="utf-8")
    code, out, _ = cli_run("sensors", "import", str(path))
    assert code == 0 and "1 updated" in out
    with session_scope() as s:
        entries, _ = auditlog.entries(s, area="sensor", target="AQ-9")
        assert [(e.action, e.actor) for e in entries] == [("update", "cli"), ("create", "cli")]
        assert entries[0].changes == {"metrics": [{"pm25": "μg/m³"}, {"pm25": "μg/m³", "pm10": "μg/m³"}]}
        assert s.scalars(select(Sensor.metrics).where(Sensor.code == "AQ-9")).one() == {
            "pm25": "μg/m³",
            "pm10": "μg/m³",
        }


def test_a_sensors_file_without_some_columns_leaves_those_fields_of_a_known_sensor_as_they_are(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    """A file of code, name, kind and metrics alone cleared the position, address and capacity of every sensor it
    updated: a column the file lacks now leaves its field as it is; an empty cell of a column it has clears it."""
    path = tmp_path / "sensors.csv"
    path.write_text(
        "code,name,kind,metrics,lat,lng,address,capacity\nCR-1,桂花广场,crowd_count,people:人,23.05,113.05,桂花广场东门,800\n",
        encoding="utf-8",
    )
    assert cli_run("sensors", "import", str(path))[0] == 0

    def facts() -> tuple[object, ...]:
        with session_scope() as s:
            sensor = s.scalars(select(Sensor).where(Sensor.code == "CR-1")).one()
            return sensor.name, sensor.lat, sensor.lng, sensor.address, sensor.capacity, sensor.unit_id

    assert facts() == ("桂花广场", 23.05, 113.05, "桂花广场东门", 800, district["community"])
    path.write_text("code,name,kind,metrics\nCR-1,桂花广场北,crowd_count,people:人\n", encoding="utf-8")
    code, out, _ = cli_run("sensors", "import", str(path))
    assert code == 0 and "1 updated" in out
    assert facts() == ("桂花广场北", 23.05, 113.05, "桂花广场东门", 800, district["community"])

    path.write_text(
        "code,name,kind,metrics,address,capacity\nCR-1,桂花广场北,crowd_count,people:人,,\n", encoding="utf-8"
    )
    assert cli_run("sensors", "import", str(path))[0] == 0
    assert facts() == ("桂花广场北", 23.05, 113.05, None, None, district["community"])


def test_an_empty_or_overlong_actor_is_refused_before_anything_changes(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    """--actor "" put a state change in the alarm's trail (and on the sensor) by nobody; a name over the trail's 80
    characters was kept on SQLite and refused by PostgreSQL's column."""
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("code,name,kind,metrics\nWL-7,桂花路隧道,waterlogging,depth:cm\n")
    assert cli_run("sensors", "import", str(sensors))[0] == 0
    code, _, err = cli_run("sensors", "retire", "WL-7", "--actor", " ")
    assert code == 1 and err.strip() == "error: --actor: empty; give the name the audit trail records", err
    code, _, err = cli_run("sensors", "retire", "WL-7", "--actor", "值" * 81)
    assert code == 1 and err.strip() == "error: --actor: 81 characters; at most 80", err
    with session_scope() as s:
        assert s.scalars(select(Sensor.active).where(Sensor.code == "WL-7")).one() is True
    code, _, err = cli_run("sensors", "retire", "WL-7", "--actor", " 值班员 ")
    assert code == 0, err
    with session_scope() as s:
        assert s.scalars(select(Sensor.retired_by).where(Sensor.code == "WL-7")).one() == "值班员"
    assert cli_run("sensors", "reactivate", "WL-7", "--actor", "")[0] == 1
    assert cli_run("alarms", "ack", "1", "--actor", "")[0] == 1


def test_an_unknown_kind_to_list_is_refused_naming_the_kinds(
    district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    """--kind waterloging (a typo) listed nothing and exited 0, as if there were no such sensors or alarms."""
    for command in (("sensors", "list"), ("alarms", "list")):
        code, out, err = cli_run(*command, "--kind", "waterloging")
        assert code == 1 and out == "", command
        assert err.strip().startswith("error: --kind: 'waterloging' is not one of waterlogging, "), err
        assert cli_run(*command, "--kind", "waterlogging")[0] == 0


def test_a_sensors_file_sets_and_clears_how_long_a_sensor_may_stay_quiet(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    path = tmp_path / "sensors.csv"
    path.write_text("code,name,kind,metrics,silent_after_minutes\nWL-Q,桂花路隧道,waterlogging,depth:cm,15\n")
    assert cli_run("sensors", "import", str(path))[0] == 0

    def quiet() -> int | None:
        with session_scope() as s:
            return s.scalars(select(Sensor.silent_after_minutes).where(Sensor.code == "WL-Q")).one()

    assert quiet() == 15
    path.write_text("code,name,kind,metrics,silent_after_minutes\nWL-Q,桂花路隧道,waterlogging,depth:cm,-5\n")
    _, _, err = cli_run("sensors", "import", str(path))
    assert "row 2: silent_after_minutes" in err and quiet() == 15  # refused by row and field, the sensor unchanged
    path.write_text("code,name,kind,metrics,silent_after_minutes\nWL-Q,桂花路隧道,waterlogging,depth:cm,\n")
    assert cli_run("sensors", "import", str(path))[0] == 0
    assert quiet() is None  # empty: the setting's default


def test_the_sensor_list_keeps_the_sensors_in_one_status_silent_ones_among_them(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    path = tmp_path / "sensors.csv"
    path.write_text(
        "code,name,kind,metrics,silent_after_minutes\n"
        "WL-OLD,桂花路隧道,waterlogging,depth:cm,30\n"
        "WL-NEW,桂花桥,waterlogging,depth:cm,30\n"
    )
    assert cli_run("sensors", "import", str(path))[0] == 0
    readings = tmp_path / "readings.csv"
    readings.write_text("sensor_code,measured_at,metric,value\nWL-OLD,2026-11-30T09:00:00+08:00,depth,3\n")
    assert cli_run("sensors", "readings", str(readings))[0] == 0  # days ago: silent; WL-NEW registered just now

    code, out, _ = cli_run("sensors", "list", "--status", "silent")
    assert code == 0 and [line.split("\t")[:3] for line in out.splitlines()] == [["WL-OLD", "waterlogging", "silent"]]
    assert [line.split("\t")[0] for line in cli_run("sensors", "list", "--status", "normal")[1].splitlines()] == [
        "WL-NEW"
    ]
    assert cli_run("sensors", "list", "--status", "alarming")[1] == ""
    code, out, err = cli_run("sensors", "list", "--status", "offline")
    assert code == 1 and out == ""
    assert "--status: 'offline' is not one of active, normal, alarming, silent, retired, all" in err


def test_a_sensors_file_says_which_sensors_no_unit_answers_for(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    path = tmp_path / "sensors.csv"
    path.write_text(
        "code,name,kind,metrics,lat,lng,address,unit_code\n"
        "WL-1,桂花路隧道,waterlogging,depth:cm,23.05,113.05,,\n"
        "WL-9,城外,waterlogging,depth:cm,23.5,113.5,,\n",
        encoding="utf-8",
    )
    code, out, err = cli_run("sensors", "import", str(path))
    assert code == 0 and "2 sensors created" in out
    assert "WL-9: not placed:" in err and "give unit_code" in err and "WL-1" not in err
    # The list says it in words, as the 监测预警 page marks it (未确定所属单位), not with a dash.
    code, out, _ = cli_run("sensors", "list")
    rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    assert code == 0 and rows["WL-9"][3] == "no responsible unit (unplaced)" and rows["WL-1"][3] == "桂花社区"


def test_a_cameras_confidence_reads_in_percent_in_the_sensor_and_alarm_lists(
    tmp_path: Path, district: dict[str, int], cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    """As the pages and its order's text say it (置信度 94%): the lists wrote 0.93 and (peak 0.94)."""
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("code,name,kind,metrics,lat,lng\nCAM-1,桂花市场摄像头,video_ai,garbage_exposed,23.05,113.05\n")
    assert cli_run("sensors", "import", str(sensors))[0] == 0
    rule = ("--name", "暴露垃圾", "--kind", "video_ai", "--metric", "garbage_exposed", "--when", ">=")
    assert cli_run("alarm-rules", "add", *rule, "--threshold", "0.8", "--clear", "0.3")[0] == 0
    readings = tmp_path / "readings.csv"
    readings.write_text(
        "sensor_code,measured_at,metric,value\n"
        "CAM-1,2026-11-30T09:00:00+08:00,garbage_exposed,0.94\n"
        "CAM-1,2026-11-30T09:01:00+08:00,garbage_exposed,0.93\n"
    )
    assert cli_run("sensors", "readings", str(readings))[0] == 0
    [line] = cli_run("alarms", "list")[1].splitlines()
    assert "\tgarbage_exposed 93% >= 80% (peak 94%)\t×2\t" in line, line
    [sensor] = cli_run("sensors", "list")[1].splitlines()
    assert "garbage_exposed=93%" in sensor, sensor
