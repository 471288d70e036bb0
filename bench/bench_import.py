"""Benchmark ``cityhub import orders``: throughput and peak memory of a bulk CSV import.

Generates N synthetic orders (default 1,000,000) as a CSV in the real files' layout (留言编号, 留言用户,
留言主题, 留言时间, 留言详情, 点赞数, 答复意见, 答复时间; one in five rows has a reply, so two events), then
runs the real command line in a child process against a fresh, migrated SQLite database (and a throw-away
PostgreSQL database with ``--pg-url``: its public schema is dropped first). Prints orders/s and the child's
peak RSS, also written to ``bench/results/import_<N>.json``.

    .venv/bin/python bench/bench_import.py --n 200000
    .venv/bin/python bench/bench_import.py --quick          # 5,000 orders, a smoke run
    .venv/bin/python bench/bench_import.py --n 200000 --pg-url postgresql+psycopg://user@host/throwaway_db
    .venv/bin/python bench/bench_import.py --n 200000 --place   # + placing the imported orders afterwards

``--place`` seeds the Baiyun divisions before the import (the import does not place rows: it stays a faithful,
fast copy of the file) and then times ``cityhub orders place``, which the ``place-orders`` job also does in the
background: each order's street and community found from its text among the units, with an audit event each.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import reset_postgres, write_result

ROOT = Path(__file__).resolve().parents[1]
PLACES = ["白云街道", "新市街道", "同和街道", "京溪街道", "永平街道", "嘉禾街道", "鹤龙街道", "石井街道"]
SITES = ["幸福小区", "阳光花园", "滨江路", "人民广场", "第三中学", "农贸市场", "公交总站", "工业园"]
PROBLEMS = [
    ("噪音扰民", "夜间施工噪音很大，严重影响居民休息，请有关部门尽快处理。"),
    ("路灯不亮", "路灯已经坏了一个多星期，晚上出行很不安全，希望尽快维修。"),
    ("垃圾堆积", "垃圾长时间无人清运，气味难闻，蚊蝇滋生，请环卫部门处理。"),
    ("占道经营", "商贩占用人行道经营，行人只能走机动车道，存在安全隐患。"),
    ("积水内涝", "下雨后路面积水严重，车辆和行人无法通行，请排查排水管道。"),
    ("违章停车", "车辆长期乱停乱放，堵塞消防通道，请交警部门加强管理。"),
    ("社保咨询", "想咨询一下异地转移社保关系需要准备哪些材料，办理流程是什么。"),
    ("学位申请", "孩子今年上小学，户籍不在本区，请问积分入学如何申请。"),
]
HEADER = ["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "点赞数", "答复意见", "答复时间"]


def generate(path: Path, n: int, seed: int = 7, *, end: datetime | None = None) -> None:
    """``n`` orders spread evenly over the three years before ``end`` (default: now, to the minute), in time order
    like a real export. Ending now matters to the API benchmark: intake searches the last months' orders for
    duplicates, and a history that ended years ago would leave that search nothing to read."""
    rng = random.Random(seed)
    span = timedelta(days=3 * 365)
    end = end or datetime.now().replace(second=0, microsecond=0)
    start = end - span
    step = span / max(n, 1)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(n):
            created = start + step * i
            place, site = rng.choice(PLACES), rng.choice(SITES)
            title, detail = rng.choice(PROBLEMS)
            content = f"{place}{site}{detail}联系人留言编号{i}。" * rng.randint(1, 3)
            reply, replied = "", ""
            if rng.random() < 0.2:
                reply = f"您好，关于{place}{site}{title}的问题，我单位已安排人员现场核查并处理，感谢您的监督。"
                replied = (created + timedelta(days=rng.randint(1, 10))).strftime("%Y/%m/%d %H:%M:%S")
            writer.writerow(
                [
                    f"B{i:08d}",
                    f"U{rng.randint(1, n // 3 + 1):07d}",
                    f"{place}{site}{title}",
                    f"{created:%Y/%m/%d %H:%M:%S}".replace("/0", "/"),
                    content,
                    rng.randint(0, 50),
                    reply,
                    replied,
                ]
            )


def run_import(url: str, csv_path: Path, n: int, label: str, *, units: bool = False) -> dict[str, Any]:
    from cityhub import migrate

    if label == "postgresql":
        reset_postgres(url)
    migrate.upgrade(url)

    env = {**os.environ, "CITYHUB_DATABASE_URL": url}
    if units:
        subprocess.run([str(ROOT / ".venv/bin/cityhub"), "org", "seed-baiyun", "--no-demo-users"], env=env, check=True)
    cmd = [str(ROOT / ".venv/bin/cityhub"), "import", "orders", str(csv_path), "--quiet", "--json"]
    result = _timed(cmd, env, n, label)
    if units:
        placing = _timed([str(ROOT / ".venv/bin/cityhub"), "orders", "place"], env, n, f"{label} place")
        placing.update(json.loads(placing.pop("output")))
        result["placing"] = placing
    result.pop("output", None)
    return result


def _timed(cmd: list[str], env: dict[str, str], n: int, label: str) -> dict[str, Any]:
    """Run ``cmd`` in a child process: wall and CPU time, peak RSS, and its standard output (``output``)."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    out = child.stdout.read() if child.stdout else ""
    err = child.stderr.read() if child.stderr else ""
    if child.returncode != 0:
        sys.exit(f"{label}: failed ({child.returncode}):\n{err}")
    peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # less sensitive than wall time to other load on the machine
    load = os.getloadavg()[0]
    print(
        f"{label}: {n} orders in {elapsed:.1f} s = {n / elapsed:,.0f} orders/s, peak RSS {peak_mb:,.0f} MB, "
        f"child CPU {cpu:.1f} s (user {usage.ru_utime:.1f} + sys {usage.ru_stime:.1f}) = {n / cpu:,.0f} orders/CPU-s, "
        f"load average {load:.2f}"
    )
    print(f"  summary: {out.strip()}")
    return {
        "seconds": round(elapsed, 2),
        "orders_per_s": round(n / elapsed),
        "peak_rss_mb": round(peak_mb),
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        "orders_per_cpu_s": round(n / cpu),
        "load_average_1m": round(load, 2),
        "output": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="orders to generate (default 1,000,000)")
    parser.add_argument("--pg-url", help="a throw-away PostgreSQL database (its schema is dropped first)")
    parser.add_argument("--keep", type=Path, help="keep the generated CSV and SQLite file in this folder")
    parser.add_argument("--quick", action="store_true", help="a smoke run of 5,000 orders (overrides --n)")
    parser.add_argument("--place", action="store_true", help="seed the Baiyun units, then time `cityhub orders place`")
    args = parser.parse_args()
    if args.quick:
        args.n = 5_000

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = folder / f"orders_{args.n}.csv"
        started = time.perf_counter()
        generate(csv_path, args.n)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.n} orders ({size_mb:,.0f} MB CSV) in {time.perf_counter() - started:.1f} s")
        db = folder / f"bench_{args.n}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        results: dict[str, Any] = {"orders": args.n, "csv_mb": round(size_mb)}
        results["sqlite"] = run_import(f"sqlite:///{db}", csv_path, args.n, "sqlite", units=args.place)
        if args.pg_url:
            results["postgresql"] = run_import(args.pg_url, csv_path, args.n, "postgresql", units=args.place)
        name = f"import_{args.n}" + ("_place" if args.place else "")
        print(f"written to {write_result(name, results)}")


if __name__ == "__main__":
    main()
