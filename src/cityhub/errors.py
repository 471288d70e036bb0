"""One exception hierarchy for the whole product; the API and CLI map it to HTTP codes and exit codes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any


class CityhubError(Exception):
    """Base of every domain error. ``code`` is a stable machine-readable name."""

    code = "error"
    http_status = 400
    # Seconds after which the same request may pass: a refusal for now (a rate limit, failed attempts, a busy server)
    # says so, and every HTTP answer of it carries them as Retry-After (:attr:`http_headers`).
    retry_after: int | None = None

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    @property
    def http_headers(self) -> dict[str, str]:
        """The headers of every HTTP answer of this error, whoever builds it (the API's JSON body, Open311's, a web
        page): ``Retry-After`` when it says when to retry — every 429 and 503."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class NotFound(CityhubError):
    code = "not_found"
    http_status = 404


class ValidationFailed(CityhubError):
    code = "validation_failed"
    http_status = 422


def schema_message(message: str) -> str:
    """A pydantic error's message as said to whoever sent the value: without the ``Value error, `` (or ``Assertion
    failed, ``) pydantic puts before what a validator of ours raised — the API's 422, Open311's 400 and the command
    line say the validator's own words."""
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def check_length(text: str | None, field: str, limit: int) -> None:
    """Refuse a text longer than ``limit`` characters, naming ``field`` ("note is longer than 500 characters": the web
    pages read the limit back from that wording, ``web.forms.limit_exceeded``)."""
    if text is not None and len(text) > limit:
        raise ValidationFailed(f"{field} is longer than {limit} characters", details={"field": field})


# A lone surrogate (JSON's "\ud800" without its pair) is no character: UTF-8 cannot encode it, so neither database
# can store it nor can the answer that would echo it be written.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as text, else None: NUL (PostgreSQL cannot store it) or a lone surrogate."""
    if "\x00" in text:
        return "must not contain NUL characters"
    if _LONE_SURROGATE.search(text):
        return "must be valid Unicode (no lone surrogates)"
    return None


def check_text(text: str | None, field: str) -> None:
    """Refuse a text no database stores (:func:`text_problem`), naming ``field``: for text that comes in other than
    as JSON (a form field), which ``api.deps.storable_body`` checks."""
    if text is not None and (problem := text_problem(text)):
        raise ValidationFailed(f"{field} {problem}", details={"field": field})


def refuse_nulls(changes: Mapping[str, Any], fields: Iterable[str]) -> None:
    """Refuse an update (``changes``: the fields sent) that sets one of ``fields`` to null: they are never empty
    (a name, a severity, a flag), and the database would refuse the row as an integrity error (a 500). Null keeps
    its meaning, emptying the field, for the others."""
    for field in fields:
        if field in changes and changes[field] is None:
            raise ValidationFailed(f"{field} cannot be null", details={"field": field})


class InvalidTransition(CityhubError):
    """An action that the life cycle does not allow in the order's current state."""

    code = "invalid_transition"
    http_status = 409

    def __init__(self, *, state: str, action: str, reason: str = "") -> None:
        message = f"action '{action}' is not allowed in state '{state}'"
        if reason:
            message += f": {reason}"
        super().__init__(message, details={"state": state, "action": action, "reason": reason})
        self.state = state
        self.action = action
        self.reason = reason


class ParameterProblem(InvalidTransition):
    """What an action was given is wrong, whatever the order's state: 422 naming the field, the message saying
    why (:class:`MissingParameter`, :class:`UnexpectedParameter`)."""

    code = "validation_failed"
    http_status = 422

    def __init__(self, *, state: str, action: str, field: str, reason: str, message: str) -> None:
        super().__init__(state=state, action=action, reason=reason)
        self.message = message
        self.args = (message,)
        self.details["field"] = field


class MissingParameter(ParameterProblem):
    """An action asked for without a parameter it needs: the request is incomplete."""

    def __init__(self, *, state: str, action: str, field: str) -> None:
        message = f"action '{action}' needs '{field}' (order in state '{state}')"
        super().__init__(state=state, action=action, field=field, reason=f"'{field}' is required", message=message)


class UnexpectedParameter(ParameterProblem):
    """An action given a parameter it does not take (a unit for an accept): refused rather than recorded as if it
    meant something."""

    def __init__(self, *, state: str, action: str, field: str) -> None:
        message = f"action '{action}' takes no '{field}'"
        super().__init__(state=state, action=action, field=field, reason=f"'{field}' is not taken", message=message)


class BadParameter(ParameterProblem):
    """An action given a value it cannot take (an extension of 45 working days, or of more than was asked for):
    wrong whatever the order's state, so 422 naming the field, not 409."""

    def __init__(self, *, state: str, action: str, field: str, reason: str) -> None:
        message = f"action '{action}' cannot take this '{field}' (order in state '{state}'): {reason}"
        super().__init__(state=state, action=action, field=field, reason=reason, message=message)


class PermissionDenied(CityhubError):
    code = "permission_denied"
    http_status = 403


class Conflict(CityhubError):
    """Concurrent modification (stale version) or a uniqueness clash."""

    code = "conflict"
    http_status = 409


class PayloadTooLarge(CityhubError):
    """A request's body larger than the server reads (``api.bodylimit``); nothing of it was read or kept."""

    code = "payload_too_large"
    http_status = 413


class Overloaded(CityhubError):
    """The server refused a request it could not take in time (admission gate); nothing of it ran."""

    code = "overloaded"
    http_status = 503
    retry_after: int

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={**(details or {}), "retry_after": retry_after})
        self.retry_after = retry_after


class StorageUnavailable(CityhubError):
    """The server could not keep what it was given (the file store cannot be written); nothing of it was kept."""

    code = "storage_unavailable"
    http_status = 503


class ToolFailed(CityhubError):
    """A program a command runs to do its work could not do it: PostgreSQL's client programs missing, or ``pg_dump``
    failing — the server unreachable, a login refused, a database that is not there. The command could not run
    (exit 2, docs/operations.md *Exit codes*), whatever was asked; nothing was written."""

    code = "tool_failed"
    http_status = 503
