"""``cityhub sensors …``, ``cityhub alarm-rules …``, ``cityhub alarms …`` — monitoring (监测预警) from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cityhub.clitools import (
    RejectedRow,
    cli_actor,
    fail,
    id_argument,
    named_actor,
    print_rejected,
    refuse_if_nothing_imported,
    validation_problem,
)
from cityhub.db import session_scope

if TYPE_CHECKING:
    from cityhub.org.service import CsvTable

sensors_app = typer.Typer(
    no_args_is_help=True, help="Sensors (监测点): import, list, retire or reactivate, push readings from a file."
)
rules_app = typer.Typer(no_args_is_help=True, help="Alarm rules (报警规则): thresholds per sensor kind or sensor.")
alarms_app = typer.Typer(no_args_is_help=True, help="Alarms (报警): list, acknowledge, clear.")

SHOWN = 20  # rejected rows listed on stderr


def _table(path: Path, required: tuple[str, ...]) -> CsvTable:
    from cityhub.org.service import read_table, require_headers

    table = read_table(path)
    require_headers(table, required, path=path)
    return table


def _with_unread(report: Any, table: CsvTable) -> Any:
    """``report`` with the rows of ``table`` that could not be read as its header's cells rejected, in row order."""
    from cityhub.monitoring.service import RowProblem

    report.read += table.reject_unread(
        lambda row, column, reason: report.rejected.append(RowProblem(row, column, reason))
    )
    report.rejected.sort(key=lambda problem: problem.row)
    return report


def _kind(kind: str | None) -> str | None:
    """A ``--kind`` option as a sensor kind; one line naming the kinds for another value (it matched nothing)."""
    from cityhub.monitoring.rules import SensorKind

    if kind is None:
        return None
    try:
        return SensorKind(kind).value
    except ValueError:
        raise fail(f"--kind: {kind!r} is not one of {', '.join(k.value for k in SensorKind)}") from None


def _finish(report: Any, path: Path, summary: str, *, taken: int) -> None:
    """Rejected rows on stderr, then one summary line; exit 1 when no row was taken (every row rejected, or none in
    the file), 0 when the good ones were kept beside the rejected (``clitools.refuse_if_nothing_imported``)."""
    rows = [RejectedRow(problem.row, problem.field, problem.message) for problem in report.rejected]
    print_rejected(path.name, rows, shown=SHOWN)
    typer.echo(summary)
    refuse_if_nothing_imported(path.name, taken, len(report.rejected))


@sensors_app.command("import")
def import_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV or Excel: code,name,kind,metrics[,lat,lng,address,unit_code,"
            "capacity,active]; metrics like depth:cm or pm25:μg/m³;pm10:μg/m³"
        ),
    ],
) -> None:
    """Register sensors (a known code is updated). Every bad row is rejected by number and field; the others kept."""
    from cityhub.monitoring import service

    table = _table(path, service.SENSOR_HEADERS)
    with session_scope() as session:
        report = _with_unread(service.import_sensors(session, rows=table.rows, actor=cli_actor()), table)
    summary = f"read {report.read} rows: {report.created} sensors created, {report.updated} updated, " + (
        f"{len(report.rejected)} rejected"
    )
    _finish(report, path, summary, taken=report.created + report.updated)
    if report.unplaced:  # of the rows taken, after the rejected ones and the summary (imports say those first)
        shown = ", ".join(report.unplaced[:SHOWN]) + (", …" if len(report.unplaced) > SHOWN else "")
        typer.echo(f"warning: {shown}: {service.UNPLACED}", err=True)


# The unit column of a sensor placed nowhere (``service.UNPLACED``): the 监测预警 list's 未确定所属单位 in the command
# line's English.
UNPLACED_UNIT = "no responsible unit (unplaced)"


@sensors_app.command("list")
def list_command(
    kind: Annotated[str | None, typer.Option(help="waterlogging, river_level, water_quality, …")] = None,
    status: Annotated[
        str,
        typer.Option(help="active (in service); normal, alarming or silent (those in service so now); retired; or all"),
    ] = "active",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
) -> None:
    """Sensors by code (tab-separated: code, kind, active/silent/retired — silent: in service, no reading for longer
    than it may stay quiet — unit, or "no responsible unit (unplaced)", open alarms, latest readings, name)."""
    from cityhub.monitoring import service
    from cityhub.monitoring.rules import SensorState, SensorStatus, figure, is_confidence
    from cityhub.org.service import unit_directory

    try:
        wanted = SensorStatus(status)
    except ValueError:
        raise fail(f"--status: {status!r} is not one of {', '.join(s.value for s in SensorStatus)}") from None
    kind = _kind(kind)
    with session_scope() as session:
        sensors = service.sensors_with_status(session, wanted, kind=kind, limit=limit)
        units = unit_directory(session)
        open_counts = service.open_alarm_counts(session, [s.id for s in sensors], silence=True)
        conditions = service.sensor_conditions(session, sensors)
        for s in sensors:
            unit = units.get(s.unit_id) if s.unit_id else None
            latest = ", ".join(
                f"{m}={figure(v['value'], s.metrics.get(m), confidence=is_confidence(s.kind, m))}"
                for m, v in (s.latest or {}).items()
            )
            state = conditions[s.id].state
            shown = state.value if state in (SensorState.SILENT, SensorState.RETIRED) else "active"
            # A sensor no unit answers for says so, as the 监测预警 page marks it (未确定所属单位), not a bare dash.
            where = unit.name if unit else UNPLACED_UNIT if s.unit_id is None else "-"
            typer.echo(f"{s.code}\t{s.kind}\t{shown}\t{where}\t{open_counts.get(s.id, 0)}\t{latest or '-'}\t{s.name}")


@sensors_app.command("retire")
def retire_command(
    code: Annotated[str, typer.Argument(help="sensor code")],
    reason: Annotated[str | None, typer.Option(help="why it was removed, kept on the sensor and its alarms")] = None,
    actor: Annotated[str, typer.Option(help="name recorded in the alarms' trail and on their orders")] = "cli",
) -> None:
    """Retire a sensor removed from the street (停用): its open alarms are cleared, its readings refused."""
    from cityhub.monitoring import service

    with session_scope() as session:
        open_before = service.open_alarm_counts(
            session, [s.id for s in service.list_sensors(session, code=code)], silence=True
        )
        sensor = service.retire(session, code=code, actor=named_actor(actor), reason=reason)
        cleared = open_before.get(sensor.id, 0)
        typer.echo(f"sensor {sensor.code} retired; {cleared} open alarm{'s' if cleared != 1 else ''} cleared")


@sensors_app.command("reactivate")
def reactivate_command(
    code: Annotated[str, typer.Argument(help="sensor code")],
    actor: Annotated[str, typer.Option(help="name recorded in the log")] = "cli",
) -> None:
    """Put a retired sensor back in service (启用): it accepts readings again."""
    from cityhub.monitoring import service

    with session_scope() as session:
        sensor = service.reactivate(session, code=code, actor=named_actor(actor))
        typer.echo(f"sensor {sensor.code} back in service")


@sensors_app.command("readings")
def readings_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV or Excel: sensor_code,measured_at,metric,value (metric may be "
            "empty for a sensor with one metric; times ISO 8601 with zone), optionally media_url (an http(s) link, "
            "e.g. a camera's snapshot, carried by the alarm and order it raises)"
        ),
    ],
) -> None:
    """Store readings from a file and evaluate them through the alarm rules, as pushed through the API."""
    from cityhub.monitoring import service

    table = _table(path, service.READING_HEADERS)
    with session_scope() as session:
        report = _with_unread(service.import_readings(session, rows=table.rows), table)
    result = report.ingest
    assert result is not None
    summary = (
        f"read {report.read} readings: stored {result.stored}, duplicates {result.duplicates}, late {result.late}, "
        f"rejected {len(report.rejected)}; alarms raised {result.alarms_raised}, repeated {result.alarms_repeated}, "
        f"cleared {result.alarms_cleared}; orders opened {result.orders_opened}"
        # An alarm reopened, or joined to an open order of the same problem, said only when there was one.
        + (f"; alarms reopened {result.alarms_reopened}" if result.alarms_reopened else "")
        + (f"; alarms joined to an open order {result.alarms_joined}" if result.alarms_joined else "")
    )
    _finish(report, path, summary, taken=result.stored + result.duplicates)


def _rule_line(rule: Any) -> str:
    order = f"order({rule.category or '-'}, {rule.urgency})" if rule.opens_order else "no order"
    minutes = rule.escalate_after_minutes
    escalate = "escalate default" if minutes is None else ("never escalate" if minutes == 0 else f"escalate {minutes}m")
    if rule.kind == "silence":  # no target, no limit of its own
        target, condition = "every sensor", "no reading for longer than the sensor's silent_after_minutes"
    else:
        target = f"kind={rule.sensor_kind}" if rule.sensor_kind else f"sensor_id={rule.sensor_id}"
        clear = "" if rule.clear_threshold is None else f" clear {rule.clear_threshold:g}"
        share = " ×capacity" if rule.of_capacity else ""
        condition = f"{rule.metric} {rule.comparison} {rule.threshold:g}{clear}{share} for {rule.duration_s}s"
    return (
        f"{rule.id}\t{'active' if rule.active else 'inactive'}\t{target}\t{condition}\t{rule.severity}\t{order}\t"
        f"{escalate}\t{rule.name}"
    )


@rules_app.command("list")
def rules_list_command() -> None:
    """Every rule (tab-separated: id, active, target, condition, severity, order, name)."""
    from cityhub.monitoring import service

    with session_scope() as session:
        for rule in service.list_rules(session):
            typer.echo(_rule_line(rule))


@rules_app.command("add")
def rules_add_command(
    name: Annotated[str, typer.Option(help="what the rule watches, e.g. 积水超过 20 厘米")],
    metric: Annotated[str, typer.Option(help="metric name, e.g. depth")],
    comparison: Annotated[str, typer.Option("--when", help="> >= < <=")],
    threshold: Annotated[float, typer.Option()],
    kind: Annotated[str | None, typer.Option(help="every sensor of this kind …")] = None,
    sensor: Annotated[str | None, typer.Option(help="… or this one sensor (code)")] = None,
    clear: Annotated[float | None, typer.Option(help="clear threshold (hysteresis); default: the threshold")] = None,
    of_capacity: Annotated[bool, typer.Option(help="thresholds are shares of the sensor's capacity")] = False,
    duration: Annotated[int, typer.Option(help="seconds the condition must hold")] = 0,
    severity: Annotated[str, typer.Option(help="info, warning, critical")] = "warning",
    order: Annotated[bool, typer.Option("--order/--no-order", help="a raised alarm opens an order")] = True,
    category: Annotated[str | None, typer.Option(help="category path or name of the order")] = None,
    urgency: Annotated[str, typer.Option(help="normal, urgent, critical")] = "normal",
    escalate_after: Annotated[
        int | None,
        typer.Option(
            help="minutes unacknowledged before escalation (0: never; default CITYHUB_ALARM_ESCALATE_AFTER_MINUTES)"
        ),
    ] = None,
) -> None:
    """Add a rule and print it."""
    from pydantic import ValidationError

    from cityhub.monitoring import service
    from cityhub.monitoring.schemas import RuleCreate

    values = {
        "name": name,
        "metric": metric,
        "comparison": comparison,
        "threshold": threshold,
        "sensor_kind": kind,
        "sensor_code": sensor,
        "clear_threshold": clear,
        "of_capacity": of_capacity,
        "duration_s": duration,
        "severity": severity,
        "opens_order": order,
        "category": category,
        "urgency": urgency,
        "escalate_after_minutes": escalate_after,
    }
    try:
        data = RuleCreate.model_validate(values)
    except ValidationError as exc:
        raise fail(validation_problem(exc, "rule")) from None
    with session_scope() as session:
        typer.echo(_rule_line(service.create_rule(session, data=data, actor=cli_actor())))


@rules_app.command("set")
def rules_set_command(
    rule_id: Annotated[int, id_argument("alarm rule", "rule id")],
    threshold: Annotated[float | None, typer.Option()] = None,
    clear: Annotated[float | None, typer.Option(help="clear threshold")] = None,
    duration: Annotated[int | None, typer.Option(help="seconds")] = None,
    severity: Annotated[str | None, typer.Option()] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive")] = None,
    escalate_after: Annotated[
        int | None, typer.Option(help="minutes unacknowledged before escalation (0: never)")
    ] = None,
) -> None:
    """Change a rule's limits, duration, severity, escalation time or active flag."""
    from pydantic import ValidationError

    from cityhub.monitoring import service
    from cityhub.monitoring.schemas import RuleUpdate

    values = {
        "threshold": threshold,
        "clear_threshold": clear,
        "duration_s": duration,
        "severity": severity,
        "active": active,
        "escalate_after_minutes": escalate_after,
    }
    try:
        data = RuleUpdate.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise fail(validation_problem(exc, "rule")) from None
    with session_scope() as session:
        typer.echo(_rule_line(service.update_rule(session, rule_id=rule_id, data=data, actor=cli_actor())))


@alarms_app.command("list")
def alarms_list_command(
    active: Annotated[bool, typer.Option("--active", help="only open alarms (active or acknowledged)")] = False,
    sensor: Annotated[str | None, typer.Option(help="sensor code")] = None,
    kind: Annotated[str | None, typer.Option(help="sensor kind")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Alarms, newest first (tab-separated: id, state, severity, sensor, raised at, value/limit, count, order)."""
    from cityhub.monitoring import service
    from cityhub.monitoring.rules import figure, is_confidence
    from cityhub.monitoring.schemas import AlarmRead

    kind = _kind(kind)
    with session_scope() as session:
        items, has_more = service.list_alarms(
            session, active=True if active else None, sensor_code=sensor, kind=kind, limit=limit
        )
    for item in items:
        if as_json:
            typer.echo(AlarmRead.model_validate(item).model_dump_json())
            continue
        sure = is_confidence(item["sensor_kind"], item["metric"])  # a camera's 93%, as the pages and its order say
        last, bound, peak = (figure(item[k], confidence=sure) for k in ("last_value", "threshold", "peak_value"))
        typer.echo(
            f"{item['id']}\t{item['state']}\t{item['severity']}\t{item['sensor_code']}\t"
            f"{item['raised_at']:%Y-%m-%d %H:%M}Z\t{item['metric']} {last} "
            f"{item['comparison']} {bound} (peak {peak})\t×{item['count']}\t"
            f"{item['order_number'] or '-'}\t{item['sensor_name']}"
        )
    if has_more:
        typer.echo(f"(more than {limit}; use --limit)", err=True)


def _act(alarm_id: int, note: str | None, actor: str, action: str) -> None:
    from cityhub.monitoring import service

    with session_scope() as session:
        handler = service.acknowledge if action == "acknowledge" else service.clear
        alarm = handler(session, alarm_id=alarm_id, actor=named_actor(actor), note=note)
        typer.echo(json.dumps({"id": alarm.id, "state": alarm.state}, ensure_ascii=False))


@alarms_app.command("ack")
def ack_command(
    alarm_id: Annotated[int, id_argument("alarm", "alarm id")],
    note: Annotated[str | None, typer.Option()] = None,
    actor: Annotated[str, typer.Option(help="name recorded in the alarm's trail")] = "cli",
) -> None:
    """Acknowledge an active alarm (确认)."""
    _act(alarm_id, note, actor, "acknowledge")


@alarms_app.command("clear")
def clear_command(
    alarm_id: Annotated[int, id_argument("alarm", "alarm id")],
    note: Annotated[str | None, typer.Option()] = None,
    actor: Annotated[str, typer.Option(help="name recorded in the alarm's trail and on its order")] = "cli",
) -> None:
    """Clear an open alarm (解除); noted on its order."""
    _act(alarm_id, note, actor, "clear")
