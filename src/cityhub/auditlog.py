"""The configuration log (操作日志): who changed what the platform runs by, when, from what to what, and why.

An order's own trail is its audit trail (``order_events``); an alarm's is ``alarm_events``. Who may do what, and
what decides how orders and alarms are handled — units, accounts and their roles, API clients and their keys,
categories, time-limit rules and the working calendar, sensors and their places, alarm rules and their limits,
routing rules and automatic-dispatch thresholds, the knowledge base's entries that 秒回 answers citizens from — change
too, and a supervisor asking why a flood did not alarm needs to see that the limit was raised last week, and by
whom. Each such change writes one :class:`LogEntry` in the caller's transaction (:func:`record`): the area and the
thing changed, the action, the fields that changed as ``{field: [before, after]}`` (a creation: ``[null, value]``, a
deletion: ``[value, null]``), the actor and a reason.

Read by administrators: ``GET /api/v1/admin/log``, the page ``/admin/log`` (系统日志), ``cityhub admin-log``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cityhub.db import Base, utcnow
from cityhub.errors import ValidationFailed

# What the log covers, each named by how its things are named in ``target`` (a sensor's code, a rule's id).
AREAS = (
    "unit",
    "user",
    "api_client",
    "category",
    "sla_rule",
    "calendar_day",
    "sensor",
    "alarm_rule",
    "dispatch_rule",
    "dispatch_threshold",
    "kb_entry",
    "webhook",
)

BigId = BigInteger().with_variant(Integer, "sqlite")


class LogEntry(Base):
    __tablename__ = "admin_log"
    __table_args__ = (Index("ix_admin_log_target", "area", "target", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    area: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(20))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(String(500))


def snapshot(thing: Any, names: Iterable[str]) -> dict[str, Any]:
    """The attributes ``names`` of ``thing``: what the log compares before and after a change."""
    return {name: getattr(thing, name) for name in names}


def _plain(value: Any) -> Any:
    """A value as JSON keeps it (times as ISO 8601 text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def changes_between(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for every field whose value differs between the two (a creation, no ``before``:
    every field of ``after``; a deletion, no ``after``: every field of ``before``)."""
    old, new = before or {}, after or {}
    names = list(new) + [name for name in old if name not in new]
    pairs = {name: [_plain(old.get(name)), _plain(new.get(name))] for name in names}
    if before is None or after is None:
        return pairs
    return {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}


def record(
    session: Session,
    *,
    actor: Any,
    area: str,
    target: str,
    action: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> LogEntry | None:
    """Log one change of ``area``'s ``target`` by ``actor`` (a :class:`~cityhub.workorders.service.Actor`, None: the
    system). An update that changed nothing is not logged (None)."""
    changes = changes_between(before, after)
    if action == "update" and not changes and not reason:
        return None
    entry = LogEntry(
        actor=actor.name if actor is not None else "system",
        actor_user_id=actor.user_id if actor is not None else None,
        area=area,
        target=target[:120],
        action=action,
        changes=changes,
        reason=reason[:500] if reason else None,
    )
    session.add(entry)
    return entry


def entries(
    session: Session,
    *,
    area: str | None = None,
    target: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[LogEntry], bool]:
    """The newest entries first (of one area, and one thing of it); and whether there are more. ValidationFailed for
    an area the log does not cover."""
    if area and area not in AREAS:
        raise ValidationFailed(f"unknown area '{area}' (one of {', '.join(AREAS)})", details={"field": "area"})
    query = select(LogEntry).order_by(LogEntry.id.desc())
    if area:
        query = query.where(LogEntry.area == area)
    if target:
        query = query.where(LogEntry.target == target)
    rows = list(session.scalars(query.limit(limit + 1).offset(offset)))
    return rows[:limit], len(rows) > limit
