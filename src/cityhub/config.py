"""Typed settings, read from the environment (prefix ``CITYHUB_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET = "demo-insecure-secret-change-me"
# Where `cityhub demo seed` writes the demo's category classifier, relative to the SQLite database's directory.
DEMO_MODEL_DIR = Path("models") / "demo-classifier"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///data/cityhub.db"
    environment: str = Field("demo", description="demo | development | production")
    secret_key: str = DEMO_SECRET
    timezone: str = "Asia/Shanghai"
    # Working hours of a working day, local time, as (start, end) pairs "HH:MM-HH:MM".
    working_hours: str = "09:00-12:00,13:30-18:00"
    # Share of the time limit after which an order is flagged with a warning (预警).
    sla_warning_share: float = 0.8
    # Prefix of readable order numbers, e.g. BY20261122-000123.
    order_number_prefix: str = "BY"
    # Seconds between two SLA sweeps inside `serve` and `worker`.
    sla_sweep_interval: int = 300
    log_level: str = "INFO"
    # Dispatch (派单): the category classifier artefact (a directory written by `cityhub nlp train`; none: rules
    # alone decide), automatic dispatch at intake, the default per-category probability threshold, and the rule
    # priority from which rules alone may dispatch automatically when no classifier is configured.
    dispatch_model_path: str | None = None
    dispatch_auto: bool = False
    dispatch_threshold: float = Field(0.90, gt=0, le=1)
    dispatch_rule_auto_priority: int = 100
    # Web UI language: Simplified Chinese unless the user switches (cookie). With this on, a browser whose
    # Accept-Language prefers English gets English until the user switches.
    ui_language_from_browser: bool = False
    # Milliseconds a server thread may hold Python's interpreter lock before another thread gets a turn (Python's
    # default is 5). A request that holds the database's write lock hands the interpreter back at every statement
    # and must win it again; with requests busy computing in other threads that wait is up to this long, each
    # time, and every writer queued behind it waits too. Shorter turns keep write transactions short.
    server_switch_interval_ms: float = Field(0.5, gt=0, le=100)
    # In `cityhub serve` on SQLite: how often a background thread checkpoints the WAL (instead of the commit that
    # fills it, under the write lock); 0 = SQLite's own automatic checkpoints.
    sqlite_checkpoint_seconds: float = Field(1.0, ge=0, le=3600)
    # PostgreSQL: a pooled connection unused for longer than this is tested (``SELECT 1``) before a request gets it,
    # and replaced if the server dropped it (restart, idle timeout); 0 = test at every checkout. Connections in
    # steady use are not tested: that round trip was one in ten of an order creation's.
    db_ping_idle_seconds: float = Field(5.0, ge=0, le=3600)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("sla_warning_share")
    @classmethod
    def _valid_share(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError("sla_warning_share must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEMO_SECRET:
            raise ValueError("CITYHUB_SECRET_KEY must be set to a real secret in production")
        return self

    @model_validator(mode="after")
    def _demo_model_by_default(self) -> Settings:
        # In the demo, the classifier `cityhub demo seed` trained beside the SQLite database is the default.
        demo_model = self.demo_model_dir
        if (
            self.dispatch_model_path is None
            and self.environment == "demo"
            and demo_model is not None
            and (demo_model / "model.json").is_file()
        ):
            self.dispatch_model_path = str(demo_model)
        return self

    @property
    def demo_model_dir(self) -> Path | None:
        """``models/demo-classifier`` beside a SQLite database file; None for a server or in-memory database."""
        if not self.is_sqlite:
            return None
        from sqlalchemy.engine import make_url

        database = make_url(self.database_url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database).parent / DEMO_MODEL_DIR

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
