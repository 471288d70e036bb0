"""知识库: the knowledge base behind 秒回, searched and edited by those who keep it (``kb:manage``: supervisors,
administrators).

The same service calls as ``/api/v1/kb/entries`` (``cityhub.knowledge.service``): an entry is a question, its answer,
an optional category, keywords and a validity; an edit carries the version it was made on, so two people editing
the same entry cannot overwrite each other; a deactivated entry leaves the suggestions but stays for the orders it
answered. Every change is written into the configuration log (系统日志) under the keeper's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.db import utcnow
from cityhub.errors import CityhubError, Conflict, NotFound
from cityhub.knowledge import service as kb
from cityhub.knowledge.models import KnowledgeEntry
from cityhub.knowledge.schemas import EntryCreate, EntryUpdate
from cityhub.web import support
from cityhub.web.forms import day_of, field_errors, local_day, saved, whole_number
from cityhub.web.support import FormBody, PageError, render

router = APIRouter(include_in_schema=False)

ENTRY_FIELDS = ("question", "answer", "category_id", "keywords", "valid_from", "valid_until", "public", "version")
PAGE_SIZE = 20


def _keeper(request: Request, db: Session, form: Any = None) -> Principal:
    return support.require_user(request, db, permissions.KB_MANAGE, form=form)


def _payload(form: Any) -> dict[str, Any]:
    return {
        "question": form.get("question"),
        "answer": form.get("answer"),
        "category_id": form.text("category_id"),
        "keywords": form.get("keywords"),
        "valid_from": local_day(form.get("valid_from").strip(), "valid_from"),
        "valid_until": local_day(form.get("valid_until").strip(), "valid_until", end=True),
        "public": form.get("public") == "1",
    }


def _values_of(entry: KnowledgeEntry | None) -> dict[str, str]:
    if entry is None:
        return {}
    return {
        "question": entry.question,
        "answer": entry.answer,
        "category_id": str(entry.category_id or ""),
        "keywords": "、".join(entry.keywords or []),
        "valid_from": day_of(entry.valid_from),
        "valid_until": day_of(entry.valid_until, end=True),
        "public": "1" if entry.public else "",
        "version": str(entry.version),
    }


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    entry: KnowledgeEntry | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    current: KnowledgeEntry | None = None,
    status_code: int = 200,
) -> Response:
    q = request.query_params
    text = q.get("q", "").strip()[:100]
    inactive = q.get("inactive") == "1"
    public = q.get("public") == "1"  # 只看公开: the entries citizens read
    page = max(1, whole_number(q.get("page")) or 1)
    entries: Sequence[KnowledgeEntry] = ()
    has_more = False
    if entry is None:
        entries, has_more = kb.list_entries(
            db,
            active=None if inactive else True,
            q=text or None,
            public=True if public else None,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
    categories = support.active_categories(db)
    return render(
        request,
        "kb.html",
        principal=principal,
        status_code=status_code,
        entry=entry,
        entries=entries,
        page=page,
        has_more=has_more,
        query=[
            (k, v)
            for k, v in (("q", text), ("inactive", "1" if inactive else ""), ("public", "1" if public else ""))
            if v
        ],
        q=text,
        inactive=inactive,
        public=public,
        categories=categories,
        category_paths={c.id: c.path for c in categories},
        now=utcnow(),
        values=values if values is not None else _values_of(entry),
        errors=errors or {},
        error=error,
        current=current,
    )


@router.get("/kb", response_class=HTMLResponse)
def kb_page(request: Request, db: DbSession) -> Response:
    """The entries, newest first, searched in question and answer."""
    return _page(request, db, _keeper(request, db))


@router.post("/kb", response_class=HTMLResponse)
def create_entry(request: Request, db: DbSession, form: FormBody) -> Response:
    principal = _keeper(request, db, form)
    t = support.translator(request)
    entry, errors = saved(
        db, t, lambda: kb.create_entry(db, data=EntryCreate.model_validate(_payload(form)), actor=principal.actor)
    )
    if entry is None:
        return _page(request, db, principal, values=form.values(ENTRY_FIELDS), errors=errors, status_code=422)
    return support.redirect("/kb", flash=("kb.created", {"id": entry.id}))


@router.get("/kb/{entry_id:int}", response_class=HTMLResponse)
def entry_page(request: Request, db: DbSession, entry_id: int) -> Response:
    principal = _keeper(request, db)
    entry = kb.get_entry(db, entry_id=entry_id)
    if entry is None:
        raise PageError(404, "err.page_not_found")
    return _page(request, db, principal, entry=entry)


@router.post("/kb/{entry_id:int}", response_class=HTMLResponse)
def update_entry(request: Request, db: DbSession, entry_id: int, form: FormBody) -> Response:
    principal = _keeper(request, db, form)
    t = support.translator(request)
    try:
        changes = {**_payload(form), "version": form.text("version"), "active": form.get("active") == "1"}
        kb.update_entry(db, entry_id=entry_id, data=EntryUpdate.model_validate(changes), actor=principal.actor)
        db.commit()
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        entry = kb.require_entry(db, entry_id=entry_id)
        stale = isinstance(exc, Conflict)
        return _page(
            request,
            db,
            principal,
            entry=entry,
            # A stale edit keeps what was typed, now on the current version: saving again overwrites knowingly.
            values={**form.values(ENTRY_FIELDS), "version": str(entry.version)} if stale else form.values(ENTRY_FIELDS),
            errors={} if stale else field_errors(t, exc),
            current=entry if stale else None,
            error=t("kb.stale") if stale else t("err.validation"),
            status_code=409 if stale else 422,
        )
    return support.redirect("/kb", flash=("kb.updated", {"id": entry_id}))
