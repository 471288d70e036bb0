"""The strength check of new passwords (auth/passwords.py): common, patterned and personal passwords are refused
with a one-line reason naming the field; the demo's and the fixtures' passwords pass."""

from __future__ import annotations

import pytest

from cityhub.auth.passwords import check_strength
from cityhub.demo.extras import DEFAULT_DEMO_PASSWORD
from cityhub.errors import ValidationFailed


def _refusal(password: str, **kw) -> str:
    with pytest.raises(ValidationFailed) as caught:
        check_strength(password, **kw)
    assert caught.value.details["field"] == "password"
    assert caught.value.details["reason"] in ("too_short", "too_uniform", "contains_username", "guessable")
    assert "\n" not in caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    "password",
    [
        "password12",  # common password
        "1234567890",  # sequence of digits
        "abcdabcdab",  # repeated pattern
        "qwertyuiop",  # keyboard walk
        "1qaz2wsx3edc",
        "Password123",
        "p@ssw0rd12",  # l33t spelling of a common one
        "admin12345",
        "a123456789",
        "woaini1314",  # a common Chinese password
    ],
)
def test_common_and_patterned_passwords_are_refused(password):
    assert "too easy to guess" in _refusal(password)


def test_too_short_or_too_uniform_passwords_say_so():
    assert "at least 10 characters" in _refusal("short")
    assert "more than 3 distinct characters" in _refusal("abababababab")


def test_the_username_and_the_account_s_own_words_are_refused():
    assert "must not contain the username" in _refusal("Zhangwei-2026-key", username="zhangwei")
    assert "must not contain the username" in _refusal("my-handler.li-pw", username="handler.li")
    # The phone number with a letter is no password.
    assert "too easy to guess" in _refusal("13800000000x", username="u1", personal=["张伟", None, "13800000000"])


@pytest.mark.parametrize(
    "password",
    [DEFAULT_DEMO_PASSWORD, "correct-horse-battery", "env-demo-pass-77", "another-long-pass", "我的密码是一句很长的话"],
)
def test_passwords_hard_to_guess_pass(password):
    check_strength(password, username="disp", personal=["黄志强", "disp@example.org", "13800000000"])


def test_a_long_password_is_judged_by_its_first_72_characters():
    check_strength("correct-horse-battery " * 10)
    assert "too easy to guess" in _refusal("1234567890" * 10)
