"""A migration that rebuilds a table (SQLite's batch mode: copy, drop, rename) must not take the rows of other
tables with it: with foreign keys enforced, dropping the old table deleted its rows and the deletion cascaded — the
downgrade of the monitoring tables past 0019 deleted every alarm. The migrations run with enforcement off and the
keys checked before they commit (``migrations/env.py``); on PostgreSQL an ALTER never drops a table."""

from __future__ import annotations

from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from test_monitoring import T0, _rule, _sensor, _series, _units

from cityhub import migrate
from cityhub.db import make_engine
from cityhub.monitoring import service
from cityhub.monitoring.models import Alarm

BEFORE = "0018_order_search"  # below 0019, which rebuilds sensors, alarms and alarm_rules on SQLite


def _counts(session: Session) -> dict[str, int]:
    return {
        table: int(session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        for table in ("alarms", "alarm_events", "sensor_readings", "orders", "order_events")
    }


def test_a_downgrade_and_upgrade_through_rebuilt_tables_keeps_the_rows_that_name_them(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as session:
            _units(session)
            _sensor(session, "WL-K")
            _rule(session, duration_s=0)
            service.ingest(session, items=_series("WL-K", [30, 32]), now=T0)
            session.commit()
            before = _counts(session)
            assert before["alarms"] == 1 and before["sensor_readings"] == 2 and before["orders"] == 1
        engine.dispose()
        config = migrate.alembic_config(empty_db_url)
        command.downgrade(config, BEFORE)
        with Session(engine) as session:
            assert _counts(session) == before
        engine.dispose()
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            assert _counts(session) == before
            assert session.scalar(select(func.count()).select_from(Alarm)) == 1
            if engine.dialect.name == "sqlite":  # enforcement is back on for the connections that follow
                assert session.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        engine.dispose()
