"""Security headers (api/headers.py): every answer of the app forbids framing and sniffing and keeps the referrer
on the site; a Content-Security-Policy an answer sets gets ``frame-ancestors 'none'`` added, not replaced."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from cityhub.api.gate import RequestGate
from cityhub.api.headers import HSTS, POLICY, SecurityHeaders, with_security_headers
from cityhub.errors import Overloaded

EXPECTED = {
    "x-frame-options": "DENY",
    "content-security-policy": POLICY.decode(),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/plain")
    def plain() -> PlainTextResponse:
        return PlainTextResponse("hi")

    @app.get("/own")
    def own() -> PlainTextResponse:
        return PlainTextResponse(
            "hi", headers={"Content-Security-Policy": "default-src 'self';", "Referrer-Policy": "no-referrer"}
        )

    app.add_middleware(SecurityHeaders)
    return app


def test_every_answer_carries_the_headers_also_errors_and_missing_routes():
    client = TestClient(_app())
    for path, status in (("/plain", 200), ("/nowhere", 404)):
        response = client.get(path)
        assert response.status_code == status
        assert {k: response.headers.get(k) for k in EXPECTED} == EXPECTED


def test_an_answer_s_own_policy_is_kept_and_completed():
    response = TestClient(_app()).get("/own")
    assert response.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert response.headers["referrer-policy"] == "no-referrer"  # the answer's own choice stands
    assert response.headers["x-frame-options"] == "DENY"


def test_a_policy_that_names_frame_ancestors_is_left_alone_and_nothing_is_doubled():
    headers = [(b"Content-Security-Policy", b"frame-ancestors 'self'"), (b"X-Frame-Options", b"SAMEORIGIN")]
    out = with_security_headers(headers)
    assert out[:2] == headers
    assert sorted(name.lower() for name, _ in out) == sorted(
        [b"content-security-policy", b"x-frame-options", b"x-content-type-options", b"referrer-policy"]
    )


def test_the_gate_s_refusals_carry_them_too():
    async def never(scope, receive, send):  # pragma: no cover - the gate refuses before calling it
        raise AssertionError

    gate = RequestGate(never, limit=1, queue_limit=1)
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def main():
        gate._lane(scope).waiting = 1  # a full queue: the next request is refused without running
        await SecurityHeaders(gate)(scope, None, send)

    asyncio.run(main())
    start = sent[0]
    assert start["status"] == 503 and Overloaded.code.encode() in sent[1]["body"]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert {k: headers.get(k) for k in EXPECTED} == EXPECTED


def test_the_app_puts_them_outside_the_gate():
    from cityhub.main import create_app
    from cityhub.metrics import HttpMetrics

    # The metrics count and time the gate's refusals too, so they sit between the two.
    assert [m.cls for m in create_app().user_middleware][:3] == [SecurityHeaders, HttpMetrics, RequestGate]


def test_an_answer_over_https_tells_the_browser_to_stay_on_https_and_one_over_http_does_not():
    """Behind the TLS proxy (X-Forwarded-Proto: https) no answer carried Strict-Transport-Security: a browser's
    first request of a later visit, typed without https://, went out in clear with the session cookie's site."""
    over_https = TestClient(_app(), base_url="https://cityhub.example").get("/plain")
    assert over_https.headers["strict-transport-security"] == HSTS.decode()
    assert (
        TestClient(_app(), base_url="https://cityhub.example").get("/nowhere").headers["strict-transport-security"]
        == HSTS.decode()
    )
    assert "strict-transport-security" not in TestClient(_app()).get("/plain").headers
    own = [(b"Strict-Transport-Security", b"max-age=60")]
    assert with_security_headers(own, https=True).count((b"Strict-Transport-Security", b"max-age=60")) == 1
    assert not any(
        name.lower() == b"strict-transport-security" for name, _ in with_security_headers(own, https=True)[1:]
    )
