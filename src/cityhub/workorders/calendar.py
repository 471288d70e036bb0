"""The Chinese working calendar (工作日历): workdays, and the working time between instants.

A day is a workday when, in this order of precedence,

1. an administrator said so in the ``calendar_days`` table (调休上班 make-up workday or extra holiday);
2. the ``chinesecalendar`` package knows the year (official holidays and make-up days, 2004–2026 in 1.11);
3. otherwise (a year the package does not know yet): Monday–Friday less the holidays the law gives that year
   (:func:`statutory_holidays`: 元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆, each day that falls on a weekend made up on
   the next working day), computed by the ``holidays`` package from the lunar calendar and the solar terms. The
   State Council's yearly arrangement (调休: the bridges and the weekends worked instead) is not law and is the
   administrators' to enter; a WARNING naming the year is logged once per process, and ``/healthz`` names such a
   year as a notice until it is entered.

Working time is the union of the local working intervals (default 09:00–12:00 and 13:30–18:00) of every
workday, in the district's time zone. To answer "when have N working seconds elapsed" for a million orders,
each calendar keeps a sorted table of the interval boundaries (UTC, integer microseconds since the epoch) with
the cumulative working time at each boundary; both questions are then two ``bisect`` calls. The table covers
whole local years and grows on demand, so that only the years from the earliest to the latest instant queried
are built (and only those can trigger the out-of-range warning, when they enter the table).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import chinese_calendar
from chinese_calendar.constants import Holiday
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cityhub import refdata
from cityhub.config import get_settings
from cityhub.errors import check_length
from cityhub.textfiles import text_lines
from cityhub.workorders.models import CalendarDay

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000
_MIN_YEAR = 1901
_MAX_YEAR = 9998

# Years already reported as outside the built-in calendar, so each is logged once per process.
_warned_years: set[int] = set()
_warned_lock = threading.Lock()

WorkingHours = Sequence[tuple[time, time]]


def parse_working_hours(text: str) -> list[tuple[time, time]]:
    """Parse ``"09:00-12:00,13:30-18:00"`` into ordered, non-overlapping (start, end) pairs.

    Raises ValueError naming the offending part. Intervals must lie within one day (no "22:00-06:00").
    """
    intervals: list[tuple[time, time]] = []
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ValueError("working hours are empty")
    for part in parts:
        pieces = part.split("-")
        if len(pieces) != 2:
            raise ValueError(f"working hours part {part!r} is not of the form HH:MM-HH:MM")
        try:
            start, end = (time.fromisoformat(p.strip()) for p in pieces)
        except ValueError:
            raise ValueError(f"working hours part {part!r} has an invalid time") from None
        if end <= start:
            raise ValueError(f"working hours part {part!r} ends before it starts")
        if intervals and start < intervals[-1][1]:
            raise ValueError(f"working hours part {part!r} overlaps or precedes the previous interval")
        intervals.append((start, end))
    return intervals


def _seconds_of_day(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _to_us(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: the calendar needs timezone-aware times")
    return (at - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _warn_outside(year: int) -> None:
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    log.warning(
        "year %d is outside the built-in Chinese holiday calendar; its workdays are Monday-Friday less the "
        "statutory holidays the law gives (%d days, days in lieu included; plus administrator overrides) - enter "
        "the State Council's arrangement (调休) for that year in the calendar",
        year,
        len(statutory_holidays(year)),
    )


@functools.lru_cache(maxsize=256)
def statutory_holidays(year: int) -> Mapping[date, str]:
    """The days off the law gives in ``year`` (全国年节及纪念日放假办法: 元旦 1 day, 春节 4 from 2025, 清明 1, 劳动节 2
    from 2025, 端午 1, 中秋 1, 国庆 3; one falling on a Saturday or Sunday made up on a working day), with their
    Chinese names, as the ``holidays`` package computes them from the lunar calendar and the solar terms — what a
    year's deadlines skip before the State Council's arrangement for it is known. Empty for a year the package
    cannot compute (before 1950, after its lunar tables end)."""
    import holidays  # imported on first use: only a year the built-in calendar does not know needs it

    return MappingProxyType(dict(holidays.China(years=year, language="zh_CN")))


def builtin_day(d: date) -> tuple[bool, str | None, str]:
    """``(is it a workday, the holiday's or make-up day's name, source)`` of ``d`` by the built-in calendars, no
    administrator's entry considered: source ``official`` (the State Council's arrangement, ``chinesecalendar``),
    ``statutory`` (a holiday of :func:`statutory_holidays` in a year the former does not know) or ``weekday``."""
    try:
        workday = bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        name = statutory_holidays(d.year).get(d)
        if name is not None:
            return False, name, "statutory"
        return d.weekday() < 5, None, "weekday"
    return workday, holiday_name(chinese_calendar.get_holiday_detail(d)[1]), "official"


def day_status(session: Session, d: date) -> tuple[bool, str | None, str]:
    """:func:`builtin_day`, unless an administrator entered the day: then ``(its kind, its name, "override")``."""
    entry = session.get(CalendarDay, d)
    if entry is not None:
        return entry.is_workday, entry.name, "override"
    return builtin_day(d)


def holiday_name(english: str | None) -> str | None:
    """The Chinese name of a holiday ``chinesecalendar`` names in English (National Day → 国庆节)."""
    if english is None:
        return None
    try:
        return str(Holiday(english).chinese)
    except ValueError:
        return english


class WorkCalendar:
    """Workdays and working-time arithmetic for one time zone, working-hour pattern and set of overrides.

    Instances are immutable from the outside and safe to share between threads: the lazily grown boundary
    table is replaced whole under a lock, never mutated in place.
    """

    def __init__(
        self,
        tz: ZoneInfo,
        working_hours: WorkingHours,
        overrides: Mapping[date, bool] | None = None,
    ) -> None:
        hours = list(working_hours)
        if not hours:
            raise ValueError("a work calendar needs at least one working interval")
        for i, (start, end) in enumerate(hours):
            if end <= start:
                raise ValueError(f"working interval {start}-{end} ends before it starts")
            if i and start < hours[i - 1][1]:
                raise ValueError(f"working interval {start}-{end} overlaps or precedes the previous one")
        self.tz = tz
        self.working_hours: tuple[tuple[time, time], ...] = tuple(hours)
        # Read-only: the boundary table is derived from it, and shared_calendar() reuses instances.
        self.overrides: Mapping[date, bool] = MappingProxyType(dict(overrides or {}))
        self._day_seconds = float(sum(_seconds_of_day(e) - _seconds_of_day(s) for s, e in hours))
        # (first year, last year, lo_us, hi_us, bounds, cum): bounds alternate start/end of each working
        # interval; cum[i] is the working time (µs) from the table's start up to bounds[i].
        self._table: tuple[int, int, int, int, list[int], list[int]] | None = None
        self._lock = threading.Lock()

    # --- days ------------------------------------------------------------------------------------------

    def is_workday(self, d: date) -> bool:
        override = self.overrides.get(d)
        if override is not None:
            return override
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            _warn_outside(d.year)
            return d.weekday() < 5 and d not in statutory_holidays(d.year)

    @property
    def day_seconds(self) -> float:
        """Working seconds of one full working day (7.5 h with the default hours)."""
        return self._day_seconds

    # --- the boundary table ----------------------------------------------------------------------------

    def _year_start_us(self, year: int) -> int:
        return _to_us(datetime(year, 1, 1, tzinfo=self.tz))

    def _year_rows(self, year: int) -> tuple[list[int], list[int]]:
        """Boundaries (µs) and interval lengths (µs) of the working intervals of one local year."""
        bounds: list[int] = []
        lengths: list[int] = []
        tz = self.tz
        d = date(year, 1, 1)
        one_day = timedelta(days=1)
        last = -(2**62)
        while d.year == year:
            if self.is_workday(d):
                for start, end in self.working_hours:
                    s = _to_us(datetime.combine(d, start, tzinfo=tz))
                    e = _to_us(datetime.combine(d, end, tzinfo=tz))
                    # A DST change can swallow (part of) an interval; keep the table strictly ordered.
                    s = max(s, last)
                    if e > s:
                        bounds.append(s)
                        bounds.append(e)
                        lengths.append(e - s)
                        last = e
            d += one_day
        return bounds, lengths

    def _build(self, first: int, last: int) -> tuple[int, int, int, int, list[int], list[int]]:
        if first < _MIN_YEAR or last > _MAX_YEAR:
            raise ValueError(f"working-time arithmetic outside years {_MIN_YEAR}-{_MAX_YEAR}")
        old = self._table
        if old is not None and old[0] == first:
            # Growing forward: keep the old rows and continue the running total.
            bounds, cum = list(old[4]), list(old[5])
            total = cum[-1] if cum else 0
            years = range(old[1] + 1, last + 1)
        else:
            bounds, cum, total = [], [], 0
            years = range(first, last + 1)
        for year in years:
            year_bounds, lengths = self._year_rows(year)
            for k, length in enumerate(lengths):
                bounds.append(year_bounds[2 * k])
                cum.append(total)
                total += length
                bounds.append(year_bounds[2 * k + 1])
                cum.append(total)
        return first, last, self._year_start_us(first), self._year_start_us(last + 1), bounds, cum

    def _cover(self, lo_us: int, hi_us: int | None = None, extra_us: int = 0) -> tuple[list[int], list[int]]:
        """A table whose years contain [lo_us, hi_us] and ≥ extra_us working time after its last boundary."""
        hi_us = lo_us if hi_us is None else hi_us
        table = self._table
        if (
            table is not None
            and table[2] <= lo_us
            and hi_us < table[3]
            and (not extra_us or (table[5] and table[5][-1] >= extra_us))
        ):
            return table[4], table[5]
        with self._lock:
            table = self._table
            lo_year = _from_us(lo_us).astimezone(self.tz).year
            hi_year = _from_us(hi_us).astimezone(self.tz).year
            first = lo_year if table is None else min(table[0], lo_year)
            last = hi_year if table is None else max(table[1], hi_year)
            if table is None or first < table[0] or last > table[1]:
                table = self._build(first, last)
                self._table = table
            while extra_us and (not table[5] or table[5][-1] < extra_us):
                # Roughly enough years for the remaining working time, at least one.
                missing = extra_us - (table[5][-1] if table[5] else 0)
                per_year = max(1, int(self._day_seconds * _US_PER_S * 200))
                table = self._build(table[0], table[1] + 1 + missing // per_year)
                self._table = table
            return table[4], table[5]

    @staticmethod
    def _worked(bounds: list[int], cum: list[int], t: int) -> int:
        """Working time (µs) from the table's start up to instant t (which the table covers)."""
        i = bisect_right(bounds, t)
        if i & 1:
            return cum[i - 1] + t - bounds[i - 1]
        if i < len(cum):
            return cum[i]
        return cum[-1] if cum else 0

    # --- instants --------------------------------------------------------------------------------------

    def is_work_time(self, at: datetime) -> bool:
        t = _to_us(at)
        bounds, _ = self._cover(t)
        return bool(bisect_right(bounds, t) & 1)

    def next_work_start(self, at: datetime) -> datetime:
        """``at`` (as UTC) if it lies in working time, else the start of the next working interval."""
        t = _to_us(at)
        bounds, cum = self._cover(t)
        i = bisect_right(bounds, t)
        if i & 1:
            return _from_us(t)
        while i >= len(bounds):
            bounds, cum = self._cover(t, extra_us=(cum[-1] if cum else 0) + 1)
            i = bisect_right(bounds, t)
        return _from_us(bounds[i])

    def add_work_seconds(self, start: datetime, seconds: float) -> datetime:
        """The UTC instant at which ``seconds`` of working time have elapsed after ``start``.

        A start outside working time counts from the next working interval. A positive duration that ends
        exactly at the end of an interval returns that end (18:00, not the next morning); 0 seconds returns
        :meth:`next_work_start`. Precision is one microsecond.
        """
        if seconds < 0:
            raise ValueError(f"cannot add a negative working time ({seconds} s)")
        amount = round(seconds * _US_PER_S)
        if amount == 0:
            return self.next_work_start(start)
        if start.tzinfo is None:
            raise ValueError(f"naive datetime {start!r}: the calendar needs timezone-aware times")
        t = (start - _EPOCH) // _US
        table = self._table
        # Hot path of bulk imports and the SLA sweep: _worked() inlined, no extra calls.
        if table is not None and table[2] <= t < table[3] and table[5]:
            bounds, cum = table[4], table[5]
            i = bisect_right(bounds, t)
            if i & 1:
                target = cum[i - 1] + t - bounds[i - 1] + amount
            else:
                target = (cum[i] if i < len(cum) else cum[-1]) + amount
        else:
            bounds, cum = self._cover(t)
            target = self._worked(bounds, cum, t) + amount
        while not cum or target > cum[-1]:
            # Re-read the running total from the grown table: a concurrent backward growth may shift it.
            bounds, cum = self._cover(t, extra_us=target)
            target = self._worked(bounds, cum, t) + amount
        # The first boundary whose running total reaches the target is an interval end (see _worked).
        j = bisect_left(cum, target)
        return _EPOCH + timedelta(microseconds=bounds[j] - (cum[j] - target))

    def work_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds in [a, b); 0 when b <= a."""
        ta, tb = _to_us(a), _to_us(b)
        if tb <= ta:
            return 0.0
        bounds, cum = self._cover(ta, tb)
        return (self._worked(bounds, cum, tb) - self._worked(bounds, cum, ta)) / _US_PER_S

    def add_work_days(self, start: datetime, days: float) -> datetime:
        """``days`` working days after ``start``, a working day being :attr:`day_seconds` of working time."""
        return self.add_work_seconds(start, days * self._day_seconds)

    def __repr__(self) -> str:
        hours = ",".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in self.working_hours)
        return f"WorkCalendar({self.tz.key!r}, {hours!r}, {len(self.overrides)} overrides)"


# --- database ------------------------------------------------------------------------------------------


_CACHE_SIZE = 8
_cache: dict[tuple[object, ...], WorkCalendar] = {}
_cache_lock = threading.Lock()


def shared_calendar(
    tz: ZoneInfo, working_hours: WorkingHours, overrides: Mapping[date, bool] | None = None
) -> WorkCalendar:
    """A calendar equal to ``WorkCalendar(tz, working_hours, overrides)``, reused while the inputs match.

    Services load the calendar on every action; reusing the instance keeps its boundary table, which takes
    about 10 ms per year to build. Editing an override changes the key, so the next load builds afresh.
    """
    key = (tz, tuple(working_hours), frozenset((overrides or {}).items()))
    with _cache_lock:
        cal = _cache.get(key)
        if cal is None:
            cal = WorkCalendar(tz, working_hours, overrides)
            if len(_cache) >= _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            _cache[key] = cal
        return cal


CALENDAR_LOOKAHEAD = timedelta(days=60)  # deadlines run weeks ahead: a year this close needs its holidays
# A year the built-in calendar does not know counts as entered once it has this many holidays on weekdays. China's
# official holidays (元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆: 11 statutory days, 13 from 2025) give 16 to 23 weekday
# days off a year once the make-up workdays have moved the bridges into the holiday periods (2010-2026 in the
# built-in calendar); 10 is well below any year's, so a year whose holidays fall on weekends still passes, while a
# single entry (元旦 alone, or one 国庆 day) does not pass for a year whose 春节 is missing.
MIN_WEEKDAY_HOLIDAYS = 10


def weekday_holidays_entered(session: Session, *, today: date) -> dict[int, int]:
    """The years from ``today`` to ``CALENDAR_LOOKAHEAD`` ahead that the built-in calendar does not know, each with
    the number of weekday holidays an administrator has entered for it."""
    last = (today + CALENDAR_LOOKAHEAD).year
    unknown = []
    for year in range(today.year, last + 1):
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            unknown.append(year)
    if not unknown:
        return {}
    holidays = select(CalendarDay.day).where(
        CalendarDay.is_workday.is_(False),
        CalendarDay.day >= date(unknown[0], 1, 1),
        CalendarDay.day <= date(unknown[-1], 12, 31),
    )
    entered = dict.fromkeys(unknown, 0)  # /healthz asks: only the years in question are read
    for day in session.scalars(holidays):
        if day.year in entered and day.weekday() < 5:
            entered[day.year] += 1
    return entered


def years_short_of_holidays(entered: Mapping[int, int]) -> list[int]:
    """The years of :func:`weekday_holidays_entered` with fewer than ``MIN_WEEKDAY_HOLIDAYS`` entered and no
    statutory holidays to fall back on (:func:`statutory_holidays`): their deadlines count every holiday as a
    working day."""
    return [year for year, count in entered.items() if count < MIN_WEEKDAY_HOLIDAYS and not statutory_holidays(year)]


def years_by_law(entered: Mapping[int, int]) -> list[int]:
    """The years of :func:`weekday_holidays_entered` with fewer than ``MIN_WEEKDAY_HOLIDAYS`` entered whose deadlines
    skip the holidays the law gives (:func:`statutory_holidays`) but not the State Council's arrangement for the
    year (its bridges and the weekends worked instead), until an administrator enters it."""
    return [year for year, count in entered.items() if count < MIN_WEEKDAY_HOLIDAYS and statutory_holidays(year)]


def years_without_holidays(session: Session, *, today: date) -> list[int]:
    """Years from ``today`` to ``CALENDAR_LOOKAHEAD`` ahead that neither the built-in calendar knows, nor the law's
    holidays can be computed for, nor an administrator has entered the official holidays of
    (``MIN_WEEKDAY_HOLIDAYS`` on weekdays): their deadlines count official holidays as working days."""
    return years_short_of_holidays(weekday_holidays_entered(session, today=today))


def load_calendar(session: Session) -> WorkCalendar:
    """The calendar of the configured time zone and working hours, with the administrators' overrides."""
    settings = get_settings()
    overrides = refdata.cached(session, "workorders.calendar_days", ("calendar_days",), _read_overrides)
    return shared_calendar(settings.tz, parse_working_hours(settings.working_hours), overrides)


def _read_overrides(session: Session) -> dict[date, bool]:
    return {row.day: row.is_workday for row in session.execute(select(CalendarDay.day, CalendarDay.is_workday))}


# The longest name of a day (国庆节, 春节（补假）): what the calendar table holds.
DAY_NAME_MAX_CHARS = 60


def set_day(session: Session, *, day: date, is_workday: bool, name: str | None = None) -> CalendarDay:
    """Create or replace the override of one day (节假日 holiday or 调休上班 make-up workday)."""
    check_length(name, "name", DAY_NAME_MAX_CHARS)
    row = session.get(CalendarDay, day)
    if row is None:
        row = CalendarDay(day=day, is_workday=is_workday, name=name)
        session.add(row)
    else:
        row.is_workday = is_workday
        row.name = name
    session.flush()
    return row


CALENDAR_KINDS = {"holiday": False, "workday": True}  # kind → is_workday: the codes (`cityhub calendar list`, forms)
# The words an administrator writes for the kinds (a pasted row, `cityhub calendar set`/`import`), as a calendar
# marks days: 放假/休 and 上班/班 (调休上班, 补班). Not 调休 alone: it names both the day off and the day worked.
KIND_WORDS: dict[str, bool] = {
    **dict.fromkeys(("放假", "休", "假", "休息", "节假日", "补休"), False),
    **dict.fromkeys(("上班", "班", "调休上班", "补班", "工作日"), True),
}


def calendar_kind(text: str) -> bool | None:
    """Whether ``text`` names a make-up workday (True) or a holiday (False) — a Chinese word of :data:`KIND_WORDS` or
    a code of :data:`CALENDAR_KINDS`, any case, surrounding spaces aside — else None."""
    word = text.strip().lower()
    return KIND_WORDS.get(word, CALENDAR_KINDS.get(word))


# What a refused kind is told it may be (the CLI's messages).
KIND_CHOICES = "放假 (休, holiday) or 上班 (班, workday)"


@dataclass(frozen=True)
class CalendarEntry:
    """One day of a calendar file: a holiday (节假日) or a make-up workday (调休上班). ``named``: whether the file
    says the day's name — a row ``date,kind`` without a name cell does not, and leaves the name of a day entered
    before as it is (an empty cell clears it), as the other imports leave what a file has no column for."""

    day: date
    is_workday: bool
    name: str | None
    named: bool = True


@dataclass(frozen=True)
class CalendarRowError:
    """A refused row of a calendar file: its number, what is wrong (``problem``: fields, date, kind, name, repeated,
    notice_…) and the value in question; ``str()`` is the CLI's English line, a page words it from ``problem``."""

    row: int
    problem: str
    value: str
    first_row: int | None = None  # "repeated": the row the day is on already

    def __str__(self) -> str:
        match self.problem:
            case "kind":
                return f"row {self.row}: kind {self.reason}"
            case "name":
                return f"row {self.row}: the name is {self.reason}"
            case "notice_total" | "notice_date":
                return f"line {self.row} ({self.value}): {self.reason}"
            case _:
                return f"{self.unit} {self.row}: {self.reason}"

    @property
    def unit(self) -> str:
        """``line`` for a notice's (its text read line by line), ``row`` for a CSV's."""
        return "line" if self.problem.startswith("notice_") else "row"

    @property
    def field(self) -> str | None:
        """What is at fault, for the command line's ``rejected: FILE: row N: field: …``: a CSV row's date, kind or
        name; the holiday a notice's item names; None for the row or line as a whole."""
        match self.problem:
            case "date" | "kind" | "name":
                return self.problem
            case "repeated":
                return "date"
            case "notice_total" | "notice_date":
                return self.value
            case _:
                return None

    @property
    def reason(self) -> str:
        """What is wrong, without where (``str()`` says both)."""
        match self.problem:
            case "fields":
                return f"expected date,kind,name, got {self.value} field(s)"
            case "date":
                return f"'{self.value}' is not a date (YYYY-MM-DD)"
            case "kind":
                return f"must be {KIND_CHOICES}, not '{self.value}'"
            case "name":
                return f"longer than {self.value} characters"
            case "notice_year":
                return f"the notice names no year (…{self.value}…): its first line says 20XX年"
            case "notice_total":
                return "its 共N天 does not match its dates"
            case "notice_date":
                return "a date that does not exist"
            case "notice_dates":
                return f"no dates found in '{self.value}'"
            case _:
                return f"{self.value} is already on row {self.first_row}"


def parse_calendar_rows(text: str) -> tuple[list[CalendarEntry], list[CalendarRowError]]:
    """Read CSV rows ``date,kind,name`` (kind 放假/休 or 上班/班, or ``holiday``/``workday`` — :func:`calendar_kind`;
    name optional: a row without it leaves a known day's name, :attr:`CalendarEntry.named`; a first row ``date,…`` or
    ``日期,…`` is a header; blank lines are skipped) into entries, and every bad row into an error naming its row
    number."""
    import csv

    entries: list[CalendarEntry] = []
    errors: list[CalendarRowError] = []
    seen: dict[date, int] = {}
    for number, row in enumerate(csv.reader(text_lines(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or (number == 1 and cells[0].lower() in ("date", "日期")):
            continue
        if len(cells) < 2 or len(cells) > 3:
            errors.append(CalendarRowError(number, "fields", str(len(cells))))
            continue
        text_day, name = cells[0], (cells[2] if len(cells) == 3 else "")
        try:
            day = date.fromisoformat(text_day)
        except ValueError:
            errors.append(CalendarRowError(number, "date", text_day))
            continue
        is_workday = calendar_kind(cells[1])
        if is_workday is None:
            errors.append(CalendarRowError(number, "kind", cells[1]))
            continue
        if len(name) > DAY_NAME_MAX_CHARS:
            errors.append(CalendarRowError(number, "name", str(DAY_NAME_MAX_CHARS)))
            continue
        if day in seen:
            errors.append(CalendarRowError(number, "repeated", day.isoformat(), seen[day]))
            continue
        seen[day] = number
        entries.append(CalendarEntry(day=day, is_workday=is_workday, name=name or None, named=len(cells) == 3))
    return entries, errors


# The State Council's yearly notice (国务院办公厅关于20XX年部分节假日安排的通知), as published: one item a holiday,
# "二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、
# 2月28日（周六）上班。" A day: [YYYY年][M月]D日, then what the notice puts in brackets after it.
_NOTICE_YEAR = re.compile(r"(\d{4})\s*年(?:元旦|部分节假日|节假日)")
_NOTICE_ITEM = re.compile(r"^\s*[一二三四五六七八九十]+\s*[、.．]\s*(?P<name>[^：:]{1,20})[：:](?P<body>.+)$")
_NOTICE_DAY = (
    r"(?:(?P<{p}y>\d{{4}})\s*年\s*)?(?:(?P<{p}m>\d{{1,2}})\s*月\s*)?(?P<{p}d>\d{{1,2}})\s*日"
    r"(?:\s*[（(][^）)]*[）)])?"
)
_NOTICE_OFF = re.compile(
    _NOTICE_DAY.format(p="a") + r"(?:\s*(?:至|—|-|～|~)\s*" + _NOTICE_DAY.format(p="b") + r")?\s*(?:放假|补休)"
)
_NOTICE_DATE = re.compile(_NOTICE_DAY.format(p="c"))
_NOTICE_TOTAL = re.compile(r"共\s*(\d{1,2})\s*天")


class _Mismatch(Exception):
    """An item of the notice whose 共N天 is not the length of its range."""


# The first line of ``date,kind,name`` rows: the header, or a row's ISO date and its comma.
_ROW_START = re.compile(r"\s*(?:date|日期|\d{4}-\d{1,2}-\d{1,2})\s*,", re.IGNORECASE)


def looks_like_notice(text: str) -> bool:
    """Whether pasted text is the State Council's notice rather than ``date,kind,name`` rows (whose first line is
    a header or a dated row, and whose kinds and names may say 放假 and 10月1日 too)."""
    first = next((line for line in text_lines(text) if line.strip()), "")
    if _ROW_START.match(first):
        return False
    dated = re.search(r"\d{1,2}\s*月\s*\d{1,2}\s*日", text, re.ASCII) or re.search(r"[０-９]\s*月", text)
    return bool(dated) and ("放假" in text or "上班" in text)


def parse_notice(text: str, *, year: int | None = None) -> tuple[list[CalendarEntry], list[CalendarRowError]]:
    """Read the State Council's holiday notice as published (its items 一、元旦：… 七、国庆节：…) into
    entries: every day of each 放假 range (and a 补休 day) a holiday named for its item, every day of a
    sentence ending in 上班 a make-up workday (调休上班). The year is the notice's own (现将2027年元旦…),
    else ``year``; a date may name another year (2018年12月30日). An item whose 共N天 disagrees with its
    range, or that has no dates, is refused naming its line; the other items are read."""
    text = unicodedata.normalize("NFKC", text)  # full-width digits and brackets, as some copies have them
    found = _NOTICE_YEAR.search(text)
    the_year = int(found.group(1)) if found else year
    entries: list[CalendarEntry] = []
    errors: list[CalendarRowError] = []
    if the_year is None:
        return entries, [CalendarRowError(1, "notice_year", text.strip()[:20])]
    seen: dict[date, int] = {}

    def day_of(match: re.Match[str], p: str, month: int | None = None) -> date:
        m = match.group(f"{p}m")
        y = match.group(f"{p}y")
        return date(int(y) if y else the_year, int(m) if m else (month or 1), int(match.group(f"{p}d")))

    def add(number: int, day: date, workday: bool, name: str) -> None:
        if day in seen:
            errors.append(CalendarRowError(number, "repeated", day.isoformat(), seen[day]))
            return
        seen[day] = number
        entries.append(CalendarEntry(day=day, is_workday=workday, name=name))

    for number, line in enumerate(text_lines(text), start=1):
        item = _NOTICE_ITEM.match(line.replace("\u3000", " "))
        if item is None or not _NOTICE_DATE.search(item.group("body")):
            if item is not None and ("放假" in item.group("body") or "上班" in item.group("body")):
                errors.append(CalendarRowError(number, "notice_dates", item.group(0).strip()[:40]))
            continue
        name = re.sub(r"\s+", "", item.group("name"))
        days: list[tuple[date, bool]] = []
        try:
            for sentence in re.split(r"[。；;]", item.group("body")):
                for off in _NOTICE_OFF.finditer(sentence):
                    first = day_of(off, "a")
                    last = day_of(off, "b", first.month) if off.group("bd") else first
                    if last < first:  # 12月31日至1月2日 without a year on the second date
                        last = last.replace(year=last.year + 1)
                    days += [(first + timedelta(days=n), False) for n in range((last - first).days + 1)]
                    total = _NOTICE_TOTAL.search(sentence[off.end() :])
                    if total and int(total.group(1)) != (last - first).days + 1 and "补休" not in off.group(0):
                        raise _Mismatch
                if "上班" in sentence and not _NOTICE_OFF.search(sentence):
                    month = None
                    for worked in _NOTICE_DATE.finditer(sentence):
                        day = day_of(worked, "c", month)
                        month = day.month
                        days.append((day, True))
        except _Mismatch:
            errors.append(CalendarRowError(number, "notice_total", name))
            continue
        except ValueError:  # a date that does not exist (2月30日)
            errors.append(CalendarRowError(number, "notice_date", name))
            continue
        for day, workday in days:
            add(number, day, workday, "调休上班" if workday else name)
    return entries, errors


# Why a text with no day in it (blank, a header only) is refused, not "0 days entered" (recompute.import_calendar_text).
NO_DAYS = "no calendar days in it: neither date,kind,name rows nor the items of a notice"


def parse_calendar_text(text: str, *, year: int | None = None) -> tuple[list[CalendarEntry], list[CalendarRowError]]:
    """What an administrator pastes or imports: the State Council's notice as published (:func:`parse_notice`), or
    ``date,kind,name`` rows (:func:`parse_calendar_rows`). Neither entries nor errors: the text holds no day
    (:data:`NO_DAYS`)."""
    if looks_like_notice(text):
        return parse_notice(text, year=year)
    return parse_calendar_rows(text)


def delete_day(session: Session, *, day: date) -> bool:
    """Remove the override of ``day``; returns whether there was one."""
    row = session.get(CalendarDay, day)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def list_days(session: Session, *, year: int | None = None) -> list[CalendarDay]:
    """Override days in date order, optionally of one year."""
    return list(session.scalars(days_query(year=year)))


def days_query(*, year: int | None = None) -> Select[CalendarDay]:
    """The query of :func:`list_days` (by day, the key), for a caller that pages it."""
    query = select(CalendarDay).order_by(CalendarDay.day)
    if year is not None:
        query = query.where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day < date(year + 1, 1, 1))
    return query
