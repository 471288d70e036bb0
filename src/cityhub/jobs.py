"""Scheduled jobs: declared beside their domain, registered here, run by `cityhub worker`, inside
`cityhub serve`, or on demand with `cityhub jobs run NAME`.

A job's schedule lives in the ``job_runs`` table: a process claims a due job with one conditional UPDATE, so
several workers (and the server) never run the same job twice in one interval, and a restart loses nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.db import rowcount, session_scope, upsert_insert, utcnow
from cityhub.workorders.models import JobRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    func: Callable[[Session], dict[str, Any]]
    interval: Callable[[], int]
    # May a run start while another (in any process) has not ended? Only for a job that claims its own work items.
    overlap: bool = False
    # Keys of its result that are no count of work this run did — its position or token for the next run, a setting
    # it applied, a total — so a round whose counts are all zero is logged at DEBUG whatever these hold.
    state_keys: frozenset[str] = frozenset()


# A run that started this long ago (or three intervals, if longer) without ending is taken for dead — its process
# was killed — and the job may start again.
RUN_LEASE_S = 600


def _sla_sweep(session: Session) -> dict[str, Any]:
    from cityhub.workorders.scheduled import sla_sweep

    return sla_sweep(session)


def _notify_deliver(session: Session) -> dict[str, Any]:
    from cityhub.notify.scheduled import notify_deliver

    return notify_deliver(session)


def _notify_interval() -> int:
    from cityhub.notify.scheduled import interval

    return interval()


def _notify_prune(session: Session) -> dict[str, Any]:
    from cityhub.notify.scheduled import notify_prune

    return notify_prune(session)


def _notice_prune(session: Session) -> dict[str, Any]:
    from cityhub.notify.scheduled import notice_prune

    return notice_prune(session)


def _reply_check(session: Session) -> dict[str, Any]:
    from cityhub.knowledge.service import check_pending_replies

    return dict(check_pending_replies(session))


def _place_orders(session: Session) -> dict[str, Any]:
    from cityhub.workorders.placing import place_scheduled

    return place_scheduled(session)


def _hot_topics(session: Session) -> dict[str, Any]:
    from cityhub.analytics.topics_store import scheduled_update

    return scheduled_update(session)


def _alarm_escalation(session: Session) -> dict[str, Any]:
    from cityhub.monitoring.scheduled import alarm_escalation

    return alarm_escalation(session)


def _sensor_silence(session: Session) -> dict[str, Any]:
    from cityhub.monitoring.scheduled import sensor_silence

    return sensor_silence(session)


def _files_prune(session: Session) -> dict[str, Any]:
    from dataclasses import asdict

    from cityhub.workorders import held
    from cityhub.workorders.files import prune

    return {**asdict(prune(session)), "held": held.prune()}


def _alarm_escalation_interval() -> int:
    from cityhub.monitoring.scheduled import interval

    return interval()


JOBS: dict[str, Job] = {
    "sla-sweep": Job(
        "sla-sweep",
        "mark time-limit warnings (预警) and overdue (超期) orders, and leaders' 限期办结 passed (交办逾期)",
        _sla_sweep,
        lambda: get_settings().sla_sweep_interval,
    ),
    "notify-deliver": Job(
        "notify-deliver",
        "send due outbox notifications (webhooks), retry failures, take over expired leases",
        _notify_deliver,
        _notify_interval,
        overlap=True,  # claims each message: runs in several processes share the outbox
    ),
    "notify-prune": Job(
        "notify-prune",
        "delete notifications delivered more than CITYHUB_NOTIFY_KEEP_SENT_DAYS ago",
        _notify_prune,
        lambda: 3600,
        state_keys=frozenset({"keep_sent_days"}),
    ),
    "notice-prune": Job(
        "notice-prune",
        "delete staff notices (消息提醒) read more than CITYHUB_NOTIFY_NOTICE_KEEP_READ_DAYS ago",
        _notice_prune,
        lambda: 3600,
        state_keys=frozenset({"keep_read_days"}),
    ),
    "reply-check": Job(
        "reply-check",
        "score new replies (relevance, completeness, basis, timeliness) and flag weak ones to supervisors",
        _reply_check,
        lambda: 60,
    ),
    "place-orders": Job(
        "place-orders",
        "place imported and older orders without a street among the units (coordinates, address, text), audited",
        _place_orders,
        lambda: 60,
        state_keys=frozenset({"last_id", "units_token", "aliases_token", "retry_from"}),
    ),
    "hot-topics": Job(
        "hot-topics",
        "mine the orders received since the last run into the hot topics (热点诉求) and refresh their heat",
        _hot_topics,
        lambda: get_settings().hot_topics_interval,
        state_keys=frozenset({"topics"}),
    ),
    "files-prune": Job(
        "files-prune",
        "delete stored files, photo copies and interrupted writes no attachment holds (untouched for an hour), and "
        "the files of refused web forms held longer than CITYHUB_FILES_HELD_HOURS",
        _files_prune,
        lambda: 6 * 3600,
    ),
    "alarm-escalation": Job(
        "alarm-escalation",
        "escalate sensor alarms still unacknowledged past their rule's time: event, notification, order urgency",
        _alarm_escalation,
        _alarm_escalation_interval,
    ),
    "sensor-silence": Job(
        "sensor-silence",
        "raise the silence alarm (离线) of sensors quiet longer than they may be; clear it when they report again",
        _sensor_silence,
        lambda: 60,  # silence is counted in minutes: a sensor is found within a minute of its time
        state_keys=frozenset({"silent"}),
    ),
}


def run_job(name: str) -> dict[str, Any]:
    """Run one job now (regardless of its schedule) and record the run, or its failure (then re-raised)."""
    job = JOBS[name]
    started = utcnow()
    try:
        with session_scope() as session:
            _ensure_row(session, name)
            result = job.func(session)
            _finish(session, name, started, result)
    except Exception as exc:
        record_failure(name, error=exc)
        raise
    return result


def record_failure(name: str, *, error: BaseException | str) -> None:
    """Record a failed run of ``name`` in a transaction of its own (the run's was rolled back): when, what went wrong
    (``last_error``, the exception's type and message) and one more failure in a row (``failures``, reset by the next
    success). Never raises: a database that cannot take the record is already in the log."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    try:
        with session_scope() as session:
            _ensure_row(session, name)
            session.execute(
                update(JobRun)
                .where(JobRun.name == name)
                .values(last_failed_at=utcnow(), last_error=text[:500], failures=JobRun.failures + 1)
            )
    except Exception:
        log.exception("could not record the failure of job %s", name)


def record(session: Session, name: str, *, started: datetime, result: dict[str, Any]) -> None:
    """Record a run under ``name`` as the scheduled jobs' runs are (``job_runs``, shown by ``/healthz`` and the
    status page): the background dispatcher records its heartbeat this way."""
    _ensure_row(session, name)
    _finish(session, name, started, result)


def _ensure_row(session: Session, name: str) -> None:
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(insert(JobRun).values(name=name).on_conflict_do_nothing())


def _claim(session: Session, name: str, now: datetime, interval: int, *, overlap: bool = False) -> bool:
    """Atomically take the job if its interval has passed since the last start (any process) and, unless it may
    ``overlap``, the last run has ended (succeeded or failed) or started more than the lease ago."""
    _ensure_row(session, name)
    started = JobRun.last_started_at
    due = started <= now - timedelta(seconds=interval)
    if not overlap:
        ended = or_(JobRun.last_finished_at >= started, JobRun.last_failed_at >= started)
        due = and_(due, or_(ended, started <= now - timedelta(seconds=max(RUN_LEASE_S, 3 * interval))))
    result = session.execute(
        update(JobRun).where(JobRun.name == name).where(or_(started.is_(None), due)).values(last_started_at=now)
    )
    return bool(rowcount(result))


def _finish(session: Session, name: str, started: datetime, result: dict[str, Any]) -> None:
    session.execute(
        update(JobRun)
        .where(JobRun.name == name)
        .values(last_started_at=started, last_finished_at=utcnow(), last_result=result, failures=0)
    )


def is_busy(job: Job, result: dict[str, Any]) -> bool:
    """Whether a run did something worth an INFO line: a positive count in its result (its state keys aside)."""
    return any(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        for k, v in result.items()
        if k not in job.state_keys
    )


def run_due_jobs() -> dict[str, dict[str, Any]]:
    """Run every job whose interval has passed; returns the results of those that ran."""
    ran: dict[str, dict[str, Any]] = {}
    for job in JOBS.values():
        now = utcnow()
        with session_scope() as session:
            if not _claim(session, job.name, now, job.interval(), overlap=job.overlap):
                continue
        try:
            with session_scope() as session:
                result = job.func(session)
                _finish(session, job.name, now, result)
            ran[job.name] = result
            # Quiet rounds (nothing marked, nothing sent) would drown the log every few seconds.
            busy = is_busy(job, result)
            log.log(logging.INFO if busy else logging.DEBUG, "job %s: %s", job.name, result)
        except Exception as exc:
            log.exception("job %s failed; it will be retried at its next interval", job.name)
            record_failure(job.name, error=exc)
    return ran


def run_worker(*, once: bool = False, stop: threading.Event | None = None, tick: float = 5.0) -> None:
    """Loop over due jobs until ``stop`` is set (or once)."""
    stop = stop or threading.Event()
    log.info("worker started: jobs %s", ", ".join(JOBS))
    while not stop.is_set():
        run_due_jobs()
        if once:
            return
        stop.wait(tick)


def start_background_scheduler() -> tuple[threading.Thread, threading.Event]:
    """Run the worker loop in a daemon thread (used inside `cityhub serve`)."""
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, kwargs={"stop": stop}, name="cityhub-scheduler", daemon=True)
    thread.start()
    return thread, stop
