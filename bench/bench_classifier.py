"""Order category classifier: leak-free grouped CV (chosen model vs baseline), training time, latency.

    .venv/bin/python bench/bench_classifier.py [--folds 5] [--quick]

Data: ../shared/data/teddycup2020_c/dev/*.csv (skipped when missing). Near-duplicate messages (reposts,
and the segmented copy of a raw message) are grouped so a message never sits on both sides of a fold.
Scores are reported on raw-form test rows (what production sees), on all test rows, and on the titles
alone of raw test rows that have a separate title.

Writes bench/results/classifier_cv.json and bench/results/classifier_cv.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig, LabelledOrder, metrics
from cityhub.nlp.text import looks_segmented, near_duplicate_groups

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "teddycup2020_c"
FILES = [DATA / "dev" / "messages_labeled_raw.csv", DATA / "dev" / "messages_labeled_segmented.csv"]
UNLABELLED = DATA / "csv" / "f2_final_testset_unlabeled_2801.csv"
RESULTS = ROOT / "bench" / "results"


def baseline_scores(train: list[LabelledOrder], test_texts: list[str], n_labels: list[str]) -> np.ndarray:
    """Plain char 1–3-gram TF-IDF + LinearSVC on the text as given; scores = decision function."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, dtype=np.float32)
    x = vec.fit_transform([r.text for r in train])
    index = {label: i for i, label in enumerate(n_labels)}
    svm = LinearSVC(C=1.0).fit(x, [index[r.category] for r in train])
    scores = np.full((len(test_texts), len(n_labels)), -10.0)
    scores[:, svm.classes_] = svm.decision_function(vec.transform(test_texts))
    return scores


def softmax(scores: np.ndarray) -> np.ndarray:
    # Only for ranking: coverage depends on the order of confidences, not on their calibration.
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def summary(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": m["n"],
        "accuracy": round(m["accuracy"], 4),
        "macro_f1": round(m["macro_f1"], 4),
        "coverage_at_precision": {k: round(v, 4) for k, v in m["coverage_at_precision"].items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="Two folds only, for a smoke run.")
    args = ap.parse_args()
    if not all(f.is_file() for f in FILES):
        print(f"skip: data not found under {DATA}")
        return 0
    records: list[LabelledOrder] = []
    reports = []
    for f in FILES:
        recs, rep = classifier.read_labelled_csv(f)
        records += recs
        reports.append(rep)
    labels = sorted({r.category for r in records})
    y = np.array([labels.index(r.category) for r in records])
    texts = [r.text for r in records]
    t0 = time.perf_counter()
    groups = near_duplicate_groups(texts)
    group_seconds = time.perf_counter() - t0
    raw_form = np.array([not looks_segmented(t) for t in texts])
    print(f"{len(records)} records, {len(set(groups.tolist()))} near-duplicate groups ({group_seconds:.1f} s)")

    from sklearn.model_selection import StratifiedGroupKFold

    config = ClassifierConfig()
    splits = list(StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=42).split(texts, y, groups))
    if args.quick:
        splits = splits[:2]
    tested = np.zeros(len(records), bool)
    p_model = np.zeros((len(records), len(labels)))
    p_base = np.zeros((len(records), len(labels)))
    title_idx = [i for i, r in enumerate(records) if r.title and r.content and raw_form[i]]
    tp_model = np.zeros((len(records), len(labels)))
    tp_base = np.zeros((len(records), len(labels)))
    fold_seconds = []
    for k, (tr, te) in enumerate(splits):
        t0 = time.perf_counter()
        train_recs = [records[i] for i in tr]
        model = classifier.train(train_recs, config=config, groups=groups[tr], evaluate_cv=False)
        cols = [labels.index(lab) for lab in model.labels]
        p_model[np.ix_(te, cols)] = model.predict_proba([texts[i] for i in te])
        te_titles = [i for i in title_idx if i in set(te.tolist())]
        tp_model[np.ix_(te_titles, cols)] = model.predict_proba([records[i].title for i in te_titles])
        fold_seconds.append(time.perf_counter() - t0)
        p_base[te] = softmax(baseline_scores(train_recs, [texts[i] for i in te], labels))
        tp_base[te_titles] = softmax(baseline_scores(train_recs, [records[i].title for i in te_titles], labels))
        tested[te] = True
        print(f"fold {k + 1}/{len(splits)}: {fold_seconds[-1]:.0f} s", flush=True)

    title_mask = np.zeros(len(records), bool)
    title_mask[title_idx] = True
    title_mask &= tested
    views = {"raw_text": tested & raw_form, "all_rows": tested, "title_only": title_mask}
    cv: dict[str, Any] = {}
    for name, (pm, pt) in {"chosen": (p_model, tp_model), "baseline": (p_base, tp_base)}.items():
        cv[name] = {}
        for view, mask in views.items():
            proba = pt if view == "title_only" else pm
            cv[name][view] = metrics(y[mask], proba[mask], labels)

    # Training time on all dev data, as `cityhub nlp train` does it (grouping + internal CV report).
    t0 = time.perf_counter()
    full = classifier.train(records, config=config, sources=reports)
    train_seconds = time.perf_counter() - t0

    if UNLABELLED.is_file():
        _, pool = classifier.read_texts(UNLABELLED)
    else:
        pool = texts
    single = []
    for text in pool[:500]:
        t0 = time.perf_counter()
        full.predict([text])
        single.append((time.perf_counter() - t0) * 1000)
    single.sort()
    batch = pool[:2000]
    t0 = time.perf_counter()
    for i in range(0, len(batch), 500):
        full.predict(batch[i : i + 500])
    throughput = len(batch) / (time.perf_counter() - t0)

    result = {
        "data": [
            str(f.relative_to(ROOT.parent.parent)) if f.is_relative_to(ROOT.parent.parent) else str(f) for f in FILES
        ],
        "records": len(records),
        "near_duplicate_groups": len(set(groups.tolist())),
        "folds": len(splits),
        "config": full.meta["config"],
        "cv": {name: {view: summary(m) for view, m in views_.items()} for name, views_ in cv.items()},
        "per_class_chosen_raw_text": cv["chosen"]["raw_text"]["per_class"],
        "thresholds_chosen_raw_text": cv["chosen"]["raw_text"]["threshold_at_precision"],
        "timing": {
            "cpu_count": __import__("os").cpu_count(),
            "train_all_dev_seconds": round(train_seconds, 1),
            "train_fold_seconds_mean": round(statistics.mean(fold_seconds), 1),
            "single_predict_ms_p50": round(single[len(single) // 2], 2),
            "single_predict_ms_p99": round(single[int(len(single) * 0.99) - 1], 2),
            "batch_orders_per_second": round(throughput),
        },
        "internal_report_of_full_model": {
            k: summary(v) for k, v in full.meta.get("evaluation", {}).items() if isinstance(v, dict)
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "classifier_cv.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = [
        "# Order category classifier — grouped CV",
        "",
        f"{len(records)} labelled rows (raw + segmented dev files), {result['near_duplicate_groups']} near-duplicate",
        f"groups, {len(splits)}-fold StratifiedGroupKFold. Generated by `bench/bench_classifier.py`.",
        "",
        "| model | view | n | macro F1 | accuracy | cov@0.85 | cov@0.90 | cov@0.95 | cov@0.97 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, views_ in result["cv"].items():
        for view, s in views_.items():
            c = s["coverage_at_precision"]
            lines.append(
                f"| {name} | {view} | {s['n']} | {s['macro_f1']:.4f} | {s['accuracy']:.4f} | "
                f"{c['0.85']:.3f} | {c['0.90']:.3f} | {c['0.95']:.3f} | {c['0.97']:.3f} |"
            )
    lines += ["", "Timing (2-core box shared with other jobs):", ""]
    lines += [f"- {k}: {v}" for k, v in result["timing"].items()]
    (RESULTS / "classifier_cv.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
