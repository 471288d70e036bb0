"""What the pages' forms share: the service layer's validation messages in the user's language, field errors of a
refused form, and calendar days typed into date fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.errors import CityhubError, NotFound, ValidationFailed
from cityhub.web.i18n import Translator
from cityhub.workorders.lifecycle import BACK_REASON_NEEDED

T = TypeVar("T")

_TOO_LONG = re.compile(r"at most (\d+) character")
# 交办's 限期办结 before today (``workorders.service._assign_deadline``; no day at all is the life cycle's reason).
_DEADLINE_PAST = re.compile(r"^deadline \S+ is before today \((\S+)\)")
_PHONE_LENGTH = re.compile(r"phone must have (\d+) to (\d+) digits")
_BOUND = re.compile(r"Input should be (less|greater) than or equal to (-?[\d.]+)")
_STRICT_BOUND = re.compile(r"Input should be (less|greater) than (-?[\d.]+)")
_TIER_OF_TARGET = re.compile(r"target \w+ is at tier (\w+), not \w+")
# How the unit service refuses a tier that does not fit the tree (org.service.PARENT_TIERS).
_TIER_UNDER = re.compile(r"^a (\w+) cannot sit under a (\w+)")
_TIER_TOP = re.compile(r"^a (\w+) cannot sit without a parent unit")
_TIER_CHILDREN = re.compile(r"^a (\w+) cannot hold the (\w+) units under it")


# How a unit's boundary is refused (``org.schemas.check_boundary``, the units page's own JSON reading): each problem's
# words in the user's language, the place in the coordinates (``coordinates[0][1]``) kept as the service names it.
_BOUNDARY_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^the boundary is not JSON"), "err.boundary_not_json"),
    (re.compile(r"^boundary must be a GeoJSON object"), "err.boundary_not_object"),
    (re.compile(r"^boundary must be a Polygon or MultiPolygon, not (?P<kind>.*)$"), "err.boundary_type"),
    (re.compile(r"^MultiPolygon coordinates must be a non-empty list"), "err.boundary_no_polygons"),
    (re.compile(r"^(?P<where>\S+): a polygon is a non-empty list of linear rings"), "err.boundary_no_rings"),
    (re.compile(r"^(?P<where>\S+): a linear ring needs at least 4 positions"), "err.boundary_short_ring"),
    (re.compile(r"^(?P<where>\S+): positions are \[longitude, latitude\] numbers"), "err.boundary_position"),
    (re.compile(r"^(?P<where>\S+): position (?P<position>.*?) ?is outside longitude/latitude"), "err.boundary_range"),
    (re.compile(r"^(?P<where>\S+): a linear ring must be closed"), "err.boundary_open_ring"),
)


def boundary_problem(t: Translator, message: str) -> str | None:
    """A refusal of a unit's boundary in the user's language (None when ``message`` is about something else)."""
    message = message.removeprefix("Value error, ")  # as a request's schema (pydantic) words it
    for pattern, key in _BOUNDARY_PROBLEMS:
        if m := pattern.search(message):
            return t("err.boundary", detail=t(key, **{k: v or "" for k, v in m.groupdict().items()}))
    return None


def whole_number(value: str | None) -> int | None:
    """A form or query value as an integer; None when empty or not a number."""
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


# What the password check's reasons (``details.reason`` of its refusal) say on a page.
PASSWORD_REASONS = {
    "too_short": "account.pw_too_short",
    "too_uniform": "account.pw_too_uniform",
    "contains_username": "account.pw_contains_username",
    "guessable": "account.pw_guessable",
}


def password_error(exc: CityhubError) -> str | None:
    """The catalogue key saying why a new password was refused (None when ``exc`` is about something else)."""
    if exc.details.get("field") != "password":
        return None
    return PASSWORD_REASONS.get(str(exc.details.get("reason")), "err.validation")


# How the service layer refuses a text beyond its limit (``errors.check_length``).
_LONGER_THAN = re.compile(r"is longer than (\d+) characters")


def limit_exceeded(message: str) -> int | None:
    """The limit a refusal of ``errors.check_length`` says a text went beyond; None for any other refusal."""
    m = _LONGER_THAN.search(message)
    return int(m.group(1)) if m else None


_CLEAR_SIDE = re.compile(r"clear threshold (\S+) must not be (above|below) the threshold (\S+)")
# intake.enterprise's refusals of a unified social credit code, and of a code or need without the enterprise's name.
_CODE_LENGTH = re.compile(r"is not a unified social credit code: it has (\d+) characters")
_CODE_CHARS = re.compile(r"is not a unified social credit code: it holds (\S+), which")
_CODE_CHECK = re.compile(r"is not a unified social credit code: it does not check: its last character should be (\S)")


def field_message(t: Translator, message: str) -> str:
    """A validation message of the service layer in the user's language."""
    if "knowledge entry" in message and ("inactive or expired" in message or "not valid yet" in message):
        return t("err.kb_entry_unusable")
    if m := _CODE_LENGTH.search(message):
        return t("err.credit_code_length", n=m[1])
    if m := _CODE_CHARS.search(message):
        return t("err.credit_code_chars", chars=m[1])
    if m := _CODE_CHECK.search(message):
        return t("err.credit_code_check", expected=m[1])
    if message.startswith("enterprise_name is missing"):
        return t("err.enterprise_name_needed")
    if m := _DEADLINE_PAST.search(message):
        return t("err.deadline_past", today=m[1])
    if BACK_REASON_NEEDED in message:  # a dispatch back to the unit that returned it (退单), with no reason
        return t("err.back_reason_needed")
    if "say what is still wrong" in message:  # a citizen's 不满意 without a word of why
        return t("track.reason_needed")
    if "needs a title or content" in message:
        return t("err.need_text")
    if "phone must contain digits" in message:
        return t("err.phone")
    if "email must be an e-mail address" in message:
        return t("err.email")
    if m := _PHONE_LENGTH.search(message):
        return t("err.phone_length", low=m.group(1), high=m.group(2))
    if m := _TOO_LONG.search(message) or _LONGER_THAN.search(message):
        return t("err.too_long", n=int(m.group(1)))  # a count of characters, written as the language writes counts
    if "valid integer" in message or "valid number" in message:
        return t("err.number")
    if m := _BOUND.search(message):
        return t("err.at_most" if m.group(1) == "less" else "err.at_least", n=m.group(2))
    if m := _STRICT_BOUND.search(message):
        return t("err.below" if m.group(1) == "less" else "err.above", n=m.group(2))
    if "valid_from must be before valid_until" in message or "valid_until must be after valid_from" in message:
        return t("err.dates_order")
    if "needs an existing target_unit_id" in message:
        return t("err.need_unit")
    if "threshold must be in" in message:
        return t("err.threshold")
    if "Input should be" in message:
        return t("err.choice")
    if "already exists under the same parent" in message:
        return t("err.category_taken")
    if "contains a path separator" in message:
        return t("err.category_separator")
    if "a category needs a name" in message:
        return t("err.blank")
    if "the parent category is inactive" in message:
        return t("err.category_parent_inactive")
    if "reactivate the parent category first" in message:
        return t("err.category_revive_parent")
    if "unknown category" in message or re.search(r"^parent category \d+ not found", message):
        return t("err.unknown_category")
    if "must be a district, street or community" in message:
        return t("err.place_tier")
    if "unknown or inactive unit" in message:
        return t("err.unknown_unit")
    if m := _TIER_OF_TARGET.search(message):
        return t("err.tier_of_target", tier=t(f"tier.{m.group(1)}"))
    if "only consultations are answered instantly" in message:
        return t("reason.only consultations are answered instantly")
    if "keywords are all blank" in message:
        return t("err.keywords_blank")
    if "must not be blank" in message or "at least 1 character" in message:
        return t("err.blank")
    if re.search(r"^unit code \S+ already exists", message):
        return t("err.code_taken")
    if boundary := boundary_problem(t, message):
        return boundary
    if "boundary" in message or "polygon" in message.lower() or "linear ring" in message or "longitude" in message:
        return t("err.boundary", detail=message)
    if message.startswith("contact line"):
        return t("err.contacts")
    if m := _TIER_UNDER.search(message):
        return t("err.tier_under", tier=t(f"tier.{m[1]}"), parent=t(f"tier.{m[2]}"))
    if m := _TIER_TOP.search(message):
        from cityhub.org.models import UnitTier
        from cityhub.org.service import PARENT_TIERS

        parents = "、".join(sorted(t(f"tier.{p.value}") for p in PARENT_TIERS[UnitTier(m[1])] if p is not None))
        return t("err.tier_top", tier=t(f"tier.{m[1]}"), parents=parents)
    if m := _TIER_CHILDREN.search(message):
        return t("err.tier_children", tier=t(f"tier.{m[1]}"), child=t(f"tier.{m[2]}"))
    if "under its own" in message or "own sub-unit" in message:
        return t("err.unit_cycle")
    if "String should match pattern" in message:
        return t("err.code_pattern")
    if m := _CLEAR_SIDE.search(message):
        return t("err.clear_side", clear=m[1], side=t(f"err.clear_{m[2]}"), threshold=m[3])
    if "give exactly one of sensor_kind and sensor_code" in message:
        return t("err.rule_target")
    return message


# A schema's check of several fields together (a model validator, which names no field): the field it is said at.
_MODEL_PROBLEM_FIELDS = (("valid_from must be before valid_until", "valid_until"),)

Refusal = ValidationError | CityhubError


def field_errors(t: Translator, exc: Refusal) -> dict[str, str]:
    """A refused form's errors by field (``_form`` when no field is named)."""
    if isinstance(exc, ValidationError):
        return {_field_of(e["loc"], e["msg"]): field_message(t, e["msg"]) for e in exc.errors()}
    return {str(exc.details.get("field", "_form")): field_message(t, exc.message)}


def _field_of(loc: tuple[int | str, ...], message: str) -> str:
    if loc:
        return str(loc[0])
    return next((field for words, field in _MODEL_PROBLEM_FIELDS if words in message), "_form")


def every_problem(
    errors: dict[str, str], checks: Iterable[Callable[[], object]], read: Callable[[Refusal], dict[str, str]]
) -> dict[str, str]:
    """A refused form's ``errors`` with the problems its refusal stopped short of — a service checks one thing after
    another, a schema checks its fields together only once each passes, a form's own parsing comes first — so that
    the form says all of them at once, each at its field: each of ``checks`` (a check of some of the fields, raising
    a refusal) is run and what ``read`` makes of its refusal added at the fields still without a problem."""
    found = dict(errors)
    for check in checks:
        try:
            check()
        except (ValidationError, CityhubError) as exc:
            for field, message in read(exc).items():
                found.setdefault(field, message)
    return found


def local_day(text: str, field: str, *, end: bool = False) -> datetime | None:
    """A calendar day typed into a date field as the aware instant it starts in the district's time zone (``end``:
    the next midnight, for a day that is included up to its end); None when empty."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"not a date: {text}", details={"field": field}) from None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(0), tzinfo=get_settings().tz)


def day_of(moment: datetime | None, *, end: bool = False) -> str:
    """The date field's value for ``moment`` (``end``: the last day before that midnight)."""
    if moment is None:
        return ""
    day = moment.astimezone(get_settings().tz).date()
    return (day - timedelta(days=1) if end else day).isoformat()


def saved(
    db: Session, t: Translator, change: Callable[[], T], checks: Iterable[Callable[[], object]] = ()
) -> tuple[T | None, dict[str, str]]:
    """Make a form's ``change`` (validation and service call) and commit it: (its result, {}); refused, it is rolled
    back and the answer is (None, its errors by field) for the form to be shown again — with those of ``checks``
    the refusal stopped short of (:func:`every_problem`)."""
    try:
        result = change()
        db.commit()
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        return None, every_problem(field_errors(t, exc), checks, lambda more: field_errors(t, more))
    return result, {}


def removed(db: Session, remove: Callable[[], object]) -> None:
    """Delete something a page addressed and commit; 404 page when it is not there (any more)."""
    from cityhub.web.support import PageError

    try:
        remove()
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    db.commit()
