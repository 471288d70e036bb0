"""考核核减 on the web: the order page's 申请考核核减 (a unit's staff ask for their unit), the requests' list
(``/exemptions``: 核减审核 for the supervisors who decide them, 本单位核减申请 for a unit's staff), and the decisions
— all through :mod:`cityhub.analytics.exemptions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.analytics import exemptions, kpi
from cityhub.analytics.models import AssessmentExemption
from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import may_read
from cityhub.errors import CityhubError, NotFound
from cityhub.org.models import Unit
from cityhub.web import forms, support
from cityhub.web.i18n import Translator
from cityhub.web.support import FormBody, PageError, render
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import REASON_MAX_CHARS

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
ACTION = "exemption"  # the order page's open form after a refusal (``open_action``)


@dataclass
class Panel:
    """What the order page shows of its exemption requests to one reader."""

    requests: list[dict[str, Any]] = field(default_factory=list)  # this order's, of the units the reader sees
    measures: list[str] = field(default_factory=list)  # what the reader's unit may ask to have left out now
    waiting: bool = False  # the reader's unit has a request waiting
    may_decide: bool = False
    # The unit the form asks for when it is not the reader's own: a street's staff asking for a community of theirs
    # that holds the order's facts (``exemptions.units_asked_for``); (id, name).
    for_unit: tuple[int, str] | None = None


def order_panel(db: Session, order: Order, principal: Principal) -> Panel | None:
    """The order page's 考核核减 section for ``principal``: None for whoever neither asks nor reads requests."""
    role = principal.role
    asks = permissions.allows(role, permissions.EXEMPTION_REQUEST) and principal.role in permissions.UNIT_STAFF_ROLES
    decides = permissions.allows(role, permissions.EXEMPTION_DECIDE)
    if not asks and not decides and not permissions.allows(role, permissions.ORDER_READ_ALL):
        return None
    seen = exemptions.units_seen(db, principal)
    rows = db.scalars(exemptions.query(order_id=order.id, unit_ids=seen)).all()
    panel = Panel(requests=exemptions.as_dicts(db, rows), may_decide=decides)
    if asks and principal.unit_id is not None:
        # The reader's own unit first; else, for a street's staff, a community of theirs holding the order's facts.
        units = exemptions.units_asked_for(db, principal.actor)
        waiting = {r.unit_id for r in rows if r.unit_id in units and r.state == exemptions.PENDING}
        panel.waiting = bool(waiting)
        open_ = exemptions.open_by_unit(db, order_id=order.id, unit_ids=units - waiting)
        chosen = principal.unit_id if principal.unit_id in open_ else min(open_, default=None)
        if chosen is not None:
            panel.measures = open_[chosen]
            if chosen != principal.unit_id:
                panel.for_unit = (chosen, db.scalar(select(Unit.name).where(Unit.id == chosen)) or str(chosen))
    if not panel.requests and not panel.measures and not panel.waiting:
        return None
    return panel


def refusal_text(t: Translator, exc: CityhubError) -> str:
    """A refused request or decision in the page's language: the service says why (``details.why``)."""
    why = exc.details.get("why")
    if isinstance(why, str):
        return t(f"exempt.err.{why}", exc.message)
    if isinstance(exc, NotFound):
        return t("err.not_found")
    return t("err.generic", message=exc.message)


@router.post("/orders/{order_id}/exemption", response_class=HTMLResponse)
def order_request(order_id: int, request: Request, db: DbSession, form: FormBody) -> Response:
    """申请考核核减 from the order page: refused, the page again with the message and what was typed (4xx)."""
    from cityhub.web.routes import _detail_page, _fail

    principal = support.require_user(request, db, permissions.EXEMPTION_REQUEST, form=form)
    if not may_read(db, principal, order_id):
        raise PageError(404, "err.not_found")
    t = support.translator(request)
    try:
        exemptions.request(
            db,
            order_id=order_id,
            measures=form.getlist("measures"),
            reason_category=form.get("reason_category"),
            reason_text=form.text("reason_text"),
            actor=principal.actor,
            unit_id=forms.whole_number(form.get("unit_id")),  # a street's staff asking for one of its communities
        )
        db.flush()
    except CityhubError as exc:
        _fail(db)
        values = {"reason_category": form.get("reason_category"), "reason_text": form.get("reason_text")}
        values["measures"] = ",".join(form.getlist("measures"))
        return _detail_page(
            request,
            db,
            principal,
            order_id,
            error=refusal_text(t, exc),
            open_action=ACTION,
            values=values,
            status_code=exc.http_status,
        )
    return support.redirect(f"/orders/{order_id}#exemption", flash=("exempt.flash_requested", {}))


@router.post("/exemptions/{exemption_id}/decide", response_class=HTMLResponse)
def decide(exemption_id: int, request: Request, db: DbSession, form: FormBody) -> Response:
    """批准 / 驳回 a request, or 撤销核减 an approved one, from the list or the order page; back where it was decided,
    saying what came of it."""
    principal = support.require_user(request, db, permissions.EXEMPTION_DECIDE, form=form)
    t = support.translator(request)
    back = support.safe_next(form.get("next"), "/exemptions")
    choice = form.get("decision")
    if choice not in ("approve", "reject", "revoke"):
        raise PageError(422, "err.bad_request")
    try:
        units = exemptions.units_seen(db, principal)
        if choice == "revoke":  # 撤销核减: an approval taken back
            row = exemptions.revoke(
                db, exemption_id=exemption_id, reason=form.text("reason"), actor=principal.actor, units=units
            )
        else:
            row = exemptions.decide(
                db,
                exemption_id=exemption_id,
                approve=choice == "approve",
                reason=form.text("reason"),
                actor=principal.actor,
                units=units,
            )
        db.flush()
    except NotFound:
        raise PageError(404, "err.not_found") from None
    except CityhubError as exc:
        from cityhub.web.routes import _fail

        _fail(db)
        return support.redirect(back, flash=("exempt.refused", {"message": refusal_text(t, exc)}))
    number = db.scalar(select(Order.number).where(Order.id == row.order_id))
    return support.redirect(back, flash=(f"exempt.done_{row.state}", {"number": number or row.order_id}))


@router.get("/exemptions", response_class=HTMLResponse)
def exemptions_page(request: Request, db: DbSession) -> Response:
    """核减审核: the requests of the units the reader sees — pending ones oldest first, to decide — with the other
    states a tab away; ``unit``: one unit's (the assessment page's 已核减 links here)."""
    principal = support.require_user(request, db, permissions.ORDER_READ)
    try:
        seen = exemptions.units_seen(db, principal)
    except CityhubError:
        raise PageError(403, "err.forbidden") from None
    state = request.query_params.get("state", exemptions.PENDING)
    if state not in (*exemptions.STATES, "all"):
        state = exemptions.PENDING
    unit_id = forms.whole_number(request.query_params.get("unit"))
    units = seen if unit_id is None else ({unit_id} if seen is None or unit_id in seen else set())
    page = max(1, forms.whole_number(request.query_params.get("page")) or 1)
    rows, has_more = exemptions.search(
        db,
        state=None if state == "all" else state,
        unit_ids=units,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    query = [("state", state)] + ([("unit", str(unit_id))] if unit_id is not None else [])
    here = "/exemptions?" + "&".join(f"{k}={v}" for k, v in query) + (f"&page={page}" if page > 1 else "")
    with_requests = select(AssessmentExemption.unit_id).distinct()
    if seen is not None:
        with_requests = with_requests.where(AssessmentExemption.unit_id.in_(sorted(seen)))
    return render(
        request,
        "exemptions.html",
        principal=principal,
        rows=exemptions.as_dicts(db, rows),
        state=state,
        states=[*exemptions.STATES, "all"],
        counts={s: exemptions.count(db, state=s, unit_ids=units) for s in exemptions.STATES},
        unit=db.get(Unit, unit_id) if unit_id is not None else None,
        unit_choices=support.names_of(db, Unit, set(db.scalars(with_requests))),
        page=page,
        has_more=has_more,
        here=here,
        may_decide=permissions.allows(principal.role, permissions.EXEMPTION_DECIDE),
        own=principal.role in permissions.UNIT_STAFF_ROLES,
        reason_max=REASON_MAX_CHARS,
    )


def form_context() -> dict[str, Any]:
    """What the request form offers: the reasons and the measures' order (:data:`kpi.EXEMPTIBLE`)."""
    return {"reasons": exemptions.REASONS, "exemptible": kpi.EXEMPTIBLE, "reason_max": REASON_MAX_CHARS}
