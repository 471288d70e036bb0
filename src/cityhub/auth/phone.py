"""A citizen's phone on their account (我的手机号), proved before it counts.

A citizen sets their phone on /account; it is checked as an appeal's phone is (``org.schemas.phone_number``) and is
at once unverified. A six-digit code goes to it by text message through the district's SMS relay — the ``citizen``
webhook topic that carries the answers' texts (``notify.service.on_phone_code``) — and typed back on /account proves
it: ``users.phone_verified`` then holds the number. Whatever changes ``users.phone`` afterwards (the citizen again, an
administrator) leaves it unverified (``org.models.verified_phone``; :func:`clear_on_change` says so at once).

A code is kept only as a salted SHA-256, expires after :data:`CODE_MINUTES` minutes, takes :data:`MAX_ATTEMPTS` wrong
tries, and is sent again at most once a :data:`RESEND_SECONDS` and :data:`MAX_SENDS` times an hour.

What a verified phone gives (``auth.scope``): the appeals registered with that number — a call to 12345 an operator
took, a letter, another channel — are the citizen's own to read, follow and rate, as /track gives them with the
number and the phone. An unverified phone gives nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
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
    from cityhub.notify.service import on_phone_code
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
    code = session.get(PhoneCode, user_id)
    if code is not None and code.phone == user.phone:
        wait = _resend_at(code)
        if wait > now:
            seconds = max(1, int((wait - now).total_seconds() + 0.999))
            raise TooManyAttempts(f"a code was sent a moment ago; ask again in {seconds} s", retry_after=seconds)
    fresh = code is None or code.phone != user.phone or now - code.window_started_at >= _SEND_WINDOW
    secret = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    if on_phone_code(session, phone=user.phone, code=secret, minutes=CODE_MINUTES, now=now) == 0:
        raise Conflict(
            "no SMS relay subscribes to the citizen topic: a code cannot be sent now",
            details={"field": "phone", "relay": False},
        )
    if code is None:
        code = PhoneCode(user_id=user_id)
        session.add(code)
    code.phone = user.phone
    code.salt = salt
    code.code_hash = _hash(salt, user_id, user.phone, secret)
    code.sent_at = now
    code.expires_at = now + timedelta(minutes=CODE_MINUTES)
    code.attempts = 0
    code.sends = 1 if fresh else code.sends + 1
    if fresh:
        code.window_started_at = now
    session.flush()
    return status(session, user_id=user_id, now=now)


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
