"""Helpers of the tests that start real processes on loopback: the CLI next to the interpreter, a free port, and
waiting for a condition with a deadline."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

CLI = Path(sys.executable).with_name("cityhub")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, pause: float = 0.2) -> None:
    """Poll ``predicate`` until it holds; an AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(pause)
