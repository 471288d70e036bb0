"""HTTP routes of the citizens' progress lookup and rating (:mod:`cityhub.workorders.tracking`): no account, the
order number and the phone given with the appeal. POST, so the phone stays out of URLs and access logs."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cityhub.api.deps import DbSession
from cityhub.auth.views import _client_ip
from cityhub.workorders import tracking

router = APIRouter(prefix="/track", tags=["citizens"])


class TrackIn(BaseModel):
    number: str = Field(..., max_length=40, description="the order number, e.g. BY20261202-000012")
    phone: str = Field(..., max_length=32, description="the phone number given with the appeal")


class RateIn(TrackIn):
    satisfied: bool
    reason: str | None = Field(None, max_length=2000, description="what is still wrong (needed when not satisfied)")


class MilestoneRead(BaseModel):
    at: datetime
    action: str
    unit: str | None = None


class TrackedOrderRead(BaseModel):
    number: str
    title: str | None
    content: str
    appeal_type: str
    channel: str
    created_at: datetime
    state: str
    category: str | None
    unit: str | None = Field(description="the unit handling it")
    due_at: datetime | None = Field(description="when it is due (working-day time limit)")
    replied_at: datetime | None
    reply_text: str | None
    satisfied: bool | None
    merged_into: str | None = Field(description="the number of the order it was merged into (the same problem)")
    can_rate: bool = Field(description="replied and not yet rated: POST /track/rate")
    milestones: list[MilestoneRead]


@router.post("", response_model=TrackedOrderRead)
def track(body: TrackIn, request: Request, db: DbSession) -> TrackedOrderRead:
    """Where an appeal stands (办理进度查询). 404 alike for a wrong number or phone; failures are rate-limited (429)."""
    found = tracking.track(db, number=body.number, phone=body.phone, client_ip=_client_ip(request))
    return TrackedOrderRead.model_validate(found, from_attributes=True)


@router.post("/rate", response_model=TrackedOrderRead)
def rate(body: RateIn, request: Request, db: DbSession) -> TrackedOrderRead:
    """Rate the reply (满意 / 不满意 with a reason): the order's callback, audited as the citizen's. 409 when the
    order is not waiting for a rating."""
    rated = tracking.rate(
        db,
        number=body.number,
        phone=body.phone,
        satisfied=body.satisfied,
        reason=body.reason,
        client_ip=_client_ip(request),
    )
    db.commit()
    return TrackedOrderRead.model_validate(rated, from_attributes=True)
