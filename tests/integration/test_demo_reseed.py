"""A re-seed of an already seeded database stops before generating anything, and stays idempotent."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from cityhub.demo.service import already_seeded, seed_demo
from cityhub.workorders.models import Order

END = date(2025, 3, 31)


def _count(factory: sessionmaker) -> int:
    """Distinct demo ids: a run for another number of orders may store an id again under another channel."""
    with factory() as s:
        return int(s.scalar(select(func.count(Order.external_id.distinct()))) or 0)


def test_reseed_skips_early_and_completes_a_partial_seed(db_url: str, db_engine: Engine) -> None:
    factory = sessionmaker(bind=db_engine, expire_on_commit=False)
    first = seed_demo(factory, orders=60, seed=4, years=0.5, end=END, batch_size=25)
    assert (first.inserted, first.already_seeded) == (60, False)
    with factory() as s:
        assert already_seeded(s, seed=4, orders=60) and already_seeded(s, seed=4, orders=30)
        assert not already_seeded(s, seed=4, orders=61)  # one more than stored
        assert not already_seeded(s, seed=5, orders=1)  # another seed's orders are not these

    again = seed_demo(factory, orders=60, seed=4, years=0.5, end=END)
    assert again.already_seeded and (again.generated, again.inserted, again.skipped) == (0, 0, 60)
    smaller = seed_demo(factory, orders=20, seed=4, years=0.5, end=END)
    assert smaller.already_seeded and smaller.inserted == 0
    assert _count(factory) == 60

    # Asking for more generates again and writes what is missing.
    more = seed_demo(factory, orders=90, seed=4, years=0.5, end=END, batch_size=40)
    assert not more.already_seeded and more.generated == 90 and more.inserted >= 30
    assert _count(factory) == 90

    # An order deleted from the end (an interrupted seed leaves the same picture) is written again.
    with factory() as s:
        s.execute(Order.__table__.delete().where(Order.external_id == "demo-4-89"))
        s.commit()
        assert not already_seeded(s, seed=4, orders=90)
    refill = seed_demo(factory, orders=90, seed=4, years=0.5, end=END)
    assert (refill.inserted, refill.skipped) == (1, 89) and _count(factory) == 90
