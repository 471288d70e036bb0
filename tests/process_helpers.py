"""Helpers of the tests that start real processes on loopback: the CLI next to the interpreter, a free port,
waiting for a condition with a deadline, and a served app."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CLI = Path(sys.executable).with_name("cityhub")
# The browser tests' Chromium: Debian's (``.ci/run`` installs it), never one downloaded; the flags keep it off the
# network it cannot reach here.
CHROMIUM = Path("/usr/bin/chromium")
NO_PLAYWRIGHT = "browser tests need playwright (pip install -e '.[dev]')"
# The reason of a browser test marked ``sqlite_only``: its subject is what the browser does, which does not depend
# on the database backend — the API it calls is tested on both backends, and the first test of each browser module
# (the order workbench end to end, the map) runs on both.
BROWSER_SIDE = "what the browser does does not depend on the database backend: SQLite only"
# The phones the browser tests walk by thumb: a common one and a small one.
PHONES = ({"width": 390, "height": 844}, {"width": 360, "height": 740})
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


def wait_in_page(page: Any, expression: str, timeout: float = 60.0) -> None:
    """Poll a page until the JavaScript ``expression`` is true; an AssertionError naming it after ``timeout`` s.
    Playwright's ``wait_for_function`` polls by ``eval`` inside the page, which the pages' Content-Security-Policy
    (no 'unsafe-eval') refuses as soon as the first check is false; ``page.evaluate`` is the browser's own."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true in {timeout:g} s: {expression}"
        page.wait_for_timeout(100)


@contextmanager
def served_app(env: Mapping[str, str], log_path: Path, *, ready: tuple[int, ...] = (200,)) -> Iterator[str]:
    """``cityhub serve`` (no scheduler) on a free loopback port with ``env`` over this process's environment, its
    output in ``log_path``; yields the base URL once ``/healthz`` answers one of ``ready``, and stops the server
    after. A server that exits or does not answer within 60 s fails the test with the end of its log."""
    import httpx
    import pytest

    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cityhub.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-scheduler",
            ],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"cityhub serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code in ready:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cityhub serve did not answer within 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
