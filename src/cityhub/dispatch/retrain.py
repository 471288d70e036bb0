"""Retraining the dispatch classifier from the district's corrections, guarded (`cityhub dispatch retrain`).

The loop the dispatchers close by hand otherwise (``dispatch export-training``, then ``nlp train`` over the base data
and the export, into the live model's directory) in one step, with a guard before anything is replaced:

1. training rows: the base labelled CSVs (the data the live model was trained on, or newer) plus every order a
   person corrected (``service.training_records``: returned and re-dispatched elsewhere, transferred,
   re-categorised), labelled with the first level of the category it ended with. A corrected order whose category
   is not among the base data's categories is left out and counted: one example cannot teach a new class.
2. a candidate trained like ``nlp train`` does, with the live model's configuration (feature blocks, members,
   encoder; the default one when there is no live model yet) and its grouped cross-validation report.
3. the guard: the candidate replaces the live model only if its cross-validated macro F1 is at least the live
   model's (from the live artefact's own report) minus ``tolerance``; ``force`` skips the comparison. Those two
   figures come from different training data; with ``holdout`` (a labelled CSV of recent orders, say) both models
   are scored on the same rows instead, and rows of the training data with the text of a held-out row are left
   out of training. A candidate
   that fails is written beside the live directory (``<dir>.rejected``) for inspection, and the live model stays.
4. promotion writes into the live directory (files moved into place, see ``Model.save``); every server process
   switches to it without a pause (``service.load_model``).

Training takes about a minute of CPU for ten thousand messages: run it from cron or by hand on the worker host, not
inside a server process. Each run is recorded among the jobs (``job_runs`` row ``classifier-retrain``), so the
status page and ``/healthz`` show when the model was last retrained and whether it was promoted.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cityhub.errors import ValidationFailed
from cityhub.nlp import classifier
from cityhub.nlp.text import normalize

JOB_NAME = "classifier-retrain"
GUARD_PART = "all"  # the part of the CV report compared: every training message


@dataclass
class RetrainResult:
    model: str
    promoted: bool
    reason: str
    base_rows: int
    corrections: int
    corrections_left_out: dict[str, int] = field(default_factory=dict)  # category → orders
    # Categories training left out (fewer distinct messages than folds) → their distinct messages.
    categories_left_out: dict[str, int] = field(default_factory=dict)
    candidate_macro_f1: float | None = None
    live_macro_f1: float | None = None
    # With a hold-out file: what the guard compared (both models scored on the same rows).
    guard: str = "cv"  # "cv" or "holdout"
    holdout_rows: int = 0
    holdout_excluded: int = 0  # training rows left out: the text of a held-out row
    candidate_holdout_macro_f1: float | None = None
    live_holdout_macro_f1: float | None = None
    training_seconds: float = 0.0
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)  # rejected rows of the base CSVs

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _macro_f1(meta: dict[str, Any]) -> float | None:
    part = (meta.get("evaluation") or {}).get(GUARD_PART)
    return float(part["macro_f1"]) if isinstance(part, dict) and "macro_f1" in part else None


def retrain(
    *,
    base: Sequence[str | Path],
    corrections: Sequence[classifier.LabelledOrder],
    model_dir: str | Path,
    tolerance: float = 0.01,
    force: bool = False,
    folds: int = 3,
    embed_cache: str | Path | None = None,
    holdout: str | Path | None = None,
) -> RetrainResult:
    """Train a candidate on ``base`` + ``corrections`` and promote it into ``model_dir`` if it passes the guard."""
    if not base:
        raise ValidationFailed("retraining needs the base labelled data (--data FILE)", details={"field": "data"})
    if not 0 <= tolerance <= 1:
        raise ValidationFailed(f"tolerance {tolerance} is not between 0 and 1", details={"field": "tolerance"})
    target = Path(model_dir)
    records: list[classifier.LabelledOrder] = []
    reports = []
    skipped: list[dict[str, Any]] = []
    for path in base:
        rows, report = classifier.read_labelled_csv(path)
        records += rows
        reports.append(report)
        skipped += [{"file": str(path), **row} for row in report.skipped]
    known = {r.category for r in records}
    usable = [c for c in corrections if c.category in known]
    left_out = Counter(c.category for c in corrections if c.category not in known)
    held: list[classifier.LabelledOrder] = []
    excluded = 0
    if holdout is not None:
        held, report = classifier.read_labelled_csv(holdout)
        skipped += [{"file": str(holdout), **row} for row in report.skipped]
        if not held:
            raise ValidationFailed(f"{holdout}: no usable labelled rows to hold out", details={"field": "holdout"})
        held_texts = {normalize(r.text) for r in held}
        n_before = len(records) + len(usable)
        records = [r for r in records if normalize(r.text) not in held_texts]
        usable = [c for c in usable if normalize(c.text) not in held_texts]
        excluded = n_before - len(records) - len(usable)

    live = None
    if (target / classifier.META_FILE).is_file():
        live = classifier.load(target)  # refuses a broken live artefact before the minute of training
    live_meta = live.meta if live is not None else None
    # The live model's configuration (feature blocks, members, encoder) is kept: only the data changes.
    config = replace(live.config, folds=folds) if live is not None else classifier.ClassifierConfig(folds=folds)
    text_encoder = live.encoder if live is not None else None
    if embed_cache is not None:
        if text_encoder is None:
            raise ValidationFailed(
                "--embed-cache applies to a live model with a sentence encoder (trained with --encoder); "
                f"{target} has none",
                details={"field": "embed_cache"},
            )
        from cityhub.nlp.encoder import CachedEncoder

        text_encoder = CachedEncoder(text_encoder, embed_cache)

    started = time.perf_counter()
    candidate = classifier.train(
        records + usable,
        config=config,
        sources=reports,
        evaluate_cv=True,
        encoder=text_encoder,
    )
    result = RetrainResult(
        model=str(target),
        promoted=False,
        reason="",
        base_rows=len(records),
        corrections=len(usable),
        corrections_left_out=dict(left_out),
        candidate_macro_f1=_macro_f1(candidate.meta),
        live_macro_f1=_macro_f1(live_meta) if live_meta is not None else None,
        training_seconds=round(time.perf_counter() - started, 1),
        skipped_rows=skipped,
        categories_left_out=dict(candidate.meta["training_data"].get("left_out", {})),
    )
    lost = sorted(set(live.labels) - set(candidate.labels)) if live is not None else []
    candidate.meta["retrained"] = {"base_rows": len(records), "corrections": len(usable)}
    new, old = result.candidate_macro_f1, result.live_macro_f1
    if held:
        result.guard, result.holdout_rows, result.holdout_excluded = "holdout", len(held), excluded
        new = result.candidate_holdout_macro_f1 = round(classifier.evaluate(candidate, held)["macro_f1"], 4)
        if live is not None:
            old = result.live_holdout_macro_f1 = round(classifier.evaluate(live, held)["macro_f1"], 4)
        candidate.meta["retrained"]["holdout"] = {"rows": len(held), "macro_f1": new, "live_macro_f1": old}
    what = "hold-out macro F1" if held else "macro F1"
    rejected = target.with_name(target.name + ".rejected")
    if live_meta is None:
        result.promoted, result.reason = True, "no live model yet"
    elif force:
        result.promoted, result.reason = True, "forced (the guard was skipped)"
    elif lost:
        # Its macro F1 is over fewer categories: no comparison; orders of these would never be suggested them.
        result.reason = (
            f"kept the live model: the candidate does not know {', '.join(lost)}, which the live model predicts "
            f"(too few distinct messages to learn); the candidate is in {rejected}"
        )
    elif old is None:
        result.promoted, result.reason = True, "the live model has no cross-validation report to compare with"
    elif new is not None and new >= old - tolerance:
        result.promoted = True
        result.reason = f"{what} {new:.4f} ≥ live {old:.4f} − tolerance {tolerance}"
    else:
        result.reason = (
            f"kept the live model: candidate {what} {new if new is None else f'{new:.4f}'} < live {old:.4f} − "
            f"tolerance {tolerance}; the candidate is in {rejected}"
        )
    if not result.promoted:
        shutil.rmtree(rejected, ignore_errors=True)
        candidate.save(rejected)
        return result
    candidate.save(target)
    shutil.rmtree(rejected, ignore_errors=True)  # an earlier run's rejected candidate is not news any more
    return result
