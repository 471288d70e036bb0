"""A small per-process cache of computed figures with a time to live (the one map's figures, the risk findings, the
correlation graphs).

Keys name the database and the reader's data scope, so one process serving several databases or scopes never
answers one with another's figures. State of record stays in the database; this only saves recomputation.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class TtlCache:
    """A small per-process cache of computed values with a time to live, keyed by anything hashable.

    With ``refresh`` (a callable computing the value on a session of its own), an expired value is still answered
    while one background thread per key computes the next: a wall display's 30-second poll never waits seconds for
    the risk findings again, only the first request of a process (or of a new scope) does. ``current`` (a predicate
    on the value at hand) expires a value before its time when what it was computed from has moved (the correlation
    graph's orders): answered once more, refreshed likewise. A value computed in place is computed once per key at a
    time: a request arriving while another (or a server's warm-up) computes it waits for that value rather than
    computing it a second time beside it."""

    def __init__(self, seconds: float, size: int = 64) -> None:
        self.seconds = seconds
        self.size = size
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._refreshing: set[Hashable] = set()
        self._computing: dict[Hashable, threading.Event] = {}  # keys computed in place now, set when stored or failed
        self._generation = 0  # moved by clear(): a refresh started before it does not store what it computed
        self._lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        compute: Callable[[], T],
        refresh: Callable[[], T] | None = None,
        current: Callable[[T], bool] | None = None,
    ) -> T:
        now = _time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.seconds and (current is None or current(hit[1])):
            return hit[1]
        if hit is not None and refresh is not None:
            with self._lock:
                start = key not in self._refreshing
                self._refreshing.add(key)
                generation = self._generation
            if start:
                threading.Thread(
                    target=self._refresh, args=(key, refresh, generation), daemon=True, name="cache-refresh"
                ).start()
            return hit[1]
        return self._compute_once(key, compute, current)

    def _compute_once(self, key: Hashable, compute: Callable[[], T], current: Callable[[T], bool] | None) -> T:
        """``compute()`` stored under ``key``, unless a computation of it is under way: then its value, once stored
        (computed here after all when that one failed or what it stored is no longer current)."""
        while True:
            asked = _time.monotonic()
            with self._lock:
                running = self._computing.get(key)
                if running is None:
                    mine = self._computing[key] = threading.Event()
            if running is None:
                break
            running.wait()
            with self._lock:
                hit = self._items.get(key)
            fresh = hit is not None and (hit[0] >= asked or _time.monotonic() - hit[0] < self.seconds)
            if hit is not None and fresh and (current is None or current(hit[1])):
                return hit[1]
        try:
            value = compute()
            self._put(key, value)
            return value
        finally:
            with self._lock:
                self._computing.pop(key, None)
            mine.set()

    def _put(self, key: Hashable, value: Any, generation: int | None = None) -> None:
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if self._items.pop(key, None) is None and len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))  # the one stored longest ago
            self._items[key] = (_time.monotonic(), value)

    def _refresh(self, key: Hashable, refresh: Callable[[], Any], generation: int) -> None:
        try:
            self._put(key, refresh(), generation)
        except Exception:
            log.exception("refreshing a cached figure failed; the old one is kept for now")
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def has(self, key: Hashable) -> bool:
        """Whether a value (fresh or expired) is at hand for ``key``."""
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._generation += 1
