"""Benchmark the one map (一张图): latency of its layers through the real app on a large demo database.

Seeds N demo orders (``cityhub demo seed --no-extras``, default 200,000 over one year ending today; ``--quick``:
20,000) into a fresh SQLite file, or into the PostgreSQL database ``--seed-into URL`` (its schema is dropped first),
or reuses ``--db URL``. The demo's history is mostly closed, so ``--open-share`` (default 0.5) of the orders are then
set open (``in_progress``, one in ten of those overdue) with one UPDATE — the map's orders layer reads open orders,
and a district with 100,000 of them is what it must stay fast for. Nothing else about the orders changes.

Then times requests through the ASGI app (``TestClient``, bearer tokens: the routes, the data scope, the masking and
the JSON as served) for a district administrator (sees all in clear), a district leader (sees all masked) and a
street's handler (its street): the orders layer at district zoom (11, whole district: grid cells), at zoom 13 (a
third of the district: finer cells), at street zoom (15, a street's few square kilometres: single orders) and at
zoom 14 over a third of the district (a browser's view at that zoom, more than ``MAX_POINTS`` orders in it: cells
again); the units layer, the indicators and the hotspots, each cold (first request: the per-process caches empty)
and warm. Each warm case runs ``--repeat`` times after one warm-up. The orders layer's grid cells are kept 15 s per
view and scope (the polls of several screens share one scan): its cases empty the caches before each request, so
they time the scan, except the one marked cached. Results are merged into
``bench/results/map.json`` (one key per backend and size) and ``bench/results/map.md`` is written from it.

    flock /tmp/cityhub-bench.lock python bench/bench_map.py --quick
    flock /tmp/cityhub-bench.lock python bench/bench_map.py                      # 200,000 orders on SQLite
    flock /tmp/cityhub-bench.lock python bench/bench_map.py --seed-into "$(scripts/pg-test-cluster start)"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from _common import RESULTS, peak_rss_mb, percentiles

ROOT = Path(__file__).resolve().parents[1]
DISTRICT_BBOX = "113.15,23.14,113.50,23.45"
THIRD_BBOX = "113.20,23.15,113.32,23.26"
# About 3 × 2.5 km around 三元里 / 景泰 (the demo's densest streets).
STREET_BBOX = "113.250,23.160,113.280,23.185"


def _seed(url: str, n: int, years: float) -> float:
    if url.startswith("postgresql"):
        from _common import reset_postgres

        reset_postgres(url)
    env = {**os.environ, "CITYHUB_DATABASE_URL": url, "CITYHUB_ENVIRONMENT": "demo"}
    cli = [sys.executable, "-m", "cityhub.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    seed = [*cli, "demo", "seed", "--orders", str(n), "--years", str(years), "--end", date.today().isoformat()]
    t = time.perf_counter()
    done = subprocess.run([*seed, "--seed", "7", "--no-extras"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"demo seed failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
    return time.perf_counter() - t


def _open_up(share: float) -> int:
    """Set ``share`` of all orders open (in_progress; one in ten of them overdue); returns the open count."""
    from sqlalchemy import func, select, text, update

    from cityhub.db import session_scope
    from cityhub.workorders.lifecycle import OPEN_STATES, State
    from cityhub.workorders.models import Order, SlaStatus

    every = max(1, round(1 / share)) if share > 0 else 0
    with session_scope() as s:
        if every:
            closed = Order.state.not_in(sorted(OPEN_STATES))
            s.execute(update(Order).where(closed, Order.id % every == 0).values(state=State.IN_PROGRESS))
            s.execute(
                update(Order)
                .where(Order.state == State.IN_PROGRESS, Order.id % (every * 10) == 0)
                .values(sla_status=SlaStatus.OVERDUE)
            )
    with session_scope() as s:
        s.execute(text("ANALYZE"))
        return int(s.scalar(select(func.count()).select_from(Order).where(Order.state.in_(sorted(OPEN_STATES)))) or 0)


def _callers() -> dict[str, dict[str, str]]:
    """Bearer headers of a district administrator, a district leader and the handler of the busiest street."""
    from sqlalchemy import func, select

    from cityhub.auth.service import create_token
    from cityhub.db import session_scope
    from cityhub.org.models import Role, Unit, UnitTier, User
    from cityhub.workorders.models import Order

    with session_scope() as s:
        district = s.scalar(select(Unit.id).where(Unit.tier == UnitTier.DISTRICT).order_by(Unit.id))
        street = s.scalar(
            select(Order.street_id)
            .where(Order.street_id.is_not(None))
            .group_by(Order.street_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        heads = {}
        for name, role, unit in (
            ("bench-map-admin", Role.ADMIN, district),
            ("bench-map-leader", Role.LEADER, district),
            ("bench-map-street", Role.HANDLER, street),
        ):
            user = s.scalar(select(User).where(User.username == name))
            if user is None:
                user = User(username=name, full_name=name, role=role, unit_id=unit)
                s.add(user)
                s.flush()
            heads[name.rsplit("-", 1)[1]] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='b')[1]}"}
    return heads


def _time(client: Any, path: str, headers: dict[str, str], repeat: int, *, uncached: bool = False) -> dict[str, Any]:
    from cityhub.onemap import service

    response = client.get(path, headers=headers)  # warm-up (and the answer's shape)
    if response.status_code != 200:
        sys.exit(f"{path}: {response.status_code} {response.text[:300]}")
    body = response.json()
    samples = []
    for _ in range(repeat):
        if uncached:
            service.clear_caches()
        t = time.perf_counter()
        client.get(path, headers=headers)
        samples.append((time.perf_counter() - t) * 1000)
    out: dict[str, Any] = {k: round(v, 1) for k, v in percentiles(samples).items() if k != "n"}
    out["n"] = repeat
    if "features" in body:
        out["features"] = len(body["features"])
        if "mode" in body:
            out["mode"] = body["mode"]
            out["orders"] = body.get("total", len(body["features"]))
    out["bytes"] = len(response.content)
    return out


def _cold(client: Any, path: str, headers: dict[str, str]) -> float:
    from cityhub.onemap import service

    service.clear_caches()
    t = time.perf_counter()
    response = client.get(path, headers=headers)
    if response.status_code != 200:
        sys.exit(f"{path}: {response.status_code} {response.text[:300]}")
    return round((time.perf_counter() - t) * 1000, 1)


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# One map (一张图): layer latency",
        "",
        "Written by `bench/bench_map.py` (see its docstring and `bench/README.md`). Milliseconds through the ASGI app "
        "(`TestClient`, bearer token), one process; the uncached cases empty the per-process caches before each "
        "request.",
        "",
    ]
    for key, run in sorted(data.items()):
        lines += [
            f"## {key}",
            "",
            f"{run['orders']:,} orders, {run['open']:,} open with {run['open_placed']:,} placed on the map; "
            f"{run['backend']}; seeded in {run.get('seed_seconds', '—')} s; peak RSS {run['peak_rss_mb']} MB; "
            f"measured {run['measured_at']}.",
            "",
            "| case | caller | mode | orders / features | n | p50 | p95 | max | bytes |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for case in run["cases"]:
            r = case["result"]
            count = f"{r.get('orders', '')} / {r.get('features', '')}" if "orders" in r else str(r.get("features", ""))
            lines.append(
                f"| {case['case']} | {case['caller']} | {r.get('mode', '')} | {count} | {r['n']} | {r['p50']} | "
                f"{r['p95']} | {r['max']} | {r['bytes']:,} |"
            )
        lines += [
            "",
            "Cold (first request, caches empty), ms: " + ", ".join(f"{k} {v}" for k, v in run["cold"].items()),
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--years", type=float, default=1.0)
    ap.add_argument("--open-share", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="20,000 orders, 5 repeats")
    ap.add_argument("--db", help="use this existing database (the open share is still applied)")
    ap.add_argument("--sqlite-file", help="seed into this SQLite file when it does not exist, else reuse it")
    ap.add_argument("--seed-into", help="seed into this (PostgreSQL) database, dropping its schema first")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeat = 20_000, 5
    result: dict[str, Any] = {}
    tmp = None
    if args.sqlite_file:
        url, label = f"sqlite:///{Path(args.sqlite_file).resolve()}", str(args.n)
        if not Path(args.sqlite_file).exists():
            Path(args.sqlite_file).parent.mkdir(parents=True, exist_ok=True)
            result["seed_seconds"] = round(_seed(url, args.n, args.years), 1)
    elif args.db:
        url, label = args.db, "db"
    elif args.seed_into:
        url, label = args.seed_into, str(args.n)
        result["seed_seconds"] = round(_seed(url, args.n, args.years), 1)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-map-")
        url, label = f"sqlite:///{tmp.name}/map.db", str(args.n)
        result["seed_seconds"] = round(_seed(url, args.n, args.years), 1)
    os.environ["CITYHUB_DATABASE_URL"] = url
    os.environ.setdefault("CITYHUB_LOG_LEVEL", "WARNING")
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from cityhub.db import reset_engine, session_scope
    from cityhub.main import create_app
    from cityhub.workorders.lifecycle import OPEN_STATES
    from cityhub.workorders.models import Order

    reset_engine()
    result["open"] = _open_up(args.open_share)
    with session_scope() as s:
        result["orders"] = int(s.scalar(select(func.count()).select_from(Order)) or 0)
        result["open_placed"] = int(
            s.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.state.in_(sorted(OPEN_STATES)), Order.lat.is_not(None), Order.lng.is_not(None))
            )
            or 0
        )
    heads = _callers()
    layer = "/api/v1/map/layers/orders"
    cases = [
        ("orders, district zoom 11", "admin", f"{layer}?zoom=11&bbox={DISTRICT_BBOX}"),
        ("orders, district zoom 11", "leader", f"{layer}?zoom=11&bbox={DISTRICT_BBOX}"),
        ("orders, district zoom 11", "street", f"{layer}?zoom=11&bbox={DISTRICT_BBOX}"),
        ("orders, zoom 13, a third of the district", "admin", f"{layer}?zoom=13&bbox={THIRD_BBOX}"),
        ("orders, street zoom 15", "admin", f"{layer}?zoom=15&bbox={STREET_BBOX}"),
        ("orders, street zoom 15", "leader", f"{layer}?zoom=15&bbox={STREET_BBOX}"),
        ("orders, zoom 14, a third of the district (too many: cells)", "admin", f"{layer}?zoom=14&bbox={THIRD_BBOX}"),
        ("orders, district zoom 11 (cells cached 15 s)", "admin", f"{layer}?zoom=11&bbox={DISTRICT_BBOX}"),
        ("orders, district zoom 11, one category, last 7 days", "admin", None),
        ("units (counts cached 15 s)", "admin", "/api/v1/map/layers/units"),
        ("units, uncached", "admin", "/api/v1/map/layers/units"),
        ("units, uncached", "street", "/api/v1/map/layers/units"),
        ("indicators (cached: counts 15 s, rate 60 s, findings 5 min)", "admin", "/api/v1/map/indicators"),
        ("indicators, uncached", "admin", "/api/v1/map/indicators"),
        ("indicators, uncached", "street", "/api/v1/map/indicators"),
        ("hotspots (findings cached 5 min)", "admin", "/api/v1/map/layers/hotspots"),
        ("hotspots, uncached", "admin", "/api/v1/map/layers/hotspots"),
        ("hotspots, uncached", "street", "/api/v1/map/layers/hotspots"),
    ]
    with session_scope() as s:
        from cityhub.workorders.models import Category

        category = s.scalar(select(Category.id).where(Category.level == 1).order_by(Category.id))
    since = (time.time() - 7 * 86400) * 1000
    from datetime import UTC, datetime

    since_iso = datetime.fromtimestamp(since / 1000, UTC).isoformat().replace("+00:00", "Z")
    measured = []
    cold: dict[str, float] = {}
    with TestClient(create_app(), raise_server_exceptions=True) as client:
        for name, path in (
            ("units", "/api/v1/map/layers/units"),
            ("indicators", "/api/v1/map/indicators"),
            ("hotspots", "/api/v1/map/layers/hotspots"),
        ):
            cold[name] = _cold(client, path, heads["admin"])
        for case, caller, path in cases:
            if path is None:
                path = f"{layer}?zoom=11&bbox={DISTRICT_BBOX}&category_id={category}&since={since_iso}"
            uncached = "uncached" in case
            repeat = min(args.repeat, 5) if uncached else args.repeat
            scan = uncached or (path.startswith(layer) and "cached" not in case)  # the orders layer: its scan
            r = _time(client, path, heads[caller], repeat, uncached=scan)
            measured.append({"case": case, "caller": caller, "path": path, "result": r})
            print(f"{case:55} {caller:7} {r}", flush=True)
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    result.update(
        backend=backend,
        cases=measured,
        cold=cold,
        peak_rss_mb=round(peak_rss_mb()),
        repeat=args.repeat,
        measured_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count(),
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "map.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[f"{backend}_{label}"] = result
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    (RESULTS / "map.md").write_text(render_markdown(data))
    print(f"written to {path} and map.md", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
