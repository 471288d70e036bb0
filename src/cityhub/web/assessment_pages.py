"""单位考核: one unit's assessment figures of a period, and the orders behind each (the drill-down).

The leaders' dashboard ranks the streets by their composite score; a unit's row links here: its eight rates with
numerator and denominator, each rate linking to the orders counted in it and whether each was a hit — the same
figures as ``GET /api/v1/kpi`` and ``GET /api/v1/kpi/drilldown`` (:mod:`cityhub.analytics.kpi`), for the same
readers: the rates of any unit for an overseer (as the dashboard's district-wide ranking), the orders behind them
for the units of the reader's data scope only; other staff the units of their scope.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.analytics import kpi, reports
from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of, shown_text
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.web import support
from cityhub.web.support import PageError, render
from cityhub.workorders.models import Order

router = APIRouter(include_in_schema=False)

DRILL_ROWS = 500  # the orders of one figure shown on the page; the API and the CLI give them all


def against_first(drill: kpi.Drilldown) -> list[dict[str, Any]]:
    """The drill-down's counted rows, those that count against the unit first — a miss of a rate where higher is
    better (not accepted in time, not satisfied), a hit of one where lower is better (returned, a repeat complaint) —
    each marked ``against``, in their order otherwise: a leader looked for the 5 unsatisfied callbacks among 59."""
    higher = kpi.KPI_BY_NAME[drill.kpi].direction == "higher"
    rows = [{**item, "against": item["hit"] != higher} for item in drill.denominator]
    return sorted(rows, key=lambda row: not row["against"])


def _titles(db: Session, principal: Principal, order_ids: set[int]) -> dict[int, str | None]:
    """The titles of the drill-down's orders as ``principal`` may read them (masked as the order list's)."""
    if not order_ids:
        return {}
    return {o.id: shown_text(principal, o, o.title) for o in db.scalars(select(Order).where(Order.id.in_(order_ids)))}


def orders_link(unit: Unit, period: kpi.Period, *, open_now: bool = False) -> str:
    """The order list of what a unit's figures are about: a street's or community's orders where they are (its
    figures count its communities' too, which its office does not lead), a department's what it leads; the
    period's received (``created_from``/``created_to``, as the dashboard's tiles) or those open now."""
    key = {UnitTier.STREET: "street_id", UnitTier.COMMUNITY: "community_id"}.get(unit.tier, "unit_id")
    criteria = [("state", "open")] if open_now else [("created_from", period.first), ("created_to", period.last)]
    return "/orders?" + urlencode([(key, unit.id), *criteria])


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
    drill = rows_shown = None
    titles: dict[int, str | None] = {}
    if chosen in kpi.KPI_BY_NAME and in_scope:  # an overseer sees every unit's rates, the orders of its scope's
        drill = kpi.drilldown(db, unit=unit_id, kpi=chosen, period=period)
        rows_shown = against_first(drill)[:DRILL_ROWS]
        ids = {row["order_id"] for row in rows_shown} | {row["order_id"] for row in drill.exempted[:DRILL_ROWS]}
        titles = _titles(db, principal, ids)
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
        drill_shown=rows_shown,
        drill_against=sum(1 for row in rows_shown or () if row["against"]),
        # 计入事项 only for a figure counting events (an accept, a reply, the sweep's mark): "—" on every row else.
        drill_events=any(row.get("event") for row in rows_shown or ()),
        titles=titles,
        drill_rows=DRILL_ROWS,
        may_drill=in_scope,
        # The unit's orders — of the period, open now — for whoever may read them (its scope's units).
        orders_links=(orders_link(unit, period), orders_link(unit, period, open_now=True)) if in_scope else None,
        by_place=unit.tier in (UnitTier.STREET, UnitTier.COMMUNITY),
        # Back to the ranking the page was reached from, of the same period.
        ranking_link=principal.role in support.OVERSEERS,
    )
