"""Password login with a server-side cookie session, CSRF, logout, API tokens, rate limits, lockout and the
``cityhub users`` commands, over the real app on both backends."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from app_helpers import shared_app
from cityhub.auth import passwords
from cityhub.auth import service as auth
from cityhub.auth.cli import app as users_cli
from cityhub.auth.models import ApiToken, AuthSession, LoginLockout
from cityhub.db import get_engine, reset_engine, session_scope, utcnow
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.org.schemas import UserCreate

PASSWORD = "correct-horse-battery"


@pytest.fixture
def env(app_db, monkeypatch):
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")  # the test client speaks plain http
    monkeypatch.setenv("CITYHUB_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("CITYHUB_LOGIN_MAX_PER_USERNAME", "5")
    monkeypatch.setenv("CITYHUB_LOGIN_MAX_PER_IP", "8")
    reset_engine()
    with session_scope() as s:
        street = Unit(code="AUTH-S1", name="景泰街道", tier=UnitTier.STREET)
        s.add(street)
        s.flush()
        auth.create_account(
            s,
            data=UserCreate(username="disp", full_name="黄志强", role=Role.DISPATCHER, unit_id=street.id),
            password=PASSWORD,
        )
    return app_db


@pytest.fixture
def client(env):
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        yield c


def _login(client, username="disp", password=PASSWORD):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code and body["message"]
    return body


def test_unauthenticated_requests_get_401_in_the_one_error_body(client):
    _error(client.get("/api/v1/orders"), 401, "unauthenticated")
    _error(client.get("/api/v1/auth/me"), 401, "unauthenticated")
    _error(client.get("/api/v1/orders", headers={"Authorization": "Bearer nope"}), 401, "unauthenticated")
    _error(client.get("/api/v1/orders", headers={"Authorization": "Basic eDp5"}), 401, "unauthenticated")


def test_login_sets_a_server_side_httponly_session_and_logout_ends_it(client):
    response = _login(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["username"] == "disp" and body["user"]["role"] == "dispatcher"
    set_cookie = "\n".join(response.headers.get_list("set-cookie"))
    assert "cityhub_session=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    assert client.cookies.get("cityhub_csrf") == body["csrf_token"]
    with session_scope() as s:
        stored = s.scalars(select(AuthSession.token_hash)).all()
    assert stored == [auth.digest(client.cookies["cityhub_session"])]  # only the hash is kept

    me = client.get("/api/v1/auth/me").json()
    assert me["auth_method"] == "session" and "order:act:dispatch" in me["permissions"]

    _error(client.post("/api/v1/auth/logout"), 403, "csrf_failed")
    _error(client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "forged"}), 403, "csrf_failed")
    done = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert done.status_code == 204
    with session_scope() as s:
        assert s.scalars(select(AuthSession)).all() == []
    _error(client.get("/api/v1/auth/me"), 401, "unauthenticated")


def test_logging_in_again_on_a_browser_ends_the_session_it_held(client):
    assert _login(client).status_code == 200
    first = client.cookies["cityhub_session"]
    assert _login(client).status_code == 200  # the same browser, its cookie sent along
    second = client.cookies["cityhub_session"]
    assert second != first
    with session_scope() as s:
        assert s.scalars(select(AuthSession.token_hash)).all() == [auth.digest(second)]
    with TestClient(shared_app(), raise_server_exceptions=False) as other:
        # The replaced cookie, kept by someone: no longer a session.
        _error(other.get("/api/v1/auth/me", headers={"Cookie": f"cityhub_session={first}"}), 401, "unauthenticated")
        assert _login(other).status_code == 200  # another browser: its own session, the first one's untouched
    with session_scope() as s:
        assert len(s.scalars(select(AuthSession)).all()) == 2


def test_cookie_is_secure_unless_configured_otherwise(env, monkeypatch):
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "true")
    reset_engine()
    with TestClient(shared_app(), raise_server_exceptions=False, base_url="https://testserver") as c:
        response = _login(c)
        assert response.status_code == 200
        assert all("Secure" in h for h in response.headers.get_list("set-cookie"))
        assert c.get("/api/v1/auth/me").status_code == 200


def test_cookie_writes_need_the_csrf_header(client):
    csrf = _login(client).json()["csrf_token"]
    order = {"channel": "web", "content": "路灯不亮", "street_code": "AUTH-S1"}
    _error(client.post("/api/v1/orders", json=order), 403, "csrf_failed")
    created = client.post("/api/v1/orders", json=order, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201
    assert client.get(f"/api/v1/orders/{created.json()['id']}").status_code == 200  # reads need no token


def test_api_tokens_are_shown_once_stored_hashed_and_revocable(client):
    csrf = _login(client).json()["csrf_token"]
    made = client.post("/api/v1/auth/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    secret = made.json()["token"]
    assert secret.startswith("chub_") and made.json()["prefix"] == secret[:11]
    listed = client.get("/api/v1/auth/tokens").json()
    assert [t["name"] for t in listed] == ["script"] and "token" not in listed[0]

    bearer = TestClient(client.app, raise_server_exceptions=False)
    bearer.headers["Authorization"] = f"Bearer {secret}"
    me = bearer.get("/api/v1/auth/me").json()
    assert me["username"] == "disp" and me["auth_method"] == "token"
    # Bearer requests are not exposed to CSRF: no header needed.
    assert bearer.post("/api/v1/orders", json={"channel": "web", "content": "井盖缺失"}).status_code == 201

    token_id = made.json()["id"]
    _error(bearer.delete(f"/api/v1/auth/tokens/{token_id + 1000}"), 404, "not_found")
    assert bearer.delete(f"/api/v1/auth/tokens/{token_id}").status_code == 204
    _error(bearer.get("/api/v1/auth/me"), 401, "unauthenticated")


def test_a_refused_api_token_says_whether_it_was_unknown_revoked_or_expired(client, monkeypatch):
    """An integration whose token stopped working read "invalid, expired or revoked API token" whatever the cause,
    where an expired API key says when it expired: it could not tell a token past its 90 days (make the next one)
    from one revoked (ask why) or a mistyped one. Each now says which, the code staying ``unauthenticated``."""
    monkeypatch.setenv("CITYHUB_TOKEN_CACHE_SECONDS", "0")  # each request reads the token's row
    csrf = _login(client).json()["csrf_token"]
    made = [
        client.post("/api/v1/auth/tokens", json={"name": f"city-{n}"}, headers={"X-CSRF-Token": csrf}).json()
        for n in range(2)
    ]
    bearer = TestClient(client.app, raise_server_exceptions=False)

    def me(token: str):
        return bearer.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    unknown = _error(me("chub_" + "x" * 40), 401, "unauthenticated")
    assert unknown["details"] == {"reason": "unknown"} and "no token has this value" in unknown["message"]
    assert client.delete(f"/api/v1/auth/tokens/{made[0]['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
    revoked = _error(me(made[0]["token"]), 401, "unauthenticated")
    assert revoked["details"] == {"reason": "revoked"}
    assert (
        revoked["message"]
        == f"API token {made[0]['prefix']}… was revoked; sign in and make a new one (POST /api/v1/auth/tokens)"
    )
    with session_scope() as s:
        s.execute(update(ApiToken).where(ApiToken.id == made[1]["id"]).values(expires_at=utcnow() - timedelta(days=1)))
        expired_at = s.scalar(select(ApiToken.expires_at).where(ApiToken.id == made[1]["id"]))
    expired = _error(me(made[1]["token"]), 401, "unauthenticated")
    at = expired_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert expired["details"] == {"reason": "expired", "expired_at": at}
    assert expired["message"].startswith(f"API token {made[1]['prefix']}… expired at {at}; sign in and make")


def test_an_api_token_makes_no_token_without_the_accounts_password(client):
    """A token that could make tokens would renew itself for ever: each one minting the next before it expires, and
    surviving the revocation of the one it came from. A bearer request must give the account's password."""
    csrf = _login(client).json()["csrf_token"]
    made = client.post("/api/v1/auth/tokens", json={"name": "short", "days": 1}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text  # a signed-in session makes tokens as before
    bearer = TestClient(client.app, raise_server_exceptions=False)
    bearer.headers["Authorization"] = f"Bearer {made.json()['token']}"

    refused = _error(
        bearer.post("/api/v1/auth/tokens", json={"name": "next", "days": 365}), 403, "reauthentication_required"
    )
    assert "cannot create API tokens on its own" in refused["message"] and refused["details"]["field"] == "password"
    wrong = _error(
        bearer.post("/api/v1/auth/tokens", json={"name": "next", "password": "guess"}), 422, "validation_failed"
    )
    assert wrong["details"]["field"] == "password" and "password is wrong" in wrong["message"]
    with session_scope() as s:  # the wrong password counts towards the account's lockout, as a failed login
        assert s.get(LoginLockout, "disp").failures == 1
        assert [t.name for t in s.scalars(select(ApiToken))] == ["short"]

    given = bearer.post("/api/v1/auth/tokens", json={"name": "next", "password": PASSWORD})
    assert given.status_code == 201, given.text
    assert bearer.get("/api/v1/auth/tokens").json()[-1]["name"] == "next"


def test_a_user_changes_their_own_password(client):
    """The current password is required, the new one must be strong; the user's other sessions end, the one making
    the change stays, and API tokens are revoked only when asked."""
    other = TestClient(client.app, raise_server_exceptions=False)
    assert _login(other).status_code == 200  # signed in in another browser
    csrf = _login(client).json()["csrf_token"]
    headers = {"X-CSRF-Token": csrf}
    secret = client.post("/api/v1/auth/tokens", json={"name": "script"}, headers=headers).json()["token"]
    url = "/api/v1/auth/password"
    new = "violet-harbour-lantern-42"

    _error(client.post(url, json={"current_password": PASSWORD, "new_password": new}), 403, "csrf_failed")
    wrong = _error(
        client.post(url, json={"current_password": "guess", "new_password": new}, headers=headers),
        422,
        "validation_failed",
    )
    assert wrong["details"]["field"] == "current_password" and wrong["message"] == "the current password is wrong"
    weak = _error(
        client.post(url, json={"current_password": PASSWORD, "new_password": "password12"}, headers=headers),
        422,
        "validation_failed",
    )
    assert weak["details"]["field"] == "password"
    same = client.post(url, json={"current_password": PASSWORD, "new_password": PASSWORD}, headers=headers)
    assert same.status_code == 422 and "is the current one" in same.json()["message"]

    done = client.post(url, json={"current_password": PASSWORD, "new_password": new}, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json() == {"sessions_ended": 1, "tokens_revoked": 0}
    assert client.get("/api/v1/auth/me").status_code == 200  # this session stays
    _error(other.get("/api/v1/auth/me"), 401, "unauthenticated")  # the other one ended
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200  # tokens kept unless asked
    _error(_login(client), 401, "invalid_credentials")
    assert _login(client, password=new).status_code == 200

    csrf = client.cookies["cityhub_csrf"]
    again = client.post(
        url,
        json={"current_password": new, "new_password": "amber-meadow-compass-17", "revoke_tokens": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert again.status_code == 200 and again.json()["tokens_revoked"] == 1
    _error(client.get("/api/v1/auth/me", headers=bearer), 401, "unauthenticated")


def test_wrong_current_passwords_count_towards_the_lockout(client):
    csrf = _login(client).json()["csrf_token"]
    body = {"current_password": "guess", "new_password": "violet-harbour-lantern-42"}
    for _ in range(2):
        _error(
            client.post("/api/v1/auth/password", json=body, headers={"X-CSRF-Token": csrf}), 422, "validation_failed"
        )
    locked = client.post("/api/v1/auth/password", json=body, headers={"X-CSRF-Token": csrf})
    _error(locked, 423, "account_locked")  # the third failure in a row (CITYHUB_LOGIN_MAX_FAILURES=3)
    _error(_login(client), 423, "account_locked")


def test_wrong_passwords_lock_the_account_and_lockout_is_423(client):
    for _ in range(2):
        _error(_login(client, password="wrong-password"), 401, "invalid_credentials")
    body = _error(_login(client, password="wrong-password"), 423, "account_locked")
    assert body["details"]["locked_until"]
    _error(_login(client), 423, "account_locked")  # even the right password, while locked
    with session_scope() as s:
        auth.unlock_user(s, username="disp")
    assert _login(client).status_code == 200


def test_unknown_user_and_right_password_reset_counters(client):
    _error(_login(client, username="ghost"), 401, "invalid_credentials")
    _error(_login(client, password="wrong-password"), 401, "invalid_credentials")
    _error(_login(client, password="wrong-password"), 401, "invalid_credentials")
    assert _login(client).status_code == 200  # the third failure in a row would have locked it
    _error(_login(client, password="wrong-password"), 401, "invalid_credentials")
    with session_scope() as s:
        user = s.scalars(select(User).where(User.username == "disp")).one()
        assert user.locked_until is None
        counts = dict(s.execute(select(LoginLockout.username, LoginLockout.failures)).all())
    assert counts == {"ghost": 1, "disp": 1}


def test_an_unknown_name_answers_as_a_known_one_and_costs_the_same(client, monkeypatch):
    verified: list[str | None] = []
    real_verify = passwords.verify_password

    def spy(password_hash, password):
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", spy)
    answers = {}
    for name in ("disp", "nobody-here"):
        replies = [_login(client, username=name, password="wrong-password") for _ in range(4)]
        answers[name] = [
            (r.status_code, r.json()["code"], r.json()["message"], sorted(r.json()["details"])) for r in replies
        ]
    assert answers["disp"] == answers["nobody-here"]
    assert [a[:2] for a in answers["disp"]] == [
        (401, "invalid_credentials"),
        (401, "invalid_credentials"),
        (423, "account_locked"),
        (423, "account_locked"),
    ]
    # Each checked attempt spent one password verification, a hash or none (then a dummy hash of the same cost).
    assert len(verified) == 6 and verified[3:].count(None) == 3 and None not in verified[:3]


def test_failed_logins_lock_password_logins_only_not_sessions_or_tokens(client):
    """Anyone can fail to log in as someone: that must not cut off the person's open session and tokens."""
    csrf = _login(client).json()["csrf_token"]
    secret = client.post("/api/v1/auth/tokens", json={"name": "t"}, headers={"X-CSRF-Token": csrf}).json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    stranger = TestClient(client.app, raise_server_exceptions=False)
    for _ in range(3):
        _login(stranger, password="wrong-password")
    _error(_login(stranger), 423, "account_locked")  # the right password waits too
    assert client.get("/api/v1/auth/me").json()["auth_method"] == "session"
    assert client.get("/api/v1/auth/me", headers=bearer).json()["auth_method"] == "token"
    listing = CliRunner().invoke(users_cli, ["list"]).output.split("\t")
    assert listing[3] == "login-locked"
    # An administrator's lock is another thing: it stops everything.
    with session_scope() as s:
        auth.lock_user(s, username="disp")
    _error(client.get("/api/v1/auth/me", headers=bearer), 401, "unauthenticated")
    with session_scope() as s:
        auth.unlock_user(s, username="disp")  # lifts both locks
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    assert _login(stranger).status_code == 200


def test_an_administrator_s_lock_is_told_only_to_whoever_knows_the_password(client):
    with session_scope() as s:
        auth.lock_user(s, username="disp", minutes=30)
    _error(_login(client, password="wrong-password"), 401, "invalid_credentials")
    body = _error(_login(client), 423, "account_locked")
    assert body["details"]["locked_until"]


def test_rate_limits_per_username_and_per_ip_are_429(env, monkeypatch):
    monkeypatch.setenv("CITYHUB_LOGIN_MAX_FAILURES", "10")  # the per-name limit before the lockout
    reset_engine()
    client = TestClient(shared_app(), raise_server_exceptions=False)
    for _ in range(5):
        _error(_login(client, username="ghost"), 401, "invalid_credentials")
    throttled = _login(client, username="ghost")
    body = _error(throttled, 429, "too_many_attempts")
    assert body["details"]["retry_after_seconds"] > 0
    # Every 429 says when to try again in the header HTTP clients read (it had none: only the body said it).
    assert throttled.headers["Retry-After"] == str(body["details"]["retry_after_seconds"])
    # In the key every other 429 and 503 names it by (rate_limited, overloaded), the first name kept.
    assert body["details"]["retry_after"] == body["details"]["retry_after_seconds"]
    for name in ("ghost2", "ghost3", "ghost4"):
        _login(client, username=name)
    # 8 failures from this address now: even a right password for another account waits.
    _error(_login(client), 429, "too_many_attempts")


def test_locking_ends_sessions_and_stops_tokens(client):
    csrf = _login(client).json()["csrf_token"]
    secret = client.post("/api/v1/auth/tokens", json={"name": "t"}, headers={"X-CSRF-Token": csrf}).json()["token"]
    with session_scope() as s:
        auth.lock_user(s, username="disp", minutes=30)
        auth.lock_user(s, username="disp")  # renewed for good: the log says what it replaced
    _error(client.get("/api/v1/auth/me"), 401, "unauthenticated")
    _error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}), 401, "unauthenticated")
    from cityhub.auditlog import LogEntry

    with session_scope() as s:
        first, renewed = s.scalars(select(LogEntry).where(LogEntry.action == "lock").order_by(LogEntry.id)).all()
        assert first.changes["locked_until"][0] is None
        assert renewed.changes["locked_until"][0] == first.changes["locked_until"][1]


def test_users_cli_creates_lists_sets_passwords_and_locks(env):
    runner = CliRunner()
    made = runner.invoke(
        users_cli,
        ["create", "--username", "op1", "--role", "operator", "--unit", "AUTH-S1", "--full-name", "陈晓敏"],
    )
    assert made.exit_code == 0, made.output
    generated = made.output.split("password (shown once): ")[1].strip()
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        assert _login(c, "op1", generated).status_code == 200

    piped = runner.invoke(
        users_cli,
        ["create", "--username", "cit1", "--role", "citizen", "--password-stdin"],
        input="a-citizen-password\n",
    )
    assert piped.exit_code == 0 and "a-citizen-password" not in piped.output and "shown once" not in piped.output
    assert runner.invoke(users_cli, ["create", "--username", "x1", "--role", "handler"]).exit_code == 1
    assert runner.invoke(users_cli, ["create", "--username", "op1", "--role", "citizen"]).exit_code == 1
    weak = runner.invoke(users_cli, ["set-password", "cit1", "--password-stdin"], input="short\n")
    assert weak.exit_code == 1 and "at least" in weak.output
    guessable = runner.invoke(users_cli, ["set-password", "cit1", "--password-stdin"], input="1234567890\n")
    assert guessable.exit_code == 1 and "too easy to guess" in guessable.output
    assert len(guessable.output.strip().splitlines()) == 1

    assert (
        runner.invoke(users_cli, ["set-password", "op1", "--password-stdin"], input="another-long-pass\n").exit_code
        == 0
    )
    assert runner.invoke(users_cli, ["lock", "cit1"]).exit_code == 0
    listing = runner.invoke(users_cli, ["list"]).output.splitlines()
    rows = {line.split("\t")[0]: line.split("\t") for line in listing}
    assert rows["cit1"][3] == "locked" and rows["op1"][1:4] == ["operator", "AUTH-S1", "active"]
    assert runner.invoke(users_cli, ["unlock", "cit1"]).exit_code == 0
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        assert _login(c, "op1", generated).status_code == 401
        assert _login(c, "op1", "another-long-pass").status_code == 200
        assert _login(c, "cit1", "a-citizen-password").status_code == 200


def test_a_password_reset_ends_sessions_and_revokes_api_tokens(client):
    csrf = _login(client).json()["csrf_token"]
    headers = {"X-CSRF-Token": csrf}
    too_long = client.post("/api/v1/auth/tokens", json={"name": "x", "days": 3650}, headers=headers)
    assert _error(too_long, 422, "validation_failed")
    made = client.post("/api/v1/auth/tokens", json={"name": "x", "days": 365}, headers=headers)
    assert made.status_code == 201, made.text
    bearer = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).json()["auth_method"] == "token"

    reset = CliRunner().invoke(users_cli, ["set-password", "disp", "--password-stdin"], input="a-brand-new-secret\n")
    assert reset.exit_code == 0, reset.output
    assert "1 session(s) ended, 1 API token(s) revoked" in reset.output
    _error(client.get("/api/v1/auth/me"), 401, "unauthenticated")
    _error(client.get("/api/v1/auth/me", headers=bearer), 401, "unauthenticated")
    with session_scope() as s:
        assert s.scalars(select(ApiToken.revoked)).all() == [True]
    # A token made after the reset works.
    csrf = _login(client, password="a-brand-new-secret").json()["csrf_token"]
    fresh = client.post("/api/v1/auth/tokens", json={"name": "y"}, headers={"X-CSRF-Token": csrf}).json()["token"]
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def _token(client) -> tuple[int, TestClient]:
    csrf = _login(client).json()["csrf_token"]
    made = client.post("/api/v1/auth/tokens", json={"name": "cached"}, headers={"X-CSRF-Token": csrf}).json()
    bearer = TestClient(client.app, raise_server_exceptions=False)
    bearer.headers["Authorization"] = f"Bearer {made['token']}"
    return made["id"], bearer


def _revoke_elsewhere(token_id: int) -> None:
    """Revoke as another server process would: straight in the database, nothing this process's ORM sees."""
    with get_engine().begin() as conn:
        conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked=True))


def test_a_verified_token_is_trusted_from_memory_for_the_cache_time_only(client, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(auth.RECENT_TOKENS, "clock", lambda: now[0])
    token_id, bearer = _token(client)
    assert bearer.get("/api/v1/auth/me").status_code == 200  # verified from the database, remembered
    _revoke_elsewhere(token_id)
    assert bearer.get("/api/v1/auth/me").status_code == 200  # another process's revocation: not seen yet
    now[0] += 2.01  # CITYHUB_TOKEN_CACHE_SECONDS, default 2
    _error(bearer.get("/api/v1/auth/me"), 401, "unauthenticated")


def test_without_the_token_cache_a_revocation_elsewhere_counts_at_once(client, monkeypatch):
    monkeypatch.setenv("CITYHUB_TOKEN_CACHE_SECONDS", "0")
    reset_engine()
    token_id, bearer = _token(client)
    assert bearer.get("/api/v1/auth/me").status_code == 200
    _revoke_elsewhere(token_id)
    _error(bearer.get("/api/v1/auth/me"), 401, "unauthenticated")


def test_changes_committed_in_this_process_reach_remembered_tokens_at_once(client):
    token_id, bearer = _token(client)
    me = bearer.get("/api/v1/auth/me").json()
    assert me["role"] == "dispatcher"
    # A role change through the admin service (an ORM change of the user) ...
    with session_scope() as s:
        s.scalars(select(User).where(User.username == "disp")).one().role = Role.SUPERVISOR
    assert bearer.get("/api/v1/auth/me").json()["role"] == "supervisor"
    # ... and a lock written by an UPDATE statement on users count for the next request.
    with session_scope() as s:
        s.execute(update(User).where(User.username == "disp").values(locked_until=utcnow() + timedelta(hours=1)))
    _error(bearer.get("/api/v1/auth/me"), 401, "unauthenticated")
    with session_scope() as s:
        auth.unlock_user(s, username="disp")
    assert bearer.get("/api/v1/auth/me").status_code == 200
    assert bearer.delete(f"/api/v1/auth/tokens/{token_id}").status_code == 204
    _error(bearer.get("/api/v1/auth/me"), 401, "unauthenticated")


def test_pages_and_api_answers_forbid_framing(client):
    for path in ("/login", "/", "/api/v1/auth/me", "/static/app.css"):
        response = client.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path


def test_the_bearer_scheme_tells_swagger_ui_what_a_signed_in_browsers_cookie_does(client):
    """``/openapi.json``'s ``bearerToken`` says how to make a token and what a browser signed in to cityhub gets from
    ``/docs``, which sends its cookie: reads, but a change with the cookie alone is refused ``csrf_failed``; a token
    from the Authorize button is taken before the cookie. (Until December 2026 it said the cookie "works too".)"""
    description = client.get("/openapi.json").json()["components"]["securitySchemes"]["bearerToken"]["description"]
    assert "X-CSRF-Token" in description and "csrf_failed" in description
    csrf = _login(client).json()["csrf_token"]
    assert client.get("/api/v1/auth/me").json()["auth_method"] == "session"  # the cookie reads
    _error(client.post("/api/v1/auth/tokens", json={"name": "docs"}), 403, "csrf_failed")
    made = client.post("/api/v1/auth/tokens", json={"name": "docs"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    bearer = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).json()["auth_method"] == "token"  # the cookie sent too
    again = client.post("/api/v1/auth/tokens", json={"name": "docs2", "password": PASSWORD}, headers=bearer)
    assert again.status_code == 201, again.text  # a change without the CSRF header: the token is taken


def test_a_personal_token_has_a_call_limit_per_minute_as_an_api_key_has(client, monkeypatch):
    """Personal API tokens had no call limit (an API key has its calls per minute): a script looping on a token
    could take the server's capacity. Now each token's calls are counted per clock minute as a key's are
    (``CITYHUB_API_TOKEN_RATE_LIMIT``) and the next is ``429 rate_limited`` with Retry-After — a malformed request
    too, counted once; a browser session is not limited. The clock is held still: one minute's calls."""
    from datetime import datetime

    from cityhub.auth.models import TokenRateWindow

    monkeypatch.setenv("CITYHUB_API_TOKEN_RATE_LIMIT", "3")
    reset_engine()
    held = datetime(2026, 12, 7, 13, 0, 15, tzinfo=UTC)
    monkeypatch.setattr(auth, "utcnow", lambda: held)
    csrf = _login(client).json()["csrf_token"]
    made = client.post("/api/v1/auth/tokens", json={"name": "loop"}, headers={"X-CSRF-Token": csrf}).json()
    bearer = TestClient(client.app, raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {made['token']}"}
    statuses = [bearer.get("/api/v1/auth/me", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = _error(bearer.get("/api/v1/auth/me", headers=headers), 429, "rate_limited")
    assert refused["details"] == {"limit": 3, "retry_after": 45}
    assert "3 calls per minute of this personal API token" in refused["message"]
    malformed = bearer.get("/api/v1/auth/me", params={"colour": "red"}, headers=headers)
    assert malformed.status_code == 429 and malformed.headers["Retry-After"] == "45", malformed.text
    with session_scope() as s:
        counted = s.scalar(select(TokenRateWindow.calls).where(TokenRateWindow.token_id == made["id"]))
    assert counted == 5  # each request once, the malformed one too
    # The session that made the token is not limited.
    assert {client.get("/api/v1/auth/me").status_code for _ in range(5)} == {200}
    # The next minute: the token calls again.
    monkeypatch.setattr(auth, "utcnow", lambda: held + timedelta(minutes=1))
    assert bearer.get("/api/v1/auth/me", headers=headers).status_code == 200
