"""HTTP routes of the knowledge base (/kb), instant answers and reply-quality checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from cityhub.api.deps import CurrentActor, CurrentPrincipal, DbSession, Paging, get_principal, require
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import order_in_scope, scope_of, shown_text
from cityhub.errors import NotFound
from cityhub.knowledge import service
from cityhub.knowledge.models import ReplyCheck
from cityhub.knowledge.schemas import (
    EntryCreate,
    EntryPage,
    EntryRead,
    EntryUpdate,
    InstantAnswerRequest,
    InstantAnswerResult,
    ReplyQualityRead,
    SuggestionRead,
    SuggestRequest,
    WeakReplyPage,
    WeakReplyRead,
)
from cityhub.org.models import Role
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.schemas import OrderRead

# Every route needs an authenticated caller; writing entries needs kb:manage, the weak-reply list reply:review.
router = APIRouter(prefix="/kb", tags=["knowledge base"], dependencies=[Depends(get_principal)])
orders_router = APIRouter(prefix="/orders", tags=["orders"], dependencies=[Depends(get_principal)])


def _suggestions(items: list[service.Suggestion]) -> list[SuggestionRead]:
    return [SuggestionRead(entry=EntryRead.model_validate(s.entry), score=s.score, why=s.why) for s in items]


def _public_only(principal: Principal) -> bool:
    """A citizen reads the entries fit for the public alone (``public``), as on the appeal form: the others are the
    staff's — an entry seeded from a reply to one citizen names people and places."""
    return principal.role == Role.CITIZEN


@router.post("/suggest", response_model=list[SuggestionRead])
def suggest(body: SuggestRequest, db: DbSession, principal: CurrentPrincipal) -> list[SuggestionRead]:
    """Knowledge entries that answer this text, best first (only active, currently valid ones; for a citizen, only
    public ones)."""
    found = service.suggest(
        db, text=body.text, category_id=body.category_id, limit=body.limit, public_only=_public_only(principal)
    )
    return _suggestions(found)


@router.post(
    "/instant-answer",
    status_code=status.HTTP_201_CREATED,
    response_model=InstantAnswerResult,
    dependencies=[Depends(require(permissions.ORDER_CREATE)), Depends(require(permissions.act("instant_answer")))],
)
def instant_answer(body: InstantAnswerRequest, db: DbSession, actor: CurrentActor) -> InstantAnswerResult:
    """Receive a consultation and close it as answered instantly from a knowledge entry (秒回)."""
    order = service.answer_instantly(db, data=body.order, entry_id=body.entry_id, answer=body.answer, actor=actor)
    return InstantAnswerResult(order=OrderRead.model_validate(order).masked(), entry_id=body.entry_id)


def _keeps_kb(principal: Principal) -> bool:
    """Deactivated entries are the knowledge keepers' own business: only kb:manage sees them."""
    return permissions.allows(principal.role, permissions.KB_MANAGE)


@router.get("/entries", response_model=EntryPage)
def list_entries(
    db: DbSession,
    page: Paging,
    principal: CurrentPrincipal,
    active: bool | None = True,
    category_id: int | None = None,
    q: Annotated[
        str | None, Query(max_length=100, description="words separated by spaces, each in the question or answer")
    ] = None,
) -> EntryPage:
    """Entries, newest first (``active=false``: the deactivated ones). Without kb:manage only active entries are
    listed: ``active=false`` finds none; a citizen's list holds the public ones alone."""
    if not _keeps_kb(principal):
        if active is False:
            return EntryPage(items=[], limit=page.limit, offset=page.offset, has_more=False)
        active = True
    rows, has_more = service.list_entries(
        db,
        active=active,
        category_id=category_id,
        q=q,
        public=True if _public_only(principal) else None,
        limit=page.limit,
        offset=page.offset,
    )
    return EntryPage(
        items=[EntryRead.model_validate(e) for e in rows], limit=page.limit, offset=page.offset, has_more=has_more
    )


@router.post(
    "/entries",
    status_code=status.HTTP_201_CREATED,
    response_model=EntryRead,
    dependencies=[Depends(require(permissions.KB_MANAGE))],
)
def create_entry(body: EntryCreate, db: DbSession, actor: CurrentActor) -> EntryRead:
    """Add an entry (written into the configuration log, as every change of the entries)."""
    return EntryRead.model_validate(service.create_entry(db, data=body, actor=actor))


@router.get("/entries/{entry_id}", response_model=EntryRead)
def get_entry(entry_id: int, db: DbSession, principal: CurrentPrincipal) -> EntryRead:
    """One entry; a deactivated one answers 404, as a missing one, without kb:manage, and one not public to a
    citizen."""
    entry = service.require_entry(db, entry_id=entry_id)
    if (not entry.active and not _keeps_kb(principal)) or (not entry.public and _public_only(principal)):
        raise NotFound(f"knowledge entry {entry_id} not found")
    return EntryRead.model_validate(entry)


@router.patch(
    "/entries/{entry_id}",
    response_model=EntryRead,
    dependencies=[Depends(require(permissions.KB_MANAGE))],
)
def update_entry(entry_id: int, body: EntryUpdate, db: DbSession, actor: CurrentActor) -> EntryRead:
    """Change an entry; send its ``version`` to refuse overwriting someone else's edit."""
    return EntryRead.model_validate(service.update_entry(db, entry_id=entry_id, data=body, actor=actor))


@router.delete(
    "/entries/{entry_id}",
    response_model=EntryRead,
    dependencies=[Depends(require(permissions.KB_MANAGE))],
)
def deactivate_entry(entry_id: int, db: DbSession, actor: CurrentActor) -> EntryRead:
    """Deactivate an entry (kept for the audit trail of the orders it answered)."""
    return EntryRead.model_validate(service.deactivate_entry(db, entry_id=entry_id, actor=actor))


@router.get("/weak-replies", response_model=WeakReplyPage)
def weak_replies(
    db: DbSession,
    page: Paging,
    principal: Annotated[Principal, Depends(require(permissions.REPLY_REVIEW))],
    state: Annotated[list[State] | None, Query(description="order states; default: replied")] = None,
) -> WeakReplyPage:
    """The supervisor's review list: orders whose reply was scored weak, worst first (``has_more``: another page
    follows)."""
    scope = scope_of(db, principal).clause()
    pairs, has_more = service.weak_replies(
        db, states=state or [State.REPLIED], scope=scope, limit=page.limit, offset=page.offset
    )
    items = [
        WeakReplyRead(
            order_id=o.id,
            number=o.number,
            title=shown_text(principal, o, o.title) or "",  # a leader reads it masked
            state=o.state.value,
            replied_at=o.replied_at,
            lead_unit_id=o.lead_unit_id,
            quality=_quality(c),
        )
        for o, c in pairs
    ]
    return WeakReplyPage(items=items, limit=page.limit, offset=page.offset, has_more=has_more)


def _quality(check: ReplyCheck) -> ReplyQualityRead:
    return ReplyQualityRead.model_validate(check)


def _order_for_check(db: Any, principal: Principal, order_id: int) -> Any:
    order = orders.get_order(db, order_id=order_id)
    if order is None or not order_in_scope(db, scope_of(db, principal), order_id):
        raise NotFound(f"order {order_id} not found")
    return order


@orders_router.get("/{order_id}/reply-quality", response_model=ReplyQualityRead)
def reply_quality(
    order_id: int,
    db: DbSession,
    principal: CurrentPrincipal,
    recheck: Annotated[
        bool, Query(description="score again (deprecated: a GET should not write; use POST on this path)")
    ] = False,
) -> ReplyQualityRead:
    """The reply's quality score (relevance, completeness, basis, timeliness), scored on first request."""
    return _quality(service.check_reply(db, order=_order_for_check(db, principal, order_id), force=recheck))


@orders_router.post("/{order_id}/reply-quality", response_model=ReplyQualityRead)
def rescore_reply(order_id: int, db: DbSession, principal: CurrentPrincipal) -> ReplyQualityRead:
    """Score the reply again now (after the reply, the knowledge base or the scorer changed) and store the score."""
    return _quality(service.check_reply(db, order=_order_for_check(db, principal, order_id), force=True))
