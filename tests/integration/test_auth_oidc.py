"""OIDC single sign-on against a small identity provider that the test starts on 127.0.0.1 (discovery, JWKS,
authorize, token with PKCE, userinfo; RS256 ID tokens from a generated key)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from app_helpers import shared_app
from cityhub.auditlog import LogEntry
from cityhub.db import reset_engine, session_scope
from cityhub.org.models import Role, Unit, UnitTier, User
from process_helpers import free_port

CLIENT_ID = "cityhub-test"
CLIENT_SECRET = "s3cret-for-tests"


class Provider:
    """A minimal OpenID provider: it signs in whoever ``next_user`` names."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.next_user: dict[str, Any] = {}
        self.issuer = ""
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize")
        def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                raise HTTPException(400, "bad client or response type")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": q.get("nonce"),
                "challenge": q.get("code_challenge"),
                "redirect_uri": q["redirect_uri"],
                "user": dict(self.next_user),
            }
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

        @app.post("/token")
        async def token(request: Request) -> dict[str, Any]:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            grant_type, code = form.get("grant_type"), form.get("code", "")
            redirect_uri, code_verifier = form.get("redirect_uri"), form.get("code_verifier", "")
            authorization = request.headers.get("authorization", "")
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            grant = self.codes.pop(code, None)
            if authorization != expected or grant_type != "authorization_code" or grant is None:
                raise HTTPException(400, "invalid_grant")
            digest = hashlib.sha256(code_verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                raise HTTPException(400, "PKCE verification failed")
            if redirect_uri != grant["redirect_uri"]:
                raise HTTPException(400, "redirect_uri mismatch")
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                **grant["user"],
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
            return {"access_token": "at-" + code, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

        @app.get("/userinfo")
        def userinfo() -> dict[str, Any]:
            return dict(self.next_user)

        return app


@pytest.fixture(scope="module")
def provider():
    idp = Provider()
    port = free_port()
    idp.issuer = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(idp.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "provider did not start"
        time.sleep(0.02)
    yield idp
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def client(app_db, provider, monkeypatch):
    monkeypatch.setenv("CITYHUB_OIDC_ISSUER", provider.issuer)
    monkeypatch.setenv("CITYHUB_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CITYHUB_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")
    reset_engine()
    with session_scope() as s:
        street = Unit(code="SSO-S1", name="景泰街道", tier=UnitTier.STREET)
        s.add(street)
        s.flush()
        s.add(User(username="handler1", full_name="李承办", role=Role.HANDLER, unit_id=street.id))
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        yield c


def _sign_in(client: TestClient, provider: Provider, claims: dict[str, Any]) -> httpx.Response:
    provider.next_user = claims
    start = client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    assert start.status_code == 302, start.text
    authorize_url = start.headers["location"]
    assert authorize_url.startswith(provider.issuer + "/authorize?")
    assert "code_challenge" in parse_qs(urlparse(authorize_url).query)
    back = httpx.get(authorize_url, follow_redirects=False)  # the browser's visit to the provider
    assert back.status_code == 302
    callback = urlparse(back.headers["location"])
    return client.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def test_sign_on_matches_an_existing_account_and_opens_a_session(client, provider):
    done = _sign_in(client, provider, {"sub": "u-1", "preferred_username": "handler1", "name": "李承办"})
    assert done.status_code == 303, done.text
    me = client.get("/api/v1/auth/me").json()
    assert me["username"] == "handler1" and me["role"] == "handler" and me["auth_method"] == "session"
    assert client.cookies.get("cityhub_csrf")


def test_an_account_is_bound_to_the_identity_that_first_signed_on_as_it(client, provider):
    from typer.testing import CliRunner

    from cityhub.auth.cli import app as users_cli

    first = _sign_in(client, provider, {"sub": "u-1", "preferred_username": "handler1"})
    assert first.status_code == 303, first.text
    with session_scope() as s:
        bound = s.scalar(select(User.sso_identity).where(User.username == "handler1"))
    assert bound == f"{provider.issuer} u-1"
    client.cookies.clear()
    # Another person of the provider renamed to handler1 is not handler1.
    taken = _sign_in(client, provider, {"sub": "u-evil", "preferred_username": "handler1"})
    assert taken.status_code == 403 and "bound to another sign-on identity" in taken.json()["message"]
    assert client.get("/api/v1/auth/me").status_code == 401
    # The bound person keeps the account whatever username the provider now sends.
    renamed = _sign_in(client, provider, {"sub": "u-1", "preferred_username": "li.chengban"})
    assert renamed.status_code == 303 and client.get("/api/v1/auth/me").json()["username"] == "handler1"
    client.cookies.clear()
    # An administrator releases the account (the person's provider account was replaced); the next sign-on binds it.
    released = CliRunner().invoke(users_cli, ["unlink-sso", "handler1"])
    assert released.exit_code == 0, released.output
    again = CliRunner().invoke(users_cli, ["unlink-sso", "handler1"])
    assert again.exit_code == 1 and "not bound to a sign-on identity" in again.output
    assert _sign_in(client, provider, {"sub": "u-1b", "preferred_username": "handler1"}).status_code == 303
    with session_scope() as s:
        assert s.scalar(select(User.sso_identity).where(User.username == "handler1")) == f"{provider.issuer} u-1b"
        actions = list(s.scalars(select(LogEntry.action).where(LogEntry.target == "handler1").order_by(LogEntry.id)))
    assert actions == ["sso_bind", "sso_unbind", "sso_bind"]


def test_an_identity_without_a_subject_is_refused(client, provider):
    refused = _sign_in(client, provider, {"preferred_username": "handler1"})
    assert refused.status_code == 401 and "'sub'" in refused.json()["message"]


def test_unknown_identity_is_refused_without_signup(client, provider):
    refused = _sign_in(client, provider, {"sub": "u-2", "preferred_username": "stranger"})
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert client.get("/api/v1/auth/me").status_code == 401


def test_citizens_may_sign_up_when_allowed(client, provider, monkeypatch):
    monkeypatch.setenv("CITYHUB_OIDC_ALLOW_CITIZEN_SIGNUP", "true")
    reset_engine()
    done = _sign_in(client, provider, {"sub": "u-3", "preferred_username": "citizen9", "name": "张三"})
    assert done.status_code == 303, done.text
    me = client.get("/api/v1/auth/me").json()
    assert me["username"] == "citizen9" and me["role"] == "citizen" and me["unit_id"] is None


def test_forged_or_replayed_callback_is_refused(client, provider):
    provider.next_user = {"sub": "u-1", "preferred_username": "handler1"}
    start = client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    back = urlparse(httpx.get(start.headers["location"], follow_redirects=False).headers["location"])
    query = parse_qs(back.query)
    forged = client.get(back.path, params={"code": query["code"][0], "state": "not-the-state"})
    assert forged.status_code == 401 and forged.json()["code"] == "unauthenticated"
    client.cookies.clear()  # a callback without the flow's signed state cookie
    stolen = client.get(f"{back.path}?{back.query}")
    assert stolen.status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 401


def test_sign_on_is_404_when_not_configured(client, monkeypatch):
    monkeypatch.delenv("CITYHUB_OIDC_ISSUER")
    reset_engine()
    assert client.get("/api/v1/auth/oidc/login", follow_redirects=False).status_code == 404
