"""Hot topics over the database: fit on the stored orders, persist topics, update incrementally with stable ids."""

from __future__ import annotations

import csv
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityhub.analytics.models import HotTopic, HotTopicModelState, HotTopicOrder
from cityhub.caching import TtlCache
from cityhub.intake.importer import import_orders
from cityhub.intake.service import submit
from cityhub.workorders.models import Order

HEADER = ["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "反对数", "点赞数"]
PROBLEMS = [
    ("丽发新城搅拌站噪音扰民", "A市A2区丽发新城小区旁边的搅拌站夜里作业，噪音粉尘严重影响居民休息。"),
    ("伊景园滨河苑捆绑销售车位", "伊景园滨河苑开发商要求购房者必须同时购买车位，否则不予签约。"),
    ("人才购房补贴迟迟未发放", "申请的A市人才新政购房补贴审核通过半年了，补贴款至今没有到账。"),
]
OTHER = ["东风路路灯不亮", "白沙村河道污染", "望月湖社区电梯故障", "黄花镇农田灌溉缺水", "星城花园物业乱收费"]


def _write(path: Path, start: int, days: int, per_problem: int) -> None:
    base = datetime(2019, 3, 1)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        n = start
        for title, content in PROBLEMS:
            for i in range(per_problem):
                n += 1
                at = base + timedelta(days=days + i * 3, hours=n % 12)
                w.writerow(
                    [
                        n,
                        f"U{n}",
                        title if i % 2 else f"反映{title}",
                        at.strftime("%Y/%m/%d %H:%M:%S"),
                        content + ("请尽快处理。" if i % 2 else ""),
                        0,
                        i,
                    ]
                )
        for title in OTHER:
            n += 1
            at = base + timedelta(days=days + n % 20)
            w.writerow([n, f"U{n}", title, at.strftime("%Y/%m/%d %H:%M:%S"), f"{title}，很久没人管。", 0, 0])


def _import(session: Session, path: Path) -> None:
    report = import_orders(session, path=path)
    assert report.imported > 0
    session.commit()


def test_db_mode_persists_topics_and_updates_incrementally(app_db: str, db_session: Session, tmp_path: Path) -> None:
    from cityhub.analytics.cli import app

    first = tmp_path / "first.csv"
    _write(first, start=0, days=0, per_problem=4)
    _import(db_session, first)
    runner = CliRunner()
    result = runner.invoke(app, ["hot-topics", "--format", "json", "--top", "10"])
    assert result.exit_code == 0, result.output
    topics = json.loads(result.stdout)
    assert len(topics) >= len(PROBLEMS)
    db_ids = {str(i) for i in db_session.scalars(select(Order.id))}
    for t in topics:
        assert set(t["order_ids"]) <= db_ids
    stored = {t.id: t.size for t in db_session.scalars(select(HotTopic))}
    assert stored == {t["id"]: t["size"] for t in topics}
    members = db_session.scalar(select(func.count()).select_from(HotTopicOrder))
    assert members == sum(t["size"] for t in topics)
    by_title = {t["id"]: t for t in topics}

    second = tmp_path / "second.csv"
    _write(second, start=1000, days=40, per_problem=2)
    _import(db_session, second)
    db_session.expire_all()
    again = runner.invoke(app, ["hot-topics", "--format", "json", "--top", "10"])
    assert again.exit_code == 0, again.output
    after = {t["id"]: t for t in json.loads(again.stdout)}
    # Every earlier topic keeps its id and its members, and has grown with the new orders of its problem.
    for tid, t in by_title.items():
        assert tid in after
        assert set(t["order_ids"]) <= set(after[tid]["order_ids"])
    assert sum(after[t]["size"] for t in by_title) > sum(t["size"] for t in by_title.values())
    state = db_session.scalars(select(HotTopicModelState)).one()
    assert state.last_order_id == max(int(i) for i in db_session.scalars(select(Order.id)))


def test_topics_for_period_feed_the_report(app_db: str, db_session: Session, tmp_path: Path) -> None:
    from collections import Counter

    from openpyxl import load_workbook

    from cityhub.analytics import hot_topics, kpi, reports, topics_store

    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _write(first, start=0, days=0, per_problem=4)  # March 2019
    _write(second, start=1000, days=40, per_problem=3)  # April 2019
    _import(db_session, first)
    _import(db_session, second)
    march, april = kpi.parse_period("2019-03"), kpi.parse_period("2019-04")
    _, fallback = reports.hot_topics_for_period(db_session, period=march)
    assert fallback  # nothing mined yet: the marked title grouping
    topics_store.mine_database(db_session)
    db_session.commit()
    members = db_session.execute(
        select(HotTopicOrder.topic_id, Order.created_at).join(Order, Order.id == HotTopicOrder.order_id)
    ).all()
    sizes = {t.id: t.size for t in db_session.scalars(select(HotTopic))}
    for period in (march, april):
        rows = hot_topics.topics_for_period(db_session, period.start, period.end, 10)
        expected = Counter(tid for tid, at in members if period.start <= at < period.end)
        assert expected and {r["id"]: r["count"] for r in rows} == dict(expected)
        assert [r["count"] for r in rows] == sorted((r["count"] for r in rows), reverse=True)
        for r in rows:
            assert r["size"] == sizes[r["id"]] >= r["count"]
            lo, hi = (datetime.fromisoformat(v) for v in r["period_span"])
            assert period.start <= lo <= hi < period.end
            assert r["topic"] and r["label"] and isinstance(r["places"], list)
    # The three problems began in March: new there, continuing in April.
    assert all(r["new"] for r in hot_topics.topics_for_period(db_session, march.start, march.end, 10))
    april_rows = hot_topics.topics_for_period(db_session, april.start, april.end, 10)
    assert len(april_rows) >= len(PROBLEMS) and not any(r["new"] for r in april_rows[: len(PROBLEMS)])
    assert [r["id"] for r in hot_topics.topics_for_period(db_session, april.start, april.end, 1)] == [
        april_rows[0]["id"]
    ]
    # A reader's scope (a condition on the orders) counts only its orders: here the first file's ids.
    mine = Order.id.in_(select(Order.id).where(Order.created_at < april.start))
    scoped = hot_topics.topics_for_period(db_session, april.start, april.end, 10, where=mine)
    assert scoped == []  # none of the April orders are the reader's
    scoped = hot_topics.topics_for_period(db_session, march.start, march.end, 10, where=mine)
    assert {r["id"]: r["count"] for r in scoped} == {
        r["id"]: r["count"] for r in hot_topics.topics_for_period(db_session, march.start, march.end, 10)
    }

    # The places of a period are those its orders name, not the topic's whole history: an order of May that names
    # another place shows that place for May only.
    lifa = next(r for r in april_rows if "丽发新城" in r["places"])
    may_order = submit(
        db_session,
        data={"channel": "hotline", "title": "丽发新城搅拌站噪音", "content": "金星北片小区旁搅拌站夜里作业"},
    ).order
    may_order.created_at = datetime(2019, 5, 10, 2, tzinfo=UTC)
    db_session.add(HotTopicOrder(topic_id=lifa["id"], order_id=may_order.id))
    db_session.commit()
    may = kpi.parse_period("2019-05")
    [may_lifa] = [r for r in hot_topics.topics_for_period(db_session, may.start, may.end, 10) if r["id"] == lifa["id"]]
    assert may_lifa["count"] == 1 and "金星北片小区" in may_lifa["period_places"]
    assert not any("金星北片" in p for p in may_lifa["places"])  # the stored topic is as mined
    april_rows = hot_topics.topics_for_period(db_session, april.start, april.end, 10)
    assert not any("金星北片" in p for r in april_rows for p in r["period_places"])
    assert "丽发新城" in next(r for r in april_rows if r["id"] == lifa["id"])["period_places"]

    shown, fallback = reports.hot_topics_for_period(db_session, period=april)
    assert not fallback and shown == april_rows
    result = reports.generate(db_session, period=april, out_dir=tmp_path, formats=("html", "xlsx"))
    html = result.files["html"].read_text(encoding="utf-8")
    assert "按标题聚合" not in html
    for r in april_rows:
        assert r["topic"] in html
    sheet = list(load_workbook(result.files["xlsx"])["热点问题"].iter_rows(min_row=2, values_only=True))
    assert [(row[1], row[4], row[5]) for row in sheet] == [(r["id"], r["count"], r["size"]) for r in april_rows]


def test_mined_topics_become_graph_nodes_and_remining_refreshes_the_cached_graph(
    app_db: str, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.analytics import correlation, topics_store

    path = tmp_path / "orders.csv"
    _write(path, start=0, days=0, per_problem=4)
    _import(db_session, path)
    cache = TtlCache(600.0)
    before = correlation.graph_from_db(db_session, min_support=1, cache=cache)
    assert not [n for n in before.graph.nodes if n.startswith("topic:")]  # nothing mined yet

    topics_store.mine_database(db_session)
    db_session.commit()
    # Same orders, new topics: answered as built once more while the graph is built again in the background.
    assert correlation.graph_from_db(db_session, min_support=1, cache=cache) is before
    for thread in threading.enumerate():
        if thread.name == "cache-refresh":
            thread.join(60)
    after = correlation.graph_from_db(db_session, min_support=1, cache=cache)
    assert after is not before
    labels = topics_store.order_topic_labels(db_session, [o for o in db_session.scalars(select(Order.id))])
    members = db_session.execute(select(HotTopicOrder.order_id, HotTopicOrder.topic_id)).all()
    assert members and {oid: labels[oid] for oid, _ in members} == {
        oid: [f"T{tid} {db_session.get(HotTopic, tid).label}"] for oid, tid in members
    }
    # Asked for many orders, the labels are read by id range: the same, and only for the orders asked for.
    asked = sorted(labels)[1:-1:2]
    monkeypatch.setattr(topics_store, "LABELS_BY_RANGE", 0)
    assert topics_store.order_topic_labels(db_session, asked) == {oid: labels[oid] for oid in asked}
    topic_nodes = {n for n in after.graph.nodes if n.startswith("topic:")}
    assert topic_nodes == {correlation.node_id("topic", v[0]) for v in labels.values()}
    # A topic node is tied to what its orders mention: a topic about one estate is linked to that estate's place.
    estate = [n for n in topic_nodes if "伊景园滨河苑" in n]
    assert estate and any(nb == "place:伊景园滨河苑" for nb in after.graph.neighbors(estate[0]))


def test_the_hot_topics_job_fits_then_adds_new_orders(
    app_db: str, db_session: Session, tmp_path: Path, monkeypatch
) -> None:
    """The scheduled job keeps the topics current: a first fit for a history it may take on, then only the orders
    received since; a history too large for a job to fit is left to the command, and says so."""
    from cityhub import jobs
    from cityhub.analytics import topics_store

    assert jobs.run_job("hot-topics") == {"orders": 0}  # an empty database: nothing to mine
    first = tmp_path / "first.csv"
    _write(first, start=0, days=0, per_problem=4)
    _import(db_session, first)
    monkeypatch.setattr(topics_store, "JOB_FIRST_FIT_LIMIT", 5)
    assert "run `cityhub analytics hot-topics` once" in jobs.run_job("hot-topics")["skipped"]
    monkeypatch.setattr(topics_store, "JOB_FIRST_FIT_LIMIT", 5_000)
    fitted = jobs.run_job("hot-topics")
    total = db_session.scalar(select(func.count()).select_from(Order))
    assert fitted["mode"] == 1 and fitted["orders"] == total and fitted["topics"] >= len(PROBLEMS)
    db_session.expire_all()
    mined = topics_store.mined_at(db_session)
    assert mined is not None and mined.tzinfo is not None

    second = tmp_path / "second.csv"
    _write(second, start=1000, days=40, per_problem=2)
    _import(db_session, second)
    added = db_session.scalar(select(func.count()).select_from(Order)) - total
    updated = jobs.run_job("hot-topics")
    assert updated["mode"] == 0 and updated["orders"] == added
    db_session.expire_all()
    members = db_session.scalar(select(func.count()).select_from(HotTopicOrder))
    assert members == db_session.scalar(select(func.coalesce(func.sum(HotTopic.size), 0)))
    assert jobs.run_job("hot-topics")["orders"] == 0  # nothing new: heat and status refreshed only


def test_orders_mined_before_are_not_counted_again_by_the_database_mining(db_session: Session, tmp_path: Path) -> None:
    """The update reads the orders after the last one mined; were it to read earlier ones again (the stored position
    lost), the model still counts each order once."""
    from cityhub.analytics import topics_store

    first = tmp_path / "first.csv"
    _write(first, start=0, days=0, per_problem=4)
    _import(db_session, first)
    topics_store.mine_database(db_session)
    sizes = {t.id: (t.size, t.heat) for t in db_session.scalars(select(HotTopic))}
    _, summary = topics_store.mine_database(db_session)
    assert summary["orders"] == 0
    state = db_session.scalars(select(HotTopicModelState)).one()
    seen = state.orders_seen
    state.last_order_id = 0
    _, summary = topics_store.mine_database(db_session)
    assert summary["orders"] == 0 and summary["repeated"] == db_session.scalar(select(func.count(Order.id)))
    db_session.expire_all()
    assert {t.id: (t.size, t.heat) for t in db_session.scalars(select(HotTopic))} == sizes
    assert db_session.scalars(select(HotTopicModelState)).one().orders_seen == seen


def test_an_appeal_is_mined_without_the_problems_split_off_it(db_session: Session) -> None:
    """拆单: the split-off problem is an order of its own; mined in the appeal's text too, it would count twice."""
    from cityhub.analytics.topics_store import iter_orders
    from cityhub.workorders import service

    smoke = "楼下餐馆油烟直排，熏得没法开窗"
    appeal = submit(db_session, data={"channel": "hotline", "content": f"门口路灯坏了一周。{smoke}。"}).order
    other = submit(db_session, data={"channel": "hotline", "content": f"{smoke}，已经反映过。"}).order
    service.act(db_session, order_id=appeal.id, action="split", params={"content": f" {smoke} "})
    service.act(db_session, order_id=other.id, action="split", params={"content": "油烟很大，请处理"})  # paraphrased
    db_session.flush()
    read = {oid: record.content for oid, record in iter_orders(db_session)}
    assert smoke not in read[appeal.id] and "门口路灯坏了一周" in read[appeal.id]
    assert smoke in read[other.id]  # not its words verbatim: left as it is
    parts = db_session.scalars(select(Order).where(Order.split_from_id.is_not(None)).order_by(Order.id)).all()
    assert [read[p.id] for p in parts] == [smoke, "油烟很大，请处理"]


def test_storing_topics_writes_only_what_changed_and_keeps_what_a_full_rewrite_would(
    db_session: Session, tmp_path: Path
) -> None:
    """The job's refresh stores the topics again every run: only the rows that differ are written (rewriting every
    topic and membership held the write lock for seconds), and the stored rows are what the model holds."""
    from dataclasses import replace

    from cityhub.analytics import topics_store

    first = tmp_path / "first.csv"
    _write(first, start=0, days=0, per_problem=4)
    _import(db_session, first)
    model, _ = topics_store.mine_database(db_session)
    nothing = dict.fromkeys(
        ("topics_added", "topics_changed", "topics_removed", "members_added", "members_moved", "members_removed"), 0
    )
    assert topics_store.store_topics(db_session, model.ranked()) == nothing

    a, b, c, *rest = model.ranked()
    moved = a.order_ids[0]
    new = replace(c, id=max(t.id for t in model.ranked()) + 1, order_ids=c.order_ids[:1])
    changed = [
        replace(a, order_ids=a.order_ids[1:], heat=a.heat + 1.0),  # loses an order, heats up
        replace(b, order_ids=[*b.order_ids, moved], status="rising"),  # takes it
        new,  # c gone, one of its orders in a new topic
        *rest,
    ]
    written = topics_store.store_topics(db_session, changed)
    assert written == {
        "topics_added": 1,
        "topics_changed": 2,
        "topics_removed": 1,
        "members_added": 0,
        "members_moved": 2,  # a's order to b, c's first to the new topic
        "members_removed": len(c.order_ids) - 1,
    }
    db_session.expire_all()
    stored = {t.id: t for t in db_session.scalars(select(HotTopic))}
    assert set(stored) == {t.id for t in changed}
    for t in changed:
        row = stored[t.id]
        assert (row.size, row.heat, row.status, row.label) == (t.size, t.heat, t.status, t.label[:300])
    members = dict(db_session.execute(select(HotTopicOrder.order_id, HotTopicOrder.topic_id)).all())
    assert members == {int(o): t.id for t in changed for o in t.order_ids}


def test_cancelled_orders_are_left_out_of_the_topics_even_when_cancelled_after_mining(
    app_db: str, db_session: Session, tmp_path: Path
) -> None:
    """作废 (a prank, a wrong number) is no problem of anyone's: an order cancelled before mining is not mined, and
    one cancelled after it leaves every figure read from the stored topics at once — count, size, time span, the
    order list, the number of topics — while a duplicate merged into another order stays counted."""
    from cityhub.analytics import hot_topics, kpi, reports, topics_store
    from cityhub.errors import NotFound
    from cityhub.workorders import service

    path = tmp_path / "orders.csv"
    _write(path, start=0, days=0, per_problem=6)
    _import(db_session, path)
    march = kpi.parse_period("2019-03")
    early = db_session.scalars(select(Order).where(Order.title.contains("人才购房补贴")).order_by(Order.id)).first()
    assert early is not None
    # Before mining, the title grouping leaves it out too.
    service.act(db_session, order_id=early.id, action="cancel", params={"reason": "重复来电测试"})
    db_session.commit()
    grouped, fallback = reports.hot_topics_for_period(db_session, period=march, k=50)
    titled = {r["topic"]: r["count"] for r in grouped}
    assert fallback and early.title not in titled  # three such titles, one cancelled: below the grouping's 3
    assert titled[early.title.removeprefix("反映")] == 3
    topics_store.mine_database(db_session)
    db_session.commit()
    assert db_session.get(HotTopicOrder, early.id) is None  # never mined
    members: dict[int, list[int]] = {}
    for oid, tid in db_session.execute(select(HotTopicOrder.order_id, HotTopicOrder.topic_id).order_by("order_id")):
        members.setdefault(tid, []).append(oid)
    rows = {r["id"]: r for r in hot_topics.topics_for_period(db_session, march.start, march.end, 20)}
    big = max(members, key=lambda t: (len(members[t]), -t))
    assert len(members[big]) >= 4 and rows[big]["count"] == rows[big]["size"] == len(members[big])
    first_id, dup_id, master_id = members[big][0], members[big][1], members[big][2]

    service.act(db_session, order_id=first_id, action="cancel", params={"reason": "无效来电"})
    service.act(db_session, order_id=dup_id, action="merge", params={"master_id": master_id})
    db_session.commit()
    after = {r["id"]: r for r in hot_topics.topics_for_period(db_session, march.start, march.end, 20)}
    assert after[big]["count"] == after[big]["size"] == len(members[big]) - 1  # the merged duplicate stays
    kept = db_session.scalars(select(Order).where(Order.id.in_(members[big][1:]))).all()
    assert after[big]["time_span"][0] == min(o.created_at for o in kept).astimezone(UTC).isoformat()
    listed = topics_store.topic_orders(db_session, topic_id=big, start=march.start, end=march.end)
    assert sorted(o.id for o in listed) == members[big][1:]
    detail = topics_store.get_topic(db_session, topic_id=big, start=march.start, end=march.end)
    assert (detail["count"], detail["size"]) == (len(members[big]) - 1,) * 2
    scoped = topics_store.get_topic(
        db_session, topic_id=big, start=march.start, end=march.end, where=Order.id.in_(members[big])
    )
    assert (scoped["count"], scoped["size"]) == (len(members[big]) - 1,) * 2
    assert reports.hot_topics_for_period(db_session, period=march, k=20)[0] == list(after.values())

    # A topic whose every order was cancelled is no topic of the period any more, nor one to open.
    other = next(t for t in sorted(members) if t != big)
    topics_before = topics_store.count_topics_for_period(db_session, start=march.start, end=march.end)
    for oid in members[other]:
        service.act(db_session, order_id=oid, action="cancel", params={"reason": "无效来电"})
    db_session.commit()
    assert other not in {r["id"] for r in hot_topics.topics_for_period(db_session, march.start, march.end, 20)}
    assert topics_store.count_topics_for_period(db_session, start=march.start, end=march.end) == topics_before - 1
    with pytest.raises(NotFound):
        topics_store.get_topic(db_session, topic_id=other, start=march.start, end=march.end)
    # The next mining keeps it that way (the stored memberships stay; the reads leave the orders out).
    topics_store.mine_database(db_session)
    db_session.commit()
    again = {r["id"]: r["count"] for r in hot_topics.topics_for_period(db_session, march.start, march.end, 20)}
    assert again[big] == len(members[big]) - 1 and other not in again
