"""Many simultaneous writes against a real server (uvicorn on a loopback port) on both backends.

Sixty creations sent at the same moment used to fill every worker thread with requests waiting for SQLite's write
lock while the request holding it waited for a free thread to commit: all stalled for the 30-second busy timeout
and ended in 409 "database is locked" or a connection-pool timeout. Every one must now succeed, promptly enough
that the client's own 60-second timeout never fires, with distinct numbers and one order each.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders.models import Order

SIMULTANEOUS = 60
SITES = ["幸福小区", "阳光花园", "滨江路", "人民广场", "第三中学", "农贸市场"]
PROBLEMS = ["路灯不亮", "垃圾堆积", "占道经营", "积水内涝", "违章停车", "噪音扰民", "井盖缺失", "树木倒伏", "漏水"]


@pytest.fixture
def server(live_server: str) -> str:
    return live_server


@pytest.fixture
def token(server):
    with session_scope() as s:
        district = Unit(code="LD-QU", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        operator = User(username="ld-operator", full_name="话务员", role=Role.OPERATOR, unit_id=district.id)
        s.add(operator)
        s.flush()
        return create_token(s, user_id=operator.id, name="load")[1]


def test_sixty_simultaneous_creations_all_succeed(server, token):
    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=SIMULTANEOUS)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=server, headers=headers, limits=limits, timeout=60) as client:
            # Different problems at different places, so that intake's duplicate check merges none of them.
            return await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/orders",
                        json={
                            "channel": "hotline",
                            "external_id": f"load-{n}",
                            "content": f"{SITES[n % 6]}{n}号楼{PROBLEMS[n % 9]}，编号{n * 7919}，请尽快处理",
                            "address": f"{SITES[n % 6]}{n}号",
                        },
                    )
                    for n in range(SIMULTANEOUS)
                )
            )

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [201] * SIMULTANEOUS, {a.text for a in answers if a.status_code != 201}
    numbers = {a.json()["number"] for a in answers}
    assert len(numbers) == SIMULTANEOUS
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == SIMULTANEOUS


def test_reads_go_on_while_writes_queue(server, token):
    headers = {"Authorization": f"Bearer {token}"}

    async def main() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=server, headers=headers, timeout=60) as client:
            writes = [
                client.post("/api/v1/orders", json={"channel": "web", "content": f"{SITES[n % 6]}{PROBLEMS[n % 9]}{n}"})
                for n in range(30)
            ]
            reads = [client.get("/api/v1/orders", params={"limit": 5}) for _ in range(30)]
            done = await asyncio.gather(*writes, *reads)
            return list(done[:30]), list(done[30:])

    writes, reads = asyncio.run(main())
    assert [w.status_code for w in writes] == [201] * 30, {w.text for w in writes if w.status_code != 201}
    assert [r.status_code for r in reads] == [200] * 30


def test_sixty_simultaneous_writes_that_commit_after_the_route_all_succeed(server, token):
    """Most write routes leave the commit to the session dependency, a step of its own after the route; the
    admission gate keeps a worker thread free for it while the other writers wait for the write lock."""
    headers = {"Authorization": f"Bearer {token}"}
    # Revoking one's tokens is such a write (making them from a token needs the account's password: test_auth.py).
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.username == "ld-operator")).one()
        spare = [create_token(s, user_id=user_id, name=f"t{n}")[0].id for n in range(SIMULTANEOUS)]

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=SIMULTANEOUS)
        async with httpx.AsyncClient(base_url=server, headers=headers, limits=limits, timeout=60) as client:
            return await asyncio.gather(*(client.delete(f"/api/v1/auth/tokens/{token_id}") for token_id in spare))

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [204] * SIMULTANEOUS, {a.text for a in answers if a.status_code != 204}


def test_a_fresh_token_used_by_many_at_once_marks_its_last_use_without_deadlock(server, token):
    """Every simultaneous first request finds the token's last-use mark empty: none may hold its row for the rest of
    the request (they would deadlock on PostgreSQL with the order-number counter), and the mark is written."""

    async def main() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=server, headers=headers, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/orders", json={"channel": "web", "content": f"{SITES[n % 6]}{PROBLEMS[n % 9]}"}
                    )
                    for n in range(20)
                )
            )

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [201] * 20, {a.text for a in answers if a.status_code != 201}
    from cityhub.auth.models import ApiToken

    with session_scope() as s:
        assert s.scalar(select(ApiToken.last_used_at)) is not None
