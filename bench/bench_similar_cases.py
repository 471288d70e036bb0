"""Similar past cases at intake (相似案例), measured against labels: are the five cases shown about the same matter?

The operator sees up to five past orders "most similar" to the appeal being registered, with how each was handled.
Nothing in the data says which past order is similar to which, so two labelled questions stand in for it:

* **Same category.** Each message of ``dev/`` carries its first-level category (7 classes). A case shown is "on
  topic" when it has the appeal's category — a coarse test (two 城乡建设 messages may be about different things),
  but one a list of unrelated orders fails: its expected share is what random orders would reach (the baseline row).
* **Re-postings.** Queries with a near copy in the history (the same message posted again, edited:
  ``cityhub.nlp.text.near_duplicate_groups``) should show it, first.

Every figure goes through the product: the messages are imported as closed orders (``cityhub import``'s importer,
``as_history``) into a fresh SQLite database, spread over the last 170 days as the similarity index holds 180; each
held-back message is then checked as intake checks a new appeal (``cityhub.intake.dedupe.check``, its place unknown,
as in this data). Two histories:

* ``new wording``: every near copy of the held-back messages is left out of the history — the appeal is new in its
  words, the case the MinHash index cannot find alone;
* ``with re-postings``: only the held-back messages themselves are left out.

Rows: the product; the product with the telling-words source of candidates (``dedupe._telling_word_candidates``, the
third source besides the MinHash index and the place prefilter) replaced by its release of 5 December
(``fewer_telling_words``: the best 50 scored), by the source before it (``rarest_pairs``: the 50 newest orders holding
any of the appeal's four rarest character pairs held by at most 1 % of the orders) or by nothing
(``without_word_source``); an exhaustive reference that scores every order of the history with the same
score and shows its best five (what unlimited candidate generation would show; it takes seconds per query, so it
runs on the first ``--exhaustive`` queries); and random orders (the expected same-category share).

    .venv/bin/python bench/bench_similar_cases.py [--queries 400] [--exhaustive 150] [--seed 7]

Writes ``bench/results/similar_cases.json``; the figures are read in ``bench/results/similar_cases.md``.

``--speed URL`` times ``dedupe.check`` with similar cases instead, on a database filled before (the demo district:
``cityhub demo seed --orders 200000 --years 3``), warm: ``--speed-appeals`` demo appeals (short, placed: their
address given) and as many real messages of ``dev/`` (long, place unknown), each source of candidates in turn for
each appeal (so that the machine's load weighs on them alike); writes ``similar_cases_speed_<backend>.json``.

    .venv/bin/python bench/bench_similar_cases.py --speed sqlite:///demo.db
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import fresh_sqlite_url, percentiles, use_database, write_result

DEV = Path("../shared/data/teddycup2020_c/dev")
SHOWN = 5
HISTORY_DAYS = 170  # within the index's 180 days (CITYHUB_DEDUPE_INDEX_DAYS's default)
_SPACES = re.compile(r"\s+")


def load() -> list[dict[str, Any]]:
    """Every labelled message; the segmented file's words joined again (its texts are word-separated)."""
    rows: list[dict[str, Any]] = []
    for name, raw in (("messages_labeled_raw.csv", True), ("messages_labeled_segmented.csv", False)):
        with (DEV / name).open(encoding="utf-8-sig", newline="") as fh:
            for r in csv.DictReader(fh):
                title, content = r["title"], r["content"]
                if not raw:
                    title, content = _SPACES.sub("", title), _SPACES.sub("", content)
                if not (title or content) or not r["category"]:
                    continue
                at = datetime.fromisoformat(r["created_at"]) if r["created_at"] else None
                rows.append({"title": title, "content": content, "at": at, "category": r["category"], "raw": raw})
    return rows


def _history_csv(rows: list[dict[str, Any]], folder: Path, now: datetime) -> Path:
    """The history as the importer reads it, its dates mapped in order onto the last HISTORY_DAYS days."""
    dated = [r["at"] for r in rows if r["at"] is not None]
    first, last = min(dated), max(dated)
    span = (last - first).total_seconds() or 1.0
    start = now - timedelta(days=HISTORY_DAYS)
    path = folder / "history.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "content", "created_at", "category"])
        for i, r in enumerate(rows):
            at = r["at"] or first
            moved = start + timedelta(days=HISTORY_DAYS - 1) * ((at - first).total_seconds() / span)
            w.writerow([f"h{i}", r["title"], r["content"], moved.strftime("%Y-%m-%d %H:%M:%S"), r["category"]])
    return path


def _build(history: list[dict[str, Any]], name: str, now: datetime) -> dict[str, Any]:
    """A fresh database holding ``history`` as closed orders, and its similarity index built."""
    from cityhub.db import session_scope
    from cityhub.intake import dedupe
    from cityhub.intake.importer import import_orders
    from cityhub.nlp import similar as sim
    from cityhub.workorders.categories import seed_default_taxonomy

    use_database(fresh_sqlite_url(f"similar-{name}"))
    folder = Path(tempfile.mkdtemp(prefix="cityhub-bench-similar-"))
    t = time.perf_counter()
    with session_scope() as s:
        seed_default_taxonomy(s)
    with session_scope() as s:
        report = import_orders(s, path=_history_csv(history, folder, now), as_history=True)
    imported = time.perf_counter() - t
    if report.rejected or report.imported != len(history):
        sys.exit(f"history import: {report.imported} of {len(history)} imported, {report.rejected} rejected")
    cfg = dedupe.get_dedupe_settings()
    t = time.perf_counter()
    with session_scope() as s:
        index = sim.index_for(s, index_days=cfg.index_days, bucket_cap=cfg.bucket_cap)
        index.ensure(s)  # a first build this small runs now
        indexed = len(index.index)
    return {
        "orders": report.imported,
        "import_s": round(imported, 1),
        "index_s": round(time.perf_counter() - t, 1),
        "indexed": indexed,
    }


def _category_of_orders(session: Any) -> dict[int, str]:
    from sqlalchemy import select

    from cityhub.workorders.models import Category, Order

    rows = session.execute(select(Order.id, Category.name).join(Category, Order.category_id == Category.id))
    return dict(rows.all())


def _exhaustive(session: Any, texts: dict[int, str], query: str, limit: int) -> list[int]:
    """The ``limit`` best orders of the whole history by the product's score (at least its listing floor)."""
    from cityhub.intake import dedupe
    from cityhub.nlp import similar as sim

    cfg = dedupe.get_dedupe_settings()
    index = sim.index_for(session, index_days=cfg.index_days, bucket_cap=cfg.bucket_cap)
    ids = list(texts)
    scores = index.similarities(sim.sketch_of(query).profile, [texts[i] for i in ids])
    ranked = sorted(((-s.score, i) for i, s in zip(ids, scores, strict=True) if s.score >= cfg.similar_min_score))
    return [i for _, i in ranked[:limit]]


def _rarest_pairs(session: Any, index: Any, text: str) -> list[int]:
    """The source of candidates before the telling words (the release of 5 December): the 50 newest orders holding
    any of the appeal's 4 rarest character pairs, none held by more than 1 % of the indexed orders."""
    from cityhub.workorders import search

    counts, indexed = index.pair_counts(t for t in search.terms(text) if len(t) == 2)
    most = max(2.0, 0.01 * indexed)
    rare = [pair for _, pair in sorted((n, pair) for pair, n in counts.items() if 1 <= n <= most)[:4]]
    held = search.newest_holders(session.connection(), rare, limit=50)
    return sorted({i for ids in held.values() for i in ids}, reverse=True)[:50]


def _fewer_telling_words(session: Any, index: Any, text: str) -> list[int]:
    """The telling words as released on 5 December: 16 pairs, the 100 newest holders of each counting ``idf²``
    (however often the appeal uses the pair), the best 50 scored."""
    from cityhub.workorders import search

    used = Counter(t for t in search.terms(text) if len(t) == 2)
    counts, indexed = index.pair_counts(used)
    most = max(2.0, min(max(100.0, 0.02 * indexed), 0.1 * indexed))
    idf = {pair: math.log((indexed + 1) / n) for pair, n in counts.items() if 1 <= n <= most}
    telling = sorted(idf, key=lambda pair: (-used[pair] * idf[pair], pair))[:16]
    if not telling:
        return []
    weight: dict[int, float] = {}
    held = search.newest_holders(session.connection(), telling, limit=100, since_id=index.lowest_id() or 0)
    for pair, holders in held.items():
        for order_id in holders:
            weight[order_id] = weight.get(order_id, 0.0) + idf[pair] ** 2
    return sorted(weight, key=lambda i: (-weight[i], -i))[:50]


def _variants() -> dict[str, Any]:
    """The sources of candidates compared: the product's; the telling words as released on 5 December; the rarest
    pairs before them; none."""
    from cityhub.intake import dedupe

    return {
        "product": dedupe._telling_word_candidates,
        "fewer_telling_words": _fewer_telling_words,
        "rarest_pairs": _rarest_pairs,
        "without_word_source": lambda *a, **k: [],
    }


def _summary(shown: list[list[int]], wanted: list[str], category: dict[int, str]) -> dict[str, float]:
    n = len(shown)
    listed = [len(ids) for ids in shown]
    on_topic = [sum(category.get(i) == c for i in ids) for ids, c in zip(shown, wanted, strict=True)]
    total = sum(listed)
    return {
        "queries": n,
        "cases_shown_mean": round(total / n, 2),
        "queries_with_cases": round(sum(x > 0 for x in listed) / n, 4),
        "same_category_share_of_shown": round(sum(on_topic) / total, 4) if total else 0.0,
        "first_case_same_category": round(
            sum(bool(ids) and category.get(ids[0]) == c for ids, c in zip(shown, wanted, strict=True)) / n, 4
        ),
        "some_case_same_category": round(sum(x > 0 for x in on_topic) / n, 4),
    }


# Score bands of the cases the product shows: where its list stops being about the appeal's matter.
SCORE_BANDS = (0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 1.01)


def _by_score(
    scored: list[list[tuple[float, int]]], wanted: list[str], category: dict[int, str]
) -> list[dict[str, Any]]:
    """The cases the product showed, by score band: how many, and the share with the appeal's category (random
    orders reach the ``random`` row's share)."""
    bands = []
    for low, high in itertools.pairwise(SCORE_BANDS):
        hits = [
            category.get(order_id) == c
            for cases, c in zip(scored, wanted, strict=True)
            for score, order_id in cases
            if low <= score < high
        ]
        bands.append(
            {
                "from": low,
                "below": high,
                "cases": len(hits),
                "same_category": round(sum(hits) / len(hits), 4) if hits else None,
            }
        )
    return bands


def run(
    rows: list[dict[str, Any]],
    queries: list[int],
    history: list[int],
    name: str,
    exhaustive: int,
    now: datetime,
    only: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    from sqlalchemy import select

    from cityhub.db import session_scope
    from cityhub.intake import dedupe
    from cityhub.nlp import similar as sim
    from cityhub.workorders.models import Order

    built = _build([rows[i] for i in history], name, now)
    out: dict[str, Any] = {"history": built}
    source = dedupe._telling_word_candidates
    variants = _variants()
    with session_scope() as s:
        category = _category_of_orders(s)
        stored = s.execute(select(Order.id, Order.title, Order.content, Order.external_id)).all()
        texts = {i: sim.order_text(t, c) for i, t, c, _ in stored}
        out["_ids"] = {history[int(ext[1:])]: i for i, _, _, ext in stored}
        wanted = [rows[q]["category"] for q in queries]
        appeals = [
            {"title": rows[q]["title"], "content": rows[q]["content"], "created_at": now, "channel": "hotline"}
            for q in queries
        ]
        scored: list[list[tuple[float, int]]] = []
        for variant, candidates in variants.items():
            if only and variant not in only:
                continue
            dedupe._telling_word_candidates = candidates
            shown, lat = [], []
            try:
                for appeal in appeals:
                    t = time.perf_counter()
                    result = dedupe.check(s, data=appeal)
                    lat.append((time.perf_counter() - t) * 1000)
                    shown.append([c.order.id for c in result.similar][:SHOWN])
                    if variant == "product":
                        scored.append([(c.score, c.order.id) for c in result.similar][:SHOWN])
            finally:
                dedupe._telling_word_candidates = source
            out[variant] = _summary(shown, wanted, category) | {
                "check_ms": {k: round(v, 1) for k, v in percentiles(lat).items() if k != "n"}
            }
            out[f"_{variant}_shown"] = shown
        out["product_by_score"] = _by_score(scored, wanted, category)
        ref = [_exhaustive(s, texts, rows[q]["title"] + "\n" + rows[q]["content"], SHOWN) for q in queries[:exhaustive]]
        if ref:
            out["exhaustive"] = _summary(ref, wanted[:exhaustive], category)
        for variant in variants:
            if f"_{variant}_shown" not in out:
                continue
            if not ref:
                continue
            mine = out[f"_{variant}_shown"][:exhaustive]
            out[variant]["first_n_queries_same_category_share"] = _summary(mine, wanted[:exhaustive], category)[
                "same_category_share_of_shown"
            ]
            found = sum(len(set(a) & set(b)) for a, b in zip(mine, ref, strict=True))
            out[variant]["share_of_exhaustive_top5_shown"] = round(found / max(1, sum(map(len, ref))), 4)
        shares = Counter(category.values())
        total = sum(shares.values())
        out["random"] = {"same_category_share_of_shown": round(statistics.fmean(shares[c] / total for c in wanted), 4)}
    return out


def speed(url: str, appeals: int, messages: int, seed: int) -> int:
    """Latency of ``dedupe.check`` with similar cases on a filled database, per source of candidates."""
    import os

    from cityhub import db
    from cityhub.db import session_scope, utcnow
    from cityhub.demo.generator import generate
    from cityhub.intake import dedupe
    from cityhub.nlp import similar as sim

    os.environ["CITYHUB_DATABASE_URL"] = url
    db.reset_engine()
    now = utcnow().replace(microsecond=0)
    demo = [
        {"title": r["title"], "content": r["content"], "address": r["address"], "channel": "hotline"}
        for r in generate(appeals, seed=seed + 1000, years=0.05)
    ]
    rng = random.Random(seed)
    real = [
        {"title": r["title"], "content": r["content"], "channel": "hotline"}
        for r in rng.sample([r for r in load() if r["raw"]], messages)
    ]
    variants = {k: v for k, v in _variants().items() if k != "without_word_source"}
    source = dedupe._telling_word_candidates
    out: dict[str, Any] = {"database": db.get_engine().dialect.name, "appeals": len(demo), "messages": len(real)}
    with session_scope() as s:
        cfg = dedupe.get_dedupe_settings()
        t = time.perf_counter()
        index = sim.index_for(s, index_days=cfg.index_days, bucket_cap=cfg.bucket_cap)
        index.ensure(s, block_below=10**9)
        out["indexed"], out["index_s"] = len(index.index), round(time.perf_counter() - t, 1)
        for kind, batch in (("demo_appeals", demo), ("real_messages", real)):
            lat: dict[str, list[float]] = {name: [] for name in variants}
            for appeal in batch[:10]:  # warm: the gazetteer, the prepared statements, the caches
                dedupe.check(s, data=appeal | {"created_at": now})
            for appeal in batch:
                for name, candidates in variants.items():
                    dedupe._telling_word_candidates = candidates
                    try:
                        t = time.perf_counter()
                        dedupe.check(s, data=appeal | {"created_at": now})
                        lat[name].append((time.perf_counter() - t) * 1000)
                    finally:
                        dedupe._telling_word_candidates = source
            out[kind] = {
                name: {k: round(v, 1) for k, v in percentiles(values).items() if k != "n"}
                for name, values in lat.items()
            }
    path = write_result(f"similar_cases_speed_{out['database']}", out)
    print(path.read_text())
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=400, help="held-back raw messages checked as new appeals")
    ap.add_argument("--exhaustive", type=int, default=150, help="of those, scored against the whole history too")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--speed", metavar="URL", help="time dedupe.check on this filled database instead")
    ap.add_argument("--speed-appeals", type=int, default=150, help="demo appeals and real messages timed (--speed)")
    ap.add_argument(
        "--variants",
        help="comma-separated sources of candidates to run (product, fewer_telling_words, rarest_pairs, "
        "without_word_source; default all): with some, written to similar_cases_<variants>.json",
    )
    args = ap.parse_args()
    if not DEV.exists():
        sys.exit(f"{DEV} not found (run from the project root with the shared data present)")
    if args.speed:
        return speed(args.speed, args.speed_appeals, args.speed_appeals, args.seed)
    from cityhub.db import utcnow
    from cityhub.nlp.text import near_duplicate_groups, order_text

    rows = load()
    groups = near_duplicate_groups([order_text(r["title"], r["content"]) for r in rows])
    rng = random.Random(args.seed)
    raw = [i for i, r in enumerate(rows) if r["raw"]]
    queries = rng.sample(raw, min(args.queries, len(raw)))
    held = set(queries)
    held_groups = {int(groups[q]) for q in queries}
    members = Counter(int(g) for g in groups)
    now = utcnow().replace(microsecond=0)
    results: dict[str, Any] = {"messages": len(rows), "queries": len(queries), "seed": args.seed}

    new_history = [i for i in range(len(rows)) if int(groups[i]) not in held_groups]
    only = frozenset(v.strip() for v in args.variants.split(",")) if args.variants else frozenset()
    unknown = only - set(_variants())
    if unknown:
        sys.exit(f"--variants: unknown {', '.join(sorted(unknown))} (known: {', '.join(_variants())})")
    results["new_wording"] = run(rows, queries, new_history, "new", args.exhaustive, now, only)

    reposted = [q for q in queries if members[int(groups[q])] > 1]
    full_history = [i for i in range(len(rows)) if i not in held]
    with_copies = run(rows, queries, full_history, "copies", args.exhaustive, now, only)
    # Which history orders are near copies of each query (the same near-duplicate group), by the history file's ids.
    order_ids = with_copies.pop("_ids")
    copies = {q: {order_ids[i] for i in full_history if int(groups[i]) == int(groups[q])} for q in reposted}
    for variant in [v for v in _variants() if f"_{v}_shown" in with_copies]:
        shown = dict(zip(queries, with_copies[f"_{variant}_shown"], strict=True))
        first = sum(bool(shown[q]) and shown[q][0] in copies[q] for q in reposted)
        anywhere = sum(bool(set(shown[q]) & copies[q]) for q in reposted)
        with_copies[variant]["reposted_queries"] = len(reposted)
        with_copies[variant]["copy_shown_first"] = round(first / max(1, len(reposted)), 4)
        with_copies[variant]["copy_shown_in_top5"] = round(anywhere / max(1, len(reposted)), 4)
    results["with_reposts"] = with_copies
    for part in ("new_wording", "with_reposts"):
        for key in [k for k in results[part] if k.startswith("_")]:
            del results[part][key]
    path = write_result("similar_cases" + "".join(f"_{v}" for v in sorted(only)), results)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
