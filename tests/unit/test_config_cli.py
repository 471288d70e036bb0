"""The settings registry, `cityhub config show` and the generated reference (docs/configuration.md)."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from cityhub.config import settings_classes, settings_fields
from cityhub.config_cli import REFERENCE_COMMAND, render_reference

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "cityhub"
DOC = ROOT / "docs" / "configuration.md"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting in the environment, and a working directory without ``.env``: every value is the default."""
    for f in settings_fields():
        monkeypatch.delenv(f.env, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _cli(*args: str) -> Any:
    from cityhub.cli import _mount, app

    _mount()
    return CliRunner().invoke(app, ["config", *args])


def _show_json() -> dict[str, dict[str, Any]]:
    result = _cli("show", "--json")
    assert result.exit_code == 0, result.output
    return {row["env"]: row for row in json.loads(result.stdout)}


# --------------------------------------------------------------------------------------------- registry


def _settings_classes_in_source() -> set[type[BaseSettings]]:
    """Every BaseSettings subclass defined under src/cityhub: classes whose bases end in 'Settings', imported."""
    found: set[type[BaseSettings]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and any(
                (
                    base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
                ).endswith("Settings")
                for base in node.bases
            )
        ]
        if not names:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        found |= {cls for name in names if issubclass(cls := getattr(module, name), BaseSettings)}
    return found


def test_every_settings_class_is_registered() -> None:
    in_source = _settings_classes_in_source()
    registered = {cls for _, cls in settings_classes()}
    assert len(in_source) >= 6  # the scan sees the known classes (Settings, AuthSettings, …)
    missing = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in in_source - registered)
    assert not missing, f"settings classes missing from cityhub.config.settings_classes(): {missing}"


def test_every_setting_has_a_description_and_its_own_variable() -> None:
    fields = list(settings_fields())
    assert not [f.env for f in fields if not f.description.strip()]
    envs = [f.env for f in fields]
    assert len(envs) == len(set(envs))
    assert all(re.fullmatch(r"CITYHUB_[A-Z0-9_]+", env) for env in envs)
    by_env = {f.env: f for f in fields}
    assert by_env["CITYHUB_NOTIFY_BATCH_SIZE"].name == "batch_size"  # a longer prefix is part of the variable
    assert {env for env, f in by_env.items() if f.secret} == {
        "CITYHUB_SECRET_KEY",
        "CITYHUB_OIDC_CLIENT_SECRET",
        "CITYHUB_DEMO_PASSWORD",
        "CITYHUB_METRICS_TOKEN",  # a bearer token (``_token``), not CITYHUB_API_TOKEN_DAYS or *_TOKEN_CACHE_SECONDS
    }
    assert by_env["CITYHUB_DATABASE_URL"].url_password


# --------------------------------------------------------------------------------------------- reference


def test_docs_configuration_is_the_generated_reference() -> None:
    assert DOC.read_text(encoding="utf-8") == render_reference(), (
        f"docs/configuration.md is stale; regenerate it with `{REFERENCE_COMMAND}`"
    )


def test_every_cityhub_variable_the_docs_name_is_read_by_cityhub() -> None:
    """README.md and docs/*.md name only variables cityhub reads — a setting, or a family of settings written as a
    prefix (`CITYHUB_LOGIN_*`, prefix `CITYHUB_DEDUPE_`) — or the developers' own, which the unknown-name warning
    leaves alone too; and the misspelt name that shows that warning (operations.md §2, §9)."""
    from cityhub.config import OTHER_PREFIXES, OTHER_VARIABLES

    known = {f.env for f in settings_fields()}
    typo = "CITYHUB_DATABSE_URL"
    assert typo not in known
    unknown = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for name in sorted(set(re.findall(r"CITYHUB_[A-Z0-9_]*[A-Z0-9_*]", path.read_text(encoding="utf-8")))):
            if name.endswith(("_", "*")):  # a family
                ok = any(env.startswith(name.rstrip("*")) for env in known)
            else:
                ok = name in known or name in OTHER_VARIABLES or name.startswith(OTHER_PREFIXES) or name == typo
            if not ok:
                unknown.append(f"{path.relative_to(ROOT)}: {name}")
    assert unknown == [], "no such setting (src/cityhub/config.py and the settings classes it lists)"


def test_reference_is_deterministic_and_ignores_the_environment(clean_env, monkeypatch) -> None:
    first = _cli("reference")
    assert first.exit_code == 0, first.output
    assert first.stdout == render_reference()
    monkeypatch.setenv("CITYHUB_SLA_SWEEP_INTERVAL", "60")
    monkeypatch.setenv("CITYHUB_SECRET_KEY", "a-real-secret-value")
    (clean_env / ".env").write_text("CITYHUB_NOTIFY_BATCH_SIZE=7\n", encoding="utf-8")
    second = _cli("reference")
    assert second.stdout == first.stdout
    assert "a-real-secret-value" not in second.stdout


def test_reference_has_a_section_per_class_and_a_row_per_variable() -> None:
    text = render_reference()
    sections = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert sections == [area for area, _ in settings_classes()]
    rows = re.findall(r"^\| `(CITYHUB_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE)
    assert rows == [f.env for f in settings_fields()]
    assert "| `CITYHUB_DISPATCH_THRESHOLD` | `float` (> 0, ≤ 1) | `0.9` |" in text
    assert "| `CITYHUB_HTTP_CONCURRENCY` | `int \\| None` (≥ 1, ≤ 16) | unset |" in text
    assert "demo-insecure-secret-change-me" not in text  # secrets' defaults are masked too


# --------------------------------------------------------------------------------------------- show


def test_show_masks_secrets_and_the_database_password(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_DATABASE_URL", "postgresql://cityhub:hunter2-pw@db.example:5432/cityhub")
    monkeypatch.setenv("CITYHUB_SECRET_KEY", "s3cret-key-value")
    monkeypatch.setenv("CITYHUB_OIDC_CLIENT_SECRET", "oidc-client-secret-value")
    monkeypatch.setenv("CITYHUB_DEMO_PASSWORD", "demo-pass-value")
    text = _cli("show")
    as_json = _cli("show", "--json")
    for result in (text, as_json):
        assert result.exit_code == 0, result.output
        for secret in ("hunter2-pw", "s3cret-key-value", "oidc-client-secret-value", "demo-pass-value"):
            assert secret not in result.output
    rows = {row["env"]: row for row in json.loads(as_json.stdout)}
    assert rows["CITYHUB_DATABASE_URL"]["value"] == "postgresql+psycopg://cityhub:***@db.example:5432/cityhub"
    for env in ("CITYHUB_SECRET_KEY", "CITYHUB_OIDC_CLIENT_SECRET", "CITYHUB_DEMO_PASSWORD"):
        assert rows[env]["value"] == "***"
        assert rows[env]["secret"] is True
        assert rows[env]["source"] == "environment"
    assert re.search(
        r"^CITYHUB_DATABASE_URL +environment +postgresql\+psycopg://cityhub:\*\*\*@db\.example", text.stdout, re.M
    )
    assert re.search(r"^CITYHUB_SECRET_KEY +environment +\*\*\*$", text.stdout, re.M)


def test_show_a_database_url_without_password_as_is_and_an_unset_secret_as_unset(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_DATABASE_URL", "postgresql://cityhub@db.example/cityhub?sslmode=require")
    rows = _show_json()  # shown as cityhub opens it: through psycopg
    assert rows["CITYHUB_DATABASE_URL"]["value"] == "postgresql+psycopg://cityhub@db.example/cityhub?sslmode=require"
    assert rows["CITYHUB_OIDC_CLIENT_SECRET"]["value"] is None
    assert rows["CITYHUB_OIDC_CLIENT_SECRET"]["source"] == "default"
    assert rows["CITYHUB_SECRET_KEY"]["value"] == "***"  # the demo default is set, so hidden too
    assert rows["CITYHUB_SECRET_KEY"]["source"] == "default"


def test_show_reports_environment_dotenv_and_default(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_SLA_SWEEP_INTERVAL", "60")
    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "false")
    (clean_env / ".env").write_text(
        "CITYHUB_SLA_SWEEP_INTERVAL=999\nCITYHUB_NOTIFY_BATCH_SIZE=7\nCITYHUB_TIMEZONE=Europe/Berlin\n",
        encoding="utf-8",
    )
    rows = _show_json()
    assert (rows["CITYHUB_SLA_SWEEP_INTERVAL"]["value"], rows["CITYHUB_SLA_SWEEP_INTERVAL"]["source"]) == (
        60,
        "environment",  # the environment wins over .env, as in the application
    )
    assert (rows["CITYHUB_DEDUPE_AUTO_MERGE"]["value"], rows["CITYHUB_DEDUPE_AUTO_MERGE"]["source"]) == (
        False,
        "environment",
    )
    assert (rows["CITYHUB_NOTIFY_BATCH_SIZE"]["value"], rows["CITYHUB_NOTIFY_BATCH_SIZE"]["source"]) == (7, ".env")
    assert (rows["CITYHUB_TIMEZONE"]["value"], rows["CITYHUB_TIMEZONE"]["source"]) == ("Europe/Berlin", ".env")
    assert (rows["CITYHUB_LOG_LEVEL"]["value"], rows["CITYHUB_LOG_LEVEL"]["source"]) == ("INFO", "default")
    assert rows["CITYHUB_NOTIFY_BATCH_SIZE"]["class"] == "cityhub.notify.config.NotifySettings"
    assert rows["CITYHUB_NOTIFY_BATCH_SIZE"]["default"] == 20
    text = _cli("show").stdout
    assert re.search(r"^CITYHUB_NOTIFY_BATCH_SIZE +\.env +7$", text, re.M)
    assert re.search(r"^CITYHUB_LOG_LEVEL +default +INFO$", text, re.M)
    assert re.search(r"^CITYHUB_DEDUPE_AUTO_MERGE +environment +false$", text, re.M)


def test_show_marks_a_value_computed_from_other_settings_as_derived(clean_env, monkeypatch) -> None:
    model = clean_env / "models" / "demo-classifier"
    model.mkdir(parents=True)
    (model / "model.json").write_text("{}", encoding="utf-8")
    monkeypatch.setenv("CITYHUB_DATABASE_URL", f"sqlite:///{clean_env / 'cityhub.db'}")
    row = _show_json()["CITYHUB_DISPATCH_MODEL_PATH"]
    assert (row["value"], row["source"], row["default"]) == (str(model), "derived", None)


def test_show_json_lists_every_variable_of_the_reference(clean_env) -> None:
    rows = _show_json()
    in_reference = re.findall(r"^\| `(CITYHUB_[A-Z0-9_]+)` \|", render_reference(), flags=re.MULTILINE)
    assert list(rows) == in_reference
    assert all(row["source"] == "default" for row in rows.values())
    assert rows["CITYHUB_SLA_WARNING_SHARE"]["value"] == 0.8


@pytest.mark.parametrize(
    ("env", "value", "problem"),
    [
        ("CITYHUB_SLA_WARNING_SHARE", "2", "sla_warning_share must be between 0 and 1"),
        ("CITYHUB_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("CITYHUB_LOG_LEVEL", "loud", "unknown log level 'loud'"),
        ("CITYHUB_NOTIFY_BATCH_SIZE", "0", "greater than or equal to 1"),
        # a job interval of no time (or less) would sweep every order at each look of the scheduler
        ("CITYHUB_SLA_SWEEP_INTERVAL", "-5", "greater than or equal to 1"),
        ("CITYHUB_DEDUPE_AUTO_MERGE", "perhaps", "valid boolean"),
        # a typo must not quietly switch off production's checks
        ("CITYHUB_ENVIRONMENT", "prod", "Input should be 'demo', 'development' or 'production'"),
        # the working calendar's own parser: refused here, not at the first dispatch
        ("CITYHUB_WORKING_HOURS", "9-18", "working hours part '9-18' has an invalid time"),
        ("CITYHUB_WORKING_HOURS", "18:00-09:00", "working hours part '18:00-09:00' ends before it starts"),
        ("CITYHUB_WORKING_HOURS", "09:00-12:00,11:30-18:00", "'11:30-18:00' overlaps or precedes the previous"),
        ("CITYHUB_OPEN311_CHANNELS", "web,phone", "unknown channel 'phone' (all, or some of: hotline, web,"),
        # a database URL no driver of cityhub opens: refused here, not with a traceback at the first connection
        ("CITYHUB_DATABASE_URL", "mysql://x/y", "use sqlite:///PATH or postgresql://USER:PW@HOST/DB"),
        ("CITYHUB_DATABASE_URL", "data/cityhub.db", "use sqlite:///PATH or postgresql://USER:PW@HOST/DB"),
        ("CITYHUB_DATABASE_URL", "postgresql+asyncpg://u@h/db", "use sqlite:///PATH or postgresql://USER:PW@HOST/DB"),
    ],
)
def test_an_invalid_value_fails_with_one_line_naming_it(clean_env, monkeypatch, env, value, problem) -> None:
    monkeypatch.setenv(env, value)
    for args in (("show",), ("show", "--json")):
        result = _cli(*args)
        assert result.exit_code == 2  # could not run, as every other command on invalid settings
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: invalid settings: {env}: ")
        assert problem in lines[0]
        assert f"(got '{value}' from the environment)" in lines[0]


@pytest.mark.parametrize(
    ("env", "value", "problem"),
    [
        ("CITYHUB_WORKING_HOURS", "9-18", "working hours part '9-18' has an invalid time"),
        ("CITYHUB_ENVIRONMENT", "prod", "Input should be 'demo', 'development' or 'production'"),
    ],
)
def test_every_command_that_reads_an_invalid_setting_says_so_in_one_line(
    clean_env, monkeypatch, capsys, env, value, problem
) -> None:
    from cityhub import cli, config

    monkeypatch.setenv(env, value)
    monkeypatch.setattr("sys.argv", ["cityhub", "db", "current"])
    config.get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        config.get_settings.cache_clear()
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: invalid settings: {env}: ") and problem in line


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("postgres://cityhub:pw@db.example/cityhub", "postgresql+psycopg://cityhub:pw@db.example/cityhub"),
        (
            "postgresql://cityhub:p%40ss@db.example:5433/cityhub",
            "postgresql+psycopg://cityhub:p%40ss@db.example:5433/cityhub",
        ),
        ("postgresql+psycopg://cityhub@db.example/cityhub", "postgresql+psycopg://cityhub@db.example/cityhub"),
        ("sqlite:///data/cityhub.db", "sqlite:///data/cityhub.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_database_urls_are_read_as_cityhub_opens_them(clean_env, monkeypatch, given, read) -> None:
    from cityhub.config import Settings

    monkeypatch.setenv("CITYHUB_DATABASE_URL", given)
    assert Settings().database_url == read


def test_a_database_url_refused_does_not_show_its_password(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_DATABASE_URL", "mysql://cityhub:hunter2-pw@db.example/cityhub")
    result = _cli("show")
    assert result.exit_code != 0
    assert "CITYHUB_DATABASE_URL: use sqlite:///PATH" in result.stderr and "hunter2-pw" not in result.output


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://cityhub:p@ss#w/rd@db.example:5432/cityhub",  # a generated password, pasted as it is
        "postgres://cityhub@tenant:s3cr3t-pw@db.example/cityhub",  # a hosting provider's user@server login
    ],
)
def test_a_database_url_with_an_at_not_percent_encoded_is_refused_saying_how_to_write_it(
    clean_env, monkeypatch, url
) -> None:
    """Read as it is, the driver takes what follows the password's '@' for the host: the first connection failed
    with `failed to resolve host 'ss#w'`, part of the password and no word of the encoding."""
    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    result = _cli("show")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: invalid settings: CITYHUB_DATABASE_URL: more than one '@' in it: percent-encode")
    assert "@ as %40" in line
    assert "ss#w" not in line and "s3cr3t" not in line and "tenant" not in line  # none of the password shown
    encoded = "postgresql://cityhub:p%40ss%23w%2Frd@db.example:5432/cityhub"
    monkeypatch.setenv("CITYHUB_DATABASE_URL", encoded)
    from sqlalchemy.engine import make_url

    from cityhub.config import Settings

    parsed = make_url(Settings().database_url)
    assert (parsed.password, parsed.host, parsed.database) == ("p@ss#w/rd", "db.example", "cityhub")


def test_the_log_level_is_read_case_insensitively_and_an_invalid_one_falls_back_to_info(clean_env, monkeypatch) -> None:
    from cityhub import config

    monkeypatch.setenv("CITYHUB_LOG_LEVEL", "warning")
    config.get_settings.cache_clear()
    try:
        assert config.log_level() == "WARNING"
        monkeypatch.setenv("CITYHUB_LOG_LEVEL", "loud")
        config.get_settings.cache_clear()
        assert config.log_level() == "INFO"  # invalid: the CLI still starts, and `config show` names the problem
    finally:
        config.get_settings.cache_clear()


def test_invalid_values_in_dotenv_and_across_fields_are_named(clean_env, monkeypatch) -> None:
    (clean_env / ".env").write_text("CITYHUB_DISPATCH_THRESHOLD=1.5\n", encoding="utf-8")
    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "production")
    monkeypatch.setenv("CITYHUB_SESSION_HOURS", "0")
    result = _cli("show")
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert "CITYHUB_DISPATCH_THRESHOLD: Input should be less than or equal to 1 (got '1.5' from .env)" in line
    assert "CITYHUB_SESSION_HOURS: Input should be greater than 0 (got '0' from the environment)" in line
    # Fixed the threshold: the production check across fields (no demo secret) is what remains of Settings.
    (clean_env / ".env").write_text("", encoding="utf-8")
    monkeypatch.setenv("CITYHUB_DATABASE_URL", "postgresql://cityhub@db.example/cityhub")
    monkeypatch.setenv("CITYHUB_SECRET_KEY", "hidden-in-errors-" + "x" * 32)
    monkeypatch.setenv("CITYHUB_DEMO_PASSWORD", "hidden-in-errors")
    monkeypatch.delenv("CITYHUB_SESSION_HOURS")
    fixed = _cli("show")
    assert fixed.exit_code == 0, fixed.output
    assert "hidden-in-errors" not in fixed.output
    monkeypatch.delenv("CITYHUB_SECRET_KEY")
    result = _cli("show")
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        "error: invalid settings: Settings: CITYHUB_SECRET_KEY must be set to a real secret in production"
    )


# --------------------------------------------------------------------------------------------- production


STRONG_SECRET = "k" * 32


def test_production_refuses_the_default_database(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "production")
    monkeypatch.setenv("CITYHUB_SECRET_KEY", STRONG_SECRET)
    (clean_env / ".env").write_text("CITYHUB_DATABSE_URL=postgresql://cityhub@db.example/cityhub\n", encoding="utf-8")
    refused = _cli("show")
    assert refused.exit_code != 0 and refused.stdout == ""
    assert refused.stderr.splitlines()[-1] == (
        "error: invalid settings: Settings: CITYHUB_DATABASE_URL must be set in production "
        "(the default is a new SQLite file under ./data)"
    )
    monkeypatch.setenv("CITYHUB_DATABASE_URL", "sqlite:///data/cityhub.db")  # the default's value, but chosen
    assert _cli("show").exit_code == 0


@pytest.mark.parametrize("secret", ["", "abc", "k" * 31])
def test_production_refuses_a_short_secret_and_says_how_to_make_one(clean_env, monkeypatch, secret) -> None:
    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "production")
    monkeypatch.setenv("CITYHUB_DATABASE_URL", "postgresql://cityhub@db.example/cityhub")
    monkeypatch.setenv("CITYHUB_SECRET_KEY", secret)
    refused = _cli("show")
    assert refused.exit_code != 0
    (line,) = refused.stderr.splitlines()
    assert "CITYHUB_SECRET_KEY must have at least 32 characters in production" in line
    assert "secrets.token_urlsafe(48)" in line
    monkeypatch.setenv("CITYHUB_SECRET_KEY", STRONG_SECRET)
    assert _cli("show").exit_code == 0
    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "development")  # elsewhere any secret will do
    monkeypatch.setenv("CITYHUB_SECRET_KEY", secret)
    assert _cli("show").exit_code == 0


# --------------------------------------------------------------------------------------------- unknown names


def test_show_warns_of_each_unknown_name_with_the_closest_known_one(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_LOG_LEVL", "DEBUG")
    monkeypatch.setenv("CITYHUB_TEST_BACKENDS", "sqlite")  # the developers' own variables are no typos
    monkeypatch.setenv("CITYHUB_RUN_SCHEDULER", "1")
    (clean_env / ".env").write_text(
        "CITYHUB_DATABSE_URL=postgresql://cityhub@db.example/cityhub\nCITYHUB_XYZZY=1\nCITYHUB_TIMEZONE=UTC\n",
        encoding="utf-8",
    )
    result = _cli("show")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: CITYHUB_DATABSE_URL (in .env) is not a cityhub setting and is ignored; "
        "did you mean CITYHUB_DATABASE_URL?",
        "warning: CITYHUB_LOG_LEVL (in the environment) is not a cityhub setting and is ignored; "
        "did you mean CITYHUB_LOG_LEVEL?",
        "warning: CITYHUB_XYZZY (in .env) is not a cityhub setting and is ignored",
    ]
    assert re.search(r"^CITYHUB_DATABASE_URL +default +sqlite:///data/cityhub.db$", result.stdout, re.M)


@pytest.mark.parametrize("command", [["serve"], ["worker", "--once"]])
def test_serve_and_worker_warn_of_unknown_names_at_start(clean_env, monkeypatch, caplog, command) -> None:
    from cityhub import cli, config
    from cityhub.db import reset_engine

    monkeypatch.setenv("CITYHUB_DATABASE_URL", f"sqlite:///{clean_env / 'empty.db'}")  # stops at the schema check
    monkeypatch.setenv("CITYHUB_DISPATCH_AUTOO", "true")
    monkeypatch.setattr("sys.argv", ["cityhub", *command])
    reset_engine()
    try:
        with pytest.raises(SystemExit):
            cli.main()
    finally:
        reset_engine()
        config.get_settings.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.name == "cityhub.config"]
    assert warnings == [
        "CITYHUB_DISPATCH_AUTOO (in the environment) is not a cityhub setting and is ignored; "
        "did you mean CITYHUB_DISPATCH_AUTO?"
    ]


@pytest.mark.parametrize("command", [["serve"], ["worker", "--once"]])
@pytest.mark.parametrize(
    ("env", "value"),
    [("CITYHUB_LOGIN_MAX_FAILURES", "abc"), ("CITYHUB_FILES_MAX_MB", "abc"), ("CITYHUB_NOTIFY_INTERVAL", "x")],
)
def test_serve_and_worker_refuse_to_start_with_an_invalid_setting_of_any_area(
    clean_env, monkeypatch, capsys, command, env, value
) -> None:
    """A package's settings are read at their first use: serve started, and every login (or upload, or delivery)
    answered 500 with a traceback in the log."""
    from cityhub import cli, config
    from cityhub.db import reset_engine

    monkeypatch.setenv("CITYHUB_DATABASE_URL", f"sqlite:///{clean_env / 'empty.db'}")
    monkeypatch.setenv(env, value)
    monkeypatch.setattr("sys.argv", ["cityhub", *command])
    reset_engine()
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        reset_engine()
        config.get_settings.cache_clear()
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: invalid settings: {env}: ") and f"(got '{value}' from the environment)" in line
    assert not (clean_env / "empty.db").exists()  # refused before the database was touched


def test_python_m_cityhub_is_the_command_line() -> None:
    """``python -m cityhub`` runs what the ``cityhub`` script runs (it said there was no ``cityhub.__main__``)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "cityhub", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage: cityhub" in done.stdout and "serve" in done.stdout
