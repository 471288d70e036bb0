"""城市大脑: the city brain's pages — 风险预警 (risk findings), 热点诉求 (hot topics), 关联分析 (correlation graph).

Roles holding ``brain:read`` (leaders, supervisors, dispatchers, administrators) see them, every figure over their
own data scope exactly as the API computes it: findings through ``risk.cached_findings`` (the one per-process cache
the one map's hotspots read too), topics through ``topics_store.list_topics``/``get_topic`` (as ``/api/v1/topics``),
the graph through ``correlation.graph_from_db`` (as ``/api/v1/graph/related``: the last graph built, with the time
its orders were read — 数据截至 —, while a newer one is built in the background). Opening a proactive order from a
finding needs the permission the API's open route asks (督办, ``order:act:urge``) and goes through
``risk.open_proactive_order`` (intake, audited, idempotent per finding). Orders are listed within the reader's
scope and masked as the order list masks them.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.analytics import correlation, hot_topics, risk, topics_store
from cityhub.analytics.lexicon import GROUPS
from cityhub.analytics.models import HotTopic
from cityhub.analytics.topic_views import heat_words, shown
from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.errors import CityhubError, NotFound, ValidationFailed
from cityhub.org.models import Unit
from cityhub.web import forms, machine_text, support
from cityhub.web.i18n import Translator
from cityhub.web.support import FormBody, PageError, render
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Category, Channel, Order
from cityhub.workorders.views import _read as read_model

router = APIRouter(include_in_schema=False)

ORDERS_SHOWN = 200  # a finding's or topic's orders listed on its page (an anomaly day can hold thousands)
TOPICS_PAGE = 20
GRAPH_TOP = 10
CHOICES_SHOWN = 12  # the suggested nodes per kind on the graph page
OPEN_PERMISSION = permissions.act(Action.URGE)  # as POST /api/v1/findings/{id}/open


def _reader(request: Request, db: Session, form: Any = None) -> Principal:
    return support.require_user(request, db, permissions.BRAIN_READ, form=form)


def _page(request: Request, template: str, principal: Principal, **context: Any) -> HTMLResponse:
    return render(request, template, principal=principal, subnav=support.brain_pages(principal), **context)


@router.get("/brain")
def brain_home(request: Request, db: DbSession) -> Response:
    """城市大脑: the first of its pages the user may see."""
    principal = _reader(request, db)
    return RedirectResponse(support.brain_pages(principal)[0].href, status_code=303)


# ------------------------------------------------------------------------------------------------ findings


def _finding_period(t: Translator, typed: str) -> tuple[correlation.Period | None, str | None]:
    """The period typed (the dashboard's forms), else None (today); an unreadable one → None and a message."""
    if not typed:
        return None, None
    try:
        return correlation.parse_period(typed), None
    except ValidationFailed:
        return None, t("brain.period_error", typed=typed)


def significance(t: Translator, finding: risk.Finding) -> tuple[str, float]:
    """(a human wording of how sure the finding is, a 0–1 strength for its bar)."""
    if finding.q_value is not None:
        q = finding.q_value
        key = "brain.sig.q001" if q < 0.001 else "brain.sig.q01" if q < 0.01 else "brain.sig.q05"
        strength = min(1.0, -math.log10(max(q, 1e-12)) / 6)
        return t(key, q=f"{q:.2g}"), strength
    z = finding.z or 0.0
    return t("brain.sig.z", z=f"{z:.1f}"), min(1.0, z / 10)


def _rank(finding: risk.Finding) -> float:
    """Most significant first: q-values as they are, an anomaly's robust z as its normal tail probability."""
    if finding.q_value is not None:
        return finding.q_value
    return 0.5 * math.erfc((finding.z or 0.0) / math.sqrt(2))


def _finding_view(t: Translator, f: risk.Finding) -> dict[str, Any]:
    sig, strength = significance(t, f)
    return {
        "f": f,
        "id": f.id,
        "kind_label": t(f"brain.kind.{f.kind}"),
        **machine_text.finding_words(t, f),
        "street": t.unit_name(f.detail.get("street")) if f.place_level == "community" else None,
        "significance": sig,
        "strength": round(100 * strength),
        "top_places": f.detail.get("top_places") or [],
    }


def _proactive_order(db: Session, finding_id: str, clause: Any) -> Order | None:
    """The proactive order already opened for a finding (intake's external id ``finding:<id>`` on the grid
    channel), if the reader may see it."""
    query = select(Order).where(
        Order.channel == Channel(risk.PROACTIVE_CHANNEL), Order.external_id == f"finding:{finding_id}"
    )
    if clause is not None:
        query = query.where(clause)
    return db.scalars(query.limit(1)).first()


@router.get("/brain/findings", response_class=HTMLResponse)
def findings_page(request: Request, db: DbSession) -> Response:
    """风险预警: the findings in the reader's scope, most significant first, filtered by kind and period."""
    principal = _reader(request, db)
    t = support.translator(request)
    q = request.query_params
    typed = q.get("period", "").strip()[:40]
    period, error = _finding_period(t, typed)
    kind = q.get("kind", "")
    if kind and kind not in risk.FINDING_KINDS:
        error = " ".join(e for e in (error, t("brain.kind_error")) if e)
        kind = ""
    scope = scope_of(db, principal)
    found = risk.cached_findings(db, scope=scope, period=period)
    counts = {k: sum(1 for f in found if f.kind == k) for k in risk.FINDING_KINDS}
    listed = sorted((f for f in found if not kind or f.kind == kind), key=lambda f: (_rank(f), -f.count, f.id))
    start, as_of = risk.analysis_span(period)
    return _page(
        request,
        "brain_findings.html",
        principal,
        items=[_finding_view(t, f) for f in listed],
        counts=counts,
        total=len(found),
        kind=kind,
        kinds=risk.FINDING_KINDS,
        typed_period=typed,
        period=period,
        as_of=as_of - timedelta(days=1),
        anomaly_start=start,
        error=error,
        period_query=[("period", period.label)] if period else [],
    )


def _finding_or_404(
    db: Session, principal: Principal, finding_id: str, period: correlation.Period | None
) -> risk.Finding:
    try:
        return risk.get_cached_finding(db, finding_id=finding_id, scope=scope_of(db, principal), period=period)
    except NotFound:
        raise PageError(404, "brain.finding_missing") from None


def _orders_of(db: Session, principal: Principal, ids: list[Any], clause: Any) -> list[Any]:
    """The orders of these ids in the reader's scope, newest first, masked as the order list masks them."""
    wanted = [i for i in ids if isinstance(i, int)][:ORDERS_SHOWN]
    if not wanted:
        return []
    query = select(Order).where(Order.id.in_(wanted))
    if clause is not None:
        query = query.where(clause)
    return [read_model(o, principal) for o in db.scalars(query.order_by(Order.created_at.desc(), Order.id.desc()))]


@router.get("/brain/findings/{finding_id}", response_class=HTMLResponse)
def finding_page(finding_id: str, request: Request, db: DbSession) -> Response:
    """One finding: what, where, how sure, its orders (linked, masked), and 生成主动工单 for those who may."""
    principal = _reader(request, db)
    t = support.translator(request)
    typed = request.query_params.get("period", "").strip()[:40]
    period, error = _finding_period(t, typed)
    if error:
        raise PageError(422, "brain.period_bad")
    return _finding_detail(request, db, principal, finding_id, period)


def _finding_detail(
    request: Request,
    db: Session,
    principal: Principal,
    finding_id: str,
    period: correlation.Period | None,
    *,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    t = support.translator(request)
    finding = _finding_or_404(db, principal, finding_id, period)
    clause = scope_of(db, principal).clause()
    items = _orders_of(db, principal, finding.order_ids, clause)
    return _page(
        request,
        "brain_finding.html",
        principal,
        v=_finding_view(t, finding),
        orders=items,
        more=max(0, len(finding.order_ids) - len(items)),
        category_names=support.names_of(db, Category, column=Category.name, ids={o.category_id for o in items}),
        unit_names=support.names_of(db, Unit, ids={o.community_id for o in items} | {o.street_id for o in items}),
        can_open=permissions.allows(principal.role, OPEN_PERMISSION),
        opened=_proactive_order(db, finding.id, clause),
        period=period,
        message=message,
        status_code=status_code,
    )


@router.post("/brain/findings/{finding_id}/open", response_class=HTMLResponse)
def finding_open(finding_id: str, request: Request, db: DbSession, form: FormBody) -> Response:
    """生成主动工单: open (or find the already opened) proactive order for the finding, as the API does."""
    principal = _reader(request, db, form=form)
    if not permissions.allows(principal.role, OPEN_PERMISSION):
        raise PageError(403, "err.forbidden")
    t = support.translator(request)
    period, error = _finding_period(t, form.get("period", "").strip()[:40])
    if error:
        raise PageError(422, "brain.period_bad")
    finding = _finding_or_404(db, principal, finding_id, period)
    try:
        order = risk.open_proactive_order(db, finding=finding, actor=principal.actor)
        db.commit()
    except CityhubError as exc:
        db.rollback()
        from cityhub.web.routes import error_text

        text, _ = error_text(t, exc)
        return _finding_detail(request, db, principal, finding_id, period, message=text, status_code=422)
    query = f"?period={period.label}" if period else ""
    return support.redirect(f"/brain/findings/{finding_id}{query}", flash=("brain.opened", {"number": order.number}))


# ------------------------------------------------------------------------------------------------ topics


def _day(iso: str | None) -> str:
    """The district's calendar day of a topic's first or last order (stored in UTC: an order received at 01:30
    is of that day, as the orders listed under it show, not of the day before)."""
    return hot_topics.local_date(iso) or "—"


@router.get("/brain/topics", response_class=HTMLResponse)
def topics_page(request: Request, db: DbSession) -> Response:
    """热点诉求: the stored hot topics of the period in the reader's scope (as ``GET /api/v1/topics``)."""
    principal = _reader(request, db)
    q = request.query_params
    choice = support.period_choice(request)
    period, typed, error = choice.period, choice.typed, choice.error
    page = max(1, min(forms.whole_number(q.get("page")) or 1, 1000))
    clause = scope_of(db, principal).clause()
    rows, total = topics_store.list_topics(
        db, start=period.start, end=period.end, where=clause, limit=TOPICS_PAGE, offset=(page - 1) * TOPICS_PAGE
    )
    rows = shown(rows, principal)
    top = max((r["count"] for r in rows), default=0)
    return _page(
        request,
        "brain_topics.html",
        principal,
        rows=rows,
        total=total,
        top=top,
        page=page,
        has_more=page * TOPICS_PAGE < total,
        period=period,
        typed_period=choice.box,
        recent_days=choice.recent_days,
        error=error,
        mined_at=topics_store.mined_at(db),
        stored=topics_store.stored_topic_count(db),
        day=_day,
        heat_words=heat_words,
        period_query=[("period", period.label)] if typed and not error else [],
    )


@router.get("/brain/topics/{topic_id}", response_class=HTMLResponse)
def topic_page(topic_id: int, request: Request, db: DbSession) -> Response:
    """One hot topic: its figures of the period and its orders of the period in the reader's scope."""
    principal = _reader(request, db)
    choice = support.period_choice(request)
    period, error = choice.period, choice.error
    clause = scope_of(db, principal).clause()
    try:
        [row] = shown(
            [topics_store.get_topic(db, topic_id=topic_id, start=period.start, end=period.end, where=clause)], principal
        )
    except NotFound:
        raise PageError(404, "brain.topic_missing") from None
    found = topics_store.topic_orders(
        db, topic_id=topic_id, start=period.start, end=period.end, where=clause, limit=ORDERS_SHOWN
    )
    items = [read_model(o, principal) for o in found]
    return _page(
        request,
        "brain_topic.html",
        principal,
        row=row,
        orders=items,
        more=max(0, row["count"] - len(items)),
        category_names=support.names_of(db, Category, column=Category.name, ids={o.category_id for o in items}),
        unit_names=support.names_of(db, Unit, ids={o.community_id for o in items} | {o.street_id for o in items}),
        period=period,
        recent=choice.recent_days is not None,
        error=error,
        day=_day,
        heat_words=heat_words,
        graph_node=f"topic:T{row['id']} {row['label']}",
    )


# ------------------------------------------------------------------------------------------------ graph

# The four dimensions of the correlation (时间·空间·地理分布·人群) and the related problems, as tables of the page:
# (section key, node kinds, place levels or None for any).
SECTIONS: tuple[tuple[str, tuple[str, ...], tuple[str, ...] | None], ...] = (
    ("problems", ("topic", "category", "keyword"), None),
    ("time", ("window",), None),
    ("space", ("place",), ("street", "community")),
    ("distribution", ("place",), ("village", "road", "estate")),
    ("population", ("group",), None),
)
PICKABLE = ("topic", "category", "place", "group", "keyword")
_TOPIC_ID = re.compile(r"^T\d+ ")
_TOPIC_NODE = re.compile(r"^topic:T(\d+) ")


def _shown(kind: str, name: str) -> str:
    """A node's name as the page shows it: a topic's without the id that keeps equal labels apart in the graph."""
    return _TOPIC_ID.sub("", name) if kind == "topic" else name


def _topic_titles(db: Session, principal: Principal, nodes: list[str]) -> dict[str, str]:
    """The topic nodes among ``nodes`` by their representative title (as the 热点诉求 page names a topic: its label of
    key words alone — 正对着、对面、几台 — says little), scrubbed for whoever reads orders masked."""
    ids = {int(m.group(1)): node for node in nodes if (m := _TOPIC_NODE.match(node))}
    if not ids:
        return {}
    rows = db.execute(
        select(HotTopic.id, HotTopic.representative_title, HotTopic.label).where(HotTopic.id.in_(list(ids)))
    )
    read = shown([{"id": i, "topic": title, "label": label} for i, title, label in rows], principal)
    return {ids[r["id"]]: r["topic"] for r in read if r["topic"]}


def _group_titles(t: Translator, nodes: list[str]) -> dict[str, str]:
    """The population groups among ``nodes`` (the lexicon's 老年人 …) by their names in the reader's language
    (``group.*``, as the 专报 names them): the product's own words, not what a citizen wrote."""
    titles = {}
    for node in nodes:
        kind, name = correlation.split_node(node)
        if kind == "group" and (label := t.label("group", name)) != name:
            titles[node] = label
    return titles


def _group_typed(t: Translator, typed: str, nodes: Any) -> str:
    """A population group typed by the name the page shows it by in the reader's language (Students, for 学生) as the
    graph's node of it: the graph knows the lexicon's Chinese names only. Anything else as typed."""
    wanted = typed.casefold()
    for group in GROUPS:
        node = correlation.node_id("group", group)
        if wanted == t.label("group", group).casefold() and wanted != group and node in nodes:
            return node
    return typed


def _node_name(db: Session, principal: Principal, t: Translator, node: str) -> str:
    """A node as the page names it (a topic by its representative title, a group in the reader's language)."""
    titles = _topic_titles(db, principal, [node]) | _group_titles(t, [node])
    return titles.get(node) or _shown(*correlation.split_node(node))


def _graph_choices(graph: correlation.CorrelationGraph) -> dict[str, list[tuple[str, str, int]]]:
    """The most frequent nodes of each pickable kind: (node id, name, orders)."""
    by_kind: dict[str, list[tuple[str, str, int]]] = {k: [] for k in PICKABLE}
    for node, attrs in graph.graph.nodes(data=True):
        if attrs.get("kind") in by_kind:
            by_kind[attrs["kind"]].append((node, _shown(attrs["kind"], attrs["name"]), int(attrs.get("count", 0))))
    return {k: sorted(v, key=lambda x: (-x[2], x[1]))[:CHOICES_SHOWN] for k, v in by_kind.items()}


@router.get("/brain/graph", response_class=HTMLResponse)
def graph_page(request: Request, db: DbSession) -> Response:
    """关联分析: what goes with a node (topic, category, keyword, place, group) in a place and period, across the
    four dimensions, as ``GET /api/v1/graph/related`` answers it; each related item pivots the page to itself."""
    principal = _reader(request, db)
    t = support.translator(request)
    q = request.query_params
    node = q.get("node", "").strip()[:100]
    place = q.get("place", "").strip()[:100]
    typed = q.get("period", "").strip()[:40]
    # A pivot's node id (topic:T12 锦绣、内涝, place:江高镇 — the graph's, not the reader's words) rides beside the box,
    # which shows the node's name: submitted with that name unchanged it asks for the node again (another period or
    # place), a name typed over it is a new query.
    pivot = q.get("pivot", "").strip()[:100]
    if pivot and node == _node_name(db, principal, t, pivot):
        node = pivot
    errors: list[str] = []
    period, error = _finding_period(t, typed)
    if error:
        errors.append(error)
    graph = correlation.graph_from_db(db, period=period, scope=scope_of(db, principal).clause())
    node = _group_typed(t, node, graph.graph)
    pivot = node if node in graph.graph else ""
    sections: list[dict[str, Any]] = []
    answer = None
    if node:
        try:
            answer = graph.related(node, place=place or None, kind=correlation.NODE_KINDS, top=500)
        except NotFound as exc:
            missing_place = str(exc).startswith("no place")
            errors.append(
                t("brain.graph.place_missing", place=place)
                if missing_place
                else t("brain.graph.node_missing", node=node)
            )
        except ValidationFailed:
            errors.append(t("brain.graph.node_missing", node=node))
    if answer is not None:
        for key, kinds, levels in SECTIONS:
            items = [
                r
                for r in answer.items
                if r.kind in kinds and (levels is None or correlation.place_level(r.name) in levels)
            ][:GRAPH_TOP]
            if key == "time":
                items = sorted(items, key=lambda r: r.name)
            rows = [
                {"node": r.node, "kind": r.kind, "name": _shown(r.kind, r.name), "count": r.count, "lift": r.lift}
                for r in items
            ]
            sections.append({"key": key, "items": rows, "top": max((r.count for r in items), default=0)})
    choices = _graph_choices(graph)
    shown_nodes = [r["node"] for sec in sections for r in sec["items"]] + [n for n, _, _ in choices["topic"]]
    titles = _topic_titles(db, principal, shown_nodes + (list(answer.query) if answer else []))
    titles |= _group_titles(
        t, shown_nodes + [n for n, _, _ in choices["group"]] + (list(answer.query) if answer else [])
    )
    return _page(
        request,
        "brain_graph.html",
        principal,
        titles=titles,
        node=node,
        node_box=_node_name(db, principal, t, pivot) if pivot else node,
        pivot=pivot,
        place=place,
        typed_period=typed,
        answer=answer,
        query_names=[titles.get(n) or _shown(*correlation.split_node(n)) for n in answer.query] if answer else [],
        place_names=[correlation.split_node(n)[1] for n in answer.place] if answer else [],
        sections=sections,
        errors=errors,
        choices=choices,
        orders=graph.graph.graph.get("orders", 0),
        period=period,
        built_at=graph.built_at,
        period_query=[("period", period.label)] if period else [],
        place_query=[("place", place)] if place and answer is not None else [],
    )
