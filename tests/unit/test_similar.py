"""Text similarity and the MinHash LSH index, without a database."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cityhub.intake.dedupe import Place, PlaceMatch, distance_m, place_match
from cityhub.nlp import similar as sim

A = "岗贝路12号门口垃圾堆积三天无人清理，臭气熏天，蚊蝇滋生，附近居民出行都要捂着鼻子，请环卫部门尽快清运处理。"
A2 = "岗贝路12号门口垃圾堆积三天了无人清理，臭气熏天，蚊蝇滋生，附近居民出行都要捂着鼻子，请环卫部门尽快清运处理！"
LAMP = "岗贝路旁边的路灯坏了一个月，晚上漆黑一片，行人容易摔倒，请尽快维修路灯。"


def test_shingles_ignore_spacing_punctuation_and_width():
    a = sim.Profile.of("路灯不亮，请维修！")
    b = sim.Profile.of("路灯 不亮 请维修")
    assert np.array_equal(a.keys, b.keys)
    assert sim.similarity(a, b).score == pytest.approx(1.0)


def test_near_identical_scores_high_and_different_topic_low():
    a, a2, lamp = (sim.Profile.of(t) for t in (A, A2, LAMP))
    near, far = sim.similarity(a, a2), sim.similarity(a, lamp)
    assert near.score > 0.85 and far.score < 0.2
    assert 0 <= far.jaccard <= far.containment <= 1


@pytest.mark.parametrize(
    ("a", "b", "otherwise"),
    [
        (
            "京溪路与广州大道北交界处东北角人行道积水",
            "京溪路与广州大道北交界处东北角人行道占道经营",
            True,
        ),  # another problem
        ("望岗西路12号楼下垃圾堆放", "望岗西路14号楼下垃圾堆放", True),  # another house
        ("京溪路人行道积水", "京溪路人行道积水，已经三天了！", False),  # words added
        ("楼下垃圾没人清理啊", "楼下垃圾没人清理呀", False),  # one character changed
        ("楼下的餐馆油烟很大", "楼下的饭馆油烟很大", False),
        ("京溪路人行道积水", "京溪路 人行道 积水。", False),  # spacing and punctuation
    ],
)
def test_short_texts_say_otherwise_when_words_are_replaced_by_others(a, b, otherwise):
    assert sim.says_otherwise(a, b) is otherwise
    assert sim.says_otherwise(b, a) is otherwise


def test_long_texts_are_never_judged_by_their_replaced_words():
    """A re-posted letter with a new salutation is the same letter: past SHORT_TEXT_CHARS the rule stays out."""
    body = "小区门口的道路年久失修，坑洼不平，雨天积水严重，老人小孩出行非常不便，多次反映无人处理，" * 3
    assert len(sim.normalize(body)) > sim.SHORT_TEXT_CHARS
    assert sim.says_otherwise("尊敬的李书记" + body, "尊敬的王市长" + body) is False
    assert sim.says_otherwise("尊敬的李书记" + body[:40], "尊敬的王市长" + body[:40]) is True


def test_empty_text_is_similar_to_nothing():
    assert sim.similarity(sim.Profile.of(""), sim.Profile.of(A)).score == 0.0


def test_minhash_agreement_estimates_jaccard():
    rng = np.random.default_rng(5)
    agree = []
    for _ in range(100):
        base = np.unique(rng.integers(0, 2**40, size=300).astype(np.uint64))
        other = np.unique(np.concatenate([base[:200], rng.integers(2**41, 2**42, size=100).astype(np.uint64)]))
        sa, sb = sim.signatures([base, other])
        agree.append((sa == sb).mean())
    true_jaccard = 200 / 400
    assert abs(np.mean(agree) - true_jaccard) < 0.05


def test_index_finds_the_near_duplicate_and_respects_times_and_exclusion():
    idx = sim.ShingleIndex()
    idx.add_many([(1, 1000.0, A), (2, 2000.0, LAMP), (3, 5000.0, A2)])
    found = [c.order_id for c in idx.query(A2, exclude=3)]
    assert found == [1]
    assert idx.query(A2, exclude=3, since=1500.0) == []
    assert [c.order_id for c in idx.query(A2)][:2] == [3, 1]  # most shared bands first
    assert 2 not in [c.order_id for c in idx.query(A2, scheme=sim.DUP_SCHEME)]


def test_index_merges_its_delta_without_losing_entries():
    owner = sim.OrderIndex(index_days=180, bucket_cap=1000)
    idx = owner.index
    texts = [f"{i}号楼{A}" for i in range(300)]
    idx.add_many((i, float(i), t) for i, t in enumerate(texts))
    for table in idx.tables.values():
        table.merge()
    idx.add_many([(1000, 1000.0, "全新的一条关于公交站台破损的诉求，站台玻璃碎了一地")])  # stays in the delta
    assert [c.order_id for c in idx.query("全新的一条关于公交站台破损的诉求，站台玻璃碎了一地！")] == [1000]
    assert {c.order_id for c in idx.query(texts[7], limit=1000)} >= {7}
    owner._merge(evict_before=100.0)  # the daily eviction: entries of orders created before then are dropped
    assert all(c.created >= 100.0 for c in idx.query(texts[150], limit=1000))


def test_index_finds_entries_before_any_merge_in_both_kinds_of_delta():
    idx = sim.ShingleIndex(bucket_cap=1000)
    texts = [f"{i}号楼{A}" for i in range(100)]
    idx.add_many((i, float(i), t) for i, t in enumerate(texts))  # a large addition: kept as arrays until a merge
    idx.add_many([(500, 500.0, LAMP)])  # one order: kept in the dict
    assert all(t.delta_size and not len(t.keys) for t in idx.tables.values())
    assert {c.order_id for c in idx.query(texts[42], limit=1000)} >= {42}
    assert [c.order_id for c in idx.query(LAMP)][:1] == [500]
    idx.compact()
    assert all(t.delta_size == 0 and len(t.keys) for t in idx.tables.values())
    assert {c.order_id for c in idx.query(texts[42], limit=1000)} >= {42}
    assert [c.order_id for c in idx.query(LAMP)][:1] == [500]


def test_sketching_apart_from_the_index_adds_each_order_once():
    idx = sim.ShingleIndex()
    prepared = idx.prepare([(1, 1000.0, A), (2, 2000.0, LAMP), (1, 1000.0, A), (4, 4000.0, "！")])
    assert prepared is not None and prepared.ids == [1, 2]  # a repeated id and a text without shingles left out
    assert len(idx) == 0  # preparing changes nothing
    idx.add_many([(2, 2000.0, LAMP)], sketched=True)  # meanwhile this process indexes order 2 at its commit
    assert idx.add_prepared(prepared) == 1
    assert len(idx) == 2 and idx.idf.n_docs == 2
    assert [c.order_id for c in idx.query(A2)][:1] == [1]
    assert [c.order_id for c in idx.query(LAMP)][:1] == [2]
    assert idx.prepare([(1, 1000.0, A)]) is None and idx.add_prepared(None) == 0


def test_a_merge_outside_the_lock_loses_nothing_added_or_looked_up_meanwhile():
    owner = sim.OrderIndex(index_days=180, bucket_cap=1000)
    idx = owner.index
    assert idx.defer_merges
    texts = [f"{i}号楼{A}" for i in range(300)]
    idx.add_many((i, float(i), t) for i, t in enumerate(texts))
    idx.compact()
    for i in range(300, 600):  # one order at a time, as intakes add them: the deltas grow past their share
        idx.add_many([(i, float(i), f"{i}号楼{LAMP}")])
    assert all(t.wants_merge for t in idx.tables.values())  # deferred: nothing merged by the additions

    jobs = {name: t.begin_merge() for name, t in idx.tables.items()}  # what OrderIndex._merge does under its lock
    idx.add_many([(999, 999.0, "全新的一条关于公交站台破损的诉求，站台玻璃碎了一地")])  # arrives during the merge
    found = {c.order_id for c in idx.query(f"320号楼{LAMP}", limit=1000)}
    assert 320 in found  # the additions being merged are searched
    assert [c.order_id for c in idx.query("全新的一条关于公交站台破损的诉求，站台玻璃碎了一地！")] == [999]
    with pytest.raises(RuntimeError):
        idx.tables[sim.DUP_SCHEME].begin_merge()
    for name, job in jobs.items():
        idx.tables[name].end_merge(*sim._merged(*job))
    assert all(t.merging is None for t in idx.tables.values())
    assert [c.order_id for c in idx.query("全新的一条关于公交站台破损的诉求，站台玻璃碎了一地！")] == [999]
    hits = [c.order_id for c in idx.query(f"320号楼{LAMP}", limit=1000)]
    assert 320 in hits and len(hits) == len(set(hits))
    assert {c.order_id for c in idx.query(texts[7], limit=1000)} >= {7}


def test_order_index_merges_and_evicts_in_two_steps():
    owner = sim.OrderIndex(index_days=180, bucket_cap=1000)
    idx = owner.index
    idx.add_many((i, float(i), f"{i}号楼{A}") for i in range(200))
    idx.compact()
    for i in range(200, 500):
        idx.add_many([(i, float(i), f"{i}号楼{LAMP}")])
    owner._merge()
    assert all(t.delta_size == 0 and t.merging is None for t in idx.tables.values())
    assert {c.order_id for c in idx.query(f"230号楼{LAMP}", limit=1000)} >= {230}
    owner._merge(evict_before=100.0)
    assert all(c.created >= 100.0 for c in idx.query(f"50号楼{A}", limit=1000))
    assert {c.order_id for c in idx.query(f"150号楼{A}", limit=1000)} >= {150}


def test_bucket_cap_keeps_the_newest():
    idx = sim.ShingleIndex(bucket_cap=5)
    idx.add_many((i, float(i), A) for i in range(50))
    got = [c.order_id for c in idx.query(A, limit=100)]
    assert set(got) <= set(range(30, 50)) and 49 in got


def test_places():
    r = 200.0
    assert place_match(Place(community_id=1), Place(community_id=1), radius_m=r) == PlaceMatch.SAME
    assert place_match(Place(street_id=1, community_id=1), Place(street_id=1, community_id=2), radius_m=r) == (
        PlaceMatch.DIFFERENT
    )
    assert place_match(Place(street_id=1), Place(street_id=1, community_id=2), radius_m=r) == PlaceMatch.SAME_STREET
    assert place_match(Place(street_id=1), Place(street_id=2), radius_m=r) == PlaceMatch.DIFFERENT
    assert place_match(Place(address="岗贝路12号"), Place(address="白云区岗贝路12号"), radius_m=r) == PlaceMatch.SAME
    assert place_match(Place(address="岗贝路12号"), Place(address="民航路3号"), radius_m=r) == PlaceMatch.UNKNOWN
    assert place_match(Place(), Place(street_id=3), radius_m=r) == PlaceMatch.UNKNOWN
    near = Place(lat=23.2, lng=113.3, community_id=1)
    assert place_match(near, Place(lat=23.2010, lng=113.3, community_id=2), radius_m=r) == PlaceMatch.SAME
    assert place_match(near, Place(lat=23.21, lng=113.3, community_id=1), radius_m=r) == PlaceMatch.DIFFERENT
    assert distance_m(23.2, 113.3, 23.21, 113.3) == pytest.approx(1112, rel=0.01)


def _random_texts(rng: np.random.Generator, n: int) -> list[str]:
    pool = list("路灯垃圾噪音施工小区物业停车学校医院公交地铁楼栋漏水排污投诉请尽快处理附近居民反映，。！ABC123")
    texts = ["".join(rng.choice(pool, size=int(rng.integers(0, 120)))) for _ in range(n)]
    return [*texts, "", "路", "路灯", "，。！", A, A2, LAMP]


def test_scoring_many_texts_at_once_equals_scoring_each():
    rng = np.random.default_rng(11)
    texts = _random_texts(rng, 150)
    idf = sim.IdfTable()
    idf.add_many([np.unique(sim.shingle_keys(sim.normalize(t))) for t in texts[:100]])
    for query in [A, LAMP, texts[3], "路灯", ""]:
        qp = sim.Profile.of(query)
        for table in (idf, None):
            one_by_one = [sim.similarity(qp, sim.Profile.of(t), idf=table) for t in texts]
            at_once = sim.similarities(qp, texts, idf=table)
            assert len(at_once) == len(texts)
            for a, b in zip(one_by_one, at_once, strict=True):
                assert b.cosine == pytest.approx(a.cosine, abs=1e-9)
                assert b.jaccard == pytest.approx(a.jaccard, abs=1e-12)
                assert b.containment == pytest.approx(a.containment, abs=1e-12)


def test_small_idf_additions_count_like_a_full_recount():
    rng = np.random.default_rng(3)
    sets = [np.unique(sim.shingle_keys(sim.normalize(t))) for t in _random_texts(rng, 60)]
    incremental, batch = sim.IdfTable(), sim.IdfTable()
    for one in sets:  # one text at a time: the in-place path
        incremental.add_many([one])
    batch.df += np.bincount(sim.df_buckets(np.concatenate(sets)), minlength=sim.DF_BUCKETS).astype(np.int32)
    assert np.array_equal(incremental.df, batch.df) and incremental.n_docs == len(sets)


def test_stored_signatures_estimate_jaccard_of_indexed_orders_only():
    idx = sim.ShingleIndex()
    idx.add_many([(1, 1.0, A), (2, 2.0, LAMP), (3, 3.0, A2)])
    est = idx.estimate_jaccard(A2, [1, 2, 3, 99])
    assert set(est) == {1, 2, 3}  # 99 is not indexed: the caller scores it exactly
    true = sim.similarity(sim.Profile.of(A2), sim.Profile.of(A)).jaccard
    assert est[3] == 1.0 and abs(est[1] - true) < 0.2 and est[2] < 0.2


def test_scoring_known_features_gives_exactly_the_same_numbers():
    """Intake scores candidates from their remembered features: bit for bit what scoring the texts gives."""
    rng = np.random.default_rng(12)
    texts = _random_texts(rng, 120)
    texts += texts[:5]  # the same text twice in one batch
    texts.append("路" * 70_000 + "灯")  # a shingle counted beyond 16 bits
    idf = sim.IdfTable()
    idf.add_many([np.unique(sim.shingle_keys(sim.normalize(t))) for t in texts[:80]])
    features = [sim.Features.of(t) for t in texts]
    for query in [A, LAMP, texts[7], "路灯", ""]:
        qp = sim.Profile.of(query)
        for table in (idf, None):
            assert sim.similarities_of(qp, features, idf=table) == sim.similarities(qp, texts, idf=table)
    assert sim.similarities_of(sim.Profile.of(A), [], idf=idf) == []


def test_feature_cache_is_keyed_by_the_text_and_bounded_in_bytes():
    size = sim.Features.of(A).nbytes + sys.getsizeof(A) + sim.FeatureCache.ENTRY_OVERHEAD
    cache = sim.FeatureCache(max_bytes=2 * size + 100)
    first = cache.get_many([A, LAMP, A])
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 2)
    assert first[0] is first[2]  # one text, computed once
    for got, text in zip(first, [A, LAMP, A], strict=True):
        want = sim.Features.of(text)
        assert np.array_equal(got.keys, want.keys) and np.array_equal(got.counts, want.counts)
        assert np.array_equal(got.buckets, sim.df_buckets(want.keys))
    assert cache.get_many([A])[0] is first[0] and cache.hits == 1
    # An edited text is another key: its own features, never the old ones.
    edited = cache.get_many([A2])[0]
    assert np.array_equal(edited.keys, sim.Profile.of(A2).keys) and not np.array_equal(edited.keys, first[0].keys)
    # Over the budget the least recently used goes: LAMP (A was used since).
    assert A in cache and A2 in cache and LAMP not in cache
    assert cache.nbytes <= cache.max_bytes
    # A text larger than the whole budget is scored but not kept.
    huge = "".join(chr(0x4E00 + i) for i in range(5000))
    assert len(cache.get_many([huge])[0].keys) > 0 and huge not in cache and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_an_order_index_scores_from_the_process_feature_cache():
    sim.reset_indexes()
    owner = sim.OrderIndex(index_days=180)
    owner.index.add_many([(1, 1.0, A), (2, 2.0, LAMP)])
    query = sim.Profile.of(A2)
    got = owner.similarities(query, [A, LAMP, A])
    assert got == sim.similarities(query, [A, LAMP, A], idf=owner.index.idf)
    assert A in sim._FEATURES and LAMP in sim._FEATURES
    sim.remember_features(A2, sim.Sketch.of(A2))  # a new appeal's sketch is kept for the next intakes
    assert A2 in sim._FEATURES
    sim.reset_indexes()
    assert len(sim._FEATURES) == 0


def test_query_ids_are_the_query_candidates_in_order():
    rng = np.random.default_rng(13)
    texts = _random_texts(rng, 200)
    idx = sim.ShingleIndex(bucket_cap=30)
    idx.add_many((i, float(i), t) for i, t in enumerate(texts * 3))
    asked = 0
    for query in [A, A2, texts[3], texts[50], ""]:
        for kwargs in ({}, {"scheme": sim.SIM_SCHEME}, {"since": 100.0, "until": 400.0, "limit": 7, "exclude": 3}):
            want = [c.order_id for c in idx.query(query, **kwargs)]  # type: ignore[arg-type]
            assert idx.query_ids(query, **kwargs) == want  # type: ignore[arg-type]
            asked += bool(want)
    assert asked >= 8
