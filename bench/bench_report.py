"""The analysis report (专报): its first build in a process, cold and in a server kept warm, and a repeated build.

Reuses a seeded database (``--db URL``; nothing is written to it) — at district scale the demo of 200,000 orders
over three years with its hot topics mined:

    CITYHUB_DATABASE_URL=sqlite:////tmp/reportspeed/c.db CITYHUB_ENVIRONMENT=demo cityhub db upgrade
    CITYHUB_DATABASE_URL=sqlite:////tmp/reportspeed/c.db CITYHUB_ENVIRONMENT=demo \\
        cityhub demo seed --orders 200000 --years 3 --seed 7
    CITYHUB_DATABASE_URL=sqlite:////tmp/reportspeed/c.db cityhub analytics hot-topics

then, for each period (default: last month and this month), ``--repeat`` fresh processes of each kind:

* ``cold``: the first report of a process that has built none (the command line; a server before this branch's
  warm-up): the figures (``build_report``, each section timed), the HTML (``render_html``) and the workbook
  (``write_xlsx``), as ``GET /api/v1/kpi/report`` makes one format of them;
* ``served``: the same first report in a process that has first run what ``cityhub serve``'s warm-up thread runs
  (``kpi.keep_warm``, then ``reports.keep_warm`` where the code has it — timed as ``warm_up_s``), then the report
  again (``repeat_s``: everything kept).

``--src DIR`` runs the processes on another checkout's ``src`` (the code before a change: ``git archive``), so
before and after are timed on the same database in the same conditions. Medians of the runs; the load average at
the start and the end. Writes ``bench/results/report<--name>.json``.

    .venv/bin/python bench/bench_report.py --db sqlite:////tmp/reportspeed/c.db [--period 2026-11 --period 2026-12]
        [--repeat 5] [--src /tmp/old/src --name _before]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import write_result

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = (
    "_grouped",
    "_count",
    "_daily",
    "findings",
    "hot_topics_for_period",
    "enterprise_needs",
    "draw_charts",
)


def _child(mode: str, period_text: str) -> dict[str, Any]:
    """One process's timings (run in a fresh interpreter by :func:`main`)."""
    import functools

    t = time.perf_counter()
    from cityhub.analytics import kpi, reports
    from cityhub.db import session_factory
    from cityhub.dispatch import outcomes

    imported = time.perf_counter() - t
    sections: dict[str, float] = {}

    def timed(module: Any, name: str, label: str) -> None:
        f = getattr(module, name)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                sections[label] = sections.get(label, 0.0) + time.perf_counter() - start

        setattr(module, name, wrapper)

    period = kpi.parse_period(period_text)
    out: dict[str, Any] = {"import_s": imported}
    with session_factory()() as session:
        if mode == "served":
            t = time.perf_counter()
            kpi.keep_warm(session)
            warmed = getattr(reports, "keep_warm", None)
            out["reports_kept_warm"] = warmed is not None
            if warmed is not None:
                warmed(session)
            out["warm_up_s"] = time.perf_counter() - t
            session.rollback()
        for name in SECTIONS:
            timed(reports, name, name)
        timed(kpi, "compute", "kpis")
        timed(outcomes, "outcomes", "dispatch_outcomes")
        folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
        for run in ("first", "repeat") if mode == "served" else ("first",):
            sections.clear()
            t = time.perf_counter()
            data = reports.build_report(session, period=period)
            built = time.perf_counter()
            reports.render_html(data)
            rendered = time.perf_counter()
            reports.write_xlsx(data, folder / "report.xlsx")
            written = time.perf_counter()
            out[f"{run}_s"] = written - t
            out[f"{run}_parts"] = {
                "build": built - t,
                "html": rendered - built,
                "xlsx": written - rendered,
                **{k: round(v, 4) for k, v in sections.items()},
            }
            session.rollback()
        out["orders"] = data.total
    return out


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return round(statistics.median(values), 3) if values else None


def _median_parts(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    names = {n for r in runs for n in r.get(key, {})}
    return {n: round(statistics.median(r[key].get(n, 0.0) for r in runs if key in r), 3) for n in sorted(names)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="database URL of a seeded district (read only)")
    ap.add_argument("--period", action="append", help="period(s) to time (default: last month and this month)")
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes of each kind per period")
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the code to time (a checkout's src)")
    ap.add_argument("--name", default="", help="suffix of the result file (report<NAME>.json)")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PERIOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    today = date.today()
    this_month = f"{today:%Y-%m}"
    last = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    periods = args.period or [f"{last:%Y-%m}", this_month]
    env = {**os.environ, "CITYHUB_DATABASE_URL": args.db, "PYTHONPATH": str(args.src.resolve())}
    result: dict[str, Any] = {
        "db": args.db,
        "src": str(args.src),
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_start": [round(x, 2) for x in os.getloadavg()],
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "periods": {},
    }
    for period in periods:
        runs: dict[str, list[dict[str, Any]]] = {"cold": [], "served": []}
        for _ in range(args.repeat):
            for mode in ("cold", "served"):  # alternating, so both see the same load
                done = subprocess.run(
                    [sys.executable, __file__, "--db", args.db, "--child", mode, period],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
        cold, served = runs["cold"], runs["served"]
        figures = {
            "orders": cold[0]["orders"],
            "cold_first_s": _median(cold, "first_s"),
            "cold_parts": _median_parts(cold, "first_parts"),
            "served_warm_up_s": _median(served, "warm_up_s"),
            "served_first_s": _median(served, "first_s"),
            "served_parts": _median_parts(served, "first_parts"),
            "repeat_s": _median(served, "repeat_s"),
            "reports_kept_warm": served[0].get("reports_kept_warm"),
            "runs": runs,
        }
        result["periods"][period] = figures
        print(
            period,
            {k: v for k, v in figures.items() if k not in ("runs", "cold_parts", "served_parts")},
            "\n  cold parts",
            figures["cold_parts"],
            "\n  served parts",
            figures["served_parts"],
            flush=True,
        )
    result["load_end"] = [round(x, 2) for x in os.getloadavg()]
    print("load", result["load_start"], "→", result["load_end"])
    print("wrote", write_result(f"report{args.name}", result))


if __name__ == "__main__":
    main()
