"""Identity errors, in the product's one hierarchy (mapped to the one error body by the app)."""

from __future__ import annotations

from cityhub.errors import CityhubError, PermissionDenied


class Unauthenticated(CityhubError):
    code = "unauthenticated"
    http_status = 401


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"


class AccountLocked(CityhubError):
    code = "account_locked"
    http_status = 423


class TooManyAttempts(CityhubError):
    code = "too_many_attempts"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        # ``retry_after`` as every other refusal for now says it (rate_limited, overloaded); ``retry_after_seconds``,
        # its first name here, kept for the clients that read it.
        super().__init__(message, details={"retry_after": retry_after, "retry_after_seconds": retry_after})
        self.retry_after = retry_after


class CsrfFailed(PermissionDenied):
    code = "csrf_failed"


class ReauthenticationRequired(PermissionDenied):
    """A credential that may not do this on its own: a personal API token creating tokens (which could otherwise
    renew itself for ever) must be backed by the account's password."""

    code = "reauthentication_required"
