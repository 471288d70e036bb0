"""The pure alarm evaluation: duration, hysteresis, de-duplication while open, late readings, a person's clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityhub.monitoring.rules import (
    Change,
    Comparison,
    EvalState,
    RuleSpec,
    beyond,
    check_clear_threshold,
    cleared_by_person,
    evaluate,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def series(*values: float, step_s: int = 60, start: datetime = T0) -> list[tuple[datetime, float]]:
    return [(start + timedelta(seconds=step_s * i), v) for i, v in enumerate(values)]


def changes(result) -> list[tuple[Change, float]]:
    return [(t.change, t.value) for t in result.transitions]


@pytest.mark.parametrize(
    ("comparison", "value", "limit", "expected"),
    [(">", 5, 5, False), (">=", 5, 5, True), ("<", 5, 5, False), ("<=", 5, 5, True), ("<", 4, 5, True)],
)
def test_comparisons(comparison: str, value: float, limit: float, expected: bool) -> None:
    assert beyond(comparison, value, limit) is expected


def test_the_condition_must_hold_for_the_duration_before_raising() -> None:
    spec = RuleSpec(Comparison.GT, 20, duration_s=180)
    result = evaluate(spec, EvalState(), series(25, 26, 10, 25, 26, 27, 28))
    # The dip to 10 restarts the wait: breach from minute 3, raised at minute 6 (3 minutes later).
    assert changes(result) == [(Change.RAISE, 28)]
    assert result.transitions[0].at == T0 + timedelta(minutes=6)
    assert result.transitions[0].since == T0 + timedelta(minutes=3)
    assert result.state.open and result.state.breach_since == T0 + timedelta(minutes=3)


def test_no_duration_raises_at_the_first_crossing_and_repeats_are_not_new_alarms() -> None:
    result = evaluate(RuleSpec(Comparison.GE, 100), EvalState(), series(90, 100, 120, 101))
    assert changes(result) == [(Change.RAISE, 100), (Change.REPEAT, 120), (Change.REPEAT, 101)]


def test_hysteresis_keeps_an_alarm_open_between_the_two_thresholds() -> None:
    spec = RuleSpec(Comparison.GT, 20, clear_threshold=10)
    result = evaluate(spec, EvalState(), series(21, 19, 21, 15, 10, 21))
    assert changes(result) == [
        (Change.RAISE, 21),
        (Change.REPEAT, 21),
        (Change.CLEAR, 10),  # 19 and 15 are inside the band: no flapping
        (Change.RAISE, 21),
    ]


def test_a_falling_rule_mirrors_a_rising_one() -> None:
    spec = RuleSpec(Comparison.LT, 4.0, clear_threshold=5.0)  # dissolved oxygen
    result = evaluate(spec, EvalState(), series(6, 3.5, 4.5, 5.0, 5.1))
    assert changes(result) == [(Change.RAISE, 3.5), (Change.CLEAR, 5.0)]


def test_readings_are_evaluated_in_time_order_and_late_ones_are_skipped() -> None:
    spec = RuleSpec(Comparison.GT, 20)
    shuffled = list(reversed(series(10, 30, 10)))
    result = evaluate(spec, EvalState(), shuffled)
    assert changes(result) == [(Change.RAISE, 30), (Change.CLEAR, 10)]
    later = evaluate(spec, result.state, series(50, start=T0 - timedelta(minutes=1)) + series(10, start=T0))
    assert later.late == 2 and later.transitions == [] and later.state == result.state


def test_an_open_alarm_continues_across_batches() -> None:
    spec = RuleSpec(Comparison.GT, 20, duration_s=120)
    first = evaluate(spec, EvalState(), series(25, 26))
    assert first.transitions == [] and first.state.breach_since == T0
    second = evaluate(spec, first.state, series(27, 28, start=T0 + timedelta(minutes=2)))
    assert changes(second) == [(Change.RAISE, 27), (Change.REPEAT, 28)]


def test_a_persons_clear_disarms_the_rule_until_the_readings_recover() -> None:
    spec = RuleSpec(Comparison.GT, 20, clear_threshold=10)
    raised = evaluate(spec, EvalState(), series(30))
    after = cleared_by_person(spec, raised.state)
    assert not after.open and not after.armed
    still = evaluate(spec, after, series(31, 15, start=T0 + timedelta(minutes=1)))
    assert still.transitions == []  # 15 is not a recovery past the clear threshold
    recovered = evaluate(spec, still.state, series(9, 40, start=T0 + timedelta(minutes=5)))
    assert changes(recovered) == [(Change.RAISE, 40)]
    # Cleared by a person when the readings had already recovered: armed at once.
    assert cleared_by_person(spec, EvalState(open=True, last_at=T0, last_value=5)).armed


def test_capacity_scaling_and_clear_threshold_checks() -> None:
    spec = RuleSpec(Comparison.GE, 0.9, clear_threshold=0.8).scaled(2000)
    assert (spec.threshold, spec.clear_limit) == (1800, 1600)
    assert check_clear_threshold(">", 20, 25) is not None
    assert check_clear_threshold("<", 4, 3) is not None
    assert check_clear_threshold(">", 20, 10) is None and check_clear_threshold("<=", 4, None) is None
