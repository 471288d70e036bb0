"""The ``notify-deliver`` job: send what the outbox holds, retry what failed, take over expired leases; the
``notify-prune`` job: delete what was delivered long ago, so the outbox does not grow for ever; and the
``notice-prune`` job: delete the staff notices read long ago (:func:`cityhub.notify.notices.prune`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cityhub.db import rowcount, utcnow
from cityhub.notify.config import get_notify_settings
from cityhub.notify.models import OutboxMessage, OutboxStatus
from cityhub.notify.service import deliver_due


def notify_deliver(session: Session) -> dict[str, Any]:
    """Deliver every due outbox message (commits as it goes; see :func:`deliver_due`)."""
    return deliver_due(session)


def interval() -> int:
    return get_notify_settings().interval


def notify_prune(session: Session) -> dict[str, Any]:
    """Delete messages delivered more than ``CITYHUB_NOTIFY_KEEP_SENT_DAYS`` ago (0: none)."""
    days = get_notify_settings().keep_sent_days
    if days == 0:
        return {"deleted": 0, "keep_sent_days": 0}
    before = utcnow() - timedelta(days=days)
    result = session.execute(
        delete(OutboxMessage).where(OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.sent_at < before)
    )
    return {"deleted": rowcount(result), "keep_sent_days": days}


def notice_prune(session: Session) -> dict[str, Any]:
    """Delete staff notices read more than ``CITYHUB_NOTIFY_NOTICE_KEEP_READ_DAYS`` ago (0: none)."""
    from cityhub.notify.notices import prune

    return prune(session)
