"""Order category classifier: leak-free grouped CV (baseline vs chosen vs chosen + encoder), time, latency.

    .venv/bin/python bench/bench_classifier.py [--folds 5] [--quick] [--no-encoder] [--embed-cache DIR]

The "+ encoder" model (m3e-small sentence embeddings as a fourth stack member) runs when the embed extra is
installed (see ``cityhub.nlp.encoder``). Its embeddings are cached by text hash in ``--embed-cache``; the cold
cost (embedding every dev text from scratch) is measured on a sample and extrapolated, and reported next to
the warm training time.

Data: ../shared/data/teddycup2020_c/dev/*.csv (skipped when missing). Near-duplicate messages (reposts,
and the segmented copy of a raw message) are grouped so a message never sits on both sides of a fold.
Scores are reported on raw-form test rows (what production sees), on all test rows, and on the titles
alone of raw test rows that have a separate title.

Writes bench/results/classifier_cv.json and bench/results/classifier_cv.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig, CsvReport, LabelledOrder, metrics
from cityhub.nlp.text import looks_segmented, near_duplicate_groups, normalize

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "teddycup2020_c"
FILES = [DATA / "dev" / "messages_labeled_raw.csv", DATA / "dev" / "messages_labeled_segmented.csv"]
UNLABELLED = DATA / "csv" / "f2_final_testset_unlabeled_2801.csv"
RESULTS = Path(os.environ.get("CITYHUB_BENCH_RESULTS") or ROOT / "bench" / "results")  # as bench/_common.py


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
        "calibration": {
            k: None if m["calibration"][k] is None else round(m["calibration"][k], 4)
            for k in ("ece", "brier", "log_loss")
        },
    }


@dataclass
class DevData:
    """The dev files' labelled rows with what every classifier bench derives from them."""

    records: list[LabelledOrder]
    reports: list[CsvReport]
    labels: list[str]
    y: np.ndarray
    texts: list[str]
    groups: np.ndarray  # near-duplicate group per row: a group never straddles a fold
    raw_form: np.ndarray  # rows in raw (not word-segmented) form, what production sees
    group_seconds: float


def dev_data() -> DevData:
    records: list[LabelledOrder] = []
    reports = []
    for f in FILES:
        recs, rep = classifier.read_labelled_csv(f)
        records += recs
        reports.append(rep)
    labels = sorted({r.category for r in records})
    texts = [r.text for r in records]
    t0 = time.perf_counter()
    groups = near_duplicate_groups(texts)
    return DevData(
        records=records,
        reports=reports,
        labels=labels,
        y=np.array([labels.index(r.category) for r in records]),
        texts=texts,
        groups=groups,
        raw_form=np.array([not looks_segmented(t) for t in texts]),
        group_seconds=time.perf_counter() - t0,
    )


def dev_splits(data: DevData, folds: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """The bench's grouped, stratified folds (seed 42): every classifier bench tests on the same rows."""
    from sklearn.model_selection import StratifiedGroupKFold

    return list(
        StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=42).split(data.texts, data.y, data.groups)
    )


def cv_table(cv: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Markdown rows, per model and view: n, macro F1, accuracy, coverage at each precision level, calibration."""
    lines = [
        "| model | view | n | macro F1 | accuracy | cov@0.85 | cov@0.90 | cov@0.95 | cov@0.97 | ECE | Brier |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, views in cv.items():
        for view, s in views.items():
            c, cal = s["coverage_at_precision"], s["calibration"]
            lines.append(
                f"| {name} | {view} | {s['n']} | {s['macro_f1']:.4f} | {s['accuracy']:.4f} | "
                f"{c['0.85']:.3f} | {c['0.90']:.3f} | {c['0.95']:.3f} | {c['0.97']:.3f} | "
                + " | ".join("—" if cal[k] is None else f"{cal[k]:.3f}" for k in ("ece", "brier"))
                + " |"
            )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="Two folds only, for a smoke run.")
    ap.add_argument("--no-encoder", action="store_true", help="Skip the model with the sentence encoder.")
    ap.add_argument("--embed-cache", default="/tmp/cityhub-embed-cache", help="Embedding cache directory.")
    args = ap.parse_args()
    if not all(f.is_file() for f in FILES):
        print(f"skip: data not found under {DATA}")
        return 0
    data = dev_data()
    records, reports, labels, y, texts = data.records, data.reports, data.labels, data.y, data.texts
    groups, raw_form, group_seconds = data.groups, data.raw_form, data.group_seconds
    print(f"{len(records)} records, {len(set(groups.tolist()))} near-duplicate groups ({group_seconds:.1f} s)")

    configs: dict[str, ClassifierConfig] = {"chosen": ClassifierConfig()}
    encoders: dict[str, Any] = {}
    encoder_info: dict[str, Any] = {}
    from cityhub.nlp import encoder as enc

    if not args.no_encoder and enc.M3E_SMALL in enc.available_encoders():
        raw_encoder = enc.get_encoder(enc.M3E_SMALL)
        cached = enc.CachedEncoder(raw_encoder, args.embed_cache)
        # Cold cost: embedding texts never seen before, on a sample, extrapolated to all distinct dev texts.
        distinct = sorted({normalize(t) for t in texts} | {normalize(r.title) for r in records if r.title})
        sample = distinct[:: max(1, len(distinct) // 300)][:300]
        t0 = time.perf_counter()
        raw_encoder.encode(sample)
        rate = len(sample) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        cached.encode(distinct)  # fills the cache (cold where the cache was empty)
        fill_seconds = time.perf_counter() - t0
        encoder_info = {
            **raw_encoder.describe(),
            "cold_texts_per_second": round(rate, 1),
            "distinct_dev_texts": len(distinct),
            "cold_embed_all_dev_seconds_extrapolated": round(len(distinct) / rate),
            "cache_fill_seconds_this_run": round(fill_seconds, 1),
            "cache_misses_this_run": cached.misses,
        }
        print(f"encoder: {encoder_info}", flush=True)
        configs["chosen+m3e"] = ClassifierConfig(encoder=enc.M3E_SMALL)
        encoders["chosen+m3e"] = cached
    splits = dev_splits(data, args.folds)
    if args.quick:
        splits = splits[:2]
    tested = np.zeros(len(records), bool)
    # "<model>/stacker-p": the same fitted model ranked by the stacker's probability, before the per-class
    # confidence calibration (``ClassConfidence``) — the before/after comparison costs no extra training.
    uncal = {name: f"{name}/stacker-p" for name in configs}
    names = ["baseline", *[n for name in configs for n in (name, uncal[name])]]
    proba_text = {name: np.zeros((len(records), len(labels))) for name in names}
    proba_title = {name: np.zeros((len(records), len(labels))) for name in names}
    title_idx = [i for i, r in enumerate(records) if r.title and r.content and raw_form[i]]
    fold_seconds: dict[str, list[float]] = {name: [] for name in configs}
    for k, (tr, te) in enumerate(splits):
        train_recs = [records[i] for i in tr]
        te_set = set(te.tolist())
        te_titles = [i for i in title_idx if i in te_set]
        for name, config in configs.items():
            t0 = time.perf_counter()
            model = classifier.train(
                train_recs, config=config, groups=groups[tr], evaluate_cv=False, encoder=encoders.get(name)
            )
            cols = [labels.index(lab) for lab in model.labels]
            proba_text[name][np.ix_(te, cols)] = model.predict_proba([texts[i] for i in te])
            proba_title[name][np.ix_(te_titles, cols)] = model.predict_proba([records[i].title for i in te_titles])
            model.confidence = None
            proba_text[uncal[name]][np.ix_(te, cols)] = model.predict_proba([texts[i] for i in te])
            proba_title[uncal[name]][np.ix_(te_titles, cols)] = model.predict_proba(
                [records[i].title for i in te_titles]
            )
            fold_seconds[name].append(time.perf_counter() - t0)
            print(f"fold {k + 1}/{len(splits)} {name}: {fold_seconds[name][-1]:.0f} s", flush=True)
        proba_text["baseline"][te] = softmax(baseline_scores(train_recs, [texts[i] for i in te], labels))
        proba_title["baseline"][te_titles] = softmax(
            baseline_scores(train_recs, [records[i].title for i in te_titles], labels)
        )
        tested[te] = True

    title_mask = np.zeros(len(records), bool)
    title_mask[title_idx] = True
    title_mask &= tested
    views = {"raw_text": tested & raw_form, "all_rows": tested, "title_only": title_mask}
    cv: dict[str, Any] = {}
    for name in names:
        cv[name] = {}
        for view, mask in views.items():
            proba = proba_title[name] if view == "title_only" else proba_text[name]
            cv[name][view] = metrics(y[mask], proba[mask], labels)
            if name == "baseline":  # a softmax of SVM scores ranks, it does not claim probabilities
                cv[name][view]["calibration"] = dict.fromkeys(("ece", "brier", "log_loss"))

    if UNLABELLED.is_file():
        _, pool = classifier.read_texts(UNLABELLED)
    else:
        pool = texts
    timing: dict[str, Any] = {"cpu_count": __import__("os").cpu_count()}
    internal: dict[str, Any] = {}
    full_config: dict[str, Any] = {}
    for name, config in configs.items():
        # Training on all dev data as `cityhub nlp train` does it (grouping + internal CV report); with the
        # encoder, embeddings come from the warm cache (the cold figure is in "encoder").
        t0 = time.perf_counter()
        full = classifier.train(records, config=config, sources=reports, encoder=encoders.get(name))
        train_seconds = time.perf_counter() - t0
        if name in encoders:
            full.encoder = enc.get_encoder(config.encoder or "")  # new orders: no cache
        n_single, n_batch = (500, 2000) if name not in encoders else (200, 500)
        single = []
        for text in pool[:n_single]:
            t0 = time.perf_counter()
            full.predict([text])
            single.append((time.perf_counter() - t0) * 1000)
        single.sort()
        batch = pool[:n_batch]
        t0 = time.perf_counter()
        for i in range(0, len(batch), 500):
            full.predict(batch[i : i + 500])
        throughput = len(batch) / (time.perf_counter() - t0)
        timing[name] = {
            "train_all_dev_seconds": round(train_seconds, 1),
            "train_fold_seconds_mean": round(statistics.mean(fold_seconds[name]), 1),
            "single_predict_ms_p50": round(single[len(single) // 2], 2),
            "single_predict_ms_p99": round(single[int(len(single) * 0.99) - 1], 2),
            "batch_orders_per_second": round(throughput),
        }
        internal[name] = {k: summary(v) for k, v in full.meta.get("evaluation", {}).items() if isinstance(v, dict)}
        full_config[name] = full.meta["config"]

    result: dict[str, Any] = {
        "data": [
            str(f.relative_to(ROOT.parent.parent)) if f.is_relative_to(ROOT.parent.parent) else str(f) for f in FILES
        ],
        "records": len(records),
        "near_duplicate_groups": len(set(groups.tolist())),
        "folds": len(splits),
        "config": full_config,
        "encoder": encoder_info or None,
        "cv": {name: {view: summary(m) for view, m in views_.items()} for name, views_ in cv.items()},
        "per_class_raw_text": {name: cv[name]["raw_text"]["per_class"] for name in configs},
        "thresholds_raw_text": {name: cv[name]["raw_text"]["threshold_at_precision"] for name in configs},
        "timing": timing,
        "internal_report_of_full_model": internal,
        "load_average_at_end": list(__import__("os").getloadavg()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "classifier_cv.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = [
        "# Order category classifier — grouped CV",
        "",
        f"{len(records)} labelled rows (raw + segmented dev files), {result['near_duplicate_groups']} near-duplicate",
        f"groups, {len(splits)}-fold StratifiedGroupKFold. Generated by `bench/bench_classifier.py`.",
        "",
        *cv_table(result["cv"]),
    ]
    lines += [
        "",
        "Timing (2 cores; load average at the end "
        + ", ".join(f"{v:.1f}" for v in result["load_average_at_end"])
        + "):",
        "",
        "| model | train all dev (s) | train per fold (s) | predict p50 (ms) | predict p99 (ms) | batch (orders/s) |",
        "|---|---|---|---|---|---|",
    ]
    for name in configs:
        t = timing[name]
        lines.append(
            f"| {name} | {t['train_all_dev_seconds']} | {t['train_fold_seconds_mean']} | "
            f"{t['single_predict_ms_p50']} | {t['single_predict_ms_p99']} | {t['batch_orders_per_second']} |"
        )
    if encoder_info:
        lines += ["", "Encoder: " + ", ".join(f"{k}={v}" for k, v in encoder_info.items())]
    (RESULTS / "classifier_cv.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
