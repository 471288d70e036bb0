"""A citizen's phone on their account (``cityhub.auth.phone``), on both backends: set, checked as an appeal's phone,
proved by a six-digit code sent through the SMS relay's ``citizen`` topic and typed back — the code stored hashed,
expiring, with limited tries and resends; a change of the number (theirs or an administrator's) unverifies it. With
the phone verified, the orders registered with that number by the hotline (+86 or not) are the citizen's own: listed,
readable and ratable over the API; unverified, none of that."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app_helpers import shared_app
from cityhub.auth import phone as citizen_phone
from cityhub.auth import service as auth
from cityhub.auth.errors import TooManyAttempts
from cityhub.auth.models import PhoneCode
from cityhub.db import session_scope, utcnow
from cityhub.errors import Conflict, ValidationFailed
from cityhub.notify import service as notify
from cityhub.notify.models import OutboxMessage, Topic
from cityhub.org.models import Role, Unit, User
from cityhub.org.schemas import UserCreate

PHONE = "13812345678"


@pytest.fixture
def env(admin_client) -> dict[str, Any]:
    """The district's administrator, a citizen with an API token, and the SMS relay subscribed to ``citizen``."""
    with session_scope() as s:
        me = auth.create_account(s, data=UserCreate(username="cit", full_name="市民甲", role=Role.CITIZEN))
        _, token = auth.create_token(s, user_id=me.id, name="app")
        unit_id = s.scalars(select(Unit.id).where(Unit.code == "T-QU")).one()
        me_id = me.id
    citizen = TestClient(shared_app(), raise_server_exceptions=False)
    citizen.headers["Authorization"] = f"Bearer {token}"
    return {"admin": admin_client, "citizen": citizen, "user_id": me_id, "unit_id": unit_id}


def _relay() -> None:
    with session_scope() as s:
        notify.add_subscription(s, target="http://127.0.0.1:9/relay", topics=["citizen"])


def _last_code(phone: str = PHONE, action: str = "verify_phone") -> str:
    """The code in the newest ``citizen`` text message to ``phone`` that concerns no order (what the relay sends):
    ``action`` ``verify_phone`` or ``reset_password``."""
    with session_scope() as s:
        message = s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic == Topic.CITIZEN, OutboxMessage.order_id.is_(None))
            .order_by(OutboxMessage.id.desc())
        ).first()
        assert message is not None and message.payload is not None
        assert message.payload["phone"] == phone and message.payload["action"] == action
        found = re.search(r"验证码为(\d{6})，10分钟内有效", message.payload["text"])
        assert found, message.payload["text"]
        return found.group(1)


def _verified(user_id: int, phone: str = PHONE) -> None:
    with session_scope() as s:
        citizen_phone.set_phone(s, user_id=user_id, phone=phone)
        citizen_phone.send_code(s, user_id=user_id)
    with session_scope() as s:
        assert citizen_phone.verify(s, user_id=user_id, code=_last_code(phone)).verified


def _hotline_replied(env: dict[str, Any], phone: str) -> dict[str, Any]:
    """An appeal an operator registered from a call (the phone as the caller ID gave it), dispatched and answered."""
    c = env["admin"]
    order = c.post(
        "/api/v1/orders",
        json={"channel": "hotline", "title": "路灯不亮", "content": "云景路3号路灯坏了一周", "citizen_phone": phone},
    ).json()
    for action, body in (("dispatch", {"unit_id": env["unit_id"]}), ("accept", {}), ("reply", {"text": "已修复。"})):
        answer = c.post(f"/api/v1/orders/{order['id']}/actions/{action}", json=body)
        assert answer.status_code == 200, (action, answer.text)
    return order


def test_a_phone_is_proved_by_a_code_sent_through_the_sms_relay(env) -> None:
    """Checked as an appeal's phone; the code goes as a ``citizen`` message of no order, is stored only hashed,
    and typed back verifies the number; no relay, no code; a landline takes none."""
    user_id = env["user_id"]
    with session_scope() as s:
        with pytest.raises(ValidationFailed) as bad:
            citizen_phone.set_phone(s, user_id=user_id, phone="138abc")
        assert bad.value.details["field"] == "phone"
    with session_scope() as s:
        shown = citizen_phone.set_phone(s, user_id=user_id, phone="138-1234-5678")
        assert (shown.phone, shown.masked, shown.verified) == (PHONE, "138****5678", False)
    with session_scope() as s, pytest.raises(Conflict) as no_relay:
        citizen_phone.send_code(s, user_id=user_id)
    assert no_relay.value.details["relay"] is False
    _relay()
    with session_scope() as s:
        assert citizen_phone.send_code(s, user_id=user_id).pending
    code = _last_code()
    with session_scope() as s:
        row = s.get(PhoneCode, user_id)
        assert row is not None and code not in (row.code_hash, row.salt) and len(row.code_hash) == 64
        assert s.get(User, user_id).verified_phone is None  # type: ignore[union-attr]
    with session_scope() as s:
        done = citizen_phone.verify(s, user_id=user_id, code=code)
        assert done.verified and not done.pending
    with session_scope() as s:
        user = s.get(User, user_id)
        assert user is not None and user.phone_verified == PHONE and user.phone_verified_at is not None
        assert s.get(PhoneCode, user_id) is None  # spent
    # a landline is kept (the appeals' phone) but no code goes to it
    with session_scope() as s:
        citizen_phone.set_phone(s, user_id=user_id, phone="020-81234567")
    with session_scope() as s, pytest.raises(ValidationFailed) as landline:
        citizen_phone.send_code(s, user_id=user_id)
    assert landline.value.details["mobile"] is False


def test_a_code_expires_takes_few_wrong_tries_and_is_resent_only_so_often(env) -> None:
    _relay()
    user_id, t0 = env["user_id"], utcnow()
    with session_scope() as s:
        citizen_phone.set_phone(s, user_id=user_id, phone=PHONE, now=t0)
        citizen_phone.send_code(s, user_id=user_id, now=t0)
    code = _last_code()
    wrong = "000000" if code != "000000" else "111111"
    # expired after ten minutes
    with session_scope() as s, pytest.raises(ValidationFailed) as late:
        citizen_phone.verify(s, user_id=user_id, code=code, now=t0 + timedelta(minutes=10, seconds=1))
    assert late.value.details["expired"] is True
    # resent no sooner than a minute after the last
    with session_scope() as s, pytest.raises(TooManyAttempts):
        citizen_phone.send_code(s, user_id=user_id, now=t0 + timedelta(seconds=30))
    t1 = t0 + timedelta(minutes=11)
    with session_scope() as s:
        citizen_phone.send_code(s, user_id=user_id, now=t1)
    code = _last_code()
    wrong = "000000" if code != "000000" else "111111"
    # each wrong try counts (committed although refused); the fifth spends the code
    for left in (4, 3, 2, 1, 0):
        with session_scope() as s, pytest.raises(ValidationFailed) as miss:
            citizen_phone.verify(s, user_id=user_id, code=wrong, now=t1)
        assert miss.value.details["tries_left"] == left
    with session_scope() as s, pytest.raises(ValidationFailed) as spent:
        citizen_phone.verify(s, user_id=user_id, code=code, now=t1)
    assert spent.value.details["spent"] is True
    with session_scope() as s:
        assert s.get(User, user_id).verified_phone is None  # type: ignore[union-attr]
    # five codes an hour: the window's sixth waits for its hour
    at = t1
    for _ in range(3):
        at += timedelta(minutes=2)
        with session_scope() as s:
            citizen_phone.send_code(s, user_id=user_id, now=at)
    with session_scope() as s:
        assert s.get(PhoneCode, user_id).sends == 5  # type: ignore[union-attr]
    with session_scope() as s, pytest.raises(TooManyAttempts):
        citizen_phone.send_code(s, user_id=user_id, now=at + timedelta(minutes=5))
    with session_scope() as s:
        citizen_phone.send_code(s, user_id=user_id, now=t0 + timedelta(minutes=72))
    with session_scope() as s:
        assert citizen_phone.verify(s, user_id=user_id, code=_last_code(), now=t0 + timedelta(minutes=73)).verified


def test_a_change_of_the_number_unverifies_it_whoever_makes_it(env) -> None:
    _relay()
    user_id = env["user_id"]
    _verified(user_id)
    with session_scope() as s:
        citizen_phone.set_phone(s, user_id=user_id, phone=PHONE)  # the same number: still verified
        assert citizen_phone.status(s, user_id=user_id).verified
        citizen_phone.set_phone(s, user_id=user_id, phone="13900001111")
        assert not citizen_phone.status(s, user_id=user_id).verified
    _verified(user_id, "13900001111")
    with session_scope() as s:  # an administrator's edit of the account
        user = s.get(User, user_id)
        assert user is not None
        auth.update_account(s, user=user, changes={"phone": PHONE})
    with session_scope() as s:
        user = s.get(User, user_id)
        assert user is not None and user.phone == PHONE and user.verified_phone is None


def test_the_verified_phone_s_hotline_orders_are_the_citizen_s_own_to_list_read_and_rate(
    env, tmp_path, monkeypatch
) -> None:
    """An order an operator registered with the citizen's number (+86 from the caller ID) is in their list, read
    unmasked, given files (补充材料) and rated by them once the number is verified; before, and after the number
    changes, it is not theirs (404 as for a missing order); another number's order never is."""
    from web_helpers import jpeg_photo

    monkeypatch.setenv("CITYHUB_FILES_DIR", str(tmp_path / "files"))
    photo = [("files", ("p.jpg", jpeg_photo(), "image/jpeg"))]
    _relay()
    citizen, user_id = env["citizen"], env["user_id"]
    theirs = _hotline_replied(env, "+86" + PHONE)
    other = _hotline_replied(env, "13900009999")

    def listed() -> set[int]:
        answer = citizen.get("/api/v1/orders")
        assert answer.status_code == 200, answer.text
        return {o["id"] for o in answer.json()["items"]}

    with session_scope() as s:  # a phone set but not verified gives nothing
        citizen_phone.set_phone(s, user_id=user_id, phone=PHONE)
    assert theirs["id"] not in listed()
    assert citizen.get(f"/api/v1/orders/{theirs['id']}").status_code == 404
    refused = citizen.post(f"/api/v1/orders/{theirs['id']}/actions/callback", json={"satisfied": True})
    assert refused.status_code == 404, refused.text
    assert citizen.get("/api/v1/auth/me").json()["phone_verified"] is False
    assert citizen.post(f"/api/v1/orders/{theirs['id']}/attachments", files=photo).status_code == 404

    _verified(user_id)
    assert citizen.get("/api/v1/auth/me").json()["phone_verified"] is True
    assert listed() == {theirs["id"]}
    read = citizen.get(f"/api/v1/orders/{theirs['id']}")
    assert read.status_code == 200 and read.json()["channel"] == "hotline"
    assert read.json()["citizen_phone"] == "+86" + PHONE  # their own number, not masked
    assert citizen.get(f"/api/v1/orders/{other['id']}").status_code == 404
    added = citizen.post(f"/api/v1/orders/{theirs['id']}/attachments", files=photo)
    assert added.status_code == 201, added.text
    rated = citizen.post(f"/api/v1/orders/{theirs['id']}/actions/callback", json={"satisfied": True})
    assert rated.status_code == 200, rated.text
    assert rated.json()["state"] == "called_back" and rated.json()["satisfied"] is True
    trail = env["admin"].get(f"/api/v1/orders/{theirs['id']}/events").json()
    assert trail[-1]["action"] == "callback" and trail[-1]["actor_id"] == user_id

    with session_scope() as s:
        citizen_phone.set_phone(s, user_id=user_id, phone="13900001111")
    assert theirs["id"] not in listed()
    assert citizen.get(f"/api/v1/orders/{theirs['id']}").status_code == 404


def test_a_citizen_s_api_appeal_takes_the_account_s_phone(env) -> None:
    """Their own appeal over the API goes under the phone on their account unless they give another: /track finds
    it by its number and that phone."""
    _relay()
    _verified(env["user_id"])
    own = env["citizen"].post("/api/v1/orders", json={"channel": "app", "content": "小区路灯不亮已经一周"})
    assert own.status_code == 201 and own.json()["citizen_phone"] == PHONE
    found = TestClient(shared_app()).post("/api/v1/track", json={"number": own.json()["number"], "phone": PHONE})
    assert found.status_code == 200, found.text


def test_users_list_shows_the_phone_masked_and_whether_it_is_verified(env) -> None:
    from typer.testing import CliRunner

    from cityhub.auth.cli import app as users_cli

    _relay()
    with session_scope() as s:
        auth.create_account(s, data=UserCreate(username="cit2", full_name="市民乙", role=Role.CITIZEN, phone=PHONE))
    _verified(env["user_id"], "13900001111")
    listing = CliRunner().invoke(users_cli, ["list"])
    assert listing.exit_code == 0, listing.output
    rows = {line.split("\t")[0]: line.split("\t") for line in listing.output.splitlines()}
    assert rows["cit"][6:] == ["139****1111", "phone-verified"]
    assert rows["cit2"][6:] == ["138****5678", "phone-unverified"]
    assert rows["t-admin"][6:] == ["-", "-"]
    assert "13900001111" not in listing.output and PHONE not in listing.output


# --- 忘记密码: a forgotten password reset with a code sent to the verified phone ------------------------------------

OLD, NEW = "old-lantern-river", "lantern-river-quartz"
IP = "203.0.113.7"


def _with_password(user_id: int) -> None:
    from cityhub.auth import passwords

    with session_scope() as s:
        user = s.get(User, user_id)
        assert user is not None
        user.password_hash = passwords.hash_password(OLD)


def _sent_messages() -> int:
    with session_scope() as s:
        return len(s.scalars(select(OutboxMessage.id)).all())


def test_a_citizen_resets_a_forgotten_password_with_a_code_sent_to_their_verified_phone(env) -> None:
    """Named by the login name or the verified phone (+86 or not), a code goes to that phone (its text says it
    resets the password); typed back with a new password that passes the rules, the password changes, every session
    ends and every personal token is revoked (the API token answers 401), the failed-login lockout is cleared, the
    code is spent and the configuration log says reset_password — never the password."""
    from cityhub.auditlog import LogEntry
    from cityhub.auth.errors import InvalidCredentials
    from cityhub.auth.models import LoginLockout

    user_id = env["user_id"]
    _relay()
    _verified(user_id)
    _with_password(user_id)
    assert env["citizen"].get("/api/v1/auth/me").status_code == 200
    with session_scope() as s:
        user = s.get(User, user_id)
        assert user is not None
        auth.open_session(s, user=user, method="password")
    with session_scope() as s, pytest.raises(InvalidCredentials):
        auth.login(s, username="cit", password="not-the-password", client_ip=IP)
    with session_scope() as s:
        assert s.get(LoginLockout, "cit") is not None
    with session_scope() as s:
        citizen_phone.request_reset(s, name="+86 138-1234-5678", client_ip=IP)
    code = _last_code(action="reset_password")
    with session_scope() as s, pytest.raises(ValidationFailed) as weak:
        citizen_phone.reset_password(s, name="cit", code=code, password="cit12345678", client_ip=IP)
    assert weak.value.details["field"] == "password"  # the rules of every password; the code is still good
    with session_scope() as s:
        done = citizen_phone.reset_password(s, name="cit", code=code, password=NEW, client_ip=IP)
        assert (done.sessions_ended, done.tokens_revoked) == (1, 1)
    with session_scope() as s:
        assert s.get(PhoneCode, user_id) is None and s.get(LoginLockout, "cit") is None
        entry = s.scalars(select(LogEntry).where(LogEntry.action == "reset_password")).one()
        assert entry.target == "cit" and entry.actor_user_id == user_id and entry.changes["via"] == [None, "phone"]
        assert NEW not in str(entry.changes) and code not in str(entry.changes)
    assert env["citizen"].get("/api/v1/auth/me").status_code == 401
    with session_scope() as s, pytest.raises(InvalidCredentials):
        auth.login(s, username="cit", password=OLD, client_ip=IP)
    with session_scope() as s:
        assert auth.login(s, username="cit", password=NEW, client_ip=IP).user.id == user_id
    with session_scope() as s, pytest.raises(ValidationFailed):  # spent
        citizen_phone.reset_password(s, name="cit", code=code, password=OLD, client_ip=IP)


def test_a_reset_code_takes_few_wrong_tries_and_expires(env) -> None:
    """Each wrong code counts (committed although refused) and the fifth spends it: the right one is then refused,
    the password unchanged; a code typed after ten minutes is refused too — both in the same words as a wrong one."""
    user_id, t0 = env["user_id"], utcnow()
    _relay()
    _verified(user_id)
    _with_password(user_id)
    with session_scope() as s:
        citizen_phone.request_reset(s, name="cit", client_ip=IP, now=t0)
    code = _last_code(action="reset_password")
    wrong = "000000" if code != "000000" else "111111"
    for tries in range(1, 6):
        with session_scope() as s, pytest.raises(ValidationFailed) as miss:
            citizen_phone.reset_password(s, name="cit", code=wrong, password=NEW, client_ip=IP, now=t0)
        assert miss.value.details == {"field": "code"}
        with session_scope() as s:
            assert s.get(PhoneCode, user_id).attempts == tries  # type: ignore[union-attr]
    with session_scope() as s, pytest.raises(ValidationFailed) as spent:
        citizen_phone.reset_password(s, name="cit", code=code, password=NEW, client_ip=IP, now=t0)
    assert str(spent.value) == str(miss.value)
    t1 = t0 + timedelta(minutes=2)
    with session_scope() as s:
        citizen_phone.request_reset(s, name="cit", client_ip="203.0.113.8", now=t1)
    code = _last_code(action="reset_password")
    with session_scope() as s, pytest.raises(ValidationFailed) as late:
        citizen_phone.reset_password(
            s, name="cit", code=code, password=NEW, client_ip="203.0.113.8", now=t1 + timedelta(minutes=10, seconds=1)
        )
    assert str(late.value) == str(miss.value)
    with session_scope() as s:
        user = s.get(User, user_id)
        assert user is not None
        from cityhub.auth import passwords

        assert passwords.verify_password(user.password_hash, OLD)


def test_a_reset_for_anyone_else_sends_nothing_and_answers_as_for_an_unknown_name(env) -> None:
    """An unknown name, a staff member's (phone verified or not: their administrator resets them), a citizen whose
    phone is unverified or who has no password: nothing is sent and nothing differs — request_reset answers nothing,
    a code for them is refused as a wrong one, and the login rate limits count each name alike (429 past
    login_max_per_username, the real citizen's as an unknown one's)."""
    from cityhub.auth.settings import get_auth_settings

    _relay()
    with session_scope() as s:
        staff = auth.create_account(
            s,
            data=UserCreate(username="staff", full_name="职员", role=Role.HANDLER, unit_id=env["unit_id"]),
            password="quiet-harbour-lamp",
        )
        staff.phone = staff.phone_verified = "13900002222"
        auth.create_account(s, data=UserCreate(username="nopass", full_name="市民乙", role=Role.CITIZEN))
    _with_password(env["user_id"])
    with session_scope() as s:
        citizen_phone.set_phone(s, user_id=env["user_id"], phone=PHONE)  # unverified
    before = _sent_messages()
    names = ("nobody", "staff", "13900002222", "cit", PHONE, "nopass")
    for name in names:
        with session_scope() as s:
            assert citizen_phone.request_reset(s, name=name, client_ip=IP) is None
            assert citizen_phone.reset_account(s, name=name) is None
        with session_scope() as s, pytest.raises(ValidationFailed) as refused:
            citizen_phone.reset_password(s, name=name, code="123456", password=NEW, client_ip=IP)
        assert refused.value.details == {"field": "code"}
    assert _sent_messages() == before
    # counted alike: an unknown name and a verified citizen's reach the limit after as many requests
    _verified(env["user_id"])
    limit = get_auth_settings().login_max_per_username
    for name in ("nobody-else", "+86" + PHONE):
        for _ in range(limit):
            with session_scope() as s:
                citizen_phone.request_reset(s, name=name, client_ip=f"198.51.100.{len(name)}")
        with session_scope() as s, pytest.raises(TooManyAttempts):
            citizen_phone.request_reset(s, name=name, client_ip=f"198.51.100.{len(name)}")
