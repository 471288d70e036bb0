"""Hot-topic mining on a small synthetic corpus with planted topics (same estate + same problem)."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cityhub.analytics import hot_topics as ht
from cityhub.analytics.lexicon import GROUPS, extract_groups, extract_places, fold_place_variants
from cityhub.analytics.topics_store import load_file, save_file

START = datetime(2019, 1, 1, tzinfo=UTC)

# (topic key, title templates, content templates): each planted topic is one estate's one problem.
PLANTED = [
    (
        "noise_lifa",
        ["A2区丽发新城小区附近搅拌站噪音扰民", "丽发新城搅拌站夜间施工噪音太大", "投诉丽发新城旁边搅拌站灰尘噪音"],
        "A市A2区丽发新城小区旁边的搅拌站每天夜里作业，噪音和粉尘严重影响业主休息，老人和小孩睡不着。",
    ),
    (
        "noise_cuizhu",
        ["A5区翠竹苑附近搅拌站噪音扰民", "翠竹苑搅拌站夜间施工噪音太大", "投诉翠竹苑旁边搅拌站灰尘噪音"],
        "A市A5区翠竹苑小区旁边的搅拌站每天夜里作业，噪音和粉尘严重影响业主休息，老人和小孩睡不着。",
    ),
    (
        "parking_binhe",
        ["伊景园滨河苑捆绑销售车位", "投诉伊景园滨河苑开发商强制捆绑车位", "伊景园滨河苑购房必须买车位"],
        "A市伊景园滨河苑开发商在销售商品房时要求购房者必须同时购买车位，否则不予签约，职工意见很大。",
    ),
    (
        "subsidy",
        ["A市人才购房补贴迟迟未发放", "人才新政购房补贴什么时候发", "咨询人才购房补贴发放进度"],
        "本人去年申请了A市人才新政购房补贴，审核已经通过，但是补贴款至今没有到账，请问什么时候发放。",
    ),
    (
        "bus_205",
        ["A市205路公交车经常不按时发车", "205路公交车等了一个小时", "建议增加205路公交车班次"],
        "A市205路公交车发车间隔太长，早高峰经常等四十分钟以上，学生上学和职工上班都迟到。",
    ),
]
NOISE_WORDS = [
    "路灯不亮",
    "井盖缺失",
    "违章停车",
    "垃圾清运",
    "油烟扰民",
    "小区电梯故障",
    "医保报销",
    "户口迁移",
    "养老保险",
    "学校食堂",
    "网约车",
    "共享单车乱停",
    "广场舞噪音",
    "宠物扰民",
    "水管漏水",
    "燃气涨价",
    "农田灌溉",
    "河道污染",
    "路面塌陷",
    "教师编制",
    "驾照换证",
    "社保断缴",
    "房屋漏水",
    "物业收费",
    "菜市场搬迁",
    "快递丢件",
]
NOISE_PLACES = ["东风路", "白沙村", "金盆岭街道", "望月湖社区", "星城花园", "湘江新村", "黄花镇", "雨花亭街道"]


def corpus(
    seed: int = 1, per_topic: int = 8, noise: int = 60, start: datetime = START
) -> tuple[list[ht.OrderRecord], dict[str, str]]:
    """Records and the planted topic of each planted record's id."""
    rng = random.Random(seed)
    records: list[ht.OrderRecord] = []
    truth: dict[str, str] = {}
    n = 0
    for key, titles, content in PLANTED:
        for i in range(per_topic):
            n += 1
            oid = f"{seed}-{n}"
            records.append(
                ht.OrderRecord(
                    id=oid,
                    title=titles[i % len(titles)],
                    content=content + rng.choice(["请尽快处理。", "希望相关部门重视。", "谢谢！", ""]),
                    created_at=start + timedelta(days=rng.randint(0, 60), hours=i),
                    likes=rng.randint(0, 5),
                    citizen=f"U{rng.randint(0, 10_000)}",
                )
            )
            truth[oid] = key
    for _ in range(noise):
        n += 1
        a, b = rng.sample(NOISE_WORDS, 2)
        place = rng.choice(NOISE_PLACES)
        records.append(
            ht.OrderRecord(
                id=f"{seed}-{n}",
                title=f"{place}{a}",
                content=f"{place}附近{a}，另外{b}也没人管，已经{rng.randint(2, 9)}个月了。",
                created_at=start + timedelta(days=rng.randint(0, 60)),
                citizen=f"U{rng.randint(0, 10_000)}",
            )
        )
    rng.shuffle(records)
    return records, truth


def _topic_of(model: ht.TopicModel) -> dict[str, int]:
    return {oid: t.id for t in model.topics.values() for oid in t.order_ids}


def test_lexicon_groups_and_places() -> None:
    text = "A市A7县泉塘街道丽发新城小区附近搅拌站扰民，老人和小孩睡不着，205路公交车也不准时"
    assert extract_groups(text) == ["老年人", "儿童"]
    places = extract_places(text)
    assert {"A7县", "泉塘街道", "丽发新城", "205路"} <= set(places)
    assert "附近" not in "".join(places)
    assert all(forms for forms in GROUPS.values())


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("周一钟落潭二横路上货车乱停", ["钟落潭二横路"]),  # a day is not part of the road's name
        # nor a time of day or a period (they ran into the name: 晚六点以后雅居大道)
        ("晚六点以后雅居大道车很多", ["雅居大道"]),
        ("下班高峰期雅居大道堵车", ["雅居大道"]),
        ("每天晚上十点钟落潭二横路很吵", ["钟落潭二横路"]),
        ("夜间施工白云大道噪音大", ["白云大道"]),
        ("房东提前收房，租住江高镇的租户没处去", ["江高镇"]),
        ("建议东方苑周边增建学校，一所小学都没有", ["东方苑"]),
        ("白云区嘉禾街望岗社区", ["嘉禾街望岗社区"]),  # not 云区嘉禾街望岗社区
        # Everyday words ending in 路 are no roads; roads whose names end like them are.
        ("网约车司机故意绕路，从丰顺路绕到致远路", ["丰顺路", "致远路"]),
        ("村里集资修路，施工期间要封路", []),
        ("预付卡商家跑路，健身房老板卷款跑路了", []),
        ("小区门口路灯不亮，路面坑洼", []),  # 路灯 and 路面 are words, 门口 no road
        ("金石街路灯不亮", ["金石街"]),
        ("云景路路灯坏了", ["云景路"]),
        ("增城区镇龙村", ["镇龙村"]),  # not 增城区镇
        ("番禺区市桥街", ["市桥街"]),
        ("建设路口", ["建设路"]),
        ("区庄社区", ["区庄社区"]),
        # Bridges, interchanges, tunnels, stations, piers and malls (金沙洲大桥底: under the bridge) …
        ("金沙洲大桥底有人乱扔垃圾", ["金沙洲大桥"]),
        ("区庄立交下面积水，海印桥边也是", ["区庄立交", "海印桥"]),
        ("珠江隧道堵车，白鹅潭码头也挤", ["珠江隧道", "白鹅潭码头"]),
        ("客村地铁站口乱摆卖，地铁3号线体育西站也是", ["客村地铁站", "体育西站"]),
        ("地铁客村站附近", ["客村站"]),  # the station, not a village 地铁客村
        ("天河城商场门口", ["天河城商场"]),
        # … not a word that starts with 桥, a bridge of no name, a station of no name
        ("高桥镇桥头村", ["高桥镇", "桥头村"]),
        ("新建一座人行天桥，桥梁老化", []),
        ("去往火车站的路上垃圾站很臭", []),
        # Nor a sentence's words in front of the place: verbs, adverbs, dates, house numbers, a villagers' group.
        ("物业扬言要退出小区", []),
        ("才得知永福小区要拆", ["永福小区"]),
        ("孩子入读幼儿园难", []),
        ("5月22日小学门口", []),
        ("88号东风路", ["东风路"]),
        ("模占湾组村民", []),
        ("公交公司将28路改线", ["28路"]),
        # Names holding a word that is a stop elsewhere: 要, 城镇, 乡村.
        ("肇庆市高要区小湘镇", ["小湘镇"]),
        ("河源市紫城镇", ["紫城镇"]),
        ("南浦东乡村民委员会", ["南浦东乡村"]),
    ],
)
def test_place_names_start_where_the_name_does(text: str, places: list[str]) -> None:
    assert extract_places(text, admin=False) == places


def test_a_place_counted_with_words_in_front_folds_into_its_name() -> None:
    # The extractor's slips (每天八点钟落潭二横路很堵): a time or word the stop lists do not know, run into the name.
    counts = Counter({"钟落潭二横路": 3, "八点钟落潭二横路": 1, "以后钟落潭二横路": 1, "钟落潭镇": 7})
    counts.update({"飞鹅新村": 3, "新村": 5, "白云机场路": 4, "机场路": 1, "西湖新村小区": 2, "湖新村小区": 1})
    fold_place_variants(counts)
    assert counts["钟落潭二横路"] == 5 and "八点钟落潭二横路" not in counts and "以后钟落潭二横路" not in counts
    # Kept apart: a two-character name (新村), a rarer shorter form (机场路), a longer form named more often.
    assert (counts["飞鹅新村"], counts["新村"], counts["白云机场路"], counts["机场路"]) == (3, 5, 4, 1)
    assert (counts["西湖新村小区"], counts["湖新村小区"]) == (2, 1) and counts["钟落潭镇"] == 7


def test_planted_topics_are_recovered_and_kept_apart() -> None:
    records, truth = corpus()
    model = ht.TopicModel()
    model.fit(records)
    topic_of = _topic_of(model)
    for key, *_ in PLANTED:
        members = [oid for oid, k in truth.items() if k == key]
        found = Counter(topic_of.get(oid) for oid in members)
        best, count = found.most_common(1)[0]
        assert best is not None and count >= 0.75 * len(members), (key, found)
        # The topic is this problem only: no other planted topic's orders in it.
        others = [oid for oid in model.topics[best].order_ids if oid in truth and truth[oid] != key]
        assert others == [], (key, others)
    # Same problem at two estates is two topics.
    lifa = Counter(topic_of.get(o) for o, k in truth.items() if k == "noise_lifa").most_common(1)[0][0]
    cuizhu = Counter(topic_of.get(o) for o, k in truth.items() if k == "noise_cuizhu").most_common(1)[0][0]
    assert lifa != cuizhu


def test_topic_json_keys_labels_and_heat_order() -> None:
    records, truth = corpus()
    model = ht.TopicModel()
    ranked = model.fit(records)
    assert ranked and [t.heat for t in ranked] == sorted((t.heat for t in ranked), reverse=True)
    d = ranked[0].to_dict()
    assert {"id", "label", "heat", "size", "time_span", "places", "groups", "order_ids"} <= d.keys()
    assert len(d["time_span"]) == 2 and d["time_span"][0] <= d["time_span"][1]
    assert d["size"] == len(d["order_ids"]) >= 2
    lifa = next(t for t in model.topics.values() if any(truth.get(o) == "noise_lifa" for o in t.order_ids))
    assert "丽发新城" in lifa.to_dict()["places"]
    assert "搅拌站" in lifa.key_phrases or "搅拌站" in lifa.label
    assert {"老年人", "儿童"} <= set(lifa.to_dict()["groups"])


def test_heat_rises_with_likes_and_growth() -> None:
    def topic(likes: int, days: list[int]) -> ht.Topic:
        t = ht.Topic(
            id=1,
            centroid_sum=ht.np.zeros(2),
            order_ids=[str(i) for i in range(len(days))],
            words=ht.TermCounts(),
            places=Counter(),
            groups=Counter(),
            times=[START + timedelta(days=d) for d in days],
            citizens=set(),
        )
        t.likes = likes
        return t

    ref = START + timedelta(days=100)
    p = ht.Params()
    base = ht.heat(topic(0, [10, 20, 30, 40]), ref, p)[0]
    assert ht.heat(topic(500, [10, 20, 30, 40]), ref, p)[0] > base
    rising_heat, status, n_last, _ = ht.heat(topic(0, [95, 96, 97, 98, 99, 20]), ref, p)
    assert status == "rising" and n_last == 5
    assert rising_heat > ht.heat(topic(0, [5, 6, 7, 8, 9, 20]), ref, p)[0]
    assert ht.heat(topic(0, [99, 98]), ref, p)[1] == "new"


def test_incremental_update_keeps_ids_and_adds_new_topics(tmp_path: Path) -> None:
    records, truth = corpus(seed=1)
    model = ht.TopicModel()
    model.fit(records)
    before = {t.id: list(t.order_ids) for t in model.topics.values()}
    path = tmp_path / "state.bin"
    save_file(model, path)
    model = load_file(path)
    later = START + timedelta(days=90)
    more, more_truth = corpus(seed=2, per_topic=3, noise=10, start=later)
    fresh = [
        ht.OrderRecord(
            id=f"new-{i}",
            title=t,
            content="梅溪湖二期地下车库夜间积水严重，车辆被淹，物业不管。",
            created_at=later + timedelta(days=i),
        )
        for i, t in enumerate(["梅溪湖二期地下车库积水", "梅溪湖二期车库被淹", "梅溪湖二期地下车库又积水了"])
    ]
    summary = model.update([*more, *fresh])
    assert summary["orders"] == len(more) + 3 and summary["joined"] > 0 and summary["new_topics"] >= 1
    after = {t.id: t.order_ids for t in model.topics.values()}
    for tid, members in before.items():
        assert after[tid][: len(members)] == members  # same id, same earlier members
    topic_of = _topic_of(model)
    for oid, key in more_truth.items():
        planted_old = [o for o, k in truth.items() if k == key]
        # A new order of a planted problem joins an existing topic of that same problem.
        assert topic_of.get(oid) in {topic_of.get(o) for o in planted_old} - {None}, (key, oid)
    new_ids = {topic_of.get(r.id) for r in fresh}
    assert len(new_ids) == 1 and None not in new_ids and new_ids.isdisjoint(before)


def _counted(model: ht.TopicModel) -> dict[int, tuple[list[str], float, int, str]]:
    return {t.id: (list(t.order_ids), t.heat, t.likes, t.status) for t in model.topics.values()}


def test_orders_read_before_are_not_counted_again(tmp_path: Path) -> None:
    """An overlapping export given again (this month so far) adds only its new orders: sizes, heat and the number
    of topics stay as they were for the orders read before, and no order is held twice."""
    records, _ = corpus(seed=1)
    model = ht.TopicModel()
    model.fit(records)
    before, pool = _counted(model), list(model.pool.ids)
    path = tmp_path / "state.bin"
    save_file(model, path)
    model = load_file(path)
    summary = model.update(records)
    assert summary == {"orders": 0, "repeated": len(records), "joined": 0, "new_topics": 0}
    assert _counted(model) == before and model.pool.ids == pool and model.orders_seen == len(records)
    more, _ = corpus(seed=2, per_topic=3, noise=10, start=START + timedelta(days=90))
    summary = model.update([*records[:40], *more, *more[:5]])  # the old, the new, and the new twice in one input
    assert summary["orders"] == len(more) and summary["repeated"] == 45
    held = [oid for t in model.topics.values() for oid in t.order_ids] + model.pool.ids
    assert len(held) == len(set(held)) and model.orders_seen == len(records) + len(more)


def test_an_order_given_twice_to_a_fit_is_counted_once() -> None:
    records, _ = corpus(seed=3)
    model = ht.TopicModel()
    model.fit([*records, *records[:30]])
    held = [oid for t in model.topics.values() for oid in t.order_ids] + model.pool.ids
    assert len(held) == len(set(held)) and model.orders_seen == len(records)


def test_a_model_stored_before_it_kept_what_it_read_still_skips_the_orders_it_holds() -> None:
    import pickle

    records, _ = corpus(seed=4)
    model = ht.TopicModel()
    model.fit(records)
    before = _counted(model)
    state = model.__dict__.copy()
    del state["seen"]  # what a model stored by the previous version lacks
    older = ht.TopicModel.__new__(ht.TopicModel)
    older.__setstate__(pickle.loads(pickle.dumps(state)))
    assert older.update(records)["orders"] == 0 and _counted(older) == before


def test_cli_run_again_with_the_same_file_and_state_changes_nothing(tmp_path: Path) -> None:
    from cityhub.analytics.cli import app

    records, _ = corpus(seed=6)
    path, state = tmp_path / "orders.csv", tmp_path / "state.pkl"
    _write_csv(path, records)
    args = ["hot-topics", "--input", str(path), "--state", str(state), "--top", "1000", "--format", "json"]
    runs = [CliRunner().invoke(app, args) for _ in range(3)]
    assert all(r.exit_code == 0 for r in runs), [r.output for r in runs]
    first, *again = (json.loads(r.stdout) for r in runs)
    assert again == [first, first]
    assert sum(t["size"] for t in first) == len({o for t in first for o in t["order_ids"]})
    table = CliRunner().invoke(app, [*args[:-2], "--format", "table"])
    assert f"0 orders added ({len(records)} more read before: not counted again)" in table.output


def test_top_table_rows() -> None:
    records, _ = corpus()
    model = ht.TopicModel()
    rows = ht.top_table(model.fit(records), k=5)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert {"rank", "topic_id", "heat", "time_span", "place_population", "description"} <= rows[0].keys()
    assert rows[0]["heat"] >= rows[-1]["heat"]
    assert all(r["description"] for r in rows)


def _write_csv(path: Path, records: list[ht.OrderRecord]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "反对数", "点赞数"])
        for r in records:
            assert r.created_at is not None
            w.writerow(
                [
                    r.id,
                    r.citizen or "",
                    r.title,
                    r.created_at.strftime("%Y/%m/%d %H:%M:%S"),
                    r.content,
                    r.opposes,
                    r.likes,
                ]
            )


def test_cli_on_a_tiny_csv(tmp_path: Path) -> None:
    from cityhub.analytics.cli import app

    records, _truth = corpus()
    path = tmp_path / "orders.csv"
    _write_csv(path, records)
    runner = CliRunner()
    result = runner.invoke(app, ["hot-topics", "--input", str(path), "--top", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    topics = json.loads(result.stdout)
    assert len(topics) == 3
    ids = {r.id for r in records}
    for t in topics:
        assert set(t["order_ids"]) <= ids and len(t["order_ids"]) == t["size"]
    table = runner.invoke(app, ["hot-topics", "--input", str(path), "--format", "top5"])
    assert table.exit_code == 0, table.output
    assert "rank" in table.stdout and "heat =" in table.output


def test_real_f3_top_topics_are_single_problems() -> None:
    path = Path("../shared/data/teddycup2020_c/csv/f3_hot_topic_messages_4326.csv")
    if not path.exists():
        pytest.skip("real data not available")
    records = ht.read_orders_file(path)
    assert len(records) == 4326
    model = ht.TopicModel()
    ranked = model.fit(records)
    by_id = {r.id: r for r in records}
    # The estate with the most complaints (丽发新城 batching plant) is one topic whose orders name it.
    lifa = max((t for t in ranked if "丽发新城" in t.places), key=lambda t: t.places["丽发新城"], default=None)
    assert lifa is not None and lifa.size >= 20
    assert sum("丽发新城" in by_id[o].title + by_id[o].content for o in lifa.order_ids) >= 0.9 * lifa.size
    assert lifa in ranked[:10]


def _summary(model: ht.TopicModel) -> list[tuple[int, list[str], str, float]]:
    return [(t.id, t.order_ids, t.representative, round(t.heat, 6)) for t in model.ranked()]


def test_a_streamed_source_gives_the_same_topics_as_a_list() -> None:
    records, _ = corpus(seed=3)
    listed = ht.TopicModel()
    listed.fit(records)
    calls = []

    def source():
        calls.append(1)
        return iter(records)

    streamed = ht.TopicModel()
    streamed.fit(source)
    assert len(calls) == 2  # one pass to count and sample, one to encode
    assert streamed.orders_seen == listed.orders_seen == len(records)
    assert _summary(streamed) == _summary(listed)
    # A one-shot iterator is read into a list first and gives the same result.
    once = ht.TopicModel()
    once.fit(iter(records))
    assert _summary(once) == _summary(listed)


def test_worker_processes_give_the_same_topics_as_one_process() -> None:
    records, _ = corpus(seed=4, per_topic=10, noise=80)
    # Small chunks and cells so that several encoding tasks and several cells go to the two workers.
    params = ht.Params(chunk=25, cell_max=40, parallel_min=0, workers=2)
    parallel = ht.TopicModel(params)
    parallel.fit(records)
    single = ht.TopicModel(replace(params, workers=1))
    single.fit(records)
    assert _summary(parallel) == _summary(single)
    assert parallel.ranked()[0].size >= 5
    assert np.array_equal(parallel.pool.x, single.pool.x) and parallel.pool.ids == single.pool.ids


def test_pool_columns_survive_a_round_trip_and_an_older_state_is_refused(tmp_path: Path) -> None:
    import pickle
    import zlib

    from cityhub.analytics.topics_store import dumps, loads

    records, _ = corpus(seed=5)
    model = ht.TopicModel()
    model.fit(records)
    back = loads(dumps(model))
    assert back.pool.ids == model.pool.ids and np.array_equal(back.pool.x, model.pool.x)
    assert len(back.pool) == len(model.pool) > 0
    for i in range(len(model.pool)):
        assert back.pool.terms.gather(np.array([i])).tolist() == model.pool.terms.gather(np.array([i])).tolist()
    old = ht.TopicModel()
    del old.__dict__["pool"]  # what a model of the previous layout lacks
    with pytest.raises(ht.StaleModelState):
        loads(zlib.compress(pickle.dumps(old)))


def test_ragged_take_and_gather() -> None:
    r = ht.Ragged.from_counts(np.array([2, 0, 3, 1]), np.array([5, 6, 7, 8, 9, 4]))
    assert r.gather(np.array([2, 0])).tolist() == [7, 8, 9, 5, 6]
    t = r.take(np.array([3, 1, 2]))
    assert [t.gather(np.array([i])).tolist() for i in range(3)] == [[4], [], [7, 8, 9]]
    assert ht.Ragged.concat([r, t]).gather(np.array([4, 6])).tolist() == [4, 7, 8, 9]
    assert r.row_ids().tolist() == [0, 0, 2, 2, 2, 3]


def test_a_topics_days_are_the_districts_calendar_days():
    """An order at 17:30 UTC on 1 December was received on 2 December in Shanghai: the span, the report and the
    table say 2 December; a file's time without a zone is already local."""
    from cityhub.analytics.reports import _span

    assert ht.local_date(datetime(2026, 12, 1, 17, 30, tzinfo=UTC)) == "2026-12-02"
    assert ht.local_date("2026-12-01T17:30:00+00:00") == "2026-12-02"
    assert ht.local_date(datetime(2026, 12, 1, 17, 30)) == "2026-12-01"
    assert ht.local_date(None) == ""
    span = {"time_span": ["2023-12-09T16:10:00+00:00", "2026-12-01T17:29:58+00:00"]}
    assert _span(span) == "2023-12-10 至 2026-12-02"


def test_a_topics_places_are_never_its_own_phrase() -> None:
    """A title naming the problem can end as a place does (违章搭建侵占小区 ends in 小区 like an estate): that is
    what happened, not where. An order's places leave out its whole title read as one, so a topic of such orders
    lists the places its orders name — not its own phrase, in its places nor first in its label — and a model that
    counted the phrase before shows it no more."""
    phrase = "违章搭建侵占小区"
    assert extract_places(phrase) == [phrase]  # the lexicon alone reads it as an estate
    assert ht.order_places(phrase, "星城花园里有人违章搭建侵占小区绿地") == ["星城花园"]
    assert ht.order_places(phrase + "！", "") == []
    assert ht.order_places("星城花园", "门口垃圾没人清运") == []  # a title that is only a place says no problem
    assert ht.order_places("东风路路灯不亮", "", ("金盆岭街道",)) == ["金盆岭街道", "东风路"]
    records, _ = corpus(noise=40)
    for i in range(8):
        records.append(
            ht.OrderRecord(
                id=f"prepaid-{i}",
                title=phrase if i % 2 else phrase + "！",
                content=f"{'星城花园' if i < 6 else '白沙村'}有人违章搭建侵占小区绿地和消防通道，多次反映没人管。",
                created_at=START + timedelta(days=i),
                citizen=f"P{i}",
            )
        )
    model = ht.TopicModel()
    model.fit(records)
    [topic_id] = {t for t in (_topic_of(model).get(f"prepaid-{i}") for i in range(8)) if t is not None}
    topic = model.topics[topic_id]
    places = topic.to_dict()["places"]
    assert "星城花园" in places and phrase not in places, places
    assert not topic.label.startswith(phrase), topic.label
    # A model whose counters hold the phrase (mined before): its places and label leave it out all the same.
    topic.places[phrase] += 100
    topic.representative = phrase
    model.refresh()
    assert phrase not in topic.to_dict()["places"] and phrase not in topic.label
