"""拆单: one problem of a many-problem appeal split off as an order of its own (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cityhub.errors import InvalidTransition, MissingParameter, PermissionDenied, ValidationFailed
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Attachment, Category, Order
from cityhub.workorders.schemas import EventRead

MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
OPERATOR = service.Actor(name="接线员小李", role="operator")
TWO_PROBLEMS = "我叫张三，电话13812345678。小区门口路灯坏了一周；另外楼下餐馆油烟直排，熏得没法开窗。"


@pytest.fixture
def units(db_session):
    district = Unit(code="T440111", name="测试区", tier=UnitTier.DISTRICT)
    db_session.add(district)
    db_session.flush()
    street = Unit(code="T440111001", name="测试街道", tier=UnitTier.STREET, parent_id=district.id)
    other = Unit(code="T440111002", name="另一街道", tier=UnitTier.STREET, parent_id=district.id)
    dept = Unit(code="T440111-D01", name="测试城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    db_session.add_all([street, other, dept])
    db_session.flush()
    return {"district": district, "street": street, "other": other, "dept": dept}


def _appeal(db_session, units, **extra):
    data = {
        "channel": "hotline",
        "appeal_type": "complaint",
        "title": "路灯坏了和油烟扰民",
        "content": TWO_PROBLEMS,
        "citizen_name": "张三",
        "citizen_phone": "13812345678",
        "address": "测试街道幸福路8号",
        "street_code": units["street"].code,
        "urgency": "urgent",
        "created_at": MONDAY,
        "attachments": [{"filename": "路灯.jpg", "url": "https://example.org/p/1.jpg", "content_type": "image/jpeg"}],
        **extra,
    }
    return submit(db_session, data=data, actor=OPERATOR).order


def _split(db_session, order, now=MONDAY + timedelta(hours=1), actor=OPERATOR, **params):
    return service.act(db_session, order_id=order.id, action="split", actor=actor, params=params, now=now)


def test_a_split_part_is_a_new_order_of_the_same_citizen_and_place_received_now(db_session, units):
    category = Category(name="油烟污染", code="T-SMOKE", level=1, path="油烟污染")
    db_session.add(category)
    db_session.flush()
    order = _appeal(db_session, units)
    version = order.version
    now = MONDAY + timedelta(hours=1)
    _split(
        db_session, order, now, content="  楼下餐馆油烟直排，熏得没法开窗。 ", category_id=category.id, reason="两件事"
    )
    assert order.state == State.RECEIVED and order.version == version + 1  # the appeal keeps its state
    part = db_session.scalars(select(Order).where(Order.split_from_id == order.id)).one()
    assert part.id != order.id and part.number != order.number and part.state == State.RECEIVED
    assert (
        part.content == "楼下餐馆油烟直排，熏得没法开窗。" and part.title == part.content[: service.SPLIT_TITLE_CHARS]
    )
    assert (part.channel, part.appeal_type, part.urgency) == (order.channel, order.appeal_type, order.urgency)
    assert (part.citizen_name, part.citizen_phone, part.address) == ("张三", "13812345678", "测试街道幸福路8号")
    assert (part.street_id, part.place_source) == (units["street"].id, order.place_source)
    assert part.category_id == category.id and part.created_at == now  # its time limit runs from now
    assert [(a.filename, a.url) for a in part.attachments] == [("路灯.jpg", "https://example.org/p/1.jpg")]
    # Both trails say it: the appeal's split event names the part; the part's creation is audited as any.
    split = service.history(db_session, order_id=order.id)[-1]
    assert (split.action, split.from_state, split.to_state, split.reason) == ("split", "received", "received", "两件事")
    assert split.payload["part_number"] == part.number and split.payload["part_id"] == part.id
    assert split.payload["content"] == "楼下餐馆油烟直排，熏得没法开窗。"
    assert [e.action for e in service.history(db_session, order_id=part.id)] == ["create"]


def test_a_split_keeps_the_citizen_s_words_from_masked_readers_of_the_trail(db_session, units):
    order = _appeal(db_session, units)
    _split(db_session, order, content="张三说：楼下餐馆油烟直排，电话13812345678")
    event = EventRead.model_validate(service.history(db_session, order_id=order.id)[-1])
    shown = event.masked(known=(order.citizen_name, order.citizen_phone)).payload
    assert "张三" not in shown["content"] and "13812345678" not in shown["content"]


def test_a_stored_file_goes_with_the_part_under_its_own_address(db_session, units):
    order = _appeal(db_session, units, attachments=[])
    stored = Attachment(order_id=order.id, filename="油烟.png", url="", sha256="ab" * 32, size=10, uploaded_by=None)
    db_session.add(stored)
    db_session.flush()
    _split(db_session, order, content="楼下餐馆油烟直排")
    part = db_session.scalars(select(Order).where(Order.split_from_id == order.id)).one()
    (copy,) = part.attachments
    assert copy.sha256 == stored.sha256 and copy.id != stored.id
    assert copy.url == f"/api/v1/orders/{part.id}/attachments/{copy.id}/content" and copy.uploaded_by is None


def test_a_split_needs_the_part_s_text_and_a_known_category(db_session, units):
    order = _appeal(db_session, units)
    with pytest.raises(MissingParameter):
        _split(db_session, order, content="   ")
    with pytest.raises(ValidationFailed, match="category"):
        _split(db_session, order, content="油烟直排", category_id=999_999)
    with pytest.raises(ValidationFailed, match="title"):
        _split(db_session, order, content="油烟直排", title="长" * 301)
    assert db_session.scalars(select(Order).where(Order.split_from_id == order.id)).all() == []


def test_a_closed_or_merged_appeal_is_not_split(db_session, units):
    order = _appeal(db_session, units)
    service.act(db_session, order_id=order.id, action="cancel", actor=OPERATOR, params={"reason": "重复来电"})
    with pytest.raises(InvalidTransition):
        _split(db_session, order, content="油烟直排")


def test_a_dispatcher_splits_only_what_their_units_hold(db_session, units):
    order = _appeal(db_session, units)
    service.act(db_session, order_id=order.id, action="dispatch", actor=OPERATOR, params={"unit_id": units["other"].id})
    street_dispatcher = service.Actor(name="街道派单员", role="dispatcher", unit_id=units["street"].id)
    with pytest.raises(PermissionDenied):
        _split(db_session, order, actor=street_dispatcher, content="油烟直排")
    district_dispatcher = service.Actor(name="区派单员", role="dispatcher", unit_id=units["district"].id)
    _split(db_session, order, actor=district_dispatcher, content="油烟直排")
    assert order.state == State.DISPATCHED and order.lead_unit_id == units["other"].id


def test_the_cli_splits_an_order_by_its_number_and_names_the_new_one(app_db, cli_run):
    from cityhub.db import session_scope

    with session_scope() as s:
        number = submit(s, data={"channel": "hotline", "content": TWO_PROBLEMS}).order.number
    code, out, _ = cli_run("orders", "act", number, "split", "-p", "content=楼下餐馆油烟直排", "--reason", "两件事")
    assert code == 0, out
    with session_scope() as s:
        part = s.scalars(select(Order).where(Order.content == "楼下餐馆油烟直排")).one()
        assert out.splitlines()[-1] == f"{number}: split off as {part.number}"
    code, _, err = cli_run("orders", "act", number, "split")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "content" in err
