"""JSON values as cityhub stores them (an order's channel ``attributes``, an audit event's ``payload``): one walk over
the strings in them, for whatever rewrites their texts (masking, the times of an answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def map_strings(value: Any, change: Callable[[str], Any]) -> Any:
    """``value`` with every string in it — itself, a dict's values, a list's items, at any depth — replaced by
    ``change(string)``; dict keys and other values (numbers, booleans, None) as they are. A new value: ``value`` is
    not changed."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, change) for v in value]
    return value
