"""``cityhub demo …`` — the demo district."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Demo district: Baiyun (白云区) with generated orders.")


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)") from None


@app.command("seed")
def seed_command(
    orders: Annotated[int, typer.Option("--orders", "-n", min=0, help="Number of orders to generate.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same orders.")] = 0,
    years: Annotated[float, typer.Option(min=0.01, help="Years of history, ending at --end.")] = 3.0,
    end: Annotated[str | None, typer.Option(help="Last day of the history (YYYY-MM-DD); default today.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Orders written and committed per batch.")] = 2000,
) -> None:
    """Create 白云区 (units, users, categories, time limits) and generated orders with full histories."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cityhub.db import session_factory
    from cityhub.demo.service import seed_demo

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
    if report.inserted:
        states = ", ".join(f"{k} {v}" for k, v in report.states.most_common())
        channels = ", ".join(f"{k} {v}" for k, v in report.channels.most_common())
        typer.echo(f"states: {states}")
        typer.echo(f"channels: {channels}")


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

    records = generate(orders, seed, years=years, end=_parse_date(end))
    if str(target) == "-":
        write_csv(sys.stdout, records)
        return
    with target.open("w", encoding="utf-8", newline="") as fh:
        count = write_csv(fh, records)
    typer.echo(f"wrote {count} orders to {target}")
