"""The times cityhub takes from a request — a query's window (``since``, ``created_from``, Open311's ``start_date``),
a body's time (an order's ``created_at``, a rule's ``valid_until``) — are checked here, once, before any arithmetic.

Python's calendar ends at the years 1 and 9999: 0001-01-01 at +08:00 has no UTC time, and 9999-12-31 plus a default
window has no date at all, so such a time would end as a 500 wherever it is converted or moved. No time cityhub
handles lies near those ends: outside the years below a time is a typing mistake or a probe, refused as the
request's fault (422 naming the parameter or field). Within them, any offset and any window of the API (at most
400 days) stays inside the calendar; the last year leaves the calendar's own last one for that, so that "valid until
2999-12-31" and other far ends people type as "for ever" are still taken.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator

from cityhub.errors import ValidationFailed

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


def _in_range(value: datetime) -> datetime:
    if problem := time_problem(value):
        raise ValueError(problem)
    return value


# A datetime of a query parameter or a body field: refused by validation, naming it, outside the years above.
RequestTime = Annotated[datetime, AfterValidator(_in_range)]
