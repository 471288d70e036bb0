"""SLA sweep over a large order table: N orders of which M have a running clock.

Rows are written straight into `orders` (the sweep reads only state, deadlines and SLA columns); the open
orders' deadlines are spread around "now" so that a realistic share is due for a warning or an overdue mark.
Times the first sweep (which marks and audits) and a second one (which must find nothing to do).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import fresh_sqlite_url, peak_rss_mb, reset_postgres, use_database, write_result

OPEN_STATES = ["dispatched", "accepted", "in_progress", "suspended"]


def fill(url: str, total: int, open_count: int, seed: int) -> None:
    from sqlalchemy import insert

    from cityhub.db import session_scope, utcnow
    from cityhub.workorders.models import Order

    rng = random.Random(seed)
    now = utcnow()
    open_every = total / open_count
    batch: list[dict[str, object]] = []
    next_open = 0.0
    with session_scope() as s:
        for i in range(total):
            created = now - timedelta(days=rng.uniform(0, 3 * 365))
            row: dict[str, object] = {
                "number": f"BY-BENCH-{i:08d}",
                "channel": "hotline",
                "appeal_type": "complaint",
                "title": "路灯不亮",
                "content": "路灯不亮，影响夜间出行",
                "urgency": "normal",
                "created_at": created,
                "updated_at": created,
                "sla_status": "ok",
                "version": 1,
            }
            if i >= next_open:
                next_open += open_every
                due = now + timedelta(hours=rng.uniform(-72, 240))
                row.update(
                    state=rng.choice(OPEN_STATES),
                    due_at=due,
                    warn_at=due - timedelta(hours=12),
                    accept_due_at=due - timedelta(days=4),
                    sla_paused_at=now if rng.random() < 0.03 else None,
                )
            else:
                row.update(state="closed_resolved", sla_status="ok", closed_at=created + timedelta(days=3))
            batch.append(row)
            if len(batch) == 20_000:
                s.execute(insert(Order), batch)
                batch.clear()
        if batch:
            s.execute(insert(Order), batch)


def run(url: str, total: int, open_count: int, seed: int) -> dict[str, object]:
    from cityhub.db import session_scope
    from cityhub.workorders.scheduled import sla_sweep

    use_database(url)
    t = time.perf_counter()
    fill(url, total, open_count, seed)
    if url.startswith("postgresql"):
        # A live table has planner statistics (autovacuum); a freshly bulk-loaded one has none until ANALYZE.
        from sqlalchemy import text

        from cityhub.db import session_scope

        with session_scope() as s:
            s.execute(text("ANALYZE orders"))
    fill_s = time.perf_counter() - t
    timings = []
    results = []
    for _ in range(2):
        t = time.perf_counter()
        with session_scope() as s:
            results.append(sla_sweep(s))
        timings.append(time.perf_counter() - t)
    return {
        "orders": total,
        "open": open_count,
        "fill_s": round(fill_s, 1),
        "first_sweep_s": round(timings[0], 3),
        "repeat_sweep_s": round(timings[1], 3),
        "first": results[0],
        "repeat": results[1],
        "peak_rss_mb": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-sqlite", action="store_true", help="only the PostgreSQL run")
    parser.add_argument("--quick", action="store_true", help="20,000 orders, 4,000 open")
    parser.add_argument("--pg-url", help="also run on this PostgreSQL database (its schema is dropped!)")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.open = 20_000, 4_000
    out = {} if args.skip_sqlite else {"sqlite": run(fresh_sqlite_url("sweep"), args.orders, args.open, args.seed)}
    if args.pg_url:
        reset_postgres(args.pg_url)
        out["postgresql"] = run(args.pg_url, args.orders, args.open, args.seed)
    for backend, r in out.items():
        print(
            f"{backend}: {r['orders']:,} orders, {r['open']:,} open — first sweep {r['first_sweep_s']} s "
            f"(marked {r['first']}), repeat {r['repeat_sweep_s']} s"
        )
    print("written", write_result("sweep_postgresql" if args.skip_sqlite else "sweep", out))


if __name__ == "__main__":
    main()
