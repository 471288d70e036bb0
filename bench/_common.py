"""Shared helpers of the benchmark scripts: fresh databases, timing, peak memory, result files."""

from __future__ import annotations

import json
import os
import resource
import statistics
import tempfile
from pathlib import Path
from typing import Any

# Where the figures go: bench/results/ (committed), or CITYHUB_BENCH_RESULTS — `make bench` points it at a
# throw-away directory, so its smoke runs never overwrite the measured figures.
RESULTS = Path(os.environ.get("CITYHUB_BENCH_RESULTS") or Path(__file__).parent / "results")


def fresh_sqlite_url(name: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix=f"cityhub-bench-{name}-"))
    return f"sqlite:///{folder / 'bench.db'}"


def use_database(url: str) -> None:
    """Point the product at ``url`` and migrate it."""
    from cityhub import db, migrate

    os.environ["CITYHUB_DATABASE_URL"] = url
    db.reset_engine()
    migrate.upgrade(url)


def reset_postgres(url: str) -> None:
    """Drop and recreate the public schema of a throw-away benchmark database."""
    from sqlalchemy import text

    from cityhub.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": ordered[-1], "n": len(ordered)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def merge_run(name: str, db_url: str, label: str, run: dict[str, Any], render: Any) -> Path:
    """Merge one run into ``results/NAME.json`` under ``BACKEND-LABEL`` (the backend read from ``db_url``), stamped
    with its time, and write ``NAME.md`` from the whole file by ``render`` (its data → Markdown)."""
    from datetime import UTC, datetime

    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    path = RESULTS / f"{name}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[f"{backend}-{label}"] = {
        "backend": backend,
        **run,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(render(data))
    return path


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    return path
