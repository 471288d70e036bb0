"""Pydantic schemas of work orders: what comes in (OrderCreate) and what goes out (OrderRead, EventRead)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    computed_field,
    field_serializer,
    field_validator,
    model_validator,
)

from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.intake import enterprise
from cityhub.masking import coarsen_address, coarsen_coordinate, mask_name, mask_phone, scrub_text
from cityhub.org.places import PlaceSource
from cityhub.org.schemas import phone_number
from cityhub.timerange import RequestTime, answer_times
from cityhub.workorders.lifecycle import Action, State, deadline_passed
from cityhub.workorders.models import MERGED_IN, AppealType, Channel, SlaStatus, Urgency, default_appeal_type

# Characters that show nothing: an appeal made only of these is empty. NUL is refused outright (PostgreSQL cannot
# store it in text).
_INVISIBLE = re.compile("[\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff\\s]+")
# A creation time this far ahead of the clock is a mistake, not a clock skew: the order would head every list.
FUTURE_SLACK = timedelta(minutes=10)
# No appeal cityhub keeps was received before this: an earlier creation time (year 1, the Unix epoch) is a mistake
# that would head the dispatcher's queue and give a malformed order number.
EARLIEST_CREATED = datetime(1990, 1, 1, tzinfo=UTC)


def created_problem(value: datetime) -> str | None:
    """Why an (aware) creation time given with an appeal is refused (before 1990), else None: the API and the bulk
    import say the same."""
    return f"before {EARLIEST_CREATED:%Y-%m-%d}" if value < EARLIEST_CREATED else None


# Channel-specific fields kept with an order (device ids, sensor readings …): not a document store.
MAX_ATTRIBUTES_CHARS = 65_536


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# The longest title and text an order (and a person's text in an action: a reply, a split-off problem) may have, and
# the longest reason given for an action (a dispatch, a return, a category or place set by a dispatcher).
TITLE_MAX_CHARS = 300
EXTERNAL_ID_MAX_CHARS = 128  # what the orders table holds
TEXT_MAX_CHARS = 20000
REASON_MAX_CHARS = 2000
# How long a title taken from an appeal's content may be (an appeal, an import row or a split-off part without one).
TITLE_FROM_CONTENT_CHARS = 30
_SENTENCE_ENDS = "。！？；!?;"
_CLAUSE_ENDS = "，、,：:"


def title_from_content(content: str) -> str:
    """The title of an appeal that gives none: its content on one line, whole if it is short, else cut where a
    sentence ends within the first ``TITLE_FROM_CONTENT_CHARS`` characters — or a clause, else mid-phrase with … —
    never leaving a fragment shorter than a third of them ("…施工时掉", "…晚上很黑，" read as cut off)."""
    text = " ".join(content.split())
    if len(text) > TITLE_FROM_CONTENT_CHARS:
        head = text[: TITLE_FROM_CONTENT_CHARS + 1]  # a stop just after the limit ends a whole sentence too
        for ends in (_SENTENCE_ENDS, _CLAUSE_ENDS):
            cut = max(head.rfind(mark) for mark in ends)
            if cut >= TITLE_FROM_CONTENT_CHARS // 3:
                return text[:cut]
        return text[:TITLE_FROM_CONTENT_CHARS] + "…"
    return text.rstrip(_SENTENCE_ENDS + _CLAUSE_ENDS) or text


class OrderBase(BaseModel):
    channel: Channel
    appeal_type: AppealType = AppealType.CONSULTATION
    title: str = Field("", max_length=TITLE_MAX_CHARS)
    content: str = Field(..., max_length=TEXT_MAX_CHARS)
    citizen_name: str | None = Field(None, max_length=80)
    citizen_phone: str | None = Field(None, max_length=32)
    address: str | None = Field(None, max_length=300)
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    # Checked even when not given: a latitude without it is refused at this field (lat and lng must come together).
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False, validate_default=True)
    urgency: Urgency = Urgency.NORMAL


class OrderCreate(OrderBase):
    """One appeal from any channel. ``external_id`` makes a re-sent appeal idempotent per channel. A field it does
    not know is refused, not dropped (``citizen_mobile`` for ``citizen_phone`` would lose the number unseen);
    anything else a channel wants kept goes in ``attributes``."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(None, max_length=EXTERNAL_ID_MAX_CHARS)
    category_id: int | None = None
    category: str | None = Field(None, description="category path or name, resolved when category_id is absent")
    street_code: str | None = None
    community_code: str | None = None
    citizen_user_id: int | None = None
    created_at: RequestTime | None = None
    attributes: dict[str, Any] | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list)

    @field_validator("content", "title")
    @classmethod
    def _strip(cls, value: str) -> str:
        _no_nul(value)
        return value.strip() if _INVISIBLE.sub("", value) else ""

    @field_validator("lng")
    @classmethod
    def _with_lat(cls, value: float | None, info: ValidationInfo) -> float | None:
        # A latitude refused on its own (out of range) is not in ``info.data``: that error says it all.
        if "lat" in info.data and (info.data["lat"] is None) != (value is None):
            raise ValueError("lat and lng must be given together")
        return value

    @field_validator("attributes")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, ensure_ascii=False, default=str)) > MAX_ATTRIBUTES_CHARS:
            raise ValueError(f"attributes are longer than {MAX_ATTRIBUTES_CHARS} characters as JSON")
        # An enterprise appeal's (企业呼) name, credit code and need, checked as every intake path checks them.
        return enterprise.checked(value) if value else value

    @field_validator("citizen_name", "address", "category")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _no_nul(value)

    @field_validator("external_id")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        """Trimmed, as the bulk import reads it: a re-sent appeal whose id gained or lost a space or line end is
        the same appeal, not a second order; an id of only blanks is no id."""
        return _no_nul(value.strip()) or None if value is not None else None

    @field_validator("citizen_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return phone_number(value)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("created_at must carry a time zone")
        if value is not None and value > datetime.now(UTC) + FUTURE_SLACK:
            raise ValueError("created_at is in the future")
        if value is not None and (problem := created_problem(value)):
            raise ValueError(f"created_at is {problem}")
        return value

    @model_validator(mode="after")
    def _text(self) -> OrderCreate:
        if "appeal_type" not in self.model_fields_set and self.appeal_type != default_appeal_type(self.channel):
            # (assigned only when it changes: an assignment counts as given, and an inspector's report that says no
            # type gets its own default, intake.service.filed_by_inspector)
            self.appeal_type = default_appeal_type(self.channel)
        if not self.content and not self.title:
            raise ValueError("an order needs a title or content")
        if not self.content:
            self.content = self.title
        if not self.title:
            self.title = title_from_content(self.content)
        return self


MEDIA_URL_MAX = 500


class NotWebAddress(ValueError):
    """What :func:`web_address` refuses, with its ``reason``: ``scheme`` (not http or https), ``host`` (none) or
    ``length`` (over :data:`MEDIA_URL_MAX`), for a caller that words its own message (a webhook's receiver)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def web_address(value: str, *, field: str = "url") -> str:
    """``value`` stripped, if it is an http(s) address with a host, of at most 500 characters; else NotWebAddress (a
    ValueError) naming ``field``. What an attachment's link must be: staff open it from the order page and Open311
    publishes it as ``media_url`` (never a ``javascript:`` or ``data:`` link); a webhook's receiver too."""
    value = value.strip()
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https"):
        raise NotWebAddress(f"{field} must be an http(s) URL", "scheme")
    if not parsed.hostname:  # not just a netloc: "http://:80/" or "http://user@/" names no host
        raise NotWebAddress(f"{field} must be an http(s) URL", "host")
    if len(value) > MEDIA_URL_MAX:
        raise NotWebAddress(f"{field} is longer than {MEDIA_URL_MAX} characters", "length")
    return value


def link_name(url: str, default: str) -> str:
    """The file name an attachment given by its link goes by: the link's last path segment, else ``default``."""
    return urlparse(url).path.rsplit("/", 1)[-1][:255] or default


class AttachmentIn(BaseModel):
    """A photo, clip or document given with an appeal, by its link (cityhub stores the link, not the file)."""

    filename: str = Field(..., max_length=255)
    url: str = Field(..., max_length=MEDIA_URL_MAX)
    content_type: str | None = Field(None, max_length=100)
    size: int | None = Field(None, ge=0)

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        return web_address(value)


class AttachmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    url: str = Field(
        ...,
        description="an http(s) link given with the appeal, or for a file kept by cityhub (sha256 set) the API path "
        "serving it to whoever may read the order",
    )
    content_type: str | None = Field(None, description="for a file kept by cityhub, the type read from its content")
    size: int | None
    created_at: datetime
    sha256: str | None = Field(None, description="the SHA-256 of a file kept by cityhub; null for a link")
    uploaded_by: str | None = Field(None, description="who attached it after intake; null: given with the appeal")
    published_at: datetime | None = Field(
        None,
        description="when staff published the photo (公开) for Open311's media_url, which then links its public copy; "
        "null: not published",
    )


class ImportBatchRead(BaseModel):
    """The import of a file an order came from (批量导入: ``import_batches``), as staff reading orders see it."""

    id: int = Field(description="the batch: `GET /api/v1/orders?import_batch_id=` lists the orders it created")
    file_name: str
    created_at: datetime = Field(description="when the import began writing")
    actor_name: str | None = Field(description="who imported the file; null: the command line (`import orders`)")
    imported: int | None = Field(
        description="how many orders it created; null for a reader who sees only some of them and did not import it"
    )


def batch_orders_path(batch_id: int) -> str:
    """The web order list narrowed to the orders one import created (the list's ``import_batch_id``)."""
    return f"/orders?import_batch_id={batch_id}"


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str
    from_state: str | None
    to_state: str
    actor_id: int | None
    actor_name: str
    unit_id: int | None
    at: datetime
    reason: str | None
    payload: dict[str, Any] | None

    @field_serializer("payload", when_used="json")
    def _payload_times(self, payload: dict[str, Any] | None) -> dict[str, Any] | None:
        return answer_times(payload)  # deadlines and times of the payload, as the event's own ``at``

    def masked(self, *, known: tuple[str | None, ...], citizen_user_id: int | None = None) -> EventRead:
        """A copy whose reason and written text (a reply, comment or answer) went through the scrubber, for whoever
        sees the order masked; ``known``: the order's citizen name and phone. What the citizen did themselves
        (filed it, added files, rated the answer: ``citizen_user_id``'s steps, or steps under the citizen's name) is
        shown as :data:`CITIZEN_ACTOR`'s, not by name."""
        payload = self.payload
        if payload and any(isinstance(payload.get(k), str) for k in EVENT_TEXTS):
            payload = {
                k: scrub_text(v, known=known) if k in EVENT_TEXTS and isinstance(v, str) else v
                for k, v in payload.items()
            }
        actor_name = shown_actor(
            self.actor_id, self.actor_name, citizen_user_id=citizen_user_id, citizen_name=known[0] if known else None
        )
        return self.model_copy(
            update={"reason": scrub_text(self.reason, known=known), "payload": payload, "actor_name": actor_name}
        )


# Who did a step of the trail, to a reader who does not see the citizen's name: the citizen themselves.
CITIZEN_ACTOR = "citizen"


def shown_actor(actor_id: int | None, actor_name: str, *, citizen_user_id: int | None, citizen_name: str | None) -> str:
    """Who acted, as whoever may not read the citizen's name sees it (a masked reader, a webhook receiver): the
    citizen's own steps — by their account, or under their name — as :data:`CITIZEN_ACTOR`, others as they are."""
    mine = actor_id is not None and actor_id == citizen_user_id
    return CITIZEN_ACTOR if mine or (citizen_name and actor_name == citizen_name) else actor_name


# What people write into an event's payload: a reply, a comment, an assisting unit's reply (text), a 秒回 (answer),
# the problem split off an appeal (its content and title: the citizen's words).
EVENT_TEXTS = ("text", "answer", "content", "title")

# Events internal to the handling units, shown neither to the public (Open311) nor to the citizen: comments, the
# assisting units' own steps, what the system writes about time limits (sweep marks; deadlines moved by a
# calendar or time-limit edit, :mod:`cityhub.workorders.recompute`), another citizen's appeal merged into the
# order (:data:`MERGED_IN`: that appeal is not this citizen's business), and the assessment's exemptions.
# The assessment's exemption requests and decisions (考核核减, :mod:`cityhub.analytics.exemptions`): between a unit and
# its supervisors, entries of the trail beside the order's steps.
EXEMPTION_EVENTS = ("exemption_request", "exemption_approve", "exemption_reject", "exemption_revoke")
INTERNAL_EVENTS = frozenset(
    {"comment", "assist_accept", "assist_reply", "assist_return", "sla_warning", "sla_overdue"}
    | {"sla_accept_overdue", "sla_recompute", "assign_overdue", MERGED_IN, *EXEMPTION_EVENTS}
)
# The steps of an order its citizen follows (办理进度), one rule for every place they read them: the trail on their
# order page and the API's for them (``workorders.views.citizen_reads``) and the progress lookup's milestones
# (``tracking``, /track). Not the units' internal events, nor a unit's 退单 (return: between the units — the dispatcher
# sends the order on, and the citizen reads the next 派单; their page listed 退回重新分派 where /track left it out), nor
# comments (a citizen's own show on their page, ``citizen_reads``).
CITIZEN_STEPS = frozenset(a.value for a in Action) - INTERNAL_EVENTS - {Action.RETURN.value, Action.COMMENT.value}
# Steps whose reason is written to the citizen (why it was closed, cancelled, paused, reopened); other reasons
# (why a unit returned it, why an extension was asked for or a reply rejected) are between the units.
_CITIZEN_REASONS = frozenset({"cancel", "close", "suspend", "resume", "reopen", "callback", "instant_answer"})
# What of a payload the citizen sees: the reply or answer, their rating (and which of three, 基本满意 apart), the unit
# it was sent to.
_CITIZEN_PAYLOAD = frozenset({"text", "answer", "satisfied", "rating", "unit_id"})
# What a citizen added to or took off their appeal, and whether they added it later (``supplement``: 补充材料) or with
# the appeal.
_OWN_FILES = frozenset({"attachments", "removed_attachments", "supplement"})


def _as_citizen_reads(state: str | None) -> str | None:
    """A trail's state as the citizen is told it (``State.as_citizen_reads``); a value no state has, as it was."""
    if state is None or state not in State._value2member_map_:
        return state
    return State(state).as_citizen_reads().value


def citizen_trail(events: Sequence[EventRead], *, user_id: int | None) -> list[EventRead]:
    """The trail as the citizen who filed the order sees it: what happened to their appeal and what they were
    told, without staff names or units (their own steps keep their name, and their own comments the files they
    added). ``events`` are those the citizen reads — not the units' internal steps and notes — as the query
    chooses them (``workorders.views.citizen_reads``, in SQL so that a page of the trail is a page of what they
    read); this shapes each one."""
    out = []
    for e in events:
        own = user_id is not None and e.actor_id == user_id
        keep = _CITIZEN_PAYLOAD | _OWN_FILES if own else _CITIZEN_PAYLOAD
        payload = {k: v for k, v in (e.payload or {}).items() if k in keep} or None
        out.append(
            e.model_copy(
                update={
                    "actor_id": e.actor_id if own else None,
                    "actor_name": e.actor_name if own else "",
                    "unit_id": None,  # the acting unit; where the order went is the payload's unit_id
                    "reason": e.reason if own or e.action in _CITIZEN_REASONS else None,
                    "payload": payload,
                    # the states as they are told them: a dispatch after a unit's return came from 已受理, not 已退单
                    "from_state": _as_citizen_reads(e.from_state),
                    "to_state": _as_citizen_reads(e.to_state),
                }
            )
        )
    return out


class AssistRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    unit_id: int
    status: str
    reply_text: str | None
    updated_at: datetime


class EnterpriseRead(BaseModel):
    """企业呼: the enterprise an appeal is of, as its intake said (``attributes``, checked by ``intake.enterprise``)."""

    name: str
    credit_code: str | None = Field(None, description="统一社会信用代码 (GB 32100-2015), checked at intake")
    need: str | None = Field(None, description=f"what it needs: one of {', '.join(enterprise.NEEDS)}")


class OrderRead(OrderBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    external_id: str | None
    state: State
    category_id: int | None
    street_id: int | None
    community_id: int | None
    place_source: str | None = Field(
        default=None,
        description="where street and community came from: order (given), coordinates, address, text, dispatcher, "
        "lead_unit (the street or community office it was given to); none: looked for and not found; null: not "
        "looked for yet",
    )
    lead_unit_id: int | None
    master_order_id: int | None
    split_from_id: int | None = Field(
        default=None, description="拆单: the order this one was split from (one of the problems its appeal raised)"
    )
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    accepted_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    accept_due_at: datetime | None
    warn_at: datetime | None
    due_at: datetime | None
    sla_status: SlaStatus
    accept_overdue: bool
    overdue_at: datetime | None = Field(description="when the current time limit ran out; a new limit clears it")
    first_overdue_at: datetime | None = Field(
        description="when the order first ran out of a time limit (曾超期), kept when a new limit starts"
    )
    sla_paused_at: datetime | None
    extension_pending: bool
    extension_count: int
    urge_count: int
    escalation_level: int
    leader_assigned: bool
    assign_deadline: date | None = Field(
        default=None,
        description="领导交办's 限期办结: the local day by which the leader who assigned the order asked it done "
        "(`deadline` of the assign action; a later assign with one replaces it); the statutory limit is `due_at`. "
        "Null for a citizen",
    )
    assign_overdue_at: datetime | None = Field(
        default=None,
        description="when the SLA sweep found `assign_deadline` passed with the order open and told the leader and the "
        "unit (null: not yet, or a new day given since)",
    )
    return_count: int
    reopen_count: int
    instant_answered: bool
    reply_text: str | None
    satisfied: bool | None
    resolved: bool | None
    likes: int
    opposes: int
    version: int
    assists: list[AssistRead] = Field(default_factory=list)
    attachments: list[AttachmentRead] = Field(
        default_factory=list,
        description="links to the photos, clips and documents given with the appeal (a camera's snapshot for a "
        "video-AI detection); one order only: an order list leaves them (and assists) empty",
    )
    enterprise: EnterpriseRead | None = Field(
        default=None,
        validation_alias="attributes",
        description="企业呼: the enterprise that asks and what for (its intake's `attributes` enterprise_name, "
        "credit_code, enterprise_need); null for an appeal of no enterprise",
    )
    import_batch: ImportBatchRead | None = Field(
        default=None,
        description="批量导入: the import the order came from, for staff; null for an order received otherwise (or "
        "imported before imports were kept), for a citizen, and in an order list",
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="逾期: `assign_deadline` has passed (the day is over in the district's time zone) with the order "
        "still open"
    )
    @property
    def assign_overdue(self) -> bool:
        return deadline_passed(self.assign_deadline, self.state, utcnow().astimezone(get_settings().tz).date())

    @field_validator("enterprise", mode="before")
    @classmethod
    def _enterprise(cls, value: Any) -> Any:
        """Read from the order's ``attributes`` (its row's, or the ORM object's)."""
        return enterprise.asking(value if isinstance(value, Mapping) else None)

    def as_citizen_reads(self) -> OrderRead:
        """A copy for the citizen who appealed: the limit promised them (``due_at``) and whether it is kept, not the
        steps inside it that are the handling units' business — when the unit must sign for it (``accept_due_at``,
        ``accept_overdue``) and when its supervisors are warned (``warn_at``; ``sla_status`` ``warning`` reads
        ``ok``). The citizen's order page shows the same."""
        return self.model_copy(
            update={
                "accept_due_at": None,
                "warn_at": None,
                "accept_overdue": False,
                "sla_status": self.sla_status.as_citizen_reads(),
                # 限期办结 is the leader's word to the unit, not a promise to the citizen (``due_at`` is)
                "assign_deadline": None,
                "assign_overdue_at": None,
            }
        )

    def masked(self) -> OrderRead:
        """A copy for whoever need not see who appealed (:mod:`cityhub.masking`): the citizen's name and phone
        masked, title, content and replies through the scrubber (the same name and phone typed in them, other
        numbers, house numbers), the address cut to its road or compound and the point to about a kilometre."""
        known = (self.citizen_name, self.citizen_phone)
        return self.model_copy(
            update={
                "citizen_name": mask_name(self.citizen_name),
                "citizen_phone": mask_phone(self.citizen_phone),
                "title": scrub_text(self.title, known=known),
                "content": scrub_text(self.content, known=known),
                "reply_text": scrub_text(self.reply_text, known=known),
                "address": coarsen_address(self.address),
                "lat": coarsen_coordinate(self.lat),
                "lng": coarsen_coordinate(self.lng),
                "assists": [
                    a.model_copy(update={"reply_text": scrub_text(a.reply_text, known=known)}) for a in self.assists
                ],
            }
        )


OrderCreate.model_rebuild()


# What the order search's ``q`` means (the API's parameter and the filter say the same).
Q_DESCRIPTION = (
    "Full-text search. Words separated by spaces must each appear (AND) in the number, title, content or "
    "address, each as written (a contiguous piece of the text, as SQL LIKE finds it, so a part of an order number "
    "too; ASCII letters ignore case on SQLite only); or q is the order's number, exactly, in any case. For roles "
    "that see citizens' data unmasked, also the citizen's name or phone number, exactly. A q holding a phone or ID "
    "number or an e-mail address searches only orders whose personal data the caller reads (a handler: its unit's; "
    "a leader: 403). Served by a full-text "
    "index, except a q whose words are all single Chinese characters or single Latin/digit words (the end of a "
    "number, 000123), which reads every order."
)


OVERDUE_DESCRIPTION = (
    "超期: only the open orders past their time limit now (true), or only the others (false); an order closed, "
    "merged or cancelled after its limit ran out is not overdue now (ever_overdue finds it)"
)
HELD_DESCRIPTION = (
    "只看本单位承办: only the orders the caller's unit holds, leading or assisting (a street office's: its "
    "communities' too; a department's: its sub-centres' too), not those it reads only because they lie in its "
    "street; no narrowing for a caller whose unit reads every order (the district's) or of no unit"
)
TO_ACCEPT_DESCRIPTION = (
    "待签收: only the orders waiting for the caller's unit to sign for them — sent to it and not accepted, or an "
    "assist it was asked for and has not accepted; no narrowing for a caller whose unit reads every order or of no unit"
)
LED_DESCRIPTION = (
    "本单位牵头: only the orders the caller's unit leads (its own time limits: a unit's 预警 and 超期); no narrowing "
    "for a caller whose unit reads every order or of no unit"
)
ASSISTING_DESCRIPTION = (
    "协办 (a unit's): only the orders the caller's unit assists on and does not lead (the time limit is the lead "
    "unit's); no narrowing for a caller whose unit reads every order or of no unit"
)
WITH_ASSIST_DESCRIPTION = (
    "协办 (the centre's): only the orders with an assisting unit (true), or only those without (false), not narrowed "
    "for a citizen"
)
EVER_OVERDUE_DESCRIPTION = (
    "曾超期: only the orders that ran out of a time limit at some time, open or closed, extended, re-dispatched, "
    "transferred or reopened since or not (true), or only the others (false)"
)
ESCALATED_DESCRIPTION = (
    "已升级: only the orders a supervisor, a leader or an unacknowledged alarm escalated (升级) at least once "
    "(`escalation_level` above 0; true), or only the others (false)"
)
LEADER_ASSIGNED_DESCRIPTION = (
    "领导交办: only the orders a leader assigned (交办) — sent to a unit or instructed — at some time (true), or only "
    "the others (false)"
)
URGED_DESCRIPTION = (
    "被催办: only the orders urged (催办) at least once (`urge_count` above 0; true), or only the others (false) — "
    "with state=open&led=true, a unit's urged work, where the notice of a 批量催办 leads"
)
SATISFIED_DESCRIPTION = (
    "回访结果: only the orders whose citizen was satisfied with the reply (true), or not (false: with "
    "state=called_back, the unsatisfied callbacks waiting for 重办 or 办结); orders not rated, or reopened since, are "
    "neither"
)
ACCEPT_DUE_SOON_DESCRIPTION = (
    "即将签收超时: only the orders dispatched and not signed for whose signing limit (`accept_due_at`) is within 30 "
    "minutes, or passed and not yet marked `accept_overdue` by the time-limit sweep (true), or only the others "
    "(false) — the warning before 签收超时, as 预警 is before 超期; `sla_status` and `accept_overdue` unchanged"
)
NO_CITIZEN_DESCRIPTION = (
    "only a sensor's or a video-AI camera's orders naming no caller and no account (true: nobody to call back, closed "
    "from replied without a callback — with state=replied, the supervisors' 待办结（无需回访）), or only the orders "
    "with a citizen (false: with state=replied, 待回访, the replies awaiting a callback)"
)
IMPORT_BATCH_DESCRIPTION = (
    "批量导入: only the orders one import created (its `import_batch_id`, as `POST /api/v1/orders/import` answers "
    "it), not the rows it found already imported, nor other orders of the channel; orders imported before the import "
    "kept its batch belong to none"
)
UPDATED_SINCE_DESCRIPTION = (
    "only the orders stored or changed at or after this time, with time zone (`updated_at`: every life-cycle step, "
    "amendment and time-limit mark moves it; an imported order's is its reception time)"
)
CURSOR_DESCRIPTION = (
    "the feed of changes: `*` to begin, else the `next_cursor` of an earlier answer (of this list or of the "
    "data-sharing API's feed of changes). Every order of the caller's scope matching the other filters, after each "
    "transaction that stored or changed it, in the order of those transactions, once settled — an order changed "
    "while a client pages is handed out later, never passed; `sort`, `offset` and `count` do not apply"
)
FEED_DESCRIPTION = "the feed a cursor walks: `changes`, the one this list has (as the data-sharing API names it)"


class OrderSort(StrEnum):
    """The order of an order list; within equal keys the newer order (higher id) first for ``newest``, else the
    older."""

    NEWEST = "newest"  # received last first: the intake's and overseers' view
    OLDEST = "oldest"  # waiting longest first: a queue worked in turn (the replies awaiting a callback)
    DUE = "due"  # the time limit nearest first, orders without a running limit last: a handler's 在办
    ANSWERED = "answered"  # answered last first, orders never answered last: a leader's 交办已答复


SORT_DESCRIPTION = (
    "newest (received last first, the default), oldest (received first first) or due (the time limit nearest "
    "first — overdue ones before those still in time — orders without a running limit last) or answered (answered "
    "last first — `replied_at` —, orders never answered last); not with `cursor`, "
    "whose feed is in the order of the changes"
)


ENTERPRISE_NEED_DESCRIPTION = (
    "企业呼: only the appeals of an enterprise that needs one of these (water, power, land, labour, funding, other)"
)


class OrderFilter(BaseModel):
    """Search criteria of the order list (all optional, combined with AND)."""

    state: list[State] | None = None
    unit_id: int | None = Field(None, description="lead unit")
    street_id: int | None = None
    community_id: int | None = None
    category_id: int | None = Field(None, description="this category and its sub-categories")
    channel: list[Channel] | None = None
    appeal_type: AppealType | None = None
    urgency: Urgency | None = None
    created_from: RequestTime | None = None
    created_to: RequestTime | None = None
    overdue: bool | None = Field(None, description=OVERDUE_DESCRIPTION)
    ever_overdue: bool | None = Field(None, description=EVER_OVERDUE_DESCRIPTION)
    extension_pending: bool | None = Field(
        None, description="only orders whose extension request waits for a decision (true), or only others (false)"
    )
    accept_overdue: bool | None = Field(
        None, description="only orders not accepted within the time allowed, 签收超时 (true), or only others (false)"
    )
    accept_due_soon: bool | None = Field(None, description=ACCEPT_DUE_SOON_DESCRIPTION)
    escalated: bool | None = Field(None, description=ESCALATED_DESCRIPTION)
    leader_assigned: bool | None = Field(None, description=LEADER_ASSIGNED_DESCRIPTION)
    urged: bool | None = Field(None, description=URGED_DESCRIPTION)
    sla_status: SlaStatus | None = None
    q: str | None = Field(None, max_length=100, description=Q_DESCRIPTION)
    # Whether ``q`` also finds the citizen's phone number (its digits) or name, exactly: for callers who see them
    # unmasked (a returning caller's earlier appeals); others would learn from the hits what masking hides.
    q_citizen: bool = False
    citizen_user_id: int | None = None
    # Only the orders this person registered (``Order.reported_by_id``: 我提交的, the API's and the page's ``mine``).
    reported_by_id: int | None = None
    # Only the orders this person assigned (交办: an ``assign`` event of theirs in the trail) — a leader's own
    # 交办已答复, the page's ``assigned_mine``.
    assigned_by_id: int | None = None
    # Only the orders these units hold, lead or assisting (``auth.scope.held_by``): the caller's own units' work,
    # chosen by the API's and the page's ``held`` (``auth.scope.own_units``); an empty list holds none.
    held_by: list[int] | None = None
    # Only the orders waiting for these units to sign for them (待签收, ``auth.scope.awaiting_acceptance_by``): sent to
    # them and not accepted, or an assist of theirs not accepted — the page's ``to_accept``, a handler's new work.
    to_accept_by: list[int] | None = None
    # Only the orders these units lead (``auth.scope.led_by``): a unit's staff's 预警 and 超期, the page's ``led``.
    led_by: list[int] | None = None
    # Only the orders these units assist on and do not lead (``auth.scope.assisting_only``): a unit's staff's 协办, the
    # page's ``assisting``.
    assisting_by: list[int] | None = None
    # Only the orders with an assisting unit (true; ``auth.scope.with_assists``), or none (false): the centre's 协办,
    # the page's ``with_assist``.
    assisted: bool | None = None
    # Whether the time-limit criteria are the appealing citizen's (``SlaStatus.as_citizen_reads``): their 正常 holds
    # the orders the units see in 预警, none is in 预警 or 签收超时 to them.
    as_citizen: bool = False
    place_source: list[PlaceSource] | None = Field(
        None, description="where street and community came from; none: looked for and not found"
    )
    import_batch_id: int | None = Field(None, description=IMPORT_BATCH_DESCRIPTION)
    updated_since: RequestTime | None = Field(None, description=UPDATED_SINCE_DESCRIPTION)
    enterprise_need: list[enterprise.Need] | None = Field(None, description=ENTERPRISE_NEED_DESCRIPTION)
    satisfied: bool | None = Field(None, description=SATISFIED_DESCRIPTION)
    no_citizen: bool | None = Field(None, description=NO_CITIZEN_DESCRIPTION)

    @field_validator("q")
    @classmethod
    def _no_nul_in_q(cls, value: str | None) -> str | None:
        return _no_nul(value)

    @field_validator("created_from", "created_to")
    @classmethod
    def _local(cls, value: datetime | None) -> datetime | None:
        """A time without a zone (``2026-11-01``, ``2026-11-01T08:00``) is the district's local time, as on the
        pages and in imports."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=get_settings().tz)
        return value


class ActionRequest(BaseModel):
    """A life-cycle action. ``version`` (or an If-Match header) guards against acting on a stale copy. A field it
    does not know is refused, not ignored (``{"params": {"unit_id": 3}}`` is no unit_id)."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1)
    reason: str | None = Field(None, max_length=REASON_MAX_CHARS)
    unit_id: int | None = None
    deadline: date | None = Field(
        None,
        description="assign (领导交办) only, optional: 限期办结, the local day (YYYY-MM-DD, today or later) by which "
        "the leader asks the order done — stored as the order's `assign_deadline` and in the event; the order's "
        "statutory time limit (`due_at`) is not moved by it; once it passes with the order open the order reads "
        "`assign_overdue` and the SLA sweep tells the leader and the unit",
    )
    suggest_unit_id: int | None = Field(
        None,
        strict=True,
        description="return (退单) only, optional: the unit the returning unit suggests the order be dispatched to "
        "(建议改派至) — an active unit other than itself, kept in the event's payload for the dispatcher; the order "
        "goes back to the dispatcher's queue (待重新派单) either way",
    )
    text: str | None = Field(None, max_length=TEXT_MAX_CHARS)
    answer: str | None = Field(None, max_length=TEXT_MAX_CHARS)
    kb_entry_id: int | None = Field(None, description="instant_answer: the knowledge entry answered from (秒回)")
    days: float | None = Field(
        None,
        allow_inf_nan=False,
        description="request_extension: the working days asked for (at most 30); approve_extension: the days "
        "granted, at most those asked for (default: all of them)",
    )
    # Strict: "yes", 1 or "false" are no answer to whether the citizen was satisfied (the web form reads its own).
    satisfied: bool | None = Field(None, strict=True)
    resolved: bool | None = Field(None, strict=True)
    master_id: int | None = None
    # 拆单 (split): the problem taken out as an order of its own — what the citizen said of it, a title, a category,
    # its kind (else the appeal's).
    content: str | None = Field(None, max_length=TEXT_MAX_CHARS)
    title: str | None = Field(None, max_length=TITLE_MAX_CHARS)
    category_id: int | None = None
    appeal_type: AppealType | None = None
    # 升级 (escalate): the higher urgency it raises the order to, if any.
    urgency: Urgency | None = None
    start: bool | None = Field(
        None,
        strict=True,
        description="accept only, optional: true starts work (开始办理) right after 签收 — 签收并开始办理, two audited "
        "events as on the order page; refused (403) to a role that may not start work",
    )

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"version", "start"}).items() if v is not None}


class BulkUrge(BaseModel):
    """批量催办: one message urging several orders, each its own audited 催办 (``service.act_each``). The list's
    limits (none, more than ``service.ACT_EACH_MAX``) and a blank ``reason`` are checked by the route, each a 422
    naming its field."""

    model_config = ConfigDict(extra="forbid")

    order_ids: list[int] = Field(description="the orders to urge (ids, as `id` of an order); a repeated id counts once")
    reason: str = Field(
        max_length=REASON_MAX_CHARS, description="the message to the unit holding each order (催办内容)"
    )


class BulkUrgeOutcome(BaseModel):
    order_id: int
    number: str | None = Field(description="the order's number; null for an order not found or outside the scope")
    urged: bool
    unit_id: int | None = Field(None, description="the unit the urge went to (urged)")
    state: str | None = Field(None, description="the order's state now, for one refused that the caller may read")
    error: str | None = Field(
        None,
        description="why it was not urged: not found (or outside the caller's scope), a "
        "state that cannot be urged (not yet dispatched, answered, closed)",
    )


class BulkUrgeRead(BaseModel):
    urged: int
    refused: int
    results: list[BulkUrgeOutcome] = Field(description="one per distinct order asked for, in the order given")


class OrderPage(BaseModel):
    items: list[OrderRead]
    limit: int
    offset: int
    has_more: bool
    total: int | None = None
    next_cursor: str | None = Field(
        None,
        description="with `cursor`: the position after this page, sent back as `cursor` for the next page — and, once "
        "`has_more` is false, kept for the next poll, whose first call gets everything changed since; null without "
        "`cursor`",
    )
