"""Admission control (api/gate.py): requests beyond the limit wait their turn, none is lost; a full or slow queue
refuses with 503 and Retry-After before running anything."""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.responses import Response

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


class _Recorder:
    """An ASGI ``send`` keeping the status, headers and body of each answer, by request number."""

    def __init__(self) -> None:
        self.answers: dict[int, dict] = {}

    def for_request(self, n: int):
        async def send(message):
            answer = self.answers.setdefault(n, {"body": b""})
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {k.lower(): v for k, v in message["headers"]}
            else:
                answer["body"] += message.get("body", b"")

        return send


def _held_app(release: asyncio.Event, ran: list[int]):
    async def app(scope, receive, send):
        ran.append(scope["n"])
        await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"created"})

    return app


def test_a_full_queue_refuses_at_once_with_503_and_retry_after():
    release = asyncio.Event()
    ran: list[int] = []
    recorder = _Recorder()
    gate = RequestGate(_held_app(release, ran), limit=1, queue_limit=2, queue_timeout_ms=0)

    async def main():
        calls = [
            asyncio.create_task(gate({"type": "http", "method": "POST", "n": n}, None, recorder.for_request(n)))
            for n in range(4)
        ]
        await asyncio.wait_for(calls[3], timeout=5)  # one inside, two waiting: the fourth is answered at once
        assert not any(c.done() for c in calls[:3])
        release.set()
        await asyncio.wait_for(asyncio.gather(*calls), timeout=5)

    asyncio.run(main())
    assert sorted(ran) == [0, 1, 2]  # the refused request never reached the application
    refused = recorder.answers[3]
    assert refused["status"] == 503
    assert int(refused["headers"][b"retry-after"]) >= 1
    assert refused["headers"][b"connection"] == b"close"
    body = json.loads(refused["body"])
    assert body["code"] == "overloaded"
    assert body["details"] == {"lane": "write", "waiting": 2, "retry_after": int(refused["headers"][b"retry-after"])}
    assert "2 requests are waiting" in body["message"] and "retry after" in body["message"]
    assert [recorder.answers[n]["status"] for n in range(3)] == [201, 201, 201]


def test_a_request_that_waits_too_long_is_refused_and_its_place_is_not_lost():
    release = asyncio.Event()
    ran: list[int] = []
    recorder = _Recorder()
    gate = RequestGate(_held_app(release, ran), limit=1, queue_limit=0, queue_timeout_ms=50)

    async def main():
        first = asyncio.create_task(gate({"type": "http", "method": "POST", "n": 0}, None, recorder.for_request(0)))
        await asyncio.sleep(0)
        # Ten requests give up waiting while the first holds the only place.
        await asyncio.wait_for(
            asyncio.gather(
                *(gate({"type": "http", "method": "POST", "n": n}, None, recorder.for_request(n)) for n in range(1, 11))
            ),
            timeout=5,
        )
        release.set()
        await first
        # The place came back once, not once per timed-out waiter: later requests still take turns, one at a time.
        inside = most = 0

        async def counting(scope, receive, send):
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.005)
            inside -= 1
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        gate.app = counting
        gate.queue_timeout_s = None  # ten turns of 5 ms outlast the 50 ms time-out on a busy machine
        await asyncio.gather(
            *(gate({"type": "http", "method": "POST", "n": n}, None, recorder.for_request(n)) for n in range(11, 21))
        )
        return most

    most = asyncio.run(main())
    assert ran == [0]
    assert [recorder.answers[n]["status"] for n in range(1, 11)] == [503] * 10
    assert "no place was free" in json.loads(recorder.answers[1]["body"])["message"]
    assert recorder.answers[0]["status"] == 201
    assert [recorder.answers[n]["status"] for n in range(11, 21)] == [200] * 10
    assert most == 1


def test_retry_after_follows_the_time_requests_take_inside():
    async def app(scope, receive, send):
        await asyncio.sleep(scope["seconds"])

    gate = RequestGate(app, limit=2, queue_limit=0, queue_timeout_ms=0)

    async def run(seconds: float, n: int) -> None:
        await asyncio.gather(
            *(gate({"type": "http", "method": "POST", "seconds": seconds}, None, None) for _ in range(n))
        )

    async def main() -> tuple[int, int]:
        await run(0.0, 40)
        lane = gate._lanes["write"]
        lane.waiting = 100
        quick = lane.retry_after()
        lane.waiting = 0
        await run(0.05, 40)
        lane.waiting = 100
        return quick, lane.retry_after()

    quick, slow = asyncio.run(main())
    lane = gate._lanes["write"]
    assert quick == 1 and slow > quick  # 100 waiting × ~0.05 s / 2 places
    lane.waiting = 10**6
    assert lane.retry_after() == 120  # capped


def test_the_refusal_hook_answers_where_it_wants_to_and_the_json_body_elsewhere():
    release = asyncio.Event()
    refusals: list[tuple[str, int]] = []

    def refusal(scope, refused):
        refusals.append((scope["path"], refused.retry_after))
        if scope["path"].startswith("/api/"):
            return None
        return Response("<p>busy</p>", status_code=503, media_type="text/html")

    recorder = _Recorder()
    gate = RequestGate(_held_app(release, []), read_limit=1, queue_limit=1, queue_timeout_ms=0, refusal=refusal)
    paths = ["/orders", "/orders", "/orders", "/api/v1/orders"]  # holds the place, waits, refused, refused

    async def main():
        calls = [
            asyncio.create_task(
                gate({"type": "http", "method": "GET", "path": p, "n": n}, None, recorder.for_request(n))
            )
            for n, p in enumerate(paths)
        ]
        await asyncio.wait_for(asyncio.gather(*calls[2:]), timeout=5)
        release.set()
        await asyncio.gather(*calls)

    asyncio.run(main())
    assert [p for p, _ in refusals] == ["/orders", "/api/v1/orders"]
    page, api = recorder.answers[2], recorder.answers[3]
    assert page["body"] == b"<p>busy</p>" and page["headers"][b"retry-after"] == str(refusals[0][1]).encode()
    assert api["status"] == 503 and json.loads(api["body"])["details"]["lane"] == "read"
    assert api["headers"][b"retry-after"] == str(refusals[1][1]).encode()


def test_health_probes_do_not_wait_behind_a_full_read_lane():
    release = asyncio.Event()
    ran: list[int] = []
    recorder = _Recorder()
    gate = RequestGate(_held_app(release, ran), read_limit=1, queue_limit=1, queue_timeout_ms=0)
    paths = ["/orders", "/orders", "/orders", "/healthz"]  # holds the read place, waits, refused; the probe runs

    async def main():
        calls = [
            asyncio.create_task(
                gate({"type": "http", "method": "GET", "path": p, "n": n}, None, recorder.for_request(n))
            )
            for n, p in enumerate(paths)
        ]
        await asyncio.wait_for(calls[2], timeout=5)
        for _ in range(100):
            if 3 in ran:
                break
            await asyncio.sleep(0.01)
        assert ran == [0, 3]  # the probe is inside while the second read still waits for the read lane
        release.set()
        await asyncio.gather(*calls)

    asyncio.run(main())
    assert recorder.answers[2]["status"] == 503
    assert [recorder.answers[n]["status"] for n in (0, 1, 3)] == [201, 201, 201]
