"""``GET /api/v1/admin/log``: the configuration log (:mod:`cityhub.auditlog`), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, field_serializer

from cityhub import auditlog
from cityhub.api.deps import DbSession, Paging, require
from cityhub.auth import permissions
from cityhub.org.views import NO_NUL
from cityhub.timerange import answer_times

router = APIRouter(prefix="/admin", tags=["configuration log"], dependencies=[Depends(require(permissions.LOG_READ))])


class LogEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    actor_user_id: int | None
    area: str
    target: str
    action: str
    changes: dict[str, list[Any]]
    reason: str | None

    @field_serializer("changes", when_used="json")
    def _changes_times(self, changes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return answer_times(changes)  # a time before and after (a rule's valid_until): in UTC, as ``at``


class LogPage(BaseModel):
    items: list[LogEntryRead]
    limit: int
    offset: int
    has_more: bool


@router.get("/log", response_model=LogPage)
def read_log(
    db: DbSession,
    page: Paging,
    area: Annotated[str | None, Query(description=f"one of {', '.join(auditlog.AREAS)}")] = None,
    target: Annotated[
        str | None, Query(max_length=120, pattern=NO_NUL, description="a login name, a sensor's code, a rule's id")
    ] = None,
) -> LogPage:
    """Who changed accounts, sensors, alarm and routing rules and thresholds, knowledge entries, when, from what to what
    (``changes``: ``{field: [before, after]}``) and why — newest first."""
    rows, more = auditlog.entries(db, area=area, target=target, limit=page.limit, offset=page.offset)
    return LogPage(
        items=[LogEntryRead.model_validate(r) for r in rows], limit=page.limit, offset=page.offset, has_more=more
    )
