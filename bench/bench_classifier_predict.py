"""Classifier prediction speed: the fast path against the scikit-learn reference path, same model, same texts.

Automatic dispatch classifies every new order alone, so the cost of ``predict([text])`` for one text is what the
intake pays. This measures, interleaved on the same texts so that the machine's load affects both alike:

- one order at a time: ``predict_proba([text])`` through ``_FastPath`` and through scikit-learn
  (``reference=True``), and ``predict([text])`` (mean, p50, p99);
- batches of 1 … 2,000 texts: texts/s on both paths (the fast path takes larger calls in chunks of 256 texts);
- that both paths give the same probabilities on every text measured (the largest difference is reported);
- ``predict`` (probabilities, top 3 and evidence) in batches of 1,000, as ``nlp classify`` calls it, against
  ``predict_proba`` alone.

Texts: 600 real messages (title + content) from ``../shared/data/teddycup2020_c`` (f2, f3, f4, as the API benchmark
posts them) and the first 2,000 unlabelled messages of f2 for the batches. The model: ``--model DIR``, else one
trained on ``dev/messages_labeled_raw.csv`` (about a minute; kept in ``$TMPDIR/cityhub-bench-predict-model``).

    .venv/bin/python bench/bench_classifier_predict.py [--model DIR]

Results: ``bench/results/classifier_predict.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_api import load_real_texts
from cityhub.nlp import classifier
from cityhub.nlp.text import order_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "teddycup2020_c"
RESULTS = Path(
    os.environ.get("CITYHUB_BENCH_RESULTS") or Path(__file__).resolve().parent / "results"
)  # as bench/_common.py
MODEL_CACHE = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "cityhub-bench-predict-model"


def _model(path: str | None) -> classifier.Model:
    if path:
        return classifier.load(path)
    if not (MODEL_CACHE / classifier.META_FILE).is_file():
        records, _ = classifier.read_labelled_csv(DATA / "dev" / "messages_labeled_raw.csv")
        print(f"training on {len(records):,} labelled messages …", flush=True)
        classifier.train(records).save(MODEL_CACHE)
    return classifier.load(MODEL_CACHE)


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "mean": round(statistics.mean(ordered), 3),
        "p50": round(ordered[len(ordered) // 2], 3),
        "p99": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 3),
    }


def one_order(model: classifier.Model, docs: list[str]) -> dict[str, Any]:
    for d in docs[:30]:  # warm caches and lazy imports on both paths
        model.predict([d])
        model.predict_proba([d], reference=True)
    fast, ref, pred = [], [], []
    worst = 0.0
    for d in docs:
        s = time.perf_counter()
        p_fast = model.predict_proba([d])
        fast.append((time.perf_counter() - s) * 1000)
        s = time.perf_counter()
        p_ref = model.predict_proba([d], reference=True)
        ref.append((time.perf_counter() - s) * 1000)
        s = time.perf_counter()
        model.predict([d])
        pred.append((time.perf_counter() - s) * 1000)
        worst = max(worst, float(np.abs(p_fast - p_ref).max()))
    return {
        "texts": len(docs),
        "reference_predict_proba_ms": _summary(ref),
        "fast_predict_proba_ms": _summary(fast),
        "fast_predict_ms": _summary(pred),
        "max_abs_difference": worst,
    }


def batches(model: classifier.Model, texts: list[str]) -> dict[str, dict[str, float]]:
    def rate(size: int, reference: bool) -> float:
        s = time.perf_counter()
        for i in range(0, len(texts), size):
            model.predict_proba(texts[i : i + size], reference=reference)
        return len(texts) / (time.perf_counter() - s)

    out = {}
    for size in (1, 4, 16, 32, 64, 500, 2000):
        best = {ref: max(rate(size, ref) for _ in range(2)) for ref in (False, True)}
        out[str(size)] = {"fast_texts_per_s": round(best[False]), "reference_texts_per_s": round(best[True])}
        print(f"  batch {size:5d}: {best[False]:7.0f} texts/s (default path)  {best[True]:7.0f} (scikit-learn)")
    return out


def predictions(model: classifier.Model, texts: list[str]) -> dict[str, float]:
    """``predict`` — what ``nlp classify`` and the background dispatcher call: probabilities, top 3 and the evidence
    (``Model.evidence``, counted on the features the probabilities were computed from) — against ``predict_proba``
    alone, in batches of 1,000, interleaved (best of three each)."""

    def rate(call: Any) -> float:
        s = time.perf_counter()
        for i in range(0, len(texts), 1000):
            call(texts[i : i + 1000])
        return len(texts) / (time.perf_counter() - s)

    best = {"predict": 0.0, "predict_proba": 0.0}
    for _ in range(3):
        best["predict"] = max(best["predict"], rate(model.predict))
        best["predict_proba"] = max(best["predict_proba"], rate(model.predict_proba))
    print(f"  batches of 1,000: predict {best['predict']:7.0f} texts/s, predict_proba {best['predict_proba']:7.0f}")
    return {f"{name}_texts_per_s": round(value) for name, value in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained model directory (default: train one on dev, cached)")
    args = parser.parse_args()
    model = _model(args.model)
    if model._fast is None:
        raise SystemExit("this model has no fast path (a title block, the encoder or other members)")
    rng = random.Random(3)
    docs = [order_text(t, c) for t, c in rng.sample(load_real_texts(), 600)]
    pool = classifier.read_texts(DATA / "csv" / "f2_final_testset_unlabeled_2801.csv")[1][:2000]
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average": os.getloadavg()[0]}
    result["one_order"] = one_order(model, docs)
    print(json.dumps(result["one_order"], indent=2))
    result["batches"] = batches(model, pool)
    result["predict_batches_of_1000"] = predictions(model, pool)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "classifier_predict.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {RESULTS / 'classifier_predict.json'}")


if __name__ == "__main__":
    main()
