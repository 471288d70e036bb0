"""What the free-text scrubber (``masking.scrub_text``) costs and finds on real messages.

Every masked view (a leader's order list and order page, webhooks, the public Open311 feed, the data-sharing API)
passes titles, contents and replies through ``scrub_text``. This reads the board's messages with their topics and
replies (``csv/f2``, ``f3``, ``f4``: title, details and reply of each message joined as one text), scrubs each text
``--repeat`` times and reports the time per text (p50, p99, mean) and what was hidden: names, phone numbers, ID
numbers, e-mail addresses, house numbers — counted by their placeholders.

    .venv/bin/python bench/bench_masking.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentiles, write_result
from cityhub import masking

BOARD = Path("../shared/data/teddycup2020_c/csv")
FILES = (
    "f2_final_testset_unlabeled_2801.csv",
    "f3_hot_topic_messages_4326.csv",
    "f4_messages_with_replies_2816.csv",
)
FIELDS = ("留言主题", "留言详情", "答复意见")
LABELS = {
    masking.KNOWN: "names",
    "[电话]": "phones",
    "[身份证号]": "id_numbers",
    "[邮箱]": "emails",
    "[门牌号]": "house_numbers",
}


def messages(limit: int | None) -> list[str]:
    texts: list[str] = []
    for name in FILES:
        with (BOARD / name).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                texts.append("\n".join(row.get(k) or "" for k in FIELDS))
    return texts[:limit] if limit else texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the first 1,000 messages, once")
    parser.add_argument("--repeat", type=int, default=3, help="times each text is scrubbed (the best counts)")
    args = parser.parse_args()
    texts = messages(1000 if args.quick else None)
    repeat = 1 if args.quick else max(1, args.repeat)
    masking.scrub_text("业主高红晓，电话13912345678")  # loads the word segmenter's dictionary once
    times: list[float] = []
    hidden: Counter[str] = Counter()
    changed = 0
    for text in texts:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            out = masking.scrub_text(text) or ""
            best = min(best, time.perf_counter() - start)
        times.append(best * 1000)
        changed += out != text
        for label, key in LABELS.items():
            hidden[key] += out.count(label)
    chars = sum(len(t) for t in texts)
    result = {
        "messages": len(texts),
        "mean_chars": round(chars / len(texts), 1),
        "ms_per_text": {**percentiles(times), "mean": round(sum(times) / len(times), 3)},
        "chars_per_second": round(chars / (sum(times) / 1000)),
        "texts_changed": changed,
        "hidden": dict(hidden),
    }
    path = write_result("masking", result)
    print(result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
