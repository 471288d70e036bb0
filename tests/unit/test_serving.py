"""The supervisor's restart policy and its port claim (its processes: tests/integration/test_serve_workers.py)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cityhub.serving import (
    RESTART_PAUSE_MAX_S,
    RESTART_PAUSE_S,
    SHORT_LIFE_S,
    CannotListen,
    PortInUse,
    claim_port,
    release_port,
    restart_pause,
)
from process_helpers import free_port


def test_a_process_that_keeps_dying_at_start_is_retried_less_and_less_often() -> None:
    pauses = []
    pause = None
    for _ in range(10):  # a start-up error: every replacement dies within a second
        pause = restart_pause(pause, 0.5)
        pauses.append(pause)
    assert pauses[:4] == [RESTART_PAUSE_S, 2 * RESTART_PAUSE_S, 4 * RESTART_PAUSE_S, 8 * RESTART_PAUSE_S]
    assert pauses == sorted(pauses) and pauses[-1] == RESTART_PAUSE_MAX_S


def test_a_process_that_served_a_while_is_replaced_at_once_again() -> None:
    assert restart_pause(None, 3600) == RESTART_PAUSE_S
    assert restart_pause(RESTART_PAUSE_MAX_S, SHORT_LIFE_S) == RESTART_PAUSE_S  # the error was mended
    assert restart_pause(RESTART_PAUSE_MAX_S, SHORT_LIFE_S - 1) == RESTART_PAUSE_MAX_S


def _lock_path(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"cityhub-serve-{os.getuid()}-{port}.lock"


def test_a_released_claim_leaves_no_lock_file_and_the_port_can_be_claimed_again() -> None:
    port = free_port()
    fd = claim_port("127.0.0.1", port)
    assert _lock_path(port).exists()
    with pytest.raises(PortInUse):
        claim_port("127.0.0.1", port)
    release_port(fd)
    release_port(fd)  # a second release (the one at exit) does nothing
    assert not _lock_path(port).exists()
    release_port(claim_port("127.0.0.1", port))
    assert not _lock_path(port).exists()


def test_a_claim_opened_before_the_holder_removed_the_file_locks_a_new_one() -> None:
    port = free_port()
    first = claim_port("127.0.0.1", port)
    stale = os.open(_lock_path(port), os.O_RDWR)  # a second claimant between its open and its lock …
    release_port(first)  # … when the first server stops
    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the removed file's lock is free, and worth nothing:
    try:
        second = claim_port("127.0.0.1", port)  # a claim locks the file at the path, not the removed one
        with pytest.raises(PortInUse):
            claim_port("127.0.0.1", port)
        release_port(second)
    finally:
        os.close(stale)


def test_a_claiming_process_removes_its_lock_file_when_it_exits() -> None:
    port = free_port()
    code = f"from cityhub.serving import claim_port; claim_port('127.0.0.1', {port}); print('claimed')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "claimed" and not _lock_path(port).exists()


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("nohost.invalid", "cannot listen on nohost.invalid port"),  # does not resolve
        ("999.1.1.1", "cannot listen on 999.1.1.1 port"),  # not an address
        ("192.0.2.1", "cannot listen on 192.0.2.1 port"),  # an address, but not this machine's (TEST-NET-1)
    ],
)
def test_an_address_no_server_could_listen_on_is_refused_in_one_line_before_any_claim(host: str, problem: str) -> None:
    port = free_port()
    while _lock_path(port).exists():  # a lock file another server left (one killed, of another checkout): not ours
        port = free_port()
    with pytest.raises(CannotListen, match=problem) as refused:
        claim_port(host, port)
    assert not isinstance(refused.value, PortInUse) and "\n" not in str(refused.value)
    assert not _lock_path(port).exists()
