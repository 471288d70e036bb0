"""The order service on a real database (SQLite and PostgreSQL): life cycle, audit trail, SLA, sweep, 拆单."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from cityhub.errors import Conflict, InvalidTransition, MissingParameter, NotFound, PermissionDenied, ValidationFailed
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Attachment, Category, Order, OrderEvent, SlaStatus
from cityhub.workorders.scheduled import sla_sweep
from cityhub.workorders.schemas import EventRead

# Monday 2026-03-02 10:00 in Shanghai: a plain working day far from holidays.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
ALICE = service.Actor(name="alice", role="dispatcher")


@pytest.fixture
def units(db_session):
    district = Unit(code="T440111", name="测试区", tier=UnitTier.DISTRICT)
    db_session.add(district)
    db_session.flush()
    street = Unit(code="T440111001", name="测试街道", tier=UnitTier.STREET, parent_id=district.id)
    other = Unit(code="T440111002", name="另一街道", tier=UnitTier.STREET, parent_id=district.id)
    dept = Unit(code="T440111-D01", name="测试城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    dept2 = Unit(code="T440111-D02", name="测试住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    db_session.add_all([street, other, dept, dept2])
    db_session.flush()
    return {"district": district, "street": street, "other": other, "dept": dept, "dept2": dept2}


def _new(db_session, **extra):
    data = {
        "channel": "hotline",
        "content": "小区门口垃圾堆积三天无人清理",
        "appeal_type": "complaint",
        "citizen_name": "张三",
        "citizen_phone": "13812345678",
        "created_at": MONDAY,
        **extra,
    }
    return submit(db_session, data=data, actor=ALICE).order


def _act(db_session, order, action, now, **params):
    return service.act(db_session, order_id=order.id, action=action, actor=ALICE, params=params, now=now)


def test_full_life_cycle_is_audited(db_session, units):
    order = _new(db_session)
    assert order.number.startswith("BY20260302-")
    t = MONDAY
    _act(db_session, order, "dispatch", t, unit_id=units["dept"].id)
    assert order.state == State.DISPATCHED and order.sla_status == SlaStatus.OK
    assert order.accept_due_at > t and order.due_at > order.warn_at > t
    _act(db_session, order, "accept", t + timedelta(hours=1))
    _act(db_session, order, "start", t + timedelta(hours=2))
    _act(db_session, order, "reply", t + timedelta(days=1), text="已安排清运")
    _act(db_session, order, "callback", t + timedelta(days=2), satisfied=True)
    _act(db_session, order, "close", t + timedelta(days=2, hours=1))
    assert order.state == State.CLOSED_RESOLVED and order.resolved is True
    assert order.closed_at is not None and order.sla_status == SlaStatus.OK
    trail = service.history(db_session, order_id=order.id)
    assert [e.action for e in trail] == [
        "create",
        "dispatch",
        "accept",
        "start",
        "reply",
        "callback",
        "close",
    ]
    for prev, nxt in pairwise(trail):
        assert prev.to_state == nxt.from_state
    assert trail[1].unit_id == units["dept"].id and trail[1].actor_name == "alice"


def test_illegal_action_names_state_and_action(db_session, units):
    order = _new(db_session)
    with pytest.raises(InvalidTransition) as err:
        _act(db_session, order, "accept", MONDAY)
    assert "received" in str(err.value) and "accept" in str(err.value)
    assert db_session.scalar(select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order.id)) == 1


def test_unknown_unit_is_a_validation_error(db_session, units):
    order = _new(db_session)
    with pytest.raises(ValidationFailed):
        _act(db_session, order, "dispatch", MONDAY, unit_id=999_999)


def test_returned_then_redispatched_and_transfer(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "return", MONDAY + timedelta(hours=1), reason="不属于本单位职责")
    assert order.state == State.RETURNED and order.lead_unit_id is None and order.return_count == 1
    _act(db_session, order, "dispatch", MONDAY + timedelta(hours=2), unit_id=units["dept2"].id)
    _act(
        db_session,
        order,
        "transfer",
        MONDAY + timedelta(hours=3),
        unit_id=units["street"].id,
        reason="属地处理",
    )
    assert order.state == State.DISPATCHED and order.lead_unit_id == units["street"].id


def test_suspend_pauses_the_clock(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY + timedelta(minutes=30))
    due_before = order.due_at
    _act(db_session, order, "suspend", MONDAY + timedelta(hours=1), reason="等待市民补充材料")
    assert order.state == State.SUSPENDED and order.sla_paused_at is not None
    # Resume one calendar week later: the deadline moves by exactly the paused working time.
    _act(db_session, order, "resume", MONDAY + timedelta(days=7, hours=1))
    assert order.state == State.ACCEPTED and order.sla_paused_at is None
    assert order.due_at == due_before + timedelta(days=7)


def test_a_reply_sent_back_gives_the_unit_the_time_it_had_left_when_it_replied(db_session, units):
    """退回答复 a week after the reply, past the old due date: the unit gets back the two working days it had left
    when it replied (the time its reply waited for review is not the unit's), the status says so at once, the trail
    records the deadlines in force, and the sweep marks nothing."""
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY + timedelta(minutes=30))
    accept_due = order.accept_due_at
    assert order.due_at == MONDAY + timedelta(days=7)  # the next Monday
    _act(db_session, order, "reply", MONDAY + timedelta(days=3), text="已处理")  # Thursday: Thursday and Friday left
    rejected_at = MONDAY + timedelta(days=9)  # the Wednesday after the old due date
    _act(db_session, order, "reject_reply", rejected_at, reason="答复未回应诉求")
    assert order.state == State.IN_PROGRESS
    assert order.due_at == MONDAY + timedelta(days=11)  # Wednesday + two working days: Friday
    assert rejected_at < order.warn_at < order.due_at and order.sla_status == SlaStatus.OK
    assert order.accept_due_at == accept_due
    step = service.history(db_session, order_id=order.id)[-1]
    assert step.action == "reject_reply" and step.payload["due_at"] == order.due_at.isoformat()
    sla_sweep(db_session, now=rejected_at + timedelta(hours=1))
    db_session.refresh(order)
    assert order.sla_status == SlaStatus.OK and order.overdue_at is None


def test_a_late_reply_sent_back_is_overdue_at_once(db_session, units):
    """A reply given after the limit ran out leaves nothing to give back: sent back, the order is overdue at once,
    overdue since its old due date."""
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY + timedelta(minutes=30))
    due = order.due_at
    _act(db_session, order, "reply", due + timedelta(days=1), text="已处理")
    _act(db_session, order, "reject_reply", due + timedelta(days=3), reason="答复未回应诉求")
    assert order.sla_status == SlaStatus.OVERDUE and order.overdue_at == due
    assert order.due_at == due + timedelta(days=3)


def test_raising_the_urgency_tightens_a_running_time_limit_and_the_trail_records_it(db_session, units):
    """升级 to 紧急 on a normal order: no deadline later than the urgent terms (2 working days) from the escalation."""
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    due_normal, accept_due = order.due_at, order.accept_due_at
    assert due_normal == MONDAY + timedelta(days=7)  # 5 working days
    _act(db_session, order, "escalate", MONDAY + timedelta(days=1), reason="市民多次来电", urgency="urgent")
    assert order.urgency.value == "urgent" and order.escalation_level == 1
    assert order.due_at == MONDAY + timedelta(days=3)  # Tuesday + 2 working days: Thursday
    assert order.accept_due_at == accept_due  # already earlier than an hour from Tuesday
    assert MONDAY + timedelta(days=1) < order.warn_at < order.due_at and order.sla_status == SlaStatus.OK
    step = service.history(db_session, order_id=order.id)[-1]
    assert step.action == "escalate" and step.payload["previous_urgency"] == "normal"
    assert step.payload["due_at"] == order.due_at.isoformat()  # the deadline in force, for assessment
    # An escalation without a new urgency, or one to a level whose terms are looser than what is left, moves nothing.
    _act(db_session, order, "escalate", MONDAY + timedelta(days=2), reason="再次催办")
    _act(db_session, order, "escalate", MONDAY + timedelta(days=2, hours=6), reason="特急", urgency="critical")
    assert order.due_at == MONDAY + timedelta(days=3) and order.urgency.value == "critical"


def test_raising_the_urgency_of_a_suspended_order_caps_the_time_left(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    _act(db_session, order, "suspend", MONDAY + timedelta(hours=1), reason="等待市民补充材料")
    _act(db_session, order, "escalate", MONDAY + timedelta(days=1), reason="舆情关注", urgency="critical")
    _act(db_session, order, "resume", MONDAY + timedelta(days=7))
    assert order.due_at == MONDAY + timedelta(days=8)  # 1 working day (特急) from the resume, not 5 minus an hour


def test_a_suspended_order_raised_to_round_the_clock_terms_keeps_its_days_left_as_days(db_session, units):
    """特急 counts round the clock: the working time a suspended order had left is converted as days (an hour of a
    7.5-hour working day is 3.2 hours round the clock), then capped at the new terms — not counted as so many hours
    of the new clock."""
    from cityhub.workorders import calendar as workcal
    from cityhub.workorders import sla

    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    assert order.due_at == MONDAY + timedelta(days=7)
    _act(db_session, order, "suspend", MONDAY + timedelta(days=7, hours=-1), reason="等待市民补充材料")
    left = order.sla_remaining[sla.DUE_KEY]
    assert left == 3600  # 09:00 to 10:00 of the last working day
    _act(db_session, order, "escalate", MONDAY + timedelta(days=8), reason="舆情关注", urgency="critical")
    critical = sla.terms_for(db_session, category_id=order.category_id, urgency="critical")
    assert critical.round_the_clock
    day = workcal.load_calendar(db_session).day_seconds
    assert order.sla_remaining[sla.DUE_KEY] == math.ceil(left * sla.ROUND_THE_CLOCK.day_seconds / day)
    raised = service.history(db_session, order_id=order.id)[-1]
    assert raised.payload["from"]["sla_remaining"][sla.DUE_KEY] == 3600
    resumed_at = MONDAY + timedelta(days=9)
    _act(db_session, order, "resume", resumed_at)
    assert order.due_at == resumed_at + timedelta(seconds=math.ceil(3600 * 86400 / day))


def test_raising_the_urgency_before_dispatch_sets_no_deadline_and_the_clock_starts_with_it(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "escalate", MONDAY, reason="涉及安全", urgency="urgent")
    assert order.due_at is None and order.sla_status == SlaStatus.NONE
    _act(db_session, order, "dispatch", MONDAY + timedelta(hours=1), unit_id=units["dept"].id)
    assert order.due_at == MONDAY + timedelta(days=2, hours=1)


def test_extension_moves_the_deadline(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    due_before = order.due_at
    _act(db_session, order, "request_extension", MONDAY + timedelta(hours=1), days=5, reason="需要协调施工单位")
    assert order.extension_pending
    with pytest.raises(InvalidTransition):
        _act(db_session, order, "request_extension", MONDAY + timedelta(hours=2), days=2, reason="again")
    _act(db_session, order, "approve_extension", MONDAY + timedelta(hours=3))
    assert not order.extension_pending and order.extension_count == 1
    assert order.due_at == due_before + timedelta(days=7)  # 5 working days = one calendar week here
    approval = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.action == "approve_extension")
    ).one()
    assert approval.payload["days"] == 5  # what the approval gave, in its own entry


def test_an_approval_may_grant_fewer_days_than_asked_never_more(db_session, units):
    """批准延期 grants the days asked for, or fewer (``days``): the deadline moves by what was granted, and the
    approval's entry says so; more than asked is refused and the request stays pending."""
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    due_before = order.due_at
    _act(db_session, order, "request_extension", MONDAY + timedelta(hours=1), days=5, reason="需要协调施工单位")
    with pytest.raises(InvalidTransition, match="at most the 5 asked for"):
        _act(db_session, order, "approve_extension", MONDAY + timedelta(hours=2), days=6)
    assert order.extension_pending
    _act(db_session, order, "approve_extension", MONDAY + timedelta(hours=3), days=2, reason="先给两天")
    assert not order.extension_pending and order.extension_count == 1
    assert order.due_at == due_before + timedelta(days=2)  # Monday's limit two working days on, not five
    approval = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.action == "approve_extension")
    ).one()
    assert approval.payload["days"] == 2


def test_a_reply_ends_a_pending_extension_request_and_the_trail_says_so(db_session, units):
    """延期申请 pending when the unit replies (or returns the order): the request ends undecided, and its reply's entry
    says so — the trail showed the request standing open, and no decision ever came."""
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    _act(db_session, order, "request_extension", MONDAY + timedelta(hours=1), days=3, reason="需要协调施工单位")
    _act(db_session, order, "reply", MONDAY + timedelta(hours=2), text="已处理完毕")
    assert not order.extension_pending and order.extension_count == 0
    events = db_session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id))
    withdrawn = {e.action: bool((e.payload or {}).get("extension_withdrawn")) for e in events}
    assert withdrawn == {
        "create": False,
        "dispatch": False,
        "accept": False,
        "request_extension": False,
        "reply": True,
    }
    # A decision is no withdrawal.
    other = _new(db_session)
    _act(db_session, other, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, other, "accept", MONDAY)
    _act(db_session, other, "request_extension", MONDAY + timedelta(hours=1), days=3, reason="需要协调")
    _act(db_session, other, "reject_extension", MONDAY + timedelta(hours=2), reason="可按期办结")
    rejected = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == other.id, OrderEvent.action == "reject_extension")
    ).one()
    assert "extension_withdrawn" not in (rejected.payload or {})


def test_unsatisfied_callback_reopens(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    _act(db_session, order, "reply", MONDAY + timedelta(hours=2), text="已处理")
    _act(db_session, order, "callback", MONDAY + timedelta(days=1), satisfied=False)
    _act(db_session, order, "reopen", MONDAY + timedelta(days=1, hours=1), reason="市民反映问题仍存在")
    assert order.state == State.DISPATCHED and order.reopen_count == 1 and order.satisfied is None
    assert order.lead_unit_id == units["dept"].id


def test_co_handling_blocks_reply_until_assists_answer(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    _act(db_session, order, "add_assist", MONDAY, unit_id=units["dept2"].id)
    with pytest.raises(InvalidTransition):
        _act(db_session, order, "reply", MONDAY + timedelta(hours=1), text="答复")
    _act(
        db_session,
        order,
        "assist_reply",
        MONDAY + timedelta(hours=1),
        unit_id=units["dept2"].id,
        text="已配合",
    )
    _act(db_session, order, "reply", MONDAY + timedelta(hours=2), text="答复")
    assert [(a.unit_id, a.status.value) for a in order.assists] == [(units["dept2"].id, "replied")]


def test_only_the_lead_units_handlers_take_its_steps(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "add_assist", MONDAY, unit_id=units["dept2"].id)
    assisting = service.Actor(name="住建局承办人", role="handler", unit_id=units["dept2"].id)
    seeing = service.Actor(name="街道承办人", role="handler", unit_id=units["street"].id)
    lead = service.Actor(name="城管局承办人", role="handler", unit_id=units["dept"].id)
    for actor in (assisting, seeing):
        with pytest.raises(PermissionDenied, match="only the lead unit's handlers may accept"):
            service.act(db_session, order_id=order.id, action="accept", actor=actor, now=MONDAY)
    assert order.state == State.DISPATCHED
    service.act(db_session, order_id=order.id, action="accept", actor=lead, now=MONDAY)
    service.act(  # its own part of the co-handling, the assisting unit still takes
        db_session, order_id=order.id, action="assist_accept", actor=assisting, params={"unit_id": units["dept2"].id}
    )
    assert order.state == State.ACCEPTED and order.assists[0].status.value == "accepted"


def test_merge_and_instant_answer(db_session, units):
    master = _new(db_session, external_id="m-1")
    dup = _new(db_session, external_id="m-2")
    _act(db_session, dup, "merge", MONDAY, master_id=master.id)
    assert dup.state == State.MERGED and dup.master_order_id == master.id
    with pytest.raises(ValidationFailed):
        _act(db_session, _new(db_session, external_id="m-3"), "merge", MONDAY, master_id=dup.id)
    answered = submit(
        db_session,
        data={"channel": "hotline", "content": "社保卡怎么补办"},
        instant_answer="携带身份证到社保服务窗口办理",
    ).order
    assert answered.state == State.CLOSED_RESOLVED and answered.instant_answered


def test_a_merge_is_told_on_the_masters_trail_and_does_not_refuse_its_handler(db_engine, db_session, units):
    """合并 said so on the merged order's trail only: the master's handler never learnt that another appeal joined
    it. Now the master's trail names it — who merged it, when, its number, by hand — while the master itself is not
    changed: its handler, in the middle of an action or acting later on the version they read before the merge, is
    not refused as if someone had changed the order. Two connections, as two requests."""
    import concurrent.futures

    from sqlalchemy.orm import Session

    master = _new(db_session, external_id="mm-1")
    dup = _new(db_session, external_id="mm-2", citizen_name="李四", citizen_phone="13900002222")
    _act(db_session, master, "dispatch", MONDAY, unit_id=units["dept"].id)
    db_session.commit()
    read = master.version
    lead = service.Actor(name="城管局承办人", role="handler", unit_id=units["dept"].id)
    merger = service.Actor(name="区派单员", role="dispatcher", unit_id=units["district"].id)
    merged_at = MONDAY + timedelta(hours=1)

    def merge() -> None:
        with Session(bind=db_engine) as other:
            params = {"master_id": master.id, "reason": "同一路段路灯"}
            service.act(other, order_id=dup.id, action="merge", actor=merger, params=params, now=merged_at)
            other.commit()

    with Session(bind=db_engine) as handler:
        # The handler's accept holds the master (PostgreSQL: its row; SQLite: the write lock) while the merge runs.
        service.act(handler, order_id=master.id, action="accept", actor=lead, expected_version=read, now=MONDAY)
        handler.flush()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            merging = pool.submit(merge)
            handler.commit()
            merging.result(timeout=60)
        # Acting again with the version the accept left, after the merge committed: not refused.
        after = service.act(
            handler, order_id=master.id, action="start", actor=lead, expected_version=read + 1, now=MONDAY
        )
        handler.commit()
        assert after.version == read + 2 and after.state == State.IN_PROGRESS

    db_session.expire_all()
    trail = service.history(db_session, order_id=master.id)
    assert [e.action for e in trail] == ["create", "dispatch", "accept", "merged_in", "start"]
    joined = trail[3]
    assert (joined.actor_name, joined.unit_id, joined.at, joined.reason) == (
        "区派单员",
        units["district"].id,
        merged_at,
        None,
    )
    assert joined.payload == {"merged_id": dup.id, "merged_number": dup.number, "auto": False}
    # The state the merge found the master in (before or after the accept committed): the merge did not move it.
    assert joined.from_state is None and joined.to_state in (State.DISPATCHED.value, State.ACCEPTED.value)
    assert db_session.get(Order, dup.id).state == State.MERGED
    # Read through the API's schema, as staff and as a masked reader: the other appeal's number, nothing personal.
    shown = EventRead.model_validate(joined).masked(known=(master.citizen_name, master.citizen_phone))
    assert shown.payload == joined.payload and "李四" not in shown.model_dump_json()


def test_intake_is_idempotent_per_channel(db_session, units):
    first = _new(db_session, external_id="ext-1")
    again = submit(db_session, data={"channel": "hotline", "content": "x", "external_id": "ext-1"}).order
    other = _new(db_session, external_id="ext-1", channel="web")
    assert again.id == first.id and other.id != first.id


def test_bad_intake_names_the_field(db_session):
    with pytest.raises(ValidationFailed) as err:
        submit(db_session, data={"channel": "fax", "content": "x"})
    assert "channel" in str(err.value)
    with pytest.raises(ValidationFailed) as err:
        submit(db_session, data={"channel": "web", "content": "x", "lat": 123.0, "lng": 10.0})
    assert "lat" in str(err.value)


def test_only_the_dispatch_engine_marks_a_dispatch_automatic(db_session, units):
    """A person (or an operator's ``orders act --param auto=true``) cannot make a dispatch count as the engine's."""
    order = _new(db_session)
    with pytest.raises(ValidationFailed) as err:
        _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id, auto=True)
    assert err.value.details == {"field": "auto"}
    assert db_session.get(type(order), order.id).state == "received"
    engine = service.Actor(name=service.AUTO_DISPATCHER)
    done = service.act(
        db_session,
        order_id=order.id,
        action="dispatch",
        actor=engine,
        params={"unit_id": units["dept"].id, "auto": True},
    )
    assert done.state == "dispatched" and done.events[-1].payload["auto"] is True


def test_stale_version_conflicts(db_session, units):
    order = _new(db_session)
    with pytest.raises(Conflict):
        service.act(
            db_session,
            order_id=order.id,
            action="dispatch",
            params={"unit_id": units["dept"].id},
            expected_version=order.version + 1,
            now=MONDAY,
        )
    with pytest.raises(NotFound):
        service.act(db_session, order_id=10**9, action="dispatch", params={"unit_id": 1})


def test_sla_sweep_marks_warning_then_overdue_once(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    assert sla_sweep(db_session, now=order.accept_due_at + timedelta(minutes=1))["accept_overdue"] >= 1
    first = sla_sweep(db_session, now=order.warn_at + timedelta(minutes=1))
    db_session.refresh(order)
    assert order.sla_status == SlaStatus.WARNING and first["warning"] >= 1
    late = order.due_at + timedelta(minutes=1)
    sla_sweep(db_session, now=late)
    again = sla_sweep(db_session, now=late)
    db_session.refresh(order)
    assert order.sla_status == SlaStatus.OVERDUE and order.overdue_at == order.due_at
    assert again["overdue"] == 0 and again["warning"] == 0
    marks = db_session.scalars(
        select(OrderEvent.action).where(OrderEvent.order_id == order.id, OrderEvent.action.like("sla_%"))
    ).all()
    assert sorted(marks) == ["sla_accept_overdue", "sla_overdue", "sla_warning"]
    # A reply after the deadline keeps the overdue mark for assessment.
    _act(db_session, order, "accept", late)
    _act(db_session, order, "reply", late + timedelta(hours=1), text="已处理")
    assert order.sla_status == SlaStatus.OVERDUE
    assert db_session.get(Order, order.id).state == State.REPLIED


def test_extension_approved_while_suspended_survives_resume(db_session, units):
    order = _new(db_session)
    _act(db_session, order, "dispatch", MONDAY, unit_id=units["dept"].id)
    _act(db_session, order, "accept", MONDAY)
    due_before = order.due_at
    _act(db_session, order, "request_extension", MONDAY + timedelta(hours=1), days=5, reason="需协调")
    _act(db_session, order, "suspend", MONDAY + timedelta(hours=1), reason="等待市民补充材料")
    _act(db_session, order, "approve_extension", MONDAY + timedelta(hours=2))
    _act(db_session, order, "resume", MONDAY + timedelta(days=7, hours=1))
    # One week paused plus five working days extended: two calendar weeks later than before.
    assert order.due_at == due_before + timedelta(days=14)


def test_number_blocks_for_many_days_are_consecutive_and_unique(db_session):
    from cityhub.workorders import numbering

    first = numbering.allocate_many(db_session, counts={"20260301": 2, "20260302": 3})
    second = numbering.allocate_many(db_session, counts={"20260302": 1, "20260303": 0})
    assert first["20260301"] == ["BY20260301-000001", "BY20260301-000002"]
    assert first["20260302"][-1] == "BY20260302-000003" and second == {"20260302": ["BY20260302-000004"]}
    assert numbering.allocate(db_session, day="20260301") == ["BY20260301-000003"]


def test_a_number_reservation_does_not_hold_the_days_counter_until_commit_on_postgresql(db_engine):
    """Two intakes of the same day: on PostgreSQL the second reserves its number while the first is still open (the
    reservation commits on its own, so a rolled-back intake leaves a gap); on SQLite the reservation is part of the
    intake's transaction (one write lock covers the database) and a rollback gives the number back."""
    import concurrent.futures

    from sqlalchemy.orm import Session

    from cityhub.workorders import numbering

    first = Session(bind=db_engine)
    try:
        assert numbering.allocate(first, day="20260401") == ["BY20260401-000001"]
        if db_engine.dialect.name == "postgresql":
            with concurrent.futures.ThreadPoolExecutor(1) as pool, Session(bind=db_engine) as second:
                reserved = pool.submit(numbering.allocate, second, day="20260401").result(timeout=30)
            assert reserved == ["BY20260401-000002"]
        first.rollback()
        with Session(bind=db_engine) as third:
            expected = "BY20260401-000003" if db_engine.dialect.name == "postgresql" else "BY20260401-000001"
            assert numbering.allocate(third, day="20260401") == [expected]
            third.commit()
    finally:
        first.close()


# --- 拆单 (split): one problem of a many-problem appeal taken out as an order of its own -------------------------

OPERATOR = service.Actor(name="接线员小李", role="operator")
TWO_PROBLEMS = "我叫张三，电话13812345678。小区门口路灯坏了一周；另外楼下餐馆油烟直排，熏得没法开窗。"


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
    assert part.content == "楼下餐馆油烟直排，熏得没法开窗。" and part.title == "楼下餐馆油烟直排，熏得没法开窗"
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


def test_a_split_needs_the_part_s_text_a_known_category_and_kind(db_session, units):
    order = _appeal(db_session, units)
    with pytest.raises(MissingParameter):
        _split(db_session, order, content="   ")
    with pytest.raises(ValidationFailed, match="category"):
        _split(db_session, order, content="油烟直排", category_id=999_999)
    with pytest.raises(ValidationFailed, match="title"):
        _split(db_session, order, content="油烟直排", title="长" * 301)
    with pytest.raises(ValidationFailed, match="appeal_type"):
        _split(db_session, order, content="油烟直排", appeal_type="rumour")
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


def test_the_cli_answers_a_consultation_from_a_knowledge_entry_and_refuses_a_retired_one(app_db, cli_run):
    from cityhub.db import session_scope
    from cityhub.knowledge import service as kb
    from cityhub.knowledge.schemas import EntryCreate

    with session_scope() as s:
        entry = kb.create_entry(s, data=EntryCreate(question="居住证怎么续签", answer="到居住地派出所办理续签。"))
        entry_id = entry.id
        first = submit(s, data={"channel": "hotline", "content": "居住证到期了怎么续"}).order.number
        second = submit(s, data={"channel": "hotline", "content": "居住证续签去哪里"}).order.number
    code, out, err = cli_run("orders", "act", first, "instant_answer", "-p", f"kb_entry_id={entry_id}")
    assert code == 0 and out.strip() == f"{first}: instant_answer → closed_resolved", err
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == first)).one()
        assert order.instant_answered and order.reply_text == "到居住地派出所办理续签。"
        kb.deactivate_entry(s, entry_id=entry_id)
    code, _, err = cli_run("orders", "act", second, "instant_answer", "-p", f"kb_entry_id={entry_id}")
    assert code != 0 and len(err.strip().splitlines()) == 1 and f"knowledge entry {entry_id}" in err
    code, _, err = cli_run("orders", "act", second, "urge", "-p", f"kb_entry_id={entry_id}")
    assert code != 0 and "only by instant_answer" in err


def test_an_urge_needs_its_message_in_the_service_and_on_the_command_line(app_db, cli_run):
    """催办 without a message (none, or blanks) is refused naming ``reason``: exit 1, one line; with one, recorded."""
    from cityhub.db import session_scope

    with session_scope() as s:
        unit = Unit(code="U440111-D01", name="催办城管局", tier=UnitTier.DEPARTMENT)
        s.add(unit)
        s.flush()
        order = submit(s, data={"channel": "hotline", "content": "路灯不亮"}).order
        service.act(s, order_id=order.id, action="dispatch", actor=ALICE, params={"unit_id": unit.id})
        number = order.number
        with pytest.raises(MissingParameter) as refused:
            service.act(s, order_id=order.id, action="urge", actor=ALICE, params={"reason": "  \n"})
        assert refused.value.details["field"] == "reason" and refused.value.http_status == 422
    for extra in ([], ["--reason", "   "]):
        code, out, err = cli_run("orders", "act", number, "urge", *extra)
        lines = err.strip().splitlines()
        assert code == 1 and out == "" and len(lines) == 1 and "'reason'" in lines[0], (extra, out, err)
    code, out, err = cli_run("orders", "act", number, "urge", "--reason", "市民再次来电")
    assert code == 0 and out.strip() == f"{number}: urge → dispatched", err
    with session_scope() as s:
        urged = s.scalars(select(Order).where(Order.number == number)).one()
        events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == urged.id).order_by(OrderEvent.id)).all()
        assert urged.urge_count == 1 and [(e.action, e.reason) for e in events][-1] == ("urge", "市民再次来电")


def test_the_command_line_urges_several_orders_and_names_each_one_it_did_not(app_db, cli_run):
    """``cityhub orders urge N… --reason``: each order urged on its own (the unit named), one answered or unknown named
    on stderr with why, the others urged all the same, exit 1; no message: exit 1, one line, nothing urged."""
    from cityhub.db import session_scope

    with session_scope() as s:
        unit = Unit(code="U440111-D02", name="批量催办城管局", tier=UnitTier.DEPARTMENT)
        s.add(unit)
        s.flush()
        numbers = []
        for _ in range(2):
            order = submit(s, data={"channel": "hotline", "content": "路灯不亮"}).order
            service.act(s, order_id=order.id, action="dispatch", actor=ALICE, params={"unit_id": unit.id})
            numbers.append(order.number)
        answered = submit(s, data={"channel": "hotline", "content": "路灯不亮"}).order
        service.act(s, order_id=answered.id, action="dispatch", actor=ALICE, params={"unit_id": unit.id})
        for action in ("accept", "start"):
            service.act(s, order_id=answered.id, action=action, actor=ALICE)
        service.act(s, order_id=answered.id, action="reply", actor=ALICE, params={"text": "已修复路灯"})
        numbers.append(answered.number)
    code, out, err = cli_run("orders", "urge", *numbers[:2], "--reason", " ")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "--reason" in err
    code, out, err = cli_run("orders", "urge", *numbers, "BY-NONE", "--reason", "请今天内答复")
    assert code == 1, (out, err)
    assert out.splitlines() == [f"{n}: urged → 批量催办城管局" for n in numbers[:2]]
    assert f"{numbers[2]}: not urged:" in err and "replied" in err and "BY-NONE: not urged" in err
    assert "2 of 4 orders not urged" in err
    with session_scope() as s:
        counts = dict(s.execute(select(Order.number, Order.urge_count).where(Order.number.in_(numbers))).all())
        assert counts == {numbers[0]: 1, numbers[1]: 1, numbers[2]: 0}


def _replied(db_session, units):
    order = _new(db_session)
    for action, params in (("dispatch", {"unit_id": units["dept"].id}), ("accept", {}), ("start", {})):
        _act(db_session, order, action, MONDAY, **params)
    _act(db_session, order, "reply", MONDAY + timedelta(hours=3), text="已安排清运，现场已清理干净")
    return order


def test_a_satisfied_callback_is_closed_in_the_same_step_each_audited(db_session, units):
    """回访并办结: a satisfied (or basically satisfied) callback closed as resolved right after it, two events by the
    same person; an unsatisfied one is recorded and left for 重办 or 办结; who may not close is refused, nothing
    recorded."""
    desk = service.Actor(name="回访员", role="supervisor")
    for rating in ({}, {"rating": "basically_satisfied"}):  # 基本满意 as the order page posts it
        order = _replied(db_session, units)
        done = service.callback(
            db_session,
            order_id=order.id,
            actor=desk,
            close=True,
            params={"satisfied": True, "reason": "市民满意", **rating},
        )
        assert done.state == State.CLOSED_RESOLVED and done.resolved is True
        trail = [(e.action, e.actor_name, e.reason) for e in service.history(db_session, order_id=order.id)]
        assert trail[-2:] == [("callback", "回访员", "市民满意"), ("close", "回访员", None)]
    unhappy = _replied(db_session, units)
    kept = service.callback(
        db_session, order_id=unhappy.id, actor=desk, close=True, params={"satisfied": False, "reason": "还有垃圾"}
    )
    assert kept.state == State.CALLED_BACK and kept.satisfied is False
    assert [e.action for e in service.history(db_session, order_id=unhappy.id)][-1] == "callback"
    plain = _replied(db_session, units)
    assert service.callback(db_session, order_id=plain.id, actor=desk, params={"satisfied": True}).state == (
        State.CALLED_BACK
    )
    citizen = _replied(db_session, units)
    with pytest.raises(PermissionDenied):
        service.callback(
            db_session,
            order_id=citizen.id,
            actor=service.Actor(name="张三", role="citizen"),
            close=True,
            params={"satisfied": True},
        )
    assert citizen.state == State.REPLIED
    assert [e.action for e in service.history(db_session, order_id=citizen.id)][-1] == "reply"


def test_the_cli_assigns_as_a_named_user_recorded_in_the_trail_and_checked_as_the_api_checks(app_db, cli_run):
    """`orders act N assign` (交办) recorded the name ``cli`` and no user, so the leader it was done for was neither
    in the trail nor told of its answer. ``--as USERNAME`` acts as that user — their name and id in the trail —
    refused in one line (exit 1) for an unknown or deactivated user or one whose role may not assign; without it,
    as before."""
    from cityhub.auth import service as auth
    from cityhub.db import session_scope
    from cityhub.notify.models import NoticeKind, UserNotice
    from cityhub.org.models import Role, User
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        district = Unit(code="U-CLI-QU", name="交办区", tier=UnitTier.DISTRICT)
        street = Unit(code="U-CLI-JD", name="交办街道", tier=UnitTier.STREET, parent_id=None)
        other = Unit(code="U-CLI-JD2", name="另一街道", tier=UnitTier.STREET, parent_id=None)
        s.add_all([district, street, other])
        s.flush()
        for username, name, role, unit in (
            ("liu", "刘领导", Role.LEADER, district.id),
            ("gone", "钱领导", Role.LEADER, district.id),
            ("li", "李承办", Role.HANDLER, street.id),
            ("zhao", "赵承办", Role.HANDLER, other.id),
        ):
            auth.create_account(s, data=UserCreate(username=username, full_name=name, role=role, unit_id=unit))
        s.scalars(select(User).where(User.username == "gone")).one().active = False
        numbers = []
        for content in ("路灯不亮", "井盖缺失"):
            order = submit(s, data={"channel": "hotline", "content": content}).order
            service.act(s, order_id=order.id, action="dispatch", actor=ALICE, params={"unit_id": street.id})
            numbers.append(order.number)
        leader_id = s.scalars(select(User.id).where(User.username == "liu")).one()
    mine, plain = numbers
    for who, problem in (
        ("nobody", "--as: no user 'nobody'"),
        ("gone", "--as: user 'gone' is deactivated"),
        ("li", "--as: user 'li': role handler may not assign"),
    ):
        code, out, err = cli_run("orders", "act", mine, "assign", "--reason", "请尽快办结", "--as", who)
        lines = err.strip().splitlines()
        assert code == 1 and out == "" and len(lines) == 1 and problem in lines[0], (who, out, err)
    # A handler may sign for an order, but not for one of another street's, outside its scope.
    code, out, err = cli_run("orders", "act", mine, "accept", "--as", "zhao")
    assert code == 1 and out == "" and err.strip() == f"error: --as: order {mine} is outside the scope of user 'zhao'"
    code, _, err = cli_run("orders", "act", mine, "assign", "--reason", "请尽快办结", "--as", "liu", "--actor", "x")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "not both" in err, err
    with session_scope() as s:
        refused = s.scalars(select(Order).where(Order.number == mine)).one()
        assert not refused.leader_assigned  # nothing done by a refused --as

    code, out, err = cli_run("orders", "act", mine, "assign", "--reason", "请尽快办结", "--as", "liu")
    assert code == 0 and out.strip().startswith(f"{mine}: assign → "), (out, err)
    code, out, err = cli_run("orders", "act", plain, "assign", "--reason", "请三天内办结")
    assert code == 0, err
    with session_scope() as s:

        def assigned(number: str) -> OrderEvent:
            order = s.scalars(select(Order).where(Order.number == number)).one()
            assert order.leader_assigned
            return s.scalars(
                select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.action == "assign")
            ).one()

        by_leader, by_cli = assigned(mine), assigned(plain)
        assert (by_leader.actor_id, by_leader.actor_name, by_leader.reason) == (leader_id, "刘领导", "请尽快办结")
        assert (by_cli.actor_id, by_cli.actor_name) == (None, "cli")  # without --as, as before
        # The leader it was done for is told of its answer, as for a 交办 made on the pages.
        handler = s.scalars(select(User).where(User.username == "li")).one()
        staff = service.Actor.of_user(handler)
        service.act(s, order_id=by_leader.order_id, action="accept", actor=staff)
        service.act(s, order_id=by_leader.order_id, action="reply", actor=staff, params={"text": "已修复路灯"})
        kinds = s.scalars(select(UserNotice.kind).where(UserNotice.user_id == leader_id)).all()
        assert NoticeKind.ASSIGNED_REPLIED in kinds, kinds


def _cli_people(s):
    """A district, a street with an order dispatched to it (its number), another street; a leader, two handlers of
    the street, a handler and a supervisor of the other street: their ids by login name."""
    from cityhub.auth import service as auth
    from cityhub.org.models import Role, User
    from cityhub.org.schemas import UserCreate

    district = Unit(code="U-AS-QU", name="代办区", tier=UnitTier.DISTRICT)
    s.add(district)
    s.flush()
    street = Unit(code="U-AS-JD", name="代办街道", tier=UnitTier.STREET, parent_id=district.id)
    other = Unit(code="U-AS-JD2", name="别的街道", tier=UnitTier.STREET, parent_id=district.id)
    s.add_all([street, other])
    s.flush()
    for username, name, role, unit in (
        ("liu", "刘领导", Role.LEADER, district.id),
        ("li", "李承办", Role.HANDLER, street.id),
        ("wang", "王承办", Role.HANDLER, street.id),
        ("zhao", "赵承办", Role.HANDLER, other.id),
        ("sun", "孙督办", Role.SUPERVISOR, other.id),
    ):
        auth.create_account(s, data=UserCreate(username=username, full_name=name, role=role, unit_id=unit))
    numbers = []
    for content in ("路灯不亮", "井盖缺失"):
        order = submit(s, data={"channel": "hotline", "content": content}).order
        service.act(s, order_id=order.id, action="dispatch", actor=ALICE, params={"unit_id": street.id})
        numbers.append(order.number)
    ids = {u.username: u.id for u in s.scalars(select(User))}
    return numbers, ids


def _one_error(code: int, out: str, err: str, problem: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and len(lines) == 1 and problem in lines[0], (out, err)


def test_the_cli_urges_as_a_named_user_checked_as_the_api_checks(app_db, cli_run):
    """`orders urge` recorded only the text of --actor; ``--as USERNAME`` urges as that user — their name and id in
    each order's trail — refused in one line for a role that may not urge, with --actor, and an order outside their
    scope named as such (not urged)."""
    from cityhub.db import session_scope

    with session_scope() as s:
        (first, second), ids = _cli_people(s)
    _one_error(*cli_run("orders", "urge", first, "--reason", "请尽快", "--as", "li"), "role handler may not urge")
    _one_error(*cli_run("orders", "urge", first, "--reason", "请尽快", "--as", "liu", "--actor", "x"), "not both")
    _one_error(*cli_run("orders", "urge", first, "--reason", "请尽快", "--as", "nobody"), "--as: no user 'nobody'")
    code, out, err = cli_run("orders", "urge", first, "--reason", "请尽快", "--as", "sun")
    assert code == 1 and out == "" and f"{first}: not urged: outside the scope of user 'sun'" in err, err
    code, out, err = cli_run("orders", "urge", first, second, "--reason", "请尽快", "--as", "liu")
    assert code == 0 and f"{first}: urged → 代办街道" in out and f"{second}: urged" in out, (out, err)
    code, out, err = cli_run("orders", "urge", second, "--reason", "再催")
    assert code == 0, err
    with session_scope() as s:
        urges = s.execute(
            select(Order.number, OrderEvent.actor_id, OrderEvent.actor_name, OrderEvent.reason)
            .join(Order, Order.id == OrderEvent.order_id)
            .where(OrderEvent.action == "urge")
            .order_by(OrderEvent.id)
        ).all()
    assert [tuple(u) for u in urges] == [
        (first, ids["liu"], "刘领导", "请尽快"),
        (second, ids["liu"], "刘领导", "请尽快"),
        (second, None, "cli", "再催"),  # without --as, as before
    ]


def test_the_cli_attaches_and_detaches_as_a_named_user_checked_as_the_api_checks(
    app_db, cli_run, tmp_path, monkeypatch
):
    """`orders attach` / `orders detach` recorded only the text of --actor; ``--as USERNAME`` does it as that user:
    the file theirs (``uploaded_by_id``), their name and id in the trail; refused in one line for an order outside
    their scope, and a file not theirs to remove where their role may not remove any, nothing changed."""
    from cityhub.db import session_scope

    monkeypatch.setenv("CITYHUB_FILES_DIR", str(tmp_path / "files"))
    photo = tmp_path / "现场.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with session_scope() as s:
        (number, _), ids = _cli_people(s)
    _one_error(
        *cli_run("orders", "attach", number, str(photo), "--as", "zhao"),
        f"--as: order {number} is outside the scope of user 'zhao'",
    )
    _one_error(*cli_run("orders", "attach", number, str(photo), "--as", "li", "--actor", "x"), "not both")
    code, out, err = cli_run("orders", "attach", number, str(photo), "--note", "整改前", "--as", "li")
    assert code == 0, err
    attachment = json.loads(out.strip().splitlines()[0])
    assert attachment["uploaded_by"] == "李承办"
    # Another handler of the street sees the order but may remove only their own files.
    _one_error(
        *cli_run("orders", "detach", number, str(attachment["id"]), "--reason", "传错", "--as", "wang"),
        "--as: user 'wang': only whoever attached a file",
    )
    _one_error(
        *cli_run("orders", "detach", number, str(attachment["id"]), "--reason", "传错", "--as", "zhao"),
        f"--as: order {number} is outside the scope of user 'zhao'",
    )
    _one_error(
        *cli_run("orders", "detach", number, str(attachment["id"]), "--reason", "x", "--as", "li", "--actor", "y"),
        "not both",
    )
    code, out, err = cli_run("orders", "detach", number, str(attachment["id"]), "--reason", "传错", "--as", "li")
    assert code == 0 and "removed" in out, err
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == number)).one()
        row = s.get(Attachment, attachment["id"])
        assert row is None or row.uploaded_by_id == ids["li"]
        events = s.execute(
            select(OrderEvent.actor_id, OrderEvent.actor_name)
            .where(OrderEvent.order_id == order.id, OrderEvent.action == "comment")
            .order_by(OrderEvent.id)
        ).all()
    assert [tuple(e) for e in events] == [(ids["li"], "李承办"), (ids["li"], "李承办")]  # attached, removed


def test_the_cli_refuses_to_act_as_a_locked_user_saying_until_when(app_db, cli_run, tmp_path):
    """``--as`` took an account locked out after failed logins (or locked by an administrator), which could not
    sign in to do the same: refused in one line saying until when (the district's local time), for every command
    that takes it."""
    from cityhub.auth.models import LoginLockout
    from cityhub.config import get_settings
    from cityhub.db import session_scope, utcnow
    from cityhub.org.models import User

    until = (utcnow() + timedelta(minutes=15)).replace(microsecond=0)
    with session_scope() as s:
        (number, _), _ids = _cli_people(s)
        s.add(LoginLockout(username="liu", failures=5, last_failure_at=utcnow(), locked_until=until))
        s.scalars(select(User).where(User.username == "li")).one().locked_until = until
        s.scalars(select(User).where(User.username == "wang")).one().locked_until = datetime(9999, 12, 31, tzinfo=UTC)
    local = until.astimezone(get_settings().tz).isoformat(timespec="minutes")
    photo = tmp_path / "p.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    for args in (
        ("act", number, "assign", "--reason", "请尽快办结"),
        ("urge", number, "--reason", "请尽快"),
    ):
        _one_error(
            *cli_run("orders", *args, "--as", "liu"),
            f"--as: user 'liu' is locked out after failed logins until {local}",
        )
    for args in (("attach", number, str(photo)), ("detach", number, "1", "--reason", "x"), ("act", number, "accept")):
        _one_error(
            *cli_run("orders", *args, "--as", "li"), f"--as: user 'li' is locked by an administrator until {local}"
        )
    _one_error(
        *cli_run("orders", "act", number, "accept", "--as", "wang"),
        "--as: user 'wang' is locked by an administrator until an administrator unlocks it",
    )
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == number)).one()
        assert not order.leader_assigned and order.urge_count == 0
