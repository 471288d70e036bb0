"""The fine-tuned encoder member (``ClassifierConfig.fine_tune``) against the default model, on the bench's folds.

    .venv/bin/python bench/bench_classifier_finetune.py [--run-folds 1,2,3] [--layers 2] [--epochs 2] [--mix geometric]
        [--quick] [--save-proba FILE.npz]

Needs the ``embed`` extra with the m3e-small weights and PyTorch (``cityhub[finetune]``). Same data, grouping and
5-fold StratifiedGroupKFold (seed 42) as ``bench_classifier.py``, so its folds are the folds of
``classifier_cv.md``; each model is trained through ``classifier.train`` as ``cityhub nlp train`` does. Fine-tuning
costs ~20 minutes per fold on 2 cores, so by default only folds 1-3 (of 0-4) run. Scores on raw-form test rows
(what production sees) and on all test rows, paired counts (rows only one model gets right), training time per
fold, and the latency of one order with the fine-tuned model.

``--quick``: 600 training rows and a tenth of an epoch on one fold, a smoke run of the pipeline (figures
meaningless). Writes bench/results/classifier_finetune.{json,md} (not with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_classifier import FILES, RESULTS, ROOT, cv_table, dev_data, dev_splits, summary
from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig, metrics


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-folds", default="1,2,3", help="Which of the 5 folds to test on (comma-separated, 0-4).")
    ap.add_argument("--layers", type=int, default=2, help="Top encoder layers fine-tuned.")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--mix", default="geometric", help="How the fine-tuned member is mixed: geometric or mean.")
    ap.add_argument("--quick", action="store_true", help="Smoke run: 600 training rows, 0.1 epoch, one fold.")
    ap.add_argument(
        "--save-proba",
        metavar="NPZ",
        help="Also save each tested row's probabilities (default model, fine-tuned model, and the fine-tuned model's "
        "stack and tuned member before mixing and calibration) for offline study of the mix.",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not all(f.is_file() for f in FILES):
        print("skip: data not found")
        return 0
    from cityhub.nlp import encoder as enc

    if enc.M3E_SMALL not in enc.available_encoders():
        print(f"skip: encoder m3e-small not installed ({enc.INSTALL_HINT})")
        return 0
    from cityhub.nlp.finetune import require_torch

    require_torch()
    data = dev_data()
    records, labels, y, texts, groups, raw_form = (
        data.records,
        data.labels,
        data.y,
        data.texts,
        data.groups,
        data.raw_form,
    )
    splits = dev_splits(data)
    run = [int(k) for k in args.run_folds.split(",")][: 1 if args.quick else None]
    epochs = 0.1 if args.quick else args.epochs
    configs = {
        "chosen": ClassifierConfig(),
        "chosen+fine-tuned": ClassifierConfig(
            encoder=enc.M3E_SMALL,
            fine_tune=True,
            fine_tune_layers=args.layers,
            fine_tune_epochs=epochs,
            fine_tune_mix=args.mix,
        ),
    }
    proba = {name: np.zeros((len(records), len(labels))) for name in configs}
    tested = np.zeros(len(records), bool)
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    fold_reports: list[dict[str, Any]] = []
    parts = {name: np.zeros((len(records), len(labels))) for name in ("stack", "tuned")}
    model: classifier.Model | None = None
    for k in run:
        tr, te = splits[k]
        if args.quick:
            tr = tr[np.random.default_rng(0).permutation(len(tr))[:600]]
        for name, config in configs.items():
            t0 = time.perf_counter()
            model = classifier.train([records[i] for i in tr], config=config, groups=groups[tr], evaluate_cv=False)
            cols = [labels.index(lab) for lab in model.labels]
            proba[name][np.ix_(te, cols)] = model.predict_proba([texts[i] for i in te])
            seconds[name].append(time.perf_counter() - t0)
            print(f"fold {k}: {name} {seconds[name][-1]:.0f} s (train + predict {len(te)})", flush=True)
            if "fine_tune" in model.meta:
                fold_reports.append({"fold": k, **model.meta["fine_tune"]})
                if args.save_proba:
                    stack, tuned = _mix_parts(model, [texts[i] for i in te])
                    parts["stack"][np.ix_(te, cols)] = stack
                    parts["tuned"][np.ix_(te, cols)] = tuned
        tested[te] = True
    assert model is not None and model.tuned is not None
    if args.save_proba:
        np.savez_compressed(
            args.save_proba,
            tested=tested,
            raw_form=raw_form,
            y=y,
            labels=np.array(labels),
            groups=groups,
            chosen=proba["chosen"],
            fine_tuned=proba["chosen+fine-tuned"],
            **parts,
        )
    views = {"raw_text": tested & raw_form, "all_rows": tested}
    cv = {name: {view: metrics(y[m], proba[name][m], labels) for view, m in views.items()} for name in configs}
    paired = {}
    for view, m in views.items():
        right = {name: proba[name][m].argmax(1) == y[m] for name in configs}
        paired[view] = {
            "only_chosen": int((right["chosen"] & ~right["chosen+fine-tuned"]).sum()),
            "only_fine_tuned": int((~right["chosen"] & right["chosen+fine-tuned"]).sum()),
        }
    # Latency of one order with the last fold's fine-tuned model (the encoder's NumPy forward pass dominates).
    sample = [texts[i] for i in splits[run[-1]][1][:200]]
    single = []
    for text in sample:
        t0 = time.perf_counter()
        model.predict([text])
        single.append((time.perf_counter() - t0) * 1000)
    single.sort()
    t0 = time.perf_counter()
    model.predict(sample)
    batch_rate = len(sample) / (time.perf_counter() - t0)
    result: dict[str, Any] = {
        "folds_tested": run,
        "layers": args.layers,
        "epochs": epochs,
        "mix": args.mix,
        "cv": {name: {view: summary(m) for view, m in v.items()} for name, v in cv.items()},
        "paired": paired,
        "train_and_predict_fold_seconds_mean": {name: round(statistics.mean(s), 1) for name, s in seconds.items()},
        "fine_tuned_single_predict_ms": {
            "p50": round(single[len(single) // 2], 1),
            "p99": round(single[int(len(single) * 0.99) - 1], 1),
        },
        "fine_tuned_batch_orders_per_second": round(batch_rate, 1),
        "fine_tune_reports": fold_reports,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "fine_tune_reports"}, indent=1))
    if args.quick:
        return 0
    default_run = (run, args.layers, epochs, args.mix) == ([1, 2, 3], 2, 2.0, "geometric")
    setting = f"_l{args.layers}_e{epochs:g}_f{''.join(map(str, run))}" + (
        "" if args.mix == "geometric" else f"_{args.mix}"
    )
    stem = "classifier_finetune" + ("" if default_run else setting)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    n_raw = int(views["raw_text"].sum())
    lines = [
        "# Category classifier with a fine-tuned encoder member — grouped CV",
        "",
        f"Folds {', '.join(map(str, run))} of the 5-fold StratifiedGroupKFold of `classifier_cv.md` (strict proxy);",
        f"m3e-small's top {args.layers} layers fine-tuned for {epochs:g} epochs, {args.mix} mix. Generated by",
        "`bench/bench_classifier_finetune.py`.",
        "",
        *cv_table(result["cv"]),
    ]
    p = paired["raw_text"]
    lines += [
        "",
        f"Paired on the {n_raw} raw-form test rows: {p['only_chosen']} only the default model gets right, "
        f"{p['only_fine_tuned']} only the fine-tuned one (all rows: {paired['all_rows']['only_chosen']} / "
        f"{paired['all_rows']['only_fine_tuned']}).",
        "",
        "Time per fold, training and predicting the test rows (2 cores): "
        + ", ".join(f"{n} {s} s" for n, s in result["train_and_predict_fold_seconds_mean"].items())
        + f". One order with the fine-tuned model: p50 {result['fine_tuned_single_predict_ms']['p50']} ms, "
        f"p99 {result['fine_tuned_single_predict_ms']['p99']} ms; batch {result['fine_tuned_batch_orders_per_second']}"
        " orders/s.",
        "",
        "Per fold (the model's own hold-out fit: stack weight; held-out macro F1 / cov@0.97 of stack, fine-tuned, "
        "the model's mix and the other mix):",
        "",
    ]
    for r in fold_reports:
        h = r["held_out"]
        other = next((k for k in h if k.startswith("mixed_")), None)
        shown = [("stack", "stack"), ("tuned", "fine-tuned"), ("mixed", r.get("mix", "mean"))]
        shown += [(other, other.removeprefix("mixed_"))] if other else []
        scores = ", ".join(
            f"{name} {h[key]['macro_f1']:.4f} / {h[key]['coverage_at_precision']['0.97']:.3f}" for key, name in shown
        )
        lines.append(
            f"- fold {r['fold']}: weight {r['mixing_weight_of_stack']}; {scores} (n = {r['held_out_rows']}); "
            f"{r['seconds']['total']} s fine-tuning"
        )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"written to {RESULTS.relative_to(ROOT)}/{stem}.{{json,md}}")
    return 0


def _mix_parts(model: classifier.Model, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The fine-tuned model's stack and tuned member probabilities (model's label order), before mix and calibration."""
    assert model.tuned is not None
    tuned, confidence = model.tuned, model.confidence
    model.tuned, model.confidence = None, None  # predict_proba then stops at the stack
    try:
        stack = model.predict_proba(texts)
    finally:
        model.tuned, model.confidence = tuned, confidence
    return stack, tuned.proba(model.encoder, [model.form(t) for t in texts])


if __name__ == "__main__":
    sys.exit(main())
