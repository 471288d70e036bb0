"""High-frequency events and risk warning (高频事件与风险预警): recurring problems, rising trends, anomalies.

Three detectors over :class:`~cityhub.analytics.correlation.OrderFact` rows, all evaluated at ``as_of`` (the
end of the analysed span, a local midnight so that finding ids stay stable through a day):

- **recurring** — the same category at the same community within ``window_days``. The count is of distinct
  reporters (known citizens once each; anonymous, sensor and video orders each count). A cell is a finding when
  it has at least ``min_orders`` reporters *and* that is more than chance: a one-sided Poisson test against the
  category's district-wide count in the window times the community's share of all orders, with
  Benjamini–Hochberg FDR control over every cell seen in the window.
- **rising** — category × street and category × community: the recent window's count ``r`` against the
  preceding baseline's ``b``. Under "no change" and given ``n = r + b``, ``r`` is binomial with
  ``p0 = E_r / (E_r + E_b)`` (the exact conditional test for two Poisson rates). The exposure ``E`` is the
  district's total order volume in each window (default), so a district-wide surge or a holiday lull does not
  make every cell "rise"; ``exposure="time"`` uses days instead. Cells with ``n < min_total`` are not tested
  (``n`` is ancillary for the conditional test, so this filter does not bias it); BH over the tested cells.
- **anomaly** — daily volumes (district total and each top-level category) against a robust seasonal baseline:
  the median and MAD of the same kind of day (weekday, or rest day for holidays, or weekday for make-up
  workdays, via the working calendar) over the previous ``lookback_weeks``; robust z
  ``(x − median) / max(1.4826·MAD, √median, 1)``, the √median floor being the Poisson noise a MAD of few days
  underestimates.

Each :class:`Finding` names its orders and can open a proactive order through intake (see
:func:`open_proactive_order`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from cityhub.analytics.correlation import (
    PROACTIVE_SOURCE,
    OrderFact,
    Period,
    is_proactive,
    load_facts,
    load_texts,
    places_of,
    short_division,
)
from cityhub.analytics.lexicon import fold_place_variants
from cityhub.caching import TtlCache
from cityhub.config import get_settings
from cityhub.db import database_key
from cityhub.errors import NotFound, ValidationFailed
from cityhub.formatting import significant

FindingKind = Literal["recurring", "rising", "anomaly"]
FINDING_KINDS: tuple[str, ...] = ("recurring", "rising", "anomaly")
MAX_ORDER_IDS = 2000  # an anomaly day can hold thousands of orders; the count stays exact


@dataclass
class Finding:
    kind: str
    place: str | None  # street or community name; None for the district
    place_level: str  # "district" | "street" | "community"
    category: str | None  # category path (anomalies: its top level, or None for the total)
    window_start: date  # local days, inclusive
    window_end: date  # exclusive
    statistic: str  # which statistic ``value`` is
    value: float
    count: int
    expected: float
    effect: float  # rate ratio (recurring, rising) or excess ratio x/median (anomaly)
    p_value: float | None = None
    q_value: float | None = None
    z: float | None = None
    order_ids: list[int | str] = field(default_factory=list)
    street_code: str | None = None
    community_code: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        key = "|".join(
            str(x) for x in (self.kind, self.place_level, self.place, self.category, self.window_start, self.window_end)
        )
        return "F" + hashlib.sha1(key.encode()).hexdigest()[:12]

    @property
    def category_leaf(self) -> str | None:
        return self.category.rsplit("/", 1)[-1] if self.category else None

    @property
    def ratio(self) -> float | None:
        """The count over its expectation, as a reader checks it from the two figures shown beside it; None against
        an expectation of nothing. Not ``effect``: a rising finding's rate ratio adds half an event to its baseline
        (so a new problem ranks finitely), and read beside "expected about 0.0" it was a multiple of nothing."""
        return self.count / self.expected if self.expected > 0 else None

    def summary(self) -> str:
        """One line in Chinese for the proactive order and the table view."""
        where = self.place or "全区"
        what = self.category_leaf or "诉求总量"
        span = f"{self.window_start:%Y-%m-%d}至{self.window_end - timedelta(days=1):%Y-%m-%d}"
        if self.kind == "recurring":
            return f"{where}{span}反复出现「{what}」问题：{self.count}人次反映（预期{significant(self.expected)}）"
        if self.kind == "rising":
            if self.ratio is None:
                return f"{where}「{what}」诉求上升：近期{self.count}件，此前半年没有"
            return f"{where}「{what}」诉求上升：近期{self.count}件，为基线水平的{self.ratio:.1f}倍"
        return (
            f"{where}{self.window_start:%Y-%m-%d}「{what}」单日诉求异常：{self.count}件（常态约{self.expected:.0f}件）"
        )

    def to_dict(self, *, with_orders: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "place": self.place,
            "place_level": self.place_level,
            "category": self.category,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "statistic": self.statistic,
            "value": _round(self.value),
            "count": self.count,
            "expected": _round(self.expected),
            "effect": _round(self.effect),
            "p_value": self.p_value,
            "q_value": self.q_value,
            "z": _round(self.z),
            "summary": self.summary(),
            "order_count": len(self.order_ids),
            "detail": self.detail,
        }
        if with_orders:
            data["order_ids"] = self.order_ids[:MAX_ORDER_IDS]
        return data


def _round(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 4)


# --------------------------------------------------------------------------------------------- statistics


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted q-values (step-up, monotone, capped at 1), in the input order."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def poisson_rate_test(recent: int, baseline: int, *, recent_exposure: float, baseline_exposure: float) -> float:
    """One-sided p-value that the recent rate exceeds the baseline rate (exact conditional binomial test)."""
    return float(
        poisson_rate_tests([recent], [baseline], recent_exposure=recent_exposure, baseline_exposure=baseline_exposure)[
            0
        ]
    )


def poisson_rate_tests(
    recent: Sequence[int], baseline: Sequence[int], *, recent_exposure: float, baseline_exposure: float
) -> Any:
    """:func:`poisson_rate_test` of many cells at once (an array of p-values): given n = recent + baseline events,
    recent ~ Binomial(n, p0) under equal rates, and the one-sided p-value is P(X ≥ recent) — what
    ``scipy.stats.binomtest(…, alternative="greater")`` computes, without its per-call overhead (16,000 cells took
    seconds one by one)."""
    if recent_exposure <= 0 or baseline_exposure <= 0:
        raise ValidationFailed("exposures must be positive")
    import numpy as np
    from scipy.stats import binom

    r = np.asarray(recent, dtype=np.int64)
    n = r + np.asarray(baseline, dtype=np.int64)
    p0 = recent_exposure / (recent_exposure + baseline_exposure)
    return np.where(n == 0, 1.0, binom.sf(r - 1, n, p0))


def poisson_excess_p(count: int, expected: float) -> float:
    """P(X ≥ count) for X ~ Poisson(expected)."""
    return float(poisson_excess_ps([count], [expected])[0])


def poisson_excess_ps(counts: Sequence[int], expected: Sequence[float]) -> Any:
    """:func:`poisson_excess_p` of many cells at once (an array)."""
    import numpy as np
    from scipy.stats import poisson

    k = np.asarray(counts, dtype=np.int64)
    mu = np.maximum(np.asarray(expected, dtype=float), 1e-9)
    return np.where(k <= 0, 1.0, poisson.sf(k - 1, mu))


def rate_ratio(recent: int, baseline: int, *, recent_exposure: float, baseline_exposure: float) -> float:
    """Recent over baseline rate, with half an event added to the baseline so a new problem stays finite."""
    return (recent / recent_exposure) / ((baseline + 0.5) / baseline_exposure)


def robust_z(value: float, history: Sequence[float]) -> tuple[float, float, float]:
    """(z, median, scale) of ``value`` against ``history`` with a Poisson floor on the scale."""
    med = statistics.median(history)
    mad = statistics.median(abs(h - med) for h in history)
    scale = max(1.4826 * mad, math.sqrt(max(med, 0.0)), 1.0)
    return (value - med) / scale, med, scale


def day_class(day: date, is_workday: Callable[[date], bool]) -> str:
    """Days comparable to each other: a weekday, or 'rest' for holidays and weekends alike … see below.

    Regular weekdays and weekends compare with the same weekday; a holiday on a weekday compares with rest
    days (weekends), a make-up workday on a weekend with workdays.
    """
    work = is_workday(day)
    weekend = day.weekday() >= 5
    if work and weekend:
        return "makeup"
    if not work and not weekend:
        return "holiday"
    return f"d{day.weekday()}"


def _comparable(cls: str, other: str) -> bool:
    if cls == other:
        return True
    if cls == "holiday":
        return other in ("d5", "d6")
    if cls == "makeup":
        return other in ("d0", "d1", "d2", "d3", "d4")
    return False


@dataclass(frozen=True)
class Anomaly:
    day: date
    count: int
    median: float
    z: float


def detect_anomalies(
    series: Mapping[date, int],
    *,
    start: date,
    stop: date,
    is_workday: Callable[[date], bool],
    lookback_weeks: int = 8,
    threshold: float = 3.5,
    min_history: int = 4,
    both: bool = False,
) -> list[Anomaly]:
    """Days in [start, stop) whose count is ``threshold`` robust z above (or, with ``both``, below) normal.

    ``series`` is the daily count; missing days count as zero from the first day it holds.
    """
    if not series:
        return []
    first = min(series)
    # Each day classified once: every day is compared with the lookback's 56 before it, and the built-in holiday
    # calendar's look-up costs ~80 µs (chinesecalendar checks the date against its range each time) — a year's
    # findings asked it 250,000 times, 20 s of the 26 a leader waited for /brain/findings?period=2025.
    classes: dict[date, str] = {}

    def class_of(d: date) -> str:
        cls = classes.get(d)
        if cls is None:
            cls = classes[d] = day_class(d, is_workday)
        return cls

    found = []
    day = start
    while day < stop:
        cls = class_of(day)
        history = []
        probe = day - timedelta(days=1)
        limit = day - timedelta(weeks=lookback_weeks)
        while probe >= max(limit, first):
            if _comparable(cls, class_of(probe)):
                history.append(float(series.get(probe, 0)))
            probe -= timedelta(days=1)
        if len(history) >= min_history:
            x = series.get(day, 0)
            z, med, _ = robust_z(float(x), history)
            if z >= threshold or (both and z <= -threshold):
                found.append(Anomaly(day=day, count=x, median=med, z=z))
        day += timedelta(days=1)
    return found


# --------------------------------------------------------------------------------------------- detectors


# The texts of some orders by id, for detectors run over facts loaded without them.
TextLoader = Callable[[list[Any]], Mapping[Any, str]]


def _local_day(fact: OrderFact, tz: ZoneInfo) -> date:
    return fact.created_at.astimezone(tz).date()


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC: comparing an order's time with it says which side of the day's
    boundary the order falls on, without converting every order's time to a local date."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _reporters(facts: Iterable[OrderFact]) -> int:
    known = set()
    anonymous = 0
    for f in facts:
        if f.citizen:
            known.add(f.citizen)
        else:
            anonymous += 1
    return len(known) + anonymous


def recurring(
    facts: Sequence[OrderFact],
    *,
    as_of: date,
    window_days: int = 30,
    min_orders: int = 3,
    alpha: float = 0.05,
    tz: ZoneInfo | None = None,
    texts: TextLoader | None = None,
) -> list[Finding]:
    """Same category at the same community, more often than chance, within the last ``window_days``.

    A finding names the places its orders' texts name most (``top_places``): from the facts' own texts, or, when
    the facts were loaded without them, from ``texts`` (order ids → texts), asked for the findings' orders only."""
    zone = tz or get_settings().tz
    start = as_of - timedelta(days=window_days)
    share: Counter[str] = Counter()
    cells: dict[tuple[str, str], list[OrderFact]] = defaultdict(list)
    category_total: Counter[str] = Counter()
    start_at, as_of_at = _day_start(start, zone), _day_start(as_of, zone)
    for f in facts:
        if not f.community:
            continue
        share[f.community] += 1
        if start_at <= f.created_at < as_of_at and f.category:
            cells[(f.community, f.category)].append(f)
            category_total[f.category] += 1
    total = sum(share.values())
    if not cells:
        return []
    communities = len(share)
    cell_list = []
    for (community, category), members in cells.items():
        # Additive smoothing keeps a community seen once from getting an expectation of zero.
        expected = category_total[category] * (share[community] + 1) / (total + communities)
        cell_list.append((community, category, members, _reporters(members), expected))
    p_values = poisson_excess_ps([c[3] for c in cell_list], [c[4] for c in cell_list])
    tested = [(*c, float(p)) for c, p in zip(cell_list, p_values, strict=True)]
    q_values = benjamini_hochberg([t[5] for t in tested])
    significant = [(t, q) for t, q in zip(tested, q_values, strict=True) if t[3] >= min_orders and q <= alpha]
    loaded = texts([f.id for t, _ in significant for f in t[2]]) if texts is not None else None
    found = []
    for (community, category, members, reporters, expected, p), q in significant:
        readable = members if loaded is None else [replace(f, text=loaded.get(f.id, "")) for f in members]
        places = Counter(p for f in readable for p in places_of(f)[2:])
        fold_place_variants(places)
        first = members[0]
        found.append(
            Finding(
                kind="recurring",
                place=short_division(community),
                place_level="community",
                category=category,
                window_start=start,
                window_end=as_of,
                statistic="reporters",
                value=float(reporters),
                count=reporters,
                expected=expected,
                effect=reporters / expected if expected > 0 else math.inf,
                p_value=p,
                q_value=q,
                order_ids=[f.id for f in members],
                street_code=first.street_code,
                community_code=first.community_code,
                detail={
                    "orders": len(members),
                    "street": first.street,
                    "top_places": [name for name, _ in places.most_common(3)],
                },
            )
        )
    found.sort(key=lambda f: (f.q_value or 0.0, -f.count))
    return found


def rising(
    facts: Sequence[OrderFact],
    *,
    as_of: date,
    recent_days: int = 28,
    baseline_days: int = 182,
    min_total: int = 5,
    min_recent: int = 3,
    alpha: float = 0.05,
    exposure: Literal["volume", "time"] = "volume",
    levels: Sequence[str] = ("street", "community"),
    tz: ZoneInfo | None = None,
) -> list[Finding]:
    """Category × place cells whose recent rate exceeds their baseline rate, FDR-controlled."""
    zone = tz or get_settings().tz
    recent_start = as_of - timedelta(days=recent_days)
    base_start = recent_start - timedelta(days=baseline_days)
    volume = [0, 0]
    cells: dict[tuple[str, str, str], list[list[OrderFact]]] = defaultdict(lambda: [[], []])
    base_at, recent_at, as_of_at = (_day_start(d, zone) for d in (base_start, recent_start, as_of))
    for f in facts:
        if not base_at <= f.created_at < as_of_at:
            continue
        part = 1 if f.created_at >= recent_at else 0
        volume[part] += 1
        if not f.category:
            continue
        for level in levels:
            place = f.street if level == "street" else f.community
            if place:
                cells[(level, place, f.category)][part].append(f)
    if exposure == "volume":
        e_base, e_recent = float(volume[0]), float(volume[1])
    else:
        e_base, e_recent = float(baseline_days), float(recent_days)
    if e_base <= 0 or e_recent <= 0:
        return []
    candidates = [(key, base, recent) for key, (base, recent) in cells.items() if len(recent) + len(base) >= min_total]
    p_values = poisson_rate_tests(
        [len(c[2]) for c in candidates],
        [len(c[1]) for c in candidates],
        recent_exposure=e_recent,
        baseline_exposure=e_base,
    )
    tested = [(*c, float(p)) for c, p in zip(candidates, p_values, strict=True)]
    q_values = benjamini_hochberg([t[3] for t in tested])
    found = []
    for ((level, place, category), base, recent, p), q in zip(tested, q_values, strict=True):
        r, b = len(recent), len(base)
        if r < min_recent or q > alpha:
            continue
        expected = b * e_recent / e_base
        first = recent[0]
        found.append(
            Finding(
                kind="rising",
                place=place if level == "street" else short_division(place),
                place_level=level,
                category=category,
                window_start=recent_start,
                window_end=as_of,
                statistic="rate_ratio",
                value=rate_ratio(r, b, recent_exposure=e_recent, baseline_exposure=e_base),
                count=r,
                expected=expected,
                effect=rate_ratio(r, b, recent_exposure=e_recent, baseline_exposure=e_base),
                p_value=p,
                q_value=q,
                order_ids=[f.id for f in recent],
                street_code=first.street_code,
                community_code=first.community_code if level == "community" else None,
                detail={
                    "baseline_count": b,
                    "baseline_start": base_start.isoformat(),
                    "exposure": exposure,
                    "recent_exposure": e_recent,
                    "baseline_exposure": e_base,
                },
            )
        )
    found.sort(key=lambda f: (f.q_value or 0.0, -f.effect))
    return found


def anomalies(
    facts: Sequence[OrderFact],
    *,
    start: date,
    stop: date,
    is_workday: Callable[[date], bool] | None = None,
    lookback_weeks: int = 8,
    threshold: float = 3.5,
    min_median: float = 3.0,
    tz: ZoneInfo | None = None,
) -> list[Finding]:
    """Days in [start, stop) with abnormal volume: the district total and each top-level category."""
    zone = tz or get_settings().tz
    workday = functools.cache(is_workday or _default_is_workday())  # once a day for the district and every category
    series: dict[str | None, Counter[date]] = defaultdict(Counter)
    members: dict[tuple[str | None, date], list[int | str]] = defaultdict(list)
    for f in facts:
        day = _local_day(f, zone)
        top = f.category.split("/", 1)[0] if f.category else None
        keys: list[str | None] = [None] if top is None else [None, top]
        for key in keys:
            series[key][day] += 1
            if start <= day < stop:
                members[(key, day)].append(f.id)
    found = []
    for key, counts in series.items():
        for a in detect_anomalies(
            counts, start=start, stop=stop, is_workday=workday, lookback_weeks=lookback_weeks, threshold=threshold
        ):
            if a.median < min_median and key is not None:
                continue
            ids = members[(key, a.day)]
            found.append(
                Finding(
                    kind="anomaly",
                    place=None,
                    place_level="district",
                    category=key,
                    window_start=a.day,
                    window_end=a.day + timedelta(days=1),
                    statistic="robust_z",
                    value=a.z,
                    count=a.count,
                    expected=a.median,
                    effect=a.count / a.median if a.median > 0 else math.inf,
                    z=a.z,
                    order_ids=ids,
                    detail={"lookback_weeks": lookback_weeks, "threshold": threshold},
                )
            )
    found.sort(key=lambda f: -(f.z or 0.0))
    return found


def _default_is_workday() -> Callable[[date], bool]:
    from cityhub.demo.generator import default_calendar

    return default_calendar().is_workday


# --------------------------------------------------------------------------------------------- all findings


@dataclass(frozen=True)
class RiskSettings:
    window_days: int = 30
    min_orders: int = 3
    recent_days: int = 28
    baseline_days: int = 182
    min_total: int = 5
    min_recent: int = 3
    alpha: float = 0.05
    lookback_weeks: int = 8
    threshold: float = 3.5
    anomaly_days: int = 30  # without a period: anomalies of the last N days

    @property
    def history_days(self) -> int:
        return max(self.window_days, self.recent_days + self.baseline_days, self.anomaly_days + 7 * self.lookback_weeks)


def analysis_span(period: Period | None, *, today: date | None = None) -> tuple[date, date]:
    """(first day for anomalies, as_of): the period (cut at tomorrow), or the last ``anomaly_days`` to today."""
    tomorrow = (today or datetime.now(get_settings().tz).date()) + timedelta(days=1)
    if period is None:
        return tomorrow - timedelta(days=RiskSettings().anomaly_days), tomorrow
    return period.first, min(period.stop, tomorrow)


def checked_kinds(kinds: Iterable[str]) -> set[str]:
    """The finding kinds asked for; ValidationFailed (the field ``kind``) naming any unknown one."""
    wanted = set(kinds)
    unknown = wanted - set(FINDING_KINDS)
    if unknown:
        raise ValidationFailed(
            f"unknown finding kind(s) {sorted(unknown)}: use {', '.join(FINDING_KINDS)}", details={"field": "kind"}
        )
    return wanted


def find_all(
    facts: Sequence[OrderFact],
    *,
    as_of: date,
    anomaly_start: date | None = None,
    kinds: Iterable[str] = FINDING_KINDS,
    settings: RiskSettings | None = None,
    is_workday: Callable[[date], bool] | None = None,
    tz: ZoneInfo | None = None,
    texts: TextLoader | None = None,
) -> list[Finding]:
    """Every finding of the chosen kinds at ``as_of`` (a local day, exclusive); ``texts`` as in :func:`recurring`."""
    s = settings or RiskSettings()
    wanted = checked_kinds(kinds)
    facts = [f for f in facts if not is_proactive(f.attributes)]
    found: list[Finding] = []
    if "recurring" in wanted:
        found += recurring(
            facts,
            as_of=as_of,
            window_days=s.window_days,
            min_orders=s.min_orders,
            alpha=s.alpha,
            tz=tz,
            texts=texts,
        )
    if "rising" in wanted:
        found += rising(
            facts,
            as_of=as_of,
            recent_days=s.recent_days,
            baseline_days=s.baseline_days,
            min_total=s.min_total,
            min_recent=s.min_recent,
            alpha=s.alpha,
            tz=tz,
        )
    if "anomaly" in wanted:
        start = anomaly_start or as_of - timedelta(days=s.anomaly_days)
        found += anomalies(
            facts,
            start=start,
            stop=as_of,
            is_workday=is_workday,
            lookback_weeks=s.lookback_weeks,
            threshold=s.threshold,
            tz=tz,
        )
    return found


def findings(
    session: Session,
    *,
    period: Period | None = None,
    kinds: Iterable[str] = FINDING_KINDS,
    scope: ColumnElement[bool] | None = None,
    settings: RiskSettings | None = None,
    today: date | None = None,
) -> list[Finding]:
    """Findings over the orders in ``scope``, evaluated at the end of ``period`` (default: today)."""
    from cityhub.workorders.calendar import load_calendar

    s = settings or RiskSettings()
    kinds = tuple(kinds)
    tz = get_settings().tz
    start, as_of = analysis_span(period, today=today)
    first = min(start, as_of - timedelta(days=s.history_days)) - timedelta(days=7 * s.lookback_weeks)
    facts = load_facts(
        session,
        start=datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC),
        end=datetime.combine(as_of, time(0), tzinfo=tz).astimezone(UTC),
        scope=scope,
        with_text=False,  # a recurring problem's top places read the texts of its own orders only
    )
    calendar = load_calendar(session)
    return find_all(
        facts,
        as_of=as_of,
        anomaly_start=start,
        kinds=kinds,
        settings=s,
        is_workday=calendar.is_workday,
        tz=tz,
        texts=lambda ids: load_texts(session, ids),
    )


def get_finding(session: Session, *, finding_id: str, **kwargs: Any) -> Finding:
    """The finding with this id, recomputed with the same arguments as :func:`findings`; NotFound otherwise."""
    for finding in findings(session, **kwargs):
        if finding.id == finding_id:
            return finding
    raise NotFound(f"finding {finding_id} not found (recompute with the same period and scope it was listed with)")


# --------------------------------------------------------------------------------------------- per-process cache

FINDINGS_CACHE_SECONDS = 300.0
_cache = TtlCache(FINDINGS_CACHE_SECONDS)


def _cache_key(session: Session, scope: Any, period: Period | None, today: date) -> Hashable:
    return (database_key(session), scope, period.label if period else None, today)


def cached_findings(
    session: Session, *, scope: Any, period: Period | None = None, today: date | None = None
) -> list[Finding]:
    """Every finding (all kinds) of :func:`findings` over ``scope`` (an :class:`cityhub.auth.scope.Scope`) at the end
    of ``period``, kept per process for five minutes per database, scope, period and day; after that the old list
    is answered while one background thread (on a session of its own) computes the next. The one cache of the
    findings: the one map's hotspots and the city brain's pages read it, so a district computes them once."""
    day = today or datetime.now(get_settings().tz).date()
    clause = scope.clause()

    def on(s: Session) -> list[Finding]:
        return findings(s, period=period, scope=clause, today=day)

    def refresh() -> list[Finding]:
        with Session(bind=session.get_bind().engine) as own:
            return on(own)

    return _cache.get(_cache_key(session, scope, period, day), lambda: on(session), refresh)


def has_cached_findings(
    session: Session, *, scope: Any, period: Period | None = None, today: date | None = None
) -> bool:
    """Whether :func:`cached_findings` would answer at once (a value, fresh or expired, is at hand)."""
    day = today or datetime.now(get_settings().tz).date()
    return _cache.has(_cache_key(session, scope, period, day))


def get_cached_finding(
    session: Session, *, finding_id: str, scope: Any, period: Period | None = None, today: date | None = None
) -> Finding:
    """The finding with this id among :func:`cached_findings`; NotFound otherwise."""
    for finding in cached_findings(session, scope=scope, period=period, today=today):
        if finding.id == finding_id:
            return finding
    raise NotFound(f"finding {finding_id} not found (recompute with the same period and scope it was listed with)")


def clear_cache() -> None:
    """Forget the cached findings (tests; after a reseed)."""
    _cache.clear()


# --------------------------------------------------------------------------------------------- proactive order

# A finding becomes an order on the grid channel (网格员): the grid inspector of the place is who verifies a
# recurring problem on site, and the channel is already scoped and routed like every other appeal.
PROACTIVE_CHANNEL = "grid"


def open_proactive_order(session: Session, *, finding: Finding, actor: Any = None) -> Any:
    """Open (or return the already opened) proactive order for ``finding`` through intake; audited as any order.

    The order is idempotent per finding: its external id is ``finding:<id>`` on the grid channel.
    """
    from cityhub.intake.service import submit
    from cityhub.workorders import service as orders
    from cityhub.workorders.models import AppealType

    ids = finding.order_ids[:MAX_ORDER_IDS]
    lines = [
        "【城市大脑主动发现】" + finding.summary(),
        f"类型：{finding.kind}；统计量 {finding.statistic}={_round(finding.value)}"
        + (f"；q={finding.q_value:.3g}" if finding.q_value is not None else "")
        + (f"；z={finding.z:.2f}" if finding.z is not None else ""),
        f"关联工单 {len(finding.order_ids)} 件。请核实现场情况并处置。",
    ]
    data = {
        "channel": PROACTIVE_CHANNEL,
        "appeal_type": AppealType.REPORT.value,
        "external_id": f"finding:{finding.id}",
        "title": ("主动发现：" + finding.summary())[:300],
        "content": "\n".join(lines),
        "category": finding.category if finding.kind != "anomaly" else None,
        "street_code": finding.street_code,
        "community_code": finding.community_code,
        "attributes": {
            "source": PROACTIVE_SOURCE,
            "proactive": True,
            "finding": finding.to_dict(with_orders=False),
            "order_ids": ids,
        },
    }
    result = submit(session, data=data, actor=actor or orders.SYSTEM)
    return result.order
