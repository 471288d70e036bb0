"""How a figure is written for people, wherever cityhub prints one (the CLI, reports, the web UI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def percent(share: float | None, digits: int = 1, missing: str = "-") -> str:
    """A share as a percentage: 0.9123 → ``91.2%``; None (nothing to count) → ``missing``."""
    return missing if share is None else f"{share * 100:.{digits}f}%"


def calibration_text(cal: Mapping[str, Any]) -> str:
    """One line of :func:`cityhub.nlp.classifier.calibration`'s figures as the CLIs print them (``nlp evaluate``,
    ``dispatch thresholds``): ECE, Brier and log loss, then each bin as ``(from,to]:n,mean confidence,right``."""
    bins = " ".join(
        f"({b['from']:.1f},{b['to']:.1f}]:{b['n']},{percent(b['confidence'])},{percent(b['accuracy'])}"
        for b in cal.get("bins") or []
    )
    scores = f"ECE {percent(cal.get('ece'))}"
    if cal.get("brier") is not None:
        scores += f", Brier {cal['brier']:.3f}"
    if cal.get("log_loss") is not None:
        scores += f", log loss {cal['log_loss']:.3f}"
    return f"calibration: {scores}; by confidence (messages, mean confidence, right): {bins}"
