"""Typed settings, read from the environment (prefix ``CITYHUB_``) and an optional ``.env`` file.

Also the registry of every settings class (:func:`settings_classes`, :func:`settings_fields`), from which
``cityhub config show`` and ``cityhub config reference`` (docs/configuration.md) are made.
"""

from __future__ import annotations

import logging
import os
import re
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET = "demo-insecure-secret-change-me"
MIN_SECRET_LENGTH = 32
SECRET_COMMAND = """python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"""
DATABASE_URL_FORMS = "use sqlite:///PATH or postgresql://USER:PW@HOST/DB"
# A password (or user) with an '@' as it is: the driver would take what follows it for the host.
DATABASE_URL_AT = (
    "more than one '@' in it: percent-encode the special characters of the user and password "
    "(@ as %40, / as %2F, : as %3A, # as %23, % as %25)"
)
POSTGRES_DRIVER = "postgresql+psycopg"  # the driver cityhub ships with (psycopg 3)
# Where `cityhub demo seed` writes the demo's category classifier, relative to the SQLite database's directory.
DEMO_MODEL_DIR = Path("models") / "demo-classifier"


class Settings(BaseSettings):
    """Core settings: database, environment, working time, SLA, dispatch, web UI and server tuning."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///data/cityhub.db",
        description="SQLAlchemy URL of the database: SQLite (embedded, a file: sqlite:///PATH, relative to the "
        "working directory, or sqlite:////ABSOLUTE/PATH) or PostgreSQL (production), e.g. "
        "postgresql://user:password@host:5432/cityhub (special characters of the user and password "
        "percent-encoded: @ as %40, / as %2F, : as %3A, # as %23, % as %25); postgres:// and postgresql:// are read "
        f"as {POSTGRES_DRIVER}://. Anything else is refused.",
    )
    environment: Literal["demo", "development", "production"] = Field(
        "demo",
        description="One of demo, development, production. Production needs CITYHUB_DATABASE_URL set and a real "
        "secret key; only demo seeds the demo district with its known passwords.",
    )
    secret_key: str = Field(
        DEMO_SECRET,
        description="Server secret that signs the OIDC sign-on state; must be set to a real secret in production "
        f"(the built-in demo value and anything shorter than {MIN_SECRET_LENGTH} characters are refused there; "
        f"generate one with {SECRET_COMMAND}).",
    )
    timezone: str = Field(
        "Asia/Shanghai",
        description="IANA time zone in which working hours and days are computed; times are stored in UTC.",
    )
    working_hours: str = Field(
        "09:00-12:00,13:30-18:00",
        description='Working intervals of a working day, local time, as comma-separated "HH:MM-HH:MM" pairs, in '
        "order, not overlapping, each within one day (09:00-18:00, not 9-18 or 18:00-09:00).",
    )
    sla_warning_share: float = Field(
        0.8,
        description="Share of an order's time limit after which it is flagged with a warning (预警); "
        "strictly between 0 and 1.",
    )
    order_number_prefix: str = Field("BY", description="Prefix of readable order numbers, e.g. BY20261122-000123.")
    sla_sweep_interval: int = Field(
        300, ge=1, description="Seconds between two SLA sweeps inside `serve` and `worker`."
    )
    hot_topics_interval: int = Field(
        3600,
        ge=60,
        description="Seconds between two runs of the `hot-topics` job, which mines new orders into the hot topics.",
    )
    log_level: str = Field(
        "INFO", description="Level of cityhub's own log, of migrations and of the web server (DEBUG … CRITICAL)."
    )
    # Dispatch (派单): the classifier decides the category; rules and thresholds decide whether dispatch is automatic.
    dispatch_model_path: str | None = Field(
        None,
        description="Category classifier artefact (a directory written by `cityhub nlp train`); unset: rules alone "
        "decide (in the demo, the classifier `cityhub demo seed` trained beside the SQLite database).",
    )
    dispatch_auto: bool = Field(False, description="Dispatch orders automatically at intake when confident enough.")
    dispatch_in_background: bool = Field(
        True,
        description="Intake records each new order for the background dispatcher and answers at once; the "
        "dispatcher (a process of `cityhub serve` at a lower CPU priority, a thread of `cityhub worker`) decides "
        "soon after — within a few hundred milliseconds while the machine has room: with automatic dispatch on it "
        "dispatches the confident ones, with it off it keeps each decision (category, suggested units, why) for the "
        "dispatcher's queue. It also takes the duplicate check of orders created over the API and Open311 "
        "(CITYHUB_DEDUPE_IN_BACKGROUND). false: automatic dispatch and that check are done inside the request that "
        "creates the order, and no decision is kept without automatic dispatch.",
    )
    dispatch_poll_ms: float = Field(
        200.0,
        gt=0,
        le=60_000,
        description="Milliseconds the background dispatcher waits before looking again when no order is waiting.",
    )
    status_counts_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Seconds a server process reuses its count of orders by state and time-limit mark for /healthz "
        "and the public status page (a count walks the whole table: about half a second at a million orders on "
        "PostgreSQL, too much for every health probe or anonymous visit). 0: count every time.",
    )
    dispatch_threshold: float = Field(
        0.90,
        gt=0,
        le=1,
        description="Default per-category classifier probability from which an order is dispatched automatically.",
    )
    dispatch_min_evidence: int = Field(
        3,
        ge=0,
        description="An order the classifier knows fewer phrases of than this (its char n-grams of two or more "
        "characters with a hanzi that were seen in training: too few in a greeting, a test string, gibberish, "
        "English) waits for a dispatcher, however high the category's probability; 0: no such check.",
    )
    dispatch_rule_auto_priority: int = Field(
        100,
        description="Without a classifier, a routing rule of at least this priority may dispatch automatically.",
    )
    open311_channels: str = Field(
        "all",
        description="Which orders the public Open311 GETs (requests, one request, servicerequestupdates) publish, "
        "anonymised: all, or the channels as a comma-separated list, e.g. web,app,mailbox to keep hotline calls, "
        "grid reports and machine alarms out. A client reading with its own key always gets the requests it posted.",
    )
    ui_language_from_browser: bool = Field(
        False,
        description="Web UI in Simplified Chinese unless the user switches (cookie); true: a browser whose "
        "Accept-Language prefers English gets English until the user switches.",
    )
    # A request that holds the database's write lock hands the interpreter back at every statement and must win it
    # again; with requests busy computing in other threads that wait is up to this long, each time, and every writer
    # queued behind it waits too. Shorter turns keep write transactions short.
    server_switch_interval_ms: float = Field(
        0.5,
        gt=0,
        le=100,
        description="Milliseconds a server thread may hold Python's interpreter lock before another thread gets a "
        "turn (Python's default is 5); shorter turns keep write transactions short.",
    )
    sqlite_checkpoint_seconds: float = Field(
        1.0,
        ge=0,
        le=3600,
        description="In `cityhub serve` on SQLite: how often a background thread checkpoints the WAL (instead of "
        "the commit that fills it, under the write lock); 0: SQLite's own automatic checkpoints.",
    )
    # Connections in steady use are not tested: that round trip was one in ten of an order creation's.
    db_ping_idle_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="PostgreSQL: a pooled connection unused for longer than this is tested (SELECT 1) before use "
        "and replaced if the server dropped it; 0: test at every checkout.",
    )

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _valid_log_level(cls, value: str) -> str:
        name = value.strip().upper()
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"unknown log level {value!r} (DEBUG, INFO, WARNING, ERROR or CRITICAL)")
        return name

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("working_hours")
    @classmethod
    def _valid_working_hours(cls, value: str) -> str:
        # The calendar's own parser, so what passes here is what the working calendar accepts.
        from cityhub.workorders.calendar import parse_working_hours

        parse_working_hours(value)
        return value

    @field_validator("open311_channels")
    @classmethod
    def _valid_open311_channels(cls, value: str) -> str:
        from cityhub.workorders.models import Channel

        names = [v.strip() for v in value.split(",") if v.strip()]
        if names == ["all"]:
            return "all"
        unknown = [n for n in names if n not in {c.value for c in Channel}]
        if unknown or not names:
            known = ", ".join(c.value for c in Channel)
            raise ValueError(f"unknown channel {unknown[0] if unknown else value!r} (all, or some of: {known})")
        return ",".join(names)

    @property
    def open311_channel_list(self) -> list[str] | None:
        """The channels Open311 publishes; None: all."""
        return None if self.open311_channels == "all" else self.open311_channels.split(",")

    @field_validator("sla_warning_share")
    @classmethod
    def _valid_share(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError("sla_warning_share must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _production_settings_are_explicit(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if "database_url" not in self.model_fields_set:
            # A misspelt variable must not leave production on a new, empty SQLite file.
            problems.append(
                "CITYHUB_DATABASE_URL must be set in production (the default is a new SQLite file under ./data)"
            )
        if self.secret_key == DEMO_SECRET:
            problems.append("CITYHUB_SECRET_KEY must be set to a real secret in production")
        elif len(self.secret_key) < MIN_SECRET_LENGTH:
            problems.append(
                f"CITYHUB_SECRET_KEY must have at least {MIN_SECRET_LENGTH} characters in production; generate one "
                f"with: {SECRET_COMMAND}"
            )
        if problems:
            raise ValueError("; ".join(problems))
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


def normalise_database_url(url: str) -> str:
    """``url`` as cityhub opens it: SQLite as given, PostgreSQL (``postgres://``, ``postgresql://`` — what hosting
    providers hand out — or ``postgresql+psycopg://``) through psycopg; ValueError for anything else, which would
    otherwise fail at the first connection with a driver's traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        drivername = make_url(url).drivername
    except (ArgumentError, ValueError):
        raise ValueError(DATABASE_URL_FORMS) from None
    if drivername in ("sqlite", "sqlite+pysqlite"):
        return url
    if drivername in ("postgres", "postgresql", POSTGRES_DRIVER):
        if url.count("@") > 1:  # else "failed to resolve host" naming part of the password, at the first connection
            raise ValueError(DATABASE_URL_AT)
        return POSTGRES_DRIVER + url[url.index("://") :]  # the rest as the operator spelled it
    raise ValueError(DATABASE_URL_FORMS)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def log_level() -> str:
    """``CITYHUB_LOG_LEVEL``, or INFO while the settings are invalid (the command that reads them names the problem)."""
    from pydantic import ValidationError

    try:
        return get_settings().log_level
    except ValidationError:
        return "INFO"


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging in cityhub's one format (:data:`LOG_FORMAT`): its own lines and its access log carried no
    time (``INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK``), so a log kept in a file could not say when a request
    came. Its handlers stay its own — lines on stderr, the access log on stdout —, without colours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": LOG_FORMAT, "use_colors": False},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(asctime)s %(levelname)s %(name)s: %(client_addr)s - "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


class _AlembicPreamble(logging.Filter):
    """Drops the two INFO lines Alembic opens every migration command with — ``Context impl SQLiteImpl.``, ``Will
    assume non-transactional DDL.`` —, which `db upgrade` with nothing to do and `db restore` printed as their only
    log: nothing an operator acts on. Its ``Running upgrade …`` lines, its warnings and errors pass."""

    PREAMBLE = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and str(record.msg).startswith(self.PREAMBLE))


def configure_logging() -> None:
    """One log format and level for every cityhub process: the CLI, each server process ``cityhub serve`` starts
    and the dispatcher's process (a process started with ``spawn`` has no logging set up of its own).

    A crash in native code (SIGSEGV, SIGABRT …) also writes every thread's Python stack to stderr, beside the log:
    the supervisor's "ended (exit code -11)" line then has the place it happened above it."""
    import faulthandler

    if not faulthandler.is_enabled():
        faulthandler.enable()
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    for name in ("cityhub", "alembic.runtime.migration", "uvicorn"):
        logging.getLogger(name).setLevel(log_level())
    migration = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, _AlembicPreamble) for f in migration.filters):
        migration.addFilter(_AlembicPreamble())


# --------------------------------------------------------------------------------------------- registry
# Every settings class of the application, wherever it lives: `cityhub config show` reads them all, and
# `cityhub config reference` writes docs/configuration.md from their fields (a test finds every BaseSettings
# subclass under src/cityhub and checks it is listed here).

SECRET_WORDS = ("secret", "password")
MASK = "***"


def is_secret(name: str) -> bool:
    """Whether a setting's value is hidden whole: a secret, a password, a bearer token (``metrics_token``; not
    ``api_token_days``)."""
    name = name.lower()
    return any(word in name for word in SECRET_WORDS) or name.endswith("_token")


def settings_classes() -> tuple[tuple[str, type[BaseSettings]], ...]:
    """(area title, class) of every settings class, in reference order; imported here to avoid import cycles."""
    from cityhub.api.gate import GateSettings
    from cityhub.auth.settings import AuthSettings
    from cityhub.backup import BackupSettings
    from cityhub.demo.extras import DemoSettings
    from cityhub.intake.dedupe import DedupeSettings
    from cityhub.metrics import MetricsSettings
    from cityhub.monitoring.settings import MonitoringSettings
    from cityhub.notify.config import NotifySettings
    from cityhub.workorders.files import FileSettings

    return (
        ("Core", Settings),
        ("Identity: sessions, logins, API tokens, OIDC", AuthSettings),
        ("HTTP admission control", GateSettings),
        ("Prometheus metrics", MetricsSettings),
        ("Duplicates and similar cases at intake", DedupeSettings),
        ("Files attached to orders", FileSettings),
        ("Database backups", BackupSettings),
        ("Notification delivery", NotifySettings),
        ("Monitoring: sensor readings and alarms", MonitoringSettings),
        ("Demo district", DemoSettings),
    )


@dataclass(frozen=True)
class SettingField:
    """One setting: a field of a settings class and the environment variable that sets it."""

    area: str
    settings_class: type[BaseSettings]
    name: str
    env: str
    type: str  # e.g. "float", "int | None"
    constraints: tuple[str, ...]  # e.g. ("> 0", "≤ 1")
    default: Any
    description: str
    secret: bool  # the whole value is hidden (secret_key, oidc_client_secret, *password*)
    url_password: bool  # a URL whose password part is hidden (database_url)

    def display(self, value: Any) -> Any:
        """``value`` as it may be shown: a set secret is ``***``, a URL's password is masked."""
        if self.secret:
            return MASK if value not in (None, "") else value
        if isinstance(value, str) and "://" in value:
            return mask_url(value)
        return value


def settings_fields() -> Iterator[SettingField]:
    """Every field of every settings class, in reference order."""
    for area, cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            env = alias if isinstance(alias, str) else prefix + name
            yield SettingField(
                area=area,
                settings_class=cls,
                name=name,
                env=env.upper(),
                type=_type_name(info.annotation),
                constraints=tuple(c for c in map(_constraint, info.metadata) if c),
                default=None if info.default is PydanticUndefined else info.default,
                description=info.description or "",
                secret=is_secret(name),
                url_password=name.endswith("_url"),
            )


def mask_url(url: str) -> str:
    """The URL with its password (user info, or a ``password``/``secret`` query parameter) shown as ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if url.count("@") > 1:  # an '@' not percent-encoded (DATABASE_URL_AT): who knows where the password ends
        return re.sub(r"://.*@", f"://{MASK}@", url, count=1)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^/?#@:]*:)[^/?#@]*@", rf"\g<1>{MASK}@", url)
    hidden = "cityhubmasked"  # rendered unquoted, unlike ``***`` in a query string
    query = {
        key: hidden if any(word in key.lower() for word in SECRET_WORDS) else value
        for key, value in parsed.query.items()
    }
    if parsed.password is None and query == dict(parsed.query):
        return url  # nothing to hide: keep the operator's spelling
    return parsed.set(query=query).render_as_string(hide_password=True).replace(hidden, MASK)


# CITYHUB_ variables that are no setting: set by `cityhub serve` for its own server processes, and the developers'
# tools (tests, the PostgreSQL test cluster, benchmarks).
PREFIX = "CITYHUB_"
OTHER_VARIABLES = frozenset(
    {
        "CITYHUB_RUN_SCHEDULER",
        "CITYHUB_WARM_UP",
        "CITYHUB_PG_CLUSTER_DIR",
        "CITYHUB_EXPLORE_DIR",
        "CITYHUB_BENCH_RESULTS",
    }
)
OTHER_PREFIXES = ("CITYHUB_TEST_", "CITYHUB_FUZZ_")


def unknown_variable_warnings(environ: Mapping[str, str] | None = None, dotenv: Path = Path(".env")) -> list[str]:
    """One line per ``CITYHUB_*`` name in the environment or in ``.env`` that no setting reads (a typo such as
    CITYHUB_DATABSE_URL leaves the setting at its default), naming the closest known name."""
    import difflib

    from dotenv import dotenv_values

    known = {f.env for f in settings_fields()}
    found: dict[str, str] = {}
    if dotenv.is_file():
        for name in dotenv_values(dotenv):
            found.setdefault(name.upper(), ".env")
    for name in os.environ if environ is None else environ:
        found[name.upper()] = "the environment"  # read first, as the settings are
    lines = []
    for name, source in sorted(found.items()):
        if (
            not name.startswith("CITYHUB_")
            or name in known
            or name in OTHER_VARIABLES
            or name.startswith(OTHER_PREFIXES)
        ):
            continue
        # Compared without the prefix every name shares, which would make any two names look alike.
        close = difflib.get_close_matches(name.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in known], n=1)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
        lines.append(f"{name} (in {source}) is not a cityhub setting and is ignored{hint}")
    return lines


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in get_args(annotation))
    if annotation is type(None):
        return "None"
    if get_origin(annotation) is Literal:
        return " / ".join(str(arg) for arg in get_args(annotation))
    return str(getattr(annotation, "__name__", annotation))


_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _constraint(meta: Any) -> str:
    for attr, symbol in _BOUNDS:
        if hasattr(meta, attr):
            return f"{symbol} {getattr(meta, attr)}"
    return ""
