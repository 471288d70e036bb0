"""消息 on the web: the bell in every signed-in page's header (its unread count, :func:`bell_count`) and the page
``/notices`` listing the reader's own notices newest first, each leading to its order or alarm and marked read as it
is opened (``/notices/{id}``; an order moved out of the reader's scope since says so instead of a bare 404), and
全部标为已读 — through :mod:`cityhub.notify.notices`, as ``/api/v1/notices``. Plain links and one form: no script
needed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth.principal import Principal
from cityhub.errors import NotFound
from cityhub.notify import notices
from cityhub.notify.notice_views import notice_text
from cityhub.org.models import Role
from cityhub.web import forms, support
from cityhub.web.support import FormBody, PageError, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 30
FILTERS = ("all", "unread")


def bell_count(db: Session | None, principal: Principal | None) -> int | None:
    """The reader's unread notices, up to the menu's cap (99+); None — no bell — without a reader, for a citizen
    (notices are the staff's), or when the page's transaction can no longer read (an error page after a failed
    write)."""
    if db is None or principal is None or principal.role == Role.CITIZEN:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return notices.unread_count(db, principal, cap=support.nav_count_cap())
    except SQLAlchemyError:
        return None


@router.get("/notices", response_class=HTMLResponse)
def notices_page(request: Request, db: DbSession) -> Response:
    """消息: the reader's notices newest first, the unread marked; ``show=unread`` only those."""
    principal = support.require_user(request, db)
    show = request.query_params.get("show", "all")
    if show not in FILTERS:
        show = "all"
    page = max(1, forms.whole_number(request.query_params.get("page")) or 1)
    items, has_more = notices.list_notices(
        db, principal, unread=True if show == "unread" else None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    t = support.translator(request)
    return render(
        request,
        "notices.html",
        principal=principal,
        items=[(n, notice_text(t.lang, n)) for n in items],
        show=show,
        filters=FILTERS,
        page=page,
        has_more=has_more,
        unread=notices.unread_count(db, principal),
    )


@router.get("/notices/read-all", response_class=HTMLResponse)
def read_all_page(request: Request, db: DbSession) -> Response:
    """Where 全部标为已读 is posted, asked for by GET (a bookmark, a typed address): the notices page, as another
    POST-only address of the pages does (``/rules/thresholds``) — not an error about a notice id."""
    support.require_user(request, db)
    return support.redirect("/notices")


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def open_notice(notice_id: int, request: Request, db: DbSession) -> Response:
    """Open a notice: marked read, then on to its order (or its alarm's sensor, or the unit's urged orders); another's
    is not found. An order moved out of the reader's scope since (转派 to another unit, 退单) is a page saying so,
    not the order page's 404."""
    principal = support.require_user(request, db)
    try:
        notices.mark_read(db, principal, notice_id)
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    items, _ = notices.list_notices(db, principal, only_id=notice_id)
    db.commit()
    notice = items[0]
    if not notice.viewable:
        t = support.translator(request)
        return render(
            request, "notice_moved.html", principal=principal, status_code=403, text=notice_text(t.lang, notice)
        )
    return support.redirect(notice.link or "/notices")


@router.post("/notices/read-all", response_class=HTMLResponse)
def read_all(request: Request, db: DbSession, form: FormBody) -> Response:
    """全部标为已读: back to the list, saying how many were marked."""
    principal = support.require_user(request, db, form=form)
    marked = notices.mark_all_read(db, principal)
    db.commit()
    back = support.safe_next(form.get("next"), "/notices")
    return support.redirect(back, flash=("notices.all_read", {"n": marked}))
