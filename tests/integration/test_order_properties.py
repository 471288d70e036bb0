"""Random action sequences through the service layer on a real database: every accepted action is one audit
event, the trail chains state to state, and refused actions change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cityhub.errors import CityhubError
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders import service
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import OrderEvent

START = datetime(2026, 4, 13, 1, 30, tzinfo=UTC)
ACTIONS = [a.value for a in Action if a != Action.CREATE]

step = st.tuples(
    st.sampled_from(ACTIONS),
    st.fixed_dictionaries(
        {},
        optional={
            "unit": st.integers(0, 2),
            "reason": st.sampled_from(["", "需要补充材料", "不属于职责范围"]),
            "text": st.sampled_from(["", "已处理"]),
            "answer": st.sampled_from(["", "请拨打窗口电话"]),
            "days": st.integers(-1, 5),
            "satisfied": st.sampled_from([True, False, None]),
            "resolved": st.booleans(),
            "master": st.booleans(),
        },
    ),
    st.integers(1, 600),  # minutes since the previous step
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_random_sequences_stay_defined_and_audited(db_session, steps):
    units = db_session.scalars(select(Unit).where(Unit.code.like("P-%")).order_by(Unit.code)).all()
    if not units:
        units = [Unit(code=f"P-{i}", name=f"单位{i}", tier=UnitTier.DEPARTMENT) for i in range(3)]
        db_session.add_all(units)
        db_session.flush()
    master = submit(db_session, data={"channel": "web", "content": "主工单"}).order
    order = submit(db_session, data={"channel": "hotline", "content": "随机序列工单"}).order
    now, accepted = START, 0
    for action, raw, minutes in steps:
        now += timedelta(minutes=minutes)
        params = {k: v for k, v in raw.items() if k not in ("unit", "master")}
        if "unit" in raw:
            params["unit_id"] = units[raw["unit"]].id
        if "master" in raw:
            params["master_id"] = master.id if raw["master"] else order.id
        before = (order.state, order.version, order.lead_unit_id)
        try:
            with db_session.begin_nested():
                service.act(db_session, order_id=order.id, action=action, params=params, now=now)
        except CityhubError:
            db_session.refresh(order)
            assert (order.state, order.version, order.lead_unit_id) == before
            continue
        accepted += 1
        assert order.state in set(State)
    trail = db_session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)).all()
    assert len(trail) == accepted + 1
    assert trail[0].action == "create"
    for prev, nxt in pairwise(trail):
        assert prev.to_state == nxt.from_state
    assert trail[-1].to_state == order.state.value
