"""Time-limit rules and deadline arithmetic (pure), plus one in-memory SQLite test of the DB helpers."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from cityhub import models  # noqa: F401  (registers every table on Base.metadata)
from cityhub.config import get_settings
from cityhub.db import Base, make_engine
from cityhub.errors import NotFound, ValidationFailed
from cityhub.workorders import calendar as calmod
from cityhub.workorders import sla
from cityhub.workorders.calendar import WorkCalendar, parse_working_hours
from cityhub.workorders.models import CalendarDay, Category, SlaStatus
from cityhub.workorders.sla import Deadlines, RuleSpec, SlaTerms

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(SH, parse_working_hours("09:00-12:00,13:30-18:00"))
DAY = CAL.day_seconds
HOUR = 3600.0


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


# --- rule resolution ------------------------------------------------------------------------------------

RULES = [
    RuleSpec(None, None, 2, 5, None),
    RuleSpec(None, "urgent", 1, 2, None),
    RuleSpec(10, None, 4, 10, 0.5),  # root category, any urgency
    RuleSpec(11, "critical", 0.25, 0.5, None),  # child category, critical only
    {"category_id": 12, "urgency": "normal", "accept_hours": 3, "finish_days": 7, "warning_share": 0.9},
    SimpleNamespace(category_id=12, urgency=None, accept_hours=5, finish_days=8, warning_share=None),
]


def resolve(chain: list[int | None], urgency: str) -> SlaTerms:
    return sla.resolve_terms(RULES, category_chain=chain, urgency=urgency, default_warning_share=0.8)


def test_default_level_applies_without_category() -> None:
    assert resolve([None], "normal") == SlaTerms(2, 5, 0.8)
    assert resolve([], "urgent") == SlaTerms(1, 2, 0.8)


def test_exact_urgency_beats_any_at_the_same_level() -> None:
    assert resolve([12, 10], "normal") == SlaTerms(3, 7, 0.9)  # dict rule
    assert resolve([12, 10], "urgent") == SlaTerms(5, 8, 0.8)  # object rule, default share


def test_nearest_category_wins_then_parents() -> None:
    assert resolve([11, 10], "critical") == SlaTerms(0.25, 0.5, 0.8)
    assert resolve([11, 10], "normal") == SlaTerms(4, 10, 0.5)  # falls through to the root's rule
    # A category's any-urgency rule is more specific than the default level's per-urgency rule.
    assert resolve([10], "urgent") == SlaTerms(4, 10, 0.5)
    assert resolve([99], "urgent") == SlaTerms(1, 2, 0.8)


def test_builtin_defaults_when_no_rule_matches() -> None:
    def empty(urgency: str) -> SlaTerms:
        return sla.resolve_terms([], category_chain=[3], urgency=urgency, default_warning_share=0.7)

    assert empty("normal") == SlaTerms(2, 5, 0.7)
    assert empty("urgent") == SlaTerms(1, 2, 0.7)
    assert empty("critical") == SlaTerms(0.5, 1, 0.7, round_the_clock=True)  # an emergency waits for no workday


# --- deadlines ------------------------------------------------------------------------------------------


def test_compute_deadlines_across_national_day() -> None:
    d = sla.compute_deadlines(CAL, sh(2025, 9, 30, 10), SlaTerms(2, 5, 0.8))
    assert d.accept_due_at == sh(2025, 9, 30, 12)
    # Working days after 30 Sept: 9, 10, 11 (make-up Saturday), 13, 14 October.
    assert d.warn_at == sh(2025, 10, 13, 10)
    assert d.due_at == sh(2025, 10, 14, 10)
    assert all(x is not None and x.tzinfo is UTC for x in (d.accept_due_at, d.warn_at, d.due_at))


def test_compute_deadlines_across_spring_festival_2026() -> None:
    d = sla.compute_deadlines(CAL, sh(2026, 2, 13, 16), SlaTerms(3, 2, 0.5))
    assert d.accept_due_at == sh(2026, 2, 14, 10)  # make-up Saturday
    assert d.warn_at == sh(2026, 2, 14, 16)
    assert d.due_at == sh(2026, 2, 24, 16)


def test_start_at_night_counts_from_next_morning() -> None:
    d = sla.compute_deadlines(CAL, sh(2025, 9, 29, 23, 30), SlaTerms(0.5, 1, 0.8))
    assert d.accept_due_at == sh(2025, 9, 30, 9, 30)
    assert d.due_at == sh(2025, 9, 30, 18)
    assert CAL.work_seconds_between(sh(2025, 9, 29, 23, 30), d.warn_at) == pytest.approx(0.8 * DAY)  # type: ignore[arg-type]


def test_fractional_days_land_after_the_lunch_break() -> None:
    d = sla.compute_deadlines(CAL, sh(2025, 9, 30, 9), SlaTerms(1, 0.5, 0.8))
    assert d.due_at == sh(2025, 9, 30, 14, 15)  # 3 h 45 min of working time


def test_deadlines_beyond_the_builtin_calendar(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(calmod, "_warned_years", set())
    caplog.set_level(logging.WARNING, logger=calmod.__name__)
    cal = WorkCalendar(SH, CAL.working_hours, {date(2031, 1, 1): False})
    d = sla.compute_deadlines(cal, sh(2030, 12, 31, 10), SlaTerms(2, 2, 0.8))
    assert d.due_at == sh(2031, 1, 3, 10)  # 1 January is a holiday only through the override
    assert {r.getMessage().split()[1] for r in caplog.records} == {"2030", "2031"}


# --- pause / resume -------------------------------------------------------------------------------------


def test_pause_and_resume_across_national_day() -> None:
    start = sh(2025, 9, 25, 10)
    d = sla.compute_deadlines(CAL, start, SlaTerms(2, 5, 0.8))
    paused_at = sh(2025, 9, 29, 15)  # Monday; 30 Sept and the holiday follow
    remaining = sla.pause(CAL, paused_at, d)
    assert remaining[sla.ACCEPT_KEY] == 0  # accept deadline already passed
    assert remaining[sla.DUE_KEY] == 5 * DAY - CAL.work_seconds_between(start, paused_at)

    resumed_at = sh(2025, 10, 5, 11)  # still the holiday: the clock restarts on 9 Oct at 09:00
    r = sla.resume(CAL, resumed_at, remaining)
    assert r.accept_due_at == resumed_at  # still overdue
    assert r.due_at == CAL.add_work_seconds(sh(2025, 10, 9, 9), remaining[sla.DUE_KEY])
    used_before = CAL.work_seconds_between(start, paused_at)
    used_after = CAL.work_seconds_between(resumed_at, r.due_at)  # type: ignore[arg-type]
    assert used_before + used_after == 5 * DAY
    # The pause shifted the due time by exactly the working time it covered.
    assert CAL.work_seconds_between(d.due_at, r.due_at) == CAL.work_seconds_between(paused_at, resumed_at)  # type: ignore[arg-type]
    assert sla.status_at(resumed_at, warn_at=r.warn_at, due_at=r.due_at, paused=False) == SlaStatus.OK


def test_overdue_before_pause_stays_overdue() -> None:
    d = sla.compute_deadlines(CAL, sh(2025, 9, 1, 10), SlaTerms(2, 1, 0.8))
    remaining = sla.pause(CAL, sh(2025, 9, 5, 10), d)
    assert remaining == {sla.ACCEPT_KEY: 0, sla.WARN_KEY: 0, sla.DUE_KEY: 0}
    night = sh(2025, 9, 8, 22)
    r = sla.resume(CAL, night, remaining)
    assert sla.status_at(night, warn_at=r.warn_at, due_at=r.due_at, paused=False) == SlaStatus.OVERDUE


def test_pause_skips_clocks_that_do_not_run() -> None:
    d = Deadlines(accept_due_at=None, warn_at=sh(2025, 9, 2, 10), due_at=sh(2025, 9, 3, 10))
    remaining = sla.pause(CAL, sh(2025, 9, 2, 9), d)
    assert remaining == {sla.WARN_KEY: int(HOUR), sla.DUE_KEY: int(HOUR + DAY)}
    r = sla.resume(CAL, sh(2025, 9, 4, 9), remaining)
    assert r.accept_due_at is None
    assert r.warn_at == sh(2025, 9, 4, 10)
    assert r.due_at == sh(2025, 9, 5, 10)


# --- extension ------------------------------------------------------------------------------------------


def test_extend_keeps_the_warning_share_of_the_new_total() -> None:
    start = sh(2025, 9, 24, 10)
    d = sla.compute_deadlines(CAL, start, SlaTerms(2, 5, 0.8))
    e = sla.extend(CAL, d, 3, warning_share=0.8)
    assert e.accept_due_at == d.accept_due_at
    assert CAL.work_seconds_between(d.due_at, e.due_at) == 3 * DAY  # type: ignore[arg-type]
    # Due 30 Sept (after the make-up Sunday 28th); +3 days skip the holiday: 9, 10, 11 (make-up Saturday).
    assert d.due_at == sh(2025, 9, 30, 10)
    assert e.due_at == sh(2025, 10, 11, 10)
    total = CAL.work_seconds_between(start, e.due_at)  # type: ignore[arg-type]
    assert CAL.work_seconds_between(start, e.warn_at) / total == pytest.approx(0.8)  # type: ignore[arg-type]


def test_extend_without_share_keeps_the_warning_lead_time() -> None:
    d = sla.compute_deadlines(CAL, sh(2025, 9, 1, 10), SlaTerms(2, 5, 0.8))
    e = sla.extend(CAL, d, 2)
    lead_before = CAL.work_seconds_between(d.warn_at, d.due_at)  # type: ignore[arg-type]
    assert CAL.work_seconds_between(e.warn_at, e.due_at) == lead_before  # type: ignore[arg-type]


def test_extend_validates() -> None:
    d = sla.compute_deadlines(CAL, sh(2025, 9, 1, 10), SlaTerms(2, 5, 0.8))
    with pytest.raises(ValidationFailed):
        sla.extend(CAL, d, 0)
    with pytest.raises(ValidationFailed):
        sla.extend(CAL, Deadlines(None, None, None), 1)


def test_extend_while_paused() -> None:
    remaining = {sla.ACCEPT_KEY: 0, sla.WARN_KEY: 1000, sla.DUE_KEY: 5000}
    out = sla.extend_remaining(CAL, remaining, 2, warning_share=0.5)
    assert out == {sla.ACCEPT_KEY: 0, sla.WARN_KEY: 1000 + int(DAY), sla.DUE_KEY: 5000 + int(2 * DAY)}
    assert remaining[sla.DUE_KEY] == 5000


# --- urgency raised (升级) -------------------------------------------------------------------------------

URGENT = SlaTerms(1, 2, 0.8)


def test_tighten_caps_each_deadline_at_the_new_terms_from_now() -> None:
    start = sh(2025, 9, 1, 10)
    d = sla.compute_deadlines(CAL, start, SlaTerms(2, 5, 0.8))  # due Monday 8 Sept, 10:00
    now = sh(2025, 9, 2, 10)  # one working day later: four left, two allowed now
    t = sla.tighten(CAL, now, d, URGENT, accepting=True)
    assert t.due_at == sh(2025, 9, 4, 10) and CAL.work_seconds_between(now, t.due_at) == 2 * DAY  # type: ignore[arg-type]
    assert CAL.work_seconds_between(now, t.warn_at) == pytest.approx(0.8 * 2 * DAY)  # type: ignore[arg-type]
    assert t.accept_due_at == d.accept_due_at  # two hours from the start came first: kept
    late = sh(2025, 9, 5, 10)  # one working day left: tighter than the new terms, nothing moves later
    assert sla.tighten(CAL, late, d, URGENT, accepting=True) == d


def test_tighten_moves_the_accept_deadline_only_while_waiting_to_be_accepted() -> None:
    d = sla.compute_deadlines(CAL, sh(2025, 9, 1, 10), SlaTerms(8, 5, 0.8))  # accept by Tuesday 10:00
    now = sh(2025, 9, 1, 11)
    assert sla.tighten(CAL, now, d, URGENT, accepting=True).accept_due_at == sh(2025, 9, 1, 12)
    assert sla.tighten(CAL, now, d, URGENT, accepting=False).accept_due_at == d.accept_due_at
    assert sla.tighten(CAL, now, Deadlines(None, None, None), URGENT, accepting=True) == Deadlines(None, None, None)


def test_tighten_while_paused_caps_the_time_left() -> None:
    remaining = {sla.ACCEPT_KEY: 0, sla.WARN_KEY: int(3 * DAY), sla.DUE_KEY: int(DAY)}
    out = sla.tighten_remaining(CAL, remaining, URGENT)
    assert out == {sla.ACCEPT_KEY: 0, sla.WARN_KEY: math.ceil(0.8 * 2 * DAY), sla.DUE_KEY: int(DAY)}
    assert sla.tighten_remaining(CAL, {}, URGENT) == {}


# --- status ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_h", "paused", "expected"),
    [
        (-1, False, SlaStatus.OK),
        (0, False, SlaStatus.WARNING),
        (5, False, SlaStatus.WARNING),
        (10, False, SlaStatus.OVERDUE),
        (30, False, SlaStatus.OVERDUE),
        (30, True, SlaStatus.NONE),
    ],
)
def test_status_at(offset_h: int, paused: bool, expected: SlaStatus) -> None:
    warn_at = datetime(2025, 9, 1, 2, tzinfo=UTC)
    due_at = warn_at + timedelta(hours=10)
    now = warn_at + timedelta(hours=offset_h)
    assert sla.status_at(now, warn_at=warn_at, due_at=due_at, paused=paused) == expected


def test_status_without_a_clock() -> None:
    now = datetime(2025, 9, 1, tzinfo=UTC)
    assert sla.status_at(now, warn_at=None, due_at=None, paused=False) == SlaStatus.NONE
    assert sla.status_at(now, warn_at=None, due_at=now, paused=False) == SlaStatus.OVERDUE


# --- database helpers (one small in-memory SQLite) -------------------------------------------------------


@pytest.fixture
def session() -> Iterator[Session]:
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_db_helpers(session: Session) -> None:
    # Calendar overrides.
    calmod.set_day(session, day=date(2025, 9, 16), is_workday=False, name="typhoon")
    calmod.set_day(session, day=date(2026, 1, 10), is_workday=True)
    calmod.set_day(session, day=date(2025, 9, 16), is_workday=False, name="台风停工")
    assert [d.day for d in calmod.list_days(session)] == [date(2025, 9, 16), date(2026, 1, 10)]
    assert [d.name for d in calmod.list_days(session, year=2025)] == ["台风停工"]
    cal = calmod.load_calendar(session)
    assert not cal.is_workday(date(2025, 9, 16))
    assert cal.is_workday(date(2026, 1, 10))
    assert calmod.delete_day(session, day=date(2026, 1, 10))
    assert not calmod.delete_day(session, day=date(2026, 1, 10))
    assert session.get(CalendarDay, date(2026, 1, 10)) is None
    assert calmod.load_calendar(session).is_workday(date(2026, 1, 10)) is False  # a Saturday again

    # Rules: seeding is idempotent and gives the built-in defaults.
    assert sla.seed_default_rules(session) == 4
    assert sla.seed_default_rules(session) == 0
    share = get_settings().sla_warning_share
    assert sla.terms_for(session, category_id=None, urgency="critical") == SlaTerms(0.5, 1, share, round_the_clock=True)

    root = Category(code="01", name="城乡建设", level=1, path="城乡建设")
    session.add(root)
    session.flush()
    child = Category(code="0101", name="住房保障", level=2, parent_id=root.id, path="城乡建设/住房保障")
    session.add(child)
    session.flush()
    assert sla.category_chain(session, child.id) == [child.id, root.id]

    sla.set_rule(session, category_id=root.id, urgency=None, accept_hours=4, finish_days=10, warning_share=0.6)
    assert sla.terms_for(session, category_id=child.id, urgency="normal") == SlaTerms(4, 10, 0.6)
    sla.set_rule(session, category_id=child.id, urgency="urgent", accept_hours=1, finish_days=3)
    assert sla.terms_for(session, category_id=child.id, urgency="urgent") == SlaTerms(1, 3, share)
    sla.set_rule(session, category_id=child.id, urgency="urgent", accept_hours=2, finish_days=4)  # replaces
    assert sla.terms_for(session, category_id=child.id, urgency="urgent") == SlaTerms(2, 4, share)
    assert len(sla.load_rules(session)) == 6

    for bad in (
        {"accept_hours": 0, "finish_days": 1},
        {"accept_hours": 1, "finish_days": -2},
        {"accept_hours": 1, "finish_days": 1, "warning_share": 1.0},
        {"accept_hours": 1, "finish_days": 1, "warning_share": 0},
        {"accept_hours": 1, "finish_days": float("nan")},
    ):
        with pytest.raises(ValidationFailed):
            sla.set_rule(session, category_id=None, urgency=None, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        sla.set_rule(session, category_id=None, urgency="whenever", accept_hours=1, finish_days=1)
    with pytest.raises(NotFound):
        sla.set_rule(session, category_id=9999, urgency=None, accept_hours=1, finish_days=1)
