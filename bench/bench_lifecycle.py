"""One full life cycle through the service layer, timed: create → dispatch → accept → reply → callback → close.

Each cycle is its own sequence of transactions (one per step, as the API will run them), so the figures include
the commit. Prints p50/p99 per cycle and per step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import fresh_sqlite_url, percentiles, reset_postgres, use_database, write_result


def run(url: str, cycles: int) -> dict[str, object]:
    from cityhub.db import session_scope
    from cityhub.intake.service import submit
    from cityhub.org.models import Unit, UnitTier
    from cityhub.workorders import service

    use_database(url)
    with session_scope() as s:
        unit = Unit(code="B-D01", name="城管局", tier=UnitTier.DEPARTMENT)
        s.add(unit)
        s.flush()
        unit_id = unit.id
    actor = service.Actor(name="bench")
    steps: list[tuple[str, dict[str, object]]] = [
        ("dispatch", {"unit_id": unit_id}),
        ("accept", {}),
        ("reply", {"text": "已处理完毕，感谢反映。"}),
        ("callback", {"satisfied": True}),
        ("close", {}),
    ]
    per_step: dict[str, list[float]] = {"create": [], **{name: [] for name, _ in steps}}
    totals: list[float] = []
    for i in range(cycles + 20):
        t0 = time.perf_counter()
        with session_scope() as s:
            order_id = submit(
                s,
                data={
                    "channel": "hotline",
                    "content": f"第{i}号工单：路灯不亮，影响夜间出行",
                    "appeal_type": "complaint",
                },
                actor=actor,
            ).order.id
        t1 = time.perf_counter()
        marks = [("create", t1 - t0)]
        for name, params in steps:
            a = time.perf_counter()
            with session_scope() as s:
                service.act(s, order_id=order_id, action=name, actor=actor, params=params)
            marks.append((name, time.perf_counter() - a))
        if i >= 20:  # warm-up cycles are not counted
            totals.append(time.perf_counter() - t0)
            for name, dt in marks:
                per_step[name].append(dt)
    ms = lambda xs: {k: round(v * 1000, 3) if k != "n" else v for k, v in percentiles(xs).items()}  # noqa: E731
    return {"cycle_ms": ms(totals), "steps_ms": {k: ms(v) for k, v in per_step.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="a 30-cycle smoke run")
    parser.add_argument("--pg-url", help="also run on this PostgreSQL database (its schema is dropped!)")
    args = parser.parse_args()
    if args.quick:
        args.cycles = 30
    results = {"sqlite": run(fresh_sqlite_url("lifecycle"), args.cycles)}
    if args.pg_url:
        reset_postgres(args.pg_url)
        results["postgresql"] = run(args.pg_url, args.cycles)
    for backend, r in results.items():
        c = r["cycle_ms"]
        print(f"{backend}: full cycle p50 {c['p50']} ms, p99 {c['p99']} ms over {c['n']} cycles")  # type: ignore[index]
        for step, s in r["steps_ms"].items():  # type: ignore[attr-defined]
            print(f"  {step:<9} p50 {s['p50']:>8} ms  p99 {s['p99']:>8} ms")
    print("written", write_result("lifecycle", {"cycles": args.cycles, **results}))


if __name__ == "__main__":
    main()
