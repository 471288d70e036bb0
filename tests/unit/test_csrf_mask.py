"""A session's CSRF token as pages carry it: masked afresh each time, taken back masked or plain."""

from __future__ import annotations

import secrets

from cityhub.auth import csrf


def test_a_masked_token_differs_every_time_and_still_matches() -> None:
    token = secrets.token_urlsafe(24)
    masked = {csrf.mask(token) for _ in range(20)}
    assert len(masked) == 20 and token not in masked
    assert all(token not in m for m in masked)
    assert all(csrf.matches(m, token) for m in masked)


def test_the_plain_token_matches_and_anything_else_does_not() -> None:
    token, other = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    masked = csrf.mask(token)
    assert csrf.matches(token, token)
    assert not csrf.matches(other, token)
    assert not csrf.matches(csrf.mask(other), token)
    assert not csrf.matches(masked[:-4], token)  # cut short
    assert not csrf.matches(masked[:-2] + ("AA" if not masked.endswith("AA") else "BB"), token)
    assert not csrf.matches("%%% not base64 %%%", token)
    assert not csrf.matches("", token) and not csrf.matches(None, token) and not csrf.matches(masked, None)
    assert not csrf.matches(masked, "")
