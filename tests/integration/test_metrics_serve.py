"""`cityhub serve --workers 2` with metrics on: whichever server process answers a scrape, its HTTP figures are the
sum of both processes' (prometheus-client's multiprocess mode, in a directory the supervisor makes and removes); a
process that dies leaves its counts in the totals and drops out of ``cityhub_server_processes``. Real processes on a
loopback port, over SQLite (the figures summed here are not the database's)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cityhub import migrate
from cityhub.api.gate import LANES
from process_helpers import CLI, free_port, wait_until

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")

ROUTE = "/api/v1/orders/{order_id}"
CONNECTIONS = 40


def _listens(process: psutil.Process, port: int) -> bool:
    """Whether ``process`` holds a socket listening on ``port``."""
    try:
        sockets = process.net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in sockets)


def _servers(parent: psutil.Process) -> list[psutil.Process]:
    """The supervisor's server processes alive (not multiprocessing's resource tracker)."""
    alive = []
    for child in parent.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One scrape on a connection of its own (the kernel hands it to either process)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        answer = connection.getresponse()
        text = answer.read().decode()
    finally:
        connection.close()
    assert answer.status == 200, text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _answered(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float | None:
    labels = frozenset({"method": "GET", "route": ROUTE, "status": "4xx"}.items())
    return samples.get(("cityhub_http_requests_total", labels))


@dataclass
class _Served:
    """A supervisor started by :func:`_serving`, and the metrics directory a test found it made."""

    proc: subprocess.Popen[bytes]
    parent: psutil.Process
    log: Path
    directory: Path | None = None


@contextmanager
def _serving(tmp_path: Path, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Iterator[_Served]:
    """``cityhub serve`` (``argv``) running for the block, its output in ``serve.log`` (printed when an assertion
    fails); afterwards killed with its processes if it still runs, and the directory it made removed (a supervisor
    killed outright leaves it)."""
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    served = _Served(proc, psutil.Process(proc.pid), log)
    try:
        yield served
    except AssertionError:
        print(log.read_text())
        raise
    finally:
        if proc.poll() is None:
            for child in served.parent.children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(timeout=30)
        if served.directory is not None:
            shutil.rmtree(served.directory, ignore_errors=True)


def _both_up(parent: psutil.Process, port: int) -> bool:
    """/healthz answers and both server processes listen (a process that has not started accepting yet leaves every
    connection to the other)."""
    try:
        up = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
    servers = _servers(parent)
    return up and len(servers) == 2 and all(_listens(server, port) for server in servers)


def test_every_process_answers_a_scrape_with_both_processes_figures(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    migrate.upgrade(url)
    port = free_port()
    env = {**os.environ, "CITYHUB_DATABASE_URL": url, "CITYHUB_METRICS_ENABLED": "true"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [str(CLI), "serve", "--no-scheduler", "--no-dispatcher", "--port", str(port), "--workers", "2"]
    with _serving(tmp_path, argv, env) as served:
        proc, parent, log = served.proc, served.parent, served.log
        wait_until(lambda: _both_up(parent, port))
        servers = _servers(parent)
        directory = served.directory = Path(servers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert {Path(p.environ()["PROMETHEUS_MULTIPROC_DIR"]) for p in servers} == {directory}
        assert directory.is_dir() and directory.name.startswith(f"cityhub-metrics-{port}-")

        # 40 connections of their own, each asking once and kept open so that each can be found on its process.
        held = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(CONNECTIONS)]
        try:
            for n, connection in enumerate(held, start=1):
                connection.request("GET", f"/api/v1/orders/{n}")  # signed out: 401, on the route
                answer = connection.getresponse()
                answer.read()
                assert answer.status == 401
            per_process = {}
            for server in _servers(parent):
                mine = [c for c in server.net_connections(kind="tcp") if c.laddr.port == port and c.raddr]
                per_process[server.pid] = len(mine)
        finally:
            for connection in held:
                connection.close()
        # Both processes answered some (all on one: 2 chances in 2^40), unless a very slow machine closed a few
        # idle connections before they were counted.
        assert len(per_process) == 2 and all(n > 0 for n in per_process.values()), per_process

        # Scrapes land on either process; each says all 40, and that two processes serve.
        for _ in range(6):
            samples = _scrape(port)
            assert _answered(samples) == CONNECTIONS
            assert samples[("cityhub_server_processes", frozenset())] == 2
            assert samples[("cityhub_database_up", frozenset())] == 1
            # The gate refused nothing, and says so for each lane (a series first seen at 1 escapes rate()).
            for lane in LANES:
                assert samples[("cityhub_http_refused_total", frozenset({("lane", lane)}))] == 0

        # A process killed outright: its answers stay counted, and it no longer counts as serving once replaced.
        victim = next(iter(per_process))
        assert list(directory.glob(f"gauge_livesum_{victim}.db")) and list(directory.glob(f"counter_{victim}.db"))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(_servers(parent)) == 2 and victim not in {p.pid for p in _servers(parent)})
        wait_until(lambda: log.read_text().count("Application startup complete") == 3)  # the replacement serves
        assert not list(directory.glob(f"gauge_livesum_{victim}.db"))  # removed by the supervisor
        assert list(directory.glob(f"counter_{victim}.db"))  # kept: the totals never go down
        for _ in range(4):
            samples = _scrape(port)
            assert _answered(samples) == CONNECTIONS
            assert samples[("cityhub_server_processes", frozenset())] == 2  # not 3: the dead one is out

        # Stopped: the supervisor removes the directory it made.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not directory.exists()


def test_metrics_turned_on_in_dotenv_by_a_reload_are_summed_over_the_new_processes(tmp_path: Path) -> None:
    """CITYHUB_METRICS_ENABLED set in `.env` after the start, then SIGHUP (operations.md: a reload suffices for
    `.env`): the supervisor makes the directory before the first new process, so each new one answers a scrape with
    both processes' figures — not with its own alone, as it did when only a start made the directory."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    migrate.upgrade(url)
    port = free_port()
    env = {**os.environ, "CITYHUB_DATABASE_URL": url}
    for name in ("CITYHUB_METRICS_ENABLED", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    if env.get("PYTHONPATH"):  # the code under test (PYTHONPATH=src) from the server's working directory too
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep))
    argv = [str(CLI), "serve", "--no-scheduler", "--no-dispatcher", "--port", str(port), "--workers", "2"]
    with _serving(tmp_path, argv, env, cwd=tmp_path) as served:
        proc, parent, log = served.proc, served.parent, served.log
        wait_until(lambda: _both_up(parent, port))
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).status_code == 404  # off

        (tmp_path / ".env").write_text("CITYHUB_METRICS_ENABLED=true\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload done" in log.read_text(), timeout=300)
        wait_until(lambda: _both_up(parent, port))
        dirs = {p.environ().get("PROMETHEUS_MULTIPROC_DIR") for p in _servers(parent)}
        assert len(dirs) == 1 and None not in dirs, dirs  # one directory, shared by both new processes
        directory = served.directory = Path(str(dirs.pop()))
        assert directory.is_dir() and directory.name.startswith(f"cityhub-metrics-{port}-")

        for n in range(1, CONNECTIONS + 1):  # each on a connection of its own: the kernel spreads them
            answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/orders/{n}", timeout=30)
            assert answer.status_code == 401
        for _ in range(6):
            samples = _scrape(port)
            assert samples[("cityhub_server_processes", frozenset())] == 2
            assert _answered(samples) == CONNECTIONS

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not directory.exists()  # made by the reload, removed by the supervisor as one made at start
