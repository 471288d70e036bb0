"""无效来电: calls to the hotline that became no appeal, recorded from the intake desk (one button of the kind) and
counted for a period per kind and per operator — the dashboard's 无效来电 section, ``cityhub analytics invalid-calls``.

A call recorded here leaves no order and no order's audit trail: the row itself (its kind, the caller's phone if one
was typed, the operator and their unit, the time) is the record."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.errors import ValidationFailed
from cityhub.intake.models import InvalidCall, InvalidCallKind
from cityhub.org.models import Unit, User
from cityhub.org.schemas import phone_number

if TYPE_CHECKING:
    from cityhub.analytics.kpi import Period

KINDS: tuple[InvalidCallKind, ...] = tuple(InvalidCallKind)


def record(
    session: Session, *, kind: str, user_id: int | None, unit_id: int | None, phone: str | None = None
) -> InvalidCall:
    """Record one invalid call of ``kind`` taken by ``user_id`` (of ``unit_id``). ``phone``: what the desk's phone
    field held — kept when it is a phone number, left out otherwise (half-typed, an order's number: the call is
    counted all the same). An unknown kind is refused naming the field ``kind``."""
    try:
        chosen = InvalidCallKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in KINDS)
        raise ValidationFailed(f"kind must be one of {known}, not {kind!r}", details={"field": "kind"}) from None
    kept: str | None = None
    with contextlib.suppress(ValueError):
        kept = phone_number((phone or "").strip() or None)
    call = InvalidCall(kind=chosen.value, citizen_phone=kept, user_id=user_id, unit_id=unit_id)
    session.add(call)
    session.flush()
    return call


@dataclass
class OperatorTally:
    """One operator's invalid calls of the period, by kind."""

    user_id: int | None
    name: str  # their full name (username if none); "" for an account since removed
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


@dataclass
class Tally:
    """A period's invalid calls: how many, per kind (every kind, zero included) and per operator (most first)."""

    period: str
    by_kind: dict[str, int]
    operators: list[OperatorTally]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "total": self.total,
            "by_kind": self.by_kind,
            "by_operator": [
                {"user_id": o.user_id, "name": o.name, "total": o.total, "by_kind": o.by_kind} for o in self.operators
            ],
        }


def tally(session: Session, *, period: Period, units: Iterable[int] | None = None) -> Tally:
    """The invalid calls recorded in ``period``, per kind and per operator — of the operators of ``units`` (a
    scoped reader's: their data scope's units) or, None, of all. One GROUP BY over the table's time index."""
    where = [InvalidCall.created_at >= period.start, InvalidCall.created_at < period.end]
    if units is not None:
        where.append(InvalidCall.unit_id.in_(sorted(set(units))))
    rows = session.execute(
        select(InvalidCall.user_id, InvalidCall.kind, func.count())
        .where(*where)
        .group_by(InvalidCall.user_id, InvalidCall.kind)
    ).all()
    by_kind = {k.value: 0 for k in KINDS}
    operators: dict[int | None, OperatorTally] = {}
    ids = {user_id for user_id, _, _ in rows if user_id is not None}
    names = {u.id: u.full_name or u.username for u in session.scalars(select(User).where(User.id.in_(sorted(ids))))}
    for user_id, kind, n in rows:
        by_kind[kind] = by_kind.get(kind, 0) + int(n)
        tally_of = operators.setdefault(user_id, OperatorTally(user_id, names.get(user_id, "") if user_id else ""))
        tally_of.by_kind[kind] = tally_of.by_kind.get(kind, 0) + int(n)
    listed = sorted(operators.values(), key=lambda o: (-o.total, o.name, o.user_id or 0))
    return Tally(period.label, by_kind, listed)


@dataclass
class ListedCall:
    """One invalid call as a list shows it: when, its kind, who took it (name and unit as they are now: "" for an
    account or unit since removed) and the phone as recorded (the reader's view masks it)."""

    id: int
    created_at: datetime
    kind: str
    user_id: int | None
    operator: str
    unit_id: int | None
    unit: str
    phone: str | None


def listed(
    session: Session,
    *,
    period: Period,
    units: Iterable[int] | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ListedCall], bool, int]:
    """The invalid calls recorded in ``period`` (of the operators of ``units``, None: all; of one ``kind`` when
    given, an unknown one refused naming the field ``kind``), newest first: a page of ``limit`` after ``offset``,
    whether more follow, and how many there are in all."""
    where = [InvalidCall.created_at >= period.start, InvalidCall.created_at < period.end]
    if units is not None:
        where.append(InvalidCall.unit_id.in_(sorted(set(units))))
    if kind is not None:
        try:
            where.append(InvalidCall.kind == InvalidCallKind(kind).value)
        except ValueError:
            known = ", ".join(k.value for k in KINDS)
            raise ValidationFailed(f"kind must be one of {known}, not {kind!r}", details={"field": "kind"}) from None
    total = int(session.scalar(select(func.count()).select_from(InvalidCall).where(*where)) or 0)
    rows = session.execute(
        select(InvalidCall, User.full_name, User.username, Unit.name)
        .outerjoin(User, User.id == InvalidCall.user_id)
        .outerjoin(Unit, Unit.id == InvalidCall.unit_id)
        .where(*where)
        .order_by(InvalidCall.created_at.desc(), InvalidCall.id.desc())
        .limit(limit + 1)
        .offset(offset)
    ).all()
    calls = [
        ListedCall(
            id=call.id,
            created_at=call.created_at,
            kind=call.kind,
            user_id=call.user_id,
            operator=full_name or username or "",
            unit_id=call.unit_id,
            unit=unit_name or "",
            phone=call.citizen_phone,
        )
        for call, full_name, username, unit_name in rows[:limit]
    ]
    return calls, len(rows) > limit, total
