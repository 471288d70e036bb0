"""Benchmark assessment (考核) and the analysis report on a demo database.

Seeds N demo orders (``cityhub demo seed --no-extras``, default 1,000,000 over 3 years; ``--quick``: 20,000 over
1 year) into a fresh SQLite file, or into the PostgreSQL database ``--seed-into URL`` (its schema is dropped
first) — or reuses a database with ``--db URL`` (nothing is written to it) — then times, for the last full
month of the history: all eight KPIs of every unit (``kpi.compute``), the composite ranking, the drill-downs of
the busiest unit (each KPI's) and of the busiest street, that unit's own row of every KPI, and the report (HTML +
xlsx; PDF too unless ``--no-pdf``). Each of those is computed afresh (the kept figures forgotten before it); the
period's figures asked again — every unit's, the dashboard's ranking of streets, one unit's row, the report — are
timed too (``repeat_*``, ``report_kept_s``: answered from ``kpi.compute``'s cache after checking that nothing they
read has changed). Results go to ``bench/results/kpi_<backend>_<N|db>.json``.

The KPIs read the events of the period (index on ``order_events.at``) and correlated look-ups per order, so
their cost follows the month's volume; ``--years`` sets how many months the N orders spread over.

    .venv/bin/python bench/bench_kpi.py --quick
    .venv/bin/python bench/bench_kpi.py --db sqlite:////tmp/kpi/dev.db --period 2026-10
    .venv/bin/python bench/bench_kpi.py --n 1000000            # seeding alone takes ~20 min on 2 cores
    .venv/bin/python bench/bench_kpi.py --n 200000 --years 0.6 --seed-into "$(scripts/pg-test-cluster start)"
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from _common import peak_rss_mb, write_result

ROOT = Path(__file__).resolve().parents[1]
END = date(2026, 10, 31)


def _seed(url: str, n: int, years: float) -> float:
    if url.startswith("postgresql"):
        sys.path.insert(0, str(Path(__file__).parent))
        from _common import reset_postgres

        reset_postgres(url)
    # `demo seed` only runs in the demo environment; --no-extras leaves out what it adds for a usable demo (logins,
    # classifier training, knowledge base, routing rules, hot-topic mining), which is not what is timed here.
    env = {**os.environ, "CITYHUB_DATABASE_URL": url, "CITYHUB_ENVIRONMENT": "demo"}
    cli = [str(ROOT / ".venv/bin/cityhub")]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    seed = [*cli, "demo", "seed", "--orders", str(n), "--years", str(years), "--end", END.isoformat(), "--seed", "7"]
    t = time.perf_counter()
    done = subprocess.run([*seed, "--no-extras"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"demo seed failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--years", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true", help="20,000 orders over one year")
    ap.add_argument("--db", help="use this existing database instead of seeding one")
    ap.add_argument("--seed-into", help="seed into this (PostgreSQL) database, dropping its schema first")
    ap.add_argument("--period", help="period to measure (default: the last full month of the history)")
    ap.add_argument("--no-pdf", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.n, args.years = 20_000, 1.0
    result: dict[str, Any] = {}
    tmp = None
    if args.db:
        url, label = args.db, "db"
    elif args.seed_into:
        url, label = args.seed_into, str(args.n)
        result["seed_seconds"] = round(_seed(url, args.n, args.years), 1)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-kpi-")
        url, label = f"sqlite:///{tmp.name}/kpi.db", str(args.n)
        result["seed_seconds"] = round(_seed(url, args.n, args.years), 1)
    os.environ["CITYHUB_DATABASE_URL"] = url
    from sqlalchemy import func, select

    from cityhub.analytics import kpi, reports
    from cityhub.db import reset_engine, session_scope
    from cityhub.workorders.models import Order, OrderEvent

    reset_engine()
    # The machine's load when the run starts and ends (a shared machine: the wall times follow the others' load).
    result["load_start"] = [round(x, 2) for x in os.getloadavg()]
    period = kpi.parse_period(args.period or f"{END:%Y-%m}")  # END is the last day of a month
    timings: dict[str, float] = {}
    with session_scope() as s:
        result["orders"] = s.scalar(select(func.count()).select_from(Order))
        result["events"] = s.scalar(select(func.count()).select_from(OrderEvent))
        result["orders_in_period"] = s.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.created_at >= period.start, Order.created_at < period.end)
        )
        kpi.clear_cache()
        t, cpu = time.perf_counter(), time.process_time()
        rows = kpi.compute(s, period=period)
        timings["compute_all_kpis_s"] = time.perf_counter() - t
        # This process's CPU time besides the wall time: on a shared machine the wall time follows the others' load.
        timings["compute_all_kpis_cpu_s"] = time.process_time() - cpu
        # Asked again, as the dashboard, 单位考核 and the API ask: kept figures checked and answered.
        computed = kpi.computations
        asks = {
            "repeat_all_kpis": lambda: kpi.compute(s, period=period),
            "repeat_street_ranking": lambda: kpi.ranking(s, period=period, tier="street"),
            "repeat_one_unit": lambda: kpi.compute(
                s, period=period, unit_ids=[max(rows, key=lambda r: r.sample).unit_id]
            ),
        }
        for name, ask in asks.items():
            t, cpu = time.perf_counter(), time.process_time()
            ask()
            timings[f"{name}_s"] = time.perf_counter() - t
            timings[f"{name}_cpu_s"] = time.process_time() - cpu
        assert kpi.computations == computed, "asked again, the figures were computed again"
        per_kpi = {}
        for k in kpi.KPIS:
            kpi.clear_cache()
            t = time.perf_counter()
            kpi.compute(s, period=period, kpis=[k.name])
            per_kpi[k.name] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        ranking = kpi.rank(rows, min_sample=kpi.DEFAULT_MIN_SAMPLE)
        timings["ranking_s"] = time.perf_counter() - t
        busiest = max(rows, key=lambda r: r.sample)
        t, cpu = time.perf_counter(), time.process_time()
        dd = kpi.drilldown(s, unit=busiest.unit_id, kpi="on_time_completion", period=period)
        timings["drilldown_s"] = time.perf_counter() - t
        timings["drilldown_cpu_s"] = time.process_time() - cpu
        # Each KPI's drill-down of the busiest unit, and the completion drill-down of the busiest unit of each tier (a
        # street's counts its communities' facts with its own): what `cityhub analytics drilldown` and
        # `GET /api/v1/kpi/drilldown` answer. One unit's row of every KPI is what its staff get from `GET /api/v1/kpi`.
        drill_per_kpi, drill_per_kpi_cpu = {}, {}
        for k in kpi.KPIS:
            t, cpu = time.perf_counter(), time.process_time()
            kpi.drilldown(s, unit=busiest.unit_id, kpi=k.name, period=period)
            drill_per_kpi[k.name] = round(time.perf_counter() - t, 3)
            drill_per_kpi_cpu[k.name] = round(time.process_time() - cpu, 3)
        drill_by_tier: dict[str, dict[str, Any]] = {}
        for tier in ("street", "community", "department"):
            of_tier = [r for r in rows if r.tier == tier]
            if not of_tier:
                continue
            unit = max(of_tier, key=lambda r: r.sample)
            t, cpu = time.perf_counter(), time.process_time()
            drilled = kpi.drilldown(s, unit=unit.unit_id, kpi="on_time_completion", period=period)
            drill_by_tier[tier] = {
                "unit": unit.code,
                "rows": len(drilled.denominator),
                "s": round(time.perf_counter() - t, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
            }
        kpi.clear_cache()
        t, cpu = time.perf_counter(), time.process_time()
        kpi.compute(s, period=period, unit_ids=[busiest.unit_id])
        timings["compute_one_unit_s"] = time.perf_counter() - t
        timings["compute_one_unit_cpu_s"] = time.process_time() - cpu
        formats = ("html", "xlsx") if args.no_pdf else ("html", "pdf", "xlsx")
        out = Path(tempfile.mkdtemp(prefix="bench-kpi-report-"))
        kpi.clear_cache()
        t = time.perf_counter()
        files = reports.generate(s, period=period, out_dir=out, formats=formats)
        timings["report_s"] = time.perf_counter() - t
        t = time.perf_counter()
        reports.generate(s, period=period, out_dir=out, formats=formats)  # its figures kept from the first
        timings["report_kept_s"] = time.perf_counter() - t
    result.update(
        period=period.label,
        units=len(rows),
        ranked=len(ranking.ranked),
        insufficient=len(ranking.insufficient),
        drilldown_rows=len(dd.denominator),
        drilldown_unit=busiest.code,
        drilldown_per_kpi_s=drill_per_kpi,
        drilldown_per_kpi_cpu_s=drill_per_kpi_cpu,
        drilldown_busiest_of_tier=drill_by_tier,
        per_kpi_s=per_kpi,
        report_files={k: str(v) for k, v in files.files.items()},
        **{k: round(v, 3) for k, v in timings.items()},
    )
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    result["backend"] = backend
    result["peak_rss_mb"] = round(peak_rss_mb())
    result["years"] = args.years
    result["load_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result(f"kpi_{backend}_{label}", result)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"written to {path}", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
