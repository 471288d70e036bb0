"""The process's engine is made once, whichever threads ask for it at once (a server's warm-ups at its start)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine

from cityhub import db


def test_threads_asking_at_once_get_one_engine_and_its_session_factory(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    db.reset_engine()
    made: list[Engine] = []
    real = db.make_engine

    def slow_make(*args: Any, **kwargs: Any) -> Engine:  # the real engine, made slowly: the others ask meanwhile
        time.sleep(0.2)
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(db, "make_engine", slow_make)
    found: list[tuple[Engine, Any]] = []
    failed: list[BaseException] = []

    def ask() -> None:
        try:
            factory = db.session_factory()
            found.append((db.get_engine(), factory))
        except BaseException as exc:  # an assertion in a thread would pass unseen
            failed.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failed
        assert len(made) == 1
        assert {id(engine) for engine, _ in found} == {id(made[0])}
        assert {id(factory) for _, factory in found} == {id(found[0][1])}
        assert found[0][1].kw["bind"] is made[0]
    finally:
        monkeypatch.undo()
        db.reset_engine()
