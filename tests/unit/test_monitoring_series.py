"""The pure downsampling of a sensor's readings (monitoring.series) and the chart geometry (monitoring.chart): at
most two points per bucket, a one-reading spike kept, few readings drawn as they are, ticks at round values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityhub.monitoring import chart
from cityhub.monitoring.series import downsample

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _minutes(values: list[float], start: datetime = T0) -> list[tuple[datetime, float]]:
    return [(start + timedelta(minutes=i), v) for i, v in enumerate(values)]


def test_a_month_of_minute_readings_becomes_at_most_two_points_per_bucket_and_keeps_a_spike() -> None:
    values = [10.0 + (i % 7) * 0.1 for i in range(30 * 24 * 60)]
    values[12_345] = 95.0  # one reading long
    values[40_000] = -3.0
    series = downsample(_minutes(values), start=T0, end=T0 + timedelta(days=30), buckets=200)
    assert series.downsampled and series.count == len(values)
    assert len(series.points) <= 400 and len(series.buckets) == 200
    drawn = [v for _, v in series.points]
    assert max(drawn) == 95.0 and min(drawn) == -3.0
    spike_at = T0 + timedelta(minutes=12_345)
    assert (spike_at, 95.0) in series.points
    assert [p[0] for p in series.points] == sorted(p[0] for p in series.points)
    assert sum(b.count for b in series.buckets) == len(values)
    spike_bucket = next(b for b in series.buckets if b.start <= spike_at < b.end)
    assert spike_bucket.max == 95.0 and spike_bucket.min == 10.0 and 10.0 < spike_bucket.mean < 11.0


def test_few_readings_are_drawn_as_they_are_and_readings_outside_the_window_are_left_out() -> None:
    points = _minutes([1, 5, 2], start=T0 + timedelta(hours=1))
    outside = [(T0 - timedelta(minutes=1), 99.0), (T0 + timedelta(days=2), 99.0)]
    series = downsample(list(reversed(points)) + outside, start=T0, end=T0 + timedelta(days=1), buckets=100)
    assert not series.downsampled and series.points == points and series.count == 3


def test_a_bucket_with_one_reading_or_equal_extremes_gives_one_point() -> None:
    flat = _minutes([4.0] * 10)
    series = downsample(flat, start=T0, end=T0 + timedelta(minutes=10), buckets=2)
    assert series.downsampled and len(series.points) == 2  # one per bucket: min and max are the same reading


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="end after"):
        downsample([], start=T0, end=T0, buckets=10)


def test_ticks_are_round_and_cover_the_values() -> None:
    assert chart.nice_ticks(3.2, 47.9) == [0, 10, 20, 30, 40, 50]
    assert chart.nice_ticks(0.42, 0.58)[0] <= 0.42 and chart.nice_ticks(0.42, 0.58)[-1] >= 0.58
    flat = chart.nice_ticks(5, 5)
    assert flat[0] < 5 < flat[-1]
    assert chart.nice_ticks(-12, 3) == [-15, -10, -5, 0, 5]


def test_the_chart_scales_into_its_box_breaks_at_gaps_and_marks_thresholds_and_alarms() -> None:
    end = T0 + timedelta(hours=24)
    points = _minutes([5, 10, 30], start=T0 + timedelta(hours=1)) + _minutes([8], start=T0 + timedelta(hours=20))
    drawn = chart.build(
        points,
        start=T0,
        end=end,
        tz=UTC,
        thresholds=[chart.Threshold(20, "积水超 20")],
        alarms=[chart.AlarmMark(T0 + timedelta(hours=1, minutes=2), "报警", "critical", True, 7)],
        gap=timedelta(hours=1),
    )
    assert len(drawn.paths) == 1 and len(drawn.dots) == 1  # the lone reading after the silence is a dot
    xs = [float(p.split(",")[0]) for p in drawn.paths[0].split()]
    ys = [float(p.split(",")[1]) for p in drawn.paths[0].split()]
    assert all(drawn.left <= x <= drawn.right for x in xs) and all(drawn.top <= y <= drawn.bottom for y in ys)
    assert ys[2] < drawn.lines[0].y < ys[1]  # 30 is above the threshold line of 20, 10 below it
    assert drawn.marks[0].escalated and drawn.marks[0].alarm_id == 7
    assert [t.label for t in drawn.x_ticks] == ["00:00", "06:00", "12:00", "18:00", "00:00"]
    assert chart.build([], start=T0, end=end, tz=UTC).empty


def test_values_at_the_ends_of_the_float_range_are_drawn_at_the_charts_edge() -> None:
    """A threshold of 1e308 beside a reading of -1e308 (both finite, both accepted) overflowed the scale: the sensor's
    page answered 500 for as long as the reading was in its window."""
    end = T0 + timedelta(hours=2)
    drawn = chart.build(
        [(T0, -1e308), (T0 + timedelta(hours=1), 3.0)],
        start=T0,
        end=end,
        tz=UTC,
        thresholds=[chart.Threshold(1e308, "limit")],
    )
    ys = [tick.pos for tick in drawn.y_ticks] + [line.y for line in drawn.lines]
    assert ys and all(drawn.top <= y <= drawn.bottom for y in ys)
    assert all(abs(v) < float("inf") for v in chart.nice_ticks(-1.7e308, 1.7e308))
