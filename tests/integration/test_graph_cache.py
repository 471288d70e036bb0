"""The correlation graph is kept per (database, scope, period): once its orders change the last graph built is
answered while one background thread builds the next, and every answer says when its orders were read."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cityhub.analytics import correlation
from cityhub.analytics.correlation import graph_from_db, parse_period
from cityhub.caching import TtlCache
from cityhub.db import session_scope
from cityhub.demo.service import seed_reference_data
from cityhub.intake.service import submit
from cityhub.org.models import Unit
from cityhub.workorders.models import Order

JUNE = parse_period("2026-06")
START = datetime(2026, 6, 2, 2, tzinfo=UTC)


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


def _streets(s) -> list[Unit]:
    seed_reference_data(s)
    return list(s.scalars(select(Unit).where(Unit.name.in_(["石井街道", "同和街道"])).order_by(Unit.id)))


def _refreshed() -> None:
    """Wait for the background builds under way (a build of ten orders takes well under a second)."""
    for thread in threading.enumerate():
        if thread.name == "cache-refresh":
            thread.join(30)
            assert not thread.is_alive()


class Builds:
    """``correlation.build_graph`` counted, and held in background threads until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.in_place = 0
        self.background = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        build = correlation.build_graph
        test = threading.current_thread()

        def counted(*args, **kwargs):
            if threading.current_thread() is test:
                self.in_place += 1
            else:
                self.background += 1
                self.started.set()
                assert self.release.wait(30)
            return build(*args, **kwargs)

        monkeypatch.setattr(correlation, "build_graph", counted)


def test_a_changed_graph_is_answered_as_last_built_while_one_thread_builds_the_next(
    app_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TtlCache(600.0)
    builds = Builds(monkeypatch)
    with session_scope() as s:
        streets = _streets(s)
        ids = [_order(s, streets[i % 2], f"工地夜间施工噪音扰民{i}", START + timedelta(days=i)).id for i in range(10)]
        july = _order(s, streets[0], "七月的施工噪音", datetime(2026, 7, 3, 2, tzinfo=UTC))

    def graph(**kw):  # a new session per call, as the API has per request
        with session_scope() as s:
            return graph_from_db(s, period=JUNE, cache=cache, **kw)

    before = datetime.now(UTC)
    first = graph()  # the first build of a key waits for it
    assert first.graph.graph["orders"] == 10 and builds.in_place == 1
    assert before <= first.built_at <= datetime.now(UTC)
    assert graph() is first and builds.in_place == 1  # unchanged orders: the graph at hand, nothing built
    # Another scope or another period is another key: built in place the first time, the first stays.
    one_street = graph(scope=Order.street_id == streets[0].id)
    assert one_street is not first and one_street.graph.graph["orders"] == 5
    with session_scope() as s:
        assert graph_from_db(s, period=parse_period("2026-07"), cache=cache).graph.graph["orders"] == 1
    assert graph() is first and builds.in_place == 3 and builds.background == 0

    # An order outside the period changes: June's graph stands.
    with session_scope() as s:
        s.get(Order, july.id).content = "七月的路面积水"
    assert graph() is first and builds.background == 0

    # A new order in June: the last graph is answered at once, while one thread builds the next …
    builds.release.clear()
    with session_scope() as s:
        _order(s, streets[0], "又一次施工噪音", START + timedelta(days=20))
    assert graph() is first
    assert builds.started.wait(30)
    assert graph() is first and graph() is first  # … and only that one, however many ask meanwhile
    builds.release.set()
    _refreshed()
    second = graph()  # the next answer has the new order
    assert second is not first and second.graph.graph["orders"] == 11 and second.built_at > first.built_at
    assert builds.background == 1 and builds.in_place == 3
    assert graph() is second

    # An edited order (new text), a deleted order: each answered as built, then built again with the change.
    with session_scope() as s:
        s.get(Order, ids[0]).content = "小区地下车库积水严重"
    assert graph() is second
    _refreshed()
    third = graph()
    assert "keyword:积水" not in second.graph and "keyword:积水" in third.graph
    with session_scope() as s:
        s.delete(s.get(Order, ids[1]))
    assert graph() is third
    _refreshed()
    assert graph().graph.graph["orders"] == 10 and builds.in_place == 3

    # Without a cache the graph is always built; past the time to live it is built again in the background.
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE, cache=None) is not graph_from_db(s, period=JUNE, cache=None)
    stale = TtlCache(0.0)
    with session_scope() as s:
        built = graph_from_db(s, period=JUNE, cache=stale)
        assert graph_from_db(s, period=JUNE, cache=stale) is built
    _refreshed()
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE, cache=stale) is not built
    _refreshed()


def test_a_background_build_failing_keeps_the_last_graph(app_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = TtlCache(600.0)
    with session_scope() as s:
        street = _streets(s)[0]
        _order(s, street, "施工噪音", START)
    with session_scope() as s:
        first = graph_from_db(s, period=JUNE, cache=cache)
        _order(s, street, "又是施工噪音", START + timedelta(days=1))

    def broken(*args, **kwargs):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(correlation, "build_graph", broken)
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE, cache=cache) is first
    _refreshed()
    monkeypatch.undo()
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE, cache=cache) is first  # answered again, and built again behind it
    _refreshed()
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE, cache=cache).graph.graph["orders"] == 2


def test_cache_keeps_at_most_size_graphs(app_db: str) -> None:
    cache = TtlCache(600.0, size=2)
    with session_scope() as s:
        street = _streets(s)[0]
        for month in (4, 5, 6):
            _order(s, street, "施工噪音", datetime(2026, month, 10, 2, tzinfo=UTC))
    with session_scope() as s:
        april = graph_from_db(s, period=parse_period("2026-04"), cache=cache)
        may = graph_from_db(s, period=parse_period("2026-05"), cache=cache)
        graph_from_db(s, period=parse_period("2026-06"), cache=cache)  # April was stored longest ago: out
        assert graph_from_db(s, period=parse_period("2026-04"), cache=cache) is not april
        assert graph_from_db(s, period=parse_period("2026-06"), cache=cache) is not may


def test_the_cli_computes_the_graph_afresh(app_db: str, cli_run) -> None:
    """A server's last graph is not what a command run now should print: the command builds from the orders."""
    with session_scope() as s:
        street = _streets(s)[0]
        _order(s, street, "工地夜间施工噪音扰民", START)
    with session_scope() as s:
        assert graph_from_db(s, period=JUNE).graph.graph["orders"] == 1  # the process's cache holds a graph
        _order(s, street, "工地夜间施工噪音又扰民", START + timedelta(days=1))
    code, out, err = cli_run("analytics", "graph", "related", "--node", "噪音", "--period", "2026-06", "--format=json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["universe"] == 2 and answer["built_at"].endswith("Z")


def test_a_serving_process_builds_the_district_s_graph_before_anyone_asks(
    app_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cityhub serve`` builds the district's graph over all its orders in the background (main._warm_up_graph):
    关联分析's first look without a period — a district-wide reader's — is answered from the cache, not built."""
    from cityhub import main

    correlation.clear_cache()
    with session_scope() as s:
        streets = _streets(s)
        for i in range(4):
            _order(s, streets[i % 2], f"工地夜间施工噪音扰民{i}", START + timedelta(days=i))
    builds = Builds(monkeypatch)
    main._warm_up_graph()
    assert builds.in_place == 1
    with session_scope() as s:
        graph = graph_from_db(s)
    assert builds.in_place == 1 and graph.graph.graph["orders"] == 4
    correlation.clear_cache()
