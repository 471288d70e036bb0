"""Routing rules without a database: matching, tier preference, ranking, and the auto-or-queue decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityhub.dispatch.rules import (
    Hypothesis,
    OrderFacts,
    Rule,
    RuleTier,
    TargetKind,
    combine,
    decide,
    explain,
    match,
    split_keywords,
    unique_top,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
# Units: district 1, street 10 (in 1), community 100 (in 10), street 20 (in 1); departments 501, 502.
# Categories: 7 (城乡建设) ⊃ 71 (住房保障) ⊃ 711 (保障房).


def facts(text: str = "", **kw: object) -> OrderFacts:
    base: dict[str, object] = {
        "text": text,
        "now": NOW,
        "place_chain": (100, 10, 1),
        "community_id": 100,
        "street_id": 10,
    }
    base.update(kw)
    return OrderFacts(**base)  # type: ignore[arg-type]


def dept(rule_id: int, unit: int, *, priority: int = 50, **kw: object) -> Rule:
    return Rule(id=rule_id, name=f"r{rule_id}", tier=RuleTier.DEPARTMENT, target_unit_id=unit, priority=priority, **kw)  # type: ignore[arg-type]


def test_community_rule_beats_department_whatever_the_priority_and_hits() -> None:
    rules = [
        dept(1, 501, priority=900, keywords=("噪音", "扰民", "装修")),
        Rule(id=2, name="local", tier=RuleTier.COMMUNITY, target_kind=TargetKind.LOCAL_COMMUNITY, keywords=("噪音",)),
        Rule(id=3, name="street", tier=RuleTier.STREET, target_kind=TargetKind.LOCAL_STREET, keywords=("装修",)),
    ]
    ranked = match(rules, facts("楼上装修噪音扰民"))
    assert [c.unit_id for c in ranked] == [100, 10, 501]
    assert ranked[0].reasons[0].startswith("rule #2") and "小事不出村" in ranked[0].reasons[0]


def test_within_a_tier_priority_then_specificity_then_hits() -> None:
    by_priority = match(
        [dept(1, 501, keywords=("停水",)), dept(2, 502, priority=60, keywords=("停水",))], facts("停水")
    )
    assert [c.unit_id for c in by_priority] == [502, 501]
    chain = {"category_chain": (711, 71, 7), "category_label": "保障房"}
    deeper = match([dept(1, 501, category_id=7), dept(2, 502, category_id=71)], facts("x", **chain))
    assert [c.unit_id for c in deeper] == [502, 501]
    more_hits = match([dept(1, 501, keywords=("停水",)), dept(2, 502, keywords=("停水", "水压"))], facts("停水 水压低"))
    assert [c.unit_id for c in more_hits] == [502, 501] and more_hits[0].hits == 2


def test_keywords_are_any_of_and_must_not_keywords_exclude() -> None:
    rule = dept(1, 501, keywords=("噪音", "噪声"), exclude_keywords=("施工",))
    assert explain(rule, facts("夜里噪声很大"))[0] is not None
    assert explain(rule, facts("楼下餐馆油烟"))[1] == "no keyword in the text"
    candidate, why = explain(rule, facts("工地夜间施工噪音"))
    assert candidate is None and why == "excluded by 施工"
    # Keywords match across full-width forms, case and spacing (segmented text).
    assert explain(dept(2, 501, keywords=("KTV",)), facts("楼下 ｋｔｖ 太吵"))[0] is not None


def test_category_matches_the_category_and_its_descendants_only() -> None:
    rule = dept(1, 501, category_id=71)
    assert explain(rule, facts(category_chain=(711, 71, 7)))[0] is not None
    assert explain(rule, facts(category_chain=(7,)))[0] is None
    assert explain(rule, facts())[1] == "category does not match"
    assert explain(dept(2, 501), facts())[0] is not None  # no category condition: any order


def test_place_scope_covers_the_unit_and_everything_below_it() -> None:
    in_street = dept(1, 501, place_unit_id=10)
    assert explain(in_street, facts())[0] is not None
    elsewhere = facts(place_chain=(200, 20, 1), community_id=200, street_id=20)
    assert explain(in_street, elsewhere)[1] == "place outside the rule's scope"
    assert explain(in_street, facts(place_chain=(), community_id=None, street_id=None))[0] is None
    # A narrower scope is more specific than a wider one.
    ranked = match([dept(1, 501, place_unit_id=1), dept(2, 502, place_unit_id=100)], facts())
    assert [c.unit_id for c in ranked] == [502, 501]


def test_validity_window_and_active_flag() -> None:
    later = dept(1, 501, valid_from=NOW + timedelta(days=1))
    over = dept(2, 501, valid_until=NOW)
    current = dept(3, 501, valid_from=NOW - timedelta(days=1), valid_until=NOW + timedelta(seconds=1))
    off = dept(4, 501, active=False)
    assert explain(later, facts())[0] is None and explain(over, facts())[0] is None
    assert explain(current, facts())[0] is not None and explain(off, facts())[1] == "inactive"


def test_local_targets_need_a_known_place_and_returning_units_are_skipped() -> None:
    local = Rule(id=1, name="l", tier=RuleTier.COMMUNITY, target_kind=TargetKind.LOCAL_COMMUNITY)
    unplaced = facts(place_chain=(), community_id=None, street_id=None)
    assert explain(local, unplaced)[1] == "the order's own community is not known"
    assert explain(local, facts())[0].unit_id == 100  # type: ignore[union-attr]
    assert explain(local, facts(excluded_unit_ids=frozenset({100})))[0] is None


def test_a_community_matter_whose_community_is_unknown_goes_to_its_street_not_a_bureau() -> None:
    """小事不出村 with the village unknown (the address named only the street): the street, ranked as a street's
    rule (中事不出镇) — still before a department's — and saying so; a department took a neighbours' quarrel."""
    local = Rule(
        id=1, name="邻里纠纷", tier=RuleTier.COMMUNITY, target_kind=TargetKind.LOCAL_COMMUNITY, keywords=("邻里",)
    )
    street_only = facts("邻里纠纷", place_chain=(10, 1), community_id=None)
    ranked = match([local, dept(2, 501, priority=900, keywords=("邻里",))], street_only)
    assert [(c.unit_id, c.tier) for c in ranked] == [(10, RuleTier.STREET), (501, RuleTier.DEPARTMENT)]
    assert "own street (its community not known)" in ranked[0].reasons[0] and "中事不出镇" in ranked[0].reasons[0]
    assert explain(local, facts("邻里纠纷", community_id=None, excluded_unit_ids=frozenset({10})))[0] is None


def test_several_rules_for_one_unit_break_a_tie_and_true_ties_are_not_unique() -> None:
    tie = match([dept(1, 501, keywords=("噪音",)), dept(2, 502, keywords=("扰民",))], facts("噪音扰民"))
    assert len(tie) == 2 and not unique_top(tie)
    broken = match(
        [dept(1, 501, keywords=("噪音",)), dept(2, 502, keywords=("扰民",)), dept(3, 502, priority=10)],
        facts("噪音扰民"),
    )
    assert broken[0].unit_id == 502 and broken[0].support == 2 and unique_top(broken)
    assert any("also rule #3" in r for r in broken[0].reasons)
    assert not unique_top([])


def test_split_keywords_accepts_chinese_and_ascii_separators() -> None:
    assert split_keywords("噪音、垃圾, 占道，噪音;;") == ("噪音", "垃圾", "占道")
    assert split_keywords(["a", " ", "b"]) == ("a", "b") and split_keywords(None) == ()


def test_combine_keeps_the_primary_ranking_and_sums_probabilities() -> None:
    a = match([dept(1, 501)], facts())
    b = match([dept(2, 502), dept(1, 501)], facts())
    merged = combine([Hypothesis("城乡建设", 0.6, a), Hypothesis("环境保护", 0.3, b)])
    assert [c.unit_id for c in merged] == [501, 502]
    assert merged[0].score == pytest.approx(0.9) and merged[1].score == pytest.approx(0.3)
    assert merged[1].reasons[-1] == "if the category is 环境保护 (p=0.30)"


def _decide(candidates: list, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "probability": 0.95,
        "threshold": 0.9,
        "category_label": "城乡建设",
        "category_from_intake": False,
        "has_model": True,
        "rule_auto_priority": 100,
    }
    args.update(kw)
    return decide(candidates=candidates, **args)  # type: ignore[arg-type]


def test_decision_with_a_classifier_follows_the_threshold() -> None:
    one = match([dept(1, 501)], facts())
    auto = _decide(one)
    assert auto.auto and auto.reason.startswith("category 城乡建设 p=0.95 ≥ threshold 0.90; rule #1")
    low = _decide(one, probability=0.62)
    assert not low.auto and low.reason == "category 城乡建设 p=0.62 < threshold 0.90"
    assert _decide(one, probability=0.5, category_from_intake=True).auto


def test_a_text_the_classifier_hardly_knows_waits_however_high_its_probability() -> None:
    one = match([dept(1, 501)], facts())
    held = _decide(one, probability=0.99, evidence=2, min_evidence=3)
    assert not held.auto
    assert held.reason == "little known text: 2 known phrases < 3; category 城乡建设 p=0.99"
    assert _decide(one, probability=0.99, evidence=3, min_evidence=3).auto
    assert _decide(one, probability=0.99, evidence=None, min_evidence=3).auto  # not measured: probability decides
    # A category chosen at intake is not the classifier's reading: its evidence does not count.
    assert _decide(one, probability=0.5, category_from_intake=True, evidence=0, min_evidence=3).auto


def test_decision_queues_ambiguous_returned_and_unmatched_orders() -> None:
    tie = match([dept(1, 501), dept(2, 502)], facts())
    ambiguous = _decide(tie)
    assert not ambiguous.auto and ambiguous.reason.startswith("ambiguous: rules #1 and #2 rank equal")
    returned = _decide(match([dept(1, 501)], facts()), returned=True)
    assert not returned.auto and returned.reason.startswith("returned order")
    nothing = _decide([])
    assert not nothing.auto and nothing.reason.startswith("no routing rule matches")


def test_without_a_classifier_only_a_high_priority_rule_dispatches() -> None:
    low = _decide(match([dept(1, 501)], facts()), has_model=False, probability=None)
    assert not low.auto and "priority 50 < 100" in low.reason
    high = _decide(match([dept(1, 501, priority=100)], facts()), has_model=False, probability=None)
    assert high.auto and high.reason.startswith("no classifier configured; high-priority rule #1")


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("幸福小区物业公司乱涨物业费，也不公示收支", True),
        ("业委会换届选举物业不作为，业主意见很大", True),
        ("小区物业专项维修资金怎么申请使用", False),  # the housing bureau's, not the community's
        ("楼道堆满杂物，邻里纠纷调解不了", True),
    ],
)
def test_the_seeded_local_rules_keep_property_disputes_in_the_community(text: str, local: bool) -> None:
    """小事不出村: the default rule set sends a property (物业) dispute to the community where it happens — the
    category rule alone sent it to the district's housing bureau — but not a question of the repair fund."""
    from cityhub.dispatch.service import LOCAL_PRIORITY, LOCAL_RULES

    rules = [
        Rule(
            id=i,
            name=name,
            tier=RuleTier.COMMUNITY if kind is TargetKind.LOCAL_COMMUNITY else RuleTier.STREET,
            target_kind=kind,
            priority=LOCAL_PRIORITY,
            keywords=split_keywords(wanted),
            exclude_keywords=split_keywords(excluded),
        )
        for i, (_key, name, kind, wanted, excluded) in enumerate(LOCAL_RULES, start=1)
    ]
    ranked = match([*rules, dept(99, 501, keywords=("物业", "维修资金"))], facts(text))
    assert (ranked[0].unit_id == 100) is local
