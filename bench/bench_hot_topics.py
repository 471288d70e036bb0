"""Hot-topic mining: speed and memory (f3 real data, a synthetic 1,000,000, an incremental 10,000) and quality
side by side with BERTopic and scikit-learn NMF on the real f3 messages.

Every stage runs in a child process; the parent samples the RSS of the child's whole process tree (the miner
uses two worker processes for tokenisation on large inputs) and its CPU time.

The synthetic corpus samples the real f3 + f2 messages (7,127) and perturbs them: a named place in the text is
swapped for another real place name (so that one real problem becomes many estate-specific ones), a few
characters are dropped, times spread over three years and likes drawn from a heavy-tailed distribution.

BERTopic is not a project dependency (it pulls sentence-transformers/torch). It runs here without any model
from a hub: it is given the same TF-IDF→SVD document vectors as cityhub as precomputed embeddings, with its
default UMAP + HDBSCAN and a c-TF-IDF over rjieba words. Install it apart, e.g.
``pip install --target /work/btlib --no-deps bertopic hdbscan umap-learn pynndescent numba llvmlite pandas
plotly tqdm narwhals pyyaml``, and pass ``--bertopic-path /work/btlib``; without it the comparison has NMF only.

    .venv/bin/python bench/bench_hot_topics.py [--n 1000000] [--incremental 10000] [--bertopic-path DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import itertools

from _common import RESULTS, write_result

DATA = Path("../shared/data/teddycup2020_c/csv")
F3 = DATA / "f3_hot_topic_messages_4326.csv"
F2 = DATA / "f2_final_testset_unlabeled_2801.csv"


# ------------------------------------------------------------------------------------------ stages (child side)


def _emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result, ensure_ascii=False, default=str), flush=True)


def stage_f3() -> None:
    from cityhub.analytics import hot_topics as ht

    t0 = time.perf_counter()
    records = ht.read_orders_file(F3)
    t1 = time.perf_counter()
    model = ht.TopicModel()
    ranked = model.fit(records)
    t2 = time.perf_counter()
    _emit(
        {
            "orders": len(records),
            "read_s": t1 - t0,
            "mine_s": t2 - t1,
            "topics": len(ranked),
            "in_topics": sum(t.size for t in ranked),
            "top5": ht.top_table(ranked, k=5),
            "top20": [{k: v for k, v in t.to_dict().items() if k != "order_ids"} for t in ranked[:20]],
        }
    )


def synthetic(n: int, *, seed: int, start: datetime, days: int) -> Callable[[], Iterator[Any]]:
    """A source of ``n`` perturbed copies of the real messages (see the module doc): a callable that returns a
    fresh generator of the same records each time, so the miner can stream them instead of holding them."""
    from cityhub.analytics import hot_topics as ht
    from cityhub.analytics.lexicon import ADMIN_CODE_RE, extract_places

    base = ht.read_orders_file(F3) + ht.read_orders_file(F2)
    texts = [(r.title, r.content.strip()[: ht.CONTENT_CHARS]) for r in base]
    named = [[p for p in extract_places(f"{t}\n{c}") if not ADMIN_CODE_RE.fullmatch(p)] for t, c in texts]
    pool = sorted({p for ps in named for p in ps})
    span = days * 86400

    def generate() -> Iterator[Any]:
        rng = random.Random(seed)
        for i in range(n):
            j = rng.randrange(len(texts))
            title, content = texts[j]
            if named[j] and rng.random() < 0.7:
                old = rng.choice(named[j])
                new = rng.choice(pool)
                title, content = title.replace(old, new), content.replace(old, new)
            if content and rng.random() < 0.5:
                chars = list(content)
                for _ in range(rng.randint(1, 3)):
                    if chars:
                        del chars[rng.randrange(len(chars))]
                content = "".join(chars)
            yield ht.OrderRecord(
                id=f"s{seed}-{i}",
                title=title,
                content=content,
                created_at=start + timedelta(seconds=rng.randrange(span)),
                likes=int(rng.paretovariate(1.2)) - 1,
                citizen=f"U{rng.randrange(n)}",
            )

    return generate


def stage_big(n: int, incremental: int) -> None:
    from cityhub.analytics import hot_topics as ht
    from cityhub.analytics.topics_store import dumps

    start = datetime(2017, 1, 1, tzinfo=UTC)
    source = synthetic(n, seed=1, start=start, days=3 * 365)
    t0 = time.perf_counter()
    generated = sum(1 for _ in source())  # what reading the input costs; fit reads it twice
    t1 = time.perf_counter()
    c0 = time.process_time()
    model = ht.TopicModel()
    ranked = model.fit(source)
    t2 = time.perf_counter()
    c1 = time.process_time()
    later = list(synthetic(incremental, seed=2, start=start + timedelta(days=3 * 365), days=30)())
    t3 = time.perf_counter()
    summary = model.update(later)
    t4 = time.perf_counter()
    c2 = time.process_time()
    blob = dumps(model)
    t5 = time.perf_counter()
    _emit(
        {
            "orders": generated,
            "generate_s": t1 - t0,
            "fit_s": t2 - t1,
            "fit_cpu_main_s": c1 - c0,
            "topics": len(ranked),
            "in_topics": sum(t.size for t in ranked),
            "incremental_orders": incremental,
            "incremental_s": t4 - t3,
            "incremental_cpu_main_s": c2 - c1,
            "incremental": summary,
            "state_mb": len(blob) / 1e6,
            "state_dump_s": t5 - t4,
        }
    )


def stage_compare(bertopic_path: str | None, nmf_k: int) -> None:
    """Quality of cityhub, BERTopic and NMF on f3, in one neutral space (character-bigram TF-IDF)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from cityhub.analytics import hot_topics as ht
    from cityhub.nlp.text import near_duplicate_groups

    records = ht.read_orders_file(F3)
    docs = [f"{r.title}\n{r.content.strip()[: ht.CONTENT_CHARS]}" for r in records]
    words = [set(w for w in ht.doc_tokens(r.title, r.content) if w[0] not in "#@") for r in records]
    neutral = TfidfVectorizer(analyzer="char", ngram_range=(2, 2), min_df=2, sublinear_tf=True).fit_transform(docs)
    dup = near_duplicate_groups(docs, threshold=0.8)
    dup_pairs = [
        (a, b)
        for g in set(dup.tolist())
        for idx in [np.flatnonzero(dup == g).tolist()]
        if len(idx) > 1
        for a, b in itertools.pairwise(idx)
    ]
    df: Counter[str] = Counter(w for ws in words for w in ws)
    n_docs = len(records)

    def npmi(top_words: list[str]) -> float | None:
        top = [w for w in top_words if df[w] > 0][:6]
        vals = []
        for i in range(len(top)):
            for j in range(i + 1, len(top)):
                a, b = top[i], top[j]
                co = sum(1 for ws in words if a in ws and b in ws)
                if co == 0:
                    vals.append(-1.0)
                    continue
                p_ab, p_a, p_b = co / n_docs, df[a] / n_docs, df[b] / n_docs
                vals.append(math.log(p_ab / (p_a * p_b)) / -math.log(p_ab) if p_ab < 1 else 1.0)
        return sum(vals) / len(vals) if vals else None

    def evaluate(name: str, labels: np.ndarray, top_words: dict[int, list[str]], seconds: float) -> dict[str, Any]:
        ids = [t for t in np.unique(labels) if t >= 0]
        sims = []
        for t in ids:
            rows = np.flatnonzero(labels == t)
            m = neutral[rows]
            c = np.asarray(m.mean(axis=0)).ravel()
            c /= np.linalg.norm(c) or 1.0
            sims.extend((m @ c).tolist())
        coh = [v for t in ids if (v := npmi(top_words.get(int(t), []))) is not None]
        kept = [(a, b) for a, b in dup_pairs if labels[a] >= 0 or labels[b] >= 0]
        same = sum(1 for a, b in kept if labels[a] == labels[b] and labels[a] >= 0)
        sizes = [int((labels == t).sum()) for t in ids]
        return {
            "method": name,
            "seconds": round(seconds, 2),
            "topics": len(ids),
            "share_in_topics": round(float((labels >= 0).mean()), 3),
            "median_size": float(np.median(sizes)) if sizes else 0,
            "largest": max(sizes, default=0),
            "mean_sim_to_centroid": round(float(np.mean(sims)), 3) if sims else None,
            "npmi_top6": round(float(np.mean(coh)), 3) if coh else None,
            "duplicate_pairs_together": f"{same}/{len(kept)}",
        }

    results = []
    tops: dict[str, list[dict[str, Any]]] = {}
    t0 = time.perf_counter()
    model = ht.TopicModel()
    ranked = model.fit(records)
    sec = time.perf_counter() - t0
    pos = {r.id: i for i, r in enumerate(records)}
    labels = np.full(len(records), -1)
    for t in ranked:
        labels[[pos[o] for o in t.order_ids]] = t.id
    results.append(evaluate("cityhub", labels, {t.id: t.key_phrases for t in ranked}, sec))
    tops["cityhub"] = [
        {"id": t.id, "size": t.size, "heat": round(t.heat, 2), "label": t.label, "title": t.representative}
        for t in ranked[:5]
    ]
    x = model.embedder.transform([ht.doc_tokens(r.title, r.content) for r in records])

    # scikit-learn NMF on the same TF-IDF vocabulary: a classic topic model (every message gets its top topic).
    from sklearn.decomposition import NMF

    t0 = time.perf_counter()
    tfidf = model.embedder.tfidf([ht.doc_tokens(r.title, r.content) for r in records])
    nmf = NMF(n_components=nmf_k, init="nndsvd", max_iter=100, random_state=0)
    w = nmf.fit_transform(tfidf)
    sec = time.perf_counter() - t0
    nmf_labels = np.where(w.max(axis=1) > 0, w.argmax(axis=1), -1)
    terms = model.embedder.vocabulary
    nmf_words = {
        k: [terms[i] for i in np.argsort(-nmf.components_[k]) if terms[i][0] not in "#@"][:6] for k in range(nmf_k)
    }
    results.append(evaluate(f"sklearn NMF k={nmf_k}", nmf_labels, nmf_words, sec))
    counts = Counter(nmf_labels.tolist())
    tops[f"NMF k={nmf_k}"] = [
        {"id": k, "size": c, "label": "、".join(nmf_words[k][:4]), "title": records[int(np.argmax(w[:, k]))].title}
        for k, c in counts.most_common(5)
    ]

    if bertopic_path:
        sys.path.insert(0, bertopic_path)
        try:
            from bertopic import BERTopic
            from sklearn.feature_extraction.text import CountVectorizer
        except ImportError as exc:
            results.append({"method": "BERTopic", "error": f"not importable: {exc}"})
        else:
            t0 = time.perf_counter()
            vec = CountVectorizer(analyzer=lambda d: [w for w in ht.doc_tokens(d, "") if w[0] not in "#@"])
            titles_content = [f"{r.title}\n{r.content.strip()[: ht.CONTENT_CHARS]}" for r in records]
            # language="multilingual": the English default strips every non-ASCII character before c-TF-IDF.
            bt = BERTopic(vectorizer_model=vec, language="multilingual", calculate_probabilities=False, verbose=False)
            b_labels, _ = bt.fit_transform(titles_content, embeddings=x)
            sec = time.perf_counter() - t0
            b_labels = np.asarray(b_labels)
            b_words = {int(t): [w for w, _ in (bt.get_topic(t) or [])][:6] for t in set(b_labels.tolist()) if t >= 0}
            results.append(evaluate("BERTopic (LSA embeddings, UMAP+HDBSCAN)", b_labels, b_words, sec))
            counts = Counter(int(v) for v in b_labels.tolist() if v >= 0)
            rep = bt.get_representative_docs()
            tops["BERTopic"] = [
                {
                    "id": k,
                    "size": c,
                    "label": "、".join(b_words[k][:4]),
                    "title": (rep.get(k) or [""])[0].split("\n")[0],
                }
                for k, c in counts.most_common(5)
            ]
    _emit({"quality": results, "top5": tops, "duplicate_pairs": len(dup_pairs)})


# ------------------------------------------------------------------------------------------ parent side


def run_stage(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    peak = peak_pss = 0
    cpu = 0.0
    ps = psutil.Process(proc.pid)
    stop = threading.Event()
    seen: dict[int, float] = {}

    def sample() -> None:
        # RSS summed over the tree counts pages the forked workers share with the parent once per process (an
        # upper bound); PSS splits shared pages between the processes (the physical memory used), read every
        # fifth sample because it walks the page tables.
        nonlocal peak, peak_pss
        tick = 0
        while not stop.is_set():
            try:
                tree = [ps, *ps.children(recursive=True)]
                rss = pss = 0
                for p in tree:
                    try:
                        rss += p.memory_info().rss
                        if tick % 5 == 0:
                            pss += p.memory_full_info().pss
                        t = p.cpu_times()
                        seen[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
                peak_pss = max(peak_pss, pss)
            except psutil.Error:
                pass
            tick += 1
            stop.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    stop.set()
    thread.join()
    wall = time.perf_counter() - start
    cpu = sum(seen.values())
    if proc.returncode != 0:
        raise SystemExit(f"stage {args} failed with {proc.returncode}")
    line = next(line for line in reversed(out.splitlines()) if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result.update(
        {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "peak_rss_mb": round(peak / 2**20),
            "peak_pss_mb": round(peak_pss / 2**20),
        }
    )
    return result


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Hot topics benchmark", "", f"Run {res['when']} on {res['cpus']} CPUs (shared machine).", ""]
    f3 = res.get("f3") or {"orders": 0, "wall_s": 0, "mine_s": 0, "cpu_s": 0, "peak_rss_mb": 0, "topics": 0}
    f3.setdefault("in_topics", 0)
    f3.setdefault("top5", [])
    lines += [
        "## Speed and memory",
        "",
        "| run | orders | wall s (process) | mining s | CPU s | peak RSS sum MB | peak PSS sum MB | topics "
        "| in topics |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| f3 real | {f3['orders']} | {f3['wall_s']} | {f3['mine_s']:.1f} | {f3['cpu_s']} | {f3['peak_rss_mb']} "
        f"| {f3.get('peak_pss_mb', '–')} | {f3['topics']} | {f3['in_topics']} |",
    ]
    big = res.get("big")
    if big:
        lines.append(
            f"| synthetic fit | {big['orders']} | {big['wall_s']} | {big['fit_s']:.1f} | {big['cpu_s']} (whole run) "
            f"| {big['peak_rss_mb']} (whole run) | {big.get('peak_pss_mb', '–')} (whole run) | {big['topics']} "
            f"| {big['in_topics']} |"
        )
        lines.append(
            f"| incremental update | {big['incremental_orders']} | – | {big['incremental_s']:.1f} | "
            f"{big['incremental_cpu_main_s']:.1f} (main) | – | – | +{big['incremental']['new_topics']} new | "
            f"{big['incremental']['joined']} joined |"
        )
        lines.append("")
        lines.append(
            f"Generating the synthetic input once takes {big['generate_s']:.0f} s; the fit streams it (reads it "
            f"twice), so that is inside the fit time. State {big['state_mb']:.0f} MB. RSS summed over the tree "
            "counts pages forked workers share with the parent once per process; PSS counts them once."
        )
    lines += ["", "## f3 top 5 (cityhub)", "", "| rank | topic | heat | time span | place/population | description |"]
    lines.append("|---|---|---|---|---|---|")
    for r in f3["top5"]:
        lines.append(
            f"| {r['rank']} | {r['topic_id']} | {r['heat']} | {r['time_span']} | {r['place_population']} "
            f"| {r['description']} |"
        )
    cmp_ = res.get("compare")
    if cmp_:
        lines += ["", "## Quality on f3 (no labels)", ""]
        keys = [
            "seconds",
            "topics",
            "share_in_topics",
            "median_size",
            "largest",
            "mean_sim_to_centroid",
            "npmi_top6",
            "duplicate_pairs_together",
        ]
        lines.append("| method | " + " | ".join(keys) + " |")
        lines.append("|---" * (len(keys) + 1) + "|")
        for q in cmp_["quality"]:
            lines.append(f"| {q['method']} | " + " | ".join(str(q.get(k, q.get("error", ""))) for k in keys) + " |")
        for name, rows in cmp_["top5"].items():
            lines += ["", f"### top 5 — {name}", "", "| id | size | label | title |", "|---|---|---|---|"]
            for r in rows:
                lines.append(f"| {r['id']} | {r['size']} | {r['label']} | {r['title']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["f3", "big", "compare"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic orders for the large run")
    ap.add_argument("--incremental", type=int, default=10_000, help="new orders of the incremental update")
    ap.add_argument("--bertopic-path", default=None, help="directory holding bertopic and its dependencies")
    ap.add_argument("--nmf-k", type=int, default=100)
    ap.add_argument("--stages", default="f3,big,compare", help="comma-separated subset of f3, big, compare")
    ap.add_argument("--quick", action="store_true", help="20,000 synthetic orders, 2,000 incremental, no BERTopic")
    args = ap.parse_args()
    if args.stage == "f3":
        stage_f3()
        return
    if args.stage == "big":
        stage_big(args.n, args.incremental)
        return
    if args.stage == "compare":
        stage_compare(args.bertopic_path, args.nmf_k)
        return
    if not F3.exists():
        print(f"skipped: {F3} not found")
        return
    if args.quick:
        args.n, args.incremental, args.bertopic_path = 20_000, 2_000, None
    res: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    stages = set(args.stages.split(","))
    suffix = "_quick" if args.quick else ""
    old = RESULTS / f"hot_topics{suffix}.json"
    if stages != {"f3", "big", "compare"} and old.exists():
        # A partial run refreshes its own stages and keeps the others' last figures.
        res = {**json.loads(old.read_text()), **res}
    if "f3" in stages:
        res["f3"] = run_stage(["--stage", "f3"])
        print(
            f"f3: {res['f3']['orders']} orders, mining {res['f3']['mine_s']:.1f} s, wall {res['f3']['wall_s']} s, "
            f"peak {res['f3']['peak_rss_mb']} MB, {res['f3']['topics']} topics"
        )
    if "big" in stages:
        res["big"] = run_stage(["--stage", "big", "--n", str(args.n), "--incremental", str(args.incremental)])
        b = res["big"]
        print(
            f"synthetic {b['orders']}: fit {b['fit_s']:.1f} s, incremental {b['incremental_orders']} in "
            f"{b['incremental_s']:.1f} s, peak {b['peak_rss_mb']} MB, CPU {b['cpu_s']} s"
        )
    if "compare" in stages:
        cmd = ["--stage", "compare", "--nmf-k", str(args.nmf_k)]
        if args.bertopic_path:
            cmd += ["--bertopic-path", args.bertopic_path]
        res["compare"] = run_stage(cmd)
        for q in res["compare"]["quality"]:
            print(json.dumps(q, ensure_ascii=False))
    path = write_result(f"hot_topics{suffix}", res)
    (RESULTS / f"hot_topics{suffix}.md").write_text(markdown(res))
    print(f"written {path}")


if __name__ == "__main__":
    main()
