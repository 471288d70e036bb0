"""How a figure is written for people, wherever cityhub prints one (the CLI, reports, the web UI)."""

from __future__ import annotations


def percent(share: float | None, digits: int = 1, missing: str = "-") -> str:
    """A share as a percentage: 0.9123 → ``91.2%``; None (nothing to count) → ``missing``."""
    return missing if share is None else f"{share * 100:.{digits}f}%"
