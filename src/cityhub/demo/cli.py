"""``cityhub demo …`` — the demo district."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from cityhub.clitools import aligned, examples

app = typer.Typer(no_args_is_help=True, help="Demo district: Baiyun (白云区) with generated orders.")


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)") from None


@app.command(
    "seed",
    epilog=examples(
        ("cityhub demo seed", "20000 orders in 3 years, logins"),
        ("cityhub demo seed --orders 3000 --years 1", "smaller, quicker"),
        ("cityhub demo seed --orders 0 --no-extras", "the organisation only"),
    ),
)
def seed_command(
    orders: Annotated[int, typer.Option("--orders", "-n", min=0, help="Number of orders to generate.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same orders.")] = 0,
    years: Annotated[float, typer.Option(min=0.01, help="Years of history, ending at --end.")] = 3.0,
    end: Annotated[str | None, typer.Option(help="Last day of the history (YYYY-MM-DD); default today.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Orders written and committed per batch.")] = 2000,
    extras: Annotated[
        bool,
        typer.Option(
            "--extras/--no-extras",
            help="Also demo logins, a classifier, knowledge entries, routing rules and hot topics.",
        ),
    ] = True,
) -> None:
    """Create 白云区 (units, users, categories, time limits) and generated orders with full histories.

    With the extras (default) the demo is usable at once: the demo users get the demo password
    (CITYHUB_DEMO_PASSWORD, else the documented one; only users without a password), a category classifier is
    trained on the demo's orders, and knowledge entries, routing rules and hot topics are seeded. Only with
    CITYHUB_ENVIRONMENT=demo; every step is skipped when already done.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cityhub.clitools import fail_with
    from cityhub.db import session_factory
    from cityhub.demo.extras import require_demo_environment
    from cityhub.demo.service import seed_demo
    from cityhub.errors import CityhubError

    try:
        require_demo_environment()
    except CityhubError as exc:
        raise fail_with(exc) from None
    last_day = _parse_date(end)
    started = datetime.now()
    with Progress(
        TextColumn("[bold]demo orders"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("seed", total=orders)
        report = seed_demo(
            session_factory(),
            orders=orders,
            seed=seed,
            years=years,
            end=last_day,
            batch_size=batch_size,
            on_batch=lambda k: progress.advance(task, k),
        )
    rate = report.generated / report.seconds if report.seconds else 0.0
    period = f"seed {seed}, {years:g} years to {last_day or started.date()}"
    typer.echo(
        f"generated {report.generated} orders ({period}): "
        f"{report.inserted} inserted, {report.skipped} already present, {report.events} events; "
        f"{report.seconds:.1f} s ({rate:.0f} orders/s)"
    )
    if report.already_seeded:
        typer.echo("already seeded: nothing generated")
    if report.inserted:
        states = ", ".join(f"{k} {v}" for k, v in report.states.most_common())
        channels = ", ".join(f"{k} {v}" for k, v in report.channels.most_common())
        typer.echo(f"states: {states}")
        typer.echo(f"channels: {channels}")
    if extras:
        _extras(new_orders=report.inserted > 0)


def _extras(*, new_orders: bool) -> None:
    """Run :func:`cityhub.demo.extras.prepare_demo` and say what it did, ending with the demo logins."""
    from cityhub.config import get_settings
    from cityhub.db import session_factory
    from cityhub.demo.extras import DEFAULT_DEMO_PASSWORD, prepare_demo

    started = datetime.now()
    # The first run works about a minute before its first line below: say what it is doing.
    typer.echo(
        "demo extras: logins, routing rules, knowledge base, sensors, classifier, appeals, hot topics "
        "(about a minute the first time) …"
    )
    r = prepare_demo(session_factory(), new_orders=new_orders)
    typer.echo(f"knowledge base: {r.kb_created} entries imported, {r.kb_entries} active")
    typer.echo(f"routing rules: {r.rules_created} created" if r.rules_created else "routing rules: already seeded")
    if r.sensors is not None:
        m = r.sensors
        typer.echo(
            f"monitoring: {m.sensors} sensors, {m.rules} alarm rules, {m.readings} readings; "
            f"{m.alarms_raised} alarms raised ({m.alarms_open} still open), {m.orders_opened} orders opened"
        )
    else:
        typer.echo("monitoring: already seeded")
    if r.model_trained:
        typer.echo(f"classifier: trained on {r.model_records} orders in {r.model_seconds:.1f} s → {r.model_path}")
    elif r.model_skipped:
        typer.echo(f"classifier: not trained, {r.model_skipped}")
    else:
        typer.echo(f"classifier: {r.model_path} (already there)")
    if r.model_path is not None and not r.model_skipped and not r.model_in_use:
        typer.echo(f"  the app uses it with: export CITYHUB_DISPATCH_MODEL_PATH={r.model_path.resolve()}")
    if r.new_appeals:
        if get_settings().dispatch_auto:
            fate = "cityhub serve sends the confident ones out, the others wait in the dispatcher's queue"
        else:
            fate = "waiting in the dispatcher's queue (待派单; CITYHUB_DISPATCH_AUTO=true sends the confident ones out)"
        typer.echo(f"new appeals: {r.new_appeals} received, {fate}")
    if r.citizen_appeals:
        typer.echo(f"citizens' own appeals: {r.citizen_appeals} filed for citizen and citizen2 (to follow and rate)")
    if r.staff_work:
        typer.echo(
            f"staff's work in hand: {r.staff_work} appeals (to accept, being worked, near or past their time limit, "
            "an extension to decide, answers to call back; one for street_dispatcher's queue)"
        )
    if r.replies_checked:
        typer.echo(f"replies checked: {r.replies_checked}, {r.weak_replies} weak (答复审核, for supervisor)")
    if r.exemptions:
        typer.echo(f"assessment exemptions (考核核减): {r.exemptions} requests, some pending for supervisor")
    if r.notices:
        typer.echo(f"staff notices (消息): {r.notices} more, an order urged and one returned to the dispatchers")
    if r.topics_skipped:
        typer.echo(f"hot topics: not mined, {r.topics_skipped}")
    else:
        typer.echo(f"hot topics: {r.topics} stored" + (" (mined now)" if r.topics_mined else ""))
    slow = ", ".join(f"{step.replace('_', ' ')} {sec:.1f} s" for step, sec in _slowest(r.seconds))
    typer.echo(f"demo extras: {(datetime.now() - started).total_seconds():.1f} s" + (f" ({slow})" if slow else ""))
    password = "(CITYHUB_DEMO_PASSWORD)" if r.password_from_env else DEFAULT_DEMO_PASSWORD
    typer.echo("")
    typer.echo(f"demo logins (password {password}; {r.passwords_set} set now, existing passwords kept):")
    for line in aligned([(login.username, login.role, login.full_name, login.unit) for login in r.logins]):
        typer.echo(line)
    if r.unit_handlers:
        typer.echo(f"  … and {r.unit_handlers} unit handler accounts h<unit code>, e.g. h440111-d02, h440111002")
    if r.track_example:
        number, phone = r.track_example
        typer.echo(f"progress lookup without a login (/track): order {number} with phone {phone}")


def _slowest(seconds: dict[str, float], *, count: int = 3) -> list[tuple[str, float]]:
    """The ``count`` slowest steps of the demo extras, slowest first: where a first run's minute went."""
    return sorted(seconds.items(), key=lambda item: -item[1])[:count]


@app.command("csv")
def csv_command(
    target: Annotated[Path, typer.Argument(help="CSV file to write ('-' for standard output).")],
    orders: Annotated[int, typer.Option("--orders", "-n", min=0, help="Number of orders to generate.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same orders.")] = 0,
    years: Annotated[float, typer.Option(min=0.01, help="Years of history, ending at --end.")] = 3.0,
    end: Annotated[str | None, typer.Option(help="Last day of history (YYYY-MM-DD); default today.")] = None,
) -> None:
    """Write generated orders as a CSV that ``cityhub import orders`` reads (no database needed)."""
    import sys

    from cityhub.demo.generator import generate, write_csv
    from cityhub.outfiles import check_output, open_output

    if str(target) != "-":
        check_output(target, "target")
    records = generate(orders, seed, years=years, end=_parse_date(end))
    if str(target) == "-":
        write_csv(sys.stdout, records)
        return
    with open_output(target, "target", newline="") as fh:
        count = write_csv(fh, records)
    typer.echo(f"wrote {count} orders to {target}")
