"""One error type for both APIs, classified where it arises: retryable or permanent.

The client decides what kind of failure it saw; the caller (a task) decides what to do: retry a
retryable one after `retry_after`, show a permanent one to the user with the API's own message.
"""

from __future__ import annotations

from connector.redaction import redact


class ExternalAPIError(Exception):
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        details: list[str] | None = None,
        payload: object = None,
    ) -> None:
        # The message travels on into logs, job errors and the sync log shown to users; a transport
        # error's text carries the request URL, client_secret and tokens included. Redact at birth.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.system = system  # "xero" | "bitrix24"
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.details = [redact(d) for d in details or []]
        self.payload = payload

    def __str__(self) -> str:
        where = f"{self.system} {self.status or ''} {self.code or ''}".split()
        return f"[{' '.join(where)}] {self.message}"

    def __reduce__(self):
        # Celery pickles an exception that escapes a task (result, logs, retries). The default
        # pickling calls cls(*args) and our keyword-only `system` breaks it, so the error arrived
        # as UnpickleableExceptionWrapper and the API's words were lost. Rebuild from the fields.
        return _rebuild, (type(self), self.message, dict(self.__dict__))


def _rebuild(cls: type[ExternalAPIError], message: str, state: dict) -> ExternalAPIError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class RetryableError(ExternalAPIError):
    """Network failure, timeout, 5xx, 429/503 rate limits: try again later (after retry_after)."""

    retryable = True


class RateLimitedError(RetryableError):
    """The API said "too many": wait retry_after seconds before the next call to this tenant/portal."""


class PermanentError(ExternalAPIError):
    """Validation, permission, not found: retrying the same request cannot succeed."""


class AuthorizationLostError(PermanentError):
    """The grant is dead (invalid_grant after a re-check, app uninstalled): the connection needs the
    user to reconnect; background work for it stops until then."""
