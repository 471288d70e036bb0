"""办理时限: the time-limit table (accept within N working hours, finish within N working days, warn after a share)
by category × urgency, as ``/api/v1/sla/rules`` and ``cityhub sla`` edit it (``workorders.admin_views.save_rule``,
``workorders.recompute``): every change moves the running deadlines it touches, audited per order, and says how many.
Read by whoever assesses time limits (supervisors, leaders), changed by ``sla:manage`` roles.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.config import get_settings
from cityhub.web import support
from cityhub.web.forms import removed, saved
from cityhub.web.support import FormBody, PageError, render
from cityhub.workorders import recompute, sla
from cityhub.workorders.admin_views import SlaRulePut, rule_table, save_rule
from cityhub.workorders.models import Urgency

router = APIRouter(include_in_schema=False)

RULE_FIELDS = ("category_id", "urgency", "accept_hours", "finish_days", "warning_share", "round_the_clock")


def _reader(request: Request, db: Session) -> Principal:
    principal = support.require_user(request, db)
    if principal.role not in support.OVERSEERS and not permissions.allows(principal.role, permissions.SLA_MANAGE):
        raise PageError(403, "err.forbidden")
    return principal


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    share = get_settings().sla_warning_share
    return render(
        request,
        "sla.html",
        principal=principal,
        status_code=status_code,
        rules=rule_table(db),
        builtin=[(Urgency(u), *terms, u in sla.BUILTIN_ROUND_THE_CLOCK) for u, terms in sla.BUILTIN_TERMS.items()],
        default_share=share,
        can_edit=permissions.allows(principal.role, permissions.SLA_MANAGE),
        categories=support.active_categories(db),
        urgencies=list(Urgency),
        values=values or {},
        errors=errors or {},
    )


def typed_share(text: str | None) -> str | None:
    """A warning share as typed: a fraction (0.8) or, as the page words the default, a percentage (80%, 80％)."""
    number = (text or "").strip()
    if not number.endswith(("%", "％")):
        return text
    try:
        return str(float(number[:-1].strip()) / 100)
    except ValueError:
        return text  # refused as the number it is not


def _payload(form: Any) -> dict[str, Any]:
    return {
        "category_id": form.text("category_id"),
        "urgency": form.text("urgency"),
        "accept_hours": form.get("accept_hours").strip(),
        "finish_days": form.get("finish_days").strip(),
        "warning_share": typed_share(form.text("warning_share")),
        "round_the_clock": form.get("round_the_clock") == "1",
    }


@router.get("/sla", response_class=HTMLResponse)
def sla_page(request: Request, db: DbSession) -> Response:
    """The time-limit table and, for sla:manage roles, the form that sets one rule."""
    return _page(request, db, _reader(request, db))


@router.post("/sla", response_class=HTMLResponse)
def set_rule(request: Request, db: DbSession, form: FormBody) -> Response:
    """Create or replace the rule of one category × urgency."""
    principal = support.require_user(request, db, permissions.SLA_MANAGE, form=form)
    t = support.translator(request)
    result, errors = saved(
        db, t, lambda: save_rule(db, SlaRulePut.model_validate(_payload(form)), actor=principal.actor)
    )
    if result is None:
        return _page(request, db, principal, values=form.values(RULE_FIELDS), errors=errors, status_code=422)
    return support.redirect("/sla", flash=("sla.saved", {"orders": result[1].orders}))


@router.post("/sla/{rule_id:int}/delete", response_class=HTMLResponse)
def delete_rule(request: Request, db: DbSession, rule_id: int, form: FormBody) -> Response:
    principal = support.require_user(request, db, permissions.SLA_MANAGE, form=form)
    done: list[recompute.Recomputed] = []
    removed(db, lambda: done.append(recompute.delete_sla_rule(db, rule_id=rule_id, actor=principal.actor)))
    return support.redirect("/sla", flash=("sla.deleted", {"orders": done[0].orders if done else 0}))
