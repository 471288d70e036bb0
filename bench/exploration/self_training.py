"""Self-training on unlabelled messages of the same board: does it help the default model on the strict proxy?

    .venv/bin/python bench/exploration/self_training.py [--run-folds 1,2,3] [--thresholds 0.9]

Pool: the unlabelled messages of ``csv/f2_…``, ``f3_…``, ``f4_…`` (title + details), without any that is a
near-duplicate (bigram containment >= 0.5, as the proxy groups) of a labelled dev message, one per near-duplicate
group. Per fold of the bench's 5-fold split (``bench_classifier.dev_splits``): the default model trained on the
fold's training rows labels the pool; the pool messages it labels with calibrated probability >= a threshold join the
training rows with that label; a second model is trained on both. Both are scored on the fold's test rows (raw form
and all rows). Exploration only: prints a table, writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_classifier import DATA, dev_data, dev_splits
from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig, LabelledOrder, metrics
from cityhub.nlp.text import near_duplicate_groups, order_text

POOL_FILES = (
    "f2_final_testset_unlabeled_2801.csv",
    "f3_hot_topic_messages_4326.csv",
    "f4_messages_with_replies_2816.csv",
)


def pool_texts() -> list[tuple[str, str, str]]:
    out = []
    for name in POOL_FILES:
        with open(DATA / "csv" / name, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                title = (row.get("留言主题") or "").strip()
                content = " ".join((row.get("留言详情") or "").split())
                if title or content:
                    out.append((f"{name[:2]}-{row['留言编号']}", title, content))
    return out


def _calibrate_first(n: int) -> None:
    """Make the next training's confidence calibration see only its first ``n`` full messages (the labelled ones:
    ``train`` lists the records' own rows first, in order, and the pseudo-labelled records come after them)."""
    fit = classifier._fit_confidence
    if hasattr(fit, "__wrapped__"):
        fit = fit.__wrapped__

    def first_rows(proba: np.ndarray, y: np.ndarray, config: ClassifierConfig) -> object:
        return fit(proba[:n], y[:n], config)

    first_rows.__wrapped__ = fit  # type: ignore[attr-defined]
    classifier._fit_confidence = first_rows  # type: ignore[assignment]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-folds", default="1,2,3")
    ap.add_argument("--thresholds", default="0.9")
    ap.add_argument(
        "--calibrate-on-labelled",
        action="store_true",
        help="Fit the student's confidence calibration on the labelled rows only (not on the pseudo-labelled ones).",
    )
    args = ap.parse_args()
    data = dev_data()
    pool = pool_texts()
    texts = data.texts + [order_text(t, c) for _, t, c in pool]
    t0 = time.perf_counter()
    joint = near_duplicate_groups(texts)
    n_dev = len(data.texts)
    dev_groups = set(joint[:n_dev].tolist())
    keep, seen = [], set()
    for i, g in enumerate(joint[n_dev:].tolist()):
        if g in dev_groups or g in seen:
            continue
        seen.add(g)
        keep.append(i)
    print(
        f"pool: {len(pool)} messages, {len(keep)} kept (not near a dev message, one per group); "
        f"grouping {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    pool_records = [pool[i] for i in keep]
    pool_text = [order_text(t, c) for _, t, c in pool_records]
    splits = dev_splits(data)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    rows = []
    for k in [int(v) for v in args.run_folds.split(",")]:
        tr, te = splits[k]
        train = [data.records[i] for i in tr]
        t0 = time.perf_counter()
        teacher = classifier.train(train, config=ClassifierConfig(), groups=data.groups[tr], evaluate_cv=False)
        print(f"fold {k}: teacher {time.perf_counter() - t0:.0f} s", flush=True)
        variants = {"teacher": teacher}
        proba = teacher.predict_proba(pool_text)
        top, conf = proba.argmax(1), proba.max(1)
        for th in thresholds:
            pick = np.flatnonzero(conf >= th)
            pseudo = [
                LabelledOrder(
                    id=f"pseudo-{pool_records[i][0]}",
                    title=pool_records[i][1],
                    content=pool_records[i][2],
                    category=teacher.labels[top[i]],
                    source="pseudo",
                )
                for i in pick
            ]
            per_class = np.bincount(top[pick], minlength=len(teacher.labels)).tolist()
            print(f"fold {k}: threshold {th}: {len(pick)} pseudo-labelled {per_class}", flush=True)
            groups = np.concatenate([data.groups[tr], data.groups.max() + 1 + np.arange(len(pseudo))])
            if args.calibrate_on_labelled:
                _calibrate_first(len(train))
            t0 = time.perf_counter()
            variants[f"self-trained@{th}"] = classifier.train(
                train + pseudo, config=ClassifierConfig(), groups=groups, evaluate_cv=False
            )
            print(f"fold {k}: student {time.perf_counter() - t0:.0f} s", flush=True)
        test_texts = [data.texts[i] for i in te]
        y = data.y[te]
        raw = data.raw_form[te]
        for name, model in variants.items():
            p = np.zeros((len(te), len(data.labels)))
            p[:, [data.labels.index(lab) for lab in model.labels]] = model.predict_proba(test_texts)
            rows.append((k, name, p, y, raw))
    print()
    print("| variant | view | n | macro F1 | accuracy | cov@0.95 | cov@0.97 |")
    print("|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r[1] for r in rows):
        mine = [r for r in rows if r[1] == name]
        p = np.vstack([r[2] for r in mine])
        y = np.concatenate([r[3] for r in mine])
        raw = np.concatenate([r[4] for r in mine])
        for view, m in (("raw text", raw), ("all rows", np.ones(len(y), bool))):
            s = metrics(y[m], p[m], data.labels)
            c = s["coverage_at_precision"]
            print(
                f"| {name} | {view} | {s['n']} | {s['macro_f1']:.4f} | {s['accuracy']:.4f} | "
                f"{c['0.95']:.3f} | {c['0.97']:.3f} |"
            )
    print(f"cpu {os.cpu_count()}, load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
