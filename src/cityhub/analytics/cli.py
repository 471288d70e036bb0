"""``cityhub analytics``: city-brain analytics on the command line (the work happens in the service modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(no_args_is_help=True, help="Analytics: hot topics, assessment (考核) and more.")


# --- assessment (考核): kpi / ranking / drilldown ------------------------------------------------------------


def _kpi_emit(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> None:
    import json
    import sys

    from cityhub.outfiles import SpreadsheetCsv

    if fmt == "json":
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    elif fmt == "csv":  # for people: opened in a spreadsheet, a unit's name must not run as a formula
        writer = SpreadsheetCsv(sys.stdout)
        writer.writerow(columns)
        writer.writerows([r.get(c, "") for c in columns] for r in rows)
    elif fmt == "table":
        widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c) for c in columns}
        typer.echo("  ".join(c.ljust(widths[c]) for c in columns))
        for r in rows:
            typer.echo("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))
    else:
        raise typer.BadParameter(f"unknown format '{fmt}' (table, json, csv)")


@app.command("kpi")
def kpi_command(
    period: str = typer.Option(
        ..., "--period", help="2026-10, 2026-W43, 2026-10-05, 2026-10-01..2026-10-15, 2026-Q4 or 2026."
    ),
    tier: str | None = typer.Option(None, "--tier", help="Only units of this tier (street, community, department)."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    repeat_days: int = typer.Option(30, "--repeat-days", min=1, help="Window of the repeat-complaint rate."),
) -> None:
    """Assessment KPIs (考核) per unit for a period, from the audit trail."""
    from cityhub.analytics import kpi
    from cityhub.db import session_scope

    p = kpi.parse_period(period)
    with session_scope() as session:
        units = kpi.compute(session, period=p, tier=tier, repeat_days=repeat_days)
    if fmt == "json":
        _kpi_emit([u.as_dict() for u in units], [], fmt)
        return
    rows: list[dict[str, Any]] = []
    for u in units:
        row: dict[str, Any] = {"code": u.code, "name": u.name, "n": u.sample, "score": _pct(u.score, 1)}
        for name, r in u.rates.items():
            row[name] = f"{_pct(r.value)} ({r.numerator}/{r.denominator})" if fmt == "table" else r.value
        rows.append(row)
    _kpi_emit(rows, ["code", "name", "n", "score", *[k.name for k in kpi.KPIS]], fmt)


def _pct(value: float | None, scale: float = 100.0) -> str:
    return "-" if value is None else f"{value * scale:.1f}"


@app.command("ranking")
def ranking_command(
    period: str = typer.Option(..., "--period", help="2026-10, 2026-W43, …"),
    kpi_name: str = typer.Option("score", "--kpi", help="A KPI name, or 'score' (composite)."),
    tier: str | None = typer.Option(None, "--tier", help="Only units of this tier."),
    min_sample: int = typer.Option(30, "--min-sample", min=0, help="Units with fewer counted items are listed apart."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
) -> None:
    """Rank units by one KPI or the composite score, with the sample n; small samples listed apart."""
    from cityhub.analytics import kpi
    from cityhub.db import session_scope

    with session_scope() as session:
        result = kpi.ranking(session, period=kpi.parse_period(period), kpi=kpi_name, tier=tier, min_sample=min_sample)
    if fmt == "json":
        typer.echo(__import__("json").dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    rows = [{**r, "sample": "ok"} for r in result.ranked] + [
        {**r, "rank": "-", "sample": "insufficient"} for r in result.insufficient
    ]
    # Beside the score, the rates it is made of and the one costing it most points (drag): why a unit ranks low.
    shown = [name for name in (k.name for k in kpi.KPIS) if any(name in r["kpis"] for r in rows)]
    for r in rows:
        for name in shown:
            c = r["kpis"].get(name)
            r[name] = (c["rate"] if fmt == "csv" else _pct(c["rate"])) if c and c["denominator"] else ""
        r["drag"] = r["drag"] or ""
        if kpi_name == "score" and r["value"] is not None:  # 2 decimals, ranked or not (the JSON keeps them all)
            r["value"] = f"{r['value']:.2f}"
    drag = ["drag"] if kpi_name == "score" else []
    _kpi_emit(rows, ["rank", "code", "name", "n", "value", *shown, *drag, "sample"], fmt)


@app.command("drilldown")
def drilldown_command(
    unit: str = typer.Option(..., "--unit", help="Unit code (or id)."),
    kpi_name: str = typer.Option(..., "--kpi", help="KPI name, e.g. on_time_completion."),
    period: str = typer.Option(..., "--period", help="2026-10, 2026-W43, …"),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
) -> None:
    """The orders behind one unit's figure: denominator rows, with hit=True for the numerator."""
    from cityhub.analytics import kpi
    from cityhub.db import session_scope

    ref: int | str = int(unit) if unit.isdigit() and len(unit) < 8 else unit
    with session_scope() as session:
        result = kpi.drilldown(session, unit=ref, kpi=kpi_name, period=kpi.parse_period(period))
    if fmt == "json":
        typer.echo(__import__("json").dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    if fmt == "table":
        typer.echo(
            f"{result.unit_code} {result.kpi} {result.period}: "
            f"numerator {len(result.numerator)} / denominator {len(result.denominator)}"
        )
    _kpi_emit(result.denominator, ["number", "order_id", "ref_id", "hit"], fmt)
    if result.exempted and fmt == "table":
        numbers = ", ".join(str(i["number"] or i["order_id"]) for i in result.exempted)
        typer.echo(f"left out by approved exemptions (考核核减): {len(result.exempted)}: {numbers}")


@app.command("invalid-calls")
def invalid_calls_command(
    period: str = typer.Option(..., "--period", help="2026-10, 2026-W43, 2026-10-05, 2026-10-01..2026-10-15, …"),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """无效来电: the calls recorded at the intake desk as no appeal (hung up, silent, harassment, wrong number,
    transferred …) in PERIOD, per kind and per operator."""
    from cityhub.analytics import kpi
    from cityhub.db import session_scope
    from cityhub.intake import invalid_calls

    if fmt not in ("table", "json"):
        raise typer.BadParameter("must be table or json", param_hint="--format")
    with session_scope() as session:
        result = invalid_calls.tally(session, period=kpi.parse_period(period))
    if fmt == "json":
        typer.echo(__import__("json").dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{result.period}: {result.total} invalid calls")
    typer.echo("  " + ", ".join(f"{kind} {n}" for kind, n in result.by_kind.items()))
    for o in result.operators:
        kinds = ", ".join(f"{kind} {n}" for kind, n in o.by_kind.items())
        typer.echo(f"  {o.name or '(removed account)'}: {o.total} ({kinds})")


# --- exemption requests (考核核减) ------------------------------------------------------------------------------

exemptions_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Assessment exemption requests (考核核减): list them, ask for one for a unit, approve or reject one, "
        "revoke an approval."
    ),
)
app.add_typer(exemptions_app, name="exemptions")

_EXEMPTION_COLUMNS = [
    "id",
    "state",
    "order_number",
    "unit_code",
    "measures",
    "reason_category",
    "requested_by",
    "requested_at",
    "decided_by",
    "decision_reason",
    "revoked_by",
    "revocation_reason",
]


def _unit_id(session: Any, unit: str | None) -> int | None:
    from cityhub.analytics import kpi

    if unit is None:
        return None
    return kpi.resolve_unit(session, unit=int(unit) if unit.isdigit() and len(unit) < 8 else unit).id


@exemptions_app.command("list")
def exemptions_list(
    state: str | None = typer.Option(None, "--state", help="pending, approved, rejected or revoked."),
    unit: str | None = typer.Option(None, "--unit", help="Only this unit's requests (code or id)."),
    order: str | None = typer.Option(None, "--order", help="Only this order's requests (number or id)."),
    limit: int = typer.Option(200, "--limit", min=1, max=10_000, help="At most this many."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
) -> None:
    """The requests, pending ones oldest first, decided ones latest first."""
    from cityhub.analytics import exemptions
    from cityhub.clitools import fail
    from cityhub.db import session_scope
    from cityhub.workorders.service import find_order

    with session_scope() as session:
        unit_id = _unit_id(session, unit)
        order_id = None
        if order is not None:
            found = find_order(session, ref=order)
            if found is None:
                raise fail(f"order {order} not found")
            order_id = found.id
        found_rows = session.scalars(
            exemptions.query(state=state, unit_ids=None if unit_id is None else [unit_id], order_id=order_id).limit(
                limit
            )
        )
        rows = exemptions.as_dicts(session, found_rows)
    if fmt != "json":  # a table or a spreadsheet: the measures in one cell, nothing said for what is not yet
        rows = [
            {k: "" if v is None else v for k, v in {**r, "measures": ",".join(r["measures"])}.items()} for r in rows
        ]
    _kpi_emit(rows, _EXEMPTION_COLUMNS, fmt)


@exemptions_app.command("request")
def exemptions_request(
    ref: str = typer.Argument(..., help="Order number (BY…) or id."),
    unit: str = typer.Option(..., "--unit", help="The unit asking (code or id)."),
    measures: str = typer.Option(
        ..., "--measures", help="Comma-separated KPI names, e.g. on_time_completion,satisfaction."
    ),
    reason: str = typer.Option(
        ...,
        "--reason",
        help="unreasonable, unreachable, refused_visit, not_own_duty, force_majeure, unrelated_rating or other.",
    ),
    text: str | None = typer.Option(None, "--text", help="Why, in words (required with other)."),
    actor: str = typer.Option("cli", "--actor", help="Name recorded in the audit trail."),
) -> None:
    """Ask, for a unit, that an order's facts of some measures not count against it."""
    from cityhub.analytics import exemptions
    from cityhub.clitools import fail, named_actor
    from cityhub.db import session_scope
    from cityhub.workorders.service import find_order

    who = named_actor(actor)
    with session_scope() as session:
        found = find_order(session, ref=ref)
        if found is None:
            raise fail(f"order {ref} not found")
        row = exemptions.request(
            session,
            order_id=found.id,
            unit_id=_unit_id(session, unit),
            measures=[m.strip() for m in measures.split(",") if m.strip()],
            reason_category=reason,
            reason_text=text,
            actor=who,
        )
        typer.echo(f"exemption request {row.id} of order {found.number}: pending")


@exemptions_app.command("decide")
def exemptions_decide(
    exemption_id: int = typer.Argument(..., help="The request's id (cityhub analytics exemptions list)."),
    approve: bool = typer.Option(..., "--approve/--reject", help="Approve, or reject (with --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why; required to reject."),
    actor: str = typer.Option("cli", "--actor", help="Name recorded in the audit trail."),
) -> None:
    """Approve or reject a pending request: approved, the order's facts of its measures leave the unit's figures."""
    from cityhub.analytics import exemptions
    from cityhub.clitools import named_actor
    from cityhub.db import session_scope

    who = named_actor(actor)
    with session_scope() as session:
        row = exemptions.decide(session, exemption_id=exemption_id, approve=approve, reason=reason, actor=who)
        typer.echo(f"exemption request {row.id}: {row.state}")


@exemptions_app.command("revoke")
def exemptions_revoke(
    exemption_id: int = typer.Argument(..., help="The approved request's id (cityhub analytics exemptions list)."),
    reason: str = typer.Option(..., "--reason", help="Why the approval is taken back (required)."),
    actor: str = typer.Option("cli", "--actor", help="Name recorded in the audit trail."),
) -> None:
    """撤销核减: take back an approved request; the order's facts of its measures count in the unit's figures again."""
    from cityhub.analytics import exemptions
    from cityhub.clitools import named_actor
    from cityhub.db import session_scope

    who = named_actor(actor)
    with session_scope() as session:
        row = exemptions.revoke(session, exemption_id=exemption_id, reason=reason, actor=who)
        typer.echo(f"exemption request {row.id}: {row.state}")


# --- correlation graph and risk findings (城市大脑: 关联图谱, 高频事件与风险预警) ---------------------------------

graph_app = typer.Typer(no_args_is_help=True, help="Correlation graph of topics, places, groups and time windows.")
app.add_typer(graph_app, name="graph")


def _graph_from(period: str | None, input_path: Any, granularity: str) -> Any:
    from cityhub.analytics import correlation

    p = correlation.parse_period(period) if period else None
    if input_path is not None:
        facts = correlation.facts_from_table(input_path)
        return correlation.build_graph(facts, granularity=granularity, period=p)  # type: ignore[arg-type]
    from cityhub.db import session_scope

    with session_scope() as session:
        # Computed afresh: a command run to look at the data now does not want a server's last graph (nor has one).
        return correlation.graph_from_db(session, period=p, granularity=granularity, cache=None)  # type: ignore[arg-type]


@graph_app.command("build")
def graph_build_command(
    out: str = typer.Option(..., "--out", help="graph.graphml (GraphML) or graph.json (node-link JSON)."),
    period: str | None = typer.Option(None, "--period", help="2026-Q3, 2026-07, 2026-W27, a..b (default: all)."),
    input_path: str | None = typer.Option(None, "--input", help="CSV/Excel orders instead of the database."),
    granularity: str = typer.Option("month", "--granularity", help="Time-window nodes: week, month or quarter."),
) -> None:
    """Build the graph and write it as GraphML or JSON."""
    from pathlib import Path

    from cityhub.clitools import fail
    from cityhub.errors import ValidationFailed
    from cityhub.outfiles import check_output

    inputs = [Path(input_path)] if input_path else []
    try:
        check_output(Path(out), "--out", inputs=inputs)
    except ValidationFailed as exc:
        raise fail(exc.message) from None
    graph = _graph_from(period, Path(input_path) if input_path else None, granularity)
    try:
        graph.write(Path(out))
    except OSError as exc:
        raise fail(f"cannot write --out {out}: {exc.strerror or exc}") from None
    g = graph.graph
    typer.echo(f"{g.graph['orders']} orders, {g.number_of_nodes()} nodes, {g.number_of_edges()} edges → {out}")


@graph_app.command("related")
def graph_related_command(
    node: str = typer.Option(..., "--node", help="Node id or name, e.g. 噪音 or category:噪音污染."),
    place: str | None = typer.Option(None, "--place", help="Only orders of this place, e.g. 石井街道."),
    period: str | None = typer.Option(None, "--period", help="2026-Q3, 2026-07, …"),
    kind: str | None = typer.Option(None, "--kind", help="category, topic, keyword, place or group."),
    top: int = typer.Option(10, "--top", min=1),
    input_path: str | None = typer.Option(None, "--input", help="CSV/Excel orders instead of the database."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """What goes with a node (in a place, in a period), ranked by NPMI, with counts, lift and p-value."""
    import json
    from pathlib import Path

    graph = _graph_from(period, Path(input_path) if input_path else None, "month")
    answer = graph.related(node, kind=kind, place=place, top=top)
    if fmt == "json":
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{', '.join(answer.query)} in {answer.matched} of {answer.universe} orders")
    rows = [{k: v for k, v in r.to_dict().items() if k != "node"} for r in answer.items]
    _kpi_emit(rows, ["kind", "name", "count", "support", "lift", "npmi", "p_value"], "table")


findings_app = typer.Typer(help="Risk findings: recurring problems, rising trends, daily anomalies.")
app.add_typer(findings_app, name="findings")


@findings_app.callback(invoke_without_command=True)
def findings_command(
    ctx: typer.Context,
    period: str | None = typer.Option(None, "--period", help="Evaluate at the end of this period (default: today)."),
    kind: list[str] | None = typer.Option(None, "--kind", help="recurring, rising or anomaly (repeatable)."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """List findings (``findings open ID`` opens a proactive order for one)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"period": period}
        return
    from cityhub.analytics import correlation, risk
    from cityhub.db import session_scope

    p = correlation.parse_period(period) if period else None
    with session_scope() as session:
        found = risk.findings(session, period=p, kinds=kind or risk.FINDING_KINDS)
    rows = [f.to_dict(with_orders=fmt == "json") for f in found]
    if fmt == "json":
        typer.echo(__import__("json").dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        r["score"] = f"q={r['q_value']:.2g}" if r["q_value"] is not None else f"z={r['z']:.1f}"
    _kpi_emit(rows, ["id", "kind", "count", "expected", "effect", "score", "summary"], "table")


@findings_app.command("open")
def findings_open_command(
    ctx: typer.Context,
    finding_id: str = typer.Argument(..., help="Finding id as listed (F…)."),
    period: str | None = typer.Option(None, "--period", help="The period the finding was listed with."),
) -> None:
    """Open a proactive order (channel grid) for a finding; a second call returns the same order."""
    from cityhub.analytics import correlation, risk
    from cityhub.db import session_scope

    text = period or (ctx.obj or {}).get("period")
    p = correlation.parse_period(text) if text else None
    with session_scope() as session:
        finding = risk.get_finding(session, finding_id=finding_id, period=p)
        order = risk.open_proactive_order(session, finding=finding)
        typer.echo(f"{order.number} (order {order.id}) for finding {finding_id}: {finding.summary()}")


def _report_language(value: str) -> str:
    """``--lang`` as the report names its languages; another value is a usage error (exit 2)."""
    from cityhub.analytics import reports
    from cityhub.errors import ValidationFailed

    try:
        return reports.report_language(value)
    except ValidationFailed as wrong:
        raise typer.BadParameter(wrong.message) from None


def report_command(
    period: str | None = typer.Option(
        None, "--period", help="Month 2026-10 (or a week 2026-W43 / range a..b); this or --week."
    ),
    week: str | None = typer.Option(None, "--week", help="A weekly report instead: ISO week, e.g. 2026-W43."),
    out: Path = typer.Option(Path("reports"), "--out", help="Directory to write the files to."),
    formats: str = typer.Option("html,pdf,xlsx", "--format", help="Comma-separated: html, pdf, xlsx."),
    min_sample: int = typer.Option(30, "--min-sample", min=0, help="Minimum sample for rankings."),
    lang: str = typer.Option(
        "zh", "--lang", metavar="zh|en", callback=_report_language, help="Language: zh (Simplified Chinese) or en."
    ),
) -> None:
    """Render the analysis report (专报) of a period: HTML and PDF with charts, tables to Excel."""
    from cityhub.analytics import kpi, reports
    from cityhub.clitools import fail
    from cityhub.db import session_scope
    from cityhub.outfiles import check_directory

    if (period is None) == (week is None):
        said = "both given" if period is not None else "neither given"
        raise fail(f"--period / --week: give the period or the week, one of them ({said})")
    p = kpi.parse_period(week or period or "")
    check_directory(out, "--out:", "the report")
    wanted = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    with session_scope() as session:
        result = reports.generate(session, period=p, out_dir=out, formats=wanted, min_sample=min_sample, lang=lang)
    for note in result.warnings:
        typer.echo(f"warning: {note}", err=True)
    for fmt, path in result.files.items():
        typer.echo(f"{fmt}\t{path}")


# --- hot topics (热点问题挖掘) -------------------------------------------------------------------------------


@app.command("hot-topics")
def hot_topics_command(
    input_path: Path | None = typer.Option(None, "--input", help="CSV/Excel orders (default: the database)."),
    top: int = typer.Option(20, "--top", min=1, help="How many topics to print."),
    fmt: str = typer.Option("table", "--format", help="table, json, or top5 (the competition's table)."),
    state: Path | None = typer.Option(
        None, "--state", help="With --input: model file to continue from (incremental) and to write back."
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-fit from scratch (new topic ids)."),
    threshold: float | None = typer.Option(None, "--threshold", help="Adjusted cosine needed inside a topic (0–1]."),
) -> None:
    """Mine hot topics (热点问题): fine-grained clusters by meaning and place, ranked by heat.

    Without --input the database's orders are mined and the topics stored (ids stay stable: later runs add new
    orders incrementally). With --input and --state FILE, a later run with another file adds its orders to the
    topics of FILE.
    """
    import json
    from dataclasses import replace

    from cityhub.analytics import hot_topics as ht

    if fmt not in {"table", "json", "top5"}:
        raise typer.BadParameter(f"unknown format '{fmt}' (table, json, top5)")
    if threshold is not None and not 0 < threshold <= 1:
        raise typer.BadParameter(f"{threshold:g} is not in (0, 1]", param_hint="--threshold")
    if state is not None and input_path is None:
        raise typer.BadParameter(
            "a state file goes with --input (the database's topics are kept in the database)", param_hint="--state"
        )
    params = ht.Params() if threshold is None else replace(ht.Params(), threshold=threshold)
    summary: dict[str, int]
    if input_path is not None:
        from cityhub.analytics import topics_store
        from cityhub.clitools import fail
        from cityhub.errors import ValidationFailed
        from cityhub.outfiles import check_output

        if state is not None:
            try:
                check_output(state, "--state", inputs=[input_path])
            except ValidationFailed as exc:
                raise fail(exc.message) from None
        if state is not None and state.exists() and not rebuild:
            try:
                model = topics_store.load_file(state)
            except ht.StaleModelState:
                raise typer.BadParameter(
                    f"{state} was written by an older version of the miner: run again with --rebuild",
                    param_hint="--state",
                ) from None
            except ValidationFailed as exc:
                raise fail(exc.message) from None
            summary = model.update(ht.read_orders_file(input_path))
        else:
            records = ht.iter_orders_file(input_path)
            empty = next(records, None) is None
            records.close()  # type: ignore[attr-defined]
            if empty:
                raise fail(f"{input_path}: no orders to mine (the file has no rows with a title or content)")
            model = ht.TopicModel(params)
            path = input_path
            model.fit(lambda: ht.iter_orders_file(path))  # streamed: the file is read twice, never held
            summary = {"orders": model.orders_seen, "joined": 0, "new_topics": len(model.topics)}
        if state is not None:
            try:
                topics_store.save_file(model, state)
            except OSError as exc:
                raise fail(f"cannot write --state {state}: {exc.strerror or exc}") from None
    else:
        from cityhub.analytics import topics_store
        from cityhub.db import session_scope

        with session_scope() as session:
            model, summary = topics_store.mine_database(session, rebuild=rebuild, params=params)
    ranked = model.ranked(top)
    if fmt == "json":
        typer.echo(json.dumps([t.to_dict() for t in ranked], ensure_ascii=False, indent=2))
        return
    repeated = f" ({summary['repeated']} more read before: not counted again)" if summary.get("repeated") else ""
    typer.echo(
        f"{summary['orders']} orders added{repeated}, {summary['joined']} joined existing topics, "
        f"{summary['new_topics']} new topics; {len(model.topics)} topics in all",
        err=True,
    )
    typer.echo(f"heat: {ht.heat_formula(model.params)}", err=True)
    if fmt == "top5":
        rows = ht.top_table(ranked, k=min(top, 5) if top < 5 else 5)
        _kpi_emit(rows, ["rank", "topic_id", "heat", "time_span", "place_population", "description"], "table")
        return
    rows = []
    for t in ranked:
        d = t.to_dict()
        span = [ht.local_date(s) for s in d["time_span"]]
        rows.append(
            {
                "id": t.id,
                "heat": f"{t.heat:.2f}",
                "size": t.size,
                "status": t.status,
                "span": f"{span[0]}..{span[1]}",
                "places": "、".join(d["places"][:3]),
                "groups": "、".join(d["groups"][:2]),
                "label": t.label,
                "title": t.representative,
            }
        )
    _kpi_emit(rows, ["id", "heat", "size", "status", "span", "places", "groups", "label", "title"], "table")
