"""Benchmark the order list's tab counts (常用视图): the page with and without them, on a large demo database.

Times ``GET /orders`` — each demo account's own order list (a handler's 在办, everyone else's ``/orders``) and its
超期 tab's list — through the ASGI app (``TestClient``, signed in through the login form: the page as served), with
the quick views' counts (``web.routes._view_counts``) and with them replaced by zeros, alternating request by request
so that the machine's load falls on both alike; and the counts alone (the time spent in ``_view_counts`` during the
requests with counts). Needs an existing demo database (``cityhub demo seed --orders 200000``; its accounts, password
``cityhub-demo``): ``--db URL``. ``--open-share F`` first sets that share of the orders open (in_progress, one in ten
of them overdue; ``bench_map._open_up``) — it changes the database: use a copy. Results are merged into
``bench/results/order_tabs.json`` (one key per backend and label) and ``order_tabs.md`` is written from it.

    flock /tmp/cityhub-bench.lock python bench/bench_order_tabs.py --db sqlite:////tmp/tabs/c.db --label demo-200k
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Any

from _common import merge_run, percentiles

USERS = "handler,street_handler,community_handler,supervisor,street_dispatcher,leader,admin"


def _signed_in(app: Any, username: str, password: str) -> Any:
    from fastapi.testclient import TestClient

    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=True)  # the cookies are Secure
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    if token is None:
        sys.exit("no login form")
    answer = client.post(
        "/login",
        data={"csrf_token": token.group(1), "username": username, "password": password},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        hint = "a demo database? its password? a --no-extras seed sets none"
        sys.exit(f"{username} cannot sign in: {answer.status_code} ({hint})")
    return client


def _tabs(html: str) -> dict[str, str]:
    """The tabs' addresses → the count each shows."""
    found = re.findall(r'<a href="([^"]*)" data-testid="quick-view"[^>]*>[^<]*<span[^>]*>([^<]*)</span>', html)
    return {href.replace("&amp;", "&"): shown for href, shown in found}


def _time_page(client: Any, path: str, repeat: int) -> dict[str, Any]:
    """The page ``repeat`` times with the counts and ``repeat`` times without, alternating; the counts' own time."""
    from cityhub.web import routes

    counted = routes._view_counts
    spent: list[float] = []

    def timed_counts(*args: Any, **kwargs: Any) -> dict[str, int]:
        t = time.perf_counter()
        try:
            return counted(*args, **kwargs)
        finally:
            spent.append((time.perf_counter() - t) * 1000)

    def zeros(reader: Any, views: Any, t: Any) -> dict[str, int]:
        return {view.key: 0 for view in views}

    samples: dict[str, list[float]] = {"with": [], "without": []}
    html = ""
    try:
        for i in range(repeat + 1):  # the first round warms up both
            for case, counts in (("with", timed_counts), ("without", zeros)):
                routes._view_counts = counts  # type: ignore[assignment]
                t = time.perf_counter()
                answer = client.get(path)
                elapsed = (time.perf_counter() - t) * 1000
                if answer.status_code != 200:
                    sys.exit(f"{path}: {answer.status_code}")
                if i:
                    samples[case].append(elapsed)
                elif case == "with":
                    html = answer.text
    finally:
        routes._view_counts = counted  # type: ignore[assignment]
    out: dict[str, Any] = {}
    for case, values in samples.items():
        p = percentiles(values)
        out[case] = {"p50": round(p["p50"], 1), "p95": round(p["p95"], 1)}
    p = percentiles(spent[1:])
    out["counts"] = {"p50": round(p["p50"], 1), "p95": round(p["p95"], 1)}
    out["tabs"] = _tabs(html)
    return out


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# The order list's tab counts (常用视图)",
        "",
        "Written by `bench/bench_order_tabs.py` (see its docstring and `bench/README.md`). Milliseconds per `GET` "
        "through the ASGI app (`TestClient`, one process, signed in), with the tabs' counts and with zeros in their "
        "place, alternating; `counts` is the time the counting took inside the requests with them.",
        "",
    ]
    for key, run in sorted(data.items()):
        lines += [
            f"## {key}",
            "",
            f"{run['orders']:,} orders, {run['open']:,} open; {run['backend']}; {run['repeat']} requests each; "
            f"measured {run['measured_at']}.",
            "",
            "| account | page | tabs: counts shown | with p50 / p95 | without p50 / p95 | counts p50 / p95 |",
            "|---|---|---|---:|---:|---:|",
        ]
        for case in run["cases"]:
            r = case["result"]
            shown = ", ".join(r["tabs"].values())
            lines.append(
                f"| {case['user']} | `{case['path']}` | {shown} | {r['with']['p50']} / {r['with']['p95']} | "
                f"{r['without']['p50']} / {r['without']['p95']} | {r['counts']['p50']} / {r['counts']['p95']} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="an existing demo database (cityhub demo seed)")
    ap.add_argument("--label", default="db", help="the results' key beside the backend (e.g. demo-200k)")
    ap.add_argument("--open-share", type=float, help="first set this share of the orders open (changes the database)")
    ap.add_argument("--repeat", type=int, default=20, help="requests per page and case (default 20)")
    ap.add_argument("--users", default=USERS, help=f"demo accounts, comma-separated (default {USERS})")
    ap.add_argument("--password", default="cityhub-demo")
    ap.add_argument("--results-name", default="order_tabs")
    args = ap.parse_args()
    os.environ["CITYHUB_DATABASE_URL"] = args.db
    os.environ.setdefault("CITYHUB_LOG_LEVEL", "WARNING")
    from sqlalchemy import func, select

    from cityhub.db import reset_engine, session_scope
    from cityhub.main import create_app
    from cityhub.web.support import HANDLER_WORKBENCH
    from cityhub.workorders.lifecycle import OPEN_STATES
    from cityhub.workorders.models import Order

    reset_engine()
    if args.open_share is not None:
        from bench_map import _open_up

        _open_up(args.open_share)
    with session_scope() as s:
        total = int(s.scalar(select(func.count()).select_from(Order)) or 0)
        open_now = int(s.scalar(select(func.count()).select_from(Order).where(Order.state.in_(OPEN_STATES))) or 0)
    app = create_app()
    cases = []
    for user in args.users.split(","):
        client = _signed_in(app, user, args.password)
        home = client.get("/", follow_redirects=False).headers.get("location")
        first = HANDLER_WORKBENCH if home == HANDLER_WORKBENCH else "/orders"  # a handler's list is their 在办
        for path in (first, "/orders?overdue=1&sort=due"):
            result = _time_page(client, path, args.repeat)
            cases.append({"user": user, "path": path, "result": result})
            print(f"{user:18} {path:40} {json.dumps(result, ensure_ascii=False)}", flush=True)
    run = {"orders": total, "open": open_now, "repeat": args.repeat, "cases": cases}
    path = merge_run(args.results_name, args.db, args.label, run, render_markdown)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
