"""Benchmark the order page (/orders/{id}): its weight and render time for each role, by the order's state.

Signs each demo account in through the login form and fetches, through the ASGI app (``TestClient``: the page as
served, one process), the page of the first order of each state below that the account may open — an order waiting
for dispatch (received), a dispatched one, one in progress and a replied one —, ``--repeat`` times: the page's bytes,
its ``<option>`` elements (the long lists of units and categories are most of them) and the median and p95 time.
Needs an existing demo database (``cityhub demo seed --orders 3000``; its accounts, password ``cityhub-demo``; the
seed leaves orders in each of these states): ``--db URL``. Results are merged into ``bench/results/order_page.json``
(one key per backend and label) and ``order_page.md`` is written from it.

    flock /tmp/cityhub-bench.lock python bench/bench_order_page.py --db sqlite:////tmp/demo/c.db --label after
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from typing import Any

from _common import merge_run, percentiles
from bench_order_tabs import _signed_in
from cityhub.api import compression

USERS = "dispatcher,admin,supervisor,handler"
STATES = ("received", "dispatched", "in_progress", "replied")


def _time_page(client: Any, path: str, repeat: int) -> dict[str, Any]:
    times, page = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        page = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
    assert page is not None
    body = page.content
    return {
        "status": page.status_code,
        "bytes": len(body),
        # What travels: the server gzips at this level (api/compression.py) unless CITYHUB_HTTP_GZIP_MIN_BYTES is 0.
        "gzip": len(gzip.compress(body, compression.LEVEL)),
        "options": body.count(b"<option"),
        "ms": percentiles(times),
    }


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# The order page's weight and render time",
        "",
        "`bench/bench_order_page.py`: `GET /orders/{id}` through the ASGI app (`TestClient`, one process, signed in), "
        "each role's page of the first order of each state it may open; bytes of the page, "
        "gzipped as the server sends it (level 6; before 2026-12-07 it sent the page uncompressed), `<option>` "
        "elements counted, milliseconds median / p95 (compression included from then).",
        "",
    ]
    for key, run in data.items():
        lines += [
            f"## {key} — {run['orders']} orders, {run['repeat']} requests a page, {run['measured_at']}",
            "",
            "| account | order state | bytes | gzip | options | ms median | ms p95 |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for case in run["cases"]:
            r = case["result"]
            lines.append(
                f"| {case['user']} | {case['state']} | {r['bytes']:,} | {r.get('gzip', 0):,} | {r['options']} "
                f"| {r['ms']['p50']:.0f} | {r['ms']['p95']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="an existing demo database (cityhub demo seed)")
    ap.add_argument("--label", default="db", help="the results' key beside the backend (e.g. before, after)")
    ap.add_argument("--repeat", type=int, default=10, help="requests per page (default 10)")
    ap.add_argument("--users", default=USERS, help=f"demo accounts, comma-separated (default {USERS})")
    ap.add_argument("--password", default="cityhub-demo")
    ap.add_argument("--results-name", default="order_page")
    args = ap.parse_args()
    os.environ["CITYHUB_DATABASE_URL"] = args.db
    os.environ.setdefault("CITYHUB_LOG_LEVEL", "WARNING")
    from sqlalchemy import func, select

    from cityhub.db import reset_engine, session_scope
    from cityhub.main import create_app
    from cityhub.workorders.models import Order

    reset_engine()
    with session_scope() as s:
        total = int(s.scalar(select(func.count()).select_from(Order)) or 0)
        by_state = {
            state: list(s.scalars(select(Order.id).where(Order.state == state).order_by(Order.id))) for state in STATES
        }
    app = create_app()
    cases = []
    for user in args.users.split(","):
        client = _signed_in(app, user, args.password)
        for state in STATES:
            # the first order of the state this account may open (a handler's: their unit's)
            found = next((i for i in by_state[state] if client.get(f"/orders/{i}").status_code == 200), None)
            if found is None:
                continue
            result = _time_page(client, f"/orders/{found}", args.repeat)
            cases.append({"user": user, "state": state, "order": found, "result": result})
            print(f"{user:12} {state:12} #{found:<6} {json.dumps(result)}", flush=True)
    run = {"orders": total, "repeat": args.repeat, "cases": cases}
    path = merge_run(args.results_name, args.db, args.label, run, render_markdown)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
