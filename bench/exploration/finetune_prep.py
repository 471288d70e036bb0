"""Dump the bench's 5-fold grouped splits, texts and the chosen model's OOF probabilities (folds 1-3)."""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench_classifier import dev_data, dev_splits
from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig
from cityhub.nlp.text import normalize

WORK = os.environ.get("CITYHUB_EXPLORE_DIR", "/tmp/cityhub-explore")  # scratch directory of the three scripts


data = dev_data()
records, labels, y, texts, groups, raw_form = data.records, data.labels, data.y, data.texts, data.groups, data.raw_form
splits = dev_splits(data)
fold = np.full(len(texts), -1)
for k, (_tr, te) in enumerate(splits):
    fold[te] = k
P = np.zeros((len(texts), len(labels)))
Pu = np.zeros((len(texts), len(labels)))
for k in range(3):
    tr, te = splits[k]
    t0 = time.time()
    m = classifier.train([records[i] for i in tr], config=ClassifierConfig(), groups=groups[tr], evaluate_cv=False)
    cols = [labels.index(lab) for lab in m.labels]
    P[np.ix_(te, cols)] = m.predict_proba([texts[i] for i in te])
    m.confidence = None
    Pu[np.ix_(te, cols)] = m.predict_proba([texts[i] for i in te])
    print("fold", k, time.time() - t0, flush=True)
np.savez(WORK + "/ft_data.npz", y=y, fold=fold, raw=raw_form, P=P, Pu=Pu)
Path(WORK, "ft_texts.json").write_text(
    json.dumps({"labels": labels, "texts": [normalize(t) for t in texts]}, ensure_ascii=False)
)
