"""Sweep 15: an NB-weighted linear SVM (NBSVM, Wang & Manning 2012) as a stack member, on the strict proxy.

    flock /tmp/cityhub-bench.lock .venv/bin/python bench/exploration/nbsvm.py [--folds 5] [--run-folds 0,1]
        [--variants chosen,nbsvm,nbsvm-for-svm] [--save FILE.npz]

Each class gets its own binary linear SVM over the TF-IDF features scaled by that class's log-count ratio
r_c = log((α + Σ_{y=c} x / ‖·‖₁) / (α + Σ_{y≠c} x / ‖·‖₁)), fitted on the training rows only (inside the stack's
inner folds too). Same folds, grouping and scoring as ``bench/bench_classifier.py`` (raw-form test rows, all rows);
paired counts against the first variant. The member was first patched in by this script; it is now the product's
``classifier.NBLinearSVC`` (member "nbsvm", in the default since this sweep), which this script compares with the
stack without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_classifier import FILES, dev_data, dev_splits
from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig, metrics

VARIANTS = {
    "chosen": replace(ClassifierConfig(), members=("svm", "sgd", "cnb")),  # the default before this sweep
    "nbsvm": replace(ClassifierConfig(), members=("svm", "sgd", "cnb", "nbsvm")),  # the default since
    "nbsvm-for-svm": replace(ClassifierConfig(), members=("nbsvm", "sgd", "cnb")),
    # Sweep 16: a second NBSVM over one feature block (word n-grams: NBSVM's own setting), and the member's C.
    "plus-nbsvm-word": replace(ClassifierConfig(), members=("svm", "sgd", "cnb", "nbsvm", "nbsvm:word")),
    "plus-nbsvm-char": replace(ClassifierConfig(), members=("svm", "sgd", "cnb", "nbsvm", "nbsvm:char")),
    "nbsvm-c1": replace(ClassifierConfig(), nbsvm_c=1.0),
    "nbsvm-c025": replace(ClassifierConfig(), nbsvm_c=0.25),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--run-folds", default="", help="Comma-separated 0-based folds to run (default: all).")
    ap.add_argument("--variants", default="chosen,nbsvm")
    ap.add_argument("--save", default="", help="Save the test probabilities (npz).")
    args = ap.parse_args()
    if not all(f.is_file() for f in FILES):
        print("skip: data not found")
        return 0
    data = dev_data()
    splits = dev_splits(data, args.folds)
    run = [int(f) for f in args.run_folds.split(",")] if args.run_folds else list(range(len(splits)))
    names = args.variants.split(",")
    proba = {n: np.zeros((len(data.records), len(data.labels))) for n in names}
    tested = np.zeros(len(data.records), bool)
    for k in run:
        tr, te = splits[k]
        train = [data.records[i] for i in tr]
        for name in names:
            t0 = time.perf_counter()
            model = classifier.train(train, config=VARIANTS[name], groups=data.groups[tr], evaluate_cv=False)
            cols = [data.labels.index(lab) for lab in model.labels]
            proba[name][np.ix_(te, cols)] = model.predict_proba([data.texts[i] for i in te])
            print(f"fold {k} {name}: {time.perf_counter() - t0:.0f} s", flush=True)
        tested[te] = True
    if args.save:
        np.savez_compressed(args.save, tested=tested, y=data.y, raw=data.raw_form, **proba)
    for view, mask in {"raw text": tested & data.raw_form, "all rows": tested}.items():
        print(f"\n{view} (n = {int(mask.sum())}, folds {run})")
        print("| variant | macro F1 | acc | cov@0.95 | cov@0.97 | paired (chosen / variant) |")
        right = {n: proba[n][mask].argmax(axis=1) == data.y[mask] for n in names}
        for name in names:
            m = metrics(data.y[mask], proba[name][mask], data.labels)
            cov = m["coverage_at_precision"]
            base = right[names[0]]
            paired = f"{int((base & ~right[name]).sum())} / {int((~base & right[name]).sum())}"
            print(
                f"| {name} | {m['macro_f1']:.4f} | {m['accuracy']:.4f} | {cov['0.95']:.3f} | {cov['0.97']:.3f} | "
                f"{paired} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
