"""How much of a text the classifier knows (``Model.evidence``), on real messages and on texts no order is made of.

Automatic dispatch holds an order whose text the model knows fewer than ``CITYHUB_DISPATCH_MIN_EVIDENCE`` phrases
of (distinct char n-grams of two or more characters, with a letter or hanzi, in its vocabulary): a greeting, a test
string, gibberish gets a calibrated-looking probability from the members' intercepts alone. This measures, for
thresholds 1 … 6, what share of each kind of text falls below:

- **held-out real messages**: a model trained on ``dev/`` (raw and segmented) without one grouped fold (near-duplicate
  groups, as the classifier's own cross-validation), measured on that fold's raw messages — whole (title and
  content) and title only, with the accuracy of the messages below and above the threshold;
- **unseen real messages**: the 2,801 unlabelled messages of ``csv/f2_final_testset_unlabeled_2801.csv`` under a
  model trained on all of ``dev/``, whole and title only;
- **texts no order is made of**: ``OFF_DOMAIN`` below, written for this benchmark — greetings, test strings,
  keyboard mashing, digits, English sentences, chit-chat, news, recipes, verse. Fluent off-topic Chinese is not
  what the check is for (it shares most phrases with real messages); the share held of each group is reported.

    .venv/bin/python bench/bench_classifier_evidence.py

Results: ``bench/results/classifier_evidence.json`` and ``.md``.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from cityhub.nlp import classifier
from cityhub.nlp.text import near_duplicate_groups, order_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "teddycup2020_c"
RESULTS = Path(
    os.environ.get("CITYHUB_BENCH_RESULTS") or Path(__file__).resolve().parent / "results"
)  # as bench/_common.py
THRESHOLDS = (1, 2, 3, 4, 5, 6)

OFF_DOMAIN: dict[str, list[str]] = {
    "greetings and test strings": [
        "你好",
        "您好",
        "谢谢",
        "测试",
        "测试一下",
        "test",
        "ok",
        "好的",
        "在吗",
        "喂喂",
        "嗯嗯",
        "哈哈哈",
        "收到",
        "没事了",
        "不好意思打错了",
        "hello",
        "hi",
        "测试测试测试",
        "再见",
        "。。。",
    ],
    "gibberish and digits": [
        "asdfgh qwerty",
        "aaaaaaaaaa",
        "jkl;jkl;",
        "zxcvbnm",
        "11111",
        "1234567890",
        "！！！！",
        "？？？",
        "啊啊啊啊啊",
        "嗯嗯嗯嗯",
        "qqqqwwww",
        "13800138000",
        "a1b2c3d4",
        "……",
        "xyz xyz xyz",
        "哦哦哦",
    ],
    "English sentences": [
        "The quick brown fox jumps over the lazy dog",
        "Please call me back tomorrow morning",
        "This is a test message",
        "I love this city",
        "Where is the nearest train station",
        "Thank you very much for your help",
    ],
    "off-topic Chinese": [
        "今天天气真好，我们去公园散步吧",
        "晚上吃什么好呢，火锅还是烧烤",
        "这部电影的结局太感人了，主角最后终于回家了",
        "量子计算机利用量子比特进行并行运算",
        "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
        "把鸡蛋打散，加入少许盐，锅中放油烧热后倒入蛋液翻炒",
        "湖人队昨晚以112比108战胜勇士队，詹姆斯拿下30分",
        "股市今天大涨，上证指数突破3500点",
        "我家猫咪今天不吃饭",
        "明天要考试了好紧张",
        "我爱你",
        "生日快乐，祝你万事如意",
    ],
}


def _unlabelled(path: Path) -> list[tuple[str, str]]:
    csv.field_size_limit(1 << 24)
    with path.open(encoding="utf-8", newline="") as fh:
        return [((r.get("留言主题") or "").strip(), (r.get("留言详情") or "").strip()) for r in csv.DictReader(fh)]


def _below(evidence: list[int]) -> dict[str, float]:
    e = np.asarray(evidence)
    return {str(k): round(float((e < k).mean()), 4) for k in THRESHOLDS}


def main() -> None:
    raw, _ = classifier.read_labelled_csv(DATA / "dev" / "messages_labeled_raw.csv")
    seg, _ = classifier.read_labelled_csv(DATA / "dev" / "messages_labeled_segmented.csv")
    records = raw + seg
    groups = near_duplicate_groups([r.text for r in records])
    y = np.asarray([sorted({r.category for r in records}).index(r.category) for r in records])
    fold = classifier._fold_ids(y, groups, 3, 0)
    held = np.flatnonzero(fold == 0)
    held_raw = [records[i] for i in held if i < len(raw)]
    train = [records[i] for i in np.flatnonzero(fold != 0)]
    out: dict[str, Any] = {"thresholds": list(THRESHOLDS)}

    t0 = time.perf_counter()
    model = classifier.train(train)
    out["train_s_fold_model"] = round(time.perf_counter() - t0, 1)
    whole = model.predict([r.text for r in held_raw])
    titles = [r.title for r in held_raw if r.title.strip()]
    correct = np.asarray([p.label == r.category for p, r in zip(whole, held_raw, strict=True)])
    evidence = np.asarray([p.evidence for p in whole])
    out["held_out"] = {
        "n": len(held_raw),
        "whole_below": _below(evidence.tolist()),
        "title_only_below": _below(model.evidence(titles)),
        "n_titles": len(titles),
        "accuracy_all": round(float(correct.mean()), 4),
        "accuracy_below_3": round(float(correct[evidence < 3].mean()), 4) if (evidence < 3).any() else None,
        "n_below_3": int((evidence < 3).sum()),
        "evidence_percentiles": {str(q): float(np.percentile(evidence, q)) for q in (0.1, 1, 5, 50)},
    }
    off = {name: model.evidence(texts) for name, texts in OFF_DOMAIN.items()}
    out["off_domain_fold_model"] = {name: _below(e) for name, e in off.items()}

    t0 = time.perf_counter()
    full = classifier.train(records)
    out["train_s_full_model"] = round(time.perf_counter() - t0, 1)
    f2 = _unlabelled(DATA / "csv" / "f2_final_testset_unlabeled_2801.csv")
    out["unseen_f2"] = {
        "n": len(f2),
        "whole_below": _below(full.evidence([order_text(t, c) for t, c in f2])),
        "title_only_below": _below(full.evidence([t for t, _ in f2 if t])),
    }
    out["off_domain"] = {}
    for name, texts in OFF_DOMAIN.items():
        e = full.evidence(texts)
        out["off_domain"][name] = {"n": len(texts), "below": _below(e), "evidence": dict(zip(texts, e, strict=True))}

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "classifier_evidence.json").write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    lines = [
        "# Classifier evidence: share of texts below each minimum",
        "",
        "`bench/bench_classifier_evidence.py`; evidence = distinct known phrases (`Model.evidence`). "
        "Dispatch holds an order below `CITYHUB_DISPATCH_MIN_EVIDENCE` (default 3).",
        "",
        "| texts | n | " + " | ".join(f"< {k}" for k in THRESHOLDS) + " |",
        "|---|---|" + "---|" * len(THRESHOLDS),
    ]

    def row(label: str, n: int, shares: dict[str, float]) -> None:
        lines.append(f"| {label} | {n} | " + " | ".join(f"{shares[str(k)]:.1%}" for k in THRESHOLDS) + " |")

    h = out["held_out"]
    row("held-out fold, raw messages (title + content)", h["n"], h["whole_below"])
    row("held-out fold, titles only", h["n_titles"], h["title_only_below"])
    u = out["unseen_f2"]
    row("f2 unseen messages (title + content)", u["n"], u["whole_below"])
    row("f2 titles only", u["n"], u["title_only_below"])
    for name, result in out["off_domain"].items():
        row(f"off-domain: {name}", result["n"], result["below"])
    lines += [
        "",
        f"Held-out accuracy: {h['accuracy_all']:.4f} overall; {h['n_below_3']} messages below 3"
        + (f", accuracy {h['accuracy_below_3']:.4f} among them." if h["accuracy_below_3"] is not None else "."),
        "",
    ]
    (RESULTS / "classifier_evidence.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
