"""Sweeps 11 and 13: how the sparse stack and the fine-tuned member are mixed and the mix's confidence calibrated.

    .venv/bin/python bench/exploration/mix_study.py /tmp/ft/l4e3_f1.npz [more.npz …]

Reads the per-row probabilities ``bench_classifier_finetune.py --save-proba`` writes (the stack and the tuned
member of the fine-tuned model before mixing and calibration, on the tested folds' rows) and scores, on those rows:
mixing by arithmetic or geometric mean at fixed weights and the weight the product picks (least log loss, fitted
cross-wise between two halves of the rows split by near-duplicate group), each mix calibrated by the product's
``ClassConfidence``, cross-fitted between the same two halves, so no row is scored by a fit that saw it. A
calibration that also knew whether the two members agree on the top label, and the weaker member's probability of
it (an ``extra`` input tried in ``ClassConfidence`` for this sweep and not kept), gained nothing beyond noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cityhub.nlp.classifier import ClassConfidence, coverage_at_precision, metrics
from cityhub.nlp.finetune import mix, mixing_weight


def _cross(halves: list[np.ndarray], fit_predict) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.zeros(sum(len(h) for h in halves))
    for i, part in enumerate(halves):
        other = halves[1 - i]
        out[part] = fit_predict(other, part)
    return out


def _lr_stack(stack: np.ndarray, tuned: np.ndarray, y: np.ndarray, halves: list[np.ndarray]) -> np.ndarray:
    """A multinomial logistic regression over both members' log-probabilities (a per-class mix), cross-fitted."""
    from sklearn.linear_model import LogisticRegression

    x = np.hstack([np.log(np.clip(stack, 1e-9, 1)), np.log(np.clip(tuned, 1e-9, 1))])
    out = np.zeros_like(stack)
    for i, part in enumerate(halves):
        other = halves[1 - i]
        model = LogisticRegression(C=1.0, max_iter=2000).fit(x[other], y[other])
        out[np.ix_(part, model.classes_)] = model.predict_proba(x[part])
    return out


def study(path: Path) -> None:
    d = np.load(path)
    t = d["tested"]
    y, stack, tuned, groups, raw = d["y"][t], d["stack"][t], d["tuned"][t], d["groups"][t], d["raw_form"][t]
    labels = [str(x) for x in d["labels"]]
    k = len(labels)
    half = groups % 2 == 0
    halves = [np.flatnonzero(half), np.flatnonzero(~half)]
    print(f"\n## {path.name}: {t.sum()} rows ({raw.sum()} raw)")
    print(
        f"stack alone macro F1 {metrics(y, stack, labels)['macro_f1']:.4f}; tuned alone "
        f"{metrics(y, tuned, labels)['macro_f1']:.4f}"
    )

    def calibrated(mixed: np.ndarray) -> dict[str, np.ndarray]:
        return {"class": _cross(halves, lambda a, b: ClassConfidence(k).fit(mixed[a], y[a]).confidence(mixed[b]))}

    rows = []

    def fitted(how: str) -> np.ndarray:
        """The mix at the weight the product would pick, fitted on the other half of the rows."""
        out = np.zeros_like(stack)
        for i, part in enumerate(halves):
            other = halves[1 - i]
            out[part] = mix(stack[part], tuned[part], mixing_weight(stack[other], tuned[other], y[other], how), how)
        return out

    mixes = {f"arith w={w}": mix(stack, tuned, w, "mean") for w in (0.4, 0.5, 0.6)}
    mixes["arith w=fitted"] = fitted("mean")
    for w in (0.4, 0.5, 0.6):
        mixes[f"geo w={w}"] = mix(stack, tuned, w, "geometric")
    mixes["geo w=fitted"] = fitted("geometric")
    mixes["LR on log-probabilities"] = _lr_stack(stack, tuned, y, halves)
    for name, mixed in mixes.items():
        pred = mixed.argmax(1)
        m = metrics(y, mixed, labels)
        mr = metrics(y[raw], mixed[raw], labels)
        for cname, conf in calibrated(mixed).items():
            cov = coverage_at_precision(pred == y, conf)["coverage"]
            covr = coverage_at_precision(pred[raw] == y[raw], conf[raw])["coverage"]
            rows.append((name, cname, m["macro_f1"], mr["macro_f1"], cov["0.95"], cov["0.97"], covr["0.97"]))
    print("| mix | confidence | F1 all | F1 raw | cov95 all | cov97 all | cov97 raw |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | " + " | ".join(f"{v:.4f}" for v in r[2:]) + " |")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        study(Path(arg))
