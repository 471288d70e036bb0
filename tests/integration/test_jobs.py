"""Scheduled jobs record failed runs: failures in a row, when and what, shown by /healthz, the status page and
``cityhub jobs status``; the next success clears the count."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cityhub import jobs
from cityhub.cli import app as cli
from cityhub.db import session_scope
from cityhub.workorders.models import JobRun
from web_helpers import enter_holidays_ahead


@pytest.fixture
def flaky_job(app_db: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A registered job that fails while ``state["fail"]`` is true; the other jobs are taken out of the schedule."""
    state: dict[str, Any] = {"fail": True, "runs": 0}

    def func(session: Any) -> dict[str, Any]:
        state["runs"] += 1
        if state["fail"]:
            raise RuntimeError("upstream answered 502")
        return {"done": 1}

    monkeypatch.setattr(jobs, "JOBS", {"flaky": jobs.Job("flaky", "test job", func, lambda: 0)})
    return state


def _row() -> JobRun:
    with session_scope() as session:
        row = session.execute(select(JobRun).where(JobRun.name == "flaky")).scalar_one()
        session.expunge(row)
        return row


def test_failed_runs_are_counted_until_a_success(flaky_job: dict[str, Any]) -> None:
    assert jobs.run_due_jobs() == {}
    row = _row()
    assert row.failures == 1 and row.last_error == "RuntimeError: upstream answered 502"
    assert row.last_failed_at is not None and row.last_finished_at is None
    jobs.run_due_jobs()
    assert _row().failures == 2
    flaky_job["fail"] = False
    assert jobs.run_due_jobs() == {"flaky": {"done": 1}}
    row = _row()
    assert row.failures == 0 and row.last_finished_at is not None and row.last_result == {"done": 1}
    assert row.last_error == "RuntimeError: upstream answered 502"  # kept as history; failures = 0 says it passed
    assert flaky_job["runs"] == 3


def test_run_on_demand_records_its_failure_and_raises(flaky_job: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="502"):
        jobs.run_job("flaky")
    assert _row().failures == 1


def test_failing_job_shows_on_healthz_status_page_and_cli(flaky_job: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from app_helpers import shared_app
    from cityhub.main import forget_order_counts

    enter_holidays_ahead()
    jobs.run_due_jobs()
    jobs.run_due_jobs()
    forget_order_counts()
    with TestClient(shared_app()) as client:
        health = client.get("/healthz")
        assert health.status_code == 200  # the process serves; the probe says what is wrong
        body = health.json()
        assert body["status"] == "degraded" and body["problems"] == ["job flaky: last 2 run(s) failed"]
        assert body["jobs"]["flaky"]["failures"] == 2
        # the error text is for operators, not a public probe (not "502" alone: a timestamp can hold those digits)
        assert "upstream answered" not in health.text and "RuntimeError" not in health.text
        page = client.get("/", headers={"Accept": "text/html"})
        assert "最近连续 2 次运行失败" in page.text
    out = CliRunner().invoke(cli, ["jobs", "status"])
    assert out.exit_code == 0 and "flaky" in out.output
    assert "FAILING (2 in a row): RuntimeError: upstream answered 502" in out.output
    records = [json.loads(line) for line in CliRunner().invoke(cli, ["jobs", "status", "--json"]).output.splitlines()]
    assert [r["failures"] for r in records if r["name"] == "flaky"] == [2]

    flaky_job["fail"] = False
    jobs.run_due_jobs()
    with TestClient(shared_app()) as client:
        body = client.get("/healthz").json()
        assert body["status"] == "ok" and body["problems"] == []
        assert "运行失败" not in client.get("/", headers={"Accept": "text/html"}).text


def test_a_run_in_progress_elsewhere_is_not_started_again_until_its_lease_ends(
    flaky_job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from cityhub.db import utcnow

    flaky_job["fail"] = False
    with session_scope() as session:  # another process claimed the job and is still running it
        assert jobs._claim(session, "flaky", utcnow() - timedelta(seconds=30), 0)
    assert jobs.run_due_jobs() == {} and flaky_job["runs"] == 0
    monkeypatch.setattr(jobs, "RUN_LEASE_S", 20)  # that run started 30 s ago: now taken for dead
    assert jobs.run_due_jobs() == {"flaky": {"done": 1}}
    monkeypatch.setattr(jobs, "RUN_LEASE_S", 600)
    assert jobs.run_due_jobs() == {"flaky": {"done": 1}}  # the last run ended: the next may start
    flaky_job["fail"] = True
    jobs.run_due_jobs()
    flaky_job["fail"] = False
    assert jobs.run_due_jobs() == {"flaky": {"done": 1}}  # a failed run has ended too
    assert flaky_job["runs"] == 4


def test_a_job_that_claims_its_own_items_may_overlap(flaky_job: dict[str, Any], monkeypatch: pytest.MonkeyPatch):
    from cityhub.db import utcnow

    flaky_job["fail"] = False
    job = jobs.JOBS["flaky"]
    monkeypatch.setattr(jobs, "JOBS", {"flaky": jobs.Job(job.name, job.description, job.func, job.interval, True)})
    with session_scope() as session:
        assert jobs._claim(session, "flaky", utcnow(), 0, overlap=True)
    assert jobs.run_due_jobs() == {"flaky": {"done": 1}}


def test_only_the_outbox_delivery_overlaps() -> None:
    assert [name for name, job in jobs.JOBS.items() if job.overlap] == ["notify-deliver"]


def test_the_status_page_counts_each_hosts_dispatcher_heartbeat_and_only_operators_see_the_hosts(
    app_db: str,
) -> None:
    """Anyone who reaches the port sees one heartbeat per host, numbered; the host names and process ids are for
    operators (``cityhub jobs status``)."""
    from fastapi.testclient import TestClient

    from app_helpers import shared_app
    from cityhub.db import utcnow
    from cityhub.dispatch import background

    with session_scope() as session:
        for host in ("web-b", "web-a"):
            jobs.record(
                session, f"{background.JOB_NAME}@{host}", started=utcnow(), result={"host": host, "pid": 4242, "ok": 1}
            )
    with TestClient(shared_app()) as client:
        page = client.get("/", headers={"Accept": "text/html"}).text
        probe = client.get("/healthz")
    assert "后台派单（心跳） @1" in page and "后台派单（心跳） @2" in page
    assert "web-a" not in page + probe.text and "4242" not in probe.text
    public = probe.json()["jobs"]
    assert public[f"{background.JOB_NAME}@1"]["last_result"] == {"ok": 1}  # web-a: numbered in the names' order
    out = CliRunner().invoke(cli, ["jobs", "status"])
    assert (
        out.exit_code == 0
        and f"{background.JOB_NAME}@web-a" in out.output
        and f"{background.JOB_NAME}@web-b" in out.output
    )


def test_a_year_of_deadlines_on_the_laws_holidays_alone_is_a_notice_and_one_without_any_a_problem(
    app_db: str,
) -> None:
    from datetime import date, timedelta

    import chinese_calendar

    from cityhub.main import health_notices, health_problems
    from cityhub.workorders.calendar import (
        MIN_WEEKDAY_HOLIDAYS,
        set_day,
        statutory_holidays,
        weekday_holidays_entered,
        years_by_law,
        years_without_holidays,
    )

    def known(year: int) -> bool:
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            return False
        return True

    last = next(y for y in range(2026, 2100) if not known(y + 1))  # the built-in calendar's last year
    with session_scope() as s:
        # Midyear the deadlines stay within a known year; in December they reach into the next, unknown one, whose
        # holidays by law are computed: a notice (enter the State Council's arrangement), not a problem.
        assert years_without_holidays(s, today=date(last, 6, 1)) == []
        assert years_by_law(weekday_holidays_entered(s, today=date(last, 6, 1))) == []
        assert years_without_holidays(s, today=date(last, 12, 1)) == []
        assert years_by_law(weekday_holidays_entered(s, today=date(last, 12, 1))) == [last + 1]
        summary = {"jobs": {}, "revision": None, "calendar_years_by_law": [last + 1]}
        assert not [p for p in health_problems(summary) if p.startswith("working calendar")]
        [notice] = health_notices(summary)
        assert f"{last + 1} is not built in" in notice and "cityhub calendar import FILE" in notice
        # One entry is no arrangement: 元旦 alone still leaves the year on the law's holidays.
        set_day(s, day=date(last + 1, 1, 1), is_workday=False, name="元旦")
        assert weekday_holidays_entered(s, today=date(last, 12, 1)) == {last + 1: 1}
        assert years_by_law(weekday_holidays_entered(s, today=date(last, 12, 1))) == [last + 1]
        # Holidays on weekends and make-up workdays do not count; weekday holidays do, up to a plausible year.
        weekdays = [date(last + 1, 2, 1) + timedelta(days=n) for n in range(40)]
        weekdays = [d for d in weekdays if d.weekday() < 5]
        set_day(
            s, day=date(last + 1, 2, 6) + timedelta(days=(5 - date(last + 1, 2, 6).weekday()) % 7), is_workday=False
        )
        set_day(s, day=weekdays[-1], is_workday=True, name="调休上班")
        for day in weekdays[: MIN_WEEKDAY_HOLIDAYS - 2]:
            set_day(s, day=day, is_workday=False, name="春节")
        assert years_by_law(weekday_holidays_entered(s, today=date(last, 12, 1))) == [last + 1]  # 9 of 10
        set_day(s, day=weekdays[MIN_WEEKDAY_HOLIDAYS - 2], is_workday=False, name="春节")
        assert years_by_law(weekday_holidays_entered(s, today=date(last, 12, 1))) == []
        assert weekday_holidays_entered(s, today=date(last, 12, 1)) == {last + 1: MIN_WEEKDAY_HOLIDAYS}

        # A year whose holidays the law's calendar cannot compute (past the lunar tables) is a problem.
        beyond = next(y for y in range(2100, 2300) if not statutory_holidays(y))
        assert years_without_holidays(s, today=date(beyond - 1, 12, 1)) == [beyond]
        assert years_by_law(weekday_holidays_entered(s, today=date(beyond - 1, 12, 1))) == [beyond - 1]
        summary = {
            "jobs": {},
            "revision": None,
            "calendar_years_without_holidays": [beyond],
            "calendar_weekday_holidays_entered": {str(beyond): 0},
        }
        [problem] = [p for p in health_problems(summary) if p.startswith("working calendar")]
        assert f"no official holidays for {beyond}" in problem
        assert f"0 weekday holidays entered, a year has at least {MIN_WEEKDAY_HOLIDAYS}" in problem


def test_an_idle_round_of_placing_orders_is_not_logged_at_info(
    app_db: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """place-orders' result carries its position and the units' token to the next run: an idle round logged a line
    at INFO every minute of `make run` because the token is a positive number."""
    job = jobs.JOBS["place-orders"]
    idle = {"looked": 0, "placed": 0, "unplaced": 0, "done": True, "last_id": None, "units_token": 6828130897129598108}
    idle["aliases_token"] = 4402111938170133  # the address library's token, likewise
    assert not jobs.is_busy(job, idle)
    assert jobs.is_busy(job, {**idle, "looked": 3, "placed": 2, "last_id": 41})
    assert jobs.is_busy(jobs.JOBS["sla-sweep"], {"overdue": 1, "warning": 0})
    # Likewise a setting applied and a total kept: the hourly rounds that did nothing are quiet too.
    assert not jobs.is_busy(jobs.JOBS["notify-prune"], {"deleted": 0, "keep_sent_days": 30})
    assert not jobs.is_busy(
        jobs.JOBS["hot-topics"], {"orders": 0, "joined": 0, "new_topics": 0, "mode": 0, "topics": 640}
    )
    assert jobs.is_busy(jobs.JOBS["hot-topics"], {"orders": 12, "joined": 9, "new_topics": 1, "mode": 0, "topics": 641})
    monkeypatch.setattr(jobs, "JOBS", {"place-orders": dataclasses.replace(job, func=lambda session: idle)})
    with caplog.at_level(logging.INFO, logger="cityhub.jobs"):
        assert jobs.run_due_jobs() == {"place-orders": idle}
    assert not [r for r in caplog.records if "place-orders" in r.getMessage()]
