"""The ASGI application: a status page and health check now; the REST API and web UI mount here."""

from __future__ import annotations

import html
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cityhub import __version__, migrate
from cityhub.db import session_scope
from cityhub.errors import CityhubError
from cityhub.org.models import Unit
from cityhub.workorders.models import JobRun, Order, SlaStatus

log = logging.getLogger(__name__)


def status_summary() -> dict[str, Any]:
    """Figures for the status page and /healthz: revision, units, orders by state, SLA marks, job runs."""
    with session_scope() as session:
        by_state = dict(session.execute(select(Order.state, func.count()).group_by(Order.state)).all())
        by_sla = dict(session.execute(select(Order.sla_status, func.count()).group_by(Order.sla_status)).all())
        units = dict(session.execute(select(Unit.tier, func.count()).group_by(Unit.tier)).all())
        jobs = session.execute(select(JobRun)).scalars().all()
        return {
            "version": __version__,
            "revision": migrate.current(),
            "units": {str(k.value): v for k, v in units.items()},
            "orders": {str(k.value): v for k, v in by_state.items()},
            "orders_total": sum(by_state.values()),
            "sla": {str(k.value): v for k, v in by_sla.items() if k != SlaStatus.NONE},
            "jobs": {j.name: {"last_finished_at": j.last_finished_at, "last_result": j.last_result} for j in jobs},
        }


# Status-page labels (zh-CN first). The web UI's i18n layer replaces this table when it lands.
LABELS = {
    "title": "cityhub 城市运行一网统管",
    "orders": "工单",
    "units": "单位",
    "sla": "时限",
    "jobs": "定时任务",
    "received": "已受理",
    "dispatched": "已派单",
    "returned": "已退单",
    "accepted": "已签收",
    "in_progress": "办理中",
    "suspended": "挂起",
    "replied": "已答复",
    "called_back": "已回访",
    "closed_resolved": "办结-已解决",
    "closed_unresolved": "办结-未解决",
    "merged": "已合并",
    "cancelled": "已作废",
    "ok": "正常",
    "warning": "预警",
    "overdue": "超期",
    "district": "区",
    "street": "镇街",
    "community": "村社",
    "department": "职能部门",
    "subcentre": "分中心",
    "city": "市",
}


def _table(title: str, rows: dict[str, Any]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(LABELS.get(k, k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<h2>{html.escape(title)}</h2><table>{body or '<tr><td>—</td></tr>'}</table>"


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    stop = None
    if os.environ.get("CITYHUB_RUN_SCHEDULER") == "1":
        from cityhub.jobs import start_background_scheduler

        _thread, stop = start_background_scheduler()
        from cityhub.intake.dedupe import warm_up

        warm_up()  # the first build of the similar-orders index runs in the background
    yield
    if stop is not None:
        stop.set()


def _error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> JSONResponse:
    """The one error body of the HTTP layer: {"code", "message", "details"}."""
    return JSONResponse(status_code=status, content={"code": code, "message": message, "details": details or {}})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CityhubError)
    async def _domain_error(_request: Request, exc: CityhubError) -> JSONResponse:
        return _error(exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body") or "(body)", "message": e["msg"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _error(422, "validation_failed", f"invalid request: {summary}", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(StaleDataError)
    async def _stale(_request: Request, _exc: StaleDataError) -> JSONResponse:
        return _error(409, "conflict", "the order was changed by someone else at the same time; reload and retry")

    @app.exception_handler(OperationalError)
    async def _operational(_request: Request, exc: OperationalError) -> JSONResponse:
        if "database is locked" in str(exc.orig):
            # SQLite refuses a write whose read snapshot another writer has moved past: same as a stale copy.
            return _error(409, "conflict", "the data changed while this request ran; retry")
        return _error(500, "internal_error", "database error")

    @app.exception_handler(DataError)
    async def _unstorable(_request: Request, exc: DataError) -> JSONResponse:
        # SQLSTATE class 22: a value the database cannot hold or compare (an id beyond INTEGER, NUL in text).
        # The request carried it, so it is the client's error; ids and texts are not bounded one route at a time.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
        return _error(422, "validation_failed", f"invalid value: {reason}", {"errors": []})

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, exc: OverflowError) -> JSONResponse:
        if "SQLite INTEGER" in str(exc):  # SQLite's form of the out-of-range id above
            return _error(422, "validation_failed", "invalid value: integer out of range", {"errors": []})
        return _error(500, "internal_error", "internal error; the incident has been logged")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", "internal error; the incident has been logged")


def create_app() -> FastAPI:
    app = FastAPI(title="cityhub", version=__version__, lifespan=_lifespan)

    _install_error_handlers(app)
    from cityhub.api.router import api_router

    app.include_router(api_router)
    # Open311 GeoReport v2 keeps its own path, as civic apps expect it (not under /api/v1).
    from cityhub.api.open311 import router as open311_router

    app.include_router(open311_router)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **status_summary()}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        s = status_summary()
        jobs = {k: (v["last_finished_at"] or "—") for k, v in s["jobs"].items()}
        return (
            "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<title>{LABELS['title']}</title><meta name='viewport' content='width=device-width'>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px}</style></head><body>"
            f"<h1>{LABELS['title']}</h1><p>v{s['version']} · schema {html.escape(str(s['revision']))} · "
            f"{LABELS['orders']} {s['orders_total']}</p>"
            + _table(LABELS["orders"], s["orders"])
            + _table(LABELS["sla"], s["sla"])
            + _table(LABELS["units"], s["units"])
            + _table(LABELS["jobs"], jobs)
            + "</body></html>"
        )

    return app
