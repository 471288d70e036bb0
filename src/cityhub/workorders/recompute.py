"""Running deadlines follow edits of the working calendar and of the time-limit table (重算办理时限).

A district edits its calendar when the State Council publishes the next year's holidays, or declares a day off
(a typhoon); it edits the time-limit table when a category's limit changes. Clocks started afterwards use the
new data anyway; this module moves the deadlines of clocks that are already running.

How a deadline moves. A clock's current stretch began at its *anchor*: the last clock (re)start (dispatch,
transfer, leader assignment, reopen) or resume, read from the audit trail. Every stored deadline ``X`` of the
stretch lies a known amount of working time after the anchor ``a`` — extensions included — so the new deadline
is ``new_cal.add_work_seconds(a, old_cal.work_seconds_between(a, X) + delta)``, where ``delta`` is the change
of the rule's terms for that deadline (0 for a calendar edit, and the calendar is the same for a rule edit).
Working time already spent stays spent; only what lies ahead is re-measured. A deadline at or before its anchor
(an order that resumed already overdue) does not move, and one whose working time becomes ≤ 0 falls due at the
anchor. The accept deadline moves only while the order waits to be accepted (``dispatched``).

Paused clocks (挂起) keep the working time that was left, not instants: a calendar edit needs nothing (resuming
counts with the calendar of that day), a rule edit adds ``delta`` to what is left (what had run out stays 0).

Status. A deadline moved into the future lifts its mark at once (overdue → warning/ok, warning → ok,
accept-overdue cleared). A deadline moved into the past is marked by :func:`~cityhub.workorders.scheduled
.sla_sweep`, run at the end, so that new marks are audited and notified exactly like every other mark.

Each moved order gets one ``sla_recompute`` event naming who edited what (``reason`` "calendar changed" or
"SLA rule changed") with the deadlines before and after in its payload; its ``version`` moves by one. The same
events go to the notification outbox under the ``deadline`` topic (:func:`cityhub.notify.service
.on_deadlines_moved`), in the same transaction.

Set-based where it counts: one SELECT of the affected clocks (with their anchors, as a correlated MAX over the
indexed audit trail), the arithmetic in Python (a few ``bisect`` calls per deadline), then batched executemany
UPDATEs and INSERTs. Measured in ``bench/bench_recompute.py``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, false, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from cityhub import auditlog
from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.errors import NotFound, ValidationFailed
from cityhub.notify import service as notify_service
from cityhub.workorders import calendar as workcal
from cityhub.workorders import sla
from cityhub.workorders.lifecycle import TRANSITIONS, Action, SlaEffect, State
from cityhub.workorders.models import (
    RUNNING_CLOCK_SQL,
    CalendarDay,
    Category,
    Order,
    OrderEvent,
    SlaRule,
    SlaStatus,
    Urgency,
)
from cityhub.workorders.scheduled import sla_sweep
from cityhub.workorders.service import SYSTEM, Actor

ACTION = "sla_recompute"
CALENDAR_REASON = "calendar changed"
RULE_REASON = "SLA rule changed"

# Events whose time is the start of the clock's current stretch. REJECT_REPLY also carries the RESUME effect, but
# a replied order is never paused, so it keeps its deadlines and is no anchor.
ANCHOR_ACTIONS = tuple(
    sorted({a.value for a, rule in TRANSITIONS.items() if rule.sla == SlaEffect.START} | {Action.RESUME.value})
)
_BATCH = 5_000
# Lower is milder; a recompute lowers a status itself and leaves raising it to the sweep.
_SEVERITY = {SlaStatus.NONE: 0, SlaStatus.OK: 1, SlaStatus.WARNING: 2, SlaStatus.OVERDUE: 3}
_KEYS = (sla.ACCEPT_KEY, sla.WARN_KEY, sla.DUE_KEY)


@dataclass(frozen=True)
class Recomputed:
    """What a recomputation did: orders whose deadlines (or remaining time) moved, and the sweep that followed."""

    orders: int = 0
    lifted: int = 0  # marks lifted (overdue/warning/accept-overdue) because a deadline moved ahead
    sweep: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Clock:
    id: int
    state: State
    anchor: datetime
    deadlines: dict[str, datetime | None]
    sla_status: SlaStatus
    accept_overdue: bool
    paused: bool
    remaining: dict[str, int] | None  # only read where a rule edit can change it


@dataclass
class _Change:
    id: int
    deadlines: dict[str, datetime | None]
    status: SlaStatus | None = None  # a lifted mark: the milder status
    accept_lifted: bool = False
    remaining: dict[str, int] | None = None  # new remaining time of a paused clock
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


# --- the arithmetic (pure) ---------------------------------------------------------------------------------


def moved_deadline(
    old_cal: sla.Clock,
    new_cal: sla.Clock,
    anchor: datetime,
    at: datetime | None,
    delta: float = 0.0,
    scale: float = 1.0,
) -> datetime | None:
    """``at``, a deadline counted from ``anchor`` under ``old_cal``, re-counted under ``new_cal`` plus ``delta`` s;
    the time counted ``scale`` times over first (a rule that now runs round the clock: a working day's seconds become
    a whole day's)."""
    if at is None or at <= anchor:
        return at
    budget = old_cal.work_seconds_between(anchor, at) * scale + delta
    if budget <= 0:
        return anchor
    return new_cal.add_work_seconds(anchor, budget)


def term_deltas(old: sla.SlaTerms, new: sla.SlaTerms, day_seconds: float) -> dict[str, float]:
    """Working seconds each deadline moves when an order's terms change from ``old`` to ``new`` (``day_seconds``: a
    day of the clock the new terms count on)."""
    return {
        sla.ACCEPT_KEY: (new.accept_hours - old.accept_hours) * 3600.0,
        sla.WARN_KEY: (new.warning_share * new.finish_days - old.warning_share * old.finish_days) * day_seconds,
        sla.DUE_KEY: (new.finish_days - old.finish_days) * day_seconds,
    }


# --- database ------------------------------------------------------------------------------------------


def _clocks(session: Session, condition: Any, *, paused: bool) -> list[tuple[_Clock, tuple[int | None, str]]]:
    """The running clocks matching ``condition`` (locked on PostgreSQL), each with its (category, urgency).

    ``paused``: also read the paused clocks' remaining time (a rule edit changes it, a calendar edit does not).
    """
    anchor = (
        select(func.max(OrderEvent.at))
        .where(OrderEvent.order_id == Order.id, OrderEvent.action.in_(ANCHOR_ACTIONS))
        .correlate(Order)
        .scalar_subquery()
    )
    columns = [
        Order.id,
        Order.state,
        func.coalesce(anchor, Order.dispatched_at, Order.created_at).label("anchor"),
        Order.accept_due_at,
        Order.warn_at,
        Order.due_at,
        Order.sla_status,
        Order.accept_overdue,
        Order.sla_paused_at.is_not(None).label("paused"),
        Order.category_id,
        Order.urgency,
    ]
    query = select(*columns, Order.sla_remaining) if paused else select(*columns)
    query = query.where(text(RUNNING_CLOCK_SQL), condition)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Order)
    found = []
    for row in session.execute(query):
        clock = _Clock(
            id=row.id,
            state=State(row.state),
            anchor=row.anchor,
            deadlines={sla.ACCEPT_KEY: row.accept_due_at, sla.WARN_KEY: row.warn_at, sla.DUE_KEY: row.due_at},
            sla_status=SlaStatus(row.sla_status),
            accept_overdue=bool(row.accept_overdue),
            paused=bool(row.paused),
            remaining=row.sla_remaining if paused else None,
        )
        found.append((clock, (row.category_id, Urgency(row.urgency).value)))
    return found


def _recompute(
    session: Session,
    clocks: Sequence[tuple[_Clock, dict[str, float]]],
    *,
    old_cal: sla.Clock,
    new_cal: sla.Clock,
    actor: Actor,
    reason: str,
    cause: dict[str, Any],
    now: datetime,
    scale: dict[str, float] | None = None,
) -> Recomputed:
    """Move the deadlines of ``clocks`` (each with its per-deadline delta; ``scale``: :func:`sla.clock_scales`), audit
    each moved order, then sweep."""
    changes = [
        change
        for clock, delta in clocks
        if (change := _changed(clock, delta, old_cal=old_cal, new_cal=new_cal, now=now, scale=scale)) is not None
    ]
    event = {
        "action": ACTION,
        "actor_id": actor.user_id,
        "actor_name": actor.name,
        "unit_id": actor.unit_id,
        "at": now,
        "reason": reason,
    }
    states = {clock.id: clock.state.value for clock, _ in clocks} if changes else {}
    events = [
        {
            **event,
            "order_id": c.id,
            "from_state": states[c.id],
            "to_state": states[c.id],
            "payload": {**cause, "from": c.before, "to": c.after},
        }
        for c in changes
    ]
    _write(session, changes, events, now)
    notify_service.on_deadlines_moved(session, events=events)  # before the sweep's own warning/overdue messages
    sweep = sla_sweep(session, now=now) if changes else {}
    lifted = sum(1 for c in changes if c.status is not None or c.accept_lifted)
    return Recomputed(orders=len(changes), lifted=lifted, sweep=sweep)


def _changed(
    clock: _Clock,
    delta: dict[str, float],
    *,
    old_cal: sla.Clock,
    new_cal: sla.Clock,
    now: datetime,
    scale: dict[str, float] | None = None,
) -> _Change | None:
    """What moves for one clock, with the changed values before and after for the audit; None if nothing."""
    change = _Change(clock.id, dict(clock.deadlines))
    scale = scale or {}
    if clock.paused:
        if clock.remaining is not None:
            # What had run out stays run out; the accept part is kept (a paused order was accepted already).
            remaining = {
                k: v if k == sla.ACCEPT_KEY or v <= 0 else max(0, math.ceil(v * scale.get(k, 1.0) + delta.get(k, 0.0)))
                for k, v in clock.remaining.items()
            }
            if remaining != clock.remaining:
                change.remaining = remaining
                change.before["sla_remaining"], change.after["sla_remaining"] = clock.remaining, remaining
        return change if change.remaining is not None else None
    deadlines = change.deadlines
    for key in _KEYS:
        if key == sla.ACCEPT_KEY and clock.state != State.DISPATCHED:
            continue
        old = deadlines[key]
        deadlines[key] = new = moved_deadline(
            old_cal, new_cal, clock.anchor, old, delta.get(key, 0.0), scale.get(key, 1.0)
        )
        if new != old:
            change.before[key], change.after[key] = sla.iso(old), sla.iso(new)
    if not change.after:
        return None
    fresh = sla.status_at(now, warn_at=deadlines[sla.WARN_KEY], due_at=deadlines[sla.DUE_KEY], paused=False)
    if fresh != SlaStatus.NONE and _SEVERITY[fresh] < _SEVERITY[clock.sla_status]:
        change.status = fresh
        change.before["sla_status"], change.after["sla_status"] = clock.sla_status.value, fresh.value
    accept_due = deadlines[sla.ACCEPT_KEY]
    if clock.accept_overdue and clock.state == State.DISPATCHED and accept_due is not None and accept_due >= now:
        change.accept_lifted = True
        change.before["accept_overdue"], change.after["accept_overdue"] = True, False
    return change


def _write(session: Session, changes: list[_Change], events: list[dict[str, Any]], now: datetime) -> None:
    """Batched executemany: deadlines (and version) of every change, then the lifted marks, remaining time, events."""
    table: Table = Order.__table__  # type: ignore[assignment]

    def by_id(**values: Any) -> Any:
        return update(table).where(table.c.id == bindparam("b_id")).values(**values)

    def param(name: str) -> Any:
        return bindparam(f"b_{name}", type_=table.c[name].type)

    moved = by_id(**{k: param(k) for k in _KEYS}, version=table.c.version + 1, updated_at=now)
    # A lifted status is never "overdue"; nor is the order ever overdue when this limit was its first to run out.
    status = by_id(
        sla_status=param("sla_status"),
        overdue_at=None,
        first_overdue_at=case((table.c.first_overdue_at == table.c.overdue_at, None), else_=table.c.first_overdue_at),
    )
    accept = by_id(accept_overdue=False)
    remaining = by_id(sla_remaining=param("sla_remaining"))
    events_table: Table = OrderEvent.__table__  # type: ignore[assignment]
    for start in range(0, len(changes), _BATCH):
        chunk = changes[start : start + _BATCH]
        session.execute(moved, [{"b_id": c.id, **{f"b_{k}": v for k, v in c.deadlines.items()}} for c in chunk])
        for statement, rows in (
            (status, [{"b_id": c.id, "b_sla_status": c.status} for c in chunk if c.status is not None]),
            (accept, [{"b_id": c.id} for c in chunk if c.accept_lifted]),
            (remaining, [{"b_id": c.id, "b_sla_remaining": c.remaining} for c in chunk if c.remaining is not None]),
        ):
            if rows:
                session.execute(statement, rows)
        session.execute(insert(events_table), events[start : start + _BATCH])


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=get_settings().tz)


def after_calendar_change(
    session: Session,
    *,
    old_cal: workcal.WorkCalendar,
    new_cal: workcal.WorkCalendar,
    days: Collection[date],
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> Recomputed:
    """Move the deadlines of every running clock whose window reaches one of ``days`` (edited in the calendar)."""
    if all(old_cal.is_workday(d) == new_cal.is_workday(d) for d in days):
        return Recomputed()  # e.g. only the name of a holiday changed
    now = now or utcnow()
    first, last = _day_start(min(days)), _day_start(max(days)) + timedelta(days=1)
    reaches = or_(
        Order.due_at >= first,
        Order.warn_at >= first,
        and_(Order.state == State.DISPATCHED, Order.accept_due_at >= first),
    )
    rules, terms_under = sla.load_rules(session), _terms_resolver(session)
    round_the_clock: dict[tuple[int | None, str], bool] = {}
    clocks: list[tuple[_Clock, dict[str, float]]] = []
    for clock, key in _clocks(session, and_(Order.sla_paused_at.is_(None), reaches), paused=False):
        if key not in round_the_clock:
            round_the_clock[key] = terms_under(rules, key).round_the_clock
        # A stretch that began after the edited days does not contain them; a clock running round the clock
        # (全天候) counts no working days.
        if clock.anchor < last and not round_the_clock[key]:
            clocks.append((clock, {}))
    cause = {"cause": "calendar", "days": sorted(d.isoformat() for d in days)}
    return _recompute(
        session, clocks, old_cal=old_cal, new_cal=new_cal, actor=actor, reason=CALENDAR_REASON, cause=cause, now=now
    )


def after_rule_change(
    session: Session,
    *,
    old_rules: Sequence[sla.RuleSpec],
    new_rules: Sequence[sla.RuleSpec],
    actor: Actor = SYSTEM,
    now: datetime | None = None,
    rule: dict[str, Any] | None = None,
) -> Recomputed:
    """Move the deadlines (or paused remaining time) of running clocks whose terms differ under ``new_rules``."""
    now = now or utcnow()
    cal = workcal.load_calendar(session)
    terms_under = _terms_resolver(session)
    groups = session.execute(select(Order.category_id, Order.urgency).where(text(RUNNING_CLOCK_SQL)).distinct())
    # Per (category, urgency): the clocks the old and the new terms count on (working time, or round the clock),
    # and what each deadline moves by, in the new clock's time.
    moves: dict[tuple[int | None, str], tuple[sla.Clock, sla.Clock, dict[str, float]]] = {}
    for category_id, urgency in groups:
        key = (category_id, Urgency(urgency).value)
        old, new = terms_under(old_rules, key), terms_under(new_rules, key)
        if old != new:
            old_clock, new_clock = sla.clock_of(cal, old), sla.clock_of(cal, new)
            moves[key] = (old_clock, new_clock, term_deltas(old, new, new_clock.day_seconds))
    if not moves:
        return Recomputed()
    categories = {c for c, _ in moves}
    condition = or_(
        Order.category_id.in_(sorted(c for c in categories if c is not None)),
        Order.category_id.is_(None) if None in categories else false(),
    )
    by_clocks: dict[tuple[sla.Clock, sla.Clock], list[tuple[_Clock, dict[str, float]]]] = {}
    for clock, key in _clocks(session, condition, paused=True):
        if key in moves:
            old_clock, new_clock, delta = moves[key]
            by_clocks.setdefault((old_clock, new_clock), []).append((clock, delta))
    done = [
        _recompute(
            session,
            clocks,
            old_cal=old_clock,
            new_cal=new_clock,
            actor=actor,
            reason=RULE_REASON,
            cause={"cause": "sla_rule", "rule": rule or {}},
            now=now,
            scale=sla.clock_scales(old_clock, new_clock),
        )
        for (old_clock, new_clock), clocks in by_clocks.items()
    ]
    return Recomputed(
        orders=sum(d.orders for d in done),
        lifted=sum(d.lifted for d in done),
        sweep=next((d.sweep for d in reversed(done) if d.sweep), {}),
    )


def _terms_resolver(session: Session) -> Callable[[Sequence[sla.RuleSpec], tuple[int | None, str]], sla.SlaTerms]:
    """The terms ``rules`` give one (category, urgency) of this database's categories (read once)."""
    share = get_settings().sla_warning_share
    parents: dict[int, int | None] = {c: p for c, p in session.execute(select(Category.id, Category.parent_id))}

    def chain(category_id: int | None) -> list[int | None]:
        found: list[int | None] = []
        while category_id is not None and category_id not in found:
            found.append(category_id)
            category_id = parents.get(category_id)
        return found or [None]

    def terms(rules: Sequence[sla.RuleSpec], key: tuple[int | None, str]) -> sla.SlaTerms:
        return sla.resolve_terms(rules, category_chain=chain(key[0]), urgency=key[1], default_warning_share=share)

    return terms


# --- edits that recompute ----------------------------------------------------------------------------------


def set_calendar_day(
    session: Session,
    *,
    day: date,
    is_workday: bool,
    name: str | None = None,
    actor: Actor = SYSTEM,
    recompute: bool = True,
    now: datetime | None = None,
    named: bool = True,
) -> tuple[CalendarDay, Recomputed]:
    """Create or replace a calendar override and (unless ``recompute`` is false) move running deadlines. ``named``
    false: a day entered before keeps its name (``cityhub calendar set`` without ``--name``)."""
    old_cal = workcal.load_calendar(session)
    entry = workcal.CalendarEntry(day=day, is_workday=is_workday, name=name, named=named)
    row = _set_day(session, entry, actor)
    if not recompute:
        return row, Recomputed()
    new_cal = workcal.load_calendar(session)
    return row, after_calendar_change(session, old_cal=old_cal, new_cal=new_cal, days=[day], actor=actor, now=now)


def import_calendar_days(
    session: Session,
    *,
    entries: Sequence[workcal.CalendarEntry],
    actor: Actor = SYSTEM,
    recompute: bool = True,
    now: datetime | None = None,
) -> Recomputed:
    """Create or replace the overrides of many days at once (a year's holidays) and move running deadlines once."""
    old_cal = workcal.load_calendar(session)
    for entry in entries:
        _set_day(session, entry, actor)
    if not recompute or not entries:
        return Recomputed()
    new_cal = workcal.load_calendar(session)
    days = [entry.day for entry in entries]
    return after_calendar_change(session, old_cal=old_cal, new_cal=new_cal, days=days, actor=actor, now=now)


@dataclass(frozen=True)
class CalendarImport:
    """What :func:`import_calendar_text` did: the days entered, the rows (or notice items) refused, and the running
    deadlines that moved."""

    entries: list[workcal.CalendarEntry]
    errors: list[workcal.CalendarRowError]
    recomputed: Recomputed

    @property
    def holidays(self) -> int:
        return sum(not e.is_workday for e in self.entries)


def import_calendar_text(
    session: Session, *, text: str, year: int | None = None, actor: Actor = SYSTEM, recompute: bool = True
) -> CalendarImport:
    """Enter the days of what an administrator imports or pastes (:func:`calendar.parse_calendar_text`: the State
    Council's notice, or ``date,kind,name`` rows): every good one is entered, every bad one returned, running
    deadlines move once. A text with no day in it at all (blank, a header only) is refused, ValidationFailed
    :data:`calendar.NO_DAYS`: whatever the caller (command line, API, web page), not "0 days entered"."""
    entries, errors = workcal.parse_calendar_text(text, year=year)
    if not entries and not errors:
        raise ValidationFailed(workcal.NO_DAYS, details={"field": "text"})
    done = import_calendar_days(session, entries=entries, actor=actor, recompute=recompute)
    return CalendarImport(entries=entries, errors=errors, recomputed=done)


def delete_calendar_day(
    session: Session, *, day: date, actor: Actor = SYSTEM, recompute: bool = True, now: datetime | None = None
) -> Recomputed:
    """Remove a calendar override (NotFound if there is none) and move running deadlines unless told not to."""
    old_cal = workcal.load_calendar(session)
    row = session.get(CalendarDay, day)
    before = _day_facts(row) if row is not None else None
    if not workcal.delete_day(session, day=day):
        raise NotFound(f"no calendar override on {day.isoformat()}", details={"day": day.isoformat()})
    auditlog.record(session, actor=actor, area="calendar_day", target=day.isoformat(), action="delete", before=before)
    if not recompute:
        return Recomputed()
    new_cal = workcal.load_calendar(session)
    return after_calendar_change(session, old_cal=old_cal, new_cal=new_cal, days=[day], actor=actor, now=now)


def _day_facts(row: CalendarDay) -> dict[str, Any]:
    return auditlog.snapshot(row, ("is_workday", "name"))


def _set_day(session: Session, entry: workcal.CalendarEntry, actor: Actor) -> CalendarDay:
    """:func:`calendar.set_day`, written into the configuration log (cityhub.auditlog); a known day keeps its name
    when the entry does not say one (``named``)."""
    known = session.get(CalendarDay, entry.day)
    before = _day_facts(known) if known is not None else None
    name = entry.name if entry.named or known is None else known.name
    row = workcal.set_day(session, day=entry.day, is_workday=entry.is_workday, name=name)
    action = "create" if before is None else "update"
    target = entry.day.isoformat()
    auditlog.record(
        session, actor=actor, area="calendar_day", target=target, action=action, before=before, after=_day_facts(row)
    )
    return row


def _rule_ref(rule: SlaRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "category_id": rule.category_id,
        "urgency": rule.urgency.value if rule.urgency else None,
        "accept_hours": rule.accept_hours,
        "finish_days": rule.finish_days,
        "warning_share": rule.warning_share,
        "round_the_clock": rule.round_the_clock,
    }


def _rule_facts(rule: SlaRule) -> dict[str, Any]:
    """What the configuration log keeps of a time-limit rule: its reference without the id (the log's target)."""
    return {name: value for name, value in _rule_ref(rule).items() if name != "id"}


def set_sla_rule(
    session: Session,
    *,
    spec: sla.RuleSpec,
    actor: Actor = SYSTEM,
    recompute: bool = True,
    now: datetime | None = None,
) -> tuple[SlaRule, Recomputed]:
    """:func:`sla.set_rule` of ``spec``, then move the running clocks whose terms it changes (unless told not to)."""
    old_rules = sla.load_rules(session)
    known = sla.find_rule(session, spec.category_id, spec.urgency)
    before = _rule_facts(known) if known is not None else None
    rule = sla.set_rule(session, **dataclasses.asdict(spec))
    auditlog.record(
        session,
        actor=actor,
        area="sla_rule",
        target=str(rule.id),
        action="create" if before is None else "update",
        before=before,
        after=_rule_facts(rule),
    )
    if not recompute:
        return rule, Recomputed()
    done = after_rule_change(
        session, old_rules=old_rules, new_rules=sla.load_rules(session), actor=actor, now=now, rule=_rule_ref(rule)
    )
    return rule, done


def delete_sla_rule(
    session: Session, *, rule_id: int, actor: Actor = SYSTEM, recompute: bool = True, now: datetime | None = None
) -> Recomputed:
    """:func:`sla.delete_rule`, then move the running clocks that fall back to other terms (unless told not to)."""
    old_rules = sla.load_rules(session)
    rule = session.get(SlaRule, rule_id)
    ref = {**_rule_ref(rule), "deleted": True} if rule is not None else {}
    before = _rule_facts(rule) if rule is not None else None
    sla.delete_rule(session, rule_id=rule_id)
    auditlog.record(session, actor=actor, area="sla_rule", target=str(rule_id), action="delete", before=before)
    if not recompute:
        return Recomputed()
    return after_rule_change(
        session, old_rules=old_rules, new_rules=sla.load_rules(session), actor=actor, now=now, rule=ref
    )
