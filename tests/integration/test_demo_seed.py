"""``demo seed`` into a migrated database: counts, states, audit trail, idempotence, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cityhub import migrate
from cityhub.db import make_engine, reset_engine
from cityhub.demo.cli import app
from cityhub.demo.generator import generate, write_csv
from cityhub.demo.service import seed_demo
from cityhub.org.models import Unit, UnitTier
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Order, OrderAssist, OrderEvent
from cityhub.workorders.schemas import OrderFilter
from cityhub.workorders.service import search_order_rows

END = date(2025, 3, 31)


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def test_seed_writes_orders_with_their_audit_trail(sqlite_factory: sessionmaker[Session]) -> None:
    report = seed_demo(sqlite_factory, orders=400, seed=9, years=1, end=END, batch_size=150)
    assert report.inserted == 400 and report.skipped == 0
    expected = list(generate(400, seed=9, years=1, end=END))
    with sqlite_factory() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 400
        assert s.scalar(select(func.count()).select_from(OrderEvent)) == sum(len(r["events"]) for r in expected)
        assert s.scalar(select(func.count()).select_from(OrderAssist)) == sum(len(r["assists"]) for r in expected)
        by_ext = {o.external_id: o for o in s.scalars(select(Order))}
        assert len({o.number for o in by_ext.values()}) == 400
        for record in expected:
            order = by_ext[record["external_id"]]
            assert order.state == record["state"]
            assert order.street.code == record["street_code"]
            assert order.community.code == record["community_code"]
            assert order.category is not None and order.category.path == record["category_path"]
            assert order.street.tier == UnitTier.STREET and order.community.parent_id == order.street_id
            if record["lead_unit_code"] is not None:
                assert order.lead_unit is not None and order.lead_unit.code == record["lead_unit_code"]
            events = order.events
            assert events[0].action == "create" and events[-1].to_state == order.state.value
            assert [e.at for e in events] == sorted(e.at for e in events)
            if order.state == State.MERGED:
                master = s.get(Order, order.master_order_id)
                assert master is not None and master.external_id == record["master_external_id"]
                merge = next(e for e in events if e.action == "merge")
                assert merge.payload == {"master_id": master.id}
        dispatch_units = s.scalars(
            select(Unit.tier).join(OrderEvent, OrderEvent.unit_id == Unit.id).where(OrderEvent.action == "dispatch")
        ).all()
        assert {UnitTier.COMMUNITY, UnitTier.STREET, UnitTier.DEPARTMENT} <= set(dispatch_units)

    again = seed_demo(sqlite_factory, orders=400, seed=9, years=1, end=END, batch_size=150)
    assert again.inserted == 0 and again.skipped == 400
    with sqlite_factory() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 400


def test_seed_on_each_backend(db_url: str, db_engine: Engine) -> None:
    factory = sessionmaker(bind=db_engine, expire_on_commit=False)
    report = seed_demo(factory, orders=120, seed=2, years=0.5, end=END)
    assert report.inserted == 120
    with factory() as s:
        states: dict[State, int] = dict(s.execute(select(Order.state, func.count()).group_by(Order.state)).all())
        assert sum(states.values()) == 120
        assert states.get(State.CLOSED_RESOLVED, 0) > 60
        # Seeded orders are in the full-text search: a phrase of one of them finds it, as LIKE would.
        title = s.scalars(select(Order.title).order_by(Order.id).limit(1)).one()
        rows, _, _ = search_order_rows(s, filters=OrderFilter(q=title[:6]), columns=["id", "title"], limit=200)
        assert title in {r["title"] for r in rows}


def test_cli_seeds_and_prints_a_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    reset_engine()
    cli = typer.Typer()
    cli.add_typer(app, name="demo")  # mounted as in `cityhub demo …`
    # The orders' summary only: the extras (sensors, hot topics, demo appeals: ~10 s a run) are test_demo_extras'.
    seed = ["demo", "seed", "--orders", "60", "--seed", "4", "--end", "2025-01-31", "--no-extras"]
    try:
        result = CliRunner().invoke(cli, seed)
        assert result.exit_code == 0, result.output
        assert "60 inserted" in result.output
        result = CliRunner().invoke(cli, seed)
        assert "0 inserted, 60 already present" in result.output
        bad = CliRunner().invoke(cli, ["demo", "seed", "--orders", "5", "--end", "yesterday"])
        assert bad.exit_code != 0
    finally:
        reset_engine()


def test_generated_csv_imports_cleanly(sqlite_factory: sessionmaker[Session], tmp_path: Path) -> None:
    from cityhub.demo.service import seed_reference_data
    from cityhub.intake.importer import import_orders

    path = tmp_path / "demo.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        assert write_csv(fh, generate(80, seed=6, years=1, end=END)) == 80
    with sqlite_factory() as s:
        seed_reference_data(s)
        s.commit()
        report = import_orders(s, path=path)
        assert (report.imported, report.rejected) == (80, 0), report.issues[:3]
        orders = s.scalars(select(Order)).all()
        assert all(o.category_id is not None for o in orders)
        assert {o.external_id for o in orders} == {f"demo-6-{i}" for i in range(80)}
        assert all(o.attributes and o.attributes.get("scenario") for o in orders)
