"""Running deadlines follow calendar and time-limit edits, on both backends (service, API and CLI).

The reference for every expectation is the clock computed from scratch with the edited data
(``sla.compute_deadlines`` under the new calendar or terms), so the tests check the recomputation against the
same arithmetic a clock started after the edit would get.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cityhub.config import get_settings
from cityhub.db import session_scope, utcnow
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import calendar as workcal
from cityhub.workorders import recompute, service, sla
from cityhub.workorders.cli import calendar_app, sla_app
from cityhub.workorders.models import Category, Order, OrderEvent, SlaStatus
from cityhub.workorders.scheduled import sla_sweep
from cityhub.workorders.schemas import OrderFilter

# Monday 2026-03-02 10:00 in Shanghai: a plain working week with no official holiday.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
WEDNESDAY = date(2026, 3, 4)
ADMIN = service.Actor(name="管理员", role="admin")
HANDLER = service.Actor(name="handler")


@pytest.fixture
def unit(db_session):
    dept = Unit(code="RC-D01", name="测试城管局", tier=UnitTier.DEPARTMENT)
    db_session.add(dept)
    db_session.flush()
    return dept


@pytest.fixture
def category(db_session):
    node = Category(code="RC01", name="市容环境", level=1, parent_id=None, path="市容环境")
    other = Category(code="RC02", name="交通运输", level=1, parent_id=None, path="交通运输")
    db_session.add_all([node, other])
    db_session.flush()
    return node, other


def _dispatched(db_session, unit, at=MONDAY, **extra):
    data = {"channel": "hotline", "content": "路灯不亮", "appeal_type": "complaint", "created_at": at, **extra}
    order = submit(db_session, data=data, actor=HANDLER).order
    return service.act(db_session, order_id=order.id, action="dispatch", params={"unit_id": unit.id}, now=at)


def _act(db_session, order, action, now, **params):
    return service.act(db_session, order_id=order.id, action=action, params=params, now=now, actor=HANDLER)


def _fresh(db_session, order):
    db_session.expire_all()
    return db_session.get(Order, order.id)


def _events(db_session, order, action=recompute.ACTION):
    query = select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.action == action)
    return list(db_session.scalars(query.order_by(OrderEvent.id)))


def _terms(db_session, order):
    return sla.terms_for(db_session, category_id=order.category_id, urgency=order.urgency.value)


def test_a_new_holiday_moves_running_deadlines_like_a_fresh_clock(db_session, unit):
    running = _dispatched(db_session, unit)  # normal: 5 working days, reaches into next week
    accepted = _dispatched(db_session, unit)
    _act(db_session, accepted, "accept", MONDAY + timedelta(hours=1))
    short = _dispatched(db_session, unit, urgency="critical")  # 1 working day: due Tuesday, before Wednesday
    before = (running.accept_due_at, running.warn_at, running.due_at, running.version)
    accept_before = accepted.accept_due_at
    short_due = short.due_at

    now = MONDAY + timedelta(hours=1, minutes=30)  # before every deadline, so the sweep marks nothing
    _, done = recompute.set_calendar_day(
        db_session, day=WEDNESDAY, is_workday=False, name="台风停工", actor=ADMIN, now=now
    )

    expected = sla.compute_deadlines(workcal.load_calendar(db_session), MONDAY, _terms(db_session, running))
    running, accepted, short = (_fresh(db_session, o) for o in (running, accepted, short))
    assert done.orders == 2
    assert (running.warn_at, running.due_at) == (expected.warn_at, expected.due_at)
    assert running.due_at == before[2] + timedelta(days=1)  # one working day later, same hour
    assert running.accept_due_at == before[0]  # Monday 12:00, before the holiday
    assert running.version == before[3] + 1
    assert accepted.due_at == expected.due_at and accepted.accept_due_at == accept_before
    assert short.due_at == short_due and _events(db_session, short) == []

    [event] = _events(db_session, running)
    assert event.reason == recompute.CALENDAR_REASON and event.actor_name == "管理员"
    assert event.from_state == event.to_state == "dispatched"
    assert event.payload["days"] == ["2026-03-04"] and event.payload["cause"] == "calendar"
    assert event.payload["from"] == {"warn_at": before[1].isoformat(), "due_at": before[2].isoformat()}
    assert event.payload["to"] == {"warn_at": running.warn_at.isoformat(), "due_at": running.due_at.isoformat()}

    # Removing the override puts the deadlines back where the official calendar has them.
    again = recompute.delete_calendar_day(db_session, day=WEDNESDAY, actor=ADMIN, now=now)
    assert again.orders == 2
    assert _fresh(db_session, running).due_at == before[2]


def test_opt_out_and_unaffected_clocks_keep_their_deadlines(db_session, unit):
    running = _dispatched(db_session, unit)
    paused = _dispatched(db_session, unit)
    _act(db_session, paused, "accept", MONDAY)
    _act(db_session, paused, "suspend", MONDAY + timedelta(hours=1), reason="等待市民补充材料")
    remaining = dict(paused.sla_remaining)
    closed = _dispatched(db_session, unit)
    _act(db_session, closed, "cancel", MONDAY + timedelta(hours=1), reason="重复")
    due = {o.id: o.due_at for o in (running, paused, closed)}

    _, done = recompute.set_calendar_day(db_session, day=WEDNESDAY, is_workday=False, actor=ADMIN, recompute=False)
    assert done.orders == 0 and _fresh(db_session, running).due_at == due[running.id]

    recompute.delete_calendar_day(db_session, day=WEDNESDAY, actor=ADMIN, recompute=False)
    # A later weekday that lies after every window, and a paused clock (its remaining time already follows).
    _, done = recompute.set_calendar_day(db_session, day=date(2026, 3, 20), is_workday=False, actor=ADMIN)
    assert done.orders == 0
    _, done = recompute.set_calendar_day(db_session, day=WEDNESDAY, is_workday=False, actor=ADMIN)
    assert done.orders == 1
    assert _fresh(db_session, paused).sla_remaining == remaining and _fresh(db_session, paused).due_at == due[paused.id]
    assert _fresh(db_session, closed).due_at == due[closed.id]
    # Renaming the holiday changes no working time, so nothing moves again.
    _, done = recompute.set_calendar_day(db_session, day=WEDNESDAY, is_workday=False, name="改名", actor=ADMIN)
    assert done.orders == 0


def test_rows_without_a_name_leave_the_names_of_days_entered_before(db_session):
    """Importing ``date,kind`` rows for days entered before with their names cleared the names: a row without a name
    cell now leaves a known day's name as it is; an empty name cell clears it; a new day has none."""
    named = "date,kind,name\n2027-10-01,放假,国庆节\n2027-10-02,放假,国庆节\n2027-10-09,上班,国庆节调休\n"
    recompute.import_calendar_text(db_session, text=named, actor=ADMIN, recompute=False)
    again = "date,kind\n2027-10-01,放假\n2027-10-02,放假,\n2027-10-09,上班\n2027-10-10,上班\n"
    recompute.import_calendar_text(db_session, text=again, actor=ADMIN, recompute=False)
    days = {d.day.isoformat(): (d.is_workday, d.name) for d in workcal.list_days(db_session)}
    assert days == {
        "2027-10-01": (False, "国庆节"),
        "2027-10-02": (False, None),
        "2027-10-09": (True, "国庆节调休"),
        "2027-10-10": (True, None),
    }


def test_a_resumed_clock_keeps_the_time_it_had_left(db_session, unit):
    order = _dispatched(db_session, unit)
    _act(db_session, order, "accept", MONDAY)
    _act(db_session, order, "suspend", MONDAY + timedelta(hours=1), reason="等待")
    resumed_at = MONDAY + timedelta(days=1, hours=1)  # Tuesday 11:00
    _act(db_session, order, "resume", resumed_at)
    due_before = order.due_at

    recompute.set_calendar_day(db_session, day=WEDNESDAY, is_workday=False, actor=ADMIN, now=resumed_at)

    cal = workcal.load_calendar(db_session)
    order = _fresh(db_session, order)
    # The working time from the resume to the deadline is the same before and after: it now skips Wednesday.
    assert cal.work_seconds_between(resumed_at, order.due_at) == pytest.approx(
        workcal.WorkCalendar(cal.tz, cal.working_hours).work_seconds_between(resumed_at, due_before)
    )
    assert order.due_at == due_before + timedelta(days=1)


def test_a_retroactive_holiday_lifts_an_overdue_mark_and_a_lost_holiday_makes_one(db_session, unit):
    order = _dispatched(db_session, unit, urgency="urgent")  # 2 working days: due Wednesday 10:00
    late = order.due_at + timedelta(hours=2)
    sla_sweep(db_session, now=late)
    order = _fresh(db_session, order)
    assert order.sla_status == SlaStatus.OVERDUE and order.overdue_at is not None and order.accept_overdue
    assert order.first_overdue_at == order.overdue_at

    # Tuesday was a typhoon day off after all: the deadline moves to Thursday, after "now".
    _, done = recompute.set_calendar_day(db_session, day=date(2026, 3, 3), is_workday=False, actor=ADMIN, now=late)
    order = _fresh(db_session, order)
    assert done.orders == 1 and done.lifted == 1
    assert order.due_at > late and order.sla_status in (SlaStatus.OK, SlaStatus.WARNING)
    assert order.overdue_at is None
    assert order.first_overdue_at is None  # the only limit it ran out of did not run out: 曾超期 no more
    assert order.accept_overdue is True  # the accept deadline (Monday 11:00) lies before the holiday
    [event] = _events(db_session, order)
    assert event.payload["from"]["sla_status"] == "overdue" and event.payload["to"]["sla_status"] == "ok"

    # Back to a workday: the deadline returns to Wednesday 10:00, in the past, and the sweep marks it again.
    done = recompute.delete_calendar_day(db_session, day=date(2026, 3, 3), actor=ADMIN, now=late)
    order = _fresh(db_session, order)
    assert order.sla_status == SlaStatus.OVERDUE and order.overdue_at == order.due_at == order.first_overdue_at
    assert done.sweep["overdue"] == 1
    assert [e.action for e in _events(db_session, order, "sla_overdue")] == ["sla_overdue", "sla_overdue"]


def test_a_lifted_overdue_mark_keeps_the_lateness_of_an_earlier_limit(db_session, unit):
    """Late at its first unit, transferred, late again, then a holiday moves the second limit ahead: the second mark
    is lifted, the order stays 曾超期 for the first limit's lateness."""
    order = _dispatched(db_session, unit, urgency="urgent")  # due Wednesday 10:00
    first_due = order.due_at
    sla_sweep(db_session, now=first_due + timedelta(hours=1))
    other = Unit(code="RC-D02", name="测试住建局", tier=UnitTier.DEPARTMENT)
    db_session.add(other)
    db_session.flush()
    order = _fresh(db_session, order)
    _act(db_session, order, "transfer", first_due + timedelta(hours=2), unit_id=other.id, reason="职责不符")
    order = _fresh(db_session, order)
    assert order.overdue_at is None and order.first_overdue_at == first_due  # a new limit; the lateness kept
    late = order.due_at + timedelta(hours=1)
    sla_sweep(db_session, now=late)
    order = _fresh(db_session, order)
    assert order.overdue_at == order.due_at and order.first_overdue_at == first_due
    holiday = (order.due_at + timedelta(hours=8)).date() - timedelta(days=1)  # the working day before it was due
    _, done = recompute.set_calendar_day(db_session, day=holiday, is_workday=False, actor=ADMIN, now=late)
    order = _fresh(db_session, order)
    assert done.lifted == 1 and order.overdue_at is None
    assert order.first_overdue_at == first_due
    listed, _, _ = service.search_orders(db_session, filters=OrderFilter(ever_overdue=True))
    assert [o.id for o in listed] == [order.id]


def test_a_rule_edit_moves_clocks_under_it_only(db_session, unit, category):
    mine, other = category
    sla.seed_default_rules(db_session)
    dispatched = _dispatched(db_session, unit, category_id=mine.id)
    working = _dispatched(db_session, unit, category_id=mine.id)
    _act(db_session, working, "accept", MONDAY + timedelta(minutes=30))
    paused = _dispatched(db_session, unit, category_id=mine.id)
    _act(db_session, paused, "accept", MONDAY)
    _act(db_session, paused, "suspend", MONDAY + timedelta(hours=1), reason="等待")
    elsewhere = _dispatched(db_session, unit, category_id=other.id)
    urgent = _dispatched(db_session, unit, category_id=mine.id, urgency="urgent")
    untouched = {o.id: (o.accept_due_at, o.due_at) for o in (elsewhere, urgent)}
    remaining = dict(paused.sla_remaining)
    old_terms = _terms(db_session, dispatched)

    now = MONDAY + timedelta(hours=1)
    spec = sla.RuleSpec(mine.id, "normal", accept_hours=4, finish_days=10)
    rule, done = recompute.set_sla_rule(db_session, spec=spec, actor=ADMIN, now=now)
    assert done.orders == 3

    cal = workcal.load_calendar(db_session)
    new_terms = _terms(db_session, dispatched)
    assert new_terms.finish_days == 10 and new_terms != old_terms
    expected = sla.compute_deadlines(cal, MONDAY, new_terms)
    dispatched, working, paused = (_fresh(db_session, o) for o in (dispatched, working, paused))
    assert (dispatched.accept_due_at, dispatched.warn_at, dispatched.due_at) == (
        expected.accept_due_at,
        expected.warn_at,
        expected.due_at,
    )
    assert working.due_at == expected.due_at and working.accept_due_at != expected.accept_due_at  # accepted already
    extra = 5 * cal.day_seconds
    assert paused.sla_remaining[sla.DUE_KEY] == remaining[sla.DUE_KEY] + extra
    assert paused.sla_remaining[sla.WARN_KEY] == remaining[sla.WARN_KEY] + old_terms.warning_share * extra
    assert paused.sla_remaining[sla.ACCEPT_KEY] == remaining[sla.ACCEPT_KEY]
    for order in (elsewhere, urgent):
        current = _fresh(db_session, order)
        assert (current.accept_due_at, current.due_at) == untouched[order.id]
        assert _events(db_session, order) == []
    [event] = _events(db_session, dispatched)
    assert event.reason == recompute.RULE_REASON and event.payload["rule"]["id"] == rule.id

    # Deleting the rule falls back to the default terms: the deadlines come back.
    done = recompute.delete_sla_rule(db_session, rule_id=rule.id, actor=ADMIN, now=now)
    assert done.orders == 3
    original = sla.compute_deadlines(cal, MONDAY, old_terms)
    assert _fresh(db_session, dispatched).due_at == original.due_at
    assert _fresh(db_session, paused).sla_remaining == remaining


def test_an_extension_survives_a_rule_edit(db_session, unit, category):
    mine, _ = category
    order = _dispatched(db_session, unit, category_id=mine.id)
    _act(db_session, order, "accept", MONDAY)
    _act(db_session, order, "request_extension", MONDAY + timedelta(hours=1), days=2, reason="协调")
    _act(db_session, order, "approve_extension", MONDAY + timedelta(hours=2))
    recompute.set_sla_rule(db_session, spec=sla.RuleSpec(mine.id, None, 2, 3), actor=ADMIN)
    cal = workcal.load_calendar(db_session)
    # 3 working days of the new rule plus the 2 approved: the same as the old 5, so the deadline stays put...
    assert _fresh(db_session, order).due_at == cal.add_work_days(MONDAY, 5 + 2 - 2)
    recompute.set_sla_rule(db_session, spec=sla.RuleSpec(mine.id, None, 2, 4), actor=ADMIN)
    # ...and one more day of limit is one more working day.
    assert _fresh(db_session, order).due_at == cal.add_work_days(MONDAY, 4 + 2)


def test_no_running_clock_under_a_rule_means_no_work(db_session, unit, category):
    mine, _ = category
    order = _dispatched(db_session, unit)  # no category: the default level decides
    _, done = recompute.set_sla_rule(db_session, spec=sla.RuleSpec(mine.id, None, 1, 1))
    assert done.orders == 0 and _events(db_session, order) == []


# --- API and CLI -------------------------------------------------------------------------------------------

API = "/api/v1"


def _seed_running_order() -> tuple[int, datetime, date]:
    """An order dispatched now (real time) and a workday inside its 5-day window to turn into a holiday."""
    with session_scope() as s:
        dept = Unit(code="RC-API", name="测试部门", tier=UnitTier.DEPARTMENT)
        s.add(dept)
        s.flush()
        order = _dispatched(s, dept, at=utcnow())
        cal = workcal.load_calendar(s)
        local = order.dispatched_at.astimezone(get_settings().tz).date()
        day = next(local + timedelta(days=n) for n in range(1, 10) if cal.is_workday(local + timedelta(days=n)))
        return order.id, order.due_at, day


def _due(order_id: int) -> datetime:
    with session_scope() as s:
        return s.get(Order, order_id).due_at


def test_api_edits_recompute_unless_told_not_to(admin_client):
    order_id, due, day = _seed_running_order()
    kept = admin_client.put(f"{API}/calendar/days/{day}", params={"recompute": "false"}, json={"is_workday": False})
    assert kept.status_code == 200, kept.text
    assert kept.headers["X-Cityhub-Recomputed"] == "0" and _due(order_id) == due
    assert admin_client.delete(f"{API}/calendar/days/{day}", params={"recompute": "false"}).status_code == 204

    moved = admin_client.put(f"{API}/calendar/days/{day}", json={"is_workday": False, "name": "台风"})
    assert moved.status_code == 200 and moved.headers["X-Cityhub-Recomputed"] == "1" and moved.json()["name"] == "台风"
    assert _due(order_id) > due
    with session_scope() as s:
        [event] = _events(s, s.get(Order, order_id))
        assert event.actor_name == "管理员" and event.actor_id is not None
    assert admin_client.delete(f"{API}/calendar/days/{day}").status_code == 204
    assert _due(order_id) == due

    rule = admin_client.put(f"{API}/sla/rules", json={"accept_hours": 2, "finish_days": 6})
    assert rule.status_code == 200 and rule.headers["X-Cityhub-Recomputed"] == "1"
    assert _due(order_id) > due
    assert admin_client.delete(f"{API}/sla/rules/{rule.json()['id']}", params={"recompute": "false"}).status_code == 204
    assert _due(order_id) > due  # kept: the opt-out moves nothing
    missing = admin_client.delete(f"{API}/sla/rules/{rule.json()['id']}")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_cli_edits_recompute_unless_told_not_to(app_db):
    order_id, due, day = _seed_running_order()
    runner = CliRunner()
    kept = runner.invoke(calendar_app, ["set", day.isoformat(), "holiday", "--no-recompute"])
    assert kept.exit_code == 0 and "running deadlines kept" in kept.output
    assert _due(order_id) == due
    removed = runner.invoke(calendar_app, ["delete", day.isoformat(), "--no-recompute"])
    assert removed.exit_code == 0, removed.output
    moved = runner.invoke(calendar_app, ["set", day.isoformat(), "holiday"])
    assert moved.exit_code == 0 and "1 running orders' deadlines moved" in moved.output
    assert _due(order_id) > due
    back = runner.invoke(calendar_app, ["delete", day.isoformat()])
    assert back.exit_code == 0 and _due(order_id) == due
    missing = runner.invoke(calendar_app, ["delete", day.isoformat()])
    assert missing.exit_code == 1 and f"no calendar entry on {day}" in missing.output
    rule = runner.invoke(sla_app, ["set", "--accept-hours", "2", "--finish-days", "6"])
    assert rule.exit_code == 0 and "1 running orders' deadlines moved" in rule.output
    with session_scope() as s:
        [event] = _events(s, s.get(Order, order_id), recompute.ACTION)[-1:]
        assert event.actor_name == "cli" and event.reason == recompute.RULE_REASON


def test_cli_calendar_set_without_a_name_keeps_the_days_name(app_db):
    """``cityhub calendar set DAY KIND`` without ``--name`` cleared the name of a day entered before (turning 国庆节
    into a nameless holiday); it keeps it now, as an import row without a name cell does; ``--name ""`` clears it."""
    runner = CliRunner()
    day = "2031-10-02"

    def name() -> str | None:
        with session_scope() as s:
            return {d.day.isoformat(): d.name for d in workcal.list_days(s)}[day]

    assert runner.invoke(calendar_app, ["set", day, "放假", "--name", " 国庆节 ", "--no-recompute"]).exit_code == 0
    assert name() == "国庆节"
    assert runner.invoke(calendar_app, ["set", day, "上班", "--no-recompute"]).exit_code == 0
    assert name() == "国庆节"
    assert runner.invoke(calendar_app, ["set", day, "放假", "--name", "", "--no-recompute"]).exit_code == 0
    assert name() is None


def test_cli_calendar_import_of_a_file_without_days_fails(app_db, tmp_path):
    runner = CliRunner()
    for name, text in (("empty.csv", ""), ("header.csv", "date,kind,name\n")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        refused = runner.invoke(calendar_app, ["import", str(path)])
        assert refused.exit_code == 1, refused.output
        assert refused.output.strip().endswith(
            f"{path}: no calendar days in it: neither date,kind,name rows nor the items of a notice"
        )


def test_the_calendar_import_service_refuses_a_text_without_days(db_session):
    """The check lived in the command line and the API only: any other caller (the web page) entered "0 days"."""
    from cityhub.errors import ValidationFailed

    for text in ("", "date,kind,name\n", "\n\n"):
        with pytest.raises(ValidationFailed) as refused:
            recompute.import_calendar_text(db_session, text=text)
        assert refused.value.message == workcal.NO_DAYS and refused.value.details == {"field": "text"}
    only_bad = recompute.import_calendar_text(db_session, text="2031-13-01,holiday,x\n")  # a day, refused: said so
    assert (only_bad.entries, [e.row for e in only_bad.errors]) == ([], [1])
    done = recompute.import_calendar_text(db_session, text="2031-02-03,holiday,春节\n2031-02-08,workday,\n")
    assert (len(done.entries), done.holidays, done.errors) == (2, 1, [])
    assert {d.day for d in workcal.list_days(db_session, year=2031)} == {date(2031, 2, 3), date(2031, 2, 8)}


def test_cli_calendar_check_says_why_a_day_is_or_is_not_worked(app_db):
    from cityhub.workorders.calendar import statutory_holidays

    runner = CliRunner()
    national = runner.invoke(calendar_app, ["check", "2026-10-01"])
    assert national.exit_code == 0 and national.output.strip() == "2026-10-01: non-working day (official, 国庆节)"
    beyond = next(y for y in range(2100, 2300) if not statutory_holidays(y))  # neither built in nor computable
    monday = next(date(beyond, 1, d) for d in range(1, 8) if date(beyond, 1, d).weekday() == 0)
    assert runner.invoke(calendar_app, ["check", monday.isoformat()]).output.strip() == f"{monday}: workday (weekday)"
    # A year not built in: the law's holidays (here 元旦, computed), unless an administrator entered the day.
    new_year = f"{beyond - 1}-01-01"
    assert runner.invoke(calendar_app, ["check", new_year]).output.strip() == (
        f"{new_year}: non-working day (statutory, 元旦)"
    )
    assert runner.invoke(calendar_app, ["set", new_year, "班", "--name", "调休上班"]).output.startswith(
        f"{new_year}: workday"
    )
    assert (
        runner.invoke(calendar_app, ["set", new_year, "rest"])
        .output.strip()
        .endswith("kind must be 放假 (休, holiday) or 上班 (班, workday), not 'rest'")
    )
    assert runner.invoke(calendar_app, ["check", new_year]).output.strip() == (
        f"{new_year}: workday (override, 调休上班)"
    )


def test_cli_calendar_import_reads_the_state_councils_notice_as_published(app_db, tmp_path):
    from holiday_notices import NOTICES

    notice = tmp_path / "通知.txt"
    bad = NOTICES[2026].replace("放假调休，共9天", "放假调休，共8天")  # 春节's count no longer fits its dates
    notice.write_text(bad, encoding="gb18030")
    result = CliRunner().invoke(calendar_app, ["import", str(notice), "--no-recompute"])
    assert result.exit_code == 0  # the good rows entered: exit 1 only when none was (docs/operations.md)
    # A rejected item is the item's problem, not the command's: no "error:" when the others were entered.
    assert result.stderr.splitlines() == ["rejected: 通知.txt: line 5: 春节: its 共N天 does not match its dates"]
    assert result.stdout.startswith("28 days entered (24 holidays, 4 workdays), 1 rows rejected")
    with session_scope() as s:
        entered = {d.day: (d.is_workday, d.name) for d in workcal.list_days(s, year=2026)}
    assert entered[date(2026, 10, 1)] == (False, "国庆节") and entered[date(2026, 9, 20)] == (True, "调休上班")
    assert date(2026, 2, 16) not in entered


def test_cli_calendar_import_enters_the_good_rows_once_and_names_every_bad_one(app_db, tmp_path):
    order_id, due, day = _seed_running_order()
    later = day + timedelta(days=400)
    data = tmp_path / "holidays.csv"
    data.write_text(
        "date,kind,name\n"
        f"{day},holiday,台风停工\n"
        "2027-13-01,holiday,元旦\n"
        f"{later},上班,调休上班\n"  # the kinds as a calendar writes them, or the codes
        "\n"
        f"{later + timedelta(days=1)},day off,\n"
        f"{day},workday,again\n"
        f"{later + timedelta(days=2)},休\n",
        encoding="gb18030",  # what Excel writes for Chinese names
    )
    result = CliRunner().invoke(calendar_app, ["import", str(data)])
    assert result.exit_code == 0  # the good rows entered: exit 1 only when none was (docs/operations.md)
    assert result.stderr.splitlines() == [
        "rejected: holidays.csv: row 3: date: '2027-13-01' is not a date (YYYY-MM-DD)",
        "rejected: holidays.csv: row 6: kind: must be 放假 (休, holiday) or 上班 (班, workday), not 'day off'",
        f"rejected: holidays.csv: row 7: date: {day} is already on row 2",
    ]
    assert (
        "3 days entered (2 holidays, 1 workdays), 3 rows rejected (1 running orders' deadlines moved)" in result.stdout
    )
    assert _due(order_id) > due
    with session_scope() as s:
        entered = {(d.day, d.is_workday, d.name) for d in workcal.list_days(s)}
        [event] = _events(s, s.get(Order, order_id))  # one recomputation for the whole file
    assert entered == {(day, False, "台风停工"), (later, True, "调休上班"), (later + timedelta(days=2), False, None)}
    assert event.payload["days"] == sorted(d.isoformat() for d in (day, later, later + timedelta(days=2)))
    missing = CliRunner().invoke(calendar_app, ["import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and missing.stderr == f"error: {tmp_path / 'nope.csv'}: file not found\n"


# --- round the clock (全天候) ----------------------------------------------------------------------------------

# Saturday 2026-03-07 23:00 in Shanghai: no working time until Monday 09:00.
SATURDAY_NIGHT = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)


def test_a_critical_order_counts_round_the_clock_and_a_normal_one_working_time(db_session, unit):
    sla.seed_default_rules(db_session)
    flood = _dispatched(db_session, unit, at=SATURDAY_NIGHT, urgency="critical", content="隧道积水很深，车辆被困")
    lamp = _dispatched(db_session, unit, at=SATURDAY_NIGHT)
    assert _terms(db_session, flood).round_the_clock and not _terms(db_session, lamp).round_the_clock
    assert flood.accept_due_at == SATURDAY_NIGHT + timedelta(minutes=30)  # not Monday 09:30
    assert flood.due_at == SATURDAY_NIGHT + timedelta(days=1)
    cal = workcal.load_calendar(db_session)
    assert lamp.accept_due_at == cal.add_work_seconds(SATURDAY_NIGHT, 2 * 3600)
    assert lamp.accept_due_at.astimezone(get_settings().tz).weekday() == 0  # Monday

    # Suspended for two hours on Sunday, it gets back the natural time it had left; an extension adds whole days.
    _act(db_session, flood, "accept", SATURDAY_NIGHT + timedelta(minutes=10))
    _act(db_session, flood, "suspend", SATURDAY_NIGHT + timedelta(hours=3), reason="等待抽水车")
    _act(db_session, flood, "resume", SATURDAY_NIGHT + timedelta(hours=5))
    flood = _fresh(db_session, flood)
    assert flood.due_at == SATURDAY_NIGHT + timedelta(days=1, hours=2)
    _act(db_session, flood, "request_extension", SATURDAY_NIGHT + timedelta(hours=6), days=1, reason="排水泵站抢修")
    _act(db_session, flood, "approve_extension", SATURDAY_NIGHT + timedelta(hours=7))
    assert _fresh(db_session, flood).due_at == SATURDAY_NIGHT + timedelta(days=2, hours=2)

    # A holiday entered in the calendar moves the working-time clock and leaves the round-the-clock one alone.
    before, lamp_due = _fresh(db_session, flood).due_at, lamp.due_at
    _, done = recompute.set_calendar_day(
        db_session, day=date(2026, 3, 9), is_workday=False, name="台风停工", actor=ADMIN, now=SATURDAY_NIGHT
    )
    assert done.orders == 1 and _events(db_session, flood) == [] and _fresh(db_session, flood).due_at == before
    assert _fresh(db_session, lamp).due_at > lamp_due


def test_a_rule_turned_round_the_clock_moves_running_clocks_as_if_started_so(db_session, unit, category):
    mine, _ = category
    sla.seed_default_rules(db_session)
    running = _dispatched(db_session, unit, category_id=mine.id)  # Monday 10:00, 5 working days
    paused = _dispatched(db_session, unit, category_id=mine.id)
    _act(db_session, paused, "accept", MONDAY)
    _act(db_session, paused, "suspend", MONDAY + timedelta(hours=1), reason="等待")
    left = dict(paused.sla_remaining)
    cal = workcal.load_calendar(db_session)
    now = MONDAY + timedelta(hours=1)

    spec = sla.RuleSpec(mine.id, None, accept_hours=2, finish_days=5, round_the_clock=True)
    rule, done = recompute.set_sla_rule(db_session, spec=spec, actor=ADMIN, now=now)
    assert done.orders == 2 and rule.round_the_clock
    fresh = sla.compute_deadlines(sla.ROUND_THE_CLOCK, MONDAY, _terms(db_session, running))
    running, paused = _fresh(db_session, running), _fresh(db_session, paused)
    assert (running.warn_at, running.due_at) == (fresh.warn_at, fresh.due_at)
    assert running.due_at == MONDAY + timedelta(days=5)
    assert running.accept_due_at == MONDAY + timedelta(hours=2)  # two hours are two hours on either clock
    # The paused clock's working time left becomes as many whole days' time.
    scale = sla.ROUND_THE_CLOCK.day_seconds / cal.day_seconds
    assert paused.sla_remaining[sla.DUE_KEY] == math.ceil(left[sla.DUE_KEY] * scale)
    [event] = _events(db_session, running)
    assert event.payload["rule"]["round_the_clock"] is True

    # Back to working time: the deadlines are those of a working-time clock started Monday again.
    done = recompute.delete_sla_rule(db_session, rule_id=rule.id, actor=ADMIN, now=now)
    assert done.orders == 2
    assert _fresh(db_session, running).due_at == cal.add_work_days(MONDAY, 5)


def test_round_the_clock_rules_through_the_api_and_the_cli(admin_client, app_db):
    with session_scope() as s:
        node = Category(code="RT01", name="防汛排涝", level=1, parent_id=None, path="防汛排涝")
        s.add(node)
        s.flush()
        category_id = node.id
    saved = admin_client.put(
        f"{API}/sla/rules",
        json={
            "category_id": category_id,
            "urgency": "urgent",
            "accept_hours": 1,
            "finish_days": 1,
            "round_the_clock": True,
        },
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["round_the_clock"] is True
    listed = {r["id"]: r for r in admin_client.get(f"{API}/sla/rules").json()}
    assert listed[saved.json()["id"]]["round_the_clock"] is True
    wrong = admin_client.put(f"{API}/sla/rules", json={"accept_hours": 1, "finish_days": 1, "round_the_clock": "yes"})
    assert wrong.status_code == 422 and "round_the_clock" in wrong.text

    runner = CliRunner()
    out = runner.invoke(sla_app, ["set", "--accept-hours", "1", "--finish-days", "1", "--category", "防汛排涝"])
    assert out.exit_code == 0, out.output
    listing = runner.invoke(sla_app, ["list"])
    lines = [line for line in listing.output.splitlines() if line.startswith("防汛排涝")]
    assert sorted(line.split("\t")[-1] for line in lines) == ["round the clock", "working time"]
    out = runner.invoke(
        sla_app, ["set", "--accept-hours", "1", "--finish-days", "1", "--category", "防汛排涝", "--round-the-clock"]
    )
    assert out.exit_code == 0, out.output
    lines = [line for line in runner.invoke(sla_app, ["list"]).output.splitlines() if line.startswith("防汛排涝")]
    assert [line.split("\t")[-1] for line in lines] == ["round the clock", "round the clock"]
