"""Orders are placed among the units as they are received, and the placing job places the rest (imports, orders
from before, orders received before the divisions were imported) — on both backends."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityhub import jobs
from cityhub.db import session_scope
from cityhub.intake.bulk import write_orders
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import AppealType, Order, Urgency
from cityhub.workorders.placing import place_pending

# A made-up district: only a gazetteer of the database's own units places these names.
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1], [113.0, 23.0]]],
}


def _units(session: Session) -> dict[str, int]:
    district = Unit(code="P-QU", name="青禾区", tier=UnitTier.DISTRICT)
    session.add(district)
    session.flush()
    street = Unit(code="P-JD", name="稻香街道", tier=UnitTier.STREET, parent_id=district.id)
    other = Unit(code="P-JD2", name="麦田街道", tier=UnitTier.STREET, parent_id=district.id)
    session.add_all([street, other])
    session.flush()
    community = Unit(code="P-SQ", name="桂花社区居委会", tier=UnitTier.COMMUNITY, parent_id=street.id, boundary=SQUARE)
    session.add(community)
    session.commit()
    return {"street": street.id, "other": other.id, "community": community.id}


@pytest.fixture
def units(db_session: Session) -> dict[str, int]:
    return _units(db_session)


def _appeal(session: Session, content: str, **extra: object) -> Order:
    return submit(session, data={"channel": "hotline", "content": content, **extra}).order


def _creation(session: Session, order: Order) -> dict[str, object]:
    event = orders.history(session, order_id=order.id)[0]
    assert event.action == "create"
    return dict(event.payload or {})


def test_intake_places_an_appeal_from_coordinates_address_or_text_and_audits_it(
    db_session: Session, units: dict[str, int]
) -> None:
    s = db_session
    by_text = _appeal(s, "麦田街道路口的路灯坏了一个星期")
    assert (by_text.street_id, by_text.community_id, by_text.place_source) == (units["other"], None, "text")
    creation = _creation(s, by_text)
    assert {k: creation[k] for k in ("street_id", "community_id", "place_source")} == {
        "street_id": units["other"],
        "community_id": None,
        "place_source": "text",
    }

    # The address comes before the text, the coordinates before both.
    by_address = _appeal(s, "麦田街道的朋友说这里也有问题", address="稻香街道桂花社区3栋")
    assert (by_address.street_id, by_address.community_id, by_address.place_source) == (
        units["street"],
        units["community"],
        "address",
    )
    by_point = _appeal(s, "麦田街道那边垃圾满了", address="麦田街道", lat=23.05, lng=113.05)
    assert (by_point.community_id, by_point.place_source) == (units["community"], "coordinates")

    # Codes given by the channel are the place; nothing that names a unit: looked for, marked, not placed.
    given = _appeal(s, "麦田街道噪音", street_code="P-JD")
    assert (given.street_id, given.place_source) == (units["street"], "order")
    nowhere = _appeal(s, "小区门口的井盖松动了，走过去响")
    assert (nowhere.street_id, nowhere.community_id, nowhere.place_source) == (None, None, "none")
    assert _creation(s, nowhere)["place_source"] == "none"


def test_an_ambiguous_answer_places_the_appeal_as_far_as_its_readings_agree(
    db_session: Session, units: dict[str, int]
) -> None:
    s = db_session
    # Two communities of 稻香街道 with the same name: the text names one of them, not which.
    twin = Unit(code="P-SQ2", name="桂花社区居委会", tier=UnitTier.COMMUNITY, parent_id=units["street"])
    s.add(twin)
    s.commit()
    order = _appeal(s, "桂花社区门口的井盖松了")
    assert (order.street_id, order.community_id, order.place_source) == (units["street"], None, "text")
    # A later source that names the place outright still wins over the ambiguous one.
    order = _appeal(s, "麦田街道的井盖松了", address="桂花社区")
    assert (order.street_id, order.place_source) == (units["other"], "text")


def test_a_text_naming_a_county_elsewhere_is_not_placed_by_a_shared_village_name(
    db_session: Session, units: dict[str, int]
) -> None:
    """Many villages across the country share names: "湘北县桂花社区" is that county's, not ours; the same name
    without a county, or with our own district or a word such as 县城, still places the appeal."""
    s = db_session
    for text in (
        "湘北县桂花社区门口的井盖松了",
        "J3县桂花社区门口的井盖松了",
        "K2区桂花社区门口的井盖松了",  # anonymised data's other districts and cities, by code
        "A市A5区桂花社区门口的井盖松了",
    ):
        elsewhere = _appeal(s, text)
        assert (elsewhere.street_id, elsewhere.community_id, elsewhere.place_source) == (None, None, "none"), text
    for text in (
        "桂花社区门口的井盖松了",
        "青禾区桂花社区门口的井盖松了",
        "去县城的路上，桂花社区门口的井盖松了",
        "稻香街道桂花社区B2区3栋门口的井盖松了",  # a compound's zone, after our own names
    ):
        ours = _appeal(s, text)
        assert (ours.community_id, ours.place_source) == (units["community"], "text"), text
    given = _appeal(s, "湘北县来的亲戚说井盖松了", address="稻香街道桂花社区3栋")  # the address field is ours
    assert (given.community_id, given.place_source) == (units["community"], "address")


def test_without_divisions_intake_leaves_the_place_for_later(db_session: Session) -> None:
    order = _appeal(db_session, "稻香街道桂花社区路灯不亮")
    assert (order.street_id, order.place_source) == (None, None)
    assert "place_source" not in _creation(db_session, order)
    assert place_pending(db_session)["skipped"] == "no divisions"
    assert order.place_source is None  # not marked: the job places it once the units exist

    ids = _units(db_session)
    result = place_pending(db_session)
    assert (result["placed"], result["unplaced"]) == (1, 0)
    db_session.refresh(order)
    assert (order.street_id, order.community_id, order.place_source) == (ids["street"], ids["community"], "text")


def _imported(session: Session, rows: list[dict[str, object]]) -> list[int]:
    base = {"title": "", "appeal_type": AppealType.COMPLAINT, "urgency": Urgency.NORMAL}
    ids = write_orders(session, [{**base, **row} for row in rows]).ids
    session.commit()
    return list(ids)


def test_the_placing_job_places_imported_orders_in_any_state_audited_once(
    db_session: Session, units: dict[str, int]
) -> None:
    s = db_session
    ids = _imported(
        s,
        [
            {"external_id": "i1", "content": "桂花社区楼下烧烤油烟很大"},
            {"external_id": "i2", "content": "路面坑洼", "address": "麦田街道建设路"},
            {"external_id": "i3", "content": "咨询社保转移"},
            {"external_id": "i4", "content": "旧单已答复", "address": "稻香街道", "state": State.REPLIED},
        ],
    )
    before = {o.id: o.version for o in s.scalars(select(Order).where(Order.id.in_(ids)))}
    result = place_pending(s, limit=3)
    s.commit()
    assert (result["looked"], result["placed"], result["unplaced"], result["last_id"]) == (3, 2, 1, ids[2])
    rest = place_pending(s)
    s.commit()
    assert (rest["looked"], rest["placed"]) == (1, 1)
    assert place_pending(s)["looked"] == 0  # nothing left: the marked and the placed have left the backlog

    got = {o.id: o for o in s.scalars(select(Order).where(Order.id.in_(ids)))}
    for o in got.values():
        s.refresh(o)
    first, second, third, fourth = (got[i] for i in ids)
    assert (first.street_id, first.community_id, first.place_source) == (units["street"], units["community"], "text")
    assert (second.street_id, second.place_source) == (units["other"], "address")
    assert (third.street_id, third.place_source, third.version) == (None, "none", before[third.id])
    assert (fourth.state, fourth.street_id, fourth.place_source) == (State.REPLIED, units["street"], "address")
    event = orders.history(s, order_id=first.id)[-1]
    assert event.action == "comment" and event.actor_name == "place-orders"
    assert event.payload["text"] == "place found from the text: 稻香街道 / 桂花社区居委会"
    assert (event.payload["community_id"], event.payload["place_source"]) == (units["community"], "text")
    assert first.version == before[first.id] + 1
    assert len(orders.history(s, order_id=third.id)) == 1  # the mark is not a change of place: no event


def test_retry_looks_again_at_orders_not_placeable_before(db_session: Session, units: dict[str, int]) -> None:
    s = db_session
    [order_id] = _imported(s, [{"external_id": "r1", "content": "枫林社区的路灯坏了"}])
    assert place_pending(s)["unplaced"] == 1
    s.commit()
    parent = s.get(Unit, units["other"])
    assert parent is not None
    s.add(Unit(code="P-SQ2", name="枫林社区居委会", tier=UnitTier.COMMUNITY, parent_id=parent.id))
    s.commit()
    assert place_pending(s)["looked"] == 0  # without retry the marked order is left alone
    again = place_pending(s, retry=True)
    s.commit()
    assert (again["looked"], again["placed"]) == (1, 1)
    order = s.get(Order, order_id)
    assert order is not None
    s.refresh(order)
    assert (order.street_id, order.place_source) == (units["other"], "text")


def test_cli_and_scheduled_job_place_the_backlog(app_db: str) -> None:
    from cityhub.workorders.cli import app

    with session_scope() as s:
        _units(s)
        _imported(s, [{"external_id": f"c{i}", "content": f"稻香街道第{i}号路灯不亮"} for i in range(5)])
        _imported(s, [{"external_id": "c-none", "content": "没有地点的咨询"}])
    runner = CliRunner()
    done = runner.invoke(app, ["place", "--batch", "2", "--limit", "4"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"looked": 4, "placed": 4, "unplaced": 0}
    ran = jobs.run_job("place-orders")
    assert (ran["looked"], ran["placed"], ran["unplaced"]) == (2, 1, 1)
    assert "place-orders" in jobs.JOBS
    with session_scope() as s:
        placed = s.scalars(select(Order.place_source).order_by(Order.id)).all()
    assert placed == ["text"] * 5 + ["none"]


def test_cli_says_when_there_is_nothing_to_place_in(app_db: str) -> None:
    from cityhub.workorders.cli import app

    done = CliRunner().invoke(app, ["place"])
    assert done.exit_code != 0
    assert "no divisions" in done.output


def test_the_backlog_is_worked_in_committed_batches_within_a_time_budget(
    db_session: Session, units: dict[str, int]
) -> None:
    from cityhub.workorders.placing import place_backlog

    _imported(db_session, [{"external_id": f"b{i}", "content": f"稻香街道第{i}处井盖松动"} for i in range(5)])
    first = place_backlog(db_session, batch=2, budget_s=0)  # the budget ends the run after its first batch
    assert (first["looked"], first["placed"]) == (2, 2)
    db_session.rollback()  # the batch was committed: nothing to undo
    rest = place_backlog(db_session, batch=2)
    assert (rest["looked"], rest["placed"]) == (3, 3)
    placed = db_session.scalars(select(Order.place_source).where(Order.street_id == units["street"])).all()
    assert placed == ["text"] * 5


def test_an_unplaced_order_given_to_a_street_or_community_office_is_where_that_office_is(
    db_session: Session, units: dict[str, int]
) -> None:
    s = db_session
    department = Unit(code="P-D01", name="区城管局", tier=UnitTier.DEPARTMENT)
    s.add(department)
    s.commit()
    dispatcher = orders.Actor(name="派单员")

    def dispatched(content: str, unit_id: int) -> Order:
        order = _appeal(s, content)
        return orders.act(s, order_id=order.id, action="dispatch", actor=dispatcher, params={"unit_id": unit_id})

    to_community = dispatched("楼下井盖松动", units["community"])
    assert (to_community.street_id, to_community.community_id, to_community.place_source) == (
        units["street"],
        units["community"],
        "lead_unit",
    )
    event = orders.history(s, order_id=to_community.id)[-1]
    assert event.action == "dispatch" and (event.payload["community_id"], event.payload["place_source"]) == (
        units["community"],
        "lead_unit",
    )
    to_department = dispatched("楼下井盖松动了", department.id)
    assert (to_department.street_id, to_department.place_source) == (None, "none")
    # A placed order keeps its place whoever it is given to.
    placed = dispatched("麦田街道井盖松动", units["street"])
    assert (placed.street_id, placed.place_source) == (units["other"], "text")


def test_the_job_looks_again_at_unplaceable_orders_once_the_units_change(
    app_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.workorders import placing

    with session_scope() as s:
        ids = _units(s)
        [order_id] = _imported(s, [{"external_id": "u1", "content": "枫林社区的路灯坏了"}])
    first = jobs.run_job("place-orders")
    assert (first["looked"], first["unplaced"], first["retry_from"]) == (1, 1, None)
    assert "looked_again" not in jobs.run_job("place-orders")  # nothing changed: the marked order is left alone

    with session_scope() as s:
        s.add(Unit(code="P-SQ2", name="枫林社区居委会", tier=UnitTier.COMMUNITY, parent_id=ids["other"]))
    monkeypatch.setattr(placing, "JOB_BUDGET_S", 0.0)  # a run with no time left: the look again waits, remembered
    waited = jobs.run_job("place-orders")
    assert "looked_again" not in waited and waited["retry_from"] == 0
    monkeypatch.setattr(placing, "JOB_BUDGET_S", 20.0)
    again = jobs.run_job("place-orders")
    assert (again["looked_again"], again["placed"], again["retry_from"]) == (1, 1, None)
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None and (order.street_id, order.place_source) == (ids["other"], "text")
    assert "looked_again" not in jobs.run_job("place-orders")
