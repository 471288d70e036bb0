"""How a figure is written for people, wherever cityhub prints one (the CLI, reports, the web UI)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def percent(share: float | None, digits: int = 1, missing: str = "-") -> str:
    """A share as a percentage: 0.9123 → ``91.2%``; None (nothing to count) → ``missing``."""
    return missing if share is None else f"{share * 100:.{digits}f}%"


def significant(value: float, figures: int = 2, decimals: int = 1) -> str:
    """A figure with ``decimals`` decimals, or as many more as it takes to show ``figures`` significant digits of a
    small one (trailing zeros beyond ``decimals`` dropped): 12.34 → ``12.3``, 0.53 → ``0.53``, 0.0213 → ``0.021``,
    0.02 → ``0.02``, 0 → ``0.0`` — an expectation near zero is not shown as 0.0 beside a count 100 times it."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.{decimals}f}"
    places = max(decimals, figures - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{places}f}"
    if places > decimals:
        text = text.rstrip("0")
        whole, _, fraction = text.partition(".")
        text = f"{whole}.{fraction.ljust(decimals, '0')}" if decimals else text.rstrip(".")
    return text


def duration(seconds: float) -> str:
    """A span of time as an operator reads it: ``41 s``, ``2 min 41 s``, ``1 h 5 min`` (whole seconds; the seconds
    left out past an hour)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


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
