"""``cityhub import …`` and ``cityhub export …`` — bulk intake and export of orders."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from cityhub.clitools import RejectedRow, examples, print_rejected, refuse_if_nothing_imported
from cityhub.clitools import fail as _fail

if TYPE_CHECKING:
    from rich.console import Console

    from cityhub.intake.importer import ImportReport

import_app = typer.Typer(no_args_is_help=True, help="Bulk import (CSV, Excel).")
export_app = typer.Typer(no_args_is_help=True, help="Export orders with their histories (CSV, Excel, Parquet).")

IMPORT_EXAMPLES = examples(
    ("cityhub import orders orders.csv --errors rejected.csv", "rejected rows"),
    ("cityhub import orders past.xlsx --as-history", "stored closed"),
    ("cityhub import orders export.csv --column content=来信内容", "other headers"),
    ("cityhub import orders live.csv --dispatch", "then dispatched"),
)

# How many rejected rows are listed on stderr; the --errors file always has all of them.
SHOWN_ISSUES = 50


@import_app.callback(epilog=IMPORT_EXAMPLES)
def _import_group() -> None:
    """Bulk import (CSV, Excel)."""


@export_app.callback()
def _export_group() -> None:
    """Export orders with their histories (CSV, Excel, Parquet)."""


@import_app.command("orders", epilog=IMPORT_EXAMPLES)
def import_orders_cmd(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or Excel file.")],
    errors: Annotated[
        Path | None, typer.Option("--errors", help="Write every rejected/warned row to this CSV.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, no per-row report (the summary line stays).")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per committed batch.")] = 5000,
    channel: Annotated[str | None, typer.Option(help="Channel of every row (default: the file's, or import).")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet name (default: the first).")] = None,
    as_history: Annotated[
        bool,
        typer.Option(
            "--as-history",
            help="Orders dealt with elsewhere: store them closed (a reply: closed_resolved, none: closed_unresolved), "
            "out of the queue, the SLA sweep and the reply check; every row needs created_at.",
        ),
    ] = False,
    dispatch: Annotated[
        bool,
        typer.Option(
            "--dispatch",
            help="Hand the new received orders to the background dispatcher (automatic dispatch, duplicate merges), "
            "as appeals created over the API; without it they wait for a dispatcher or `cityhub dispatch run`.",
        ),
    ] = False,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="FIELD=HEADER: the file's column for a field its header does not name (repeatable), e.g. "
            "--column content=来信内容 --column title=诉求标题.",
        ),
    ] = None,
) -> None:
    """Import orders from a CSV or Excel file; re-running it adds nothing twice.

    Headers in Chinese or English (留言编号/id, 留言主题/title, 留言详情/content, 留言时间/created_at, 一级分类…,
    地址/address, lat, lng, 所属街道/street, 所属社区/community, 答复意见/reply_text, …); other columns are kept as
    attributes; --column names the column of a field under another header. Rows without a street or community are
    placed afterwards by the place-orders job (cityhub orders place).

    The one-line summary (read, imported, already present, rejected) always ends the output on stderr, with --quiet
    too. Exit code 0 when the file was processed (rejected rows are listed, not fatal), 1 when it cannot be read or
    every row read was rejected (nothing imported, nothing already present); a file that becomes unreadable midway
    (malformed CSV) keeps the rows before it, prints the summary of them and exits 1. Bytes that are not text in the
    file's encoding reject their row only.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from cityhub.db import session_factory
    from cityhub.dispatch import background
    from cityhub.errors import ValidationFailed
    from cityhub.intake.importer import ImportStopped, import_orders, parse_column_choices
    from cityhub.outfiles import check_output, open_output

    try:
        columns = parse_column_choices(column or [])
    except ValidationFailed as exc:
        raise _fail(exc.message) from None

    console = Console(stderr=True, soft_wrap=True)
    progress = Progress(
        TextColumn("importing {task.fields[name]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[imported]} imported"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not sys.stderr.isatty(),
        transient=True,
    )
    task = progress.add_task("import", total=None, name=file.name, imported=0)
    state = {"imported": 0}

    def on_progress(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total, imported=state["imported"])

    def on_batch(report: object) -> None:
        state["imported"] = getattr(report, "imported", 0)

    if dispatch and not as_history and not background.enabled():
        console.print(
            "warning: --dispatch: no background dispatcher runs with this configuration "
            "(CITYHUB_DISPATCH_IN_BACKGROUND off): the new orders wait for a dispatcher or `cityhub dispatch run`",
            markup=False,
            highlight=False,
        )
    if errors is not None:
        try:
            check_output(errors, "--errors", inputs=[file])
        except ValidationFailed as exc:
            raise _fail(exc.message) from None
    errors_fh: IO[str] | None = None

    def open_errors() -> IO[str]:
        # Only once the input has opened: a file that cannot be read leaves the --errors file as it was.
        nonlocal errors_fh
        assert errors is not None
        errors_fh = open_output(errors, "--errors", inputs=[file], encoding="utf-8-sig", newline="")
        return errors_fh

    session = session_factory()()
    stopped: ImportStopped | None = None
    try:
        with progress:
            report = import_orders(
                session,
                path=file,
                batch_size=batch_size,
                channel=channel,
                sheet=sheet,
                issues_to=open_errors if errors is not None else None,
                on_progress=on_progress,
                on_batch=on_batch,
                as_history=as_history,
                columns=columns,
                dispatch=dispatch,
            )
    except ImportStopped as exc:
        stopped, report = exc, exc.report
    except ValidationFailed as exc:  # the file cannot be read, the --errors file cannot be written, a bad option
        raise _fail(exc.message) from None
    finally:
        session.close()
        if errors_fh is not None:
            errors_fh.close()

    _print_report(console, report, file=file, errors=errors, stopped=stopped is not None, rows=not quiet)
    if as_json:
        typer.echo(json.dumps(report.summary() | ({"stopped": stopped.message} if stopped else {}), ensure_ascii=False))
    if stopped is not None:
        raise _fail(stopped.message)
    refuse_if_nothing_imported(file.name, report.imported + report.skipped, report.rejected)


def _print_report(
    console: Console, report: ImportReport, *, file: Path, errors: Path | None, stopped: bool, rows: bool
) -> None:
    """The rejected rows and kinds of warnings (``rows``), then always the one-line summary, on stderr: the counts,
    and the batch the imported orders are, with the web path listing them."""
    from cityhub.workorders.schemas import batch_orders_path

    if rows:
        rejected = [RejectedRow(i.row, i.field, i.message) for i in report.issues if i.level == "error"]
        hint = f" (all in {errors})" if errors else " (use --errors FILE for all of them)"
        print_rejected(file.name, rejected, shown=SHOWN_ISSUES, total=report.rejected, rest=hint)
        for kind, count in report.warning_counts.most_common():
            console.print(f"warning: {kind} ({count} rows)", markup=False, highlight=False)
    if not report.rejected:
        note = ""
    elif rows:
        note = " — rejected rows were not imported, see above"
    else:
        note = " — rejected rows were not imported" + (f", see {errors}" if errors else " (--errors FILE lists them)")
    if stopped:
        note += " — stopped by the error below: the rows after it were not read"
    # The orders it created are one batch: the order list (web, API) lists exactly them.
    batch = f" as import batch {report.batch_id} ({batch_orders_path(report.batch_id)})" if report.batch_id else ""
    console.print(
        f"{file.name}: read {report.read}, imported {report.imported}{batch}, "
        f"skipped {report.skipped} already present, rejected {report.rejected}"
        f"{f', queued {report.queued} for dispatch' if report.queued else ''}{note}",
        markup=False,
        highlight=False,
    )


@export_app.command("orders")
def export_orders_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, xlsx or parquet.")] = "csv",
    since: Annotated[str | None, typer.Option(help="First local day (YYYY-MM-DD), inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="Last local day (YYYY-MM-DD), inclusive.")] = None,
    state: Annotated[list[str] | None, typer.Option("--state", help="Only orders in this state (repeatable).")] = None,
    unmasked: Annotated[
        bool, typer.Option(help="Write citizens' names, phone numbers, addresses and texts unmasked.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Export orders with their audit trails (CSV: plus <stem>.events.csv; Excel: sheet 'events';
    Parquet: nested column 'events')."""
    from rich.console import Console
    from rich.progress import Progress

    from cityhub.db import session_factory
    from cityhub.errors import ValidationFailed
    from cityhub.intake.exporter import ExportFilter, export_orders, parse_states

    try:
        flt = ExportFilter(since=_day(since, "--since"), until=_day(until, "--until"), states=parse_states(state or []))
    except ValidationFailed as exc:
        raise _fail(exc.message) from None
    if flt.since is not None and flt.until is not None and flt.since > flt.until:
        raise _fail(f"--since {since} is after --until {until}: no day is in between")
    console = Console(stderr=True, soft_wrap=True)
    progress = Progress(console=console, disable=quiet or not sys.stderr.isatty(), transient=True)
    task = progress.add_task("exporting", total=None)
    session = session_factory()()
    try:
        with progress:
            result = export_orders(
                session,
                out=out,
                fmt=fmt.lower(),
                flt=flt,
                unmasked=unmasked,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except ValidationFailed as exc:
        raise _fail(exc.message) from None
    finally:
        session.close()
    if not quiet:
        console.print(
            f"exported {result.orders} orders, {result.events} events to {', '.join(result.files)}",
            markup=False,
            highlight=False,
        )


def _day(value: str | None, option: str) -> date | None:
    from cityhub.errors import ValidationFailed

    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{option}: expected a date YYYY-MM-DD, got '{value}'") from None
