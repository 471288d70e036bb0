"""**Pure** downsampling of a sensor's readings for a chart: a window cut into equal buckets, each kept as its
lowest and highest reading (at their own times) — so a spike one reading long is still drawn, which a mean per
bucket would flatten. No I/O; the service reads the readings in time order and hands them over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

Point = tuple[datetime, float]


@dataclass
class Bucket:
    start: datetime
    end: datetime
    count: int
    min: float
    max: float
    min_at: datetime
    max_at: datetime
    total: float

    @property
    def mean(self) -> float:
        return self.total / self.count


@dataclass(frozen=True)
class Series:
    count: int  # readings in the window
    downsampled: bool
    points: list[Point]  # what to draw, in time order
    buckets: list[Bucket]  # non-empty buckets, in time order
    bucket_width: timedelta


def downsample(points: Iterable[Point], *, start: datetime, end: datetime, buckets: int) -> Series:
    """The readings in ``[start, end]`` (any order) in at most ``buckets`` buckets of equal width; the points to draw
    are every reading when there are at most two per bucket, else each bucket's minimum and maximum in time order
    (one point when they are the same reading): at most ``2 * buckets`` points."""
    if end <= start:
        raise ValueError("the window must end after it starts")
    if buckets < 1:
        raise ValueError("at least one bucket")
    width = (end - start) / buckets
    inside = sorted((p for p in points if start <= p[0] <= end), key=lambda p: p[0])
    filled: dict[int, Bucket] = {}
    for at, value in inside:
        index = min(int((at - start) / width), buckets - 1)
        bucket = filled.get(index)
        if bucket is None:
            low = start + width * index
            filled[index] = Bucket(low, low + width, 1, value, value, at, at, value)
            continue
        bucket.count += 1
        bucket.total += value
        if value < bucket.min:
            bucket.min, bucket.min_at = value, at
        if value > bucket.max:
            bucket.max, bucket.max_at = value, at
    ordered = [filled[i] for i in sorted(filled)]
    if len(inside) <= 2 * buckets:
        return Series(len(inside), False, inside, ordered, width)
    drawn: list[Point] = []
    for b in ordered:
        pair = sorted({(b.min_at, b.min), (b.max_at, b.max)}, key=lambda p: p[0])
        drawn.extend(pair)
    return Series(len(inside), True, drawn, ordered, width)
