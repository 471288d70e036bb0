"""数据共享: the API clients of Open311 and the data-sharing API — who integrates, with which scopes and limit, their
keys, and their calls and errors per endpoint over the last days (``apiclients:manage``).

The same service calls as ``cityhub apikey`` (``cityhub.sharing.service``): a client's scopes and limit belong to the
client, so every key shares them and changing them is a deliberate act; a new key is shown once, on the page that
answers the form, never in a cookie or a redirect.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.errors import CityhubError, NotFound, ValidationFailed
from cityhub.sharing import service as sharing
from cityhub.sharing.models import ApiClient
from cityhub.web import forms, support
from cityhub.web.support import FormBody, PageError, render

router = APIRouter(include_in_schema=False)

STATS_DAYS = 30  # the call statistics the page sums up


def _admin(request: Request, db: Session, form: FormBody | None = None) -> Principal:
    return support.require_user(request, db, permissions.API_CLIENTS_MANAGE, form=form)


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    new_key: tuple[str, str] | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    today = utcnow().astimezone(get_settings().tz).date()
    since = today - timedelta(days=STATS_DAYS - 1)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_endpoint: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in sharing.call_stats(db, start=since, end=today):
        for bucket in (totals[row["client"]], by_endpoint[(row["client"], row["endpoint"])]):
            bucket[0] += row["calls"]
            bucket[1] += row["errors"]
    return render(
        request,
        "api_clients.html",
        principal=principal,
        status_code=status_code,
        clients=sharing.list_clients(db),
        scopes=sharing.SCOPES,
        totals=totals,
        endpoints=sorted(by_endpoint.items(), key=lambda item: (item[0][0], -item[1][0])),
        days=STATS_DAYS,
        new_key=new_key,
        now=utcnow(),
        errors=errors or {},
        values=values or {"rate_limit": str(sharing.DEFAULT_RATE_LIMIT)},
    )


def _expiry(form: Any) -> datetime | None:
    """The expiry the form's ``expires_in_days`` gives (empty: none); ValidationFailed naming ``expires`` else."""
    raw = (form.get("expires_in_days") or "").strip()
    if not raw:
        return None
    days = forms.whole_number(raw)
    if days is None:
        raise ValidationFailed("the number of days is not a whole number", details={"field": "expires"})
    return sharing.expiry(days=days)


def _client(db: Session, client_id: int) -> ApiClient:
    client = db.get(ApiClient, client_id)
    if client is None:
        raise PageError(404, "err.page_not_found")
    return client


@router.get("/admin/api-clients", response_class=HTMLResponse)
def clients_page(request: Request, db: DbSession) -> Response:
    """Every client with its scopes, limit and keys, and the calls of the last 30 days."""
    return _page(request, db, _admin(request, db))


@router.post("/admin/api-clients", response_class=HTMLResponse)
def create_client(request: Request, db: DbSession, form: FormBody) -> Response:
    """A new client and its first key (shown once)."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    name = form.get("name").strip()
    values = {
        "name": name,
        "scopes": form.getlist("scopes"),
        "rate_limit": form.get("rate_limit"),
        "expires_in_days": form.get("expires_in_days"),
    }
    if sharing.get_client(db, name=name) is not None:
        return _page(request, db, principal, errors={"name": t("apiclients.taken")}, values=values, status_code=409)
    try:
        client, key = sharing.create_key(
            db,
            client_name=name,
            scopes=form.getlist("scopes"),
            rate_limit=forms.whole_number(form.get("rate_limit")) or -1,
            expires_at=_expiry(form),
            actor=principal.actor,
        )
        db.commit()
    except CityhubError as exc:
        db.rollback()
        field = str(exc.details.get("field", "_form"))
        known = ("client", "scopes", "rate_limit", "expires")
        message = t(f"apiclients.bad_{field}") if field in known else exc.message
        return _page(request, db, principal, errors={field: message}, values=values, status_code=422)
    return _page(request, db, principal, new_key=(client.name, key), status_code=201)


@router.post("/admin/api-clients/{client_id:int}/keys", response_class=HTMLResponse)
def new_key(request: Request, db: DbSession, client_id: int, form: FormBody) -> Response:
    """Another key for a client, with the client's scopes and limit (shown once), valid for the days asked."""
    principal = _admin(request, db, form)
    name = _client(db, client_id).name
    try:
        client, key = sharing.create_key(db, client_name=name, expires_at=_expiry(form), actor=principal.actor)
    except ValidationFailed:
        db.rollback()
        errors = {f"{client_id}:expires": support.translator(request)("apiclients.bad_expires")}
        return _page(request, db, principal, errors=errors, status_code=422)
    db.commit()
    return _page(request, db, principal, new_key=(client.name, key), status_code=201)


@router.post("/admin/api-clients/keys/{prefix}/expiry", response_class=HTMLResponse)
def key_expiry(request: Request, db: DbSession, prefix: str, form: FormBody) -> Response:
    """Set, extend or remove (empty days) the expiry of one key, or end it now (立即失效, ``end_now``: a leaked key);
    an expired key works again once moved on."""
    principal = _admin(request, db, form)
    if form.get("end_now"):
        try:
            sharing.set_expiry(db, prefix=prefix, expires_at=None, actor=principal.actor, at_once=True)
        except CityhubError:
            raise PageError(404, "err.page_not_found") from None
        db.commit()
        return support.redirect("/admin/api-clients", flash=("apiclients.expired_now", {"prefix": prefix}))
    try:
        expires_at = _expiry(form)
    except ValidationFailed:
        errors = {f"key:{prefix}": support.translator(request)("apiclients.bad_expires")}
        return _page(request, db, principal, errors=errors, status_code=422)
    try:
        sharing.set_expiry(db, prefix=prefix, expires_at=expires_at, actor=principal.actor)
    except (NotFound, CityhubError):
        raise PageError(404, "err.page_not_found") from None
    db.commit()
    return support.redirect("/admin/api-clients", flash=("apiclients.expiry_set", {"prefix": prefix}))


@router.post("/admin/api-clients/{client_id:int}", response_class=HTMLResponse)
def change_client(request: Request, db: DbSession, client_id: int, form: FormBody) -> Response:
    """New scopes and limit for every key of a client (the deliberate change ``apikey scopes|limit`` make)."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    client = _client(db, client_id)
    try:
        sharing.set_scopes(db, client_name=client.name, scopes=form.getlist("scopes"), actor=principal.actor)
        limit = forms.whole_number(form.get("rate_limit")) or -1
        sharing.set_rate_limit(db, client_name=client.name, rate_limit=limit, actor=principal.actor)
        db.commit()
    except CityhubError as exc:
        db.rollback()
        field = str(exc.details.get("field", "_form"))
        message = t(f"apiclients.bad_{field}") if field in ("scopes", "rate_limit") else exc.message
        return _page(request, db, principal, errors={f"{client_id}:{field}": message}, status_code=422)
    return support.redirect("/admin/api-clients", flash=("apiclients.changed", {"name": client.name}))


@router.post("/admin/api-clients/keys/{prefix}/revoke", response_class=HTMLResponse)
def revoke_key(request: Request, db: DbSession, prefix: str, form: FormBody) -> Response:
    principal = _admin(request, db, form)
    try:
        sharing.revoke(db, prefix=prefix, actor=principal.actor)
    except (NotFound, CityhubError):
        raise PageError(404, "err.page_not_found") from None
    db.commit()
    return support.redirect("/admin/api-clients", flash=("apiclients.revoked", {"prefix": prefix}))
