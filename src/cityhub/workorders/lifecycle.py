"""The order life cycle as a pure transition table with guards (no I/O, no database).

The service layer builds an :class:`OrderView` of an order, calls :func:`apply` with an action and its
parameters and gets back an :class:`Outcome`: the next state, the field changes and the effect on the time
limit. It then writes the changes and one audit event. Anything the table does not allow raises
:class:`~cityhub.errors.InvalidTransition` naming the state and the action.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from cityhub.errors import BadParameter, InvalidTransition, MissingParameter, UnexpectedParameter


class State(enum.StrEnum):
    RECEIVED = "received"  # 已受理, waiting for dispatch
    DISPATCHED = "dispatched"  # 已派单, waiting for the unit to accept
    RETURNED = "returned"  # 已退单, back with the dispatcher
    ACCEPTED = "accepted"  # 已签收
    IN_PROGRESS = "in_progress"  # 办理中
    SUSPENDED = "suspended"  # 挂起, waiting for the citizen; time limit paused
    REPLIED = "replied"  # 已答复, waiting for the callback
    CALLED_BACK = "called_back"  # 已回访
    CLOSED_RESOLVED = "closed_resolved"  # 办结-已解决
    CLOSED_UNRESOLVED = "closed_unresolved"  # 办结-未解决
    MERGED = "merged"  # merged into a master order
    CANCELLED = "cancelled"  # 作废

    def as_citizen_reads(self) -> State:
        """The state as the citizen who appealed is told it: a unit's return (已退单) is between the units — the order
        waits to be dispatched again, as one just received (已受理) does; their progress lists no return either
        (``schemas.CITIZEN_STEPS``)."""
        return State.RECEIVED if self is State.RETURNED else self


class Action(enum.StrEnum):
    CREATE = "create"
    INSTANT_ANSWER = "instant_answer"  # 秒回
    DISPATCH = "dispatch"  # 派单
    ACCEPT = "accept"  # 签收
    RETURN = "return"  # 退单
    START = "start"
    TRANSFER = "transfer"  # 转派
    ADD_ASSIST = "add_assist"  # 协办
    ASSIST_ACCEPT = "assist_accept"
    ASSIST_REPLY = "assist_reply"
    ASSIST_RETURN = "assist_return"
    REQUEST_EXTENSION = "request_extension"  # 延期申请
    APPROVE_EXTENSION = "approve_extension"
    REJECT_EXTENSION = "reject_extension"
    URGE = "urge"  # 督办 / 催办
    ESCALATE = "escalate"
    ASSIGN = "assign"  # 交办 (leader assignment)
    SUSPEND = "suspend"
    RESUME = "resume"
    REPLY = "reply"  # 答复
    REJECT_REPLY = "reject_reply"  # supervisor sends a weak reply back
    CALLBACK = "callback"  # 回访
    CLOSE = "close"  # 办结
    REOPEN = "reopen"
    MERGE = "merge"
    SPLIT = "split"  # 拆单: one problem of a many-problem appeal taken out as an order of its own
    CANCEL = "cancel"
    COMMENT = "comment"


class SlaEffect(enum.StrEnum):
    """What an action does to the time limit; the service turns this into deadlines."""

    START = "start"  # (re)start accept + finish clocks from now
    ACCEPTED = "accepted"  # accept clock met
    PAUSE = "pause"
    RESUME = "resume"
    EXTEND = "extend"  # add approved working days
    TIGHTEN = "tighten"  # urgency raised: no deadline later than the new urgency's terms from now
    STOP = "stop"  # the unit's work is done (reply / close / cancel)
    # passed down within the holding unit's own area (a street's 下派 to its community): a new accept clock from now,
    # the finish deadline kept — the street's time limit is not started again by handing the order on
    HANDOVER = "handover"


class AssistStatus(enum.StrEnum):
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    RETURNED = "returned"


OPEN_STATES = frozenset(
    {State.RECEIVED, State.DISPATCHED, State.RETURNED, State.ACCEPTED, State.IN_PROGRESS, State.SUSPENDED}
)
TERMINAL_STATES = frozenset({State.CLOSED_RESOLVED, State.CLOSED_UNRESOLVED, State.MERGED, State.CANCELLED})
# 已办结: closed, resolved or not.
CLOSED_STATES = frozenset({State.CLOSED_RESOLVED, State.CLOSED_UNRESOLVED})
# Orders received that are not a problem of their own: a duplicate merged into another order (重复件) and a call
# cancelled as invalid (作废). 受理工单 counts them (each was a call, a message); 有效工单 does not.
NOT_A_PROBLEM_OF_ITS_OWN = (State.MERGED, State.CANCELLED)
# States in which the order waits to be dispatched (the dispatcher's queue): new, or returned by the unit it was sent
# to (退单). No time limit runs: one an earlier dispatch set stopped at the return, and the next dispatch starts anew.
AWAITING_DISPATCH = (State.RECEIVED, State.RETURNED)
# States in which a unit holds the order and its time limit runs.
HANDLING_STATES = frozenset({State.DISPATCHED, State.ACCEPTED, State.IN_PROGRESS, State.SUSPENDED})
WORKING_STATES = frozenset({State.ACCEPTED, State.IN_PROGRESS})
# States in which the order's reply stands (答复 given, not sent back nor reopened): when it was given is the answer
# measured against the time limit.
ANSWERED_STATES = frozenset({State.REPLIED, State.CALLED_BACK, State.CLOSED_RESOLVED, State.CLOSED_UNRESOLVED})


@dataclass(frozen=True)
class OrderView:
    """The facts about an order that the guards need."""

    state: State
    lead_unit_id: int | None = None
    suspended_from: State | None = None
    extension_pending: bool = False
    satisfied: bool | None = None
    assists: Mapping[int, AssistStatus] = field(default_factory=dict)
    order_id: int | None = None
    consultation: bool = False  # a consultation (咨询): the only appeal answered instantly (秒回)
    urgency: str | None = None  # normal, urgent (紧急), critical (特急)
    extension_days: float | None = None  # the working days the pending extension request asks for
    # No citizen to call back: a sensor's or a camera's order (``MACHINE_CHANNELS``) naming nobody. Once replied it
    # is closed (办结) without the callback step and without a reason for skipping it.
    no_citizen: bool = False


@dataclass(frozen=True)
class Outcome:
    action: Action
    from_state: State | None
    to_state: State
    changes: dict[str, Any]
    sla: SlaEffect | None
    payload: dict[str, Any]

    @property
    def state_changed(self) -> bool:
        return self.from_state != self.to_state


Params = Mapping[str, Any]
Guard = Callable[[OrderView, Params], str | None]  # returns the reason it refuses, or None
Target = State | Callable[[OrderView, Params], State] | None  # None: stays in its state


@dataclass(frozen=True)
class Rule:
    sources: frozenset[State]
    target: Target
    required: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()
    sla: SlaEffect | None = None


def _s(*states: State) -> frozenset[State]:
    return frozenset(states)


# --- guards -----------------------------------------------------------------------------------------------


# 退单's optional 建议改派至: the unit the returning unit thinks the order belongs to, a word to the dispatcher kept in
# the event's payload (the order goes back to the dispatcher's queue all the same; nothing is sent there).
SUGGEST_UNIT = "suggest_unit_id"
# A dispatch's payload key: the order went back to the unit whose 退单 put it in the queue — which a person may do only
# saying why (the refusal's message below, read by the pages); the unit reads the reason when it signs for it again.
BACK_TO_RETURNER = "back_to_returner"
BACK_REASON_NEEDED = "dispatched back to the unit that returned it: say why (reason)"
# The optional parameters only some actions take: any other action given one is refused (``UnexpectedParameter``).
# 交办's optional 限期办结: the local day (ISO ``YYYY-MM-DD``) by which the leader asks the order done, stored on the
# order (``assign_deadline``) and in the event's payload; the statutory time limit is not moved by it.
ASSIGN_DEADLINE = "deadline"
OPTIONAL_ONLY: dict[str, frozenset[Action]] = {
    SUGGEST_UNIT: frozenset({Action.RETURN}),
    ASSIGN_DEADLINE: frozenset({Action.ASSIGN}),
}


def deadline_day(value: Any) -> date | None:
    """交办's 限期办结 as a day: a ``date`` or an ISO day's text; None for anything else (refused by the guard)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def deadline_passed(day: date | None, state: State, today: date) -> bool:
    """Whether 交办's 限期办结 ``day`` has passed (逾期) on ``today`` (the district's) with the order in ``state`` still
    open: the day is over."""
    return day is not None and state in OPEN_STATES and day < today


def _deadline_is_a_day(_view: OrderView, params: Params) -> str | None:
    if _missing(params.get(ASSIGN_DEADLINE)) or deadline_day(params[ASSIGN_DEADLINE]) is not None:
        return None
    return "deadline must be a day, YYYY-MM-DD"


def _other_unit(view: OrderView, params: Params) -> str | None:
    if params.get("unit_id") == view.lead_unit_id:
        return "the order is already with this unit"
    return None


def _not_the_returning_unit(view: OrderView, params: Params) -> str | None:
    if params.get(SUGGEST_UNIT) is not None and params.get(SUGGEST_UNIT) == view.lead_unit_id:
        return "the returning unit cannot suggest itself"
    return None


def _no_pending_extension(view: OrderView, _params: Params) -> str | None:
    return "an extension request is already pending" if view.extension_pending else None


def _pending_extension(view: OrderView, _params: Params) -> str | None:
    return None if view.extension_pending else "no extension request is pending"


# The most working days one extension request may ask for; a longer delay takes another request, approved again.
MAX_EXTENSION_DAYS = 30


def _positive_days(_view: OrderView, params: Params) -> str | None:
    days = params.get("days")
    if not isinstance(days, int | float) or isinstance(days, bool) or not math.isfinite(days) or days <= 0:
        return "days must be a positive number"  # NaN compares false with everything: refused here by name
    if days > MAX_EXTENSION_DAYS:
        return f"days must be at most {MAX_EXTENSION_DAYS}"
    return None


# 批准延期 grants the days asked for, or fewer (``days``): never more than the request asked.
def _granted_days(view: OrderView, params: Params) -> str | None:
    if params.get("days") is None:
        return None
    if problem := _positive_days(view, params):
        return problem
    asked = view.extension_days
    if asked is not None and params["days"] > asked:
        return f"days must be at most the {asked:g} asked for"
    return None


def awaited_assists(view: OrderView) -> list[int]:
    """The assisting units (协办) whose answer the lead unit's reply waits for (sent or accepted, not yet answered
    nor returned), by id."""
    return sorted(u for u, s in view.assists.items() if s in (AssistStatus.DISPATCHED, AssistStatus.ACCEPTED))


def _assists_done(view: OrderView, _params: Params) -> str | None:
    waiting = awaited_assists(view)
    if waiting:
        return f"assisting units {waiting} have not replied yet"
    return None


def _new_assist(view: OrderView, params: Params) -> str | None:
    unit_id: Any = params.get("unit_id")
    if unit_id == view.lead_unit_id:
        return "the lead unit cannot assist itself"
    if unit_id in view.assists and view.assists[unit_id] in (AssistStatus.DISPATCHED, AssistStatus.ACCEPTED):
        return "this unit is already assisting"
    return None


def _assist_in(*statuses: AssistStatus) -> Guard:
    def guard(view: OrderView, params: Params) -> str | None:
        status = view.assists.get(params.get("unit_id"))  # type: ignore[arg-type]
        if status not in statuses:
            return f"assisting unit {params.get('unit_id')} is {status or 'not assisting'}"
        return None

    return guard


def _satisfied_is_bool(_view: OrderView, params: Params) -> str | None:
    return None if isinstance(params.get("satisfied"), bool) else "satisfied must be true or false"


def _unsatisfied(view: OrderView, _params: Params) -> str | None:
    return None if view.satisfied is False else "only an order with an unsatisfied callback can be reopened"


def _consultation(view: OrderView, _params: Params) -> str | None:
    return None if view.consultation else "only consultations are answered instantly"


# Urgencies from the lowest; an escalation may raise an order's urgency, never lower it.
URGENCY_RANK = ("normal", "urgent", "critical")


def _raises_urgency(view: OrderView, params: Params) -> str | None:
    wanted = params.get("urgency")
    if wanted is None:
        return None
    if wanted not in URGENCY_RANK:
        return f"unknown urgency {wanted!r} (one of {', '.join(URGENCY_RANK)})"
    if view.urgency in URGENCY_RANK and URGENCY_RANK.index(wanted) <= URGENCY_RANK.index(view.urgency):
        return f"an escalation raises the urgency: the order is already {view.urgency}"
    return None


def _not_self(view: OrderView, params: Params) -> str | None:
    if view.order_id is not None and params.get("master_id") == view.order_id:
        return "an order cannot be merged into itself"
    return None


# 办结 of a replied order without a callback says whether the matter was resolved and why no callback was made —
# but for an order with no citizen to call back (``OrderView.no_citizen``): its reply is the answer, resolved unless
# ``resolved=false`` says otherwise.
CLOSE_WITHOUT_CALLBACK_NEEDS = ("resolved", "reason")


def _skips_callback(view: OrderView) -> bool:
    """Whether 办结 of the order as it stands skips a callback it could have had (a replied order with a citizen)."""
    return view.state == State.REPLIED and not view.no_citizen


def _reason_for_close_without_callback(view: OrderView, params: Params) -> str | None:
    if _skips_callback(view) and _missing(params.get("reason")):
        return "closing without a callback needs a reason"
    if _skips_callback(view) and not isinstance(params.get("resolved"), bool):
        return "closing without a callback needs resolved=true|false"
    return None


# --- targets ----------------------------------------------------------------------------------------------


def _resume_target(view: OrderView, _params: Params) -> State:
    return view.suspended_from or State.IN_PROGRESS


def _close_target(view: OrderView, params: Params) -> State:
    resolved = params.get("resolved")
    if not isinstance(resolved, bool):
        resolved = view.no_citizen if view.state == State.REPLIED else bool(view.satisfied)
    return State.CLOSED_RESOLVED if resolved else State.CLOSED_UNRESOLVED


def _assign_target(view: OrderView, params: Params) -> State:
    if view.state in (State.RECEIVED, State.RETURNED) or params.get("unit_id") not in (
        None,
        view.lead_unit_id,
    ):
        return State.DISPATCHED
    return view.state


_OPEN_NOT_RECEIVED = OPEN_STATES - {State.RECEIVED}
_ACTIVE = _s(State.DISPATCHED, State.ACCEPTED, State.IN_PROGRESS, State.SUSPENDED)

# The guards that judge a value the action was given, by the field: their refusal is the value's (422), not the
# order's state's (409).
PARAMETER_GUARDS: dict[Guard, str] = {
    _positive_days: "days",
    _granted_days: "days",
    _other_unit: "unit_id",  # 转派 to the unit holding it
    _new_assist: "unit_id",  # 增加协办 of the lead, or of a unit assisting already
    _satisfied_is_bool: "satisfied",
    _not_self: "master_id",  # 合并 into itself
    _not_the_returning_unit: SUGGEST_UNIT,  # 退单 suggesting the unit that returns it
    _deadline_is_a_day: ASSIGN_DEADLINE,  # 交办's 限期办结 that is no day
}


TRANSITIONS: dict[Action, Rule] = {
    Action.INSTANT_ANSWER: Rule(
        _s(State.RECEIVED), State.CLOSED_RESOLVED, ("answer",), (_consultation,), sla=SlaEffect.STOP
    ),
    Action.DISPATCH: Rule(_s(State.RECEIVED, State.RETURNED), State.DISPATCHED, ("unit_id",), sla=SlaEffect.START),
    Action.ACCEPT: Rule(_s(State.DISPATCHED), State.ACCEPTED, sla=SlaEffect.ACCEPTED),
    Action.RETURN: Rule(
        _s(State.DISPATCHED, State.ACCEPTED),
        State.RETURNED,
        ("reason",),
        (_not_the_returning_unit,),
        sla=SlaEffect.STOP,
    ),
    Action.START: Rule(_s(State.ACCEPTED), State.IN_PROGRESS),
    Action.TRANSFER: Rule(
        _s(State.DISPATCHED, State.ACCEPTED, State.IN_PROGRESS),
        State.DISPATCHED,
        ("unit_id", "reason"),
        (_other_unit,),
        sla=SlaEffect.START,
    ),
    Action.ADD_ASSIST: Rule(_ACTIVE, None, ("unit_id",), (_new_assist,)),
    Action.ASSIST_ACCEPT: Rule(_ACTIVE, None, ("unit_id",), (_assist_in(AssistStatus.DISPATCHED),)),
    Action.ASSIST_REPLY: Rule(
        _ACTIVE, None, ("unit_id", "text"), (_assist_in(AssistStatus.DISPATCHED, AssistStatus.ACCEPTED),)
    ),
    Action.ASSIST_RETURN: Rule(
        _ACTIVE, None, ("unit_id", "reason"), (_assist_in(AssistStatus.DISPATCHED, AssistStatus.ACCEPTED),)
    ),
    Action.REQUEST_EXTENSION: Rule(WORKING_STATES, None, ("days", "reason"), (_no_pending_extension, _positive_days)),
    Action.APPROVE_EXTENSION: Rule(
        WORKING_STATES | {State.SUSPENDED}, None, (), (_pending_extension, _granted_days), SlaEffect.EXTEND
    ),
    Action.REJECT_EXTENSION: Rule(WORKING_STATES | {State.SUSPENDED}, None, ("reason",), (_pending_extension,)),
    # 催办: what the supervisor tells the unit (``reason``) is the point of it — an urge without a word says nothing.
    Action.URGE: Rule(_OPEN_NOT_RECEIVED, None, ("reason",)),
    # 升级: one level up, optionally with a higher urgency (a monitoring alarm left unacknowledged).
    Action.ESCALATE: Rule(OPEN_STATES, None, ("reason",), (_raises_urgency,)),
    Action.ASSIGN: Rule(OPEN_STATES, _assign_target, (), (_deadline_is_a_day,), SlaEffect.START),
    Action.SUSPEND: Rule(WORKING_STATES, State.SUSPENDED, ("reason",), sla=SlaEffect.PAUSE),
    Action.RESUME: Rule(_s(State.SUSPENDED), _resume_target, sla=SlaEffect.RESUME),
    Action.REPLY: Rule(WORKING_STATES, State.REPLIED, ("text",), (_assists_done,), SlaEffect.STOP),
    Action.REJECT_REPLY: Rule(_s(State.REPLIED), State.IN_PROGRESS, ("reason",), sla=SlaEffect.RESUME),
    Action.CALLBACK: Rule(_s(State.REPLIED), State.CALLED_BACK, ("satisfied",), (_satisfied_is_bool,)),
    Action.CLOSE: Rule(_s(State.REPLIED, State.CALLED_BACK), _close_target, (), (_reason_for_close_without_callback,)),
    Action.REOPEN: Rule(
        _s(State.CALLED_BACK, State.CLOSED_UNRESOLVED),
        State.DISPATCHED,
        ("reason",),
        (_unsatisfied,),
        SlaEffect.START,
    ),
    Action.MERGE: Rule(OPEN_STATES, State.MERGED, ("master_id",), (_not_self,), SlaEffect.STOP),
    # The order keeps its state and its other problems; the part (``content``) becomes a new order, received now.
    Action.SPLIT: Rule(OPEN_STATES, None, ("content",)),
    Action.CANCEL: Rule(OPEN_STATES, State.CANCELLED, ("reason",), sla=SlaEffect.STOP),
    Action.COMMENT: Rule(frozenset(State), None, ("text",)),
}

# Assign: a leader may also assign without naming a unit only when a unit already holds the order, and then only with
# an instruction (``reason``, 交办意见) — the order stays with its unit.
_ASSIGN_NEEDS_UNIT = _s(State.RECEIVED, State.RETURNED)


def required_params(view: OrderView, action: Action) -> tuple[str, ...]:
    """The parameters ``action`` cannot go without on an order as ``view`` stands, whatever else is given (what its
    form marks required): the table's, a unit for 交办 of an order no unit holds, and 是否解决 and 理由 for 办结
    without a callback (:data:`CLOSE_WITHOUT_CALLBACK_NEEDS`)."""
    needed = TRANSITIONS[action].required
    if action == Action.ASSIGN and view.state in _ASSIGN_NEEDS_UNIT:
        needed += ("unit_id",)
    if action == Action.CLOSE and _skips_callback(view):
        needed += CLOSE_WITHOUT_CALLBACK_NEEDS
    return needed


# The guards that read the order alone, not what is asked of it: an action they refuse is not offered at all
# (批准延期 with no request pending, 申请延期 with one pending, 重办 without an unsatisfied callback, 秒回 for what
# is no consultation, 答复 while assisting units have not answered).
ORDER_GUARDS = frozenset({_pending_extension, _no_pending_extension, _unsatisfied, _consultation, _assists_done})


def _offered(view: OrderView, action: Action) -> bool:
    """Whether ``action``, which the table takes, is offered on the order: not 回访 of an order with nobody to call
    back (``OrderView.no_citizen``, a sensor's or camera's) — the API still takes one (a callback recorded elsewhere),
    but no page or list asks for it; its 办结 needs no callback (:func:`_skips_callback`)."""
    return not (action == Action.CALLBACK and view.no_citizen)


def allowed_actions(view: OrderView) -> list[Action]:
    """Actions whose state precondition holds and whose :data:`ORDER_GUARDS` let them (guards on parameters are
    not evaluated), and that are offered on such an order (:func:`_offered`)."""
    return [
        action
        for action, rule in TRANSITIONS.items()
        if view.state in rule.sources
        and all(guard(view, {}) is None for guard in rule.guards if guard in ORDER_GUARDS)
        and _offered(view, action)
    ]


# The co-handling steps (协办签收, 答复, 退回): an assisting unit's own part.
ASSIST_STEPS = frozenset({Action.ASSIST_ACCEPT, Action.ASSIST_REPLY, Action.ASSIST_RETURN})
# The lead unit's steps (签收, 退单, 办理, 答复, 延期, 挂起, 恢复): a handler takes them only for the unit holding the
# order.
LEAD_STEPS = frozenset(
    {Action.ACCEPT, Action.RETURN, Action.START, Action.REPLY, Action.REQUEST_EXTENSION, Action.SUSPEND, Action.RESUME}
)


# The steps that send an order held by a unit somewhere else (转办, 协办, 合并, 拆单, 作废, 重办): a dispatcher takes
# them only for orders its own units hold (:func:`cityhub.auth.scope.routed_by`).
ROUTING_STEPS = frozenset(
    {Action.TRANSFER, Action.ADD_ASSIST, Action.MERGE, Action.SPLIT, Action.CANCEL, Action.REOPEN}
)


def actions_for_unit(view: OrderView, unit_id: int | None) -> list[Action]:
    """:func:`allowed_actions` as one unit's staff may take them: the lead unit's steps only for the unit holding the
    order, the co-handling steps only where that unit assists and its co-handling is at a step they apply to.
    ``unit_id`` None: no unit's restriction (an administrator)."""
    return [
        a
        for a in allowed_actions(view)
        if (a not in LEAD_STEPS or unit_id is None or unit_id == view.lead_unit_id)
        and (a not in ASSIST_STEPS or all(guard(view, {"unit_id": unit_id}) is None for guard in TRANSITIONS[a].guards))
    ]


# The actions that take a unit (``unit_id``, the unit their event records): where the order goes, or which
# assisting unit answers for its part. Any other action records the unit of whoever takes it.
UNIT_ACTIONS = frozenset(
    {
        Action.DISPATCH,
        Action.TRANSFER,
        Action.ASSIGN,
        Action.REOPEN,
        Action.ADD_ASSIST,
        Action.ASSIST_ACCEPT,
        Action.ASSIST_REPLY,
        Action.ASSIST_RETURN,
    }
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def apply(view: OrderView, action: Action | str, params: Params | None = None) -> Outcome:
    """Check ``action`` against the table and return its outcome, or raise InvalidTransition."""
    params = dict(params or {})
    try:
        action = Action(action)
    except ValueError:
        raise InvalidTransition(state=view.state.value, action=str(action), reason="unknown action") from None
    rule = TRANSITIONS.get(action)
    if rule is None or view.state not in rule.sources:
        raise InvalidTransition(state=view.state.value, action=action.value)
    for name in rule.required:
        if _missing(params.get(name)):
            raise MissingParameter(state=view.state.value, action=action.value, field=name)
    if action == Action.ASSIGN and view.state in _ASSIGN_NEEDS_UNIT and _missing(params.get("unit_id")):
        raise MissingParameter(state=view.state.value, action=action.value, field="unit_id")
    if action == Action.ASSIGN and _missing(params.get("unit_id")) and _missing(params.get("reason")):
        # 交办 naming no unit is the leader's instruction (交办意见) to the unit holding the order: as 催办 without a
        # word, one without an instruction says nothing.
        raise MissingParameter(state=view.state.value, action=action.value, field="reason")
    if action not in UNIT_ACTIONS and not _missing(params.get("unit_id")):
        raise UnexpectedParameter(state=view.state.value, action=action.value, field="unit_id")
    for name, takers in OPTIONAL_ONLY.items():
        if action not in takers and not _missing(params.get(name)):
            raise UnexpectedParameter(state=view.state.value, action=action.value, field=name)
    for guard in rule.guards:
        refusal = guard(view, params)
        if refusal and guard in PARAMETER_GUARDS:
            field = PARAMETER_GUARDS[guard]
            raise BadParameter(state=view.state.value, action=action.value, field=field, reason=refusal)
        if refusal:
            raise InvalidTransition(state=view.state.value, action=action.value, reason=refusal)

    target = rule.target
    to_state = view.state if target is None else target if isinstance(target, State) else target(view, params)
    changes = _changes(view, action, to_state, params)
    sla = rule.sla
    if action == Action.ASSIGN and changes.get("lead_unit_id", view.lead_unit_id) == view.lead_unit_id:
        sla = None  # a leader's instruction on an order its unit already holds keeps the clock
    payload = {k: v for k, v in params.items() if not _missing(v)}
    if "urgency" in changes:
        payload["previous_urgency"] = view.urgency
        sla = SlaEffect.TIGHTEN
    return Outcome(action, view.state, to_state, changes, sla, payload)


def _changes(view: OrderView, action: Action, to_state: State, params: Params) -> dict[str, Any]:
    """Field changes an action implies beyond the state (the service applies them)."""
    changes: dict[str, Any] = {}
    if action in (Action.DISPATCH, Action.TRANSFER) or (action == Action.ASSIGN and params.get("unit_id")):
        changes["lead_unit_id"] = params["unit_id"]
    if action == Action.ASSIGN:
        changes["leader_assigned"] = True
        if (day := deadline_day(params.get(ASSIGN_DEADLINE))) is not None:
            changes["assign_deadline"] = day  # a new day: the sweep's mark of the old one passed goes with it
            changes["assign_overdue_at"] = None
    if action == Action.RETURN:
        changes["lead_unit_id"] = None
        changes["return_count"] = "+1"
    if action == Action.SUSPEND:
        changes["suspended_from"] = view.state
    if action == Action.RESUME:
        changes["suspended_from"] = None
    if action == Action.REQUEST_EXTENSION:
        changes["extension_pending"] = True
    if action in (Action.APPROVE_EXTENSION, Action.REJECT_EXTENSION):
        changes["extension_pending"] = False
    if action == Action.APPROVE_EXTENSION:
        changes["extension_count"] = "+1"
    if action == Action.URGE:
        changes["urge_count"] = "+1"
    if action == Action.ESCALATE:
        changes["escalation_level"] = "+1"
        if params.get("urgency") is not None:
            changes["urgency"] = params["urgency"]
    if action == Action.REPLY:
        changes["reply_text"] = params["text"]
    if action == Action.REJECT_REPLY:
        # 退回答复: the reply sent back no longer stands as the order's answer (its trail entry keeps its text).
        changes["reply_text"] = None
    if action == Action.INSTANT_ANSWER:
        changes["reply_text"] = params["answer"]
        changes["instant_answered"] = True
        changes["resolved"] = True
    if action == Action.CALLBACK:
        changes["satisfied"] = params["satisfied"]
    if action == Action.CLOSE:
        changes["resolved"] = to_state == State.CLOSED_RESOLVED
    if action == Action.REOPEN:
        changes["reopen_count"] = "+1"
        changes["satisfied"] = None
        changes["reply_text"] = None
        if params.get("unit_id"):
            changes["lead_unit_id"] = params["unit_id"]
    if action == Action.MERGE:
        changes["master_order_id"] = params["master_id"]
    lead_changes = "lead_unit_id" in changes and changes["lead_unit_id"] != view.lead_unit_id
    if view.state == State.SUSPENDED and to_state != State.SUSPENDED:
        changes["suspended_from"] = None
    if view.extension_pending and (
        action in (Action.REPLY, Action.RETURN) or lead_changes or to_state in TERMINAL_STATES
    ):
        # A unit that no longer holds the order cannot still be waiting for its extension.
        changes["extension_pending"] = False
    if action in (Action.ADD_ASSIST, Action.ASSIST_ACCEPT, Action.ASSIST_REPLY, Action.ASSIST_RETURN):
        status = {
            Action.ADD_ASSIST: AssistStatus.DISPATCHED,
            Action.ASSIST_ACCEPT: AssistStatus.ACCEPTED,
            Action.ASSIST_REPLY: AssistStatus.REPLIED,
            Action.ASSIST_RETURN: AssistStatus.RETURNED,
        }[action]
        changes["assist"] = {"unit_id": params["unit_id"], "status": status}
    return changes


def evolve(view: OrderView, outcome: Outcome) -> OrderView:
    """The view after an outcome is applied (used by tests and simulations without a database)."""
    assists = dict(view.assists)
    if "assist" in outcome.changes:
        assists[outcome.changes["assist"]["unit_id"]] = outcome.changes["assist"]["status"]
    c = outcome.changes
    return replace(
        view,
        state=outcome.to_state,
        lead_unit_id=c.get("lead_unit_id", view.lead_unit_id),
        suspended_from=c.get("suspended_from", view.suspended_from),
        extension_pending=c.get("extension_pending", view.extension_pending),
        satisfied=c.get("satisfied", view.satisfied),
        assists=assists,
    )
