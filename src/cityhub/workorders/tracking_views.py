"""HTTP routes of the citizens' progress lookup and rating (:mod:`cityhub.workorders.tracking`): no account, the
order number and the phone given with the appeal. POST, so the phone stays out of URLs and access logs. And the
SMS relay's inbound messages (短信回访, ``POST /sms/inbound``): the citizens' replies to the answer's text message,
with an API key of scope ``sms:write``, counted per client as the data-sharing API's calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityhub.api.deps import DbSession
from cityhub.auth.views import _client_ip
from cityhub.sharing.http import MeteredDb, MeteredRoute, require_key
from cityhub.sharing.service import Caller
from cityhub.timerange import RequestTime
from cityhub.workorders import tracking
from cityhub.workorders.schemas import REASON_MAX_CHARS
from cityhub.workorders.sms import Rating

router = APIRouter(prefix="/track", tags=["citizens"])
# The relay's calls are counted per client; MeteredRoute commits the metered session before it counts the call.
sms_router = APIRouter(prefix="/sms", tags=["citizens"], route_class=MeteredRoute)
SmsRelay = Annotated[Caller, Depends(require_key("sms:write"))]
# A text message's longest reasonable length: a long message is a few segments of 67 characters.
SMS_TEXT_MAX = 1000


class TrackIn(BaseModel):
    number: str = Field(..., max_length=40, description="the order number, e.g. BY20261202-000012")
    phone: str = Field(..., max_length=32, description="the phone number given with the appeal")


class RateIn(TrackIn):
    satisfied: bool = Field(..., strict=True, description='true or false (not "yes", 1 or "false")')
    reason: str | None = Field(
        None, max_length=REASON_MAX_CHARS, description="what is still wrong (needed when not satisfied)"
    )
    rating: Rating | None = Field(
        None,
        description="optional, one of the three a text message offers: satisfied, basically_satisfied (基本满意, "
        "satisfied true) or unsatisfied; kept in the callback as rating, and must agree with satisfied",
    )

    @model_validator(mode="after")
    def _rating_agrees(self) -> RateIn:
        if self.rating is not None and self.rating.satisfied != self.satisfied:
            raise ValueError(f"rating {self.rating.value} disagrees with satisfied {str(self.satisfied).lower()}")
        return self


@router.post("", response_model=tracking.TrackedOrder)
def track(body: TrackIn, request: Request, db: DbSession) -> tracking.TrackedOrder:
    """Where an appeal stands (办理进度查询). 404 alike for a wrong number or phone; failures are rate-limited (429)."""
    return tracking.track(db, number=body.number, phone=body.phone, client_ip=_client_ip(request))


@router.post("/rate", response_model=tracking.TrackedOrder)
def rate(body: RateIn, request: Request, db: DbSession) -> tracking.TrackedOrder:
    """Rate the reply (满意 / 基本满意 / 不满意 with a reason): the order's callback, audited as the citizen's. 409
    when the order is not waiting for a rating."""
    rated = tracking.rate(
        db,
        number=body.number,
        phone=body.phone,
        satisfied=body.satisfied,
        reason=body.reason,
        client_ip=_client_ip(request),
        rating=body.rating,
    )
    db.commit()
    return rated


class SmsInbound(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(..., max_length=32, description="the number the message came from (+86, spaces, dashes aside)")
    text: str = Field(..., max_length=SMS_TEXT_MAX, description="the message as the citizen wrote it")
    message_id: str | None = Field(
        None,
        max_length=100,
        description="the relay's id of the message: sent again (a retry), it is answered as before and rates nothing "
        "twice",
    )
    received_at: RequestTime | None = Field(
        None, description="when the relay received it (with a time zone), kept in the rating's trail"
    )


@sms_router.post("/inbound", response_model=tracking.SmsAnswer)
def sms_inbound(body: SmsInbound, db: MeteredDb, _relay: SmsRelay) -> tracking.SmsAnswer:
    """A citizen's reply to a text message (短信回访: 1 满意, 2 基本满意, 3 不满意 and why), from the SMS relay with an
    API key of scope ``sms:write``: rates the phone's order waiting for it as the progress lookup does, audited as the
    citizen's by SMS, and answers what it did and ``reply_text``, the message to send back. A phone with no order
    waiting is a 200 saying so."""
    return tracking.rate_by_sms(
        db, phone=body.phone, text=body.text, message_id=body.message_id, received_at=body.received_at
    )
