"""Throughput of the working-time arithmetic (cityhub.workorders.calendar) on one core.

Usage: .venv/bin/python bench/bench_calendar.py [--calls N] [--quick]

Prints add_work_seconds and work_seconds_between calls per second for random start instants in 2025-2026
(UTC-aware inputs, as they come from the database, and Asia/Shanghai-aware inputs) and the time to build
one year of the boundary table; writes bench/results/calendar.json. Target: >= 200,000 add_work_seconds/s.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parent))

from _common import write_result
from cityhub.workorders.calendar import WorkCalendar, parse_working_hours

TARGET = 200_000


def main() -> None:
    parser = argparse.ArgumentParser(description="Working-calendar arithmetic throughput")
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--quick", action="store_true", help="20,000 calls")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    calls = 20_000 if args.quick else args.calls
    # The table reaches into 2027, beyond the built-in holidays: its warning is expected here.
    logging.getLogger("cityhub.workorders.calendar").setLevel(logging.ERROR)

    tz = ZoneInfo("Asia/Shanghai")
    hours = parse_working_hours("09:00-12:00,13:30-18:00")
    rng = random.Random(args.seed)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    starts = [base + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400)) for _ in range(calls)]
    local_starts = [s.astimezone(tz) for s in starts]
    durations = [rng.choice((1800.0, 7200.0, 27000.0, 5 * 27000.0, 15 * 27000.0)) for _ in starts]

    cal = WorkCalendar(tz, hours)
    t0 = time.perf_counter()
    cal.add_work_seconds(base, 1.0)
    first_ms = (time.perf_counter() - t0) * 1000
    cal.add_work_seconds(base + timedelta(days=2 * 366), 30 * 27000.0)  # build the whole range up front

    add_utc = 0.0
    ends: list[datetime] = []
    for _ in range(3):
        t0 = time.perf_counter()
        ends = [cal.add_work_seconds(s, d) for s, d in zip(starts, durations, strict=True)]
        add_utc = max(add_utc, calls / (time.perf_counter() - t0))

    t0 = time.perf_counter()
    for s, d in zip(local_starts, durations, strict=True):
        cal.add_work_seconds(s, d)
    add_local = calls / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for s, e in zip(starts, ends, strict=True):
        cal.work_seconds_between(s, e)
    between = calls / (time.perf_counter() - t0)

    print(f"first call (builds one year of the table)      {first_ms:>12.1f} ms")
    print(f"add_work_seconds, UTC inputs (best of 3)       {add_utc:>12,.0f} calls/s")
    print(f"add_work_seconds, Asia/Shanghai inputs         {add_local:>12,.0f} calls/s")
    print(f"work_seconds_between                           {between:>12,.0f} calls/s")
    print(f"target >= {TARGET:,} add_work_seconds calls/s: {'met' if add_utc >= TARGET else 'NOT met'}")
    path = write_result(
        "calendar",
        {
            "calls": calls,
            "first_call_ms": round(first_ms, 1),
            "add_work_seconds_utc_per_s": round(add_utc),
            "add_work_seconds_local_per_s": round(add_local),
            "work_seconds_between_per_s": round(between),
            "target_per_s": TARGET,
            "python": sys.version.split()[0],
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
