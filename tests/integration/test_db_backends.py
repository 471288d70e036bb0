"""The same models and migrations behave alike on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, StatementError
from sqlalchemy.orm import Session, selectinload

from cityhub import migrate
from cityhub.db import Base, make_engine
from cityhub.models import Order, OrderEvent, Unit
from cityhub.org.models import UnitTier
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import AppealType, Channel
from web_helpers import enter_holidays_ahead

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _head() -> str:
    return migrate.head()


def _previous() -> str:
    """The revision before the head: the release before this one."""
    previous = migrate.scripts().get_revision(_head()).down_revision
    assert isinstance(previous, str)
    return previous


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _make_unit() -> Unit:
    return Unit(
        code="440111001",
        name="景泰街道",
        tier=UnitTier.STREET,
        boundary={
            "type": "Polygon",
            "coordinates": [[[113.27, 23.16], [113.28, 23.16], [113.28, 23.17], [113.27, 23.16]]],
        },
        contacts=[{"name": "王主任", "phone": "020-12345678", "role": "值班"}],
    )


def test_migration_creates_every_model_table(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert set(Base.metadata.tables) <= tables
    assert version == _head()


def test_migrated_schema_matches_the_models(db_engine: Engine) -> None:
    """Columns, types, indexes and constraints: what Alembic's autogenerate would write is nothing (a model changed
    without its migration, or the reverse, fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": migrate.include_name})
        assert compare_metadata(context, Base.metadata) == []
        if conn.dialect.name == "sqlite":
            # The comparison skips an expression index on SQLite (it cannot reflect one): read it as written.
            written = conn.execute(
                text(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'ix_orders_enterprise_need_created'"
                )
            ).scalar()
            assert written is not None and "json_extract(attributes, '$.enterprise_need')" in written, written


def test_unit_order_and_event_round_trip(db_engine: Engine, db_session: Session) -> None:
    received = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=SHANGHAI)
    unit = _make_unit()
    order = Order(
        number="BY20260302-000001",
        channel=Channel.HOTLINE,
        appeal_type=AppealType.COMPLAINT,
        title="夜间施工噪音扰民",
        content="某工地晚上十一点后仍在施工，噪音很大。",
        created_at=received,
        due_at=received + timedelta(days=5),
        sla_remaining={"due": 3600, "warn": 1800},
        attributes={"tags": ["噪音", "夜间"], "score": 0.75, "nested": {"ok": True, "none": None}},
        lead_unit=unit,
    )
    order.events.append(
        OrderEvent(
            action="create",
            to_state=State.RECEIVED.value,
            actor_name="system",
            at=received,
            payload={"channel": "hotline", "note": "来电受理"},
        )
    )
    db_session.add(order)
    db_session.commit()
    order_id = order.id

    # A fresh session, so the values really come back from the database and not from the identity map.
    with Session(db_engine) as fresh:
        loaded = fresh.scalars(select(Order).where(Order.id == order_id).options(selectinload(Order.events))).one()
        assert loaded.state == State.RECEIVED
        assert loaded.channel == Channel.HOTLINE
        assert loaded.title == "夜间施工噪音扰民"
        assert loaded.created_at == received
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert loaded.due_at == received + timedelta(days=5)
        assert loaded.sla_remaining == {"due": 3600, "warn": 1800}
        assert loaded.attributes == {
            "tags": ["噪音", "夜间"],
            "score": 0.75,
            "nested": {"ok": True, "none": None},
        }

        assert loaded.lead_unit is not None
        assert loaded.lead_unit.code == "440111001"
        assert loaded.lead_unit.tier == UnitTier.STREET
        assert loaded.lead_unit.contacts == [{"name": "王主任", "phone": "020-12345678", "role": "值班"}]
        assert loaded.lead_unit.boundary is not None
        assert loaded.lead_unit.boundary["coordinates"][0][1] == [113.28, 23.16]
        # Defaults filled in by the model are timezone-aware UTC too.
        assert loaded.lead_unit.created_at.tzinfo is not None
        assert loaded.lead_unit.created_at.utcoffset() == timedelta(0)

        [event] = loaded.events
        assert event.at == received
        assert event.at.utcoffset() == timedelta(0)
        assert event.payload == {"channel": "hotline", "note": "来电受理"}


def test_datetimes_are_stored_in_utc(db_engine: Engine, db_session: Session, db_backend: str) -> None:
    local = datetime(2026, 1, 1, 7, 0, tzinfo=SHANGHAI)  # 2025-12-31 23:00 UTC: the date changes too
    db_session.add(
        Order(
            number="BY20260101-000001",
            channel=Channel.WEB,
            appeal_type=AppealType.HELP,
            title="t",
            content="c",
            created_at=local,
        )
    )
    db_session.commit()

    with db_engine.connect() as conn:
        raw = conn.execute(text("SELECT created_at FROM orders")).scalar_one()
    if db_backend == "sqlite":
        # SQLite has no time zone type: the stored text must be the UTC wall time.
        assert str(raw).startswith("2025-12-31 23:00:00")
    else:
        assert isinstance(raw, datetime)
        assert raw == local
        assert raw.astimezone(UTC).replace(tzinfo=None) == datetime(2025, 12, 31, 23, 0)


def test_naive_datetime_is_refused(db_session: Session) -> None:
    db_session.add(
        Order(
            number="BY20260101-000002",
            channel=Channel.WEB,
            appeal_type=AppealType.HELP,
            title="t",
            content="c",
            created_at=datetime(2026, 1, 1, 7, 0),
        )
    )
    with pytest.raises(StatementError, match="naive datetime"):
        db_session.flush()


def test_downgrade_to_base_then_upgrade_to_head(empty_db_url: str) -> None:
    model_tables = set(Base.metadata.tables)

    migrate.upgrade(empty_db_url)
    assert model_tables <= _tables(empty_db_url)
    assert migrate.current(empty_db_url) == _head()

    command.downgrade(migrate.alembic_config(empty_db_url), "base")
    assert _tables(empty_db_url) - {"alembic_version"} == set()
    assert migrate.current(empty_db_url) is None

    migrate.upgrade(empty_db_url)
    assert model_tables <= _tables(empty_db_url)
    assert migrate.current(empty_db_url) == _head()


CliRun = Callable[..., tuple[int, str, str]]


def _cli(url: str, monkeypatch: pytest.MonkeyPatch, cli_run: CliRun, *argv: str) -> tuple[int, str, str]:
    """``cityhub ARGV`` (conftest's ``cli_run``) against ``url``: exit code, stdout, stderr."""
    from cityhub.db import reset_engine

    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    reset_engine()
    try:
        return cli_run(*argv)
    finally:
        reset_engine()


def _cli_error(url: str, monkeypatch: pytest.MonkeyPatch, cli_run: CliRun, *argv: str) -> str:
    """Run ``cityhub ARGV`` against ``url``; its exit must be 2 with one error line, returned."""
    code, _, err = _cli(url, monkeypatch, cli_run, *argv)
    assert code == 2
    err = err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_cli_on_a_database_behind_the_code_says_to_upgrade(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, cli_run: CliRun
) -> None:
    head = _head()
    if empty_db_url.startswith("sqlite"):  # an empty file (no file at all is refused by name: the test below)
        Path(make_url(empty_db_url).database or "").touch()
    err = _cli_error(empty_db_url, monkeypatch, cli_run, "jobs", "status")
    assert f"at migration (none), this version of cityhub needs {head}: run `cityhub db upgrade`" in err
    for argv in (["serve"], ["worker", "--once"]):  # neither starts on a database it was not written for
        assert "run `cityhub db upgrade`" in _cli_error(empty_db_url, monkeypatch, cli_run, *argv)
    assert _tables(empty_db_url) == set()

    previous = "0019_monitoring_escalation"
    migrate.upgrade(empty_db_url, previous)  # an earlier release: a newer table is missing
    # A command that writes what a newer migration added (an order's search terms, in a table of their own, 0020):
    # its database error is explained.
    err = _cli_error(empty_db_url, monkeypatch, cli_run, "orders", "create", "--content", "楼道灯坏了")
    assert f"at migration {previous}, this version of cityhub needs {head}" in err

    migrate.upgrade(empty_db_url)
    code, _, err = _cli(empty_db_url, monkeypatch, cli_run, "jobs", "status")  # at head: it runs and exits normally
    assert code == 0
    assert "error" not in err


def test_db_downgrade_rolls_a_release_back_only_when_told_its_data_goes(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, cli_run: CliRun
) -> None:
    """Rolling a release back: `cityhub db downgrade REV` (the newer release still installed) takes the database to
    an earlier migration — refused without --yes, as what later migrations added goes with its data; an unknown or a
    later revision is one line; `db upgrade` comes back."""
    head = _head()
    migrate.upgrade(empty_db_url)

    def refused(*argv: str) -> str:  # what was asked is refused: exit 1, one line
        code, _, err = _cli(empty_db_url, monkeypatch, cli_run, "db", "downgrade", *argv)
        assert code == 1 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), (code, err)
        return err

    earlier = "0056_user_notices"
    err = refused(earlier)
    assert "--yes" in err and "backup" in err and head in err
    assert migrate.current(empty_db_url) == head  # nothing done
    err = refused("0999_nothing", "--yes")
    assert "no such migration" in err
    code, out, err = _cli(empty_db_url, monkeypatch, cli_run, "db", "downgrade", earlier, "--yes")
    assert code == 0, err
    assert out.strip() == f"database at revision {earlier}" and migrate.current(empty_db_url) == earlier
    assert "user_notices" in _tables(empty_db_url) and "kb_entries" in _tables(empty_db_url)
    # one step more; then a revision after the current one is refused in one line
    assert _cli(empty_db_url, monkeypatch, cli_run, "db", "downgrade", "0055_assessment", "--yes")[0] == 0
    assert migrate.current(empty_db_url) == "0055_assessment_exemptions"
    assert "user_notices" not in _tables(empty_db_url)
    refused(head, "--yes")
    code, out, err = _cli(empty_db_url, monkeypatch, cli_run, "db", "upgrade")
    assert code == 0 and migrate.current(empty_db_url) == head, err


def test_db_downgrade_and_upgrade_print_no_sqlalchemy_warning(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, cli_run: CliRun
) -> None:
    """Going back past 0053 copies `attachments` on SQLite (batch mode), which reflects `orders` and met its
    expression index (0052): SQLAlchemy's warning, with a file path and a source line, was printed in the middle of
    an operator's `cityhub db downgrade`. The migrations say nothing but their own lines."""
    import warnings

    from sqlalchemy.exc import SAWarning

    migrate.upgrade(empty_db_url)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        down = _cli(empty_db_url, monkeypatch, cli_run, "db", "downgrade", "0052_enterprise_need_index", "--yes")
        up = _cli(empty_db_url, monkeypatch, cli_run, "db", "upgrade")
    assert down[0] == 0 and up[0] == 0, (down, up)
    assert migrate.current(empty_db_url) == _head()
    assert [str(w.message) for w in seen if issubclass(w.category, SAWarning)] == []


def test_compact_gives_the_space_of_deleted_rows_back(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, cli_run: CliRun
) -> None:
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE filler (t TEXT)"))
            conn.execute(
                text("INSERT INTO filler (t) VALUES (:t)"), [{"t": f"{i:06d}" + "x" * 250} for i in range(20_000)]
            )
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM filler"))
    finally:
        engine.dispose()
    before, after = migrate.compact(empty_db_url)
    assert after < before - 2_000_000, (before, after)  # the 20,000 rows' ~5 MB

    code, out, _ = _cli(empty_db_url, monkeypatch, cli_run, "db", "compact")
    assert code == 0
    assert out.startswith("database compacted: ")


def _rows(url: str, *tables: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
    finally:
        engine.dispose()


def test_cli_refuses_a_database_a_newer_release_migrated_as_serve_does(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, cli_run: CliRun, tmp_path: Path
) -> None:
    """Only serve and worker checked: every other command read and wrote a schema it was not written for (a newer
    release's), with the columns it knows of."""
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    finally:
        engine.dispose()
    said = _cli_error(empty_db_url, monkeypatch, cli_run, "serve")
    assert "9999_future" in said and "a newer release migrated it" in said
    for argv in (
        ["orders", "create", "--content", "楼道灯坏了"],
        ["calendar", "set", "2030-01-02", "holiday"],
        ["jobs", "run", "sla-sweep"],
        ["jobs", "status"],
    ):
        assert _cli_error(empty_db_url, monkeypatch, cli_run, *argv) == said, argv
    assert _rows(empty_db_url, "orders", "calendar_days", "admin_log", "job_runs") == dict.fromkeys(
        ("orders", "calendar_days", "admin_log", "job_runs"), 0
    )
    # What an operator needs to see and get out of it keeps working.
    assert _cli(empty_db_url, monkeypatch, cli_run, "db", "current")[:2] == (0, "9999_future\n")
    if empty_db_url.startswith("sqlite"):
        code, out, _ = _cli(empty_db_url, monkeypatch, cli_run, "db", "backup", str(tmp_path / "copy.db"))
        assert code == 0 and out.startswith("backup written to ")
    code, _, err = _cli(empty_db_url, monkeypatch, cli_run, "db", "upgrade")
    assert code == 2 and err.strip().endswith("a newer release migrated it); install that release or restore a backup")


def test_cli_on_a_missing_sqlite_file_names_it_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, cli_run: CliRun, tmp_path: Path
) -> None:
    """A wrong path became an empty database file (and its folders): a listing then failed on a missing table, or
    answered nothing as if the district had no data."""
    path = tmp_path / "typo" / "cityhub.db"
    url = f"sqlite:///{path}"
    says = (
        f"error: there is no database file {path}: check CITYHUB_DATABASE_URL, or create it with `cityhub db upgrade`"
    )
    for argv in (["org", "list"], ["jobs", "status"], ["admin-log"], ["orders", "create", "--content", "x"]):
        assert _cli_error(url, monkeypatch, cli_run, *argv) == says, argv
    for argv in (["serve"], ["worker", "--once"], ["db", "compact"], ["db", "current"]):
        assert _cli_error(url, monkeypatch, cli_run, *argv) == says, argv
    assert not path.parent.exists()

    assert _cli(url, monkeypatch, cli_run, "db", "upgrade")[0] == 0  # what creates a database
    code, _, err = _cli(url, monkeypatch, cli_run, "org", "list")
    assert (code, err) == (0, "0 units\n")


def test_db_current_on_a_missing_sqlite_file_says_so_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, cli_run: CliRun, tmp_path: Path
) -> None:
    """`db current` of a SQLite path with no file printed `(empty)`, exit 0, as for a database never migrated: a
    wrong path in CITYHUB_DATABASE_URL looked like a new database. It is one line naming the file, exit 2, and the
    file is not created in its (existing) folder; an empty database file is still `(empty)`."""
    path = tmp_path / "cityhub.db"
    assert _cli_error(f"sqlite:///{path}", monkeypatch, cli_run, "db", "current") == (
        f"error: there is no database file {path}: check CITYHUB_DATABASE_URL, or create it with `cityhub db upgrade`"
    )
    assert list(tmp_path.iterdir()) == []
    sqlite3.connect(path).close()
    assert _cli(f"sqlite:///{path}", monkeypatch, cli_run, "db", "current")[:2] == (0, "(empty)\n")


def test_db_upgrade_where_the_database_folder_cannot_be_made_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, cli_run: CliRun, tmp_path: Path
) -> None:
    """`db upgrade` of a SQLite path whose folder cannot be made (a file in the way; a folder the service user may
    not write in) exits 2 naming the folder and why: it was a traceback ending in FileNotFoundError."""
    in_the_way = tmp_path / "srv"
    in_the_way.write_text("a file, not a folder")
    path = in_the_way / "data" / "cityhub.db"
    err = _cli_error(f"sqlite:///{path}", monkeypatch, cli_run, "db", "upgrade")
    assert err == (
        f"error: db upgrade: cannot make the folder {path.parent} for the database file {path} "
        "(CITYHUB_DATABASE_URL): Not a directory"
    )


def test_healthz_and_status_page_name_a_schema_the_code_was_not_written_for(app_db: str) -> None:
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    head = _head()
    previous = _previous()
    engine = make_engine(app_db)

    def stamp(revision: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})

    enter_holidays_ahead()
    try:
        with TestClient(shared_app()) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            for revision, says in ((previous, "run `cityhub db upgrade`"), ("9999_future", "a newer release")):
                stamp(revision)
                body = client.get("/healthz").json()
                assert body["status"] == "degraded" and body["revision"] == revision, body
                assert (
                    body["problems"][0].startswith(f"the database is at migration {revision}")
                    and says in body["problems"][0]
                )
                page = client.get("/", headers={"Accept": "text/html"}).text
                assert f"数据库结构为 {revision}，本版本程序需要 {head}" in page
            stamp(head)
            assert client.get("/healthz").json()["problems"] == []
            assert "数据库结构为" not in client.get("/", headers={"Accept": "text/html"}).text
    finally:
        stamp(head)
        engine.dispose()


def test_cli_reports_an_unreachable_database_in_one_line(monkeypatch: pytest.MonkeyPatch, cli_run: CliRun) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://cityhub@127.0.0.1:{port}/cityhub?connect_timeout=5"
    err = _cli_error(url, monkeypatch, cli_run, "jobs", "status")
    assert err.startswith("error: database: ") and str(port) in err


def _backend_pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.parametrize("idle_seconds", [0.0, 3600.0])
def test_a_pooled_connection_the_server_dropped_is_replaced_after_idling(
    db_url: str, db_backend: str, db_engine: Engine, idle_seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a pooled connection that idled past CITYHUB_DB_PING_IDLE_SECONDS is tested before use and replaced
    when the server dropped it; one used a moment ago is handed out untested (and so fails if it was dropped)."""
    if db_backend != "postgresql":
        pytest.skip("SQLite has no server to drop connections")
    from cityhub.config import get_settings

    monkeypatch.setenv("CITYHUB_DB_PING_IDLE_SECONDS", str(idle_seconds))
    get_settings.cache_clear()
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            dropped = _backend_pid(conn)
        with db_engine.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped}).scalar_one() is True
        if idle_seconds == 0:
            with engine.connect() as conn:
                assert _backend_pid(conn) != dropped  # tested, found dead, replaced: the caller never noticed
        else:
            with pytest.raises(OperationalError, match=r"terminat"), engine.connect() as conn:
                _backend_pid(conn)
            with engine.connect() as conn:  # the failure discarded it; the next caller gets a fresh one
                assert _backend_pid(conn) != dropped
    finally:
        engine.dispose()
        get_settings.cache_clear()


def test_a_transaction_whose_connection_the_server_dropped_fails_with_its_own_error(
    app_db: str, db_backend: str, db_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL restarted (here: the backend terminated) under a pooled connection: the transaction on it fails
    with the server's error, not with the rollback's PendingRollbackError, and a request gets the JSON error body."""
    if db_backend != "postgresql":
        pytest.skip("SQLite has no server to drop connections")
    from fastapi.testclient import TestClient

    from app_helpers import shared_app
    from cityhub import refdata
    from cityhub.config import get_settings
    from cityhub.db import reset_engine, session_scope

    monkeypatch.setenv("CITYHUB_DB_PING_IDLE_SECONDS", "3600")  # the dropped connection is handed out untested
    reset_engine()

    def drop_the_pooled_connections() -> None:  # as a restart of the server does
        with session_scope() as s:
            refdata.tokens(s)  # what a request reads first: its tokens live on the connection
        others = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        with db_engine.connect() as admin:
            pids = admin.execute(text(others)).scalars().all()
            for pid in pids:
                # Waits (up to 10 s) until the backend is gone: the signal alone returns before it has ended.
                admin.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        assert pids

    try:
        drop_the_pooled_connections()
        with pytest.raises(OperationalError, match="terminat"), session_scope() as s:
            refdata.tokens(s)
        with session_scope() as s:  # the pool replaced it
            assert s.execute(text("SELECT 1")).scalar_one() == 1

        with TestClient(shared_app(), raise_server_exceptions=False) as client:
            drop_the_pooled_connections()
            answer = client.get("/healthz")
            assert answer.status_code == 500
            assert answer.json()["code"] == "internal_error" and answer.json()["message"] == "database error"
        assert "PendingRollbackError" not in caplog.text
    finally:
        reset_engine()
        get_settings.cache_clear()
