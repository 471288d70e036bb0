"""Time limits (办理时限): rules, deadlines, pause/resume (挂起), extension (延期), status (预警/超期).

Everything above the "database" section is pure: it takes a :class:`~cityhub.workorders.calendar.WorkCalendar`
and instants, and returns instants. Deadlines are counted in working time from the moment the clock starts
(dispatch): the unit must accept within ``accept_hours`` working hours and finish within ``finish_days``
working days; a warning (预警) is due once ``warning_share`` of the finishing time has elapsed.

Built-in defaults, used when no rule in the ``sla_rules`` table matches (and seeded by
:func:`seed_default_rules`):

============  ====================  ===================
urgency       accept within         finish within
============  ====================  ===================
normal        2 working hours       5 working days
urgent 紧急   1 working hour        2 working days
critical 特急 0.5 hour              1 day, round the clock
============  ====================  ===================

A rule may run **round the clock** (全天候, ``round_the_clock``): its hours and days are natural ones, every day,
day and night (:class:`RoundTheClock`) — an emergency such as a flooded underpass is due within the hour at 23:00 on
a Saturday, not on Monday morning. The built-in critical terms do; an approved extension of such an order adds
natural days. Which clock an order's deadlines run on is its terms' (:func:`clock_of`), read again at each step
that moves them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub import refdata
from cityhub.config import get_settings
from cityhub.errors import NotFound, ValidationFailed
from cityhub.workorders.calendar import WorkCalendar
from cityhub.workorders.lifecycle import SlaEffect
from cityhub.workorders.models import Category, SlaRule, SlaStatus, Urgency

# Keys of the remaining-time mapping stored in Order.sla_remaining while the clock is paused.
ACCEPT_KEY = "accept_due_at"
WARN_KEY = "warn_at"
DUE_KEY = "due_at"


@dataclass(frozen=True)
class SlaTerms:
    accept_hours: float  # accept (签收) within N working hours
    finish_days: float  # finish (办结) within N working days
    warning_share: float  # warn (预警) after this share of the finishing time
    round_the_clock: bool = False  # natural hours and days (全天候), not working time


class Clock(Protocol):
    """What deadlines are counted on: the working calendar (:class:`WorkCalendar`) or :class:`RoundTheClock`."""

    @property
    def day_seconds(self) -> float: ...

    def add_work_seconds(self, start: datetime, seconds: float) -> datetime: ...

    def work_seconds_between(self, a: datetime, b: datetime) -> float: ...


class RoundTheClock:
    """A clock that runs every day, day and night (全天候): an hour is an hour, a day 24 of them."""

    day_seconds = 86_400.0

    def add_work_seconds(self, start: datetime, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError(f"cannot add a negative time ({seconds} s)")
        if start.tzinfo is None:
            raise ValueError(f"naive datetime {start!r}: deadlines need timezone-aware times")
        return (start + timedelta(seconds=seconds)).astimezone(UTC)

    def work_seconds_between(self, a: datetime, b: datetime) -> float:
        return max(0.0, (b - a).total_seconds())

    def __repr__(self) -> str:
        return "RoundTheClock()"


ROUND_THE_CLOCK = RoundTheClock()


def clock_of(cal: WorkCalendar, terms: SlaTerms) -> Clock:
    """The clock ``terms`` count on: ``cal`` (working time) or, round the clock, natural time."""
    return ROUND_THE_CLOCK if terms.round_the_clock else cal


@dataclass(frozen=True)
class RuleSpec:
    """A time-limit rule detached from the database (what :func:`resolve_terms` needs)."""

    category_id: int | None
    urgency: str | None
    accept_hours: float
    finish_days: float
    warning_share: float | None = None
    round_the_clock: bool = False


@dataclass(frozen=True)
class Deadlines:
    """The instants (UTC) of an order's running clock; ``None`` where a clock does not run."""

    accept_due_at: datetime | None
    warn_at: datetime | None
    due_at: datetime | None


# (accept_hours, finish_days) per urgency when no rule matches; see the module docstring.
BUILTIN_TERMS: dict[str, tuple[float, float]] = {
    Urgency.NORMAL.value: (2.0, 5.0),
    Urgency.URGENT.value: (1.0, 2.0),
    Urgency.CRITICAL.value: (0.5, 1.0),
}
# The urgencies whose built-in terms run round the clock (an emergency waits for no working day).
BUILTIN_ROUND_THE_CLOCK = frozenset({Urgency.CRITICAL.value})


def _field(rule: Any, name: str, default: Any = None) -> Any:
    return rule.get(name, default) if isinstance(rule, Mapping) else getattr(rule, name, default)


def _urgency_value(urgency: Any) -> str | None:
    if urgency is None:
        return None
    return str(urgency.value if isinstance(urgency, Urgency) else urgency)


def builtin_terms(urgency: str, default_warning_share: float) -> SlaTerms:
    key = _urgency_value(urgency) or ""
    accept, finish = BUILTIN_TERMS.get(key, BUILTIN_TERMS[Urgency.NORMAL.value])
    return SlaTerms(accept, finish, default_warning_share, key in BUILTIN_ROUND_THE_CLOCK)


def resolve_terms(
    rules: Iterable[Any],
    *,
    category_chain: Sequence[int | None],
    urgency: str,
    default_warning_share: float,
) -> SlaTerms:
    """The terms of the most specific rule for an order.

    ``rules`` are objects or mappings with ``category_id`` (None = default rule), ``urgency`` (None = any),
    ``accept_hours``, ``finish_days``, ``warning_share`` (None = ``default_warning_share``) and optionally
    ``round_the_clock``.
    ``category_chain`` runs from the order's own category up to its root. Walking it and then the default
    level, the first level that has a rule decides; within a level a rule for the exact urgency beats one for
    any urgency. So a category's any-urgency rule beats the default level's per-urgency rules.
    """
    wanted = _urgency_value(urgency)
    index: dict[tuple[int | None, str | None], Any] = {}
    for rule in rules:
        index[(_field(rule, "category_id"), _urgency_value(_field(rule, "urgency")))] = rule
    levels = [*category_chain]
    if None not in levels:
        levels.append(None)
    for level in levels:
        rule = index.get((level, wanted)) or index.get((level, None))
        if rule is not None:
            share = _field(rule, "warning_share")
            return SlaTerms(
                float(_field(rule, "accept_hours")),
                float(_field(rule, "finish_days")),
                default_warning_share if share is None else float(share),
                bool(_field(rule, "round_the_clock", False)),
            )
    return builtin_terms(urgency, default_warning_share)


def compute_deadlines(cal: Clock, start: datetime, terms: SlaTerms) -> Deadlines:
    """Deadlines of a clock started at ``start`` (dispatch); all counted on ``cal`` from ``start`` (working time, or
    natural time: :func:`clock_of`)."""
    finish_seconds = terms.finish_days * cal.day_seconds
    return Deadlines(
        accept_due_at=cal.add_work_seconds(start, terms.accept_hours * 3600.0),
        warn_at=cal.add_work_seconds(start, terms.warning_share * finish_seconds),
        due_at=cal.add_work_seconds(start, finish_seconds),
    )


def _as_dict(deadlines: Deadlines) -> dict[str, datetime | None]:
    return {ACCEPT_KEY: deadlines.accept_due_at, WARN_KEY: deadlines.warn_at, DUE_KEY: deadlines.due_at}


def pause(cal: Clock, now: datetime, deadlines: Deadlines) -> dict[str, int]:
    """Working seconds left until each running deadline when the clock stops at ``now`` (挂起).

    A deadline already reached keeps 0 remaining (it stays overdue after :func:`resume`). Seconds are rounded
    up so that a deadline still ahead never becomes one already reached. Deadlines that are None are left out.
    """
    remaining: dict[str, int] = {}
    for key, at in _as_dict(deadlines).items():
        if at is not None:
            remaining[key] = math.ceil(cal.work_seconds_between(now, at))
    return remaining


def resume(cal: Clock, now: datetime, remaining: Mapping[str, float]) -> Deadlines:
    """Deadlines rebuilt from ``now`` with the working time that was left at :func:`pause`.

    A deadline with nothing left is due at ``now`` itself, so an order overdue before the pause is still
    overdue after it (rather than due at the next working instant).
    """

    def rebuilt(key: str) -> datetime | None:
        left = remaining.get(key)
        if left is None:
            return None
        return cal.add_work_seconds(now, float(left)) if left > 0 else now.astimezone(UTC)

    return Deadlines(rebuilt(ACCEPT_KEY), rebuilt(WARN_KEY), rebuilt(DUE_KEY))


def extend(cal: Clock, deadlines: Deadlines, days: float, *, warning_share: float | None = None) -> Deadlines:
    """An approved extension (延期) of ``days`` working days; the accept deadline is unchanged.

    ``due_at`` moves by ``days`` working days. With the order's ``warning_share``, ``warn_at`` moves by
    ``warning_share * days`` working days, which keeps the warning at exactly that share of the new total
    (share·(T+D) = share·T + share·D, whatever the original total T was). Without it, ``warn_at`` moves by the
    full ``days`` so that the warning keeps its lead time before ``due_at``.
    """
    if days <= 0:
        raise ValidationFailed(f"an extension needs a positive number of working days, got {days}")
    if deadlines.due_at is None:
        raise ValidationFailed("cannot extend an order whose time limit is not running")
    extra = days * cal.day_seconds
    warn_extra = extra if warning_share is None else warning_share * extra
    return Deadlines(
        accept_due_at=deadlines.accept_due_at,
        warn_at=None if deadlines.warn_at is None else cal.add_work_seconds(deadlines.warn_at, warn_extra),
        due_at=cal.add_work_seconds(deadlines.due_at, extra),
    )


def extend_remaining(
    cal: Clock, remaining: Mapping[str, int], days: float, *, warning_share: float | None = None
) -> dict[str, int]:
    """:func:`extend` for a paused clock (an extension approved while the order is suspended)."""
    if days <= 0:
        raise ValidationFailed(f"an extension needs a positive number of working days, got {days}")
    if remaining.get(DUE_KEY) is None:
        raise ValidationFailed("cannot extend an order whose time limit is not running")
    extra = days * cal.day_seconds
    result = dict(remaining)
    result[DUE_KEY] = remaining[DUE_KEY] + math.ceil(extra)
    if remaining.get(WARN_KEY) is not None:
        result[WARN_KEY] = remaining[WARN_KEY] + math.ceil(extra if warning_share is None else warning_share * extra)
    return result


def tighten(cal: Clock, now: datetime, deadlines: Deadlines, terms: SlaTerms, *, accepting: bool) -> Deadlines:
    """The deadlines after an urgency was raised at ``now`` (升级 with 紧急/特急): each no later than the new
    urgency's terms counted from ``now``, never later than it was. The accept deadline only while the order waits to
    be accepted (``accepting``); an unset deadline stays unset."""
    sooner = compute_deadlines(cal, now, terms)

    def earlier(current: datetime | None, limit: datetime | None) -> datetime | None:
        return current if current is None or limit is None else min(current, limit)

    return Deadlines(
        accept_due_at=earlier(deadlines.accept_due_at, sooner.accept_due_at) if accepting else deadlines.accept_due_at,
        warn_at=earlier(deadlines.warn_at, sooner.warn_at),
        due_at=earlier(deadlines.due_at, sooner.due_at),
    )


def iso(value: datetime | None) -> str | None:
    """A deadline as the audit trail's payloads write it (ISO 8601), None as None."""
    return value.isoformat() if value is not None else None


def moved_deadlines(before: Deadlines, after: Deadlines) -> dict[str, dict[str, str | None]]:
    """What moved between two sets of deadlines, as the audit trail and the ``deadline`` notifications record it:
    ``{"from": {key: ISO}, "to": {key: ISO}}`` with only the keys that differ; empty if nothing moved."""
    old, new = _as_dict(before), _as_dict(after)
    keys = [k for k in old if old[k] != new[k]]
    if not keys:
        return {}
    return {"from": {k: iso(old[k]) for k in keys}, "to": {k: iso(new[k]) for k in keys}}


def clock_scales(old_clock: Clock, new_clock: Clock) -> dict[str, float]:
    """How the time a deadline is counted in converts when an order's terms move to another clock (working time ↔
    round the clock): the accept deadline's hours stay hours, the finishing days stay days (5 working days → 5 days)."""
    days = new_clock.day_seconds / old_clock.day_seconds
    return {ACCEPT_KEY: 1.0, WARN_KEY: days, DUE_KEY: days}


def tighten_remaining(
    cal: Clock, remaining: Mapping[str, int], terms: SlaTerms, *, counted_on: Clock | None = None
) -> dict[str, int]:
    """:func:`tighten` for a paused clock: the time left is capped at the new urgency's (a suspended order has been
    accepted, so its accept time is left as it is). ``counted_on``: the clock the time left was counted on, when the
    raise moves the order to another (``cal``, the new urgency's): converted first as :func:`clock_scales` says —
    half a working day left is half a day round the clock, not half a working day's hours."""
    if counted_on is not None and counted_on != cal:
        scales = clock_scales(counted_on, cal)
        remaining = {key: math.ceil(left * scales.get(key, 1.0)) for key, left in remaining.items()}
    finish = terms.finish_days * cal.day_seconds
    caps = {WARN_KEY: math.ceil(terms.warning_share * finish), DUE_KEY: math.ceil(finish)}
    return {key: min(left, caps[key]) if key in caps else left for key, left in remaining.items()}


def status_at(now: datetime, *, warn_at: datetime | None, due_at: datetime | None, paused: bool) -> SlaStatus:
    """The time-limit status at ``now``. A paused or unset clock is ``none``: the sweep leaves such orders
    alone and the service keeps what it recorded before the pause (e.g. ``overdue_at``)."""
    if paused or due_at is None:
        return SlaStatus.NONE
    if now >= due_at:
        return SlaStatus.OVERDUE
    if warn_at is not None and now >= warn_at:
        return SlaStatus.WARNING
    return SlaStatus.OK


# --- database ------------------------------------------------------------------------------------------


def load_rules(session: Session) -> list[RuleSpec]:
    """All time-limit rules, detached from the session, from the process's cache while the table is unchanged
    (:mod:`cityhub.refdata`)."""
    return list(refdata.cached(session, "workorders.sla_rules", ("sla_rules",), _read_rules))


def _read_rules(session: Session) -> tuple[RuleSpec, ...]:
    return tuple(
        RuleSpec(
            r.category_id, _urgency_value(r.urgency), r.accept_hours, r.finish_days, r.warning_share, r.round_the_clock
        )
        for r in session.scalars(select(SlaRule))
    )


def category_chain(session: Session, category_id: int | None) -> list[int | None]:
    """``category_id`` and its ancestors up to the root; ``[None]`` without a category."""
    if category_id is None:
        return [None]
    from cityhub.workorders.categories import category_chain as chain_of

    return list(chain_of(session, category_id=category_id))


def terms_for(session: Session, *, category_id: int | None, urgency: str) -> SlaTerms:
    """The terms for an order of ``category_id`` (or none) and ``urgency``, from the ``sla_rules`` table."""
    return resolve_terms(
        load_rules(session),
        category_chain=category_chain(session, category_id),
        urgency=urgency,
        default_warning_share=get_settings().sla_warning_share,
    )


def _find_rule(session: Session, category_id: int | None, urgency: str | None) -> SlaRule | None:
    # NULLs are distinct in the unique constraint, so "IS NULL" has to be spelled out.
    query = select(SlaRule).where(
        SlaRule.category_id.is_(None) if category_id is None else SlaRule.category_id == category_id,
        SlaRule.urgency.is_(None) if urgency is None else SlaRule.urgency == Urgency(urgency),
    )
    return session.scalars(query).first()


def seed_default_rules(session: Session) -> int:
    """Insert the built-in defaults as category-less rules (an any-urgency row plus one per urgency, the critical one
    round the clock) where missing; existing rows are kept. Returns the number of rows added."""
    added = 0
    rows: list[tuple[str | None, tuple[float, float]]] = [(None, BUILTIN_TERMS[Urgency.NORMAL.value])]
    rows += list(BUILTIN_TERMS.items())
    for urgency, (accept_hours, finish_days) in rows:
        if _find_rule(session, None, urgency) is None:
            session.add(
                SlaRule(
                    category_id=None,
                    urgency=None if urgency is None else Urgency(urgency),
                    accept_hours=accept_hours,
                    finish_days=finish_days,
                    warning_share=None,
                    round_the_clock=urgency in BUILTIN_ROUND_THE_CLOCK,
                )
            )
            added += 1
    session.flush()
    return added


def find_rule(session: Session, category_id: int | None, urgency: Any) -> SlaRule | None:
    """The rule of one category (None = default) × urgency (None = any), if there is one (an unknown urgency has
    none)."""
    key = _urgency_value(urgency)
    if key is not None and key not in BUILTIN_TERMS:
        return None
    return _find_rule(session, category_id, key)


def set_rule(
    session: Session,
    *,
    category_id: int | None,
    urgency: str | None,
    accept_hours: float,
    finish_days: float,
    warning_share: float | None = None,
    round_the_clock: bool = False,
) -> SlaRule:
    """Create or replace the rule of one category (None = default) × urgency (None = any); ``round_the_clock``: its
    hours and days are natural ones (全天候)."""
    problems: dict[str, str] = {}
    for name, value in (("accept_hours", accept_hours), ("finish_days", finish_days)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            problems[name] = "must be a positive number"
    if warning_share is not None and not (isinstance(warning_share, int | float) and 0 < warning_share < 1):
        problems["warning_share"] = "must be between 0 and 1 (exclusive)"
    if urgency is not None and urgency not in BUILTIN_TERMS:
        problems["urgency"] = f"must be one of {', '.join(BUILTIN_TERMS)} or empty"
    if problems:
        raise ValidationFailed(
            "invalid time-limit rule: " + "; ".join(f"{k} {v}" for k, v in problems.items()), details=problems
        )
    if category_id is not None and session.get(Category, category_id) is None:
        raise NotFound(f"category {category_id} does not exist", details={"category_id": category_id})
    key = _urgency_value(urgency)
    rule = find_rule(session, category_id, key)
    if rule is None:
        rule = SlaRule(category_id=category_id, urgency=None if key is None else Urgency(key))
        session.add(rule)
    rule.accept_hours = float(accept_hours)
    rule.finish_days = float(finish_days)
    rule.warning_share = None if warning_share is None else float(warning_share)
    rule.round_the_clock = bool(round_the_clock)
    session.flush()
    return rule


def delete_rule(session: Session, *, rule_id: int) -> None:
    """Remove a rule (NotFound if missing); orders fall back to the parent category's, the default or built-in terms."""
    rule = session.get(SlaRule, rule_id)
    if rule is None:
        raise NotFound(f"time-limit rule {rule_id} not found", details={"rule_id": rule_id})
    session.delete(rule)
    session.flush()


def event_deadlines(
    effect: SlaEffect | None, due_at: datetime | None, accept_due_at: datetime | None
) -> dict[str, Any]:
    """The deadlines an action set, as its audit event records them: after an action that starts, extends, resumes
    or tightens the clock, or hands the order on keeping its finish deadline (下派). Assessment judges each dispatch
    round by the deadlines in force then (see analytics.kpi)."""
    if effect not in (SlaEffect.START, SlaEffect.EXTEND, SlaEffect.RESUME, SlaEffect.TIGHTEN, SlaEffect.HANDOVER) or (
        due_at is None
    ):
        return {}
    return {"accept_due_at": iso(accept_due_at), "due_at": iso(due_at)}
