"""The API's cap on a request's body (``CITYHUB_HTTP_MAX_BODY_MB``, :mod:`cityhub.api.bodylimit`): a body past it
is answered 413 after the caller's credential, nothing of it kept, and — over a real server — not read."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app_helpers import shared_app
from cityhub.api.gate import get_gate_settings
from cityhub.auth.service import create_token
from cityhub.db import reset_engine, session_scope
from cityhub.org.models import Role, User
from cityhub.workorders.models import Order

CAP_MB = 0.01  # 10,485 bytes
CAP = int(CAP_MB * 1024 * 1024)


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CITYHUB_HTTP_MAX_BODY_MB", str(CAP_MB))
    get_gate_settings.cache_clear()
    yield
    monkeypatch.delenv("CITYHUB_HTTP_MAX_BODY_MB")
    get_gate_settings.cache_clear()


@pytest.fixture
def token(app_db: str) -> str:
    reset_engine()
    with session_scope() as s:
        user = User(username="cap-operator", full_name="接线员", role=Role.OPERATOR)
        s.add(user)
        s.flush()
        return create_token(s, user_id=user.id, name="t")[1]


def _appeal(size: int) -> dict[str, Any]:
    return {"channel": "web", "title": "路灯不亮", "content": "路灯" * (size // 6)}


def _orders() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Order)) or 0)


def test_a_body_past_the_cap_is_413_after_the_credential_and_nothing_is_kept(capped: None, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        assert client.post("/api/v1/orders", json=_appeal(CAP // 2), headers=auth).status_code == 201
        big = _appeal(2 * CAP)
        # Who may call answers first, as for any other problem of a request.
        assert client.post("/api/v1/orders", json=big).status_code == 401
        assert client.post("/api/v1/orders", json=big, headers={"Authorization": "Bearer wrong"}).status_code == 401
        refused = client.post("/api/v1/orders", json=big, headers=auth)
        assert refused.status_code == 413, refused.text
        body = refused.json()
        assert body["code"] == "payload_too_large"
        assert body["message"] == (
            f"the body is larger than {CAP} bytes (CITYHUB_HTTP_MAX_BODY_MB); send fewer items per request"
        )
        assert body["details"] == {"limit_bytes": CAP}
        assert refused.headers["connection"] == "close"  # the unread rest is not taken for a next request

        # A body sent in chunks, without its length: read to one byte past the cap, no further.
        def chunks(data: bytes) -> Iterator[bytes]:
            yield from (data[i : i + 1000] for i in range(0, len(data), 1000))

        import json

        small = json.dumps(_appeal(CAP // 2), ensure_ascii=False).encode()
        large = json.dumps(big, ensure_ascii=False).encode()
        as_json = {**auth, "Content-Type": "application/json"}
        assert client.post("/api/v1/orders", content=chunks(small), headers=as_json).status_code == 201
        assert client.post("/api/v1/orders", content=chunks(large), headers=as_json).status_code == 413
    assert _orders() == 2


def test_the_cap_leaves_uploads_and_the_pages_to_their_own_limits(capped: None, token: str) -> None:
    """An import's file is a multipart upload (it streams to disk, under the import's own limits); past the API's
    cap it is read all the same."""
    rows = "id,title,content,created_at,category\n" + "".join(
        f"c{i},路灯不亮,{'路灯不亮' * 20},2026-11-02 09:00:00,城乡建设\n" for i in range(200)
    )
    assert len(rows.encode()) > CAP
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        answer = client.post(
            "/api/v1/import",
            files={"file": ("orders.csv", rows.encode(), "text/csv")},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code != 413, answer.text


def test_a_real_server_answers_a_declared_huge_body_without_reading_it(
    capped: None, token: str, live_server: str
) -> None:
    """A body declared at 1 GiB: the answer comes at once, having read none of it, and the connection is closed."""
    where = urlsplit(live_server)
    head = (
        "POST /api/v1/orders HTTP/1.1\r\n"
        f"Host: {where.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {1 << 30}\r\n\r\n"
    )
    with socket.create_connection((where.hostname, where.port), timeout=20) as conn:
        conn.sendall(head.encode() + b'{"channel": "web", "title": "')
        received = b""
        while chunk := conn.recv(65536):  # ends when the server closes the connection
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 "), received[:300]
    assert b"payload_too_large" in rest
    assert b"connection: close" in rest.lower()
