"""`cityhub serve --workers 2`: one listening socket per process, so new connections spread over both processes;
a process that dies is replaced; SIGHUP replaces them all without a failed request; SIGTERM stops them all. Real
processes on a loopback port."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from cityhub import migrate
from process_helpers import CLI, free_port, wait_until

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _children(parent: psutil.Process) -> list[psutil.Process]:
    """The server processes (not multiprocessing's resource tracker, nor the background dispatcher, which runs at a
    lower priority: see test_dispatch_background_serve), alive."""
    alive = []
    for child in parent.children():
        try:
            server = "spawn_main" in " ".join(child.cmdline()) and child.nice() == 0
            if child.status() != psutil.STATUS_ZOMBIE and server:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _listening(parent: psutil.Process, port: int) -> bool:
    """Both server processes listen on ``port``: a process is found alive while it still imports the app, before its
    socket listens, and until then the kernel gives every new connection to the other."""
    children = _children(parent)
    try:
        return len(children) == 2 and all(
            any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in child.net_connections(kind="tcp"))
            for child in children
        )
    except psutil.NoSuchProcess:
        return False


@contextmanager
def _serving(
    tmp_path: Path, *options: str, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int, str, Path]]:
    """`cityhub serve --workers 2` (or with ``options`` instead) over a migrated SQLite database in ``tmp_path``,
    answering /healthz: (its process, port, base URL, log file); killed with all its processes after. ``cwd``: the
    working directory, whose ``.env`` the processes read."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    migrate.upgrade(url)
    port = free_port()
    env = {**os.environ, "CITYHUB_DATABASE_URL": url}
    if env.get("PYTHONPATH"):  # the code under test (PYTHONPATH=src) wherever the server's working directory is
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep))
    proc = subprocess.Popen(
        [str(CLI), "serve", "--no-scheduler", "--port", str(port), *(options or ("--workers", "2"))],
        env=env,
        cwd=cwd,
        stdout=open(tmp_path / "serve.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up)
        yield proc, port, base, tmp_path / "serve.log"
    except AssertionError:
        print((tmp_path / "serve.log").read_text())
        raise
    finally:
        if proc.poll() is None:
            # The children first: once the supervisor is gone they belong to init and cannot be found from it.
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    """A server of the test's own: for the tests that kill its processes."""
    with _serving(tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the tests that only look at it (starting one takes 10-30 s: three processes import the app)."""
    with _serving(tmp_path_factory.mktemp("serve")) as running:
        yield running


def test_connections_spread_over_both_processes_and_a_dead_one_is_replaced(server):
    proc, port, base, _log = server
    parent = psutil.Process(proc.pid)
    wait_until(lambda: _listening(parent, port))

    # 40 connections of their own, each answered and kept open (HTTP/1.1 keep-alive): a pool of concurrent requests
    # reuses a connection whose answer came first, so on a busy machine it held fewer than it asked for.
    held = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(40)]
    try:
        for connection in held:
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
        per_child = {}
        for child in _children(parent):  # the 40 connections are still open
            mine = [c for c in child.net_connections(kind="tcp") if c.laddr.port == port and c.raddr]
            per_child[child.pid] = len(mine)
    finally:
        for connection in held:
            connection.close()
    # All 40, unless the server closed some idle for its keep-alive time (5 s) on a very slow machine.
    assert len(per_child) == 2 and sum(per_child.values()) >= 20, per_child
    assert all(n > 0 for n in per_child.values()), per_child  # all on one process: 2 chances in 2^40

    victim = next(iter(per_child))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(_children(parent)) == 2 and victim not in {c.pid for c in _children(parent)})
    wait_until(lambda: httpx.get(f"{base}/healthz", timeout=5).status_code == 200)


def _serve(port: int, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CITYHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    argv = [str(CLI), "serve", "--no-scheduler", "--port", str(port), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_second_serve_on_the_port_is_refused_and_the_first_serves_on(shared_server):
    proc, port, base, log = shared_server
    parent = psutil.Process(proc.pid)
    wait_until(lambda: len(_children(parent)) == 2)
    for args in (["--workers", "2"], []):  # the supervisor, and a single uvicorn
        second = _serve(port, log.parent, *args)  # over the first one's database
        assert second.returncode == 2  # could not run
        (line,) = second.stderr.splitlines()
        assert line.startswith("error: ") and f"port {port} on 127.0.0.1 is already in use" in line
    assert len(_children(parent)) == 2 and httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    listeners = [c for c in psutil.net_connections(kind="tcp") if c.laddr.port == port and c.status == "LISTEN"]
    assert len(listeners) == 2  # the first serve's two processes, nobody else


def test_a_port_claimed_by_a_starting_supervisor_is_refused_before_anything_listens(tmp_path):
    from cityhub.serving import PortInUse, claim_port, release_port

    migrate.upgrade(f"sqlite:///{tmp_path / 'serve.db'}")
    port = free_port()
    fd = claim_port("127.0.0.1", port)  # as a supervisor whose processes are still starting
    try:
        with pytest.raises(PortInUse, match=f"port {port} on 0.0.0.0 is already in use"):
            claim_port("0.0.0.0", port)
        second = _serve(port, tmp_path, "--workers", "2")
        assert second.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in second.stderr
    finally:
        release_port(fd)
    # A foreign server with SO_REUSEPORT, which a bind would not refuse: found by connecting.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(PortInUse):
            release_port(claim_port("127.0.0.1", port))


def test_server_processes_stop_when_the_supervisor_is_killed(server):
    proc, _port, _base, _log = server
    parent = psutil.Process(proc.pid)
    wait_until(lambda: len(_children(parent)) == 2)
    children = _children(parent)
    proc.kill()  # SIGKILL: the supervisor cannot stop them itself
    proc.wait(timeout=30)
    wait_until(lambda: not any(_alive(c) for c in children), timeout=30)


def test_sigterm_stops_every_process_and_the_port_s_lock_file_goes(server):
    proc, port, _base, _log = server
    parent = psutil.Process(proc.pid)
    wait_until(lambda: len(_children(parent)) == 2)
    children = _children(parent)
    lock_file = Path(tempfile.gettempdir()) / f"cityhub-serve-{os.getuid()}-{port}.lock"
    assert lock_file.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    wait_until(lambda: not any(_alive(c) for c in children), timeout=30)
    assert not lock_file.exists()


# uvicorn's access log in cityhub's one format: time, level, logger, then uvicorn's own words.
TIMED_ACCESS = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO uvicorn\.access: 127\.0\.0\.1:\d+ - "GET /healthz HTTP/1\.1" 200', re.M
)


def test_sigterm_stops_a_one_process_server_and_the_port_s_lock_file_goes(tmp_path):
    """One process serving (no dispatcher beside it): uvicorn raises SIGTERM again once it has stopped; the process
    still ends as an exit (status 0) that removes the lock file, not killed by the signal with the file left. Its
    access log says when each request came (uvicorn's own format carried no time)."""
    with _serving(tmp_path, "--workers", "1", "--no-dispatcher") as (proc, port, _base, log_file):
        assert psutil.Process(proc.pid).children() == []  # served in this very process
        wait_until(lambda: TIMED_ACCESS.search(log_file.read_text()) is not None)
        lock_file = Path(tempfile.gettempdir()) / f"cityhub-serve-{os.getuid()}-{port}.lock"
        assert lock_file.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not lock_file.exists()


def test_each_server_process_logs_with_the_cli_format_and_level(shared_server):
    """Server processes start with ``spawn``: without their own logging set-up cityhub's INFO lines (job results, a
    reloaded classifier) were dropped and its warnings printed bare."""
    proc, _port, base, log_file = shared_server
    parent = psutil.Process(proc.pid)
    wait_until(lambda: len(_children(parent)) == 2)
    pids = {c.pid for c in _children(parent)}

    def started() -> set[int]:
        lines = [ln for ln in log_file.read_text().splitlines() if " INFO cityhub.serving: server process " in ln]
        return {int(ln.split("server process ")[1].split()[0]) for ln in lines}

    wait_until(lambda: pids <= started())
    # uvicorn's lines too, its access log among them: each with its time (they carried none).
    httpx.get(f"{base}/healthz", timeout=30)
    wait_until(lambda: TIMED_ACCESS.search(log_file.read_text()) is not None)
    assert "INFO:     " not in log_file.read_text()


def _dispatcher(parent: psutil.Process) -> int | None:
    """The background dispatcher's process (niced, see _children), alive."""
    for child in parent.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.nice() > 0 and _alive(child):
                return child.pid
        except psutil.NoSuchProcess:
            pass
    return None


class _Client:
    """A client asking without a pause, each request on a new connection (as a reverse proxy asks by default),
    for /healthz and the login page in turn, in a thread, until stopped: what it got other than a 200."""

    def __init__(self, port: int) -> None:
        self.port, self.answered = port, 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            path = "/login" if self.answered % 2 else "/healthz"
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                connection.request("GET", path)
                answer = connection.getresponse()
                answer.read()
                if answer.status != 200:
                    self.failures.append(f"{path}: {answer.status}")
                self.answered += 1
            except OSError as exc:  # refused, reset, closed without an answer, timed out
                self.failures.append(f"{path}: {exc!r}")
            finally:
                connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def _lines(log: Path, text: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if text in line]


def test_sighup_replaces_every_process_one_by_one_without_a_failed_request(tmp_path):
    with _serving(tmp_path, cwd=tmp_path) as (proc, port, _base, log):
        parent = psutil.Process(proc.pid)
        wait_until(lambda: len(_children(parent)) == 2 and _dispatcher(parent) is not None)
        servers, dispatcher = {c.pid for c in _children(parent)}, _dispatcher(parent)
        client = _Client(port)
        try:
            wait_until(lambda: client.answered > 20)
            before = client.answered
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda: _lines(log, "reload done"), timeout=300)
            during = client.answered - before
            wait_until(lambda: client.answered > before + during + 20)  # and after it, by the new processes only
        finally:
            client.stop()
        assert client.failures == [] and during > 0
        assert proc.poll() is None  # the supervisor serves on
        now = {c.pid for c in _children(parent)}
        assert len(now) == 2 and not now & servers, (servers, now)  # every server process replaced
        assert _dispatcher(parent) not in (None, dispatcher)
        (done,) = _lines(log, "reload done")
        assert (
            all(f"cityhub-server {pid}" in done for pid in now) and f"cityhub-dispatcher {_dispatcher(parent)}" in done
        )
        for pid in servers:  # each old one stopped gracefully, after its replacement said it was ready
            (ready,) = _lines(log, f"is ready; stopping {pid}")
            assert log.read_text().index(ready) < log.read_text().index(f"reload: cityhub-server {pid} stopped")
        assert not _lines(log, "did not stop")


def test_a_replacement_that_cannot_start_leaves_the_old_processes_serving(tmp_path):
    with _serving(tmp_path, cwd=tmp_path) as (proc, port, base, log):
        parent = psutil.Process(proc.pid)
        wait_until(lambda: len(_children(parent)) == 2 and _dispatcher(parent) is not None)
        servers, dispatcher = {c.pid for c in _children(parent)}, _dispatcher(parent)
        (tmp_path / ".env").write_text("CITYHUB_WORKING_HOURS=9-18\n")  # read by every new process
        client = _Client(port)
        try:
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda: _lines(log, "SIGHUP: replacing"))
            proc.send_signal(signal.SIGHUP)  # during the reload: another one follows it
            wait_until(lambda: len(_lines(log, "reload stopped")) == 2, timeout=300)
            answered = client.answered
            wait_until(lambda: client.answered > answered + 20)
        finally:
            client.stop()
        assert client.failures == [] and proc.poll() is None
        assert len(_lines(log, "SIGHUP during a reload: another reload follows this one")) == 1
        refused = _lines(log, "cannot start: invalid settings: CITYHUB_WORKING_HOURS")
        assert len(refused) == 2 and all("from .env" in line for line in refused)
        for stopped in _lines(log, "reload stopped"):
            assert "ended (exit code 2) before it was ready" in stopped and "serves on" in stopped
        assert {c.pid for c in _children(parent)} == servers and _dispatcher(parent) == dispatcher  # none replaced
        assert not _lines(log, "reload done")

        (tmp_path / ".env").unlink()  # mended: the next SIGHUP replaces them all
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: _lines(log, "reload done"), timeout=300)
        assert not {c.pid for c in _children(parent)} & servers and _dispatcher(parent) != dispatcher
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200


def test_sighup_to_a_one_process_server_is_logged_and_it_serves_on(tmp_path):
    """Without the supervisor nothing could replace the process: SIGHUP (whose default would end it) is refused."""
    with _serving(tmp_path, "--workers", "1", "--no-dispatcher") as (proc, _port, base, log):
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: _lines(log, "SIGHUP ignored: no reload without the supervisor"))
        assert proc.poll() is None and httpx.get(f"{base}/healthz", timeout=30).status_code == 200
