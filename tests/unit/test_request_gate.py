"""Admission control (api/gate.py): requests beyond the limit wait their turn, none is refused or lost."""

from __future__ import annotations

import asyncio
import contextlib

from cityhub.api.gate import RequestGate


def test_requests_beyond_the_limit_wait_and_all_complete():
    inside = 0
    most = 0
    done: list[int] = []

    async def app(scope, receive, send):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        done.append(scope["n"])

    gate = RequestGate(app, limit=3)

    async def main():
        await asyncio.gather(*(gate({"type": "http", "n": n}, None, None) for n in range(20)))

    asyncio.run(main())
    assert most == 3
    assert sorted(done) == list(range(20))


def test_the_place_is_given_back_when_the_request_fails():
    calls = 0

    async def app(scope, receive, send):
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    gate = RequestGate(app, limit=1)

    async def main():
        for _ in range(3):  # with a lost place the second call would wait for ever
            with contextlib.suppress(RuntimeError):
                await asyncio.wait_for(gate({"type": "http"}, None, None), timeout=5)

    asyncio.run(main())
    assert calls == 3


def test_lifespan_and_websocket_scopes_pass_untouched():
    seen: list[str] = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    gate = RequestGate(app, limit=1)
    asyncio.run(gate({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"] and gate._lanes is None


def test_answers_say_how_long_they_waited_and_ran():
    sent: list[dict] = []

    async def app(scope, receive, send):
        await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message):
        sent.append(message)

    gate = RequestGate(app, limit=1)

    async def main():
        await asyncio.gather(*(gate({"type": "http", "method": "POST"}, None, send) for _ in range(2)))

    asyncio.run(main())
    starts = [dict(m["headers"]) for m in sent if m["type"] == "http.response.start"]
    assert [h[b"content-type"] for h in starts] == [b"text/plain", b"text/plain"]
    timings = [
        {k: float(v) for k, v in (part.strip().split(";dur=") for part in h[b"server-timing"].decode().split(","))}
        for h in starts
    ]
    assert all(t["app"] >= 15 for t in timings)  # the 20 ms the application slept (timer slack allowed)
    waits = sorted(t["gate"] for t in timings)
    assert waits[0] < waits[1] and waits[1] >= 15  # the second waited for the first's place
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == [b"ok", b"ok"]


def test_an_answer_that_waited_long_closes_its_connection():
    """So that the client's next request may land on a less busy server process (GateSettings.http_shed_wait_ms)."""

    async def app(scope, receive, send):
        await asyncio.sleep(0.03)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def answers(shed_wait_ms: float) -> list[dict[bytes, bytes]]:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        gate = RequestGate(app, limit=1, shed_wait_ms=shed_wait_ms)

        async def main():
            await asyncio.gather(*(gate({"type": "http", "method": "POST"}, None, send) for _ in range(2)))

        asyncio.run(main())
        return [dict(m["headers"]) for m in sent if m["type"] == "http.response.start"]

    first, second = answers(10)  # the second waits ~30 ms for the first's place
    assert b"connection" not in first
    assert second[b"connection"] == b"close"
    assert all(b"connection" not in h for h in answers(0))  # 0: never
