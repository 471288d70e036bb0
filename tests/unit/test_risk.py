"""Risk statistics on hand-made counts: rate test, BH correction, robust anomalies, recurring cells."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from cityhub.analytics import risk
from cityhub.analytics.correlation import OrderFact
from cityhub.errors import ValidationFailed


def test_rate_test_flags_a_real_rise_and_not_a_steady_rate() -> None:
    # Same exposure on both sides: 30 vs 10 is a rise, 12 vs 10 is noise.
    assert risk.poisson_rate_test(30, 10, recent_exposure=1, baseline_exposure=1) == pytest.approx(0.00111, rel=0.01)
    assert risk.poisson_rate_test(12, 10, recent_exposure=1, baseline_exposure=1) > 0.2
    # A recent window six times shorter with the same rate per day is not a rise.
    assert risk.poisson_rate_test(5, 30, recent_exposure=1, baseline_exposure=6) > 0.3
    # A fall is never significant for the one-sided test.
    assert risk.poisson_rate_test(2, 40, recent_exposure=1, baseline_exposure=1) > 0.99
    with pytest.raises(ValidationFailed):
        risk.poisson_rate_test(1, 1, recent_exposure=0, baseline_exposure=1)


def test_rate_ratio_stays_finite_for_a_new_problem() -> None:
    assert risk.rate_ratio(6, 0, recent_exposure=1, baseline_exposure=1) == pytest.approx(12.0)
    assert risk.rate_ratio(10, 10, recent_exposure=1, baseline_exposure=1) < 1.0


def test_benjamini_hochberg_matches_the_step_up_rule() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    q = risk.benjamini_hochberg(p)
    # Sorted: 0.005*5/1=0.025, 0.01*5/2=0.025, 0.03*5/3=0.05, 0.04*5/4=0.05, 0.5*5/5=0.5
    assert q == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    assert risk.benjamini_hochberg([]) == []
    assert all(x <= 1.0 for x in risk.benjamini_hochberg([0.9, 0.95, 0.99]))


def test_benjamini_hochberg_controls_false_alarms_on_uniform_p_values() -> None:
    rng = random.Random(3)
    p = [rng.random() for _ in range(2000)]
    assert sum(q <= 0.05 for q in risk.benjamini_hochberg(p)) <= 5
    assert sum(x <= 0.05 for x in p) > 50  # uncorrected, about a hundred would pass


def _weekday_only(day: date) -> bool:
    return day.weekday() < 5


def _series(days: int, spike: date | None = None) -> dict[date, int]:
    rng = random.Random(5)
    start = date(2026, 1, 5)
    series = {}
    for k in range(days):
        day = start + timedelta(days=k)
        base = 40 if day.weekday() < 5 else 15
        series[day] = base + rng.randint(-4, 4)
    if spike is not None:
        series[spike] += 45
    return series


def test_anomaly_detection_finds_a_planted_spike_and_nothing_else() -> None:
    spike = date(2026, 3, 4)
    series = _series(90, spike)
    found = risk.detect_anomalies(
        series, start=date(2026, 2, 16), stop=date(2026, 4, 5), is_workday=_weekday_only, threshold=3.5
    )
    assert [a.day for a in found] == [spike]
    assert found[0].z > 3.5 and found[0].median == pytest.approx(40, abs=4)
    clean = risk.detect_anomalies(_series(90), start=date(2026, 2, 16), stop=date(2026, 4, 5), is_workday=_weekday_only)
    assert clean == []


def test_a_quiet_holiday_is_compared_with_rest_days() -> None:
    series = _series(60)
    holiday = date(2026, 2, 25)  # a Wednesday declared a rest day
    series[holiday] = 16

    def is_workday(day: date) -> bool:
        return day.weekday() < 5 and day != holiday

    assert risk.day_class(holiday, is_workday) == "holiday"
    assert (
        risk.detect_anomalies(series, start=holiday, stop=holiday + timedelta(days=1), is_workday=is_workday, both=True)
        == []
    )
    # Compared with ordinary Wednesdays the same day is a drop.
    assert risk.detect_anomalies(
        series, start=holiday, stop=holiday + timedelta(days=1), is_workday=_weekday_only, both=True
    )


def test_a_periods_anomalies_ask_the_calendar_once_a_day() -> None:
    """Each day is compared with the eight weeks before it, for the district and each category: the calendar is
    asked once a day all the same (its built-in look-up is slow — a year's findings asked it 250,000 times, 20 s)."""
    asked: Counter[date] = Counter()

    def is_workday(day: date) -> bool:
        asked[day] += 1
        return day.weekday() < 5

    categories = ["城建/路灯", "环保/噪音", "交通/违停"]
    first = date(2026, 1, 5)
    facts = [_fact(i, first + timedelta(days=i % 300), "C1", categories[i % 3]) for i in range(1800)]
    spike = first + timedelta(days=200)
    facts += [_fact(2000 + i, spike, "C1", "城建/路灯") for i in range(40)]
    found = risk.anomalies(
        facts, start=first + timedelta(days=60), stop=first + timedelta(days=300), is_workday=is_workday
    )
    assert spike in {f.window_start for f in found}  # found as before
    assert len(asked) > 200 and max(asked.values()) == 1


def _fact(i: int, day: date, community: str, category: str, citizen: str | None = None) -> OrderFact:
    return OrderFact(
        id=i,
        created_at=datetime(day.year, day.month, day.day, 3, tzinfo=UTC),
        text="反映问题",
        category=category,
        street="石井街道",
        community=community,
        citizen=citizen,
    )


def _background(n: int, start: date) -> list[OrderFact]:
    rng = random.Random(11)
    cats = ["城乡建设/市政/环境卫生", "环境保护/环境污染/噪音污染", "政法/交通管理/交通安全管理"]
    return [
        _fact(
            1000 + i, start + timedelta(days=rng.randrange(120)), f"社区{rng.randrange(12)}", rng.choice(cats), f"c{i}"
        )
        for i in range(n)
    ]


def test_recurring_finds_a_concentrated_cell_counting_citizens_once() -> None:
    as_of = date(2026, 5, 1)
    facts = _background(300, date(2026, 1, 1))
    hot = [_fact(i, as_of - timedelta(days=1 + i), "张村社区", "环境保护/环境污染/噪音污染", f"h{i}") for i in range(8)]
    found = risk.recurring(facts + hot, as_of=as_of, window_days=30)
    cells = {(f.place, f.category) for f in found}
    assert ("张村社区", "环境保护/环境污染/噪音污染") in cells
    finding = next(f for f in found if f.place == "张村社区")
    assert finding.count == 8 and set(range(8)) <= set(finding.order_ids)
    assert finding.q_value is not None and finding.q_value <= 0.05

    # The same eight orders from one caller are one reporter: no longer a finding.
    one_caller = [
        _fact(i, as_of - timedelta(days=1 + i), "张村社区", "环境保护/环境污染/噪音污染", "same") for i in range(8)
    ]
    again = risk.recurring(facts + one_caller, as_of=as_of, window_days=30)
    assert "张村社区" not in {f.place for f in again}


def test_rising_detects_a_new_trend_but_not_a_district_wide_surge() -> None:
    as_of = date(2026, 7, 1)
    start = as_of - timedelta(days=210)
    facts = _background(400, start)
    rise = [
        _fact(5000 + i, as_of - timedelta(days=1 + i % 20), "社区3", "城乡建设/城乡规划/违章建筑", f"r{i}")
        for i in range(12)
    ]
    found = risk.rising(facts + rise, as_of=as_of, recent_days=28, baseline_days=182)
    assert any(f.category == "城乡建设/城乡规划/违章建筑" and f.place_level == "street" for f in found)
    # Doubling every order in the recent window lifts all cells alike: relative to volume nothing rises.
    recent_start = as_of - timedelta(days=28)
    surge = facts + [
        OrderFact(
            id=f"d{f.id}",
            created_at=f.created_at,
            text=f.text,
            category=f.category,
            street=f.street,
            community=f.community,
            citizen=f.citizen,
        )
        for f in facts
        if f.created_at.date() >= recent_start
    ]
    assert risk.rising(surge, as_of=as_of, recent_days=28, baseline_days=182) == []


def test_finding_ids_are_stable_and_distinct() -> None:
    as_of = date(2026, 5, 1)
    facts = _background(300, date(2026, 1, 1)) + [
        _fact(i, as_of - timedelta(days=1 + i), "张村社区", "环境保护/环境污染/噪音污染", f"h{i}") for i in range(8)
    ]
    first = risk.find_all(facts, as_of=as_of, kinds=["recurring", "rising"], is_workday=_weekday_only)
    second = risk.find_all(facts, as_of=as_of, kinds=["recurring", "rising"], is_workday=_weekday_only)
    assert [f.id for f in first] == [f.id for f in second]
    assert len({f.id for f in first}) == len(first)
    with pytest.raises(ValidationFailed):
        risk.find_all(facts, as_of=as_of, kinds=["bogus"])
