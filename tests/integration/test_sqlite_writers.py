"""SQLite writers of one process queue on a lock taken at their first write and given back when the transaction
ends (db.py): concurrent writers all succeed instead of failing with "database is locked", a transaction that read
before another writer committed can still write, and no way of ending a transaction keeps the lock."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from cityhub.db import make_engine, sqlite_write_lock


@pytest.fixture
def engine(tmp_path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, who TEXT)"))
    yield eng
    eng.dispose()


def _lock_is_free(engine: Engine) -> bool:
    lock = sqlite_write_lock(str(engine.url.database))
    if lock.acquire(blocking=False):
        lock.release()
        return True
    return False


def test_a_second_writer_waits_for_the_first_and_both_commit(engine):
    first_wrote = threading.Event()
    release_first = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with Session(engine) as s:
                s.execute(text("INSERT INTO items (who) VALUES ('first')"))
                first_wrote.set()
                release_first.wait(10)
                s.commit()
        except BaseException as exc:
            errors.append(exc)

    def second() -> None:
        try:
            with Session(engine) as s:
                s.execute(text("INSERT INTO items (who) VALUES ('second')"))
                s.commit()
        except BaseException as exc:
            errors.append(exc)

    t1 = threading.Thread(target=first)
    t1.start()
    assert first_wrote.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(0.3)
    assert t2.is_alive(), "the second writer must wait while the first holds the write transaction"
    release_first.set()
    t1.join(10)
    t2.join(10)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT who FROM items ORDER BY id")).scalars().all() == ["first", "second"]
    assert _lock_is_free(engine)


def test_a_transaction_that_read_before_another_commit_can_still_write(engine):
    with Session(engine) as reader:
        assert reader.execute(text("SELECT count(*) FROM items")).scalar_one() == 0
        with Session(engine) as other:  # another writer commits between our read and our write
            other.execute(text("INSERT INTO items (who) VALUES ('other')"))
            other.commit()
        reader.execute(text("INSERT INTO items (who) VALUES ('reader')"))
        reader.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 2


def test_a_savepoint_before_any_write_is_part_of_the_transaction(engine):
    """A savepoint opened before the transaction's first write (a bulk action's first item): releasing it must not
    commit, as it did when the sqlite3 module ran SAVEPOINT outside a transaction — the outermost savepoint was then
    the transaction, its RELEASE a COMMIT, and a rollback of the whole request kept the write. It takes the write
    lock as a first write does."""
    with Session(engine) as s:
        assert s.execute(text("SELECT count(*) FROM items")).scalar_one() == 0
        with s.begin_nested():
            s.execute(text("INSERT INTO items (who) VALUES ('inside')"))
        assert not _lock_is_free(engine)
        s.rollback()
    assert _lock_is_free(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 0
    with Session(engine) as s:
        with s.begin_nested():
            s.execute(text("INSERT INTO items (who) VALUES ('kept')"))
        s.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT who FROM items")).scalars().all() == ["kept"]
    assert _lock_is_free(engine)


@pytest.mark.parametrize("end", ["commit", "rollback", "close", "error"])
def test_every_way_of_ending_a_write_gives_the_lock_back(engine, end):
    s = Session(engine)
    s.execute(text("INSERT INTO items (who) VALUES ('x')"))
    assert not _lock_is_free(engine)
    if end == "commit":
        s.commit()
    elif end == "rollback":
        s.rollback()
    elif end == "close":  # the pool resets the returned connection
        s.close()
    else:
        with pytest.raises(Exception, match="UNIQUE"):
            s.execute(text("INSERT INTO items (id, who) VALUES (1, 'dup'), (1, 'dup')"))
        s.rollback()
    s.close()
    assert _lock_is_free(engine)
    with Session(engine) as again:  # and the next writer goes straight through
        again.execute(text("INSERT INTO items (who) VALUES ('y')"))
        again.commit()


def test_many_threads_writing_at_once_all_succeed(engine):
    errors: list[BaseException] = []
    start = threading.Barrier(24)

    def write(n: int) -> None:
        try:
            start.wait(10)
            for k in range(5):
                with Session(engine) as s:
                    s.execute(text("SELECT count(*) FROM items")).scalar_one()
                    s.execute(text("INSERT INTO items (who) VALUES (:w)"), {"w": f"{n}-{k}"})
                    s.execute(text("UPDATE items SET who = who || '.' WHERE who = :w"), {"w": f"{n}-{k}"})
                    s.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items WHERE who LIKE '%.'")).scalar_one() == 120
    assert _lock_is_free(engine)


def _write_from_another_process(url: str, who: str, n: int) -> None:
    from cityhub.db import make_engine as engine_for

    eng = engine_for(url)
    for k in range(n):
        with Session(eng) as s:
            s.execute(text("INSERT INTO items (who) VALUES (:w)"), {"w": f"{who}-{k}"})
            s.commit()
    eng.dispose()


def test_writers_of_several_processes_queue_too(engine):
    import multiprocessing

    url = str(engine.url)
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_write_from_another_process, args=(url, f"p{i}", 40)) for i in range(2)]
    for child in children:
        child.start()
    _write_from_another_process(url, "parent", 40)
    for child in children:
        child.join(60)
    assert [c.exitcode for c in children] == [0, 0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 120
    # While this process holds the queue, another process cannot take it.
    lock = sqlite_write_lock(str(engine.url.database))
    assert lock.acquire(timeout=5)
    try:
        probe = ctx.Process(target=_try_the_queue, args=(str(engine.url.database),))
        probe.start()
        probe.join(60)
        assert probe.exitcode == 3
    finally:
        lock.release()


def _try_the_queue(database: str) -> None:
    import sys

    from cityhub.db import sqlite_write_lock as queue_of

    sys.exit(0 if queue_of(database).acquire(blocking=False) else 3)


def test_a_server_checkpoints_the_wal_in_a_thread_of_its_own(tmp_path, monkeypatch):
    """`cityhub serve` turns SQLite's automatic checkpoints off (they ran inside the commit that filled the WAL,
    under the write lock) and checkpoints from a background thread instead."""
    from sqlalchemy import text

    from cityhub import db, migrate

    url = f"sqlite:///{tmp_path / 'ckpt.db'}"
    migrate.upgrade(url)
    monkeypatch.setattr(db, "_checkpoints_in_background", False)  # restored after the test
    assert db.start_sqlite_checkpointer("postgresql://u@127.0.0.1/x", 1.0) is None
    assert db.start_sqlite_checkpointer(url, 0) is None
    stop = db.start_sqlite_checkpointer(url, 0.05)
    assert stop is not None
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            conn.execute(text("CREATE TABLE filler (x TEXT)"))
            for _ in range(200):
                conn.execute(text("INSERT INTO filler VALUES (:x)"), {"x": "填" * 2000})
        runs = db.checkpoint_stats["runs"]
        deadline = time.monotonic() + 30
        while db.checkpoint_stats["runs"] < runs + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy, frames, copied = db.checkpoint_stats["last"]
        assert busy == 0 and frames > 0 and copied == frames  # every frame of the WAL is back in the database
    finally:
        stop.set()
        engine.dispose()
