"""办理进度查询: the citizen's progress lookup and rating without an account (``/track``), over
:mod:`cityhub.workorders.tracking` — the same service as ``POST /api/v1/track``.

The forms carry a token matched by a cookie (as the login form's), so another site cannot post them; the answers
show the citizen's own appeal and are never cached.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cityhub.api.deps import DbSession
from cityhub.auth.errors import TooManyAttempts
from cityhub.auth.views import _client_ip
from cityhub.errors import InvalidTransition, NotFound, ValidationFailed
from cityhub.web import support
from cityhub.web.support import FormBody, render
from cityhub.workorders import tracking
from cityhub.workorders.lifecycle import AWAITING_DISPATCH
from cityhub.workorders.sms import Rating

router = APIRouter(include_in_schema=False)
PATH = "/track"


def _page(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    token = secrets.token_urlsafe(24)
    # 正在分派 only while the appeal waits to be dispatched: one answered on the spot or cancelled has no unit to come.
    context.setdefault("queue_states", AWAITING_DISPATCH)
    response = render(request, "track.html", status_code=status_code, track_csrf=token, **context)
    support.set_login_csrf(response, token, path=PATH)
    response.headers["Cache-Control"] = "no-store"
    return response


def _failure(request: Request, exc: Exception, number: str, phone: str) -> Response:
    """The lookup form again, saying why nothing is shown, with the number and phone typed (one of them mistyped:
    corrected, not typed again)."""
    if isinstance(exc, TooManyAttempts):
        page = _page(request, status_code=429, error="track.too_many", number=number, phone=phone)
        page.headers.update(exc.http_headers)
        return page
    if isinstance(exc, ValidationFailed):
        field = (exc.details or {}).get("field", "")
        return _page(request, status_code=422, error=f"track.missing_{field}", number=number, phone=phone)
    return _page(request, status_code=404, error="track.not_found", number=number, phone=phone)


@router.get(PATH, response_class=HTMLResponse)
def track_form(request: Request) -> Response:
    return _page(request, number=request.query_params.get("number", "")[:40])


@router.post(PATH, response_class=HTMLResponse)
def track_lookup(request: Request, db: DbSession, form: FormBody) -> Response:
    support.read_names_through(request, db)  # its unit and category in English on an English page
    number, phone = form.text("number") or "", form.text("phone") or ""
    if not support.check_login_csrf(request, form):
        return _page(request, status_code=403, error="track.expired", number=number, phone=phone)
    try:
        found = tracking.track(db, number=number, phone=phone, client_ip=_client_ip(request))
    except (NotFound, ValidationFailed, TooManyAttempts) as exc:
        return _failure(request, exc, number, phone)
    return _page(request, order=found, number=found.number, phone=phone)


@router.post(PATH + "/rate", response_class=HTMLResponse)
def track_rate(request: Request, db: DbSession, form: FormBody) -> Response:
    support.read_names_through(request, db)
    number, phone = form.text("number") or "", form.text("phone") or ""
    if not support.check_login_csrf(request, form):
        return _page(request, status_code=403, error="track.expired", number=number, phone=phone)
    satisfied, reason = form.get("satisfied"), form.get("reason")
    # 满意, 基本满意 (as a text message's 2: satisfied, said apart), 不满意
    if satisfied not in ("1", "2", "0"):
        return _rated_again(request, db, number, phone, "track.choose", satisfied, reason)
    try:
        rated = tracking.rate(
            db,
            number=number,
            phone=phone,
            satisfied=satisfied != "0",
            rating=Rating.BASICALLY_SATISFIED if satisfied == "2" else None,
            reason=form.text("reason"),
            client_ip=_client_ip(request),
        )
        db.commit()
    except ValidationFailed as exc:
        if (exc.details or {}).get("field") == "reason":
            return _rated_again(request, db, number, phone, "track.reason_needed", satisfied, reason)
        return _failure(request, exc, number, phone)
    except InvalidTransition:
        db.rollback()
        return _rated_again(request, db, number, phone, "track.not_rateable", satisfied, reason)
    except (NotFound, TooManyAttempts) as exc:
        return _failure(request, exc, number, phone)
    return _page(request, order=rated, number=rated.number, phone=phone, notice="track.thanks")


def _rated_again(
    request: Request, db: Any, number: str, phone: str, error: str, satisfied: str, reason: str
) -> Response:
    """The order's page again with what was wrong with the rating, and the rating as given (the choice, the words)."""
    try:
        found = tracking.track(db, number=number, phone=phone, client_ip=_client_ip(request))
    except (NotFound, ValidationFailed, TooManyAttempts) as exc:
        return _failure(request, exc, number, phone)
    return _page(
        request,
        status_code=422,
        order=found,
        number=found.number,
        phone=phone,
        rate_error=error,
        rating={"satisfied": satisfied, "reason": reason},
    )
