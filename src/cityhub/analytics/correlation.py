"""Correlation graph over four dimensions (时间·空间·地理分布·人群): topics, places, groups and time windows.

Every order contributes a set of nodes — its category (and hot topic, when the caller supplies topic
assignments), problem keywords in its text, its street and community plus the estates/roads/villages named in
the text, the population groups it mentions, and its time window. Two nodes are linked when they occur in the
same orders at least ``min_support`` times; an edge carries the raw count and two significance measures that
keep very common nodes (a big street, the 居民 group) from dominating: the lift ``P(ab) / (P(a) P(b))`` and the
normalised PMI ``log(lift) / -log P(ab)`` in [-1, 1]. Only positively associated pairs (NPMI > 0) become edges.

Queries do not read the pre-built edges but recount over the orders of the query's universe (a place, a
period), so "what goes with 噪音 in 石井街道 this quarter" compares against that street's quarter, not the
district's whole history; each answer carries a one-sided hypergeometric p-value of the co-occurrence.

Node ids are ``kind:name`` with kind one of ``category``, ``topic``, ``keyword``, ``place``, ``group``,
``window``. Graphs export to GraphML and to node-link JSON (networkx), and read back from both.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import networkx as nx
import numpy as np
from scipy import sparse
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from cityhub.analytics import kpi
from cityhub.analytics.lexicon import extract_groups, extract_places, place_folds
from cityhub.caching import TtlCache
from cityhub.config import get_settings
from cityhub.db import database_key
from cityhub.errors import NotFound, ValidationFailed
from cityhub.org.models import Unit
from cityhub.timerange import answer_time
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Category, Order

Granularity = Literal["week", "month", "quarter"]
NODE_KINDS = ("category", "topic", "keyword", "place", "group", "window")

# Problem words worth a node of their own: they cut across categories (噪音 is filed under 噪音污染, 城管执法,
# 物业服务 …) and are what leaders ask about.
KEYWORDS: tuple[str, ...] = (
    "噪音",
    "扰民",
    "积水",
    "水浸",
    "内涝",
    "污水",
    "堵塞",
    "垃圾",
    "油烟",
    "异味",
    "臭",
    "违停",
    "停车",
    "拥堵",
    "欠薪",
    "工资",
    "漏水",
    "停水",
    "停电",
    "电梯",
    "违建",
    "占道",
    "摊贩",
    "施工",
    "夜间",
    "路灯",
    "井盖",
    "树木",
    "蚊虫",
    "消防",
    "安全隐患",
    "物业",
    "学位",
    "入学",
    "社保",
    "医保",
    "租金",
    "装修",
    "空调",
    "广场舞",
)
_KEYWORD_RE = re.compile("|".join(re.escape(k) for k in sorted(KEYWORDS, key=len, reverse=True)))

# Orders the city brain opened itself: kept out of the statistics so a finding cannot feed on its own order.
PROACTIVE_SOURCE = "risk"


# --------------------------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A half-open span of local days [first, stop) with its label (2026-Q3, 2026-07, 2026-W27, …)."""

    label: str
    first: date
    stop: date

    def bounds(self, tz: ZoneInfo | None = None) -> tuple[datetime, datetime]:
        """The span as UTC instants."""
        zone = tz or get_settings().tz
        return (
            datetime.combine(self.first, time(0), tzinfo=zone).astimezone(UTC),
            datetime.combine(self.stop, time(0), tzinfo=zone).astimezone(UTC),
        )

    def contains(self, day: date) -> bool:
        return self.first <= day < self.stop


def parse_period(text: str) -> Period:
    """``2026``, ``2026-Q3``, ``2026-07``, ``2026-W27`` (ISO week), ``2026-07-01`` or ``2026-07-01..2026-08-15``, as the
    assessment reads them (``kpi.parse_period``), as a half-open span."""
    period = kpi.parse_period(text)
    return Period(period.label, period.first, period.last + timedelta(days=1))


def window_label(day: date, granularity: Granularity) -> str:
    """The label of the week/month/quarter that holds ``day``."""
    if granularity == "week":
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if granularity == "month":
        return f"{day.year}-{day.month:02d}"
    if granularity == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    raise ValidationFailed(f"unknown window granularity '{granularity}': week, month or quarter")


# --------------------------------------------------------------------------------------------- order facts


@dataclass(frozen=True, slots=True)
class OrderFact:
    """What the city brain needs of one order (from the database, a CSV file or the demo generator)."""

    id: int | str
    created_at: datetime  # aware, UTC
    text: str
    category: str | None = None  # full path, e.g. 环境保护/环境污染/噪音污染
    street: str | None = None
    community: str | None = None
    street_code: str | None = None
    community_code: str | None = None
    citizen: str | None = None  # a stable key of the person who reported it, when known
    attributes: Mapping[str, Any] | None = None

    @property
    def category_leaf(self) -> str | None:
        return self.category.rsplit("/", 1)[-1] if self.category else None


def is_proactive(attributes: Mapping[str, Any] | None) -> bool:
    return bool(attributes) and (attributes or {}).get("source") == PROACTIVE_SOURCE


def not_proactive() -> ColumnElement[bool]:
    """The orders the city brain did not open itself (:func:`is_proactive`), as a WHERE clause on both backends."""
    return func.coalesce(Order.attributes["source"].as_string(), "") != PROACTIVE_SOURCE


def load_facts(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    scope: ColumnElement[bool] | None = None,
    with_text: bool = True,
) -> list[OrderFact]:
    """Orders created in [start, end) (within ``scope``, a WHERE clause over Order), oldest first; proactive orders
    left out, and those cancelled as invalid (作废: a prank, a wrong number — no problem of anyone's; the 专报's
    有效工单 leaves them out too). A duplicate merged into another order stays: another reporter of the problem.
    ``with_text=False`` leaves the texts empty (for statistics of categories, places, times and people only: at
    200,000 orders the texts are a quarter of the load)."""
    street = aliased(Unit)
    community = aliased(Unit)
    texts = (Order.title, Order.content, Order.address) if with_text else ()
    query = (
        select(
            Order.id,
            Order.created_at,
            Category.path,
            street.name,
            street.code,
            community.name,
            community.code,
            Order.citizen_user_id,
            Order.citizen_phone,
            *texts,
        )
        .outerjoin(Category, Category.id == Order.category_id)
        .outerjoin(street, street.id == Order.street_id)
        .outerjoin(community, community.id == Order.community_id)
        .where(not_proactive(), Order.state != State.CANCELLED)
        .order_by(Order.created_at, Order.id)
    )
    query = _orders_within(query, start=start, end=end, scope=scope)
    facts = []
    # Core execution: plain rows, without the ORM's per-row loading machinery.
    for row in session.connection().execute(query).all():
        (oid, created, path, s_name, s_code, c_name, c_code, user_id, phone, *text) = row
        citizen = f"u{user_id}" if user_id is not None else (f"p{phone}" if phone else None)
        facts.append(
            OrderFact(
                id=oid,
                created_at=created,
                text=_join_text(*text) if text else "",
                category=path,
                street=s_name,
                community=c_name,
                street_code=s_code,
                community_code=c_code,
                citizen=citizen,
            )
        )
    return facts


def load_texts(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """The texts of some orders (title, content, address, as :func:`load_facts` joins them), by id."""
    wanted = sorted(set(ids))
    texts: dict[int, str] = {}
    for i in range(0, len(wanted), 1000):
        chunk = wanted[i : i + 1000]
        query = select(Order.id, Order.title, Order.content, Order.address).where(Order.id.in_(chunk))
        for oid, *parts in session.connection().execute(query):
            texts[oid] = _join_text(*parts)
    return texts


_Query = TypeVar("_Query", bound=Select)  # any row shape


def _orders_within(
    query: _Query, *, start: datetime | None, end: datetime | None, scope: ColumnElement[bool] | None
) -> _Query:
    """``query`` limited to orders created in [start, end) (either end open when None) within ``scope``."""
    if start is not None:
        query = query.where(Order.created_at >= start)
    if end is not None:
        query = query.where(Order.created_at < end)
    if scope is not None:
        query = query.where(scope)
    return query


def _join_text(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p)


def short_division(name: str | None) -> str | None:
    """A community's everyday name: 张村社区居委会 → 张村社区, 金鼎村村委会 → 金鼎村."""
    if not name:
        return name
    for suffix in ("居委会", "村委会", "委员会"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def _division_name(code: str | None) -> str | None:
    if not code:
        return None
    from cityhub.nlp.address import default_gazetteer

    unit = default_gazetteer().units.get(code)
    return unit.name if unit is not None else None


@cache
def _district_names() -> tuple[str, ...]:
    from cityhub.nlp.address import default_gazetteer

    return tuple(sorted({u.name for u in default_gazetteer().units.values() if u.level == "district"}, key=len))


def _admin_forms(fact: OrderFact) -> list[str]:
    """Administrative names to blank out before extracting places, so that an address prefix such as
    白云区石井街张村社区 does not read as one place (they are nodes of their own already)."""
    forms: list[str] = list(_district_names())
    if fact.street:
        forms += [fact.street, fact.street.removesuffix("道")]
    if fact.community:
        short = short_division(fact.community) or fact.community
        forms += [fact.community, short]
    return sorted({f for f in forms if len(f) >= 2}, key=len, reverse=True)


def places_of(fact: OrderFact) -> list[str]:
    """The named places of an order: its street and community, then estates/roads/villages in its text."""
    places = [p for p in (fact.street, short_division(fact.community)) if p]
    text = fact.text
    for form in _admin_forms(fact):
        text = text.replace(form, "|")
    for name in extract_places(text, admin=False):
        if name not in places:
            places.append(name)
    return places


def facts_from_records(records: Iterable[Mapping[str, Any]]) -> Iterator[OrderFact]:
    """Facts of demo-generator records (:func:`cityhub.demo.generator.generate`), without a database."""
    for i, r in enumerate(records):
        phone = r.get("citizen_phone")
        yield OrderFact(
            id=r.get("external_id") or i,
            created_at=r["created_at"],
            text=_join_text(r.get("title"), r.get("content"), r.get("address")),
            category=r.get("category_path"),
            street=_division_name(r.get("street_code")),
            community=_division_name(r.get("community_code")),
            street_code=r.get("street_code"),
            community_code=r.get("community_code"),
            citizen=f"p{phone}" if phone else None,
            attributes=r.get("attributes"),
        )


_STREET_HEADERS = ("street", "街道", "镇街", "所属街道")
_COMMUNITY_HEADERS = ("community", "社区", "村社", "所属社区")


def facts_from_table(path: Path, *, sheet: str | None = None) -> list[OrderFact]:
    """Facts of a CSV/Excel order file, read with the importer's readers and header aliases.

    Places come from ``street``/``community`` name columns, else ``street_code``/``community_code`` (the demo
    CSV), else the address resolved by the gazetteer. Rows without a readable creation time are skipped.
    """
    from cityhub.intake.importer import ColumnMap, RowError, normalize_header, open_table, parse_datetime
    from cityhub.nlp.address import resolve

    facts: list[OrderFact] = []
    with open_table(path, sheet=sheet) as reader:
        columns = ColumnMap.from_header(reader.header)
        extras = {normalize_header(name): index for name, index in columns.extras}

        def cell(cells: Sequence[Any], index: int | None) -> str | None:
            if index is None or index >= len(cells) or cells[index] is None:
                return None
            value = str(cells[index]).strip()
            return value or None

        def extra(cells: Sequence[Any], *names: str) -> str | None:
            for name in names:
                value = cell(cells, extras.get(name))
                if value:
                    return value
            return None

        f = columns.fields
        for number, cells in reader.rows():
            try:
                created = parse_datetime(cell(cells, f.get("created_at")))
            except RowError:
                continue
            if created is None:
                continue
            category = cell(cells, f.get("category")) or "/".join(
                v for v in (cell(cells, f.get(k)) for k in ("category1", "category2", "category3")) if v
            )
            address = cell(cells, f.get("address"))
            street = extra(cells, *_STREET_HEADERS)
            community = extra(cells, *_COMMUNITY_HEADERS)
            s_code, c_code = extra(cells, "street_code"), extra(cells, "community_code")
            street = street or _division_name(s_code)
            community = community or _division_name(c_code)
            if street is None and address:
                where = resolve(address)
                street, community = where.street, community or where.community
                s_code, c_code = s_code or where.street_code, c_code or where.community_code
            attributes: dict[str, Any] = {}
            for key in ("hotspot", "scenario"):
                value = extra(cells, key)
                if value is not None:
                    attributes[key] = int(value) if value.isdigit() else value
            phone = cell(cells, f.get("citizen_phone"))
            name = cell(cells, f.get("citizen_name"))
            facts.append(
                OrderFact(
                    id=cell(cells, f.get("external_id")) or number,
                    created_at=created.astimezone(UTC),
                    text=_join_text(cell(cells, f.get("title")), cell(cells, f.get("content")), address),
                    category=category or None,
                    street=street,
                    community=community,
                    street_code=s_code,
                    community_code=c_code,
                    citizen=f"p{phone}" if phone else (f"n{name}" if name else None),
                    attributes=attributes or None,
                )
            )
    return facts


# --------------------------------------------------------------------------------------------- nodes


def node_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def split_node(node: str) -> tuple[str, str]:
    kind, _, name = node.partition(":")
    return kind, name


_PLACE_LEVELS: tuple[tuple[str, str], ...] = (
    ("街道", "street"),
    ("镇", "street"),
    ("社区", "community"),
    ("居委会", "community"),
    ("村委会", "community"),
    ("村", "village"),
    ("大道", "road"),
    ("路", "road"),
    ("街", "road"),
    ("巷", "road"),
)


def place_level(name: str) -> str:
    """street / community / village / road / estate (estates, schools, markets … everything else named)."""
    for suffix, level in _PLACE_LEVELS:
        if name.endswith(suffix):
            return level
    return "estate"


def extract_keywords(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for m in _KEYWORD_RE.finditer(text or ""):
        seen.setdefault(m.group(0), None)
    return list(seen)


# Each order's text nodes between builds: order id → (digest of what they were read from, the nodes). A graph is
# rebuilt whenever an order of its period changes or every ten minutes (:func:`graph_from_db`); reading places out of
# every text again was two thirds of a rebuild (at 200,000 orders ~9 of 14 s). Bounded: emptied when full.
_TEXT_NODES: dict[int | str, tuple[bytes, frozenset[str]]] = {}
TEXT_NODES_SIZE = 2_000_000


def _read_text_nodes(fact: OrderFact) -> frozenset[str]:
    nodes = {node_id("keyword", k) for k in extract_keywords(fact.text)}
    nodes.update(node_id("place", name) for name in places_of(fact))
    nodes.update(node_id("group", g) for g in extract_groups(fact.text))
    return frozenset(nodes)


def text_nodes(fact: OrderFact) -> frozenset[str]:
    """The nodes an order's words give — keywords, places (:func:`places_of`: its street and community too) and
    population groups — read once per order and text: kept by the order's id with a digest of its text, street and
    community, read again when any of them changed."""
    source = "\x1f".join((fact.street or "", fact.community or "", fact.text))
    digest = hashlib.blake2b(source.encode(), digest_size=16).digest()
    known = _TEXT_NODES.get(fact.id)
    if known is not None and known[0] == digest:
        return known[1]
    nodes = _read_text_nodes(fact)
    if len(_TEXT_NODES) >= TEXT_NODES_SIZE:
        _TEXT_NODES.clear()
    _TEXT_NODES[fact.id] = (digest, nodes)
    return nodes


def order_nodes(
    fact: OrderFact,
    *,
    granularity: Granularity = "month",
    topics: Sequence[str] = (),
    tz: ZoneInfo | None = None,
) -> set[str]:
    """The node ids one order contributes."""
    nodes: set[str] = set(text_nodes(fact))
    leaf = fact.category_leaf
    if leaf:
        nodes.add(node_id("category", leaf))
    nodes.update(node_id("topic", t) for t in topics)
    day = fact.created_at.astimezone(tz or get_settings().tz).date()
    nodes.add(node_id("window", window_label(day, granularity)))
    return nodes


# --------------------------------------------------------------------------------------------- statistics


def association(n_ab: int, n_a: int, n_b: int, n: int) -> tuple[float, float]:
    """(lift, NPMI) of two events seen together ``n_ab`` times among ``n`` observations."""
    if n_ab <= 0 or n_a <= 0 or n_b <= 0 or n <= 0:
        return 0.0, -1.0
    lift = n_ab * n / (n_a * n_b)
    p_ab = n_ab / n
    if p_ab >= 1.0:
        return lift, 1.0
    return lift, math.log(lift) / -math.log(p_ab)


def cooccurrence_p(n_ab: int, n_a: int, n_b: int, n: int) -> float:
    """P(at least ``n_ab`` shared orders) if ``b``'s orders were drawn at random: one-sided hypergeometric."""
    from scipy.stats import hypergeom

    return float(hypergeom.sf(n_ab - 1, n, n_a, n_b))


# --------------------------------------------------------------------------------------------- the graph


@dataclass(frozen=True)
class Related:
    node: str
    kind: str
    name: str
    count: int  # orders with both the query and this node
    support: int  # orders with this node in the universe
    lift: float
    npmi: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind,
            "name": self.name,
            "count": self.count,
            "support": self.support,
            "lift": round(self.lift, 4),
            "npmi": round(self.npmi, 4),
            "p_value": self.p_value,
        }


@dataclass(frozen=True)
class RelatedAnswer:
    query: list[str]  # the nodes the query text matched
    place: list[str]
    period: str | None
    universe: int  # orders in the place and period
    matched: int  # of those, orders with the query
    items: list[Related]
    built_at: datetime | None = None  # when the graph's orders were read (None: a graph of a file)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "place": self.place,
            "period": self.period,
            "universe": self.universe,
            "matched": self.matched,
            "items": [r.to_dict() for r in self.items],
            "built_at": answer_time(self.built_at) if self.built_at is not None else None,
        }


@dataclass
class CorrelationGraph:
    """The graph plus the order × node incidence it was counted from (kept for scoped re-counting)."""

    graph: nx.Graph
    order_ids: list[int | str] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    incidence: list[frozenset[str]] = field(default_factory=list)
    built_at: datetime | None = None  # when the orders were read (a graph of the database: how fresh it is)

    # queries ----------------------------------------------------------------------------------------------

    def match(self, text: str, *, kind: str | None = None) -> list[str]:
        """Nodes a query names: the node id itself, else nodes of that exact name, else names containing it."""
        text = text.strip()
        if not text:
            raise ValidationFailed("empty node query")
        g = self.graph
        if text in g and (kind is None or g.nodes[text]["kind"] == kind):
            return [text]
        candidates = [n for n in g if kind is None or g.nodes[n]["kind"] == kind]
        exact = [n for n in candidates if g.nodes[n]["name"] == text]
        if exact:
            return sorted(exact)
        return sorted(n for n in candidates if text in g.nodes[n]["name"])

    def related(
        self,
        node: str,
        *,
        kind: str | Sequence[str] | None = None,
        period: str | Period | None = None,
        place: str | None = None,
        top: int = 10,
        min_count: int = 2,
    ) -> RelatedAnswer:
        """What co-occurs with ``node`` among the orders of ``place`` in ``period``, ranked by NPMI.

        ``kind`` limits the answer to node kinds (default: every kind but ``window``). Raises NotFound when the
        query or the place names no node.
        """
        query = set(self.match(node))
        if not query:
            raise NotFound(f"no node matches '{node}'")
        places: set[str] = set()
        if place:
            places = set(self.match(place, kind="place"))
            if not places:
                raise NotFound(f"no place matches '{place}'")
        span = parse_period(period) if isinstance(period, str) else period
        kinds = {kind} if isinstance(kind, str) else (set(kind) if kind else set(NODE_KINDS) - {"window"})
        unknown = kinds - set(NODE_KINDS)
        if unknown:
            raise ValidationFailed(f"unknown node kind(s) {sorted(unknown)}: use {', '.join(NODE_KINDS)}")

        n = 0
        n_a = 0
        support: Counter[str] = Counter()
        joint: Counter[str] = Counter()
        for day, nodes in zip(self.days, self.incidence, strict=True):
            if span is not None and not span.contains(day):
                continue
            if places and not nodes & places:
                continue
            n += 1
            support.update(nodes)
            if nodes & query:
                n_a += 1
                joint.update(nodes)
        items = []
        for other, n_ab in joint.items():
            if other in query or other in places or n_ab < min_count:
                continue
            other_kind, name = split_node(other)
            if other_kind not in kinds:
                continue
            lift, npmi = association(n_ab, n_a, support[other], n)
            if lift <= 1.0:
                continue
            items.append(Related(other, other_kind, name, n_ab, support[other], lift, npmi, 1.0))
        items.sort(key=lambda r: (-r.npmi, -r.count, r.node))
        items = [
            Related(
                r.node, r.kind, r.name, r.count, r.support, r.lift, r.npmi, cooccurrence_p(r.count, n_a, r.support, n)
            )
            for r in items[:top]
        ]
        return RelatedAnswer(
            query=sorted(query),
            place=sorted(places),
            period=span.label if span else None,
            universe=n,
            matched=n_a,
            items=items,
            built_at=self.built_at,
        )

    def groups_of(self, topic: str, *, period: str | Period | None = None, top: int = 10) -> RelatedAnswer:
        """The population groups a topic (category, hot topic or keyword) affects most, beyond chance."""
        return self.related(topic, kind="group", period=period, top=top, min_count=1)

    # export -----------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return dict(nx.node_link_data(self.graph, edges="links"))

    def write(self, path: Path) -> None:
        """GraphML for ``.graphml``/``.xml``, node-link JSON otherwise."""
        if path.suffix.lower() in (".graphml", ".xml"):
            nx.write_graphml(self._graphml_view(), str(path))
        else:
            path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")

    def graphml(self) -> str:
        return "\n".join(nx.generate_graphml(self._graphml_view()))

    def _graphml_view(self) -> nx.Graph:
        """The graph as GraphML can hold it: without the graph attributes that are null (``period`` when none was
        asked), which it has no value for."""
        view = self.graph.copy(as_view=True)
        view.graph = {key: value for key, value in self.graph.graph.items() if value is not None}
        return view


def read_graph(path: Path) -> nx.Graph:
    """A graph written by :meth:`CorrelationGraph.write`."""
    if path.suffix.lower() in (".graphml", ".xml"):
        return nx.read_graphml(str(path))
    return nx.node_link_graph(json.loads(path.read_text(encoding="utf-8")), edges="links")


def build_graph(
    facts: Iterable[OrderFact],
    *,
    granularity: Granularity = "month",
    topics: Mapping[int | str, Sequence[str]] | None = None,
    min_support: int = 3,
    period: Period | None = None,
    tz: ZoneInfo | None = None,
) -> CorrelationGraph:
    """Count nodes and pairs over ``facts`` (those in ``period`` when given) and keep significant pairs."""
    zone = tz or get_settings().tz
    result = CorrelationGraph(graph=nx.Graph())
    node_count: Counter[str] = Counter()
    for fact in facts:
        if is_proactive(fact.attributes):
            continue
        day = fact.created_at.astimezone(zone).date()
        if period is not None and not period.contains(day):
            continue
        nodes = order_nodes(fact, granularity=granularity, topics=(topics or {}).get(fact.id, ()), tz=zone)
        result.order_ids.append(fact.id)
        result.days.append(day)
        result.incidence.append(frozenset(nodes))
        node_count.update(nodes)
    # A place named with a few characters of the sentence in front (村福荫二横路, 点以后福荫二横路) is the place it ends
    # with when that is counted at least as often: one node, with the orders of both.
    places = {name: c for node, c in node_count.items() for kind, name in [split_node(node)] if kind == "place"}
    folds = {node_id("place", a): node_id("place", b) for a, b in place_folds(places).items()}
    if folds:
        for i, held in enumerate(result.incidence):
            if not folds.keys().isdisjoint(held):  # only the orders naming a folded place change
                moved = frozenset(folds.get(x, x) for x in held)
                node_count.subtract(held)
                node_count.update(moved)
                result.incidence[i] = moved
        node_count = +node_count  # the folded places' nodes are gone
    pair_count = _pair_counts(result.incidence, node_count, min_support)
    n = len(result.incidence)
    g = result.graph
    g.graph.update(
        orders=n,
        granularity=granularity,
        min_support=min_support,
        period=period.label if period else None,  # JSON null when no period was asked; GraphML leaves it out
    )
    # Nodes and links in sorted order: an export names each link's ends and lists the links in the same order
    # whichever order the orders were read in.
    for node, count in sorted(node_count.items()):
        kind, name = split_node(node)
        attrs: dict[str, Any] = {"kind": kind, "name": name, "count": count}
        if kind == "place":
            attrs["level"] = place_level(name)
        g.add_node(node, **attrs)
    for (a, b), count in pair_count:
        lift, npmi = association(count, node_count[a], node_count[b], n)
        if npmi <= 0:
            continue
        g.add_edge(a, b, count=count, lift=round(lift, 4), npmi=round(npmi, 4), weight=round(npmi, 4))
    return result


def _pair_counts(
    incidence: Sequence[frozenset[str]], node_count: Mapping[str, int], min_support: int
) -> list[tuple[tuple[str, str], int]]:
    """((a, b), orders holding both) of the node pairs seen in at least ``min_support`` orders, a < b, sorted.

    Counted as the product of the sparse order × node matrix with itself (a Counter of every pair of every order
    took seconds at 200,000 orders). A pair is seen at most as often as either node: rarer nodes are left out."""
    names = sorted(x for x, c in node_count.items() if c >= min_support)
    if len(names) < 2:
        return []
    column = {x: j for j, x in enumerate(names)}
    rows: list[int] = []
    cols: list[int] = []
    for i, held in enumerate(incidence):
        for x in held:
            j = column.get(x)
            if j is not None:
                rows.append(i)
                cols.append(j)
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(len(incidence), len(names)), dtype=np.int64
    )
    together = sparse.triu(matrix.T @ matrix, k=1).tocoo()  # a < b: the names are sorted
    keep = together.data >= min_support
    return sorted(
        ((names[a], names[b]), int(c))
        for a, b, c in zip(together.row[keep], together.col[keep], together.data[keep], strict=True)
    )


# Built graphs per (database, data scope, period, granularity, min_support). A graph holds every order's node set,
# so it is as large as its universe: a few are kept, the one stored longest ago out first.
GRAPH_CACHE_SECONDS = 600.0  # renamed units or categories are not orders: a graph is built again after this
GRAPH_CACHE_SIZE = 8
GRAPH_CACHE = TtlCache(GRAPH_CACHE_SECONDS, size=GRAPH_CACHE_SIZE)


@dataclass(frozen=True)
class _Built:
    graph: CorrelationGraph
    fingerprint: tuple[Any, ...]  # of the orders (and mined topics) it was counted from, read before them


def clear_cache() -> None:
    """Forget the built graphs (tests; after a reseed)."""
    GRAPH_CACHE.clear()


def _clause_key(clause: ColumnElement[bool] | None) -> tuple[str, str] | None:
    """A hashable identity of a scope clause: its SQL text and bound values."""
    if clause is None:
        return None
    compiled = clause.compile()
    return str(compiled), repr(sorted(compiled.params.items()))


def orders_fingerprint(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    scope: ColumnElement[bool] | None = None,
) -> tuple[Any, ...]:
    """(count, max id, max updated_at) of the orders created in [start, end) within ``scope``."""
    query = select(func.count(), func.max(Order.id), func.max(Order.updated_at))
    query = _orders_within(query, start=start, end=end, scope=scope)
    count, max_id, last = session.execute(query).one()
    return int(count), max_id, last.isoformat() if isinstance(last, datetime) else last


def graph_from_db(
    session: Session,
    *,
    period: Period | None = None,
    scope: ColumnElement[bool] | None = None,
    granularity: Granularity = "month",
    min_support: int = 3,
    cache: TtlCache | None = GRAPH_CACHE,
) -> CorrelationGraph:
    """The graph of the orders of ``period`` (all orders when None) within ``scope``, as last built.

    Built once per process and key (database, scope clause, period, granularity, min_support) — only that first
    build waits. Each request checks the fingerprint of the same orders with one aggregate query
    (:func:`orders_fingerprint`, with :func:`~cityhub.analytics.topics_store.topics_version`): when an order was
    added, changed or deleted, or the topics were mined again, or ``GRAPH_CACHE_SECONDS`` passed, the graph at hand
    is answered while one background thread (on a session of its own) builds the next — at district scale a build
    takes seconds and new orders arrive every minute, so a request waiting for it would wait at almost every visit.
    The graph's ``built_at`` says how fresh it is. ``cache=None`` builds afresh (the CLI)."""
    start, end = period.bounds() if period else (None, None)

    from cityhub.analytics import topics_store  # the mined hot topics (heavy imports: only when a graph is built)

    def fingerprint(s: Session) -> tuple[Any, ...]:
        # Re-mined topics change the graph's topic nodes without touching any order.
        return (*orders_fingerprint(s, start=start, end=end, scope=scope), topics_store.topics_version(s))

    def build(s: Session, seen: tuple[Any, ...] | None = None) -> _Built:
        built_at = datetime.now(UTC)
        # Read before the orders: an order written meanwhile moves the fingerprint, and the next request builds again.
        moved = seen if seen is not None else fingerprint(s)
        facts = load_facts(s, start=start, end=end, scope=scope)
        topics = topics_store.order_topic_labels(s, [f.id for f in facts if isinstance(f.id, int)])
        graph = build_graph(
            facts,
            granularity=granularity,
            topics=topics or None,
            min_support=min_support,
            period=period,
        )
        graph.built_at = built_at
        graph.graph.graph["built_at"] = answer_time(built_at)
        return _Built(graph, moved)

    if cache is None:
        return build(session).graph
    key = (
        database_key(session),
        _clause_key(scope),
        (period.first, period.stop) if period else None,
        granularity,
        min_support,
    )
    now = fingerprint(session)

    def refresh() -> _Built:
        with Session(bind=session.get_bind().engine) as own:
            return build(own)

    built = cache.get(key, lambda: build(session, now), refresh, current=lambda b: b.fingerprint == now)
    return built.graph
