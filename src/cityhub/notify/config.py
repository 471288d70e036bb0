"""Delivery settings, read from the environment with the prefix ``CITYHUB_NOTIFY_``."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifySettings(BaseSettings):
    """Delivery of notifications from the outbox (webhooks): batching, leases, timeouts and retries."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_NOTIFY_", env_file=".env", extra="ignore")

    interval: int = Field(5, ge=1, description="Seconds between two runs of the `notify-deliver` job.")
    batch_size: int = Field(
        20, ge=1, description="Messages claimed per round trip; the lease must cover sending a whole batch."
    )
    lease_seconds: float = Field(
        300.0,
        gt=0,
        description="How long a claim holds: rows left by a worker killed mid-send are taken over after this.",
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout, in seconds, of one delivery attempt.")
    max_attempts: int = Field(
        8, ge=1, description="Attempts after which a message is dead until `cityhub notify outbox retry` revives it."
    )
    # Exponential backoff: base × 2^(attempt-1), capped, with equal jitter (half fixed, half random).
    backoff_base_seconds: float = Field(
        30.0,
        ge=0,
        description="Retry delay after the first failure, doubling with every further attempt (half of it random).",
    )
    backoff_cap_seconds: float = Field(3600.0, ge=0, description="Longest delay between two attempts.")
    keep_sent_days: int = Field(
        30,
        ge=0,
        description="Delivered messages are deleted by the `notify-prune` job this many days after they were sent "
        "(0: kept for ever). Failed and dead messages are kept until delivered or their subscription is removed.",
    )
    notice_keep_read_days: int = Field(
        90,
        ge=0,
        description="Staff notices (消息提醒) are deleted by the `notice-prune` job this many days after their reader "
        "read them (0: kept for ever). Unread notices are kept.",
    )
    max_run_seconds: float = Field(
        60.0,
        gt=0,
        description="One job run stops claiming after this long, so the worker's other jobs keep their turn.",
    )
    sms_signature: str = Field(
        "12345",
        min_length=1,
        max_length=20,
        description="The signature a citizen's text message begins with, in 【】 (topic `citizen`): the hotline's name "
        "as the SMS gateway registered it.",
    )
    sms_rating: bool = Field(
        True,
        description="The text message of an answer asks the citizen to rate it by replying 1, 2 or 3 (短信回访), which "
        "the SMS relay posts to `POST /api/v1/sms/inbound`; false when the relay does not pass replies on (the message "
        "then names the progress lookup for rating alone).",
    )
    track_url: str | None = Field(
        None,
        max_length=200,
        description="The public address of the progress lookup (`https://…/track`) a citizen's text message names; "
        "unset: it says 办理进度查询 on the hotline's website.",
    )


@lru_cache
def get_notify_settings() -> NotifySettings:
    return NotifySettings()
