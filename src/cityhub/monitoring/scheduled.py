"""The monitoring jobs, registered in :mod:`cityhub.jobs`: ``alarm-escalation`` escalates the alarms left
unacknowledged past their rule's time (:func:`cityhub.monitoring.service.escalate_due`); ``sensor-silence`` raises
the silence alarm of each sensor quiet for longer than it may be and clears those of sensors no longer silent
(:func:`cityhub.monitoring.service.detect_silence`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cityhub.monitoring.settings import get_monitoring_settings


def alarm_escalation(session: Session) -> dict[str, Any]:
    from cityhub.monitoring.service import escalate_due

    return dict(escalate_due(session))


def interval() -> int:
    return get_monitoring_settings().alarm_escalation_interval


def sensor_silence(session: Session) -> dict[str, Any]:
    from cityhub.monitoring.service import detect_silence

    return dict(detect_silence(session))
