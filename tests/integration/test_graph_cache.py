"""The correlation graph is cached per (database, scope, period) and rebuilt when the orders behind it change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cityhub.analytics.correlation import GraphCache, graph_from_db, parse_period
from cityhub.db import session_scope
from cityhub.demo.service import seed_reference_data
from cityhub.intake.service import submit
from cityhub.org.models import Unit
from cityhub.workorders.models import Order

JUNE = parse_period("2026-06")


def _order(s, street: Unit, text: str, at: datetime) -> Order:
    return submit(
        s,
        data={
            "channel": "web",
            "content": text,
            "category": "环境保护/环境污染/噪音污染",
            "street_code": street.code,
            "created_at": at.isoformat(),
        },
    ).order


def test_graph_is_reused_until_its_orders_change(app_db: str) -> None:
    cache = GraphCache()
    start = datetime(2026, 6, 2, 2, tzinfo=UTC)
    with session_scope() as s:
        seed_reference_data(s)
        streets = list(s.scalars(select(Unit).where(Unit.name.in_(["石井街道", "同和街道"])).order_by(Unit.id)))
        ids = [_order(s, streets[i % 2], f"工地夜间施工噪音扰民{i}", start + timedelta(days=i)).id for i in range(10)]
        july = _order(s, streets[0], "七月的施工噪音", datetime(2026, 7, 3, 2, tzinfo=UTC))

    def graph(**kw):  # a new session per call, as the API has per request
        with session_scope() as s:
            return graph_from_db(s, period=JUNE, cache=cache, **kw)

    first = graph()
    assert first.graph.graph["orders"] == 10 and cache.builds == 1
    assert graph() is first and cache.hits == 1
    # Another scope or another period is another entry; the first stays cached.
    one_street = graph(scope=Order.street_id == streets[0].id)
    assert one_street is not first and one_street.graph.graph["orders"] == 5
    with session_scope() as s:
        assert graph_from_db(s, period=parse_period("2026-07"), cache=cache).graph.graph["orders"] == 1
    assert graph() is first and cache.builds == 3

    # An order outside the period changes: June's graph stays.
    with session_scope() as s:
        s.get(Order, july.id).content = "七月的路面积水"
    assert graph() is first

    # A new order in June: rebuilt, and counted.
    with session_scope() as s:
        _order(s, streets[0], "又一次施工噪音", start + timedelta(days=20))
    second = graph()
    assert second is not first and second.graph.graph["orders"] == 11

    # An edited order (new text): rebuilt with the new keyword.
    assert "keyword:积水" not in second.graph
    with session_scope() as s:
        s.get(Order, ids[0]).content = "小区地下车库积水严重"
    third = graph()
    assert third is not second and "keyword:积水" in third.graph

    # A deleted order: rebuilt without it.
    with session_scope() as s:
        s.delete(s.get(Order, ids[1]))
    assert graph().graph.graph["orders"] == 10

    # Without a cache (or past the time to live) the graph is always built.
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE, cache=None) is not graph_from_db(s, period=JUNE, cache=None)
    stale = GraphCache(ttl=0.0)
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE, cache=stale) is not graph_from_db(s, period=JUNE, cache=stale)


def test_cache_keeps_at_most_size_graphs(app_db: str) -> None:
    cache = GraphCache(size=2)
    with session_scope() as s:
        seed_reference_data(s)
        street = s.scalars(select(Unit).where(Unit.name == "石井街道")).one()
        for month in (4, 5, 6):
            _order(s, street, "施工噪音", datetime(2026, month, 10, 2, tzinfo=UTC))
    with session_scope() as s:
        april = graph_from_db(s, period=parse_period("2026-04"), cache=cache)
        graph_from_db(s, period=parse_period("2026-05"), cache=cache)
        graph_from_db(s, period=parse_period("2026-06"), cache=cache)  # April is the least recently used: out
        assert graph_from_db(s, period=parse_period("2026-04"), cache=cache) is not april
        assert cache.builds == 4
