"""The 监测预警 page over the real app on both backends: in the menu of the roles that read alarms, sensors and open
alarms of the user's own area, acknowledge / clear for the roles that handle alarms (CSRF-checked), order links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cityhub.auth import passwords
from cityhub.db import reset_engine, session_scope
from cityhub.monitoring import service
from cityhub.monitoring.schemas import RuleCreate, SensorCreate, SensorUpdate
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from web_helpers import login

PASSWORD = "correct-horse-battery"


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")
    reset_engine()
    # An hour before the test runs, not before the module was collected: escalation is counted from when the readings
    # arrived, and on a slow run a test may start long after collection.
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with session_scope() as s:
        district = Unit(code="MW-QU", name="青禾区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        near = Unit(code="MW-S1", name="稻香街道", tier=UnitTier.STREET, parent_id=district.id)
        far = Unit(code="MW-S2", name="麦田街道", tier=UnitTier.STREET, parent_id=district.id)
        s.add_all([near, far])
        s.flush()
        for name, role, unit in [
            ("mw-dsp", Role.DISPATCHER, near),
            ("mw-far", Role.DISPATCHER, far),
            ("mw-ldr", Role.LEADER, district),
            ("mw-adm", Role.ADMIN, district),
            ("mw-cit", Role.CITIZEN, None),
        ]:
            s.add(
                User(
                    username=name,
                    full_name=name,
                    role=role,
                    unit_id=unit.id if unit else None,
                    password_hash=passwords.hash_password(PASSWORD),
                )
            )
        for code, unit_code, name in [("WL-N", "MW-S1", "稻香隧道积水点"), ("WL-F", "MW-S2", "麦田桥积水点")]:
            service.create_sensor(
                s,
                data=SensorCreate(
                    code=code, name=name, kind="waterlogging", metrics={"depth": "cm"}, unit_code=unit_code
                ),
            )
        service.create_rule(
            s,
            data=RuleCreate(name="积水超 20", sensor_kind="waterlogging", metric="depth", comparison=">", threshold=20),
        )
        items = [
            {"sensor_code": code, "measured_at": (t0 + timedelta(minutes=i)).isoformat(), "value": v}
            for code in ("WL-N", "WL-F")
            for i, v in enumerate([12, 31, 33])
        ]
        assert service.ingest(s, items=items).alarms_raised == 2
    return {"t0": t0}


def test_the_monitoring_page_shows_the_users_area_and_lets_handlers_ack_and_clear(world: dict[str, Any]) -> None:
    dsp = login("mw-dsp")
    page = dsp.get("/monitoring")
    assert page.status_code == 200
    assert 'href="/monitoring"' in page.text and "监测预警" in page.text
    assert "稻香隧道积水点" in page.text and "麦田桥积水点" not in page.text  # another street's sensor
    assert page.text.count('data-testid="alarm-row"') == 1 and "报警中" in page.text
    assert 'href="/orders/' in page.text  # the alarm's order
    alarm_id = int(page.text.split('data-testid="alarm-row" data-alarm="')[1].split('"')[0])

    # Without the CSRF token nothing happens.
    refused = dsp.post(f"/monitoring/alarms/{alarm_id}/acknowledge", data={}, follow_redirects=False)
    assert refused.status_code == 403
    token = dsp.cookies["cityhub_csrf"]
    acked = dsp.post(f"/monitoring/alarms/{alarm_id}/acknowledge", data={"csrf_token": token}, follow_redirects=True)
    assert acked.status_code == 200 and f"报警 {alarm_id} 已确认" in acked.text and "已确认" in acked.text
    # Another street's dispatcher cannot touch it.
    far = login("mw-far")
    far_page = far.get("/monitoring")
    assert "稻香隧道积水点" not in far_page.text and "麦田桥积水点" in far_page.text
    other = far.post(
        f"/monitoring/alarms/{alarm_id}/clear", data={"csrf_token": far.cookies["cityhub_csrf"]}, follow_redirects=False
    )
    assert other.status_code == 404
    cleared = dsp.post(
        f"/monitoring/alarms/{alarm_id}/clear", data={"csrf_token": token, "note": "已排水"}, follow_redirects=True
    )
    assert f"报警 {alarm_id} 已解除" in cleared.text and 'data-testid="no-alarms"' in cleared.text
    assert "最近解除的报警" in cleared.text and "mw-dsp" in cleared.text
    with session_scope() as s:
        events = [(e.action, e.actor, e.note) for e in service.alarm_events(s, alarm_id=alarm_id)]
        order_id = service.require_alarm(s, alarm_id=alarm_id).order_id
        # A comment an alarm wrote before its comments were language-neutral: shown as it was written.
        orders.act(
            s, order_id=order_id, action="comment", actor=orders.SYSTEM, params={"text": "监测报警 #0 已确认：旧"}
        )
    assert events[-2:] == [("acknowledged", "mw-dsp", None), ("cleared", "mw-dsp", "已排水")]

    # The order's trail tells the unit, in the reader's language, that the alarm was seen and cleared.
    trail = dsp.get(f"/orders/{order_id}").text
    assert re.search(rf"监测报警 #{alarm_id} 已确认：mw-dsp，[\d: -]+<", trail)
    assert re.search(rf"监测报警 #{alarm_id} 已解除：mw-dsp，[\d: -]+；说明：已排水<", trail)
    assert "监测报警 #0 已确认：旧" in trail and f"alarm #{alarm_id}" not in trail
    dsp.cookies.set("cityhub_lang", "en")
    english = dsp.get(f"/orders/{order_id}").text
    assert re.search(rf"alarm #{alarm_id} acknowledged by mw-dsp at [\d: -]+<", english)
    assert re.search(rf"alarm #{alarm_id} cleared by mw-dsp at [\d: -]+; note: 已排水<", english)
    assert "监测报警 #0 已确认：旧" in english and f"监测报警 #{alarm_id}" not in english


def test_an_alarms_snapshot_link_says_it_opens_a_new_tab(world: dict[str, Any]) -> None:
    """The camera's snapshot of a raising reading opens in a new tab, on the list and the sensor's page: a screen
    reader heard only 快照; the link's name ends in words saying so, in the reader's language."""
    measured = (world["t0"] + timedelta(minutes=5)).isoformat()
    with session_scope() as s:
        service.create_sensor(
            s,
            data=SensorCreate(
                code="WL-C", name="稻香桥下积水点", kind="waterlogging", metrics={"depth": "cm"}, unit_code="MW-S1"
            ),
        )
        reading = {
            "sensor_code": "WL-C",
            "measured_at": measured,
            "value": 40,
            "media_url": "https://cam.example.org/1.jpg",
        }
        assert service.ingest(s, items=[reading]).alarms_raised == 1
    dsp = login("mw-dsp")
    for path in ("/monitoring", "/monitoring/sensors/WL-C"):
        links = re.findall(r'<a [^>]*data-testid="alarm-snapshot".*?</a>', dsp.get(path).text, flags=re.S)
        assert len(links) == 1 and 'target="_blank"' in links[0], (path, links)
        assert links[0].endswith('<span class="visually-hidden">（在新标签页打开）</span></a>'), links
    dsp.cookies.set("cityhub_lang", "en")
    english = re.findall(r'<a [^>]*data-testid="alarm-snapshot".*?</a>', dsp.get("/monitoring").text, flags=re.S)
    assert english[0].endswith("(opens in a new tab)</span></a>"), english


def _one_rule_and_readings(world: dict[str, Any], sensor: SensorCreate, rule: RuleCreate, values: list[float]) -> Any:
    """Register ``sensor`` and ``rule`` and ingest ``values`` of the sensor's one metric a minute apart from five
    minutes after the world's start: the readings' answer."""
    with session_scope() as s:
        service.create_sensor(s, data=sensor)
        service.create_rule(s, data=rule)
        readings = [
            {
                "sensor_code": sensor.code,
                "measured_at": (world["t0"] + timedelta(minutes=5 + i)).isoformat(),
                "value": v,
            }
            for i, v in enumerate(values)
        ]
        return service.ingest(s, items=readings)


def test_an_open_alarm_shows_the_reading_now_beside_its_last_crossing_and_who_has_its_order(
    world: dict[str, Any],
) -> None:
    """A level fell back under the limit but not yet past the clear threshold: the alarm stays open. The duty officer
    read "当前值 31 > 20" — the last reading past the limit, kept as it was — while the water stood at 14; the row
    now says the latest reading and its unit, the limit, the last crossing, and whose the order is (its state and
    unit), as the API's alarm does (``current_value``, ``unit``, ``order_state``, ``order_lead_unit_name``)."""
    sensor = SensorCreate(
        code="WL-H", name="稻香涵洞积水点", kind="waterlogging", metrics={"depth": "cm"}, unit_code="MW-S1"
    )
    rule = RuleCreate(
        name="涵洞积水超 20", sensor_code="WL-H", metric="depth", comparison=">", threshold=20, clear_threshold=10
    )
    result = _one_rule_and_readings(world, sensor, rule, [31, 14])
    assert (result.alarms_raised, result.alarms_cleared) == (1, 0)
    dsp = login("mw-dsp")
    [alarm] = dsp.get("/api/v1/alarms", params={"sensor": "WL-H"}).json()["items"]
    assert (alarm["state"], alarm["last_value"], alarm["current_value"], alarm["unit"]) == ("active", 31, 14, "cm")
    assert (alarm["order_state"], alarm["order_lead_unit_name"]) == ("dispatched", "稻香街道")
    page = dsp.get("/monitoring").text
    row = page.split(f'data-alarm="{alarm["id"]}"')[1].split("</tr>")[0]
    assert re.search(r'data-testid="alarm-current">积水深度 <strong>14cm</strong>', row), row
    assert '<small data-testid="alarm-limit">限值 &gt; 20cm</small>' in row
    assert 'data-testid="alarm-last-breach">最近越限 31cm（<' in row
    assert '<small data-testid="alarm-order-holder">已派单 · 稻香街道</small>' in row
    sensor_page = dsp.get("/monitoring/sensors/WL-H").text
    assert "最近越限读数 / 限值" in sensor_page and "积水深度 31cm &gt; 20cm" in sensor_page
    assert '<small data-testid="alarm-order-holder">已派单 · 稻香街道</small>' in sensor_page
    # An English reader reads whose the order is in English (稻香街道 in pinyin, as the English pages name places).
    dsp.cookies.set("cityhub_lang", "en")
    for english in (dsp.get("/monitoring").text, dsp.get("/monitoring/sensors/WL-H").text):
        assert '<small data-testid="alarm-order-holder">Dispatched · Daoxiang Subdistrict</small>' in english
    dsp.cookies.set("cityhub_lang", "zh-CN")
    # The order keeps the reading's unit and time, which its page shows the handler beside the value and the limit.
    with session_scope() as s:
        attributes = s.get(Order, alarm["order_id"]).attributes  # type: ignore[union-attr]
    raised = (world["t0"] + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert (attributes["measure_unit"], attributes["measured_at"], attributes["value"]) == ("cm", raised, 31)
    details = dsp.get(f"/orders/{alarm['order_id']}").text.split('data-testid="channel-details">')[1].split("</td>")[0]
    assert '<div data-key="value"><small>读数</small> 31cm</div>' in details


def _camera_and_rule(code: str, name: str) -> tuple[SensorCreate, RuleCreate]:
    """A garbage camera of 稻香街道 and the kind's rule: ≥ 80% raises, below 30% clears."""
    sensor = SensorCreate(code=code, name=name, kind="video_ai", metrics={"garbage_exposed": ""}, unit_code="MW-S1")
    rule = RuleCreate(
        name="暴露垃圾识别",
        sensor_kind="video_ai",
        metric="garbage_exposed",
        comparison=">=",
        threshold=0.8,
        clear_threshold=0.3,
    )
    return sensor, rule


def test_a_cameras_confidence_reads_in_percent_on_the_list_its_page_and_its_order_as_in_the_orders_text(
    world: dict[str, Any],
) -> None:
    """The list showed a detection's confidence as 0.93 while its order's text said 置信度 94%: every page shows it
    in percent — the latest frame under 最新读数, the peak under 峰值, the peak being what the order's text says."""
    assert _one_rule_and_readings(world, *_camera_and_rule("CAM-P", "稻香市场摄像头"), [0.94, 0.93]).alarms_raised == 1
    dsp = login("mw-dsp")
    [alarm] = dsp.get("/api/v1/alarms", params={"sensor": "CAM-P"}).json()["items"]
    assert (alarm["peak_value"], alarm["current_value"]) == (0.94, 0.93)  # the API keeps the numbers
    row = dsp.get("/monitoring").text.split(f'data-alarm="{alarm["id"]}"')[1].split("</tr>")[0]
    assert re.search(r'data-testid="alarm-current">暴露垃圾 <strong>93%</strong>', row), row
    assert '<small data-testid="alarm-limit">限值 ≥ 80%</small>' in row, row
    assert 'data-testid="alarm-peak">94%</td>' in row and "0.9" not in row
    sensor_page = dsp.get("/monitoring/sensors/CAM-P").text
    assert 'data-testid="alarm-peak">94%</td>' in sensor_page and "暴露垃圾 <strong>93%</strong>" in sensor_page
    assert "0.93" not in sensor_page and "0.94" not in sensor_page
    order_page = dsp.get(f"/orders/{alarm['order_id']}").text
    assert "置信度 94%" in order_page
    details = order_page.split('data-testid="channel-details">')[1].split("</td>")[0]
    assert '<div data-key="value"><small>读数</small> 94%</div>' in details, details


def test_a_cameras_chart_reads_in_percent_on_its_axis_and_limits_as_its_caption_does(world: dict[str, Any]) -> None:
    """The sensor page's chart of a camera had its caption in percent (最低 88%，最高 94%) but its value axis at 0.2,
    0.4 … 1 and its limit lines labelled 0.8 and 0.3: now the ticks and the limits read in percent too; the lines'
    data values (for scripts and tests) keep the number the rule holds."""
    _one_rule_and_readings(world, *_camera_and_rule("CAM-C", "稻香桥摄像头"), [0.88, 0.94])
    page = login("mw-dsp").get("/monitoring/sensors/CAM-C").text
    chart = page.split('data-testid="chart"')[1].split("</svg>")[0]
    # the value axis's ticks stand at its left edge (the time axis's last tick, anchored at its end too, further right)
    anchored = re.findall(r'<text class="tick" x="([\d.]+)" y="[\d.]+" text-anchor="end">([^<]*)</text>', chart)
    left = min(float(x) for x, _ in anchored)
    ticks = [label for x, label in anchored if float(x) == left]
    assert ticks and all(tick.endswith("%") for tick in ticks), ticks
    assert "100%" in ticks and "1" not in ticks
    assert "报警限值 80%" in chart and "解除限值 30%" in chart and "0.8<" not in chart and "0.3<" not in chart
    assert 'data-testid="limit-threshold" data-value="0.8"' in chart
    # A gauge's chart keeps its plain numbers and unit.
    gauge = login("mw-dsp").get("/monitoring/sensors/WL-N").text.split('data-testid="chart"')[1].split("</svg>")[0]
    assert "报警限值 20cm" in gauge and "%" not in gauge


def test_a_rules_limits_read_in_its_sensors_unit_and_mixed_units_are_flagged(world: dict[str, Any]) -> None:
    """The rules page said 积水深度 > 20 — cm or m? A rule keeps no unit: its number is read in whatever each sensor
    sends. The page now writes the unit its sensors report in, and flags a rule whose sensors report in several
    (a gauge registered in metres under a kind rule written in centimetres never alarms)."""
    page = login("mw-adm").get("/monitoring/rules").text
    row = page.split("积水超 20")[1].split("</tr>")[0]
    assert "积水深度</span> &gt; 20cm" in row and 'data-testid="rule-mixed-units"' not in row
    assert "限值按监测点上报的单位读取" in page and "工单一般派给监测点的责任单位" in page
    with session_scope() as s:
        service.create_sensor(
            s,
            data=SensorCreate(
                code="WL-M", name="麦田桥水尺", kind="waterlogging", metrics={"depth": "m"}, unit_code="MW-S1"
            ),
        )
    row = login("mw-adm").get("/monitoring/rules").text.split("积水超 20")[1].split("</tr>")[0]
    assert "积水深度</span> &gt; 20<" in row  # no single unit to write
    warning = row.split('data-testid="rule-mixed-units">')[1].split("<")[0]
    assert warning.startswith("所适用的监测点单位不一（cm、m）"), warning


def test_the_duty_officers_list_puts_the_worst_unseen_alarms_first(world: dict[str, Any]) -> None:
    """The open alarms were listed newest first: a 严重 flood raised an hour ago sat under every later 提示 and alarm
    already acknowledged, and beyond the 200 shown it was not on the page at all. Now the most severe come first,
    those nobody acknowledged before those seen, then the newest."""
    t0 = world["t0"]
    with session_scope() as s:
        for code, severity, minutes in (("WL-X", "critical", -5), ("WL-I", "info", 10)):
            service.create_sensor(
                s,
                data=SensorCreate(
                    code=code, name=f"{code} 积水点", kind="waterlogging", metrics={"depth": "cm"}, unit_code="MW-S1"
                ),
            )
            service.create_rule(
                s,
                data=RuleCreate(
                    name=f"{code} 规则",
                    sensor_code=code,
                    metric="depth",
                    comparison=">",
                    threshold=20,
                    severity=severity,
                    opens_order=False,
                ),
            )
            reading = {"sensor_code": code, "measured_at": (t0 + timedelta(minutes=minutes)).isoformat(), "value": 40}
            assert service.ingest(s, items=[reading]).alarms_raised == 1
        seen = service.list_alarms(s, sensor_code="WL-N")[0][0]["id"]
        service.acknowledge(s, alarm_id=seen, actor=orders.SYSTEM)
    page = login("mw-adm").get("/monitoring").text
    table = page.split('data-testid="alarms"')[1].split("</table>")[0]
    shown = re.findall(r'data-testid="sensor-link">([^<]*)</a>', table)
    assert shown == ["WL-X 积水点", "麦田桥积水点", "稻香隧道积水点", "WL-I 积水点"], shown


def test_leaders_read_without_actions_and_citizens_see_no_monitoring(world: dict[str, Any]) -> None:
    leader = login("mw-ldr").get("/monitoring")
    assert leader.status_code == 200 and leader.text.count('data-testid="alarm-row"') == 2
    assert 'data-testid="ack-' not in leader.text and 'data-testid="clear-' not in leader.text
    english = login("mw-ldr")
    page = english.get("/lang/en?next=/monitoring")
    assert "Monitoring and early warning" in page.text and "Water-logging" in page.text
    citizen = login("mw-cit")
    assert 'href="/monitoring"' not in citizen.get("/orders").text
    assert citizen.get("/monitoring").status_code == 403


def test_alarm_rules_are_read_by_the_monitors_readers_and_written_by_administrators(world: dict[str, Any]) -> None:
    """报警规则: listed for a dispatcher without forms; an administrator adds a rule for one sensor (duration typed in
    minutes), gets a clear threshold on the wrong side told at its field, and changes a rule's threshold."""
    dsp = login("mw-dsp")
    listed = dsp.get("/monitoring/rules")
    assert listed.status_code == 200 and "积水超 20" in listed.text and 'data-testid="rule-form"' not in listed.text
    # The condition names the metric as the sensor pages do (its code as the tooltip), not in code.
    conditions = re.findall(r'data-testid="rule-condition">(.*?)</td>', listed.text)
    assert conditions and all(c.startswith('<span title="depth">积水深度</span> ') for c in conditions), conditions
    assert 'href="/monitoring/rules"' in dsp.get("/monitoring").text
    refused = dsp.post("/monitoring/rules", data={"csrf_token": dsp.cookies["cityhub_csrf"]}, follow_redirects=False)
    assert refused.status_code == 403

    adm = login("mw-adm")
    token = adm.cookies["cityhub_csrf"]
    fields = {"csrf_token": token, "name": "稻香隧道积水超 15", "target": "sensor:WL-N", "metric": "depth"}
    fields |= {"comparison": ">", "threshold": "15", "clear_threshold": "18", "duration_min": "10"}
    fields |= {"severity": "critical", "urgency": "urgent", "opens_order": "1", "active": "1"}
    wrong_side = adm.post("/monitoring/rules", data=fields, follow_redirects=False)
    assert wrong_side.status_code == 422 and "解除限值 18 不能高于报警限值 15" in wrong_side.text
    made = adm.post("/monitoring/rules", data=fields | {"clear_threshold": "8"}, follow_redirects=False)
    assert made.status_code == 303
    with session_scope() as s:
        rule = next(r for r in service.list_rules(s) if r.name == "稻香隧道积水超 15")
        assert (rule.duration_s, rule.clear_threshold, rule.severity, rule.sensor_id is not None) == (
            600,
            8,
            "critical",
            True,
        )
        kind_rule = next(r for r in service.list_rules(s) if r.name == "积水超 20")
    edit = {"csrf_token": token, "name": "积水超 25", "threshold": "25", "clear_threshold": "", "duration_min": "0"}
    edit |= {"severity": "warning", "urgency": "normal", "active": "1", "escalate_after_minutes": "-5"}
    negative = adm.post(f"/monitoring/rules/{kind_rule.id}", data=edit, follow_redirects=False)
    assert negative.status_code == 422
    # What was typed stays in the rule's form; the rule's row still shows what is stored.
    form = re.search(rf'<form method="post" action="/monitoring/rules/{kind_rule.id}".*?</form>', negative.text, re.S)
    assert form is not None and 'value="积水超 25"' in form.group(0) and 'value="-5"' in form.group(0)
    assert 'value="25"' in form.group(0) and ">积水超 20" in negative.text
    edit["escalate_after_minutes"] = "45"
    changed = adm.post(f"/monitoring/rules/{kind_rule.id}", data=edit, follow_redirects=False)
    assert changed.status_code == 303
    with session_scope() as s:
        again = service.require_rule(s, rule_id=kind_rule.id)
        assert (again.name, again.threshold, again.opens_order) == ("积水超 25", 25, False)
        assert again.escalate_after_minutes == 45
    assert adm.post("/monitoring/rules/999999", data=edit, follow_redirects=False).status_code == 404
    # The change is in the configuration log (系统日志), by whom, from what to what; a dispatcher may not read it.
    log = adm.get("/admin/log?area=alarm_rule")
    row = re.search(
        rf'<tr data-testid="log-entry" data-area="alarm_rule" data-target="{kind_rule.id}">(.*?)</tr>', log.text, re.S
    )
    assert (
        row is not None
        and "修改" in row.group(1)
        and '<span title="threshold">报警限值</span>：20.0 → 25.0' in row.group(1)
    )
    # Coded and yes/no values by their names, the time never broken inside its date.
    rows = re.findall(
        rf'<tr data-testid="log-entry" data-area="alarm_rule" data-target="{kind_rule.id}">(.*?)</tr>', log.text, re.S
    )
    created = rows[-1]  # newest first: the rule's creation, every field given
    assert re.search(r'title="severity">级别</span>：(严重|预警|提示)</div>', created), created
    assert re.search(r'title="urgency">紧急程度</span>：(一般|紧急|特急)</div>', created), created
    assert '<span title="opens_order">生成工单</span>：是 → 否' in row.group(1)
    assert re.match(
        r'\s*<td><span class="nowrap">\d{4}-\d\d-\d\d</span> <span class="nowrap">\d\d:\d\d</span></td>', row.group(1)
    )
    assert 'href="/admin/log"' in adm.get("/admin").text
    assert dsp.get("/admin/log").status_code == 403


def test_a_sensors_page_charts_its_readings_with_limits_and_alarms_within_the_users_area(
    world: dict[str, Any],
) -> None:
    """监测点 page: facts, one chart per metric (the rule's limit a line, the alarm a mark linking to its row), the
    alarms with their orders and trail, the latest readings; 404 for a sensor of another street; escalated alarms
    badged here and on the list."""
    admin = login("mw-adm")
    page = admin.get("/monitoring/sensors/WL-N")
    assert page.status_code == 200, page.text
    assert (
        "稻香隧道积水点" in page.text
        and '<span title="depth">积水深度</span>（cm）' in page.text
        and "稻香街道" in page.text
    )
    chart = page.text.split('data-testid="chart"')[1].split("</svg>")[0]
    assert 'data-testid="limit-threshold" data-value="20"' in chart and "<polyline" in chart
    alarm_id = int(page.text.split('data-testid="sensor-alarm" data-alarm="')[1].split('"')[0])
    assert f'href="#alarm-{alarm_id}"' in chart and f'id="alarm-{alarm_id}"' in page.text
    assert 'href="/orders/' in page.text and 'data-action="order_opened"' in page.text
    assert page.text.count("<tr><td>") >= 3 and "33cm" in page.text  # the latest readings
    assert 'data-testid="retire-form"' in page.text  # an administrator manages sensors
    for window in ("7d", "30d", "nonsense"):
        assert admin.get(f"/monitoring/sensors/WL-N?window={window}").status_code == 200
    assert 'href="/monitoring/sensors/WL-N"' in admin.get("/monitoring").text

    dsp = login("mw-dsp")
    own = dsp.get("/monitoring/sensors/WL-N")
    assert own.status_code == 200 and 'data-testid="retire-form"' not in own.text
    assert dsp.get("/monitoring/sensors/WL-F").status_code == 404  # another street's sensor
    assert dsp.get("/monitoring/sensors/NOPE").status_code == 404
    assert login("mw-cit").get("/monitoring/sensors/WL-N").status_code == 403

    with session_scope() as s:
        assert service.escalate_due(s, now=world["t0"] + timedelta(hours=2))["escalated"] == 2
    assert 'data-testid="escalated"' in dsp.get("/monitoring/sensors/WL-N").text
    assert dsp.get("/monitoring").text.count('data-testid="escalated"') == 1


def test_an_administrator_retires_and_reactivates_a_sensor_from_its_page(world: dict[str, Any]) -> None:
    admin = login("mw-adm")
    token = admin.cookies["cityhub_csrf"]
    assert admin.post("/monitoring/sensors/WL-N/retire", data={}, follow_redirects=False).status_code == 403
    dsp = login("mw-dsp")
    denied = dsp.post("/monitoring/sensors/WL-N/retire", data={"csrf_token": dsp.cookies["cityhub_csrf"]})
    assert denied.status_code == 403
    page = admin.get("/monitoring/sensors/WL-N")
    assert 'name="reason" maxlength="500"' in page.text  # the service's limit, stopped in the browser
    too_long = admin.post("/monitoring/sensors/WL-N/retire", data={"csrf_token": token, "reason": "改" * 501})
    assert too_long.status_code == 200 and "未保存：填写的内容超过 500 个字" in too_long.text
    assert 'data-testid="retired"' not in admin.get("/monitoring/sensors/WL-N").text
    done = admin.post("/monitoring/sensors/WL-N/retire", data={"csrf_token": token, "reason": "隧道改造"})
    assert done.status_code == 200 and "监测点 WL-N 已停用" in done.text and 'data-testid="retired"' in done.text
    assert "隧道改造" in done.text and 'data-testid="reactivate-form"' in done.text
    assert 'data-action="cleared"' in done.text and "监测点停用：隧道改造" in done.text
    listed = admin.get("/monitoring")
    assert 'data-code="WL-N"' not in listed.text and 'data-code="WL-F"' in listed.text
    assert 'data-code="WL-N"' in admin.get("/monitoring?status=retired").text
    again = admin.post("/monitoring/sensors/WL-N/retire", data={"csrf_token": token})
    assert "状态已被他人修改" in again.text
    back = admin.post("/monitoring/sensors/WL-N/reactivate", data={"csrf_token": token})
    assert "监测点 WL-N 已重新启用" in back.text and 'data-testid="retire-form"' in back.text
    assert admin.post("/monitoring/sensors/NOPE/reactivate", data={"csrf_token": token}).status_code == 404


def test_an_infinite_duration_typed_into_a_rule_form_is_refused_at_its_field(world: dict[str, Any]) -> None:
    """Typed "inf" minutes is a float Python reads; turning it into seconds overflowed (500) on either form."""
    adm = login("mw-adm")
    token = adm.cookies["cityhub_csrf"]
    fields = {"csrf_token": token, "name": "积水超 30", "target": "kind:waterlogging", "metric": "depth"}
    fields |= {"comparison": ">", "threshold": "30", "duration_min": "inf", "severity": "warning", "urgency": "normal"}
    made = adm.post("/monitoring/rules", data=fields, follow_redirects=False)
    assert made.status_code == 422 and 'value="inf"' in made.text
    with session_scope() as s:
        rule = next(r for r in service.list_rules(s) if r.name == "积水超 20")
        assert all(r.name != "积水超 30" for r in service.list_rules(s))
    edit = {k: v for k, v in fields.items() if k not in ("target", "metric", "comparison")}
    edited = adm.post(f"/monitoring/rules/{rule.id}", data=edit | {"duration_min": "-inf"}, follow_redirects=False)
    assert edited.status_code == 422 and 'value="-inf"' in edited.text
    with session_scope() as s:
        assert service.require_rule(s, rule_id=rule.id).duration_s == 0


def test_the_critical_tile_counts_every_open_critical_alarm_and_actions_keep_the_filters(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.web import monitoring_pages

    with session_scope() as s:
        service.create_rule(
            s,
            data=RuleCreate(
                name="积水超 35",
                sensor_kind="waterlogging",
                metric="depth",
                comparison=">",
                threshold=35,
                severity="critical",
            ),
        )
        items = [
            {"sensor_code": code, "measured_at": (world["t0"] + timedelta(minutes=5)).isoformat(), "value": 40}
            for code in ("WL-N", "WL-F")
        ]
        assert service.ingest(s, items=items).alarms_raised == 2
    monkeypatch.setattr(monitoring_pages, "ALARMS_SHOWN", 1)  # the list shows one; the tile counts them all
    page = login("mw-adm").get("/monitoring", params={"status": "retired"})
    assert page.status_code == 200 and page.text.count('data-testid="alarm-row"') == 1
    tile = re.search(r"严重报警</span><strong>(\d+)</strong>", page.text)
    assert tile is not None and tile.group(1) == "2"
    assert 'name="next" value="/monitoring?kind=&amp;status=retired"' in page.text
    near = login("mw-dsp").get("/monitoring")  # the tile is of the reader's area
    assert re.search(r"严重报警</span><strong>(\d+)</strong>", near.text).group(1) == "1"  # type: ignore[union-attr]


def test_a_rule_form_offers_metrics_by_name_and_conditions_read_as_signs(world: dict[str, Any]) -> None:
    """The metric field offers the named metrics and the sensors' own (code the value, name shown) and reads a name
    typed as its code; ≥ and ≤ are shown as signs, not as the `>=` typed in code."""
    adm = login("mw-adm")
    page = adm.get("/monitoring/rules").text
    offered = re.search(r'<datalist id="n-metrics">(.*?)</datalist>', page, re.S)
    assert offered is not None and '<option value="depth">积水深度</option>' in offered.group(1)
    assert '<option value="garbage_exposed">暴露垃圾</option>' in offered.group(1)
    assert 'list="n-metrics"' in page and "&gt;=</option>" not in page and ">≥</option>" in page
    fields = {"csrf_token": adm.cookies["cityhub_csrf"], "name": "积水不低于 40", "target": "kind:waterlogging"}
    fields |= {"metric": "积水深度", "comparison": ">=", "threshold": "40", "duration_min": "0"}
    fields |= {"severity": "warning", "urgency": "normal", "active": "1"}
    assert adm.post("/monitoring/rules", data=fields, follow_redirects=False).status_code == 303
    with session_scope() as s:
        rule = next(r for r in service.list_rules(s) if r.name == "积水不低于 40")
        assert (rule.metric, rule.comparison) == ("depth", ">=")
    listed = adm.get("/monitoring/rules").text
    row = re.search(rf'data-id="{rule.id}">.*?data-testid="rule-condition">(.*?)</td>', listed, re.S)
    assert row is not None and row.group(1) == '<span title="depth">积水深度</span> ≥ 40cm'
    unknown = adm.post("/monitoring/rules", data=fields | {"name": "水深", "metric": "水深"}, follow_redirects=False)
    assert unknown.status_code == 422 and 'value="水深"' in unknown.text  # not a name of any metric: kept, refused


def test_a_silent_sensor_says_so_on_the_list_its_page_the_map_and_the_api(world: dict[str, Any]) -> None:
    """A water-logging sensor that dies in a storm looked like a dry road (正常): quiet longer than its time, it is
    离线 wherever its status shows — with since when and its last reading — and its stale value leaves the map's
    figures. The silence rule is on the rules page with no limit of its own to edit."""
    with session_scope() as s:  # WL-N last reported an hour ago; half an hour is its time
        service.update_sensor(s, code="WL-N", data=SensorUpdate(silent_after_minutes=30, lat=23.1, lng=113.2))
        service.update_sensor(s, code="WL-F", data=SensorUpdate(lat=23.2, lng=113.3))
        service.detect_silence(s)
    adm = login("mw-adm")
    page = adm.get("/monitoring").text
    rows = dict(re.findall(r'data-code="(WL-[NF])">.*?data-status="(\w+)"', page, re.S))
    assert rows == {"WL-N": "silent", "WL-F": "alarming"}
    assert 'data-testid="mon-silent">1<' in page and "起无数据" in page
    sensor_page = adm.get("/monitoring/sensors/WL-N").text
    assert 'data-testid="silent"' in sensor_page and 'data-status="silent"' in sensor_page
    assert re.search(r'data-testid="sensor-silent-after">30 分钟<', sensor_page)
    assert "监测点离线" in sensor_page  # its silence alarm, with its trail, in the reader's language
    assert "监测点离线：超过 30 分钟无数据，最后一次数据 " in sensor_page and "sensor silent" not in sensor_page
    assert "120 分钟" in adm.get("/monitoring/sensors/WL-F").text and "默认" in adm.get("/monitoring/sensors/WL-F").text

    api = adm.get("/api/v1/sensors/WL-N").json()
    assert (api["status"], api["silent_after_minutes"]) == ("silent", 30)
    assert api["last_reading_at"] == (world["t0"] + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    assert datetime.fromisoformat(api["silent_since"]) == world["t0"] + timedelta(minutes=32)
    listed = {s["code"]: (s["status"], s["silent_since"]) for s in adm.get("/api/v1/sensors").json()}
    assert listed["WL-F"] == ("alarming", None) and listed["WL-N"][0] == "silent"
    # Only the silent ones (or those of another status), by the status the API shows, paged as any list.
    silent_only = adm.get("/api/v1/sensors", params={"status": "silent"})
    assert [s["code"] for s in silent_only.json()] == ["WL-N"] and silent_only.headers["X-Total-Count"] == "1"
    assert [s["code"] for s in adm.get("/api/v1/sensors", params={"status": "alarming"}).json()] == ["WL-F"]
    assert adm.get("/api/v1/sensors", params={"status": "normal"}).json() == []
    paged = adm.get("/api/v1/sensors", params={"status": "alarming", "limit": 1, "offset": 1})
    assert paged.json() == [] and paged.headers["X-Total-Count"] == "1"
    refused = adm.get("/api/v1/sensors", params={"status": "offline"})
    assert refused.status_code == 422 and refused.json()["details"]["errors"][0]["field"] == "query.status"
    assert "'silent'" in refused.json()["message"]
    filtered = adm.get("/monitoring", params={"status": "silent"}).text
    assert re.findall(r'data-code="(WL-\w+)"', filtered) == ["WL-N"]
    assert '<option value="silent" selected>离线监测点</option>' in filtered
    assert re.findall(r'data-code="(WL-\w+)"', adm.get("/monitoring", params={"status": "alarming"}).text) == ["WL-F"]
    alarms = adm.get("/api/v1/alarms", params={"sensor": "WL-N", "active": "true"}).json()["items"]
    assert {a["kind"] for a in alarms} == {"threshold", "silence"}

    layer = adm.get("/api/v1/map/layers/sensors").json()["features"]
    props = {f["properties"]["code"]: f["properties"] for f in layer}
    assert props["WL-N"]["status"] == "silent" and props["WL-N"]["summary"].startswith("离线")
    assert props["WL-F"]["status"] == "alarming" and props["WL-F"]["silent_since"] is None
    figures = {i["name"]: i for i in adm.get("/api/v1/map/indicators").json()["indicators"]}
    assert (figures["silent_sensors"]["value"], figures["silent_sensors"]["level"]) == (1, "warn")
    # 当前告警 counts what the readings say about the places (both sensors' water); WL-N's silence alarm apart.
    active = figures["active_alarms"]
    assert (active["value"], active["level"], active["apart"]) == (2, "warn", 1)
    assert active["apart_key"] == "map.ind.silence_alarms"
    panel = adm.get("/map/panel").text
    assert re.search(r'data-testid="ind-value-active_alarms">.*>2</a>.*· 离线 1</small>', panel, re.S)
    assert 'data-testid="mon-open">2<' in page and "另有离线告警 1" in page
    adm.cookies.set("cityhub_lang", "en")
    english = adm.get("/monitoring").text
    adm.cookies.delete("cityhub_lang")
    assert "and 1 silent-sensor alarm<" in english
    assert 'class="dot dot-silent"' in adm.get("/map").text

    rules = adm.get("/monitoring/rules").text
    assert "所有在用监测点" in rules and "默认 120 分钟" in rules
    silence = _silence_rule_id()
    form = re.search(rf'action="/monitoring/rules/{silence}".*?</form>', rules, re.S)
    assert form is not None and 'name="threshold"' not in form.group(0)  # no limit of its own to type
    saved = adm.post(
        f"/monitoring/rules/{silence}",
        data={
            "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', rules)[0],
            "name": "监测点离线",
            "severity": "critical",
            "urgency": "normal",
            "escalate_after_minutes": "",
            "active": "1",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    with session_scope() as s:
        rule = service.silence_rule(s)
        assert (rule.severity, rule.threshold, rule.opens_order) == ("critical", 0, False)

    # It reports again: normal at once, its alarm cleared.
    with session_scope() as s:
        now = datetime.now(UTC)
        service.ingest(s, items=[{"sensor_code": "WL-N", "measured_at": now.isoformat(), "value": 3}], now=now)
    assert adm.get("/api/v1/sensors/WL-N").json()["status"] == "normal"


def _silence_rule_id() -> int:
    with session_scope() as s:
        return service.silence_rule(s).id


def test_the_silence_rule_the_product_made_is_named_in_the_readers_language(world: dict[str, Any]) -> None:
    """The silence rule's name is the product's (监测点离线) until an administrator renames it: an English reader
    reads it in English wherever an alarm or the rule is named; a rule an administrator named stays as written."""
    with session_scope() as s:
        service.update_sensor(s, code="WL-N", data=SensorUpdate(silent_after_minutes=30, lat=23.1, lng=113.2))
        service.detect_silence(s)
    adm = login("mw-adm")
    assert "监测点离线" in adm.get("/monitoring").text
    adm.cookies.set("cityhub_lang", "en")
    listed = adm.get("/monitoring").text
    sensor_page = adm.get("/monitoring/sensors/WL-N").text
    for page in (listed, sensor_page):
        assert "· Sensor silent</small>" in page and "监测点离线" not in page
        assert "积水超 20" in page  # an administrator's rule, as written
    rules = adm.get("/monitoring/rules").text
    table = rules.split("<tbody>")[1].split("</tbody>")[0]
    names = re.findall(r'<tr data-testid="alarm-rule"[^>]*>\s*<td[^>]*>([^<]*)', table)
    assert sorted(names) == ["Sensor silent", "积水超 20"], names
    layer = adm.get("/api/v1/map/layers/alarms").json()["features"]
    titles = {f["properties"]["title"] for f in layer}
    assert "稻香隧道积水点 · Sensor silent" in titles and not any("监测点离线" in title for title in titles)


def _add_supervisor(s: Any) -> None:
    """A supervisor of the district, mw-sup: who closes the sensors' orders."""
    s.add(
        User(
            username="mw-sup",
            full_name="mw-sup",
            role=Role.SUPERVISOR,
            unit_id=s.query(Unit).filter(Unit.code == "MW-QU").one().id,
            password_hash=passwords.hash_password(PASSWORD),
        )
    )


def test_a_sensors_order_once_replied_is_closed_by_a_supervisor_without_a_callback_or_reason(
    world: dict[str, Any],
) -> None:
    """A sensor's order has no citizen to call back: its 办结 asked for 是否解决 and 理由 as if a callback were
    skipped. Replied, a supervisor closes it as it is (resolved); the page's form asks for nothing."""
    from web_helpers import act_on

    with session_scope() as s:
        order = s.query(Order).filter(Order.title.contains("稻香隧道积水点")).one()
        order_id = order.id
        for action, params in [("accept", {}), ("reply", {"text": "已到场排水，积水已消退。"})]:
            orders.act(s, order_id=order_id, action=action, params=params)
        _add_supervisor(s)
    sup = login("mw-sup")
    page = sup.get(f"/orders/{order_id}").text
    form = page.split(f'action="/orders/{order_id}/act/close"')[1].split("</form>")[0]
    assert " required" not in form  # neither 是否解决 nor 理由
    done = act_on(sup, order_id, "close")
    assert done.status_code == 303, done.text
    with session_scope() as s:
        closed = s.get(Order, order_id)
        assert closed is not None and closed.state == "closed_resolved"


def test_a_sensor_no_unit_answers_for_is_marked_on_the_list_and_its_page(world: dict[str, Any]) -> None:
    with session_scope() as s:
        service.create_sensor(
            s, data=SensorCreate(code="WL-LOST", name="无主积水点", kind="waterlogging", metrics={"depth": "cm"})
        )
    admin = login("mw-adm")
    listed = admin.get("/monitoring").text
    row = listed.split('data-code="WL-LOST"')[1].split("</tr>")[0]
    assert 'data-testid="unplaced"' in row and "未确定所属单位" in row
    assert 'data-testid="unplaced"' not in listed.split('data-code="WL-N"')[1].split("</tr>")[0]
    page = admin.get("/monitoring/sensors/WL-LOST").text
    assert "未确定所属单位" in page and "unit_code" in page


def test_a_sensors_replied_order_waits_for_close_not_callback_in_the_lists_tabs_and_page(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """待回访 listed the sensors' and cameras' replies, which nobody can call back, and their page offered 回访: a
    replied sensor order is in 待办结（无需回访） — its tab and count — not in 待回访 (a citizen's reply is), its page
    offers 办结 and no 回访 (the API still takes one), and it names the alarms it holds (关联报警)."""
    import html as html_lib

    from cityhub.intake.service import submit

    monkeypatch.setenv("CITYHUB_SENSOR_REARM_MINUTES", "0")  # the crossing after a clear: a new alarm, joining
    t0 = world["t0"]
    with session_scope() as s:
        street = s.query(Unit).filter(Unit.code == "MW-S1").one()
        later = [(10, 5), (11, 40)]  # cleared, then a new alarm, which joins the open order
        items = [
            {"sensor_code": "WL-N", "measured_at": (t0 + timedelta(minutes=m)).isoformat(), "value": v}
            for m, v in later
        ]
        assert service.ingest(s, items=items).alarms_joined == 1
        machine = s.query(Order).filter(Order.title.contains("稻香隧道积水点")).one()
        citizen = submit(
            s,
            data={
                "channel": "hotline",
                "appeal_type": "complaint",
                "title": "稻香路积水反映",
                "content": "稻香路口积水严重，请处理。",
                "citizen_name": "王先生",
                "citizen_phone": "13800138000",
            },
        ).order
        orders.act(s, order_id=citizen.id, action="dispatch", params={"unit_id": street.id})
        for order in (machine, citizen):
            for action, params in [("accept", {}), ("start", {}), ("reply", {"text": "已到场处置，积水已消退。"})]:
                if action == "start" and order is machine:
                    continue
                orders.act(s, order_id=order.id, action=action, params=params)
        machine_id, citizen_id = machine.id, citizen.id
        machine_no, citizen_no = machine.number, citizen.number
        _add_supervisor(s)
    sup = login("mw-sup")
    listing = sup.get("/orders").text
    tabs = {
        label: (html_lib.unescape(href), count)
        for href, label, count in re.findall(
            r'<a href="([^"]*)" data-testid="quick-view"[^>]*>([^<]*)<span class="count[^"]*" '
            r'data-testid="view-count" aria-hidden="true">([^<]*)</span>',
            listing,
        )
    }
    assert tabs["待回访"] == ("/orders?state=replied&no_citizen=false&sort=oldest", "1")
    assert tabs["待办结（无需回访）"] == ("/orders?state=replied&no_citizen=true&sort=oldest", "1")
    to_call = sup.get(tabs["待回访"][0]).text
    assert citizen_no in to_call and machine_no not in to_call
    to_close = sup.get(tabs["待办结（无需回访）"][0]).text
    assert machine_no in to_close and citizen_no not in to_close
    assert 'data-testid="filter-no-citizen"' in to_close  # the criterion shown while the list has it
    api = sup.get("/api/v1/orders", params={"state": "replied", "no_citizen": "true"}).json()["items"]
    assert [o["number"] for o in api] == [machine_no]

    page = sup.get(f"/orders/{machine_id}").text
    assert 'data-testid="action-close"' in page and 'data-testid="action-callback"' not in page
    assert 'data-testid="action-callback"' in sup.get(f"/orders/{citizen_id}").text
    assert "callback" not in sup.get(f"/api/v1/orders/{machine_id}/actions").json()
    details = page.split('data-testid="channel-details"')[1].split("</td>")[0]
    held = details.split('data-key="alarms"')[1].split("</div>")[0]
    assert "关联报警" in held and "共 2 条" in held and held.count("WL-N</a>") == 2
    with session_scope() as s:  # the API's contract kept: a callback recorded elsewhere is still taken
        orders.act(s, order_id=machine_id, action="callback", params={"satisfied": True})
