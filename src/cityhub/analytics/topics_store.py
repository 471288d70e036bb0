"""Hot topics over the database: read orders, fit or update the persisted model, store topics with stable ids.

The fitted :class:`~cityhub.analytics.hot_topics.TopicModel` is kept (pickled, zlib-compressed) in
``hot_topic_models``; only cityhub itself writes that row, so unpickling it is as trusted as the database. The
same serialisation backs ``--state FILE`` for CSV inputs.
"""

from __future__ import annotations

import pickle
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from cityhub.analytics.hot_topics import (
    CONTENT_CHARS,
    OrderRecord,
    Params,
    StaleModelState,
    Topic,
    TopicModel,
    order_places,
)
from cityhub.analytics.lexicon import fold_place_variants
from cityhub.analytics.models import HotTopic, HotTopicModelState, HotTopicOrder
from cityhub.db import in_batches, utcnow
from cityhub.errors import NotFound, ValidationFailed
from cityhub.org.models import Unit
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Order

READ_CHUNK = 20_000


def counted() -> ColumnElement[bool]:
    """The orders a topic counts: every one but those cancelled as invalid (作废: a prank, a wrong number — no
    problem of anyone's), as the correlation graph, the risk findings and the 专报's 有效工单 count. A duplicate merged
    into another order stays: another reporter of the problem.

    Mining reads only such orders (:func:`iter_orders`), but an order cancelled after it was mined stays in the
    model (a topic keeps sums, not each order's vector, so it cannot be taken out) and in the stored memberships: every
    figure read from the stored topics applies this condition, so it is left out from the moment it is cancelled
    (``state`` is a column of the order the reads already join; no re-mining, no write when an order is cancelled)."""
    return Order.state != State.CANCELLED


def dumps(model: TopicModel) -> bytes:
    return zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 3)


def loads(blob: bytes) -> TopicModel:
    """The stored model; :class:`StaleModelState` when an older version of the miner wrote it."""
    model = pickle.loads(zlib.decompress(blob))  # written by cityhub itself (module doc)
    if not isinstance(model, TopicModel):
        raise TypeError("stored state is not a topic model")
    return model


def save_file(model: TopicModel, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(dumps(model))
    tmp.replace(path)


def load_file(path: Path) -> TopicModel:
    """The model :func:`save_file` wrote; :class:`ValidationFailed` naming the file when it cannot be read or holds
    no topic model (another file given as the state), :class:`StaleModelState` when an older miner wrote it."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return loads(blob)
    except StaleModelState:
        raise
    except Exception:  # not zlib, not a pickle, another object: not a state this command wrote
        raise ValidationFailed(f"{path} is not a hot-topic state written by cityhub (give another file)") from None


def iter_orders(session: Session, *, after_id: int = 0, upto: int | None = None) -> Iterator[tuple[int, OrderRecord]]:
    """(database id, record) of every order with an id in ``(after_id, upto]`` that topics count (:func:`counted`:
    not cancelled), in id order, read in chunks.

    An appeal some problems were split off (拆单) is read without their words where they are its own verbatim: each
    split-off problem is an order of its own, counted once there (a split made after the appeal was mined is not
    taken back)."""
    street = aliased(Unit)
    community = aliased(Unit)
    last = after_id
    while True:
        query = (
            select(
                Order.id,
                Order.title,
                Order.content,
                Order.created_at,
                Order.likes,
                Order.opposes,
                Order.citizen_name,
                street.name,
                community.name,
            )
            .outerjoin(street, street.id == Order.street_id)
            .outerjoin(community, community.id == Order.community_id)
            .where(Order.id > last, counted())
            .order_by(Order.id)
            .limit(READ_CHUNK)
        )
        if upto is not None:
            query = query.where(Order.id <= upto)
        rows = session.execute(query).all()
        if not rows:
            return
        split_off: dict[int | None, list[str]] = {}
        for parent, text in session.execute(
            select(Order.split_from_id, Order.content).where(Order.split_from_id.in_([row[0] for row in rows]))
        ):
            split_off.setdefault(parent, []).append(text)
        for oid, title, content, created, likes, opposes, citizen, street_name, community_name in rows:
            content = _without(content or "", split_off.get(oid, ()))
            places = tuple(p for p in (street_name, community_name) if p)
            yield (
                oid,
                OrderRecord(
                    id=str(oid),
                    title=title or "",
                    content=(content or "")[: CONTENT_CHARS * 2],
                    created_at=created,
                    likes=likes or 0,
                    opposes=opposes or 0,
                    citizen=citizen,
                    places=places,
                ),
            )
        last = rows[-1][0]


def _without(content: str, parts: Iterable[str]) -> str:
    """``content`` with each of ``parts`` that it holds verbatim taken out."""
    for part in parts:
        words = (part or "").strip()
        if words and words in content:
            content = content.replace(words, " ", 1)
    return content


def mine_database(
    session: Session, *, rebuild: bool = False, params: Params | None = None
) -> tuple[TopicModel, dict[str, int]]:
    """Fit (first run, or ``rebuild``) or update the stored model with orders added since, and store topics.

    A fit streams the orders (read twice, in chunks, up to the largest id seen at the start), so memory does not
    hold the orders' texts. A model stored by an older version of the miner is fitted again.
    """
    state = session.execute(select(HotTopicModelState).order_by(HotTopicModelState.id.desc()).limit(1)).scalar()
    upto = int(session.scalar(select(func.max(Order.id))) or 0)
    model: TopicModel | None = None
    if state is not None and not rebuild:
        try:
            model = loads(state.state)
        except StaleModelState:
            model = None
    if state is not None and model is not None:
        records = [r for _, r in iter_orders(session, after_id=state.last_order_id, upto=upto)]
        # Orders after the last one read: none was read before, and the model would not count it twice if it was.
        summary = model.update(records) if records else {"orders": 0, "joined": 0, "new_topics": 0}
        if not records:
            model.refresh()
        state.state = dumps(model)
        state.orders_seen += summary["orders"]
        state.last_order_id = max(upto, state.last_order_id)
        summary["mode"] = 0
    else:
        model = TopicModel(params)
        model.fit(lambda: (r for _, r in iter_orders(session, upto=upto)))
        if state is not None:
            session.delete(state)
        session.add(
            HotTopicModelState(
                orders_seen=model.orders_seen,
                last_order_id=upto,
                params=asdict(model.params),
                state=dumps(model),
            )
        )
        summary = {"orders": model.orders_seen, "joined": 0, "new_topics": len(model.topics), "mode": 1}
    store_topics(session, model.ranked())
    session.flush()
    return model, summary


_TOPIC_COLUMNS = (
    "label",
    "representative_title",
    "key_phrases",
    "size",
    "heat",
    "status",
    "first_at",
    "last_at",
    "places",
    "groups",
    "likes",
    "opposes",
)


def _topic_values(t: Topic) -> dict[str, Any]:
    """A topic as its stored row's columns."""
    return {
        "label": t.label[:300],
        "representative_title": t.representative[:300],
        "key_phrases": list(t.key_phrases),
        "size": t.size,
        "heat": t.heat,
        "status": t.status,
        "first_at": _aware(min(t.times)) if t.times else None,
        "last_at": _aware(max(t.times)) if t.times else None,
        "places": [p for p, _ in t.top_places(5)],
        "groups": [g for g, _ in t.groups.most_common(5)],
        "likes": t.likes,
        "opposes": t.opposes,
    }


def store_topics(session: Session, topics: Sequence[Topic]) -> dict[str, int]:
    """Make the stored topic rows and memberships those of ``topics`` (ids are the model's own), writing only what
    changed: the job's hourly refresh moves heats and statuses and adds an hour's orders, and rewriting every topic
    and every membership (20,000 rows for the demo's year) held the database's write lock for seconds — on SQLite
    every login and every intake waited. Everything is read and compared first, then written in few statements.
    Returns the rows written by kind."""
    with session.no_autoflush:
        held = {
            row.id: {c: getattr(row, c) for c in _TOPIC_COLUMNS}
            for row in session.execute(select(HotTopic.id, *(getattr(HotTopic, c) for c in _TOPIC_COLUMNS)))
        }
        held_members: dict[int, int] = {
            int(o): int(t) for o, t in session.execute(select(HotTopicOrder.order_id, HotTopicOrder.topic_id))
        }
    wanted = {t.id: _topic_values(t) for t in topics}
    members = {int(oid): t.id for t in topics for oid in t.order_ids}
    for values in held.values():
        values["first_at"], values["last_at"] = _aware(values["first_at"]), _aware(values["last_at"])
    now = utcnow()
    new_topics = [{"id": i, **v, "updated_at": now} for i, v in wanted.items() if i not in held]
    changed = [{"id": i, **v, "updated_at": now} for i, v in wanted.items() if i in held and held[i] != v]
    gone_topics = [i for i in held if i not in wanted]
    added = [{"order_id": o, "topic_id": t} for o, t in members.items() if o not in held_members]
    moved = [{"order_id": o, "topic_id": t} for o, t in members.items() if held_members.get(o, t) != t]
    gone_members = [o for o in held_members if o not in members]
    # New topics before the memberships that name them; the memberships of a topic gone before the topic.
    for batch in in_batches(new_topics):
        session.execute(insert(HotTopic), batch)
    for batch in in_batches(changed):
        session.execute(update(HotTopic), batch)
    for batch in in_batches(moved):
        session.execute(update(HotTopicOrder), batch)
    for batch in in_batches(added):
        session.execute(insert(HotTopicOrder), batch)
    for ids in in_batches(gone_members):
        session.execute(delete(HotTopicOrder).where(HotTopicOrder.order_id.in_(ids)))
    for ids in in_batches(gone_topics):
        session.execute(delete(HotTopic).where(HotTopic.id.in_(ids)))
    session.flush()
    # Written by statements, not through the objects: rows the session holds are read again when next used.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, HotTopic | HotTopicOrder):
            session.expire(obj)
    return {
        "topics_added": len(new_topics),
        "topics_changed": len(changed),
        "topics_removed": len(gone_topics),
        "members_added": len(added),
        "members_moved": len(moved),
        "members_removed": len(gone_members),
    }


# A first fit over more orders than this is left to `cityhub analytics hot-topics` (minutes of a core and a GB or
# more, run when the operator chooses); `demo seed`, a set-up step, fits smaller histories itself.
FIRST_FIT_LIMIT = 50_000
# The scheduled job may run inside a server process: its own first fit stays small (5,000 orders: seconds and a few
# hundred MB, bench/results/hot_topics_quick.md scaled); after that it only adds the orders received since its last
# run, which an hour's intake keeps small.
JOB_FIRST_FIT_LIMIT = 5_000


def scheduled_update(session: Session) -> dict[str, Any]:
    """The ``hot-topics`` job: add the orders received since the last mining to the stored model (and refresh
    heat and status as time passes); the first fit too, for a history of at most :data:`JOB_FIRST_FIT_LIMIT`
    orders."""
    if session.execute(select(HotTopicModelState.id).limit(1)).scalar() is None:
        orders = int(session.scalar(select(func.count()).select_from(Order)) or 0)
        if orders == 0:
            return {"orders": 0}
        if orders > JOB_FIRST_FIT_LIMIT:
            return {"skipped": f"{orders} orders: run `cityhub analytics hot-topics` once to fit the first model"}
    _, summary = mine_database(session)
    return {**summary, "topics": stored_topic_count(session)}


def mined_at(session: Session) -> datetime | None:
    """When the stored topics were last mined or updated (None: never)."""
    value = session.scalar(select(func.max(HotTopicModelState.updated_at)))
    return _aware(value) if value is not None else None


def stored_topic_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(HotTopic)).scalar_one())


def topics_for_period(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    k: int = 10,
    where: Any = None,
    offset: int = 0,
    topic_ids: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """The stored topics with orders created in ``[start, end)``, most orders in the period first (then heat).

    Each row: ``id, label, topic`` (the representative title), ``count`` (orders of the period), ``size``
    (all orders of the topic), ``heat, status, places, groups, key_phrases``, ``time_span`` (first and last
    order of the topic, ISO) and ``period_span`` (first and last order within the period), ``new`` (the topic's
    first order lies in the period), ``period_places`` (the five places most named by the topic's orders of the
    period, counted as ``places`` is over all of them). Empty when no topic has orders in the period. Every count
    leaves out the orders cancelled since they were mined (:func:`counted`).

    ``where``: a condition on :class:`Order` (a reader's data scope): only those orders are counted, and a topic
    without any in the period is left out. ``offset`` skips the first rows of that order (pages); ``topic_ids``
    keeps only those topics.
    """
    if k < 1:
        raise ValidationFailed("k must be at least 1", details={"field": "k"})
    if offset < 0:
        raise ValidationFailed("offset must not be negative", details={"field": "offset"})
    counts = (
        select(
            HotTopicOrder.topic_id.label("topic_id"),
            func.count().label("n"),
            func.min(Order.created_at).label("first"),
            func.max(Order.created_at).label("last"),
        )
        .join(Order, Order.id == HotTopicOrder.order_id)
        .where(Order.created_at >= start, Order.created_at < end, counted(), *([] if where is None else [where]))
        .where(*([] if topic_ids is None else [HotTopicOrder.topic_id.in_(list(topic_ids))]))
        .group_by(HotTopicOrder.topic_id)
        .subquery()
    )
    rows = session.execute(
        select(HotTopic, counts.c.n, counts.c.first, counts.c.last)
        .join(counts, counts.c.topic_id == HotTopic.id)
        .order_by(counts.c.n.desc(), HotTopic.heat.desc(), HotTopic.id)
        .limit(k)
        .offset(offset)
    ).all()
    ids = [topic.id for topic, *_ in rows]
    in_period = _period_places(session, ids, start=start, end=end, where=where)
    whole = _without_cancelled(session, ids)
    return heat_standing(
        session,
        [
            _topic_row(topic, int(n), first, last, in_period.get(topic.id, Counter()), start, end, whole.get(topic.id))
            for topic, n, first, last in rows
        ],
    )


def heat_standing(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (topics by ``id``) with where each one's heat stands among every stored topic's: ``heat_rank`` (1: the
    hottest; equal heats, the same rank) of ``heat_of`` topics — what ``topic_views.heat_words`` says in words, the
    same for every reader and page, since a topic's heat is mined over the whole district. One read of the topics'
    heats (a few thousand numbers for a year)."""
    if not rows:
        return rows
    heats = dict(session.execute(select(HotTopic.id, HotTopic.heat)).tuples().all())
    ascending = sorted(heats.values())
    for r in rows:
        heat = heats.get(r["id"])
        if heat is not None:
            r.update(heat_rank=len(ascending) - bisect_right(ascending, heat) + 1, heat_of=len(ascending))
    return rows


def _without_cancelled(session: Session, topic_ids: Sequence[int]) -> dict[int, tuple[int, Any, Any]]:
    """Size and time span (:func:`topic_spans`) of those of ``topic_ids`` holding an order cancelled since it was
    mined, counted without it (:func:`counted`); the others keep their stored figures. Found from the orders not
    counted (``~counted()``, the cancelled: a few percent, ``ix_orders_state_created``) rather than by counting every
    order of the busiest topics."""
    if not topic_ids:
        return {}
    touched = session.scalars(
        select(HotTopicOrder.topic_id)
        .join(Order, Order.id == HotTopicOrder.order_id)
        .where(~counted(), (HotTopicOrder.topic_id + 0).in_(list(topic_ids)))
        .distinct()
    ).all()
    return topic_spans(session, list(touched))


def _topic_row(
    topic: HotTopic,
    n: int,
    first: Any,
    last: Any,
    places: Counter[str],
    start: datetime,
    end: datetime,
    whole: tuple[int, Any, Any] | None = None,
) -> dict[str, Any]:
    """``whole``: the topic's (size, first, last) when they differ from the stored ones (orders cancelled since)."""
    first, last = _aware(first), _aware(last)
    size, first_at, last_at = whole if whole is not None else (topic.size, topic.first_at, topic.last_at)
    return {
        "id": topic.id,
        "label": topic.label,
        "topic": topic.representative_title or topic.label,
        "count": n,
        "size": size,
        "heat": round(topic.heat, 2),
        "status": topic.status,
        "places": list(topic.places or []),
        "period_places": [place for place, _ in places.most_common(5)],
        "groups": list(topic.groups or []),
        "key_phrases": list(topic.key_phrases or []),
        "time_span": [_iso(_aware(first_at)), _iso(_aware(last_at))],
        "period_span": [_iso(first), _iso(last)],
        "new": first_at is not None and start <= _aware(first_at) < end,  # type: ignore[operator]
    }


def _scoped(session: Session, rows: list[dict[str, Any]], where: Any) -> list[dict[str, Any]]:
    """Rows as a scoped reader sees them: size and time span of the topic's orders in their scope, and the places
    their orders name (the stored places are mined over the whole district's orders)."""
    spans = topic_spans(session, [r["id"] for r in rows], where=where)
    for r in rows:
        n, first, last = spans.get(r["id"], (0, None, None))
        r.update(size=n, time_span=[_iso(first), _iso(last)], places=list(r["period_places"]))
    return rows


def list_topics(
    session: Session, *, start: datetime, end: datetime, where: Any = None, limit: int = 20, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of :func:`topics_for_period` and how many topics the period has, for a reader whose data scope is
    ``where`` (None: the district): a topic is listed when some of its orders of the period are in the scope, and
    every figure of it — count, size, time span, places — is counted over those orders only."""
    rows = topics_for_period(session, start=start, end=end, k=limit, where=where, offset=offset)
    total = count_topics_for_period(session, start=start, end=end, where=where)
    return (rows if where is None else _scoped(session, rows, where)), total


def get_topic(session: Session, *, topic_id: int, start: datetime, end: datetime, where: Any = None) -> dict[str, Any]:
    """One topic as :func:`list_topics` shows it (its count that of ``[start, end)``, possibly 0); NotFound when it
    does not exist, has no order it counts (all cancelled) or, for a scoped reader, none in their scope (the same
    answer)."""
    topic = session.get(HotTopic, topic_id)
    spans = topic_spans(session, [topic_id], where=where) if topic is not None else {}
    if topic is None or topic_id not in spans:
        raise NotFound(f"hot topic {topic_id} not found")
    rows = topics_for_period(session, start=start, end=end, k=1, where=where, topic_ids=[topic_id])
    whole = topic_spans(session, [topic_id]).get(topic_id) if where is not None else spans[topic_id]
    row = (
        rows[0] if rows else heat_standing(session, [_topic_row(topic, 0, None, None, Counter(), start, end, whole)])[0]
    )
    return row if where is None else _scoped(session, [row], where)[0]


def count_topics_for_period(session: Session, *, start: datetime, end: datetime, where: Any = None) -> int:
    """How many stored topics have orders created in ``[start, end)`` (among ``where``'s orders)."""
    query = (
        select(func.count(func.distinct(HotTopicOrder.topic_id)))
        .join(Order, Order.id == HotTopicOrder.order_id)
        .where(Order.created_at >= start, Order.created_at < end, counted(), *([] if where is None else [where]))
    )
    return int(session.scalar(query) or 0)


def topic_spans(session: Session, topic_ids: Sequence[int], *, where: Any = None) -> dict[int, tuple[int, Any, Any]]:
    """Per topic: (orders, first, last) over all its orders it counts (:func:`counted`) among ``where``'s — a scoped
    reader's size and time span of a topic, counted within their scope."""
    if not topic_ids:
        return {}
    rows = session.execute(
        select(HotTopicOrder.topic_id, func.count(), func.min(Order.created_at), func.max(Order.created_at))
        .join(Order, Order.id == HotTopicOrder.order_id)
        .where(HotTopicOrder.topic_id.in_(list(topic_ids)), counted(), *([] if where is None else [where]))
        .group_by(HotTopicOrder.topic_id)
    )
    return {int(tid): (int(n), _aware(first), _aware(last)) for tid, n, first, last in rows}


def topic_orders(
    session: Session,
    *,
    topic_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    where: Any = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Order]:
    """The topic's orders it counts (:func:`counted`: not cancelled), newest first, created in ``[start, end)``
    among ``where``'s orders."""
    conditions = [HotTopicOrder.topic_id == topic_id, counted()]
    if start is not None:
        conditions.append(Order.created_at >= start)
    if end is not None:
        conditions.append(Order.created_at < end)
    if where is not None:
        conditions.append(where)
    return list(
        session.scalars(
            select(Order)
            .join(HotTopicOrder, HotTopicOrder.order_id == Order.id)
            .where(*conditions)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def _period_places(
    session: Session, topic_ids: Sequence[int], *, start: datetime, end: datetime, where: Any = None
) -> dict[int, Counter[str]]:
    """Per topic, how many of its orders created in ``[start, end)`` name each place (``order_places``)."""
    if not topic_ids:
        return {}
    street, community = aliased(Unit), aliased(Unit)
    rows = session.execute(
        select(
            HotTopicOrder.topic_id,
            Order.title,
            func.substr(Order.content, 1, CONTENT_CHARS * 2),
            street.name,
            community.name,
        )
        .join(Order, Order.id == HotTopicOrder.order_id)
        .outerjoin(street, street.id == Order.street_id)
        .outerjoin(community, community.id == Order.community_id)
        # ``topic_id + 0``: the period's orders (``ix_orders_created``) probe their membership, rather than every
        # order of the busiest topics (tens of thousands at 200,000 orders) being read to find the period's few.
        .where((HotTopicOrder.topic_id + 0).in_(topic_ids), Order.created_at >= start, Order.created_at < end)
        .where(counted(), *([] if where is None else [where]))
        .order_by(Order.id)  # places as often named come in the order first named, the same on every backend
    )
    counts: dict[int, Counter[str]] = {}
    for topic_id, title, content, street_name, community_name in rows:
        known = tuple(p for p in (street_name, community_name) if p)
        counts.setdefault(topic_id, Counter()).update(order_places(title or "", content or "", known))
    for places in counts.values():
        fold_place_variants(places)
    return counts


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates (MIN/MAX) come back naive on SQLite: they are UTC like every stored time."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def order_topic_labels(session: Session, order_ids: Sequence[int]) -> dict[int | str, list[str]]:
    """The stored topic of each given order (an order belongs to at most one), as the node name the correlation
    graph uses: ``"T<id> <label>"`` (ids keep two topics with the same label apart)."""
    out: dict[int | str, list[str]] = {}
    wanted = {i for i in order_ids if isinstance(i, int)}
    ids = sorted(wanted)
    query = select(HotTopicOrder.order_id, HotTopic.id, HotTopic.label).join(
        HotTopic, HotTopic.id == HotTopicOrder.topic_id
    )
    if len(ids) > LABELS_BY_RANGE:
        # A graph of many orders (the district's years: 200,000): the memberships between the first and the last
        # in one read, kept for the orders asked (40 IN lists of 5,000 cost seconds to bind).
        chunks = [query.where(HotTopicOrder.order_id.between(ids[0], ids[-1]))]
    else:  # bounded IN lists (SQLite's parameter limit)
        chunks = [query.where(HotTopicOrder.order_id.in_(ids[i : i + 5000])) for i in range(0, len(ids), 5000)]
    for chunk in chunks:
        for order_id, topic_id, label in session.execute(chunk):
            if order_id in wanted:
                out[order_id] = [f"T{topic_id} {label}"]
    return out


LABELS_BY_RANGE = 20_000  # orders asked for above which order_topic_labels reads their id range at once


def topics_version(session: Session) -> tuple[Any, ...]:
    """Changes whenever topics are mined or updated (the model state's last update and high-water mark)."""
    updated, last_id = session.execute(
        select(func.max(HotTopicModelState.updated_at), func.max(HotTopicModelState.last_order_id))
    ).one()
    return (updated.isoformat() if isinstance(updated, datetime) else updated, last_id)
