"""HTTP routes of the caller's own staff notices (消息提醒, ``/api/v1/notices``): the same service calls as the
消息 page (:mod:`cityhub.notify.notices`). Every signed-in user reads their own notices only: another's is not
found, as a missing one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from cityhub.api.deps import CurrentPrincipal, DbSession, Paging
from cityhub.notify import notices
from cityhub.notify.models import NoticeKind
from cityhub.web.i18n import negotiate, translate

router = APIRouter(prefix="/notices", tags=["notices"])
KINDS = ", ".join(k.value for k in NoticeKind)


class NoticeOrder(BaseModel):
    id: int
    number: str | None = Field(description="null: the order is gone")
    title: str | None = Field(description="as the caller may read it (scrubbed where they read orders masked)")


class NoticeRead(BaseModel):
    id: int
    kind: str = Field(description=f"what happened, one of {KINDS}")
    text: str = Field(description="what happened and to which order, in the caller's language (Accept-Language)")
    params: dict[str, Any] = Field(
        description="the text's parameters: actor, reason, days, sensor, code, unit …; of an urged_bulk notice (one "
        "批量催办 of several orders of the caller's unit) count and order_ids, the orders urged"
    )
    order: NoticeOrder | None = Field(description="the order it is about; null for an alarm without one, urged_bulk")
    alarm_id: int | None
    link: str | None = Field(
        description="the page it leads to: the order's, else the unit's urged orders (urged_bulk), else the alarm's "
        "sensor"
    )
    viewable: bool = Field(
        description="false: the caller may no longer open its order (moved to another unit since: transferred, "
        "returned); the web page's /notices/{id} says so instead of leading to it"
    )
    created_at: datetime
    read_at: datetime | None = Field(description="null: unread")


class NoticePage(BaseModel):
    items: list[NoticeRead]
    limit: int
    offset: int
    has_more: bool
    unread: int = Field(description="the caller's unread notices in all")


class UnreadCount(BaseModel):
    unread: int


class ReadAll(BaseModel):
    marked: int = Field(description="how many were unread and are now read")
    unread: int


# The longest title a notice's sentence quotes (the order's page and ``order.title`` have it whole).
TITLE_CHARS = 24


def notice_text(lang: str, notice: notices.Notice) -> str:
    """The notice's sentence in ``lang``: ``notice.kind.<kind>`` with its parameters and the order's number and
    short title (the web page renders the same)."""
    params = dict(notice.params)
    params["number"] = notice.order_number or ""
    params["title"] = notices.shortened(notice.order_title, TITLE_CHARS) or ""
    return translate(lang, f"notice.kind.{notice.kind}", notice.kind, **params)


def _lang(request: Request) -> str:
    return negotiate(None, request.headers.get("accept-language"))


def _read(lang: str, notice: notices.Notice) -> NoticeRead:
    order = (
        NoticeOrder(id=notice.order_id, number=notice.order_number, title=notice.order_title)
        if notice.order_id is not None
        else None
    )
    return NoticeRead(
        id=notice.id,
        kind=notice.kind,
        text=notice_text(lang, notice),
        params=notice.params,
        order=order,
        alarm_id=notice.alarm_id,
        link=notice.link,
        viewable=notice.viewable,
        created_at=notice.created_at,
        read_at=notice.read_at,
    )


@router.get("", response_model=NoticePage)
def list_notices(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    page: Paging,
    unread: Annotated[bool | None, Query(description="true: only unread; false: only read; absent: all")] = None,
) -> NoticePage:
    """The caller's own notices, newest first."""
    items, more = notices.list_notices(db, principal, unread=unread, limit=page.limit, offset=page.offset)
    lang = _lang(request)
    return NoticePage(
        items=[_read(lang, n) for n in items],
        limit=page.limit,
        offset=page.offset,
        has_more=more,
        unread=notices.unread_count(db, principal),
    )


@router.get("/unread-count", response_model=UnreadCount)
def unread_count(db: DbSession, principal: CurrentPrincipal) -> UnreadCount:
    """How many of the caller's notices are unread (the bell's number)."""
    return UnreadCount(unread=notices.unread_count(db, principal))


@router.post("/read-all", response_model=ReadAll)
def read_all(db: DbSession, principal: CurrentPrincipal) -> ReadAll:
    """Mark every unread notice of the caller read (全部标为已读)."""
    marked = notices.mark_all_read(db, principal)
    return ReadAll(marked=marked, unread=0)


@router.post("/{notice_id}/read", response_model=NoticeRead)
def read_one(notice_id: int, request: Request, db: DbSession, principal: CurrentPrincipal) -> NoticeRead:
    """Mark one of the caller's notices read; 404 for another's, as for a missing one."""
    row = notices.mark_read(db, principal, notice_id)
    items, _ = notices.list_notices(db, principal, only_id=row.id)
    return _read(_lang(request), items[0])
