"""A period's assessment figures are kept per process and answered again while nothing they read has changed
(``kpi._figures``), on SQLite and PostgreSQL, on the hand-counted history of ``test_kpi`` (committed, as the app
sees it): a kept answer is the fresh one however it is asked, and each kind of change — an event in the period, an
event backdated into it on an order that had none there, an act after the period on one of its orders, a unit moved
to another street, a time-limit recompute — gives the new figures at the next ask, while a change of another
period's orders computes nothing (``kpi.computations`` counts the real computations)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from test_kpi import EXPECTED, MARCH, D, H, T, _act, _new, _unit, history  # noqa: F401  (the fixture)

from app_helpers import shared_app
from cityhub.analytics import kpi
from cityhub.auth.service import create_token
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import recompute
from cityhub.workorders.scheduled import sla_sweep


def _asked(s, **kwargs) -> tuple[list[dict], int]:
    """The figures as dicts, and how many computations answering them took."""
    before = kpi.computations
    rows = [r.as_dict() for r in kpi.compute(s, period=kwargs.pop("period", MARCH), **kwargs)]
    return rows, kpi.computations - before


def _fresh(s, **kwargs) -> list[dict]:
    kpi.clear_cache()
    rows, computed = _asked(s, **kwargs)
    assert computed == 1
    return rows


def _rates(rows: list[dict], code: str) -> dict[str, tuple[int, int]]:
    row = next(r for r in rows if r["code"] == code)
    return {name: (v["numerator"], v["denominator"]) for name, v in row["kpis"].items()}


def test_a_kept_answer_is_the_fresh_one_however_it_is_asked(db_session, history):  # noqa: F811
    s = db_session
    s.commit()
    d, d2 = history["d"], history["d2"]
    ways = [
        {},
        {"tier": "department"},
        {"tier": "street"},
        {"unit_ids": [d]},
        {"unit_ids": [d, d2]},
        {"kpis": ["return_rate"]},
        {"kpis": ["satisfaction", "resolution"], "tier": "department"},
        {"unit_ids": [d2], "kpis": ["on_time_completion"]},
        {"repeat_days": 60},
    ]
    for way in ways:
        fresh = _fresh(s, **way)
        assert _asked(s, **way) == (fresh, 0), way  # asked again: kept
        kpi.clear_cache()
        _asked(s)  # the district's figures kept: every unit, tier and KPI is read from them
        assert _asked(s, **way) == (fresh, 0 if "repeat_days" not in way else 1), way
    rows, _ = _asked(s)
    assert _rates(rows, "K-D1") == EXPECTED["D"] and _rates(rows, "K-D2") == EXPECTED["D2"]
    # Another period is other figures.
    assert _asked(s, period=kpi.parse_period("2026-04")) == ([], 1)


def test_an_event_in_the_period_counts_at_the_next_ask(db_session, history):  # noqa: F811
    s = db_session
    s.commit()
    assert _asked(s)[1] == 1
    _act(s, history["orders"]["o5"], "accept", T + 2 * D + 2 * H)  # dispatched to D at T + 2 D + H
    s.commit()
    rows, computed = _asked(s)
    assert computed == 1 and _rates(rows, "K-D1")["on_time_accept"] == (2, 3)
    assert rows == _fresh(s) and _asked(s)[1] == 0


def test_an_event_backdated_into_the_period_counts_at_the_next_ask(db_session, history):  # noqa: F811
    """o0 was received in January, outside the repeat rate's window, and had no event in March: an assignment
    recorded now with a time in March brings it into the period."""
    s = db_session
    s.commit()
    assert _asked(s)[1] == 1
    _act(s, history["orders"]["o0"], "dispatch", T + 5 * D, unit_id=history["d"])
    s.commit()
    rows, computed = _asked(s)
    assert computed == 1 and _rates(rows, "K-D1")["return_rate"] == (1, 5)
    assert rows == _fresh(s)


def test_an_act_after_the_period_on_one_of_its_orders_counts_at_the_next_ask(db_session, history):  # noqa: F811
    """o5 was assigned to D in March; returned in April, March's assignment is returned: the whole trail counts."""
    s = db_session
    s.commit()
    assert _rates(_asked(s)[0], "K-D1")["return_rate"] == (1, 4)
    _act(s, history["orders"]["o5"], "return", T + 40 * D, reason="非本单位职责")
    s.commit()
    rows, computed = _asked(s)
    assert computed == 1 and _rates(rows, "K-D1")["return_rate"] == (2, 4)
    assert rows == _fresh(s)


def test_a_unit_moved_to_another_street_counts_at_the_next_ask(db_session, history):  # noqa: F811
    s = db_session
    street = history["units"]["S"]
    other = Unit(code="K-S2", name="另一街道", tier=UnitTier.STREET, parent_id=street.parent_id)
    community = Unit(code="K-S1-C1", name="测试社区", tier=UnitTier.COMMUNITY, parent_id=street.id)
    s.add_all([other, community])
    s.flush()
    oid = _new(s, T + D, "13700000001")
    _act(s, oid, "dispatch", T + D + H, unit_id=community.id)
    s.commit()
    rows, _ = _asked(s, tier="street")
    assert [(r["code"], r["n"]) for r in rows] == [("K-S1", 1)]
    community.parent_id = other.id
    s.commit()
    rows, computed = _asked(s, tier="street")
    assert computed == 1 and [(r["code"], r["n"]) for r in rows] == [("K-S2", 1)]
    assert rows == _fresh(s, tier="street")
    community.name = "改名社区"  # what the figures show of a unit
    s.commit()
    rows, computed = _asked(s, tier="community")
    assert computed == 1 and [r["name"] for r in rows] == ["改名社区"]


def test_a_time_limit_recompute_counts_at_the_next_ask(db_session):
    """Both accept limits passed (the sweep's marks count as misses); the dispatch day declared a holiday afterwards
    moves them and lifts the marks: no miss is left to count."""
    s = db_session
    unit = _unit(s, "KC")
    orders = [_new(s, T, "13500000001"), _new(s, T, "13500000002")]
    for oid in orders:
        _act(s, oid, "dispatch", T, unit_id=unit.id)
    sla_sweep(s, now=T + 3 * H)
    s.commit()
    rows, _ = _asked(s)
    assert _rates(rows, "KC-D")["on_time_accept"] == (0, 2)
    _, done = recompute.set_calendar_day(s, day=T.date(), is_workday=False, name="台风停工", now=T + 3.5 * H)
    assert done.orders == 2
    s.commit()
    rows, computed = _asked(s)
    assert computed == 1 and _rates(rows, "KC-D")["on_time_accept"] == (0, 0)
    assert rows == _fresh(s)


def test_a_change_of_other_orders_computes_nothing(db_session, history):  # noqa: F811
    """An order received in June and acted on, and an act in January on an order received then (before the repeat
    rate's window), leave March's figures standing; the next change of March's orders is still seen."""
    s = db_session
    s.commit()
    kept, _ = _asked(s)
    june = datetime(2026, 6, 1, 2, tzinfo=UTC)
    later = _new(s, june, "13600000009")
    _act(s, later, "dispatch", june + H, unit_id=history["d"])
    _act(s, history["orders"]["o0"], "dispatch", datetime(2026, 1, 16, 2, tzinfo=UTC), unit_id=history["d2"])
    s.commit()
    assert _asked(s) == (kept, 0)
    assert _asked(s, unit_ids=[history["d"]])[1] == 0
    _act(s, history["orders"]["o5"], "accept", T + 2 * D + 2 * H)
    s.commit()
    assert _asked(s)[1] == 1


def test_uncommitted_writes_are_read_and_never_kept(db_session, history):  # noqa: F811
    s = db_session
    s.commit()
    kept, _ = _asked(s)
    _act(s, history["orders"]["o5"], "accept", T + 2 * D + 2 * H)  # not committed
    rows, computed = _asked(s)
    assert computed == 1 and _rates(rows, "K-D1")["on_time_accept"] == (2, 3)
    s.rollback()
    assert _asked(s) == (kept, 0)


def test_keeping_warm_computes_the_common_periods_once(db_session, history):  # noqa: F811
    s = db_session
    s.commit()
    today = date(2026, 3, 20)
    assert [p.label for p in kpi.common_periods(today)] == ["2026-02-19..2026-03-20", "2026-03", "2026-02", "2026"]
    assert kpi.keep_warm(s, today=today) == {"computed": 4, "current": 0}
    assert kpi.keep_warm(s, today=today) == {"computed": 0, "current": 4}
    assert _asked(s)[1] == 0  # this month's figures, as the dashboard's ranking and the report ask them
    assert _asked(s, tier="street")[1] == 0 and _asked(s, unit_ids=[history["d"]])[1] == 0
    _act(s, history["orders"]["o5"], "accept", T + 2 * D + 2 * H)
    s.commit()
    assert kpi.keep_warm(s, today=today) == {"computed": 3, "current": 1}  # not February's


@pytest.fixture
def leader(app_db, db_session, history):  # noqa: F811
    district = history["units"]["S"].parent_id
    user = User(username="k-lead", full_name="领导", role=Role.LEADER, unit_id=district)
    db_session.add(user)
    db_session.flush()
    headers = {"Authorization": f"Bearer {create_token(db_session, user_id=user.id, name='t')[1]}"}
    db_session.commit()
    return headers


def test_the_api_and_the_report_answer_a_period_from_one_computation(leader):
    from fastapi.testclient import TestClient

    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        before = kpi.computations
        first = client.get("/api/v1/kpi", params={"period": "2026-03"}, headers=leader)
        assert first.status_code == 200, first.text
        again = client.get("/api/v1/kpi", params={"period": "2026-03"}, headers=leader)
        ranking = client.get("/api/v1/kpi/ranking", params={"period": "2026-03", "min_sample": 1}, headers=leader)
        report = client.get("/api/v1/kpi/report", params={"period": "2026-03"}, headers=leader)
        assert again.json() == first.json() and ranking.status_code == 200 and report.status_code == 200
        assert kpi.computations - before == 1
        assert {u["code"] for u in ranking.json()["ranked"]} == {"K-D1", "K-D2"}
