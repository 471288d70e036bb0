"""One unit's assessment figures read only the orders that can hold a fact of that unit, and are exactly what the
figures of the whole district say of it: every KPI's drill-down of every unit compared with the district's facts
filtered to the unit's jurisdiction, on the hand-built history of ``test_kpi`` and on a seeded random history
(transfers, returns, reassignments, leaders' 交办, reopens by another unit, extensions, suspensions, assists, sweeps
marking missed limits, a calendar edit lifting marks, a street's communities, trails imported without an
assignment), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from test_kpi import MARCH, T, _years_before, history  # noqa: F401  (the fixture)

from cityhub.analytics import kpi
from cityhub.errors import CityhubError
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import lifecycle, recompute, service
from cityhub.workorders.models import Order, OrderEvent
from cityhub.workorders.scheduled import sla_sweep
from cityhub.workorders.schemas import OrderCreate
from sql_helpers import planned_rows, selects_naming, weigh_as_held

PERIODS = [kpi.parse_period(p) for p in ("2026-03", "2026-03-15..2026-04-14", "2026-Q2")]
CLOSED = {"closed_resolved", "closed_unresolved", "cancelled", "merged"}


def _district_facts(s, period: kpi.Period) -> dict[str, list[kpi.Fact]]:
    """Every KPI's facts of the whole district (the walk of every order of the period)."""
    return {k.name: kpi.facts(s, kpi=k.name, period=period) for k in kpi.KPIS}


def _assert_each_unit_reads_as_the_district_says(s) -> int:
    """For every unit, period and KPI: its drill-down lists exactly the district's facts of its jurisdiction, and its
    own row of every KPI (``compute(unit_ids=[it])``) is the district's row of it. Returns the facts compared."""
    units = s.scalars(select(Unit.id).order_by(Unit.id)).all()
    compared = 0
    for period in PERIODS:
        district = _district_facts(s, period)
        rows = {r.unit_id: r for r in kpi.compute(s, period=period)}
        for unit in units:
            mine = set(kpi.jurisdiction(s, unit))
            for name, all_facts in district.items():
                expected = [f for f in all_facts if f.unit_id in mine]
                drill = kpi.drilldown(s, unit=unit, kpi=name, period=period)
                got = [(i["ref_id"], i["order_id"], i["hit"], i.get("event")) for i in drill.denominator]
                assert got == [(f.ref_id, f.order_id, f.hit, f.event) for f in expected], (period.label, unit, name)
                assert [i["ref_id"] for i in drill.numerator] == [f.ref_id for f in expected if f.hit]
                compared += len(expected)
            own = kpi.compute(s, period=period, unit_ids=[unit])
            if unit not in rows:
                assert own == [], (period.label, unit)
                continue
            [row] = own
            assert row.as_dict() == rows[unit].as_dict(), (period.label, unit)
    return compared


def test_each_units_drilldown_is_the_districts_facts_of_it_on_the_hand_built_history(db_session, history):  # noqa: F811
    assert _assert_each_unit_reads_as_the_district_says(db_session) > 0


# --- a random history ---------------------------------------------------------------------------------------


def _unit(s, code: str, tier: UnitTier, parent: int) -> int:
    unit = Unit(code=code, name=code, tier=tier, parent_id=parent)
    s.add(unit)
    s.flush()
    return unit.id


def _params(rng: random.Random, action: str, order: Order, view: Any, holders: list[int]) -> dict[str, Any]:
    others = [u for u in holders if u != order.lead_unit_id]
    if action == "dispatch":
        return {"unit_id": rng.choice(holders)}
    if action == "transfer":
        return {"unit_id": rng.choice(others), "reason": "职责不符"}
    if action == "assign":  # a leader's 交办: to another unit, to the unit holding it, or naming none
        choice = rng.random()
        if order.lead_unit_id is None or order.state in ("received", "returned") or choice < 0.4:
            return {"unit_id": rng.choice(others), "reason": "重点关注"}
        return {"unit_id": order.lead_unit_id, "reason": "督办"} if choice < 0.7 else {"reason": "督办"}
    if action == "reopen":
        return {"reason": "市民不满意", **({"unit_id": rng.choice(others)} if rng.random() < 0.4 else {})}
    if action == "close":
        return {"reason": "无法回访", "resolved": rng.random() < 0.5} if order.state == "replied" else {}
    if action == "callback":
        return {"satisfied": rng.random() < 0.4}
    if action == "request_extension":
        return {"days": rng.randint(1, 3), "reason": "需协调"}
    if action == "urge":
        return {"reason": "请尽快办结"}
    if action == "escalate":
        return {"reason": "市民多次来电", **({"urgency": "urgent"} if order.urgency == "normal" else {})}
    if action == "add_assist":
        return {"unit_id": rng.choice(others)}
    if action in ("assist_accept", "assist_reply"):
        waiting = [u for u, status in view.assists.items() if status in ("dispatched", "accepted")]
        return {"unit_id": rng.choice(waiting or others), **({"text": "已配合"} if action == "assist_reply" else {})}
    if action == "reply":
        return {"text": "已处理"}
    if action in ("return", "suspend", "reject_extension", "reject_reply", "cancel"):
        return {"reason": "原因"}
    return {}


# How often each action is tried among those the order allows now.
WEIGHTS = {
    "dispatch": 6,
    "accept": 6,
    "start": 4,
    "reply": 6,
    "callback": 6,
    "close": 3,
    "return": 1.5,
    "transfer": 1.5,
    "assign": 0.6,
    "reopen": 8,
    "request_extension": 1,
    "approve_extension": 6,
    "reject_extension": 1,
    "suspend": 0.5,
    "resume": 2,
    "reject_reply": 0.7,
    "escalate": 0.3,
    "add_assist": 0.5,
    "assist_accept": 1,
    "assist_reply": 2,
    "urge": 0.3,
    "cancel": 0.1,
}


def _random_history(s, district: int, seed: int = 20261204, n_orders: int = 200) -> Counter[str]:
    """``n_orders`` orders over 2026-02-20 … 2026-06, acted on in one global clock by people of every kind of unit;
    returns how many of each action went into the trails."""
    rng = random.Random(seed)
    weigh_as_held(s)  # from now on autovacuum cannot record the tables empty while the history is built and read
    street = _unit(s, "R-S1", UnitTier.STREET, district)
    street2 = _unit(s, "R-S2", UnitTier.STREET, district)
    holders = [
        _unit(s, "R-D1", UnitTier.DEPARTMENT, district),
        _unit(s, "R-D2", UnitTier.DEPARTMENT, district),
        street,
        _unit(s, "R-S1-C1", UnitTier.COMMUNITY, street),
        _unit(s, "R-S1-C2", UnitTier.COMMUNITY, street),
        street2,
        _unit(s, "R-S2-C1", UnitTier.COMMUNITY, street2),
    ]
    leader = service.Actor(name="lead", unit_id=district, role="leader")
    admin = service.Actor(name="admin", unit_id=district, role="admin")
    phones = [f"1360000{i:04d}" for i in range(60)]  # few enough for repeat complaints
    orders: list[int] = []
    done: Counter[str] = Counter()
    t = datetime(2026, 2, 20, 1, tzinfo=UTC)
    lifted = False
    for step in range(n_orders * 9):
        t += timedelta(minutes=rng.randint(5, 75))
        if len(orders) < n_orders and (rng.random() < 0.13 or len(orders) < 5):
            data = OrderCreate(channel="hotline", content="路灯不亮", citizen_phone=rng.choice(phones), created_at=t)
            orders.append(service.create_order(s, data=data, actor=service.Actor(name="op"))[0].id)
            continue
        if step % 50 == 0:  # the sweep marks the limits passed
            sla_sweep(s, now=t)
            s.expire_all()
            continue
        if not lifted and t >= datetime(2026, 3, 20, tzinfo=UTC):  # a typhoon day off, after the fact: marks lifted
            recompute.set_calendar_day(s, day=(t - timedelta(days=1)).date(), is_workday=False, name="台风", now=t)
            s.expire_all()
            lifted = True
            continue
        order = s.get(Order, rng.choice(orders))
        if order.state in CLOSED:
            continue
        view = service.view_of(order)
        allowed = [a.value for a in lifecycle.allowed_actions(view) if a.value in WEIGHTS]
        if not allowed:
            continue
        action = rng.choices(allowed, weights=[WEIGHTS[a] for a in allowed])[0]
        if action == "assign":
            actor = leader
        else:  # the unit's handler, an administrator of the district, someone of another unit, or nobody's
            someone = rng.choice(holders)
            actor = rng.choice(
                [
                    service.Actor(name="handler", unit_id=order.lead_unit_id),
                    admin,
                    service.Actor(name="clerk", unit_id=someone),
                    service.Actor(name="op"),
                ]
            )
        try:
            service.act(
                s,
                order_id=order.id,
                action=action,
                actor=actor,
                params=_params(rng, action, order, view, holders),
                now=t,
            )
        except CityhubError:
            continue
        done[action] += 1
    done.update(_trails_without_an_assignment(s, holders, rng))
    s.flush()
    weigh_as_held(s)  # the planner weighs the history the test holds (uncommitted: autovacuum never sees it)
    return done


def _trails_without_an_assignment(s, holders: list[int], rng: random.Random) -> Counter[str]:
    """Trails as an import writes them, no assignment in them: an accept and a reply count for their own unit, a
    callback and a close for the order's lead unit; a sweep mark there is nobody's."""
    done: Counter[str] = Counter()
    for n in range(12):
        at = T + timedelta(days=n * 3)
        data = OrderCreate(channel="hotline", content="井盖缺失", citizen_phone=f"1350000{n:04d}", created_at=at)
        order, _ = service.create_order(s, data=data, actor=service.Actor(name="import"))
        order.lead_unit_id = rng.choice(holders)
        doer = rng.choice(holders)
        trail = [
            ("sla_accept_overdue", None, None),
            ("accept", doer, None),
            ("reply", doer, None),
            ("callback", doer, {"satisfied": rng.random() < 0.5}),
            ("close", None, None),
        ]
        s.execute(
            insert(OrderEvent),
            [
                {
                    "order_id": order.id,
                    "action": action,
                    "to_state": "closed_resolved" if action == "close" else "replied",
                    "actor_name": "import",
                    "unit_id": unit,
                    "at": at + k * timedelta(hours=5),
                    "payload": payload,
                }
                for k, (action, unit, payload) in enumerate(trail)
            ],
        )
        done.update(a for a, _, _ in trail)
    return done


@pytest.fixture
def random_history(db_session, history) -> Counter[str]:  # noqa: F811
    district = history["units"]["S"].parent_id
    return _random_history(db_session, district)


def test_each_units_drilldown_is_the_districts_facts_of_it_on_a_random_history(
    db_session, db_engine, db_backend, random_history
):
    """Seeded: the same history on both backends. The history holds each kind of step the attribution depends on.
    On PostgreSQL the planner weighs the history as the test holds it, whenever autovacuum runs (``weigh_as_held``):
    weighed as empty, the walks of this history took minutes instead of seconds."""
    done = random_history
    for action in ("transfer", "return", "assign", "reopen", "approve_extension", "assist_reply", "callback", "close"):
        assert done[action] >= 3, done
    s = db_session
    marks = Counter(s.scalars(select(OrderEvent.action).where(OrderEvent.action.like("sla_%"))))
    assert marks["sla_accept_overdue"] and marks["sla_overdue"] and marks["sla_recompute"], marks
    if db_backend == "postgresql":
        # Autovacuum's ANALYZE, which may come at any moment: another transaction, skipping a table locked.
        with db_engine.connect() as other:
            other.execute(text("ANALYZE (SKIP_LOCKED) orders, order_events"))
            other.commit()
        held = s.scalar(select(func.count()).select_from(OrderEvent))
        assert planned_rows(s, "order_events") == held > 1000
    assert _assert_each_unit_reads_as_the_district_says(s) > 1000


# --- what one unit's figures read ---------------------------------------------------------------------------


def _walked_orders(monkeypatch) -> set[int]:
    """The orders whose trails the walks read while the test runs."""
    walked: set[int] = set()
    read = kpi._trail_rows

    def recording(*args: Any, **kwargs: Any) -> Any:
        for row in read(*args, **kwargs):
            walked.add(row[1])
            yield row

    monkeypatch.setattr(kpi, "_trail_rows", recording)
    return walked


def test_one_units_figures_walk_only_the_trails_of_orders_that_can_hold_its_facts(db_session, history, monkeypatch):  # noqa: F811
    """D2's drill-down and its own row read the trails of the orders sent to it (o3 after its return by D, o4, o6,
    o8), not those of the orders only D ever held (o1, o2, o5): a month's drill-down at 200,000 orders read the
    trails of the whole period (0.13 → 0.6 s, a year's 2.3 → 6.5 s)."""
    o = history["orders"]
    walked = _walked_orders(monkeypatch)
    for name in kpi.WALKED_KPIS:
        kpi.drilldown(db_session, unit=history["d2"], kpi=name, period=MARCH)
    kpi.compute(db_session, period=MARCH, unit_ids=[history["d2"]])
    assert walked == {o["o3"], o["o4"], o["o6"], o["o8"]}
    walked.clear()
    kpi.compute(db_session, period=MARCH)  # the district's figures: every order of the period
    assert walked == {o[n] for n in ("o1", "o2", "o3", "o4", "o5", "o6", "o8")}


def test_one_units_repeat_complaints_look_up_the_first_assignment_of_its_orders_only(db_session, history):  # noqa: F811
    """The repeat rate's unit is the one of an order's first assignment: one unit's figure looks it up for the
    orders that can have been sent to it, not for every order created in the period."""
    o = history["orders"]
    units = set(kpi.jurisdiction(db_session, history["d2"]))
    first = kpi._first_assignments(db_session, MARCH, units)
    assert set(first) == {o["o3"], o["o4"], o["o6"], o["o8"]}  # o3 first went to D: its unit is D's, not counted
    assert first[o["o3"]][1] == history["d"]
    assert set(kpi._first_assignments(db_session, MARCH)) == {o[n] for n in ("o1", "o2", "o3", "o4", "o5", "o6", "o8")}


def test_one_units_orders_are_found_through_indexes(db_session, db_backend, history):  # noqa: F811
    """The orders that can hold one unit's facts are found through ``ix_order_events_unit_action`` (unit, action,
    order: from the index alone) and the lead unit's index of ``orders``, never by scanning the events or the orders;
    weighed on three years of history with statistics (on near-empty tables a plan is arbitrary)."""
    s = db_session
    _years_before(s, history)
    with selects_naming(s.get_bind(), "order_events") as statements:
        for name in ("on_time_completion", "satisfaction", "repeat_rate"):
            kpi.drilldown(s, unit=history["d2"], kpi=name, period=MARCH)
    assert len(statements) == 3
    conn = s.connection()
    for statement, parameters in statements:
        if db_backend == "sqlite":
            plan = [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            scans = [p for p in plan if p.startswith(("SCAN e", "SCAN f", "SCAN g", "SCAN o", "SCAN orders"))]
            assert not scans, plan
            assert any(
                p.startswith("SEARCH g USING COVERING INDEX ix_order_events_unit_action (unit_id=?") for p in plan
            ), plan
            assert any(p.startswith("SEARCH orders USING COVERING INDEX ix_orders_lead_") for p in plan), plan
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = [row[0] for row in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)]
            assert not any("Seq Scan" in p for p in plan), plan
            assert any("ix_order_events_unit_action on order_events g" in p for p in plan), plan
    s.rollback()
