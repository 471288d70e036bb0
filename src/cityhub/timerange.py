"""The times cityhub takes from a request — a query's window (``since``, ``created_from``, Open311's ``start_date``),
a body's time (an order's ``created_at``, a rule's ``valid_until``) — are checked here, once, before any arithmetic;
the times the API answers are written by ``answer_time`` where a response model does not write them.

Python's calendar ends at the years 1 and 9999: 0001-01-01 at +08:00 has no UTC time, and 9999-12-31 plus a default
window has no date at all, so such a time would end as a 500 wherever it is converted or moved. No time cityhub
handles lies near those ends: outside the years below a time is a typing mistake or a probe, refused as the
request's fault (422 naming the parameter or field). Within them, any offset and any window of the API (at most
400 days) stays inside the calendar; the last year leaves the calendar's own last one for that, so that "valid until
2999-12-31" and other far ends people type as "for ever" are still taken.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, TypeAdapter

from cityhub.errors import ValidationFailed
from cityhub.jsonvalues import map_strings

FIRST_YEAR = 1900
LAST_YEAR = 9998


def time_problem(value: datetime) -> str | None:
    """Why ``value`` is no time a request may give (its year as written, whatever its offset), else None."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        return f"must be in the years {FIRST_YEAR} to {LAST_YEAR}"
    return None


def check_time(value: datetime | None, field: str) -> datetime | None:
    """``value`` if a request may give it; else ValidationFailed naming ``field`` (for times read by hand, such as
    Open311's parameters)."""
    if value is not None and (problem := time_problem(value)):
        raise ValidationFailed(f"{field} {problem}", details={"field": field})
    return value


# A time whose offset lost its sign: ``…T05:30:00+08:00`` written into a query string as it is, whose ``+`` then reads
# as a space (``…T05:30:00 08:00``), which the parser only calls "unexpected extra characters".
_PLUS_READ_AS_SPACE = re.compile(r"\d\d:\d\d(:\d\d(\.\d+)?)? (\d\d(:?\d\d)?)$")


def _sign_kept(value: Any) -> Any:
    if isinstance(value, str) and (lost := _PLUS_READ_AS_SPACE.search(value)):
        offset = lost.group(3)
        raise ValueError(
            f"the time zone reads ' {offset}': a '+' in a query string is read as a space, so send +{offset} as "
            f"%2B{offset}"
        )
    return value


def _in_range(value: datetime) -> datetime:
    if problem := time_problem(value):
        raise ValueError(problem)
    return value


# A datetime of a query parameter or a body field: refused by validation, naming it, outside the years above (and,
# with a hint, one whose offset's "+" a query string turned into a space).
RequestTime = Annotated[datetime, BeforeValidator(_sign_kept), AfterValidator(_in_range)]


_INSTANT = TypeAdapter(datetime)


def answer_time(value: datetime) -> str:
    """An instant as every answer of the API (``/api/v1``) gives it: RFC 3339 in UTC with ``Z`` (fractional seconds
    only when there are), as the response models write the times the database holds in UTC — for answers built by
    hand. Open311 keeps its own format (``sharing.georeport``)."""
    return str(_INSTANT.dump_python(value.astimezone(UTC), mode="json"))


_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


def answer_times(value: Any) -> Any:
    """A JSON value (an audit event's payload, written with ``isoformat``) with every date-time string in it, one
    with its offset, as :func:`answer_time` writes it; other values as they are."""
    return map_strings(value, _answer_text)


def _answer_text(text: str) -> str:
    return answer_time(datetime.fromisoformat(text)) if _STORED_TIME.fullmatch(text) else text
