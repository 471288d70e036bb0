"""Per-process caches of reference tables (cityhub.refdata): the triggers' tokens, and caches that follow every
change — made by this session, by another connection, in raw SQL, or undone by a rollback."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from cityhub import refdata
from cityhub.org.models import Unit, UnitTier
from cityhub.org.service import unit_directory
from cityhub.workorders.calendar import load_calendar
from cityhub.workorders.categories import create_category, find_category, taxonomy
from cityhub.workorders.models import CalendarDay


def _tokens(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: token for name, token in conn.execute(text("SELECT name, token FROM reference_versions"))}


def _unit(code: str, name: str) -> Unit:
    return Unit(code=code, name=name, tier=UnitTier.DEPARTMENT)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    refdata.clear()


def test_every_insert_update_and_delete_replaces_the_token_of_its_table_only(
    db_engine: Engine, db_session: Session
) -> None:
    before = _tokens(db_engine)
    db_session.add(_unit("D001", "住建局"))
    db_session.commit()
    inserted = _tokens(db_engine)
    assert inserted["units"] != before.get("units")
    assert {k: v for k, v in inserted.items() if k != "units"} == {k: v for k, v in before.items() if k != "units"}

    with db_engine.begin() as conn:  # raw SQL, as a hand-typed statement or another program would
        conn.execute(text("UPDATE units SET name = '城管局' WHERE code = 'D001'"))
    updated = _tokens(db_engine)
    assert updated["units"] != inserted["units"]

    with db_engine.begin() as conn:
        conn.execute(text("INSERT INTO calendar_days (day, is_workday) VALUES ('2027-01-04', false)"))
        conn.execute(text("DELETE FROM calendar_days"))
    after = _tokens(db_engine)
    assert after["calendar_days"] != updated.get("calendar_days")
    assert after["units"] == updated["units"]


def test_a_change_committed_elsewhere_shows_in_the_next_transaction(db_engine: Engine, db_session: Session) -> None:
    unit = _unit("D001", "住建局")
    db_session.add(unit)
    db_session.commit()
    unit_id = unit.id
    assert unit_directory(db_session)[unit_id].name == "住建局"
    db_session.commit()

    with db_engine.begin() as conn:  # another process: no ORM event, no shared memory
        conn.execute(text("UPDATE units SET name = '城管局', active = false WHERE code = 'D001'"))

    directory = unit_directory(db_session)
    assert directory[unit_id].name == "城管局"
    assert directory[unit_id].active is False


def test_an_unchanged_table_is_not_read_again(db_session: Session) -> None:
    builds: list[int] = []

    def build(s: Session) -> int:
        builds.append(1)
        return len(builds)

    db_session.add(_unit("D001", "住建局"))
    db_session.commit()
    assert refdata.cached(db_session, "test", ("units",), build) == 1
    db_session.commit()
    assert refdata.cached(db_session, "test", ("units",), build) == 1  # another transaction, same tokens
    db_session.add(_unit("D002", "水务局"))
    db_session.flush()
    assert refdata.cached(db_session, "test", ("units",), build) == 2  # this transaction's own write


def test_own_pending_writes_count_and_a_rollback_undoes_them(db_session: Session) -> None:
    db_session.add(_unit("D001", "住建局"))
    db_session.commit()
    assert {u.code for u in unit_directory(db_session).values()} == {"D001"}

    db_session.add(_unit("D002", "水务局"))  # not flushed: a query would see it (autoflush), so must the cache
    assert {u.code for u in unit_directory(db_session).values()} == {"D001", "D002"}
    db_session.rollback()
    assert {u.code for u in unit_directory(db_session).values()} == {"D001"}


def test_a_savepoint_rolled_back_takes_its_change_with_it(db_session: Session) -> None:
    db_session.add(_unit("D001", "住建局"))
    db_session.commit()
    nested = db_session.begin_nested()
    db_session.add(_unit("D002", "水务局"))
    db_session.flush()
    assert len(unit_directory(db_session)) == 2
    nested.rollback()
    assert {u.code for u in unit_directory(db_session).values()} == {"D001"}


def test_a_table_without_a_token_is_read_every_time(db_engine: Engine, db_session: Session) -> None:
    builds: list[int] = []
    with db_engine.begin() as conn:
        conn.execute(text("DELETE FROM reference_versions WHERE name = 'sla_rules'"))
    for _ in range(2):
        refdata.cached(db_session, "test", ("sla_rules",), lambda s: builds.append(1))
        db_session.commit()
    assert len(builds) == 2


def test_categories_and_calendar_follow_their_tables(db_session: Session) -> None:
    parent = create_category(db_session, name="城乡建设")
    create_category(db_session, name="住房保障", parent_id=parent.id)
    db_session.commit()
    assert taxonomy(db_session).find("住房保障") is not None
    child = find_category(db_session, name_or_path="城乡建设/住房保障")
    assert child is not None and taxonomy(db_session).chain(child.id) == [child.id, parent.id]

    create_category(db_session, name="住房保障", parent_id=None)  # the same name, shallower: now the one found
    db_session.commit()
    found = taxonomy(db_session).find("住房保障")
    assert found is not None and found.level == 1

    holiday = date(2027, 1, 4)  # a Monday
    assert load_calendar(db_session).is_workday(holiday)
    db_session.add(CalendarDay(day=holiday, is_workday=False, name="test"))
    db_session.commit()
    assert not load_calendar(db_session).is_workday(holiday)
