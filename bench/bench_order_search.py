"""Benchmark the full-text order search (全文检索): the order list with ``q`` through the index and the old LIKE.

Fills a fresh database with N orders (default 1,000,000 on SQLite; ``--db-url`` a throw-away PostgreSQL database,
whose public schema is dropped first) through the bulk writer (``intake.bulk.write_orders``: search terms computed,
index kept by its triggers / GIN index, one create event per order), the texts combined from a pool of realistic
demo orders (``demo.generator``: the title, content and address of three different pool orders), over three years.
One order in 10,000 carries a rare phrase in its content (``RARE``), none carries the absent ones (``ABSENT``).

Then times ``workorders.service.search_order_rows`` — the API's order list, a page of 50 newest first, no count —
for common terms, rare terms, absent terms and several words, through the index and through the search before it
(``text_index=False``: one LIKE over number, title, content and address), ``--repeat`` times each after one
warm-up (the LIKE path ``--like-repeat`` times: it reads the whole table), plus how many orders each query finds.
Reports the index's size on disk and the migration 0020 over the filled table (its own ``copy_terms`` and
``create_index``, then the column dropped, after the terms were put back in a column of ``orders`` and the index
dropped: the upgrade of a database at 0019 that had these orders).
Results are merged into ``bench/results/order_search.json`` (one key per backend and size) and
``bench/results/order_search.md`` is written from it.

    flock /tmp/cityhub-bench.lock python bench/bench_order_search.py                    # 1,000,000 on SQLite
    flock /tmp/cityhub-bench.lock python bench/bench_order_search.py --orders 20000     # a smoke run
    flock /tmp/cityhub-bench.lock python bench/bench_order_search.py --orders 200000 --db-url "$PG_URL"
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import RESULTS, fresh_sqlite_url, peak_rss_mb, percentiles, reset_postgres, use_database

# By how many of the demo texts hold them: 白云区 every order (its addresses), 反映 a third, 小区/物业/垃圾 8–16 %,
# 噪音扰民/停车 about 2 %.
COMMON = ["白云区", "反映", "垃圾", "物业", "小区", "噪音扰民", "停车"]
RARE = ["蓝鲸充电桩", "紫藤花架坍塌", "鹦鹉扰民"]
ABSENT = ["量子纠缠", "火星基地", "独角兽"]
SEVERAL = ["嘉禾 停车", "小区 漏水 楼上", "路灯 不亮"]
RARE_EVERY = 10_000
BATCH = 5_000


def _pool(size: int, seed: int) -> list[tuple[str, str, str | None]]:
    from cityhub.demo.generator import generate

    return [(r["title"], r["content"], r.get("address")) for r in generate(size, seed, years=1.0)]


def fill(n: int, pool_size: int, seed: int) -> dict[str, Any]:
    """Write ``n`` orders through the bulk writer; returns timings."""
    from cityhub.db import session_scope
    from cityhub.intake.bulk import tune_for_bulk, write_orders

    rng = random.Random(seed)
    t = time.perf_counter()
    pool = _pool(pool_size, seed)
    pool_s = time.perf_counter() - t
    end = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(days=3 * 365) / max(n, 1)
    start = end - step * n
    t = time.perf_counter()
    written = 0
    while written < n:
        records = []
        for i in range(written, min(n, written + BATCH)):
            title = rng.choice(pool)[0]
            content = rng.choice(pool)[1]
            address = rng.choice(pool)[2]
            if i % RARE_EVERY == RARE_EVERY // 2:
                content = f"{content}附近的{RARE[(i // RARE_EVERY) % len(RARE)]}问题请处理"
            records.append(
                {
                    "channel": "hotline",
                    "appeal_type": "complaint",
                    "title": title,
                    "content": content,
                    "address": address,
                    "created_at": start + step * i,
                }
            )
        with session_scope() as s:
            tune_for_bulk(s)
            write_orders(s, records, prefix="SB")
        written += len(records)
        if written % 100_000 < BATCH:
            print(f"  {written:,} orders, {written / (time.perf_counter() - t):,.0f}/s", flush=True)
    fill_s = time.perf_counter() - t
    return {
        "pool_orders": pool_size,
        "pool_s": round(pool_s, 1),
        "fill_s": round(fill_s, 1),
        "orders_per_s": round(n / fill_s),
    }


def write_cost(n: int, pool_size: int, seed: int, pg_url: str | None = None) -> dict[str, Any]:
    """What the search costs the bulk writer: ``n`` orders written into a fresh database as the product does, and
    into another without it (no terms computed; SQLite: no index triggers or batch indexing, PostgreSQL: no GIN)."""
    from cityhub import db
    from cityhub.intake import bulk
    from cityhub.workorders import search

    out: dict[str, Any] = {"orders": n}
    writing = bulk._insert_search_terms
    for label in ("with_search", "without_search"):
        if pg_url:
            reset_postgres(pg_url)
        use_database(pg_url or fresh_sqlite_url(f"order-search-{label}"))
        if label == "without_search":
            with db.session_scope() as s:
                conn = s.connection()
                for statement in search.PG_DROP if pg_url else search.SQLITE_DROP[:3]:  # the index / its triggers
                    conn.exec_driver_sql(statement)
            bulk._insert_search_terms = lambda *_: None  # type: ignore[assignment]
        try:
            out[label] = fill(n, pool_size, seed)
        finally:
            bulk._insert_search_terms = writing  # type: ignore[method-assign]
    out["slowdown"] = round(out["without_search"]["orders_per_s"] / out["with_search"]["orders_per_s"], 2)
    return out


def _analyze() -> None:
    from sqlalchemy import text

    from cityhub.db import session_scope

    with session_scope() as s:
        s.execute(text("ANALYZE"))


def time_queries(repeat: int, like_repeat: int) -> dict[str, Any]:
    from cityhub.db import session_scope
    from cityhub.workorders import service
    from cityhub.workorders.schemas import OrderFilter

    def once(q: str, index: bool) -> tuple[float, int]:
        with session_scope() as s:
            t = time.perf_counter()
            rows, _, _ = service.search_order_rows(
                s,
                filters=OrderFilter(q=q),
                columns=["id", "number", "title", "created_at"],
                limit=50,
                text_index=index,
            )
            return time.perf_counter() - t, len(rows)

    def total(q: str) -> int:
        with session_scope() as s:
            _, _, count = service.search_order_rows(s, filters=OrderFilter(q=q), columns=["id"], limit=1, count=True)
            return int(count or 0)

    out: dict[str, Any] = {}
    for kind, queries in (("common", COMMON), ("rare", RARE), ("absent", ABSENT), ("several_words", SEVERAL)):
        for q in queries:
            entry: dict[str, Any] = {"kind": kind}
            t = time.perf_counter()
            entry["matches"] = total(q)
            entry["count_s"] = round(time.perf_counter() - t, 3)
            for path, n in (("index", repeat), ("like", like_repeat)):
                once(q, path == "index")  # warm-up
                times, found = [], 0
                for _ in range(n):
                    seconds, found = once(q, path == "index")
                    times.append(seconds * 1000)
                stats = percentiles(times) if len(times) > 1 else {"p50": times[0], "p95": times[0], "n": 1}
                entry[path] = {
                    "p50_ms": round(stats["p50"], 1),
                    "p95_ms": round(stats["p95"], 1),
                    "n": n,
                    "page": found,
                }
            print(
                f"  {kind:14} {q:10} matches {entry['matches']:>8,}  index p50 {entry['index']['p50_ms']:>8} ms"
                f"  like p50 {entry['like']['p50_ms']:>8} ms",
                flush=True,
            )
            out[q] = entry
    return out


def index_size(backend: str) -> dict[str, Any]:
    from sqlalchemy import text

    from cityhub.db import session_scope
    from cityhub.workorders import search

    with session_scope() as s:
        if backend == "sqlite":
            rows = s.execute(
                text(
                    "SELECT name, sum(pgsize) FROM dbstat "
                    "WHERE name LIKE 'order_fts%' OR name IN ('orders', 'order_search') GROUP BY name"
                )
            ).all()
            sizes = {name: int(size) for name, size in rows}
            fts = sum(v for k, v in sizes.items() if k.startswith("order_fts"))
            total = s.execute(text("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")).scalar()
            return {
                "index_mb": round(fts / 2**20, 1),
                "terms_table_mb": round(sizes.get("order_search", 0) / 2**20, 1),
                "orders_table_mb": round(sizes.get("orders", 0) / 2**20, 1),
                "database_mb": round(int(total or 0) / 2**20, 1),
            }
        index = s.execute(text("SELECT pg_relation_size(:index)"), {"index": search.PG_INDEX}).scalar()
        terms = s.execute(text("SELECT pg_table_size('order_search')")).scalar()
        table = s.execute(text("SELECT pg_total_relation_size('orders')")).scalar()
        return {
            "index_mb": round(int(index or 0) / 2**20, 1),
            "terms_table_mb": round(int(terms or 0) / 2**20, 1),
            "orders_total_mb": round(int(table or 0) / 2**20, 1),
        }


def backfill() -> dict[str, Any]:
    """Migration 0020 over the filled table, as a database at 0019 holds it (the terms in a column of ``orders``;
    put back first): the terms copied, the index built, the column dropped."""
    from cityhub import migrate
    from cityhub.db import session_scope
    from cityhub.workorders import search

    mod = migrate.scripts().get_revision("0020_order_search_table").module
    with session_scope() as s:
        conn = s.connection()
        search.drop_index(conn)
        conn.exec_driver_sql("ALTER TABLE orders ADD COLUMN search_terms TEXT")
        conn.exec_driver_sql(
            "UPDATE orders SET search_terms = (SELECT terms FROM order_search WHERE order_id = orders.id)"
        )
        conn.exec_driver_sql("DELETE FROM order_search")
        done = int(conn.exec_driver_sql("SELECT count(*) FROM orders").scalar() or 0)
    with session_scope() as s:
        conn = s.connection()
        t = time.perf_counter()
        computed = mod.copy_terms(conn)
        terms_s = time.perf_counter() - t
        t = time.perf_counter()
        mod.create_index(conn)
        index_s = time.perf_counter() - t
        t = time.perf_counter()
        conn.exec_driver_sql("ALTER TABLE orders DROP COLUMN search_terms")
        drop_s = time.perf_counter() - t
        t = time.perf_counter()
    commit_s = time.perf_counter() - t
    total = terms_s + index_s + drop_s + commit_s
    return {
        "orders": done,
        "computed_again": computed,
        "terms_s": round(terms_s, 1),
        "index_s": round(index_s, 1),
        "drop_column_s": round(drop_s, 1),
        "commit_s": round(commit_s, 1),
        "total_s": round(total, 1),
        "s_per_million": round(total / max(done, 1) * 1e6, 1),
    }


def _fill_line(run: dict[str, Any]) -> str:
    fill, size, refill = run.get("fill", {}), run.get("size", {}), run.get("backfill", {})
    parts = []
    if fill:
        parts.append(
            f"Filled through `write_orders` in {fill['fill_s']} s ({fill['orders_per_s']:,} orders/s, search included)."
        )
    if size:
        table = size.get("orders_table_mb", size.get("orders_total_mb"))
        database = f", database {size['database_mb']} MB" if "database_mb" in size else ""
        terms = (  # runs from before migration 0020 held the terms in a column of orders
            f"`order_search` table {size['terms_table_mb']} MB"
            if "terms_table_mb" in size
            else f"`search_terms` column {size['terms_column_mb']} MB"
        )
        parts.append(f"Index {size['index_mb']} MB, {terms} (orders table {table} MB{database}).")
    if refill and "drop_column_s" not in refill:  # runs from before migration 0020
        parts.append(
            f"Migration 0018 over these orders: terms {refill['terms_s']} s + index {refill['index_s']} s + commit "
            f"{refill['commit_s']} s = {refill['total_s']} s ({refill['s_per_million']} s per million)."
        )
    elif refill:
        parts.append(
            f"Migration 0020 over these orders: terms copied {refill['terms_s']} s + index {refill['index_s']} s + "
            f"column dropped {refill['drop_column_s']} s + commit {refill['commit_s']} s = {refill['total_s']} s "
            f"({refill['s_per_million']} s per million)."
        )
    return " ".join(parts)


def write_markdown(results: dict[str, Any]) -> None:
    lines = [
        "# Full-text order search (全文检索)",
        "",
        "`bench/bench_order_search.py`: the order list (`search_order_rows`, a page of 50 newest first, no count) "
        "with `q`, through the index and through the LIKE search it replaced (`text_index=False`). Times in ms "
        "(LIKE: 3 runs); matches = all orders the query finds; count = the same list with `count=true`, in s.",
        "",
    ]
    for key, run in sorted(results.items()):
        if key.endswith("_write_cost"):
            backend = "SQLite" if key.startswith("sqlite") else "PostgreSQL"
            how = "each batch indexed in one statement" if backend == "SQLite" else "the GIN index kept by COPY"
            lines += [
                f"## What the search costs the bulk writer ({backend})",
                "",
                f"{run['orders']:,} orders through `write_orders` into a fresh database: "
                f"{run['with_search']['orders_per_s']:,}/s with the search (terms computed, {how}), "
                f"{run['without_search']['orders_per_s']:,}/s without (×{run['slowdown']}).",
                "",
            ]
            continue
        lines += [
            f"## {key}",
            "",
            f"Measured {run['at']} ({run['note']}). {_fill_line(run)}",
            "",
            "| query | kind | matches | count (s) | index p50 | index p95 | LIKE p50 | LIKE p95 |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for q, e in run["queries"].items():
            lines.append(
                f"| {q} | {e['kind']} | {e['matches']:,} | {e['count_s']} | {e['index']['p50_ms']} | "
                f"{e['index']['p95_ms']} | {e['like']['p50_ms']} | {e['like']['p95_ms']} |"
            )
        lines.append("")
    (RESULTS / "order_search.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--db-url", help="a throw-away PostgreSQL database (its public schema is dropped)")
    parser.add_argument("--pool", type=int, default=20_000, help="demo orders whose texts are combined")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--like-repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-backfill", action="store_true", help="skip timing the migration's backfill")
    parser.add_argument(
        "--reuse", action="store_true", help="time the queries on --db-url as it is (filled by an earlier run)"
    )
    parser.add_argument("--note", default="2 shared cores")
    parser.add_argument(
        "--write-cost",
        type=int,
        default=0,
        metavar="N",
        help="also time N bulk-written orders with and without the search (SQLite)",
    )
    args = parser.parse_args()

    path = RESULTS / "order_search.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    RESULTS.mkdir(exist_ok=True)
    if args.write_cost:
        name = "postgresql_write_cost" if args.db_url else "sqlite_write_cost"
        results[name] = write_cost(args.write_cost, args.pool, args.seed, args.db_url)
        print(f"  write cost {results[name]}", flush=True)
        path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
        write_markdown(results)
        return
    url = args.db_url or fresh_sqlite_url("order-search")
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    key = f"{backend}_{args.orders}"
    earlier = results.get(key, {})
    if args.reuse:
        if not args.db_url:
            parser.error("--reuse needs --db-url")
        use_database(url)
        filled = earlier.get("fill", {})
    else:
        if backend == "postgresql":
            reset_postgres(url)
        use_database(url)
        print(f"filling {args.orders:,} orders into {backend}", flush=True)
        filled = fill(args.orders, args.pool, args.seed)
        print(f"  {filled}", flush=True)
    _analyze()
    size = index_size(backend)
    print(f"  index {size}", flush=True)
    queries = time_queries(args.repeat, args.like_repeat)
    refill = earlier.get("backfill", {}) if args.no_backfill else backfill()
    print(f"  backfill {refill}", flush=True)
    results = json.loads(path.read_text()) if path.exists() else {}  # again: another run may have written
    results[key] = {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "note": args.note,
        "orders": args.orders,
        "fill": filled,
        "size": size,
        "backfill": refill,
        "queries": queries,
        "peak_rss_mb": round(peak_rss_mb()),
    }
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    write_markdown(results)
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
