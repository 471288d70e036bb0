"""The web UI: server-rendered workbenches over the same services, permissions and data scope as the REST API.

Pages: login/logout, intake (受理) with instant answers, similar orders and category suggestions, the order list
and detail with the life-cycle actions the user may take, the dispatcher's queue (待派单) and the leader
dashboard (领导驾驶舱). Routes only translate between forms and services: permission checks use
:mod:`cityhub.auth.permissions`, single orders go through the API's own scope guard, lists through the same
scope clause, and citizen data is masked by the API's read model.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import and_, false, func, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement
from starlette.datastructures import QueryParams

from cityhub.api.deps import DbSession, known_path_ids
from cityhub.auth import permissions
from cityhub.auth import phone as citizen_phone
from cityhub.auth import service as auth
from cityhub.auth.errors import AccountLocked, TooManyAttempts, Unauthenticated
from cityhub.auth.principal import Principal
from cityhub.auth.scope import (
    Reading,
    check_attach,
    may_read,
    order_in_scope,
    own_units,
    readable,
    reading_clause,
    scope_of,
    search_within,
    sees_personal_data,
    shown_text,
    unit_scope,
)
from cityhub.auth.settings import get_auth_settings
from cityhub.auth.views import _clear_session_cookies, _client_ip, _set_session_cookies
from cityhub.config import get_settings
from cityhub.db import MAX_ID, utcnow
from cityhub.errors import (
    BadParameter,
    CityhubError,
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from cityhub.intake import enterprise
from cityhub.knowledge.models import KnowledgeEntry, ReplyCheck
from cityhub.monitoring import service as monitoring_service
from cityhub.monitoring.rules import figure, is_confidence
from cityhub.nlp.reply_quality import WEAK_THRESHOLD, ReplyQuality
from cityhub.org.aliases import FROM_ORDER_MAX, AliasOutcome, AliasWish
from cityhub.org.models import AliasKind, Role, Unit, UnitTier, User
from cityhub.org.places import Place, PlaceSource
from cityhub.org.service import UnitRef, unit_directory
from cityhub.web import exemption_pages, forms, machine_text, support, theme, vendor
from cityhub.web.forms import field_message
from cityhub.web.i18n import LANGUAGE_COOKIE, LANGUAGES, Translator
from cityhub.web.map_pages import place_map
from cityhub.web.support import Form, FormBody, LoginRequired, PageError, render
from cityhub.workorders import files, held, tracking
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import (
    ANSWERED_STATES,
    ASSIGN_DEADLINE,
    ASSIST_STEPS,
    AWAITING_DISPATCH,
    CLOSED_STATES,
    MAX_EXTENSION_DAYS,
    NOT_A_PROBLEM_OF_ITS_OWN,
    OPEN_STATES,
    SUGGEST_UNIT,
    TERMINAL_STATES,
    TRANSITIONS,
    URGENCY_RANK,
    Action,
    AssistStatus,
    State,
    required_params,
)
from cityhub.workorders.models import (
    MACHINE_CHANNELS,
    MERGED_IN,
    OVERDUE_NOW_SQL,
    AppealType,
    Category,
    Channel,
    ImportBatch,
    Order,
    OrderAssist,
    OrderEvent,
    SlaStatus,
    Urgency,
)
from cityhub.workorders.schemas import (
    REASON_MAX_CHARS,
    TEXT_MAX_CHARS,
    TITLE_MAX_CHARS,
    ImportBatchRead,
    OrderCreate,
    OrderFilter,
    OrderRead,
    OrderSort,
)
from cityhub.workorders.sla import terms_for
from cityhub.workorders.sms import Rating
from cityhub.workorders.views import _order as scoped_order
from cityhub.workorders.views import _read as read_model
from cityhub.workorders.views import actions_of, import_batch_read, order_import_batch, reply_awaits, trail_of

if TYPE_CHECKING:
    from cityhub.dispatch.service import PickOutcome

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
# The order list's tabs (常用视图) count their orders up to this many and show one less with a plus beyond (99+):
# a number one takes in at a glance, and each count reads at most this many rows.
VIEW_COUNT_CAP = 100
# The list's own 共 N 件: counted up to this many rows (beyond, 999+), whatever the district's size.
LIST_COUNT_CAP = 1000
# The order list's state choices standing for several states, each a figure the dashboard links to: 在办, every
# open state (a handler's work to do, their workbench; the dashboard's open); 已办结, closed resolved or not (the
# enterprise appeals' 已办结); 有效工单, every state but a merged duplicate's and a cancelled call's (the dashboard's
# and the 专报's 有效工单, ``lifecycle.NOT_A_PROBLEM_OF_ITS_OWN``).
OPEN_CHOICE = "open"
STATE_GROUPS: dict[str, list[State]] = {
    OPEN_CHOICE: sorted(OPEN_STATES),
    "closed": sorted(CLOSED_STATES),
    # 已答复或办结: answered, called back, closed — a leader's 交办已答复, where the outcome of a 交办 is checked.
    "answered": sorted(ANSWERED_STATES),
    "valid": sorted(s for s in State if s not in NOT_A_PROBLEM_OF_ITS_OWN),
}
INTAKE_FIELDS = (
    "channel",
    "appeal_type",
    "citizen_name",
    "citizen_phone",
    "title",
    "content",
    "address",
    "lat",
    "lng",
    "category_id",
    "urgency",
    *enterprise.KEYS,  # 企业呼: who asks and for what
)
_REQUIRED = re.compile(r"'(\w+)' is required")
# Refusals of the life cycle about what was typed that the life cycle does not name a field of (its ``BadParameter``
# does: days, the unit chosen, 是否满意, the master): reason → the form's field.
_INPUT_REASONS = {
    "closing without a callback needs a reason": "reason",
    "closing without a callback needs resolved=true|false": "resolved",
}


# ----------------------------------------------------------------------------------------- shared helpers


def _fail(db: Session) -> None:
    """Undo whatever a refused form post may have written before the error page renders in the same session."""
    db.rollback()


def _refusal(
    db: Session, t: Translator, exc: CityhubError | StaleDataError, *, citizen: bool = False
) -> tuple[CityhubError, str, dict[str, str]]:
    """A refused form post undone (``_fail``), and the error with its readable message and field errors; a stale
    write (another request changed the order first) counts as a conflict. ``citizen``: as :func:`error_text`."""
    _fail(db)
    error = exc if isinstance(exc, CityhubError) else Conflict("stale")
    message, fields = error_text(t, error, citizen=citizen)
    if "entry_id" in fields:  # a knowledge entry retired since the page was shown: the page's message, not a field's
        message = fields.pop("entry_id")
    return error, message, fields


_ASSISTS_WAITING = re.compile(r"assisting units \[.*\] have not replied yet")
_NOT_ASSISTING = re.compile(r"assisting unit \S+ is (not assisting|\w+)")
_MORE_THAN_ASKED = re.compile(r"days must be at most the ([\d.]+) asked for")  # 批准延期 grants no more than asked


def _typed_field(exc: InvalidTransition) -> str | None:
    """The form's field a refusal is about when what was typed is wrong, not the order's state."""
    if isinstance(exc, BadParameter):
        return str(exc.details["field"])
    return _INPUT_REASONS.get(exc.reason or "")


def _reason_text(t: Translator, reason: str) -> str:
    """A life-cycle guard's refusal in the user's language (``reason.*``; those naming units or states by pattern)."""
    if _ASSISTS_WAITING.fullmatch(reason):
        return t("reason.assists_waiting")
    if m := _NOT_ASSISTING.fullmatch(reason):
        if m.group(1) == "not assisting":
            return t("reason.not_an_assist")
        return t("reason.not_assisting", status=t.label("assist", m.group(1)))
    if m := _MORE_THAN_ASKED.fullmatch(reason):
        return t("reason.more_than_asked", asked=m.group(1))
    return t(f"reason.{reason}", reason)


def error_text(t: Translator, exc: CityhubError, *, citizen: bool = False) -> tuple[str, dict[str, str]]:
    """A readable message for a refused action, and the errors of single fields (field → message). ``citizen``: the
    reader is the citizen who appealed, whose forms ask in their own words (``field.<action>.<name>.citizen``)."""
    fields: dict[str, str] = {}
    if isinstance(exc, InvalidTransition):
        if m := _REQUIRED.fullmatch(exc.reason or ""):
            name = m.group(1)
            # Named as the action's form labels it (催办's reason is its 催办内容; to the citizen, 是否满意 is the
            # question they were asked, 您对答复满意吗), else by its general name; a list left at "—" (是否满意, 单位)
            # is chosen from, not filled in.
            label = t(f"field.{exc.action}.{name}", t(f"field.{name}"))
            if citizen:
                label = t(f"field.{exc.action}.{name}.citizen", label)
            fields[name] = t("err.choose" if name in _CHOSEN_FIELDS else "err.required", field=label)
            return t("err.validation"), fields
        if field_name := _typed_field(exc):
            # What was typed is wrong, not the order's state: say it at the field.
            fields[field_name] = _reason_text(t, exc.reason or "")
            return t("err.validation"), fields
        text = t("err.invalid_transition", state=t.label("state", exc.state), action=t.label("action", exc.action))
        if exc.reason:
            text += " " + _reason_text(t, exc.reason)
        return text, fields
    if isinstance(exc, Conflict):
        return t("err.conflict"), fields
    if isinstance(exc, NotFound):
        return t("err.not_found.citizen" if citizen else "err.not_found"), fields
    if isinstance(exc, PermissionDenied):
        if exc.details.get("routing"):
            return t("err.not_routed_here"), fields
        return t("err.not_lead_unit" if "lead_unit_id" in exc.details else "err.forbidden"), fields
    if isinstance(exc, ValidationFailed):
        for problem in exc.details.get("errors", []):
            name = str(problem.get("field", "")).split(".")[0]
            fields[name if name in INTAKE_FIELDS else "_form"] = field_message(t, str(problem.get("message", "")))
        if "field" in exc.details:
            fields[str(exc.details["field"])] = field_message(t, exc.message)
        return t("err.validation"), fields
    return t("err.generic", message=exc.message), fields


def _directory(db: Session) -> dict[int, str]:
    """Every unit's name by id, for the machine-written explanations (``machine_text.explain``)."""
    return {unit_id: unit.name for unit_id, unit in unit_directory(db).items()}


def _chosen_place(place_units: list[tuple[UnitRef, list[UnitRef]]], place: Place | None) -> str:
    """The name of the unit the order page's place correction has chosen as it is shown: the order's community, else
    its street, else the first street listed (what the browser selects)."""
    names = {u.id: u.name for street, communities in place_units for u in (street, *communities)}
    for unit_id in (place.community_id, place.street_id) if place is not None else ():
        if unit_id in names:
            return names[unit_id]
    return place_units[0][0].name if place_units else ""


def _place_units(db: Session) -> list[tuple[UnitRef, list[UnitRef]]]:
    """Active streets, each with its active communities, by code: where an order can be placed (from the process's
    directory of units, not read for each page)."""
    units = sorted((u for u in unit_directory(db).values() if u.active), key=lambda u: u.code)
    streets: dict[int | None, tuple[UnitRef, list[UnitRef]]] = {
        u.id: (u, []) for u in units if u.tier == UnitTier.STREET
    }
    for unit in units:
        if unit.tier == UnitTier.COMMUNITY and unit.parent_id in streets:
            streets[unit.parent_id][1].append(unit)
    return list(streets.values())


# ---------------------------------------------------------------------------------------- status and login


@router.get("/", response_class=HTMLResponse)
def index(request: Request, db: DbSession) -> Response:
    """Signed-in users go to their role's workbench; others see the public status page and the login link."""
    principal = support.principal_of(request, db)
    if principal is not None:
        return support.redirect(support.home_of(principal))
    from cityhub.main import public_summary, status_summary

    summary = public_summary(status_summary())
    return render(request, "status.html", summary=summary, jobs=summary["jobs"], pending_kind=_pending_kind())


def _pending_kind() -> str:
    """What an order in the background dispatcher's backlog waits for, as its notices say: "dispatch" (automatic
    dispatch, after a duplicate check when intake left one), "suggest" (automatic dispatch off: its category and
    suggested units, after that check) or "duplicate_check" (the check alone)."""
    from cityhub.dispatch import background

    return "dispatch" if background.decides() else "suggest" if background.suggests() else "duplicate_check"


@router.get("/lang/{code}")
def set_language(code: str, request: Request) -> Response:
    """Remember the chosen UI language and go back to the page the user came from."""
    back = support.safe_next(request.query_params.get("next"), "/")
    response = support.redirect(back)
    if code in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/theme/{choice}")
def set_theme(choice: str, request: Request) -> Response:
    """Remember the chosen colour theme (``web.theme``) and go back to the page the user came from; 跟随系统 forgets
    any earlier choice."""
    if choice not in theme.THEMES:
        return render(
            request,
            "error.html",
            status_code=404,
            message_key="theme.unknown",
            message_params={"choice": choice, "choices": ", ".join(theme.THEMES)},
        )
    response = support.redirect(support.safe_next(request.query_params.get("next"), "/"))
    if choice == theme.SYSTEM:
        response.delete_cookie(theme.THEME_COOKIE, path="/")
    else:
        response.set_cookie(theme.THEME_COOKIE, choice, max_age=365 * 86400, samesite="lax", path="/")
    return response


def _login_page(request: Request, *, username: str = "", error: str | None = None, status_code: int = 200) -> Response:
    import secrets

    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        username=username,
        error=error,
        next=support.safe_next(request.query_params.get("next"), ""),
    )
    support.set_login_csrf(response, token)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, db: DbSession) -> Response:
    principal = support.principal_of(request, db)
    if principal is not None:
        return support.redirect(support.safe_next(request.query_params.get("next"), support.home_of(principal)))
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, db: DbSession, form: FormBody) -> Response:
    """Password login through the identity service; the same session and CSRF cookies as the API's login."""
    username = form.get("username").strip()
    if not support.check_login_csrf(request, form):
        return _login_page(request, username=username, error="login.expired", status_code=403)
    try:
        result = auth.login(
            db,
            username=username,
            password=form.get("password"),
            client_ip=_client_ip(request),
            user_agent=request.headers.get("user-agent"),
            replacing=request.cookies.get(get_auth_settings().session_cookie_name),
        )
        db.flush()
    except CityhubError as exc:
        _fail(db)
        key = (
            "login.locked"
            if isinstance(exc, AccountLocked)
            else "login.throttled"
            if isinstance(exc, TooManyAttempts)
            else "login.failed"
            if isinstance(exc, Unauthenticated)
            else "err.validation"
        )
        page = _login_page(request, username=username, error=key, status_code=exc.http_status)
        page.headers.update(exc.http_headers)  # a throttled login says when to try again
        return page
    target = support.safe_next(form.get("next"), "")
    if not target:
        target = support.home_of(auth.authenticate_session(db, token=result.session_token))
    response = support.redirect(target)
    _set_session_cookies(response, result)
    response.delete_cookie(support.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, db: DbSession, form: FormBody) -> Response:
    principal = support.principal_of(request, db)
    response = support.redirect("/login", flash=("login.bye", {}))
    if principal is not None:
        support.check_csrf(request, principal, form)
        auth.end_session(db, session_id=principal.credential_id)
    _clear_session_cookies(response)
    return response


# 忘记密码: a citizen resets a forgotten password with a code sent to their verified phone (auth.phone.request_reset,
# reset_password). Both steps answer alike whatever the name typed is; the anonymous forms carry the login form's
# cookie-matched token.

RESET_PATH = "/login/reset"


def _reset_page(
    request: Request,
    *,
    step: str = "ask",
    name: str = "",
    code: str = "",
    errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """忘记密码's page: ``step`` ``ask`` (the login name or phone) or ``code`` (the code and the new password);
    ``errors``: each field's locale key, translated here; ``error``: the page's."""
    import secrets

    t = support.translator(request)
    token = secrets.token_urlsafe(24)
    values: dict[str, Any] = {"minutes": citizen_phone.CODE_MINUTES, "tries": citizen_phone.MAX_ATTEMPTS}
    response = render(
        request,
        "login_reset.html",
        status_code=status_code,
        login_csrf=token,
        step=step,
        name=name,
        code=code,
        errors={field: t(key, **values) for field, key in (errors or {}).items()},
        error=error,
        rules=values | {"seconds": citizen_phone.RESEND_SECONDS, "sends": citizen_phone.MAX_SENDS},
    )
    support.set_login_csrf(response, token)  # path /login: the login form's and these
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(RESET_PATH, response_class=HTMLResponse)
def reset_form(request: Request) -> Response:
    return _reset_page(request)


@router.post(RESET_PATH, response_class=HTMLResponse)
def reset_ask(request: Request, db: DbSession, form: FormBody) -> Response:
    """Send a code to the verified phone of the citizen account named (auth.phone.request_reset); the same answer
    whether it names one or not: the code step."""
    name = (form.text("name") or "")[:64]
    if not support.check_login_csrf(request, form):
        return _reset_page(request, name=name, error="login.expired", status_code=403)
    if not name:
        return _reset_page(request, errors={"name": "reset.name_missing"}, status_code=422)
    try:
        citizen_phone.request_reset(db, name=name, client_ip=_client_ip(request))
        db.commit()
    except TooManyAttempts as exc:
        _fail(db)
        page = _reset_page(request, name=name, error="reset.throttled", status_code=429)
        page.headers.update(exc.http_headers)
        return page
    return _reset_page(request, step="code", name=name)


@router.post(RESET_PATH + "/confirm", response_class=HTMLResponse)
def reset_confirm(request: Request, db: DbSession, form: FormBody) -> Response:
    """The code and a new password (auth.phone.reset_password): done, every session of the account has ended and the
    login page says to sign in with the new password."""
    name, code = (form.text("name") or "")[:64], (form.text("code") or "")[:16]
    new, repeated = form.get("new_password"), form.get("new_password_again")
    if not support.check_login_csrf(request, form):
        return _reset_page(request, step="code", name=name, error="login.expired", status_code=403)
    errors = {}
    if not code:
        errors["code"] = "reset.code_missing"
    if not new:
        errors["new_password"] = "reset.password_missing"
    elif new != repeated:
        errors["new_password_again"] = "account.pw_mismatch"
    if errors:
        return _reset_page(request, step="code", name=name, code=code, errors=errors, status_code=422)
    try:
        citizen_phone.reset_password(db, name=name, code=code, password=new, client_ip=_client_ip(request))
        db.commit()
    except CityhubError as exc:
        _fail(db)
        if isinstance(exc, TooManyAttempts):
            page = _reset_page(request, step="code", name=name, error="reset.throttled", status_code=429)
            page.headers.update(exc.http_headers)
            return page
        if (exc.details or {}).get("field") == "code":
            errors = {"code": "reset.code_wrong"}
        else:  # the code is right: kept in the form, the password said why it is refused
            errors = {"new_password": forms.password_error(exc) or "err.validation"}
            return _reset_page(request, step="code", name=name, code=code, errors=errors, status_code=exc.http_status)
        return _reset_page(request, step="code", name=name, errors=errors, status_code=exc.http_status)
    response = support.redirect("/login", flash=("login.reset_done", {}))
    _clear_session_cookies(response)  # this browser's session, if it had one, has ended with the others
    return response


# ------------------------------------------------------------------------------------------------ admin


@router.get("/admin", response_class=HTMLResponse)
def admin_home(request: Request, db: DbSession) -> Response:
    """系统管理: the administration pages the user's role may use."""
    principal = support.require_user(request, db)
    pages = support.admin_pages(principal, db)
    if not pages:
        raise PageError(403, "err.forbidden")
    return render(request, "admin.html", principal=principal, pages=pages)


LOG_SHOWN = 100
# The configuration log's fields that hold a unit's or a category's id, shown by its name (a unit's parent is a
# unit, a category's a category).
_LOG_UNIT_FIELDS = frozenset({"unit_id", "target_unit_id", "place_unit_id"})


def _log_reference(area: str, field: str) -> str | None:
    """What a configuration log entry's ``field`` refers to by id: "unit", "category" or nothing."""
    if field in _LOG_UNIT_FIELDS or (field == "parent_id" and area == "unit"):
        return "unit"
    if field == "category_id" or (field == "parent_id" and area == "category"):
        return "category"
    return None


@router.get("/admin/log", response_class=HTMLResponse)
def admin_log(request: Request, db: DbSession) -> Response:
    """系统日志: who changed the platform's settings, when, from what to what (:mod:`cityhub.auditlog`); an area it
    does not cover shows every area."""
    from cityhub import auditlog
    from cityhub.workorders import categories

    principal = support.require_user(request, db, permissions.LOG_READ)
    area = request.query_params.get("area") or ""
    area = area if area in auditlog.AREAS else ""
    target = (request.query_params.get("target") or "").replace("\x00", "").strip()[:120]
    offset = forms.whole_number(request.query_params.get("offset") or "0") or 0
    entries, more = auditlog.entries(db, area=area or None, target=target or None, limit=LOG_SHOWN, offset=offset)
    ids: dict[str, set[int]] = {"unit": set(), "category": set()}
    for e in entries:
        for name, pair in e.changes.items():
            if kind := _log_reference(e.area, name):
                ids[kind].update(v for v in pair if isinstance(v, int) and not isinstance(v, bool))
    # A category's entry names it by its code, which never changes: its page, by the cached taxonomy.
    logged = {e.target for e in entries if e.area == "category"}
    category_pages = (
        {ref.code: ref.id for ref in categories.taxonomy(db).by_id.values() if ref.code in logged} if logged else {}
    )
    return render(
        request,
        "admin_log.html",
        principal=principal,
        entries=entries,
        reference=_log_reference,
        names={
            "unit": support.names_of(db, Unit, ids["unit"]),
            "category": support.names_of(db, Category, ids["category"]),
        },
        category_pages=category_pages,
        more=more,
        areas=auditlog.AREAS,
        area=area,
        target=target,
        offset=offset,
    )


# ------------------------------------------------------------------------------------------------ account


def _account_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    revoke: bool = False,
    status_code: int = 200,
    phone_value: str = "",
    error_values: dict[str, Any] | None = None,
) -> Response:
    t = support.translator(request)
    user = db.get(User, principal.user_id)
    # A citizen's account is used on these pages: the API-token section is noise to them, shown only to one who has
    # made tokens over the API (a resident's own app), to see and revoke them.
    tokens = (
        auth.list_tokens(db, user_id=principal.user_id)
        if permissions.allows(principal.role, permissions.TOKENS)
        else None
    )
    if tokens == [] and principal.role == Role.CITIZEN:
        tokens = None
    return render(
        request,
        "account.html",
        principal=principal,
        status_code=status_code,
        account=user,
        # 我的手机号: a citizen's, to set and verify (auth.phone); staff see theirs, set by an administrator
        phone=citizen_phone.status(db, user_id=principal.user_id),
        phone_rules={
            "minutes": citizen_phone.CODE_MINUTES,
            "tries": citizen_phone.MAX_ATTEMPTS,
            "seconds": citizen_phone.RESEND_SECONDS,
            "sends": citizen_phone.MAX_SENDS,
        },
        phone_value=phone_value,
        unit_name=support.names_of(db, Unit, {principal.unit_id}).get(principal.unit_id or 0),
        tokens=tokens,
        errors={name: t(key, **(error_values or {})) for name, key in (errors or {}).items()},
        revoke=revoke,
    )


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, db: DbSession) -> Response:
    """My account (我的账户): who I am, changing my password, my API tokens."""
    return _account_page(request, db, support.require_user(request, db))


@router.post("/account/password", response_class=HTMLResponse)
def account_password(request: Request, db: DbSession, form: FormBody) -> Response:
    """Change my password (auth.change_password): my other sessions end, this one stays."""
    principal = support.require_user(request, db, form=form)
    new, repeated = form.get("new_password"), form.get("new_password_again")
    revoke = form.get("revoke_tokens") == "on"
    if new != repeated:
        return _account_page(
            request, db, principal, errors={"new_password_again": "account.pw_mismatch"}, revoke=revoke, status_code=422
        )
    try:
        done = auth.change_password(
            db, principal=principal, current=form.get("current_password"), new=new, revoke_api_tokens=revoke
        )
    except CityhubError as exc:
        _fail(db)
        details = exc.details or {}
        if isinstance(exc, AccountLocked):
            errors = {"current_password": "login.locked"}
        elif details.get("field") == "current_password":
            errors = {"current_password": "account.pw_wrong"}
        else:
            errors = {"new_password": forms.password_error(exc) or "err.validation"}
        return _account_page(request, db, principal, errors=errors, revoke=revoke, status_code=exc.http_status)
    flash = ("account.pw_changed", {"sessions": done.sessions_ended, "tokens": done.tokens_revoked})
    return support.redirect("/account", flash=flash)


def _phone_error(exc: CityhubError) -> tuple[str, dict[str, Any]]:
    """The account page's words for a refusal of :mod:`cityhub.auth.phone`: its locale key and values."""
    details = exc.details or {}
    if isinstance(exc, TooManyAttempts):
        return "account.phone_wait", {"seconds": exc.retry_after}
    if details.get("expired"):
        return "account.code_expired", {"minutes": citizen_phone.CODE_MINUTES}
    if details.get("spent") or details.get("tries_left") == 0:
        return "account.code_spent", {}
    if "tries_left" in details:
        return "account.code_wrong", {"n": details["tries_left"]}
    if details.get("field") == "code" and isinstance(exc, Conflict):
        return "account.code_none", {}
    if details.get("mobile") is False:
        return "account.phone_not_mobile", {}
    if details.get("relay") is False:
        return "account.phone_no_relay", {}
    if isinstance(exc, ValidationFailed) and details.get("field") == "phone":
        return "account.phone_invalid", {}
    return "err.validation", {}


def _phone_refused(
    request: Request, db: Session, principal: Principal, exc: CityhubError, field: str, typed: str = ""
) -> Response:
    """The account page again, the refusal of a phone step said at its field (``phone`` or ``code``)."""
    _fail(db)
    key, values = _phone_error(exc)
    return _account_page(
        request, db, principal, errors={field: key}, error_values=values, status_code=exc.http_status, phone_value=typed
    )


@router.post("/account/phone", response_class=HTMLResponse)
def account_phone(request: Request, db: DbSession, form: FormBody) -> Response:
    """Set my phone (a citizen's: auth.phone.set_phone), checked as an appeal's phone is; a new number is unverified
    and a code goes to it at once (auth.phone.send_code). Kept even when the code cannot go (a landline): it is then
    the appeals' phone, unverified."""
    principal = support.require_user(request, db, form=form)
    typed = form.text("phone") or ""
    try:
        before = citizen_phone.status(db, user_id=principal.user_id)
        now = citizen_phone.set_phone(db, user_id=principal.user_id, phone=typed, actor=principal.actor)
    except CityhubError as exc:
        return _phone_refused(request, db, principal, exc, "phone", typed)
    db.commit()
    if not now.phone:
        return support.redirect("/account#my-phone", flash=("account.phone_removed", {}))
    if now.verified or (now.phone == before.phone and now.pending):
        return support.redirect("/account#my-phone", flash=("account.phone_unchanged", {}))
    return _send_phone_code(request, db, principal, "phone")


@router.post("/account/phone/code", response_class=HTMLResponse)
def account_phone_code(request: Request, db: DbSession, form: FormBody) -> Response:
    """Send me a new code (auth.phone.send_code): at most one a minute and five an hour."""
    principal = support.require_user(request, db, form=form)
    return _send_phone_code(request, db, principal, "code")


def _send_phone_code(request: Request, db: Session, principal: Principal, field: str) -> Response:
    """A code sent to the account's phone (``auth.phone.send_code``), said in the flash — or the page again with why
    not at ``field``."""
    try:
        sent = citizen_phone.send_code(db, user_id=principal.user_id)
    except CityhubError as exc:
        return _phone_refused(request, db, principal, exc, field)
    db.commit()
    return support.redirect("/account#my-phone", flash=("account.code_sent", {"phone": sent.masked}))


@router.post("/account/phone/verify", response_class=HTMLResponse)
def account_phone_verify(request: Request, db: DbSession, form: FormBody) -> Response:
    """Type back the code (auth.phone.verify): my phone is verified, and the appeals registered with it are mine."""
    principal = support.require_user(request, db, form=form)
    try:
        citizen_phone.verify(db, user_id=principal.user_id, code=form.text("code") or "", actor=principal.actor)
    except CityhubError as exc:
        return _phone_refused(request, db, principal, exc, "code")
    db.commit()
    return support.redirect("/account#my-phone", flash=("account.phone_verified_done", {}))


@router.post("/account/tokens/{token_id}/revoke", response_class=HTMLResponse)
def account_revoke_token(token_id: int, request: Request, db: DbSession, form: FormBody) -> Response:
    principal = support.require_user(request, db, permissions.TOKENS, form=form)
    auth.revoke_token(db, user_id=principal.user_id, token_id=token_id)  # NotFound: not this user's token
    return support.redirect("/account", flash=("account.token_revoked_done", {}))


# ------------------------------------------------------------------------------------------------- intake


@dataclass
class Assistance:
    """What the operator sees beside the intake form."""

    kb: list[Any]
    duplicates: list[Any]
    similar: list[Any]
    top3: list[tuple[str, float, int | None]] | None  # (label, probability, category id); None: no classifier
    ready: bool  # enough text to look anything up
    # Where intake will place the appeal (its street and community, and from what), and those units' names.
    place: Place = field(default_factory=Place)
    place_names: dict[int, str] = field(default_factory=dict)
    # The classifier knows too little of the text to go by (``dispatch_min_evidence``): its guess is shown as such.
    classify_doubtful: bool = False
    # A classifier is configured but cannot be read (missing or broken artefact): top3 is None for that reason.
    classifier_unavailable: bool = False
    # What the reader's role uses (:func:`_assisted_with`): the knowledge base's answers (``kb``) and the classifier's
    # odds (``top3``); neither is looked up for a reader who is not shown it.
    answers_shown: bool = False
    odds_shown: bool = False
    # Of the duplicates and similar cases, those the caller made (the phone typed): 同一来电号码 beside them.
    same_caller: set[int] = field(default_factory=set)
    # The orders the reader may register the appeal into at once (受理并并入, ``permissions.INTAKE_MERGE``): of the
    # duplicates and similar cases, those still being handled in their scope — a similar case too, the operator judging.
    merge_targets: set[int] = field(default_factory=set)
    # 常见问题解答: to a citizen (``faq_shown``), the public entries that may answer their question, in their words.
    faq: list[FaqAnswer] = field(default_factory=list)
    faq_shown: bool = False
    # 涉及人身财产安全: the safety words the caller's account holds (``intake.service.safety_words``) while the urgency
    # is still 一般 — 特急 suggested, to whoever chooses the urgency (not a citizen).
    safety: list[str] = field(default_factory=list)


# An answer much longer than this is folded after its first sentences up to here (a phone shows three answers one
# above the other).
FAQ_LEAD_CHARS = 120


@dataclass(frozen=True)
class FaqAnswer:
    """A public knowledge entry as a citizen reads it: its question, its answer's first sentences (``lead``) and the
    rest folded (``rest``; empty: the answer is short and shown whole) — no score, no matched words."""

    entry_id: int
    question: str
    lead: str
    rest: str

    @classmethod
    def of(cls, entry: Any) -> FaqAnswer:
        answer = entry.answer.strip()
        if len(answer) <= FAQ_LEAD_CHARS + 40:  # folding would hide a line or two
            return cls(entry.id, entry.question, answer, "")
        cut = max((answer.rfind(mark, 0, FAQ_LEAD_CHARS) for mark in "。！？；\n"), default=-1)
        cut = cut + 1 if cut >= FAQ_LEAD_CHARS // 3 else FAQ_LEAD_CHARS
        return cls(entry.id, entry.question, answer[:cut].rstrip(), answer[cut:].lstrip())


def _intake_payload(form: Form) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "channel": form.get("channel") or Channel.HOTLINE.value,
        "appeal_type": form.get("appeal_type") or AppealType.CONSULTATION.value,
        "urgency": form.get("urgency") or Urgency.NORMAL.value,
        "title": form.get("title"),
        "content": form.get("content"),
    }
    for name in ("citizen_name", "citizen_phone", "address"):
        payload[name] = form.text(name)
    for name in ("lat", "lng"):  # the phone's position, when the reporter shared it (pydantic checks the range)
        if form.text(name):
            payload[name] = form.text(name)
    category = form.get("category_id").strip()
    if category:
        payload["category_id"] = category  # pydantic reports a non-number as a field error
    asking = {key: text for key in enterprise.KEYS if (text := form.text(key))}
    if asking:
        payload["attributes"] = asking
    return payload


def _enterprise_checked(form: Form) -> None:
    """An enterprise appeal's fields (企业呼) checked before the appeal, so that a refusal names its field on the
    form (the order's schema names only ``attributes``)."""
    try:
        enterprise.checked({key: form.get(key) for key in enterprise.KEYS})
    except enterprise.Refused as exc:
        raise ValidationFailed(str(exc), details={"field": exc.key}) from None


def _appeal_problems(t: Translator, form: Form) -> dict[str, str]:
    """The problems of the appeal's own fields (all but the enterprise's), by field."""
    from cityhub.intake.service import parse

    payload = _intake_payload(form)
    payload.pop("attributes", None)
    try:
        parse(payload)
    except ValidationFailed as exc:
        return error_text(t, exc)[1]
    return {}


def _classify(db: Session, title: str, content: str, assistance: Assistance) -> None:
    """The classifier's top three with their categories' ids (left None: no classifier, or one that cannot be
    read), and whether it knows too little of the text for them to mean anything."""
    from cityhub.dispatch.rules import reads_too_little
    from cityhub.dispatch.service import load_model
    from cityhub.nlp.text import order_text
    from cityhub.workorders.categories import find_category

    try:
        loaded = load_model()
    except CityhubError:  # the form still works; /healthz and the status page say what is wrong
        assistance.classifier_unavailable = True
        return
    if loaded is None:
        return
    prediction = loaded[0].predict([order_text(title, content)])[0]
    assistance.top3 = []
    for label, probability in prediction.top3:
        category = find_category(db, name_or_path=label)
        assistance.top3.append((label, float(probability), category.id if category else None))
    assistance.classify_doubtful = reads_too_little(prediction.evidence, get_settings().dispatch_min_evidence)


def _typed_so_far(payload: dict[str, Any]) -> OrderCreate | None:
    """The appeal being typed, less the fields that are not well-formed yet (a phone number in progress): those
    must not hide the suggestions, nor change what the rest says — its kind (no 秒回 for a complaint), its address."""
    from cityhub.intake.service import parse

    while True:
        try:
            return parse(payload)
        except ValidationFailed as exc:
            bad = {str(p.get("field", "")).split(".")[0] for p in exc.details.get("errors", [])}
            bad &= payload.keys() - {"channel", "title", "content"}
            if not bad:
                return None
            payload = {k: v for k, v in payload.items() if k not in bad}


def _assistance(db: Session, principal: Principal, form: Form) -> Assistance:
    """Instant answers, duplicates, similar past orders and category suggestions for the appeal being typed.

    Read-only: it never creates an order; orders outside the user's scope are left out, as in the API.
    """
    from cityhub.intake import dedupe
    from cityhub.intake.service import safety_words
    from cityhub.knowledge import service as kb

    title, content = form.get("title").strip(), form.get("content").strip()
    if len(title) + len(content) < 2:
        return Assistance([], [], [], None, ready=False)
    payload = _intake_payload(form)
    chosen = forms.whole_number(form.get("category_id"))
    if chosen is None or db.get(Category, chosen) is None:
        payload.pop("category_id", None)  # half-typed or gone (deactivated while the form was open): the text alone
    payload.update(title=title[:TITLE_MAX_CHARS], content=content[:TEXT_MAX_CHARS])
    data = _typed_so_far(payload)
    if data is None:
        return Assistance([], [], [], None, ready=False)
    scope = scope_of(db, principal)
    place = orders.appeal_place(db, data)
    reading = reading_clause(db, principal, scope)  # to open: the similar cases are chosen among those
    found = dedupe.check(db, data=data, placed=place, shown_to=reading)
    read = dedupe.DedupeRead.of(found, reader=principal)
    duplicates = [d for d in read.duplicates if order_in_scope(db, scope, d.order_id)]  # to merge into
    # A possible duplicate listed above is not listed again among the similar cases (with a second 受理并并入).
    listed = {d.order_id for d in duplicates}
    similar = [c for c in read.similar if c.order_id not in listed][:5]
    # The caller ringing again about what they reported, in other words: their open case at the place is a duplicate
    # too, though its text scores lower. Looked up only for who reads callers' numbers (来电历史's roles).
    phones = _caller_phones(form) if principal.role in permissions.UNMASKED_ROLES else set()
    known = {d.order_id for d in duplicates}
    cases = {c.order_id: c.score for c in similar if c.order_id not in known}
    again = dedupe.repeated_by_caller(db, data=data, placed=place, phones=phones, cases=cases)
    duplicates += dedupe.DedupeRead.of(dedupe.DedupeResult(duplicates=again), reader=principal).duplicates
    similar = [c for c in similar if c.order_id not in {d.order_id for d in duplicates}]
    callers = _made_by(db, phones, [d.order_id for d in duplicates] + [c.order_id for c in similar])
    answers_shown, odds_shown = _assisted_with(principal)
    answers = kb.instant_answer_candidates(db, data=data, limit=3) if answers_shown else []
    # A citizen reads the public answers to their question before they file it (never an entry kept for staff).
    faq_shown = principal.role == Role.CITIZEN
    faq = [FaqAnswer.of(s.entry) for s in kb.self_help_answers(db, data=data, limit=3)] if faq_shown else []
    names = unit_directory(db)
    place = place or Place()
    place_names = {i: names[i].name for i in (place.street_id, place.community_id) if i is not None and i in names}
    assistance = Assistance(answers, duplicates, similar, None, True, place, place_names, same_caller=callers)
    assistance.answers_shown, assistance.odds_shown = answers_shown, odds_shown
    assistance.faq, assistance.faq_shown = faq, faq_shown
    if principal.role != Role.CITIZEN and data.urgency == Urgency.NORMAL:
        assistance.safety = safety_words(title, content)
    if permissions.allows(principal.role, permissions.INTAKE_MERGE):
        bar = dedupe.get_dedupe_settings().merge_offer_min_score
        assistance.merge_targets = {d.order_id for d in duplicates if d.state in OPEN_STATES} | {
            c.order_id
            for c in similar
            if c.state in OPEN_STATES
            and (c.score >= bar or c.order_id in callers)
            and order_in_scope(db, scope, c.order_id)
        }
    if odds_shown:
        _classify(db, title, content, assistance)
    return assistance


def _made_by(db: Session, phones: set[str], order_ids: list[int]) -> set[int]:
    """Of ``order_ids``, those made from one of ``phones`` (the caller's own earlier appeals)."""
    if not phones or not order_ids:
        return set()
    found = select(Order.id).where(Order.id.in_(sorted(set(order_ids))), Order.citizen_phone.in_(sorted(phones)))
    return set(db.scalars(found))


def _assisted_with(principal: Principal) -> tuple[bool, bool]:
    """Which of intake's suggestions the role uses, as the order page offers them: the knowledge base's answers to
    whoever may answer on the spot (秒回), the classifier's categories and odds to whoever routes and oversees orders —
    not a citizen, nor a unit's staff (a 网格员 reporting what they found on patrol needs neither)."""
    answers = permissions.allows(principal.role, permissions.act(Action.INSTANT_ANSWER))
    odds = principal.role != Role.CITIZEN and principal.role not in permissions.UNIT_STAFF_ROLES
    return answers, odds


# The intake form's fields a picking map writes and the elements it speaks through (intake.html).
PLACE_PICK = {"lat": "f-lat", "lng": "f-lng", "status": "place-where", "clear": "place-clear"}


def _intake_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    assistance: Assistance | None = None,
    status_code: int = 200,
    dropped: list[str] | None = None,
    held_files: list[held.Held] | None = None,
    held_notes: list[str] | None = None,
    previewed: bool = False,
    phone_order: CallerHistory | None = None,
) -> Response:
    """The intake form, with what was typed when it comes back refused. ``dropped``: the names of the files a refused
    post carried, which a page cannot give its file input back: named under it, to be chosen again (an inspector's
    photo was gone without a word, the report sent again without it). ``previewed``: the page 查询建议 asked for,
    the focus at its suggestions. ``phone_order``: the order whose number was left in the phone field (its
    ``earlier`` empty where the reader may not open it), linked under the field's refusal."""
    from cityhub.intake.models import InvalidCallKind
    from cityhub.intake.service import INSPECTOR_APPEAL

    inspector = principal.role == Role.INSPECTOR
    citizen = principal.role == Role.CITIZEN
    records_invalid = permissions.allows(principal.role, permissions.INVALID_CALL_RECORD)
    # An inspector files reports; an operator or a citizen says which kind of appeal it is (no kind chosen for them).
    kind = INSPECTOR_APPEAL.value if inspector else ""
    fresh = values is None
    if values is None:
        values = {"channel": Channel.HOTLINE.value, "appeal_type": kind}
        account = db.get(User, principal.user_id) if citizen and principal.user_id is not None else None
        if account is not None:
            # Their appeal goes under their account's name and phone unless they change them: shown, not left blank.
            values |= {"citizen_name": account.full_name or "", "citizen_phone": account.phone or ""}
    return render(
        request,
        "intake.html",
        principal=principal,
        status_code=status_code,
        values=values,
        citizen=citizen,
        inspector=inspector,
        errors=errors or {},
        error=error,
        assistance=assistance,
        channels=list(Channel),
        appeal_types=list(AppealType),
        urgencies=list(Urgency),
        categories=[] if citizen else support.active_categories(db),
        can_import=permissions.allows(principal.role, permissions.ORDERS_IMPORT),
        # 无效来电: one button per kind records a call that became no appeal (``intake_invalid_call``).
        invalid_kinds=list(InvalidCallKind) if records_invalid else [],
        needs=enterprise.NEEDS,
        can_see_callers=principal.role in permissions.UNMASKED_ROLES,
        # At the hotline's desk (the roles that pick the channel) a call begins with the caller's number, which brings
        # their earlier appeals up: a fresh form opens there, not 12 tabs below the menu. A citizen or an inspector
        # fills it on a phone, where a focused field would throw the keyboard over the page; a form coming back
        # (refused: its first marked field takes the focus, app.js; the suggestions asked for) keeps its place.
        focus_phone=fresh and not (citizen or inspector),
        file_settings=files.get_file_settings(),
        dropped=dropped or [],
        held_files=held_files or [],
        held_notes=held_notes or [],
        held_hours=files.get_file_settings().held_hours,
        previewed=previewed,
        phone_order=phone_order,
        # A citizen or an inspector on a phone picks the point on a small map (and hears where it lies) as well.
        place_map=place_map(support.translator(request), pick=PLACE_PICK, citizen=citizen)
        if citizen or inspector
        else None,
    )


@router.get("/intake", response_class=HTMLResponse)
def intake_form(request: Request, db: DbSession) -> Response:
    principal = support.require_user(request, db, permissions.ORDER_CREATE)
    return _intake_page(request, db, principal)


@router.post("/intake/assist", response_class=HTMLResponse)
def intake_assist(request: Request, db: DbSession, form: FormBody) -> Response:
    """The assistance panel as an htmx fragment, refreshed while the operator types."""
    principal = support.require_user(request, db, permissions.ORDER_CREATE, form=form)
    return render(
        request,
        "_assistance.html",
        fragment=True,
        principal=principal,
        citizen=principal.role == Role.CITIZEN,
        # the hotline's desk (the form's channel choice): its address field says where the appeal lies (intake.html)
        desk=principal.role not in (Role.CITIZEN, Role.INSPECTOR),
        assistance=_assistance(db, principal, form),
    )


# 来电历史: a returning caller's appeals, newest first, as many as the intake form lists beside the phone typed.
CALLER_HISTORY = 5


def _caller_phones(form: Form) -> set[str]:
    """The ways an appeal from the phone typed in the intake form may hold its number (none while it is still being
    typed): a mobile number is the caller's with China's country code or without (a caller ID reads +86…; the
    progress lookup compares them so too), an appeal stored either way theirs."""
    return tracking.phone_spellings(form.get("citizen_phone"))


@dataclass(frozen=True)
class CallerHistory:
    """来电历史: the appeals made from one phone (its shortest spelling, ``phone``), newest first — at most
    ``CALLER_HISTORY`` of them — and how many there are in all, within the reader's scope."""

    phone: str
    earlier: Sequence[Order]
    total: int
    # The listed orders' lead units' names (id → name): who has the caller's case now, what a caller asking after it
    # is told at once.
    units: dict[int, str] = field(default_factory=dict)
    # A merged appeal's master (merged id → (master id, number), the id None where the reader may not open it): the
    # order handled for it, named where its state said 已合并 alone.
    masters: dict[int, tuple[int | None, str]] = field(default_factory=dict)

    @staticmethod
    def running_limit(order: Order) -> datetime | None:
        """The time limit an earlier appeal runs on now, said beside it: an open order held by a unit (received or
        returned, waiting for dispatch, its old limit stopped; closed, none)."""
        if order.state not in OPEN_STATES or order.state in AWAITING_DISPATCH:
            return None
        return order.due_at


def _caller_history(
    db: Session, principal: Principal, spelled: set[str], *, besides: int | None = None
) -> CallerHistory:
    """The appeals from a phone (``spelled``: :func:`tracking.phone_spellings`) the reader may read, but order
    ``besides``."""
    conditions: list[ColumnElement[bool]] = [Order.citizen_phone.in_(sorted(spelled))]
    if besides is not None:
        conditions.append(Order.id != besides)
    if (clause := scope_of(db, principal).clause()) is not None:
        conditions.append(clause)
    earlier = db.scalars(
        select(Order).where(*conditions).order_by(Order.created_at.desc(), Order.id.desc()).limit(CALLER_HISTORY)
    ).all()
    total = len(earlier)
    if total == CALLER_HISTORY:  # as many as listed: there may be more
        total = db.scalar(select(func.count(Order.id)).where(*conditions)) or 0
    return CallerHistory(min(spelled, key=len), earlier, total, *_caller_names(db, principal, earlier))


def _caller_names(
    db: Session, principal: Principal, listed: Sequence[Order]
) -> tuple[dict[int, str], dict[int, tuple[int | None, str]]]:
    """What :class:`CallerHistory` names beside its ``listed`` orders: their lead units' names, and the masters of
    those merged — (id, number), the id None where the reader may not open it."""
    units = support.names_of(db, Unit, {o.lead_unit_id for o in listed})
    numbers = orders.order_numbers(db, (o.master_order_id for o in listed))
    reading = reading_clause(db, principal) if numbers else None
    masters = {
        o.id: ((o.master_order_id if readable(db, reading, o.master_order_id) else None), numbers[o.master_order_id])
        for o in listed
        if o.master_order_id in numbers
    }
    return units, masters


def _order_number_typed(raw: str | None) -> str | None:
    """The order number (工单号, as a caller reads it out: any case, spaces, full-width) typed where the intake form's
    phone is, spelled as stored (the configured prefix, then the day and its sequence), else None — a phone number is
    not one while the prefix holds a letter (BY)."""
    prefix = get_settings().order_number_prefix
    typed = re.sub(r"\s", "", unicodedata.normalize("NFKC", raw or ""))
    found = re.fullmatch(rf"{re.escape(prefix)}(\d{{8}}-\d{{6,}})", typed, flags=re.IGNORECASE)
    return f"{prefix}{found.group(1)}" if found else None


def _order_asked_after(db: Session, principal: Principal, number: str) -> CallerHistory:
    """进度查询 by the order's number: the order ``number`` as 来电历史 lists one (its state, unit, time limit), if the
    reader may open it (``auth.scope.reading_clause``) — none otherwise, as for a number no order has."""
    stmt = select(Order).where(Order.number == number)
    if (clause := reading_clause(db, principal)) is not None:
        stmt = stmt.where(clause)
    found = db.scalars(stmt).all()
    return CallerHistory(number, found, len(found), *_caller_names(db, principal, found))


def _callers_again(db: Session, principal: Principal, listed: Sequence[Order]) -> dict[int, int]:
    """For each of the ``listed`` orders whose caller made other appeals the reader may read, how many (by order id):
    the queue's 同一号码另有 N 件, in one query for the page. Only for who reads citizens' numbers."""
    if principal.role not in permissions.UNMASKED_ROLES:
        return {}
    spellings = {o.id: tracking.phone_spellings(o.citizen_phone) for o in listed if sees_personal_data(principal, o)}
    phones = sorted(set().union(*spellings.values())) if spellings else []
    if not phones:
        return {}
    stmt = select(Order.citizen_phone, func.count(Order.id)).where(Order.citizen_phone.in_(phones))
    if (clause := scope_of(db, principal).clause()) is not None:
        stmt = stmt.where(clause)
    made = {phone: n for phone, n in db.execute(stmt.group_by(Order.citizen_phone))}
    again = {
        o.id: sum(made.get(p, 0) for p in spellings[o.id]) - (o.citizen_phone in spellings[o.id])  # not itself
        for o in listed
        if o.id in spellings
    }
    return {order_id: n for order_id, n in again.items() if n > 0}


@router.post("/intake/caller", response_class=HTMLResponse)
def intake_caller(request: Request, db: DbSession, form: FormBody) -> Response:
    """The appeals earlier made from the phone typed in the intake form (来电历史), as an htmx fragment: an operator
    registering a repeat caller's complaint sees the caller's earlier orders without leaving the form. Only for the
    roles that read citizens' personal data in their scope (an empty fragment for the others)."""
    principal = support.require_user(request, db, permissions.ORDER_CREATE, form=form)
    if principal.role not in permissions.UNMASKED_ROLES:
        return HTMLResponse("")
    if (number := _order_number_typed(form.get("citizen_phone"))) is not None:
        # a caller asking after their case by its number: that order, the form and what is typed in it left as they are
        asked = _order_asked_after(db, principal, number)
        return render(request, "_caller.html", phone=None, number=number, earlier=asked.earlier, history=asked)
    spelled = _caller_phones(form)
    if not spelled:  # still being typed, or shortened: no list, and no count said
        return render(request, "_caller.html", phone=None, earlier=[], total=0)
    history = _caller_history(db, principal, spelled)
    return render(
        request, "_caller.html", phone=history.phone, earlier=history.earlier, total=history.total, history=history
    )


@router.post("/intake/invalid", response_class=HTMLResponse)
def intake_invalid_call(request: Request, db: DbSession, body: support.UploadBody) -> Response:
    """无效来电: the call at the desk became no appeal (挂断, 无声, 骚扰, 打错, 转接其他热线 …) — one button of the
    intake form records it (its kind, the phone if typed, the operator, the time: ``intake.invalid_calls.record``)
    and opens a fresh form for the next call, as 清空，接下一个来电 does; the call is counted on the dashboard."""
    from cityhub.intake import invalid_calls

    form = body.form
    principal = support.require_user(request, db, permissions.INVALID_CALL_RECORD, form=form)
    phone = None if _order_number_typed(form.get("citizen_phone")) else form.get("citizen_phone")
    try:  # the kind checked by the service, as every caller's
        call = invalid_calls.record(
            db, kind=form.get("invalid_kind") or "", user_id=principal.user_id, unit_id=principal.unit_id, phone=phone
        )
    except ValidationFailed:
        raise PageError(422, "err.invalid_call_kind") from None
    t = support.translator(request)
    return support.redirect("/intake", flash=("intake.invalid_recorded", {"kind": t.label("invalid_call", call.kind)}))


@router.post("/intake", response_class=HTMLResponse)
def intake_submit(request: Request, db: DbSession, body: support.UploadBody) -> Response:
    """Register the appeal (or, with a knowledge entry chosen, answer it instantly and close it), with the files
    given with it (the citizen's photos): one bad file refuses the whole appeal, naming it — nothing is kept."""
    from cityhub.intake.service import filed_by_citizen, filed_by_inspector, parse, submit
    from cityhub.knowledge import service as kb

    form = body.form
    principal = support.require_user(request, db, permissions.ORDER_CREATE, form=form)
    t = support.translator(request)
    values = form.values(INTAKE_FIELDS)
    kept = _kept_files(t, principal, form)
    if form.get("preview"):
        # The files chosen do not come back with the page (a browser keeps none): held for it (已保留的附件).
        problems: dict[str, str] = {}
        holding, dropped = _hold(t, principal, problems, body, kept)
        assistance = _assistance(db, principal, form)
        return _intake_page(
            request,
            db,
            principal,
            values=values,
            errors=problems,
            assistance=assistance,
            dropped=dropped,
            held_files=holding,
            held_notes=kept.notes,
            previewed=True,
        )
    entry_id = forms.whole_number(form.get("instant_entry_id"))
    # 这解决了我的问题: a citizen whose question a public answer settled files nothing; the answer counts it (市民自助).
    solved = forms.whole_number(form.get("solved_entry_id"))
    # 受理并并入: the open duplicate the appeal repeats, as the desk judged it (a button of the duplicates listed).
    merge_into = forms.whole_number(form.get("merge_into"))
    citizen = principal.role == Role.CITIZEN
    # The kind of appeal is the operator's or citizen's to say (an inspector's reports have theirs); answered on the
    # spot from the knowledge base, it was a consultation (as the form's suggestions take it).
    unsaid = not form.get("appeal_type") and entry_id is None and solved is None and principal.role != Role.INSPECTOR
    try:
        if kept.notes:
            # Held files it carried that are expired or not the sender's: never attached — the appeal comes back
            # saying so, rather than filed without the photos its sender believes it carries.
            raise ValidationFailed("held files expired or unknown", details={"field": "held"})
        if solved is not None:
            if not citizen:
                raise PermissionDenied("only a citizen says whether an answer solved their problem")
            kb.count_self_served(db, entry_id=solved)
            return support.redirect(support.home_of(principal), flash=("intake.self_served", {}))  # 我的诉求
        _enterprise_checked(form)
        data = parse(_intake_payload(form))
        if unsaid:
            raise ValidationFailed("appeal_type: choose one", details={"field": "appeal_type"})
        if citizen:
            # Their own appeal, through the web form: theirs to follow and rate, under their name unless they gave one;
            # an enterprise's (its name given) through 企业呼.
            channel = Channel.ENTERPRISE if enterprise.is_enterprise_appeal(data.attributes) else Channel.WEB
            # The category is the centre's to find (the form offers none): the classifier, then a dispatcher.
            update: dict[str, Any] = {"channel": channel, "urgency": Urgency.NORMAL, "category_id": None}
            data = filed_by_citizen(db, data.model_copy(update=update), principal.user_id)
        elif principal.role == Role.INSPECTOR:
            data = filed_by_inspector(db, data, principal.unit_id)
        if entry_id is not None:
            if not permissions.allows(principal.role, permissions.act(Action.INSTANT_ANSWER)):
                raise PermissionDenied("role may not answer instantly")
            order = kb.answer_instantly(db, data=data, entry_id=entry_id, actor=principal.actor)
            flash = ("intake.instant_done", {"number": order.number})
        else:
            if merge_into is not None:
                if not permissions.allows(principal.role, permissions.INTAKE_MERGE):
                    raise PermissionDenied("role may not merge an appeal at intake")
                if not order_in_scope(db, scope_of(db, principal), merge_into):
                    # As for a missing order: an id outside the caller's scope reveals nothing, takes nothing.
                    raise ValidationFailed(f"master order {merge_into} not found", details={"field": "master_id"})
            result = submit(db, data=data, actor=principal.actor, merge_into=merge_into)
            order = result.order
            if order.state == State.MERGED and order.master_order_id is not None:
                master = orders.get_order(db, order_id=order.master_order_id)
                said = "intake.merged_into" if merge_into is not None else "intake.merged"  # by the desk, or on its own
                flash = (said, {"master": master.number if master else "?"})
                if citizen and master is not None and master.citizen_user_id == principal.user_id:
                    # joined to their own earlier appeal: not told 此前已有人反映, as if someone else had
                    flash = ("intake.merged_citizen_own", {**flash[1], "number": order.number})
            else:
                flash = ("intake.created", {"number": order.number})
        if body.too_many:
            raise files.too_many_files()
        checked = _with_kept(kept, body.files)
        if checked:
            files.attach(db, order_id=order.id, uploads=checked, actor=principal.actor, with_appeal=True)
            if order.state == State.MERGED and order.master_order_id is not None:
                # The handlers work on the master: the photos go there too (kept once), as staff's — the master's
                # own citizen does not see another citizen's files —, beside it: a handler's action meanwhile stands.
                files.attach(
                    db,
                    order_id=order.master_order_id,
                    uploads=checked,
                    actor=principal.actor,
                    note=f"files of merged appeal {order.number}",
                    beside=True,
                )
            held.release_after_commit(db, kept.claimed.tokens, owner_id=principal.user_id)
        held.release(kept.removed, owner_id=principal.user_id)
        db.flush()
    except (CityhubError, StaleDataError) as exc:
        error, message, errors = _refusal(db, t, exc)
        if error.details.get("field") == "held":
            errors.pop("held", None)
            message = t("held.refused")
        if error.details.get("field") in enterprise.KEYS:
            # The enterprise's fields are checked first: the rest of the form's problems are said with theirs, so
            # that one round fixes all.
            for name, problem in _appeal_problems(t, form).items():
                errors.setdefault(name, problem)
        if error.details.get("field") == "files":
            errors["files"] = _file_problem(t, error) + t("intake.files_again")
        if not form.get("title").strip() and not form.get("content").strip():
            # Pydantic skips the whole-appeal check when a field fails; say it anyway, so one round fixes all — at
            # the text's field, not again at the top of the form.
            errors.setdefault("content", t("err.need_text"))
            if errors.get("_form") == errors["content"]:
                del errors["_form"]
        if unsaid:
            errors["appeal_type"] = t("err.choose", field=t("field.appeal_type"))
        phone_order = None
        if (number := _order_number_typed(form.get("citizen_phone"))) is not None:
            # An order's number left in the phone field (looked up there beside the form: 进度查询) is no malformed
            # phone: said as what it is, that order linked where the reader may open it, the caller's phone asked for.
            errors["citizen_phone"] = t("intake.phone_holds_order", number=number)
            phone_order = _order_asked_after(db, principal, number)
        holding, dropped = _hold(t, principal, errors, body, kept)
        return _intake_page(
            request,
            db,
            principal,
            values=values,
            errors=errors,
            error=message,
            assistance=_assistance(db, principal, form),
            status_code=error.http_status,
            dropped=dropped,
            held_files=holding,
            held_notes=kept.notes,
            phone_order=phone_order,
        )
    if not may_read(db, principal, order.id):
        return support.redirect("/intake", flash=("intake.out_of_scope", {"number": order.number}))
    if citizen and flash[0] == "intake.created":
        # Filed, the citizen is told more than the number: what happens next and when to expect an answer — the limit
        # the rules give such an appeal (its clock starts once it is dispatched, 办结时限 on the page from then on).
        terms = terms_for(db, category_id=order.category_id, urgency=order.urgency.value)
        said = "intake.created_citizen_natural" if terms.round_the_clock else "intake.created_citizen"
        flash = (said, {**flash[1], "days": f"{terms.finish_days:g}"})
    if citizen and flash[0] == "intake.merged":
        # Their appeal joined another's on the same problem: their own number first (their page, /track), then that
        # the problem is handled once, with the other — not the staff's 重复，已自动合并 and the other's number alone.
        flash = ("intake.merged_citizen", {**flash[1], "number": order.number})
    if not (citizen or principal.role == Role.INSPECTOR):
        # At the hotline's desk the order page says the number to read to the caller and offers the next call, the
        # keyboard's focus on it: one Enter, not Tabs through the menu to 受理 (base.html).
        flash = (flash[0], {**flash[1], "next_call": "1"})
    return support.redirect(f"/orders/{order.id}", flash=flash)


# ------------------------------------------------------------------------------------------------- orders


def _assisting(db: Session, own: frozenset[int] | None, rows: Sequence[Order]) -> dict[int, str]:
    """Of a page of orders, those open ones the reader's unit assists on (协办) and does not lead, with where its part
    stands (待签收, 办理中 …): a handler's 在办 lists them among its own, the lead unit's name the only hint that
    the step to take is 协办签收 or 协办答复, not 签收 or 答复. ``own``: the reader's units (``_ListReader.own``). One
    query for the page."""
    ids = [o.id for o in rows if o.state in OPEN_STATES and o.lead_unit_id not in (own or ())]
    if not own or not ids:
        return {}
    found = db.execute(
        select(OrderAssist.order_id, OrderAssist.status).where(
            OrderAssist.order_id.in_(ids), OrderAssist.unit_id.in_(own)
        )
    )
    return {order_id: status.value for order_id, status in found}


def _sign_for(
    principal: Principal, own: frozenset[int] | None, rows: Sequence[Order], assisting: dict[int, str]
) -> dict[int, Action]:
    """Of a page of orders, those the reader's unit may sign for from the list, with the step: 签收 of one sent to it,
    协办签收 of an assist asked of it (``assisting``: its part's status) — a handler's morning signed for from 待签收
    without opening each order. The service checks the step again when it is taken."""
    steps: dict[int, Action] = {}
    if not own or principal.role not in permissions.UNIT_STAFF_ROLES:
        return steps
    for o in rows:
        if o.state == State.DISPATCHED and o.lead_unit_id in own:
            steps[o.id] = Action.ACCEPT
        elif assisting.get(o.id) == AssistStatus.DISPATCHED.value:
            steps[o.id] = Action.ASSIST_ACCEPT
    return {i: a for i, a in steps.items() if permissions.allows(principal.role, permissions.act(a))}


def _returned_before(db: Session, rows: Sequence[Order], sign_for: dict[int, Action]) -> set[int]:
    """Of the orders the reader's unit may sign for (``sign_for``), those dispatched back to it after it returned them
    (退单): marked on their row, so that a 批量签收 does not sign for them unread (their page says why and who sent
    them back, ``_sent_again``). One query for the page."""
    from cityhub.dispatch import service as dispatch

    sent = {o.id: o.lead_unit_id for o in rows if sign_for.get(o.id) == Action.ACCEPT}
    returns = dispatch.last_returns(db, list(sent))
    return {i for i, event in returns.items() if event.unit_id == sent[i]}


_UNIT_FILTERS = (("unit_id", Order.lead_unit_id), ("street_id", Order.street_id), ("community_id", Order.community_id))


def _filter_units(db: Session, principal: Principal, reader: _ListReader, q: Any) -> list[tuple[UnitTier, list[Unit]]]:
    """The units the list's 承办单位, 镇街 and 村社 filters offer: every active unit for a reader who reads every order;
    for one whose scope is a part (a department's, a street's, a community's staff), those of their scope and those
    the orders they may read are led by or lie in (three DISTINCT queries), and any chosen — each other choice lists
    nothing. A department handler's page of 20 orders carried the district's ~450 units and ~300 communities."""
    groups = support.unit_groups(db)
    scope = scope_of(db, principal)
    if scope.everything or reader.reading is None:
        return [(tier, list(group)) for tier, group in groups]
    used: set[int | None] = set(scope.units | scope.streets | scope.communities)
    for name, column in _UNIT_FILTERS:
        used |= set(db.scalars(select(column).where(reader.reading, column.is_not(None)).distinct()))
        used.add(forms.whole_number(q.get(name)))
    return [(tier, kept) for tier, group in groups if (kept := [u for u in group if u.id in used])]


def _filter_categories(db: Session, principal: Principal, reader: _ListReader, q: Any) -> list[Category]:
    """The categories the list's 分类 filter offers: every active one for a reader who reads every order; for one whose
    scope is a part, those of the orders they may read with the categories above them (a parent category lists its
    subcategories' orders), and any chosen — the district's ~650 were most of a handler's page."""
    categories = support.active_categories(db)
    if scope_of(db, principal).everything or reader.reading is None:
        return categories
    used: set[int | None] = set(
        db.scalars(select(Order.category_id).where(reader.reading, Order.category_id.is_not(None)).distinct())
    )
    used.add(forms.whole_number(q.get("category_id")))
    parents: dict[int | None, int | None] = {c.id: c.parent_id for c in categories}
    for category_id in list(used):
        while (category_id := parents.get(category_id)) is not None and category_id not in used:
            used.add(category_id)
    return [c for c in categories if c.id in used]


def _own_work_of_one_unit(principal: Principal, own: frozenset[int] | None, filters: OrderFilter) -> bool:
    """Whether the list is a single unit's staff's own work (只看本单位承办, 待签收, 本单位牵头, 本单位协办): every row
    its unit's, or an assist of its unit's (named with the lead unit's limit, 牵头单位时限)."""
    if principal.role not in permissions.UNIT_STAFF_ROLES or own is None or len(own) != 1:
        return False
    return any(f is not None for f in (filters.held_by, filters.to_accept_by, filters.led_by, filters.assisting_by))


def _parse_day(text: str) -> date | None:
    """A calendar day as typed (2026-11-22); ValueError for anything else, including years no order can have."""
    if not text:
        return None
    day = date.fromisoformat(text)
    if not 1900 <= day.year <= 2999:
        raise ValueError(f"year out of range: {text}")
    return day


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=get_settings().tz)


@dataclass
class _ListReader:
    """Who reads the order list, with what their criteria need of them looked up once per page: the list and each of
    its tabs' counts read the same criteria (:func:`_list_query`)."""

    db: Session
    principal: Principal

    @cached_property
    def own(self) -> frozenset[int] | None:
        """The units 只看本单位承办 narrows to (``auth.scope.own_units``; None: no such choice)."""
        return own_units(self.db, self.principal)

    @cached_property
    def reading(self) -> Reading:
        """The orders the reader may list (``auth.scope.reading_clause``)."""
        return reading_clause(self.db, self.principal)


@dataclass(frozen=True)
class _ListQuery:
    """An order list's query read as the list runs it: the criteria, the scope they run within, the sort; what was
    wrong with the query, at its fields; the import batch it names (its chip)."""

    filters: OrderFilter
    scope: Any
    sort: OrderSort
    errors: dict[str, str]
    batch: ImportBatchRead | None


def _list_query(reader: _ListReader, q: Any, t: Translator) -> _ListQuery:
    """The order list's criteria from its query ``q`` (the page's own, or a quick view's address for the count its tab
    shows: the same orders either way). A value that is not a choice is an error at its field and no criterion."""
    db, principal = reader.db, reader.principal
    citizen = principal.role == Role.CITIZEN
    errors: dict[str, str] = {}
    criteria: dict[str, Any] = {}
    for name, choices in (("state", State), ("channel", Channel), ("place_source", PlaceSource)):
        picked = [v for v in q.getlist(name) if v]
        if name == "state":  # 在办, 已办结, 有效工单: the states each stands for (STATE_GROUPS)
            picked = [v for v in picked if v not in STATE_GROUPS] + [s for v in picked for s in STATE_GROUPS.get(v, ())]
            if citizen and State.RECEIVED in picked:  # their 已受理 is a returned order's too (State.as_citizen_reads)
                picked.append(State.RETURNED)
        if any(v not in choices.__members__.values() for v in picked):
            errors[name] = t("err.choice")
            picked = [v for v in picked if v in choices.__members__.values()]
        criteria[name] = picked or None
    # 诉求领域: 企业呼's appeals of one need (用电 …).
    need = _one_of(q, "enterprise_need", enterprise.NEEDS, errors, t)
    criteria["enterprise_need"] = [need] if need else None
    # 承办单位 (the lead unit); 镇街 / 村社, where the order is (the one map's street and community counts link here).
    for name in ("unit_id", "street_id", "community_id", "category_id"):
        raw = q.get(name, "").strip()
        if raw and forms.whole_number(raw) is None:
            errors[name] = t("err.number")
        criteria[name] = forms.whole_number(raw)
    for name, shift in (("created_from", 0), ("created_to", 1)):
        try:
            day = _parse_day(q.get(name, "").strip())
        except ValueError:
            errors[name] = t("err.date")
            day = None
        criteria[name] = _local_midnight(day + timedelta(days=shift)) if day else None
    # 时限状态: 预警 — the supervisors' warning list (with 在办: the open orders near their limit) — 正常, 超期; not a
    # citizen's criterion (their list shows no 预警).
    sla_status = _one_of(q, "sla_status", SLA_CHOICES, errors, t)
    criteria["sla_status"] = sla_status if not citizen else None
    # 只看超期: the open orders past their limit now; 曾超期: every order whose limit ran out (assessment review).
    criteria["overdue"] = True if q.get("overdue") and not citizen else None
    criteria["ever_overdue"] = True if q.get("ever_overdue") and not citizen else None
    # 待审批延期: the supervisors' extension requests to decide (a citizen's appeals have none of theirs to decide).
    criteria["extension_pending"] = True if q.get("extension_pending") and not citizen else None
    # 签收超时: orders a unit did not accept in the time allowed (late acceptance included), for supervisors.
    criteria["accept_overdue"] = True if q.get("accept_overdue") and not citizen else None
    # 即将签收超时: about to be (``workorders.service.ACCEPT_WARNING``) — signing's 预警, chased before it is late.
    criteria["accept_due_soon"] = True if q.get("accept_due_soon") and not citizen else None
    # 已升级 / 领导交办: the orders escalated, the orders a leader assigned — what a leader follows.
    criteria["escalated"] = True if q.get("escalated") and not citizen else None
    criteria["leader_assigned"] = True if q.get("leader_assigned") and not citizen else None
    # 被催办: the orders urged — with 本单位牵头, a unit's urged work, where a 批量催办's notice leads.
    criteria["urged"] = True if q.get("urged") and not citizen else None
    # 回访结果: with 已回访, the unsatisfied callbacks waiting for 重办 or 办结 (未解决) — a supervisor's to decide.
    rated = "" if citizen else _one_of(q, "satisfied", SATISFIED_CHOICES, errors, t)
    criteria["satisfied"] = rated == "true" if rated else None
    # 待回访 (false) / 待办结（无需回访） (true): whether anybody can be called back — a sensor's or camera's order
    # naming nobody cannot (``workorders.service.no_citizen``).
    machine = "" if citizen else _one_of(q, "no_citizen", SATISFIED_CHOICES, errors, t)
    criteria["no_citizen"] = machine == "true" if machine else None
    # 只看本单位承办: what the reader's unit holds, not every order lying in its street (a handler's 在办).
    own = reader.own  # None: nothing narrows the reader's list to their unit's (no such choice)
    criteria["held_by"] = sorted(own) if own is not None and q.get("held") else None
    # 待签收: what waits for the reader's unit to sign for it — dispatched to it, or an assist it was asked for.
    criteria["to_accept_by"] = sorted(own) if own is not None and q.get("to_accept") else None
    # 本单位牵头: what the reader's unit leads, whose limits are its own (a unit's staff's 预警 and 超期); 协办: what it
    # assists on and does not lead, the limit the lead unit's.
    criteria["led_by"] = sorted(own) if own is not None and q.get("led") else None
    criteria["assisting_by"] = sorted(own) if own is not None and q.get("assisting") else None
    # 协办 (the centre's): the orders an assisting unit was asked to help on, who asked and what for under each.
    criteria["assisted"] = True if q.get("with_assist") and not citizen else None
    # 我提交的: what the reader registered (a grid inspector's reports), wherever it is and whoever holds it now.
    criteria["reported_by_id"] = principal.user_id if q.get("mine") and not citizen else None
    # 只看我交办的: what the reader assigned (交办) — a leader's 交办已答复 lists their own first, not every leader's.
    mine_assigned = q.get("assigned_mine") and not citizen and principal.user_id is not None
    criteria["assigned_by_id"] = principal.user_id if mine_assigned else None
    # 查看导入的工单: the orders one import created (the import page's link), named by the batch's chip.
    raw_batch = "" if citizen else q.get("import_batch_id", "").strip()
    criteria["import_batch_id"], batch = _import_batch(db, principal, raw_batch, errors, t)
    text = q.get("q", "").replace("\x00", "").strip()
    if len(text) > 100:
        errors["q"] = t("err.too_long", n=100)
        text = text[:100]
    criteria["q"] = text or None
    criteria["q_citizen"] = principal.role in permissions.UNMASKED_ROLES  # a returning caller's earlier appeals
    sort = _one_of(q, "sort", OrderSort.__members__.values(), errors, t) or OrderSort.NEWEST.value
    try:
        scope = search_within(reader.reading, principal, text)
    except PermissionDenied:  # a phone or ID number searched by a role that reads no personal data: said at the field
        errors["q"] = t("orders.personal_search")
        scope, criteria["q"] = false(), None
    return _ListQuery(OrderFilter(**criteria), scope, OrderSort(sort), errors, batch)


@dataclass(frozen=True)
class _CitizenMerges:
    """A citizen's page of appeals with those merged into another of theirs folded: ``folded``, by the id of the appeal
    on the page they were merged into, the merged ones listed under it (另 N 次反映已合并到此诉求); ``into``, by the
    id of a merged appeal whose master is not theirs or not on the page, the number it was merged into (its card says
    so); ``merged``, how many of the list's appeals (its filters as they are, every page) are merged ones."""

    folded: dict[int, list[Any]]
    into: dict[int, str]
    merged: int


def _citizen_merges(db: Session, items: list[Any], listed: _ListQuery) -> _CitizenMerges:
    """The merged appeals of a citizen's page of their own (``items``), folded under or labelled with their master."""
    on_page = {o.id for o in items}
    folded: dict[int, list[Any]] = {}
    for o in items:
        if o.state == State.MERGED and o.master_order_id in on_page:
            folded.setdefault(o.master_order_id, []).append(o)
    elsewhere = [o for o in items if o.state == State.MERGED and o.master_order_id and o.master_order_id not in on_page]
    numbers = support.names_of(db, Order, [o.master_order_id for o in elsewhere], column=Order.number)
    into = {o.id: numbers[o.master_order_id] for o in elsewhere if o.master_order_id in numbers}
    states = listed.filters.state
    merged = 0
    if states is None or State.MERGED in states:
        only = listed.filters.model_copy(update={"state": [State.MERGED]})
        merged = orders.count_orders(db, filters=only, scope=listed.scope, cap=LIST_COUNT_CAP)
    return _CitizenMerges(folded, into, merged)


@router.get("/orders", response_class=HTMLResponse)
def order_list(request: Request, db: DbSession) -> Response:
    """Orders in the user's data scope, filtered and paginated like GET /api/v1/orders."""
    principal = support.require_user(request, db, permissions.ORDER_READ)
    citizen = principal.role == Role.CITIZEN
    t = support.translator(request)
    q = request.query_params
    reader = _ListReader(db, principal)
    listed = _list_query(reader, q, t)
    errors, batch, sort = listed.errors, listed.batch, listed.sort.value
    page = max(1, forms.whole_number(q.get("page")) or 1)
    rows, has_more, _ = orders.search_orders(
        db,
        filters=listed.filters,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        scope=listed.scope,
        sort=listed.sort,
    )
    items = [read_model(o, principal) for o in rows]
    # 我的诉求: an appeal merged into another of theirs on the page is a line under it, not a card of its own
    merges = _citizen_merges(db, items, listed) if citizen else _CitizenMerges({}, {}, 0)
    unit_names = support.names_of(db, Unit, {o.lead_unit_id for o in rows} | {o.street_id for o in rows})
    category_names = support.names_of(db, Category, {o.category_id for o in rows})
    base = [(k, v) for k, v in q.multi_items() if k != "page"]
    views = support.quick_views(principal)
    shown = sorted(q.multi_items())
    tab = next((v for v in views if v.criteria == shown), None)  # the list one of the tabs shows
    on_view = tab is not None
    counts = _view_counts(reader, views, t)
    due_soon = _accept_due_soon_note(db, tab, listed) if not citizen else None
    supplemented = set() if citizen else files.with_supplements(db, [o.id for o in items], reader_id=principal.user_id)
    extension_asks = {} if citizen else _extension_asks(db, rows)
    unsatisfied = {} if citizen else _unsatisfied_callbacks(db, principal, rows)
    weak_replied = _weak_replied(db, principal, rows)
    assisting = _assisting(db, reader.own, rows)
    sign_for = _sign_for(principal, reader.own, rows, assisting)
    units = [] if citizen else _filter_units(db, principal, reader, q)
    return render(
        request,
        "orders.html",
        principal=principal,
        items=items,
        supplemented=supplemented,
        extension_asks=extension_asks,
        unsatisfied=unsatisfied,
        weak_replied=weak_replied,
        assisting=assisting,
        sign_for=sign_for,
        returned_before=_returned_before(db, rows, sign_for),
        # 批量签收 on 待签收: the rows sent to the reader's unit (not an assist: 协办签收 stays on its row) — not on
        # 在办, where the bar put a phone's first order below the screen; and whether 签收并开始办理 is theirs (its
        # button on each such row and on the bar).
        bulk_accept=[i for i, step in sign_for.items() if step == Action.ACCEPT] if listed.filters.to_accept_by else [],
        # 协办 (the centre's): each order's assisting units, who asked each, when and for what, under its lead unit.
        assist_invites=_assist_invites(db, principal, rows) if listed.filters.assisted and not citizen else {},
        # 我的诉求: the appeals registered with their verified phone (a call to 12345, another channel), not filed under
        # their account, marked with their channel on the row itself — the channel column is hidden on a phone
        by_phone={o.id: o.channel for o in rows if o.citizen_user_id != principal.user_id} if citizen else {},
        # 承办单位 is left out of a single unit's (a department's, a community's) own work — 在办, 待签收, 预警, 超期:
        # it said the reader's unit on every row; an order it assists on names its lead unit beside the limit.
        lead_column=not _own_work_of_one_unit(principal, reader.own, listed.filters),
        may_start=permissions.allows(principal.role, permissions.act(Action.START)),
        here=request.url.path + ("?" + request.url.query if request.url.query else ""),
        unit_names=unit_names,
        category_names=category_names,
        page=page,
        has_more=has_more,
        base_query=base,
        query=q,
        errors=errors,
        # a citizen's choices are the states they are told (no 已退单: State.as_citizen_reads)
        states=[s for s in State if not citizen or s.as_citizen_reads() is s],
        open_states=OPEN_STATES,
        awaiting_dispatch=AWAITING_DISPATCH,
        channels=list(Channel),
        needs=enterprise.NEEDS,
        rated_states=RATED_STATES,
        # 只看即将签收超时 offered on a list of orders waiting to be signed for (已派单, 在办): one more criterion on
        # every list pushed an administrator's first order below the fold at 1440 × 900, as 回访结果 did.
        due_soon_offered=not citizen and State.DISPATCHED in (listed.filters.state or ()),
        due_soon=due_soon,
        place_sources=list(PlaceSource),
        sla_choices=SLA_CHOICES,
        sorts=list(OrderSort),
        sort=sort,
        views=views,
        # A tab's list is named by its tab (我的待办 · 待签收 for a unit's staff, 工单列表 · 预警 for others), in the
        # page's title and heading: every tab's page was 工单列表.
        heading=support.list_heading(t, principal, tab),
        view_counts=counts,
        view_count_cap=VIEW_COUNT_CAP,
        # How many the list holds, its filters as they are (the tabs counted only their own lists; a page said
        # 第 1 页) — not again under a tab that says it (on a phone the line put a handler's first order below the
        # screen).
        total=None
        if tab is not None and counts[tab.key] < VIEW_COUNT_CAP
        else orders.count_orders(db, filters=listed.filters, scope=listed.scope, cap=LIST_COUNT_CAP),
        total_cap=LIST_COUNT_CAP,
        shown=shown,
        # A citizen sees their own appeals: the staff's filters (unit, place source, overdue) are not theirs.
        citizen=citizen,
        folded=merges.folded,
        folded_ids={m.id for ms in merges.folded.values() for m in ms},
        merged_into=merges.into,
        merged_total=merges.merged,
        # 只看本单位承办 narrows the list: the reader's unit does not read every order.
        held_choice=reader.own is not None,
        mine_choice="orders.view.mine" in {v.key for v in views},  # 只看我提交的, where its quick view is offered
        units=units,
        places=[(tier, group) for tier, group in units if tier in (UnitTier.STREET, UnitTier.COMMUNITY)],
        categories=_filter_categories(db, principal, reader, q),
        # The folded criteria open when one of them is set (or an error is about one of them) — not for a 常用视图,
        # whose tab names its criteria: a handler's 在办 (只看本单位承办) opened them all, and on a phone their first
        # order came two screens below.
        more_filters=(not on_view and any(q.get(name) for name in _MORE_FILTERS))
        or bool(set(errors) & set(_MORE_FILTERS)),
        # A wide screen unfolds them too — not on a 常用视图: a handler's 在办 at 1440 × 900 showed one order above the
        # fold, under twenty criteria the tab names already.
        open_wide=not on_view,
        # …and on a phone the whole form folds on a 常用视图 (a wide screen unfolds it): its search, state and sort put
        # the first order of a handler's 在办 below a 360 × 740 screen.
        filters_folded=on_view or not (errors or any(q.get(name) for name in _LIST_CRITERIA)),
        batch=batch,
        # 批量催办: the states an order may be urged in with a unit holding it (a returned one waits for a dispatcher,
        # no unit to urge), for a reader who may urge (each such row has its box).
        urgeable=TRANSITIONS[Action.URGE].sources - set(AWAITING_DISPATCH)
        if permissions.allows(principal.role, permissions.act(Action.URGE))
        else frozenset(),
        reason_max=REASON_MAX_CHARS,
        # The chip's ✕: the same list without the batch.
        without_batch=[(k, v) for k, v in base if k != "import_batch_id"],
        # 交办已答复 is the reader's own assignments (``assigned_mine``); a line above the list says so and leads to
        # every leader's (the same list without it), and from there back — for whoever may assign (a leader).
        assigned_scope=_assigned_scope(principal, listed.filters, base),
        now=utcnow(),
        decide=_callback_decisions(db, principal, rows, unsatisfied),
    )


@dataclass(frozen=True)
class ExtensionAsk:
    """A listed order's pending 申请延期, as 待审批延期 shows it: the working days, why, and the time limit now and if
    approved in full (``workorders.service.due_if_extended``)."""

    days: float | None
    reason: str | None
    due_at: datetime | None
    due_after: datetime | None


def _newest_reasons(db: Session, order_ids: list[int], action: Action) -> dict[int, str | None]:
    """The reason of each order's newest event of ``action`` among ``order_ids`` (a list's page), in one query."""
    reasons: dict[int, str | None] = {}
    events = select(OrderEvent.order_id, OrderEvent.reason).where(
        OrderEvent.order_id.in_(order_ids), OrderEvent.action == action.value
    )
    for order_id, reason in db.execute(events.order_by(OrderEvent.id)):
        reasons[order_id] = reason  # the newest last
    return reasons


def _extension_asks(db: Session, rows: Sequence[Order]) -> dict[int, ExtensionAsk]:
    """The pending extension requests of the listed orders, by order id: one query for their requests' reasons."""
    pending = [o for o in rows if o.extension_pending]
    if not pending:
        return {}
    reasons = _newest_reasons(db, [o.id for o in pending], Action.REQUEST_EXTENSION)
    return {
        o.id: ExtensionAsk(o.extension_days_requested, reasons.get(o.id), o.due_at, orders.due_if_extended(db, o))
        for o in pending
    }


def _accept_due_soon_note(db: Session, tab: support.NavItem | None, listed: _ListQuery) -> tuple[str, str] | None:
    """On 预警 (the warning before 超期), how many of its orders — its criteria but the time-limit status — are about
    to miss their signing limit (即将签收超时, ``workorders.service.ACCEPT_WARNING``), up to the tabs' cap, and the
    list of them; None when none is (or on another list)."""
    if tab is None or tab.key != "orders.view.warning":
        return None
    soon = listed.filters.model_copy(update={"sla_status": None, "accept_due_soon": True})
    n = orders.count_orders(db, filters=soon, scope=listed.scope, cap=VIEW_COUNT_CAP)
    if not n:
        return None
    return (f"{VIEW_COUNT_CAP - 1}+" if n >= VIEW_COUNT_CAP else str(n)), tab.href.replace(
        "sla_status=warning", "accept_due_soon=1"
    )


def _unsatisfied_callbacks(
    db: Session, principal: Principal, rows: Sequence[Order]
) -> dict[int, tuple[str | None, str | None]]:
    """For the listed orders called back 不满意 (waiting for 重办 or 办结): what the callback recorded the citizen
    said and the reply they were not satisfied with, as this reader may read them, by order id — 回访不满意 decided
    from the list's words, not each order opened first."""
    waiting = [o for o in rows if o.state == State.CALLED_BACK and o.satisfied is False]
    if not waiting:
        return {}
    said = _newest_reasons(db, [o.id for o in waiting], Action.CALLBACK)
    return {o.id: (shown_text(principal, o, said.get(o.id)), shown_text(principal, o, o.reply_text)) for o in waiting}


def _weak_replied(db: Session, principal: Principal, rows: Sequence[Order]) -> set[int]:
    """The listed replies (已答复) the reply check found weak, for who reviews replies: 待回访 marks them 答复偏弱 —
    the callback desk called citizens back on a reply 答复审核 was about to send back."""
    waiting = [o.id for o in rows if o.state == State.REPLIED]
    if not waiting or not permissions.allows(principal.role, permissions.REPLY_REVIEW):
        return set()
    found = select(ReplyCheck.order_id).where(ReplyCheck.order_id.in_(waiting), ReplyCheck.weak.is_(True))
    return set(db.scalars(found))


def _callback_decisions(
    db: Session, principal: Principal, rows: Sequence[Order], unsatisfied: Mapping[int, Any]
) -> dict[int, list[str]]:
    """回访不满意 decided from the list's row: for each listed order waiting for 重办 or 办结 (``unsatisfied``), which
    of the two this reader may take, as its page offers them (``actions_of``) — posted to the order's own action route
    with what that page's form asks (重办's reason)."""
    decide = {}
    for o in rows:
        if o.id in unsatisfied:
            allowed = [a.value for a in actions_of(db, o, principal) if a in (Action.REOPEN, Action.CLOSE)]
            if allowed:
                decide[o.id] = allowed
    return decide


@dataclass(frozen=True)
class AssistInvite:
    """An assisting unit of a listed order as the centre's 协办 shows it: the unit, where its part stands, and the
    newest 增加协办 naming it — asked by the lead unit's own staff (申请协办) or the centre — who, of which unit, when,
    what for (协办事项)."""

    unit: str
    status: str
    by_lead: bool
    who: str | None
    who_unit: str | None
    at: datetime | None
    matter: str | None


def _assist_invites(db: Session, principal: Principal, rows: Sequence[Order]) -> dict[int, list[AssistInvite]]:
    """For a page of the centre's 协办 (``with_assist``): each order's assisting units with who invited each, when and
    for what — the invitations stood only in each order's trail. Two queries for the page."""
    by_id = {o.id: o for o in rows}
    if not by_id:
        return {}
    parts = db.execute(
        select(OrderAssist.order_id, OrderAssist.unit_id, OrderAssist.status)
        .where(OrderAssist.order_id.in_(by_id))
        .order_by(OrderAssist.id)
    ).all()
    asked = {
        (e.order_id, e.unit_id): e
        for e in db.scalars(
            select(OrderEvent)
            .where(OrderEvent.order_id.in_(by_id), OrderEvent.action == Action.ADD_ASSIST.value)
            .order_by(OrderEvent.id)
        )
    }
    acting = {(e.payload or {}).get("actor_unit_id") for e in asked.values()}
    names = support.names_of(db, Unit, {unit_id for _, unit_id, _ in parts} | {u for u in acting if type(u) is int})
    out: dict[int, list[AssistInvite]] = {}
    for order_id, unit_id, status in parts:
        event = asked.get((order_id, unit_id))
        who_unit = (event.payload or {}).get("actor_unit_id") if event is not None else None
        order = by_id[order_id]
        out.setdefault(order_id, []).append(
            AssistInvite(
                unit=names.get(unit_id, "—"),
                status=status.value,
                by_lead=who_unit is not None and who_unit == order.lead_unit_id,
                who=event.actor_name if event is not None else None,
                who_unit=names.get(who_unit) if type(who_unit) is int else None,
                at=event.at if event is not None else None,
                matter=shown_text(principal, order, event.reason) if event is not None else None,
            )
        )
    return out


def _view_counts(reader: _ListReader, views: list[support.NavItem], t: Translator) -> dict[str, int]:
    """How many orders each quick view lists for the reader, up to :data:`VIEW_COUNT_CAP`: its address's query read
    by :func:`_list_query` as the list reads it (so the tab and its list never disagree) and counted by
    ``workorders.service.count_orders`` — at most the cap's rows read, whatever the district's size."""
    counts = {}
    for view in views:
        listed = _list_query(reader, QueryParams(urlsplit(view.href).query), t)
        counts[view.key] = orders.count_orders(
            reader.db, filters=listed.filters, scope=listed.scope, cap=VIEW_COUNT_CAP
        )
    return counts


def _import_batch(
    db: Session, principal: Principal, raw: str, errors: dict[str, str], t: Translator
) -> tuple[int | None, ImportBatchRead | None]:
    """The list's ``import_batch_id`` criterion and its batch's chip (file, when, who, and how many orders it created
    when the reader may know: ``import_batch_read``). An id no batch has is said where the chip would be and still
    narrows the list (to nothing); one that is not a number is an error and no criterion."""
    if not raw:
        return None, None
    batch_id = forms.whole_number(raw)
    if batch_id is None:
        errors["import_batch_id"] = t("err.number")
        return None, None
    batch = db.get(ImportBatch, batch_id) if 0 < batch_id <= MAX_ID else None  # beyond the key: none
    if batch is None:
        errors["import_batch_id"] = t("orders.batch_unknown", id=batch_id)
        return batch_id, None
    return batch.id, import_batch_read(db, principal, batch)


def _one_of(q: Any, name: str, choices: Collection[str], errors: dict[str, str], t: Translator) -> str | None:
    """The value of a single-choice criterion when it is one of ``choices``; anything else is an error at the field
    (and no criterion), nothing chosen is None."""
    value = q.get(name, "").strip()
    if value and value not in choices:
        errors[name] = t("err.choice")
    return value if value in choices else None


# The callback's answers the list filters by (回访结果: 满意, 不满意), as the API writes them.
SATISFIED_CHOICES = ("true", "false")
# The states a list of which is offered 回访结果 among its criteria: those an order may be in once rated (one more
# criterion on every list pushed an administrator's first order below the fold at 1440 × 900).
RATED_STATES = frozenset({State.CALLED_BACK.value, State.CLOSED_RESOLVED.value, State.CLOSED_UNRESOLVED.value})

# The time-limit statuses the list filters by (none, "no clock running", is nobody's question).
SLA_CHOICES = (SlaStatus.OK.value, SlaStatus.WARNING.value, SlaStatus.OVERDUE.value)

_MORE_FILTERS = (
    "unit_id",
    "street_id",
    "community_id",
    "category_id",
    "channel",
    "enterprise_need",
    "place_source",
    "sla_status",
    "created_from",
    "created_to",
    "overdue",
    "ever_overdue",
    "extension_pending",
    "accept_overdue",
    "accept_due_soon",
    "escalated",
    "leader_assigned",
    "urged",
    "satisfied",
    "held",
    "to_accept",
    "led",
    "assisting",
    "with_assist",
)
# Every criterion of the list's form: none set (the whole list, in its order), the form folds on a phone as on a
# 常用视图 — a supervisor's 工单列表 at 390 × 844 showed its search, state, sort and buttons and no order. A search's
# results show under it open.
_LIST_CRITERIA = ("q", "state", "mine", "assigned_mine", "import_batch_id", *_MORE_FILTERS)


def _assigned_scope(principal: Principal, filters: OrderFilter, base: list[tuple[str, str]]) -> tuple[bool, str] | None:
    """Whether a list of the orders leaders assigned shows the reader's own (``assigned_mine``), and the address of the
    other choice — every leader's, or the reader's own: None where the reader may not assign (a supervisor reads
    every 交办 under 领导交办), the list is not of assigned orders, or is of open ones (领导交办) without the choice."""
    if not filters.leader_assigned or not permissions.allows(principal.role, permissions.act(Action.ASSIGN)):
        return None
    mine = filters.assigned_by_id is not None
    if not mine and set(filters.state or ()) & set(OPEN_STATES):
        return None  # 领导交办 (open) is every leader's, as the centre follows it: its tab has no such line
    others = [(k, v) for k, v in base if k != "assigned_mine"]
    if not mine:
        others.append(("assigned_mine", "1"))
    return mine, "/orders?" + urlencode(others)


# The actions whose form takes photos or files with it (答复, 协办答复: the work done, shown as it is reported — they
# were a second form, sent first, the reply written after the page came back).
WITH_FILES = frozenset({Action.REPLY, Action.ASSIST_REPLY})

# Fields the form of each action asks for: (name, kind, required). Kinds: unit, text (textarea), reason,
# days, bool, master, urgency (the levels above the order's). The life-cycle table stays the judge of what is
# required; this only lays out the form.
ACTION_FIELDS: dict[Action, tuple[tuple[str, str, bool], ...]] = {
    Action.INSTANT_ANSWER: (("answer", "text", True),),
    Action.DISPATCH: (("unit_id", "unit", True), ("reason", "reason", False)),
    Action.ACCEPT: (("reason", "reason", False),),
    # 退单: why, and which unit should have it (建议改派至, a word to the dispatcher, optional).
    Action.RETURN: (("reason", "reason", True), (SUGGEST_UNIT, "unit", False)),
    Action.START: (("reason", "reason", False),),
    Action.TRANSFER: (("unit_id", "unit", True), ("reason", "reason", True)),
    Action.ADD_ASSIST: (("unit_id", "unit", True), ("reason", "reason", False)),
    Action.ASSIST_ACCEPT: (),
    Action.ASSIST_REPLY: (("text", "text", True),),
    Action.ASSIST_RETURN: (("reason", "reason", True),),
    Action.REQUEST_EXTENSION: (("days", "days", True), ("reason", "reason", True)),
    Action.APPROVE_EXTENSION: (("days", "days", False), ("reason", "reason", False)),  # days: fewer than asked
    Action.REJECT_EXTENSION: (("reason", "reason", True),),
    Action.URGE: (("reason", "reason", True),),
    Action.ESCALATE: (("reason", "reason", True), ("urgency", "urgency", False)),
    # 交办: to which unit (none: an instruction to the unit holding it), the instruction, and by when (限期办结).
    Action.ASSIGN: (("unit_id", "unit", False), ("reason", "reason", False), (ASSIGN_DEADLINE, "date", False)),
    Action.SUSPEND: (("reason", "reason", True),),
    Action.RESUME: (("reason", "reason", False),),
    Action.REPLY: (("text", "text", True),),
    Action.REJECT_REPLY: (("reason", "reason", True),),
    Action.CALLBACK: (("satisfied", "bool", True), ("reason", "reason", False)),
    Action.CLOSE: (("resolved", "bool", False), ("reason", "reason", False)),
    Action.REOPEN: (("reason", "reason", True), ("unit_id", "unit", False)),
    Action.MERGE: (("master_id", "master", True), ("reason", "reason", False)),
    # 拆单: the problem taken out, in the citizen's words, as a new order (its title and category, if known).
    Action.SPLIT: (
        ("content", "text", True),
        ("title", "line", False),
        ("appeal_type", "appeal_type", False),
        ("category_id", "category", False),
        ("reason", "reason", False),
    ),
    Action.CANCEL: (("reason", "reason", True),),
    Action.COMMENT: (("text", "text", True),),
}


# The action forms' fields picked from a list: a missing one is asked for as a choice.
_CHOICE_KINDS = frozenset({"unit", "bool", "urgency", "category", "appeal_type"})
_CHOSEN_FIELDS = frozenset(
    name for fields in ACTION_FIELDS.values() for name, kind, _ in fields if kind in _CHOICE_KINDS
)


def _form_fields(order: Order, action: Action, staff: bool = False) -> tuple[tuple[str, str, bool], ...]:
    """:data:`ACTION_FIELDS` of ``action`` as its form on ``order`` asks for them: a field is required where the life
    cycle cannot go without it in the order's state (``lifecycle.required_params``: 办结's 是否解决 and 理由 before a
    callback, not after one), and a unit's staff's 申请协办 says what help it needs (``staff``: a unit's staff,
    ``workorders.service.STAFF_ROUTING``)."""
    needed = required_params(orders.view_of(order), action)
    if staff and action == Action.ADD_ASSIST:
        needed += ("reason",)
    return tuple((name, kind, required or name in needed) for name, kind, required in ACTION_FIELDS[action])


def _sent_back(rows: list[dict[str, Any]]) -> Any:
    """The trail's 退回答复 (its event) when the order's latest reply was sent back and not yet replaced: the page says
    so, with the supervisor's reason, where the reply stood (read from the trail: an order sent back before the
    reply was emptied with it still holds the reply's text)."""
    answers = (Action.REPLY.value, Action.INSTANT_ANSWER.value, Action.REJECT_REPLY.value, Action.REOPEN.value)
    last = next((row["event"] for row in reversed(rows) if row["event"].action in answers), None)
    return last if last is not None and last.action == Action.REJECT_REPLY.value else None


def _reply_sent_back(rows: list[dict[str, Any]], sent_back: Any) -> str | None:
    """The text of the reply a 退回答复 (``sent_back``, the trail's event) sent back: the newest 答复 before it. The
    unit improving it (答复退回完善) starts its new reply from it — it had to copy it out of the trail, or type it
    again."""
    if sent_back is None:
        return None
    before = rows[: next(i for i, row in enumerate(rows) if row["event"] is sent_back)]
    reply = _newest(before, Action.REPLY)
    return reply["text"] if reply is not None and reply["text"] else None


def _newest(rows: list[dict[str, Any]], action: Action) -> Any:
    """The trail's newest row of ``action`` (None: there is none)."""
    return next((row for row in reversed(rows) if row["event"].action == action.value), None)


def _last_urge(order: Order, rows: list[dict[str, Any]]) -> Any:
    """The trail's newest 督办催办 while the order is open: shown with the order's heading — what was asked, by whom,
    when — where a handler opening it on a phone sees it first (the count stood among the facts, the message in the
    trail under the actions, two screens down)."""
    return _newest(rows, Action.URGE) if order.state in OPEN_STATES and order.urge_count else None


def _last_assignment(order: Order, rows: list[dict[str, Any]]) -> Any:
    """The trail's newest 领导交办 while a leader-assigned order is open: the leader's instruction (批示), who gave it,
    when and to which unit, shown with the order's heading — where the unit doing it reads it first, and the leader
    following it sees what they asked (it stood only in the trail, under the actions)."""
    return _newest(rows, Action.ASSIGN) if order.state in OPEN_STATES and order.leader_assigned else None


def _reopened(order: Order, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """An open order sent back for rework (重办): the trail's newest 重办 — why, by whom, when — with what the citizen
    said at the unsatisfied callback before it and the reply they were not satisfied with, under the order's heading
    where the unit doing it again reads them first (all three stood only in the trail, the reply gone from the
    facts, and the order read as any newly dispatched one)."""
    if order.state not in OPEN_STATES or not order.reopen_count:
        return None
    reopen = _newest(rows, Action.REOPEN)
    if reopen is None:
        return None
    before = rows[: rows.index(reopen)]
    callback = _newest(before, Action.CALLBACK)
    reply = _newest(before, Action.REPLY)
    return {
        "row": reopen,
        "callback": callback if callback is not None and callback["satisfied"] is False else None,
        "reply": reply["text"] if reply is not None else None,
    }


def _sent_again(db: Session, order: Order, principal: Principal, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For a unit's staff: an order dispatched back to their unit after it returned it (退单), waiting to be signed for
    again — the unit's 退单 (why, who, when) and the 派单 that sent it back (by whom, with the dispatcher's word if
    any), under the order's heading. The unit read it as any new order (the count said 退单 1 次, the trail the rest)
    and signed for it — or returned it again — without reading that the centre had sent it back on purpose."""
    from cityhub.dispatch import service as dispatch

    if order.state != State.DISPATCHED or principal.role not in permissions.UNIT_STAFF_ROLES:
        return None
    returned = dispatch.last_returns(db, [order.id]).get(order.id)
    if returned is None or returned.unit_id != order.lead_unit_id or principal.unit_id != order.lead_unit_id:
        return None
    again = _newest(rows, Action.DISPATCH)
    return {"returned": returned, "again": again} if again is not None and again["event"].at >= returned.at else None


def _extension_request(order: Order, rows: list[dict[str, Any]]) -> Any:
    """The trail's pending 申请延期 — days, why, who, when — shown with the time limit above the actions, where a
    supervisor deciding it on a phone reads it (the reason stood in the trail, a screen below 批准延期 and 驳回延期)."""
    return _newest(rows, Action.REQUEST_EXTENSION) if order.extension_pending else None


def _assist_asked(db: Session, order: Order, principal: Principal, rows: list[dict[str, Any]]) -> Any:
    """For a unit asked to assist (协办) whose part is not answered yet: the trail's newest 增加协办 naming it — what
    it is asked to do, by whom, when — above its 协办签收 and 协办答复 (it stood only in the trail, two screens down,
    and the unit signed for and answered a request it had not read)."""
    if order.state not in OPEN_STATES or principal.role not in permissions.UNIT_STAFF_ROLES:
        return None
    own = own_units(db, principal) or frozenset()
    waiting = {a.unit_id for a in order.assists if a.unit_id in own and a.status in _ASSIST_TO_ANSWER}
    return next(
        (r for r in reversed(rows) if r["event"].action == Action.ADD_ASSIST.value and r["event"].unit_id in waiting),
        None,
    )


_ASSIST_TO_ANSWER = frozenset({AssistStatus.DISPATCHED, AssistStatus.ACCEPTED})


def _own_assist(db: Session, order: Order, principal: Principal) -> OrderAssist | None:
    """For a unit's staff whose unit assists on the open order (协办) and does not lead it: its part — where it stands
    (待签收, 办理中, 已答复, 已退回) — shown with the lead unit's name and time limit, which is the order's (an
    assist has none of its own): the page gave the limit as if it were theirs and their part's state nowhere."""
    if order.state not in OPEN_STATES or principal.role not in permissions.UNIT_STAFF_ROLES:
        return None
    own = own_units(db, principal) or frozenset()
    if order.lead_unit_id in own:
        return None
    return next((a for a in order.assists if a.unit_id in own), None)


def _returned_to(db: Session, order: Order) -> list[str]:
    """The units whose dispatchers find the order in their 待派单 once it is returned (退单), by name: those routing
    every order (the district's, its 12345 centre) and a street's own, where the order lies on it — what the 退单
    form tells the unit sending it back."""
    rows = db.execute(
        select(Unit.id, Unit.name, Unit.tier)
        .join(User, User.unit_id == Unit.id)
        .where(User.role == Role.DISPATCHER, User.active.is_(True), Unit.active.is_(True))
        .distinct()
        .order_by(Unit.id)
    )
    names = []
    for unit_id, name, tier in rows:
        scope = unit_scope(db, unit_id, tier)
        if scope.everything or order.street_id in scope.streets or order.community_id in scope.communities:
            names.append(name)
    return names


def _my_actions(db: Session, order: Order, principal: Principal) -> list[Action]:
    """What GET /orders/{id}/actions lists (``workorders.views.actions_of``) that the page has a form for."""
    return [a for a in actions_of(db, order, principal) if a in ACTION_FIELDS]


def _sla_view(db: Session, t: Translator, order: Order) -> dict[str, Any]:
    from cityhub.workorders.calendar import load_calendar

    now = utcnow()
    info: dict[str, Any] = {"status": order.sla_status, "paused": order.sla_paused_at is not None, "text": None}
    # Returned (退单): the limit an earlier dispatch set stopped at the return; the next dispatch starts a new one.
    info["stopped"] = order.due_at is not None and order.state in AWAITING_DISPATCH
    if info["stopped"]:
        info["text"] = t("order.sla_stopped")
    elif order.due_at is not None and order.state in OPEN_STATES and not info["paused"]:
        left = order.due_at - now
        if left.total_seconds() >= 0:
            # Time limits are in working days: what is left is said in them, with the deadline itself (calendar
            # time overstated it by every weekend and night in between).
            calendar = load_calendar(db)
            days = calendar.work_seconds_between(now, order.due_at) / calendar.day_seconds
            due = order.due_at.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M")
            info["text"] = t("order.sla_left_work", days=f"{days:.1f}", due=due)
        else:
            info["text"] = t("order.sla_over", left=support.duration_text(t, left))
    return info


_EXTENSION_EVENTS = frozenset({Action.REQUEST_EXTENSION.value, Action.APPROVE_EXTENSION.value})
# The steps that send the order to the unit their payload names (its lead from then on).
_SENDING_EVENTS = frozenset(a.value for a in (Action.DISPATCH, Action.TRANSFER, Action.ASSIGN, Action.REOPEN))


def _event_rows(db: Session, order: Order, principal: Principal, reading: Reading) -> list[dict[str, Any]]:
    """The audit trail's rows as the API gives them to ``principal`` (``workorders.views.trail_of``); ``reading``:
    what they may open (``auth.scope.reading_clause``), for the orders the trail links."""
    events = trail_of(db, order, principal)
    units = support.names_of(
        db,
        Unit,
        {e.unit_id for e in events} | {(e.payload or {}).get(k) for e in events for k in ("unit_id", "actor_unit_id")},
    )
    # 秒回: the question of the knowledge entry the answer came from, named beside its number (#5 alone said nothing).
    asked = support.names_of(
        db, KnowledgeEntry, {(e.payload or {}).get("kb_entry_id") for e in events}, column=KnowledgeEntry.question
    )
    rows = []
    holder = None  # the unit the order was last sent to: a 重办 naming none goes back to it
    for e in events:
        payload = e.payload or {}
        days = payload.get("days")
        sent_to = payload.get("unit_id") if e.action in _SENDING_EVENTS else None
        if e.action == Action.REOPEN.value and sent_to is None:
            sent_to = holder
        holder = sent_to or holder
        unit_id = sent_to or payload.get("unit_id")
        rows.append(
            {
                "event": e,
                # The unit the action sends the order to (派单, 转办, 协办 …), and the unit of whoever acted: 退单 by
                # 住建局 is not "退单 → 住建局".
                "unit": units.get(unit_id or 0),
                # 派单 → 江高镇 by the hotline's dispatcher, 交办 → 江高镇 by 白云区: the acting unit a unit-taking step
                # records beside the unit it names (``actor_unit_id``).
                "by_unit": units.get(payload.get("actor_unit_id") or 0)
                or (units.get(e.unit_id or 0) if e.unit_id != unit_id else None),
                "text": payload.get("text") or payload.get("answer") or payload.get("content"),
                # 拆单: the order the split made; 合并: the order this one was merged into, and on that master the
                # order merged into it — (id, number), linked where the reader may open it.
                "part": _linked_order(db, reading, e.action, payload),
                "kb_entry_id": payload.get("kb_entry_id"),
                "kb_question": asked.get(payload.get("kb_entry_id") or 0),
                # 交办's 限期办结, and the day the sweep's 交办逾期 found passed: the trail keeps each day given.
                "deadline": payload.get(ASSIGN_DEADLINE)
                if e.action in (Action.ASSIGN.value, "assign_overdue") and isinstance(payload.get(ASSIGN_DEADLINE), str)
                else None,
                # The files an upload added (``workorders.files.attach``): named in the trail, opened from the facts.
                "files": [f.get("filename") for f in payload.get("attachments") or () if isinstance(f, dict)],
                # …sent with the appeal (the intake form's), not added to it later (补充材料, ``supplement``): the
                # citizen's progress names them so, not as a 补充说明 of theirs.
                "with_appeal": e.action == Action.COMMENT.value
                and bool(payload.get("attachments"))
                and not payload.get("supplement"),
                "removed": [f.get("filename") for f in payload.get("removed_attachments") or () if isinstance(f, dict)],
                # A photo published for Open311 (公开) or withdrawn (撤回公开): ``workorders.files.publish``.
                "published": [
                    f.get("filename") for f in payload.get("published_attachments") or () if isinstance(f, dict)
                ],
                "withdrawn": [
                    f.get("filename") for f in payload.get("withdrawn_attachments") or () if isinstance(f, dict)
                ],
                "auto": bool(payload.get("auto")),
                # An extension's working days, asked for or granted: what the approver decides on.
                "days": days if e.action in _EXTENSION_EVENTS and isinstance(days, int | float) else None,
                # An escalation that raised the urgency: from what, to what, and the due date it brought forward.
                "urgency": (payload.get("previous_urgency"), payload["urgency"]) if payload.get("urgency") else None,
                "due_forward": _moved_due(payload) if e.action == Action.ESCALATE.value else None,
                # 回访: the citizen's verdict — the facts show only the latest one, and a reopen clears it, so without
                # this the 不满意 that led to a 重办 was on the page nowhere.
                "satisfied": payload.get("satisfied") if e.action == Action.CALLBACK.value else None,
                # 基本满意 (a text message's 2, ``workorders.sms``): satisfied, named as the citizen said it.
                "rating": payload.get("rating") if e.action == Action.CALLBACK.value else None,
                # The unit's extension request this step ended undecided (its reply, return, a transfer).
                "extension_withdrawn": bool(payload.get("extension_withdrawn")),
            }
        )
    return rows


def _linked_order(db: Session, reading: Reading, action: str, payload: dict[str, Any]) -> tuple[int | None, str] | None:
    """The other order an event names: a split's new order, a merge's master (its trail said 合并 and not into
    which order), on the master the order merged into it — (id, number), the id None where the reader (``reading``)
    may not open it."""
    number, part_id = payload.get("part_number"), payload.get("part_id")
    if action == Action.MERGE.value and isinstance(master_id := payload.get("master_id"), int):
        part_id, number = master_id, db.scalar(select(Order.number).where(Order.id == master_id))
    if action == MERGED_IN:
        part_id, number = payload.get("merged_id"), payload.get("merged_number")
    if not isinstance(number, str):
        return None
    visible = isinstance(part_id, int) and readable(db, reading, part_id)
    return (part_id if visible else None), number


def _split_relations(
    db: Session, order: Order, reading: Reading, family: list[orders.SplitKin]
) -> dict[str, list[tuple[int | None, str]]]:
    """拆单: of the split ``family`` (``orders.split_family``), the order this one was split from and those split from
    it, as (id, number) — the id None where the reader (``reading``) may not open that order."""

    def shown(kin: orders.SplitKin) -> tuple[int | None, str]:
        return (kin.id if readable(db, reading, kin.id) else None), kin.number

    return {
        "from": [shown(k) for k in family if k.id == order.split_from_id],
        "parts": [shown(k) for k in family if k.split_from_id == order.id],
    }


def _merge_relations(db: Session, order: Order, reading: Reading, citizen: bool) -> dict[str, Any]:
    """合并: the order this one was merged into and those merged into it (``orders.merge_family``), as (id, number)
    — the id None where the reader (``reading``) may not open that order; a citizen is not shown others' appeals."""
    kin = orders.merge_family(db, order)

    def shown(pair: tuple[int, str]) -> tuple[int | None, str]:
        return (pair[0] if readable(db, reading, pair[0]) else None), pair[1]

    merged = [] if citizen else [shown(p) for p in kin.merged]
    return {
        "into": [shown(kin.master)] if kin.master else [],
        "merged": merged,
        "more": 0 if citizen else kin.merged_total - len(merged),
    }


def _raised_since_request(order: Order, rows: list[dict[str, Any]]) -> tuple[str, str] | None:
    """For a pending extension request: the urgency before and after it was raised since the request (an approval
    then extends the deadline the raise brought forward — what the approver should know), else None."""
    if not order.extension_pending:
        return None
    raised: tuple[str, str] | None = None
    for row in rows:
        if row["event"].action == Action.REQUEST_EXTENSION.value:
            raised = None
        elif row["urgency"] and row["urgency"][0]:
            raised = (raised[0] if raised else row["urgency"][0], row["urgency"][1])
    return raised


def _moved_due(payload: dict[str, Any]) -> datetime | None:
    moved = (payload.get("to") or {}).get("due_at")
    return datetime.fromisoformat(moved) if isinstance(moved, str) else None


def _detail_page(
    request: Request,
    db: Session,
    principal: Principal,
    order_id: int,
    *,
    error: str | None = None,
    open_action: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    dropped: list[str] | None = None,
    held_files: list[held.Held] | None = None,
    held_notes: list[str] | None = None,
    reply_preview: ReplyQuality | None = None,
    lists: str | None = None,
) -> Response:
    from cityhub.dispatch import background
    from cityhub.dispatch import service as dispatch
    from cityhub.intake import dedupe
    from cityhub.knowledge import service as kb

    t = support.translator(request)
    order = scoped_order(db, order_id, principal)  # NotFound when missing or out of scope
    read: OrderRead = read_model(order, principal)
    family = orders.split_family(db, order)
    scope = scope_of(db, principal)  # what they may act on: merge into
    reading = reading_clause(db, principal, scope)  # what they may open: the orders this page links
    actions = _my_actions(db, order, principal)
    staff = principal.role != Role.CITIZEN
    # A sensor's or camera's order: the alarms it holds (its own, and those that joined it since).
    alarms = monitoring_service.alarms_of_order(db, order.id) if staff and order.channel in MACHINE_CHANNELS else []
    # 派单建议 — the candidates with their scores and rule grounds, the classifier's odds — is for who routes orders
    # and oversees them; a unit's staff (a 网格员 reading the report just filed) read where it was placed in the
    # facts and the possible duplicates and similar cases below.
    routing = staff and principal.role not in permissions.UNIT_STAFF_ROLES
    similar = decision = answers = None
    dispatch_pending = False
    queued = order.state in dispatch.QUEUE_STATES
    # Past dispatch, while it is being worked, the unit doing it reads them too: how the same problem, at the same
    # place or elsewhere, was answered before, and an open order on it that the reply should answer as well (the
    # page showed them only while the order waited for dispatch; a handler had to search for them).
    if staff and (queued or order.state in OPEN_STATES):
        dispatch_pending = queued and routing and order.id in background.waiting(db, [order.id])
        # the similar cases of those the reader may open, chosen among them (not the best of all, then filtered)
        found = dedupe.DedupeRead.of(dedupe.check(db, order=order, shown_to=reading), reader=principal)
        # 拆单: its appeal's other orders say the same on purpose, and are linked from the facts already.
        kin = {k.id for k in family}
        # Before dispatch a possible duplicate is one to merge into (in the acting scope); after it, one to read.
        listed_dup = (lambda i: order_in_scope(db, scope, i)) if queued else (lambda i: readable(db, reading, i))
        found.duplicates = [d for d in found.duplicates if d.order_id not in kin and listed_dup(d.order_id)]
        # A possible duplicate is listed once, among the duplicates (with its 合并到此单), not again as a similar case.
        listed = kin | {d.order_id for d in found.duplicates}
        found.similar = [c for c in found.similar if c.order_id not in listed][:5]
        similar = found
        if routing and queued:
            stored = dispatch.latest_decision(db, order_id=order.id)
            decision = (
                stored
                if stored is not None and dispatch.decision_is_current(db, order=order, decision=stored)
                else dispatch.suggest(db, order=order, store=False)
            )
        if queued and Action.INSTANT_ANSWER in actions:  # the life cycle offers 秒回 for a consultation only
            from cityhub.nlp.text import order_text

            text = order_text(order.title, order.content)
            answers = kb.matter_answers(db, text=text, category_id=order.category_id)[:3]
    ids = {order.lead_unit_id, order.street_id, order.community_id} | {a.unit_id for a in order.assists}
    may_place = decision is not None and permissions.allows(principal.role, permissions.act(Action.DISPATCH))
    place_units = _place_units(db) if may_place else []
    # The places the order names that the gazetteer does not know, offered as aliases of the unit chosen.
    teaches = may_place and dispatch.teaches_aliases(principal.role)
    alias_candidates = dispatch.alias_candidates(db, order)[:FROM_ORDER_MAX] if teaches and place_units else []
    if decision is not None:
        ids |= {decision.place.street_id, decision.place.community_id}
    needs_units = any(kind == "unit" for a in actions for _, kind, _ in ACTION_FIELDS[a])
    needs_categories = any(kind == "category" for a in actions for _, kind, _ in ACTION_FIELDS[a])
    events = _event_rows(db, order, principal, reading)
    sent_back = _sent_back(events) if staff else None
    # 答复退回完善: for who replies, the reply sent back and why, first on the page, and their 答复 starting from it.
    resend = _reply_sent_back(events, sent_back) if Action.REPLY in actions else None
    reply_check = db.get(ReplyCheck, order.id) if staff and order.reply_text and not sent_back else None
    # 退回答复 of a reply the check found weak: its reason offered from the check's findings, editable (as 答复审核).
    return_why = (
        machine_text.return_reason(t, reply_check.reasons, REASON_MAX_CHARS)
        if reply_check is not None and reply_check.weak and Action.REJECT_REPLY in actions
        else ""
    )
    # 退单: who sent it back and why, which the dispatcher chooses the next unit by, as the queue says it.
    routed_back = decision is not None and order.state == State.RETURNED
    returned_by = dispatch.last_returns(db, [order.id]).get(order.id) if routed_back else None
    if returned_by is not None:
        ids |= {returned_by.unit_id, (returned_by.payload or {}).get(SUGGEST_UNIT)}
    unmasked = sees_personal_data(principal, order)
    # 来电历史 beside the phone, for who reads citizens' numbers: a repeat caller's earlier appeals (what became of
    # them, which unit had them) are what a dispatcher or a supervisor decides by; only the intake form showed them.
    reads_phones = unmasked and principal.role in permissions.UNMASKED_ROLES
    spelled = tracking.phone_spellings(order.citizen_phone) if reads_phones else set()
    caller = _caller_history(db, principal, spelled, besides=order.id) if spelled else None
    unit_staff = principal.role in permissions.UNIT_STAFF_ROLES
    below_only = {Action.TRANSFER.value} if unit_staff else set()
    fields = [(a, _form_fields(order, a, unit_staff)) for a in actions]
    categories = support.active_categories(db) if needs_categories or may_place else []
    return render(
        request,
        "order.html",
        principal=principal,
        status_code=status_code,
        order=order,
        read=read,
        # The point on a small map over the units' outlines (as the reader's order view gives it: masked, two decimals).
        # A citizen's shows where in the district it lies (the district's outline, their street's and community's).
        place_map=place_map(
            t, lat=read.lat, lng=read.lng, around=None if staff else (read.street_id, read.community_id)
        )
        if read.lat is not None and read.lng is not None
        else None,
        unit_names=support.names_of(db, Unit, ids),
        directory=_directory(db),
        category_name=support.names_of(db, Category, {order.category_id}).get(order.category_id or 0),
        open_states=OPEN_STATES,  # a citizen's appeal without a category: 待分类 while open
        sla=_sla_view(db, t, order),
        events=events,
        sent_back=sent_back,
        returned_by=returned_by,
        urged=_last_urge(order, events) if staff else None,
        assigned=_last_assignment(order, events) if staff else None,
        today=utcnow().astimezone(get_settings().tz).date(),  # 限期办结's earliest day
        extension_request=_extension_request(order, events) if staff else None,
        # 批准延期's effect: the time limit now and if the request is approved in full.
        extension_due=orders.due_if_extended(db, order) if staff else None,
        assist_asked=_assist_asked(db, order, principal, events),
        own_assist=_own_assist(db, order, principal),
        returned_to=_returned_to(db, order) if Action.RETURN in actions else [],
        reopened=_reopened(order, events) if staff else None,
        sent_again=_sent_again(db, order, principal, events),
        # the rating as given where it was one of three (基本满意 apart from 满意), for the facts' 是否满意
        rating=(_newest(events, Action.CALLBACK) or {}).get("rating") if order.satisfied is not None else None,
        raised_since_request=_raised_since_request(order, events),
        actions=fields,
        # Each long list (the district's units, the categories) once a page: the form lending it, the others borrow.
        lenders=_list_lenders(fields, below_only, may_place and bool(categories), prefer=open_action or lists),
        lists=lists,
        # A unit's staff route what their unit leads in their own words: 申请协办, and a street's 下派 to its own
        # communities only (workorders.service.STAFF_ROUTING).
        renamed=_STAFF_NAMES if unit_staff else {},
        below_only=below_only,
        # 派单 after a 退单 starts from the unit its returner suggested (建议改派至), as the returned line names it.
        preset=_dispatch_preset(returned_by)
        | ({Action.REPLY.value: {"text": resend}} if resend else {})
        | ({Action.REJECT_REPLY.value: {"reason": return_why}} if return_why else {}),
        resend=resend,
        # 签收并开始办理: one step for who may take both (each audited).
        accept_and_start=Action.ACCEPT in actions and permissions.allows(principal.role, permissions.act(Action.START)),
        # 回访并办结: a satisfied callback closed in the same step by who may close (the callback desk; each audited).
        callback_and_close=Action.CALLBACK in actions
        and principal.role != Role.CITIZEN
        and permissions.allows(principal.role, permissions.act(Action.CLOSE)),
        # 答复 is not offered while assisting units have not answered: who they are, how to reach them.
        awaited=[
            {"name": a.unit.name, "status": a.status, "since": a.updated_at, "contacts": _contact_lines(a.unit)}
            for a in reply_awaits(order, principal)
        ],
        units=support.unit_groups(db, handlers=True) if needs_units else [],
        units_below=(below := _units_below(db, principal) if needs_units else []),
        below_ids={u.id for u in below},
        categories=categories,
        suggested_categories=_suggested_categories(db, decision) if may_place else [],
        may_categorise=may_place,
        appeal_types=list(AppealType),
        split=_split_relations(db, order, reading, family),
        merge=_merge_relations(db, order, reading, not staff),
        # A citizen whose appeal was merged reads where the one handled for both stands (they cannot look it up).
        merged_progress=None if staff or order.master_order_id is None else tracking.merged_progress(db, order),
        higher_urgencies=URGENCY_RANK[URGENCY_RANK.index(order.urgency.value) + 1 :],
        similar=similar,
        queued=queued,  # waiting for dispatch: the similar cases' section says so when it finds none
        # 合并到此单 beside each possible duplicate and similar case still open, for who may merge this order
        merge_into_states={s.value for s in State if s not in TERMINAL_STATES} if Action.MERGE in actions else set(),
        caller=caller,
        loads=dispatch.unit_loads(db, {c.unit_id for c in decision.shown}) if decision is not None else {},
        decision=decision,
        place_units=place_units,
        alias_candidates=alias_candidates,
        alias_kinds=list(AliasKind),
        chosen_place=_chosen_place(place_units, decision.place if decision is not None else None),
        dispatch_pending=dispatch_pending,
        pending_kind=_pending_kind(),
        answers=answers,
        # 考核核减: this order's requests, and the form of the unit's staff to ask (analytics.exemptions)
        exemption=exemption_pages.order_panel(db, order, principal) if staff else None,
        exempt_form=exemption_pages.form_context(),
        error=error,
        open_action=open_action,
        values=values or {},
        errors=errors or {},
        is_admin=principal.role == Role.ADMIN,
        may_attach=permissions.may_attach(principal.role) and _attachable(principal, order),
        with_files=WITH_FILES,
        dropped=dropped or [],
        held_files=held_files or [],
        held_notes=held_notes or [],
        held_hours=files.get_file_settings().held_hours,
        citizen=not staff,
        # No unit yet: the citizen reads that it is being dispatched, as the progress lookup (/track) says it.
        unit_pending=not staff and order.lead_unit_id is None and order.state in dispatch.QUEUE_STATES,
        # …and when to expect an answer once it is dispatched (only the message after filing said it)
        answer_limit=terms_for(db, category_id=order.category_id, urgency=order.urgency.value)
        if not staff and order.lead_unit_id is None and order.state in dispatch.QUEUE_STATES
        else None,
        removable={
            a.id
            for a in order.attachments
            if permissions.allows(principal.role, permissions.ATTACHMENTS_REMOVE)
            or (a.uploaded_by_id is not None and a.uploaded_by_id == principal.user_id)
        },
        # 公开 / 撤回公开 of the order's photos (supervisors, administrators: those who moderate its files).
        may_publish=staff and permissions.allows(principal.role, permissions.ATTACHMENTS_REMOVE),
        file_settings=files.get_file_settings(),
        image_types=files.IMAGES,
        photo_types=files.PHOTOS,
        unmasked=unmasked,
        channel_details=[
            detail
            for detail in _channel_details(
                order, unmasked=unmasked, monitoring=permissions.allows(principal.role, permissions.ALARMS_READ)
            )
            if staff or detail.key in enterprise.KEYS  # the citizen: the enterprise they said they are (企业呼)
        ]
        + (
            [_alarms_detail(alarms, monitoring=permissions.allows(principal.role, permissions.ALARMS_READ))]
            if staff and len(alarms) > 1
            else []
        ),
        reply_check=reply_check,
        reply_cut=WEAK_THRESHOLD,
        reply_preview=reply_preview,
        max_extension_days=MAX_EXTENSION_DAYS,
        import_batch=order_import_batch(db, order, principal),
    )


# The 分类 form's list, beside the action forms' (its ``lists`` value and its select's id).
CATEGORY_FORM = "category"
CATEGORY_CHOICE = "category-choice"


def _list_lenders(
    fields: list[tuple[Action, Any]], below_only: set[str], may_categorise: bool, *, prefer: str | None
) -> dict[str, str]:
    """Which form's select carries each long list in full, by its id — ``unit``: the district's ~450 units (派单,
    转派, 增加协办, 交办, 重办, 退单's 建议改派至), ``category``: the ~650 categories (拆单, 分类); the page's other
    selects of that list borrow its options (``data-options-from``, app.js): each list once a page, not once a form.
    The lender is the form first on the page, or the one ``prefer`` names (the form opened again after a refusal, or
    asked for with its whole list, ``?lists=``: without app.js a borrowing form holds only its current choice and
    offers that link). 退单's list leaves out the unit returning it, so it lends only when no other form can."""
    units: list[tuple[str, str]] = []  # (action, select id)
    categories: list[tuple[str, str]] = []
    for action, named in fields:
        for name, kind, _ in named:
            if kind == "unit" and action.value not in below_only:
                units.append((action.value, f"{action.value}-{name}"))
            elif kind == "category":
                categories.append((action.value, f"{action.value}-{name}"))
    if may_categorise:
        categories.append((CATEGORY_FORM, CATEGORY_CHOICE))
    units.sort(key=lambda u: u[0] == Action.RETURN.value)  # stable: the page's order otherwise

    def lender(offered: list[tuple[str, str]]) -> str | None:
        return next((fid for action, fid in offered if action == prefer), offered[0][1] if offered else None)

    return {kind: fid for kind, offered in (("unit", units), ("category", categories)) if (fid := lender(offered))}


# What a unit's staff's routing steps are called on their order page (the dispatchers': 增加协办, 转派).
_STAFF_NAMES = {Action.ADD_ASSIST.value: "order.ask_assist", Action.TRANSFER.value: "order.pass_down"}


def _dispatch_preset(returned_by: Any) -> dict[str, dict[str, str]]:
    """The 派单 form's unit chosen before the dispatcher chooses: the one the newest 退单 suggested (建议改派至)."""
    suggested = (returned_by.payload or {}).get(SUGGEST_UNIT) if returned_by is not None else None
    return {Action.DISPATCH.value: {"unit_id": str(suggested)}} if isinstance(suggested, int) else {}


def _units_below(db: Session, principal: Principal) -> list[Unit]:
    """A street's own active communities, first among the units its staff's forms choose from (转派, 增加协办 …): the
    street's coordinator passes an order on to one of them, found at the foot of the district's ~450 units."""
    ids = orders.communities_below(db, principal.unit_id)
    return list(db.scalars(select(Unit).where(Unit.id.in_(ids)).order_by(Unit.code))) if ids else []


def _contact_lines(unit: Unit) -> list[str]:
    """A unit's contacts as the order page names them: name, role and phone of each."""
    lines = []
    for c in unit.contacts or ():
        if isinstance(c, dict):
            line = " ".join(str(c[k]) for k in ("name", "role", "phone") if c.get(k))
            if line:
                lines.append(line)
    return lines


CHANNEL_DETAIL_CHARS = 300  # a value shown longer than this is cut (a sensor's whole reading list, say)


# The attributes cityhub itself writes (a sensor alarm's order, a proactive finding's) whose values are shown by
# their label of the same kind, ``t.label(key, value)``, as the monitoring pages show them.
_LABELLED_CHANNEL_VALUES = frozenset({"sensor_kind", "metric", "severity", "source", "comparison", enterprise.NEED_KEY})
# A sensor alarm's figures, shown as numbers in the reading's measurement unit (``measure_unit``, kept since
# December 2026), and the time of the reading, shown in local time.
_READING_NUMBERS = frozenset({"value", "threshold"})


def _local_instant(text: str) -> str:
    """An ISO instant a channel sent, as the pages show times (local, to the minute); the text itself if it is not
    one."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return text
    return at.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M") if at.tzinfo else text


# The demo generator's own bookkeeping on a demo order (its scenario's code, its planted hotspot: the benchmarks'
# ground truth), not something a channel sent: the page says only 演示数据.
_DEMO_BOOKKEEPING = frozenset({"scenario", "hotspot"})


@dataclass(frozen=True)
class ChannelDetail:
    """One thing the channel sent beside the appeal, as the order page shows it: the attribute's name (its label
    ``attr.<key>``, the name itself for another system's column), its text, the label kind of the text, and the
    pages it names (a sensor and its alarm, the orders a finding is about)."""

    key: str
    text: str
    kind: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    count: int | None = None  # how many things the row names (the alarms on a sensor's order)


def _alarms_detail(alarms: Sequence[tuple[int, str]], *, monitoring: bool) -> ChannelDetail:
    """关联报警: the alarms a sensor's or camera's order holds — its own and those that joined it (the same sensor
    again, a sensor standing near that saw the same), each by its number and sensor, a link to it on the sensor's page
    for who reads the monitoring pages."""
    names = [f"#{alarm_id} {code}" for alarm_id, code in alarms]
    links = (
        tuple(
            (f"/monitoring/sensors/{quote(code, safe='')}#alarm-{alarm_id}", name)
            for (alarm_id, code), name in zip(alarms, names, strict=True)
        )
        if monitoring
        else ()
    )
    return ChannelDetail("alarms", " ".join(names), None, links, count=len(alarms))


def _channel_details(order: Order, *, unmasked: bool, monitoring: bool) -> list[ChannelDetail]:
    """What the channel sent beside the appeal (``attributes``: an enterprise's id, a device, an imported file's extra
    columns, a sensor alarm's reading) — scrubbed of personal data unless the reader sees the order ``unmasked``.
    ``monitoring``: the reader may open the sensor pages, so a sensor's code and its alarm are links there."""
    from cityhub.masking import scrub_values

    attributes = order.attributes or {}
    if not unmasked:
        attributes = scrub_values(attributes, known=(order.citizen_name, order.citizen_phone))
    sensor = attributes.get("sensor_code") if isinstance(attributes.get("sensor_code"), str) else None
    measure = attributes.get("measure_unit") if sensor and isinstance(attributes.get("measure_unit"), str) else ""
    kind_of_sensor = attributes.get("sensor_kind") if isinstance(attributes.get("sensor_kind"), str) else None
    rows = []
    demo = attributes.get("demo") is True
    for key, value in attributes.items():
        if demo and key in _DEMO_BOOKKEEPING:
            continue
        if key == "finding" and isinstance(value, dict) and isinstance(value.get("summary"), str):
            value = value["summary"]  # a proactive finding: what it found, not its statistics' JSON
        if sensor and key in _READING_NUMBERS and isinstance(value, int | float) and not isinstance(value, bool):
            # 26cm, not 26.0; a camera's 92%, not 0.92: the reading as the monitoring pages show it
            text = figure(value, measure, confidence=is_confidence(kind_of_sensor, str(attributes.get("metric"))))
        elif sensor and key == "measured_at" and isinstance(value, str):
            text = _local_instant(value)
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        cut = text if len(text) <= CHANNEL_DETAIL_CHARS else text[:CHANNEL_DETAIL_CHARS] + "…"
        links: tuple[tuple[str, str], ...] = ()
        if monitoring and sensor and key == "sensor_code":
            links = ((f"/monitoring/sensors/{quote(sensor, safe='')}", sensor),)
        elif monitoring and sensor and key == "alarm_id" and isinstance(value, int):
            links = ((f"/monitoring/sensors/{quote(sensor, safe='')}#alarm-{value}", str(value)),)
        elif key == "order_ids" and isinstance(value, list) and all(isinstance(i, int) for i in value):
            links = tuple((f"/orders/{i}", f"#{i}") for i in value)
        kind = str(key) if isinstance(value, str) and key in _LABELLED_CHANNEL_VALUES else None
        if isinstance(value, bool):  # 是 / 否, not JSON's true / false
            cut, kind = ("yes" if value else "no"), "common"
        elif value is None:  # nothing sent: a dash, as the page shows any empty field, not JSON's null
            cut = "—"
        rows.append(ChannelDetail(str(key), cut, kind, links))
    return rows


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_detail(order_id: int, request: Request, db: DbSession) -> Response:
    principal = support.require_user(request, db, permissions.ORDER_READ)
    # 合并到此单 beside a possible duplicate or similar case: the merge form opened with that order's number in it,
    # sent by the dispatcher after reading it (``merge_into``; the number was copied by hand into the form).
    merge_into = request.query_params.get("merge_into", "").strip()[:40]
    # 列出全部: without app.js, the form whose long list another form lends (see ``_list_lenders``) asks for the page
    # again with that form carrying the list itself (``lists`` = the action, or ``category`` for 分类).
    lists = request.query_params.get("lists", "").strip()[:40] or None
    try:
        page = _detail_page(
            request,
            db,
            principal,
            order_id,
            open_action=Action.MERGE.value if merge_into else None,
            values={"master_id": merge_into} if merge_into else None,
            lists=lists,
        )
    except NotFound:
        raise PageError(404, "err.not_found") from None
    if principal.role != Role.CITIZEN:
        files.mark_seen(db, order_id=order_id, user_id=principal.user_id)  # its added files are no longer new to them
    return page


def _action_params(
    db: Session, principal: Principal, action: Action, form: Form, t: Translator
) -> tuple[dict[str, Any], dict[str, str]]:
    """The service parameters of an action form, and field errors for values that are not even well-formed."""
    params: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, kind, _required in ACTION_FIELDS[action]:
        raw = form.get(name).strip()
        if not raw:
            continue
        if kind in ("unit", "category"):
            if forms.whole_number(raw) is None:
                errors[name] = t("err.choice")
            else:
                params[name] = forms.whole_number(raw)
        elif kind == "days":
            try:
                params[name] = float(raw)
            except ValueError:
                errors[name] = t("err.number")
        elif kind == "bool" and action == Action.CALLBACK and raw == Rating.BASICALLY_SATISFIED:
            # 基本满意, as a text message's 2 (``tracking.rate``): satisfied, the rating kept apart in the event
            params[name], params["rating"] = True, raw
        elif kind == "bool":
            if raw not in ("true", "false"):
                errors[name] = t("err.choice")
            else:
                params[name] = raw == "true"
        elif kind == "master":
            master = orders.get_order_by_number(db, number=raw.upper())  # by20261204-000019 as typed on a phone
            if master is None or not order_in_scope(db, scope_of(db, principal), master.id):
                errors[name] = t("err.unknown_order", number=raw)
            else:
                params[name] = master.id
        else:
            params[name] = raw
    if action in ASSIST_STEPS:
        # A unit answers only for its own part of a co-handled order (as the API enforces).
        chosen = forms.whole_number(form.get("unit_id")) if principal.role == Role.ADMIN else None
        params["unit_id"] = chosen if chosen is not None else principal.unit_id
    if action == Action.INSTANT_ANSWER and form.get("kb_entry_id"):
        params["kb_entry_id"] = forms.whole_number(form.get("kb_entry_id"))
    return params, errors


@router.post("/orders/{order_id}/act/{action_name}", response_class=HTMLResponse)
def order_act(order_id: int, action_name: str, request: Request, db: DbSession, body: support.UploadBody) -> Response:
    """Apply one life-cycle action from its form; a refusal re-renders the page with the message and the input. A
    reply's form (``WITH_FILES``) carries photos of the work too: checked before the reply, attached after it in the
    same transaction — a bad file refuses the reply, naming it, and nothing is recorded."""
    form = body.form
    principal = support.require_user(request, db, permissions.ORDER_READ, form=form)
    t = support.translator(request)
    try:
        action = Action(action_name)
    except ValueError:
        raise PageError(404, "err.page_not_found") from None
    if action not in ACTION_FIELDS or not permissions.allows(principal.role, permissions.act(action)):
        raise PageError(403, "err.forbidden")
    values = form.values([name for name, _, _ in ACTION_FIELDS[action]])
    try:
        scoped_order(db, order_id, principal)
    except NotFound:
        raise PageError(404, "err.not_found") from None
    # Files come with a reply only from whoever may attach them (the page offers them no file input otherwise).
    takes_files = action in WITH_FILES and permissions.may_attach(principal.role)
    upload = body if takes_files else support.UploadForm(form, [])
    kept = _kept_files(t, principal, form) if takes_files else _Kept(held.Claimed(items=[]), [], [])
    params, errors = _action_params(db, principal, action, form, t)
    if action == Action.DISPATCH and form.get("reason_of") == SUGGESTION_REASON and not params.get("reason"):
        # the queue's 派至 button of a suggestion: the reason it showed, read again (:func:`_suggestion_reasons`)
        unit_id = params.get("unit_id")
        shown = _suggestion_reasons(db, t, {order_id: unit_id}) if isinstance(unit_id, int) else {}
        if order_id in shown:
            params["reason"] = shown[order_id]
    if errors or kept.notes:
        # Held files it carried that are expired or not the sender's are never attached: the form comes back saying
        # so, rather than the reply recorded without the photos its sender believes it carries.
        holding, dropped = _hold(t, principal, errors, upload, kept)
        return _detail_page(
            request,
            db,
            principal,
            order_id,
            error=t("err.validation") if errors else t("held.refused"),
            open_action=action.value,
            values=values,
            errors=errors,
            status_code=422,
            dropped=dropped,
            held_files=holding,
            held_notes=kept.notes,
        )
    if action == Action.REPLY and form.get("check"):
        # 检查答复质量: the typed reply scored as the reply-check job will score it once sent — nothing recorded, the
        # text given back to be improved or sent (a weak reply was found only after it was sent, by its supervisor).
        holding, dropped = _hold(t, principal, {}, upload, kept)
        return _detail_page(
            request,
            db,
            principal,
            order_id,
            open_action=action.value,
            values=values,
            dropped=dropped,
            held_files=holding,
            reply_preview=_reply_preview(db, order_id, params.get("text")),
        )
    try:
        version = forms.whole_number(form.get("version"))
        from cityhub.knowledge import service as kb

        if upload.too_many:
            raise files.too_many_files()
        photos = _with_kept(kept, upload.files)
        if action == Action.ACCEPT:
            # 签收并开始办理 (the order page's and a 待签收 row's): the second step right after the first, in the same
            # transaction, audited as its own — the API's accept with start, one service function.
            start = bool(form.get("and_start")) and permissions.allows(principal.role, permissions.act(Action.START))
            order = orders.accept(
                db, order_id=order_id, actor=principal.actor, start=start, params=params, expected_version=version
            )
        elif action == Action.CALLBACK:
            # 回访并办结: a satisfied callback closed right after it, each step its own event (one service function);
            # an unsatisfied one is recorded and left for 重办 or 办结.
            close = bool(form.get("and_close")) and permissions.allows(principal.role, permissions.act(Action.CLOSE))
            order = orders.callback(
                db, order_id=order_id, actor=principal.actor, close=close, params=params, expected_version=version
            )
        else:
            order = kb.act_on_order(
                db, order_id=order_id, action=action, actor=principal.actor, params=params, expected_version=version
            )
        if photos:
            check_attach(principal, order)
            files.attach(db, order_id=order_id, uploads=photos, actor=principal.actor)
            held.release_after_commit(db, kept.claimed.tokens, owner_id=principal.user_id)
        held.release(kept.removed, owner_id=principal.user_id)
        db.flush()
    except (CityhubError, StaleDataError) as exc:
        error, message, field_errors = _refusal(db, t, exc, citizen=principal.role == Role.CITIZEN)
        if isinstance(exc, StaleDataError) or (isinstance(exc, Conflict) and "version" in error.details):
            # Acted on meanwhile (another tab, a colleague, the time-limit sweep): the page re-rendered is the order as
            # it stands, the form its new version and what was typed — sent again as it is; "reload and try again"
            # threw the typed text away.
            message = t("order.changed_meanwhile")
        if error.details.get("field") == "files":
            field_errors["files"] = _file_problem(t, error) + t("intake.files_again")
        holding, dropped = _hold(t, principal, field_errors, upload, kept)
        return _detail_page(
            request,
            db,
            principal,
            order_id,
            error=message,
            open_action=action.value,
            values=values,
            errors=field_errors,
            status_code=error.http_status,
            dropped=dropped,
            held_files=holding,
        )
    back = support.safe_next(form.get("next"), f"/orders/{order_id}")
    staff_name = _STAFF_NAMES.get(action.value) if principal.role in permissions.UNIT_STAFF_ROLES else None
    done = t(staff_name) if staff_name else t.label("action", action)  # as its button said: 申请协办, 下派
    if action == Action.ACCEPT and order.state == State.IN_PROGRESS:
        done = t("order.accept_and_start")  # 签收并开始办理, from the order page or a 待签收 row
    if action == Action.CALLBACK and order.state in CLOSED_STATES:
        done = t("order.callback_and_close")  # 回访并办结
    elif action == Action.CALLBACK and form.get("and_close") and principal.role != Role.CITIZEN:
        done = t("order.callback_not_closed")  # 回访（不满意，未办结）: it waits in 回访不满意
    if back.partition("?")[0] == "/queue" and action == Action.DISPATCH:
        unit = db.get(Unit, params.get("unit_id"))
        flash = ("queue.dispatched", {"number": order.number, "unit": unit.name if unit else "?"})
    elif action == Action.URGE and order.lead_unit_id is not None:
        # 催办 names whom it went to, as the form said it would
        unit = db.get(Unit, order.lead_unit_id)
        flash = ("order.urge_sent", {"number": order.number, "unit": unit.name if unit else "?"})
    elif action == Action.SPLIT:
        flash = ("order.split_done", {"number": orders.newest_part(db, order_id) or "?"})
    elif action == Action.CALLBACK and principal.role == Role.CITIZEN:
        flash = (
            "track.thanks",
            {},
        )  # their rating thanked for, as /track thanks them (已完成：评价答复 was the desk's)
    elif back.partition("?")[0] != f"/orders/{order_id}":
        # Taken from a list (签收 on 待签收): the flash names the order, the page shown being the list.
        flash = ("order.done_elsewhere", {"action": done, "number": order.number})
    else:
        flash = ("order.done", {"action": done})
    if not may_read(db, principal, order_id):
        # E.g. a street handler who returned the order no longer sees it: their list, saying which order it was.
        back = support.order_list_of(principal)
        flash = ("order.done_elsewhere", {"action": done, "number": order.number})
    if action == Action.CALLBACK and principal.role != Role.CITIZEN:
        # The callback desk calls dozens a day: the flash offers the next order 待回访 lists first (the keyboard's
        # focus on it, base.html), or says none is left — not back to the list after each call.
        following = _next_callback(db, principal, t, order_id)
        more = (
            {"next_callback": str(following.id), "next_number": following.number}
            if following
            else {"callbacks_done": "1"}
        )
        flash = (flash[0], {**flash[1], **more})
    return support.redirect(back, flash=flash)


def _next_callback(db: Session, principal: Principal, t: Translator, done_id: int) -> Order | None:
    """The order 待回访 lists first for ``principal`` (its criteria, sort and the reader's scope), other than the
    one just called back (``done_id``); None when the list is empty."""
    listed = _list_query(_ListReader(db, principal), QueryParams(urlsplit(support.CALLBACK_VIEW).query), t)
    rows, _, _ = orders.search_orders(db, filters=listed.filters, limit=2, scope=listed.scope, sort=listed.sort)
    return next((o for o in rows if o.id != done_id), None)


def _picked(form: Any) -> list[int]:
    """The ids of the orders ticked on a list (``pick``) for one of its bulk bars; 422 for one that is no id."""
    ids = [forms.whole_number(raw) for raw in form.getlist("pick")]
    if any(i is None for i in ids):
        raise PageError(422, "err.bad_pick")
    return [i for i in ids if i is not None]


def _bulk_refused(ticked: int, most: int) -> PageError:
    """A bulk bar's refusal by the service (its ValidationFailed): too many orders ticked, said with the limit, else
    what a page posted that no page makes."""
    if ticked > most:
        return PageError(422, "err.bulk_too_many", most=most, n=ticked)
    return PageError(422, "err.bad_request")


def _refused_text(db: Session, t: Translator, refused: Sequence[Any]) -> str:
    """The orders a bulk bar could not act on, for its flash: each by its number with the state it is in now."""
    now = {o.id: o for o in db.scalars(select(Order).where(Order.id.in_([o.order_id for o in refused])))}
    return t.sep.join(
        f"{o.number or t('queue.bulk_order_id', id=o.order_id)}"
        + (f"{t.lp}{t.label('state', now[o.order_id].state)}{t.rp}" if o.order_id in now else "")
        for o in refused
    )


@router.post("/orders/urge", response_class=HTMLResponse)
def orders_bulk_urge(request: Request, db: DbSession, form: FormBody) -> Response:
    """批量催办: the orders ticked on a list (``pick``, their ids) urged with one message (``reason``), each its own
    audited 催办 (``workorders.service.act_each``). The flash names the orders urged and the unit each went to, and
    those not urged with the state they are in now (answered or closed meanwhile); none ticked or no message, the
    list again saying what is missing, its ticks and its message as they were left."""
    principal = support.require_user(request, db, permissions.act(Action.URGE), form=form)
    t = support.translator(request)
    back = support.safe_next(form.get("next"), support.order_list_of(principal))
    ids = _picked(form)
    reason = (form.get("reason") or "").strip()
    # Refused for what is missing, the list comes back as it was left: the message typed, the orders ticked (carried
    # in the flash, read by orders.html) — the ticks were lost and had to be found again on the page.
    if not ids:
        return support.redirect(back, flash=("order.bulk_urge_none", {"reason": reason[:REASON_MAX_CHARS]}))
    if not reason:
        picked = ",".join(str(i) for i in list(dict.fromkeys(ids))[: orders.ACT_EACH_MAX])  # a page's, within a cookie
        return support.redirect(back, flash=("order.bulk_urge_no_reason", {"n": len(set(ids)), "picked": picked}))
    try:
        outcomes = orders.act_each(
            db,
            [(i, None) for i in ids],
            action=Action.URGE,
            params={"reason": reason[:REASON_MAX_CHARS]},
            actor=principal.actor,
            scope=scope_of(db, principal).clause(),
        )
    except ValidationFailed:
        raise _bulk_refused(len(ids), orders.ACT_EACH_MAX) from None
    db.commit()
    units = support.names_of(db, Unit, {o.unit_id for o in outcomes})
    urged = [o for o in outcomes if o.done]
    refused = [o for o in outcomes if not o.done]
    done_list = t.sep.join(f"{o.number}{t.lp}{units.get(o.unit_id or 0, '—')}{t.rp}" for o in urged)
    refused_list = _refused_text(db, t, refused)
    if not refused:
        flash = ("order.bulk_urge_done", {"n": len(urged), "orders": done_list})
    elif not urged:
        flash = ("order.bulk_urge_refused", {"m": len(refused), "refused": refused_list})
    else:
        flash = (
            "order.bulk_urge_partial",
            {"n": len(urged), "orders": done_list, "m": len(refused), "refused": refused_list},
        )
    return support.redirect(back, flash=flash)


@router.post("/orders/accept", response_class=HTMLResponse)
def orders_bulk_accept(request: Request, db: DbSession, form: FormBody) -> Response:
    """批量签收 on 待签收: the orders ticked (``pick``, their ids) signed for, and with ``start`` started too
    (签收并开始办理), each through ``workorders.service.accept`` in ``act_each``'s savepoint, each step its own audited
    event. The flash names the orders done and those not (taken meanwhile, not their unit's) with their state now."""
    principal = support.require_user(request, db, permissions.act(Action.ACCEPT), form=form)
    t = support.translator(request)
    back = support.safe_next(form.get("next"), support.order_list_of(principal))
    ids = _picked(form)
    if not ids:
        return support.redirect(back, flash=("order.bulk_accept_none", {}))
    start = bool(form.get("start")) and permissions.allows(principal.role, permissions.act(Action.START))
    try:
        outcomes = orders.act_each(
            db,
            [(i, None) for i in ids],
            action=Action.ACCEPT,
            params={},
            actor=principal.actor,
            scope=scope_of(db, principal).clause(),
            start=start,
        )
    except ValidationFailed:
        raise _bulk_refused(len(ids), orders.ACT_EACH_MAX) from None
    db.commit()
    done = [o for o in outcomes if o.done]
    refused = [o for o in outcomes if not o.done]
    refused_list = _refused_text(db, t, refused)
    step = t("order.accept_and_start") if start else t.label("action", Action.ACCEPT)
    args = {"action": step, "n": len(done), "orders": t.sep.join(o.number or "" for o in done)}
    if not refused:
        flash = ("order.bulk_accept_done", args)
    elif not done:
        flash = ("order.bulk_accept_refused", {"action": step, "m": len(refused), "refused": refused_list})
    else:
        flash = ("order.bulk_accept_partial", {**args, "m": len(refused), "refused": refused_list})
    return support.redirect(back, flash=flash)


def _reply_preview(db: Session, order_id: int, text: str | None) -> ReplyQuality:
    """A reply typed on the order's page, scored as the ``reply-check`` job scores a reply sent now
    (``knowledge.service.score_order_reply``); nothing is written."""
    from cityhub.knowledge import service as kb

    order = db.get(Order, order_id)
    assert order is not None  # scoped_order found it
    return kb.score_order_reply(db, order=order, text=text, replied_at=utcnow())


def _attachable(principal: Principal, order: Order) -> bool:
    """Whether the order page offers to attach files: what :func:`check_attach` lets through."""
    try:
        check_attach(principal, order)
    except CityhubError:
        return False
    return True


@router.post("/orders/{order_id}/attachments", response_class=HTMLResponse)
def order_attach(order_id: int, request: Request, db: DbSession, body: support.UploadBody) -> Response:
    """Attach files from the order page (上传附件; a citizen's 补充材料 to their open appeal): whoever may comment on
    the order; a refusal re-renders the page naming the file and what is wrong with it, nothing attached."""
    principal = support.require_user(request, db, form=body.form)
    if not permissions.may_attach(principal.role):
        raise PageError(403, "err.forbidden")
    t = support.translator(request)
    try:
        order = scoped_order(db, order_id, principal)
    except NotFound:
        raise PageError(404, "err.not_found") from None
    note = body.form.text("note")
    kept = _kept_files(t, principal, body.form)
    try:
        if kept.notes:  # held files expired or not the sender's: never attached, the form comes back saying so
            raise ValidationFailed("held files expired or unknown", details={"field": "held"})
        check_attach(principal, order)
        if body.too_many:
            raise files.too_many_files()
        # Its held files (已保留的附件) and the fresh ones, as one upload; none at all: files.check says so.
        given = _with_kept(kept, body.files) or body.files
        # No version check: a file does not depend on what others did to the order meanwhile.
        rows = files.attach(db, order_id=order_id, uploads=given, actor=principal.actor, note=note)
        held.release_after_commit(db, kept.claimed.tokens, owner_id=principal.user_id)
        held.release(kept.removed, owner_id=principal.user_id)
        db.flush()
    except (CityhubError, StaleDataError) as exc:
        error, message, fields = _refusal(db, t, exc)
        if error.details.get("field") == "files":
            fields["files"] = _file_problem(t, error)
        if error.details.get("field") == "held":
            fields.pop("held", None)
            message = t("held.refused")
        holding, dropped = _hold(t, principal, fields, body, kept)
        return _detail_page(
            request,
            db,
            principal,
            order_id,
            error=message,
            open_action="attach",
            values={"note": note or ""},
            errors=fields,
            status_code=error.http_status,
            dropped=dropped,
            held_files=holding,
            held_notes=kept.notes,
        )
    return support.redirect(f"/orders/{order_id}", flash=("order.attached", {"count": len(rows)}))


@router.get("/held/{token}/thumb")
def held_thumbnail(token: str, request: Request, db: DbSession) -> Response:
    """The small picture of a photo held for a refused form (已保留的附件), for the one who sent it: another user's,
    an expired or unknown token is a 404."""
    from fastapi.responses import FileResponse

    principal = support.require_user(request, db)
    path = held.thumbnail(principal.user_id, token)
    if path is None:
        raise PageError(404, "err.not_found")
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": files.CONTENT_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/orders/{order_id}/attachments/{attachment_id}/remove", response_class=HTMLResponse)
def order_detach(order_id: int, attachment_id: int, request: Request, db: DbSession, form: FormBody) -> Response:
    """Remove an attachment from the order page, with the reason (``workorders.files.remove`` decides who may)."""
    principal = support.require_user(request, db, permissions.ORDER_READ, form=form)
    t = support.translator(request)
    try:
        scoped_order(db, order_id, principal)
    except NotFound:
        raise PageError(404, "err.not_found") from None
    try:
        row = files.remove(
            db,
            order_id=order_id,
            attachment_id=attachment_id,
            actor=principal.actor,
            reason=form.text("reason"),
            may_remove_any=permissions.allows(principal.role, permissions.ATTACHMENTS_REMOVE),
        )
        db.flush()
    except (CityhubError, StaleDataError) as exc:
        error, message, _ = _refusal(db, t, exc)
        if error.details.get("field") == "reason":
            limit = forms.limit_exceeded(error.message)
            message = t("order.remove_reason_too_long", max=limit) if limit else t("order.remove_reason_needed")
        return _detail_page(request, db, principal, order_id, error=message, status_code=error.http_status)
    return support.redirect(f"/orders/{order_id}", flash=("order.attachment_removed", {"name": row.filename}))


def _publication(
    request: Request, db: DbSession, form: FormBody, *, order_id: int, attachment_id: int, publish: bool
) -> Response:
    """公开 / 撤回公开 of a photo from the order page: supervisors and administrators (``attachments:remove``, who
    moderate the order's files), as the API does it (``workorders.files.publish`` / ``withdraw``)."""
    principal = support.require_user(request, db, permissions.ATTACHMENTS_REMOVE, form=form)
    t = support.translator(request)
    try:
        scoped_order(db, order_id, principal)
    except NotFound:
        raise PageError(404, "err.not_found") from None
    move = files.publish if publish else files.withdraw
    try:
        row = move(db, order_id=order_id, attachment_id=attachment_id, actor=principal.actor)
        db.flush()
    except (CityhubError, StaleDataError) as exc:
        error, message, _ = _refusal(db, t, exc)
        problem = error.details.get("problem") if error.details.get("field") == "attachment" else None
        if problem:
            message = t(f"order.publish_{problem}")
        return _detail_page(request, db, principal, order_id, error=message, status_code=error.http_status)
    flash = "order.photo_published" if publish else "order.photo_withdrawn"
    return support.redirect(f"/orders/{order_id}", flash=(flash, {"name": row.filename}))


@router.post("/orders/{order_id}/attachments/{attachment_id}/publish", response_class=HTMLResponse)
def order_publish_photo(order_id: int, attachment_id: int, request: Request, db: DbSession, form: FormBody) -> Response:
    """公开: publish a photo of the order for Open311's media_url."""
    return _publication(request, db, form, order_id=order_id, attachment_id=attachment_id, publish=True)


@router.post("/orders/{order_id}/attachments/{attachment_id}/withdraw", response_class=HTMLResponse)
def order_withdraw_photo(
    order_id: int, attachment_id: int, request: Request, db: DbSession, form: FormBody
) -> Response:
    """撤回公开: withdraw a published photo of the order."""
    return _publication(request, db, form, order_id=order_id, attachment_id=attachment_id, publish=False)


@dataclass
class _Kept:
    """The held files a form with files sent back (已保留的附件: hidden ``held`` tokens), those its sender ticked to
    remove (``held_remove``), and the notes of the tokens ignored (expired, unknown or another user's: never
    attached)."""

    claimed: held.Claimed
    removed: list[str]
    notes: list[str]

    @property
    def checked(self) -> list[files.Checked]:
        return [item for _, item in self.claimed.items]


def _kept_files(t: Translator, principal: Principal, form: Form) -> _Kept:
    """The held files ``form`` carries back that are its sender's and current (:func:`held.claim`)."""
    removed = form.getlist("held_remove")
    claimed = held.claim([x for x in form.getlist("held") if x not in removed], owner_id=principal.user_id)
    notes = []
    if claimed.expired:
        notes.append(t("held.expired", count=claimed.expired, hours=f"{files.get_file_settings().held_hours:g}"))
    if claimed.unknown:
        notes.append(t("held.unknown", count=claimed.unknown))
    return _Kept(claimed, removed, notes)


def _with_kept(kept: _Kept, fresh: Sequence[files.Upload]) -> list[files.Checked]:
    """What a form sent with files attaches: its held files and the fresh ones, checked as one upload is — at most
    ``CITYHUB_FILES_MAX_COUNT`` in all."""
    items = kept.checked + (files.check(fresh) if fresh else [])
    if len(items) > files.get_file_settings().max_count:
        raise files.too_many_files()
    return items


def _hold(
    t: Translator, principal: Principal, errors: dict[str, str], upload: support.UploadForm, kept: _Kept
) -> tuple[list[held.Held], list[str]]:
    """A form with files comes back (refused, or a preview asked for): the files it carried that would be taken are
    held for it (:func:`held.hold`, listed under the file input as 已保留的附件, sent back with the form) with those
    it held already; those ticked to remove are let go. Returns the files held and the names of those not held for
    want of room (the count limit: to choose again). A file that would be refused is said at the field now
    (``errors``), so that one round fixes all, as too many files are."""
    held.release(kept.removed, owner_id=principal.user_id)
    holding = [h for h, _ in kept.claimed.items]
    settings = files.get_file_settings()
    room = settings.max_count - len(holding)
    fresh: list[files.Checked] = []
    dropped: list[str] = []
    bad: ValidationFailed | None = None
    for one in upload.files:
        try:
            (item,) = files.check([one], settings)
        except ValidationFailed as refused:
            bad = bad or refused
            continue
        if len(fresh) < room:
            fresh.append(item)
        else:
            dropped.append(item.filename)
    if "files" not in errors:
        if upload.too_many:
            errors["files"] = _file_problem(t, files.too_many_files()) + t("intake.files_again")
        elif bad is not None:
            errors["files"] = _file_problem(t, bad) + t("intake.files_again")
    return holding + held.hold(fresh, owner_id=principal.user_id), dropped


def _file_problem(t: Translator, error: CityhubError) -> str:
    """What is wrong with an upload (``files.check``'s ``problem``), in the user's language."""
    details = error.details
    settings = files.get_file_settings()
    return t(
        f"files.{details.get('problem', 'none')}",
        name=details.get("filename", ""),
        mb=f"{settings.max_mb:g}",
        count=details.get("max_count", settings.max_count),
    )


def _dispatcher_on(request: Request, db: Session, order_id: int, form: Form) -> tuple[Principal, Translator]:
    """Who corrects a waiting order's place or category — one who dispatches, the order in their scope (else the
    page's 403 / 404) — and their language."""
    principal = support.require_user(request, db, permissions.act(Action.DISPATCH), form=form)
    try:
        scoped_order(db, order_id, principal)
    except NotFound:
        raise PageError(404, "err.not_found") from None
    return principal, support.translator(request)


@router.post("/orders/{order_id}/place", response_class=HTMLResponse)
def order_place(order_id: int, request: Request, db: DbSession, form: FormBody) -> Response:
    """A dispatcher sets or corrects where an order is, before dispatch, and may keep the places the order names that
    the gazetteer did not know as aliases of the unit chosen (``alias_N`` ticked, ``alias_kind_N``); a refusal of the
    correction re-renders the page with why, an alias refused is said in the message beside the correction made."""
    from cityhub.dispatch import service as dispatch

    principal, t = _dispatcher_on(request, db, order_id, form)
    unit_id = forms.whole_number(form.get("unit_id"))
    try:
        if unit_id is None:
            raise ValidationFailed("choose a street or community", details={"field": "unit_id"})
        done = dispatch.correct_place(
            db,
            order_id=order_id,
            unit_id=unit_id,
            actor=principal.actor,
            aliases=_alias_wishes(form),
            reason=(form.get("reason") or "").strip() or None,
            expected_version=forms.whole_number(form.get("version")),
        )
        db.flush()
    except (CityhubError, StaleDataError) as exc:
        error, message, _ = _refusal(db, t, exc)
        if error.details.get("reason") == "scope":
            message = t("order.place_alias_scope", unit=error.details.get("unit", ""))
        return _detail_page(request, db, principal, order_id, error=message, status_code=error.http_status)
    unit = db.get(Unit, unit_id)
    # Set, or — the order had that place already — confirmed (the trail says 属地确认为 … when it taught an alias).
    said = "order.place_set" if done.moved else "order.place_confirmed"
    place = unit.name if unit else "?"
    if done.aliases:
        flash: support.Flash = (f"{said}_aliases", {"place": place, "aliases": _alias_report(t, done.aliases)})
    else:
        flash = (said, {"place": place})
    return support.redirect(support.safe_next(form.get("next"), f"/orders/{order_id}"), flash=flash)


@router.post("/orders/{order_id}/category", response_class=HTMLResponse)
def order_category(order_id: int, request: Request, db: DbSession, form: FormBody) -> Response:
    """A dispatcher sets or corrects an order's category before dispatch (`dispatch.service.set_category`, audited):
    the rules' suggestions then start from it, and the order is counted and learnt from under it — one dispatched
    by hand on the classifier's guess alone kept no category (分类 —) and taught the next model nothing."""
    from cityhub.dispatch import service as dispatch

    principal, t = _dispatcher_on(request, db, order_id, form)
    category_id = forms.whole_number(form.get("category_id"))
    try:
        if category_id is None:
            raise ValidationFailed("choose a category", details={"field": "category_id"})
        dispatch.set_category(
            db,
            order_id=order_id,
            category_id=category_id,
            actor=principal.actor,
            expected_version=forms.whole_number(form.get("version")),
        )
        db.flush()
    except (CityhubError, StaleDataError) as exc:
        error, message, _ = _refusal(db, t, exc)
        return _detail_page(request, db, principal, order_id, error=message, status_code=error.http_status)
    category = db.get(Category, category_id)
    flash: support.Flash = ("order.category_set", {"category": category.path if category else "?"})
    return support.redirect(support.safe_next(form.get("next"), f"/orders/{order_id}"), flash=flash)


def _suggested_categories(db: Session, decision: Any) -> list[Any]:
    """The active categories the classifier's top three name, most likely first (offered first in the category
    correction; never chosen for the dispatcher)."""
    from cityhub.workorders.categories import find_categories

    top = [label for label, _ in ((decision.prediction or {}).get("top3") or [])] if decision is not None else []
    found = find_categories(db, names=top)
    return list({ref.id: ref for ref in (found[label] for label in top) if ref is not None}.values())


def _alias_wishes(form: Form) -> list[AliasWish]:
    """The place aliases ticked in the place correction: each ``alias_N`` sent (a ticked box), with its
    ``alias_kind_N``."""
    return [
        AliasWish(value.strip(), form.get(f"alias_kind_{key[6:]}") or None)
        for key, value in form.pairs
        if key.startswith("alias_") and not key.startswith("alias_kind_") and value.strip()
    ]


def _alias_report(t: Translator, outcomes: list[AliasOutcome]) -> str:
    """What became of the aliases a place correction asked for, in the user's language: those added, then each
    refused with why."""
    from cityhub.web.units_pages import ALIAS_REASONS, holder_names

    added = [o.alias for o in outcomes if o.added]
    parts = [t("order.place_aliases_added", aliases=t.sep.join(added))] if added else []
    for o in outcomes:
        if o.added:
            continue
        units = holder_names(t, o.holders, o.units)
        if o.reason == "ambiguous":
            why = t("order.place_alias_ambiguous", units=units)
        elif o.reason in ALIAS_REASONS:
            why = t(ALIAS_REASONS[o.reason], units=units)
        else:
            why = o.message or ""
        parts.append(t("order.place_alias_refused", alias=o.alias, why=why))
    return " ".join(parts)


# -------------------------------------------------------------------------------------------------- queue


# The queue's own search (找单): words of the title, content or address, an order's number, a caller's phone or name —
# as the order list's ``q`` reads them — and the category and street, with 只看退单 and the page.
QUEUE_SEARCH = ("q", "category_id", "street_id")
# The categories the queue is narrowed by: the taxonomy's first level (each holds the levels under it), so the page
# does not carry all 650 of a district's (its first two levels: 133, 6 KB a page) — and under each, the deeper ones
# orders wait in (:func:`_queue_categories`), which a dispatcher working one subcategory picks.
QUEUE_CATEGORY_DEPTH = 1


@dataclass(frozen=True)
class QueueCategory:
    """One choice of the queue's category filter: the category and how many of the waiting orders (in the reader's
    scope) are of it or below it (0: none waits)."""

    category: Category
    waiting: int


def _queue_categories(db: Session, scope: Any, typed: str) -> list[QueueCategory]:
    """The queue's category choices: each first-level category, followed by the deeper categories that orders wait in
    (as the queue reads their category, ``dispatch.queue_categories``) and the one chosen (``typed``), by path, each
    with its waiting orders."""
    from cityhub.dispatch import service as dispatch

    own = dispatch.queue_categories(db, scope=scope)
    categories = support.active_categories(db)
    paths = {c.id: c.path for c in categories}
    within: dict[str, int] = {}  # path → waiting orders of it and below
    for category_id, n in own.items():
        path = paths.get(category_id)
        parts = path.split("/") if path else []
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            within[prefix] = within.get(prefix, 0) + n
    return [
        QueueCategory(c, within.get(c.path, 0))
        for c in categories
        if c.path.count("/") < QUEUE_CATEGORY_DEPTH or c.id in own or str(c.id) == typed
    ]


@dataclass(frozen=True)
class QueueSearch:
    """What the queue is narrowed to: the criteria typed (as typed, for the form), the clause they make (None: not
    searched), their errors at their fields, the address of the queue as searched (``query``: its parameters beside
    ``page``)."""

    typed: dict[str, str]
    clause: Any
    errors: dict[str, str]
    query: list[tuple[str, str]]

    @property
    def path(self) -> str:
        return "/queue" + (f"?{urlencode(self.query)}" if self.query else "")


def _queue_search(db: Session, principal: Principal, params: QueryParams, t: Translator) -> QueueSearch:
    """The queue's search read by the order list's own criteria (:func:`_list_query`: the same words, number, phone
    and category subtree as ``/orders``), with 只看退单."""
    typed = {name: params.get(name, "").strip() for name in QUEUE_SEARCH}
    query = [(name, value) for name, value in typed.items() if value]
    if params.get("returned") == "1":
        query.append(("returned", "1"))
    if not any(typed.values()):
        return QueueSearch(typed, None, {}, query)
    from cityhub.dispatch import service as dispatch

    listed = _list_query(_ListReader(db, principal), QueryParams([(k, v) for k, v in typed.items() if v]), t)
    # The category as the queue shows it: the order's, else the one its decision read (dispatch.decided_category).
    category_id = listed.filters.category_id
    filters = listed.filters.model_copy(update={"category_id": None})
    clause = orders.search_condition(db, filters=filters, scope=listed.scope)
    if category_id is not None:
        clause = and_(clause, dispatch.decided_category(db, category_id))
    return QueueSearch(typed, clause, listed.errors, query)


# A dispatch from the queue's suggestion (its button, or 批量派单's choice) posts which suggestion it took, not its
# reason: the reason recorded is read again here as the page showed it. The page posted each reason back in two
# hidden fields, most of a queue page's weight (~20 KB of ~90).
SUGGESTION_REASON = "suggestion"


def _suggestion_reasons(db: Session, t: Translator, chosen: Mapping[int, int]) -> dict[int, str]:
    """The reason the queue showed for each waiting order's chosen suggestion (``chosen``: order id → unit id), in
    ``t``'s language — the returning unit's word (建议改派至) when the unit is the one it named, else that unit's
    reasons in the decision the queue shows (``dispatch.shown_decisions``). An order no longer waiting, or whose unit
    is none of its suggestions now, has none."""
    from cityhub.dispatch import service as dispatch

    if not chosen:
        return {}
    waiting = list(db.scalars(select(Order).where(Order.id.in_(list(chosen)), Order.state.in_(dispatch.QUEUE_STATES))))
    returns = dispatch.last_returns(db, [o.id for o in waiting if o.state == State.RETURNED])
    offered = dispatch.returner_suggestions(db, returns)
    decisions = dispatch.shown_decisions(db, [o for o in waiting if offered.get(o.id) != chosen[o.id]])
    directory = _directory(db)
    reasons: dict[int, str] = {}
    for order in waiting:
        unit_id = chosen[order.id]
        if offered.get(order.id) == unit_id:
            reasons[order.id] = t("queue.returner_suggestion") + t.colon + t.unit_name(directory.get(unit_id, ""))
            continue
        said = [c.reasons for c in decisions[order.id].shown if c.unit_id == unit_id]
        if said:
            reasons[order.id] = machine_text.explain(t, "; ".join(said[0]), directory)[:REASON_MAX_CHARS]
    return reasons


@router.get("/queue", response_class=HTMLResponse)
def dispatch_queue(request: Request, db: DbSession) -> Response:
    """Orders waiting for a dispatcher with the top three units and the reason; one click dispatches. Searched
    (``q``, ``category_id``, ``street_id``), the waiting orders that match."""
    from cityhub.dispatch import background
    from cityhub.dispatch import service as dispatch

    principal = support.require_user(request, db, permissions.act(Action.DISPATCH))
    t = support.translator(request)
    page = max(1, forms.whole_number(request.query_params.get("page")) or 1)
    # 只看退单: the returned orders alone, wherever their age puts them among the pages.
    returned_only = request.query_params.get("returned") == "1"
    scope = scope_of(db, principal).clause()
    search = _queue_search(db, principal, request.query_params, t)
    within = scope if search.clause is None else search.clause if scope is None else and_(scope, search.clause)
    rows, has_more = dispatch.queue(
        db,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        scope=within,
        states=(State.RETURNED,) if returned_only else dispatch.QUEUE_STATES,
    )
    # How many wait, the returned among them: what a busy morning holds, beyond the page in sight.
    counts = dispatch.queue_counts(db, scope=scope)
    matched = None if search.clause is None else dispatch.queue_counts(db, scope=within)
    # 拆单: the appeal a waiting order was split from, by number.
    split_from = orders.order_numbers(db, (order.split_from_id for order, _ in rows))
    # A returned order says who sent it back and why: the next unit is chosen by it.
    returns = dispatch.last_returns(db, [order.id for order, _ in rows if order.state == State.RETURNED])
    # …and the unit it suggested instead (建议改派至), offered first, as its word.
    returner_suggests = dispatch.returner_suggestions(db, returns)
    directory = _directory(db)
    return render(
        request,
        "queue.html",
        principal=principal,
        rows=rows,
        dispatch_pending=background.waiting(db, (order.id for order, _ in rows)),
        supplemented=files.with_supplements(db, [order.id for order, _ in rows], reader_id=principal.user_id),
        # 同一号码另有 N 件: a repeat caller, whose earlier appeals (and their units) the order's page lists
        callers_again=_callers_again(db, principal, [order for order, _ in rows]),
        # what each suggested unit holds now (在办, 超期), beside its reasons
        loads=dispatch.unit_loads(db, {c.unit_id for _, d in rows for c in d.shown}),
        split_from=split_from,
        pending_kind=_pending_kind(),
        auto_dispatch_on=get_settings().dispatch_auto,
        page=page,
        has_more=has_more,
        waiting=sum(counts.values()),
        waiting_returned=counts[State.RETURNED],
        matched=None if matched is None else matched[State.RETURNED] if returned_only else sum(matched.values()),
        returned_only=returned_only,
        search=search,
        queue_path=search.path,
        search_categories=_queue_categories(db, scope, search.typed["category_id"]),
        search_streets=sorted(
            (u for u in unit_directory(db).values() if u.tier == UnitTier.STREET and u.active), key=lambda u: u.code
        ),
        category_names=support.names_of(db, Category, {d.category_id for _, d in rows}),
        returns=returns,
        returner_suggests=returner_suggests,
        unit_names=support.names_of(
            db,
            Unit,
            {i for _, d in rows for i in (d.place.street_id, d.place.community_id)}
            | {e.unit_id for e in returns.values()}
            | {(e.payload or {}).get(SUGGEST_UNIT) for e in returns.values()},
        ),
        directory=directory,
        units=support.unit_groups(db, handlers=True) if rows else [],
        bulk=_bulk_result(db, principal, support.read_flash(request), t),
    )


@router.post("/queue/dispatch", response_class=HTMLResponse)
def queue_bulk_dispatch(request: Request, db: DbSession, form: FormBody) -> Response:
    """批量派单: the ticked orders of the queue (each ``pick`` "order:version", the version the page showed), each to
    the suggestion chosen for it on the page (``unit_<order>``, the first unless the dispatcher chose another, with
    that suggestion's reason ``reason_<order>_<unit>``) — or all to the one unit chosen in the bar (``bulk_unit``, with
    ``bulk_reason``). Those taken or changed meanwhile, or with no unit to go to, are named and stay in the queue."""
    from cityhub.dispatch import service as dispatch

    principal = support.require_user(request, db, permissions.act(Action.DISPATCH), form=form)
    back = support.safe_next(form.get("next"), "/queue")
    chosen = forms.whole_number(form.get("bulk_unit"))
    picks: list[dispatch.Pick] = []
    unsent: list[dispatch.PickOutcome] = []
    for raw in form.getlist("pick"):
        order_text, _, version_text = raw.partition(":")
        order_id, version = forms.whole_number(order_text), forms.whole_number(version_text)
        if order_id is None:
            raise PageError(422, "err.bad_pick")
        unit_id = chosen if chosen is not None else forms.whole_number(form.get(f"unit_{order_id}"))
        # (a page of before the reasons were read here posted each suggestion's as ``reason_<order>_<unit>``)
        reason = form.get("bulk_reason") if chosen is not None else form.get(f"reason_{order_id}_{unit_id}")
        if unit_id is None:  # no suggestion, and no unit chosen for all
            unsent.append(dispatch.PickOutcome(order_id, None, False, refusal=dispatch.Refusal.NO_UNIT))
            continue
        picks.append(dispatch.Pick(order_id, unit_id, version, reason.strip()[:REASON_MAX_CHARS] or None))
    if not picks and not unsent:
        return support.redirect(back, flash=("queue.bulk_none", {}))
    if chosen is None:  # each to its chosen suggestion: with the reason the page showed for it
        shown = _suggestion_reasons(db, support.translator(request), {p.order_id: p.unit_id for p in picks})
        picks = [p if p.reason else replace(p, reason=shown.get(p.order_id)) for p in picks]
    try:
        outcomes = dispatch.dispatch_picked(db, picks, actor=principal.actor, scope=scope_of(db, principal).clause())
    except ValidationFailed:
        raise _bulk_refused(len(picks), dispatch.BULK_MAX) from None
    db.commit()
    return support.redirect(back, flash=_bulk_flash([*outcomes, *unsent]))


# 批量派单's result rides to the queue page in the flash cookie, which holds about 4 KB: orders by id, those dispatched
# grouped by unit with each unit's count, the refused with their reason's code (``Refusal``). Beyond BULK_DETAIL_MAX
# characters of ids the list is cut — the refused kept first, they are still to do — and the page says how many it
# does not name; the counts are always whole. (A queue page holds 20 orders: about 200 characters.)
BULK_DETAIL_MAX = 2400
_BULK_FLASHES = ("queue.bulk_done", "queue.bulk_partial")
# The list of each order dispatched opens by itself up to this many; beyond, it is folded under the counts by unit.
BULK_LIST_OPEN = 5


def _bulk_flash(outcomes: list[PickOutcome]) -> support.Flash:
    """The flash of a bulk dispatch's ``outcomes`` (``dispatch.PickOutcome``): counts, and the orders as
    :func:`_bulk_result` reads them back."""
    from cityhub.dispatch.service import Refusal

    sent: dict[int, list[int]] = {}
    for o in outcomes:
        if o.dispatched:
            sent.setdefault(o.unit_id or 0, []).append(o.order_id)  # a dispatched order names its unit
    groups = sorted(sent.items(), key=lambda group: -len(group[1]))  # the unit that got the most first
    budget = BULK_DETAIL_MAX - sum(len(f"{unit}:{len(ids)}:;") for unit, ids in groups)  # the counts, always
    refused: list[str] = []
    for o in outcomes:
        if not o.dispatched and len(entry := f"{o.order_id}:{(o.refusal or Refusal.OTHER).value}") < budget:
            refused.append(entry)
            budget -= len(entry) + 1
    listed: list[str] = []
    for unit, ids in groups:
        shown = []
        for order_id in ids:
            if len(str(order_id)) >= budget:
                break
            shown.append(str(order_id))
            budget -= len(shown[-1]) + 1
        listed.append(f"{unit}:{len(ids)}:{'.'.join(shown)}")
    # 派回退单单位: those sent back to the unit that returned them, named on the result (as many as the room holds)
    back: list[str] = []
    for o in outcomes:
        if o.dispatched and o.back and len(str(o.order_id)) < budget:
            back.append(str(o.order_id))
            budget -= len(back[-1]) + 1
    done = sum(len(ids) for ids in sent.values())
    m = len(outcomes) - done
    params = {"n": done, "m": m, "sent": ";".join(listed), "refused": ";".join(refused), "back": ".".join(back)}
    return ("queue.bulk_partial" if m else "queue.bulk_done", params)


@dataclass(frozen=True)
class BulkUnit:
    """Where a bulk dispatch sent orders: the unit, how many, and those of them the result names (id, number)."""

    name: str
    count: int
    orders: list[tuple[int, str]]


@dataclass(frozen=True)
class BulkRefused:
    """An order a bulk dispatch did not send: why, and what it is now (its state, the unit holding it) when the reader
    may read it."""

    id: int
    number: str | None
    reason: str
    state: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class BulkResult:
    dispatched: int
    units: list[BulkUnit]
    refused: list[BulkRefused]
    unlisted: int  # orders the result does not name one by one (beyond the flash's room)
    back: list[tuple[int, str]] = field(default_factory=list)  # sent back to the unit that returned them (退单)

    @property
    def open(self) -> bool:
        return self.dispatched <= BULK_LIST_OPEN


def _bulk_result(db: Session, principal: Principal, flash: dict[str, Any] | None, t: Translator) -> BulkResult | None:
    """The queue page's account of the bulk dispatch just made (its flash, :func:`_bulk_flash`): each order's number
    by the unit it went to, the refused with their reasons. Numbers are read within the reader's data scope (the
    cookie is the browser's to send); a flash that does not read as one gives none."""
    from cityhub.db import MAX_BIG_ID
    from cityhub.dispatch.service import Refusal

    if flash is None or flash["key"] not in _BULK_FLASHES:
        return None
    params = flash["params"]
    try:
        done, refused_count = int(params["n"]), int(params["m"])
        groups = [
            (int(unit), int(count), [int(i) for i in ids.split(".") if i])
            for unit, count, ids in (group.split(":") for group in params["sent"].split(";") if group)
        ]
        refused = [
            (int(order_id), Refusal(code))
            for order_id, code in (entry.split(":") for entry in params["refused"].split(";") if entry)
        ]
        back = [int(i) for i in str(params.get("back") or "").split(".") if i]  # (a flash of before had none)
    except (KeyError, ValueError):
        return None
    wanted = {i for _, _, ids in groups for i in ids} | {i for i, _ in refused} | set(back)
    query = select(Order.id, Order.number, Order.state, Order.lead_unit_id).where(
        Order.id.in_(sorted(i for i in wanted if 0 < i <= MAX_BIG_ID))
    )
    scope = scope_of(db, principal).clause()
    found = {row.id: row for row in db.execute(query if scope is None else query.where(scope))}
    names = _directory(db)
    units = [
        BulkUnit(names.get(unit, str(unit)), count, [(i, found[i].number) for i in ids if i in found])
        for unit, count, ids in groups
    ]
    rows: list[BulkRefused] = []
    for order_id, refusal in refused:
        reason = t(f"queue.refusal.{refusal.value}")
        now = found.get(order_id)
        if now is None:
            rows.append(BulkRefused(order_id, None, reason))
            continue
        holder = names.get(now.lead_unit_id) if now.lead_unit_id is not None else None
        rows.append(BulkRefused(order_id, now.number, reason, t.label("state", now.state), holder))
    named = sum(len(u.orders) for u in units) + len(rows)
    went_back = [(i, found[i].number) for i in back if i in found]
    return BulkResult(done, units, rows, max(0, done + refused_count - named), went_back)


@router.get("/reviews", response_class=HTMLResponse)
def reviews(request: Request, db: DbSession) -> Response:
    """The supervisor's review list (答复审核): replied orders whose reply the reply check scored weak, worst first,
    within the user's data scope — as GET /api/v1/kb/weak-replies."""
    from cityhub.knowledge import service as kb

    principal = support.require_user(request, db, permissions.REPLY_REVIEW)
    page = max(1, forms.whole_number(request.query_params.get("page")) or 1)
    scope = scope_of(db, principal).clause()
    pairs, has_more = kb.weak_replies(db, scope=scope, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    # What the supervisor judges: the appeal's title and the reply itself, as this reader may read them.
    rows = [
        (order, check, shown_text(principal, order, order.title), shown_text(principal, order, order.reply_text))
        for order, check in pairs
    ]
    return render(
        request,
        "reviews.html",
        principal=principal,
        rows=rows,
        page=page,
        has_more=has_more,
        unit_names=support.names_of(db, Unit, {o.lead_unit_id for o, _ in pairs}),
        unchecked=kb.unchecked_replies(db, scope=scope),
        # How many wait in all (the list's pages hold 20), and 退回答复 on each row for whoever may send a reply back:
        # the list said only "open the order", one more page for each weak reply.
        total=kb.count_weak_replies(db, scope=scope),
        may_return=permissions.allows(principal.role, permissions.act(Action.REJECT_REPLY)),
        here="/reviews" + (f"?page={page}" if page > 1 else ""),
        reason_max=REASON_MAX_CHARS,
    )


# ---------------------------------------------------------------------------------------------- dashboard


def _longer_periods(period: Any) -> list[str]:
    """The quarter and the year holding ``period``'s last day, those longer than it: where a ranking the period left
    empty (no unit with the minimum sample — the recent 30 days' usually) finds units, one click away (the message
    named them as examples to type)."""
    from cityhub.analytics import kpi

    last = period.last
    labels = [f"{last.year}-Q{(last.month - 1) // 3 + 1}", str(last.year)]
    return [label for label in labels if kpi.parse_period(label).days > period.days]


def _invalid_calls(db: Session, scope: Any, period: Any) -> Any:
    """无效来电 of ``period`` for the dashboard: all of them for a reader who sees every order, else those taken by the
    operators of the units of the reader's data scope (``scope``, ``auth.scope.scope_of``: the dashboard's own;
    ``intake.invalid_calls.tally``)."""
    from cityhub.intake import invalid_calls

    return invalid_calls.tally(db, period=period, units=None if scope.everything else scope.units)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, db: DbSession) -> Response:
    """Leader dashboard: this period's counts by state, category and street, overdue, enterprise appeals by need,
    ranking and hot topics.

    Read-only; every figure is one GROUP BY over indexed columns of the period, plus the assessment ranking and
    hot topics of the analytics services.
    """
    from cityhub.analytics import kpi, reports, topics_store
    from cityhub.dispatch.outcomes import outcomes

    principal = support.require_user(request, db, permissions.ORDER_READ)
    if principal.role not in support.OVERSEERS:
        raise PageError(403, "err.forbidden")
    today = utcnow().astimezone(get_settings().tz).date()
    choice = support.period_choice(request)
    period = choice.period
    data_scope = scope_of(db, principal)
    scope = data_scope.clause()
    where = [Order.created_at >= period.start, Order.created_at < period.end]
    if scope is not None:
        where.append(scope)

    def grouped(column: Any) -> list[tuple[Any, int]]:
        query = select(column, func.count()).where(*where).group_by(column).order_by(func.count().desc())
        return [(k, int(n)) for k, n in db.execute(query)]

    def top(rows: list[tuple[Any, int]], names: dict[int, str]) -> list[tuple[Any, int]]:
        """The ten largest, ties by name as in the report (未归属, no key, after the named)."""
        return sorted(rows, key=lambda r: (-r[1], r[0] is None, names.get(r[0], "")))[:10]

    by_state = grouped(Order.state)
    total, left_out = sum(n for _, n in by_state), reports.left_out(dict(by_state))
    by_category, by_street = grouped(Order.category_id), grouped(Order.street_id)
    category_names = support.names_of(db, Category, {k for k, _ in by_category})
    street_names = support.names_of(db, Unit, {k for k, _ in by_street})
    by_category, by_street = top(by_category, category_names), top(by_street, street_names)
    # A category row links to the order list of that category, which counts its subcategories too: linked only
    # where the list counts what the row counts (a category without subcategories, as every demo category is).
    shown_categories = [k for k, _ in by_category if k is not None]
    with_subcategories = set(db.scalars(select(Category.parent_id).where(Category.parent_id.in_(shown_categories))))
    open_where = [Order.state.in_(sorted(OPEN_STATES))] + ([scope] if scope is not None else [])
    open_count = db.scalar(select(func.count()).select_from(Order).where(*open_where)) or 0
    overdue_where = [sql_text(OVERDUE_NOW_SQL)] + ([scope] if scope is not None else [])
    overdue = db.scalar(select(func.count()).select_from(Order).where(*overdue_where)) or 0
    today_where = [Order.created_at >= _local_midnight(today)] + ([scope] if scope is not None else [])
    received_today = db.scalar(select(func.count()).select_from(Order).where(*today_where)) or 0
    # 考核排名: the streets and the departments (which hold most orders), each ranked apart — a street's figures
    # include its communities' — with the units below the minimum sample listed after, unranked, so that every
    # unit's 单位考核 is a click away (a month's ranking was often empty, and the departments were never shown).
    assessed = kpi.compute(db, period=period)
    rankings = [
        (tier, kpi.rank([row for row in assessed if row.tier == tier.value]))
        for tier in (UnitTier.STREET, UnitTier.DEPARTMENT)
    ]
    hot, hot_fallback = reports.hot_topics_for_period(db, period=period, k=10, where=scope)
    from cityhub.analytics.topic_views import shown

    hot = shown(hot, principal)  # a topic's representative title is someone's appeal: scrubbed for masked readers
    return render(
        request,
        "dashboard.html",
        principal=principal,
        title_key=support.dashboard_names(principal)[1],
        period=period,
        error=choice.error,
        by_state=by_state,
        by_category=by_category,
        by_street=by_street,
        category_names=category_names,
        street_names=street_names,
        linked_categories={k for k in shown_categories if k not in with_subcategories},
        total=total,
        valid=total - sum(left_out.values()),
        left_out=left_out,
        open_count=open_count,
        overdue=overdue,
        # The tile counts open orders past their limit: the list's 超期 is the same orders.
        overdue_link="/orders?overdue=1",
        received_today=received_today,
        today=today,
        rankings=rankings,
        kpi_defs=kpi.KPIS,  # the ranking's rate columns, in the assessment page's order
        min_sample=kpi.DEFAULT_MIN_SAMPLE,
        longer_periods=_longer_periods(period),
        typed_period=choice.box,
        recent_days=choice.recent_days,
        dispatch=outcomes(db, period=period, scope=scope),
        # 企业诉求: the period's enterprise appeals in the reader's scope by need (none: no such section).
        enterprise=reports.enterprise_needs(db, period=period, where=scope),
        invalid_calls=_invalid_calls(db, data_scope, period),
        hot=hot,
        hot_fallback=hot_fallback,
        hot_mined_at=None if hot_fallback else topics_store.mined_at(db),
        brain=permissions.allows(principal.role, permissions.BRAIN_READ),  # hot topics link to their page
        scoped=scope is not None,
    )


# ------------------------------------------------------------------------------------------------ install


def install(app: FastAPI) -> None:
    """Mount the pages, the static files and the page error handlers on ``app``."""

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        return support.login_redirect(request, exc.form)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        principal = getattr(request.state, "principal", None)
        return support.error_page(request, exc.status, exc.message_key, principal, exc.params)

    from cityhub.web.api_clients_pages import router as api_clients_router
    from cityhub.web.assessment_pages import router as assessment_router
    from cityhub.web.brain_pages import router as brain_router
    from cityhub.web.calendar_pages import router as calendar_router
    from cityhub.web.categories_pages import router as categories_router
    from cityhub.web.exemption_pages import router as exemptions_router
    from cityhub.web.import_pages import router as import_router
    from cityhub.web.kb_pages import router as kb_router
    from cityhub.web.map_pages import router as map_router
    from cityhub.web.monitoring_pages import router as monitoring_router
    from cityhub.web.notices_pages import router as notices_router
    from cityhub.web.rules_pages import router as rules_router
    from cityhub.web.sla_pages import router as sla_router
    from cityhub.web.track_pages import router as track_router
    from cityhub.web.units_pages import router as units_router
    from cityhub.web.users_pages import router as users_router
    from cityhub.web.webhooks_pages import router as webhooks_router

    # An id in a page's path that no table can hold is a page not found, as an id no row has (api.deps).
    ids = [Depends(known_path_ids)]
    app.include_router(import_router, dependencies=ids)  # before the pages' /orders/{order_id}
    for pages in (
        router,
        rules_router,
        kb_router,
        map_router,
        users_router,
        calendar_router,
        sla_router,
        api_clients_router,
        webhooks_router,
        units_router,
        categories_router,
        monitoring_router,
        track_router,
        brain_router,
        assessment_router,
        exemptions_router,
        notices_router,
    ):
        app.include_router(pages, dependencies=ids)
    app.mount("/static", vendor.StaticAssets(directory=vendor.STATIC_DIR), name="static")
    vendor.warn_if_missing()
