"""Score the fine-tuned member alone and averaged with the chosen model (sweep 9, classifier_exploration.md)."""

import json
import os
import sys
from pathlib import Path

import numpy as np

from cityhub.nlp.classifier import metrics

WORK = os.environ.get("CITYHUB_EXPLORE_DIR", "/tmp/cityhub-explore")  # scratch directory of the three scripts


d = np.load(WORK + "/ft_data.npz")
labels = json.loads(Path(WORK, "ft_texts.json").read_text())["labels"]
F = np.load(sys.argv[1])
y, fold, raw, P, Pu = d["y"], d["fold"], d["raw"], d["P"], d["Pu"]
done = [k for k in range(5) if F[fold == k].sum() > 0]
mask = np.isin(fold, done) & (raw if len(sys.argv) < 3 else True)
print("folds", done, "raw rows", mask.sum())


def show(name, Q):
    m = metrics(y[mask], Q[mask], labels)
    c = m["coverage_at_precision"]
    print(f"{name:28s} F1 {m['macro_f1']:.4f} acc {m['accuracy']:.4f} cov95 {c['0.95']:.3f} cov97 {c['0.97']:.3f}")


show("chosen", P)
show("chosen stacker-p", Pu)
show("finetuned", F)
for w in (0.3, 0.5):
    show(f"avg w={w} (stacker-p)", (1 - w) * Pu + w * F)
    show(f"avg w={w} (calibrated)", (1 - w) * P + w * F)
show("geo mean", np.sqrt(Pu * F) / np.sqrt(Pu * F).sum(1, keepdims=True))
a, b = P[mask].argmax(1) == y[mask], (0.5 * Pu + 0.5 * F)[mask].argmax(1) == y[mask]
print("paired only chosen / only avg:", (a & ~b).sum(), (~a & b).sum())
