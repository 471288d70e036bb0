"""HTTP routes of the order hub: intake, search, life-cycle actions, audit trail.

Every route needs an authenticated caller; the role must hold the route's permission (403) and the order must
be in the caller's data scope (404, the same answer as a missing order). See :mod:`cityhub.auth.permissions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile, status
from fastapi.responses import FileResponse
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from cityhub.api.deps import CurrentPrincipal, DbSession, ListPage, ListPaging, Paging, model_response, require
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import (
    check_attach,
    check_may_act,
    may_read,
    order_in_scope,
    own_units,
    readable,
    reading_clause,
    scope_of,
    search_clause,
    sees_personal_data,
    sees_personal_data_of,
)
from cityhub.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cityhub.intake.bulk import IMPORT_ACTOR
from cityhub.intake.dedupe import DedupeRead
from cityhub.intake.enterprise import Need
from cityhub.intake.service import filed_by_citizen, filed_by_inspector, linked_citizen, submit
from cityhub.org.models import Role
from cityhub.org.places import PlaceSource
from cityhub.timerange import RequestTime
from cityhub.workorders import feeds, files, service
from cityhub.workorders.lifecycle import (
    ROUTING_STEPS,
    Action,
    State,
    actions_for_unit,
    awaited_assists,
)
from cityhub.workorders.models import (
    AppealType,
    Channel,
    ImportBatch,
    Order,
    OrderAssist,
    OrderEvent,
    SlaStatus,
    Urgency,
)
from cityhub.workorders.schemas import (
    ACCEPT_DUE_SOON_DESCRIPTION,
    ASSISTING_DESCRIPTION,
    CITIZEN_STEPS,
    CURSOR_DESCRIPTION,
    ENTERPRISE_NEED_DESCRIPTION,
    ESCALATED_DESCRIPTION,
    EVER_OVERDUE_DESCRIPTION,
    FEED_DESCRIPTION,
    HELD_DESCRIPTION,
    IMPORT_BATCH_DESCRIPTION,
    LEADER_ASSIGNED_DESCRIPTION,
    LED_DESCRIPTION,
    NO_CITIZEN_DESCRIPTION,
    OVERDUE_DESCRIPTION,
    Q_DESCRIPTION,
    SATISFIED_DESCRIPTION,
    SORT_DESCRIPTION,
    TO_ACCEPT_DESCRIPTION,
    UPDATED_SINCE_DESCRIPTION,
    URGED_DESCRIPTION,
    WITH_ASSIST_DESCRIPTION,
    ActionRequest,
    AttachmentRead,
    BulkUrge,
    BulkUrgeOutcome,
    BulkUrgeRead,
    EventRead,
    ImportBatchRead,
    OrderCreate,
    OrderFilter,
    OrderPage,
    OrderRead,
    OrderSort,
    citizen_trail,
)

router = APIRouter(prefix="/orders", tags=["orders"])

Reader = Annotated[Principal, Depends(require(permissions.ORDER_READ))]
Creator = Annotated[Principal, Depends(require(permissions.ORDER_CREATE))]


def _read(order: Order, principal: Principal) -> OrderRead:
    read = OrderRead.model_validate(order)
    if principal.role == Role.CITIZEN:
        # What staff attached later (photos of the work, internal documents) is theirs: a citizen sees what came
        # with the appeal.
        read.attachments = [a for a in read.attachments if a.uploaded_by is None]
        read = read.as_citizen_reads()
    return read if sees_personal_data(principal, order) else read.masked()


def import_batch_read(db: Session, principal: Principal | None, batch: ImportBatch) -> ImportBatchRead:
    """An import batch as ``principal`` reads it (None: the command line, which reads everything): who imported it
    (None: the command line), and how many orders it created only for a reader who sees every order or imported it
    (the others read those of its orders they may; the count would speak of the rest)."""
    whole = principal is None or batch.actor_id == principal.user_id or scope_of(db, principal).everything
    return ImportBatchRead(
        id=batch.id,
        file_name=batch.file_name,
        created_at=batch.created_at,
        actor_name=None if batch.actor_id is None and batch.actor_name == IMPORT_ACTOR else batch.actor_name,
        imported=batch.imported if whole else None,
    )


def order_import_batch(db: Session, order: Order, principal: Principal | None) -> ImportBatchRead | None:
    """The import ``order`` came from, for the staff reading it — those who may read the order list and narrow it
    to an import, or the command line (``principal`` None); a citizen, whose list has no such criterion, is not told
    who imported their appeal. None for an order received otherwise."""
    if order.import_batch_id is None or (principal is not None and principal.role == Role.CITIZEN):
        return None
    batch = db.get(ImportBatch, order.import_batch_id)
    return import_batch_read(db, principal, batch) if batch is not None else None


# The columns an order list reads: those of OrderRead but its lists (one order's only), and the citizen's account and
# the registrant's for the masking decision.
_ONE_ORDER_ONLY = ("assists", "attachments", "import_batch")
_LIST_COLUMNS = [name for name in OrderRead.model_fields if name not in (*_ONE_ORDER_ONLY, "enterprise")] + [
    "attributes",  # the enterprise that asks (企业呼)
    "citizen_user_id",
    "reported_by_id",
]


def _read_row(row: dict[str, Any], principal: Principal) -> OrderRead:
    read = OrderRead.model_validate(row)
    if principal.role == Role.CITIZEN:
        read = read.as_citizen_reads()
    if sees_personal_data_of(
        principal,
        citizen_user_id=row["citizen_user_id"],
        lead_unit_id=row["lead_unit_id"],
        channel=row["channel"],
        street_id=row["street_id"],
        community_id=row["community_id"],
        reported_by_id=row["reported_by_id"],
        citizen_phone=row["citizen_phone"],
    ):
        return read
    return read.masked()


def _order(db: DbSession, order_id: int, principal: Principal) -> Order:
    """The order if it exists and is in the caller's scope; otherwise the same 404 either way."""
    order = service.get_order(db, order_id=order_id)
    if order is None or not may_read(db, principal, order_id):
        raise NotFound(f"order {order_id} not found")
    return order


MINE_DESCRIPTION = (
    "only the orders the caller registered (我提交的): a grid inspector's reports, an operator's calls, wherever they "
    "are and whoever holds them now — read by their registrant beyond their data scope"
)
ASSIGNED_MINE_DESCRIPTION = (
    "only the orders the caller assigned (交办) — an `assign` of theirs in the trail, whoever assigned them since: a "
    "leader's own, as the page's 交办已答复 lists them (with the answered states and `sort=answered`)"
)
REPLAY_HEADER = "X-Cityhub-Replay"
REPLAY_DIFFERS_HEADER = "X-Cityhub-Replay-Differs"
# What a replay may say otherwise than the order it repeats without being another message (title and content are):
# the fields a client may have corrected before re-sending, which a replay does not apply.
_REPLAY_FIELDS = ("citizen_name", "citizen_phone", "address", "lat", "lng", "urgency", "category_id")


def replay_differences(order: Order, sent: OrderCreate) -> list[str]:
    """The fields ``sent`` gives (:data:`_REPLAY_FIELDS`, those the request named) whose value is not the order's: a
    replay changes nothing, so a client that corrected an address or a phone before re-sending learns it was not
    applied (``X-Cityhub-Replay-Differs``) rather than believing it was."""
    return [
        name for name in _REPLAY_FIELDS if name in sent.model_fields_set and getattr(sent, name) != getattr(order, name)
    ]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses={
        200: {
            "model": OrderRead,
            "description": f"A replay: the appeal's (channel, external_id) was received before, saying the same; "
            f"the body is that order as it is now, `{REPLAY_HEADER}: true`; nothing of the replay is applied, and "
            f"`{REPLAY_DIFFERS_HEADER}` names the fields it gave otherwise than the order holds them (e.g. `address, "
            f"citizen_phone`)",
            "headers": {
                REPLAY_HEADER: {"description": "`true`: nothing was created", "schema": {"type": "string"}},
                REPLAY_DIFFERS_HEADER: {
                    "description": "the fields of the replay not applied because the order holds them otherwise "
                    "(absent: none)",
                    "schema": {"type": "string"},
                },
            },
        },
    },
)
def create_order(data: OrderCreate, db: DbSession, principal: Creator) -> Response:
    """Receive one appeal from any channel (idempotent per channel + external_id).

    A new order answers 201. An appeal re-sent under a known (channel, external_id) with the same title and content
    (a retry after a timeout) creates nothing and answers 200 with the same body — that order as it is now — and
    the header ``X-Cityhub-Replay: true``; saying something else, 409 naming the order. Both carry ``Location``, the
    order's address.

    With the background dispatcher on (the default), the order is answered as received; the dispatcher then merges
    it into an earlier duplicate or, with automatic dispatch, decides where it goes, usually within a second
    (``GET`` it again).
    """
    sent = data  # as the client sent it, before intake fills in the citizen's or inspector's own
    if principal.role == Role.CITIZEN:
        data = filed_by_citizen(db, data, principal.user_id)
    elif data.citizen_user_id is not None:
        linked_citizen(db, data)
    if principal.role == Role.INSPECTOR:
        data = filed_by_inspector(db, data, principal.unit_id)
    # The answer is the order alone: similar past cases are not searched for here (GET /orders/{id}/similar), and
    # with the background dispatcher on, duplicates are looked for by it.
    known = service.find_existing(db, data=data)  # one the caller may not read is not named, nor compared
    if known is not None and not order_in_scope(db, scope_of(db, principal), known.id):
        raise Conflict("an appeal with this channel and external_id was received before")
    result = submit(db, data=data, actor=principal.actor, similar=False, defer_duplicates=True, same_message=True)
    db.commit()  # here, in the same worker thread as the writes: the write lock is not held while the answer waits
    answer = model_response(
        _read(result.order, principal), status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    )
    answer.headers["Location"] = f"/api/v1/orders/{result.order.id}"
    if not result.created:
        answer.headers[REPLAY_HEADER] = "true"
        if differs := replay_differences(result.order, sent):
            answer.headers[REPLAY_DIFFERS_HEADER] = ", ".join(differs)
    return answer


@router.get("", response_model=OrderPage)
def list_orders(
    db: DbSession,
    principal: Reader,
    page: Paging,
    state: Annotated[list[State] | None, Query()] = None,
    unit_id: int | None = None,
    street_id: int | None = None,
    community_id: int | None = None,
    category_id: int | None = None,
    channel: Annotated[list[Channel] | None, Query()] = None,
    appeal_type: AppealType | None = None,
    urgency: Urgency | None = None,
    created_from: RequestTime | None = None,
    created_to: RequestTime | None = None,
    overdue: Annotated[bool | None, Query(description=OVERDUE_DESCRIPTION)] = None,
    ever_overdue: Annotated[bool | None, Query(description=EVER_OVERDUE_DESCRIPTION)] = None,
    extension_pending: Annotated[
        bool | None, Query(description="only orders whose extension request waits for a decision (true)")
    ] = None,
    accept_overdue: Annotated[
        bool | None, Query(description="only orders not accepted within the time allowed, 签收超时 (true)")
    ] = None,
    accept_due_soon: Annotated[bool | None, Query(description=ACCEPT_DUE_SOON_DESCRIPTION)] = None,
    escalated: Annotated[bool | None, Query(description=ESCALATED_DESCRIPTION)] = None,
    leader_assigned: Annotated[bool | None, Query(description=LEADER_ASSIGNED_DESCRIPTION)] = None,
    urged: Annotated[bool | None, Query(description=URGED_DESCRIPTION)] = None,
    sla_status: SlaStatus | None = None,
    q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$", description=Q_DESCRIPTION)] = None,
    place_source: Annotated[list[PlaceSource] | None, Query(description="where the place came from")] = None,
    held: Annotated[bool | None, Query(description=HELD_DESCRIPTION)] = None,
    to_accept: Annotated[bool | None, Query(description=TO_ACCEPT_DESCRIPTION)] = None,
    led: Annotated[bool | None, Query(description=LED_DESCRIPTION)] = None,
    assisting: Annotated[bool | None, Query(description=ASSISTING_DESCRIPTION)] = None,
    with_assist: Annotated[bool | None, Query(description=WITH_ASSIST_DESCRIPTION)] = None,
    mine: Annotated[bool | None, Query(description=MINE_DESCRIPTION)] = None,
    assigned_mine: Annotated[bool | None, Query(description=ASSIGNED_MINE_DESCRIPTION)] = None,
    import_batch_id: Annotated[int | None, Query(description=IMPORT_BATCH_DESCRIPTION)] = None,
    enterprise_need: Annotated[list[Need] | None, Query(description=ENTERPRISE_NEED_DESCRIPTION)] = None,
    satisfied: Annotated[bool | None, Query(description=SATISFIED_DESCRIPTION)] = None,
    no_citizen: Annotated[bool | None, Query(description=NO_CITIZEN_DESCRIPTION)] = None,
    count: Annotated[bool, Query(description="also count all matches")] = False,
    # No default in the schema (None is newest): Swagger UI and generated clients send a declared default, and the
    # feed of changes refuses any sort given.
    sort: Annotated[OrderSort | None, Query(description=SORT_DESCRIPTION)] = None,
    updated_since: Annotated[RequestTime | None, Query(description=UPDATED_SINCE_DESCRIPTION)] = None,
    cursor: Annotated[str | None, Query(max_length=200, description=CURSOR_DESCRIPTION)] = None,
    feed: Annotated[Literal["changes"] | None, Query(description=FEED_DESCRIPTION)] = None,
) -> Response:
    """Search and filter orders, newest first (or as ``sort`` says); with ``cursor``, the feed of changes: every
    order changed since a client's last poll, none passed (docs/api.md, *Polling the orders for changes*)."""
    feeds.check_updated_since(updated_since)
    position = feeds.position_of(cursor, feed, offset=page.offset, begins=feeds.CHANGES)
    settled_below = None
    if position is not None:
        _check_feed_position(position, cursor or "", sort=sort, count=count)
        settled_below = feeds.settled_before(db, position)
    # The caller's own units (None: nothing narrows, a unit reading every order or a caller of none), as the page's
    # 只看本单位承办, 待签收, 本单位牵头 and 协办 read them.
    units = own_units(db, principal) if held or to_accept or led or assisting else None
    own = sorted(units) if units is not None else None
    filters = OrderFilter(
        state=state,
        unit_id=unit_id,
        street_id=street_id,
        community_id=community_id,
        category_id=category_id,
        channel=channel,
        appeal_type=appeal_type,
        urgency=urgency,
        created_from=created_from,
        created_to=created_to,
        overdue=overdue,
        ever_overdue=ever_overdue,
        extension_pending=extension_pending,
        accept_overdue=accept_overdue,
        accept_due_soon=accept_due_soon,
        escalated=escalated,
        leader_assigned=leader_assigned,
        urged=urged,
        sla_status=sla_status,
        q=q,
        q_citizen=principal.role in permissions.UNMASKED_ROLES,
        place_source=place_source,
        as_citizen=principal.role == Role.CITIZEN,
        held_by=own if held else None,
        to_accept_by=own if to_accept else None,
        led_by=own if led else None,
        assisting_by=own if assisting else None,
        assisted=with_assist if principal.role != Role.CITIZEN else None,
        reported_by_id=(principal.user_id if principal.user_id is not None else -1) if mine else None,
        assigned_by_id=(principal.user_id if principal.user_id is not None else -1) if assigned_mine else None,
        import_batch_id=import_batch_id,
        updated_since=updated_since,
        enterprise_need=enterprise_need,
        satisfied=satisfied,
        no_citizen=no_citizen,
    )
    if filters.created_from and filters.created_to and filters.created_from > filters.created_to:
        raise ValidationFailed("created_from must be before created_to", details={"field": "created_from"})
    rows, has_more, total = service.search_order_rows(
        db,
        filters=filters,
        columns=_LIST_COLUMNS if position is None else [*_LIST_COLUMNS, "changed_xid"],
        limit=page.limit,
        offset=page.offset,
        count=count,
        scope=search_clause(db, principal, q),
        sort=sort or OrderSort.NEWEST,
        position=position,
    )
    next_cursor = None
    if position is not None:  # the cursor's position moves past the page (the last page: past what it passed over)
        if not rows:
            feeds.refuse_if_ahead(db, position, cursor or "")
        last = (rows[-1]["changed_xid"], rows[-1]["id"]) if rows else None
        next_cursor = feeds.next_cursor(position, last, settled_below=settled_below, has_more=has_more)
    db.commit()  # ends the read transaction in this thread; the session then closes without another one
    items = [_read_row(r, principal) for r in rows]
    page_read = OrderPage(
        items=items, limit=page.limit, offset=page.offset, has_more=has_more, total=total, next_cursor=next_cursor
    )
    return model_response(page_read)


def _check_feed_position(position: feeds.Position, cursor: str, *, sort: OrderSort | None, count: bool) -> None:
    """The order list walks the feed of changes alone (the data-sharing API's feed of new orders can pass an order,
    :mod:`cityhub.workorders.feeds`), in the feed's order, without a count: ValidationFailed naming what does not
    fit."""
    if position[0] != feeds.CHANGES:
        raise ValidationFailed(
            f"cursor {cursor[:40]!r} is a position in the data-sharing API's feed of new orders; the order list walks "
            f"the feed of changes: begin it with cursor={feeds.CURSOR_START}",
            details={"field": "cursor"},
        )
    if sort is not None:
        raise ValidationFailed(
            "sort cannot be combined with cursor: the feed of changes is in the order of the changes",
            details={"field": "sort"},
        )
    if count:
        raise ValidationFailed("count cannot be combined with cursor", details={"field": "count"})


@router.get("/{order_id}", response_model=OrderRead)
def get_order(order_id: int, db: DbSession, principal: Reader) -> OrderRead:
    order = _order(db, order_id, principal)
    read = _read(order, principal)
    read.import_batch = order_import_batch(db, order, principal)
    return read


def citizen_reads(user_id: int | None) -> ColumnElement[bool]:
    """The events of an order's trail its citizen reads (:func:`citizen_trail` shapes them): the steps of their
    progress (``schemas.CITIZEN_STEPS``, as the progress lookup shows them: not the units' internal steps and notes,
    nor a unit's return), and the citizen's own comments. In SQL, so that a page of a citizen's trail is a page of
    what they read."""
    shown = OrderEvent.action.in_(CITIZEN_STEPS)
    if user_id is None:
        return shown
    return or_(shown, and_(OrderEvent.actor_id == user_id, OrderEvent.action == "comment"))


def trail_of(db: Session, order: Order, principal: Principal, page: ListPage | None = None) -> list[EventRead]:
    """The order's audit trail as ``principal`` reads it, oldest first (by id): a citizen's view
    (:func:`citizen_trail`), or for whoever sees the order masked, its written texts and reasons scrubbed; ``page``
    of it, or all. What the API and the order page show."""
    query = service.history_query(order_id=order.id)
    if principal.role == Role.CITIZEN:
        query = query.where(citizen_reads(principal.user_id))
    rows = page.scalars(db, query) if page is not None else db.scalars(query).all()
    events = [EventRead.model_validate(e) for e in rows]
    if principal.role == Role.CITIZEN:
        return citizen_trail(events, user_id=principal.user_id)
    if sees_personal_data(principal, order):
        return events
    known = (order.citizen_name, order.citizen_phone)
    return [e.masked(known=known, citizen_user_id=order.citizen_user_id) for e in events]


@router.get("/{order_id}/events", response_model=list[EventRead])
def order_events(order_id: int, db: DbSession, principal: Reader, page: ListPaging) -> list[EventRead]:
    """The order's audit trail, oldest first, as the caller may read it (:func:`trail_of`); optionally paged."""
    return trail_of(db, _order(db, order_id, principal), principal, page)


def actions_of(db: Session, order: Order, principal: Principal) -> list[Action]:
    """Actions the life cycle allows in the order's current state and the principal's role may take, as their unit
    may (the lead unit's steps only for the unit holding it, the co-handling steps only for a unit that assists at a
    step they apply to, a dispatcher's routing steps only for an order its units hold or none does; an
    administrator is bound to no unit). What the API lists and the order page offers."""
    unit_id = None if principal.role == Role.ADMIN else principal.unit_id
    allowed = [
        a
        for a in actions_for_unit(service.view_of(order), unit_id)
        if permissions.allows(principal.role, permissions.act(a))
    ]
    if principal.role == Role.DISPATCHER and not service.may_route(db, order, principal.actor):
        allowed = [a for a in allowed if a not in ROUTING_STEPS]
    if principal.role in permissions.UNIT_STAFF_ROLES:  # 申请协办 and 下派: on what their unit leads (STAFF_ROUTING)
        allowed = [
            a
            for a in allowed
            if a not in service.STAFF_ROUTING or service.staff_may_route(db, order, principal.unit_id, a)
        ]
    return allowed


def reply_awaits(order: Order, principal: Principal) -> list[OrderAssist]:
    """The assisting units (协办) the caller's 答复 waits for: those that have not answered yet, where the caller would
    be offered the reply once they have (the lead unit's staff, an administrator); else none. :func:`actions_of`
    leaves 答复 out meanwhile (``lifecycle.awaited_assists``)."""
    view = service.view_of(order)
    waiting = awaited_assists(view)
    if not waiting or not permissions.allows(principal.role, permissions.act(Action.REPLY)):
        return []
    unit_id = None if principal.role == Role.ADMIN else principal.unit_id
    if Action.REPLY not in actions_for_unit(replace(view, assists={}), unit_id):
        return []
    return sorted((a for a in order.assists if a.unit_id in waiting), key=lambda a: a.unit_id)


@router.get("/{order_id}/actions", response_model=list[str])
def order_actions(order_id: int, db: DbSession, principal: Reader) -> list[str]:
    """The actions the caller may take on the order now (:func:`actions_of`)."""
    return [a.value for a in actions_of(db, _order(db, order_id, principal), principal)]


@router.post("/{order_id}/actions/{action}", response_model=OrderRead)
def order_action(
    order_id: int,
    action: Action,
    body: ActionRequest,
    db: DbSession,
    principal: CurrentPrincipal,
    if_match: Annotated[
        str | None,
        Header(
            description='the order\'s version, as returned in `version` (`3`, `"3"` or `W/"3"`; `*`: any); '
            "another value is a 422"
        ),
    ] = None,
) -> OrderRead:
    """Apply one life-cycle action (dispatch, accept, return, reply, callback, close, urge, …). ``instant_answer``
    with ``kb_entry_id`` answers from that knowledge entry: refused if it is retired, expired or not yet valid; its
    answer unless ``answer`` is given; its category if the order has none."""
    matched = _version_matched(if_match)  # checked even when the body says the version: a bad header is refused
    version = body.version if body.version is not None else matched
    params = body.params()
    check_may_act(db, principal, order_id=order_id, action=action, params=params)
    from cityhub.knowledge import service as kb  # an instant answer from a knowledge entry is checked there

    if body.start is not None and action != Action.ACCEPT:
        raise ValidationFailed(f"start is taken only by accept, not {action.value}", details={"field": "start"})
    if action == Action.ACCEPT and "kb_entry_id" not in params:
        # 签收, or with start 签收并开始办理 (service.accept, as the pages: each step its own event)
        order = service.accept(
            db,
            order_id=order_id,
            actor=principal.actor,
            start=bool(body.start),
            params=params,
            expected_version=version,
        )
    else:
        order = kb.act_on_order(
            db, order_id=order_id, action=action, actor=principal.actor, params=params, expected_version=version
        )
    db.commit()  # in the worker thread that wrote, as in create_order
    return _read(order, principal)


def _version_matched(if_match: str | None) -> int | None:
    """The order's version an ``If-Match`` header names — ``3``, ``"3"`` or ``W/"3"`` — or None without one (or
    ``*``, any version). Anything else is refused naming the header (it was ignored, and the action taken whatever
    the order had become: the very update the header is sent to prevent)."""
    value = (if_match or "").strip()
    if value in ("", "*"):
        return None
    number = value.removeprefix("W/").strip('"')
    if number.isascii() and number.isdigit() and int(number) >= 1:
        return int(number)
    raise ValidationFailed(
        f'If-Match must be the order\'s version as read in its `version` (e.g. "3"), not {value[:40]!r}',
        details={"field": "If-Match"},
    )


@router.post("/urge", response_model=BulkUrgeRead)
def urge_orders(body: BulkUrge, db: DbSession, principal: CurrentPrincipal) -> BulkUrgeRead:
    """批量催办: urge several orders with one message (``reason``), as the order list's 批量催办 does — each its own
    audited ``urge`` (``service.act_each``), at most 100 at once. Each order is urged or refused on its own — not
    found or outside the caller's scope (the same answer), or in a state that cannot be urged (not yet dispatched,
    answered, closed) — with the reason in its result; the others are urged all the same (200). No order, more than
    100, or a blank ``reason``: 422 naming the field, nothing urged."""
    if not permissions.allows(principal.role, permissions.act(Action.URGE)):
        raise PermissionDenied(
            f"role {principal.role.value} may not {Action.URGE.value}",
            details={"permission": permissions.act(Action.URGE)},
        )
    reason = body.reason.strip()
    if not body.order_ids:
        raise ValidationFailed("order_ids is empty: name at least one order to urge", details={"field": "order_ids"})
    if len(set(body.order_ids)) > service.ACT_EACH_MAX:
        raise ValidationFailed(
            f"at most {service.ACT_EACH_MAX} orders at once (got {len(set(body.order_ids))})",
            details={"field": "order_ids"},
        )
    if not reason:
        raise ValidationFailed(
            "reason is empty: say what the units are urged to do (催办内容)", details={"field": "reason"}
        )
    picks = list(dict.fromkeys(body.order_ids))
    outcomes = service.act_each(
        db,
        [(i, None) for i in picks],
        action=Action.URGE,
        params={"reason": reason},
        actor=principal.actor,
        scope=scope_of(db, principal).clause(),
    )
    db.commit()
    refused = [o.order_id for o in outcomes if o.number and not o.done]  # found in scope: their state now
    states = {i: State(st).value for i, st in db.execute(select(Order.id, Order.state).where(Order.id.in_(refused)))}
    results = [
        BulkUrgeOutcome(
            order_id=o.order_id,
            number=o.number,
            urged=o.done,
            unit_id=o.unit_id if o.done else None,
            state=None if o.done else states.get(o.order_id),
            error=o.message,
        )
        for o in outcomes
    ]
    done = sum(o.done for o in outcomes)
    return BulkUrgeRead(urged=done, refused=len(outcomes) - done, results=results)


@router.post("/{order_id}/attachments", status_code=status.HTTP_201_CREATED, response_model=list[AttachmentRead])
def upload_attachments(
    order_id: int,
    db: DbSession,
    principal: CurrentPrincipal,
    upload: Annotated[
        list[UploadFile],
        File(
            alias="files",
            description="the files (multipart field `files`, repeatable): photos, PDF, office documents, audio, video",
        ),
    ],
    note: Annotated[str | None, Form(description="what the files show (the comment's text in the trail)")] = None,
    version: Annotated[int | None, Form(ge=1, description="the order's version, as returned in `version`")] = None,
) -> list[AttachmentRead]:
    """Attach files to the order (附件上传): the citizen's photos an operator received, a handler's photos of the
    work done, a recording, a scanned letter — kept by cityhub (:mod:`cityhub.workorders.files`), audited as one
    comment naming them. Whoever may comment on the order may attach, and a citizen to their own appeal until it is
    closed (补充材料: 409 after). Each file is checked by its content, not its name; one that is empty, too large or
    of a kind not taken refuses the upload (422 naming it), nothing attached."""
    if not permissions.may_attach(principal.role):
        raise PermissionDenied(
            f"role {principal.role.value} may not attach files", details={"permission": permissions.act(Action.COMMENT)}
        )
    check_attach(principal, _order(db, order_id, principal))
    limit = files.read_limit()
    received = [files.Upload(filename=u.filename, data=u.file.read(limit)) for u in upload]
    rows = files.attach(
        db, order_id=order_id, uploads=received, actor=principal.actor, note=note, expected_version=version
    )
    read = [AttachmentRead.model_validate(r) for r in rows]
    db.commit()  # in the worker thread that wrote, as in create_order
    return read


@router.delete("/{order_id}/attachments/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_attachment(
    order_id: int,
    attachment_id: int,
    db: DbSession,
    principal: Reader,
    reason: Annotated[
        str,
        Query(min_length=1, max_length=files.REMOVE_REASON_MAX_CHARS, description="why it is removed (in the trail)"),
    ],
) -> Response:
    """Remove an attachment (a wrong photo, a document showing someone's ID card): whoever attached the file, or a
    role with ``attachments:remove`` (supervisors, administrators) in whose scope the order is. Audited as one
    comment naming it and the reason; a stored file no other attachment holds leaves the store."""
    _order(db, order_id, principal)
    files.remove(
        db,
        order_id=order_id,
        attachment_id=attachment_id,
        actor=principal.actor,
        reason=reason,
        may_remove_any=permissions.allows(principal.role, permissions.ATTACHMENTS_REMOVE),
    )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


Moderator = Annotated[Principal, Depends(require(permissions.ATTACHMENTS_REMOVE))]


@router.post("/{order_id}/attachments/{attachment_id}/publish", response_model=AttachmentRead)
def publish_attachment(order_id: int, attachment_id: int, db: DbSession, principal: Moderator) -> AttachmentRead:
    """Publish a photo of the order (公开) for Open311: its requests' ``media_url`` then links an upright copy of it
    without EXIF at a public address (``/open311/v2/media/{token}``). Supervisors and administrators
    (``attachments:remove``, who moderate an order's files) in whose scope the order is; the citizen's photos and
    staff's alike, photos only (422 for a link, a document, a recording or a video). Audited in the order's trail;
    publishing a published photo changes nothing."""
    return _moderate(files.publish, db, principal, order_id=order_id, attachment_id=attachment_id)


@router.post("/{order_id}/attachments/{attachment_id}/withdraw", response_model=AttachmentRead)
def withdraw_attachment(order_id: int, attachment_id: int, db: DbSession, principal: Moderator) -> AttachmentRead:
    """Withdraw a published photo (撤回公开): Open311 no longer names it and its public address answers 404. Whoever
    may publish; audited in the order's trail; withdrawing a photo not published changes nothing."""
    return _moderate(files.withdraw, db, principal, order_id=order_id, attachment_id=attachment_id)


def _moderate(
    step: Callable[..., Any], db: Session, principal: Principal, *, order_id: int, attachment_id: int
) -> AttachmentRead:
    """Publish or withdraw (``step``: ``files.publish`` / ``files.withdraw``) a photo of an order the caller reads,
    committed; the photo as it then stands."""
    _order(db, order_id, principal)
    row = step(db, order_id=order_id, attachment_id=attachment_id, actor=principal.actor)
    read = AttachmentRead.model_validate(row)
    db.commit()
    return read


@router.get(
    "/{order_id}/attachments/{attachment_id}/content",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file, with the type read"}},
)
def attachment_content(
    order_id: int,
    attachment_id: int,
    db: DbSession,
    principal: Reader,
    thumb: Annotated[bool, Query(description="a photo's thumbnail (JPEG, 320 px), as the order page shows it")] = False,
    preview: Annotated[
        bool, Query(description="a photo as a JPEG of at most 2,048 px without its EXIF: how a HEIC is viewed")
    ] = False,
) -> FileResponse:
    """A file attached to the order and kept by cityhub, to whoever may read the order: photos, audio and video
    shown in the browser, other kinds downloaded; served as a sandboxed document (no script runs in it). 404 for
    an attachment given by its link (open the link), another order's, or a file missing from the store. With
    ``thumb``, a photo's thumbnail, with ``preview`` a larger copy (both upright JPEGs without EXIF; the file itself
    when it is no photo that decodes). Whoever reads the order masked (a leader, a unit that does not lead it)
    opens a photo as that copy (no GPS position) and no other kind of file (403)."""
    order = _order(db, order_id, principal)
    row, path = files.stored_file(db, order_id=order_id, attachment_id=attachment_id)
    if principal.role == Role.CITIZEN and row.uploaded_by is not None:  # staff's files: left out of their read too
        raise NotFound(f"attachment {attachment_id} of order {order_id} not found")
    small = files.thumbnail(row) if thumb else files.preview(row) if preview else None
    if small is None and not sees_personal_data(principal, order):
        small = files.masked_copy(row)  # a photo without its EXIF, or 403 for a document, recording or video
    return FileResponse(
        small or path,
        media_type="image/jpeg" if small else row.content_type or "application/octet-stream",
        headers={
            "Content-Disposition": files.disposition(row, copy=small is not None),
            "Content-Security-Policy": files.CONTENT_POLICY,
            # Never in a shared cache; in the browser's for a while, per signed-in reader (masked readers get copies).
            "Cache-Control": "private, max-age=600",
            "Vary": "Cookie, Authorization",
        },
    )


@router.get("/{order_id}/similar", response_model=DedupeRead)
def order_similar(order_id: int, db: DbSession, principal: Reader) -> DedupeRead:
    """Possible duplicates (same problem, same place, recent) and the most similar past cases, with how they were
    handled; read-only (auto-merge happens at intake)."""
    from cityhub.intake import dedupe

    order = _order(db, order_id, principal)
    scope = scope_of(db, principal)
    reading = reading_clause(db, principal, scope)
    # Duplicates, to merge, are those of the caller's data scope; the cases and the master, to read, those they may
    # open (their scope, and the orders they registered): the cases chosen among those.
    read = DedupeRead.of(dedupe.check(db, order=order, shown_to=reading), reader=principal)
    read.duplicates = [d for d in read.duplicates if order_in_scope(db, scope, d.order_id)]
    if read.master_id is not None and not readable(db, reading, read.master_id):
        read.master_id = read.master_number = None
    return read
