"""Property tests of the order life cycle: random action sequences with random plausible parameters.

Every sequence starts from a freshly received order and is applied with ``apply``/``evolve`` the way the
service does, keeping the outcomes as the audit trail; rejected actions (InvalidTransition) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from cityhub.errors import InvalidTransition
from cityhub.workorders.lifecycle import (
    HANDLING_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    WORKING_STATES,
    Action,
    OrderView,
    Outcome,
    SlaEffect,
    State,
    allowed_actions,
    apply,
    evolve,
)

ORDER_ID = 1
UNITS = (1, 2, 3)
BOGUS_ACTION = "no_such_action"
# States in which a unit can be waiting for the decision on its extension request.
PENDING_STATES = WORKING_STATES | {State.SUSPENDED}

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)

# Plausible values first (generation and shrinking favour the first ones), then None and blanks.
VALUE_ST: dict[str, st.SearchStrategy[Any]] = {
    "unit_id": st.sampled_from([*UNITS, None]),
    "days": st.one_of(st.integers(min_value=-1, max_value=10), st.none()),
    "satisfied": st.sampled_from([False, True, None]),
    "resolved": st.sampled_from([False, True, None]),
    "reason": st.sampled_from(["市民要求", "not ours", "", " ", None]),
    "text": st.sampled_from(["已处理完毕", "已阅", "", None]),
    "answer": st.sampled_from(["请携带身份证到社区服务中心", "", None]),
    "master_id": st.sampled_from([42, 2, ORDER_ID, None]),
    "content": st.sampled_from(["另外楼下餐馆油烟直排", "", None]),
}
# Any subset of the parameters, each possibly None or blank.
params_st = st.fixed_dictionaries({}, optional=VALUE_ST)
# The optional parameters an action reads besides its required ones.
_OPTIONAL: dict[Action, tuple[str, ...]] = {
    Action.ASSIGN: ("unit_id",),
    Action.CLOSE: ("reason", "resolved"),
    Action.REOPEN: ("unit_id",),
}


def params_for(action: Action | str) -> st.SearchStrategy[dict[str, Any]]:
    """The parameters ``action`` reads (usually present, sometimes None or blank), or any parameters."""
    if action not in TRANSITIONS:
        return params_st
    action = Action(action)
    names = (*TRANSITIONS[action].required, *_OPTIONAL.get(action, ()))
    return st.fixed_dictionaries({name: VALUE_ST[name] for name in names})


any_action_st = st.sampled_from([*Action, BOGUS_ACTION])
# Actions that end an open order at once; drawn less often so that sequences reach callbacks and reopening.
ENDING_ACTIONS = {Action.MERGE, Action.CANCEL, Action.INSTANT_ANSWER}
# Actions along the main path; favoured so that sequences get past the dispatch / return / transfer loop.
FORWARD_ACTIONS = {
    Action.DISPATCH,
    Action.ACCEPT,
    Action.START,
    Action.SUSPEND,
    Action.RESUME,
    Action.REPLY,
    Action.CALLBACK,
    Action.CLOSE,
    Action.REOPEN,
}
NEW_ORDER = OrderView(state=State.RECEIVED, order_id=ORDER_ID, consultation=True)


@dataclass
class Run:
    """Applies actions to one order and checks the invariants after each attempt."""

    view: OrderView = NEW_ORDER
    audit: list[Outcome] = field(default_factory=list)
    attempts: int = 0
    rejected: int = 0
    paused: bool = False  # an SLA PAUSE is open (no RESUME / START / STOP after it yet)
    leaked_pending: list[tuple[Action, State]] = field(default_factory=list)

    def step(self, action: Action | str, params: dict[str, Any]) -> None:
        before = self.view
        snapshot = replace(before, assists=dict(before.assists))
        self.attempts += 1
        try:
            outcome = apply(before, action, params)
        except InvalidTransition as err:
            self.rejected += 1
            assert err.state == before.state.value
            assert err.action == str(action.value if isinstance(action, Action) else action)
            # (d) a rejected action leaves the view unchanged
            assert before == snapshot
            return
        assert before == snapshot  # apply is pure on success too
        after = evolve(before, outcome)
        self._check(before, outcome, after)
        self.audit.append(outcome)
        self.view = after

    def _check(self, before: OrderView, outcome: Outcome, after: OrderView) -> None:
        # (a) the state is always a member of State
        assert type(outcome.to_state) is State
        assert type(after.state) is State
        assert after.state == outcome.to_state
        # (c) one outcome per successful action, chained on the state
        assert outcome.from_state == before.state
        assert outcome.state_changed == (before.state != after.state)
        # (b) terminal states accept only COMMENT, and REOPEN of an unsatisfied closed_unresolved order
        if before.state in TERMINAL_STATES:
            reopen = (
                outcome.action == Action.REOPEN
                and before.state == State.CLOSED_UNRESOLVED
                and before.satisfied is False
            )
            assert outcome.action == Action.COMMENT or reopen
            if outcome.action == Action.COMMENT:
                assert after.state == before.state
        # (e) a paused clock is only left by RESUME (back to work) or by START / STOP (new unit / end)
        if outcome.sla == SlaEffect.PAUSE:
            assert outcome.action == Action.SUSPEND
            assert not self.paused
            self.paused = True
        elif outcome.sla == SlaEffect.RESUME and before.state == State.SUSPENDED:
            assert self.paused
            self.paused = False
        elif outcome.sla in (SlaEffect.START, SlaEffect.STOP):
            self.paused = False
        if after.state in WORKING_STATES and outcome.state_changed:
            assert not self.paused
        assert self.paused == (after.state == State.SUSPENDED)
        if after.state == State.SUSPENDED:
            assert after.suspended_from in WORKING_STATES
        if before.state == State.SUSPENDED and after.state in WORKING_STATES:
            assert outcome.action == Action.RESUME
            assert after.state == before.suspended_from
        # (g) only creation leads into "received": an order there was never dispatched, so no unit returned it
        # (automatic dispatch relies on it and does not read a received order's history for returns).
        if after.state == State.RECEIVED:
            assert before.state == State.RECEIVED
        # A unit holds every order that is being handled or answered.
        if after.state in HANDLING_STATES | {State.REPLIED, State.CALLED_BACK}:
            assert after.lead_unit_id in UNITS
        # (f) a pending extension is only ever raised in a working state; outside the states where it can
        # be decided it may only be a request carried over from before (recorded as a leak, see below).
        if outcome.changes.get("extension_pending") is True:
            assert outcome.action == Action.REQUEST_EXTENSION
            assert after.state in WORKING_STATES
        if after.extension_pending and after.state not in PENDING_STATES:
            assert before.extension_pending
            if before.state in PENDING_STATES:
                self.leaked_pending.append((outcome.action, after.state))

    def check_audit(self) -> None:
        # (c) the audit trail has one event per successful action and its events chain
        assert len(self.audit) == self.attempts - self.rejected
        for earlier, later in zip(self.audit, self.audit[1:], strict=False):
            assert earlier.to_state == later.from_state
        if self.audit:
            assert self.audit[0].from_state == NEW_ORDER.state
            assert self.audit[-1].to_state == self.view.state
        else:
            assert self.view == NEW_ORDER


@PROPERTY_SETTINGS
@given(data=st.data())
def test_random_action_sequences_keep_the_invariants(data: st.DataObject) -> None:
    run = Run()
    visited = {run.view.state}
    for _ in range(data.draw(st.integers(min_value=5, max_value=25), label="steps")):
        # Mostly actions along the main path (so the order travels deep into the life cycle), then any
        # state change, any action the state allows, and any action or an unknown one so that rejections
        # are exercised too.
        allowed = allowed_actions(run.view)
        onward = [a for a in allowed if TRANSITIONS[a].target is not None and a not in ENDING_ACTIONS]
        onward = onward or allowed
        forward = [a for a in onward if a in FORWARD_ACTIONS] or onward
        action = data.draw(
            st.one_of(
                *[st.sampled_from(forward)] * 3,
                st.sampled_from(onward),
                st.sampled_from(allowed),
                any_action_st,
            ),
            label="action",
        )
        run.step(action, data.draw(params_for(action), label="params"))
        visited.add(run.view.state)
    run.check_audit()
    for state in visited:
        event(f"visited {state.value}")
    if run.leaked_pending:
        event("pending extension left the working states")


@PROPERTY_SETTINGS
@given(
    state=st.sampled_from(sorted(TERMINAL_STATES)),
    satisfied=st.sampled_from([True, False, None]),
    action=any_action_st,
    params=params_st,
)
def test_terminal_states_accept_only_comment_and_reopen(
    state: State, satisfied: bool | None, action: Action | str, params: dict[str, Any]
) -> None:
    view = OrderView(state=state, lead_unit_id=UNITS[0], satisfied=satisfied, order_id=ORDER_ID)
    try:
        outcome = apply(view, action, params)
    except InvalidTransition:
        may_succeed = action == Action.COMMENT or (
            action == Action.REOPEN and state == State.CLOSED_UNRESOLVED and satisfied is False
        )
        # Anything else in a terminal state must be refused; the permitted ones only fail on their params.
        if may_succeed:
            needed = "text" if action == Action.COMMENT else "reason"
            takes_no_unit = action == Action.COMMENT and str(params.get("unit_id") or "").strip()
            assert not str(params.get(needed) or "").strip() or takes_no_unit
        return
    if outcome.action == Action.COMMENT:
        assert outcome.to_state == state
    else:
        assert outcome.action == Action.REOPEN
        assert (state, satisfied) == (State.CLOSED_UNRESOLVED, False)
        assert outcome.to_state == State.DISPATCHED


# The shortest sequence through which a pending extension leaves the states where it can be decided.
LEAK_VIA_ASSIGN = [
    (Action.DISPATCH, {"unit_id": 1}),
    (Action.ACCEPT, {}),
    (Action.REQUEST_EXTENSION, {"days": 3, "reason": "需协调"}),
    (Action.ASSIGN, {"unit_id": 2}),
]


@PROPERTY_SETTINGS
@given(steps=st.lists(st.tuples(any_action_st, params_st), max_size=30))
@example(steps=LEAK_VIA_ASSIGN)
def test_pending_extension_never_outlives_the_working_states(steps: list[tuple[Action | str, Any]]) -> None:
    run = Run()
    for action, params in steps:
        run.step(action, params)
        assert not run.view.extension_pending or run.view.state in PENDING_STATES
    run.check_audit()
