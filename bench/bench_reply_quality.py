"""Reply-quality scorer validated on real replies (f4) without quality labels.

1. Shuffled pairs: each message scored against its own reply and against the reply to another message (and,
   harder, to another message of the same city/county); report AUC of relevance, completeness and overall.
2. Perturbations: removing the sentences that carry the basis lowers ``basis``; keeping only the first third
   of the reply lowers ``completeness`` (share of replies where the score drops, mean drop).
3. Distribution of the scores and the share flagged weak, by reason, with example message ids.
4. Timeliness from the real reply latencies on the working calendar.

    .venv/bin/python bench/bench_reply_quality.py
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS

F4 = Path("../shared/data/teddycup2020_c/csv/f4_messages_with_replies_2816.csv")
TZ = ZoneInfo("Asia/Shanghai")
PLACE = re.compile(r"[A-Z]\d{0,2}(?:市|县|区)")


def when(text: str) -> datetime | None:
    text = text.strip().replace("-", "/")
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=TZ)
        except ValueError:
            pass
    return None


def auc(pos: list[float], neg: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg)), 4)


def main() -> None:
    if not F4.exists():
        sys.exit(f"{F4} not found")
    from cityhub.nlp import reply_quality as rq

    with F4.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = len(rows)
    real = [
        rq.score_reply(
            r["留言主题"], r["留言详情"], r["答复意见"], asked_at=when(r["留言时间"]), replied_at=when(r["答复时间"])
        )
        for r in rows
    ]
    rng = np.random.default_rng(0)
    perm = rng.permutation(n)
    perm = np.where(perm == np.arange(n), (perm + 1) % n, perm)
    shuffled = [rq.score_reply(rows[i]["留言主题"], rows[i]["留言详情"], rows[perm[i]]["答复意见"]) for i in range(n)]
    # Hard negatives: a reply to another message naming the same city/county code.
    by_place: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        m = PLACE.search(r["留言主题"] + r["留言详情"])
        if m:
            by_place.setdefault(m.group(0), []).append(i)
    hard_pos, hard_neg = [], []
    for i, r in enumerate(rows):
        m = PLACE.search(r["留言主题"] + r["留言详情"])
        pool = by_place.get(m.group(0), []) if m else []
        if len(pool) < 2:
            continue
        j = int(rng.choice([p for p in pool if p != i]))
        hard_pos.append(real[i].relevance)
        hard_neg.append(rq.score_reply(r["留言主题"], r["留言详情"], rows[j]["答复意见"]).relevance)
    substantive = [i for i in range(n) if rq.split_reply(rows[i]["答复意见"]).substance]
    pairs = {
        k: {
            "auc_all": auc([getattr(x, k) for x in real], [getattr(x, k) for x in shuffled]),
            "auc_substantive_replies": auc(
                [getattr(real[i], k) for i in substantive], [getattr(shuffled[i], k) for i in substantive]
            ),
            "mean_real": round(statistics.mean(getattr(x, k) for x in real), 3),
            "mean_shuffled": round(statistics.mean(getattr(x, k) for x in shuffled), 3),
        }
        for k in ("relevance", "completeness", "basis", "overall")
    }
    pairs["relevance_same_place_negatives"] = {"n": len(hard_pos), "auc": auc(hard_pos, hard_neg)}

    # Perturbations.
    basis_drop, trunc_drop = [], []
    for i in substantive:
        r = rows[i]
        parts = rq.split_reply(r["答复意见"])
        sents = rq.sentences(parts.substance)
        stripped = [s for s in sents if not (rq.basis_evidence(s).citations or rq.basis_evidence(s).facts)]
        if len(stripped) < len(sents) and stripped:
            before = real[i].basis
            after = rq.score_reply(r["留言主题"], r["留言详情"], "".join(stripped)).basis
            basis_drop.append(before - after)
        if real[i].points >= 2 and len(parts.substance) >= 60:
            third = parts.substance[: len(parts.substance) // 3]
            after_c = rq.score_reply(r["留言主题"], r["留言详情"], third).completeness
            trunc_drop.append(real[i].completeness - after_c)
    perturb = {
        "basis_sentences_removed": {
            "n": len(basis_drop),
            "share_lower": round(sum(d > 0 for d in basis_drop) / len(basis_drop), 4),
            "share_higher": round(sum(d < 0 for d in basis_drop) / len(basis_drop), 4),
            "mean_drop": round(statistics.mean(basis_drop), 3),
        },
        "truncated_to_first_third": {
            "n": len(trunc_drop),
            "share_lower": round(sum(d > 0 for d in trunc_drop) / len(trunc_drop), 4),
            "share_higher": round(sum(d < 0 for d in trunc_drop) / len(trunc_drop), 4),
            "mean_drop": round(statistics.mean(trunc_drop), 3),
        },
    }

    def q(values: list[float]) -> list[float]:
        return [round(float(v), 3) for v in np.percentile(values, [10, 25, 50, 75, 90])]

    reasons = Counter(r.split(":")[0] for x in real for r in x.reasons)
    weak = [i for i, x in enumerate(real) if x.weak]
    examples: dict[str, list[str]] = {}
    for i in weak:
        key = real[i].reasons[0].split(":")[0]
        if len(examples.setdefault(key, [])) < 5:
            examples[key].append(rows[i]["留言编号"])
    days = [x.working_days for x in real if x.working_days is not None]
    result = {
        "data": str(F4),
        "replies": n,
        "shuffled_pairs": pairs,
        "perturbations": perturb,
        "distribution_p10_p25_p50_p75_p90": {
            k: q([getattr(x, k) for x in real]) for k in ("relevance", "completeness", "basis", "overall")
        },
        "weak_share": round(len(weak) / n, 4),
        "weak_threshold": rq.WEAK_THRESHOLD,
        "reasons": dict(reasons.most_common()),
        "weak_examples_by_first_reason": examples,
        "timeliness": {
            "working_days_p10_p25_p50_p75_p90": q(days),
            "share_within_5_working_days": round(sum(d <= 5 for d in days) / len(days), 4),
            "share_within_15_working_days": round(sum(d <= 15 for d in days) / len(days), 4),
            "share_over_30_working_days": round(sum(d > 30 for d in days) / len(days), 4),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "reply_quality.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
