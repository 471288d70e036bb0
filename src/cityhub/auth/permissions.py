"""THE permission table: what each role may do. Data scope (which orders) is decided apart, in :mod:`scope`.

A request is checked in this order: authenticated (else 401) → the role holds the permission (else 403, decided
without looking at the order, so it reveals nothing) → the order is in the caller's data scope (else 404, the
same answer as for a missing order).
"""

from __future__ import annotations

from collections.abc import Iterable

from cityhub.org.models import Role
from cityhub.workorders.lifecycle import Action

ORDER_CREATE = "order:create"
ORDER_READ = "order:read"
ORDER_READ_ALL = "order:read_all"  # data scope is the whole district, whatever the unit
TOKENS = "auth:tokens"  # create and revoke one's own API tokens
USERS_MANAGE = "users:manage"
UNITS_MANAGE = "units:manage"
KB_MANAGE = "kb:manage"  # write knowledge-base entries (秒回 answers)
REPLY_REVIEW = "reply:review"  # the supervisor's list of weak replies
ORG_READ = "org:read"  # read the unit tree and the staff directory (citizens do not)
CATEGORIES_MANAGE = "categories:manage"  # add, rename, move and deactivate category nodes
SLA_MANAGE = "sla:manage"  # edit the time-limit rules table
CALENDAR_MANAGE = "calendar:manage"  # enter holidays and make-up workdays
API_CLIENTS_MANAGE = "apiclients:manage"  # the data-sharing API's clients, keys, scopes, limits and call statistics
# The webhook subscriptions (推送订阅) and their outbox: add, remove, see failed deliveries and retry them
# (administrators).
WEBHOOKS_MANAGE = "webhooks:manage"
SENSORS_MANAGE = "sensors:manage"  # register sensors, write alarm rules, push readings as a person
ALARMS_READ = "alarms:read"  # see sensors, readings and alarms (监测预警) in one's data scope
ALARMS_HANDLE = "alarms:handle"  # acknowledge and clear alarms in one's data scope
# The city brain's workbench (城市大脑: risk findings, hot topics, the correlation graph) for the roles whose work
# is to act on what it finds: leaders and supervisors (督办), and dispatchers, who route the district's orders and
# see recurring problems first. The data itself is read within one's scope, as order:read reads it.
BRAIN_READ = "brain:read"
# The configuration log (操作日志, cityhub.auditlog): who changed sensors, alarm and routing rules, from what to what
# (administrators).
LOG_READ = "log:read"
# Moderate the files attached to an order in one's scope: remove any file or link (a wrong photo, a document with
# someone's ID card), and publish a photo for Open311's media_url or withdraw it (公开 / 撤回公开,
# workorders.files.publish): supervisors and administrators. Whoever attached a file may remove their own without it
# (workorders.files.remove), but not publish it.
ATTACHMENTS_REMOVE = "attachments:remove"
# A citizen adds photos and documents to their own appeal while it is open (补充材料); staff attach with the
# permission to comment (:func:`may_attach`).
APPEAL_FILES = "appeal:files"
# Bring a spreadsheet of appeals in at once (批量导入: a mailbox's export, another hotline's list) through the web UI or
# the API — those who record or route appeals; the command line (`cityhub import orders`) is the operator of the
# installation's.
ORDERS_IMPORT = "orders:import"
# Teach the district's address library (地名别名) while correcting an order's place: the place mentions the gazetteer
# did not know, added as aliases of the street or community chosen — only one the dispatcher's unit routes
# (``dispatch.service.correct_place``). Keeping the library otherwise is ``units:manage``'s (administrators).
ALIASES_FROM_ORDER = "aliases:add_from_order"
# 受理并并入: register an appeal as the same problem as an open order the intake desk lists as its duplicate — the
# caller ringing again about it — and merge it there at once, before it is sent anywhere (``intake.service.submit``'s
# ``merge_into``): whoever records appeals at the hotline's desk. Merging orders otherwise is the merge action's.
INTAKE_MERGE = "order:merge_at_intake"
# 无效来电: record a call that became no appeal (hung up, silent, harassment, wrong number, transferred …) from the
# intake desk, so that the day's statistics count it (``intake.invalid_calls``): whoever takes calls at that desk.
INVALID_CALL_RECORD = "intake:invalid_call"
# 考核核减: a unit's staff ask that an order their unit handled not count against it in the assessment (the fault was
# not its own: 诉求不合理, 无法联系 …), for their own unit; the centre's supervisors (督办/考核) approve or reject the
# requests of the units of their scope (``analytics.exemptions``). Administrators do both.
EXEMPTION_REQUEST = "assessment:exemption_request"
EXEMPTION_DECIDE = "assessment:exemption_decide"


def act(action: Action | str) -> str:
    """The permission to apply one life-cycle action."""
    return f"order:act:{Action(action).value}"


def _acts(*actions: Action) -> set[str]:
    return {act(a) for a in actions}


ALL_PERMISSIONS: frozenset[str] = frozenset(
    {ORDER_CREATE, ORDER_READ, ORDER_READ_ALL, TOKENS, USERS_MANAGE, UNITS_MANAGE, KB_MANAGE, REPLY_REVIEW}
    | {ORG_READ, CATEGORIES_MANAGE, SLA_MANAGE, CALENDAR_MANAGE, API_CLIENTS_MANAGE}
    | {SENSORS_MANAGE, ALARMS_READ, ALARMS_HANDLE, BRAIN_READ, LOG_READ, ATTACHMENTS_REMOVE, APPEAL_FILES}
    | {ORDERS_IMPORT, WEBHOOKS_MANAGE, ALIASES_FROM_ORDER, INTAKE_MERGE, EXEMPTION_REQUEST, EXEMPTION_DECIDE}
    | {INVALID_CALL_RECORD}
    | {act(a) for a in Action if a != Action.CREATE}
)

# 承办人: works the order of its unit, or its part of a co-handled one (a 网格员 too); on an order its unit leads it
# also invites an assisting unit (申请协办, add_assist) and, a street's, passes the order down to one of the street's
# communities (下派, transfer) — ``workorders.service.STAFF_ROUTING`` holds them to that.
_HANDLER: frozenset[str] = frozenset(
    {ORDER_READ, ORG_READ, TOKENS, ALARMS_READ, ALARMS_HANDLE, EXEMPTION_REQUEST}
    | _acts(
        Action.ADD_ASSIST,
        Action.TRANSFER,
        Action.ACCEPT,
        Action.RETURN,
        Action.START,
        Action.REPLY,
        Action.REQUEST_EXTENSION,
        Action.SUSPEND,
        Action.RESUME,
        Action.ASSIST_ACCEPT,
        Action.ASSIST_REPLY,
        Action.ASSIST_RETURN,
        Action.COMMENT,
    )
)

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    # 话务员: records appeals (one by one, or a spreadsheet of them), answers consultations on the spot (秒回), splits
    # one that raises several problems (拆单) before it is sent out, joins a repeat call to the open order it repeats
    # (受理并并入), reads in scope.
    Role.OPERATOR: frozenset(
        {ORDER_CREATE, ORDERS_IMPORT, ORDER_READ, ORG_READ, TOKENS, KB_MANAGE, ALARMS_READ, INTAKE_MERGE}
        | {INVALID_CALL_RECORD}
        | _acts(Action.INSTANT_ANSWER, Action.SPLIT, Action.COMMENT)
    ),
    # 派单员: sends orders out and deals with what comes back (re-dispatch of returned orders is `dispatch`).
    Role.DISPATCHER: frozenset(
        {ORDER_CREATE, ORDERS_IMPORT, ORDER_READ, ORG_READ, TOKENS, ALARMS_READ, ALARMS_HANDLE, BRAIN_READ}
        | {ALIASES_FROM_ORDER, INTAKE_MERGE, INVALID_CALL_RECORD}
        | _acts(
            Action.DISPATCH,
            Action.TRANSFER,
            Action.ADD_ASSIST,
            Action.MERGE,
            Action.SPLIT,
            Action.CANCEL,
            Action.REOPEN,
            Action.COMMENT,
        )
    ),
    Role.HANDLER: _HANDLER,
    # 网格员: a handler of their unit who also reports what they find on patrol (channel grid, from the intake form).
    Role.INSPECTOR: _HANDLER | {ORDER_CREATE},
    # 督办员: time limits, extensions, reply audit, callback and closing.
    Role.SUPERVISOR: frozenset(
        {ORDER_READ, ORG_READ, TOKENS, KB_MANAGE, REPLY_REVIEW, ALARMS_READ, ALARMS_HANDLE, BRAIN_READ}
        | {ATTACHMENTS_REMOVE, EXEMPTION_DECIDE}
        | _acts(
            Action.URGE,
            Action.ESCALATE,
            Action.APPROVE_EXTENSION,
            Action.REJECT_EXTENSION,
            Action.REJECT_REPLY,
            Action.CALLBACK,
            Action.CLOSE,
            Action.REOPEN,
            Action.COMMENT,
        )
    ),
    # 领导: reads everything, assigns key issues (交办), urges and escalates.
    Role.LEADER: frozenset(
        {ORDER_READ, ORDER_READ_ALL, ORG_READ, TOKENS, REPLY_REVIEW, ALARMS_READ, BRAIN_READ}
        | _acts(Action.ASSIGN, Action.URGE, Action.ESCALATE, Action.COMMENT)
    ),
    Role.ADMIN: ALL_PERMISSIONS,
    # 市民: submits and follows their own appeals, adds files to them while open, rates the answer (the callback of
    # a replied order).
    Role.CITIZEN: frozenset({ORDER_CREATE, ORDER_READ, TOKENS, APPEAL_FILES} | _acts(Action.CALLBACK)),
}

# Roles that work orders as their unit's staff: the lead unit's steps are theirs only on orders their unit holds,
# and they see citizens' personal data only there.
UNIT_STAFF_ROLES = frozenset({Role.HANDLER, Role.INSPECTOR})

# Roles that see citizens' names and phone numbers unmasked on every order in their scope. A handler (or 网格员) sees
# them only on orders its own unit leads (it has to call the citizen); a citizen on their own orders.
UNMASKED_ROLES = frozenset({Role.OPERATOR, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN})


def allows(role: Role, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def may_attach(role: Role) -> bool:
    """Whether the role attaches files to the orders it sees: whoever may comment on them; a citizen to their own
    appeals, while open (:func:`cityhub.auth.scope.check_attach`)."""
    return allows(role, act(Action.COMMENT)) or allows(role, APPEAL_FILES)


def permissions_of(role: Role) -> list[str]:
    return sorted(ROLE_PERMISSIONS.get(role, frozenset()))


def roles_with(permission: str) -> Iterable[Role]:
    return [role for role, perms in ROLE_PERMISSIONS.items() if permission in perms]
