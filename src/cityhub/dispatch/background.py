"""Automatic dispatch in the background: intake answers at once, a dispatcher decides soon after.

With ``CITYHUB_DISPATCH_AUTO`` on, the decision (classifier, address → place, routing rules, then the audited
dispatch) costs about as much server time as everything else a creation does together. Made inside the creating
request, it doubles what an operator or a citizen's app waits for, and under a burst of appeals every creation
queues behind every other's decision. With ``CITYHUB_DISPATCH_IN_BACKGROUND`` on (the default), intake instead
records each new order it leaves received in the ``dispatch_backlog`` table, in the transaction that creates the
order, and answers (a bulk import's rows are queued marked ``bulk``, and taken after every other waiting order: an
import of thousands does not hold up the appeals arriving meanwhile). The dispatcher works through the backlog
oldest first, one transaction per order: it decides with :func:`cityhub.dispatch.service.auto_dispatch` (the same
decision, audit trail and stored suggestion as the inline path) and deletes the order's row in that same
transaction, so an order is decided once and, whatever stops in between, never forgotten. An order that is no longer
received when its turn comes (a dispatcher, an instant answer or a merge came first) loses its row without a
decision; one the decision fails for (the classifier missing) stays in the dispatcher's queue, as on the inline
path. An unexpected error (the database) leaves the row for a later round, tried again after 5 s, 10 s, 20 s … and
given up to the dispatcher's queue after eight tries.

Duplicates: an order created over the API or Open311 (whose answer shows no duplicates) is not searched for
duplicates by the creating request when ``CITYHUB_DEDUPE_IN_BACKGROUND`` is on (the default, with automatic dispatch
or without); its row says ``check_duplicates``, and the dispatcher first looks for an earlier duplicate and merges
the order into it, as intake would have (then it decides nothing). The search was half of a creation's CPU in the
server. Without automatic dispatch, an order with no earlier duplicate then waits for a person as before.

Where it runs: ``cityhub serve`` starts one dispatcher process beside its server processes, at a lower CPU priority
(``nice``), so that under load the requests come first and the decisions follow: within a few hundred milliseconds
while the machine has room, later under a load that takes all of it (then the backlog drains once the load eases;
``/healthz`` shows its size and the oldest wait, and the dispatcher's heartbeat among the jobs). ``cityhub worker``
runs it in a thread. Several dispatchers may run at once (one per host): each order is claimed by deleting its row.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityhub.config import get_settings
from cityhub.db import rowcount, session_scope, utcnow
from cityhub.dispatch.models import DispatchBacklog
from cityhub.errors import CityhubError
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Order

log = logging.getLogger(__name__)

BATCH = 50  # orders read from the backlog at a time (classified in one batch)
RETRY_PAUSE_S = 5.0  # after a database error; an order that failed waits this long, then twice as long each time
MAX_RETRY_S = 300.0
MAX_ATTEMPTS = 8  # then the order is left to the dispatcher's queue
NICE = 10  # the dispatcher process's CPU priority below the server processes' (0)
JOB_NAME = "background-dispatcher"  # its heartbeat's row in job_runs: the latest beat of any host


def host_job_name() -> str:
    """This host's own heartbeat row, ``background-dispatcher@HOST`` (cut to the column's 60 characters): with two
    hosts on one database, ``JOB_NAME`` shows whichever beat last, these rows show each."""
    return f"{JOB_NAME}@{socket.gethostname()}"[:60]


HEARTBEAT_S = 30.0


def decides() -> bool:
    """Whether intake leaves automatic dispatch to the background dispatcher."""
    settings = get_settings()
    return settings.dispatch_auto and settings.dispatch_in_background


def suggests() -> bool:
    """Whether, automatic dispatch off, the background dispatcher still decides for each new order and keeps the
    decision — the category the classifier reads, the suggested units and why — without sending it: the dispatcher's
    queue then reads it (its category filter finds the orders by the category only the classifier read) instead of
    computing it again at every view."""
    settings = get_settings()
    return settings.dispatch_in_background and not settings.dispatch_auto


def takes_new_orders() -> bool:
    """Whether intake leaves each new received order to the background dispatcher to decide for: to dispatch it
    (:func:`decides`) or to keep its suggestion (:func:`suggests`)."""
    return decides() or suggests()


def checks_duplicates() -> bool:
    """Whether intake leaves the duplicate check of orders created over the API and Open311 to the background
    dispatcher (an automatic merge is all that would come of it there: their answer shows no duplicates)."""
    from cityhub.intake.dedupe import get_dedupe_settings

    cfg = get_dedupe_settings()
    return get_settings().dispatch_in_background and cfg.enabled and cfg.in_background and cfg.auto_merge


def enabled() -> bool:
    """Whether the background dispatcher runs: intake leaves it decisions (automatic dispatch, or suggestions kept),
    duplicate checks, or both."""
    return takes_new_orders() or checks_duplicates()


def enqueue(session: Session, order: Order, *, check_duplicates: bool = False) -> None:
    """Record a new order for the dispatcher, in the transaction that creates it; ``check_duplicates``: intake left
    the search for an earlier duplicate to the dispatcher (see ``intake.service.submit``)."""
    session.add(DispatchBacklog(order_id=order.id, queued_at=utcnow(), check_duplicates=check_duplicates))


def enqueue_many(session: Session, order_ids: Sequence[int], *, check_duplicates: bool = False) -> int:
    """Record a bulk import's batch of new orders (in the transaction that inserts them), to be decided after the
    orders intake queues — the appeals arriving meanwhile do not wait behind thousands of imported rows; returns how
    many."""
    if order_ids:
        now = utcnow()
        session.execute(
            insert(DispatchBacklog),
            [{"order_id": i, "queued_at": now, "check_duplicates": check_duplicates, "bulk": True} for i in order_ids],
        )
    return len(order_ids)


def waiting(session: Session, order_ids: Iterable[int]) -> set[int]:
    """Those of the orders that wait for the dispatcher's automatic decision (the order page and the dispatcher's
    queue say so: a person may still act first)."""
    ids = list(order_ids)
    if not ids:
        return set()
    return set(session.scalars(select(DispatchBacklog.order_id).where(DispatchBacklog.order_id.in_(ids))))


@dataclass(frozen=True)
class BacklogStatus:
    """``orders``: all waiting; ``oldest_queued_at``: the oldest of those intake queued (what a rising wait alerts
    on); the bulk imports' rows, taken after them, counted apart (``bulk_orders``, ``bulk_oldest_queued_at``)."""

    orders: int
    oldest_queued_at: datetime | None
    bulk_orders: int = 0
    bulk_oldest_queued_at: datetime | None = None

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()

        def age(at: datetime | None) -> float | None:
            return round((now - at).total_seconds(), 3) if at is not None else None

        return {
            "orders": self.orders,
            "oldest_wait_s": age(self.oldest_queued_at),
            "bulk_orders": self.bulk_orders,
            "bulk_oldest_wait_s": age(self.bulk_oldest_queued_at),
        }


def status(session: Session) -> BacklogStatus:
    """How many orders wait for the dispatcher, and since when the oldest (for /healthz and the benchmarks): those
    intake queued and those of bulk imports apart."""
    rows = session.execute(
        select(DispatchBacklog.bulk, func.count(), func.min(DispatchBacklog.queued_at)).group_by(DispatchBacklog.bulk)
    ).all()
    by_kind = {bool(bulk): (int(n), oldest) for bulk, n, oldest in rows}
    live, oldest = by_kind.get(False, (0, None))
    bulk, bulk_oldest = by_kind.get(True, (0, None))
    return BacklogStatus(
        orders=live + bulk, oldest_queued_at=oldest, bulk_orders=bulk, bulk_oldest_queued_at=bulk_oldest
    )


def _decide(order_id: int, prediction: Any = None, check_duplicates: bool = False) -> str:
    """Decide for one backlog order in its own transaction; returns what happened (for the round's counts).

    ``check_duplicates``: first look for an earlier duplicate and merge the order into it when close enough, as
    intake would have (then there is nothing to dispatch).
    """
    from cityhub.dispatch.service import auto_dispatch
    from cityhub.workorders.service import read_for_update

    claim = delete(DispatchBacklog).where(DispatchBacklog.order_id == order_id)
    try:
        with session_scope() as session:
            # Read as an action would, once: the decision's actions do not read it again (on SQLite the write lock
            # is then held only while the writes go out).
            order = read_for_update(session, order_id)
            outcome = "skipped"
            if order is not None and order.state == State.RECEIVED:
                merged, duplicates = _merged(session, order) if check_duplicates else (False, None)
                if merged:
                    outcome = "merged"
                elif takes_new_orders():
                    sends = decides()
                    decision = auto_dispatch(
                        session, order=order, prediction=prediction, held=True, duplicates=duplicates, send=sends
                    )
                    outcome = "dispatched" if decision.dispatched else "queued" if sends else "suggested"
                else:
                    outcome = "checked"  # no earlier duplicate; a dispatcher dispatches it
            # The claim comes last: on SQLite the write lock is then taken by the decision's writes, after its reads
            # and computation, and held only while they go out.
            if rowcount(session.execute(claim)) == 0:
                session.rollback()  # another dispatcher decided it meanwhile
                return "taken"
            return outcome
    except StaleDataError:
        # Someone changed the order between this decision's read and its write (SQLite reads outside the write
        # lock): the next round looks at it again.
        log.info("order %s changed during its automatic dispatch; deciding again", order_id)
        return "changed"
    except CityhubError as exc:
        # As inline: the order is received all the same and waits in the dispatcher's queue.
        log.warning("automatic dispatch of order %s failed: %s", order_id, exc.message)
        with session_scope() as session:
            session.execute(claim)
        return "failed"


MERGE_ACTOR_NAME = "auto-merge"


def _merged(session: Session, order: Order) -> tuple[bool, Any]:
    """Merge ``order`` (read for update, received) into an earlier duplicate when the check says so; whether it was,
    and the duplicates the check found (None when automatic merging is off and nothing was checked)."""
    from cityhub.intake import dedupe
    from cityhub.intake.service import merge_if_duplicate
    from cityhub.workorders.service import Actor

    if not dedupe.get_dedupe_settings().auto_merge:
        return False, None  # a suggestion alone: the decision holds a confident order for it (its own check)
    found = dedupe.check(session, order=order, similar=False, earlier_only=True)
    merge_if_duplicate(session, order, found, Actor(name=MERGE_ACTOR_NAME))
    return order.state == State.MERGED, found.duplicates


def _guarded(order_id: int, prediction: Any, check_duplicates: bool = False) -> str:
    try:
        return _decide(order_id, prediction, check_duplicates)
    except Exception:  # the database, or a fault with this one order: its row stays for a later round
        log.exception("background dispatcher: order %s not decided; it stays in the backlog", order_id)
        _postpone(order_id)
        return "error"


def _postpone(order_id: int) -> None:
    """After an unexpected error: try the order again later, waiting twice as long each time, and after
    ``MAX_ATTEMPTS`` leave it to the dispatcher's queue (an order the decision always fails for must not hold up
    the others, nor fill the log every round)."""
    try:
        with session_scope() as session:
            row = session.get(DispatchBacklog, order_id)
            if row is None:
                return
            row.attempts += 1
            if row.attempts >= MAX_ATTEMPTS:
                log.error(
                    "background dispatcher: order %s failed %d times; it waits in the dispatcher's queue",
                    order_id,
                    row.attempts,
                )
                session.delete(row)
                return
            row.retry_at = utcnow() + timedelta(seconds=min(RETRY_PAUSE_S * 2 ** (row.attempts - 1), MAX_RETRY_S))
    except Exception:  # the database itself is down: the row stays as it was, for the next round
        log.debug("background dispatcher: could not postpone order %s", order_id, exc_info=True)


def _predictions(order_ids: list[int]) -> dict[int, Any]:
    """The classifier's predictions for those of the orders that need one (received, no category), made in one
    batch: a round of many orders costs the classifier a fraction of what one at a time would."""
    from cityhub.dispatch.service import load_model
    from cityhub.nlp.text import order_text

    if not takes_new_orders():
        return {}
    try:
        loaded = load_model()
    except CityhubError:
        return {}  # each decision meets the same problem and reports it
    if loaded is None:
        return {}
    with session_scope() as session:
        # By primary key alone (with the state in the condition SQLite walked the index of every received order).
        found = session.execute(
            select(Order.id, Order.title, Order.content, Order.state, Order.category_id).where(Order.id.in_(order_ids))
        ).all()
    rows = [row for row in found if row.state == State.RECEIVED and row.category_id is None]
    if not rows:
        return {}
    predicted = loaded[0].predict([order_text(row.title, row.content) for row in rows])
    return {row.id: prediction for row, prediction in zip(rows, predicted, strict=True)}


def run_once(*, limit: int | None = BATCH, pool: Executor | None = None) -> dict[str, int]:
    """Decide for up to ``limit`` (None: all) waiting orders — those intake queued, then those of bulk imports, oldest
    first within each — on ``pool``'s threads when given; returns counts by outcome."""
    with session_scope() as session:
        due = or_(DispatchBacklog.retry_at.is_(None), DispatchBacklog.retry_at <= utcnow())
        rows = session.execute(
            select(DispatchBacklog.order_id, DispatchBacklog.check_duplicates)
            .where(due)
            .order_by(DispatchBacklog.bulk, DispatchBacklog.queued_at, DispatchBacklog.order_id)
            .limit(limit)
        ).all()
        if any(row.check_duplicates for row in rows):
            from cityhub.intake import dedupe

            # Every earlier order is committed by now (its row was): the similar-orders index reads them in.
            dedupe.catch_up(session)
    if not rows:
        return {}
    checks = {row.order_id: row.check_duplicates for row in rows}
    predicted = _predictions(list(checks))
    outcomes = (pool.map if pool is not None else map)(lambda i: _guarded(i, predicted.get(i), checks[i]), checks)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def threads() -> int:
    """Decisions in flight at once. On PostgreSQL two: while one waits for the database (a decision makes a dozen
    round trips), the other computes. On SQLite one: writes take turns anyway, and a second thread computing while
    the first holds the database's write lock would make every server process wait longer for it."""
    return 1 if get_settings().is_sqlite else 2


class _Heartbeat:
    """The dispatcher's state in ``job_runs`` under ``JOB_NAME`` and ``host_job_name()`` (``/healthz``'s and the
    status page's jobs): what it does, whether its classifier and similar-orders index are ready, its outcomes since
    it started. Written at start, whenever readiness changes, and every ``HEARTBEAT_S`` — so an operator (and the
    benchmark) can tell a dispatcher still warming up, or one not heard from for long, from one at work."""

    def __init__(self) -> None:
        self.started = utcnow()
        self.totals: dict[str, int] = {}
        self.last_at = -HEARTBEAT_S
        self.last_state: tuple[Any, ...] | None = None

    def beat(self, counts: dict[str, int]) -> None:
        from cityhub import jobs
        from cityhub.dispatch.service import model_status
        from cityhub.intake.dedupe import index_status

        for outcome, n in counts.items():
            self.totals[outcome] = self.totals.get(outcome, 0) + n
        try:
            deciding, checking = takes_new_orders(), checks_duplicates()
            model = model_status() if deciding else "off"
            with session_scope() as session:
                index = index_status(session) if checking else {"state": "off"}
                state = (model, index["state"])
                if state == self.last_state and time.monotonic() - self.last_at < HEARTBEAT_S:
                    return
                result = {
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": self.started.isoformat(),
                    "decides": deciding,
                    "sends": decides(),
                    "checks_duplicates": checking,
                    "dispatch_model": model,
                    "similar_orders_index": index,
                    "since_start": dict(self.totals),
                }
                jobs.record(session, JOB_NAME, started=self.started, result=result)
                jobs.record(session, host_job_name(), started=self.started, result=result)
            self.last_at, self.last_state = time.monotonic(), state
        except Exception:  # the database is down: the rounds say so in the log
            log.debug("background dispatcher: heartbeat not recorded", exc_info=True)


def run(stop: threading.Event) -> None:
    """Work through the backlog until ``stop`` is set, looking again every ``CITYHUB_DISPATCH_POLL_MS`` when idle."""
    poll = get_settings().dispatch_poll_ms / 1000
    log.info("background dispatcher started (process %s)", os.getpid())
    heartbeat = _Heartbeat()
    with ThreadPoolExecutor(threads(), thread_name_prefix="cityhub-dispatcher") as pool:
        while not stop.is_set():
            try:
                counts = run_once(pool=pool)
            except Exception:
                log.exception("background dispatcher: cannot read the backlog; retrying in %.0f s", RETRY_PAUSE_S)
                counts = {"error": 1}
            heartbeat.beat(counts)
            if counts and set(counts) == {"error"}:
                stop.wait(RETRY_PAUSE_S)  # nothing moved: do not spin on a database that is down
            elif counts:
                log.debug("background dispatcher: %s", counts)
            else:
                stop.wait(poll)


def start_thread() -> tuple[threading.Thread, threading.Event]:
    """The dispatcher in a daemon thread (``cityhub worker``, which serves no requests)."""
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop,), name="cityhub-dispatcher", daemon=True)
    thread.start()
    return thread, stop


def process_main(supervisor: int, ready: Callable[[], None] | None = None) -> None:
    """Entry point of the dispatcher process ``cityhub serve`` starts (see :mod:`cityhub.serving`); ``ready`` is
    called once it has warmed up, as it starts deciding (a reload stops the process it replaces then)."""
    from cityhub.config import configure_logging
    from cityhub.dispatch.service import warm_up
    from cityhub.serving import limit_native_threads, stop_when_orphaned

    configure_logging()
    limit_native_threads()
    os.nice(NICE)
    # As in the server processes: a thread holding SQLite's write lock gets the interpreter back sooner.
    sys.setswitchinterval(get_settings().server_switch_interval_ms / 1000)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    stop_when_orphaned(supervisor)
    if takes_new_orders():
        try:
            warm_up()
        except Exception:  # the first decision loads what it needs
            log.exception("dispatcher warm-up failed")
        gc.freeze()  # the classifier's hundreds of thousands of objects live as long as the process
    if checks_duplicates():
        from cityhub.intake import dedupe

        dedupe.warm_up()  # the similar-orders index, for the duplicate checks intake leaves to the dispatcher
    if ready is not None:
        ready()
    run(stop)
