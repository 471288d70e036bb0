"""Classifier memory: what a fresh process holds once it has loaded the category model and predicted with it.

Every server worker that decides orders, and the background dispatcher, loads the model (``classifier.load``) in
its own process, so the model's resident memory is paid once per process. Each run here is a fresh Python process
(``sys.executable``, the same ``PYTHONPATH``) that reads ``/proc/self/status``:

- at start, after importing ``cityhub.nlp.classifier`` and the scikit-learn parts an artefact unpickles (the process's
  floor: no model), after ``classifier.load`` (and its seconds), after one order's ``predict``, after ``predict`` of
  1,000 texts in one call (``VmRSS``, and the peak ``VmHWM``);
- the loaded model's parts, measured by walking them (``sys.getsizeof`` of every object reached, each counted once,
  NumPy arrays by their buffers): each vectorizer's vocabulary, idf, the fast path's integer n-gram tables, each
  member's arrays, the rest.

``--runs`` processes one after the other; the figures are each run's, and the median. To compare two versions of the
code, run the script once with each on ``PYTHONPATH`` (``--label`` names the run in the results). ``--proba FILE``
writes the probabilities of every labelled dev message (both dev files) to ``FILE`` (``.npy``) and, when ``FILE``
exists already, compares them with it instead: largest difference, top-1 and top-3 agreement.

    .venv/bin/python bench/bench_classifier_memory.py --model DIR [--runs 3] [--label after] [--proba FILE]

Without ``--model``, one is trained on both dev files as ``cityhub nlp train`` does (about a minute; kept in
``$TMPDIR/cityhub-bench-memory-model``). Results: ``bench/results/classifier_memory.json`` (runs merged by label).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import RESULTS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "teddycup2020_c" / "dev"
DEV_FILES = ("messages_labeled_raw.csv", "messages_labeled_segmented.csv")
MODEL_CACHE = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "cityhub-bench-memory-model"
ONE_ORDER = "小区门口垃圾堆放很久没人清理\n小区门口的垃圾已经堆了一个星期，天气热臭味很大，希望有关部门尽快处理。"

# One run, in a fresh process: prints one JSON object.
CHILD = r"""
import json, sys, time

def status():
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out

result = {"start": status()}
from cityhub.nlp import classifier
import sklearn.feature_extraction.text, sklearn.linear_model, sklearn.naive_bayes, sklearn.svm, scipy.special
import cityhub.nlp.vectorizers
result["imports"] = status()
started = time.perf_counter()
model = classifier.load(sys.argv[1])
result["load_seconds"] = round(time.perf_counter() - started, 2)
result["loaded"] = status()
model.predict([sys.argv[2]])
result["one_order"] = status()
texts = json.loads(sys.stdin.read())
model.predict(texts)
result["batch_1000"] = status()
result["fast_path"] = model._fast is not None

import numpy as np
seen = set()

def size(obj):
    # Every object reached once; an array by its buffer (a view: by its base's, down to the bytes).
    total, stack = 0, [obj]
    while stack:
        x = stack.pop()
        if id(x) in seen or isinstance(x, type) or callable(x) and not hasattr(x, "__dict__"):
            continue
        seen.add(id(x))
        total += sys.getsizeof(x)
        if isinstance(x, np.ndarray):
            if x.base is not None:
                stack.append(x.base)
        elif isinstance(x, memoryview):  # an unpickled array's buffer: the bytearray behind it
            stack.append(x.obj)
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)
        elif hasattr(x, "__dict__") and not callable(x):
            stack.append(vars(x))
    return total

parts = {}
features = model.features
if model._fast is not None:  # first: where a vocabulary is read from these tables, it holds nothing else
    parts["fast path n-gram tables"] = sum(size(b.keys) for b in model._fast.blocks)
for name in ("char", "word"):
    vec = getattr(features, name, None)
    if vec is not None:
        parts[f"{name} vocabulary"] = size(vec.vocabulary_)
        parts[f"{name} idf"] = size(vec._tfidf)
for name, member in zip(model.member_names, model.members):
    parts[f"member {name}"] = size(member)
parts["rest of the model"] = size(model)
result["parts_mb"] = {k: round(v / 1e6, 1) for k, v in parts.items()}
print(json.dumps(result))
"""


def _model(path: str | None) -> Path:
    if path:
        return Path(path)
    from cityhub.nlp import classifier

    if not (MODEL_CACHE / classifier.META_FILE).is_file():
        records, sources = [], []
        for name in DEV_FILES:
            rows, report = classifier.read_labelled_csv(DATA / name)
            records += rows
            sources.append(report)
        print(f"training on {len(records):,} labelled messages …", flush=True)
        classifier.train(records, sources=sources).save(MODEL_CACHE)
    return MODEL_CACHE


def _texts() -> list[str]:
    from cityhub.nlp import classifier

    texts: list[str] = []
    for name in DEV_FILES:
        records, _ = classifier.read_labelled_csv(DATA / name)
        texts += [r.text for r in records]
    return texts


def one_run(model: Path, batch: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), ONE_ORDER],
        input=json.dumps(batch, ensure_ascii=False),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def compare(model: Path, path: Path) -> dict[str, Any]:
    """The dev messages' probabilities: written to ``path``, or compared with those written there before."""
    import numpy as np

    from cityhub.nlp import classifier

    proba = classifier.load(model).predict_proba(_texts())
    if not path.exists():
        np.save(path, proba)
        return {"written": str(path), "texts": len(proba)}
    before = np.load(path)

    def top(p: Any) -> Any:
        return np.argsort(-p, axis=1, kind="stable")[:, :3]

    return {
        "compared_with": str(path),
        "texts": len(proba),
        "max_abs_difference": float(np.abs(proba - before).max()),
        "identical": bool(np.array_equal(proba, before)),
        "top1_identical": bool((top(proba)[:, 0] == top(before)[:, 0]).all()),
        "top3_identical": bool((top(proba) == top(before)).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained model directory (default: train one on both dev files, cached)")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes, one after the other")
    parser.add_argument("--label", default="current", help="the run's name in classifier_memory.json")
    parser.add_argument("--proba", help="write the dev messages' probabilities here (.npy), or compare with them")
    args = parser.parse_args()
    model = _model(args.model)
    batch = _texts()[:1000]
    runs = []
    for i in range(args.runs):
        runs.append(one_run(model, batch))
        r = runs[-1]
        print(
            f"run {i + 1}: imports {r['imports']['VmRSS']} MB, loaded {r['loaded']['VmRSS']} MB "
            f"({r['load_seconds']} s), one order {r['one_order']['VmRSS']} MB, "
            f"1,000 texts {r['batch_1000']['VmRSS']} MB, peak {r['batch_1000']['VmHWM']} MB",
            flush=True,
        )
    median = {
        stage: statistics.median(r[stage]["VmRSS"] for r in runs)
        for stage in ("start", "imports", "loaded", "one_order", "batch_1000")
    }
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average": os.getloadavg()[0],
        "model": str(model),
        "python_path": os.environ.get("PYTHONPATH", ""),
        "median_rss_mb": median,
        "median_model_mb": round(median["one_order"] - median["imports"], 1),
        "median_peak_mb": statistics.median(r["batch_1000"]["VmHWM"] for r in runs),
        "median_load_seconds": statistics.median(r["load_seconds"] for r in runs),
        "parts_mb": runs[-1]["parts_mb"],
        "runs": runs,
    }
    if args.proba:
        result["predictions"] = compare(model, Path(args.proba))
        print(json.dumps(result["predictions"], indent=2))
    print(json.dumps({k: result[k] for k in ("median_rss_mb", "median_model_mb", "parts_mb")}, indent=2))
    path = RESULTS / "classifier_memory.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[args.label] = result
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {path} ({args.label})")


if __name__ == "__main__":
    main()
