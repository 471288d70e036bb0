"""`cityhub serve` with automatic dispatch in the background: the creating request answers with the order received,
the server's dispatcher process dispatches it, and orders created while that process is down are dispatched once
the supervisor has replaced it. Real processes on a loopback port (SQLite)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import httpx
import psutil
import pytest

from cityhub import migrate
from cityhub.auth.service import create_token
from cityhub.db import reset_engine, session_scope
from cityhub.dispatch import service
from cityhub.dispatch.schemas import RuleCreate
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders.models import Category
from process_helpers import CLI, free_port, wait_until

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")


def _seed(url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A district, the department a high-priority rule sends street-light faults to (without a classifier such a
    rule dispatches on its own), and an admin's API token."""
    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    reset_engine()
    try:
        with session_scope() as s:
            district = Unit(code="S-QU", name="白云区", tier=UnitTier.DISTRICT)
            s.add(district)
            s.flush()
            lights = Unit(code="S-D01", name="区城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
            category = Category(code="C01", name="城乡建设", level=1, path="城乡建设")
            admin = User(username="bg-admin", full_name="管理员", role=Role.ADMIN, unit_id=district.id)
            s.add_all([lights, category, admin])
            s.flush()
            service.create_rule(
                s, data=RuleCreate(name="路灯 → 城管", priority=100, keywords=["路灯"], target_unit_id=lights.id)
            )
            return create_token(s, user_id=admin.id, name="t")[1]
    finally:
        reset_engine()


def _dispatcher(parent: psutil.Process, port: int) -> psutil.Process | None:
    """The supervisor's child that does not listen on the port."""
    for child in parent.children():
        try:
            cmdline = " ".join(child.cmdline())
            if child.status() == psutil.STATUS_ZOMBIE or "spawn_main" not in cmdline:
                continue
            if not any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp")):
                return child
        except psutil.NoSuchProcess:
            pass
    return None


def test_the_server_dispatches_in_the_background_and_survives_a_killed_dispatcher(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'bg.db'}"
    migrate.upgrade(url)
    token = _seed(url, monkeypatch)
    port = free_port()
    env = {**os.environ, "CITYHUB_DATABASE_URL": url, "CITYHUB_DISPATCH_AUTO": "1", "CITYHUB_DISPATCH_POLL_MS": "100"}
    env.pop("CITYHUB_DISPATCH_MODEL_PATH", None)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port)],
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def create(content: str) -> int:
        answer = httpx.post(f"{base}/api/v1/orders", json={"channel": "web", "content": content}, headers=headers)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    def state(order_id: int) -> str:
        return str(httpx.get(f"{base}/api/v1/orders/{order_id}", headers=headers, timeout=10).json()["state"])

    try:
        wait_until(up)
        parent = psutil.Process(proc.pid)
        wait_until(lambda: _dispatcher(parent, port) is not None)
        first = create("小区门口路灯不亮好几天了")
        wait_until(lambda: state(first) == "dispatched", timeout=30)
        trail = httpx.get(f"{base}/api/v1/orders/{first}/events", headers=headers, timeout=10).json()
        assert [e["action"] for e in trail] == ["create", "dispatch"]
        assert trail[1]["actor_name"] == "auto-dispatch"

        dispatcher = _dispatcher(parent, port)
        assert dispatcher is not None and dispatcher.nice() > psutil.Process().nice()  # requests come first
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait(timeout=30)
        second = create("路灯杆倒了")  # while no dispatcher runs (the supervisor waits a second to replace it)
        assert state(second) == "received"
        wait_until(lambda: state(second) == "dispatched", timeout=60)
        assert httpx.get(f"{base}/healthz", timeout=5).json()["dispatch_backlog"]["orders"] == 0
    except AssertionError:
        print(log.read_text())
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
