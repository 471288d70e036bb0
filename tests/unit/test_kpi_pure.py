"""Pure parts of assessment: periods, the KPI table, composite score and ranking with a minimum sample."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cityhub.analytics import kpi
from cityhub.errors import ValidationFailed


def test_month_period_is_local_and_half_open():
    p = kpi.parse_period("2026-10")
    assert (p.first, p.last, p.kind) == (date(2026, 10, 1), date(2026, 10, 31), "month")
    assert p.start == datetime(2026, 9, 30, 16, tzinfo=UTC)  # 00:00 in Shanghai
    assert p.end == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert p.previous().label == "2026-09" and kpi.parse_period("2026-01").previous().label == "2025-12"


def test_week_day_and_range_periods():
    w = kpi.parse_period("2026-W43")
    assert (w.first, w.last) == (date(2026, 10, 19), date(2026, 10, 25))
    assert w.previous().label == "2026-W42"
    r = kpi.parse_period("2026-10-01..2026-10-10")
    assert r.days == 10 and (r.previous().first, r.previous().last) == (date(2026, 9, 21), date(2026, 9, 30))
    assert kpi.parse_period("2026-10-05").days == 1
    # The other ISO forms of one day, as the correlation graph has always read them (it reads periods through here).
    assert kpi.parse_period("20261005").first == date(2026, 10, 5)
    assert kpi.parse_period("2026-W40-1").first == date(2026, 9, 28)


def test_the_period_before_a_quarter_or_year_is_the_calendar_quarter_or_year_before():
    """Not the same number of days before: 2026-Q1 (90 days) follows 2025-Q4 (92 days), 2025 follows the leap 2024."""
    q1 = kpi.parse_period("2026-Q1").previous()
    assert (q1.label, q1.first, q1.last) == ("2025-Q4", date(2025, 10, 1), date(2025, 12, 31))
    q3 = kpi.parse_period("2026q3").previous()
    assert (q3.label, q3.first, q3.last) == ("2026-Q2", date(2026, 4, 1), date(2026, 6, 30))
    y = kpi.parse_period("2025").previous()
    assert (y.label, y.first, y.last) == ("2024", date(2024, 1, 1), date(2024, 12, 31))
    assert y.previous().previous().label == "2022"


@pytest.mark.parametrize(
    "bad",
    [
        "2026-13",
        "2026-W60",
        "October",
        "2026-10-10..2026-10-01",
        "",
        "9999",
        "9999-12-31",
        "9999-12",
        "9999-W52",
        "2026-1-",
    ],
)
def test_bad_periods_are_refused(bad):
    from cityhub.analytics import correlation

    with pytest.raises(ValidationFailed):
        kpi.parse_period(bad)
    with pytest.raises(ValidationFailed):  # the graph's reader: a 422, not an overflow of the day after
        correlation.parse_period(bad)


def test_kpi_table_is_complete_and_weights_sum_to_100():
    assert len({k.name for k in kpi.KPIS}) == len(kpi.KPIS) == 8
    assert sum(k.weight for k in kpi.KPIS) == 100
    assert all(k.direction in ("higher", "lower") and k.label_zh for k in kpi.KPIS)


def _unit(uid: int, sample: int, **rates: tuple[int, int]) -> kpi.UnitKpis:
    row = kpi.UnitKpis(uid, f"U{uid}", f"单位{uid}", "street", sample=sample)
    row.rates = {name: kpi.Rate(*nd) for name, nd in rates.items()}
    row.score = kpi.composite_score(row.rates)
    return row


def test_composite_score_flips_lower_is_better_rates():
    # on-time completion 80% (weight 25) and return rate 10% (weight 10, lower better → 0.9)
    row = _unit(1, 10, on_time_completion=(8, 10), return_rate=(1, 10))
    assert row.score == pytest.approx(100 * (25 * 0.8 + 10 * 0.9) / 35)
    assert kpi.composite_score({"satisfaction": kpi.Rate(0, 0)}) is None


def test_rank_orders_by_direction_and_lists_small_samples_apart():
    rows = [
        _unit(1, 50, return_rate=(5, 50)),
        _unit(2, 40, return_rate=(1, 40)),
        _unit(3, 5, return_rate=(0, 5)),
    ]
    r = kpi.rank(rows, kpi="return_rate", min_sample=30)
    assert [(e["code"], e["rank"], e["n"]) for e in r.ranked] == [("U2", 1, 40), ("U1", 2, 50)]
    assert [(e["code"], e["n"]) for e in r.insufficient] == [("U3", 5)]
    by_score = kpi.rank(rows, min_sample=0)
    assert [e["code"] for e in by_score.ranked] == ["U3", "U2", "U1"]
    with pytest.raises(ValidationFailed):
        kpi.rank(rows, kpi="nope")


def test_a_period_at_either_end_of_the_calendar_is_refused_not_failed() -> None:
    for text in ("0001-01-01", "0001", "9999-12-31", "9999"):
        with pytest.raises(ValidationFailed, match="bad period"):
            kpi.parse_period(text)


def test_a_ranked_unit_carries_the_rates_its_score_is_made_of_and_the_costliest():
    """考核排名 shows why a unit ranks low: each ranked row carries its component rates (numerator, denominator, the
    points each costs the score — together 100 minus the score) and names the rate costing it most (``drag``)."""
    row = _unit(
        1,
        40,
        on_time_completion=(20, 40),  # weight 25, half met: costs most
        satisfaction=(36, 40),  # weight 20
        return_rate=(2, 40),  # weight 10, lower is better
        extension_rate=(0, 0),  # no denominator: shown, not counted
    )
    ranked = kpi.rank([row], min_sample=30).ranked[0]
    assert list(ranked["kpis"]) == ["on_time_completion", "return_rate", "extension_rate", "satisfaction"]
    assert ranked["kpis"]["on_time_completion"] == {"rate": 0.5, "numerator": 20, "denominator": 40, "lost": 22.73}
    assert ranked["kpis"]["extension_rate"] == {"rate": None, "numerator": 0, "denominator": 0, "lost": None}
    assert ranked["drag"] == "on_time_completion"
    lost = sum(c["lost"] for c in ranked["kpis"].values() if c["lost"] is not None)
    assert lost == pytest.approx(100 - ranked["value"], abs=0.02)
    # A unit losing nothing has no drag; a one-KPI ranking names none (its value is the rate itself).
    perfect = kpi.rank([_unit(2, 40, satisfaction=(40, 40))], min_sample=30).ranked[0]
    assert perfect["drag"] is None and perfect["kpis"]["satisfaction"]["lost"] == 0.0
    assert kpi.rank([row], kpi="return_rate", min_sample=30).ranked[0]["drag"] is None
    # Units below the minimum sample carry them too (the API lists them apart).
    short = kpi.rank([row], min_sample=100).insufficient[0]
    assert short["drag"] == "on_time_completion" and "satisfaction" in short["kpis"]
