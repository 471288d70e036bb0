"""The ``notify-deliver`` job: send what the outbox holds, retry what failed, take over expired leases."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cityhub.notify.config import get_notify_settings
from cityhub.notify.service import deliver_due


def notify_deliver(session: Session) -> dict[str, Any]:
    """Deliver every due outbox message (commits as it goes; see :func:`deliver_due`)."""
    return deliver_due(session)


def interval() -> int:
    return get_notify_settings().interval
