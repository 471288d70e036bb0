"""HTTP routes of the correlation graph (/graph) and of risk findings (/findings).

Reading needs ``order:read``; the graph and the findings are computed over the caller's data scope only, so a
street office sees correlations and findings of its own orders. The findings come from the one per-process cache
(:func:`cityhub.analytics.risk.cached_findings`, five minutes per scope and period, refreshed in the background), as
the city brain's pages and the one map read them: a display polling the list costs a lookup, not seconds of
computation each time. The graph likewise is the last one built for the scope and period
(:func:`cityhub.analytics.correlation.graph_from_db`: built again in the background once its orders moved), and every
answer says when its orders were read (``built_at``). Opening a proactive order from a finding needs
the right to urge (督办: leaders, supervisors, administrators) — the roles that act on risk warnings.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from cityhub.analytics import correlation, risk
from cityhub.api.deps import CurrentActor, CurrentPrincipal, DbSession, ListPaging, require
from cityhub.auth import permissions
from cityhub.auth.scope import scope_of
from cityhub.errors import ValidationFailed
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.schemas import OrderRead

router = APIRouter(tags=["city brain"], dependencies=[Depends(require(permissions.ORDER_READ))])

PeriodQuery = Annotated[str | None, Query(max_length=40, description="2026-Q3, 2026-07, 2026-W27, a..b")]


def _period(text: str | None) -> correlation.Period | None:
    return correlation.parse_period(text) if text else None


def _graph(db: DbSession, principal: CurrentPrincipal, period: str | None, granularity: str) -> Any:
    if granularity not in ("week", "month", "quarter"):
        raise ValidationFailed("granularity must be week, month or quarter")
    return correlation.graph_from_db(
        db,
        period=_period(period),
        scope=scope_of(db, principal).clause(),
        granularity=granularity,  # type: ignore[arg-type]
    )


@router.get("/graph/related")
def related(
    db: DbSession,
    principal: CurrentPrincipal,
    node: Annotated[str, Query(min_length=1, max_length=100, description="node id or name, e.g. 噪音")],
    place: Annotated[str | None, Query(max_length=100)] = None,
    period: PeriodQuery = None,
    kind: Annotated[str | None, Query(description="category, topic, keyword, place or group")] = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """What goes with ``node`` among the orders of ``place`` in ``period``, ranked by NPMI (with lift, p); ``built_at``
    is when the graph's orders were read."""
    graph = _graph(db, principal, period, "month")
    return graph.related(node, kind=kind, place=place, top=top).to_dict()


@router.get("/graph/export")
def export(
    db: DbSession,
    principal: CurrentPrincipal,
    period: PeriodQuery = None,
    format: Annotated[str, Query(pattern="^(json|graphml)$")] = "json",
    granularity: Annotated[str, Query(pattern="^(week|month|quarter)$")] = "month",
) -> Response:
    """The graph as node-link JSON or GraphML; its graph attribute ``built_at`` is when its orders were read."""
    graph = _graph(db, principal, period, granularity)
    if format == "graphml":
        return Response(graph.graphml(), media_type="application/graphml+xml")
    import json

    return Response(json.dumps(graph.to_json(), ensure_ascii=False), media_type="application/json")


@router.get("/findings")
def list_findings(
    db: DbSession,
    principal: CurrentPrincipal,
    page: ListPaging,
    period: PeriodQuery = None,
    kind: Annotated[list[str] | None, Query(description="recurring, rising, anomaly")] = None,
    with_orders: bool = False,
) -> list[dict[str, Any]]:
    """Recurring problems, rising trends and daily anomalies at the end of ``period`` (default: today; computed at
    most five minutes ago), in that order, each kind most significant first; optionally paged (the pages of one
    computation: a list computed again meanwhile may have moved)."""
    wanted = risk.checked_kinds(kind or risk.FINDING_KINDS)
    found = risk.cached_findings(db, scope=scope_of(db, principal), period=_period(period))
    return [f.to_dict(with_orders=with_orders) for f in page.of([f for f in found if f.kind in wanted])]


@router.post(
    "/findings/{finding_id}/open",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    dependencies=[Depends(require(permissions.act(Action.URGE)))],
)
def open_finding(
    finding_id: str,
    db: DbSession,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    period: PeriodQuery = None,
) -> OrderRead:
    """Open a proactive order for a finding (the same ``period`` it was listed with); idempotent per finding."""
    finding = risk.get_cached_finding(db, finding_id=finding_id, period=_period(period), scope=scope_of(db, principal))
    order = risk.open_proactive_order(db, finding=finding, actor=actor)
    return OrderRead.model_validate(order).masked()
