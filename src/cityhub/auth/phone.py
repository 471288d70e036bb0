"""A citizen's phone on their account (我的手机号), proved before it counts.

A citizen sets their phone on /account; it is checked as an appeal's phone is (``org.schemas.phone_number``) and is
at once unverified. A six-digit code goes to it by text message through the district's SMS relay — the ``citizen``
webhook topic that carries the answers' texts (``notify.service.on_phone_code``) — and typed back on /account proves
it: ``users.phone_verified`` then holds the number. Whatever changes ``users.phone`` afterwards (the citizen again, an
administrator) leaves it unverified (``org.models.verified_phone``; :func:`clear_on_change` says so at once).

A code is kept only as a salted SHA-256, expires after :data:`CODE_MINUTES` minutes, takes :data:`MAX_ATTEMPTS` wrong
tries, and is sent again at most once a :data:`RESEND_SECONDS` and :data:`MAX_SENDS` times an hour.

A forgotten password (忘记密码, /login/reset) is reset with a code sent to the verified phone by the same means —
the same row, expiry, tries and resend limits (:func:`request_reset`, :func:`reset_password`); its text says what it
is for. No purpose is stored with a code: a verification's goes only to an unverified phone and a reset's only to a
verified one, and either proves the holder has that phone; a change of the number deletes it.

What a verified phone gives (``auth.scope``): the appeals registered with that number — a call to 12345 an operator
took, a letter, another channel — are the citizen's own to read, follow and rate, as /track gives them with the
number and the phone. An unverified phone gives nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cityhub.auth.errors import TooManyAttempts
from cityhub.auth.models import PhoneCode
from cityhub.db import utcnow
from cityhub.errors import Conflict, NotFound, ValidationFailed
from cityhub.masking import mask_phone
from cityhub.org.models import Role, User
from cityhub.org.schemas import phone_number

CODE_MINUTES = 10  # a code is valid this long after it was sent
MAX_ATTEMPTS = 5  # wrong codes typed before a code is spent
RESEND_SECONDS = 60  # between two codes
MAX_SENDS = 5  # codes in an hour
_SEND_WINDOW = timedelta(hours=1)
CODE_DIGITS = 6


@dataclass(frozen=True)
class PhoneStatus:
    """An account's phone as its owner and the administrators see it: masked, and whether it is verified; a code
    pending (sent, not yet typed back) and when another may be asked for."""

    phone: str | None  # as stored (the owner's own page shows it whole)
    masked: str | None
    verified: bool
    verified_at: datetime | None
    pending: bool = False
    pending_expires_at: datetime | None = None
    tries_left: int | None = None
    resend_at: datetime | None = None


def _account(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def _citizen(session: Session, user_id: int) -> User:
    user = _account(session, user_id)
    if user.role != Role.CITIZEN:
        # Staff's phones are an administrator's to set; a verified phone means something only for a citizen.
        raise Conflict("only a citizen's account verifies its phone here; an administrator sets a staff member's")
    return user


def _hash(salt: str, user_id: int, phone: str, code: str) -> str:
    return hmac.new(salt.encode(), f"{user_id}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def status(session: Session, *, user_id: int, now: datetime | None = None) -> PhoneStatus:
    """The account's phone and where its verification stands."""
    now = now or utcnow()
    user = _account(session, user_id)
    verified = user.verified_phone is not None
    code = session.get(PhoneCode, user_id)
    pending = code is not None and not verified and code.phone == user.phone and code.expires_at > now
    resend_at = _resend_at(code) if code is not None else None
    return PhoneStatus(
        phone=user.phone,
        masked=mask_phone(user.phone),
        verified=verified,
        verified_at=user.phone_verified_at if verified else None,
        pending=pending,
        pending_expires_at=code.expires_at if pending and code is not None else None,
        tries_left=MAX_ATTEMPTS - code.attempts if pending and code is not None else None,
        resend_at=resend_at if resend_at is not None and resend_at > now else None,
    )


def _resend_at(code: PhoneCode) -> datetime:
    """When the next code may be sent: a minute after the last, or an hour after the window's first once it is full."""
    after_last = code.sent_at + timedelta(seconds=RESEND_SECONDS)
    if code.sends >= MAX_SENDS:
        return max(after_last, code.window_started_at + _SEND_WINDOW)
    return after_last


def clear_on_change(session: Session, user: User, phone: str | None) -> None:
    """``user``'s phone becomes ``phone``: a new number is unverified and a code sent to the old one is void."""
    if phone != user.phone:
        user.phone_verified = None
        user.phone_verified_at = None
        session.execute(delete(PhoneCode).where(PhoneCode.user_id == user.id))


def set_phone(
    session: Session, *, user_id: int, phone: str | None, actor: Any = None, now: datetime | None = None
) -> PhoneStatus:
    """The citizen sets (or, empty, removes) their phone: checked as an appeal's phone is, unverified until a code
    sent to it is typed back (:func:`send_code` is the caller's next step). The same number again changes nothing."""
    from cityhub.auth.service import _log

    now = now or utcnow()
    user = _citizen(session, user_id)
    try:
        cleaned = phone_number(phone)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"field": "phone"}) from None
    if cleaned != user.phone:
        before = {"phone": mask_phone(user.phone), "phone_verified": user.verified_phone is not None}
        clear_on_change(session, user, cleaned)
        user.phone = cleaned
        session.flush()
        _log(session, user, "phone_set", actor, before, phone=mask_phone(cleaned), phone_verified=False)
    return status(session, user_id=user_id, now=now)


def send_code(session: Session, *, user_id: int, now: datetime | None = None) -> PhoneStatus:
    """Send a new code to the citizen's unverified phone by text message (the ``citizen`` topic), replacing any
    earlier one. Refused: no phone or one already verified (:class:`Conflict`), a number that is no mobile's
    (:class:`ValidationFailed` on ``phone``: a code goes by text message), too soon after the last or too many in an
    hour (:class:`TooManyAttempts`), no relay to send it (:class:`Conflict`)."""
    from cityhub.workorders.tracking import phone_digits

    now = now or utcnow()
    user = _citizen(session, user_id)
    if not user.phone:
        raise Conflict("set a phone number first", details={"field": "phone"})
    if user.verified_phone is not None:
        raise Conflict("this phone number is verified already", details={"field": "phone"})
    digits = phone_digits(user.phone)
    if not (len(digits) == 11 and digits.startswith("1")):
        raise ValidationFailed(
            "a code is sent by text message: the phone must be a mobile number (11 digits, 1…)",
            details={"field": "phone", "mobile": False},
        )
    _send(session, user, now=now, reset=False)
    return status(session, user_id=user_id, now=now)


def _send(session: Session, user: User, *, now: datetime, reset: bool) -> None:
    """A new code to ``user.phone`` (checked by the caller: a mobile), replacing any earlier one, within the resend
    limits (:class:`TooManyAttempts`); ``reset``: its text says it resets the password. No relay: :class:`Conflict`,
    nothing stored."""
    from cityhub.notify.service import on_phone_code

    assert user.phone is not None
    code = session.get(PhoneCode, user.id)
    if code is not None and code.phone == user.phone:
        wait = _resend_at(code)
        if wait > now:
            seconds = max(1, int((wait - now).total_seconds() + 0.999))
            raise TooManyAttempts(f"a code was sent a moment ago; ask again in {seconds} s", retry_after=seconds)
    fresh = code is None or code.phone != user.phone or now - code.window_started_at >= _SEND_WINDOW
    secret = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    if on_phone_code(session, phone=user.phone, code=secret, minutes=CODE_MINUTES, now=now, reset=reset) == 0:
        raise Conflict(
            "no SMS relay subscribes to the citizen topic: a code cannot be sent now",
            details={"field": "phone", "relay": False},
        )
    if code is None:
        code = PhoneCode(user_id=user.id)
        session.add(code)
    code.phone = user.phone
    code.salt = salt
    code.code_hash = _hash(salt, user.id, user.phone, secret)
    code.sent_at = now
    code.expires_at = now + timedelta(minutes=CODE_MINUTES)
    code.attempts = 0
    code.sends = 1 if fresh else code.sends + 1
    if fresh:
        code.window_started_at = now
    session.flush()


def verify(session: Session, *, user_id: int, code: str, actor: Any = None, now: datetime | None = None) -> PhoneStatus:
    """The citizen types back the code: right, their phone is verified. A wrong code counts (committed here, even
    though it then raises) and the :data:`MAX_ATTEMPTS`-th spends it; an expired or spent code asks for a new one."""
    from cityhub.auth.service import _log

    now = now or utcnow()
    user = _citizen(session, user_id)
    typed = "".join((code or "").split())
    if not typed:
        raise ValidationFailed("code is required", details={"field": "code"})
    pending = session.get(PhoneCode, user_id)
    if user.verified_phone is not None:
        raise Conflict("this phone number is verified already", details={"field": "code"})
    if pending is None or pending.phone != user.phone:
        raise Conflict("no code was sent to this phone number: ask for one", details={"field": "code"})
    if pending.expires_at <= now:
        raise ValidationFailed(
            f"the code has expired ({CODE_MINUTES} minutes): ask for a new one",
            details={"field": "code", "expired": True},
        )
    if pending.attempts >= MAX_ATTEMPTS:
        raise ValidationFailed("too many wrong codes: ask for a new one", details={"field": "code", "spent": True})
    if not hmac.compare_digest(pending.code_hash, _hash(pending.salt, user_id, pending.phone, typed)):
        pending.attempts += 1
        left = MAX_ATTEMPTS - pending.attempts
        session.commit()  # the wrong try counts even though the request answers with an error
        raise ValidationFailed(
            f"wrong code ({left} tries left)" if left else "wrong code: too many wrong codes, ask for a new one",
            details={"field": "code", "tries_left": left},
        )
    user.phone_verified = user.phone
    user.phone_verified_at = now
    session.delete(pending)
    session.flush()
    _log(session, user, "phone_verified", actor, None, phone=mask_phone(user.phone), phone_verified=True)
    return status(session, user_id=user_id, now=now)


# ------------------------------------------------------------------------------------ 忘记密码: a reset by phone

RESET_KEY = "reset:"  # the login rate limits' key of a reset (auth.service.check_attempts), before the name typed


@dataclass(frozen=True)
class PasswordReset:
    """A forgotten password reset with a code sent to the account's verified phone."""

    user: User
    sessions_ended: int
    tokens_revoked: int


def reset_account(session: Session, *, name: str, now: datetime | None = None) -> User | None:
    """The account a forgotten password's reset goes to: named by its login name, or by its verified phone (any of
    its spellings, ``+86`` or not; a phone that more than one account has verified names none), a citizen's, active,
    with a password, not locked by an administrator and with its phone verified. None for any other — a staff
    member's password is their administrator's to reset."""
    from cityhub.auth.service import is_locked
    from cityhub.org.service import get_user_by_username
    from cityhub.workorders.tracking import phone_spellings

    name = (name or "").strip()
    if not name:
        return None
    user = get_user_by_username(session, username=name[:64])
    if user is None and (spellings := phone_spellings(name)):
        holders = [
            u
            for u in session.scalars(select(User).where(User.phone_verified.in_(sorted(spellings))))
            if u.verified_phone is not None
        ]
        user = holders[0] if len(holders) == 1 else None
    if (
        user is None
        or user.role != Role.CITIZEN
        or not user.active
        or user.password_hash is None
        or is_locked(user, now)
        or user.verified_phone is None
    ):
        return None
    return user


def _reset_key(name: str) -> str:
    return (RESET_KEY + (name or "").strip())[:64]


def request_reset(session: Session, *, name: str, client_ip: str, now: datetime | None = None) -> None:
    """忘记密码's first step: a code to the verified phone of the account ``name`` names (:func:`reset_account`), by
    the same code as a phone's verification — one pending code per account, the same expiry, tries and resend
    limits. It answers alike whatever ``name`` is: an unknown name, a staff member's, an unverified phone, a code
    asked for too soon, no relay — nothing sent, nothing said. Every request counts towards the login rate limits
    (per address, and per name typed: ``reset:<name>``), a real name's as an unknown one's, so that neither the
    answer nor the limit tells them apart; 429 (:class:`TooManyAttempts`) past them."""
    from cityhub.auth.service import check_attempts, record_failed_attempt

    now = now or utcnow()
    key = _reset_key(name)
    check_attempts(session, key=key, client_ip=client_ip, now=now, what="password resets", of="this name")
    record_failed_attempt(session, key=key, client_ip=client_ip, now=now)
    user = reset_account(session, name=name, now=now)
    if user is None:
        return
    # Refused (too soon, no relay) before it writes anything, and said to nobody: the answer is a stranger's.
    with contextlib.suppress(TooManyAttempts, Conflict):
        _send(session, user, now=now, reset=True)


def reset_password(
    session: Session, *, name: str, code: str, password: str, client_ip: str, now: datetime | None = None
) -> PasswordReset:
    """忘记密码's second step: the code sent to the account's verified phone and a new password. A wrong, expired or
    spent code — or a name that is no such account's — is refused alike (:class:`ValidationFailed` on ``code``,
    counted towards the login rate limits, and a wrong code towards the code's :data:`MAX_ATTEMPTS`; committed
    although the request fails). The code right, the new password must pass the project's rules
    (``passwords.check_strength``, as every password: refused on ``password``, the code still good). Then, as an
    administrator's reset: the password changes, the account's password-login lockout is cleared, every session
    ends and every personal API token is revoked (whoever learnt the old password may have made one), the code is
    spent, and the configuration log says ``reset_password`` (by the citizen, ``via`` ``phone``; never the
    password). An administrator's lock stays."""
    from cityhub.auth import passwords
    from cityhub.auth.service import (
        _log,
        check_attempts,
        clear_password_lockout,
        end_sessions,
        record_failed_attempt,
        revoke_tokens,
    )
    from cityhub.workorders.service import Actor

    now = now or utcnow()
    key = _reset_key(name)
    check_attempts(session, key=key, client_ip=client_ip, now=now, what="password resets", of="this name")
    user = reset_account(session, name=name, now=now)
    typed = "".join((code or "").split())
    pending = session.get(PhoneCode, user.id) if user is not None else None
    live = (
        pending
        if user is not None
        and pending is not None
        and pending.phone == user.verified_phone
        and pending.expires_at > now
        and pending.attempts < MAX_ATTEMPTS
        else None
    )
    right = (
        live is not None
        and user is not None
        and bool(typed)
        and hmac.compare_digest(live.code_hash, _hash(live.salt, user.id, live.phone, typed))
    )
    if not right or user is None or live is None:
        if live is not None:
            live.attempts += 1
        record_failed_attempt(session, key=key, client_ip=client_ip, now=now)
        session.commit()  # the wrong try counts even though the request answers with an error
        raise ValidationFailed("wrong or expired code: ask for a new one", details={"field": "code"})
    passwords.check_strength(password, username=user.username, personal=(user.full_name, user.email, user.phone))
    user.password_hash = passwords.hash_password(password)
    clear_password_lockout(session, username=user.username)
    ended = end_sessions(session, user_id=user.id)
    revoked = revoke_tokens(session, user_id=user.id)
    session.delete(live)
    session.flush()
    actor = Actor(name=(user.full_name or user.username)[:80], user_id=user.id, role=user.role.value)
    _log(session, user, "reset_password", actor, None, via="phone", sessions_ended=ended, tokens_revoked=revoked)
    return PasswordReset(user=user, sessions_ended=ended, tokens_revoked=revoked)
