"""Knowledge-base retrieval on real messages with replies (f4): hit@1, hit@5, MRR and latency.

Split: f4 messages are grouped into near-duplicate groups (cityhub.nlp.text.near_duplicate_groups) and whole
groups go to the knowledge base (80 %) or are held back (20 %), so no held-back question has a near copy of
itself in the knowledge base.

Relevance without labels: a retrieved entry "addresses the same matter" when its answer is similar to the
held-back message's OWN official reply — character-bigram TF-IDF cosine of the cleaned answers (greetings,
forwarding notes and sign-offs stripped) at or above τ, where τ is the 99.9th percentile of that cosine over
random (held-back reply, knowledge-base answer) pairs, i.e. a level only 0.1 % of unrelated pairs reach. Figures
are given over the "answerable" held-back questions (some KB answer reaches τ; a KB cannot answer what it does
not contain) and over all held-back questions.

    .venv/bin/python bench/bench_knowledge.py [--scale 30000] [--no-db]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, fresh_sqlite_url, use_database

F4 = Path("../shared/data/teddycup2020_c/csv/f4_messages_with_replies_2816.csv")


def load() -> list[dict[str, str]]:
    with F4.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def evaluate(index, queries, relevant, k=5):
    hits1 = hits5 = 0
    rr = []
    lat = []
    for q, rel in zip(queries, relevant, strict=True):
        t = time.perf_counter()
        found = index.search(q, limit=k)
        lat.append((time.perf_counter() - t) * 1000)
        ids = [h.id for h in found]
        rank = next((i + 1 for i, x in enumerate(ids) if x in rel), None)
        hits1 += rank == 1
        hits5 += rank is not None
        rr.append(1.0 / rank if rank else 0.0)
    n = len(queries)
    return {
        "n": n,
        "hit@1": round(hits1 / n, 4),
        "hit@5": round(hits5 / n, 4),
        "mrr@5": round(sum(rr) / n, 4),
        "latency_ms_p50": round(statistics.median(lat), 2),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=10000, help="entries of the synthetic scaling run (0: skip)")
    ap.add_argument("--no-db", action="store_true", help="skip the seed through the service on SQLite")
    args = ap.parse_args()
    if not F4.exists():
        sys.exit(f"{F4} not found (run from the project root with the shared data present)")
    from sklearn.feature_extraction.text import TfidfVectorizer

    from cityhub.knowledge import retrieval
    from cityhub.knowledge.retrieval import Doc, KnowledgeIndex
    from cityhub.knowledge.service import reply_to_entry
    from cityhub.nlp.text import near_duplicate_groups, order_text

    rows = load()
    texts = [order_text(r["留言主题"], r["留言详情"]) for r in rows]
    groups = near_duplicate_groups(texts)
    held = [int(hashlib.sha1(str(int(g)).encode()).hexdigest(), 16) % 5 == 0 for g in groups]
    made = [reply_to_entry(r["留言主题"], r["留言详情"], r["答复意见"]) for r in rows]
    usable = [not isinstance(m, str) for m in made]
    kb = [i for i in range(len(rows)) if not held[i] and usable[i]]
    hb = [i for i in range(len(rows)) if held[i] and usable[i]]
    answers = {i: made[i][1] for i in kb + hb}  # type: ignore[index]

    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 2), sublinear_tf=True).fit([answers[i] for i in kb])
    a_kb = vec.transform([answers[i] for i in kb])
    a_hb = vec.transform([answers[i] for i in hb])
    sims = (a_hb @ a_kb.T).toarray()
    rng = np.random.default_rng(0)
    random_pairs = sims[rng.integers(0, len(hb), 20000), rng.integers(0, len(kb), 20000)]
    tau = float(np.percentile(random_pairs, 99.9))
    relevant_all = [{kb[j] for j in np.nonzero(sims[qi] >= tau)[0]} for qi in range(len(hb))]
    answerable = [qi for qi, rel in enumerate(relevant_all) if rel]

    docs = [Doc(id=i, question=made[i][0], answer=answers[i], keywords=made[i][2]) for i in kb]  # type: ignore[index]
    queries = [texts[i] for i in hb]
    results: dict[str, object] = {
        "data": str(F4),
        "messages": len(rows),
        "near_duplicate_groups": int(groups.max() + 1),
        "kb_entries": len(kb),
        "held_back_questions": len(hb),
        "skipped_replies": {k: sum(1 for m in made if m == k) for k in {m for m in made if isinstance(m, str)}},
        "tau_reply_cosine_p99_9_random": round(tau, 4),
        "answerable_share": round(len(answerable) / len(hb), 4),
        "methods": {},
    }
    variants = {
        "fused (default)": {},
        "bm25 only": {"only": "bm25"},
        "char n-gram only": {"only": "char"},
        "fused + first 200 answer chars indexed": {"answer_chars": 200},
    }
    for name, opts in variants.items():
        t = time.perf_counter()
        index = KnowledgeIndex(docs, answer_chars=opts.get("answer_chars", 0))  # type: ignore[arg-type]
        build = time.perf_counter() - t
        if opts.get("only"):
            index = _single(index, opts["only"])  # type: ignore[arg-type]
        ans = evaluate(index, [queries[q] for q in answerable], [relevant_all[q] for q in answerable])
        every = evaluate(index, queries, relevant_all)
        results["methods"][name] = {"build_s": round(build, 3), "answerable": ans, "all": every}  # type: ignore[index]
        print(name, json.dumps(results["methods"][name], ensure_ascii=False))  # type: ignore[index]

    if args.scale:
        big = [
            Doc(id=n, question=f"{d.question} {n}", keywords=d.keywords)
            for n, d in zip(range(args.scale), (docs[i % len(docs)] for i in range(args.scale)), strict=True)
        ]
        t = time.perf_counter()
        index = KnowledgeIndex(big)
        build = time.perf_counter() - t
        lat = []
        for q in queries[:200]:
            t = time.perf_counter()
            index.search(q, limit=5)
            lat.append((time.perf_counter() - t) * 1000)
        results["scale"] = {
            "entries": args.scale,
            "build_s": round(build, 2),
            "query_ms_p50": round(statistics.median(lat), 2),
            "query_ms_p95": round(float(np.percentile(lat, 95)), 2),
        }
        print("scale", results["scale"])

    if not args.no_db:
        results["service_sqlite"] = _through_service(queries[:100])
        print("service", results["service_sqlite"])
    results["rrf_k"] = retrieval.RRF_K
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "knowledge.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {RESULTS / 'knowledge.json'}")


def _single(index, which: str):
    """The same index answering from one ranking only (for the comparison)."""
    import numpy as np

    from cityhub.knowledge import retrieval

    original = retrieval._ranks

    class One:
        def search(self, text, limit=5):
            def ranks(scores, allowed, _calls=[0]):  # noqa: B006
                _calls[0] += 1
                first = _calls[0] % 2 == 1  # search() ranks BM25 first, then characters
                keep = (which == "bm25") == first
                return original(scores, allowed) if keep else original(np.zeros_like(scores), allowed)

            retrieval._ranks = ranks
            try:
                return index.search(text, limit=limit)
            finally:
                retrieval._ranks = original

    return One()


def _through_service(queries: list[str]) -> dict[str, float]:
    from cityhub.db import session_scope
    from cityhub.knowledge import service
    from cityhub.knowledge.retrieval import CACHE

    use_database(fresh_sqlite_url("kb"))
    t = time.perf_counter()
    with session_scope() as s:
        report = service.seed_from_replies(s, path=F4)
    seed = time.perf_counter() - t
    CACHE.clear()
    with session_scope() as s:
        t = time.perf_counter()
        service.suggest(s, text=queries[0])
        first = time.perf_counter() - t
        lat = []
        for q in queries:
            t = time.perf_counter()
            service.suggest(s, text=q)
            lat.append((time.perf_counter() - t) * 1000)
    return {
        "seeded_entries": report.created,
        "seed_s": round(seed, 2),
        "first_suggest_with_index_build_s": round(first, 2),
        "suggest_ms_p50": round(statistics.median(lat), 2),
        "suggest_ms_p95": round(float(np.percentile(lat, 95)), 2),
    }


if __name__ == "__main__":
    main()
