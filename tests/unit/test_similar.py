"""Text similarity and the MinHash LSH index, without a database."""

from __future__ import annotations

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
    idx = sim.ShingleIndex(bucket_cap=1000)
    texts = [f"{i}号楼{A}" for i in range(300)]
    idx.add_many((i, float(i), t) for i, t in enumerate(texts))
    for table in idx.tables.values():
        table.merge()
    idx.add_many([(1000, 1000.0, "全新的一条关于公交站台破损的诉求，站台玻璃碎了一地")])  # stays in the delta
    assert [c.order_id for c in idx.query("全新的一条关于公交站台破损的诉求，站台玻璃碎了一地！")] == [1000]
    assert {c.order_id for c in idx.query(texts[7], limit=1000)} >= {7}
    idx.evict_before(100.0)
    assert all(c.created >= 100.0 for c in idx.query(texts[150], limit=1000))


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
