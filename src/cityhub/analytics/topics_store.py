"""Hot topics over the database: read orders, fit or update the persisted model, store topics with stable ids.

The fitted :class:`~cityhub.analytics.hot_topics.TopicModel` is kept (pickled, zlib-compressed) in
``hot_topic_models``; only cityhub itself writes that row, so unpickling it is as trusted as the database. The
same serialisation backs ``--state FILE`` for CSV inputs.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased

from cityhub.analytics.hot_topics import CONTENT_CHARS, OrderRecord, Params, Topic, TopicModel
from cityhub.analytics.models import HotTopic, HotTopicModelState, HotTopicOrder
from cityhub.org.models import Unit
from cityhub.workorders.models import Order

READ_CHUNK = 20_000


def dumps(model: TopicModel) -> bytes:
    return zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 3)


def loads(blob: bytes) -> TopicModel:
    model = pickle.loads(zlib.decompress(blob))  # written by cityhub itself (module doc)
    if not isinstance(model, TopicModel):
        raise TypeError("stored state is not a topic model")
    return model


def save_file(model: TopicModel, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(dumps(model))
    tmp.replace(path)


def load_file(path: Path) -> TopicModel:
    return loads(path.read_bytes())


def iter_orders(session: Session, *, after_id: int = 0) -> Iterator[tuple[int, OrderRecord]]:
    """(database id, record) of every order with a larger id, in id order, read in chunks."""
    street = aliased(Unit)
    community = aliased(Unit)
    last = after_id
    while True:
        rows = session.execute(
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
            .where(Order.id > last)
            .order_by(Order.id)
            .limit(READ_CHUNK)
        ).all()
        if not rows:
            return
        for oid, title, content, created, likes, opposes, citizen, street_name, community_name in rows:
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


def mine_database(
    session: Session, *, rebuild: bool = False, params: Params | None = None
) -> tuple[TopicModel, dict[str, int]]:
    """Fit (first run, or ``rebuild``) or update the stored model with orders added since, and store topics."""
    state = session.execute(select(HotTopicModelState).order_by(HotTopicModelState.id.desc()).limit(1)).scalar()
    if state is not None and not rebuild:
        model = loads(state.state)
        pairs = list(iter_orders(session, after_id=state.last_order_id))
        records = [r for _, r in pairs]
        summary = model.update(records) if records else {"orders": 0, "joined": 0, "new_topics": 0}
        if not records:
            model.refresh()
        last_id = pairs[-1][0] if pairs else state.last_order_id
        state.state = dumps(model)
        state.orders_seen += len(records)
        state.last_order_id = last_id
        summary["mode"] = 0
    else:
        pairs = list(iter_orders(session))
        model = TopicModel(params)
        model.fit([r for _, r in pairs])
        last_id = pairs[-1][0] if pairs else 0
        if state is not None:
            session.delete(state)
        session.add(
            HotTopicModelState(
                orders_seen=len(pairs),
                last_order_id=last_id,
                params=asdict(model.params),
                state=dumps(model),
            )
        )
        summary = {"orders": len(pairs), "joined": 0, "new_topics": len(model.topics), "mode": 1}
    store_topics(session, model.ranked())
    session.flush()
    return model, summary


def store_topics(session: Session, topics: Sequence[Topic]) -> None:
    """Replace the stored topic rows and memberships with ``topics`` (ids are the model's own)."""
    session.execute(delete(HotTopicOrder))
    session.execute(delete(HotTopic))
    for t in topics:
        session.add(
            HotTopic(
                id=t.id,
                label=t.label[:300],
                representative_title=t.representative[:300],
                key_phrases=t.key_phrases,
                size=t.size,
                heat=t.heat,
                status=t.status,
                first_at=min(t.times) if t.times else None,
                last_at=max(t.times) if t.times else None,
                places=[p for p, _ in t.places.most_common(5)],
                groups=[g for g, _ in t.groups.most_common(5)],
                likes=t.likes,
                opposes=t.opposes,
            )
        )
    session.flush()
    session.add_all(HotTopicOrder(order_id=int(oid), topic_id=t.id) for t in topics for oid in t.order_ids)
    session.flush()


def stored_topic_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(HotTopic)).scalar_one())
