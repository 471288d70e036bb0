"""Intake looks for duplicates before it writes (so the write transaction stays short) and still decides as before:
an open new order that duplicates an open one is merged; one an instant answer has closed, or whose master was
closed in between, keeps the duplicate as a suggestion and is received all the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityhub.intake import dedupe
from cityhub.intake import service as intake
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.schemas import OrderCreate

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
TEXT = "岗贝路12号门口垃圾堆积三天无人清理，臭气熏天，蚊蝇滋生，附近居民出行都要捂着鼻子，请环卫部门尽快清运处理。"
AGAIN = "岗贝路12号门口垃圾堆积三天了无人清理，臭气熏天，蚊蝇滋生，附近居民出行都要捂着鼻子，请环卫部门尽快清运处理！"


@pytest.fixture
def community(db_session):
    district = Unit(code="IO440111", name="测试区", tier=UnitTier.DISTRICT)
    db_session.add(district)
    db_session.flush()
    street = Unit(code="IO440111001", name="甲街道", tier=UnitTier.STREET, parent_id=district.id)
    db_session.add(street)
    db_session.flush()
    db_session.add(Unit(code="IO440111001001", name="岗贝社区", tier=UnitTier.COMMUNITY, parent_id=street.id))
    db_session.commit()
    return "IO440111001001"


def _data(content, at, community):
    return {
        "channel": "hotline",
        "appeal_type": "complaint",
        "content": content,
        "created_at": at,
        "community_code": community,
    }


def test_an_open_duplicate_is_merged(db_session, community):
    first = intake.submit(db_session, data=_data(TEXT, T0, community))
    db_session.commit()
    again = intake.submit(db_session, data=_data(AGAIN, T0 + timedelta(hours=1), community))
    db_session.commit()
    assert again.dedupe_action == dedupe.DedupeAction.AUTO_MERGE
    assert again.order.state == State.MERGED and again.order.master_order_id == first.order.id


def test_an_instantly_answered_duplicate_stays_answered_with_a_suggestion(db_session, community):
    first = intake.submit(db_session, data=_data(TEXT, T0, community))
    db_session.commit()
    consultation = {**_data(AGAIN, T0 + timedelta(hours=1), community), "appeal_type": "consultation"}
    again = intake.submit(db_session, data=consultation, instant_answer="已转环卫部门，今天清运。")
    db_session.commit()
    assert again.created and again.order.state == State.CLOSED_RESOLVED and again.order.instant_answered
    assert again.dedupe_action == dedupe.DedupeAction.SUGGEST_MERGE
    assert [d.order.id for d in again.duplicates] == [first.order.id]


def test_a_master_closed_after_the_check_leaves_a_suggestion(db_session, community):
    first = intake.submit(db_session, data=_data(TEXT, T0, community))
    db_session.commit()
    data = intake.parse(_data(AGAIN, T0 + timedelta(hours=1), community))
    found = dedupe.check(db_session, data=data)
    assert found.action == dedupe.DedupeAction.AUTO_MERGE and found.master.id == first.order.id
    orders.act(db_session, order_id=first.order.id, action="cancel", params={"reason": "重复受理"})  # meanwhile
    order, created = orders.create_order(db_session, data=OrderCreate.model_validate(data))
    result = intake.merge_if_duplicate(db_session, order, found, orders.SYSTEM)
    db_session.commit()
    assert created and order.state == State.RECEIVED
    assert result.action == dedupe.DedupeAction.SUGGEST_MERGE and result.master.id == first.order.id


def test_a_resubmission_is_answered_without_searching_or_writing(db_session, community):
    first = intake.submit(db_session, data={**_data(TEXT, T0, community), "external_id": "call-7"})
    db_session.commit()
    again = intake.submit(db_session, data={**_data(AGAIN, T0, community), "external_id": "call-7"})
    assert not again.created and again.order.id == first.order.id
    assert again.duplicates == [] and again.dedupe_action == dedupe.DedupeAction.NONE
    assert not db_session.new and not db_session.dirty


@pytest.mark.parametrize("content", [TEXT, "人民路井盖丢了"], ids=["same", "another"])
def test_an_appeal_sent_twice_at_once_is_one_order(db_engine, community, monkeypatch, content):
    """An integrator re-sends a request that timed out while the first is still being received: the second intake
    finds no order with the id, and the first commits before the second inserts. The second is answered with the
    first's order (or, saying something else, refused by name), not the unique constraint's error."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from cityhub.errors import Conflict
    from cityhub.workorders.models import Order

    data = {**_data(TEXT, T0, community), "external_id": "call-9"}
    with Session(bind=db_engine) as first, Session(bind=db_engine) as second:
        received = intake.submit(first, data=data, similar=False)
        looked_up = orders.appeal_place

        def first_commits_meanwhile(session, appeal):  # after the second's look-up, before its insert
            first.commit()
            return looked_up(session, appeal)

        monkeypatch.setattr(orders, "appeal_place", first_commits_meanwhile)
        again = {**data, "content": content}
        if content == TEXT:
            result = intake.submit(second, data=again, similar=False, same_message=True)
            assert not result.created and result.order.id == received.order.id
        else:
            with pytest.raises(Conflict, match="call-9 already holds another message"):
                intake.submit(second, data=again, similar=False, same_message=True)
        second.commit()
        assert second.scalar(select(func.count()).select_from(Order)) == 1
