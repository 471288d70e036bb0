"""The supervisor's restart policy (the processes themselves: tests/integration/test_serve_workers.py)."""

from __future__ import annotations

from cityhub.serving import RESTART_PAUSE_MAX_S, RESTART_PAUSE_S, SHORT_LIFE_S, restart_pause


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
