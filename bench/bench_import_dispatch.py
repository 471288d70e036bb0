"""Benchmark: the background dispatcher working through a bulk import, and what live appeals wait meanwhile.

An import with ``--dispatch`` (the web page's 导入后交给自动派单, the API's ``dispatch``) queues every new received
row for the background dispatcher, marked ``bulk``: taken after every order intake queued. This measures both
halves of that promise on real messages:

1. Real 留言 files (by default the board's two files without category labels or replies: ``f3`` hot-topic messages
   and ``f2`` the unlabelled test set — 7,127 rows; the labelled dev files trained the model, and replied rows, such
   as all of ``f4``, are never queued) are imported through the real command line (``cityhub import orders FILE
   --dispatch --quiet --json``) into a fresh database seeded with the Baiyun organisation, the taxonomy and the
   default routing rules, with automatic dispatch on and the classifier ``bench_dispatch.py`` trains on its split of
   the dev files (cached under ``--model-dir``).
2. The production dispatcher process (``cityhub.dispatch.background.process_main``, as ``cityhub serve`` starts it:
   lower CPU priority, warm-up, then rounds of 50) drains the backlog. Polled every 0.2 s: the warm-up (until the
   first bulk rows are decided), the drain time and rate, the outcomes by order state, and the dispatcher's CPU time
   and peak memory (``wait4``).
3. Meanwhile, from the first decided row on, a live appeal is submitted every ``--live-every`` seconds (``--live``
   of them, held-out raw dev messages) through ``intake.submit`` as the API does it (the duplicate check left to the
   dispatcher): how long each waits in the backlog until decided, while thousands of imported rows wait too.

Nothing runs beside the dispatcher but this polling process (no web server): the drain rate is the dispatcher's own.

    .venv/bin/python bench/bench_import_dispatch.py [--live 40] [--live-every 2] [--pg-url URL]
    .venv/bin/python bench/bench_import_dispatch.py --quick      # the f2 file only, 10 live appeals
    .venv/bin/python bench/bench_import_dispatch.py --suggest-only   # automatic dispatch off: decisions kept only

Writes ``bench/results/import_dispatch.{json,md}`` (``import_dispatch_suggest.{json,md}`` with ``--suggest-only``:
automatic dispatch off, the default, where the dispatcher decides for each order and keeps the decision for the
queue without sending it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import RESULTS, fresh_sqlite_url, percentiles, reset_postgres, use_database, write_result
from bench_dispatch import DATA, seed_district, split, train_or_load

ROOT = Path(__file__).resolve().parents[1]
BOARD = Path("../shared/data/teddycup2020_c/csv")
FILES = ("f3_hot_topic_messages_4326.csv", "f2_final_testset_unlabeled_2801.csv")
POLL_S = 0.2
DISPATCHER = "import os; from cityhub.dispatch.background import process_main; process_main(os.getppid())"


_SUMMARY_KEYS = ("read", "imported", "skipped_existing", "rejected", "queued_for_dispatch")


def _import(files: list[Path], env: dict[str, str]) -> dict[str, Any]:
    """Each file through ``cityhub import orders --dispatch``; wall and CPU time of the children, their summaries."""
    summaries = []
    wall = 0.0
    before = os.times()
    for path in files:
        cmd = [str(ROOT / ".venv/bin/cityhub"), "import", "orders", str(path), "--dispatch", "--quiet", "--json"]
        started = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = child.communicate()
        wall += time.perf_counter() - started
        if child.returncode != 0:
            sys.exit(f"import of {path.name} failed ({child.returncode}): {err.strip()}")
        summary = json.loads(out)
        summaries.append({"file": path.name, **{k: summary.get(k) for k in _SUMMARY_KEYS}})
        print(f"imported {path.name}: {summaries[-1]}", flush=True)
    after = os.times()
    cpu = after.children_user + after.children_system - before.children_user - before.children_system
    return {"files": summaries, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def _live_texts(test: list[Any], n: int) -> list[tuple[str, str]]:
    """The first ``n`` raw-form messages of the held-out part of ``bench_dispatch.split``."""
    from cityhub.nlp.text import looks_segmented

    raw = [r for r in test if not looks_segmented(r.text)]
    return [(r.title, r.content) for r in raw[:n]]


def _submit_live(title: str, content: str) -> int:
    from cityhub.db import session_scope
    from cityhub.intake.service import submit

    with session_scope() as s:
        result = submit(
            s, data={"channel": "app", "title": title, "content": content}, similar=False, defer_duplicates=True
        )
        return result.order.id


def _drain(live_texts: list[tuple[str, str]], live_every: float, env: dict[str, str]) -> dict[str, Any]:
    from cityhub.db import session_scope
    from cityhub.dispatch import background

    with session_scope() as s:
        initial = background.status(s)
    if not initial.bulk_orders:
        sys.exit("the import queued nothing (replied rows and orders already present are not queued)")
    launched = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", DISPATCHER], env=env)
    first_decided: float | None = None
    drained: float | None = None
    live: dict[int, float] = {}  # order id → submitted at
    waits: dict[int, float] = {}
    next_live = 0.0
    samples: list[tuple[float, int]] = []
    try:
        while True:
            with session_scope() as s:
                state = background.status(s)
                pending = background.waiting(s, [i for i in live if i not in waits])
            now = time.perf_counter()
            for order_id in live:
                if order_id not in waits and order_id not in pending:
                    waits[order_id] = now - live[order_id]
            if first_decided is None and state.bulk_orders < initial.bulk_orders:
                first_decided = now
                next_live = now
                print(f"dispatcher ready after {now - launched:.1f} s", flush=True)
            if first_decided is not None:
                samples.append((round(now - first_decided, 2), state.bulk_orders))
            if drained is None and state.bulk_orders == 0 and first_decided is not None:
                drained = now
                print(f"bulk backlog drained in {now - first_decided:.1f} s", flush=True)
            if first_decided is not None and len(live) < len(live_texts) and now >= next_live:
                title, content = live_texts[len(live)]
                live[_submit_live(title, content)] = time.perf_counter()
                next_live += live_every
            if drained is not None and len(live) == len(live_texts) and len(waits) == len(live):
                break
            if os.wait4(child.pid, os.WNOHANG)[0]:
                child.returncode = -1  # reaped here: not to be waited for again
                sys.exit("the dispatcher process stopped")
            time.sleep(POLL_S)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(child.pid, 0)
    assert first_decided is not None and drained is not None
    drain_s = drained - first_decided
    during = [w for i, w in waits.items() if live[i] <= drained]

    def ms(seconds: list[float]) -> dict[str, float]:
        return {k: (round(v * 1000) if k != "n" else v) for k, v in percentiles(seconds).items()}

    return {
        "bulk_orders_queued": initial.bulk_orders,
        "warm_up_s": round(first_decided - launched, 1),
        "drain_s": round(drain_s, 1),
        "decisions_per_s": round(initial.bulk_orders / drain_s, 1) if drain_s else None,
        "dispatcher_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "dispatcher_peak_rss_mb": round(usage.ru_maxrss / 1024),
        "dispatcher_exit_status": status,
        "live_appeals": len(live),
        "live_submitted_while_bulk_waited": len(during),
        "live_wait_ms": ms(list(waits.values())),
        "live_wait_ms_while_bulk_waited": ms(during) if len(during) >= 2 else None,
        "backlog_samples": samples[:: max(1, len(samples) // 60)],
    }


def _outcomes() -> dict[str, dict[str, int]]:
    from sqlalchemy import func, select

    from cityhub.db import session_scope
    from cityhub.workorders.models import Order

    with session_scope() as s:
        rows = s.execute(select(Order.channel, Order.state, func.count()).group_by(Order.channel, Order.state)).all()
    by_channel: dict[str, Counter[str]] = {}
    for channel, state, n in rows:
        by_channel.setdefault(str(channel), Counter())[str(state)] += n
    return {channel: dict(counts) for channel, counts in by_channel.items()}


def run(
    url: str,
    model_path: Path,
    files: list[Path],
    live_texts: list[tuple[str, str]],
    live_every: float,
    *,
    auto: bool = True,
) -> dict:
    env = {
        **os.environ,
        "CITYHUB_DATABASE_URL": url,
        "CITYHUB_DISPATCH_AUTO": "1" if auto else "0",
        "CITYHUB_DISPATCH_IN_BACKGROUND": "1",
        "CITYHUB_DISPATCH_MODEL_PATH": str(model_path),
    }
    os.environ.update(env)
    use_database(url)  # also forgets the cached settings
    seed_district()
    imported = _import(files, env)
    drained = _drain(live_texts, live_every, env)
    return {
        "import": imported,
        "drain": drained,
        "orders_by_channel_and_state": _outcomes(),
        "decisions_kept_undispatched": _kept(),
    }


def _kept() -> int:
    """Decisions stored for orders still waiting (automatic dispatch off: every decided order's)."""
    from sqlalchemy import func, select

    from cityhub.db import session_scope
    from cityhub.dispatch.models import DispatchSuggestion

    with session_scope() as s:
        return int(s.scalar(select(func.count()).where(DispatchSuggestion.dispatched.is_(False))) or 0)


def markdown(result: dict[str, Any]) -> str:
    mode = (
        "automatic dispatch on"
        if result.get("auto", True)
        else "automatic dispatch off: each order decided and the decision kept for the queue, none sent"
    )
    lines = [
        "# Background dispatch of a bulk import",
        "",
        f"Measured {result['measured_at']} on {os.cpu_count()} cores; model `{result['model']}`; {mode}.",
        "",
        "| back end | rows queued | import wall / CPU | dispatcher warm-up | drain | decisions/s | dispatcher CPU | "
        "peak RSS | live appeals: wait p50 / p95 / max (n) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, rep in result["backends"].items():
        d, i = rep["drain"], rep["import"]
        w = d["live_wait_ms"]
        lines.append(
            f"| {backend} | {d['bulk_orders_queued']:,} | {i['wall_s']} s / {i['cpu_s']} s | {d['warm_up_s']} s | "
            f"{d['drain_s']} s | {d['decisions_per_s']} | {d['dispatcher_cpu_s']} s | "
            f"{d['dispatcher_peak_rss_mb']} MB | "
            f"{w['p50']} / {w['p95']} / {w['max']} ms ({w['n']}, {d['live_submitted_while_bulk_waited']} while "
            "imported rows waited) |"
        )
    lines += ["", "Orders by channel and state after the drain:", ""]
    for backend, rep in result["backends"].items():
        lines.append(
            f"- {backend}: `{json.dumps(rep['orders_by_channel_and_state'], ensure_ascii=False)}`; decisions kept for "
            f"waiting orders: {rep.get('decisions_kept_undispatched', '—')}"
        )
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", type=Path, help="files to import (default: the board's f3 and f2)")
    parser.add_argument("--live", type=int, default=40, help="live appeals submitted while the backlog drains")
    parser.add_argument("--live-every", type=float, default=2.0, help="seconds between live appeals")
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/cityhub-bench-dispatch-models"))
    parser.add_argument("--pg-url", help="also run on this throw-away PostgreSQL database (public schema dropped)")
    parser.add_argument("--quick", action="store_true", help="the f2 file only, 10 live appeals")
    parser.add_argument(
        "--suggest-only", action="store_true", help="automatic dispatch off (the default): decisions kept, none sent"
    )
    args = parser.parse_args()
    auto = not args.suggest_only
    name = "import_dispatch" if auto else "import_dispatch_suggest"
    if not DATA.is_dir() or not BOARD.is_dir():
        sys.exit(f"data not found: {DATA} / {BOARD} (run from the project root, with ../shared/data beside it)")
    files = args.files or [BOARD / name for name in (FILES[1:] if args.quick else FILES)]
    live = 10 if args.quick else args.live

    train, test, _ = split(1, 0.2)
    _, model_path, seconds = train_or_load(train, args.model_dir)
    if seconds is not None:
        print(f"trained the model in {seconds:.1f} s", flush=True)
    live_texts = _live_texts(test, live)
    result: dict[str, Any] = {
        "command": "python bench/bench_import_dispatch.py " + " ".join(sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": model_path.name,
        "live_every_s": args.live_every,
        "auto": auto,
        "backends": {},
    }
    result["backends"]["sqlite"] = run(
        fresh_sqlite_url("import-dispatch"), model_path, files, live_texts, args.live_every, auto=auto
    )
    if args.pg_url:
        reset_postgres(args.pg_url)
        result["backends"]["postgresql"] = run(args.pg_url, model_path, files, live_texts, args.live_every, auto=auto)
    for backend, rep in result["backends"].items():
        print(backend, json.dumps({k: v for k, v in rep["drain"].items() if k != "backlog_samples"}))
    write_result(name, result)
    (RESULTS / f"{name}.md").write_text(markdown(result), encoding="utf-8")
    print(f"wrote {RESULTS / name}.json and {name}.md")


if __name__ == "__main__":
    main()
