"""The HTTP figures of /metrics (cityhub.metrics.HttpMetrics): the admission gate's refusals are counted by lane and
as answers of their own route, ``(refused)``, never under a path."""

from __future__ import annotations

import asyncio

import pytest

from cityhub.api.gate import RequestGate
from cityhub.metrics import REFUSED, REQUESTS, HttpMetrics


def _held_app(release: asyncio.Event):
    async def app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"created"})

    return app


async def _send(message):
    pass


def test_the_gates_refusals_are_counted_by_lane_and_as_refused_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_METRICS_ENABLED", "true")
    release = asyncio.Event()
    app = HttpMetrics(RequestGate(_held_app(release), limit=1, queue_limit=1, queue_timeout_ms=0))
    refused_before = REFUSED.labels("write")._value.get()
    answers_before = REQUESTS.labels("POST", "(refused)", "5xx")._value.get()
    created_before = REQUESTS.labels("POST", "(unmatched)", "2xx")._value.get()

    async def main():
        path = "/api/v1/orders/123/actions"
        calls = [
            asyncio.create_task(app({"type": "http", "method": "POST", "path": path}, None, _send)) for _ in range(3)
        ]
        await asyncio.wait_for(calls[2], timeout=5)  # one inside, one waiting: the third is refused at once
        release.set()
        await asyncio.wait_for(asyncio.gather(*calls), timeout=5)

    asyncio.run(main())
    assert REFUSED.labels("write")._value.get() - refused_before == 1
    assert REQUESTS.labels("POST", "(refused)", "5xx")._value.get() - answers_before == 1
    # The two that ran had no router to name their route here: counted as unmatched, not under their path.
    assert REQUESTS.labels("POST", "(unmatched)", "2xx")._value.get() - created_before == 2
    series = {s.labels["route"] for metric in REQUESTS.collect() for s in metric.samples}
    assert not any("123" in route for route in series)


def test_with_metrics_off_nothing_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYHUB_METRICS_ENABLED", raising=False)
    release = asyncio.Event()
    release.set()
    app = HttpMetrics(_held_app(release))
    before = REQUESTS.labels("GET", "(unmatched)", "2xx")._value.get()
    asyncio.run(app({"type": "http", "method": "GET", "path": "/x"}, None, _send))
    assert REQUESTS.labels("GET", "(unmatched)", "2xx")._value.get() == before
