"""Benchmark what ``orders.changed_xid`` costs the writers: the triggers that stamp every insert and update of an
order with its transaction (PostgreSQL) or a counter's next number (SQLite), for the data-sharing feed of changes
(:mod:`cityhub.workorders.changes`).

In one migrated database per backend, rounds alternate with the triggers in place and without them (dropped and made
again), each round timing ``--n`` orders through the bulk writer (``intake.bulk.write_orders``: ``COPY`` on
PostgreSQL, ``executemany`` on SQLite, as ``cityhub import orders`` writes them), then two set-based UPDATEs of all of
them: one leaving the stamps to the triggers (as the placing job marks orders), one stamping its rows itself
(``changes.stamped``, as the SLA sweep's marks). Prints the medians and the cost per order, written to
``bench/results/change_stamp.json``.

    .venv/bin/python bench/bench_change_stamp.py --n 20000 --rounds 3 [--pg-url postgresql+psycopg://…/throwaway]
    .venv/bin/python bench/bench_change_stamp.py --quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import fresh_sqlite_url, reset_postgres, use_database, write_result

# The bulk writer, an UPDATE of all those orders the trigger stamps row by row, one that stamps them itself.
STEPS = ("write", "update", "update_stamped")


def _toggle(conn: Any, on: bool) -> None:
    from cityhub.workorders import changes

    # Dropped, not disabled: a table with a BEFORE row trigger (enabled or not) is copied into row by row.
    postgres = conn.dialect.name == "postgresql"
    drop, make = (
        (changes.PG_DROP[:1], changes.PG_DDL[1:]) if postgres else (changes.SQLITE_DROP[:2], changes.SQLITE_DDL[1:])
    )
    for statement in drop + (make if on else ()):
        conn.exec_driver_sql(statement)


def _round(n: int, tag: str) -> tuple[float, float, float]:
    from sqlalchemy import update

    from cityhub.db import session_scope
    from cityhub.intake.bulk import write_orders
    from cityhub.workorders import changes
    from cityhub.workorders.models import Order

    start = datetime(2024, 1, 1, tzinfo=UTC)
    records = [
        {
            "external_id": f"{tag}-{i}",
            "appeal_type": "complaint",
            "title": "夜间施工噪音",
            "content": f"工地晚上十一点后仍在施工，噪音很大，第{i}次反映。",
            "created_at": start + timedelta(minutes=i),
        }
        for i in range(n)
    ]
    began = time.perf_counter()
    with session_scope() as s:
        ids = write_orders(s, records).ids
    written = time.perf_counter() - began
    steps = [written]
    for stamp in (False, True):  # as the placing job's mark (the trigger stamps each row), as the SLA sweep's
        began = time.perf_counter()
        with session_scope() as s:
            s.execute(
                update(Order)
                .where(Order.id.between(min(ids), max(ids)))
                .values(
                    urge_count=Order.urge_count + 1,
                    version=Order.version + 1,
                    **(changes.stamped(s) if stamp else {}),
                )
                .execution_options(synchronize_session=False)
            )
        steps.append(time.perf_counter() - began)
    return steps[0], steps[1], steps[2]


def measure(url: str, n: int, rounds: int) -> dict[str, Any]:
    from cityhub.db import session_scope

    use_database(url)
    times: dict[str, dict[str, list[float]]] = {label: {step: [] for step in STEPS} for label in ("with", "without")}
    for r in range(rounds):
        for label in ("without", "with") if r % 2 else ("with", "without"):
            with session_scope() as s:
                _toggle(s.connection(), label == "with")
            for step, seconds in zip(STEPS, _round(n, f"{r}-{label}"), strict=True):
                times[label][step].append(seconds)
    with session_scope() as s:
        _toggle(s.connection(), True)
    out: dict[str, Any] = {"orders": n, "rounds": rounds}
    for step in STEPS:
        with_s = statistics.median(times["with"][step])
        without_s = statistics.median(times["without"][step])
        out[step] = {
            "with_s": round(with_s, 3),
            "without_s": round(without_s, 3),
            "extra_us_per_order": round((with_s - without_s) / n * 1e6, 1),
            "extra_percent": round((with_s / without_s - 1) * 100, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="orders per round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds with and without the triggers (default 3)")
    parser.add_argument("--pg-url", help="a throw-away PostgreSQL database (its public schema is dropped first)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 orders, one round")
    args = parser.parse_args()
    n, rounds = (500, 1) if args.quick else (args.n, args.rounds)
    results: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "load_average_1m": 0.0}
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    results["sqlite"] = measure(fresh_sqlite_url("change-stamp"), n, rounds)
    if args.pg_url:
        reset_postgres(args.pg_url)
        results["postgresql"] = measure(args.pg_url, n, rounds)
    for backend in ("sqlite", "postgresql"):
        if backend in results:
            run = results[backend]
            for step in STEPS:
                r = run[step]
                print(
                    f"{backend} {step}: {r['with_s']} s with the triggers, {r['without_s']} s without, "
                    f"{r['extra_us_per_order']} µs ({r['extra_percent']} %) more per order"
                )
    print(f"written to {write_result('change_stamp_quick' if args.quick else 'change_stamp', results)}")


if __name__ == "__main__":
    main()
