"""Assessment (考核): per-unit performance rates computed from the audit trail, rankings and drill-down.

Every rate is ``numerator / denominator`` over a set of *facts*: one row per counted event (or order) with the
unit it is attributed to and whether it counts in the numerator. The same facts feed the per-unit aggregate and
the drill-down, so a drill-down lists exactly the orders behind a figure. They come from one walk of the trails of
the period's orders (:func:`_walked_facts`: what each event is — clock start, assignment, the deadlines it records,
the marks it lifts — is asked in SQL, what came before and after it in its episode in one pass per trail).

Definitions (one table, :data:`KPIS`; times are compared in UTC, periods are local calendar periods in
``settings.tz``; "in P" means the event's ``at`` lies in ``[start, end)`` of the period):

* **Assignment** (派单): an event ``dispatch`` / ``transfer`` / ``assign`` whose ``to_state`` is ``dispatched``;
  its ``unit_id`` is the unit that received the order. A leader's ``assign`` counts only when it sent the order to
  a unit (a unit named, and for an order waiting to be accepted the deadlines it restarted recorded): an instruction
  on an order its unit already holds is neither an assignment nor a clock start, whatever unit its event records.
  A **clock start** is an assignment or a ``reopen``.
  An **episode** of an order runs from one clock start to the next (events are ordered by id).
* ``on_time_accept`` 按时签收率: accept events in P, attributed to the unit holding the order: the one the latest
  assignment before the accept sent it to (a reopen continues with it), whoever acted (an administrator accepting
  for a unit credits that unit); the event's own unit only for a history without an assignment. **A deadline
  missed counts when it is missed**: the SLA sweep's ``sla_accept_overdue`` mark in P is itself a fact, never in the
  numerator, attributed like an accept — unless an ``sla_recompute`` in the same episode lifted it since — and the
  accept that follows it in that episode is not counted again. So an order left unaccepted past its limit lowers
  the rate of the period its limit passed in, accepted or not. An accept without such a mark is on time unless
  it is later than the accept deadline *in force*: the
  ``accept_due_at`` recorded by the latest deadline event before it in the episode (clock start, approved
  extension, resume, a reply sent back or an escalation that raised the urgency —
  :func:`cityhub.workorders.service.act` writes the deadlines in the payload — or an ``sla_recompute`` that moved
  it after a calendar or time-limit edit, in
  ``payload.to``), else the order's current ``accept_due_at`` (histories written without recorded deadlines; exact
  for the current episode only).
* ``on_time_completion`` 按时办结率: reply events in P and the sweep's ``sla_overdue`` marks in P, attributed like
  accepts, counted as for acceptance: a mark is a miss (unless an ``sla_recompute`` in its episode lifted it — its
  ``payload.from.sla_status`` is ``overdue``: the edit moved the deadline ahead of the time of the edit), the reply
  after it in the episode is not counted again, so an order left unanswered past its limit counts against its unit
  in the period the limit passed, whether or when it is answered. A reply without a standing mark is on time unless
  it is later than the ``due_at`` in force, found the same way (approved extensions and recomputes move it).
  An extension approved after the order was already marked overdue does not cure it (the extension clears the
  status, so a later recompute lifts nothing). The deadline comparison runs in Python (times in JSON payloads
  compare portably there).
* ``return_rate`` 退单率: assignments in P (cohort); numerator: those followed by a ``return`` in the same episode.
* ``extension_rate`` 延期率: assignments in P; numerator: those with an ``approve_extension`` in the same episode.
* ``satisfaction`` 满意率: callback events in P, attributed to the unit that held the order at the last reply
  before the callback (else the order's lead unit); numerator: callbacks with ``payload.satisfied = true``.
* ``resolution`` 解决率: ``close`` events in P, attributed like callbacks; numerator: ``to_state =
  closed_resolved``. Instant answers (秒回) have no handling unit and are not counted.
* ``repeat_rate`` 重复投诉率: orders created in P, attributed to the unit of their first assignment; numerator:
  orders with an earlier order created less than ``repeat_days`` (default 30) days before from the same citizen
  phone (its digits without China's country code, as the progress lookup compares them), or at the same address
  (exact, trimmed) with the same category. A problem split off an appeal (拆单) is never a repeat: the citizen did
  not appeal again.
* ``reopen_rate`` 重办率: reply events in P (as for completion); numerator: replies followed by a ``reopen``
  before the next reply.

A **street's** figures count its communities' facts with its own (:func:`jurisdiction`): what a community handles
is handled within the street (中事不出镇), as the street's data scope already includes its communities. A
community's figures are its own; a ranking of all tiers together counts a community's facts twice (in its row and
its street's).

**Exemptions** (考核核减, :mod:`cityhub.analytics.exemptions`): a supervisor may approve a unit's request that one
order not count against it in some measures (:data:`EXEMPTIBLE`). The facts of those measures of that order
attributed to that unit are then left out of its figures — numerator and denominator, in whichever period they fall
— and so out of its street's, its composite score and the rankings; the drill-down still lists them, marked
(``exempted``), and each figure says how many facts were left out (``exempted``). The decision writes an event of the
order, so the kept figures of every period its trail reaches are computed again (see *the figures kept*).

Rankings (:func:`ranking`) list units whose denominator reaches ``min_sample`` (default 30, shown with ``n``);
the others are listed apart as insufficient sample. The composite score (综合得分) is
``100 * Σ w_k s_k / Σ w_k`` over the KPIs with a non-empty denominator, where ``s_k`` is the rate, or
``1 - rate`` for lower-is-better KPIs, and ``w_k`` are the weights in :data:`KPIS` (they sum to 100); its
sample ``n`` is the unit's number of assignments in the period (工单量). Each ranked unit carries its component
rates (``kpis``) with the points each costs the score (:func:`points_lost`, ``100 * w_k (1 - s_k) / Σ w``: they add
up to ``100 - score``) and the costliest (``drag``), so the ranking says why a unit ranks low.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import (
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    union,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import NullType

from cityhub.config import get_settings
from cityhub.db import UTCDateTime, database_key, utcnow
from cityhub.errors import NotFound, ValidationFailed
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import changes
from cityhub.workorders.models import Order, OrderEvent
from cityhub.workorders.service import order_numbers

Direction = Literal["higher", "lower"]

DEFAULT_MIN_SAMPLE = 30
DEFAULT_REPEAT_DAYS = 30


@dataclass(frozen=True)
class KpiDef:
    name: str
    label_zh: str
    label_en: str
    numerator: str
    denominator: str
    direction: Direction
    weight: float  # share of the composite score (the weights sum to 100)
    # What it counts in plain words, numerator and denominator, for the people assessed and those who read it (the
    # assessment page, the 专报): ``numerator`` and ``denominator`` above are the engineers' wording. ``{days}``: the
    # repeat window (:data:`DEFAULT_REPEAT_DAYS`).
    plain_zh: tuple[str, str] = ("", "")
    plain_en: tuple[str, str] = ("", "")

    def label(self, lang: str = "zh") -> str:
        """The KPI's name in ``lang``, as the analysis report names its languages (``zh``, ``en``)."""
        return self.label_en if lang == "en" else self.label_zh

    def explained(self, lang: str = "zh", *, repeat_days: int = DEFAULT_REPEAT_DAYS) -> tuple[str, str]:
        """What the numerator and the denominator count, in ``lang`` (``zh``, ``en``), in plain words."""
        numerator, denominator = self.plain_en if lang == "en" else self.plain_zh
        return numerator.format(days=repeat_days), denominator.format(days=repeat_days)


KPIS: tuple[KpiDef, ...] = (
    KpiDef(
        "on_time_accept",
        "按时签收率",
        "On-time acceptance",
        "accepts made before the accept deadline in force for their dispatch (incl. recomputes)",
        "accept events in the period, and accept limits that passed in it unaccepted (unit holding the order)",
        "higher",
        15,
        plain_zh=(
            "在签收时限内完成的签收",
            "本期的签收，加上签收时限在本期届满仍未签收的派单（记在当时持有工单的单位）",
        ),
        plain_en=(
            "acceptances made within the acceptance time limit",
            "acceptances in the period, plus dispatches whose acceptance limit ran out in it unaccepted "
            "(counted to the unit holding the order)",
        ),
    ),
    KpiDef(
        "on_time_completion",
        "按时办结率",
        "On-time completion",
        "replies made before the due_at in force (incl. approved extensions and recomputes) and not marked overdue",
        "reply events in the period, and time limits that passed in it unanswered (unit holding the order)",
        "higher",
        25,
        plain_zh=(
            "在办理时限内（含批准的延期）作出、且工单未被标记超期的答复",
            "本期的答复，加上办理时限在本期届满仍未答复的工单（记在当时持有工单的单位）",
        ),
        plain_en=(
            "replies made within the time limit (approved extensions included) on orders not marked overdue",
            "replies in the period, plus orders whose time limit ran out in it unanswered "
            "(counted to the unit holding the order)",
        ),
    ),
    KpiDef(
        "return_rate",
        "退单率",
        "Return rate",
        "assignments returned by the unit",
        "assignments (dispatch/transfer/assign) to the unit in the period",
        "lower",
        10,
        plain_zh=("被该单位退回的派单", "本期派给该单位的工单（派单、转派、领导交办）"),
        plain_en=(
            "assignments the unit returned",
            "assignments to the unit in the period (dispatched, transferred or assigned by a leader)",
        ),
    ),
    KpiDef(
        "extension_rate",
        "延期率",
        "Extension rate",
        "assignments with an approved extension",
        "assignments to the unit in the period",
        "lower",
        5,
        plain_zh=("获批延期的派单", "本期派给该单位的工单"),
        plain_en=(
            "assignments given an approved extension",
            "assignments to the unit in the period",
        ),
    ),
    KpiDef(
        "satisfaction",
        "满意率",
        "Satisfaction",
        "callbacks with the citizen satisfied",
        "callbacks in the period (unit that made the last reply)",
        "higher",
        20,
        plain_zh=("市民表示满意的回访", "本期的回访（记在最后作出答复的单位）"),
        plain_en=(
            "callbacks in which the citizen was satisfied",
            "callbacks in the period (counted to the unit that made the last reply)",
        ),
    ),
    KpiDef(
        "resolution",
        "解决率",
        "Resolution",
        "closes as resolved (closed_resolved)",
        "closes in the period (unit that made the last reply)",
        "higher",
        15,
        plain_zh=("以“已解决”办结的工单", "本期办结的工单（记在最后作出答复的单位）"),
        plain_en=(
            "orders closed as resolved",
            "orders closed in the period (counted to the unit that made the last reply)",
        ),
    ),
    KpiDef(
        "repeat_rate",
        "重复投诉率",
        "Repeat-complaint rate",
        "orders with an earlier order from the same phone, or same address and category, within N days",
        "orders created in the period (unit of the first assignment)",
        "lower",
        5,
        plain_zh=(
            "此前 {days} 天内已有同一来电号码、或同一地址同一类别诉求的工单",
            "本期受理的工单（记在首次派往的单位）",
        ),
        plain_en=(
            "orders with an earlier appeal from the same phone, or of the same category at the same address, "
            "within {days} days",
            "orders received in the period (counted to the unit first sent them)",
        ),
    ),
    KpiDef(
        "reopen_rate",
        "重办率",
        "Reopen rate",
        "replies followed by a reopen before the next reply",
        "reply events in the period (unit holding the order)",
        "lower",
        5,
        plain_zh=("作出后、下一次答复前被重办的答复", "本期的答复（记在当时持有工单的单位）"),
        plain_en=(
            "replies followed by a reopening before the next reply",
            "replies in the period (counted to the unit holding the order)",
        ),
    ),
)
KPI_BY_NAME: dict[str, KpiDef] = {k.name: k for k in KPIS}

ASSIGN_ACTIONS = ("dispatch", "transfer", "assign")
CLOCK_START_ACTIONS = (*ASSIGN_ACTIONS, "reopen")
RECOMPUTE = "sla_recompute"  # cityhub.workorders.recompute.ACTION: payload {"from": {...}, "to": {...}}
# Events whose payload holds deadlines: at the top level, or under "to" for a recompute (only those it moved); an
# escalation that raised the urgency records the deadlines it tightened, a reply sent back (reject_reply) the
# deadlines it gave the unit back.
DEADLINE_ACTIONS = (*CLOCK_START_ACTIONS, "approve_extension", "resume", "reject_reply", "escalate", RECOMPUTE)
ACCEPT_MARK = "sla_accept_overdue"
OVERDUE = "overdue"
TIMED_KPIS = ("on_time_accept", "on_time_completion")
DISPATCHED = "dispatched"


# --- periods ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A local calendar period ``[start, end)``; ``label`` is how the user wrote it."""

    label: str
    kind: Literal["year", "quarter", "month", "week", "day", "range"]
    first: date  # first local day
    last: date  # last local day (inclusive)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=get_settings().tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=get_settings().tz).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        if self.kind == "month":
            last = self.first - timedelta(days=1)
            return month_period(last.year, last.month)
        if self.kind == "week":
            return week_period(self.first - timedelta(days=7))
        if self.kind == "quarter":
            last = self.first - timedelta(days=1)
            return quarter_period(last.year, (last.month + 2) // 3)
        if self.kind == "year":
            return year_period(self.first.year - 1)
        first, last = self.first - timedelta(days=self.days), self.first - timedelta(days=1)
        return Period(f"{first.isoformat()}..{last.isoformat()}", "range", first, last)

    def local_days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


def month_period(year: int, month: int) -> Period:
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period(f"{year:04d}-{month:02d}", "month", first, nxt - timedelta(days=1))


def quarter_period(year: int, quarter: int) -> Period:
    return Period(
        f"{year:04d}-Q{quarter}", "quarter", date(year, 3 * quarter - 2, 1), month_period(year, 3 * quarter).last
    )


def year_period(year: int) -> Period:
    return Period(f"{year:04d}", "year", date(year, 1, 1), date(year, 12, 31))


def week_period(day: date) -> Period:
    monday = day - timedelta(days=day.weekday())
    iso = monday.isocalendar()
    return Period(f"{iso.year:04d}-W{iso.week:02d}", "week", monday, monday + timedelta(days=6))


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)


_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str) -> Period:
    """``2026-10`` (month), ``2026-W43`` (ISO week), ``2026-10-05`` (day), ``2026-10-01..2026-10-15``, and for a
    longer view ``2026-Q4`` (quarter) or ``2026`` (year).

    The one reader of the period forms users type (the assessment, and the correlation graph's ``parse_period``)."""
    try:
        period = _read_period(text.strip())
        if period is not None and period.last >= date.max:  # its end, the start of the day after, does not exist
            raise ValueError("it reaches the end of the calendar")
        if period is not None:
            period.start  # noqa: B018 — year 1's local midnight is before the first UTC moment: OverflowError
    except (ValueError, OverflowError) as exc:
        raise ValidationFailed(f"bad period '{text}': {exc}", details={"field": "period"}) from None
    if period is None:
        raise ValidationFailed(
            f"bad period '{text}': use 2026-10, 2026-W43, 2026-10-05, 2026-10-01..2026-10-15, 2026-Q4 or 2026",
            details={"field": "period"},
        )
    return period


RECENT_DAYS = 30  # the period the figures (dashboard, hot topics, dispatch outcomes) show when none is asked for


def period_or_recent(text: str | None) -> Period:
    """The period typed (any ``parse_period`` form; ValidationFailed naming the field), else the last
    ``RECENT_DAYS`` days to today in the district's time zone — so the figures mean something on the 1st of a month
    as on the 30th."""
    if text and text.strip():
        return parse_period(text)
    today = utcnow().astimezone(get_settings().tz).date()
    return parse_period(f"{today - timedelta(days=RECENT_DAYS - 1)}..{today}")


def _read_period(raw: str) -> Period | None:
    """The period ``raw`` names, None for no form of one; ``ValueError`` for a form naming no date."""
    if m := _QUARTER.match(raw):
        return quarter_period(int(m.group(1)), int(m.group(2)))
    if m := _YEAR.match(raw):
        return year_period(int(m.group(1)))
    if m := _MONTH.match(raw):
        return month_period(int(m.group(1)), int(m.group(2)))
    if m := _WEEK.match(raw):
        return week_period(date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1))
    if ".." in raw:
        a, b = (date.fromisoformat(p.strip()) for p in raw.split("..", 1))
        if b < a:
            raise ValueError("the range ends before it starts")
        return Period(raw, "range", a, b)
    if raw[:1].isdigit():  # one day in any ISO form: 2026-10-05, 20261005, 2026-W43-1, 2026-278
        d = date.fromisoformat(raw)
        return Period(raw, "day", d, d)
    return None


# --- fact queries -----------------------------------------------------------------------------------------


def _ev(name: str) -> Any:
    return OrderEvent.__table__.alias(name)


def _sent_by_leader(e: Any) -> Any:
    """Unless ``e`` is a leader's 交办 (``assign``), true; for one, whether it sent the order to a unit and so started
    its clock: a unit named (an order received or returned, or one held by another unit: its event records the new
    deadlines). An instruction on an order its unit already holds — no unit named, or that unit again — keeps the
    holder and the clock; its event still ends in ``dispatched`` while the order waits to be accepted, and without a
    unit named records the leader's own unit."""
    return or_(
        e.c.action != "assign",
        and_(
            e.c.payload["unit_id"].as_integer().is_not(None),
            or_(e.c.from_state != DISPATCHED, e.c.payload["due_at"].as_string().is_not(None)),
        ),
    )


def _is_clock_start(e: Any) -> Any:
    return and_(e.c.action.in_(CLOCK_START_ACTIONS), e.c.to_state == DISPATCHED, _sent_by_leader(e))


def _is_assignment(e: Any) -> Any:
    """``e`` sent the order to a unit (the event's unit): a dispatch, transfer or a leader's assignment that sent it
    (:func:`_sent_by_leader`), or a reopen that named a unit to do it again (重办 by another unit; a reopen naming
    none continues with the unit that had it)."""
    return and_(
        _is_clock_start(e),
        or_(e.c.action != "reopen", e.c.payload["unit_id"].as_integer().is_not(None)),
    )


def _lifts(r: Any, mark: str) -> Any:
    """``r`` is an ``sla_recompute`` that moved the deadline ahead and lifted ``mark``."""
    cleared = (
        r.c.payload[("from", "accept_overdue")].as_boolean() == literal(True)
        if mark == ACCEPT_MARK
        else r.c.payload[("from", "sla_status")].as_string() == literal(OVERDUE)
    )
    return and_(r.c.action == RECOMPUTE, cleared)


def _in(e: Any, period: Period) -> Any:
    return and_(e.c.at >= period.start, e.c.at < period.end)


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


# --- episode walks ----------------------------------------------------------------------------------------
#
# The facts of a period are found by walking the trails of the orders with an event of a counted action in it: one
# query reads those trails (the events that start a clock, record a deadline, mark a limit missed or are counted),
# oldest first, with what each event is — clock start, assignment, the deadlines it records, the marks it lifts —
# computed in SQL by the predicates above, so the JSON payloads read the same on every backend; one pass over each
# trail then answers, for every counted event, what correlated look-ups per event asked before (its unit, a standing
# mark, the deadline in force, what followed in its episode). A year's eight figures at 200,000 orders: seconds of
# look-ups per event became one read of the trails.

COMPLETION_MARK = "sla_overdue"
# The counted events of each walked KPI (the repeat rate counts orders, not events).
_FACT_ACTIONS: dict[str, tuple[str, ...]] = {
    "on_time_accept": ("accept", ACCEPT_MARK),
    "on_time_completion": ("reply", COMPLETION_MARK),
    "return_rate": CLOCK_START_ACTIONS,
    "extension_rate": CLOCK_START_ACTIONS,
    "satisfaction": ("callback",),
    "resolution": ("close",),
    "reopen_rate": ("reply",),
}
WALKED_KPIS = tuple(_FACT_ACTIONS)
# Every event a walk needs besides the counted ones: clock starts, deadlines, marks, what follows an act.
_WALKED_ACTIONS = tuple(
    sorted({*CLOCK_START_ACTIONS, *DEADLINE_ACTIONS, *(a for acts in _FACT_ACTIONS.values() for a in acts), "return"})
)
# The events whose unit a walk can credit with a fact: an assignment (a clock start naming its unit) makes its unit
# the holder of what follows, and an accept or reply of a trail without an assignment before it counts for its own.
_HOLDING_ACTIONS = (*CLOCK_START_ACTIONS, "accept", "reply")


def _can_hold(order_id: Any, units: Collection[int]) -> Any:
    """``order_id`` is one of the orders that can hold a fact of ``units`` (a superset of them): the walk credits a
    fact to the unit holding the order — the unit of an assignment event (:data:`_HOLDING_ACTIONS`), else the accept's
    or reply's own — and a callback or close to the unit holding it at the last reply, else the order's lead unit. So
    an order none of whose events of those actions names one of ``units`` and whose lead unit is none of them holds
    no fact of theirs, in any period; a walk of the trails of the others (each read whole) finds every fact of
    ``units`` that the walk of all the period's orders finds.

    The set is read once, from ``ix_order_events_unit_action`` alone and the lead unit's index of ``orders``, and the
    period's orders, read through the period's index as for the whole district, are looked up in it: ``+ 0`` keeps
    SQLite from reading it the other way round, every order the units ever held by its key (a busy street's orders of
    all the years: 2 s for a month's figure)."""
    g = _ev("g")
    o = Order.__table__
    ids = sorted(set(units))
    held = union(
        select(g.c.order_id).where(g.c.unit_id.in_(ids), g.c.action.in_(_HOLDING_ACTIONS)),
        select(o.c.id).where(o.c.lead_unit_id.in_(ids)),
    )
    return (order_id + literal_column("0")).in_(held)


def _recorded(e: Any, key: str) -> Any:
    """The deadline ``key`` (ISO text) a deadline event records: a clock event's top-level ``key``, an
    ``sla_recompute``'s ``to.key`` (only those it moved); NULL for other events."""
    return case(
        (e.c.action == RECOMPUTE, e.c.payload[("to", key)].as_string()),
        (e.c.action.in_(DEADLINE_ACTIONS), e.c.payload[key].as_string()),
    )


def _trail_rows(
    session: Session,
    period: Period,
    kpis: Sequence[str],
    units: Collection[int] | None = None,
    order_ids: Collection[int] | None = None,
) -> Iterable[Any]:
    """The walked events of every order with an event of the ``kpis``' counted actions in the period (with
    ``units``, of those of them that can hold a fact of ``units``: :func:`_can_hold`), by order and id: (id,
    order_id, action, to_state, unit_id, in the period, clock start, assignment, recorded accept_due_at, recorded
    due_at, lifts the accept mark, lifts the overdue mark, and for the counted events of the period what judging them
    needs: an act's time and the order's current deadline, a callback's verdict, the order's lead unit for a callback
    or close)."""
    e, f = _ev("e"), _ev("f")
    o = Order.__table__
    counted = sorted({a for k in kpis for a in _FACT_ACTIONS[k]})
    orders = select(f.c.order_id).where(f.c.action.in_(counted), _in(f, period))
    if units is not None:  # one unit's figures: not the trails of every order of the period
        orders = orders.where(_can_hold(f.c.order_id, units))
    if order_ids is not None:  # one order's facts (:func:`order_facts`)
        orders = orders.where(f.c.order_id.in_(sorted(order_ids)))
    in_period = _in(e, period)

    def of_order(column: Any) -> Any:  # read for the few events that need it, not joined to every event
        return select(column).where(o.c.id == e.c.order_id).scalar_subquery()

    query = (
        select(
            e.c.id,
            e.c.order_id,
            e.c.action,
            e.c.to_state,
            e.c.unit_id,
            _flag(in_period),
            _flag(_is_clock_start(e)),
            _flag(_is_assignment(e)),
            _recorded(e, "accept_due_at"),
            _recorded(e, "due_at"),
            _flag(_lifts(e, ACCEPT_MARK)),
            _flag(_lifts(e, COMPLETION_MARK)),
            # Raw (the driver's value): converted by the walk for the acts only, not for every event of a trail.
            type_coerce(case((and_(e.c.action.in_(("accept", "reply")), in_period), e.c.at)), NullType()),
            type_coerce(
                case(
                    (and_(e.c.action == "accept", in_period), of_order(o.c.accept_due_at)),
                    (and_(e.c.action == "reply", in_period), of_order(o.c.due_at)),
                ),
                NullType(),
            ),
            _flag(and_(e.c.action == "callback", e.c.payload["satisfied"].as_boolean() == literal(True))),
            case((and_(e.c.action.in_(("callback", "close")), in_period), of_order(o.c.lead_unit_id))),
        )
        .where(e.c.order_id.in_(orders), e.c.action.in_(_WALKED_ACTIONS))
        .order_by(e.c.order_id, e.c.id)
    )
    return session.execute(query)


class _Counted:
    """A fact being walked: what followed in its episode may still make it a hit (or lift a mark)."""

    __slots__ = ("event", "hit", "lifted", "order_id", "ref_id", "unit_id")

    def __init__(self, ref_id: int, order_id: int, unit_id: int | None, hit: bool, event: str | None = None) -> None:
        self.ref_id = ref_id
        self.order_id = order_id
        self.unit_id = unit_id
        self.hit = hit
        self.event = event
        self.lifted = False


def _walked_facts(
    session: Session,
    period: Period,
    kpis: Sequence[str],
    units: Collection[int] | None = None,
    order_ids: Collection[int] | None = None,
) -> dict[str, list[_Counted]]:
    """The facts of each of ``kpis`` (of :data:`WALKED_KPIS`) in the period, in trail order (:func:`_as_facts` makes
    them :class:`Fact` rows); rows without a unit and lifted marks left out. With ``units``, only the trails of the
    orders that can hold a fact of theirs are walked: every fact of ``units`` is there, other units' maybe only some.

    Per trail, in id order, an event is first judged by what came before it, then moves the state:
    the unit holding the order (the latest assignment naming one), the unit it was held by at the last reply, the
    standing marks of the episode (set by a mark, cleared by a recompute lifting it and by a clock start), the
    deadlines in force (the latest recorded in the episode; a clock start records its own, or none), and the facts
    of the episode still open to what follows (assignments to a return or approved extension, marks to a lifting
    recompute; a reply to a reopen before the next reply)."""
    wanted = set(kpis)
    out: dict[str, list[_Counted]] = {k: [] for k in kpis}
    marks = {ACCEPT_MARK: "on_time_accept", COMPLETION_MARK: "on_time_completion"}
    marks = {mark: name for mark, name in marks.items() if name in wanted}
    acts = {"accept": ("on_time_accept", ACCEPT_MARK, 0), "reply": ("on_time_completion", COMPLETION_MARK, 1)}
    acts = {act: spec for act, spec in acts.items() if spec[0] in wanted}
    returns, extensions, reopens = ("return_rate" in wanted, "extension_rate" in wanted, "reopen_rate" in wanted)
    dialect = session.get_bind().dialect
    as_time: Callable[[Any], Any] = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None) or (
        lambda value: value
    )
    trail_order: int | None = None
    last_unit: int | None = None
    replied_unit: int | None = None
    standing: dict[str, bool] = {}
    pending: dict[str, list[_Counted]] = {}
    deadlines: list[str | None] = [None, None]
    assigned: list[tuple[_Counted, _Counted]] = []
    reply: _Counted | None = None
    for (
        eid,
        oid,
        action,
        to_state,
        unit,
        in_period,
        clock,
        assignment,
        accept_due,
        due,
        lifts_accept,
        lifts_overdue,
        at,
        order_due,
        satisfied,
        lead,
    ) in _trail_rows(session, period, kpis, units, order_ids):
        if oid != trail_order:  # a new trail
            trail_order, last_unit, replied_unit, reply = oid, None, None, None
            standing, pending = {ACCEPT_MARK: False, COMPLETION_MARK: False}, {ACCEPT_MARK: [], COMPLETION_MARK: []}
            deadlines = [None, None]
            assigned = []
        holder = last_unit if last_unit is not None else unit
        # Judged by what came before.
        new_assignment: tuple[_Counted, _Counted] | None = None
        if in_period:
            if action in acts:
                name, mark, slot = acts[action]
                if not standing[mark]:
                    deadline = _parse_due(deadlines[slot]) or (as_time(order_due) if order_due is not None else None)
                    late = deadline is not None and as_time(at) > deadline
                    out[name].append(_Counted(eid, oid, holder, not late, action))
            elif action in marks:
                counted = _Counted(eid, oid, holder, False, action)
                out[marks[action]].append(counted)
                pending[action].append(counted)
            elif action == "callback" or action == "close":
                name = "satisfaction" if action == "callback" else "resolution"
                if name in wanted:
                    held = replied_unit if replied_unit is not None else lead
                    hit = bool(satisfied) if action == "callback" else to_state == "closed_resolved"
                    out[name].append(_Counted(eid, oid, held, hit))
            if assignment:
                new_assignment = (_Counted(eid, oid, unit, False), _Counted(eid, oid, unit, False))
                if returns:
                    out["return_rate"].append(new_assignment[0])
                if extensions:
                    out["extension_rate"].append(new_assignment[1])
        # What it does to the episode.
        if action == "return":
            for returned, _ in assigned:
                returned.hit = True
        elif action == "approve_extension":
            for _, extended in assigned:
                extended.hit = True
        elif action == "reopen" and reply is not None:
            reply.hit = True
            reply = None
        elif action == "reply":
            reply = _Counted(eid, oid, holder, False) if in_period else None
            if reply is not None and reopens:
                out["reopen_rate"].append(reply)
            replied_unit = last_unit
        if lifts_accept or lifts_overdue:  # a recompute that moved a deadline ahead of a mark
            for mark, lifts in ((ACCEPT_MARK, lifts_accept), (COMPLETION_MARK, lifts_overdue)):
                if lifts:
                    standing[mark] = False
                    for lifted in pending[mark]:
                        lifted.lifted = True
                    pending[mark] = []
        if action in standing:
            standing[action] = True
        if clock:
            standing = {ACCEPT_MARK: False, COMPLETION_MARK: False}
            pending = {ACCEPT_MARK: [], COMPLETION_MARK: []}
            assigned = []
            deadlines = [accept_due, due]
        elif accept_due is not None or due is not None:  # the latest recorded in the episode
            deadlines = [
                accept_due if accept_due is not None else deadlines[0],
                due if due is not None else deadlines[1],
            ]
        if new_assignment is not None:
            assigned.append(new_assignment)
        if assignment and unit is not None:
            last_unit = unit
    for name, counted_facts in out.items():
        out[name] = [c for c in counted_facts if c.unit_id is not None and not c.lifted]
    return out


def _as_facts(name: str, counted: Iterable[_Counted]) -> list[Fact]:
    """The walked facts of KPI ``name`` as :class:`Fact` rows, by ref_id."""
    event = name in TIMED_KPIS
    return sorted(
        (Fact(c.ref_id, c.order_id, c.unit_id or 0, c.hit, c.event if event else None) for c in counted),
        key=lambda f: f.ref_id,
    )


@dataclass(frozen=True)
class Fact:
    ref_id: int
    order_id: int
    unit_id: int
    hit: bool
    # For the timed KPIs, the counted event's action: the act (accept / reply) or the sweep's mark of a missed limit.
    event: str | None = None
    exempt: bool = False  # left out of the unit's figures by an approved exemption (考核核减)


def _repeat_facts(
    session: Session, period: Period, repeat_days: int, units: Collection[int] | None = None
) -> list[Fact]:
    """Repeat complaints: the window comparison is done here because date arithmetic is not portable SQL.

    Reads only the orders created in ``[start - repeat_days, end)`` (index on created_at), then matches them by
    phone and by (address, category) in dictionaries: linear in the size of the window. With ``units``, the first
    assignments are looked up only for the orders that can hold a fact of theirs (every fact of ``units`` is there).
    """
    from cityhub.workorders.tracking import phone_digits

    window = timedelta(days=repeat_days)
    start, end = period.start, period.end  # computed from the local days: once, not per order
    rows = session.execute(
        select(Order.id, Order.created_at, Order.citizen_phone, Order.address, Order.category_id, Order.split_from_id)
        .where(Order.created_at >= start - window, Order.created_at < end)
        .order_by(Order.created_at, Order.id)
    ).all()
    last_by_phone: dict[str, datetime] = {}
    last_by_place: dict[tuple[str, int], datetime] = {}
    repeat: dict[int, bool] = {}
    for oid, created, phone, address, category, split_from in rows:
        if split_from is not None:  # 拆单: part of an appeal already counted, not a new one
            if start <= created < end:
                repeat[oid] = False
            continue
        previous: list[datetime] = []
        phone = phone_digits(phone)  # +86 138…, 138 0000 0001 and 13800000001 are one citizen's number
        if phone:
            if phone in last_by_phone:
                previous.append(last_by_phone[phone])
            last_by_phone[phone] = created
        place = (address or "").strip()
        if place and category is not None:
            key = (place, category)
            if key in last_by_place:
                previous.append(last_by_place[key])
            last_by_place[key] = created
        if start <= created < end:
            repeat[oid] = any(created - p < window for p in previous)
    if not repeat:
        return []
    first = _first_assignments(session, period, units)
    return [Fact(oid, oid, first[oid][1], hit) for oid, hit in repeat.items() if oid in first]


def _first_assignments(
    session: Session, period: Period, units: Collection[int] | None = None
) -> dict[int, tuple[int, int]]:
    """order id → (event id, unit id) of the first assignment, for orders created in the period (with ``units``, for
    those of them that can hold a fact of ``units``: :func:`_can_hold`; an assignment names its unit)."""
    e = _ev("e")
    f = _ev("f")
    o = Order.__table__
    # One look-up of the first assignment per order of the period (per event of its trail, the trail was read
    # once for each of its events: 1–2 s for a year at 200,000 orders), then that event by its key.
    orders = select(
        o.c.id.label("order_id"),
        select(func.min(f.c.id)).where(f.c.order_id == o.c.id, _is_assignment(f)).scalar_subquery().label("id"),
    ).where(o.c.created_at >= period.start, o.c.created_at < period.end)
    if units is not None:
        orders = orders.where(_can_hold(o.c.id, units))
    first = orders.subquery()
    rows = session.execute(
        select(first.c.order_id, e.c.id, e.c.unit_id)
        .select_from(first.join(e, e.c.id == first.c.id))
        .where(e.c.unit_id.is_not(None))
    ).all()
    return {oid: (eid, uid) for oid, eid, uid in rows}


def _parse_due(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def facts(
    session: Session,
    *,
    kpi: str,
    period: Period,
    unit_id: int | None = None,
    repeat_days: int = DEFAULT_REPEAT_DAYS,
    with_exempt: bool = False,
) -> list[Fact]:
    """The counted rows of one KPI (optionally of one unit: of a street, its communities' rows too; only the trails
    of the orders that can hold a fact of theirs are read then, :func:`_can_hold`). The rows an approved exemption
    left out of the figures are not among them, or with ``with_exempt`` are, marked ``exempt``."""
    if kpi not in KPI_BY_NAME:
        raise ValidationFailed(f"unknown kpi '{kpi}' (known: {', '.join(KPI_BY_NAME)})", details={"field": "kpi"})
    units = None if unit_id is None else set(jurisdiction(session, unit_id))
    rows = (
        _repeat_facts(session, period, repeat_days, units)
        if kpi == "repeat_rate"
        else _as_facts(kpi, _walked_facts(session, period, [kpi], units)[kpi])
    )
    exempted = exempted_facts(session)
    marked = [replace(f, exempt=True) if (f.order_id, f.unit_id, kpi) in exempted else f for f in rows]
    return [f for f in marked if (units is None or f.unit_id in units) and (with_exempt or not f.exempt)]


# The measures an order's fact of which a unit may ask to be left out of its figures (考核核减): each counts the
# order's own events. The repeat rate is not among them: it counts the citizen's appeals, not what a unit did.
EXEMPTIBLE = (
    "on_time_accept",
    "on_time_completion",
    "satisfaction",
    "resolution",
    "return_rate",
    "extension_rate",
    "reopen_rate",
)


def exempted_facts(session: Session) -> set[tuple[int, int, str]]:
    """(order id, unit id, KPI name) of every fact an approved exemption leaves out of the figures (a few thousand
    at most: read whole)."""
    from cityhub.analytics.models import AssessmentExemption

    rows = session.execute(
        select(AssessmentExemption.order_id, AssessmentExemption.unit_id, AssessmentExemption.measures).where(
            AssessmentExemption.state == "approved"
        )
    )
    return {(oid, uid, str(m)) for oid, uid, measures in rows for m in measures or ()}


def order_facts(session: Session, *, order_id: int) -> list[tuple[str, Fact]]:
    """Every fact of the exemptible KPIs (:data:`EXEMPTIBLE`) the order's trail holds, whatever its period, as
    (KPI name, fact) — exempted ones marked: what a unit may ask to have left out
    (:mod:`cityhub.analytics.exemptions`)."""
    first, last = session.execute(
        select(func.min(OrderEvent.at), func.max(OrderEvent.at)).where(OrderEvent.order_id == order_id)
    ).one()
    if first is None:
        return []
    tz = get_settings().tz
    start, end = first.astimezone(tz).date(), last.astimezone(tz).date()
    period = Period(f"{start}..{end}", "range", start, end)
    exempted = exempted_facts(session)
    walked = _walked_facts(session, period, list(EXEMPTIBLE), order_ids=[order_id])
    return [
        (name, replace(f, exempt=(f.order_id, f.unit_id, name) in exempted))
        for name in EXEMPTIBLE
        for f in _as_facts(name, walked[name])
    ]


def _streets_of_communities(session: Session) -> dict[int, int]:
    """community id → the id of the street it belongs to."""
    street = aliased(Unit)
    rows = session.execute(
        select(Unit.id, Unit.parent_id)
        .join(street, street.id == Unit.parent_id)
        .where(Unit.tier == UnitTier.COMMUNITY, street.tier == UnitTier.STREET)
    ).all()
    return {community: parent for community, parent in rows if parent is not None}


def jurisdiction(session: Session, unit_id: int) -> list[int]:
    """The units whose facts count for ``unit_id``: a street answers for its communities too (中事不出镇: what a
    community handles is handled within the street), any other unit for itself."""
    return [unit_id, *(c for c, street in _streets_of_communities(session).items() if street == unit_id)]


def _roll_up(counts: dict[int, tuple[int, int]], streets: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Add each community's (numerator, denominator) to its street's (see :func:`jurisdiction`)."""
    out = dict(counts)
    for community, (num, den) in counts.items():
        if (street := streets.get(community)) is not None:
            n, d = out.get(street, (0, 0))
            out[street] = (n + num, d + den)
    return out


@dataclass
class _Exempted:
    """What approved exemptions left out of a period's figures: KPI name → unit id → facts, and unit id → orders."""

    facts: dict[str, Counter[int]] = field(default_factory=dict)
    orders: dict[int, set[int]] = field(default_factory=dict)


def _aggregate(
    session: Session,
    kpis: Sequence[str],
    period: Period,
    repeat_days: int,
    units: Collection[int] | None = None,
    exempted: _Exempted | None = None,
) -> dict[str, dict[int, tuple[int, int]]]:
    """KPI name → unit id → (numerator, denominator); the trails are walked once for all of ``kpis``. With ``units``,
    only the orders that can hold a fact of theirs are read: their counts are exact, other units' maybe partial.
    The facts approved exemptions leave out are not counted (``exempted`` gathers them)."""
    walked = [k for k in kpis if k in WALKED_KPIS]
    counted: dict[str, Sequence[_Counted | Fact]] = (
        dict(_walked_facts(session, period, walked, units)) if walked else {}
    )
    if "repeat_rate" in kpis:
        counted["repeat_rate"] = _repeat_facts(session, period, repeat_days, units)
    out: dict[str, dict[int, tuple[int, int]]] = {}
    left_out = exempted_facts(session)
    for name, rows in counted.items():
        if left_out:
            kept = [f for f in rows if (f.order_id, f.unit_id, name) not in left_out]
            if exempted is not None and len(kept) < len(rows):
                gone = [f for f in rows if f.unit_id is not None and (f.order_id, f.unit_id, name) in left_out]
                exempted.facts[name] = Counter(f.unit_id for f in gone if f.unit_id is not None)
                for f in gone:
                    exempted.orders.setdefault(f.unit_id or 0, set()).add(f.order_id)
            rows = kept
        hits: Counter[int | None] = Counter(f.unit_id for f in rows if f.hit)
        totals: Counter[int | None] = Counter(f.unit_id for f in rows)
        out[name] = {u: (hits[u], d) for u, d in totals.items() if u is not None}
    return out


# --- results ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass
class UnitKpis:
    unit_id: int
    code: str
    name: str
    tier: str
    rates: dict[str, Rate] = field(default_factory=dict)
    sample: int = 0  # assignments in the period (工单量)
    score: float | None = None
    # What approved exemptions (考核核减) left out: facts per KPI, and the orders they were of.
    exempted: dict[str, int] = field(default_factory=dict)
    exempted_orders: int = 0
    # Those orders' ids (a street's with its communities'): the 专报's district total counts them once, whichever units.
    exempted_order_ids: frozenset[int] = field(default_factory=frozenset, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit_id": self.unit_id,
            "code": self.code,
            "name": self.name,
            "tier": self.tier,
            "n": self.sample,
            "score": None if self.score is None else round(self.score, 2),
            "kpis": {
                k: {
                    "numerator": r.numerator,
                    "denominator": r.denominator,
                    "rate": _round(r.value),
                    "exempted": self.exempted.get(k, 0),
                }
                for k, r in self.rates.items()
            },
            "exempted_orders": self.exempted_orders,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def composite_score(rates: dict[str, Rate]) -> float | None:
    """``100 * Σ w·s / Σ w`` over KPIs with a denominator; s = rate (higher better) or 1 - rate (lower better)."""
    total = weight = 0.0
    for k in KPIS:
        r = rates.get(k.name)
        if r is None or r.value is None:
            continue
        s = r.value if k.direction == "higher" else 1.0 - r.value
        total += k.weight * s
        weight += k.weight
    return 100.0 * total / weight if weight else None


def points_lost(rates: dict[str, Rate]) -> dict[str, float]:
    """What each KPI with a denominator costs the composite score, in points of 100: ``100 * w_k (1 - s_k) / Σ w``
    over the KPIs :func:`composite_score` counts — they add up to ``100 - score``. The ranking names the costliest,
    so a leader reads why a unit ranks low."""
    counted = [(k, rates[k.name].value) for k in KPIS if k.name in rates and rates[k.name].value is not None]
    weight = sum(k.weight for k, _ in counted)
    lost: dict[str, float] = {}
    for k, value in counted:
        assert value is not None
        s = value if k.direction == "higher" else 1.0 - value
        lost[k.name] = 100.0 * k.weight * (1.0 - s) / weight
    return lost


def rate_columns(rates: dict[str, Rate]) -> tuple[dict[str, dict[str, Any]], str | None]:
    """A ranking row's component rates (``kpis``: rate, numerator, denominator and the points it costs the score,
    ``lost``, in the order of :data:`KPIS`) and the KPI costing the most points (``drag``; None when none costs
    any)."""
    lost = points_lost(rates)
    columns = {
        k.name: {
            "rate": _round(rates[k.name].value),
            "numerator": rates[k.name].numerator,
            "denominator": rates[k.name].denominator,
            "lost": None if k.name not in lost else round(lost[k.name], 2),
        }
        for k in KPIS
        if k.name in rates
    }
    costliest = max(lost.items(), key=lambda item: item[1], default=None)
    drag = costliest[0] if costliest is not None and costliest[1] > 0 else None
    return columns, drag


def compute(
    session: Session,
    *,
    period: Period,
    tier: str | None = None,
    unit_ids: Iterable[int] | None = None,
    kpis: Sequence[str] | None = None,
    repeat_days: int = DEFAULT_REPEAT_DAYS,
) -> list[UnitKpis]:
    """Every KPI of every unit (of ``tier`` / among ``unit_ids``) that has a count in the period; a street's
    include its communities' (:func:`jurisdiction`). Among ``unit_ids``, only the orders that can hold a fact of
    theirs or their communities' are read (a unit's staff asking for their own row do not pay for the district).

    Answered from the per-process cache of the period's figures when nothing they were computed from has changed
    since (:func:`_figures`); ``tier`` and ``kpis`` select from the figures of every unit and KPI, which are computed
    (and kept) together, so the dashboard's ranking of streets, the report's and the API's figures of one period are
    one computation."""
    names = list(kpis or KPI_BY_NAME)
    for n in names:
        if n not in KPI_BY_NAME:
            raise ValidationFailed(f"unknown kpi '{n}'", details={"field": "kpi"})
    if tier is not None and tier not in {t.value for t in UnitTier}:
        raise ValidationFailed(f"unknown tier '{tier}'", details={"field": "tier"})
    wanted = None if unit_ids is None else frozenset(unit_ids)
    out: list[UnitKpis] = []
    for row in _figures(session, period, wanted, repeat_days):
        if (tier is not None and row.tier != tier) or (wanted is not None and row.unit_id not in wanted):
            continue
        rates = {n: row.rates[n] for n in names}
        # A unit is listed for the KPIs asked when it has a count in one of them or assignments (its sample), or an
        # order an approved exemption left out.
        if row.sample or any(r.denominator for r in rates.values()) or row.exempted_orders:
            score = row.score if rates.keys() == KPI_BY_NAME.keys() else composite_score(rates)
            exempted = {n: row.exempted[n] for n in names if n in row.exempted}
            out.append(
                UnitKpis(
                    row.unit_id,
                    row.code,
                    row.name,
                    row.tier,
                    rates,
                    row.sample,
                    score,
                    exempted,
                    row.exempted_orders,
                    row.exempted_order_ids,
                )
            )
    return out


computations = 0  # fresh computations of a period's figures in this process (:func:`_compute`; read by tests)


def _compute(
    session: Session, period: Period, wanted: Collection[int] | None, repeat_days: int
) -> tuple[UnitKpis, ...]:
    """Every KPI of every unit (among ``wanted``) with a count in the period, computed from the trails."""
    global computations
    computations += 1
    names = list(KPI_BY_NAME)
    streets = _streets_of_communities(session)
    # Each wanted unit's counts and those of the communities rolled up into it are exact when the walk reads only
    # the orders that can hold their facts; other units' counts may then be partial, and are not shown.
    units = None if wanted is None else {u for uid in wanted for u in jurisdiction(session, uid)}
    exempted = _Exempted()
    aggregated = _aggregate(session, names, period, repeat_days, units, exempted)
    counts = {n: _roll_up(aggregated[n], streets) for n in names}
    left_out = {n: _roll_up({u: (0, c) for u, c in exempted.facts.get(n, {}).items()}, streets) for n in names}
    left_out_orders = dict(exempted.orders)
    for community, orders in exempted.orders.items():
        if (street := streets.get(community)) is not None:
            left_out_orders[street] = left_out_orders.get(street, set()) | orders
    # The sample (工单量) is the return rate's denominator: the assignments of the period.
    sample = counts["return_rate"]
    # Units with assignments but nothing counted for a KPI still appear (0/0), so rankings can list them apart.
    # So do units whose every fact an approved exemption left out: their figures say so (``exempted``).
    ids = set(sample).union(*(c.keys() for c in counts.values())) | set(left_out_orders)
    query = select(Unit.id, Unit.code, Unit.name, Unit.tier).where(Unit.id.in_(sorted(ids)))
    out: list[UnitKpis] = []
    for uid, code, name, utier in session.execute(query.order_by(Unit.code)):
        if wanted is not None and uid not in wanted:
            continue
        row = UnitKpis(uid, code, name, utier.value)
        for n in names:
            num, den = counts[n].get(uid, (0, 0))
            row.rates[n] = Rate(num, den)
        row.sample = sample.get(uid, (0, 0))[1]
        row.score = composite_score(row.rates)
        row.exempted = {n: left_out[n][uid][1] for n in names if uid in left_out[n]}
        row.exempted_order_ids = frozenset(left_out_orders.get(uid, ()))
        row.exempted_orders = len(row.exempted_order_ids)
        out.append(row)
    return tuple(out)


# --- the figures kept -------------------------------------------------------------------------------------
#
# A period's figures (every KPI of every unit, or of the units one asked for) are kept per process with what they
# were computed from, and answered again while none of it has changed. What :func:`_compute` reads:
#
# * the events of the orders with an event of a counted action in ``[start, end)`` — their whole trails, before and
#   after the period (what held the order, the deadline in force, a return, extension, reopen or lifting recompute
#   after it) — and of those orders ``accept_due_at``, ``due_at`` and ``lead_unit_id`` (and, for one unit's figures,
#   the events naming the unit: ``_can_hold``);
# * the orders created in ``[start - repeat_days, end)`` (phone, address, category, split, creation time) and the
#   first assignment of those created in the period (the repeat rate);
# * the units: their hierarchy (a street's communities), tier, code and name.
#
# Order events are only ever added, never changed or deleted, and every writer of one writes its order in the same
# transaction (``workorders.service.act`` and ``create``, the SLA sweep's marks, ``workorders.recompute``, the bulk
# writer), so an order whose figures may have moved — an event added or backdated into the period, an act after it
# on an order of the period, a time-limit recompute, an order received in the window — is an order whose
# ``changed_xid`` moved (``workorders.changes.horizon``). The figures stand while no order changed since their
# horizon has an event in ``[start, end)`` or was created in ``[start - repeat_days, end)``, and the units read the
# same (a unit moved to another street, renamed, made another tier). A change elsewhere (another period's orders)
# leaves them standing; each check reads only the orders changed since the last one, then moves the horizon.
# A session with writes of its own not yet committed computes afresh and keeps nothing: what it reads may never be.

FIGURES_KEPT = 32  # periods × units asked, per process (a year's figures of every unit: ~500 rows)


@dataclass
class _Kept:
    rows: tuple[UnitKpis, ...]
    horizon: int  # workorders.changes.horizon before the computation (moved on by each check that finds them true)
    units: tuple[Any, ...]  # the units as read before it (:func:`_units_read`)


_kept: dict[tuple[Any, ...], _Kept] = {}
_kept_lock = threading.Lock()
_computing: dict[tuple[Any, ...], threading.Lock] = {}


def clear_cache() -> None:
    """Forget the kept figures (tests: tables are emptied between them and ids handed out again)."""
    with _kept_lock:
        _kept.clear()


def _units_read(session: Session) -> tuple[Any, ...]:
    """What the figures read of the units (a few hundred rows): hierarchy, tier, code, name."""
    rows = session.execute(select(Unit.id, Unit.parent_id, Unit.tier, Unit.code, Unit.name).order_by(Unit.id))
    return tuple(tuple(r) for r in rows)


def _writes_pending(session: Session) -> bool:
    """Whether the session's transaction has written (or holds ORM changes it will flush) what is not committed."""
    if session.new or session.dirty or session.deleted:
        return True
    conn = session.connection()
    if conn.dialect.name == "sqlite":  # reads run outside a transaction: one is open only once a write began it
        return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]
    return session.execute(select(func.pg_current_xact_id_if_assigned())).scalar() is not None


def _still_true(session: Session, kept: _Kept, key: tuple[Any, ...], units: tuple[Any, ...], now: int) -> bool:
    """Whether nothing ``kept`` was computed from has changed (see above); if so its horizon moves to ``now``."""
    if kept.units != units or now < kept.horizon:  # a unit changed; numbers gone back: another database restored
        return False
    _db, start, end, repeat_days, _wanted = key
    o, e = Order.__table__, _ev("e")
    in_period = select(literal(1)).where(e.c.order_id == o.c.id, e.c.at >= start, e.c.at < end).exists()
    created = and_(o.c.created_at >= start - timedelta(days=repeat_days), o.c.created_at < end)
    moved = session.execute(
        select(o.c.id).where(o.c.changed_xid >= kept.horizon, or_(created, in_period)).limit(1)
    ).first()
    if moved is not None:
        return False
    kept.horizon = max(kept.horizon, now)
    return True


def _figures(session: Session, period: Period, wanted: frozenset[int] | None, repeat_days: int) -> tuple[UnitKpis, ...]:
    """Every KPI of every unit (among ``wanted``) in the period: kept ones still true (the district's serve any
    units asked), else computed and kept."""
    if _writes_pending(session):
        return _compute(session, period, wanted, repeat_days)
    base = (database_key(session), period.start, period.end, repeat_days)
    keys = [(*base, None)] if wanted is None else [(*base, None), (*base, wanted)]
    units, now = _units_read(session), changes.horizon(session)
    for key in keys:
        with _kept_lock:
            kept = _kept.get(key)
        if kept is not None and _still_true(session, kept, key, units, now):
            return kept.rows
    key = keys[-1]
    with _kept_lock:
        computing = _computing.setdefault(key, threading.Lock())
    with computing:  # one computation of a period at a time: a second asker waits for it, then reads it
        with _kept_lock:
            kept = _kept.get(key)
        if kept is not None and _still_true(session, kept, key, _units_read(session), changes.horizon(session)):
            return kept.rows
        horizon, units = changes.horizon(session), _units_read(session)  # before the computation reads anything
        rows = _compute(session, period, wanted, repeat_days)
        with _kept_lock:
            _kept.pop(key, None)
            _kept[key] = _Kept(rows, horizon, units)
            while len(_kept) > FIGURES_KEPT:  # the least recently computed first
                _kept.pop(next(iter(_kept)))
        return rows


def common_periods(today: date) -> list[Period]:
    """The periods leaders ask for most: the last ``RECENT_DAYS`` days (every figures page's default), this month,
    last month and this year."""
    recent = parse_period(f"{today - timedelta(days=RECENT_DAYS - 1)}..{today}")
    this_month = month_period(today.year, today.month)
    return [recent, this_month, this_month.previous(), year_period(today.year)]


def keep_warm(session: Session, *, today: date | None = None) -> dict[str, int]:
    """The district's figures of :func:`common_periods` made current (computed where something they read changed):
    how many were computed and how many still stood."""
    day = today or utcnow().astimezone(get_settings().tz).date()
    before, periods = computations, common_periods(day)
    for period in periods:
        _figures(session, period, None, DEFAULT_REPEAT_DAYS)
    computed = computations - before
    return {"computed": computed, "current": len(periods) - computed}


@dataclass
class Ranking:
    kpi: str  # a KPI name, or "score"
    min_sample: int
    ranked: list[dict[str, Any]]
    insufficient: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "min_sample": self.min_sample,
            "ranked": self.ranked,
            "insufficient_sample": self.insufficient,
        }


def rank(rows: Sequence[UnitKpis], *, kpi: str = "score", min_sample: int = DEFAULT_MIN_SAMPLE) -> Ranking:
    """Order units by one KPI (or the composite ``score``); units below ``min_sample`` are listed apart."""
    if kpi != "score" and kpi not in KPI_BY_NAME:
        raise ValidationFailed(f"unknown kpi '{kpi}'", details={"field": "kpi"})
    if min_sample < 0:
        raise ValidationFailed("min_sample must be >= 0", details={"field": "min_sample"})
    entries: list[tuple[float, UnitKpis, int, float]] = []
    short: list[dict[str, Any]] = []
    for row in rows:
        if kpi == "score":
            n, value, key = row.sample, row.score, (row.score or 0.0)
        else:
            r = row.rates.get(kpi, Rate(0, 0))
            n, value = r.denominator, r.value
            key = (value or 0.0) if KPI_BY_NAME[kpi].direction == "higher" else -(value or 0.0)
        if n < max(min_sample, 1) or value is None:
            columns, drag = rate_columns(row.rates)
            short.append(
                {"unit_id": row.unit_id, "code": row.code, "name": row.name, "n": n, "value": _round(value)}
                | {"kpis": columns, "drag": drag if kpi == "score" else None}
            )
            continue
        entries.append((key, row, n, value))
    entries.sort(key=lambda t: (-t[0], -t[2], t[1].code))
    ranked = []
    for i, (_key, row, n, value) in enumerate(entries, start=1):
        columns, drag = rate_columns(row.rates)
        ranked.append(
            {
                "rank": i,
                "unit_id": row.unit_id,
                "code": row.code,
                "name": row.name,
                "n": n,
                "value": (None if value is None else round(value, 2)) if kpi == "score" else _round(value),
                # Why it ranks where it does: the rates the score is made of, and the one costing it most.
                "kpis": columns,
                "drag": drag if kpi == "score" else None,
            }
        )
    short.sort(key=lambda d: (-d["n"], d["code"]))
    return Ranking(kpi, min_sample, ranked, short)


def ranking(
    session: Session,
    *,
    period: Period,
    kpi: str = "score",
    tier: str | None = None,
    min_sample: int = DEFAULT_MIN_SAMPLE,
    repeat_days: int = DEFAULT_REPEAT_DAYS,
) -> Ranking:
    names = None if kpi == "score" else [kpi]
    return rank(
        compute(session, period=period, tier=tier, kpis=names, repeat_days=repeat_days), kpi=kpi, min_sample=min_sample
    )


@dataclass
class Drilldown:
    unit_id: int
    unit_code: str
    kpi: str
    period: str
    numerator: list[dict[str, Any]]
    denominator: list[dict[str, Any]]
    # The facts an approved exemption (考核核减) left out of the figure: in neither list above.
    exempted: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit_id": self.unit_id,
            "unit_code": self.unit_code,
            "kpi": self.kpi,
            "period": self.period,
            "numerator_count": len(self.numerator),
            "denominator_count": len(self.denominator),
            "numerator": self.numerator,
            "denominator": self.denominator,
            "exempted_count": len(self.exempted),
            "exempted": self.exempted,
        }


def resolve_unit(session: Session, *, unit: int | str) -> Unit:
    found = session.get(Unit, unit) if isinstance(unit, int) else None
    if found is None:
        found = session.execute(select(Unit).where(Unit.code == str(unit))).scalar_one_or_none()
    if found is None:
        raise NotFound(f"unit {unit} not found")
    return found


def drilldown(
    session: Session,
    *,
    unit: int | str,
    kpi: str,
    period: Period,
    repeat_days: int = DEFAULT_REPEAT_DAYS,
) -> Drilldown:
    """The orders behind one unit's figure: every counted row (denominator) and those in the numerator, and apart
    the rows an approved exemption left out (``exempted``).

    An order appears once per counted event (a re-reply after a rejected reply is a second completion).
    """
    u = resolve_unit(session, unit=unit)
    rows = facts(session, kpi=kpi, period=period, unit_id=u.id, repeat_days=repeat_days, with_exempt=True)
    numbers = order_numbers(session, (f.order_id for f in rows))
    items = [
        {"ref_id": f.ref_id, "order_id": f.order_id, "number": numbers.get(f.order_id), "hit": f.hit}
        | ({"event": f.event} if f.event is not None else {})  # an act, or the sweep's mark of a missed limit
        | ({"exempted": True} if f.exempt else {})
        for f in rows
    ]
    counted = [i for i in items if not i.get("exempted")]
    left_out = [i for i in items if i.get("exempted")]
    return Drilldown(u.id, u.code, kpi, period.label, [i for i in counted if i["hit"]], counted, left_out)
