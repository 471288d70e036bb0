"""Duplicate detection quality on real re-postings, and candidate-retrieval speed at 100k+ orders.

Usage (from the project root):
    .venv/bin/python bench/bench_duplicates.py [--orders 120000] [--queries 1000]

Quality: the detector is the production text path (``cityhub.nlp.similar``: LSH candidates from the ``dup``
banding, then the precise score) run as intake would run it: messages arrive one by one, each is compared
with the ones before. Places are unknown in this data, so what is measured is the text decision (the
"suggest" level); auto-merge additionally needs place agreement. Ground truth is a STRICT definition that
does not use the detector's score:
  * messages_labeled_raw.csv: two messages are duplicates when their normalised texts (letters and digits
    only) are identical, or share one verbatim run of at least 50 characters (copy-paste evidence);
  * f3_hot_topic_messages_4326.csv: the same user posted the same normalised title, or the normalised message
    bodies are identical.
Both relations are closed transitively (duplicate groups). Pairwise precision = share of flagged pairs
inside one ground-truth group; recall = share of ground-truth pairs that the flagged pairs connect (also
transitively, as merges chain into one master).

Speed: synthetic orders made from the real texts (each text with a few random edits) fill the index; then
per-intake latency (LSH query + precise scoring of the candidates) is measured. No database: the database
part of an intake (one indexed prefilter query and loading ≤ 200 candidate rows) is not included.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from cityhub.intake import dedupe
from cityhub.nlp import similar as sim

DATA = Path("../shared/data/teddycup2020_c")
RESULTS = Path(os.environ.get("CITYHUB_BENCH_RESULTS") or Path(__file__).parent / "results")  # as bench/_common.py
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9)
RUN = 50


class _Groups:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def pairs(self) -> set[tuple[int, int]]:
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.parent)):
            members[self.find(i)].append(i)
        return {(a, b) for group in members.values() for a, b in combinations(sorted(group), 2)}


def _truth_raw(texts: list[str]) -> _Groups:
    norm = [sim.normalize(t) for t in texts]
    g = _Groups(len(texts))
    first: dict[str, int] = {}
    for i, t in enumerate(norm):
        for start in range(0, max(1, len(t) - RUN + 1)):
            window = t[start : start + RUN] if len(t) >= RUN else t
            j = first.setdefault(window, i)
            if j != i:
                g.union(i, j)
    return g


def _truth_f3(rows: list[dict[str, str]]) -> _Groups:
    g = _Groups(len(rows))
    by_key: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        for key in (("u", r["留言用户"] + "|" + sim.normalize(r["留言主题"])), ("c", sim.normalize(r["留言详情"]))):
            if not key[1].strip("|"):
                continue
            j = by_key.setdefault(key, i)
            if j != i:
                g.union(i, j)
    return g


def _detect(texts: list[str]) -> list[tuple[int, int, float]]:
    """Every (earlier, later, score) pair the intake path would score, in arrival order."""
    index = sim.ShingleIndex()
    profiles = [sim.Profile.of(t) for t in texts]
    scored: list[tuple[int, int, float]] = []
    for i, text in enumerate(texts):
        for cand in index.query(text, scheme=sim.DUP_SCHEME, limit=200):
            s = sim.similarity(profiles[i], profiles[cand.order_id], idf=index.idf).score
            scored.append((cand.order_id, i, s))
        index.add_many([(i, float(i), text)])
    return scored


def _evaluate(n: int, truth: _Groups, scored: list[tuple[int, int, float]]) -> list[dict[str, float]]:
    true_pairs = truth.pairs()
    out = []
    for th in THRESHOLDS:
        flagged = {(a, b) for a, b, s in scored if s >= th}
        tp_direct = sum(1 for a, b in flagged if truth.find(a) == truth.find(b))
        closure = _Groups(n)
        for a, b in flagged:
            closure.union(a, b)
        connected = sum(1 for a, b in true_pairs if closure.find(a) == closure.find(b))
        out.append(
            {
                "threshold": th,
                "flagged_pairs": len(flagged),
                "precision": round(tp_direct / len(flagged), 4) if flagged else 1.0,
                "recall": round(connected / len(true_pairs), 4) if true_pairs else 1.0,
                "truth_pairs": len(true_pairs),
            }
        )
    return out


def _auto_merge_guard(texts: list[str], truth: _Groups, scored: list[tuple[int, int, float]]) -> dict[str, int]:
    """Of the pairs at the auto-merge text bar, how many ``sim.says_otherwise`` holds back to a suggestion (short
    texts that replace words of one with others), inside and outside the truth's groups."""
    bar = dedupe.DedupeSettings().auto_merge_threshold
    at_bar = [(a, b) for a, b, s in scored if s >= bar]
    held = [(a, b) for a, b in at_bar if sim.says_otherwise(texts[a], texts[b])]
    return {
        "pairs_at_auto_merge_bar": len(at_bar),
        "held_back": len(held),
        "held_back_in_truth": sum(1 for a, b in held if truth.find(a) == truth.find(b)),
        "short_texts": sum(1 for t in texts if len(sim.normalize(t)) <= sim.SHORT_TEXT_CHARS),
    }


def _misses_sample(texts, truth, scored, th, k=8, seed=7):
    extra = [(a, b, s) for a, b, s in scored if s >= th and truth.find(a) != truth.find(b)]
    random.Random(seed).shuffle(extra)
    return [
        {"score": round(s, 3), "a": texts[a][:90].replace("\n", " "), "b": texts[b][:90].replace("\n", " ")}
        for a, b, s in extra[:k]
    ]


def _lsh_recall(texts: list[str], scored: list[tuple[int, int, float]], th: float) -> float:
    """Share of above-threshold pairs (by exhaustive scoring of a sample) that the LSH candidates contain."""
    rng = random.Random(3)
    profiles = [sim.Profile.of(t) for t in texts]
    idf = sim.IdfTable()
    idf.add_many([p.keys for p in profiles])
    found = {(a, b) for a, b, _ in scored}
    total = hit = 0
    for i in rng.sample(range(len(texts)), min(60, len(texts))):
        for j in range(i):
            if sim.similarity(profiles[i], profiles[j], idf=idf).score >= th:
                total += 1
                hit += (j, i) in found
    return round(hit / total, 4) if total else 1.0


def quality(threshold: float) -> dict:
    raw_path = DATA / "dev" / "messages_labeled_raw.csv"
    f3_path = DATA / "csv" / "f3_hot_topic_messages_4326.csv"
    report: dict = {}
    if raw_path.exists():
        rows = list(csv.DictReader(raw_path.open(encoding="utf-8")))
        texts = [sim.order_text(r["title"], r["content"]) for r in rows]
        truth = _truth_raw(texts)
        scored = _detect(texts)
        report["messages_labeled_raw"] = {
            "messages": len(texts),
            "truth": f"identical normalised text or a shared verbatim run of >= {RUN} characters",
            "curve": _evaluate(len(texts), truth, scored),
            "auto_merge_guard": _auto_merge_guard(texts, truth, scored),
            "lsh_candidate_recall_at_threshold": _lsh_recall(texts, scored, threshold),
            "flagged_not_in_truth_sample": _misses_sample(texts, truth, scored, threshold),
        }
    if f3_path.exists():
        rows = list(csv.DictReader(f3_path.open(encoding="utf-8")))
        texts = [sim.order_text(r["留言主题"], r["留言详情"]) for r in rows]
        truth = _truth_f3(rows)
        scored = _detect(texts)
        report["f3_hot_topic"] = {
            "messages": len(texts),
            "truth": "same user and same normalised title, or identical normalised body",
            "curve": _evaluate(len(texts), truth, scored),
            "auto_merge_guard": _auto_merge_guard(texts, truth, scored),
            "lsh_candidate_recall_at_threshold": _lsh_recall(texts, scored, threshold),
            "flagged_not_in_truth_sample": _misses_sample(texts, truth, scored, threshold),
            "truth_not_flagged_sample": [
                {"a": texts[a][:90].replace("\n", " "), "b": texts[b][:90].replace("\n", " ")}
                for a, b in sorted(truth.pairs() - {(a, b) for a, b, s in scored if s >= threshold})[:6]
            ],
        }
    return report


def _corpus() -> list[str]:
    texts: list[str] = []
    for path, cols in (
        (DATA / "dev" / "messages_labeled_raw.csv", ("title", "content")),
        (DATA / "csv" / "f3_hot_topic_messages_4326.csv", ("留言主题", "留言详情")),
        (DATA / "csv" / "f4_messages_with_replies_2816.csv", ("留言主题", "留言详情")),
        (DATA / "csv" / "f2_final_testset_unlabeled_2801.csv", ("留言主题", "留言详情")),
    ):
        if path.exists():
            texts += [sim.order_text(r[cols[0]], r[cols[1]]) for r in csv.DictReader(path.open(encoding="utf-8"))]
    return texts


def _mutate(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(chars)) if chars else 0
        if rng.random() < 0.5 and chars:
            del chars[pos]
        else:
            chars.insert(pos, chr(0x4E00 + rng.randrange(20000)))
    return "".join(chars)


def speed(n_orders: int, n_queries: int) -> dict:
    base = _corpus()
    rng = random.Random(11)
    texts = [_mutate(base[i % len(base)], rng) for i in range(n_orders)]
    index = sim.ShingleIndex()
    t0 = time.perf_counter()
    for start in range(0, n_orders, 5000):
        index.add_many((i, float(i), texts[i]) for i in range(start, min(n_orders, start + 5000)))
    for table in index.tables.values():
        table.merge()
    build = time.perf_counter() - t0
    lat_query, lat_total, n_cands = [], [], []
    for _ in range(n_queries):
        text = _mutate(base[rng.randrange(len(base))], rng)
        t1 = time.perf_counter()
        cands = index.query(text, scheme=sim.DUP_SCHEME, limit=200) + index.query(
            text, scheme=sim.SIM_SCHEME, limit=200
        )
        t2 = time.perf_counter()
        p = sim.Profile.of(text)
        ids = {c.order_id for c in cands}
        for cid in ids:
            # A real intake reads the candidate's text from the database; profiling it is part of the cost.
            sim.similarity(p, sim.Profile.of(texts[cid]), idf=index.idf)
        t3 = time.perf_counter()
        lat_query.append(t2 - t1)
        lat_total.append(t3 - t1)
        n_cands.append(len(ids))
        texts.append(text)
        index.add_many([(len(texts) - 1, float(len(texts)), text)])  # incremental, as at intake
    ms = lambda xs, p: round(float(np.percentile(xs, p)) * 1000, 2)  # noqa: E731
    return {
        "orders_indexed": n_orders,
        "build_seconds": round(build, 1),
        "build_orders_per_second": round(n_orders / build),
        "index_megabytes": round(index.nbytes / 1e6, 1),
        "queries": n_queries,
        "lsh_query_ms_p50": ms(lat_query, 50),
        "lsh_query_ms_p99": ms(lat_query, 99),
        "intake_text_path_ms_p50": ms(lat_total, 50),
        "intake_text_path_ms_p99": ms(lat_total, 99),
        "candidates_p50": int(np.percentile(n_cands, 50)),
        "candidates_p99": int(np.percentile(n_cands, 99)),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=120_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=0.5, help="suggest threshold to inspect")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"data not found at {DATA}; run from the project root", file=sys.stderr)
        return 1
    result = {"quality": quality(args.threshold)}
    print(json.dumps(result, ensure_ascii=False, indent=2), flush=True)
    result["speed"] = speed(args.orders, args.queries)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "duplicates.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
