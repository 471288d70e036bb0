"""Address → jurisdiction accuracy and throughput on bench/data/addresses_labelled.csv.

    .venv/bin/python bench/bench_address.py [--repeat 3] [--messages CSV]

Also times whole citizen messages (title + content of the first ``--message-rows`` rows of ``--messages``, by
default the real board's labelled messages), which is what intake resolves for an appeal without an address:
messages/s and the share placed.

Writes bench/results/address.json and address.md. Street / community accuracy count a row correct when the
predicted code equals the label ('' = no community expected, so a guessed community there is an error).
The generated part is easier than real input; the hand-written part is reported separately.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from cityhub.nlp.address import default_gazetteer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench/data/addresses_labelled.csv"
OUT = ROOT / "bench/results"
MESSAGES = ROOT.parent / "shared/data/teddycup2020_c/dev/messages_labeled_raw.csv"


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    with_comm = [r for r in rows if r["community_code"]]
    without = [r for r in rows if not r["community_code"]]
    return {
        "n": n,
        "street_accuracy": round(sum(r["street_ok"] for r in rows) / n, 4) if n else None,
        "community_accuracy": round(sum(r["community_ok"] for r in rows) / n, 4) if n else None,
        "community_recall_when_named": (
            round(sum(r["community_ok"] for r in with_comm) / len(with_comm), 4) if with_comm else None
        ),
        "community_false_guess_rate": (
            round(sum(bool(r["pred_community"]) for r in without) / len(without), 4) if without else None
        ),
        "ambiguous_rate": round(sum(r["ambiguous"] for r in rows) / n, 4) if n else None,
        "mean_confidence_correct": _mean([r["confidence"] for r in rows if r["street_ok"] and r["community_ok"]]),
        "mean_confidence_wrong": _mean([r["confidence"] for r in rows if not (r["street_ok"] and r["community_ok"])]),
    }


def _message_throughput(gaz: Any, path: Path, limit: int, repeat: int) -> dict[str, Any] | None:
    """Messages/s resolving whole appeal texts (title + content), best of ``repeat``; None without the file."""
    if not path.exists():
        return None
    with path.open(encoding="utf-8-sig") as f:
        texts = [f"{r['title']}\n{r['content']}" for _, r in zip(range(limit), csv.DictReader(f), strict=False)]
    placed = sum(1 for t in texts if (loc := gaz.resolve(t)).street_code and not loc.ambiguous)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for t in texts:
            gaz.resolve(t)
        best = min(best, time.perf_counter() - t0)
    try:
        shown = str(path.resolve().relative_to(ROOT.parent))
    except ValueError:
        shown = str(path)
    return {
        "dataset": shown,
        "n": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts)) if texts else 0,
        "messages_per_s": round(len(texts) / best, 1),
        "placed_share": round(placed / len(texts), 4) if texts else None,
    }


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--messages", type=Path, default=MESSAGES, help="CSV with title and content columns")
    ap.add_argument("--message-rows", type=int, default=3000)
    args = ap.parse_args()
    rows = list(csv.DictReader(DATA.open(encoding="utf-8")))
    t0 = time.perf_counter()
    gaz = default_gazetteer()
    load_s = time.perf_counter() - t0
    results = []
    for r in rows:
        loc = gaz.resolve(r["text"])
        results.append(
            {
                **r,
                "pred_street": loc.street_code or "",
                "pred_community": loc.community_code or "",
                "street_ok": (loc.street_code or "") == r["street_code"],
                "community_ok": (loc.community_code or "") == r["community_code"],
                "ambiguous": loc.ambiguous,
                "confidence": loc.confidence,
            }
        )
    best = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        for r in rows:
            gaz.resolve(r["text"])
        best = min(best, time.perf_counter() - t)
    messages = _message_throughput(gaz, args.messages, args.message_rows, args.repeat)
    by_part: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_form: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_part[r["part"]].append(r)
        by_form[f"{r['part']}/{r['form']}"].append(r)
    report = {
        "dataset": str(DATA.relative_to(ROOT)),
        "machine": f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}",
        "gazetteer_units": len(gaz.units),
        "gazetteer_load_s": round(load_s, 3),
        "throughput_addresses_per_s": round(len(rows) / best, 1),
        "messages": messages,
        "overall": _stats(results),
        "by_part": {k: _stats(v) for k, v in sorted(by_part.items())},
        "by_form": {k: _stats(v) for k, v in sorted(by_form.items())},
        "errors_handwritten": [
            {k: r[k] for k in ("text", "street_code", "pred_street", "community_code", "pred_community")}
            for r in results
            if r["part"] == "handwritten" and not (r["street_ok"] and r["community_ok"])
        ],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "address.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Address → jurisdiction benchmark",
        "",
        f"Data: `{report['dataset']}` ({len(rows)} rows). Machine: {report['machine']}. "
        f"Gazetteer: {report['gazetteer_units']} units, loaded in {report['gazetteer_load_s']} s. "
        f"Throughput: **{report['throughput_addresses_per_s']} addresses/s** "
        f"(best of {args.repeat}, one core).",
        "",
        *(
            [
                f"Whole messages (`{messages['dataset']}`, first {messages['n']}, mean {messages['mean_chars']} "
                f"characters): **{messages['messages_per_s']} messages/s**, {messages['placed_share']} placed "
                "(most of the board's messages are from another city than the gazetteer's).",
                "",
            ]
            if messages
            else []
        ),
        "The generated part is built from the same names the gazetteer holds, so it is easier than real "
        "input; the hand-written part is the more honest figure.",
        "",
        "| slice | n | street acc | community acc | community recall (named) | false community | ambiguous |",
        "|---|---|---|---|---|---|---|",
    ]
    slices = [
        ("overall", report["overall"]),
        *list(report["by_part"].items()),
        *list(report["by_form"].items()),
    ]
    for name, s in slices:
        lines.append(
            f"| {name} | {s['n']} | {s['street_accuracy']} | {s['community_accuracy']} | "
            f"{s['community_recall_when_named']} | {s['community_false_guess_rate']} | "
            f"{s['ambiguous_rate']} |"
        )
    lines += ["", f"Hand-written errors: {len(report['errors_handwritten'])}", ""]
    for e in report["errors_handwritten"]:
        lines.append(
            f"- {e['text']}: street {e['street_code']} → {e['pred_street'] or '∅'}, "
            f"community {e['community_code'] or '∅'} → {e['pred_community'] or '∅'}"
        )
    (OUT / "address.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
