"""**Pure** geometry of a readings chart drawn server-side as inline SVG (no JavaScript): the series scaled into a
plot area, axis ticks at round values, thresholds as horizontal lines, alarm openings as marks. The template draws
what this computes; texts other than numbers and times (axis titles, legends) come from the i18n layer there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from cityhub.monitoring.series import Point

WIDTH, HEIGHT = 480, 230
# Room for the value labels on the left and the time labels below; the SVG scales with the page's width, so these
# are in the drawing's own units (a phone shows it about 0.75 times as large, with larger letters: app.css).
LEFT, RIGHT, TOP, BOTTOM = 52, 20, 12, 34


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str
    anchor: str = "middle"  # a time label near an edge is aligned to it, so it is not cut off


@dataclass(frozen=True)
class Line:
    y: float
    value: float
    label: str
    kind: str  # "threshold" or "clear"


@dataclass(frozen=True)
class Mark:
    x: float
    label: str
    severity: str
    escalated: bool
    alarm_id: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    paths: list[str] = field(default_factory=list)  # polylines' "x,y x,y …", split where readings are missing
    dots: list[tuple[float, float]] = field(default_factory=list)  # lone readings between two gaps
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    empty: bool = True


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str
    kind: str = "threshold"


@dataclass(frozen=True)
class AlarmMark:
    at: datetime
    label: str
    severity: str
    escalated: bool
    alarm_id: int


# Values beyond this magnitude are drawn at it: the scale's arithmetic (a span, a tick past the highest value) stays
# finite for any two finite values — a threshold of 1e308 and a reading of -1e308 overflowed it.
DRAWN_MAX = 1e300


def _drawn(value: float) -> float:
    return max(-DRAWN_MAX, min(DRAWN_MAX, value))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2, 2.5 or 5 × 10ⁿ apart) covering ``[low, high]`` (within ±``DRAWN_MAX``), about ``count``
    of them."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("finite bounds only")
    low, high = _drawn(low), _drawn(high)
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def _percent(value: float) -> str:
    """A confidence tick (0–1) in percent, as its caption and limits read (0.25 → "25%", 0.025 → "2.5%")."""
    return f"{_number(round(value * 100, 10))}%"


_TIME_STEPS = [timedelta(hours=h) for h in (1, 2, 3, 6, 12)] + [timedelta(days=d) for d in (1, 2, 7, 14)]


def time_ticks(start: datetime, end: datetime, tz: tzinfo, count: int = 5) -> list[tuple[datetime, str]]:
    """Labelled moments at round local times across the window, at most ``count + 1``: whole hours within a day
    (``06:00``), local midnights beyond (``11-28``)."""
    span = end - start
    fmt = "%H:%M" if span <= timedelta(days=1) else "%m-%d"
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    local = start.astimezone(tz)
    if step < timedelta(days=1):
        hours = int(step.total_seconds() // 3600)
        first = local.replace(minute=0, second=0, microsecond=0)
        first += timedelta(hours=(-first.hour) % hours)
    else:
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < local:
        first += step if step < timedelta(days=1) else timedelta(days=1)
    ticks = []
    at = first
    while at <= end:
        ticks.append((at, at.astimezone(tz).strftime(fmt)))
        at += step
    return ticks


def build(
    points: Sequence[Point],
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    thresholds: Sequence[Threshold] = (),
    alarms: Sequence[AlarmMark] = (),
    gap: timedelta | None = None,
    confidence: bool = False,
) -> Chart:
    """The chart of ``points`` (time order) over ``[start, end]``; the line breaks where two readings are more than
    ``gap`` apart (the sensor was silent). ``confidence``: the values are a detection's confidence (0–1,
    ``rules.is_confidence``), so the value ticks read in percent, as the caption and the limits' labels do."""
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    span = (end - start).total_seconds()

    def x_of(at: datetime) -> float:
        return round(left + (right - left) * (at - start).total_seconds() / span, 1)

    values = [v for _, v in points] + [t.value for t in thresholds]
    x_ticks = []
    for at, label in time_ticks(start, end, tz):
        x = x_of(at)
        anchor = "end" if x > right - 25 else "start" if x < left + 25 else "middle"
        x_ticks.append(Tick(x, label, anchor))
    if not values:
        return Chart(WIDTH, HEIGHT, left, right, top, bottom, x_ticks=x_ticks)
    ticks = nice_ticks(min(values), max(values))
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return round(bottom - (bottom - top) * (_drawn(value) - low) / (high - low), 1)

    segments: list[list[Point]] = []
    for point in points:
        if segments and (gap is None or point[0] - segments[-1][-1][0] <= gap):
            segments[-1].append(point)
        else:
            segments.append([point])
    paths = [" ".join(f"{x_of(at)},{y_of(v)}" for at, v in seg) for seg in segments if len(seg) > 1]
    dots = [(x_of(seg[0][0]), y_of(seg[0][1])) for seg in segments if len(seg) == 1]
    return Chart(
        WIDTH,
        HEIGHT,
        left,
        right,
        top,
        bottom,
        paths=paths,
        dots=dots,
        x_ticks=x_ticks,
        y_ticks=[Tick(y_of(v), _percent(v) if confidence else _number(v)) for v in ticks],
        lines=[Line(y_of(t.value), t.value, t.label, t.kind) for t in thresholds],
        marks=[Mark(x_of(a.at), a.label, a.severity, a.escalated, a.alarm_id) for a in alarms if start <= a.at <= end],
        empty=not points,
    )
