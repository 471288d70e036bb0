"""Demo data generator: pure generation rate with memory over a long stream, and `demo seed` into SQLite.

    .venv/bin/python bench/bench_demo.py [--orders 20000] [--stream 200000] [--seed 1] [--end 2025-06-30]

Writes bench/results/demo.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import fresh_sqlite_url, peak_rss_mb, use_database, write_result


def _current_rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def bench_stream(n: int, seed: int, end: date) -> dict[str, object]:
    """Generate n records without a database; RSS samples along the way show constant memory."""
    from cityhub.demo.generator import generate

    samples: list[tuple[int, float]] = []
    events = 0
    started = time.perf_counter()
    for i, record in enumerate(generate(n, seed, end=end), start=1):
        events += len(record["events"])
        if i % max(1, n // 10) == 0:
            samples.append((i, round(_current_rss_mb(), 1)))
    seconds = time.perf_counter() - started
    return {
        "orders": n,
        "events": events,
        "seconds": round(seconds, 2),
        "orders_per_s": round(n / seconds),
        "rss_mb_samples": samples,
    }


def bench_seed(n: int, seed: int, end: date) -> dict[str, object]:
    from cityhub.db import session_factory
    from cityhub.demo.service import seed_demo

    use_database(fresh_sqlite_url("demo"))
    first = seed_demo(session_factory(), orders=n, seed=seed, end=end)
    again = seed_demo(session_factory(), orders=n, seed=seed, end=end)
    return {
        "orders": n,
        "inserted": first.inserted,
        "events": first.events,
        "seconds": round(first.seconds, 2),
        "orders_per_s": round(n / first.seconds),
        "rerun_inserted": again.inserted,
        "rerun_seconds": round(again.seconds, 2),
        "states": dict(first.states.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000, help="orders for the `demo seed` run")
    parser.add_argument("--stream", type=int, default=200000, help="orders for the pure generation stream")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 6, 30))
    args = parser.parse_args()
    result: dict[str, object] = {}
    if args.stream:
        result["stream"] = bench_stream(args.stream, args.seed, args.end)
        print("stream", result["stream"])
    if args.orders:
        result["seed"] = bench_seed(args.orders, args.seed, args.end)
        print("seed", result["seed"])
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("written", write_result("demo", result))


if __name__ == "__main__":
    main()
