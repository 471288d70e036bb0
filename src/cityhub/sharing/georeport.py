"""Open311 GeoReport v2 over the order hub: services from the taxonomy, service requests from orders.

Services are the level-2 categories (and level-1 categories without children): about a hundred services is
what civic apps can show in a picker, and the level-3 categories underneath are offered as the optional
``subcategory`` attribute of each service. A request's ``service_request_id`` is the order number; its status
is ``closed`` once the order is in a terminal state (closed, merged, cancelled), ``open`` otherwise.

Requests are public in Open311 (GET needs no key), and they are every order, 12345 hotline calls included: a
request shows what the anonymised orders of the data-sharing API show — the address cut to its road or compound
and coordinates to two decimals (:func:`cityhub.masking.coarsen_address`, ``coarsen_coordinate``), descriptions,
status notes and replies through :func:`cityhub.masking.scrub_text` (ID numbers, phone numbers however written,
e-mails, house numbers, the citizen's own name) — and no personal field is ever returned. The one exception is a
client reading with its own key the requests it posted: those it gets as it sent them, with the answers to them.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.errors import NotFound, ValidationFailed, check_length
from cityhub.intake.service import parse, submit
from cityhub.masking import coarsen_address, coarsen_coordinate, scrub_text
from cityhub.org.models import Unit
from cityhub.sharing.models import Open311Token
from cityhub.sharing.service import Caller
from cityhub.timerange import check_time
from cityhub.workorders import files
from cityhub.workorders.files import Upload
from cityhub.workorders.lifecycle import TERMINAL_STATES, Action, State
from cityhub.workorders.models import (
    MACHINE_CHANNELS,
    AppealType,
    Attachment,
    Category,
    Channel,
    Order,
    OrderEvent,
)
from cityhub.workorders.schemas import INTERNAL_EVENTS, MEDIA_URL_MAX, link_name, web_address
from cityhub.workorders.service import Actor

DEFAULT_WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 300  # as an order's address
SERVICE_LEVEL = 2

APPEAL_TYPE_NAMES = {
    AppealType.HELP: "求助 request for help",
    AppealType.COMPLAINT: "投诉 complaint",
    AppealType.REPORT: "举报 report of a violation",
    AppealType.SUGGESTION: "建议 suggestion",
    AppealType.CONSULTATION: "咨询 consultation",
    AppealType.PRAISE: "表扬 praise",
}
# Labels of audit-trail actions in servicerequestupdates (zh-CN first, as on the status page).
ACTION_LABELS = {
    Action.CREATE: "已受理 received",
    Action.INSTANT_ANSWER: "已即时答复 answered on the spot",
    Action.DISPATCH: "已派单 dispatched to the responsible unit",
    Action.ACCEPT: "已签收 accepted by the unit",
    Action.RETURN: "已退单 returned for re-dispatch",
    Action.START: "办理中 in progress",
    Action.TRANSFER: "已转派 transferred to another unit",
    Action.ADD_ASSIST: "协办单位加入 assisting unit added",
    Action.REQUEST_EXTENSION: "申请延期 extension requested",
    Action.APPROVE_EXTENSION: "延期已批准 extension approved",
    Action.REJECT_EXTENSION: "延期未批准 extension rejected",
    Action.URGE: "督办 urged",
    Action.ESCALATE: "已升级 escalated",
    Action.ASSIGN: "领导交办 assigned by a leader",
    Action.SUSPEND: "挂起 waiting for the citizen",
    Action.RESUME: "恢复办理 resumed",
    Action.REPLY: "已答复 replied",
    Action.REJECT_REPLY: "答复退回 reply sent back for more work",
    Action.CALLBACK: "已回访 called back",
    Action.CLOSE: "已办结 closed",
    Action.REOPEN: "已重办 reopened",
    Action.MERGE: "已合并 merged into another request",
    Action.SPLIT: "已拆单 another problem of it split off as a request of its own",
    Action.CANCEL: "已作废 cancelled",
}
# The one trail comment that is public: staff published a photo of the request (公开), its ``media_url`` the photo.
PHOTO_PUBLISHED = "照片已公开 photo published"
# Actions not shown to the public (:data:`cityhub.workorders.schemas.INTERNAL_EVENTS`). Every action written to
# the audit trail is either labelled in ACTION_LABELS or listed there.
INTERNAL_ACTIONS = INTERNAL_EVENTS


def open311_status(state: State | str) -> str:
    return "closed" if State(state) in TERMINAL_STATES else "open"


def iso(value: datetime | None) -> str | None:
    """W3C date-time with the district's offset, e.g. 2026-11-22T09:30:00+08:00."""
    if value is None:
        return None
    return value.astimezone(get_settings().tz).isoformat(timespec="seconds")


def parse_datetime(value: str | None, *, field: str) -> datetime | None:
    """Parse a W3C date-time; one without a zone is taken as local time of the district."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+") if "T" in value else value.strip())
    except ValueError:
        raise ValidationFailed(
            f"{field} is not a W3C date-time (e.g. 2026-11-22T00:00:00+08:00)", details={"field": field}
        ) from None
    check_time(parsed, field)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=get_settings().tz)


# --- services -----------------------------------------------------------------------------------------------


@dataclass
class Catalogue:
    """The active taxonomy, with each category's service (its level-2 ancestor, or a childless root)."""

    by_id: dict[int, Category]
    children: dict[int | None, list[Category]]
    services: list[Category]

    @classmethod
    def load(cls, session: Session) -> Catalogue:
        nodes = list(session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.code)))
        by_id = {c.id: c for c in nodes}
        children: dict[int | None, list[Category]] = {}
        for node in nodes:
            children.setdefault(node.parent_id, []).append(node)
        services = [c for c in nodes if c.level == SERVICE_LEVEL or (c.level == 1 and not children.get(c.id))]
        return cls(by_id=by_id, children=children, services=services)

    def service_of(self, category_id: int | None) -> Category | None:
        node = self.by_id.get(category_id) if category_id is not None else None
        while node is not None and node.level > SERVICE_LEVEL:
            node = self.by_id.get(node.parent_id) if node.parent_id is not None else None
        if node is not None and node.level < SERVICE_LEVEL and self.children.get(node.id):
            return None  # an order filed only under a root that has services beneath
        return node

    def service(self, code: str) -> Category:
        found = next((c for c in self.services if c.code == code), None)
        if found is None:
            raise NotFound(f"service_code {code!r} not found", details={"field": "service_code"})
        return found

    def group_of(self, service: Category) -> str:
        root = service
        while root.parent_id is not None and root.parent_id in self.by_id:
            root = self.by_id[root.parent_id]
        return root.name

    def subtree_ids(self, category: Category) -> list[int]:
        ids, frontier = [category.id], [category.id]
        while frontier:
            frontier = [c.id for parent in frontier for c in self.children.get(parent, [])]
            ids += frontier
        return ids


def list_services(session: Session) -> list[dict[str, Any]]:
    """The Open311 service list."""
    catalogue = Catalogue.load(session)
    return [
        {
            "service_code": s.code,
            "service_name": s.name,
            "description": s.path,
            "metadata": True,
            "type": "realtime",
            "keywords": ",".join(c.name for c in catalogue.children.get(s.id, [])),
            "group": catalogue.group_of(s),
        }
        for s in catalogue.services
    ]


def service_definition(session: Session, *, service_code: str) -> dict[str, Any]:
    """The Open311 service definition: the optional sub-category and appeal-type attributes."""
    catalogue = Catalogue.load(session)
    svc = catalogue.service(service_code)
    attributes: list[dict[str, Any]] = []
    subs = catalogue.children.get(svc.id, [])
    if subs:
        attributes.append(
            {
                "variable": True,
                "code": "subcategory",
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "the code of one sub-category",
                "order": 1,
                "description": "细分类别 sub-category",
                "values": [{"key": c.code, "name": c.name} for c in subs],
            }
        )
    attributes.append(
        {
            "variable": True,
            "code": "appeal_type",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": f"default {AppealType.HELP.value}",
            "order": len(attributes) + 1,
            "description": "诉求类型 type of appeal",
            "values": [{"key": t.value, "name": name} for t, name in APPEAL_TYPE_NAMES.items()],
        }
    )
    return {"service_code": svc.code, "attributes": attributes}


# --- posting a request --------------------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u9fff]")


def _full_name(first: str | None, last: str | None) -> str | None:
    first, last = (first or "").strip(), (last or "").strip()
    if not first and not last:
        return None
    if _CJK.search(first + last):
        return f"{last}{first}"  # Chinese names put the surname first, without a space
    return " ".join(p for p in (first, last) if p)


def _float(params: Mapping[str, str], name: str) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # nan and inf are floats to Python, no place to anyone
        raise ValidationFailed(f"{name} must be a number in WGS84 degrees", details={"field": name})
    return value


def create_request(
    session: Session, *, params: Mapping[str, str], caller: Caller, uploads: Sequence[Upload] = ()
) -> dict[str, Any]:
    """Receive an Open311 service request as a normal order (channel app) through intake; return the receipt.
    ``uploads``: the photos of a multipart POST (its ``media``), checked before the order is made (a file refused
    names itself, nothing received) and attached to it as the citizen's, as the intake form's files are."""
    code = (params.get("service_code") or "").strip()
    if not code:
        raise ValidationFailed("service_code was not provided", details={"field": "service_code"})
    catalogue = Catalogue.load(session)
    try:
        svc = catalogue.service(code)
    except NotFound as exc:
        raise ValidationFailed(exc.message, details=exc.details) from None
    category = svc
    sub_code = (params.get("attribute[subcategory]") or "").strip()
    if sub_code:
        sub = next((c for c in catalogue.children.get(svc.id, []) if c.code == sub_code), None)
        if sub is None:
            raise ValidationFailed(
                f"attribute[subcategory] {sub_code!r} is not a sub-category of {svc.code}",
                details={"field": "attribute[subcategory]"},
            )
        category = sub
    appeal_raw = (params.get("attribute[appeal_type]") or AppealType.HELP.value).strip()
    try:
        appeal_type = AppealType(appeal_raw)
    except ValueError:
        raise ValidationFailed(
            f"attribute[appeal_type] {appeal_raw!r} is not one of {', '.join(t.value for t in AppealType)}",
            details={"field": "attribute[appeal_type]"},
        ) from None

    lat, lng = _float(params, "lat"), _float(params, "long")
    address = (params.get("address_string") or "").strip() or None
    if (lat is None) != (lng is None):
        raise ValidationFailed("lat and long must be given together", details={"field": "lat"})
    if lat is None and address is None:
        raise ValidationFailed("a location is required: lat and long, or address_string", details={"field": "lat"})
    check_length(address, "address_string", MAX_ADDRESS)
    description = (params.get("description") or "").strip()
    check_length(description, "description", MAX_DESCRIPTION)
    media_url = (params.get("media_url") or "").strip() or None
    attachments = []
    if media_url:
        try:
            web_address(media_url)
        except ValueError:
            says = f"media_url must be an http(s) URL of at most {MEDIA_URL_MAX} characters"
            raise ValidationFailed(says, details={"field": "media_url"}) from None
        attachments.append({"filename": link_name(media_url, "media"), "url": media_url})

    try:
        photos = files.check(uploads) if uploads else []
    except ValidationFailed as exc:
        raise ValidationFailed(f"media: {exc.message}", details={**exc.details, "field": "media"}) from None

    token = secrets.token_urlsafe(16)
    extra = {k: params[k].strip() for k in ("email", "device_id", "account_id") if (params.get(k) or "").strip()}
    payload = {
        "channel": Channel.APP.value,
        "appeal_type": appeal_type.value,
        "content": description or f"{svc.name}（未填写描述）",
        "citizen_name": _full_name(params.get("first_name"), params.get("last_name")),
        "citizen_phone": (params.get("phone") or "").strip() or None,
        "address": address,
        "lat": lat,
        "lng": lng,
        "category_id": category.id,
        "attributes": {"open311": {"client": caller.client_name, "service_code": svc.code, "token": token, **extra}},
        "attachments": attachments,
    }
    try:
        data = parse(payload)
    except ValidationFailed as exc:
        # Name the Open311 parameters, not the order fields they became.
        fields = {
            "lng": "long",
            "citizen_phone": "phone",
            "citizen_name": "first_name",
            "address": "address_string",
            "content": "description",
        }
        problems = [f"{fields.get(p['field'], p['field'])}: {p['message']}" for p in exc.details.get("errors", [])]
        raise ValidationFailed("; ".join(problems) or exc.message, details=exc.details) from None
    actor = Actor(name=f"open311:{caller.client_name}"[:80])
    result = submit(session, data=data, actor=actor, similar=False, defer_duplicates=True)
    order = result.order
    session.add(Open311Token(token=token, order_id=order.id, client_id=caller.client_id))
    session.flush()
    if photos:
        files.attach(session, order_id=order.id, uploads=photos, actor=actor, with_appeal=True)
    return {
        "service_request_id": order.number,
        "token": token,
        "service_notice": f"已受理，工单号 {order.number}，将派往责任单位办理 (received; it will be dispatched to "
        "the responsible unit)",
        "account_id": extra.get("account_id"),
    }


# --- reading requests ---------------------------------------------------------------------------------------


def _posted_by(session: Session, client_id: int | None, order_ids: Iterable[int]) -> set[int]:
    """Those of the orders that the API client posted over Open311 (none without a client)."""
    ids = list(order_ids)
    if client_id is None or not ids:
        return set()
    return set(
        session.scalars(
            select(Open311Token.order_id).where(Open311Token.client_id == client_id, Open311Token.order_id.in_(ids))
        )
    )


def _published(client_id: int | None) -> Any:
    """The orders the public Open311 GETs show (``CITYHUB_OPEN311_CHANNELS``), with those ``client_id`` posted; None:
    every order."""
    channels = get_settings().open311_channel_list
    if channels is None:
        return None
    shown = Order.channel.in_(channels)
    if client_id is None:
        return shown
    return or_(shown, Order.id.in_(select(Open311Token.order_id).where(Open311Token.client_id == client_id)))


# The absolute address of a published photo, from its token: the Open311 route's own (``request.url_for`` of the
# media route, as the OIDC redirect is built), so a proxy's scheme and host are the client's.
MediaLink = Callable[[str], str]


def _media(
    session: Session, orders: Sequence[Order], media_link: MediaLink | None
) -> dict[int, list[tuple[str, bool]]]:
    """Each order's candidates for ``media_url``, the first attached first, each with whether it is a link (given
    with the appeal, a camera's snapshot): its links and the photos of cityhub's store staff published (公开,
    :func:`cityhub.workorders.files.publish`) — those only with ``media_link``. Another stored file is served to
    staff who may read the order, never published."""
    shown: ColumnElement[bool] = Attachment.sha256.is_(None)
    if media_link is not None:
        shown = or_(shown, Attachment.public_token.is_not(None))
    media: dict[int, list[tuple[str, bool]]] = {}
    for order_id, url, token in session.execute(
        select(Attachment.order_id, Attachment.url, Attachment.public_token)
        .where(Attachment.order_id.in_([o.id for o in orders]), shown)
        .order_by(Attachment.id)
    ):
        found = (media_link(token), False) if token is not None and media_link else (url, True)
        media.setdefault(order_id, []).append(found)
    return media


def _render_requests(
    session: Session, orders: Sequence[Order], *, client_id: int | None, media_link: MediaLink | None = None
) -> list[dict[str, Any]]:
    """The requests as the public sees them; those ``client_id`` posted as it sent them. ``media_link``: the public
    address of a published photo by its token (none: no photo named)."""
    if not orders:
        return []
    own = _posted_by(session, client_id, (o.id for o in orders))
    catalogue = Catalogue.load(session)
    unit_ids = {o.lead_unit_id for o in orders if o.lead_unit_id is not None}
    units = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids))).all()) if unit_ids else {}
    media = _media(session, orders, media_link)
    channels = get_settings().open311_channel_list
    rendered = []
    for o in orders:
        svc = catalogue.service_of(o.category_id)
        public = o.id not in own
        known = (o.citizen_name, o.citizen_phone)
        # A camera's snapshot shows the street and who is in it: never published (MACHINE_CHANNELS); a photo staff
        # published is, whatever the channel, though the snapshot came first. The first attached of the others.
        # A published photo's address serves the orders the public feed shows only (files.public_copy): none named
        # for a client's own request outside them.
        withheld = public and o.channel in MACHINE_CHANNELS
        served = channels is None or o.channel in channels
        media_url = next(
            (url for url, is_link in media.get(o.id, ()) if (not withheld or not is_link) and (served or is_link)),
            None,
        )
        rendered.append(
            {
                "service_request_id": o.number,
                "status": open311_status(o.state),
                "status_notes": scrub_text(o.reply_text, known=known) if public else o.reply_text,
                "service_name": svc.name if svc else None,
                "service_code": svc.code if svc else None,
                "description": scrub_text(o.content, known=known) if public else o.content,
                "agency_responsible": units.get(o.lead_unit_id) if o.lead_unit_id is not None else None,
                "service_notice": None,
                "requested_datetime": iso(o.created_at),
                "updated_datetime": iso(o.updated_at),
                "expected_datetime": iso(o.due_at),
                "address": coarsen_address(o.address) if public else o.address,
                "address_id": None,
                "zipcode": None,
                "lat": coarsen_coordinate(o.lat) if public else o.lat,
                "long": coarsen_coordinate(o.lng) if public else o.lng,
                "media_url": media_url,
            }
        )
    return rendered


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _window(start_date: str | None, end_date: str | None, now: datetime | None) -> tuple[datetime, datetime]:
    """The date window of both lists, as GeoReport v2 reads ``start_date`` and ``end_date``: one given alone is the
    90 days after (before) it, neither the last 90 days; both given may not span more than 90 days (GeoReport's
    limit: a longer span is refused naming both, rather than answered with its 1,000 newest)."""
    start = parse_datetime(start_date, field="start_date")
    end = parse_datetime(end_date, field="end_date")
    if end is None:
        end = start + DEFAULT_WINDOW if start is not None else (now or utcnow())
    if start is None:
        start = end - DEFAULT_WINDOW
    if start > end:
        raise ValidationFailed("start_date is after end_date", details={"field": "start_date"})
    if end - start > DEFAULT_WINDOW:
        span = end - start
        days = span.days + (1 if span % timedelta(days=1) else 0)
        raise ValidationFailed(
            f"start_date and end_date span {days} days; GeoReport v2 allows at most {DEFAULT_WINDOW.days}: ask for "
            f"a longer time in windows of {DEFAULT_WINDOW.days} days",
            details={"field": "end_date", "fields": ["start_date", "end_date"]},
        )
    return start, end


def list_requests(
    session: Session,
    *,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    now: datetime | None = None,
    client_id: int | None = None,
    page: int | None = None,
    page_size: int | None = None,
    media_link: MediaLink | None = None,
) -> list[dict[str, Any]]:
    """GET requests: by id list, or by service, status and a date window (default 90 days, 1,000 newest); anonymised
    but for the requests ``client_id`` (the client whose key came with the call) posted. ``page`` (from 1) and
    ``page_size`` (at most 1,000, the default), an extension of GeoReport v2: that page of the list, newest first.
    ``media_link``: the public address of a published photo by its token (:func:`_render_requests`)."""
    size = page_size or MAX_REQUESTS
    skip = ((page or 1) - 1) * size
    ids = _split(service_request_id)
    if ids:
        if len(ids) > MAX_REQUESTS:
            raise ValidationFailed(
                f"at most {MAX_REQUESTS} service_request_id values", details={"field": "service_request_id"}
            )
        query = select(Order).where(Order.number.in_(ids)).order_by(Order.created_at.desc(), Order.id.desc())
        if (published := _published(client_id)) is not None:
            query = query.where(published)
        found = list(session.scalars(query.limit(size).offset(skip)))
        return _render_requests(session, found, client_id=client_id, media_link=media_link)
    start, end = _window(start_date, end_date, now)
    conditions: list[Any] = [Order.created_at >= start, Order.created_at <= end]
    if (published := _published(client_id)) is not None:
        conditions.append(published)
    statuses = _split(status)
    if statuses:
        unknown = [s for s in statuses if s not in ("open", "closed")]
        if unknown:
            raise ValidationFailed(f"status must be open or closed, not {unknown[0]!r}", details={"field": "status"})
        if statuses == ["open"]:
            conditions.append(Order.state.not_in(TERMINAL_STATES))
        elif statuses == ["closed"]:
            conditions.append(Order.state.in_(TERMINAL_STATES))
    codes = _split(service_code)
    if codes:
        catalogue = Catalogue.load(session)
        category_ids: list[int] = []
        for code in codes:
            try:
                category_ids += catalogue.subtree_ids(catalogue.service(code))
            except NotFound as exc:
                raise ValidationFailed(exc.message, details=exc.details) from None
        conditions.append(Order.category_id.in_(category_ids))
    orders = list(
        session.scalars(
            select(Order).where(*conditions).order_by(Order.created_at.desc(), Order.id.desc()).limit(size).offset(skip)
        )
    )
    return _render_requests(session, orders, client_id=client_id, media_link=media_link)


def get_request(
    session: Session, *, service_request_id: str, client_id: int | None = None, media_link: MediaLink | None = None
) -> list[dict[str, Any]]:
    """GET requests/{id}: a one-element list, NotFound when no order has this number (anonymised as in
    :func:`list_requests`)."""
    query = select(Order).where(Order.number == service_request_id)
    if (published := _published(client_id)) is not None:
        query = query.where(published)  # an order not published is not found, as a missing one
    order = session.scalars(query).one_or_none()
    if order is None:
        raise NotFound(f"service_request_id {service_request_id!r} not found", details={"field": "service_request_id"})
    return _render_requests(session, [order], client_id=client_id, media_link=media_link)


def get_token(session: Session, *, token: str) -> list[dict[str, Any]]:
    """GET tokens/{token}: the request id the token stands for."""
    number = session.execute(
        select(Order.number).join(Open311Token, Open311Token.order_id == Order.id).where(Open311Token.token == token)
    ).scalar_one_or_none()
    if number is None:
        raise NotFound(f"token {token!r} not found", details={"field": "token"})
    return [{"service_request_id": number, "token": token}]


def list_updates(
    session: Session,
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    service_request_id: str | None = None,
    now: datetime | None = None,
    client_id: int | None = None,
    page: int | None = None,
    page_size: int | None = None,
    media_link: MediaLink | None = None,
) -> list[dict[str, Any]]:
    """servicerequestupdates: the public part of the audit trail, oldest first (default 90 days, 1,000 oldest); replies
    scrubbed but on the requests ``client_id`` posted. ``page`` (from 1) and ``page_size`` (at most 1,000, the
    default), the extension :func:`list_requests` has: that page of the list, oldest first (then by the event's id) —
    without them a window holding more than 1,000 updates answered its oldest 1,000 and no way to the rest.

    With ``media_link``, a photo's publication (公开, :func:`cityhub.workorders.files.publish`; in the trail an internal
    comment) is an update of its own, :data:`PHOTO_PUBLISHED` with the photo's public address as ``media_url``, while
    the photo stays published (withdrawn, the update is gone, as its address is; published again, the last
    publication is the update) and where that address serves it
    (not on a client's own request of a channel Open311 does not publish). Chosen in SQL, so that a page is full."""
    size = page_size or MAX_REQUESTS
    skip = ((page or 1) - 1) * size
    start, end = _window(start_date, end_date, now)
    public: ColumnElement[bool] = OrderEvent.action.not_in(INTERNAL_ACTIONS)
    # The photo a publication names, published since (not an earlier publication of it, withdrawn since): the join
    # finds its token (none for every other event).
    photo = and_(
        OrderEvent.action == Action.COMMENT.value,
        Attachment.id == OrderEvent.payload[("published_attachments", 0, "id")].as_integer(),
        OrderEvent.at >= Attachment.published_at,
    )
    if media_link is not None:
        served: ColumnElement[bool] = Attachment.public_token.is_not(None)
        if (channels := get_settings().open311_channel_list) is not None:
            served = and_(served, Order.channel.in_(channels))
        public = or_(public, served)
    query = (
        select(OrderEvent, Order.number, Order.citizen_name, Order.citizen_phone, Attachment.public_token)
        .join(Order, Order.id == OrderEvent.order_id)
        .outerjoin(Attachment, photo)
        .where(OrderEvent.at >= start, OrderEvent.at <= end, public)
        .order_by(OrderEvent.at, OrderEvent.id)
        .limit(size)
        .offset(skip)
    )
    ids = _split(service_request_id)
    if ids:
        query = query.where(Order.number.in_(ids))
    if (published := _published(client_id)) is not None:
        query = query.where(published)
    rows = session.execute(query).all()
    own = _posted_by(session, client_id, {event.order_id for event, *_ in rows})
    updates = []
    for event, number, name, phone, token in rows:
        media_url = media_link(token) if token is not None and media_link is not None else None
        try:
            label = PHOTO_PUBLISHED if media_url else ACTION_LABELS.get(Action(event.action), event.action)
        except ValueError:
            label = event.action
        description = label
        if event.action == Action.REPLY.value and event.payload and event.payload.get("text"):
            text = str(event.payload["text"])
            description = f"{label}: {text if event.order_id in own else scrub_text(text, known=(name, phone))}"
        updates.append(
            {
                "update_id": str(event.id),
                "service_request_id": number,
                "status": open311_status(event.to_state),
                "updated_datetime": iso(event.at),
                "description": description,
                "media_url": media_url,
            }
        )
    return updates
