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

On SIGHUP it replaces them one after the other without refusing a connection (:class:`_Reload`): each server process
is replaced by a new one — new code and settings — that takes over its listening socket, the old one stopping only
once the new one says it is ready, the dispatcher last. The supervisor binds each server process's socket and keeps
it (the process gets a copy, and listens on it): a socket closed with connections in its queue not yet accepted
resets them, so the replaced process and its replacement share the one socket, and its queue is never dropped. The
socket of a process that died is closed (new connections then go to the others) and its replacement gets a new one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0  # between the unexpected end of a process and its replacement …
RESTART_PAUSE_MAX_S = 30.0  # … doubled up to this while replacements keep dying young (a start-up error)
SHORT_LIFE_S = 10.0  # a process that ended sooner than this after its start "died young"
STOP_TIMEOUT_S = 30.0  # for all processes together to stop on SIGTERM before they are killed
READY_TIMEOUT_S = 120.0  # for a reload's new process to say it is ready before it is killed and the old one kept
ACCEPTED_GRACE_S = 0.5  # a stopping server process waits this long for the request of a connection it accepted last
ORPHAN_CHECK_S = 1.0  # how often a server process checks that its supervisor is still there


def server_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), which other processes may bind too (``SO_REUSEPORT``), not listening yet:
    the server process's uvicorn listens on it as it starts accepting. The kernel gives a socket new connections
    from the moment it listens, so one made by the supervisor and listening at once would hold those it was given
    for as long as its process takes to start (seconds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
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
    either listens. The supervisor binds its server processes' sockets, and a new one for the replacement of one
    that died, without asking. First of all a trial bind refuses, as ``CannotListen`` naming the address, what no
    server could listen on: a host that does not resolve or is not this machine's, a port the user may not bind."""
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


def ignore_reload_signal() -> None:
    """``cityhub serve`` running uvicorn itself, without the supervisor (one process and no dispatcher beside it, or
    a platform without ``SO_REUSEPORT``): nothing could replace the process, so SIGHUP — whose default would end the
    server at once — is logged and ignored."""
    if not hasattr(signal, "SIGHUP"):
        return

    def hangup(_signum: int, _frame: Any) -> None:
        log.warning(
            "SIGHUP ignored: no reload without the supervisor, which runs with --workers 2 or more or the background "
            "dispatcher, where the platform has SO_REUSEPORT; restart the server to load new code or settings"
        )

    signal.signal(signal.SIGHUP, hangup)


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


def start_problem() -> str | None:
    """Why a server process must not start here, in one line (None: it may): an invalid setting (``.env`` is read
    anew by each process), a database its code was not written for. ``cityhub serve`` asks before it starts anything;
    each process it starts asks again, so that a reload with a broken setting or before ``cityhub db upgrade`` ends
    the new process at once, saying why, and leaves the old one serving."""
    from cityhub import migrate
    from cityhub.config_cli import InvalidSettings, effective_settings

    try:
        effective_settings()
    except InvalidSettings as exc:
        return f"invalid settings: {exc}"
    return migrate.open_problem() or migrate.schema_problem()


def _start_or_exit(what: str) -> None:
    """The start of every supervised process: logging, SIGHUP left to the supervisor, and :func:`start_problem`
    (logged, exit status 2, as ``cityhub serve`` itself refuses)."""
    from cityhub.config import configure_logging

    configure_logging()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor's (a reload), even sent to the process group
    problem = start_problem()
    if problem is not None:
        log.error("%s %s cannot start: %s", what, os.getpid(), problem)
        raise SystemExit(2)


def _run_worker(host: str, port: int, supervisor: int, sock: socket.socket, ready: Connection) -> None:
    import uvicorn

    from cityhub.config import log_level, uvicorn_log_config

    _start_or_exit("server process")
    limit_native_threads()
    stop_when_orphaned(supervisor)
    log.info("server process %s serving on %s:%s", os.getpid(), host, port)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:  # the application started, the socket is being accepted on
                _say_ready(ready)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn stops accepting and at once closes every connection that has not sent a request yet: one it
            # accepted a moment ago, whose request is on its way, would end unanswered. Accept no more, then give
            # those their time (a reload's replacement, accepting on the same socket, takes the new ones).
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            await asyncio.sleep(ACCEPTED_GRACE_S)
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(
        "cityhub.main:create_app", factory=True, log_level=log_level().lower(), log_config=uvicorn_log_config()
    )
    Server(config).run(sockets=[sock])


def _run_dispatcher(supervisor: int, ready: Connection) -> None:
    from cityhub.dispatch.background import process_main

    _start_or_exit("dispatcher")
    process_main(supervisor, ready=lambda: _say_ready(ready))


def _say_ready(ready: Connection) -> None:
    """Tell the supervisor this process is ready (heard only when a reload waits for it)."""
    with contextlib.suppress(OSError):  # a start not waited for: the supervisor closed its end
        ready.send(os.getpid())
    ready.close()


@dataclass
class _Slot:
    """One supervised process: what makes it, the process running now, and when a dead one is replaced. A server
    process's slot keeps its listening socket (``listen``: the address) across replacements by a reload."""

    make: Callable[[socket.socket | None, Connection], Any]
    listen: tuple[str, int] | None = None
    sock: socket.socket | None = None
    process: Any = None
    started: float = 0.0  # monotonic time of the current process's start
    pause: float | None = None  # the last replacement's pause (``restart_pause``)
    restart_at: float | None = None  # set while the process is dead: when its replacement starts

    def launch(self) -> tuple[Any, Connection]:
        """A new process of this slot, started (the current one, if any, left as it is), and the pipe on which it
        says it is ready (or ends: EOF)."""
        if self.listen is not None and self.sock is None:
            self.sock = server_socket(*self.listen)
        reader, writer = multiprocessing.get_context("spawn").Pipe(duplex=False)
        process = self.make(self.sock, writer)
        process.start()
        writer.close()  # the new process's copy is the only one: its end is EOF here
        return process, reader

    def start(self, now: float) -> None:
        self.process, ready = self.launch()
        ready.close()  # a replacement after a death is not waited for
        self.started, self.restart_at = now, None

    def died(self) -> None:
        """Its process ended unexpectedly: new connections go to the others' sockets until the replacement's."""
        if self.sock is not None:
            self.sock.close()  # connections waiting in its queue are reset, as when the process closed it itself
            self.sock = None


def _name(process: Any) -> str:
    return f"{process.name} {process.pid}"


@dataclass
class _Reload:
    """A reload on SIGHUP, one process at a time, advanced by :meth:`step` in the supervisor's loop (which goes on
    watching the others and stopping on SIGTERM): start the slot's new process; once it says it is ready, stop the
    old one gracefully (SIGTERM: its requests in flight finish) and wait for it to end; then the next slot. A new
    process that ends or is not ready within ``READY_TIMEOUT_S`` is killed and the reload stops there, the old
    process serving on."""

    todo: list[_Slot]
    metrics_dir: str | None
    slot: _Slot | None = None  # the slot whose new process is starting
    new: Any = None
    ready: Connection | None = None
    ready_by: float = 0.0
    old: Any = None  # the replaced process, stopping
    stopped_by: float = 0.0
    done: list[str] = field(default_factory=list)  # the new processes that took over

    def processes(self) -> list[Any]:
        return [p for p in (self.new, self.old) if p is not None]

    def starting(self, slot: _Slot) -> bool:
        return slot is self.slot

    def step(self, now: float) -> bool:
        """Advance; False once the reload has ended (done or stopped)."""
        from cityhub.metrics import process_ended

        if self.old is not None:
            if self.old.is_alive() and now < self.stopped_by:
                return True
            if self.old.is_alive():
                self.old.kill()
                log.warning("reload: %s did not stop within %.0f s; killed", _name(self.old), STOP_TIMEOUT_S)
            self.old.join()
            if self.metrics_dir is not None:
                process_ended(self.old.pid, self.metrics_dir)
            log.info("reload: %s stopped", _name(self.old))
            self.old = None
        if self.slot is not None:
            return self._starting(now)
        if not self.todo:
            log.info("reload done: every process replaced (now %s)", ", ".join(self.done))
            return False
        self.slot = self.todo.pop(0)
        try:
            self.new, self.ready = self.slot.launch()
        except OSError as exc:  # no socket or no process to be had
            self.slot = None
            log.error("reload stopped: cannot start a new process (%s); the processes serve on as they were", exc)
            return False
        self.ready_by = now + READY_TIMEOUT_S
        log.info("reload: started %s to replace %s", _name(self.new), self.slot.process.pid)
        return True

    def _starting(self, now: float) -> bool:
        assert self.slot is not None and self.ready is not None
        slot, new, old = self.slot, self.new, self.slot.process
        said = self.ready.poll()
        ready = False
        if said:
            try:
                self.ready.recv()
                ready = True
            except EOFError:  # it ended before it was ready
                pass
        if not ready and not said and now < self.ready_by:
            return True
        self.ready.close()
        self.slot = self.new = self.ready = None
        if not ready:
            if said:  # its end of the pipe closed as it exits: its own exit code, not the kill's
                new.join(timeout=5.0)
            new.kill()
            new.join()
            why = (
                f"ended (exit code {new.exitcode}) before it was ready"
                if said
                else f"was not ready within {READY_TIMEOUT_S:.0f} s (killed)"
            )
            log.error(
                "reload stopped: the new %s %s; %s serves on, and the processes after it as they were (the lines "
                "above say why; mend it and send SIGHUP again)",
                _name(new),
                why,
                old.pid,
            )
            return False
        slot.process, slot.started, slot.pause, slot.restart_at = new, now, None, None
        self.old, self.stopped_by = old, now + STOP_TIMEOUT_S
        old.terminate()  # uvicorn finishes the requests in flight; the dispatcher its round
        log.info("reload: %s is ready; stopping %s", _name(new), old.pid)
        self.done.append(_name(new))
        return True


def serve_reuseport(*, host: str, port: int, workers: int, dispatcher: bool = False) -> None:
    """Run ``workers`` server processes on (host, port), and with ``dispatcher`` the background dispatcher's
    process (:mod:`cityhub.dispatch.background`), until SIGINT or SIGTERM; SIGHUP replaces them (:class:`_Reload`)."""
    server_socket(host, port).close()  # fail here, in one line, when the address is taken or not ours
    metrics = _MetricsDirectory(port)
    metrics.make()
    try:
        _supervise(host=host, port=port, workers=workers, dispatcher=dispatcher, metrics=metrics)
    finally:
        if metrics.path is not None:
            shutil.rmtree(metrics.path, ignore_errors=True)


@dataclass
class _MetricsDirectory:
    """With metrics on, the processes' metric files go to a new directory of this supervisor's (named in their
    PROMETHEUS_MULTIPROC_DIR), so that any of them answers a scrape with every process's HTTP figures summed. Made at
    start, or by the first reload that finds CITYHUB_METRICS_ENABLED turned on in `.env` (before its first new
    process: without it each new process would answer with its own figures alone); removed when the supervisor
    stops."""

    port: int
    path: str | None = None

    def make(self) -> str | None:
        from pydantic import ValidationError

        from cityhub.metrics import metrics_directory

        if self.path is None:
            # An invalid `.env` at a reload: each new process refuses it, naming it.
            with contextlib.suppress(ValidationError):
                self.path = metrics_directory(self.port)
        return self.path


def _supervise(*, host: str, port: int, workers: int, dispatcher: bool, metrics: _MetricsDirectory) -> None:
    from cityhub.metrics import process_ended

    ctx = multiprocessing.get_context("spawn")
    stopping, hangups = False, 0
    supervisor = os.getpid()

    def server(sock: socket.socket | None, ready: Connection) -> Any:
        args = (host, port, supervisor, sock, ready)
        return ctx.Process(target=_run_worker, args=args, name="cityhub-server")

    def dispatch(_sock: socket.socket | None, ready: Connection) -> Any:
        return ctx.Process(target=_run_dispatcher, args=(supervisor, ready), name="cityhub-dispatcher")

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    def hangup(_signum: int, _frame: Any) -> None:
        nonlocal hangups
        hangups += 1

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, hangup)
    slots = [_Slot(server, (host, port)) for _ in range(workers)] + ([_Slot(dispatch)] if dispatcher else [])
    for slot in slots:
        slot.start(time.monotonic())
    log.info(
        "serving on %s:%d with %d processes (one listening socket each)%s; SIGHUP replaces them one by one",
        host,
        port,
        workers,
        " and a background dispatcher" if dispatcher else "",
    )
    reload: _Reload | None = None
    queued = False
    while not stopping:
        time.sleep(0.2)
        now = time.monotonic()
        if hangups:
            hangups = 0
            if reload is None:
                queued = True
            elif not queued:
                queued = True
                log.info("SIGHUP during a reload: another reload follows this one")
        if reload is None and queued:
            queued = False
            log.info(
                "SIGHUP: replacing the %d processes one by one%s",
                len(slots),
                ", the dispatcher last" if dispatcher else "",
            )
            reload = _Reload(list(slots), metrics.make())  # `.env` read anew, as the new processes will
        if reload is not None and not reload.step(now):
            reload = None
        for slot in slots:
            if stopping or slot.process.is_alive() or (reload is not None and reload.starting(slot)):
                continue  # a slot whose new process is starting: that process takes over, or the reload stops
            if slot.restart_at is None:
                slot.died()
                if metrics.path is not None:  # its live gauges go (its counts stay in the totals)
                    process_ended(slot.process.pid, metrics.path)
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
                try:
                    slot.start(now)
                except OSError as exc:  # no socket or no process to be had
                    slot.restart_at = now + RESTART_PAUSE_MAX_S
                    log.error(
                        "cannot start another %s (%s); trying again in %.0f s",
                        slot.process.name,
                        exc,
                        RESTART_PAUSE_MAX_S,
                    )
    processes = [slot.process for slot in slots] + (reload.processes() if reload is not None else [])
    for process in processes:
        process.terminate()  # uvicorn finishes the requests in flight on SIGTERM; the dispatcher its round
    for slot in slots:
        if slot.sock is not None:
            slot.sock.close()  # once the processes have closed theirs, connections are refused
    deadline = time.monotonic() + STOP_TIMEOUT_S  # one wait for all, not one per process
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
