"""HTTP routes of the assessment's exemption requests (考核核减, :mod:`cityhub.analytics.exemptions`).

A unit's staff (``assessment:exemption_request``) ask for their own unit (a street's also for its communities) about an
order of their data scope; who decides (``assessment:exemption_decide``: supervisors, administrators) lists and decides
the requests of the units of their scope, and revokes an approval; a leader lists them. A request of a unit out of
the reader's sight is 404, as a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from cityhub.analytics import exemptions
from cityhub.analytics.models import AssessmentExemption
from cityhub.api.deps import CurrentPrincipal, DbSession, ListPaging, require
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import may_read
from cityhub.errors import NotFound
from cityhub.workorders.schemas import REASON_MAX_CHARS

router = APIRouter(prefix="/kpi/exemptions", tags=["assessment"])

Requester = Annotated[Principal, Depends(require(permissions.EXEMPTION_REQUEST))]
Decider = Annotated[Principal, Depends(require(permissions.EXEMPTION_DECIDE))]


class ExemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: int = Field(description="The order whose facts the unit asks to have left out of its figures.")
    measures: list[str] = Field(
        description="KPI names, one or more of: " + ", ".join(f"`{k}`" for k in exemptions.kpi.EXEMPTIBLE)
    )
    reason_category: str = Field(description="Why: one of " + ", ".join(f"`{r}`" for r in exemptions.REASONS))
    reason_text: str | None = Field(
        default=None, max_length=REASON_MAX_CHARS, description="In words; required with `other`."
    )
    unit_id: int | None = Field(
        default=None,
        description="The unit asking: a unit's staff ask for their own (the default); an administrator names it.",
    )


class ExemptionDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool = Field(description="true approves, false rejects.")
    reason: str | None = Field(default=None, max_length=REASON_MAX_CHARS, description="Why; required to reject.")


class ExemptionRevocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=REASON_MAX_CHARS, description="Why the approval is taken back (required).")


class ExemptionRead(BaseModel):
    id: int
    order_id: int
    order_number: str | None
    unit_id: int
    unit_code: str | None
    unit_name: str | None
    measures: list[str]
    reason_category: str
    reason_text: str | None
    state: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    revoked_by: str | None
    revoked_at: datetime | None
    revocation_reason: str | None


def _read(db: DbSession, row: AssessmentExemption) -> dict[str, Any]:
    return exemptions.as_dicts(db, [row])[0]


@router.post("", status_code=201, response_model=ExemptionRead)
def create(body: ExemptionCreate, db: DbSession, principal: Requester) -> dict[str, Any]:
    """A unit's request that the order's facts of ``measures`` not count against it (one open per order and unit:
    409 while one waits; 422 naming what is wrong — an order the unit has no such fact of, a measure or reason
    unknown, ``other`` without words)."""
    if not may_read(db, principal, body.order_id):
        raise NotFound(f"order {body.order_id} not found")
    row = exemptions.request(
        db,
        order_id=body.order_id,
        measures=body.measures,
        reason_category=body.reason_category,
        reason_text=body.reason_text,
        unit_id=body.unit_id,
        actor=principal.actor,
    )
    return _read(db, row)


@router.get("", response_model=list[ExemptionRead])
def list_requests(
    db: DbSession,
    principal: CurrentPrincipal,
    page: ListPaging,
    state: Annotated[str | None, Query(description="pending, approved, rejected or revoked")] = None,
    unit_id: Annotated[int | None, Query(description="Only this unit's requests.")] = None,
    order_id: Annotated[int | None, Query(description="Only this order's requests.")] = None,
) -> list[dict[str, Any]]:
    """The requests the caller reads (a decider's and a leader's: of their scope's units; a unit's staff: their
    unit's), pending ones oldest first, the others latest first."""
    seen = exemptions.units_seen(db, principal)
    units = seen if unit_id is None else ({unit_id} if seen is None or unit_id in seen else set())
    rows = page.scalars(db, exemptions.query(state=state, unit_ids=units, order_id=order_id))
    return exemptions.as_dicts(db, rows)


@router.get("/{exemption_id}", response_model=ExemptionRead)
def get_request(exemption_id: int, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    seen = exemptions.units_seen(db, principal)
    row = db.get(AssessmentExemption, exemption_id)
    if row is None or (seen is not None and row.unit_id not in seen):
        raise NotFound(f"exemption request {exemption_id} not found")
    return _read(db, row)


@router.post("/{exemption_id}/decision", response_model=ExemptionRead)
def decide(exemption_id: int, body: ExemptionDecision, db: DbSession, principal: Decider) -> dict[str, Any]:
    """Approve or reject a pending request (409 once decided; a rejection without ``reason`` is 422). An approval
    leaves the order's facts of those measures out of the unit's figures of whichever period they fall in."""
    row = exemptions.decide(
        db,
        exemption_id=exemption_id,
        approve=body.approve,
        reason=body.reason,
        actor=principal.actor,
        units=exemptions.units_seen(db, principal),
    )
    return _read(db, row)


@router.post("/{exemption_id}/revoke", response_model=ExemptionRead)
def revoke(exemption_id: int, body: ExemptionRevocation, db: DbSession, principal: Decider) -> dict[str, Any]:
    """撤销核减: take back an approved request, saying why (``reason``, 422 without). Its facts count again in the
    unit's figures; the request reads ``revoked``, its ``revoked_*`` the revocation's beside its ``decided_*``, the
    approval's; who asked is told. 409 for a request not approved (pending, rejected, already revoked)."""
    row = exemptions.revoke(
        db,
        exemption_id=exemption_id,
        reason=body.reason,
        actor=principal.actor,
        units=exemptions.units_seen(db, principal),
    )
    return _read(db, row)
