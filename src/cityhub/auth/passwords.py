"""Argon2id password hashing (argon2-cffi), the strength check of new passwords (zxcvbn), and the generator of
one-time passwords for new accounts."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from cityhub.auth.settings import get_auth_settings
from cityhub.errors import ValidationFailed

MIN_LENGTH = 10
# zxcvbn's score 0-4; 3: "safely unguessable" (about 10^8 guesses and more), far beyond what the login throttling
# lets an online attacker try, and what a stolen Argon2id hash costs an offline one dearly.
MIN_SCORE = 3
ZXCVBN_MAX_LENGTH = 72


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


def hasher() -> PasswordHasher:
    s = get_auth_settings()
    return _hasher(s.argon2_time_cost, s.argon2_memory_kib)


def check_strength(password: str, *, username: str | None = None, personal: Iterable[str | None] = ()) -> None:
    """Refuse passwords too short, too uniform, containing the username, or easy to guess.

    ``personal``: the account's other words (full name, e-mail, phone), which a guesser tries first, as the
    username. Guessability is zxcvbn's estimate (common passwords, dictionary words, names, keyboard walks,
    sequences, repeats, dates, l33t spellings); below :data:`MIN_SCORE` the password is refused with zxcvbn's own
    reason. Raises ``ValidationFailed`` naming the field ``password``, with a one-line message.
    """
    if len(password) < MIN_LENGTH:
        raise _weak(f"a password needs at least {MIN_LENGTH} characters", "too_short")
    if len(set(password)) < 4:
        raise _weak("a password needs more than 3 distinct characters", "too_uniform")
    if username and len(username.strip()) >= 3 and username.strip().casefold() in password.casefold():
        raise _weak("a password must not contain the username", "contains_username")
    words = [w.strip() for w in (username, *personal) if w and w.strip()]
    # zxcvbn refuses longer input; a strong password is strong in its first 72 characters.
    estimate = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=words)
    if estimate["score"] < MIN_SCORE:
        feedback = estimate["feedback"]
        reason = feedback["warning"] or " ".join(feedback["suggestions"]) or "it is a common or patterned password"
        raise _weak(f"this password is too easy to guess: {reason.rstrip('.')}", "guessable")


def _weak(message: str, reason: str) -> ValidationFailed:
    """``reason``: what a page tells the user in its own language (too_short, too_uniform, contains_username,
    guessable)."""
    return ValidationFailed(message, details={"field": "password", "reason": reason})


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing hash still costs one verification, so timing tells nothing."""
    try:
        return hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=4)
def _dummy_hash_for(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash(secrets.token_urlsafe(16))


def _dummy_hash() -> str:
    s = get_auth_settings()
    return _dummy_hash_for(s.argon2_time_cost, s.argon2_memory_kib)


def generate_password() -> str:
    """A random 20-character password (about 120 bits)."""
    return secrets.token_urlsafe(15)
