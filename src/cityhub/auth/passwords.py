"""Argon2id password hashing (argon2-cffi), plus the generator of one-time passwords for new accounts."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cityhub.auth.settings import get_auth_settings
from cityhub.errors import ValidationFailed

MIN_LENGTH = 10


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


def hasher() -> PasswordHasher:
    s = get_auth_settings()
    return _hasher(s.argon2_time_cost, s.argon2_memory_kib)


def check_strength(password: str) -> None:
    """Refuse passwords too short or too uniform to stand an online guess."""
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(f"a password needs at least {MIN_LENGTH} characters", details={"field": "password"})
    if len(set(password)) < 4:
        raise ValidationFailed("a password needs more than 3 distinct characters", details={"field": "password"})


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
