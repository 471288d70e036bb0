"""Enterprise appeals (企业呼): an enterprise's staff report what their business needs — water, power, land, labour,
funding — in one place, and the departments and streets concerned answer together.

An enterprise appeal is an order like any other (channel ``enterprise``, or the hotline's when the enterprise
called), which says in its ``attributes`` who is asking and for what (:data:`KEYS`): the enterprise's name, its
unified social credit code (统一社会信用代码, GB 32100-2015: 18 characters, the last a check character,
:func:`credit_code_problem`) and the kind of need (:data:`NEEDS`). :func:`checked` is the one check of those three,
run by the order's schema (``workorders.schemas.OrderCreate``), so the API and the web form refuse the same things
in the same words, naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

# The kinds of need an enterprise reports (用水、用电、用地、用工、资金), and any other.
Need = Literal["water", "power", "land", "labour", "funding", "other"]
NEEDS: tuple[str, ...] = get_args(Need)
NAME_KEY, CODE_KEY, NEED_KEY = "enterprise_name", "credit_code", "enterprise_need"
KEYS = (NAME_KEY, CODE_KEY, NEED_KEY)
NAME_MAX_CHARS = 120

# GB 32100-2015: the characters a code is written in (no I, O, Z, S, V), each worth its position, and the weights of
# the first 17.
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_SPACES = re.compile(r"[\s\-]+")


def normal_code(code: str) -> str:
    """A code as it is written: capitals, without the spaces or hyphens typed to read it more easily."""
    return _SPACES.sub("", code).upper()


def check_character(first17: str) -> str:
    """The 18th character of a code whose first 17 are ``first17`` (all of :data:`_ALPHABET`)."""
    total = sum(_ALPHABET.index(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """What is wrong with a unified social credit code (as :func:`normal_code` writes it), or None."""
    if len(code) != 18:
        return f"has {len(code)} characters, not 18"
    wrong = sorted({c for c in code if c not in _ALPHABET})
    if wrong:
        return f"holds {''.join(wrong)}, which no such code does (digits and capitals but I, O, S, V and Z)"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"does not check: its last character should be {expected}, not {code[17]} (a character mistyped?)"
    return None


class Refused(ValueError):
    """What :func:`checked` refuses, and the key it is about (a form says it at that field)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def checked(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` with the enterprise's name trimmed and its code written as :func:`normal_code` does;
    :class:`Refused` (a ValueError) naming the key when one of :data:`KEYS` holds what it cannot (an empty one is
    dropped)."""
    out = dict(attributes)
    for key in KEYS:
        value = out.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Refused(key, f"{key} must be text")
        value = normal_code(value) if key == CODE_KEY else value.strip()
        if not value:
            del out[key]
            continue
        if key == NAME_KEY and len(value) > NAME_MAX_CHARS:
            raise Refused(key, f"{key} is longer than {NAME_MAX_CHARS} characters")
        if key == CODE_KEY and (problem := credit_code_problem(value)):
            raise Refused(key, f"{key} {value} is not a unified social credit code: it {problem}")
        if key == NEED_KEY and value not in NEEDS:
            raise Refused(key, f"{key} must be one of {', '.join(NEEDS)}, not {value!r}")
        out[key] = value
    if (CODE_KEY in out or NEED_KEY in out) and NAME_KEY not in out:
        raise Refused(NAME_KEY, f"{NAME_KEY} is missing: say which enterprise the {CODE_KEY} or {NEED_KEY} is of")
    return out


def is_enterprise_appeal(attributes: Mapping[str, Any] | None) -> bool:
    """Whether an order's attributes name the enterprise that asks."""
    return bool(attributes) and isinstance(attributes.get(NAME_KEY), str)  # type: ignore[union-attr]


def asking(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Who asks and for what, as an order's read gives it (``{"name", "credit_code", "need"}``); None for an order
    that names no enterprise."""
    if not is_enterprise_appeal(attributes):
        return None
    assert attributes is not None
    code, need = attributes.get(CODE_KEY), attributes.get(NEED_KEY)
    return {
        "name": attributes[NAME_KEY],
        "credit_code": code if isinstance(code, str) else None,
        "need": need if isinstance(need, str) else None,
    }
