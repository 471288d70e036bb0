"""Two people act on the same order with the same version at the same moment, against a real server (uvicorn on
a loopback port) on both backends: exactly one 200, one 409, and one audit event."""

from __future__ import annotations

import threading

import httpx
import pytest

from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import service
from cityhub.workorders.schemas import OrderCreate


@pytest.fixture
def server(live_server: str) -> str:
    return live_server


@pytest.mark.parametrize("rounds", [3])
def test_same_version_at_once_gives_one_success_and_one_conflict(server, rounds):
    with session_scope() as s:
        district = Unit(code="CC-QU", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        people = [
            User(username=f"sup{i}", full_name=f"督办员{i}", role=Role.SUPERVISOR, unit_id=district.id) for i in (1, 2)
        ]
        s.add_all(people)
        s.flush()
        tokens = [create_token(s, user_id=u.id, name="t")[1] for u in people]
        unit = Unit(code="CC-D1", name="城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
        s.add(unit)
        s.flush()
        orders = []
        for _ in range(rounds):
            order, _ = service.create_order(s, data=OrderCreate(channel="web", content="占道经营"))
            service.act(s, order_id=order.id, action="dispatch", params={"unit_id": unit.id})
            orders.append((order.id, order.version))

    clients = [httpx.Client(base_url=server, headers={"Authorization": f"Bearer {t}"}, timeout=60) for t in tokens]
    try:
        for c in clients:  # the first call of a token records its use; keep that write out of the race
            assert c.get("/api/v1/auth/me").status_code == 200
        for order_id, version in orders:
            barrier = threading.Barrier(2)
            results: list[httpx.Response] = []

            def urge(
                c: httpx.Client, order_id: int = order_id, version: int = version, barrier=barrier, results=results
            ) -> None:
                barrier.wait()
                results.append(
                    c.post(f"/api/v1/orders/{order_id}/actions/urge", json={"version": version, "reason": "请尽快处理"})
                )

            threads = [threading.Thread(target=urge, args=(c,)) for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
            conflict = next(r for r in results if r.status_code == 409).json()
            assert set(conflict) == {"code", "message", "details"} and conflict["code"] == "conflict"
            winner = next(r for r in results if r.status_code == 200).json()
            assert winner["version"] == version + 1 and winner["urge_count"] == 1

            events = clients[0].get(f"/api/v1/orders/{order_id}/events").json()
            urges = [e for e in events if e["action"] == "urge"]
            assert len(urges) == 1 and urges[0]["actor_name"] in {"督办员1", "督办员2"}
    finally:
        for c in clients:
            c.close()
