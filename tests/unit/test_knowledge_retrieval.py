"""Hybrid retrieval over a small hand-made knowledge base, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityhub.knowledge.retrieval import Doc, KnowledgeIndex
from cityhub.knowledge.schemas import EntryCreate, split_keywords

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DOCS = [
    Doc(1, "离职后住房公积金怎么提取？需要什么材料", keywords=["公积金", "提取"], category_id=10),
    Doc(2, "新生儿如何办理户口登记（上户口）", keywords=["户口", "新生儿"], category_id=20),
    Doc(3, "外地户籍能否申请公租房，申请条件是什么", keywords=["公租房", "申请条件"], category_id=30),
    Doc(4, "小区噪音扰民向哪个部门投诉", keywords=["噪音", "投诉"], category_id=None),
    Doc(5, "老年人乘坐公交车免费乘车卡怎么办理", keywords=["老年卡", "公交"], category_id=40),
    Doc(6, "失业保险金的领取条件和期限", keywords=["失业保险"], category_id=10),
]


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex(DOCS)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("我辞职了，想把公积金取出来，要带哪些证件", 1),
        ("孩子刚出生怎么上户口", 2),
        ("我是外地人可以申请公租房吗", 3),
        ("楼下KTV噪音太大了找谁", 4),
        ("七十岁老人坐公交要钱吗，老年卡在哪办", 5),
        ("失业了能领多久的失业保险金", 6),
    ],
)
def test_the_right_entry_ranks_first(index, question, expected):
    hits = index.search(question, limit=3, now=NOW)
    assert hits and hits[0].id == expected
    assert hits[0].score > 0 and hits[0].why()


def test_scores_are_ordered_and_limited(index):
    hits = index.search("公积金 公租房 户口", limit=2, now=NOW)
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score


def test_expired_and_future_entries_are_excluded():
    docs = [
        Doc(1, "公积金提取办法", valid_until=NOW - timedelta(days=1)),
        Doc(2, "公积金提取新规", valid_from=NOW + timedelta(days=1)),
        Doc(3, "公积金贷款利率"),
    ]
    hits = KnowledgeIndex(docs).search("公积金提取", now=NOW)
    assert [h.id for h in hits] == [3]
    later = KnowledgeIndex(docs).search("公积金提取", now=NOW + timedelta(days=2))
    assert later[0].id == 2


def test_category_filter_keeps_related_and_general_entries(index):
    hits = index.search("怎么投诉 公积金 提取", now=NOW, categories={10}, limit=10)
    ids = {h.id for h in hits}
    assert 1 in ids and 4 in ids  # 4 has no category: general entries stay
    assert not ids & {2, 3, 5}


def test_empty_index_and_unmatched_query():
    assert KnowledgeIndex([]).search("公积金") == []
    assert KnowledgeIndex(DOCS).search("☃☃☃", now=NOW) == []


def test_keywords_are_split_and_validated():
    assert split_keywords("公积金，提取、 离职;材料 公积金") == ["公积金", "提取", "离职", "材料"]
    with pytest.raises(ValueError):
        EntryCreate(question="q", answer="a", valid_from=NOW, valid_until=NOW - timedelta(days=1))
    with pytest.raises(ValueError):
        EntryCreate(question="  ", answer="a")


def test_a_keyword_counts_whole_and_asking_words_do_not_rank() -> None:
    # A small knowledge base, as a district starts with: few entries ask 怎么办, so its weight would be high.
    small = KnowledgeIndex(
        [
            Doc(1, "家里突然停水了怎么办？", keywords=["停水", "供水"]),
            Doc(2, "燃气泄漏怎么办？", keywords=["燃气", "燃气泄漏"]),
            Doc(3, "养犬登记怎么办理？", keywords=["养狗", "办狗证", "养犬登记"]),
        ]
    )
    hits = small.search("我想办狗证怎么办", limit=3, now=NOW)
    assert hits[0].id == 3 and hits[0].matched == ["办狗证"]
    assert all(not h.matched for h in hits[1:])  # they share only 怎么办 with the question
