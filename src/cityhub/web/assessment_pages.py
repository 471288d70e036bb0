"""单位考核: one unit's assessment figures of a period, and the orders behind each (the drill-down).

The leaders' dashboard ranks the streets by their composite score; a unit's row links here: its eight rates with
numerator and denominator, each rate linking to the orders counted in it and whether each was a hit — the same
figures as ``GET /api/v1/kpi`` and ``GET /api/v1/kpi/drilldown`` (:mod:`cityhub.analytics.kpi`), for the same
readers: the rates of any unit for an overseer (as the dashboard's district-wide ranking), the orders behind them
for the units of the reader's data scope only; other staff the units of their scope.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cityhub.analytics import kpi, reports
from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.scope import scope_of
from cityhub.org.models import Role, Unit
from cityhub.web import support
from cityhub.web.support import PageError, render

router = APIRouter(include_in_schema=False)

DRILL_ROWS = 500  # the orders of one figure shown on the page; the API and the CLI give them all


@router.get("/assessment/{unit_id}", response_class=HTMLResponse)
def unit_assessment(unit_id: int, request: Request, db: DbSession) -> Response:
    principal = support.require_user(request, db, permissions.ORDER_READ)
    if principal.role == Role.CITIZEN:
        raise PageError(403, "err.forbidden")
    scope = scope_of(db, principal)
    unit = db.get(Unit, unit_id)
    in_scope = scope.everything or unit_id in scope.units
    if unit is None or not (in_scope or principal.role in support.OVERSEERS):
        raise PageError(404, "err.unit_not_found")  # out of scope: as if it did not exist, as the API answers
    choice = support.period_choice(request)
    period = choice.period
    rows = kpi.compute(db, period=period, unit_ids=[unit_id])
    row = rows[0] if rows else None
    chosen = request.query_params.get("kpi", "")
    drill = None
    if chosen in kpi.KPI_BY_NAME and in_scope:  # an overseer sees every unit's rates, the orders of its scope's
        drill = kpi.drilldown(db, unit=unit_id, kpi=chosen, period=period)
    return render(
        request,
        "assessment.html",
        principal=principal,
        unit=unit,
        # 本单位考核 (the menu's name of it) for the unit's own staff, 单位考核 for whoever else reads it.
        own=principal.role in permissions.UNIT_STAFF_ROLES and principal.unit_id == unit.id,
        row=row,
        kpis=kpi.KPIS,
        # What each figure counts, in the page's language (the 专报 says it alike).
        plain={k.name: k.explained(reports.report_language(support.language(request))) for k in kpi.KPIS},
        period=period,
        error=choice.error,
        typed_period=choice.box,
        recent_days=choice.recent_days,
        chosen=chosen if drill is not None else None,
        drill=drill,
        drill_rows=DRILL_ROWS,
        may_drill=in_scope,
    )
