"""Sensor readings: ingestion throughput and the cost of evaluating alarm rules, on SQLite and PostgreSQL.

S sensors (default 200) report every minute for H hours (default 24: 288,000 readings). A fifth of them live
through a "storm" (depth over the 15 cm limit for about an hour, noisy around it), so alarms are raised,
repeated (de-duplicated), cleared and open orders through intake, as in production.

Three measurements per backend, each on a fresh database:

- **per-minute batches** — what an IoT gateway does: every minute one request with all sensors' readings
  (``monitoring.service.ingest`` in its own committed transaction): batches/s, readings/s, p50/p99 per batch;
- **the same without rules** — the rules deactivated: the difference is what evaluating the rules costs;
- **one file** — the whole period through ``import_readings`` (``cityhub sensors readings FILE``), in one
  transaction, in batches of ``CITYHUB_READING_BATCH_MAX``.

Plus the pure evaluation (``monitoring.rules.evaluate``) of every sensor's series without a database.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import fresh_sqlite_url, peak_rss_mb, percentiles, reset_postgres, use_database, write_result

START = datetime(2026, 11, 1, tzinfo=UTC)


def readings(sensors: int, hours: int, seed: int = 7) -> list[list[dict[str, Any]]]:
    """One batch per minute: every sensor's depth (cm)."""
    rng = random.Random(seed)
    minutes = hours * 60
    storms = {s: rng.randrange(0, max(1, minutes - 90)) for s in range(sensors) if s % 5 == 0}
    batches = []
    for minute in range(minutes):
        at = (START + timedelta(minutes=minute)).isoformat()
        batch = []
        for s in range(sensors):
            depth = max(0.0, rng.gauss(2, 1))
            start = storms.get(s)
            if start is not None and start <= minute < start + 75:
                depth = 16 + 10 * rng.random() - (4 if rng.random() < 0.1 else 0)  # noise dips under the limit
            batch.append({"sensor_code": f"BS-{s:04d}", "measured_at": at, "value": round(depth, 1)})
        batches.append(batch)
    return batches


def setup(url: str, sensors: int, *, rules: bool) -> None:
    from cityhub.db import session_scope
    from cityhub.monitoring import service
    from cityhub.monitoring.schemas import RuleCreate, SensorCreate
    from cityhub.org.models import Unit, UnitTier

    use_database(url)
    with session_scope() as s:
        district = Unit(code="BS-QU", name="基准区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        streets = [
            Unit(code=f"BS-J{i}", name=f"基准{i}街道", tier=UnitTier.STREET, parent_id=district.id) for i in range(10)
        ]
        s.add_all(streets)
        s.flush()
        for i in range(sensors):
            service.create_sensor(
                s,
                data=SensorCreate(
                    code=f"BS-{i:04d}",
                    name=f"基准积水点{i}",
                    kind="waterlogging",
                    metrics={"depth": "cm"},
                    unit_code=f"BS-J{i % 10}",
                ),
            )
        service.create_rule(
            s,
            data=RuleCreate(
                name="积水超过 15 厘米",
                sensor_kind="waterlogging",
                metric="depth",
                comparison=">",
                threshold=15,
                clear_threshold=5,
                duration_s=600,
                severity="critical",
                active=rules,
            ),
        )


def per_minute(url: str, batches: list[list[dict[str, Any]]], sensors: int, *, rules: bool) -> dict[str, Any]:
    from cityhub.db import session_scope
    from cityhub.monitoring import service

    setup(url, sensors, rules=rules)
    now = START + timedelta(days=400)
    times: list[float] = []
    raised = repeated = cleared = orders = 0
    started = time.perf_counter()
    for batch in batches:
        t = time.perf_counter()
        with session_scope() as s:
            result = service.ingest(s, items=batch, now=now)
        times.append(time.perf_counter() - t)
        raised += result.alarms_raised
        repeated += result.alarms_repeated
        cleared += result.alarms_cleared
        orders += result.orders_opened
    wall = time.perf_counter() - started
    n = sum(len(b) for b in batches)
    return {
        "readings": n,
        "batches": len(batches),
        "wall_s": round(wall, 2),
        "readings_per_s": round(n / wall),
        "batch_ms": {k: round(v * 1000, 2) if k != "n" else v for k, v in percentiles(times).items()},
        "alarms_raised": raised,
        "alarms_repeated": repeated,
        "alarms_cleared": cleared,
        "orders_opened": orders,
    }


def one_file(url: str, batches: list[list[dict[str, Any]]], sensors: int) -> dict[str, Any]:
    from cityhub.db import session_scope
    from cityhub.monitoring import service

    setup(url, sensors, rules=True)
    rows = [(i + 2, item) for i, item in enumerate(item for batch in batches for item in batch)]
    started = time.perf_counter()
    with session_scope() as s:
        report = service.import_readings(s, rows=rows)
    wall = time.perf_counter() - started
    assert report.ingest is not None
    return {
        "readings": len(rows),
        "wall_s": round(wall, 2),
        "readings_per_s": round(len(rows) / wall),
        "alarms_raised": report.ingest.alarms_raised,
        "orders_opened": report.ingest.orders_opened,
    }


def pure(batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    from cityhub.monitoring.rules import Comparison, EvalState, RuleSpec, evaluate

    series: dict[str, list[tuple[datetime, float]]] = {}
    for batch in batches:
        for item in batch:
            series.setdefault(item["sensor_code"], []).append(
                (datetime.fromisoformat(item["measured_at"]), item["value"])
            )
    spec = RuleSpec(Comparison.GT, 15, clear_threshold=5, duration_s=600)
    started = time.perf_counter()
    transitions = sum(len(evaluate(spec, EvalState(), values).transitions) for values in series.values())
    wall = time.perf_counter() - started
    n = sum(len(v) for v in series.values())
    return {"readings": n, "wall_s": round(wall, 3), "readings_per_s": round(n / wall), "transitions": transitions}


def run(url_factory: Any, batches: list[list[dict[str, Any]]], sensors: int) -> dict[str, Any]:
    result = {}
    for name, call in (
        ("per_minute", lambda url: per_minute(url, batches, sensors, rules=True)),
        ("per_minute_no_rules", lambda url: per_minute(url, batches, sensors, rules=False)),
        ("one_file", lambda url: one_file(url, batches, sensors)),
    ):
        result[name] = call(url_factory())
        print(f"  {name}: {result[name]}", flush=True)
    with_rules, without = result["per_minute"]["wall_s"], result["per_minute_no_rules"]["wall_s"]
    result["evaluation_share"] = round(max(0.0, with_rules - without) / with_rules, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="20 sensors × 2 hours")
    parser.add_argument("--pg-url", help="also run on this PostgreSQL database (its schema is dropped!)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sensors, args.hours = 20, 2
    batches = readings(args.sensors, args.hours)
    results: dict[str, Any] = {"sensors": args.sensors, "hours": args.hours, "pure": pure(batches)}
    print(f"pure evaluation: {results['pure']}", flush=True)
    if not args.skip_sqlite:
        print("sqlite:", flush=True)
        results["sqlite"] = run(lambda: fresh_sqlite_url("sensors"), batches, args.sensors)
    if args.pg_url:

        def fresh_pg() -> str:
            reset_postgres(args.pg_url)
            return str(args.pg_url)

        print("postgresql:", flush=True)
        results["postgresql"] = run(fresh_pg, batches, args.sensors)
    results["peak_rss_mb"] = round(peak_rss_mb())
    name = "sensors" if not args.quick else "sensors_quick"
    print("written", write_result(name, results))


if __name__ == "__main__":
    main()
