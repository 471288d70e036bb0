"""HTTP load benchmark of the REST API: filtered GET /api/v1/orders pages and POST /api/v1/orders creation.

Fills a fresh database with N imported orders (default 1,000,000; ``--quick`` = 20,000) through
``cityhub import orders`` (the CSV comes from ``bench_import.generate``), starts ``cityhub serve --no-scheduler``
as a child process on a free 127.0.0.1 port, logs in a bench admin, makes an API token, then loads the server
from this process with asyncio + httpx: filtered pages at 10 and 50 concurrent clients and order creation at 50
concurrent clients, each a fixed number of requests under a time limit. Reports p50/p95/p99 latency,
requests/s and errors (status >= 400 or exceptions) per scenario and backend, and the load average at start
and end, to ``bench/results/api[_quick].json`` and ``.md``.

    .venv/bin/python bench/bench_api.py --quick
    .venv/bin/python bench/bench_api.py                          # 1,000,000 orders on SQLite
    .venv/bin/python bench/bench_api.py --pg-url "$(scripts/pg-test-cluster start)"   # also PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from _common import RESULTS, percentiles, write_result
from bench_import import PLACES, PROBLEMS, SITES, generate, run_import

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv/bin/cityhub")
TARGETS = {"get": 100.0, "post": 50.0}  # p95 in ms, from the issue
CHANNELS = ["hotline", "web", "app", "grid", "import"]
STATES = ["received", "dispatched", "in_progress", "replied", "closed_resolved"]
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_params(rng: random.Random) -> dict[str, Any]:
    """One varied filtered page; dates fall inside the generated 2018-2020 span."""
    kind = rng.randrange(5)
    year = rng.choice([2018, 2019, 2020])
    month = rng.randint(1, 12)
    if kind == 0:
        return {"state": rng.choice(STATES), "limit": 50}
    if kind == 1:
        return {"channel": rng.choice(CHANNELS), "limit": 50, "offset": rng.choice([0, 50, 100])}
    if kind == 2:
        return {
            "created_from": f"{year}-{month:02d}-01T00:00:00+08:00",
            "created_to": f"{year}-{month:02d}-28T00:00:00+08:00",
            "limit": 50,
        }
    if kind == 3:
        return {"overdue": rng.choice(["true", "false"]), "limit": 20}
    # A text search on a recent (one-week) window, as a desk clerk would run it.
    day = rng.randint(1, 20)
    return {
        "q": rng.choice(PROBLEMS)[0],
        "created_from": f"2020-12-{day:02d}T00:00:00+08:00",
        "created_to": f"2020-12-{day + 7:02d}T00:00:00+08:00",
        "limit": 20,
    }


def post_body(rng: random.Random, i: int) -> dict[str, Any]:
    place, site = rng.choice(PLACES), rng.choice(SITES)
    title, detail = rng.choice(PROBLEMS)
    return {
        "channel": rng.choice(["hotline", "web", "app", "grid"]),
        "external_id": f"bench-{os.getpid()}-{i}",
        "title": f"{place}{site}{title}",
        "content": f"{place}{site}：{detail}（第{i}号来电，{rng.randint(1, 30)}栋{rng.randint(1, 30)}号附近）",
        "citizen_name": rng.choice(NAMES),
        "citizen_phone": f"138{rng.randint(0, 99_999_999):08d}",
        "address": f"{place}{site}{rng.randint(1, 200)}号",
    }


async def run_scenario(
    client: httpx.AsyncClient,
    *,
    method: str,
    concurrency: int,
    requests: int,
    time_limit: float,
    make: Callable[[random.Random, int], dict[str, Any]],
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(requests))
    deadline = time.perf_counter() + time_limit

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for i in counter:  # shared iterator: the total is bounded by ``requests``
            if time.perf_counter() > deadline:
                return
            payload = make(rng, i)
            t0 = time.perf_counter()
            try:
                if method == "GET":
                    resp = await client.get("/api/v1/orders", params=payload)
                else:
                    resp = await client.post("/api/v1/orders", json=payload)
                if resp.status_code >= 400:
                    key = str(resp.status_code)
                    errors[key] = errors.get(key, 0) + 1
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                errors[key] = errors.get(key, 0) + 1
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    stats = {k: round(v, 1) for k, v in percentiles(latencies).items()} if len(latencies) > 1 else {}
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": stats,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "timed_out": len(latencies) < requests,
    }


async def load(base: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30.0) as client:
        # Warm-up so the first measured requests do not pay for imports and cold caches.
        for k in range(10):
            await client.get("/api/v1/orders", params=get_params(random.Random(k)))
        for conc in (10, 50):
            out[f"get_filtered_c{conc}"] = await run_scenario(
                client,
                method="GET",
                concurrency=conc,
                requests=args.get_requests,
                time_limit=args.time_limit,
                make=lambda rng, i: get_params(rng),
            )
            print(f"  GET c={conc}: {out[f'get_filtered_c{conc}']}", flush=True)
        out["post_create_c50"] = await run_scenario(
            client,
            method="POST",
            concurrency=50,
            requests=args.post_requests,
            time_limit=args.time_limit,
            make=post_body,
        )
        print(f"  POST c=50: {out['post_create_c50']}", flush=True)
    return out


def bench_backend(url: str, label: str, csv_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"import": run_import(url, csv_path, args.n, label)}
    env = {**os.environ, "CITYHUB_DATABASE_URL": url, "CITYHUB_SESSION_COOKIE_SECURE": "false"}
    password = "bench-Passw0rd-" + str(os.getpid())
    made = subprocess.run(
        [CLI, "users", "create", "--username", "bench", "--role", "admin", "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if made.returncode != 0:
        sys.exit(f"{label}: users create failed: {made.stderr}")
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"bench-api-{label}.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [CLI, "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # bounded wait for /healthz
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            sys.exit(f"{label}: server did not come up, see {log.name}")
        with httpx.Client(base_url=base, timeout=30) as c:
            r = c.post("/api/v1/auth/login", json={"username": "bench", "password": password})
            r.raise_for_status()
            csrf = r.json()["csrf_token"]
            r = c.post("/api/v1/auth/tokens", json={"name": "bench"}, headers={"X-CSRF-Token": csrf})
            r.raise_for_status()
            token = r.json()["token"]
        result["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
        result["scenarios"] = asyncio.run(load(base, token, args))
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return result


def to_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# API load benchmark ({data['orders']:,} orders)",
        "",
        f"Machine: 2 cores, shared with other helpers (load average shown per backend). Targets: GET p95 < "
        f"{TARGETS['get']:.0f} ms, POST p95 < {TARGETS['post']:.0f} ms at 50 clients, 0 errors.",
        "",
        "| backend | scenario | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        if backend not in data:
            continue
        for name, s in data[backend]["scenarios"].items():
            lat = s["latency_ms"]
            target = TARGETS["get" if name.startswith("get") else "post"]
            ok = lat.get("p95", 1e9) < target and s["errors"] == 0
            lines.append(
                f"| {backend} | {name} | {s['concurrency']} | {s['requests']} | {s['requests_per_s']} | "
                f"{lat.get('p50')} | {lat.get('p95')} | {lat.get('p99')} | {s['errors']} {s['error_kinds'] or ''} | "
                f"{'met' if ok else 'MISSED'} |"
            )
        la0, la1 = data[backend]["load_average_start"], data[backend]["load_average_end"]
        lines.append("")
        lines.append(f"{backend}: load average start {la0}, end {la1}.")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="orders to import first (default 1,000,000)")
    parser.add_argument("--pg-url", help="a throw-away PostgreSQL database (its schema is dropped first)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--quick", action="store_true", help="20,000 orders and fewer requests")
    parser.add_argument("--get-requests", type=int, default=2000, help="requests per GET scenario")
    parser.add_argument("--post-requests", type=int, default=1000, help="requests of the POST scenario")
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds per scenario at most")
    args = parser.parse_args()
    if args.quick:
        args.n, args.get_requests, args.post_requests = 20_000, 500, 300
    name = "api_quick" if args.quick else "api"
    data: dict[str, Any] = {"orders": args.n}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "orders.csv"
        generate(csv_path, args.n)
        if not args.no_sqlite:
            print("sqlite:", flush=True)
            data["sqlite"] = bench_backend(f"sqlite:///{folder / 'bench.db'}", "sqlite", csv_path, args)
            write_result(name, data)
        if args.pg_url:
            print("postgresql:", flush=True)
            data["postgresql"] = bench_backend(args.pg_url, "postgresql", csv_path, args)
    print(f"written to {write_result(name, data)}")
    (RESULTS / f"{name}.md").write_text(to_markdown(data))


if __name__ == "__main__":
    main()
