"""The working calendar: workdays, working-time arithmetic, the lazily grown table and its fallbacks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.workorders import calendar as calmod
from cityhub.workorders.calendar import WorkCalendar, parse_working_hours
from holiday_notices import NOTICES

SH = ZoneInfo("Asia/Shanghai")
HOURS = parse_working_hours("09:00-12:00,13:30-18:00")
DAY = 7.5 * 3600
HOUR = 3600.0


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar(SH, HOURS)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees the "warn once per process" memory empty."""
    monkeypatch.setattr(calmod, "_warned_years", set())
    yield


# --- working hours --------------------------------------------------------------------------------------


def test_parse_working_hours_default() -> None:
    parsed = parse_working_hours(" 09:00-12:00 , 13:30-18:00")
    assert parsed == [(time(9), time(12)), (time(13, 30), time(18))]


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("09:00-12:00,13:30", "13:30"),
        ("09:00-12:00,25:00-26:00", "25:00-26:00"),
        ("12:00-09:00", "12:00-09:00"),
        ("09:00-12:00,11:00-18:00", "11:00-18:00"),
        ("09:00-12:00,nonsense", "nonsense"),
    ],
)
def test_parse_working_hours_names_the_bad_part(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        parse_working_hours(text)


def test_parse_working_hours_rejects_empty() -> None:
    with pytest.raises(ValueError):
        parse_working_hours(" ")


def test_calendar_rejects_bad_intervals() -> None:
    with pytest.raises(ValueError):
        WorkCalendar(SH, [])
    with pytest.raises(ValueError):
        WorkCalendar(SH, [(time(13), time(12))])


def test_day_seconds(cal: WorkCalendar) -> None:
    assert cal.day_seconds == DAY
    assert WorkCalendar(SH, parse_working_hours("08:30-17:30")).day_seconds == 9 * HOUR


# --- workdays -------------------------------------------------------------------------------------------


def test_national_day_2025_and_make_up_saturdays(cal: WorkCalendar) -> None:
    for d in range(1, 9):
        assert not cal.is_workday(date(2025, 10, d)), d
    assert cal.is_workday(date(2025, 9, 28))  # Sunday, make-up workday
    assert cal.is_workday(date(2025, 10, 11))  # Saturday, make-up workday
    assert cal.is_workday(date(2025, 10, 9))
    assert not cal.is_workday(date(2025, 10, 12))


def test_spring_festival_2026(cal: WorkCalendar) -> None:
    assert all(not cal.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert cal.is_workday(date(2026, 2, 14))  # Saturday, make-up workday
    assert cal.is_workday(date(2026, 2, 28))  # Saturday, make-up workday


def test_overrides_take_precedence() -> None:
    cal = WorkCalendar(SH, HOURS, {date(2025, 10, 1): True, date(2025, 10, 9): False, date(2031, 3, 3): False})
    assert cal.is_workday(date(2025, 10, 1))
    assert not cal.is_workday(date(2025, 10, 9))
    assert not cal.is_workday(date(2031, 3, 3))  # a Monday beyond the built-in range


def test_overrides_are_read_only(cal: WorkCalendar) -> None:
    with pytest.raises(TypeError):
        cal.overrides[date(2025, 1, 2)] = False  # type: ignore[index]


def test_beyond_builtin_range_skips_the_statutory_holidays_and_warns_once(
    cal: WorkCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=calmod.__name__)
    assert cal.is_workday(date(2027, 1, 4))  # Monday
    assert not cal.is_workday(date(2027, 1, 9))  # Saturday
    # The law's holidays, computed: 国庆 on a Wednesday, 元旦 on a Friday, 春节's weekend days made up after it.
    assert not cal.is_workday(date(2031, 10, 1)) and cal.is_workday(date(2031, 10, 8))
    assert calmod.builtin_day(date(2031, 10, 2)) == (False, "国庆节", "statutory")
    assert calmod.builtin_day(date(2027, 2, 9)) == (False, "春节（补假）", "statutory")
    assert calmod.builtin_day(date(2027, 2, 11)) == (True, None, "weekday")
    assert calmod.builtin_day(date(2026, 10, 1)) == (False, "国庆节", "official")  # built in: the arrangement
    # Arithmetic over those years works too, and builds whole years of the table: 2032-01-01 is no working day.
    end = cal.add_work_days(sh(2031, 12, 30, 10), 3)
    assert end.astimezone(SH) == sh(2032, 1, 5, 10)
    assert cal.work_seconds_between(sh(2027, 1, 1), sh(2027, 1, 8)) == 4 * DAY
    other = WorkCalendar(SH, HOURS)
    other.add_work_days(sh(2027, 6, 1, 9), 1)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # The table is contiguous, so the years between also entered it: each year is reported exactly once.
    for year in range(2027, 2033):
        assert sum(f"year {year} " in m for m in warned) == 1, (year, warned)
    assert len(warned) == 6


def test_an_administrators_entry_overrides_a_statutory_holiday() -> None:
    worked = WorkCalendar(SH, HOURS, {date(2027, 2, 10): True})  # 春节's day in lieu worked by an arrangement
    assert worked.is_workday(date(2027, 2, 10)) and not worked.is_workday(date(2027, 2, 9))


def test_a_year_the_law_cannot_be_computed_for_is_monday_to_friday() -> None:
    year = next(y for y in range(2100, 2300) if not calmod.statutory_holidays(y))
    assert calmod.statutory_holidays(year - 1)
    new_year = date(year, 1, 1)
    assert calmod.builtin_day(new_year) == (new_year.weekday() < 5, None, "weekday")


def test_in_range_years_do_not_warn(cal: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=calmod.__name__)
    cal.add_work_days(sh(2025, 3, 3, 10), 20)
    assert not caplog.records


# --- working-time arithmetic ----------------------------------------------------------------------------


def test_within_morning(cal: WorkCalendar) -> None:
    end = cal.add_work_seconds(sh(2025, 9, 30, 10), HOUR)
    assert end == sh(2025, 9, 30, 11)
    assert end.tzinfo is UTC


def test_across_lunch_break(cal: WorkCalendar) -> None:
    assert cal.add_work_seconds(sh(2025, 9, 30, 11), 2 * HOUR) == sh(2025, 9, 30, 14, 30)


def test_ending_exactly_at_an_interval_end_stays_there(cal: WorkCalendar) -> None:
    assert cal.add_work_seconds(sh(2025, 9, 30, 11), HOUR) == sh(2025, 9, 30, 12)
    assert cal.add_work_seconds(sh(2025, 9, 30, 9), DAY) == sh(2025, 9, 30, 18)


def test_across_a_weekend(cal: WorkCalendar) -> None:
    # Friday 2025-09-12 17:00 + 2 h → Monday 10:00.
    assert cal.add_work_seconds(sh(2025, 9, 12, 17), 2 * HOUR) == sh(2025, 9, 15, 10)


def test_across_national_day(cal: WorkCalendar) -> None:
    start = sh(2025, 9, 30, 17)
    assert cal.add_work_days(start, 1) == sh(2025, 10, 9, 17)
    # 9, 10, 11 (make-up Saturday), 13, 14 October.
    assert cal.add_work_days(start, 5) == sh(2025, 10, 14, 17)
    assert cal.work_seconds_between(start, sh(2025, 10, 9, 9)) == HOUR


def test_make_up_sunday_before_national_day(cal: WorkCalendar) -> None:
    # Friday 26 Sept 17:00 + 1 day: Saturday 27 is off, Sunday 28 is a make-up workday.
    assert cal.add_work_days(sh(2025, 9, 26, 17), 1) == sh(2025, 9, 28, 17)


def test_across_spring_festival_2026(cal: WorkCalendar) -> None:
    start = sh(2026, 2, 13, 10)
    assert cal.add_work_days(start, 1) == sh(2026, 2, 14, 10)
    assert cal.add_work_days(start, 2) == sh(2026, 2, 24, 10)


def test_start_at_night_or_on_a_holiday(cal: WorkCalendar) -> None:
    assert cal.add_work_seconds(sh(2025, 9, 29, 22), HOUR) == sh(2025, 9, 30, 10)
    assert cal.add_work_seconds(sh(2025, 9, 30, 6), HOUR) == sh(2025, 9, 30, 10)
    assert cal.add_work_seconds(sh(2025, 10, 3, 10), HOUR) == sh(2025, 10, 9, 10)
    assert cal.add_work_seconds(sh(2025, 9, 30, 12, 30), HOUR) == sh(2025, 9, 30, 14, 30)


def test_zero_seconds(cal: WorkCalendar) -> None:
    inside = sh(2025, 9, 30, 10, 15, 7)
    assert cal.add_work_seconds(inside, 0) == inside
    assert cal.add_work_seconds(sh(2025, 9, 30, 12), 0) == sh(2025, 9, 30, 13, 30)
    assert cal.add_work_seconds(sh(2025, 9, 30, 19), 0) == sh(2025, 10, 9, 9)
    assert cal.next_work_start(sh(2025, 10, 5, 10)) == sh(2025, 10, 9, 9)
    assert cal.is_work_time(inside)
    assert not cal.is_work_time(sh(2025, 9, 30, 12))


def test_overrides_change_the_arithmetic() -> None:
    holiday = WorkCalendar(SH, HOURS, {date(2025, 9, 16): False})  # a Tuesday
    assert holiday.add_work_days(sh(2025, 9, 15, 10), 1) == sh(2025, 9, 17, 10)
    make_up = WorkCalendar(SH, HOURS, {date(2025, 9, 13): True})  # a Saturday
    assert make_up.add_work_days(sh(2025, 9, 12, 10), 1) == sh(2025, 9, 13, 10)


def test_work_seconds_between(cal: WorkCalendar) -> None:
    assert cal.work_seconds_between(sh(2025, 9, 30, 8), sh(2025, 9, 30, 20)) == DAY
    assert cal.work_seconds_between(sh(2025, 9, 30, 11), sh(2025, 9, 30, 14)) == 1.5 * HOUR
    assert cal.work_seconds_between(sh(2025, 9, 30, 14), sh(2025, 9, 30, 11)) == 0
    assert cal.work_seconds_between(sh(2025, 9, 30, 14), sh(2025, 9, 30, 14)) == 0


def test_long_durations_and_backward_growth(cal: WorkCalendar) -> None:
    cal.add_work_seconds(sh(2025, 6, 1), 1)
    # Asking for an earlier year rebuilds the table from that year; results stay consistent.
    assert cal.work_seconds_between(sh(2024, 12, 30), sh(2025, 1, 3)) == 3 * DAY  # 30, 31 Dec, 2 Jan
    far = cal.add_work_days(sh(2024, 1, 2, 9), 2000)
    assert cal.work_seconds_between(sh(2024, 1, 2, 9), far) == pytest.approx(2000 * DAY, abs=1e-6)


def test_rejects_naive_and_negative(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError):
        cal.add_work_seconds(datetime(2025, 9, 30, 10), HOUR)
    with pytest.raises(ValueError):
        cal.add_work_seconds(sh(2025, 9, 30, 10), -1)
    with pytest.raises(ValueError):
        cal.work_seconds_between(datetime(2025, 9, 30, 10), sh(2025, 9, 30, 11))


def test_daylight_saving_zone_is_counted_in_real_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Sunday 2025-03-30: 02:00 jumps to 03:00, so 01:00-04:00 holds two real hours; 26 Oct holds four.
    cal = WorkCalendar(
        berlin, [(time(1), time(4)), (time(9), time(10))], {date(2025, 3, 30): True, date(2025, 10, 26): True}
    )
    assert cal.work_seconds_between(datetime(2025, 3, 30, tzinfo=berlin), datetime(2025, 3, 31, tzinfo=berlin)) == (
        3 * HOUR
    )
    assert cal.work_seconds_between(datetime(2025, 10, 26, tzinfo=berlin), datetime(2025, 10, 27, tzinfo=berlin)) == (
        5 * HOUR
    )
    end = cal.add_work_seconds(datetime(2025, 3, 30, 1, tzinfo=berlin), 2 * HOUR)
    assert end.astimezone(berlin) == datetime(2025, 3, 30, 4, tzinfo=berlin)


def test_shared_calendar_reuses_equal_calendars() -> None:
    a = calmod.shared_calendar(SH, HOURS, {date(2025, 1, 2): False})
    assert calmod.shared_calendar(SH, list(HOURS), {date(2025, 1, 2): False}) is a
    assert calmod.shared_calendar(SH, HOURS, {date(2025, 1, 3): False}) is not a


# --- properties -----------------------------------------------------------------------------------------

PROPERTY_CAL = WorkCalendar(
    SH,
    HOURS,
    {date(2025, 9, 16): False, date(2025, 9, 13): True, date(2027, 2, 8): False, date(2027, 2, 6): True},
)

_any_instant = st.datetimes(min_value=datetime(2024, 11, 1), max_value=datetime(2027, 3, 1), timezones=st.just(SH))
# Quarter-hour instants and durations hit interval boundaries exactly, where off-by-one errors live.
starts = st.one_of(
    _any_instant, _any_instant.map(lambda d: d.replace(minute=d.minute // 15 * 15, second=0, microsecond=0))
)
starts = starts.map(lambda d: d.replace(fold=0))
durations = st.one_of(
    st.integers(min_value=0, max_value=40 * int(DAY) * 1_000_000).map(lambda us: us / 1_000_000),
    st.integers(min_value=0, max_value=40 * int(DAY) // 900).map(lambda q: q * 900.0),
)


def _reference_intervals(cal: WorkCalendar, first: date) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals in UTC, day by day from ``first``: the slow obvious walk."""
    d = first
    while True:
        if cal.is_workday(d):
            for start, end in cal.working_hours:
                yield (
                    datetime.combine(d, start, tzinfo=cal.tz).astimezone(UTC),
                    datetime.combine(d, end, tzinfo=cal.tz).astimezone(UTC),
                )
        d += timedelta(days=1)


def reference_add(cal: WorkCalendar, start: datetime, seconds: float) -> datetime:
    left = timedelta(microseconds=round(seconds * 1_000_000))
    at = start.astimezone(UTC)
    for s, e in _reference_intervals(cal, start.astimezone(cal.tz).date() - timedelta(days=1)):
        if e <= at:
            continue
        begin = max(s, at)
        if not left:
            return begin
        if left <= e - begin:
            return begin + left
        left -= e - begin
    raise AssertionError("unreachable")


def reference_between(cal: WorkCalendar, a: datetime, b: datetime) -> float:
    total = timedelta()
    for s, e in _reference_intervals(cal, a.astimezone(cal.tz).date() - timedelta(days=1)):
        if s >= b:
            break
        overlap = min(e, b) - max(s, a)
        if overlap > timedelta():
            total += overlap
    return total.total_seconds()


@settings(max_examples=150, deadline=None)
@given(start=starts, seconds=durations, more=durations)
def test_add_then_measure_round_trips_and_is_monotone(start: datetime, seconds: float, more: float) -> None:
    end = PROPERTY_CAL.add_work_seconds(start, seconds)
    assert abs(PROPERTY_CAL.work_seconds_between(start, end) - seconds) <= 1e-6
    assert end >= start
    assert PROPERTY_CAL.add_work_seconds(start, seconds + more) >= end
    if seconds > 0:
        assert end > PROPERTY_CAL.add_work_seconds(start, 0)


@settings(max_examples=80, deadline=None)
@given(
    start=starts,
    seconds=st.integers(min_value=0, max_value=12 * int(DAY) // 900).map(lambda q: q * 900.0)
    | durations.filter(lambda s: s < 12 * DAY),
    gap=durations,
)
def test_bisect_matches_the_slow_walk(start: datetime, seconds: float, gap: float) -> None:
    assert PROPERTY_CAL.add_work_seconds(start, seconds) == reference_add(PROPERTY_CAL, start, seconds)
    other = start + timedelta(seconds=gap / 3)
    assert PROPERTY_CAL.work_seconds_between(start, other) == pytest.approx(
        reference_between(PROPERTY_CAL, start.astimezone(UTC), other.astimezone(UTC)), abs=1e-6
    )


# --- the State Council's notice ---------------------------------------------------------------------------------


@pytest.mark.parametrize("year", sorted(NOTICES))
def test_a_notice_as_published_gives_exactly_the_built_in_arrangement(year: int) -> None:
    entries, errors = calmod.parse_calendar_text(NOTICES[year])
    assert errors == []
    # Every day it names agrees with chinesecalendar, and it names every weekday off and every weekend worked.
    assert all(chinese_calendar.is_workday(e.day) == e.is_workday for e in entries)
    named = {e.day for e in entries}
    first, last = date(year, 1, 1), date(year, 12, 31)
    off = [d for d in chinese_calendar.get_holidays(first, last) if d.weekday() < 5]
    worked = [d for d in chinese_calendar.get_workdays(first, last) if d.weekday() >= 5]
    assert set(off) | set(worked) <= named
    assert {e.name for e in entries if e.is_workday} == {"调休上班"}


def test_a_notices_items_name_their_days_and_a_date_may_name_another_year() -> None:
    entries, _ = calmod.parse_notice(NOTICES[2019])
    by_day = {e.day: e for e in entries}
    assert by_day[date(2018, 12, 30)].name == "元旦" and by_day[date(2018, 12, 29)].is_workday
    assert by_day[date(2019, 10, 7)].name == "国庆节" and by_day[date(2019, 10, 12)].is_workday
    entries, _ = calmod.parse_notice(NOTICES[2017])
    assert {e.day: e.name for e in entries}[date(2017, 1, 2)] == "元旦"  # 补休, the older form


def test_a_notice_item_that_does_not_add_up_is_refused_and_the_others_are_read() -> None:
    text = NOTICES[2026].replace("放假调休，共9天", "放假调休，共8天").replace("6月19日", "6月31日")
    entries, errors = calmod.parse_calendar_text(text)
    assert [(e.row, e.problem, e.value) for e in errors] == [(5, "notice_total", "春节"), (8, "notice_date", "端午节")]
    assert "line 5 (春节)" in str(errors[0])
    assert {e.name for e in entries} == {"元旦", "清明节", "劳动节", "中秋节", "国庆节", "调休上班"}
    # No year in the text: the page's year, else refused.
    items = "\n".join(line for line in text.splitlines() if line.startswith(("一、", "三、")))
    assert calmod.parse_notice(items)[1][0].problem == "notice_year"
    assert {e.day.year for e in calmod.parse_notice(items, year=2031)[0]} == {2031}
    # Full-width digits, as some copies have them.
    wide = NOTICES[2026].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert calmod.parse_calendar_text(wide) == calmod.parse_calendar_text(NOTICES[2026])
    # Rows stay rows.
    assert calmod.parse_calendar_text("2027-02-16,holiday,春节")[0][0].day == date(2027, 2, 16)


def test_calendar_rows_take_the_kinds_as_a_calendar_writes_them() -> None:
    """放假/休 and 上班/班 (and the codes, in any case); a name holding a date does not make the rows a notice."""
    text = "日期,类型,名称\n2027-02-16,放假,春节\n2027-02-17,休,\n2027-02-20,上班,调休上班\n2027-02-21,班,\n"
    text += "2027-02-22,HOLIDAY,\n2027-10-01,放假,10月1日国庆节\n2027-02-23,调休,\n"
    entries, errors = calmod.parse_calendar_text(text)
    assert [(e.day.day, e.is_workday) for e in entries] == [
        (16, False),
        (17, False),
        (20, True),
        (21, True),
        (22, False),
        (1, False),
    ]
    assert [(e.row, e.problem, e.value) for e in errors] == [(8, "kind", "调休")]  # both a day off and a day worked
    assert calmod.calendar_kind(" 补班 ") is True and calmod.calendar_kind("workday") is True
    assert calmod.calendar_kind("rest") is None
