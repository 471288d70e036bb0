"""Several server processes on one port, each with a listening socket of its own (``SO_REUSEPORT``).

uvicorn's ``--workers`` shares one listening socket between its processes, and the event loop of each (uvloop,
like libuv everywhere) accepts every pending connection at once when it wakes. A burst of new connections — 50
clients opening theirs in the same second — then lands on whichever process woke first, and stays there for as
long as the clients keep their connections alive: measured at 1,000,000 orders, one of two processes served 84 %
of the creations while the other idled, and its queue made the p95 seven times the other's. With a socket per
process bound with ``SO_REUSEPORT`` the kernel spreads new connections over the processes by a hash of their
addresses, so two processes share 50 connections about evenly whatever their timing.

The parent process only supervises: it starts ``workers`` processes (and, with automatic dispatch in the background,
the dispatcher's process), starts a new one in place of one that dies unexpectedly, and stops them all on SIGINT or
SIGTERM. A process whose supervisor disappears (killed with SIGKILL, say) stops itself within a second.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0  # between the unexpected end of a process and its replacement …
RESTART_PAUSE_MAX_S = 30.0  # … doubled up to this while replacements keep dying young (a start-up error)
SHORT_LIFE_S = 10.0  # a process that ended sooner than this after its start "died young"
STOP_TIMEOUT_S = 30.0  # for all processes together to stop on SIGTERM before they are killed
ORPHAN_CHECK_S = 1.0  # how often a server process checks that its supervisor is still there


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other processes may bind too (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class CannotListen(Exception):
    """``cityhub serve`` cannot listen on the address it was asked for (a host that does not resolve or is not this
    machine's, a port it may not bind)."""


class PortInUse(CannotListen):
    """Another process serves on the port ``cityhub serve`` was asked for."""


def claim_port(host: str, port: int) -> int:
    """Make sure no other server uses (host, port), and keep it so while this process lives; returns the lock's file
    descriptor (keep it open). ``PortInUse`` names the port otherwise.

    Sockets bound with ``SO_REUSEPORT`` do not refuse each other: a second ``cityhub serve`` on the same port would
    start and split the connections with the first (old and new settings side by side). So, before anything binds,
    a connection attempt finds any server listening there (a wildcard address is tried on the loopback), and a lock
    file per port and user (``cityhub-serve-UID-PORT.lock`` in the temporary directory), held by the supervisor for
    its life (and removed when it ends: :func:`release_port`), refuses a second one starting at the same time, before
    either listens. The supervisor's own server processes, and the replacement of one that died, bind without
    asking. First of all a trial bind refuses, as ``CannotListen`` naming the address, what no server could listen
    on: a host that does not resolve or is not this machine's, a port the user may not bind."""
    import errno
    import fcntl
    import tempfile

    taken = f"port {port} on {host} is already in use by another server (a cityhub serve?): stop it or choose --port"
    try:  # bound, never listening: a listening socket would take connections meant for a server already there
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            trial.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(taken) from None
        raise CannotListen(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    except (OverflowError, UnicodeError) as exc:  # a port beyond 65535, a host name that is not a name
        raise CannotListen(f"cannot listen on {host} port {port}: {exc}") from None
    probe = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    with socket.socket(socket.AF_INET6 if ":" in probe else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect((probe, port))
        except OSError:
            pass  # nobody answers: free (a foreign address the bind will refuse in its own words)
        else:
            raise PortInUse(taken)
    path = os.path.join(tempfile.gettempdir(), f"cityhub-serve-{os.getuid()}-{port}.lock")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PortInUse(taken) from None
        if _is_at(fd, path):
            break
        os.close(fd)  # the server that held it removed it as it stopped, after this opened it: lock the new one
    os.set_inheritable(fd, False)
    _claims[fd] = (path, os.getpid())
    atexit.register(release_port, fd)
    return fd


_claims: dict[int, tuple[str, int]] = {}  # lock file descriptor → its path and the claiming process's id


def _is_at(fd: int, path: str) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not removed or replaced since it was opened)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)


def release_port(fd: int) -> None:
    """Give up a claim of :func:`claim_port`: its lock file is removed while still locked (a claim that opened it
    meanwhile finds it gone and locks a new one), then closed. Runs when the claiming process exits, so stopped
    servers leave no lock files behind; a process killed outright leaves its file, which the next claim reuses."""
    path, pid = _claims.pop(fd, ("", 0))
    if pid != os.getpid():
        return  # released already, or a forked copy of the claimant ending: the claim is not its to give up
    if _is_at(fd, path):
        os.unlink(path)
    os.close(fd)


def exit_on_sigterm() -> None:
    """SIGTERM ends this process as a normal exit (status 0, ``atexit`` handlers run: the port's lock file goes),
    as the supervisor of ``--workers 2`` ends. Uvicorn, serving in this process, finishes the requests in flight on
    SIGTERM and then raises the signal again under the handler it found — without this one the default, which ends
    the process at once and left ``cityhub-serve-UID-PORT.lock`` behind at every stop."""

    def stop(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def stop_when_orphaned(supervisor: int) -> None:
    """End this process (as SIGTERM would: requests in flight finish) once its supervisor is gone, even when
    the supervisor was killed and could not stop it: an orphan would keep the port and serve on, unsupervised."""

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(ORPHAN_CHECK_S)
        log.warning("the supervising process %s is gone; stopping process %s", supervisor, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="cityhub-orphan-watch", daemon=True).start()


def restart_pause(previous: float | None, lived_s: float) -> float:
    """Seconds to wait before replacing a process that ended after ``lived_s`` seconds, the previous replacement of
    its slot having waited ``previous`` (None: the first). One that dies young again waits twice as long, up to
    ``RESTART_PAUSE_MAX_S``, so a start-up error (a bad setting, the database away) is not retried every second
    for ever; one that served a while is replaced after ``RESTART_PAUSE_S``."""
    if previous is None or lived_s >= SHORT_LIFE_S:
        return RESTART_PAUSE_S
    return min(previous * 2, RESTART_PAUSE_MAX_S)


def limit_native_threads() -> None:
    """One thread per native pool (OpenBLAS, OpenMP) in a long-running process, unless the operator sets their
    variables: its requests and jobs already run in threads of their own, on few cores, and pools of native threads
    under them only compete for those cores (and multiply the native code running at once)."""
    if any(os.environ.get(name) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")):
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _run_worker(host: str, port: int, supervisor: int) -> None:
    import uvicorn

    from cityhub.config import configure_logging, log_level

    configure_logging()
    limit_native_threads()
    stop_when_orphaned(supervisor)
    log.info("server process %s serving on %s:%s", os.getpid(), host, port)
    config = uvicorn.Config("cityhub.main:create_app", factory=True, log_level=log_level().lower())
    server = uvicorn.Server(config)
    server.run(sockets=[listening_socket(host, port)])


@dataclass
class _Slot:
    """One supervised process: what makes it, the process running now, and when a dead one is replaced."""

    make: Callable[[], Any]
    process: Any = None
    started: float = 0.0  # monotonic time of the current process's start
    pause: float | None = None  # the last replacement's pause (``restart_pause``)
    restart_at: float | None = None  # set while the process is dead: when its replacement starts

    def start(self, now: float) -> None:
        self.process, self.started, self.restart_at = self.make(), now, None
        self.process.start()


def serve_reuseport(*, host: str, port: int, workers: int, dispatcher: bool = False) -> None:
    """Run ``workers`` server processes on (host, port), and with ``dispatcher`` the background dispatcher's
    process (:mod:`cityhub.dispatch.background`), until SIGINT or SIGTERM."""
    listening_socket(host, port).close()  # fail here, in one line, when the address is taken or not ours
    from cityhub.metrics import metrics_directory

    # With metrics on, the processes' metric files go to a new directory of this supervisor's (named in their
    # PROMETHEUS_MULTIPROC_DIR), so that any of them answers a scrape with every process's HTTP figures summed.
    metrics_dir = metrics_directory(port)
    try:
        _supervise(host=host, port=port, workers=workers, dispatcher=dispatcher, metrics_dir=metrics_dir)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(*, host: str, port: int, workers: int, dispatcher: bool, metrics_dir: str | None) -> None:
    from cityhub.metrics import process_ended

    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def server() -> Any:
        return ctx.Process(target=_run_worker, args=(host, port, os.getpid()), name="cityhub-server")

    def dispatch() -> Any:
        from cityhub.dispatch.background import process_main

        return ctx.Process(target=process_main, args=(os.getpid(),), name="cityhub-dispatcher")

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    slots = [_Slot(kind) for kind in [server] * workers + ([dispatch] if dispatcher else [])]
    for slot in slots:
        slot.start(time.monotonic())
    log.info(
        "serving on %s:%d with %d processes (one listening socket each)%s",
        host,
        port,
        workers,
        " and a background dispatcher" if dispatcher else "",
    )
    while not stopping:
        time.sleep(0.2)
        now = time.monotonic()
        for slot in slots:
            if stopping or slot.process.is_alive():
                continue
            if slot.restart_at is None:
                if metrics_dir is not None:  # its live gauges go (its counts stay in the totals)
                    process_ended(slot.process.pid, metrics_dir)
                slot.pause = restart_pause(slot.pause, now - slot.started)
                slot.restart_at = now + slot.pause
                log.warning(
                    "%s %s ended (exit code %s); starting another in %.0f s",
                    slot.process.name,
                    slot.process.pid,
                    slot.process.exitcode,
                    slot.pause,
                )
            elif now >= slot.restart_at:  # the other slots are watched meanwhile, and a stop is not delayed
                slot.start(now)
    for slot in slots:
        slot.process.terminate()  # uvicorn finishes the requests in flight on SIGTERM; the dispatcher its round
    deadline = time.monotonic() + STOP_TIMEOUT_S  # one wait for all, not one per process
    for slot in slots:
        slot.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if slot.process.is_alive():
            slot.process.kill()
