"""Delivery settings, read from the environment with the prefix ``CITYHUB_NOTIFY_``."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYHUB_NOTIFY_", env_file=".env", extra="ignore")

    # Seconds between two runs of the ``notify-deliver`` job.
    interval: int = Field(5, ge=1)
    # Messages claimed per round trip; the lease must cover sending a whole batch.
    batch_size: int = Field(20, ge=1)
    # How long a claim holds: a worker killed mid-send leaves rows that others take over after this.
    lease_seconds: float = Field(300.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    # Exponential backoff: base × 2^(attempt-1), capped, with equal jitter (half fixed, half random).
    backoff_base_seconds: float = Field(30.0, ge=0)
    backoff_cap_seconds: float = Field(3600.0, ge=0)
    # One job run stops claiming after this long, so the worker's other jobs keep their turn.
    max_run_seconds: float = Field(60.0, gt=0)


@lru_cache
def get_notify_settings() -> NotifySettings:
    return NotifySettings()
