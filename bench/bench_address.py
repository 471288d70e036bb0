"""Address → jurisdiction accuracy and throughput on bench/data/addresses_labelled.csv.

    .venv/bin/python bench/bench_address.py [--repeat 3] [--messages CSV]
    .venv/bin/python bench/bench_address.py --set bench/data/addresses_heldout.csv

Also scores the second set (``bench/data/addresses_independent.csv`` and ``addresses_negative.csv``, built by
``bench/make_address_set_independent.py``): accuracy per form, and false positives on lines with no Guangzhou place.

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
import os
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from cityhub.nlp.address import default_gazetteer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench/data/addresses_labelled.csv"
# bench/results/, or CITYHUB_BENCH_RESULTS (as every benchmark: `make bench`'s smoke runs write elsewhere).
OUT = Path(os.environ.get("CITYHUB_BENCH_RESULTS") or ROOT / "bench/results")
MESSAGES = ROOT.parent / "shared/data/teddycup2020_c/dev/messages_labeled_raw.csv"
# The second set (bench/make_address_set_independent.py): other forms, and lines with no Guangzhou place.
SECOND = ROOT / "bench/data/addresses_independent.csv"
NEGATIVE = ROOT / "bench/data/addresses_negative.csv"


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


def _second_set(gaz: Any) -> dict[str, Any] | None:
    """Street and community accuracy per form on the second set, where a row without a single right answer
    (``ambiguous`` = 1) counts as correct only when the resolver says ambiguous; and the share of lines with no
    Guangzhou place that get a street anyway (false positives)."""
    if not SECOND.exists():
        return None
    return _score_set(gaz, SECOND, list(csv.DictReader(NEGATIVE.open(encoding="utf-8"))))


def _score_set(gaz: Any, path: Path, negative_rows: list[dict[str, str]]) -> dict[str, Any]:
    """The second set's scoring for any file of its columns; ``negative_rows`` have no Guangzhou place."""
    street: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    community: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    errors: list[dict[str, Any]] = []
    said_ambiguous = 0
    rows = [r for r in csv.DictReader(path.open(encoding="utf-8")) if not r["form"].startswith("negative")]
    for r in rows:
        loc = gaz.resolve(r["text"])
        said_ambiguous += loc.ambiguous
        if r["ambiguous"] == "1":
            street_ok, community_ok = loc.ambiguous, None
        else:
            street_ok = loc.street_code == r["street_code"]
            community_ok = loc.community_code == r["community_code"] if r["community_code"] else None
        for key in (r["form"], "overall"):
            street[key][0] += street_ok
            street[key][1] += 1
            if community_ok is not None:
                community[key][0] += community_ok
                community[key][1] += 1
        if not street_ok or community_ok is False:
            errors.append(
                {
                    "form": r["form"],
                    "text": r["text"],
                    "expected": r["street_code"] or f"ambiguous: {r['candidates']}",
                    "street": loc.street_code,
                    "community": loc.community_code,
                    "ambiguous": loc.ambiguous,
                }
            )
    negatives: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    placed_negatives: list[dict[str, Any]] = []
    for r in negative_rows:
        loc = gaz.resolve(r["text"])
        placed = bool(loc.street_code)
        for key in (r["form"], "overall"):
            negatives[key][0] += placed
            negatives[key][1] += 1
        if placed:
            placed_negatives.append({"form": r["form"], "text": r["text"], "street": loc.street_code})

    def share(c: list[int]) -> dict[str, Any]:
        return {"n": c[1], "correct": c[0], "accuracy": round(c[0] / c[1], 4) if c[1] else None}

    try:
        shown = str(path.resolve().relative_to(ROOT))
    except ValueError:
        shown = str(path)
    return {
        "dataset": shown,
        "ambiguous_rate": round(said_ambiguous / len(rows), 4) if rows else None,
        "ambiguous_expected": sum(r["ambiguous"] == "1" for r in rows),
        "street": {k: share(v) for k, v in sorted(street.items())},
        "community": {k: share(v) for k, v in sorted(community.items())},
        "false_positives": {
            k: {"n": v[1], "placed": v[0], "rate": round(v[0] / v[1], 4)} for k, v in sorted(negatives.items())
        },
        "errors": errors,
        "placed_negatives": placed_negatives,
    }


SECOND_ABOUT = (
    "Written by a separate session as an independent check (all eleven districts, complaint sentences, deletion "
    "and homophone typos, communities shared by several streets); the resolver was improved with its failures "
    "in view, so it is a development set now. A row without a single right answer counts only when the "
    "resolver says ambiguous."
)


def _second_set_lines(second: dict[str, Any] | None, title: str = "Second set", about: str = SECOND_ABOUT) -> list[str]:
    if not second:
        return []
    s, c, neg = second["street"], second["community"], second["false_positives"]
    lines = [
        "",
        f"## {title} (`{second['dataset']}`)",
        "",
        about,
        "",
        f"Street {s['overall']['correct']}/{s['overall']['n']} = **{s['overall']['accuracy']}**, community "
        f"{c['overall']['correct']}/{c['overall']['n']} = **{c['overall']['accuracy']}**; "
        + (
            f"lines with no Guangzhou place given a street anyway: {neg['overall']['placed']}/{neg['overall']['n']} "
            f"(**{neg['overall']['rate']}**). "
            if "overall" in neg
            else "no lines without a Guangzhou place in this set. "
        )
        + f"Said ambiguous on {second['ambiguous_rate']} of the placeable rows "
        f"({second['ambiguous_expected']} rows have no single right answer).",
        "",
        "| form | n | street acc | community acc |",
        "|---|---|---|---|",
    ]
    for form in s:
        if form != "overall":
            lines.append(f"| {form} | {s[form]['n']} | {s[form]['accuracy']} | {c.get(form, {}).get('accuracy')} |")
    lines += ["", "| negatives | n | given a street |", "|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {v['rate']} |" for k, v in neg.items()]
    lines += ["", f"Errors: {len(second['errors'])}", ""]
    for e in second["errors"]:
        lines.append(
            f"- [{e['form']}] {e['text']}: expected {e['expected']} → {e['street'] or '∅'} / "
            f"{e['community'] or '∅'}{' (ambiguous)' if e['ambiguous'] else ''}"
        )
    if second["placed_negatives"]:
        lines += ["", f"Placed negatives: {len(second['placed_negatives'])}", ""]
        lines += [f"- [{e['form']}] {e['text']} → {e['street']}" for e in second["placed_negatives"]]
    return lines


def _score_one_set(path: Path) -> None:
    gaz = default_gazetteer()
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    report = _score_set(gaz, path, [r for r in rows if r["form"].startswith("negative")])
    name = path.stem.removeprefix("addresses_")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"address_{name}.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Address → jurisdiction benchmark, one set",
        *_second_set_lines(report, "Set", "Scored as the second set."),
    ]
    (OUT / f"address_{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--messages", type=Path, default=MESSAGES, help="CSV with title and content columns")
    ap.add_argument("--message-rows", type=int, default=3000)
    ap.add_argument(
        "--set",
        type=Path,
        help="score only this file (the second set's columns; rows whose form starts with 'negative' name no "
        "Guangzhou place) and write bench/results/address_<name>.json and .md",
    )
    args = ap.parse_args()
    if args.set:
        _score_one_set(args.set)
        return
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
    second = _second_set(gaz)
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
        "second_set": second,
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
    lines += _second_set_lines(second)
    (OUT / "address.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
