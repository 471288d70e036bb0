"""Realistic demo orders for 白云区: streaming, deterministic for a seed, histories legal by construction.

:func:`generate` yields plain records (no database ids): ``Order`` column values plus references by code —
``street_code``, ``community_code``, ``category_path``, ``lead_unit_code``, ``master_external_id`` — and
``events`` / ``assists`` whose units are named by ``unit_code``. :func:`seed` resolves the codes against the
database and writes batches through :func:`cityhub.intake.bulk.write_orders`.

Every history is driven through the pure life cycle (:func:`cityhub.workorders.lifecycle.apply` / ``evolve``)
and the SLA arithmetic of :mod:`cityhub.workorders.sla`, so it is what the order service would have recorded;
the marks of the SLA sweep (``sla_warning`` / ``sla_overdue`` / ``sla_accept_overdue``) are added where the
sweep would have made them. A history that would run past ``end`` is cut there, which leaves recent orders in
every open state.
"""

from __future__ import annotations

import contextlib
import csv
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import IO, Any

import chinese_calendar

from cityhub.config import get_settings
from cityhub.demo import corpus
from cityhub.demo.corpus import Community, Scenario, Street
from cityhub.dispatch.service import AUTO_ACTOR
from cityhub.workorders import sla
from cityhub.workorders.calendar import WorkCalendar, parse_working_hours, shared_calendar
from cityhub.workorders.lifecycle import (
    HANDLING_STATES,
    TERMINAL_STATES,
    Action,
    AssistStatus,
    OrderView,
    SlaEffect,
    State,
    apply,
    evolve,
)
from cityhub.workorders.models import MACHINE_CHANNELS, AppealType, Channel, SlaStatus, Urgency

# The 12345 sub-centre (区12345分中心): its supervisors and callback agents act as it, as the demo logins do.
SUBCENTRE_CODE = "440111-S01"
TermsFor = Callable[[str, Urgency], sla.SlaTerms]

# Share of orders that belong to a recurring hotspot (same place, same problem, for months).
HOTSPOT_SHARE = 0.12
# Probabilities of the less common paths through the life cycle.
P_CANCEL = 0.008
P_MERGE = 0.12  # of orders that have an open duplicate candidate nearby
P_MISROUTE = 0.06
P_TRANSFER = 0.05
P_ASSIST = 0.2  # of scenarios that name an assisting unit
ASSIST_MATTERS = (  # what a lead unit asks of an assisting unit (协办事项)
    "请协助现场核查并配合处置",
    "请协助联系相关业主和物业核实情况",
    "请派员配合联合执法",
    "请协助提供相关档案资料",
)
P_SUSPEND = 0.03
P_EXTENSION = 0.5  # of orders whose work runs long
P_LEADER = 0.004
# Of appeals from people (hotline, web, app …), the share the classifier sent out itself, its confidence above the
# category's threshold (Baiyun's own system: about 80 %); orders from machines (sensors, video) all go that way.
P_AUTO = 0.7
P_ESCALATE = 0.15  # of overdue orders
P_REJECT_REPLY = 0.03
P_CALLBACK = 0.88
P_SATISFIED = 0.87
P_REOPEN = 0.45  # of unsatisfied callbacks


def demo_external_id(seed: int, index: int) -> str:
    return f"demo-{seed}-{index}"


def default_terms(category_path: str, urgency: Urgency) -> sla.SlaTerms:
    """The built-in time limits (the same as the seeded default rules)."""
    return sla.builtin_terms(urgency.value, get_settings().sla_warning_share)


def default_calendar() -> WorkCalendar:
    settings = get_settings()
    return shared_calendar(settings.tz, parse_working_hours(settings.working_hours))


def resolve_end(end: date | datetime | None, tz: Any) -> datetime:
    """The instant the demo history stops: now for today (or no date), else the end of that local day."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if end is None:
        return now
    if isinstance(end, datetime):
        return end if end.tzinfo else end.replace(tzinfo=tz)
    stop = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return min(stop, now)


# --- hotspots ---------------------------------------------------------------------------------------------


@dataclass
class Hotspot:
    """A recurring problem at one place: the orders it produces share their place and wording."""

    id: int
    scenario: Scenario
    street: Street
    community: Community
    start: date
    stop: date
    weight: float
    slots: dict[str, str]
    lat: float
    lng: float
    last_master: tuple[str, datetime | None] | None = None  # (external id, closed at) of the newest order


# --- slot filling -----------------------------------------------------------------------------------------


# 企业呼: what an enterprise's appeal asks for, by the words of its title (the demo's enterprise scenarios).
_ENTERPRISE_NEEDS = (("用电", "power"), ("用水", "water"), ("用地", "land"), ("招工", "labour"), ("资金", "funding"))


def _enterprise_asking(channel: Channel, slots: dict[str, str], title: str) -> dict[str, str]:
    """The enterprise a demo appeal through 企业呼 is of (the company its text names) and its need; none otherwise."""
    if channel != Channel.ENTERPRISE or "company" not in slots:
        return {}
    need = next((need for word, need in _ENTERPRISE_NEEDS if word in title), "other")
    return {"enterprise_name": slots["company"], "enterprise_need": need}


class _Slots(dict[str, str]):
    """Template slots filled on first use, so title, content and reply of one order agree."""

    def __init__(self, rng: random.Random, street: Street, community: Community, fixed: dict[str, str]) -> None:
        super().__init__(fixed)
        self.rng = rng
        self.street = street
        self.community = community
        self.stem = corpus.community_stem(community)

    def __missing__(self, key: str) -> str:
        value = self._make(key)
        self[key] = value
        return value

    def _make(self, key: str) -> str:
        rng = self.rng
        stem = self.stem
        if key in corpus.SLOTS:
            return rng.choice(corpus.SLOTS[key])
        if key == "road":
            base = stem if rng.random() < 0.55 else rng.choice(corpus.NAME_WORDS)
            return base + rng.choice(corpus.ROAD_SUFFIX)
        if key == "estate":  # one of the community's own: an estate's name is in no other street
            return rng.choice(corpus.estates()[self.community.code])
        if key == "village":
            return self.community.short if self.community.is_village else stem + "村"
        if key == "place":
            pick = rng.random()
            if pick < 0.45:
                return self["estate"]
            if pick < 0.75 or not self.community.is_village:
                return self["road"] + self["num"] + "号"
            return self["village"]
        if key == "community":
            return self.community.short
        if key == "street":
            return self.street.short
        if key == "site":
            base = stem if rng.random() < 0.5 else rng.choice(corpus.NAME_WORDS)
            return base + rng.choice(corpus.SITE_KIND)
        if key == "company":
            return "广州市" + rng.choice(corpus.NAME_WORDS) + rng.choice(corpus.COMPANY_KIND) + "有限公司"
        if key == "shop":
            return rng.choice(corpus.NAME_WORDS) + rng.choice(corpus.SHOP_KIND)
        if key == "school":
            return (stem if rng.random() < 0.6 else rng.choice(corpus.NAME_WORDS)) + rng.choice(
                ("小学", "小学", "中学", "幼儿园")
            )
        if key == "hospital":
            return rng.choice(
                (
                    "白云区人民医院",
                    f"{self.street.short}社区卫生服务中心",
                    f"{rng.choice(corpus.NAME_WORDS)}医院",
                    f"{stem}门诊部",
                )
            )
        if key == "creek":
            return stem + rng.choice(corpus.CREEK_SUFFIX)
        if key == "building":
            return str(rng.randint(1, 30))
        if key == "num":
            return str(rng.randint(1, 300))
        if key == "address_short":
            return f"{self.street.short}{self.community.short}{self['road']}{self['num']}号"
        numbers = {
            "amount": (3000, 86000, 100),
            "amount_small": (20, 300, 1),
            "months_n": (2, 8, 1),
            "years_n": (2, 15, 1),
            "workers": (5, 60, 1),
            "age": (6, 7, 1),
            "age_old": (80, 99, 1),
            "hours_n": (2, 5, 1),
            "times_n": (3, 9, 1),
            "floors": (3, 7, 1),
        }
        if key in numbers:
            lo, hi, step = numbers[key]
            return str(rng.randint(lo // step, hi // step) * step)
        raise KeyError(key)


SENSOR_TEXT = {
    "waterlogging": (
        "【内涝监测告警】{road}积水监测点",
        "{road}积水监测点水位达{depth_cm}厘米，超过警戒值，请及时处置。",
    ),
    "air_odour": (
        "【空气质量告警】{place}微站",
        "{place}空气质量微站监测到VOCs浓度持续超标，请核查周边排放源。",
    ),
    "river": ("【水质监测告警】{creek}监测断面", "{creek}水质自动监测站氨氮、溶解氧指标异常，疑似污水直排。"),
}
VIDEO_TEXT = {
    "waterlogging": ("【视频AI】{road}路面积水", "视频智能识别：{road}{road_part}出现大面积积水，影响通行。"),
    "illegal_parking": (
        "【视频AI】{road}违停",
        "视频智能识别：{road}{road_part}机动车违法停放，已持续超过30分钟。",
    ),
    "garbage": ("【视频AI】{place}垃圾堆放", "视频智能识别：{place}{corner}发现垃圾堆放/满溢，请安排清运。"),
    "vending": ("【视频AI】{road}占道经营", "视频智能识别：{road}{road_part}发现流动摊贩占道经营。"),
    "road_damage": ("【视频AI】{road}路面破损", "视频智能识别：{road}路面坑槽破损，存在安全隐患。"),
    "helmet": (
        "【视频AI】{road}电动车未戴头盔",
        "视频智能识别：{road}{road_part}电动自行车驾乘人员未佩戴头盔。",
    ),
}


# --- the life-cycle simulation ----------------------------------------------------------------------------


class _Stop(Exception):
    """The history reached the end of the demo period."""


class _Sim:
    """One order's history: every step goes through the pure life cycle and the SLA arithmetic."""

    def __init__(self, cal: WorkCalendar, terms: sla.SlaTerms, end: datetime, rng: random.Random) -> None:
        self.cal = cal
        self.terms = terms
        self.end = end
        self.rng = rng
        self.view = OrderView(state=State.RECEIVED)
        self.events: list[dict[str, Any]] = []
        self.assists: dict[str, dict[str, Any]] = {}
        self.f: dict[str, Any] = {
            "state": State.RECEIVED,
            "lead_unit_code": None,
            "master_external_id": None,
            "dispatched_at": None,
            "accepted_at": None,
            "replied_at": None,
            "closed_at": None,
            "accept_due_at": None,
            "due_at": None,
            "warn_at": None,
            "sla_status": SlaStatus.NONE,
            "accept_overdue": False,
            "overdue_at": None,
            "first_overdue_at": None,
            "sla_paused_at": None,
            "sla_remaining": None,
            "suspended_from": None,
            "extension_pending": False,
            "extension_days_requested": None,
            "extension_count": 0,
            "urge_count": 0,
            "escalation_level": 0,
            "leader_assigned": False,
            "return_count": 0,
            "reopen_count": 0,
            "instant_answered": False,
            "reply_text": None,
            "satisfied": None,
            "resolved": None,
        }
        self.now: datetime | None = None
        # A later duplicate can merge into this order only before it first closed (a reopen comes later).
        self.first_closed: datetime | None = None

    # time helpers: every step is later than the previous one

    def work(self, seconds: float) -> datetime:
        assert self.now is not None
        return self.cal.add_work_seconds(self.now, max(60.0, seconds))

    def wall(self, seconds: float) -> datetime:
        assert self.now is not None
        return self.now + timedelta(seconds=max(30.0, seconds))

    def create(self, at: datetime, actor: str, channel: Channel, *, consultation: bool = False) -> None:
        self.now = at
        # A sensor's or camera's order names nobody (``_citizen``): no callback, as ``workorders.service.view_of``.
        self.view = OrderView(state=State.RECEIVED, consultation=consultation, no_citizen=channel in MACHINE_CHANNELS)
        self.events.append(
            {
                "action": Action.CREATE.value,
                "from_state": None,
                "to_state": State.RECEIVED.value,
                "actor_name": actor,
                "unit_code": None,
                "at": at,
                "reason": None,
                "payload": {"channel": channel.value},
            }
        )

    def act(self, action: Action, at: datetime, actor: str, unit: str | None = None, **params: Any) -> None:
        assert self.now is not None
        at = max(at, self.now + timedelta(seconds=1))
        self.sweep(min(at, self.end))
        if at > self.end:
            raise _Stop
        outcome = apply(self.view, action, params)
        self.view = evolve(self.view, outcome)
        self.now = at
        self._apply_changes(outcome, params, at)
        self._apply_sla(outcome.sla, at)
        payload = {k: v for k, v in outcome.payload.items() if k != "reason"}
        payload.update(sla.event_deadlines(outcome.sla, self.f["due_at"], self.f["accept_due_at"]))
        recorded = params.get("unit_id") or unit
        if unit is not None and recorded != unit:
            payload["actor_unit_id"] = unit  # whose unit acted, beside the unit the step names (as the service)
        self.events.append(
            {
                "action": outcome.action.value,
                "from_state": outcome.from_state.value if outcome.from_state else None,
                "to_state": outcome.to_state.value,
                "actor_name": actor,
                "unit_code": recorded,
                "at": at,
                "reason": params.get("reason"),
                "payload": payload or None,
            }
        )

    def _apply_changes(self, outcome: Any, params: dict[str, Any], at: datetime) -> None:
        f = self.f
        for name, value in outcome.changes.items():
            if name == "assist":
                row = self.assists.setdefault(value["unit_id"], {"reply_text": None})
                row["status"] = value["status"]
                row["updated_at"] = at
                if value["status"] == AssistStatus.REPLIED:
                    row["reply_text"] = params.get("text")
            elif value == "+1":
                f[name] += 1
            elif name == "lead_unit_id":
                f["lead_unit_code"] = value
            elif name == "master_order_id":
                f["master_external_id"] = value
            else:
                f[name] = value
        if outcome.action == Action.REQUEST_EXTENSION:
            f["extension_days_requested"] = float(params["days"])
        if outcome.state_changed:
            stamp = {
                State.DISPATCHED: "dispatched_at",
                State.ACCEPTED: "accepted_at",
                State.REPLIED: "replied_at",
            }
            if outcome.to_state in stamp:
                f[stamp[outcome.to_state]] = at
            if outcome.to_state in TERMINAL_STATES:
                f["closed_at"] = at
                if self.first_closed is None:
                    self.first_closed = at
            elif outcome.from_state in TERMINAL_STATES:
                f["closed_at"] = None
                f["resolved"] = None
            f["state"] = outcome.to_state
        if outcome.action == Action.INSTANT_ANSWER:
            # The table sets resolved only on close; an instant answer ends closed_resolved all the same.
            f["replied_at"] = at
            f["resolved"] = True
        if outcome.action == Action.ACCEPT and f["accept_due_at"] is not None and at > f["accept_due_at"]:
            f["accept_overdue"] = True
        if not f["extension_pending"] and outcome.action != Action.APPROVE_EXTENSION:
            f["extension_days_requested"] = None

    def _deadlines(self) -> sla.Deadlines:
        f = self.f
        return sla.Deadlines(accept_due_at=f["accept_due_at"], warn_at=f["warn_at"], due_at=f["due_at"])

    def _set(self, d: sla.Deadlines) -> None:
        self.f.update(accept_due_at=d.accept_due_at, warn_at=d.warn_at, due_at=d.due_at)

    def _refresh(self, at: datetime) -> None:
        f = self.f
        status = sla.status_at(at, warn_at=f["warn_at"], due_at=f["due_at"], paused=f["sla_paused_at"] is not None)
        if status == SlaStatus.OVERDUE and f["overdue_at"] is None:
            f["overdue_at"] = f["due_at"]
            f["first_overdue_at"] = f["first_overdue_at"] or f["due_at"]
        f["sla_status"] = status

    def _apply_sla(self, effect: SlaEffect | None, at: datetime) -> None:
        f = self.f
        if effect is None or effect == SlaEffect.ACCEPTED:
            return
        cal = sla.clock_of(self.cal, self.terms)  # working time, or round the clock (the critical terms)
        if effect == SlaEffect.START:
            self._set(sla.compute_deadlines(cal, at, self.terms))
            f.update(
                sla_status=SlaStatus.OK,
                accept_overdue=False,
                overdue_at=None,
                sla_paused_at=None,
                sla_remaining=None,
            )
        elif effect == SlaEffect.PAUSE:
            f["sla_remaining"] = sla.pause(cal, at, self._deadlines())
            f["sla_paused_at"] = at
        elif effect == SlaEffect.RESUME:
            if f["sla_paused_at"] is not None and f["sla_remaining"] is not None:
                self._set(sla.resume(cal, at, f["sla_remaining"]))
                f.update(sla_paused_at=None, sla_remaining=None)
                self._refresh(at)
        elif effect == SlaEffect.EXTEND:
            days = f["extension_days_requested"] or 0
            if f["due_at"] is not None and days:
                self._set(sla.extend(cal, self._deadlines(), float(days)))
                self._refresh(at)
            f["extension_days_requested"] = None
        elif effect == SlaEffect.STOP and f["sla_status"] != SlaStatus.NONE:
            self._refresh(at)
            f.update(sla_paused_at=None, sla_remaining=None)

    def sweep(self, until: datetime) -> None:
        """Add the marks the periodic SLA sweep would have made before ``until``."""
        f = self.f
        state = self.view.state
        if state not in HANDLING_STATES:
            return
        # The sweep runs every few minutes: a mark lands shortly after the instant it marks.
        lag = timedelta(seconds=60 + self.rng.random() * 240)
        marks: list[tuple[datetime, str, dict[str, Any]]] = []
        running = f["sla_paused_at"] is None and f["due_at"] is not None
        if running and f["sla_status"] == SlaStatus.OK and f["warn_at"] is not None:
            at = max(f["warn_at"], self.now) + lag
            if at < until and at <= f["due_at"]:
                marks.append((at, "sla_warning", {"sla_status": SlaStatus.WARNING}))
        if running and f["sla_status"] != SlaStatus.OVERDUE:
            at = max(f["due_at"], self.now) + lag
            if at < until:
                late = {"overdue_at": f["due_at"], "first_overdue_at": f["first_overdue_at"] or f["due_at"]}
                marks.append((at, "sla_overdue", {"sla_status": SlaStatus.OVERDUE, **late}))
        if state == State.DISPATCHED and not f["accept_overdue"] and f["accept_due_at"] is not None:
            at = max(f["accept_due_at"], self.now) + lag
            if at < until:
                marks.append((at, "sla_accept_overdue", {"accept_overdue": True}))
        for at, action, values in sorted(marks, key=lambda m: m[0]):
            previous: datetime = self.now  # type: ignore[assignment]
            at = max(at, previous + timedelta(seconds=1))
            f.update(values)
            self.now = at
            mark = action.removeprefix("sla_")
            self.events.append(
                {
                    "action": action,
                    "from_state": state.value,
                    "to_state": state.value,
                    "actor_name": "system",
                    "unit_code": None,
                    "at": at,
                    "reason": None,
                    "payload": {"mark": mark},
                }
            )

    def finish(self) -> None:
        """Bring the marks up to the end of the period for an order still held by a unit."""
        self.sweep(self.end)


# --- the generator ----------------------------------------------------------------------------------------


@dataclass
class _Case:
    """One order whose history is being made: what the history's steps share."""

    sim: _Sim
    rng: random.Random
    scenario: Scenario
    street: Street
    community: Community
    reply: str  # the unit's reply text
    lead: str = ""  # the lead unit's code, once accepted
    actor: str = ""  # the lead unit's handler
    dispatcher: str = ""


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, float], ...]) -> Any:
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def _day_weight(day: date, start: date, days: int) -> float:
    weekday = (1.15, 1.05, 1.05, 1.05, 1.0, 0.72, 0.68)[day.weekday()]
    try:
        holiday = not chinese_calendar.is_workday(day) and day.weekday() < 5
    except NotImplementedError:
        holiday = False
    trend = 0.85 + 0.3 * ((day - start).days / max(1, days))  # appeals grow year on year
    return weekday * (0.6 if holiday else 1.0) * trend


def _spring_boost(day: date) -> float:
    """Wage-arrears appeals rise over the six weeks before Spring Festival."""
    for year in (day.year, day.year + 1):
        festival = corpus.SPRING_FESTIVAL.get(year)
        if festival is not None:
            before = (festival - day).days
            if 0 <= before <= 45:
                return 1.0 + 5.0 * (1 - before / 45)
    return 1.0


# Hours of the day citizens call, 0–23 (the hotline answers around the clock).
_HOURS = (
    0.6,
    0.3,
    0.2,
    0.15,
    0.15,
    0.3,
    0.8,
    2.0,
    4.0,
    6.5,
    7.0,
    6.0,
    4.0,
    4.5,
    6.0,
    6.2,
    5.8,
    5.0,
    3.8,
    3.8,
    4.0,
    3.4,
    2.2,
    1.2,
)
_NIGHT_HOURS = (22, 23, 0, 1, 2, 21)
_HOUR_CUM = list(accumulate(_HOURS))


class DemoGenerator:
    """Deterministic stream of demo orders; see :func:`generate`."""

    def __init__(
        self,
        n: int,
        seed: int = 0,
        *,
        years: float = 3.0,
        end: date | datetime | None = None,
        calendar: WorkCalendar | None = None,
        terms: TermsFor | None = None,
    ) -> None:
        if n < 0:
            raise ValueError("the number of orders cannot be negative")
        if years <= 0:
            raise ValueError("years must be positive")
        settings = get_settings()
        self.n = n
        self.seed = seed
        self.tz = settings.tz
        self.end = resolve_end(end, self.tz)
        self.cal = calendar or default_calendar()
        self.terms_for = terms or default_terms
        self._terms_cache: dict[tuple[str, Urgency], sla.SlaTerms] = {}
        # The end instant is exclusive: a day ending at midnight is the last day, not the one after it.
        self.last_day = (self.end - timedelta(microseconds=1)).astimezone(self.tz).date()
        self.first_day = self.last_day - timedelta(days=max(1, round(365 * years)) - 1)
        self.streets = corpus.baiyun_streets()
        # Bigger streets and the four towns file more appeals.
        self.street_cum = list(
            accumulate(len(s.communities) * (1.6 if s.name.endswith("镇") else 1.0) for s in self.streets)
        )
        self.villages = [(s, c) for s in self.streets for c in s.communities if c.is_village]
        self.units = corpus.org_units()
        # Handler accounts are named after their unit, as seed_baiyun names them.
        self.actors = {code: f"{u.short_name}承办人" for code, u in self.units.items()}
        for street in self.streets:
            self.actors[street.code] = f"{street.short}承办人"
            self.actors.update((c.code, f"{c.short}承办人") for c in street.communities)
        self.dept_codes = sorted(corpus.DEPT_CODES.values())
        self.rng = random.Random(f"cityhub-demo:{seed}")
        self.hotspots = self._make_hotspots()
        self.duplicates: dict[tuple[str, str], tuple[str, datetime | None]] = {}

    # --- plan -----------------------------------------------------------------------------------------

    def _terms(self, path: str, urgency: Urgency) -> sla.SlaTerms:
        key = (path, urgency)
        if key not in self._terms_cache:
            self._terms_cache[key] = self.terms_for(path, urgency)
        return self._terms_cache[key]

    def _make_hotspots(self) -> list[Hotspot]:
        rng = random.Random(f"cityhub-demo-hotspots:{self.seed}")
        count = max(5, min(120, self.n // 400))
        kinds = [s for s in corpus.SCENARIOS if s.hotspot]
        span = (self.last_day - self.first_day).days
        spots: list[Hotspot] = []
        for i in range(count):
            scenario = rng.choice(kinds)
            street, community = self._place(rng, scenario)
            if scenario.key == "waterlogging":
                # A low-lying village floods every rainy season.
                start, stop = self.first_day, self.last_day
            else:
                length = rng.randint(45, 240)
                offset = rng.randint(0, max(0, span - 30))
                start = self.first_day + timedelta(days=offset)
                stop = min(self.last_day, start + timedelta(days=length))
            slots = _Slots(rng, street, community, {})
            for key in (
                "place",
                "road",
                "estate",
                "site",
                "company",
                "village",
                "creek",
                "building",
                "num",
                "shop",
                "road_part",
                "corner",
            ):
                slots[key]  # fills the slot
            lat, lng = corpus.point_near(rng, street, community, share=0.2)
            spots.append(
                Hotspot(
                    id=i + 1,
                    scenario=scenario,
                    street=street,
                    community=community,
                    start=start,
                    stop=stop,
                    weight=rng.uniform(0.5, 2.0),
                    slots=dict(slots),
                    lat=lat,
                    lng=lng,
                )
            )
        return spots

    def _place(self, rng: random.Random, scenario: Scenario) -> tuple[Street, Community]:
        if scenario.village_only and self.villages:
            return rng.choice(self.villages)
        x = rng.random() * self.street_cum[-1]
        street = self.streets[min(bisect_right(self.street_cum, x), len(self.streets) - 1)]
        return street, rng.choice(street.communities)

    def _day_counts(self) -> Iterator[tuple[date, int]]:
        days = (self.last_day - self.first_day).days + 1
        month_volume = [sum(s.weight * s.months[m] for s in corpus.SCENARIOS) for m in range(12)]
        mean_volume = sum(month_volume) / 12
        weights = []
        for k in range(days):
            day = self.first_day + timedelta(days=k)
            weights.append(_day_weight(day, self.first_day, days) * month_volume[day.month - 1] / mean_volume)
        total = sum(weights)
        running = 0.0
        made = 0
        for k, w in enumerate(weights):
            running += w
            upto = self.n if k == days - 1 else math.floor(self.n * running / total + 1e-9)
            yield self.first_day + timedelta(days=k), upto - made
            made = upto

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        index = 0
        for day, count in self._day_counts():
            if count <= 0:
                continue
            month = day.month - 1
            boost = _spring_boost(day)
            pairs = tuple(
                (s, s.weight * s.months[month] * (boost if s.key == "wage_arrears" else 1.0)) for s in corpus.SCENARIOS
            )
            active = tuple(
                (h, h.weight * (h.scenario.months[month] if h.scenario.key == "waterlogging" else 1.0))
                for h in self.hotspots
                if h.start <= day <= h.stop
            )
            plans = []
            for _ in range(count):
                hotspot = _weighted(rng, active) if active and rng.random() < HOTSPOT_SHARE else None
                scenario = hotspot.scenario if hotspot else _weighted(rng, pairs)
                plans.append((self._created_at(rng, day, scenario), scenario, hotspot))
            plans.sort(key=lambda p: p[0])
            for created, scenario, hotspot in plans:
                yield self._order(index, created, scenario, hotspot)
                index += 1

    def _created_at(self, rng: random.Random, day: date, scenario: Scenario) -> datetime:
        if scenario.night and rng.random() < scenario.night:
            hour = rng.choice(_NIGHT_HOURS)
        else:
            hour = bisect_right(_HOUR_CUM, rng.random() * _HOUR_CUM[-1])
        local = datetime.combine(day, time(min(hour, 23)), tzinfo=self.tz) + timedelta(seconds=rng.randrange(3600))
        at = local.astimezone(UTC)
        if at >= self.end:
            # The last day is cut at the end instant: squeeze its orders into the part that has passed.
            start = datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)
            at = start + (self.end - start) * rng.random()
        return at

    # --- appeals not yet handled ------------------------------------------------------------------------

    def new_appeals(self, count: int) -> list[dict[str, Any]]:
        """``count`` appeals received in the last hours on the phone, the web and the app, as intake receives them
        (no category, no place, no history): what the seeded demo's dispatcher finds waiting. Intake classifies
        and places each (from its address) and the background dispatcher decides it, like a real call.
        Deterministic for a seed; their external ids (``demo-new-<seed>-<i>``) make a second run submit nothing."""
        rng = random.Random(f"cityhub-demo-new:{self.seed}")
        citizen = tuple((s, s.weight) for s in corpus.SCENARIOS if not s.channels)
        channels = ((Channel.HOTLINE, 0.7), (Channel.WEB, 0.15), (Channel.APP, 0.15))
        appeals = []
        for i in range(count):
            scenario = _weighted(rng, citizen)
            street, community = self._place(rng, scenario)
            slots = _Slots(rng, street, community, {})
            channel: Channel = _weighted(rng, channels)
            title, content, _reply = self._text(rng, scenario, channel, slots)
            name, phone = self._citizen(rng, channel)
            appeals.append(
                {
                    "channel": channel.value,
                    "external_id": f"demo-new-{self.seed}-{i}",
                    "appeal_type": _weighted(rng, scenario.appeal).value,
                    "title": title[:300],
                    "content": content,
                    "address": self._address(rng, street, community, slots),
                    "citizen_name": name,
                    "citizen_phone": phone,
                    "created_at": (self.end - timedelta(minutes=rng.randint(5, 6 * 60))).isoformat(),
                }
            )
        appeals.sort(key=lambda a: a["created_at"])
        return appeals

    # --- one order ------------------------------------------------------------------------------------

    def _order(self, index: int, created: datetime, scenario: Scenario, hotspot: Hotspot | None) -> dict[str, Any]:
        rng = self.rng
        if hotspot is not None:
            street, community = hotspot.street, hotspot.community
            slots = _Slots(rng, street, community, dict(hotspot.slots))
            lat = hotspot.lat + corpus.bounded_gauss(rng, 0.0004)
            lng = hotspot.lng + corpus.bounded_gauss(rng, 0.0004)
        else:
            street, community = self._place(rng, scenario)
            slots = _Slots(rng, street, community, {})
            lat, lng = corpus.point_near(rng, street, community)
        channel: Channel = _weighted(rng, scenario.channels or corpus.CITIZEN_CHANNELS)
        appeal: AppealType = _weighted(rng, scenario.appeal)
        if channel in MACHINE_CHANNELS:
            appeal = AppealType.REPORT
        urgency = Urgency.NORMAL
        roll = rng.random()
        if roll < scenario.critical:
            urgency = Urgency.CRITICAL
        elif roll < scenario.critical + scenario.urgent:
            urgency = Urgency.URGENT
        if channel == Channel.SENSOR and urgency == Urgency.NORMAL:
            urgency = Urgency.URGENT

        title, content, reply = self._text(rng, scenario, channel, slots)
        address = self._address(rng, street, community, slots)
        name, phone = self._citizen(rng, channel)
        external_id = demo_external_id(self.seed, index)
        terms = self._terms(scenario.category, urgency)
        sim = _Sim(self.cal, terms, self.end, rng)
        target = self._handler(scenario.handler, street, community)
        dup_key = (scenario.key, community.code)
        master = hotspot.last_master if hotspot is not None else self.duplicates.get(dup_key)
        case = _Case(sim, rng, scenario, street, community, reply)
        with contextlib.suppress(_Stop):
            self._history(case, channel, appeal, urgency, created, target, master)
        sim.finish()
        f = sim.f
        # Later duplicates may merge into this order while it is open.
        if f["state"] not in (State.MERGED, State.CANCELLED) and not f["instant_answered"]:
            entry = (external_id, sim.first_closed)
            if hotspot is not None:
                hotspot.last_master = entry
            else:
                self.duplicates[dup_key] = entry
        last_at = sim.events[-1]["at"]
        record: dict[str, Any] = {
            "external_id": external_id,
            "channel": channel,
            "appeal_type": appeal,
            "title": title[:300],
            "content": content,
            "citizen_name": name,
            "citizen_phone": phone,
            "address": address,
            "lat": round(_clamp(lat, corpus.LAT_RANGE), 6),
            "lng": round(_clamp(lng, corpus.LNG_RANGE), 6),
            "street_code": street.code,
            "community_code": community.code,
            "category_path": scenario.category,
            "urgency": urgency,
            "created_at": created,
            "updated_at": last_at,
            "likes": int(rng.paretovariate(1.6)) - 1 if channel in (Channel.WEB, Channel.APP, Channel.OPINION) else 0,
            "opposes": 0,
            "attributes": {
                "demo": True,
                "scenario": scenario.key,
                "hotspot": hotspot.id if hotspot is not None else None,
                **_enterprise_asking(channel, slots, title),
            },
            **f,
        }
        record["events"] = sim.events
        record["assists"] = [
            {
                "unit_code": code,
                "status": row["status"],
                "reply_text": row["reply_text"],
                "updated_at": row["updated_at"],
            }
            for code, row in sim.assists.items()
        ]
        return record

    def _text(self, rng: random.Random, scenario: Scenario, channel: Channel, slots: _Slots) -> tuple[str, str, str]:
        """Title, content and reply; parallel template lists are read as variants of one story."""
        variant = rng.randrange(len(scenario.contents))

        def pick(options: tuple[str, ...]) -> str:
            return options[variant] if len(options) == len(scenario.contents) else rng.choice(options)

        machine = None
        if channel == Channel.SENSOR:
            machine = SENSOR_TEXT.get(scenario.key)
            slots.setdefault("depth_cm", str(rng.randint(15, 60)))
        elif channel == Channel.VIDEO_AI:
            machine = VIDEO_TEXT.get(scenario.key)
        if machine is not None:
            title, content = machine[0].format_map(slots), machine[1].format_map(slots)
        else:
            if channel == Channel.GRID:
                slots["opener"] = "网格员巡查发现，"
            elif channel == Channel.ENTERPRISE:
                slots["opener"] = "企业诉求："
            title = pick(scenario.titles).format_map(slots)
            content = scenario.contents[variant].format_map(slots)
        return title, content, pick(scenario.replies).format_map(slots)

    def _address(self, rng: random.Random, street: Street, community: Community, slots: _Slots) -> str:
        """The address of the place the text talks about (an estate, a road), else one nearby."""
        head = f"{corpus.DISTRICT_NAME}{street.short}{community.short}"
        place = slots.get("place")
        if place is not None and place == slots.get("estate"):
            return f"{head}{place}{slots['building']}栋"
        if "road" in slots or ("estate" not in slots and rng.random() < 0.5):
            return f"{head}{slots['road']}{slots['num']}号"
        return f"{head}{slots['estate']}{slots['building']}栋"

    def _citizen(self, rng: random.Random, channel: Channel) -> tuple[str | None, str | None]:
        if channel in (Channel.SENSOR, Channel.VIDEO_AI, Channel.OPINION):
            return None, None
        surname = rng.choice(corpus.SURNAMES)
        if channel == Channel.GRID:
            return "网格员" + surname + rng.choice(corpus.GIVEN), None
        if rng.random() < 0.25:
            name = surname + rng.choice(("先生", "女士"))
        else:
            name = surname + "".join(rng.choice(corpus.GIVEN) for _ in range(rng.choice((1, 2, 2))))
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        return name, phone

    def _handler(self, handler: str, street: Street, community: Community) -> str:
        if handler == "community":
            return community.code
        if handler == "street":
            return street.code
        return corpus.DEPT_CODES[handler.removeprefix("dept:")]

    def _unit_actor(self, code: str) -> str:
        return self.actors.get(code, "承办人")

    def _wrong_unit(self, rng: random.Random, target: str, street: Street, community: Community) -> str:
        candidates = [street.code, community.code, *rng.sample(self.dept_codes, 3)]
        return next(c for c in candidates if c != target)

    # --- one history ----------------------------------------------------------------------------------

    def _history(
        self,
        case: _Case,
        channel: Channel,
        appeal: AppealType,
        urgency: Urgency,
        created: datetime,
        target: str,
        master: tuple[str, datetime | None] | None,
    ) -> None:
        sim, rng, scenario, reply = case.sim, case.rng, case.scenario, case.reply
        street, community = case.street, case.community
        hour = 3600.0
        machine = channel in MACHINE_CHANNELS
        intake = "system" if machine else rng.choice(corpus.OPERATOR_NAMES)
        sim.create(created, intake, channel, consultation=appeal == AppealType.CONSULTATION)
        dispatcher = "system" if machine else rng.choice(corpus.DISPATCHERS)

        if appeal == AppealType.CONSULTATION and rng.random() < scenario.instant:
            sim.act(Action.INSTANT_ANSWER, sim.wall(rng.uniform(60, 600)), intake, answer=reply)
            return
        if rng.random() < P_CANCEL:
            reason = rng.choice(("来电人表示问题已自行解决，撤销诉求", "无效来电", "信息不全且无法联系来电人"))
            sim.act(Action.CANCEL, sim.work(rng.uniform(0.1, 2) * hour), dispatcher, reason=reason)
            return
        if master is not None and rng.random() < P_MERGE:
            merge_at = sim.work(rng.uniform(0.1, 1.5) * hour)
            if master[1] is None or merge_at < master[1]:
                sim.act(Action.MERGE, merge_at, dispatcher, master_id=master[0], reason="重复诉求，并入主工单")
                return

        automatic = machine or rng.random() < P_AUTO
        if automatic:  # within a minute or two of intake, day or night
            at = sim.wall(rng.uniform(5, 120))
        elif urgency != Urgency.NORMAL:
            at = sim.wall(rng.uniform(120, 1200))
        else:
            at = sim.work(rng.expovariate(1 / (0.8 * hour)))
        misroute = rng.random() < P_MISROUTE
        transfer = not misroute and target.startswith("440111-") and rng.random() < P_TRANSFER
        first = street.code if transfer else (self._wrong_unit(rng, target, street, community) if misroute else target)
        if automatic:
            confidence = round(rng.uniform(0.9, 0.995), 3)
            sim.act(Action.DISPATCH, at, AUTO_ACTOR.name, unit_id=first, auto=True, probability=confidence)
        elif rng.random() < P_LEADER:
            leader = rng.choice(corpus.LEADERS)
            sim.act(Action.ASSIGN, at, leader, unit=corpus.DISTRICT_CODE, unit_id=first, reason="领导交办重点诉求")
        else:
            sim.act(Action.DISPATCH, at, dispatcher, unit_id=first)

        if misroute:
            actor = self._unit_actor(first)
            if rng.random() < 0.4:
                sim.act(Action.ACCEPT, self._accept_at(sim, rng), actor, unit=first)
            sim.act(
                Action.RETURN,
                sim.work(rng.uniform(0.3, 6) * hour),
                actor,
                unit=first,
                reason=rng.choice(("不属于我单位职责范围", "非本辖区事项，申请退回", "该事项应由行业主管部门办理")),
            )
            sim.act(Action.DISPATCH, sim.work(rng.uniform(0.2, 3) * hour), dispatcher, unit_id=target)

        lead = first if transfer else target
        actor = self._unit_actor(lead)
        sim.act(Action.ACCEPT, self._accept_at(sim, rng), actor, unit=lead)
        if transfer:
            sim.act(
                Action.TRANSFER,
                sim.work(rng.uniform(0.5, 8) * hour),
                actor,
                unit=lead,
                unit_id=target,
                reason="经核实属行业部门职责，转派主管部门办理",
            )
            lead, actor = target, self._unit_actor(target)
            sim.act(Action.ACCEPT, self._accept_at(sim, rng), actor, unit=lead)
        sim.act(Action.START, sim.work(rng.uniform(0.05, 1.5) * hour), actor, unit=lead)
        case.lead, case.actor, case.dispatcher = lead, actor, dispatcher
        self._work(case, reply)
        self._callback(case)

    def _accept_at(self, sim: _Sim, rng: random.Random) -> datetime:
        limit = self._terms_hours(sim)
        late = rng.random() < 0.07
        seconds = limit * (rng.uniform(1.05, 3.0) if late else rng.betavariate(1.3, 3.0)) * 3600.0
        return sim.work(seconds)

    @staticmethod
    def _terms_hours(sim: _Sim) -> float:
        return sim.terms.accept_hours

    def _work(self, case: _Case, reply: str) -> None:
        """From work started to the reply (text ``reply``): assists, suspension, extension, urging, the reply."""
        sim, rng, scenario, lead, actor = case.sim, case.rng, case.scenario, case.lead, case.actor
        street, community = case.street, case.community
        day = self.cal.day_seconds
        hour = 3600.0
        budget = sim.terms.finish_days * day
        # Most units finish well within the limit; a long tail runs over it.
        needed = budget * scenario.days_factor * rng.lognormvariate(math.log(0.35), 0.75)
        start = sim.now
        assert start is not None

        assist_unit = None
        if scenario.assist and rng.random() < P_ASSIST:
            assist_unit = self._handler(scenario.assist, street, community)
            assists: Mapping[Any, AssistStatus] = sim.view.assists  # keyed by unit code here
            previous = assists.get(assist_unit)
            if assist_unit == lead or previous not in (None, AssistStatus.RETURNED):
                assist_unit = None
        if assist_unit is not None:
            assist_actor = self._unit_actor(assist_unit)
            # 申请协办: the lead unit's handler invites the unit, saying what help it needs (the centre's 协办 shows it)
            sim.act(
                Action.ADD_ASSIST,
                sim.work(rng.uniform(0.2, 3) * hour),
                actor,
                unit=lead,
                unit_id=assist_unit,
                reason=rng.choice(ASSIST_MATTERS),
            )
            sim.act(Action.ASSIST_ACCEPT, sim.work(rng.uniform(0.2, 4) * hour), assist_actor, unit_id=assist_unit)
            if rng.random() < 0.08:
                sim.act(
                    Action.ASSIST_RETURN,
                    sim.work(rng.uniform(1, 8) * hour),
                    assist_actor,
                    unit_id=assist_unit,
                    reason="协办事项不属于我单位职责",
                )
            else:
                sim.act(
                    Action.ASSIST_REPLY,
                    sim.work(needed * rng.uniform(0.3, 0.7)),
                    assist_actor,
                    unit_id=assist_unit,
                    text="已配合主办单位完成现场核查和处置。",
                )

        if rng.random() < P_SUSPEND:
            sim.act(
                Action.SUSPEND,
                sim.work(rng.uniform(1, 6) * hour),
                actor,
                unit=lead,
                reason="需市民补充材料/约定现场核查时间",
            )
            sim.act(Action.RESUME, sim.work(rng.uniform(0.5, 4) * day), actor, unit=lead)

        due = sim.f["due_at"]
        reply_at = self.cal.add_work_seconds(start, needed)
        if due is not None and reply_at > due and rng.random() < P_EXTENSION:
            request_at = sim.work(min(needed, budget) * rng.uniform(0.3, 0.7))
            if request_at < due:
                days = rng.choice((3, 5, 5, 10))
                sim.act(
                    Action.REQUEST_EXTENSION,
                    request_at,
                    actor,
                    unit=lead,
                    days=days,
                    reason="涉及多部门协调/需走招标程序，申请延期",
                )
                if rng.random() < 0.85:
                    sim.act(
                        Action.APPROVE_EXTENSION,
                        sim.work(rng.uniform(0.5, 6) * hour),
                        rng.choice(corpus.SUPERVISORS),
                        unit=SUBCENTRE_CODE,
                    )
                else:
                    sim.act(
                        Action.REJECT_EXTENSION,
                        sim.work(rng.uniform(0.5, 6) * hour),
                        rng.choice(corpus.SUPERVISORS),
                        unit=SUBCENTRE_CODE,
                        reason="理由不充分，请按时办结",
                    )
        due, warn = sim.f["due_at"], sim.f["warn_at"]
        if warn is not None and reply_at > warn and rng.random() < 0.5:
            urge_at = self.cal.add_work_seconds(max(warn, sim.now), rng.uniform(0.5, 4) * hour)
            if urge_at < reply_at:
                sim.act(
                    Action.URGE,
                    urge_at,
                    rng.choice(corpus.SUPERVISORS),
                    unit=SUBCENTRE_CODE,
                    reason="即将超时，请抓紧办理",
                )
        if due is not None and reply_at > due and rng.random() < 0.7:
            urge_at = self.cal.add_work_seconds(max(due, sim.now), rng.uniform(1, 8) * hour)
            if urge_at < reply_at:
                sim.act(
                    Action.URGE,
                    urge_at,
                    rng.choice(corpus.SUPERVISORS),
                    unit=SUBCENTRE_CODE,
                    reason="已超期，请尽快办结",
                )
                if rng.random() < P_ESCALATE:
                    sim.act(
                        Action.ESCALATE,
                        sim.work(rng.uniform(1, 8) * hour),
                        rng.choice(corpus.SUPERVISORS),
                        unit=SUBCENTRE_CODE,
                        reason="超期未办结，升级督办",
                    )
                    if rng.random() < 0.3:
                        sim.act(
                            Action.ASSIGN,
                            sim.work(rng.uniform(1, 8) * hour),
                            rng.choice(corpus.LEADERS),
                            unit=corpus.DISTRICT_CODE,  # the leader's own unit, as the service records it
                            reason="领导批示，限期办结",
                        )
        sim.act(Action.REPLY, max(reply_at, sim.work(0.3 * hour)), actor, unit=lead, text=reply)
        if rng.random() < P_REJECT_REPLY:
            sim.act(
                Action.REJECT_REPLY,
                sim.work(rng.uniform(1, 6) * hour),
                rng.choice(corpus.SUPERVISORS),
                unit=SUBCENTRE_CODE,
                reason="答复未说明处理依据，请补充",
            )
            sim.act(
                Action.REPLY,
                sim.work(rng.uniform(0.3, 1.5) * day),
                actor,
                unit=lead,
                text=reply + "处理依据已补充说明。",
            )

    def _callback(self, case: _Case) -> None:
        """Callbacks (回访) until the order closes; an unsatisfied citizen may reopen it for another round. A sensor's
        or camera's order has nobody to call back: a supervisor closes it once replied (办结, resolved), as the
        product does — no callback, no reason."""
        sim, rng, lead, actor, dispatcher = case.sim, case.rng, case.lead, case.actor, case.dispatcher
        day = self.cal.day_seconds
        if sim.view.no_citizen:
            supervisor = rng.choice(corpus.SUPERVISORS)
            sim.act(Action.CLOSE, sim.work(rng.uniform(0.1, 1) * day), supervisor, unit=SUBCENTRE_CODE, resolved=True)
            return
        for attempt in range(3):
            agent = rng.choice(corpus.CALLBACK_AGENTS)
            if rng.random() > P_CALLBACK:
                sim.act(
                    Action.CLOSE,
                    sim.work(rng.uniform(1, 3) * day),
                    agent,
                    unit=SUBCENTRE_CODE,
                    reason="多次回访未接通，按已办结处理",
                    resolved=True,
                )
                return
            satisfied = rng.random() < (P_SATISFIED if attempt == 0 else 0.75)
            sim.act(
                Action.CALLBACK, sim.work(rng.uniform(0.2, 2.5) * day), agent, unit=SUBCENTRE_CODE, satisfied=satisfied
            )
            if satisfied:
                sim.act(Action.CLOSE, sim.wall(rng.uniform(60, 1800)), agent, unit=SUBCENTRE_CODE, resolved=True)
                return
            if rng.random() < P_REOPEN and attempt < 2:
                sim.act(
                    Action.REOPEN,
                    sim.work(rng.uniform(0.1, 1) * day),
                    dispatcher,
                    unit=lead,
                    reason="市民对处理结果不满意，重新办理",
                )
            else:
                # Decided as a reopening is: a supervisor looks into the citizen's complaint first (回访不满意 lists
                # the orders waiting for it).
                sim.act(
                    Action.CLOSE,
                    sim.work(rng.uniform(0.1, 1) * day),
                    agent,
                    unit=SUBCENTRE_CODE,
                    resolved=rng.random() < 0.3,
                )
                if sim.f["state"] != State.CLOSED_UNRESOLVED or rng.random() > 0.1:
                    return
                sim.act(
                    Action.REOPEN,
                    sim.work(rng.uniform(1, 5) * day),
                    dispatcher,
                    unit=lead,
                    reason="市民再次来电反映未解决，重新办理",
                )
            sim.act(Action.ACCEPT, self._accept_at(sim, rng), actor, unit=lead)
            sim.act(Action.START, sim.work(rng.uniform(0.05, 1.5) * 3600), actor, unit=lead)
            self._work(case, case.reply + "已再次核查并落实整改。")


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0] + 1e-4), bounds[1] - 1e-4)


def generate(
    n: int,
    seed: int = 0,
    *,
    years: float = 3.0,
    end: date | datetime | None = None,
    calendar: WorkCalendar | None = None,
    terms: TermsFor | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``n`` demo orders in creation order, the same ones for the same arguments.

    ``end`` is the last local day (default today, cut at the current minute) or an exact instant; ``calendar``
    and ``terms`` default to the built-in working calendar and time limits (no database needed).
    """
    return iter(DemoGenerator(n, seed, years=years, end=end, calendar=calendar, terms=terms))


# Columns of :func:`write_csv`: headers that ``cityhub import orders`` understands, then demo facts it keeps
# in ``attributes`` (the final state and the hotspot are the ground truth for analytics benchmarks).
CSV_FIELDS = (
    "external_id",
    "channel",
    "appeal_type",
    "urgency",
    "title",
    "content",
    "citizen_name",
    "citizen_phone",
    "address",
    "lat",
    "lng",
    "category_path",
    "created_at",
    "reply_text",
    "replied_at",
    "likes",
    "opposes",
    "state",
    "street_code",
    "community_code",
    "scenario",
    "hotspot",
)


def csv_row(record: dict[str, Any]) -> list[str]:
    """One generated record as a CSV row of :data:`CSV_FIELDS` (times in ISO 8601 with offset)."""
    attributes = record.get("attributes") or {}
    row: list[str] = []
    for name in CSV_FIELDS:
        value = attributes.get(name) if name in ("scenario", "hotspot") else record.get(name)
        if name == "replied_at" and not record.get("reply_text"):
            # A reply sent back (退回答复) keeps its time on the order, not its text: no reply for the import to take
            # (which refuses a reply's time without one).
            value = None
        if value is None:
            row.append("")
        elif isinstance(value, datetime):
            row.append(value.isoformat())
        else:
            row.append(str(value))
    return row


def write_csv(out: IO[str], records: Iterator[dict[str, Any]]) -> int:
    """Write records as CSV (header first), streaming; returns the number of rows. For ``cityhub import orders`` to
    read: the plain ``csv.writer``, not :class:`cityhub.outfiles.SpreadsheetCsv` (a ``'`` would be imported)."""
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    count = 0
    for record in records:
        writer.writerow(csv_row(record))
        count += 1
    return count
