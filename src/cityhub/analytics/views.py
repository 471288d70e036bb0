"""HTTP routes of assessment (考核): KPIs per unit, rankings and drill-down.

Access (kept simple, on top of the permission table): leaders, supervisors and admins (:data:`OVERSEERS`) see
every unit's figures and the rankings. Other staff with a unit (dispatchers, handlers, operators) see only their own
unit's figures, and no rankings; citizens get 403. A drill-down lists orders, so it follows the data scope: a reader
who sees the whole district drills into any unit, any other into the units of their scope (a street's supervisor or
handler into the street and its communities) — another unit is 404, as a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from cityhub.analytics import kpi
from cityhub.api.deps import CurrentPrincipal, DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.errors import NotFound, PermissionDenied
from cityhub.org.models import Role

router = APIRouter(prefix="/kpi", tags=["assessment"])

OVERSEERS = frozenset({Role.LEADER, Role.SUPERVISOR, Role.ADMIN})


def _staff(principal: CurrentPrincipal) -> Principal:
    if principal.role == Role.CITIZEN or not permissions.allows(principal.role, permissions.ORDER_READ):
        raise PermissionDenied("assessment figures are for staff", details={"permission": "kpi:read"})
    if principal.role not in OVERSEERS and principal.unit_id is None:
        raise PermissionDenied("staff without a unit have no assessment figures", details={"permission": "kpi:read"})
    return principal


def _overseer(principal: CurrentPrincipal) -> Principal:
    if principal.role not in OVERSEERS:
        raise PermissionDenied(
            "rankings are for leaders, supervisors and administrators", details={"permission": "kpi:rank"}
        )
    return principal


Staff = Annotated[Principal, Depends(_staff)]
Overseer = Annotated[Principal, Depends(_overseer)]
PeriodQ = Annotated[
    str, Query(description="2026-10 (month), 2026-W43 (ISO week), 2026-10-05, a..b range, 2026-Q4 or 2026")
]
TierQ = Annotated[str | None, Query(description="Only units of this tier (street, community, department …).")]
RepeatQ = Annotated[int, Query(ge=1, le=365, description="Window of the repeat-complaint rate, days.")]


@router.get("/definitions")
def definitions() -> list[dict[str, Any]]:
    """The KPI table: names, labels, numerator/denominator definitions, direction and composite weight; ``plain_zh``
    and ``plain_en``, what the numerator and the denominator count in plain words (as the assessment page and the
    专报 say it), the repeat window the default's."""
    return [{**k.__dict__, "plain_zh": list(k.explained("zh")), "plain_en": list(k.explained("en"))} for k in kpi.KPIS]


@router.get("")
def kpis(
    db: DbSession, principal: Staff, period: PeriodQ, tier: TierQ = None, repeat_days: RepeatQ = 30
) -> dict[str, Any]:
    """Every KPI (numerator, denominator, rate) of every unit with counts in the period."""
    p = kpi.parse_period(period)
    units = None if principal.role in OVERSEERS else [principal.unit_id or -1]
    rows = kpi.compute(db, period=p, tier=tier, unit_ids=units, repeat_days=repeat_days)
    return {"period": p.label, "start": p.start, "end": p.end, "units": [r.as_dict() for r in rows]}


@router.get("/ranking")
def ranking(
    db: DbSession,
    _principal: Overseer,
    period: PeriodQ,
    kpi_name: Annotated[str, Query(alias="kpi", description="A KPI name, or 'score' (composite).")] = "score",
    tier: TierQ = None,
    min_sample: Annotated[int, Query(ge=0, le=100_000)] = kpi.DEFAULT_MIN_SAMPLE,
    repeat_days: RepeatQ = 30,
) -> dict[str, Any]:
    """Units ranked by one KPI or the composite score; units below ``min_sample`` are listed apart."""
    p = kpi.parse_period(period)
    result = kpi.ranking(db, period=p, kpi=kpi_name, tier=tier, min_sample=min_sample, repeat_days=repeat_days)
    return {"period": p.label, **result.as_dict()}


@router.get("/drilldown")
def drilldown(
    db: DbSession,
    principal: Staff,
    unit_id: int,
    period: PeriodQ,
    kpi_name: Annotated[str, Query(alias="kpi")],
    repeat_days: RepeatQ = 30,
) -> dict[str, Any]:
    """The orders behind one unit's figure: all counted (denominator) and those in the numerator."""
    scope = scope_of(db, principal)
    if not scope.everything and unit_id not in scope.units:
        raise NotFound(f"unit {unit_id} not found")  # like out-of-scope orders: reveal nothing
    p = kpi.parse_period(period)
    return kpi.drilldown(db, unit=unit_id, kpi=kpi_name, period=p, repeat_days=repeat_days).as_dict()


@router.get("/report", response_class=Response)
def report(
    request: Request,
    db: DbSession,
    principal: Overseer,
    period: PeriodQ,
    fmt: Annotated[str, Query(alias="format", description="html, pdf or xlsx")] = "html",
    min_sample: Annotated[int, Query(ge=0, le=10_000, description="minimum sample for rankings")] = 30,
    lang: Annotated[
        str | None,
        Query(description="The report's language: zh or en (zh-CN is zh); without it, the reader's web UI language."),
    ] = None,
) -> Response:
    """The analysis report (专报) of a period as a file: HTML and PDF with charts, the tables as Excel; in
    Simplified Chinese or English (``lang``), by default in the language the reader's web UI is in (its language
    cookie, or Accept-Language where the UI follows the browser's)."""
    from cityhub.analytics import reports
    from cityhub.web import support, theme

    made = reports.download(
        db,
        period=kpi.parse_period(period),
        fmt=fmt.lower(),
        reader=principal,
        min_sample=min_sample,
        lang=reports.report_language(support.language(request) if lang is None else lang),
        # Opened from the dashboard in a tab of its own: in the reader's theme of the web UI (light when printed).
        theme=theme.chosen(request.cookies.get(theme.THEME_COOKIE)),
    )
    disposition = "inline" if fmt.lower() == "html" else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="{made.filename}"'}
    return Response(made.content, media_type=made.media_type, headers=headers)
