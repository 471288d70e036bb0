"""Unit tests of the pure order life-cycle table (cityhub.workorders.lifecycle).

The expectations below are written out independently of ``TRANSITIONS`` (``SPEC``) so that a wrong entry
in the table — a missing source state, a wrong target, a dropped required parameter or SLA effect — fails a
test instead of being mirrored by it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from cityhub.errors import BadParameter, InvalidTransition, MissingParameter
from cityhub.workorders.lifecycle import (
    HANDLING_STATES,
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    WORKING_STATES,
    Action,
    AssistStatus,
    OrderView,
    Outcome,
    SlaEffect,
    State,
    actions_for_unit,
    allowed_actions,
    apply,
    awaited_assists,
    evolve,
    required_params,
)

S = State
A = Action

LEAD = 1  # the unit holding the order in the happy-path views
OTHER = 7  # a different unit, target of dispatch / transfer / assign
ASSISTANT = 9  # an assisting unit
ORDER_ID = 5
MASTER_ID = 99

_OPEN = {S.RECEIVED, S.DISPATCHED, S.RETURNED, S.ACCEPTED, S.IN_PROGRESS, S.SUSPENDED}
_HANDLING = {S.DISPATCHED, S.ACCEPTED, S.IN_PROGRESS, S.SUSPENDED}
_WORKING = {S.ACCEPTED, S.IN_PROGRESS}
_TERMINAL = {S.CLOSED_RESOLVED, S.CLOSED_UNRESOLVED, S.MERGED, S.CANCELLED}


@dataclass(frozen=True)
class Spec:
    """What an action is documented to do, for the happy-path view and params built below."""

    sources: frozenset[State]
    target: State | None  # None: the order stays in its state
    required: tuple[str, ...] = ()
    sla: SlaEffect | None = None


SPEC: dict[Action, Spec] = {
    A.INSTANT_ANSWER: Spec(frozenset({S.RECEIVED}), S.CLOSED_RESOLVED, ("answer",), SlaEffect.STOP),
    A.DISPATCH: Spec(frozenset({S.RECEIVED, S.RETURNED}), S.DISPATCHED, ("unit_id",), SlaEffect.START),
    A.ACCEPT: Spec(frozenset({S.DISPATCHED}), S.ACCEPTED, (), SlaEffect.ACCEPTED),
    A.RETURN: Spec(frozenset({S.DISPATCHED, S.ACCEPTED}), S.RETURNED, ("reason",), SlaEffect.STOP),
    A.START: Spec(frozenset({S.ACCEPTED}), S.IN_PROGRESS),
    A.TRANSFER: Spec(
        frozenset({S.DISPATCHED, S.ACCEPTED, S.IN_PROGRESS}),
        S.DISPATCHED,
        ("unit_id", "reason"),
        SlaEffect.START,
    ),
    A.ADD_ASSIST: Spec(frozenset(_HANDLING), None, ("unit_id",)),
    A.ASSIST_ACCEPT: Spec(frozenset(_HANDLING), None, ("unit_id",)),
    A.ASSIST_REPLY: Spec(frozenset(_HANDLING), None, ("unit_id", "text")),
    A.ASSIST_RETURN: Spec(frozenset(_HANDLING), None, ("unit_id", "reason")),
    A.REQUEST_EXTENSION: Spec(frozenset(_WORKING), None, ("days", "reason")),
    A.APPROVE_EXTENSION: Spec(frozenset(_WORKING | {S.SUSPENDED}), None, (), SlaEffect.EXTEND),
    A.REJECT_EXTENSION: Spec(frozenset(_WORKING | {S.SUSPENDED}), None, ("reason",)),
    A.URGE: Spec(frozenset(_OPEN - {S.RECEIVED}), None, ("reason",)),
    A.ESCALATE: Spec(frozenset(_OPEN), None, ("reason",)),
    # Happy path: a leader assigns to a unit other than the current lead, so the order goes to that unit.
    A.ASSIGN: Spec(frozenset(_OPEN), S.DISPATCHED, (), SlaEffect.START),
    A.SUSPEND: Spec(frozenset(_WORKING), S.SUSPENDED, ("reason",), SlaEffect.PAUSE),
    # Happy path: suspended from in_progress.
    A.RESUME: Spec(frozenset({S.SUSPENDED}), S.IN_PROGRESS, (), SlaEffect.RESUME),
    A.REPLY: Spec(frozenset(_WORKING), S.REPLIED, ("text",), SlaEffect.STOP),
    A.REJECT_REPLY: Spec(frozenset({S.REPLIED}), S.IN_PROGRESS, ("reason",), SlaEffect.RESUME),
    A.CALLBACK: Spec(frozenset({S.REPLIED}), S.CALLED_BACK, ("satisfied",)),
    A.CLOSE: Spec(frozenset({S.REPLIED, S.CALLED_BACK}), S.CLOSED_RESOLVED),  # resolved=True given
    A.REOPEN: Spec(frozenset({S.CALLED_BACK, S.CLOSED_UNRESOLVED}), S.DISPATCHED, ("reason",), SlaEffect.START),
    A.MERGE: Spec(frozenset(_OPEN), S.MERGED, ("master_id",), SlaEffect.STOP),
    # 拆单: the order keeps its state; the part becomes a new order (the service creates it).
    A.SPLIT: Spec(frozenset(_OPEN), None, ("content",)),
    A.CANCEL: Spec(frozenset(_OPEN), S.CANCELLED, ("reason",), SlaEffect.STOP),
    A.COMMENT: Spec(frozenset(State), None, ("text",)),
}

PARAMS: dict[Action, dict[str, Any]] = {
    A.INSTANT_ANSWER: {"answer": "办理居住证请携带身份证到社区服务中心"},
    A.DISPATCH: {"unit_id": OTHER},
    A.ACCEPT: {},
    A.RETURN: {"reason": "不属于本单位职责"},
    A.START: {},
    A.TRANSFER: {"unit_id": OTHER, "reason": "属于街道管辖"},
    A.ADD_ASSIST: {"unit_id": OTHER},
    A.ASSIST_ACCEPT: {"unit_id": ASSISTANT},
    A.ASSIST_REPLY: {"unit_id": ASSISTANT, "text": "已配合清理"},
    A.ASSIST_RETURN: {"unit_id": ASSISTANT, "reason": "非本单位职责"},
    A.REQUEST_EXTENSION: {"days": 3, "reason": "需协调施工单位"},
    A.APPROVE_EXTENSION: {},
    A.REJECT_EXTENSION: {"reason": "时限充足"},
    A.URGE: {"reason": "已超期，请尽快办结"},
    A.ESCALATE: {"reason": "多次催办未果"},
    A.ASSIGN: {"unit_id": OTHER},
    A.SUSPEND: {"reason": "等待市民补充材料"},
    A.RESUME: {},
    A.REPLY: {"text": "已清理完毕"},
    A.REJECT_REPLY: {"reason": "答复未说明依据"},
    A.CALLBACK: {"satisfied": True},
    A.CLOSE: {"resolved": True, "reason": "市民无法联系"},
    A.REOPEN: {"reason": "市民不满意"},
    A.MERGE: {"master_id": MASTER_ID},
    A.SPLIT: {"content": "另外楼下餐馆油烟直排"},
    A.CANCEL: {"reason": "重复录入"},
    A.COMMENT: {"text": "备注"},
}


def _lead_for(state: State) -> int | None:
    return None if state in (S.RECEIVED, S.RETURNED) else LEAD


def happy_view(action: Action, state: State) -> OrderView:
    """A plausible view of an order in ``state`` on which ``action`` satisfies its guards."""
    assists: dict[int, AssistStatus] = {}
    if action == A.ASSIST_ACCEPT:
        assists = {ASSISTANT: AssistStatus.DISPATCHED}
    elif action in (A.ASSIST_REPLY, A.ASSIST_RETURN):
        assists = {ASSISTANT: AssistStatus.ACCEPTED}
    return OrderView(
        state=state,
        lead_unit_id=_lead_for(state),
        suspended_from=S.IN_PROGRESS if state == S.SUSPENDED else None,
        extension_pending=action in (A.APPROVE_EXTENSION, A.REJECT_EXTENSION),
        satisfied=False if action == A.REOPEN else None,
        assists=assists,
        order_id=ORDER_ID,
        consultation=action == A.INSTANT_ANSWER,
    )


# Actions after which the unit that asked for an extension no longer holds the order.
_CLEARS_PENDING = {A.REPLY, A.RETURN, A.TRANSFER}


def expected_changes(action: Action, state: State) -> dict[str, Any]:
    """The field changes of ``action`` applied to ``happy_view(action, state)`` with ``PARAMS[action]``."""
    target = SPEC[action].target or state
    changes = dict(_expected_own_changes(action, state))
    if state == S.SUSPENDED and target != S.SUSPENDED and action != A.RESUME:
        changes["suspended_from"] = None  # leaving suspended by any other way forgets where it came from
    return changes


def _expected_own_changes(action: Action, state: State) -> dict[str, Any]:
    p = PARAMS[action]
    return {
        A.INSTANT_ANSWER: {"reply_text": p.get("answer"), "instant_answered": True, "resolved": True},
        A.DISPATCH: {"lead_unit_id": OTHER},
        A.ACCEPT: {},
        A.RETURN: {"lead_unit_id": None, "return_count": "+1"},
        A.START: {},
        A.TRANSFER: {"lead_unit_id": OTHER},
        A.ADD_ASSIST: {"assist": {"unit_id": OTHER, "status": AssistStatus.DISPATCHED}},
        A.ASSIST_ACCEPT: {"assist": {"unit_id": ASSISTANT, "status": AssistStatus.ACCEPTED}},
        A.ASSIST_REPLY: {"assist": {"unit_id": ASSISTANT, "status": AssistStatus.REPLIED}},
        A.ASSIST_RETURN: {"assist": {"unit_id": ASSISTANT, "status": AssistStatus.RETURNED}},
        A.REQUEST_EXTENSION: {"extension_pending": True},
        A.APPROVE_EXTENSION: {"extension_pending": False, "extension_count": "+1"},
        A.REJECT_EXTENSION: {"extension_pending": False},
        A.URGE: {"urge_count": "+1"},
        A.ESCALATE: {"escalation_level": "+1"},
        A.ASSIGN: {"lead_unit_id": OTHER, "leader_assigned": True},
        A.SUSPEND: {"suspended_from": state},
        A.RESUME: {"suspended_from": None},
        A.REPLY: {"reply_text": p.get("text")},
        A.REJECT_REPLY: {"reply_text": None},  # the reply sent back no longer stands as the answer
        A.CALLBACK: {"satisfied": True},
        A.CLOSE: {"resolved": True},
        A.REOPEN: {"reopen_count": "+1", "satisfied": None, "reply_text": None},
        A.MERGE: {"master_order_id": MASTER_ID},
        A.SPLIT: {},
        A.CANCEL: {},
        A.COMMENT: {},
    }[action]


def _legal_pairs() -> list[Any]:
    pairs = []
    for action, rule in TRANSITIONS.items():
        for state in sorted(rule.sources):
            pairs.append(pytest.param(action, state, id=f"{action.value}-from-{state.value}"))
    return pairs


def _all_pairs() -> list[tuple[Action, State]]:
    return [(action, state) for action in Action for state in State]


def _illegal_pairs() -> list[Any]:
    return [
        pytest.param(a, s, id=f"{a.value}-in-{s.value}")
        for a, s in _all_pairs()
        if a not in SPEC or s not in SPEC[a].sources
    ]


# --- the table against the spec -------------------------------------------------------------------


def test_state_groups_are_the_documented_ones() -> None:
    assert set(OPEN_STATES) == _OPEN
    assert set(TERMINAL_STATES) == _TERMINAL
    assert set(HANDLING_STATES) == _HANDLING
    assert set(WORKING_STATES) == _WORKING
    # Every state is open, terminal, or one of the two waiting-for-the-citizen states.
    assert set(State) - _OPEN - _TERMINAL == {S.REPLIED, S.CALLED_BACK}


def test_every_action_but_create_has_a_rule_and_a_spec() -> None:
    assert set(TRANSITIONS) == set(Action) - {A.CREATE}
    assert set(SPEC) == set(TRANSITIONS)


@pytest.mark.parametrize("action", sorted(SPEC), ids=lambda a: a.value)
def test_table_sources_required_and_sla_match_the_spec(action: Action) -> None:
    rule = TRANSITIONS[action]
    assert rule.sources == SPEC[action].sources
    assert rule.required == SPEC[action].required
    assert rule.sla == SPEC[action].sla


@pytest.mark.parametrize(("action", "state"), _legal_pairs())
def test_legal_transition_gives_documented_outcome(action: Action, state: State) -> None:
    view = happy_view(action, state)
    params = PARAMS[action]

    outcome = apply(view, action, params)

    expected_target = SPEC[action].target
    assert outcome.action == action
    assert outcome.from_state == state
    assert outcome.to_state == (state if expected_target is None else expected_target)
    assert outcome.state_changed == (outcome.to_state != state)
    assert outcome.changes == expected_changes(action, state)
    assert outcome.sla == SPEC[action].sla
    assert outcome.payload == params


@pytest.mark.parametrize(("action", "state"), _legal_pairs())
def test_legal_transition_accepts_the_action_as_a_string(action: Action, state: State) -> None:
    assert apply(happy_view(action, state), action.value, PARAMS[action]).action == action


@pytest.mark.parametrize("satisfied", [None, True, False], ids=["unrated", "satisfied", "unsatisfied"])
@pytest.mark.parametrize("pending", [False, True], ids=["no-request", "request-pending"])
@pytest.mark.parametrize("consultation", [True, False], ids=["consultation", "complaint"])
@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_allowed_actions_are_the_spec_sources_less_what_the_order_itself_rules_out(
    state: State, consultation: bool, pending: bool, satisfied: bool | None
) -> None:
    ruled_out = set() if consultation else {A.INSTANT_ANSWER}
    ruled_out |= {A.REQUEST_EXTENSION} if pending else {A.APPROVE_EXTENSION, A.REJECT_EXTENSION}
    ruled_out |= set() if satisfied is False else {A.REOPEN}
    expected = {a for a, spec in SPEC.items() if state in spec.sources} - ruled_out
    view = OrderView(state=state, consultation=consultation, extension_pending=pending, satisfied=satisfied)
    assert set(allowed_actions(view)) == expected


# --- rejections -----------------------------------------------------------------------------------


def _assert_rejected(
    view: OrderView, action: Action | str, params: dict[str, Any] | None, reason_part: str = ""
) -> InvalidTransition:
    with pytest.raises(InvalidTransition) as info:
        apply(view, action, params)
    err = info.value
    action_name = action.value if isinstance(action, Action) else action
    assert err.state == view.state.value
    assert err.action == action_name
    assert f"'{view.state.value}'" in err.message
    assert f"'{action_name}'" in err.message
    assert err.details["state"] == view.state.value
    assert err.details["action"] == action_name
    assert reason_part in err.reason
    if isinstance(err, MissingParameter):  # what was sent is incomplete: 422, naming the field
        assert err.http_status == 422 and f"needs '{err.details['field']}'" in err.message
        assert reason_part == f"'{err.details['field']}' is required"
    elif isinstance(err, BadParameter):  # a value it cannot take, whatever the state: 422, naming the field
        assert err.http_status == 422 and f"cannot take this '{err.details['field']}'" in err.message
        assert reason_part in err.message
    else:
        assert reason_part in err.message
        assert err.http_status == 409
    return err


@pytest.mark.parametrize(("action", "state"), _illegal_pairs())
def test_illegal_pair_is_rejected_naming_state_and_action(action: Action, state: State) -> None:
    # The happy view and params of the action, so the only thing wrong is the state.
    params = PARAMS.get(action, {"unit_id": OTHER})
    _assert_rejected(happy_view(action, state), action, params)


def test_create_is_not_a_transition() -> None:
    err = _assert_rejected(OrderView(state=S.RECEIVED), A.CREATE, {})
    assert err.reason == ""


@pytest.mark.parametrize("bogus", ["fly_away", "", "DISPATCH"])
def test_unknown_action_string_is_rejected(bogus: str) -> None:
    err = _assert_rejected(OrderView(state=S.RECEIVED), bogus, {"unit_id": OTHER}, "unknown action")
    assert err.details["reason"] == "unknown action"


def _required_cases() -> list[Any]:
    cases = []
    for action, spec in SPEC.items():
        state = min(spec.sources)
        for name in spec.required:
            cases.extend(
                pytest.param(action, state, name, blank, id=f"{action.value}-{name}-{blank!r}")
                for blank in (None, "", "   ")
            )
    return cases


@pytest.mark.parametrize(("action", "state", "name", "blank"), _required_cases())
def test_missing_required_param_is_rejected_naming_it(action: Action, state: State, name: str, blank: Any) -> None:
    params = dict(PARAMS[action])
    if blank is None:
        del params[name]
    else:
        params[name] = blank
    _assert_rejected(happy_view(action, state), action, params, f"'{name}' is required")


@pytest.mark.parametrize("state", [S.RECEIVED, S.RETURNED], ids=lambda s: s.value)
def test_assign_on_an_unheld_order_needs_a_unit(state: State) -> None:
    _assert_rejected(OrderView(state=state), A.ASSIGN, {}, "'unit_id' is required")
    _assert_rejected(OrderView(state=state), A.ASSIGN, {"unit_id": " "}, "'unit_id' is required")


# --- guards ---------------------------------------------------------------------------------------


def _held(state: State = S.IN_PROGRESS, **kw: Any) -> OrderView:
    defaults: dict[str, Any] = {"lead_unit_id": LEAD, "order_id": ORDER_ID}
    if state == S.SUSPENDED:
        defaults["suspended_from"] = S.IN_PROGRESS
    defaults.update(kw)
    return OrderView(state=state, **defaults)


@pytest.mark.parametrize("state", sorted(_WORKING), ids=lambda s: s.value)
def test_second_extension_request_while_one_is_pending_is_rejected(state: State) -> None:
    view = evolve(_held(state), apply(_held(state), A.REQUEST_EXTENSION, {"days": 2, "reason": "r"}))
    assert view.extension_pending is True
    _assert_rejected(view, A.REQUEST_EXTENSION, {"days": 1, "reason": "again"}, "already pending")


@pytest.mark.parametrize("action", [A.APPROVE_EXTENSION, A.REJECT_EXTENSION], ids=lambda a: a.value)
@pytest.mark.parametrize("state", sorted(_WORKING | {S.SUSPENDED}), ids=lambda s: s.value)
def test_deciding_an_extension_needs_a_pending_request(action: Action, state: State) -> None:
    _assert_rejected(_held(state), action, {"reason": "r"}, "no extension request is pending")


@pytest.mark.parametrize("days", [0, -1, -0.5, True, False, "3", None, float("nan"), float("inf")], ids=repr)
def test_extension_days_must_be_a_positive_number(days: Any) -> None:
    params = {"days": days, "reason": "r"}
    reason = "'days' is required" if days is None else "days must be a positive number"
    _assert_rejected(_held(S.ACCEPTED), A.REQUEST_EXTENSION, params, reason)


@pytest.mark.parametrize("days", [30.5, 31, 999])
def test_one_extension_request_asks_for_at_most_thirty_working_days(days: float) -> None:
    _assert_rejected(_held(S.ACCEPTED), A.REQUEST_EXTENSION, {"days": days, "reason": "r"}, "at most 30")


@pytest.mark.parametrize("days", [1, 10, 0.5, 30])
def test_extension_days_positive_is_accepted(days: float) -> None:
    outcome = apply(_held(S.ACCEPTED), A.REQUEST_EXTENSION, {"days": days, "reason": "r"})
    assert outcome.payload["days"] == days


def test_a_units_co_handling_steps_are_listed_only_where_they_apply() -> None:
    steps = {A.ASSIST_ACCEPT, A.ASSIST_REPLY, A.ASSIST_RETURN}
    view = _held(assists={ASSISTANT: AssistStatus.DISPATCHED, 3: AssistStatus.ACCEPTED, 4: AssistStatus.REPLIED})
    assert steps <= set(allowed_actions(view))  # the state alone allows them
    listed = {u: set(actions_for_unit(view, u)) & steps for u in (ASSISTANT, 3, 4, None, 77, LEAD)}
    assert listed == {
        ASSISTANT: steps,
        3: {A.ASSIST_REPLY, A.ASSIST_RETURN},
        4: set(),  # done
        None: set(),
        77: set(),  # anyone not assisting
        LEAD: set(),
    }
    assert set(actions_for_unit(view, LEAD)) == set(allowed_actions(view)) - steps
    # The lead unit's steps are the lead unit's: an assisting unit, or one that only sees the order, gets none.
    lead_steps = {A.REQUEST_EXTENSION, A.SUSPEND}  # 答复 waits for the assisting units (below)
    assert lead_steps <= set(allowed_actions(view))
    for unit in (ASSISTANT, 77):
        assert not set(actions_for_unit(view, unit)) & lead_steps, unit
    assert lead_steps <= set(actions_for_unit(view, None))  # an administrator is bound to no unit


@pytest.mark.parametrize("status", [AssistStatus.DISPATCHED, AssistStatus.ACCEPTED])
def test_reply_waits_for_assisting_units(status: AssistStatus) -> None:
    view = _held(assists={ASSISTANT: status, 11: AssistStatus.REPLIED, 3: status})
    err = _assert_rejected(view, A.REPLY, {"text": "done"}, "have not replied")
    assert "[3, 9]" in err.reason  # every waiting unit is named, sorted


@pytest.mark.parametrize("status", [AssistStatus.REPLIED, AssistStatus.RETURNED])
def test_reply_allowed_once_assisting_units_replied_or_returned(status: AssistStatus) -> None:
    outcome = apply(_held(assists={ASSISTANT: status}), A.REPLY, {"text": "done"})
    assert outcome.to_state == S.REPLIED
    assert A.REPLY in actions_for_unit(_held(assists={ASSISTANT: status, 3: AssistStatus.REPLIED}), LEAD)


@pytest.mark.parametrize("status", [AssistStatus.DISPATCHED, AssistStatus.ACCEPTED])
def test_reply_is_not_offered_while_assisting_units_have_not_answered(status: AssistStatus) -> None:
    """The lead unit was offered 答复 and wrote a reply the table then refused."""
    view = _held(assists={ASSISTANT: status, 3: AssistStatus.REPLIED, 11: AssistStatus.RETURNED})
    assert awaited_assists(view) == [ASSISTANT]
    assert A.REPLY not in allowed_actions(view) and A.REPLY not in actions_for_unit(view, LEAD)
    assert A.REQUEST_EXTENSION in actions_for_unit(view, LEAD)  # the lead's other steps stay


def test_reopen_after_satisfied_callback_is_rejected() -> None:
    view = OrderView(state=S.CALLED_BACK, lead_unit_id=LEAD, satisfied=True)
    _assert_rejected(view, A.REOPEN, {"reason": "r"}, "unsatisfied callback")


@pytest.mark.parametrize("satisfied", [True, None])
def test_reopen_of_closed_unresolved_needs_an_unsatisfied_callback(satisfied: bool | None) -> None:
    # Closed as unresolved without a callback (satisfied None) or despite a satisfied one: nothing to reopen.
    view = OrderView(state=S.CLOSED_UNRESOLVED, lead_unit_id=LEAD, satisfied=satisfied)
    _assert_rejected(view, A.REOPEN, {"reason": "r"}, "unsatisfied callback")


@pytest.mark.parametrize("state", sorted(_OPEN), ids=lambda s: s.value)
def test_merge_into_itself_is_rejected(state: State) -> None:
    view = happy_view(A.MERGE, state)
    _assert_rejected(view, A.MERGE, {"master_id": ORDER_ID}, "merged into itself")


@pytest.mark.parametrize("state", sorted(SPEC[A.TRANSFER].sources), ids=lambda s: s.value)
def test_transfer_to_the_same_unit_is_rejected(state: State) -> None:
    _assert_rejected(_held(state), A.TRANSFER, {"unit_id": LEAD, "reason": "r"}, "already with this unit")


def test_lead_unit_cannot_assist_itself() -> None:
    _assert_rejected(_held(), A.ADD_ASSIST, {"unit_id": LEAD}, "cannot assist itself")


@pytest.mark.parametrize("status", [AssistStatus.DISPATCHED, AssistStatus.ACCEPTED])
def test_unit_already_assisting_cannot_be_added_again(status: AssistStatus) -> None:
    view = _held(assists={ASSISTANT: status})
    _assert_rejected(view, A.ADD_ASSIST, {"unit_id": ASSISTANT}, "already assisting")


@pytest.mark.parametrize("status", [AssistStatus.RETURNED, AssistStatus.REPLIED])
def test_unit_that_returned_or_answered_its_assist_can_be_asked_again(status: AssistStatus) -> None:
    # e.g. a reopened order needs the same assisting unit once more
    outcome = apply(_held(assists={ASSISTANT: status}), A.ADD_ASSIST, {"unit_id": ASSISTANT})
    assert outcome.changes["assist"] == {"unit_id": ASSISTANT, "status": AssistStatus.DISPATCHED}


ASSIST_MOVES: dict[Action, tuple[dict[str, Any], set[AssistStatus | None], AssistStatus]] = {
    A.ASSIST_ACCEPT: ({}, {AssistStatus.DISPATCHED}, AssistStatus.ACCEPTED),
    A.ASSIST_REPLY: ({"text": "t"}, {AssistStatus.DISPATCHED, AssistStatus.ACCEPTED}, AssistStatus.REPLIED),
    A.ASSIST_RETURN: (
        {"reason": "r"},
        {AssistStatus.DISPATCHED, AssistStatus.ACCEPTED},
        AssistStatus.RETURNED,
    ),
}


@pytest.mark.parametrize("action", sorted(ASSIST_MOVES), ids=lambda a: a.value)
@pytest.mark.parametrize("status", [None, *AssistStatus], ids=str)
def test_assist_status_transitions(action: Action, status: AssistStatus | None) -> None:
    extra, allowed_from, to = ASSIST_MOVES[action]
    view = _held(assists={} if status is None else {ASSISTANT: status})
    params = {"unit_id": ASSISTANT, **extra}
    if status in allowed_from:
        outcome = apply(view, action, params)
        assert outcome.changes["assist"] == {"unit_id": ASSISTANT, "status": to}
        assert outcome.to_state == view.state
        assert evolve(view, outcome).assists == {ASSISTANT: to}
    else:
        err = _assert_rejected(view, action, params, f"assisting unit {ASSISTANT} is")
        assert (status or "not assisting") in err.reason


def test_close_without_callback_needs_a_reason() -> None:
    view = OrderView(state=S.REPLIED, lead_unit_id=LEAD)
    _assert_rejected(view, A.CLOSE, {"resolved": True}, "needs a reason")
    _assert_rejected(view, A.CLOSE, {"resolved": True, "reason": ""}, "needs a reason")


def test_close_without_callback_rejects_a_blank_reason() -> None:
    view = OrderView(state=S.REPLIED, lead_unit_id=LEAD)
    _assert_rejected(view, A.CLOSE, {"resolved": True, "reason": "  "}, "needs a reason")


@pytest.mark.parametrize("resolved", [None, "yes", 1])
def test_close_without_callback_needs_resolved_flag(resolved: Any) -> None:
    view = OrderView(state=S.REPLIED, lead_unit_id=LEAD)
    _assert_rejected(view, A.CLOSE, {"reason": "citizen unreachable", "resolved": resolved}, "resolved=true|false")


@pytest.mark.parametrize("resolved", [True, False])
def test_close_without_callback_follows_resolved_flag(resolved: bool) -> None:
    view = OrderView(state=S.REPLIED, lead_unit_id=LEAD)
    outcome = apply(view, A.CLOSE, {"reason": "citizen unreachable", "resolved": resolved})
    assert outcome.to_state == (S.CLOSED_RESOLVED if resolved else S.CLOSED_UNRESOLVED)
    assert outcome.changes == {"resolved": resolved}


@pytest.mark.parametrize(("satisfied", "expected"), [(True, S.CLOSED_RESOLVED), (False, S.CLOSED_UNRESOLVED)])
def test_close_after_callback_defaults_to_the_citizens_verdict(satisfied: bool, expected: State) -> None:
    view = OrderView(state=S.CALLED_BACK, lead_unit_id=LEAD, satisfied=satisfied)
    outcome = apply(view, A.CLOSE, {})
    assert outcome.to_state == expected
    assert outcome.changes == {"resolved": expected == S.CLOSED_RESOLVED}


def test_close_after_callback_can_override_the_verdict() -> None:
    view = OrderView(state=S.CALLED_BACK, lead_unit_id=LEAD, satisfied=False)
    assert apply(view, A.CLOSE, {"resolved": True}).to_state == S.CLOSED_RESOLVED


@pytest.mark.parametrize("satisfied", ["yes", 1, 0])
def test_callback_satisfied_must_be_a_boolean(satisfied: Any) -> None:
    view = OrderView(state=S.REPLIED, lead_unit_id=LEAD)
    _assert_rejected(view, A.CALLBACK, {"satisfied": satisfied}, "satisfied must be true or false")


def test_callback_unsatisfied_is_recorded() -> None:
    outcome = apply(OrderView(state=S.REPLIED, lead_unit_id=LEAD), A.CALLBACK, {"satisfied": False})
    assert outcome.changes == {"satisfied": False}
    assert outcome.sla is None


def test_apply_does_not_mutate_the_params_or_view() -> None:
    view = _held(assists={ASSISTANT: AssistStatus.DISPATCHED})
    params = {"unit_id": ASSISTANT}
    before_view, before_assists = replace(view), dict(view.assists)
    apply(view, A.ASSIST_ACCEPT, params)
    assert params == {"unit_id": ASSISTANT}
    assert view == before_view
    assert dict(view.assists) == before_assists


def test_payload_drops_blank_optional_params() -> None:
    outcome = apply(_held(), A.URGE, {"reason": "尽快", "note": "  ", "by": "supervisor", "x": None})
    assert outcome.payload == {"reason": "尽快", "by": "supervisor"}


# --- main paths end to end ------------------------------------------------------------------------


def run(view: OrderView, steps: list[tuple[Action, dict[str, Any]]]) -> tuple[OrderView, list[Outcome]]:
    trail = []
    for action, params in steps:
        outcome = apply(view, action, params)
        assert outcome.from_state == view.state
        view = evolve(view, outcome)
        assert view.state == outcome.to_state
        trail.append(outcome)
    return view, trail


NEW = OrderView(state=S.RECEIVED, order_id=ORDER_ID)


def test_happy_path_to_closed_resolved() -> None:
    view, trail = run(
        NEW,
        [
            (A.DISPATCH, {"unit_id": LEAD}),
            (A.ACCEPT, {}),
            (A.START, {}),
            (A.REPLY, {"text": "已处理"}),
            (A.CALLBACK, {"satisfied": True}),
            (A.CLOSE, {}),
        ],
    )
    assert [o.to_state for o in trail] == [
        S.DISPATCHED,
        S.ACCEPTED,
        S.IN_PROGRESS,
        S.REPLIED,
        S.CALLED_BACK,
        S.CLOSED_RESOLVED,
    ]
    assert [o.sla for o in trail] == [SlaEffect.START, SlaEffect.ACCEPTED, None, SlaEffect.STOP, None, None]
    assert view.lead_unit_id == LEAD
    assert view.satisfied is True
    assert trail[-1].changes == {"resolved": True}
    assert allowed_actions(view) == [A.COMMENT]


def test_unsatisfied_callback_reopens_and_ends_unresolved() -> None:
    to_reply: list[tuple[Action, dict[str, Any]]] = [
        (A.ACCEPT, {}),
        (A.START, {}),
        (A.REPLY, {"text": "已处理"}),
        (A.CALLBACK, {"satisfied": False}),
    ]
    view, _ = run(NEW, [(A.DISPATCH, {"unit_id": LEAD}), *to_reply])
    assert view.state == S.CALLED_BACK and view.satisfied is False

    reopened = apply(view, A.REOPEN, {"reason": "市民不满意", "unit_id": OTHER})
    assert reopened.to_state == S.DISPATCHED
    assert reopened.sla == SlaEffect.START
    assert reopened.changes["lead_unit_id"] == OTHER
    view = evolve(view, reopened)
    assert view.satisfied is None

    view, _ = run(view, [*to_reply, (A.CLOSE, {})])
    assert view.state == S.CLOSED_UNRESOLVED
    assert view.lead_unit_id == OTHER

    # A closed-unresolved order with an unsatisfied callback can still be reopened; the lead stays by default.
    again = apply(view, A.REOPEN, {"reason": "仍未解决"})
    assert again.to_state == S.DISPATCHED
    assert "lead_unit_id" not in again.changes
    assert evolve(view, again).lead_unit_id == OTHER


@pytest.mark.parametrize("returned_from", [[], [(A.ACCEPT, {})]], ids=["dispatched", "accepted"])
def test_returned_order_is_redispatched(returned_from: list[tuple[Action, dict[str, Any]]]) -> None:
    view, trail = run(NEW, [(A.DISPATCH, {"unit_id": LEAD}), *returned_from, (A.RETURN, {"reason": "非本单位职责"})])
    assert view.state == S.RETURNED
    assert view.lead_unit_id is None
    assert trail[-1].sla == SlaEffect.STOP
    assert trail[-1].changes["return_count"] == "+1"
    assert A.ACCEPT not in allowed_actions(view)

    view, trail = run(view, [(A.DISPATCH, {"unit_id": OTHER}), (A.ACCEPT, {})])
    assert view.state == S.ACCEPTED
    assert view.lead_unit_id == OTHER
    assert trail[0].sla == SlaEffect.START


@pytest.mark.parametrize("working", sorted(_WORKING), ids=lambda s: s.value)
def test_suspend_and_resume_return_to_the_state_left(working: State) -> None:
    view = _held(working)
    suspended = apply(view, A.SUSPEND, {"reason": "等待市民补充材料"})
    assert suspended.sla == SlaEffect.PAUSE
    view = evolve(view, suspended)
    assert view.state == S.SUSPENDED and view.suspended_from == working

    for blocked in (A.REPLY, A.START, A.SUSPEND, A.REQUEST_EXTENSION, A.RETURN, A.TRANSFER):
        _assert_rejected(view, blocked, PARAMS[blocked])

    resumed = apply(view, A.RESUME, {})
    assert resumed.to_state == working
    assert resumed.sla == SlaEffect.RESUME
    assert evolve(view, resumed).suspended_from is None


def test_resume_without_a_recorded_state_goes_to_in_progress() -> None:
    assert apply(OrderView(state=S.SUSPENDED, lead_unit_id=LEAD), A.RESUME, {}).to_state == S.IN_PROGRESS


def test_extension_approved_while_suspended() -> None:
    view, trail = run(
        _held(S.IN_PROGRESS),
        [
            (A.REQUEST_EXTENSION, {"days": 5, "reason": "需施工"}),
            (A.SUSPEND, {"reason": "等待市民"}),
            (A.APPROVE_EXTENSION, {}),
            (A.RESUME, {}),
        ],
    )
    assert view.state == S.IN_PROGRESS
    assert view.extension_pending is False
    assert [o.sla for o in trail] == [None, SlaEffect.PAUSE, SlaEffect.EXTEND, SlaEffect.RESUME]


def test_instant_answer_closes_resolved_without_a_unit() -> None:
    consultation = replace(NEW, consultation=True)
    outcome = apply(consultation, A.INSTANT_ANSWER, {"answer": "请拨打社保热线"})
    assert outcome.to_state == S.CLOSED_RESOLVED
    assert outcome.changes == {
        "reply_text": "请拨打社保热线",
        "instant_answered": True,
        "resolved": True,
    }
    assert evolve(consultation, outcome).lead_unit_id is None
    _assert_rejected(_held(S.DISPATCHED), A.INSTANT_ANSWER, {"answer": "x"})
    # A complaint, a request, a report: a unit handles them; the operator cannot close them on the spot.
    _assert_rejected(NEW, A.INSTANT_ANSWER, {"answer": "已知悉"}, "only consultations are answered instantly")


@pytest.mark.parametrize("state", [S.RECEIVED, S.RETURNED], ids=lambda s: s.value)
def test_leader_assignment_of_an_unheld_order_dispatches_it(state: State) -> None:
    outcome = apply(OrderView(state=state), A.ASSIGN, {"unit_id": OTHER, "note": "限期办结"})
    assert outcome.to_state == S.DISPATCHED
    assert outcome.sla == SlaEffect.START
    assert outcome.changes == {"lead_unit_id": OTHER, "leader_assigned": True}


@pytest.mark.parametrize("state", sorted(_HANDLING), ids=lambda s: s.value)
@pytest.mark.parametrize("unit", [None, LEAD], ids=["no-unit", "same-unit"])
def test_leader_assignment_of_a_held_order_keeps_state_and_clock(state: State, unit: int | None) -> None:
    params = {"reason": "本周内办结"} if unit is None else {"unit_id": unit}
    view = _held(state)
    outcome = apply(view, A.ASSIGN, params)
    assert outcome.to_state == state
    assert outcome.sla is None
    assert outcome.changes["leader_assigned"] is True
    assert evolve(view, outcome).lead_unit_id == LEAD


def test_required_params_are_what_the_table_refuses_without() -> None:
    """What an action's form marks required: 办结 before a callback needs 是否解决 and 理由, after one neither."""
    assert set(required_params(_held(S.REPLIED), A.CLOSE)) == {"resolved", "reason"}
    _assert_rejected(_held(S.REPLIED), A.CLOSE, {"resolved": True}, "closing without a callback needs a reason")
    assert required_params(_held(S.CALLED_BACK, satisfied=True), A.CLOSE) == ()
    assert required_params(OrderView(state=S.RECEIVED), A.ASSIGN) == ("unit_id",)
    assert required_params(_held(S.IN_PROGRESS), A.URGE) == ("reason",)


def test_an_order_with_no_citizen_is_closed_from_replied_without_a_callback_or_reason() -> None:
    """A sensor's or camera's order has nobody to call back: 办结 from 已答复 asks for nothing, resolved unless said
    otherwise; an order with a citizen still needs both."""
    machine = _held(S.REPLIED, no_citizen=True)
    assert required_params(machine, A.CLOSE) == ()
    assert apply(machine, A.CLOSE).to_state == S.CLOSED_RESOLVED
    assert apply(machine, A.CLOSE, {"resolved": False}).to_state == S.CLOSED_UNRESOLVED
    assert A.CLOSE in allowed_actions(machine)
    _assert_rejected(_held(S.REPLIED), A.CLOSE, {}, "needs a reason")


@pytest.mark.parametrize("state", sorted(_HANDLING), ids=lambda s: s.value)
def test_leader_assignment_naming_no_unit_needs_an_instruction(state: State) -> None:
    """交办 naming no unit leaves the order with its unit: without an instruction (交办意见) it would record nothing."""
    _assert_rejected(_held(state), A.ASSIGN, {}, "'reason' is required")
    _assert_rejected(_held(state), A.ASSIGN, {"unit_id": None, "reason": "  "}, "'reason' is required")
    assert apply(_held(state), A.ASSIGN, {"unit_id": OTHER}).changes["lead_unit_id"] == OTHER  # a unit says enough


@pytest.mark.parametrize("state", sorted(_WORKING | {S.SUSPENDED}), ids=lambda s: s.value)
def test_leader_assignment_to_another_unit_moves_the_order(state: State) -> None:
    outcome = apply(_held(state), A.ASSIGN, {"unit_id": OTHER})
    assert outcome.to_state == S.DISPATCHED
    assert outcome.sla == SlaEffect.START
    assert outcome.changes["lead_unit_id"] == OTHER


@pytest.mark.parametrize("state", sorted(_OPEN), ids=lambda s: s.value)
def test_merge_into_a_master_order(state: State) -> None:
    view = happy_view(A.MERGE, state)
    outcome = apply(view, A.MERGE, {"master_id": MASTER_ID})
    assert outcome.to_state == S.MERGED
    assert outcome.changes == {"master_order_id": MASTER_ID} | (
        {"suspended_from": None} if state == S.SUSPENDED else {}
    )
    assert outcome.sla == SlaEffect.STOP
    assert allowed_actions(evolve(view, outcome)) == [A.COMMENT]


@pytest.mark.parametrize("state", sorted(_OPEN), ids=lambda s: s.value)
def test_cancel_is_final(state: State) -> None:
    view = evolve(happy_view(A.CANCEL, state), apply(happy_view(A.CANCEL, state), A.CANCEL, {"reason": "重复"}))
    assert view.state == S.CANCELLED
    assert allowed_actions(view) == [A.COMMENT]
    _assert_rejected(view, A.REOPEN, {"reason": "r"})


def test_reject_reply_sends_the_order_back_to_work() -> None:
    view, trail = run(_held(S.IN_PROGRESS), [(A.REPLY, {"text": "已阅"}), (A.REJECT_REPLY, {"reason": "答非所问"})])
    assert view.state == S.IN_PROGRESS
    assert [o.sla for o in trail] == [SlaEffect.STOP, SlaEffect.RESUME]


def test_transfer_moves_the_order_and_restarts_the_clock() -> None:
    view, trail = run(_held(S.IN_PROGRESS), [(A.TRANSFER, {"unit_id": OTHER, "reason": "属地管理"})])
    assert view.state == S.DISPATCHED
    assert view.lead_unit_id == OTHER
    assert trail[0].sla == SlaEffect.START


# --- leaving a unit or a state forgets what belonged to it ----------------------------------------


@pytest.mark.parametrize(
    ("action", "params"),
    [
        (A.REPLY, {"text": "done"}),
        (A.RETURN, {"reason": "r"}),
        (A.TRANSFER, {"unit_id": OTHER, "reason": "r"}),
        pytest.param(A.ASSIGN, {"unit_id": OTHER}, id="assign"),
        (A.MERGE, {"master_id": MASTER_ID}),
        (A.CANCEL, {"reason": "r"}),
    ],
    ids=lambda x: x.value if isinstance(x, Action) else "",
)
def test_leaving_the_unit_clears_a_pending_extension(action: Action, params: dict[str, Any]) -> None:
    view = _held(S.ACCEPTED, extension_pending=True)
    outcome = apply(view, action, params)
    assert outcome.changes.get("extension_pending") is False
    after = evolve(view, outcome)
    assert after.extension_pending is False
    if after.state in HANDLING_STATES:
        # The unit now holding the order can ask for its own extension.
        assert apply(replace(after, state=S.ACCEPTED), A.REQUEST_EXTENSION, {"days": 1, "reason": "r"})


def test_leader_assignment_to_another_unit_on_a_dispatched_order_restarts_the_clock() -> None:
    outcome = apply(_held(S.DISPATCHED), A.ASSIGN, {"unit_id": OTHER})
    assert outcome.changes["lead_unit_id"] == OTHER
    assert outcome.sla == SlaEffect.START


def test_leaving_suspended_by_reassignment_clears_suspended_from() -> None:
    view = _held(S.SUSPENDED)
    after = evolve(view, apply(view, A.ASSIGN, {"unit_id": OTHER}))
    assert after.state == S.DISPATCHED
    assert after.suspended_from is None


def test_an_escalation_may_raise_the_urgency_never_lower_it() -> None:
    view = replace(_held(S.DISPATCHED), urgency="normal")
    outcome = apply(view, A.ESCALATE, {"reason": "报警未确认", "urgency": "urgent"})
    assert outcome.changes == {"escalation_level": "+1", "urgency": "urgent"}
    assert outcome.payload["previous_urgency"] == "normal" and outcome.payload["urgency"] == "urgent"
    assert outcome.sla == SlaEffect.TIGHTEN  # the running time limit follows the raised urgency
    plain = apply(view, A.ESCALATE, {"reason": "r"})
    assert "urgency" not in plain.changes and plain.sla is None
    with pytest.raises(InvalidTransition, match="already urgent"):
        apply(replace(view, urgency="urgent"), A.ESCALATE, {"reason": "r", "urgency": "urgent"})
    with pytest.raises(InvalidTransition, match="already critical"):
        apply(replace(view, urgency="critical"), A.ESCALATE, {"reason": "r", "urgency": "normal"})
    with pytest.raises(InvalidTransition, match="unknown urgency"):
        apply(view, A.ESCALATE, {"reason": "r", "urgency": "asap"})


def test_the_integrators_table_of_actions_is_the_life_cycle_table() -> None:
    """docs/api.md lists every action, the states it is taken in and the parameters it needs, for integrators who
    cannot read ``TRANSITIONS`` (it named three actions and pointed at this module): the table must say what the code
    does, action for action."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## Life-cycle actions", 1)[1].split("\n## ", 1)[0]
    documented: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        states = frozenset(s.value for s in State) if cells[1] == "any state" else frozenset(cells[1].split(", "))
        needs = () if cells[2] == "—" else tuple(n.strip().strip("`") for n in cells[2].split(","))
        documented[cells[0].strip("`")] = (states, needs)
    expected = {
        action.value: (frozenset(s.value for s in rule.sources), rule.required) for action, rule in TRANSITIONS.items()
    }
    assert documented == expected


def test_a_return_may_suggest_another_unit_and_only_a_return_takes_one() -> None:
    """退单's 建议改派至 (``suggest_unit_id``): optional, kept in the outcome's payload, never the returning unit;
    any other action given one is refused naming it, not recorded as if it meant something."""
    from cityhub.errors import UnexpectedParameter

    sent = OrderView(state=State.DISPATCHED, lead_unit_id=7)
    assert "suggest_unit_id" not in apply(sent, Action.RETURN, {"reason": "非本单位"}).payload
    outcome = apply(sent, Action.RETURN, {"reason": "非本单位", "suggest_unit_id": 9})
    assert outcome.to_state == State.RETURNED and outcome.payload["suggest_unit_id"] == 9
    with pytest.raises(BadParameter) as itself:
        apply(sent, Action.RETURN, {"reason": "非本单位", "suggest_unit_id": 7})
    assert itself.value.details["field"] == "suggest_unit_id" and itself.value.http_status == 422
    for action, params in ((Action.ACCEPT, {}), (Action.TRANSFER, {"unit_id": 8, "reason": "转"})):
        with pytest.raises(UnexpectedParameter) as other:
            apply(sent, action, {**params, "suggest_unit_id": 9})
        assert other.value.details["field"] == "suggest_unit_id"
