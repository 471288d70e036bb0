"""HTTP routes of the stored hot topics (热点诉求): ``/topics`` and ``/topics/{id}``.

Reading needs ``order:read`` and a staff role (a citizen's appeals are not the district's topics; a topic's
representative title is another person's appeal). Whoever reads orders masked reads the representative titles
through ``masking.scrub_text`` (phone and ID numbers, house numbers). Topics are mined over the whole district's orders;
a reader whose data scope is smaller (a street office) sees a topic when some of its orders of the period are in
that scope, and every figure of it — count, size, time span, places, the orders listed — is counted over those
orders only (``topics_store.list_topics``). A topic without any order in the reader's scope is 404, as missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from cityhub.analytics import hot_topics, kpi, topics_store
from cityhub.analytics.schemas import TopicDetail, TopicPage, TopicRead
from cityhub.api.deps import CurrentPrincipal, DbSession, require
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.errors import PermissionDenied
from cityhub.masking import scrub_text
from cityhub.org.models import Role
from cityhub.web.i18n import translate
from cityhub.workorders.views import _read


def _staff(principal: CurrentPrincipal) -> Principal:
    if principal.role == Role.CITIZEN:
        raise PermissionDenied("hot topics are for staff", details={"permission": permissions.ORDER_READ})
    return principal


router = APIRouter(
    prefix="/topics",
    tags=["city brain"],
    dependencies=[Depends(require(permissions.ORDER_READ)), Depends(_staff)],
)

PeriodQuery = Annotated[
    str | None,
    Query(max_length=40, description="2026-11, 2026-Q4, 2026, 2026-W47, 2026-11-05 or a..b; default the last 30 days"),
]


@dataclass(frozen=True)
class HeatWords:
    """A hot topic's heat as a reader reads it: ``short`` its level and rank (很高 · 第 3), ``long`` the sentence with
    the raw figure (热度 8.04，在全部 459 个热点中排第 3), for a cell's title or a topic's page."""

    short: str
    long: str


def heat_words(lang: str, row: Mapping[str, Any]) -> HeatWords | None:
    """The heat of a topic row (:func:`topics_store.heat_standing`'s ``heat_rank`` of ``heat_of``) in words of the
    web UI's ``lang``, the one wording of the topic pages and the 专报 (:func:`hot_topics.heat_level`); a row without
    its standing says its figure alone; None for a row with no heat (the 专报's grouping by title)."""
    heat, rank, of = row.get("heat"), row.get("heat_rank"), row.get("heat_of")
    if heat is None:
        return None
    figure = f"{heat:.2f}"
    if rank is None or not of:
        return HeatWords(figure, translate(lang, "brain.topics.heat_figure", heat=figure))
    level = translate(lang, f"brain.topics.heat_level.{hot_topics.heat_level(rank, of)}")
    return HeatWords(
        translate(lang, "brain.topics.heat_short", level=level, rank=rank),
        translate(lang, "brain.topics.heat_long", heat=figure, rank=rank, n=of),
    )


def shown(rows: list[dict[str, Any]], principal: Principal) -> list[dict[str, Any]]:
    """The rows as this reader may read them: representative titles scrubbed for whoever reads orders masked."""
    if principal.role in permissions.UNMASKED_ROLES:
        return rows
    return [{**r, "topic": scrub_text(r["topic"]) or r.get("label") or ""} for r in rows]


@router.get("", response_model=TopicPage)
def list_topics(
    db: DbSession,
    principal: CurrentPrincipal,
    period: PeriodQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> TopicPage:
    """The hot topics with orders in ``period`` within the caller's scope, most such orders first (then heat)."""
    span = kpi.period_or_recent(period)
    rows, total = topics_store.list_topics(
        db, start=span.start, end=span.end, where=scope_of(db, principal).clause(), limit=limit, offset=offset
    )
    return TopicPage(
        period=span.label,
        start=span.start,
        end=span.end,
        mined_at=topics_store.mined_at(db),
        total=total,
        limit=limit,
        offset=offset,
        items=[TopicRead.of(r) for r in shown(rows, principal)],
    )


@router.get("/{topic_id}", response_model=TopicDetail)
def get_topic(
    topic_id: int,
    db: DbSession,
    principal: CurrentPrincipal,
    period: PeriodQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> TopicDetail:
    """One topic (its figures of ``period``) with its orders of the period in the caller's scope, masked as the
    order list masks them."""
    span = kpi.period_or_recent(period)
    where = scope_of(db, principal).clause()
    [row] = shown(
        [topics_store.get_topic(db, topic_id=topic_id, start=span.start, end=span.end, where=where)], principal
    )
    found = topics_store.topic_orders(
        db, topic_id=topic_id, start=span.start, end=span.end, where=where, limit=limit, offset=offset
    )
    return TopicDetail.model_validate(
        {**TopicRead.of(row).model_dump(), "orders": [_read(o, principal) for o in found], "orders_offset": offset}
    )
