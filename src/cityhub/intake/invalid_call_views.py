"""HTTP routes of 无效来电 (``/api/v1/invalid-calls``): the calls recorded at the intake desk as no appeal, counted
for a period per kind and per operator, and listed — the dashboard's 无效来电 section over the API
(:mod:`cityhub.intake.invalid_calls`).

Read as the dashboard is: by its readers (leaders, supervisors and administrators, with a person's token or
session), each within their data scope — a reader who sees every order counts every desk's calls, any other the calls
taken by the operators of the units of their scope. A caller's phone is shown as the reader sees citizens' phones on
orders: whole to the roles that read personal data, masked (138****5678) to the others (a leader)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from cityhub.analytics import kpi
from cityhub.api.deps import CurrentPrincipal, DbSession, Paging
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.errors import PermissionDenied
from cityhub.intake import invalid_calls
from cityhub.masking import mask_phone
from cityhub.org.models import Role

router = APIRouter(prefix="/invalid-calls", tags=["invalid calls"])

# The dashboard's readers (``web.support.OVERSEERS``).
READERS = frozenset({Role.LEADER, Role.SUPERVISOR, Role.ADMIN})
KINDS = ", ".join(k.value for k in invalid_calls.KINDS)


def _reader(principal: CurrentPrincipal) -> Principal:
    if principal.role not in READERS or not permissions.allows(principal.role, permissions.ORDER_READ):
        raise PermissionDenied(
            "invalid calls are read by leaders, supervisors and administrators, as on the dashboard",
            details={"permission": "dashboard:read"},
        )
    return principal


Reader = Annotated[Principal, Depends(_reader)]
PeriodQ = Annotated[
    str | None,
    Query(
        description="2026-10 (month), 2026-W43 (ISO week), 2026-10-05 (day), 2026-10-01..2026-10-15, 2026-Q4 or 2026, "
        "local days of the district's time zone; without it, the last 30 days to today (the dashboard's default)"
    ),
]


class OperatorCount(BaseModel):
    user_id: int | None = Field(description="null: the account was removed since")
    name: str = Field(description="the operator's full name (login name if none); empty for a removed account")
    total: int
    by_kind: dict[str, int] = Field(description="the operator's calls per kind (only the kinds they had)")


class InvalidCallTally(BaseModel):
    period: str = Field(description="the period as read (2026-10, 2026-W43, 2026-10-01..2026-10-15 …)")
    start: datetime = Field(description="the period's first instant (local midnight of its first day)")
    end: datetime = Field(description="the instant after the period (local midnight after its last day)")
    scoped: bool = Field(
        description="true: only the calls taken by the operators of the units of the caller's data scope; false: all"
    )
    total: int
    by_kind: dict[str, int] = Field(description=f"every kind ({KINDS}) with its count, zero included")
    by_operator: list[OperatorCount] = Field(description="per operator, most calls first")


class InvalidCallRead(BaseModel):
    id: int
    created_at: datetime = Field(description="when it was recorded")
    kind: str = Field(description=f"one of {KINDS}")
    user_id: int | None = Field(description="the operator who took it; null: the account was removed since")
    operator: str = Field(description="their full name (login name if none); empty for a removed account")
    unit_id: int | None = Field(description="the operator's unit when they took it")
    unit: str = Field(description="that unit's name; empty for a removed unit")
    phone: str | None = Field(
        description="the caller's phone if the operator had typed one: whole for a reader who reads citizens' personal "
        "data (supervisor, administrator), masked (138****5678) for the others (leader)"
    )


class InvalidCallPage(BaseModel):
    period: str
    scoped: bool
    total: int = Field(description="the calls of the period (and kind) in all")
    items: list[InvalidCallRead] = Field(description="newest first")
    limit: int
    offset: int
    has_more: bool


def _units(db: DbSession, principal: Principal) -> frozenset[int] | None:
    scope = scope_of(db, principal)
    return None if scope.everything else scope.units


@router.get("", response_model=InvalidCallTally)
def tally(db: DbSession, principal: Reader, period: PeriodQ = None) -> InvalidCallTally:
    """无效来电 of a period, per kind and per operator — the dashboard's section, as ``cityhub analytics invalid-calls
    --format json`` counts them (with ``start``, ``end`` and ``scoped`` beside): the calls taken by the operators of
    the caller's data scope's units, or all of them for a reader who sees every order. A bad ``period`` is 422
    naming it."""
    p = kpi.period_or_recent(period)
    units = _units(db, principal)
    counted = invalid_calls.tally(db, period=p, units=units).as_dict()
    return InvalidCallTally.model_validate({**counted, "start": p.start, "end": p.end, "scoped": units is not None})


@router.get("/calls", response_model=InvalidCallPage)
def calls(
    db: DbSession,
    principal: Reader,
    page: Paging,
    period: PeriodQ = None,
    kind: Annotated[str | None, Query(description=f"only calls of this kind: {KINDS}")] = None,
) -> InvalidCallPage:
    """The invalid calls themselves, newest first, paged (``limit``, ``offset``): when, the kind, who took them and
    their unit, the phone as the caller may read it — within the same data scope as the tally."""
    p = kpi.period_or_recent(period)
    units = _units(db, principal)
    rows, more, total = invalid_calls.listed(db, period=p, units=units, kind=kind, limit=page.limit, offset=page.offset)
    whole = principal.role in permissions.UNMASKED_ROLES
    items = [InvalidCallRead(**{**asdict(r), "phone": r.phone if whole else mask_phone(r.phone)}) for r in rows]
    return InvalidCallPage(
        period=p.label,
        scoped=units is not None,
        total=total,
        items=items,
        limit=page.limit,
        offset=page.offset,
        has_more=more,
    )
