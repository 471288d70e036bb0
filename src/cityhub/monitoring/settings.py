"""Settings of monitoring (readings' time tolerance, batch size, alarm escalation, silent sensors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitoringSettings(BaseSettings):
    """Sensor readings and alarms."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    reading_future_seconds: int = Field(
        300,
        ge=0,
        le=86_400,
        description="A sensor reading may be timed at most this many seconds after the server's clock (devices' "
        "clocks drift); a later one is rejected.",
    )
    alarm_order_min_severity: Literal["info", "warning", "critical"] = Field(
        "info",
        description="A raised alarm opens an order (when its rule says so) only at this severity or above: info "
        "(every rule that opens orders), warning, critical.",
    )
    reading_batch_max: int = Field(
        50_000,
        ge=1,
        description="Most readings one API request may carry (a larger batch is refused whole, 422 naming "
        "readings); files through the CLI are read in batches of this size.",
    )
    alarm_escalate_after_minutes: int = Field(
        30,
        ge=0,
        le=7 * 24 * 60,
        description="An alarm still active (not acknowledged) this many minutes after it was raised is escalated "
        "once: an event in its trail, an escalation notification on the alarm topic, its order's urgency raised. A "
        "rule's own escalate_after_minutes takes precedence; 0: never (for rules without their own).",
    )
    alarm_escalation_interval: int = Field(
        60, ge=5, le=86_400, description="Seconds between two runs of the alarm-escalation job."
    )
    sensor_silent_after_minutes: int = Field(
        120,
        ge=0,
        le=7 * 24 * 60,
        description="A sensor in service with no reading for this many minutes (since its last, or since it was "
        "registered) is silent (离线): its status says so and the sensor-silence job raises its silence alarm, cleared "
        "when readings resume. A sensor's own silent_after_minutes takes precedence; 0: never (for sensors without "
        "their own). Two hours: two missed reports of an hourly station.",
    )
    sensor_rearm_minutes: int = Field(
        30,
        ge=0,
        le=7 * 24 * 60,
        description="A rule crossing again on a sensor within this many minutes of that sensor's alarm of the rule "
        "being cleared automatically (readings back within the limit) reopens that alarm — its count, last "
        "crossing and times raised again kept on it, no new alarm, no new order — instead of raising a new one: a "
        "value flapping around the limit is one alarm. A clear by a person, a retirement or a rule deactivated is "
        "final; an alarm whose order has been answered is not reopened. 0: never reopen.",
    )
    alarm_join_within_m: float = Field(
        50.0,
        ge=0,
        le=5_000,
        description="A new alarm of a threshold rule joins the open order of another sensor's alarm of the same kind "
        "of sensor and the same metric — for cameras the same kind of detection — within this many metres (two "
        "cameras seeing one garbage pile, two gauges in one flooded tunnel), when that alarm is still open or last "
        "crossed within alarm_join_window_minutes: one order, the new alarm in its trail and counted on it, instead "
        "of another order for the same problem. 0: never (a sensor's own alarms still join its open order, whatever "
        "the distance and time).",
    )
    alarm_join_window_minutes: int = Field(
        24 * 60,
        ge=1,
        le=30 * 24 * 60,
        description="How recent the other sensor's alarm on the open order must be, once cleared (its last crossing), "
        "for a new alarm near it to join that order (alarm_join_within_m); an alarm still open always is.",
    )


def get_monitoring_settings() -> MonitoringSettings:
    # Not cached: read once per ingestion, so tests and a changed environment take effect at once.
    return MonitoringSettings()
