"""HTTP routes of the citizens' progress lookup and rating (:mod:`cityhub.workorders.tracking`): no account, the
order number and the phone given with the appeal. POST, so the phone stays out of URLs and access logs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cityhub.api.deps import DbSession
from cityhub.auth.views import _client_ip
from cityhub.workorders import tracking
from cityhub.workorders.schemas import REASON_MAX_CHARS

router = APIRouter(prefix="/track", tags=["citizens"])


class TrackIn(BaseModel):
    number: str = Field(..., max_length=40, description="the order number, e.g. BY20261202-000012")
    phone: str = Field(..., max_length=32, description="the phone number given with the appeal")


class RateIn(TrackIn):
    satisfied: bool = Field(..., strict=True, description='true or false (not "yes", 1 or "false")')
    reason: str | None = Field(
        None, max_length=REASON_MAX_CHARS, description="what is still wrong (needed when not satisfied)"
    )


@router.post("", response_model=tracking.TrackedOrder)
def track(body: TrackIn, request: Request, db: DbSession) -> tracking.TrackedOrder:
    """Where an appeal stands (办理进度查询). 404 alike for a wrong number or phone; failures are rate-limited (429)."""
    return tracking.track(db, number=body.number, phone=body.phone, client_ip=_client_ip(request))


@router.post("/rate", response_model=tracking.TrackedOrder)
def rate(body: RateIn, request: Request, db: DbSession) -> tracking.TrackedOrder:
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
    return rated
