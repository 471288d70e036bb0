"""The ASGI application: health check, the REST API and the web UI (whose `/` is the status page) mount here."""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Scope

from cityhub import __version__, backup, migrate
from cityhub.api.deps import access_answers_first
from cityhub.config import get_settings
from cityhub.db import database_key, session_scope, utcnow
from cityhub.errors import CityhubError, Overloaded, PayloadTooLarge, ValidationFailed, schema_message
from cityhub.org.models import Unit
from cityhub.workorders import files
from cityhub.workorders.calendar import (
    MIN_WEEKDAY_HOLIDAYS,
    weekday_holidays_entered,
    years_by_law,
    years_short_of_holidays,
)
from cityhub.workorders.models import JobRun, Order, SlaStatus

log = logging.getLogger(__name__)


_COUNTS: dict[str, tuple[float, dict[tuple[Any, Any], int], datetime]] = {}
_COUNTS_LOCK = threading.Lock()


def _order_counts(session: Session) -> tuple[dict[tuple[Any, Any], int], datetime]:
    """Orders by (state, time-limit mark), and when they were counted: one pass over the table, reused by this
    process for ``CITYHUB_STATUS_COUNTS_SECONDS`` (health probes, anonymous visits to the status page and metrics
    scrapes must not each walk a million rows)."""
    ttl = get_settings().status_counts_seconds
    key = database_key(session)
    with _COUNTS_LOCK:  # one count at a time: probes arriving meanwhile wait for it and share it
        cached = _COUNTS.get(key)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1], cached[2]
        query = select(Order.state, Order.sla_status, func.count()).group_by(Order.state, Order.sla_status)
        by_pair: dict[tuple[Any, Any], int] = {(state, sla): count for state, sla, count in session.execute(query)}
        counted_at = utcnow()
        _COUNTS[key] = (time.monotonic(), by_pair, counted_at)
        return by_pair, counted_at


def forget_order_counts() -> None:
    """Drop the counts this process keeps (the tests' databases are emptied between tests)."""
    with _COUNTS_LOCK:
        _COUNTS.clear()


def status_summary(*, with_pairs: bool = False) -> dict[str, Any]:
    """Figures for the status page and /healthz: revision, units, orders by state, SLA marks, job runs, and the state
    of this process's similar-orders index and dispatch classifier, and the background dispatcher's backlog.
    ``with_pairs``: also the orders by (state, time-limit mark), ``orders_by_state_and_mark`` (for the metrics, from
    the same count)."""
    from cityhub.dispatch import background
    from cityhub.dispatch.service import model_status
    from cityhub.intake.dedupe import index_status

    with session_scope() as session:
        by_pair, counted_at = _order_counts(session)
        by_state: dict[Any, int] = {}
        by_sla: dict[Any, int] = {}
        for (state, sla), count in by_pair.items():
            by_state[state] = by_state.get(state, 0) + count
            by_sla[sla] = by_sla.get(sla, 0) + count
        units = dict(session.execute(select(Unit.tier, func.count()).group_by(Unit.tier)).all())
        jobs = session.execute(select(JobRun)).scalars().all()
        holidays = weekday_holidays_entered(session, today=utcnow().astimezone(get_settings().tz).date())
        pairs = {"orders_by_state_and_mark": dict(by_pair)} if with_pairs else {}
        return {
            **pairs,
            "version": __version__,
            "revision": migrate.revision(session.connection()),  # over the session's connection, not a new one
            "schema_head": migrate.head(),  # the revision this code needs; ``revision`` differs: see health_problems
            "units": {str(k.value): v for k, v in units.items()},
            "orders": {str(k.value): v for k, v in by_state.items()},
            "orders_total": sum(by_state.values()),
            "sla": {str(k.value): v for k, v in by_sla.items() if k != SlaStatus.NONE},
            "orders_counted_at": counted_at,  # the counts may be up to CITYHUB_STATUS_COUNTS_SECONDS old
            # ``failures``: runs in a row that raised since the last success (what went wrong: `cityhub jobs status`).
            "jobs": {
                j.name: {
                    "last_finished_at": j.last_finished_at,
                    "last_result": j.last_result,
                    "failures": j.failures,
                    "last_failed_at": j.last_failed_at,
                }
                for j in jobs
            },
            # Of the process that answered: "building" for a while after a start (cityhub serve warms it up).
            "similar_orders_index": index_status(session),
            "dispatch_model": model_status(),  # of the process that answered, as the index
            # New orders waiting for the background dispatcher, and how long the oldest has waited.
            "dispatch_backlog": background.status(session).as_dict(),
            # Years about to hold deadlines with no official holidays known (built in, computed by law, or at least
            # MIN_WEEKDAY_HOLIDAYS entered): see health_problems; those whose deadlines skip only the holidays the
            # law gives, the State Council's arrangement not entered yet: see health_notices; and, of the years about
            # to hold deadlines that the built-in calendar does not know, the weekday holidays entered so far.
            "calendar_years_without_holidays": years_short_of_holidays(holidays),
            "calendar_years_by_law": years_by_law(holidays),
            "calendar_weekday_holidays_entered": {str(year): count for year, count in holidays.items()},
            # Whether files attached to orders can be kept (CITYHUB_FILES_DIR): None, or why not.
            "file_store_problem": files.store_problem(),
        }


HOST_KEYS = ("host", "pid")  # in a job's result: which machine and process, for operators only


def public_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """:func:`status_summary` as the public probe (``/healthz``) and the anonymous status page show it: which machine
    runs what is for operators (``cityhub jobs status``), not for anyone who can reach the port. A job row named
    for its host (``background-dispatcher@HOST``) is numbered instead (``@1``, ``@2`` in the order of the names, so
    each host keeps its number while the set of hosts stays the same), and results lose their host and pid."""
    hosts = sorted({name.partition("@")[2] for name in summary["jobs"] if "@" in name})
    jobs: dict[str, Any] = {}
    for name, info in summary["jobs"].items():
        job, at, host = name.partition("@")
        result = info["last_result"]
        if isinstance(result, dict):
            result = {k: v for k, v in result.items() if k not in HOST_KEYS}
        jobs[f"{job}@{hosts.index(host) + 1}" if at else name] = {**info, "last_result": result}
    return {**summary, "jobs": jobs}


def health_problems(summary: dict[str, Any]) -> list[str]:
    """What ``/healthz`` reports as ``degraded`` (still HTTP 200: the process serves): a database schema this code
    was not written for, jobs whose last run failed, no database backup within ``CITYHUB_BACKUP_MAX_AGE_HOURS`` (when
    set), a configured classifier that is not there and a retrained one this process could not load. Error texts stay
    out (the probe is public)."""
    jobs = summary["jobs"].items()
    problems = [f"job {name}: last {info['failures']} run(s) failed" for name, info in jobs if info["failures"]]
    schema = migrate.schema_problem(revision=summary["revision"])
    if schema is not None:  # the database was migrated under a running process (or not yet)
        problems.insert(0, schema)
    entered = summary.get("calendar_weekday_holidays_entered", {})
    for year in summary.get("calendar_years_without_holidays", []):
        problems.append(
            f"working calendar: no official holidays for {year} (not built in; {entered.get(str(year), 0)} weekday "
            f"holidays entered, a year has at least {MIN_WEEKDAY_HOLIDAYS}); its deadlines count them as working "
            "days — enter them on the web UI's 工作日历 page (/admin/calendar) or with `cityhub calendar import FILE`"
        )
    stale_backup = backup.stale_backup_problem(summary["jobs"].get(backup.JOB_NAME), utcnow())
    if stale_backup is not None:  # CITYHUB_BACKUP_MAX_AGE_HOURS set, and no backup that recent
        problems.append(stale_backup)
    if summary.get("file_store_problem"):
        problems.append(f"file store: {summary['file_store_problem']}; files attached to orders are refused (503)")
    model = summary.get("dispatch_model")
    if model == "reload failed":
        problems.append("dispatch classifier: a retrained model failed to load; the previous one keeps deciding")
    elif model in ("missing", "unreadable"):
        problems.append(
            f"dispatch classifier: the configured model is {'not found' if model == 'missing' else 'unreadable'}; "
            "new orders wait in the queue with rule suggestions"
        )
    return problems


def health_notices(summary: dict[str, Any]) -> list[str]:
    """What ``/healthz`` tells without calling the process ``degraded``: a year about to hold deadlines whose
    holidays are the law's alone, computed, the State Council's arrangement for it not built in nor entered."""
    return [
        f"working calendar: {year} is not built in; its deadlines skip the holidays the law gives (computed), not "
        "the State Council's arrangement (调休: bridges, weekends worked) — once published, paste its notice on "
        "the web UI's 工作日历 page (/admin/calendar) or give it to `cityhub calendar import FILE`"
        for year in summary.get("calendar_years_by_law", [])
    ]


def _warm_up_dispatch() -> None:
    """The dispatch classifier and the units' gazetteer, loaded before the first decision needs them; then out of
    the garbage collector's sight, as intake's index is (a classifier holds hundreds of thousands of objects)."""
    from cityhub.dispatch.service import warm_up

    try:
        warm_up()
    except Exception:  # a server that could not warm up still serves: the first decision loads what it needs
        log.exception("dispatch warm-up failed")
    gc.freeze()


def _warm_up_findings() -> None:
    """The district's risk findings — the one map's hotspots, the city brain's 风险预警 — computed once in the
    background (``risk.cached_findings`` for the whole district), so a leader's first look does not wait seconds for
    them; a narrower scope (a street's) is computed on its first request."""
    from cityhub.analytics import risk
    from cityhub.auth.scope import Scope
    from cityhub.db import session_scope

    try:
        with session_scope() as session:
            risk.cached_findings(session, scope=Scope(everything=True))
    except Exception:  # the first request computes them instead
        log.exception("findings warm-up failed")


def _warm_up_graph() -> None:
    """The district's correlation graph over all its orders — what 关联分析 and ``/api/v1/graph/related`` answer the
    district's staff when no period is chosen — built once in the background (``correlation.graph_from_db``'s cache),
    so the first look after a start does not wait for it: 12.6 s at 200,000 orders. A narrower scope or a chosen
    period is built on its first request."""
    from cityhub.analytics import correlation
    from cityhub.db import session_scope

    try:
        with session_scope() as session:
            correlation.graph_from_db(session)
    except Exception:  # the first request builds it instead
        log.exception("correlation graph warm-up failed")


def warm_up_pages(app: FastAPI) -> None:
    """What the first request that reaches each route would otherwise do: FastAPI analyses the routes of an included
    router (their dependencies and models, ~0.7 s for all of cityhub's) on the first request matched against them,
    and Jinja compiles a page's template on its first render."""
    from starlette.routing import NoMatchFound

    from cityhub.web.support import load_templates

    with suppress(NoMatchFound):  # a name no route has: the search walks, so analyses, every route
        app.url_path_for("cityhub warm-up")
    load_templates()


def _kept_warm(what: str, keep_warm: Callable[[Session], dict[str, int]], *, moved: str) -> None:
    """One round of a ``keep_warm`` in its own session, said in the log as "``what`` kept warm" (at INFO when its
    count ``moved`` says it did something, else DEBUG); a failure is logged, not raised: whoever asks next does the
    work instead."""
    try:
        with session_scope() as session:
            done = keep_warm(session)
        log.log(logging.INFO if done[moved] else logging.DEBUG, "%s kept warm: %s", what, done)
    except Exception:
        log.exception("%s warm-up failed", what)


def _warm_up_reports() -> None:
    """The district's 专报 of this month and last month built and thrown away (``reports.keep_warm``) after each round
    of the KPI figures, so a leader's first report does not wait for matplotlib, its fonts and the drawing of charts
    whose figures have not moved: at 200,000 orders a server's first report of last month took 1.2 s, kept warm
    0.3 s (``bench/bench_report.py``)."""
    from cityhub.analytics import reports

    _kept_warm("reports", reports.keep_warm, moved="charts_drawn")


KPI_WARM_SECONDS = 600.0


def _keep_kpis_warm(stop: threading.Event, *, after_first: Callable[[], None] | None = None) -> None:
    """The district's assessment figures of the periods leaders open most (the last 30 days, this month, last month,
    this year: ``kpi.keep_warm``) kept current in this server's cache: computed in the background where something
    they read has changed since, every ``KPI_WARM_SECONDS``, so the dashboard's ranking, 单位考核 and the report
    answer at once when nothing has moved since the last round; after each round the reports of this month and last
    month (:func:`_warm_up_reports`). The first round after the other warm-ups, then ``after_first`` (a warm-up less
    often needed than the dashboard's figures)."""
    from cityhub.analytics import kpi

    while not stop.is_set():
        _kept_warm("kpi figures", kpi.keep_warm, moved="computed")
        _warm_up_reports()
        if after_first is not None:
            after_first()
            after_first = None
        stop.wait(KPI_WARM_SECONDS)


def _warm_up_in_background(app: FastAPI, stop: threading.Event) -> None:
    try:
        warm_up_pages(app)
    except Exception:  # the first requests do it instead
        log.exception("page warm-up failed")
    _warm_up_dispatch()
    _warm_up_findings()
    _keep_kpis_warm(stop, after_first=_warm_up_graph)  # the dashboard's figures before the graph


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(get_settings().server_switch_interval_ms / 1000)
    stop = checkpoints = warming = None
    from cityhub.metrics import server_started

    server_started()
    if os.environ.get("CITYHUB_RUN_SCHEDULER") == "1":
        from cityhub.jobs import start_background_scheduler

        _thread, stop = start_background_scheduler()
    if os.environ.get("CITYHUB_WARM_UP") == "1":  # set by ``cityhub serve``
        from cityhub.db import start_sqlite_checkpointer
        from cityhub.intake.dedupe import warm_up

        settings = get_settings()
        checkpoints = start_sqlite_checkpointer(settings.database_url, settings.sqlite_checkpoint_seconds)
        gc.freeze()  # the application's own objects live as long as the process: no collection need walk them
        warm_up()  # intake's index and gazetteer load in the background, not in the first appeals' requests
        warming = threading.Event()
        threading.Thread(
            target=_warm_up_in_background, args=(app, warming), name="cityhub-warm-up", daemon=True
        ).start()
    yield
    sys.setswitchinterval(switch_interval)
    if stop is not None:
        stop.set()
    if checkpoints is not None:
        checkpoints.set()
    if warming is not None:
        warming.set()


def _error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error body of the HTTP layer: {"code", "message", "details"}."""
    content = {"code": code, "message": message, "details": details or {}}
    return JSONResponse(status_code=status, content=content, headers=headers)


# Paths that answer machines, never with the web UI's pages: the API, Open311, the health check, the API's docs.
_MACHINE_PATHS = ("/api/", "/open311/", "/healthz", "/metrics", "/docs", "/openapi.json")


def _browser_page(request: Request) -> bool:
    """A browser asking for one of the web UI's pages or posting one of its forms (not a machine path or a static
    file)."""
    accepts_html = "text/html" in request.headers.get("accept", "")
    path = request.url.path
    return request.method in ("GET", "POST") and accepts_html and not path.startswith((*_MACHINE_PATHS, "/static/"))


def _error_page(request: Request, status: int, message_key: str) -> Response:
    """The web UI's error page (Chinese first, with the user's menu when they are signed in)."""
    from cityhub.web.support import error_page

    return error_page(request, status, message_key, _page_user(request, status))


def _page_user(request: Request, status: int) -> Any:
    """Whom an error page is for: the user the route signed in, else — an address no route serves, a malformed one —
    the session cookie's, so that a signed-in user following a dead link keeps their menu and is not shown 登录 as if
    signed out. Not looked up for a server error (the database may be what failed) or when the database cannot say."""
    from cityhub.web.support import principal_of

    principal = getattr(request.state, "principal", None)
    if principal is not None or status >= 500:
        return principal
    try:
        with session_scope() as db:
            return principal_of(request, db)
    except SQLAlchemyError:
        return None


# What a page says for a refusal its route let through, by status; anything else: the link was bad.
_PAGE_MESSAGES = {404: "err.page_not_found", 403: "err.forbidden", 409: "err.conflict_generic"}


# The head of /openapi.json and of /docs: what an integrator reads first, before the operations.
API_DESCRIPTION = (
    "Work orders, units, dispatch, monitoring and data sharing under `/api/v1`, and Open311 GeoReport v2 under "
    "`/open311/v2`.\n\n"
    "**Credentials** (*Authorize*): a personal API token (`Authorization: Bearer chub_…`, made with "
    "`POST /api/v1/auth/tokens`) for `/api/v1`; an API key (`X-API-Key: chk_…`, made by an administrator with "
    "`cityhub apikey create` or on the 数据共享 page) for the data-sharing API, Open311's `POST requests` and sensor "
    "readings. Each operation names the one it takes.\n\n"
    "**Errors** of `/api/v1` are `{code, message, details}` (schema `Error`), the message naming the field; Open311 "
    "answers GeoReport's error list.\n\n"
    "What a client can rely on beyond each operation — a quick start in curl, replays by `external_id`, paging, "
    "polling for changes by `cursor`, rate limits, webhooks and how to verify their signature — is in `docs/api.md` "
    "of cityhub's source."
)


def _malformed_json(error: Mapping[str, Any], body: Any) -> str:
    """What is wrong with a JSON body FastAPI could not parse, and where: the parser's own words (``Expecting value``,
    not FastAPI's bare "JSON decode error") at the character offset, with its line and column when the body is text
    (as Open311 says it)."""
    position = error["loc"][-1]
    problem = (error.get("ctx") or {}).get("error") or error["msg"]
    where = f"character {position}"
    if isinstance(body, str) and isinstance(position, int):
        line = body.count("\n", 0, position) + 1
        column = position - body.rfind("\n", 0, position)
        where += f" (line {line}, column {column})"
    return f"malformed JSON at {where}: {problem}"


def _media_type(request: Request) -> str:
    """The request's media type as sent, lower-case without parameters ("" when it sent no Content-Type)."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _json_media(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


_FORM_MEDIA = ("multipart/form-data", "application/x-www-form-urlencoded")


def _empty_body(request: Request) -> bool:
    """Whether the request came without a body: no length or a length of 0, and not sent in chunks."""
    headers = request.headers
    return headers.get("content-length", "0").strip() == "0" and "transfer-encoding" not in headers


def _body_type_problem(request: Request) -> str | None:
    """What is wrong with how an ``/api/`` request's body was sent, when its route's body could not be read for it:
    JSON sent without ``Content-Type: application/json`` (curl's ``-d`` sends a form's type; FastAPI then reads no
    JSON and answers as if the body were not an object), an empty body where the route takes a JSON object, or JSON
    sent to a route taking a multipart form (a file upload). None when the body was sent as its route reads it: then
    the schema's own errors say what is wrong."""
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    if body_field is None or not request.url.path.startswith("/api/"):
        return None
    media = _media_type(request)
    shown = f"Content-Type {media}" if media else "no Content-Type"
    if isinstance(body_field.field_info, params.Form):  # File is a Form: an upload, an import's file
        if media in _FORM_MEDIA:
            return None
        return f"this route takes a multipart/form-data body (a form with its files), not {shown}"
    if _empty_body(request):  # curl -X POST without -d: an action needing nothing still takes an object
        return "the body is empty: this route takes a JSON object ({} when there is nothing to give)"
    if _json_media(media):
        return None
    return f"the body must be JSON sent with Content-Type: application/json; the request sent {shown}"


def _body_encoding_problem(exc: StarletteHTTPException) -> str | None:
    """What FastAPI's bare "There was an error parsing the body" (400) was, when it was a body not in UTF-8 — JSON
    written in GBK, as older systems of the district write it: the byte that is not UTF-8 and where."""
    cause = exc.__cause__
    if not isinstance(cause, UnicodeDecodeError):
        return None
    byte = cause.object[cause.start : cause.start + 1]
    return (
        f"the body is not UTF-8 (byte 0x{byte.hex().upper()} at byte {cause.start}): JSON is read in UTF-8 "
        f"(RFC 8259); send it encoded so, whatever charset the Content-Type names"
    )


def _multipart_problem(exc: StarletteHTTPException) -> str | None:
    """What Starlette's 400 for a multipart body it could not parse was, when the body itself is malformed (not when
    it is over one of the parser's limits): no ``boundary`` in its Content-Type (a client that wrote the header by
    hand, letting its library write the body), or parts that are not multipart."""
    cause = exc.__cause__ or exc.__context__
    if not isinstance(cause, MultiPartException):
        return None
    if cause.message == "Missing boundary in multipart.":
        return (
            "the multipart/form-data body has no boundary: its Content-Type must name the one its parts are "
            "separated by (multipart/form-data; boundary=…), as an HTTP library writes it with the body"
        )
    if cause.message == "Invalid multipart data." or "Content-Disposition" in cause.message:
        return f"the multipart/form-data body cannot be read: {cause.message}"
    return None


# The multipart parser's limits (Starlette's, as FastAPI applies them to the API's uploads), as its refusals name them:
# (its words, the limit's name, its unit in the words: parts or KiB).
_MULTIPART_LIMITS = (
    (re.compile(r"Too many files\. Maximum number of files is (\d+)\."), "max_files"),
    (re.compile(r"Too many fields\. Maximum number of fields is (\d+)\."), "max_fields"),
    (re.compile(r"(?:Part|Field) exceeded maximum size of (\d+)KB\."), "max_part_size"),
)


def _multipart_limit(exc: StarletteHTTPException) -> CityhubError | None:
    """The refusal of a form body over one of the parser's limits (Starlette's 400 with its bare words): too many
    files or fields — 422 naming the limit and its value — or a field (a part without a filename) too large — 413
    ``payload_too_large`` with the limit in bytes, as the API's cap on bodies says it. ``details``: ``limit`` (the
    parser's name of it), ``limit_value`` (parts, or bytes)."""
    cause = exc.__cause__ or exc.__context__
    if not isinstance(cause, MultiPartException):
        return None
    for pattern, name in _MULTIPART_LIMITS:
        if (found := pattern.fullmatch(cause.message)) is None:
            continue
        value = int(found.group(1))
        if name == "max_part_size":
            size = value * 1024
            message = (
                f"a field of the form (a part without a filename) is larger than the parser reads, {value} KiB "
                f"({name} {size} bytes): send a file as a file part (with a filename), text shorter"
            )
            return PayloadTooLarge(message, details={"limit": name, "limit_value": size, "limit_bytes": size})
        parts = "files (parts with a filename)" if name == "max_files" else "fields (parts without a filename)"
        message = f"the form has more {parts} than the parser reads, {value} ({name}): send fewer in one request"
        error = {"field": "(body)", "message": message}
        return ValidationFailed(
            f"invalid request: (body): {message}", details={"errors": [error], "limit": name, "limit_value": value}
        )
    return None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CityhubError)
    async def _domain_error(request: Request, exc: CityhubError) -> Response:
        if _browser_page(request):  # a page route that let a refusal through
            page = _error_page(request, exc.http_status, _PAGE_MESSAGES.get(exc.http_status, "err.bad_link"))
            page.headers.update(exc.http_headers)
            return page
        # Retry-After for every refusal that says when (a rate-limited key's malformed body answered here, too).
        return _error(exc.http_status, exc.code, exc.message, exc.details, exc.http_headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api/") and any(e.get("type") == "json_invalid" for e in exc.errors()):
            # FastAPI refuses a malformed JSON body before any dependency: who may call answers first all the same.
            try:
                await access_answers_first(request)
            except CityhubError as refused:
                return await _domain_error(request, refused)
        errors = [
            # Malformed JSON is located by its character offset, which is no field.
            {"field": "(body)", "message": _malformed_json(e, exc.body)}
            if e.get("type") == "json_invalid"
            else {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "(body)",
                "message": schema_message(e["msg"]),
            }
            for e in exc.errors()
        ]
        if (problem := _body_type_problem(request)) and any(e["loc"][:1] == ("body",) for e in exc.errors()):
            # Every error of a body sent as the route does not read it is that one: the request's body, sent wrong.
            kept = [e for e, raw in zip(errors, exc.errors(), strict=True) if raw["loc"][:1] != ("body",)]
            errors = [{"field": "(body)", "message": problem}, *kept]
        if _browser_page(request):
            # A page address with a malformed part (/orders/abc) is no page; a malformed query is a bad link.
            in_path = any(e["loc"][:1] == ("path",) for e in exc.errors())
            return _error_page(request, 404 if in_path else 400, "err.page_not_found" if in_path else "err.bad_link")
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _error(422, "validation_failed", f"invalid request: {summary}", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (404, 405) and _browser_page(request):
            return _error_page(request, 404, "err.page_not_found")
        if request.url.path.startswith("/api/") and (problem := _body_encoding_problem(exc) or _multipart_problem(exc)):
            # A body that is not UTF-8 is not valid JSON, a multipart body without its boundary no form: the 422 of
            # a malformed body, once who may call answered.
            try:
                await access_answers_first(request)
            except CityhubError as refused:
                return await _domain_error(request, refused)
            error = {"field": "(body)", "message": problem}
            return _error(422, "validation_failed", f"invalid request: (body): {problem}", {"errors": [error]})
        if request.url.path.startswith("/api/") and (over := _multipart_limit(exc)) is not None:
            # A form over the parser's limits: what limit, and its value (it was this 400, "Too many files …").
            try:
                await access_answers_first(request)
            except CityhubError as refused:
                return await _domain_error(request, refused)
            return await _domain_error(request, over)
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, _exc: StaleDataError) -> Response:
        if _browser_page(request):
            return _error_page(request, 409, "err.conflict")
        return _error(409, "conflict", "the order was changed by someone else at the same time; reload and retry")

    @app.exception_handler(OperationalError)
    async def _operational(_request: Request, exc: OperationalError) -> JSONResponse:
        if "database is locked" in str(exc.orig):
            # SQLite refuses a write whose read snapshot another writer has moved past: same as a stale copy.
            return _error(409, "conflict", "the data changed while this request ran; retry")
        log.error("database error: %s", exc.orig, exc_info=exc)
        return _error(500, "internal_error", "database error")

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> Response:
        # SQLSTATE class 22: a value the database cannot hold or compare (an id beyond INTEGER, NUL in text).
        # The request carried it, so it is the client's error; ids and texts are not bounded one route at a time.
        # A page's address holding such an id is no page; a form holding such a text says so (it was "not found").
        if _browser_page(request):
            if request.method == "POST":
                return _error_page(request, 400, "err.unstorable")
            return _error_page(request, 404, "err.page_not_found")
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
        return _error(422, "validation_failed", f"invalid value: {reason}", {"errors": []})

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        if "SQLite INTEGER" in str(exc):  # SQLite's form of the out-of-range id above
            if _browser_page(request):
                return _error_page(request, 404, "err.page_not_found")
            return _error(422, "validation_failed", "invalid value: integer out of range", {"errors": []})
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", "internal error; the incident has been logged")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        if _browser_page(request):
            return _error_page(request, 500, "err.internal")
        return _error(500, "internal_error", "internal error; the incident has been logged")


def _refusal(scope: Scope, refused: Overloaded) -> Response | None:
    """What the admission gate answers when it refuses a request (see api/gate.py): Open311's error format on its
    routes, the UI's page that reloads itself for a browser's page, else (None) the one JSON error body."""
    from cityhub.api.gate import wants_page

    path = str(scope.get("path", ""))
    if path.startswith("/open311/"):
        from cityhub.api.open311 import error_response

        return error_response("xml" if path.endswith(".xml") else "json", refused)
    if wants_page(scope) and not path.startswith(_MACHINE_PATHS):
        from cityhub.web.support import busy_page

        return busy_page(scope, refused.retry_after)
    return None


def _body_limit(path: str) -> int | None:
    """The cap on a request's body that :class:`cityhub.api.bodylimit.BodyLimit` keeps: the API's; the pages and
    Open311 read theirs themselves."""
    if not path.startswith("/api/"):
        return None
    from cityhub.api.gate import get_gate_settings

    return int(get_gate_settings().http_max_body_mb * 1024 * 1024)


def create_app() -> FastAPI:
    # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from CDNs: off; api/docs.py serves /docs from npm.
    app = FastAPI(
        title="cityhub",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )

    _install_error_handlers(app)
    from starlette.middleware.gzip import GZipMiddleware

    from cityhub.api import compression
    from cityhub.api.gate import get_gate_settings

    if min_bytes := get_gate_settings().http_gzip_min_bytes:  # innermost: the metrics count what goes out
        app.add_middleware(GZipMiddleware, **compression.options(min_bytes))
    from cityhub.api.bodylimit import BodyLimit

    app.add_middleware(BodyLimit, limit_of=_body_limit)  # inside the gate: a waiting request's body is not read yet
    from cityhub.api.gate import RequestGate

    app.add_middleware(RequestGate, refusal=_refusal)  # admission control: see api/gate.py
    from cityhub.metrics import HttpMetrics

    app.add_middleware(HttpMetrics)  # outside the gate: its refusals and waits are counted and timed too
    from cityhub.api.headers import SecurityHeaders

    app.add_middleware(SecurityHeaders)  # added last, so outermost: the gate's refusals carry the headers too
    from cityhub.api.router import api_router

    app.include_router(api_router)
    # Open311 GeoReport v2 keeps its own path, as civic apps expect it (not under /api/v1).
    from cityhub.api.open311 import router as open311_router

    app.include_router(open311_router)
    from cityhub.api.credentials import describe_security
    from cityhub.api.docs import describe_errors
    from cityhub.api.docs import router as docs_router

    app.include_router(docs_router)
    described = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's description, built once, with the errors cityhub answers and the credentials it takes."""
        if app.openapi_schema is None:
            app.openapi_schema = describe_security(describe_errors(described()), app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        summary = public_summary(status_summary())
        problems = health_problems(summary)
        return {
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "notices": health_notices(summary),
            **summary,
        }

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus metrics (see cityhub.metrics): off unless CITYHUB_METRICS_ENABLED, then only to the allowed
        networks and, with CITYHUB_METRICS_TOKEN, its bearer."""
        from cityhub import metrics

        client = request.client.host if request.client is not None else None
        metrics.check_access(metrics.get_metrics_settings(), client, request.headers.get("authorization"))
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    # The web UI (workbenches, status page at /; labels in cityhub.web.i18n catalogues).
    from cityhub.web.routes import install as install_web

    install_web(app)

    return app
