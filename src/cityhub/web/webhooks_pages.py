"""推送订阅: the webhook subscriptions (which receiver gets which topics, for which unit), how their deliveries go, and
the outbox's deliveries that did not go through, with a retry (``webhooks:manage``).

The same service calls as ``cityhub notify`` and ``/api/v1/notify`` (:mod:`cityhub.notify.service`), each change in the
configuration log as the signed-in administrator's; a new subscription's signing secret is shown once, on the page
that answers the form, never in a cookie or a redirect (as the 数据共享 page shows a new key).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.errors import CityhubError, Conflict, NotFound
from cityhub.notify import service
from cityhub.notify.models import Topic
from cityhub.web import support
from cityhub.web.support import FormBody, PageError, render
from cityhub.workorders.service import order_numbers

router = APIRouter(include_in_schema=False)

PAGE = "/admin/webhooks"
FAILED_SHOWN = 50  # the newest deliveries that did not go through, listed with a retry each
FIELDS = ("url", "events", "unit", "description")  # what the form asks, as the service names its refusals


def _admin(request: Request, db: Session, form: FormBody | None = None) -> Principal:
    return support.require_user(request, db, permissions.WEBHOOKS_MANAGE, form=form)


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    new_secret: tuple[int, str, str] | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    failed = db.scalars(
        service.messages_query(statuses=service.UNDELIVERED, active_only=True).limit(FAILED_SHOWN)
    ).all()
    return render(
        request,
        "webhooks.html",
        principal=principal,
        status_code=status_code,
        subscriptions=service.subscriptions_overview(db),
        failed=failed,
        order_numbers=order_numbers(db, (m.order_id for m in failed)),
        failed_shown=FAILED_SHOWN,
        topics=[t.value for t in Topic],
        units=support.unit_groups(db),
        new_secret=new_secret,
        errors=errors or {},
        values=values or {},
    )


@router.get(PAGE, response_class=HTMLResponse)
def webhooks_page(request: Request, db: DbSession) -> Response:
    """Every subscription with its delivery state, the failed deliveries, and the form adding one."""
    return _page(request, db, _admin(request, db))


@router.post(PAGE, response_class=HTMLResponse)
def add_webhook(request: Request, db: DbSession, form: FormBody) -> Response:
    """A new subscription and its signing secret (shown once); a refused field is told at it."""
    principal = _admin(request, db, form)
    url, unit, description = form.get("url"), form.get("unit"), form.get("description")
    values = {"url": url, "events": form.getlist("events"), "unit": unit, "description": description}
    try:
        sub, secret = service.add_subscription(
            db,
            target=url,
            topics=form.getlist("events"),
            unit_code=unit or None,
            description=description,
            actor=principal.actor,
        )
        db.commit()
    except CityhubError as exc:
        db.rollback()
        field = str(exc.details.get("field", "_form"))
        message = support.translator(request)(f"webhooks.bad_{field}") if field in FIELDS else exc.message
        return _page(request, db, principal, errors={field: message}, values=values, status_code=422)
    return _page(request, db, principal, new_secret=(sub.id, sub.target, secret), status_code=201)


@router.post(PAGE + "/{subscription_id:int}/remove", response_class=HTMLResponse)
def remove_webhook(request: Request, db: DbSession, subscription_id: int, form: FormBody) -> Response:
    """Remove a subscription (the page asks first); its undelivered messages are dead."""
    principal = _admin(request, db, form)
    try:
        dropped = service.remove_subscription(db, subscription_id=subscription_id, actor=principal.actor)
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    db.commit()
    return support.redirect(PAGE, flash=("webhooks.removed", {"id": subscription_id, "dropped": dropped}))


@router.post(PAGE + "/outbox/{message_id:int}/retry", response_class=HTMLResponse)
def retry_delivery(request: Request, db: DbSession, message_id: int, form: FormBody) -> Response:
    """Send a failed or dead delivery again now; one that went meanwhile (or whose subscription was removed) is said."""
    principal = _admin(request, db, form)
    return support.form_action(
        db,
        lambda: service.retry(db, message_id=message_id, actor=principal.actor),
        back=PAGE,
        done=("webhooks.retried", {"id": message_id}),
        refused=("webhooks.not_retried", {"id": message_id}),
        refused_by=Conflict,
    )
