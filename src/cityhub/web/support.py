"""Plumbing of the web UI: templates, the signed-in user, CSRF for form posts, form bodies, flash messages.

Pages authenticate with the same server-side cookie session as the API (:mod:`cityhub.auth.service`); the
session row's CSRF token is put in every form (hidden ``csrf_token`` field; htmx also sends it as
``X-CSRF-Token``) and checked on every POST, on top of the SameSite=Lax cookies. The login form, which has no
session yet, uses its own double-submit token cookie.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.filters import do_filesizeformat
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session
from starlette.types import Scope

from cityhub import __version__
from cityhub.api.bodylimit import read_capped
from cityhub.auth import csrf, permissions
from cityhub.auth import service as auth
from cityhub.auth.errors import Unauthenticated
from cityhub.auth.principal import Principal
from cityhub.auth.settings import get_auth_settings
from cityhub.config import get_settings
from cityhub.errors import ValidationFailed
from cityhub.formatting import percent
from cityhub.knowledge.schemas import KB_TEXT_MAX_CHARS
from cityhub.localnames import EnglishNames, english_names
from cityhub.monitoring.rules import figure, is_confidence
from cityhub.monitoring.schemas import NOTE_MAX_CHARS as MONITORING_NOTE_MAX_CHARS
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.web import forms, machine_text, theme, vendor
from cityhub.web.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    Translator,
    citizen_key,
    negotiate,
    word_marks,
)
from cityhub.workorders.files import REMOVE_REASON_MAX_CHARS, Upload
from cityhub.workorders.lifecycle import ANSWERED_STATES, OPEN_STATES, Action, State
from cityhub.workorders.models import Category, SlaStatus
from cityhub.workorders.schemas import REASON_MAX_CHARS, batch_orders_path
from cityhub.workorders.service import accept_due_soon, assign_deadline_passed

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
LOGIN_CSRF_COOKIE = "cityhub_login_csrf"
FLASH_COOKIE = "cityhub_flash"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 256 * 1024
# Leaders, supervisors and administrators see the whole picture (the same set the assessment API uses).
OVERSEERS = frozenset({Role.LEADER, Role.SUPERVISOR, Role.ADMIN})


# ------------------------------------------------------------------------------------------------ errors


class LoginRequired(Exception):
    """No valid session: the page redirects to the login form — or, for a form posted after the session ended, says
    so and shows what was typed in it (``form``)."""

    def __init__(self, form: Form | None = None) -> None:
        super().__init__("login required")
        self.form = form


class PageError(Exception):
    """A page-level refusal rendered as an HTML error page (403 role, 403 CSRF, 404 not found/out of scope)."""

    def __init__(self, status: int, message_key: str, **params: Any) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key
        self.params = params  # the message's placeholders


# --------------------------------------------------------------------------------------------- templates


def _localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(get_settings().tz).strftime(fmt)


@pass_context
def _shown(context: Context, value: Any) -> Any:
    """Every value a page prints: scrubbed text's marks in the reader's language (``i18n.word_marks``) — in a title,
    an appeal, a reply or the trail alike."""
    t = context.get("t")
    return word_marks(t.lang, value) if t is not None else value


_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=_shown,
)
_env.filters["localtime"] = _localtime


def load_templates() -> int:
    """Compile every page template now (Jinja compiles one on its first render and keeps it), so no page's first
    request waits for it; the number loaded."""
    names = _env.list_templates(extensions=["html"])
    for name in names:
        _env.get_template(name)
    return len(names)


def _whole(text: object) -> Markup:
    """Short text kept on one line (a date a message names); markup, so a message keeps it as it is."""
    return Markup('<span class="nowrap">{}</span>').format(text)


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> Markup | str:
    """:func:`_localtime` as page text, also as a message's parameter: each part kept whole (a narrow table column
    broke 2026-12-04 at its hyphens), the line free to break between the date and the time. Not for attributes:
    ``localtime`` there."""
    if value is None:
        return "—"
    return Markup(" ").join(_whole(part) for part in _localtime(value, fmt).split(" "))


_env.filters["when"] = _when


def _when_stored(value: object) -> Markup | str:
    """A time kept as ISO 8601 text (the configuration log's ``changes``, ``auditlog``), as :func:`_when` shows one;
    anything else as it is."""
    if isinstance(value, datetime):
        return _when(value)
    try:
        return _when(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


_env.filters["when_stored"] = _when_stored


def _sla_shown(status: SlaStatus | str, state: State | str | None = None, citizen: bool = False) -> SlaStatus:
    """An order's 办理状态 as a page shows it (its badges, the order page's 办理时限): the citizen's reading
    (``SlaStatus.as_citizen_reads``, 预警 is the units'); and 预警, which warns that a running limit is near, not on
    an order no longer open — one answered or ended while warned was answered within its limit (the status stays as
    the reply left it; 超期 stays, a fact)."""
    shown = SlaStatus(status).as_citizen_reads() if citizen else SlaStatus(status)
    if shown is SlaStatus.WARNING and state is not None and State(state) not in OPEN_STATES:
        return SlaStatus.OK
    return shown


_env.filters["sla_shown"] = _sla_shown
_env.filters["citizen_state"] = lambda state: State(state).as_citizen_reads()
_env.filters["whole"] = _whole
_env.globals["explain"] = machine_text.explain
_env.globals["reply_findings"] = machine_text.reply_findings
_env.globals["return_reason"] = machine_text.return_reason
_env.globals["grounds_unsaid"] = machine_text.grounds_unsaid
_env.globals["rule_name"] = machine_text.rule_name
_env.globals["actor_name"] = machine_text.actor_name
# Text limits the forms share with the service layer and the API (the browser stops at the same length).
_env.globals["reason_max"] = REASON_MAX_CHARS
_env.globals["remove_reason_max"] = REMOVE_REASON_MAX_CHARS
_env.globals["kb_text_max"] = KB_TEXT_MAX_CHARS
_env.globals["monitoring_note_max"] = MONITORING_NOTE_MAX_CHARS
_env.globals["batch_orders"] = batch_orders_path  # the order list of one import's orders
_env.globals["answered_states"] = ANSWERED_STATES  # where an order's reply stands (_macros.answered_row)
# 常用理由: the reasons the supervisors write over and over — a 催办, a reply sent back, a 重办, an extension refused —
# offered under the reason's box (a datalist: chosen, then edited or sent as it is; anything may still be typed).
# The catalogue keys of each action's phrases; _macros.reason_lists writes them once a page, each reason box of that
# action pointing at its list.
REASON_CHOICES: dict[str, tuple[str, ...]] = {
    action: tuple(f"reason_choice.{action}.{n}" for n in range(1, count + 1))
    for action, count in (("urge", 4), ("reject_reply", 4), ("reopen", 3), ("reject_extension", 2))
}
_env.globals["reason_choices"] = REASON_CHOICES


def _validity_bound(value: object, *, end: bool = False) -> Markup | str:
    """A validity's start or (``end``) exclusive end — a routing rule's, a knowledge entry's; a datetime or ISO 8601
    text (the configuration log's) — as the forms enter it: a local midnight as its day (an end as the last day it
    includes, as 有效至 reads), any other instant (one the API or the command line set) as the time it is."""
    moment = value if isinstance(value, datetime) else None
    if moment is None:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    if moment.tzinfo is not None and moment.astimezone(get_settings().tz).time() != time(0):
        return _when(moment)
    return forms.day_of(moment, end=end)


_env.filters["first_day"] = _validity_bound
_env.filters["last_day"] = lambda moment: _validity_bound(moment, end=True)


def _validity_state(t: Translator, active: bool, valid_from: Any, valid_until: Any, now: Any) -> str:
    """已启用 / 已停用 / 未生效 / 已过期 of something with an active flag and a validity (a rule, a knowledge entry), in
    the words of the lists' filter (含已停用 / Include inactive) and the forms' checkbox (启用 / Active)."""
    if not active:
        return t("rules.off")
    if valid_until is not None and valid_until <= now:
        return t("rules.expired")
    if valid_from is not None and valid_from > now:
        return t("rules.not_yet")
    return t("rules.on")


_env.globals["validity_state"] = _validity_state
_env.filters["number"] = lambda value: f"{value:g}" if isinstance(value, int | float) else value  # 5.0 → 5
_env.filters["percent"] = lambda share: percent(share, missing="—")  # 0.9123 → 91.2%
# 领导交办's 限期办结 passed with the order open (逾期): the order page's and the lists' one reading of it.
_env.tests["assign_overdue"] = assign_deadline_passed
# 即将签收超时: dispatched, not signed for, its 签收时限 near (workorders.service.ACCEPT_WARNING) — the lists' and the
# order page's one reading of it, as the list's criterion.
_env.tests["accept_due_soon"] = accept_due_soon


def _reading(value: Any, unit: str | None = None, kind: str | None = None, metric: str = "") -> Any:
    """A sensor's reading as the monitoring pages show it — ``{{ a.peak_value | reading(a.unit, a.sensor_kind,
    a.metric) }}``: a camera's confidence in percent (93%, as its order's text), else the number and its unit."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    return figure(value, unit, confidence=is_confidence(kind, metric))


_env.filters["reading"] = _reading


def _file_size(size: int) -> str:
    """A file's size in the symbols of every language (157 B, 20.5 kB, 3.1 MB): Jinja's own wrote 157 Bytes, an
    English word on a Chinese page."""
    return f"{size} B" if size < 1000 else str(do_filesizeformat(size))


_env.filters["filesizeformat"] = _file_size


def _path_breaks(path: object) -> Markup:
    """A category path that may break after each ``/`` (城乡建设/城市建设和市政管理/城管执法; in English, Urban-rural
    development/Urban construction and municipal management/…): a path's parts are joined without spaces, so an English
    one kept a list's column wider than a 1440-px screen could show."""
    return Markup("/<wbr>").join(str(path).split("/"))


_env.filters["path_breaks"] = _path_breaks


def language(request: Request) -> str:
    return negotiate(
        request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
        from_browser=get_settings().ui_language_from_browser,
    )


def translator(request: Request) -> Translator:
    return Translator(language(request), names=lambda: _english_names(request))


def _english_names(request: Request) -> EnglishNames | None:
    """The English names of units and categories (``localnames``), read through the request's own database session
    (the one :func:`read_names_through` was given — every signed-in page's, and `/track`'s); None without
    one, or when that session can no longer read (a failed transaction not rolled back: the Chinese names then)."""
    db = getattr(request.state, "db", None)
    if db is None:
        return None
    try:
        return english_names(db)
    except InvalidRequestError:
        log.warning("the English names of units and categories could not be read for %s", request.url.path)
        return None


def theme_of(request: Request) -> str:
    """The colour theme the user chose (``web.theme``): system, light or dark."""
    return theme.chosen(request.cookies.get(theme.THEME_COOKIE))


def current_url(request: Request) -> str:
    """The page's own local address with its query, for a switch that comes back to it (language, theme). A page
    answering a form's POST (a refused action shown again) has no address to come back to by GET: the page the
    form was on (its Referer, when it is this site's), else the home page."""
    if request.method not in ("GET", "HEAD"):
        referer = urlsplit(request.headers.get("referer", ""))
        if referer.netloc and referer.netloc == request.url.netloc and referer.path.startswith("/"):
            return referer.path + ("?" + referer.query if referer.query else "")
        return "/"
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


@dataclass(frozen=True)
class NavItem:
    key: str
    href: str
    # What waits there for the reader (核减审核's pending requests), up to the tabs' cap (99+); None: no count shown.
    count: int | None = None

    @property
    def page(self) -> str:
        """The path the item leads to, without its query: the menu marks the item of the page shown by it."""
        return self.href.split("?", 1)[0]

    @property
    def criteria(self) -> list[tuple[str, str]]:
        """The query the item leads to, as sorted (name, value) pairs: a list shows which preset it is showing."""
        return sorted(parse_qsl(urlsplit(self.href).query))


# 在办: what the handler's unit has to do, rather than years of closed orders newest first — their home and menu.
# What their unit holds (leads or assists in), not every order lying in its street; the time limit nearest first.
HANDLER_WORKBENCH = "/orders?state=open&held=1&sort=due"


# 待回访: the replies of orders with a citizen to call back, oldest first — a tab of the list, and where a callback
# done on an order's page finds the next one to call (下一个待回访).
CALLBACK_VIEW = "/orders?state=replied&no_citizen=false&sort=oldest"


# 常用视图: the lists each role works through, one click away on the order list (each an ordinary set of criteria,
# so the filters below show what it is and change it). Oldest first where the work is to be done in order of arrival
# (回访, extensions to decide), the time limit nearest first where the clock decides.
_QUICK_VIEWS: tuple[tuple[str, str, str | None], ...] = (
    ("orders.view.open", HANDLER_WORKBENCH, permissions.act(Action.REPLY)),
    # 待签收: what is new for the unit — sent to it, or an assist asked of it, not yet signed for (a unit's staff).
    ("orders.view.to_accept", "/orders?to_accept=1&sort=due", permissions.act(Action.ACCEPT)),
    ("orders.view.warning", "/orders?state=open&sla_status=warning&sort=due", None),
    ("orders.view.overdue", "/orders?overdue=1&sort=due", None),
    # 协办: for a unit's staff the orders their unit assists on (the lead unit's limit, not theirs); for the centre the
    # orders with an assisting unit — who asked it (a lead unit's 申请协办), when, for what.
    ("orders.view.assisting", "/orders?state=open&assisting=1&sort=due", permissions.act(Action.ASSIST_ACCEPT)),
    ("orders.view.assists", "/orders?state=open&with_assist=1&sort=due", None),
    ("orders.view.extensions", "/orders?extension_pending=1&sort=oldest", permissions.act(Action.APPROVE_EXTENSION)),
    # 待回访: the replies of orders with a citizen to call back; a sensor's or camera's, naming nobody, waits for 办结
    # alone (待办结（无需回访）).
    ("orders.view.callback", CALLBACK_VIEW, permissions.act(Action.CALLBACK)),
    ("orders.view.to_close", "/orders?state=replied&no_citizen=true&sort=oldest", permissions.act(Action.CLOSE)),
    # 待办结（回访满意）: a callback that found the citizen satisfied leaves the order 已回访 until somebody closes it —
    # no tab listed those, so they stayed open (and on 在办) until a supervisor went looking with the filters.
    (
        "orders.view.satisfied_to_close",
        "/orders?state=called_back&satisfied=true&sort=oldest",
        permissions.act(Action.CLOSE),
    ),
    # The unsatisfied callbacks: each waits for a supervisor's 重办 (reopen) or 办结 as not resolved.
    (
        "orders.view.unsatisfied",
        "/orders?state=called_back&satisfied=false&sort=oldest",
        permissions.act(Action.REOPEN),
    ),
    # What was escalated to the leaders, and what they assigned (交办) and follow until it is answered.
    ("orders.view.escalated", "/orders?state=open&escalated=1&sort=due", permissions.act(Action.ASSIGN)),
    ("orders.view.assigned", "/orders?state=open&leader_assigned=1&sort=due", permissions.act(Action.ASSIGN)),
    # … and once answered or closed, the last answered first: the outcome of a 交办 checked after it left 领导交办 —
    # the reader's own 交办 (a line above the list leads to every leader's).
    (
        "orders.view.assigned_done",
        "/orders?state=answered&leader_assigned=1&assigned_mine=1&sort=answered",
        permissions.act(Action.ASSIGN),
    ),
    # What the reader registered, newest first: a grid inspector follows their reports wherever they went.
    ("orders.view.mine", "/orders?mine=1", permissions.ORDER_CREATE),
)
# Views only for a reader whose list is their scope's: who reads every order (an operator) has 只看我提交的 among the
# filters, not one more tab above them.
_SCOPED_VIEWS = frozenset({"orders.view.mine"})
# Views of a unit's own work, for its staff only (who else signs for orders reads every order, an administrator).
_UNIT_VIEWS = frozenset({"orders.view.to_accept", "orders.view.assisting"})
# The time-limit views a unit's staff read of what their unit leads (``led``): a street's 预警 and 超期 counted the
# departments' orders lying on its street, which are not the street's to answer for, and an assisting unit's counted
# the lead unit's overdue orders it merely helps on (those are its 协办).
_LED_FOR_UNIT_STAFF = frozenset({"orders.view.warning", "orders.view.overdue"})
# Views of the centre's: who routes or supervises the units (增加协办, 催办), not a unit's staff.
_CENTRE_VIEWS = frozenset({"orders.view.assists"})
# Views of the leaders' own desk: the outcome of what they assigned. The centre follows 交办 open (领导交办); an
# eleventh tab wrapped an administrator's bar to two lines at 1440 px and put their first order below the fold.
_LEADER_VIEWS = frozenset({"orders.view.assigned_done"})
# Views of the callback desk (the supervisors'), not an administrator's: a twelfth tab wrapped their English bar at
# 1440 px — who closes the satisfied callbacks is who called back.
_CALLBACK_DESK_VIEWS = frozenset({"orders.view.satisfied_to_close"})


def list_heading(t: Translator, principal: Principal, tab: NavItem | None) -> str:
    """The order list's title and heading: a citizen's 我的诉求; a tab's list named by its tab — for a unit's staff
    their work (我的待办 · 待签收), for others the list's (工单列表 · 预警); else 工单列表."""
    if principal.role == Role.CITIZEN:
        return t("orders.mine")
    if tab is None:
        return t("orders.title")
    mine = principal.role in permissions.UNIT_STAFF_ROLES
    return t("orders.tab_title_own" if mine else "orders.tab_title", tab=t(tab.key))


def order_list_of(principal: Principal) -> str:
    """The user's order list: the menu's 工单, and where an action that took an order out of their sight leads. A
    handler's is their workbench (在办), as their home is: not years of closed orders newest first."""
    return HANDLER_WORKBENCH if principal.role == Role.HANDLER else "/orders"


def dashboard_names(principal: Principal) -> tuple[str, str]:
    """The dashboard's name in the menu and its page's title (catalogue keys): 领导驾驶舱 is the leader's; the
    supervisors and administrators read the same figures as 运行总览."""
    if principal.role == Role.LEADER:
        return "nav.dashboard", "dash.title"
    return "nav.overview", "dash.overview_title"


def quick_views(principal: Principal) -> list[NavItem]:
    """The preset lists of the order list for the user's role (none for a citizen: their list is their appeals)."""
    if principal.role == Role.CITIZEN:
        return []
    reads_all = permissions.allows(principal.role, permissions.ORDER_READ_ALL)
    unit_staff = principal.role in permissions.UNIT_STAFF_ROLES
    centre = not unit_staff and any(
        permissions.allows(principal.role, permissions.act(a)) for a in (Action.ADD_ASSIST, Action.URGE)
    )
    return [
        NavItem(key, href.replace("?", "?led=1&", 1) if unit_staff and key in _LED_FOR_UNIT_STAFF else href)
        for key, href, permission in _QUICK_VIEWS
        if (permission is None or permissions.allows(principal.role, permission))
        and not (reads_all and key in _SCOPED_VIEWS)
        and (unit_staff or key not in _UNIT_VIEWS)
        and (centre or key not in _CENTRE_VIEWS)
        and (principal.role == Role.LEADER or key not in _LEADER_VIEWS)
        and (principal.role != Role.ADMIN or key not in _CALLBACK_DESK_VIEWS)
    ]


def navigation(principal: Principal | None, db: Session | None = None) -> list[NavItem]:
    """The menu of the signed-in user's role: only pages the role can use. With ``db``, 核减审核 says how many requests
    of the reader's scope wait for a decision (:func:`pending_exemptions`) — for an administrator, whose 核减审核 is on
    系统管理, 系统管理 says it."""
    if principal is None:
        return []
    role = principal.role
    items = []
    if permissions.allows(role, permissions.ORDER_CREATE):
        key = {Role.CITIZEN: "nav.appeal", Role.INSPECTOR: "nav.report"}.get(role, "nav.intake")
        items.append(NavItem(key, "/intake"))
    if permissions.allows(role, permissions.act(Action.DISPATCH)):
        items.append(NavItem("nav.queue", "/queue"))
        items.append(NavItem("nav.rules", "/rules"))
    if permissions.allows(role, permissions.ORDER_READ):
        items.append(NavItem("nav.my_appeals" if role == Role.CITIZEN else "nav.orders", order_list_of(principal)))
    if role in permissions.UNIT_STAFF_ROLES and principal.unit_id is not None:
        # 本单位考核: how their unit is assessed (on-time rates, returns, satisfaction) and the orders behind each rate;
        # the page was reached only from the leaders' ranking, so a unit's staff never found their own figures.
        items.append(NavItem("nav.unit_assessment", f"/assessment/{principal.unit_id}"))
    if permissions.allows(role, permissions.REPLY_REVIEW):
        # 答复审核 says how many weak replies of the reader's scope wait (as 核减审核 its requests) to who sends them
        # back: without it a supervisor opened the page to learn whether anything was there. Not to a leader, who
        # reads the list and acts on none, nor an administrator (its count wrapped their English menu at 1440 px).
        reviews = permissions.allows(role, permissions.act(Action.REJECT_REPLY)) and not admin_pages(principal)
        items.append(NavItem("nav.reviews", "/reviews", weak_replies_waiting(db, principal) if reviews else None))
    if permissions.allows(role, permissions.EXEMPTION_DECIDE) and not admin_pages(principal):
        # 核减审核: the units' requests that an order not count against them in the assessment, to decide — the
        # supervisors' desk; an administrator finds it on 系统管理 (a thirteenth entry wrapped their menu at 1440 px).
        items.append(NavItem("nav.exemptions", "/exemptions?state=pending", pending_exemptions(db, principal)))
    if permissions.allows(role, permissions.ALARMS_READ):
        items.append(NavItem("nav.monitoring", "/monitoring"))
    if permissions.allows(role, permissions.KB_MANAGE):
        items.append(NavItem("nav.kb", "/kb"))
    if role in OVERSEERS:
        items.append(NavItem(dashboard_names(principal)[0], "/dashboard"))
    if brain_pages(principal):
        items.append(NavItem("nav.brain", "/brain"))  # 城市大脑: risk findings, hot topics, correlation graph
    if role != Role.CITIZEN and permissions.allows(role, permissions.ORDER_READ):
        items.append(NavItem("nav.map", "/map"))  # the one map (一张图), within the user's data scope
    if admin_pages(principal):
        # The administrators' tools, one entry for all; the 核减审核 among them waiting counted on it (one query).
        decides = permissions.allows(role, permissions.EXEMPTION_DECIDE)
        items.append(NavItem("nav.admin", "/admin", pending_exemptions(db, principal) if decides else None))
    elif role == Role.SUPERVISOR:
        items.append(NavItem("nav.sla", "/sla"))
    return items


def nav_count_cap() -> int:
    """The menu counts as the order list's tabs count (:data:`cityhub.web.routes.VIEW_COUNT_CAP`: 99+)."""
    from cityhub.web.routes import VIEW_COUNT_CAP

    return VIEW_COUNT_CAP


def pending_exemptions(db: Session | None, principal: Principal) -> int | None:
    """The exemption requests of the units of ``principal``'s scope waiting for a decision, counted up to the cap
    (one query reading at most that many rows; a supervisor's scope, the district, needs none); None without ``db``
    or when the page's transaction can no longer read (an error page after a failed write)."""
    if db is None:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from cityhub.analytics import exemptions

    try:
        seen = exemptions.units_seen(db, principal)
        return exemptions.count(db, state=exemptions.PENDING, unit_ids=seen, cap=nav_count_cap())
    except SQLAlchemyError:
        return None


def weak_replies_waiting(db: Session | None, principal: Principal) -> int | None:
    """The weak replies of ``principal``'s scope waiting for review (答复审核's list), counted up to the cap; None
    without ``db`` or when the page's transaction can no longer read (an error page after a failed write)."""
    if db is None:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from cityhub.auth.scope import scope_of
    from cityhub.knowledge import service as kb

    try:
        return kb.count_weak_replies(db, scope=scope_of(db, principal).clause(), cap=nav_count_cap())
    except SQLAlchemyError:
        return None


def admin_pages(principal: Principal, db: Session | None = None) -> list[NavItem]:
    """The administration pages the user's role may use (系统管理), in the order /admin lists them; with ``db``,
    核减审核 says how many requests wait for a decision (:func:`pending_exemptions`)."""
    role = principal.role
    pages = []
    if permissions.allows(role, permissions.USERS_MANAGE):
        pages.append(NavItem("nav.users", "/admin/users"))
    if permissions.allows(role, permissions.UNITS_MANAGE):
        pages.append(NavItem("nav.units", "/admin/units"))
    if permissions.allows(role, permissions.CATEGORIES_MANAGE):
        pages.append(NavItem("nav.categories", "/admin/categories"))
    if permissions.allows(role, permissions.SLA_MANAGE):
        pages.append(NavItem("nav.sla", "/sla"))
    if permissions.allows(role, permissions.CALENDAR_MANAGE):
        pages.append(NavItem("nav.calendar", "/admin/calendar"))
    if permissions.allows(role, permissions.API_CLIENTS_MANAGE):
        pages.append(NavItem("nav.apiclients", "/admin/api-clients"))
    if permissions.allows(role, permissions.WEBHOOKS_MANAGE):
        pages.append(NavItem("nav.webhooks", "/admin/webhooks"))
    if permissions.allows(role, permissions.LOG_READ):
        pages.append(NavItem("nav.log", "/admin/log"))
    if pages and permissions.allows(role, permissions.EXEMPTION_DECIDE):
        # the supervisors' 核减审核, for them too
        pages.append(NavItem("nav.exemptions", "/exemptions?state=pending", pending_exemptions(db, principal)))
    return pages


def brain_pages(principal: Principal) -> list[NavItem]:
    """The city brain's pages (城市大脑) the user's role may see, in the order of its sub-navigation."""
    if not permissions.allows(principal.role, permissions.BRAIN_READ):
        return []
    return [
        NavItem("brain.nav.findings", "/brain/findings"),
        NavItem("brain.nav.topics", "/brain/topics"),
        NavItem("brain.nav.graph", "/brain/graph"),
    ]


def home_of(principal: Principal) -> str:
    """Each role's workbench: where ``/`` takes a signed-in user."""
    return {
        Role.OPERATOR: "/intake",
        Role.INSPECTOR: "/intake",  # 巡查上报 first: what they found on patrol
        Role.DISPATCHER: "/queue",
        Role.LEADER: "/dashboard",
        Role.HANDLER: HANDLER_WORKBENCH,
    }.get(principal.role, "/orders")


def names_of(db: Session, model: Any, ids: Iterable[int | None], column: Any = None) -> dict[int, str]:
    """Id → name of the rows of ``model`` among ``ids`` (None left out) in one query: a category's path, anything
    else's name, unless ``column`` says which."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    if column is None:
        column = model.path if model is Category else model.name
    return {i: n for i, n in db.execute(select(model.id, column).where(model.id.in_(wanted)))}


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page (or an htmx fragment) with the common context: ``t``, the user, menu, CSRF token, assets."""
    from cityhub.web.notices_pages import bell_count

    t = translator(request)
    flash = read_flash(request)
    db = getattr(request.state, "db", None)
    html = _env.get_template(template).render(
        request=request,
        t=t,
        lang=t.lang,
        languages=LANGUAGES,
        theme=theme_of(request),
        themes=theme.THEMES,
        current_url=current_url(request),
        user=principal,
        nav=navigation(principal, db),
        nav_count_cap=nav_count_cap(),
        # Counted only where the header is drawn (base.html), not for the fragments htmx refreshes as one types.
        notice_count=lambda: bell_count(db, principal),
        csrf_token=csrf.mask(principal.csrf_token) if principal and principal.csrf_token else None,
        vendor=vendor.available(),
        version=__version__,
        flash=flash,
        path=request.url.path,
        status_code=status_code,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    if principal is not None:
        # A signed-in page shows citizens' data: never from the browser's cache (Back after logout on a shared
        # call-centre terminal) nor from a proxy's.
        response.headers["Cache-Control"] = "no-store"
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def error_page(
    request: Request,
    status_code: int,
    message_key: str,
    principal: Principal | None = None,
    params: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The error page saying ``message_key``; to a citizen in their own words where the catalogue has them
    (``<key>.citizen``: an order not found is no appeal of theirs, not one outside a 数据范围)."""
    if principal is not None and principal.role == Role.CITIZEN:
        message_key = citizen_key(message_key)
    return render(
        request,
        "error.html",
        principal=principal,
        status_code=status_code,
        message_key=message_key,
        message_params=params or {},
    )


def busy_page(scope: Scope, retry_after: int) -> HTMLResponse:
    """The page a browser gets when the server refuses a page request under overload (``api.gate``): 503, and it
    reloads itself after ``retry_after`` seconds."""
    return render(
        Request(scope),
        "error.html",
        status_code=503,
        message_key="err.busy",
        message_params={"seconds": retry_after},
        refresh_seconds=retry_after,
    )


# ------------------------------------------------------------------------------------------ signed-in user


def read_names_through(request: Request, db: Session) -> None:
    """Let the request's pages name units and categories in the reader's language (:func:`translator`), read through
    ``db``: every signed-in page's (:func:`principal_of`), and a public page's that names them (``/track``)."""
    request.state.db = db


def principal_of(request: Request, db: Session) -> Principal | None:
    """The user of the session cookie, or None (no cookie, expired, signed out, locked)."""
    read_names_through(request, db)
    cookie = request.cookies.get(get_auth_settings().session_cookie_name)
    if not cookie:
        return None
    try:
        return auth.authenticate_session(db, token=cookie)
    except Unauthenticated:
        return None


def require_user(
    request: Request, db: Session, permission: str | None = None, *, form: Form | None = None
) -> Principal:
    """The signed-in user holding ``permission``; LoginRequired (→ login page) or PageError 403 otherwise. With the
    ``form`` of a post, its CSRF token is checked too (:func:`check_csrf`)."""
    principal = principal_of(request, db)
    if principal is None:
        raise LoginRequired(form)
    request.state.principal = principal  # error pages keep the user's menu
    if permission is not None and not permissions.allows(principal.role, permission):
        raise PageError(403, "err.forbidden")
    if form is not None:
        check_csrf(request, principal, form)
    return principal


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: never redirect a user to another site after login or an action."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# The fields of a form that hold what a person typed in their own words (a reply, a reason, an appeal), shown back
# when the form was posted after the session ended; a choice or a number is quickly made again.
TYPED_FIELDS = ("title", "content", "text", "reason", "note", "address", "answer", "question")


def login_redirect(request: Request, form: Form | None = None) -> Response:
    """Where a request without a valid session goes: the login page, back to the page afterwards.

    An htmx fragment (the intake form's assistance, refreshed while the operator types) does not navigate: that
    would throw away the appeal being typed. It answers a notice in place of the fragment, with a link that signs
    in in another tab; the form keeps its text and the next refresh works again. A form posted after the session
    ended returns, after login, to the page it was posted from, not to the POST-only address it was posted to; one
    holding text typed in it (``TYPED_FIELDS`` of ``form``) is not redirected but answered 401 with that text.
    """
    if request.headers.get("hx-request"):
        page = _local_path(request.headers.get("hx-current-url")) or "/"
        login = f"/login?next={quote(page, safe='')}"
        return HTMLResponse(
            _env.get_template("_session_expired.html").render(t=translator(request), login=login), status_code=200
        )
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        target = _local_path(request.headers.get("referer")) or "/"
    login = f"/login?next={quote(target, safe='')}"
    typed = [(name, text) for name in TYPED_FIELDS if form is not None and (text := form.get(name).strip())]
    if typed:
        # A reply written on a phone, posted after the session ended, was thrown away by the redirect: the page says
        # that nothing was sent and shows the text, to copy, with a sign-in in another tab.
        response = render(request, "session_expired.html", status_code=401, typed=typed, login=login, back=target)
        response.headers["Cache-Control"] = "no-store"
        return response
    return RedirectResponse(login, status_code=303)


def _local_path(url: str | None) -> str | None:
    """The path and query of a same-site URL (the Referer or htmx's current page), else None."""
    if not url:
        return None
    parts = urlsplit(url)
    local = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(local, "") or None


# ------------------------------------------------------------------------------------------------- forms


@dataclass
class Form:
    """A parsed application/x-www-form-urlencoded (or multipart) body. A NUL character (U+0000) is dropped from its
    names and values: no one types it and no page shows it, but one pasted into a field was stored on SQLite and
    refused by PostgreSQL (the whole form lost to an error page) — the API, whose callers do send it, refuses it
    naming the field (``api.deps.storable_body``)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pairs = [(key.replace("\x00", ""), value.replace("\x00", "")) for key, value in self.pairs]

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def text(self, name: str) -> str | None:
        """The trimmed value, or None when empty."""
        value = self.get(name).strip()
        return value or None

    def values(self, names: Iterable[str]) -> dict[str, str]:
        return {name: self.get(name) for name in names}


async def form_body(request: Request) -> Form:
    """The urlencoded form of a POST (multipart is not used by these pages)."""
    if request.method != "POST":
        return Form()
    body = await read_capped(request, MAX_FORM_BYTES)
    if body is None:
        raise PageError(413, "err.too_large")
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        return Form()
    return Form(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _same_origin(request: Request) -> bool:
    """A browser's Origin header, when present, must name this server (defence in depth beside the token)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    hosts = {request.headers.get("host", request.url.netloc), request.headers.get("x-forwarded-host")}
    return urlsplit(origin).netloc in hosts


def check_csrf(request: Request, principal: Principal, form: Form) -> None:
    """The session's CSRF token must come back with the form (or the X-CSRF-Token header) from this origin."""
    sent = form.get(CSRF_FIELD) or request.headers.get("x-csrf-token", "")
    if not csrf.matches(sent, principal.csrf_token) or not _same_origin(request):
        log.info("web: CSRF check failed for %s %s (user %s)", request.method, request.url.path, principal.username)
        raise PageError(403, "err.csrf")


def check_login_csrf(request: Request, form: Form) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    return bool(cookie and sent and secrets.compare_digest(cookie, sent)) and _same_origin(request)


def set_login_csrf(response: Response, token: str, *, path: str = "/login") -> None:
    """The token of an anonymous form (login, the progress lookup), in a cookie only that form's path receives."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=get_auth_settings().session_cookie_secure,
        samesite="strict",
        path=path,
    )


# ------------------------------------------------------------------------------------------------- flash


def set_flash(response: Response, key: str, **params: Any) -> None:
    """A one-shot message for the next page (a catalogue key and its parameters, never markup)."""
    raw = json.dumps({"key": key, "params": params}, ensure_ascii=False, default=str).encode()
    response.set_cookie(
        FLASH_COOKIE,
        base64.urlsafe_b64encode(raw).decode(),
        max_age=60,
        httponly=True,
        secure=get_auth_settings().session_cookie_secure,
        samesite="lax",
        path="/",
    )


_FLASH_GROUPS = frozenset(
    {"intake", "order", "queue", "login", "rules", "kb", "mon", "account", "users", "calendar", "sla", "apiclients"}
    | {"units", "brain", "form", "webhooks", "exempt", "notices", "track"}
)


def read_flash(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return None
    if data["key"].split(".")[0] not in _FLASH_GROUPS:
        return None
    raw_params = data.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    return {"key": data["key"], "params": {str(k): str(v) for k, v in params.items()}}


Flash = tuple[str, Mapping[str, Any]]  # an i18n key and its parameters, shown once on the next page


def redirect(location: str, *, flash: Flash | None = None) -> Response:
    response = RedirectResponse(location, status_code=303)
    if flash is not None:
        set_flash(response, flash[0], **flash[1])
    return response


def form_action(
    db: Session,
    act: Callable[[], object],
    *,
    back: str,
    done: Flash,
    refused: Flash,
    refused_by: type[Exception] | tuple[type[Exception], ...],
) -> Response:
    """A button's post: ``act`` committed, then back to ``back`` with ``done``; a missing object is the 404 page; a
    refusal (``refused_by``: the action does not apply in the object's state) is rolled back and flashed as
    ``refused``."""
    from cityhub.errors import NotFound

    try:
        act()
        db.commit()
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    except refused_by:
        db.rollback()
        return redirect(back, flash=refused)
    except ValidationFailed as exc:  # what the browser's own checks let through (a note too long)
        db.rollback()
        limit = forms.limit_exceeded(exc.message)
        return redirect(back, flash=("form.too_long", {"n": limit}) if limit else ("form.not_saved", {}))
    return redirect(back, flash=done)


def duration_text(t: Translator, delta: timedelta) -> str:
    """A wall-clock span as "2 天 3 小时" / "5 小时 20 分"."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return t("order.days_hours", days=days, hours=hours)
    return t("order.hours_minutes", hours=hours, minutes=rest // 60)


# A page route's parsed form (``form: FormBody``).
FormBody = Annotated[Form, Depends(form_body)]


@dataclass
class UploadForm:
    """A multipart POST (the order page's upload form): its fields, its files, and whether it carried more files
    than one upload may (``too_many``: the files beyond are not read)."""

    form: Form
    files: list[Upload]
    too_many: bool = False


async def upload_body(request: Request) -> UploadForm:
    """The fields and files of a multipart POST (an urlencoded one: its fields, no files). Each file is read up to
    one byte past the largest size taken (:mod:`cityhub.workorders.files` refuses it by name); a file input left
    empty is not a file."""
    from cityhub.workorders.files import get_file_settings, read_limit

    return await read_uploads(request, limit=read_limit(), max_files=get_file_settings().max_count)


# The files of a page's form parsed at most, read or not: a gallery's selection a few past the limit is refused at
# the file field with the rest of the form kept (the parser's own refusal loses it all); beyond these, the body is.
PARSED_FILES_MAX = 100


async def read_uploads(request: Request, *, limit: int, max_files: int) -> UploadForm:
    """:func:`upload_body` with its own limits: each file read up to ``limit`` bytes, at most ``max_files`` (those
    beyond are not read, and make the form ``too_many``; its fields are kept)."""
    from starlette.formparsers import MultiPartException

    from cityhub.workorders.files import read_multipart

    if request.method != "POST" or not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return UploadForm(await form_body(request), [])
    try:
        pairs, files = await read_multipart(
            request,
            limit=limit,
            max_files=max(max_files, PARSED_FILES_MAX),
            # the form's own fields, and each file held for it (已保留的附件) with its 移除 box
            max_fields=20 + 2 * max_files,
            max_part_size=MAX_FORM_BYTES,
            read_files=max_files,
        )
    except MultiPartException:
        raise PageError(413, "err.too_large") from None
    given = [upload for _, upload in files if upload.given]
    return UploadForm(Form(pairs), given[:max_files], too_many=len(given) > max_files)


UploadBody = Annotated[UploadForm, Depends(upload_body)]


# --------------------------------------------------------------------------------------------- pickers


# How unit pickers list the units: those that handle most orders first (大事不出区: the district's departments, then
# the streets and towns, then their communities), the district and city last.
_TIER_ORDER = (
    UnitTier.DEPARTMENT,
    UnitTier.STREET,
    UnitTier.COMMUNITY,
    UnitTier.SUBCENTRE,
    UnitTier.DISTRICT,
    UnitTier.CITY,
)


def unit_groups(db: Session, *, handlers: bool = False) -> list[tuple[UnitTier, list[Unit]]]:
    """Active units grouped by tier in ``_TIER_ORDER``, by code within a tier. ``handlers``: only the units an order
    can be given to (dispatch, transfer, co-handling) — not the district or city itself, where nobody accepts it."""
    units = db.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.code)).all()
    tiers = _TIER_ORDER[:4] if handlers else _TIER_ORDER
    return [(tier, group) for tier in tiers if (group := [u for u in units if u.tier == tier])]


def active_categories(db: Session) -> list[Category]:
    """The active categories by path, as category pickers list them."""
    return list(db.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.path)))


@dataclass(frozen=True)
class PeriodChoice:
    """The period a figures page (dashboard, assessment, hot topics, dispatch outcomes) shows: the one typed in
    ``?period=``, else the last ``kpi.RECENT_DAYS`` days (``recent_days`` set); a period that does not read shows the
    recent days with ``error`` saying so."""

    period: Any
    typed: str
    error: str | None
    recent_days: int | None

    @property
    def box(self) -> str:
        """What the period box shows again: a period that read by its own label (``2026-q4`` as 2026-Q4), else what
        was typed."""
        return self.period.label if self.typed and not self.error else self.typed


def period_choice(request: Request) -> PeriodChoice:
    from cityhub.analytics import kpi

    typed = request.query_params.get("period", "").strip()[:40]
    if not typed:
        return PeriodChoice(kpi.period_or_recent(None), typed, None, kpi.RECENT_DAYS)
    try:
        return PeriodChoice(kpi.parse_period(typed), typed, None, None)
    except ValidationFailed:
        error = translator(request)("dash.period_error", typed=typed)
        return PeriodChoice(kpi.period_or_recent(None), typed, error, kpi.RECENT_DAYS)
