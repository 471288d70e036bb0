"""Recomputing running deadlines after a calendar edit and after a time-limit rule edit.

N orders of which M have a running clock (default 300,000 and 100,000). Each running order has a dispatch event
(its clock's anchor) within the four days before a fixed "now" and deadlines computed by ``sla.compute_deadlines``
as the service would; 3 % are paused. Then, each in its own committed transaction and timed end to end:

1. ``set_calendar_day``: a workday two days after "now" becomes a holiday (almost every window reaches it);
2. ``set_sla_rule``: the default rule for normal urgency goes from 5 to 6 working days (every normal clock);
3. ``set_calendar_day`` on a day after every window (the query finds nothing to move).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import fresh_sqlite_url, peak_rss_mb, reset_postgres, use_database, write_result

# Monday 2026-06-08 10:00 in Shanghai, a plain working week.
NOW = datetime(2026, 6, 8, 2, 0, tzinfo=UTC)
HOLIDAY = date(2026, 6, 10)
FAR_DAY = date(2026, 9, 1)
OPEN_STATES = ["dispatched", "accepted", "in_progress"]
COMMON = {"channel": "hotline", "appeal_type": "complaint", "urgency": "normal", "sla_status": "ok", "version": 2}
COMMON |= {"title": "路灯不亮", "content": "路灯不亮，影响夜间出行"}


def fill(total: int, running: int, seed: int) -> None:
    from sqlalchemy import insert

    from cityhub.db import session_scope
    from cityhub.workorders import calendar as workcal
    from cityhub.workorders import sla
    from cityhub.workorders.models import Order, OrderEvent

    rng = random.Random(seed)
    running_every = total / running
    orders: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    next_running = 0.0
    with session_scope() as s:
        cal = workcal.load_calendar(s)
        terms = sla.builtin_terms("normal", 0.8)

        def flush() -> None:
            s.execute(insert(Order), orders)
            s.execute(insert(OrderEvent), events)
            orders.clear()
            events.clear()

        for i in range(1, total + 1):
            created = NOW - timedelta(days=rng.uniform(0, 3 * 365))
            row: dict[str, object] = {**COMMON, "id": i, "number": f"BY-RC-{i:08d}", "created_at": created}
            if i >= next_running:
                next_running += running_every
                dispatched = NOW - timedelta(hours=rng.uniform(0, 96))
                deadlines = sla.compute_deadlines(cal, dispatched, terms)
                paused = rng.random() < 0.03
                row.update(
                    state="suspended" if paused else rng.choice(OPEN_STATES),
                    created_at=dispatched,
                    dispatched_at=dispatched,
                    accept_due_at=deadlines.accept_due_at,
                    warn_at=deadlines.warn_at,
                    due_at=deadlines.due_at,
                    sla_paused_at=NOW if paused else None,
                    sla_remaining=sla.pause(cal, NOW, deadlines) if paused else None,
                )
                events.append(
                    {
                        "order_id": i,
                        "action": "dispatch",
                        "from_state": "received",
                        "to_state": "dispatched",
                        "actor_name": "bench",
                        "at": dispatched,
                        "payload": {"due_at": deadlines.due_at.isoformat()},
                    }
                )
            else:
                row.update(state="closed_resolved", closed_at=created + timedelta(days=3))
            row["updated_at"] = row["created_at"]
            events.append(
                {
                    "order_id": i,
                    "action": "create",
                    "to_state": "received",
                    "actor_name": "bench",
                    "at": row["created_at"],
                }
            )
            orders.append(row)
            if len(orders) == 20_000:
                flush()
        if orders:
            flush()


def timed(label: str, work: object) -> dict[str, object]:
    from cityhub.db import session_scope

    t, cpu = time.perf_counter(), time.process_time()
    with session_scope() as s:
        done = work(s)  # type: ignore[operator]
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {
        "step": label,
        "s": round(seconds, 2),
        "cpu_s": round(cpu, 2),  # this process only: the wall time also holds the database's own work
        "moved": done.orders,
        "lifted": done.lifted,
        "sweep": done.sweep,
    }


def run(url: str, total: int, running: int, seed: int) -> dict[str, object]:
    from cityhub.workorders import recompute, sla

    use_database(url)
    t = time.perf_counter()
    fill(total, running, seed)
    if url.startswith("postgresql"):
        from sqlalchemy import text

        from cityhub.db import session_scope

        with session_scope() as s:
            s.execute(text("ANALYZE orders"))
            s.execute(text("ANALYZE order_events"))
    fill_s = time.perf_counter() - t
    steps = [
        timed(
            "calendar: holiday inside the windows",
            lambda s: recompute.set_calendar_day(s, day=HOLIDAY, is_workday=False, now=NOW)[1],
        ),
        timed(
            "rule: normal 5 -> 6 working days",
            lambda s: recompute.set_sla_rule(s, spec=sla.RuleSpec(None, "normal", 2, 6), now=NOW)[1],
        ),
        timed(
            "calendar: a day after every window",
            lambda s: recompute.set_calendar_day(s, day=FAR_DAY, is_workday=False, now=NOW)[1],
        ),
    ]
    return {
        "orders": total,
        "running": running,
        "fill_s": round(fill_s, 1),
        "steps": steps,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--running", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="10,000 orders, 4,000 running")
    parser.add_argument("--pg-url", help="also run on this PostgreSQL database (its schema is dropped!)")
    parser.add_argument("--skip-sqlite", action="store_true", help="only the PostgreSQL run")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.running = 10_000, 4_000
    out = (
        {} if args.skip_sqlite else {"sqlite": run(fresh_sqlite_url("recompute"), args.orders, args.running, args.seed)}
    )
    if args.pg_url:
        reset_postgres(args.pg_url)
        out["postgresql"] = run(args.pg_url, args.orders, args.running, args.seed)
    for backend, r in out.items():
        print(f"{backend}: {r['orders']:,} orders, {r['running']:,} running (fill {r['fill_s']} s)")
        for step in r["steps"]:  # type: ignore[attr-defined]
            print(f"  {step['step']}: {step['s']} s (cpu {step['cpu_s']} s), {step['moved']:,} moved")
    if not args.quick:
        print("written", write_result("recompute_postgresql" if args.skip_sqlite else "recompute", out))


if __name__ == "__main__":
    main()
