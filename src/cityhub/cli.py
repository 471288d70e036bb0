"""The ``cityhub`` command line. Commands only translate: the work happens in the service layer."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cityhub.clitools import CANNOT_RUN, examples, exit_code, fail, said
from cityhub.config import configure_logging, log_level, uvicorn_log_config
from cityhub.errors import CityhubError

if TYPE_CHECKING:
    import sqlalchemy.exc

# Where to begin, under the commands of `cityhub --help`: the usual first steps, and where the rest is described.
EXAMPLES = examples(
    ("cityhub config show", "every setting and its source"),
    ("cityhub db upgrade", "create or migrate the database"),
    ("cityhub serve --port 8000 --workers 2", "web UI, API, scheduled jobs"),
    ("cityhub db backup --dir DIR --keep 14", "a copy while the service runs"),
    ("cityhub apikey create --client NAME --scopes open311:write", ""),
    more="Each command's --help says more; README.md (Command line),\ndocs/operations.md and docs/api.md the rest.",
)

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="cityhub — unified city operations.", epilog=EXAMPLES
)
db_app = typer.Typer(no_args_is_help=True, help="Database: migrations and backups.")
jobs_app = typer.Typer(no_args_is_help=True, help="Scheduled jobs, run on demand.")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")


_mounted = False


def _mount() -> None:
    """Add the domain packages' sub-commands (declared beside their code) to ``app``, once: mounting again would add
    every group a second time, and each invocation builds the whole command tree."""
    global _mounted
    if _mounted:
        return
    from cityhub.auth.cli import app as users_app
    from cityhub.config_cli import app as config_app
    from cityhub.demo.cli import app as demo_app
    from cityhub.dispatch.cli import app as dispatch_app
    from cityhub.intake.cli import export_app, import_app
    from cityhub.knowledge.cli import app as kb_app
    from cityhub.nlp.cli import app as nlp_app
    from cityhub.notify.cli import app as notify_app
    from cityhub.org.cli import app as org_app
    from cityhub.sharing.cli import app as apikey_app
    from cityhub.workorders.categories import categories_app
    from cityhub.workorders.cli import app as orders_app
    from cityhub.workorders.cli import calendar_app, files_app, sla_app

    app.add_typer(org_app, name="org")
    app.add_typer(users_app, name="users")
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
    app.add_typer(demo_app, name="demo")
    app.add_typer(orders_app, name="orders")
    app.add_typer(files_app, name="files")
    app.add_typer(nlp_app, name="nlp")
    app.add_typer(categories_app, name="categories")
    app.add_typer(calendar_app, name="calendar")
    app.add_typer(sla_app, name="sla")
    app.add_typer(kb_app, name="kb")
    app.add_typer(notify_app, name="notify")
    app.add_typer(apikey_app, name="apikey")
    app.add_typer(dispatch_app, name="dispatch")
    app.add_typer(config_app, name="config")
    from cityhub.monitoring.cli import alarms_app, rules_app, sensors_app

    app.add_typer(sensors_app, name="sensors")
    app.add_typer(rules_app, name="alarm-rules")
    app.add_typer(alarms_app, name="alarms")
    from cityhub.analytics.cli import app as analytics_app

    app.add_typer(analytics_app, name="analytics")
    from cityhub.analytics.cli import report_command

    app.command("report")(report_command)  # 专报: top-level, `cityhub report --period 2026-10`
    _mounted = True


def _make_sqlite_folder() -> None:
    """Make the folder of the SQLite file ``db upgrade`` is to create, or exit 2 in one line naming it and why (a
    path under a folder the service user may not write, a file where a folder should be): it was a traceback."""
    import os

    from sqlalchemy.engine import make_url

    from cityhub.config import get_settings

    parsed = make_url(get_settings().database_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    database = Path(str(parsed.database))
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(
            f"db upgrade: cannot make the folder {database.parent} for the database file {database} "
            f"(CITYHUB_DATABASE_URL): {exc.strerror or exc}",
            CANNOT_RUN,
        ) from None
    if not database.exists() and not os.access(database.parent, os.W_OK | os.X_OK):
        raise fail(
            f"db upgrade: cannot create the database file {database} (CITYHUB_DATABASE_URL): this user may not write "
            f"in {database.parent}",
            CANNOT_RUN,
        )


@db_app.command(
    "upgrade",
    epilog=examples(
        ("cityhub db upgrade", "to this release's migration (creates a new SQLite file)"),
        ("cityhub db current", "the migration the database is at"),
    ),
)
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database named by CITYHUB_DATABASE_URL (a new SQLite file is created)."""
    from alembic.util import CommandError

    from cityhub import migrate

    _make_sqlite_folder()
    now = migrate.current()
    if not migrate.known(now):  # a newer release migrated it: alembic would only say it cannot locate the revision
        raise fail(
            f"db upgrade: {migrate.schema_problem(revision=now)}; install that release or restore a backup", CANNOT_RUN
        )
    try:
        migrate.upgrade(revision=revision)
    except CommandError as exc:  # a revision the migrations do not have: alembic says which
        raise fail(f"db upgrade {revision}: {str(exc).strip().splitlines()[0]}") from None
    if migrate.current() == migrate.head():  # the orders' change numbers are there (migration 0040)
        from cityhub.db import session_scope
        from cityhub.workorders import changes

        with session_scope() as session:
            renumbered = changes.renumber_restored(session)
        if renumbered:
            typer.echo(f"{renumbered} orders restored from another server numbered again for the feed of changes")
    typer.echo(f"database at revision {migrate.current()}")


@db_app.command(
    "downgrade",
    epilog=examples(
        ("cityhub db backup /var/backups/cityhub/before-rollback.dump", "first: what the downgrade drops is gone"),
        ("cityhub db downgrade 0057_kb_public --yes", "back to an earlier release's migration"),
    ),
)
def db_downgrade(
    revision: Annotated[
        str,
        typer.Argument(
            help="Target revision: an earlier migration's id (the release notes name each release's; `cityhub db "
            "current` the database's)."
        ),
    ],
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Drop the later migrations' tables and columns and the data they hold."),
    ] = False,
) -> None:
    """Migrate the database back to an earlier revision, to roll a release back: run it with the NEWER release still
    installed (it holds the migrations' way back), then install the older one. What later migrations added — tables,
    columns and their data — is dropped: take a backup first. Refused, as `db restore` is, while another process
    (serve, worker) has the database open."""
    from alembic.util import CommandError

    from cityhub import migrate
    from cityhub.backup import refuse_while_in_use

    missing = migrate.missing_file()
    if missing is not None:
        raise fail(missing, CANNOT_RUN)
    now = migrate.current()
    if not migrate.known(now):
        raise fail(
            f"db downgrade: {migrate.schema_problem(revision=now)}; run the release that migrated it to go back",
            CANNOT_RUN,
        )
    if now is None:
        raise fail("db downgrade: the database was never migrated: nothing to go back from", CANNOT_RUN)
    if not migrate.known(revision):
        raise fail(f"db downgrade {revision}: no such migration (cityhub db current names the one it is at)")
    if not yes:
        raise fail(
            f"db downgrade {revision}: drops what the migrations after it added, with its data (the database is at "
            f"{now}): take a backup (cityhub db backup FILE), then run it again with --yes"
        )
    refuse_while_in_use()  # as db restore: the server running on it would meet tables and columns gone
    try:
        migrate.downgrade(revision=revision)
    except CommandError as exc:  # a revision after the current one, or ahead of it on another branch: alembic says
        raise fail(f"db downgrade {revision}: {str(exc).strip().splitlines()[0]}") from None
    typer.echo(f"database at revision {migrate.current() or '(empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision ((empty): a database never migrated); a SQLite file that is not there
    is said in one line, exit 2, and not created."""
    from cityhub import migrate

    missing = migrate.missing_file()
    if missing is not None:  # not an empty database: a wrong path, which asking must not create
        raise fail(missing, CANNOT_RUN)
    typer.echo(migrate.current() or "(empty)")


@db_app.command("compact")
def db_compact() -> None:
    """Give the space of deleted rows and dropped columns back (SQLite VACUUM, PostgreSQL VACUUM FULL); locks each
    table while it works: run it in a quiet hour."""
    from cityhub import migrate

    missing = migrate.missing_file()
    if missing is not None:
        raise fail(missing, CANNOT_RUN)
    before, after = migrate.compact()
    typer.echo(f"database compacted: {before / 1e6:,.1f} MB → {after / 1e6:,.1f} MB")


@db_app.command(
    "backup",
    epilog=examples(
        ("cityhub db backup /var/backups/cityhub/pre-upgrade.dump", ""),
        ("cityhub db backup --dir /var/backups/cityhub --keep 14", "nightly"),
    ),
)
def db_backup(
    target: Annotated[
        Path | None, typer.Argument(metavar="FILE", help="File to write the copy to (or give --dir DIR).")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Instead of FILE: write a new file into the directory DIR, named for the backend, the database and "
            "the local time (cityhub-sqlite-cityhub-20261206-021500.db, cityhub-postgresql-cityhub-….dump).",
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep",
            min=1,
            metavar="N",
            help="With --dir: then remove the oldest backups this command made there beyond the newest N (files "
            "named as --dir names them, of this backend; nothing else is touched).",
        ),
    ] = None,
) -> None:
    """Take a consistent copy of the database while the service runs (the files attached to orders are not in it:
    copy their directory too). Each run is recorded as the job db-backup (/healthz, the status page, /metrics); a
    FILE or DIR refused before anything was copied (a directory given as FILE, a path through a file) is not; a
    folder it may not write is a failure."""
    from cityhub import migrate
    from cityhub.backup import backup, backup_into
    from cityhub.db import utcnow
    from cityhub.outfiles import TargetRefused
    from cityhub.workorders.files import get_file_settings

    if (target is None) == (directory is None):
        raise fail("db backup: give a FILE or --dir DIR (one of them)", CANNOT_RUN)
    if keep is not None and directory is None:
        raise fail("db backup: --keep applies to --dir DIR", CANNOT_RUN)
    missing = migrate.missing_file()
    if missing is not None:  # a database it cannot use: 2 and the words of every other command (a cron job alerts)
        raise fail(missing, CANNOT_RUN)
    started = utcnow()
    try:
        if directory is not None:
            rotation = backup_into(directory, keep=keep)
            written, info = rotation.written, rotation.description
        else:
            assert target is not None
            written, info = target, backup(target)
    except TargetRefused:  # a mistyped argument, no backup attempted: /healthz is not to say backups fail
        raise
    except CityhubError as exc:
        _record_backup(started, failure=exc.message)
        raise
    typer.echo(f"backup written to {written} ({info})")
    result: dict[str, object] = {"file": written.name, "bytes": written.stat().st_size}
    if directory is not None:
        for path in rotation.removed:
            typer.echo(f"removed old backup {path}")
        result.update(removed=len(rotation.removed), kept=rotation.kept)
    _record_backup(started, result=result)
    files_dir = Path(get_file_settings().dir)
    if files_dir.is_dir():
        # Files are named by their content and never rewritten: a copy that skips existing files is complete.
        typer.echo(f"files attached to orders are kept apart, in {files_dir.resolve()}: copy that directory too")


def _record_backup(started: datetime, *, result: dict[str, object] | None = None, failure: str | None = None) -> None:
    """Record a ``db backup`` run as the job ``db-backup`` (a success with ``result``, else the ``failure``), when the
    database can take it: not a SQLite file that is not there, nor a schema this code was not written for (a backup
    works on those). A backup is not undone by a record that could not be written: a success says so on stderr."""
    from cityhub import jobs, migrate
    from cityhub.backup import JOB_NAME
    from cityhub.db import session_scope

    try:
        problem = migrate.open_problem() or migrate.schema_problem()
        if problem is None:
            if failure is not None:
                jobs.record_failure(JOB_NAME, error=failure)
                return
            assert result is not None
            with session_scope() as session:
                jobs.record(session, JOB_NAME, started=started, result=result)
            return
    except Exception as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if failure is None:
        typer.echo(f"warning: the backup is not recorded among the jobs ({JOB_NAME}): {problem}", err=True)


@db_app.command("restore")
def db_restore(
    source: Annotated[Path, typer.Argument(help="A file `cityhub db backup` wrote (of this backend).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    upgrade: Annotated[
        bool, typer.Option("--upgrade", help="Then migrate the restored database as `cityhub db upgrade` does.")
    ] = False,
) -> None:
    """Replace the database named by CITYHUB_DATABASE_URL with a backup, with every cityhub process stopped (refused
    while another process has the database open). SQLite keeps the database it replaces beside it
    (<file>.before-restore-<time>); PostgreSQL restores in one transaction (a failure changes nothing)."""
    from cityhub import migrate
    from cityhub.backup import check_restore, restore

    plan = check_restore(source)
    if not yes:
        typer.confirm(
            f"Replace the database {plan.database} with the backup {source} (migration {plan.revision})? Everything "
            "written since that backup is lost",
            abort=True,
        )
    done = restore(plan)
    typer.echo(f"restored {source} into {plan.database} (migration {plan.revision})")
    if done.kept_aside is not None:
        typer.echo(f"the database as it was before is kept as {done.kept_aside}")
    elif plan.backend == "sqlite" and not done.had_database:
        typer.echo(f"there was no database at {plan.database}: the backup is now in its place")
    head = migrate.head()
    if upgrade or plan.revision == head:
        # At the code's migration too: orders restored from another server are numbered again for the changes feed.
        db_upgrade("head")
    else:
        typer.echo(
            f"the backup is at migration {plan.revision}, this version of cityhub needs {head}: run `cityhub db "
            "upgrade` before starting cityhub (or restore with --upgrade)"
        )


@jobs_app.command("run")
def jobs_run(name: Annotated[str, typer.Argument(help="Job name, e.g. sla-sweep.")]) -> None:
    """Run one scheduled job now and print its result."""
    import json

    from cityhub import jobs

    try:
        result = jobs.run_job(name)
    except KeyError:
        raise fail(f"unknown job '{name}' (known: {', '.join(sorted(jobs.JOBS))})") from None
    typer.echo(json.dumps(result, ensure_ascii=False, default=str))


@jobs_app.command("status")
def jobs_status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per job.")] = False) -> None:
    """Each job's last run: started, finished, failures in a row since the last success and the last error (also the
    runs recorded outside the schedule: the background dispatcher's heartbeat, classifier retraining); a scheduled
    job that has not run yet says so, with its interval."""
    import json

    from sqlalchemy import select

    from cityhub.db import session_scope
    from cityhub.jobs import JOBS
    from cityhub.workorders.models import JobRun

    with session_scope() as session:
        rows = session.execute(select(JobRun).order_by(JobRun.name)).scalars().all()
        records = {
            r.name: {
                "name": r.name,
                "last_started_at": r.last_started_at,
                "last_finished_at": r.last_finished_at,
                "failures": r.failures,
                "last_failed_at": r.last_failed_at,
                "last_error": r.last_error,
            }
            for r in rows
        }
    never = dict.fromkeys(("last_started_at", "last_finished_at", "last_failed_at", "last_error"))
    for name in sorted(records.keys() | JOBS.keys()):
        rec = records.get(name) or {"name": name, **never, "failures": 0}
        if as_json:
            typer.echo(json.dumps(rec, ensure_ascii=False, default=str))
        elif rec["last_started_at"] is None and name in JOBS:
            typer.echo(f"{name}\tnever run\tevery {JOBS[name].interval()} s")
        else:
            state = f"FAILING ({rec['failures']} in a row): {rec['last_error']}" if rec["failures"] else "ok"
            typer.echo(f"{name}\tlast finished {rec['last_finished_at'] or '-'}\t{state}")


@jobs_app.command("list")
def jobs_list() -> None:
    """List the scheduled jobs and their intervals."""
    from cityhub import jobs

    for job in jobs.JOBS.values():
        typer.echo(f"{job.name}\tevery {job.interval()}s\t{job.description}")


@app.command("admin-log")
def admin_log(
    area: Annotated[
        str | None,
        typer.Option(
            help="unit, user, api_client, category, sla_rule, calendar_day, sensor, alarm_rule, dispatch_rule, "
            "dispatch_threshold, kb_entry"
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="a login name, a rule's id, a day (2027-02-08), a sensor's code, a category's id, a knowledge "
            "entry's id"
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="entries, newest first")] = 50,
) -> None:
    """The configuration log (操作日志): who changed accounts, time limits, the calendar, sensors, alarm and routing
    rules and thresholds, knowledge entries, from what to what (tab-separated: time, actor, area, target, action,
    changes as JSON, reason)."""
    import json

    from cityhub import auditlog
    from cityhub.db import session_scope

    with session_scope() as session:
        rows, _ = auditlog.entries(session, area=area, target=target, limit=limit)
        for e in rows:
            changes = json.dumps(e.changes, ensure_ascii=False, sort_keys=True)
            typer.echo(f"{e.at.isoformat()}\t{e.actor}\t{e.area}\t{e.target}\t{e.action}\t{changes}\t{e.reason or ''}")


@app.command(
    epilog=examples(
        ("cityhub serve", "127.0.0.1:8000, jobs inside"),
        ("cityhub serve --host 0.0.0.0 --workers 2", "two processes"),
        ("cityhub serve --no-scheduler --no-dispatcher", "`cityhub worker` beside"),
    )
)
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8000,
    scheduler: Annotated[bool, typer.Option(help="Run scheduled jobs inside the server.")] = True,
    dispatcher: Annotated[
        bool,
        typer.Option(
            help="With automatic dispatch in the background: run the dispatcher's process beside the server's "
            "(--no-dispatcher: `cityhub worker` runs it)."
        ),
    ] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (one per core uses every core; jobs are shared safely).")
    ] = 1,
) -> None:
    """Serve the web UI and API (scheduled jobs run inside unless --no-scheduler, the background dispatcher beside
    unless --no-dispatcher)."""
    import os
    import socket

    import uvicorn

    from cityhub.dispatch import background
    from cityhub.serving import CannotListen, claim_port

    _warn_unknown_variables()
    _require_valid_settings()
    _require_current_schema()
    try:
        claim_port(host, port)  # held until this process ends
    except CannotListen as exc:  # the port taken, or an address not this machine's: it cannot run
        raise fail(str(exc), CANNOT_RUN) from None
    os.environ["CITYHUB_RUN_SCHEDULER"] = "1" if scheduler else "0"
    os.environ["CITYHUB_WARM_UP"] = "1"
    dispatcher = dispatcher and background.enabled()
    if (workers > 1 or dispatcher) and hasattr(socket, "SO_REUSEPORT"):
        from cityhub.serving import serve_reuseport

        serve_reuseport(host=host, port=port, workers=workers, dispatcher=dispatcher)
        return
    if dispatcher:
        typer.echo(
            "warning: no SO_REUSEPORT here; run `cityhub worker` beside the server for the background dispatcher",
            err=True,
        )
    from cityhub.serving import exit_on_sigterm, ignore_reload_signal, limit_native_threads

    limit_native_threads()
    exit_on_sigterm()
    ignore_reload_signal()  # with --workers 2 or more (no SO_REUSEPORT) uvicorn's supervisor has its own
    uvicorn.run(
        "cityhub.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level().lower(),
        log_config=uvicorn_log_config(),
        workers=workers,
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Run every due job once and exit.")] = False,
) -> None:
    """Run scheduled jobs (SLA sweep, …) and the background dispatcher (automatic dispatch, the duplicate checks
    intake leaves to it), until stopped."""
    from cityhub import jobs
    from cityhub.dispatch import background

    _warn_unknown_variables()
    _require_valid_settings()
    _require_current_schema()
    if once:
        jobs.run_worker(once=True)
        if background.enabled():
            background.run_once(limit=None)
        return
    import signal
    import threading

    from cityhub.serving import limit_native_threads

    limit_native_threads()
    stop = threading.Event()

    def stopping(signum: int, _frame: object) -> None:
        # The job running now finishes (an outbox message being sent is not left to wait out its lease).
        logging.getLogger("cityhub.worker").info("worker stopping (%s)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    dispatcher = background.start_thread()[1] if background.enabled() else None
    try:
        jobs.run_worker(stop=stop)
    finally:
        if dispatcher is not None:
            dispatcher.set()


def _run_app() -> None:
    """Run the command line as Typer would, but say a usage error (a missing argument, an unknown command or option, a
    bad value) in one line like every other error — ``error: Missing argument 'REF'. Try 'cityhub orders show --help'
    for help.`` (exit 2) — instead of a usage block and a boxed message."""
    # click's exceptions as this Typer raises them (its own copy of click from 0.2x, click's before).
    errors = sys.modules[typer.BadParameter.__module__]
    help_asked = getattr(errors, "NoArgsIsHelpError", ())
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="cityhub", standalone_mode=False)
    except help_asked as asked:  # a group run without a command: its help, as the group's --help shows it
        typer.echo(asked.ctx.get_help() if asked.ctx is not None else asked.format_message())
        sys.exit(CANNOT_RUN)
    except errors.UsageError as wrong:
        said = wrong.format_message().rstrip()
        if wrong.ctx is not None:
            said = f"{said}{'' if said.endswith('.') else '.'} Try '{wrong.ctx.command_path} --help' for help."
        typer.echo(f"error: {said}", err=True)
        sys.exit(wrong.exit_code)
    except errors.ClickException as failed:
        typer.echo(f"error: {failed.format_message()}", err=True)
        sys.exit(failed.exit_code)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    # Outside standalone mode a command's typer.Exit comes back as its code (a command itself returns None).
    if isinstance(code, int) and code:
        sys.exit(code)


def main() -> None:
    import sqlalchemy.exc
    from pydantic import ValidationError

    from cityhub.db import checked_before_open

    configure_logging()
    _mount()
    try:
        with checked_before_open(_refuse_unusable_database):
            _run_app()
    except CityhubError as exc:
        typer.echo(f"error: {said(exc)}", err=True)
        sys.exit(exit_code(exc))
    except ValidationError as exc:
        problem = _settings_problem(exc)
        if problem is None:
            raise
        typer.echo(f"error: {problem}", err=True)
        sys.exit(CANNOT_RUN)
    except sqlalchemy.exc.DBAPIError as exc:
        typer.echo(f"error: {_database_problem(exc)}", err=True)
        sys.exit(CANNOT_RUN)


def _settings_problem(exc: Exception) -> str | None:
    """One line naming every invalid setting, as `cityhub config show` says it, when ``exc`` is a settings class's
    validation error (a command read the settings); None for any other validation error."""
    from cityhub.config import settings_classes
    from cityhub.config_cli import InvalidSettings, effective_settings

    if getattr(exc, "title", None) not in {cls.__name__ for _, cls in settings_classes()}:
        return None
    try:
        effective_settings()
    except InvalidSettings as invalid:
        return f"invalid settings: {invalid}"
    return None


def _database_problem(exc: sqlalchemy.exc.DBAPIError) -> str:
    """One line for a database error: a schema behind the code (the usual cause of a missing table) says so."""
    from cityhub import migrate

    try:
        problem = migrate.schema_problem()
    except Exception:  # the database cannot be reached at all: its own message says why
        problem = None
    if problem is not None:
        return problem
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    return f"database: {detail}"


def _warn_unknown_variables() -> None:
    """A long-running process names, at its start, each CITYHUB_ variable no setting reads (a misspelt name)."""
    from cityhub.config import unknown_variable_warnings

    for warning in unknown_variable_warnings():
        logging.getLogger("cityhub.config").warning("%s", warning)


def _require_valid_settings() -> None:
    """A server or worker does not start with an invalid setting, whichever settings class reads it: a package's
    settings are read at their first use, so every request or job that uses one would fail (a 500 on each login)."""
    from cityhub.config_cli import InvalidSettings, effective_settings

    try:
        effective_settings()
    except InvalidSettings as exc:
        raise fail(f"invalid settings: {exc}", CANNOT_RUN) from None


def _require_current_schema() -> None:
    """A server or worker does not start on a database its code was not written for (nor on a missing SQLite file:
    it would create an empty one)."""
    from cityhub import migrate

    problem = migrate.open_problem() or migrate.schema_problem()
    if problem is not None:
        raise fail(problem, CANNOT_RUN)


def _refuse_unusable_database(url: str) -> None:
    """Before a command first opens the database: refuse, in one line, a SQLite file that is not there and a database
    a newer release migrated, as the server does (``migrate.open_problem``); nothing is read or written. Exits by
    SystemExit, which a job runner's or a retry loop's ``except Exception`` does not take for a failure of its own."""
    from cityhub import migrate

    problem = migrate.open_problem(url)
    if problem is not None:
        raise SystemExit(fail(problem, CANNOT_RUN).exit_code)


if __name__ == "__main__":
    main()
