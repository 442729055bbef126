"""Classification of Bitrix24 failures into the shared error types (integrations/common/errors.py).

Bitrix24 answers errors as {"error": CODE, "error_description": TEXT}, sometimes with HTTP 200,
and mixes upper and lower case in its codes, so codes are compared upper-cased. The client catches
the two token errors below and handles them (refresh and retry once); everything else goes to the
caller already classified: retry later, or show Bitrix24's own message and stop.
"""

from __future__ import annotations

import time
from typing import Any

from integrations.common.errors import (
    AuthorizationLostError,
    ExternalAPIError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)

SYSTEM = "bitrix24"

# The leaky bucket drains 2 requests/s (§3.1), and Bitrix24 sends no Retry-After: one second frees
# two slots, which is enough for the shared throttle to let the next request through.
QUERY_LIMIT_RETRY_AFTER_S = 1.0
# The operating limit blocks one method until its oldest one-minute bucket expires (§3.2): at most
# ten minutes. Clamp whatever the server says into [1 s, 10 min] so a bad clock cannot park a task
# for hours or make it spin.
OPERATION_LIMIT_MAX_WAIT_S = 600.0

_RATE_LIMITED = {"QUERY_LIMIT_EXCEEDED", "OVERLOAD_LIMIT"}
_SERVER_SIDE = {"INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER"}
# The token was refused for good: unknown/revoked token, app uninstalled, portal gone, unpaid.
_TOKEN_REJECTED = {
    "INVALID_TOKEN",
    "NO_AUTH_FOUND",
    "ERROR_OAUTH",
    "APPLICATION_NOT_FOUND",
    "AUTHORIZATION_ERROR",
    "PAYMENT_REQUIRED",
    "PORTAL_DELETED",
}


class TokenExpiredError(RetryableError):
    """401 expired_token: the access token outlived its hour. A refresh fixes it."""


class TokenRejectedError(AuthorizationLostError):
    """The token is not accepted at all (revoked, app uninstalled, portal deleted)."""


class UserTokenError(PermanentError):
    """A call made with a user's own token (from the app frame) failed authorisation. We cannot
    refresh it (we keep no user refresh tokens), so the web layer asks the user to reopen the app,
    which makes Bitrix24 POST a fresh AUTH_ID."""


class UserTokenExpiredError(UserTokenError):
    pass


class UserTokenRejectedError(UserTokenError):
    pass


class MalformedPayloadError(ValueError):
    """Something Bitrix24 (or someone pretending to be it) POSTed to us is not what Bitrix24 sends."""


def error_code(body: Any) -> str | None:
    """The error code of a Bitrix24 error body, upper-cased; "" for the empty code some classic CRM
    methods send; None when the body is not an error."""
    if not isinstance(body, dict) or "error" not in body:
        return None
    # REST v3 nests the error: {"error": {"code": ..., "message": ...}}.
    raw = body["error"]
    if isinstance(raw, dict):
        raw = raw.get("code", "")
    if raw is None:
        return None
    return str(raw).upper()


def is_error_body(body: Any) -> bool:
    return error_code(body) is not None and not (isinstance(body, dict) and "result" in body and not body["error"])


def _description(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    raw = body.get("error")
    if isinstance(raw, dict):
        return str(raw.get("message", ""))
    return str(body.get("error_description") or "")


def _operating_wait(body: Any) -> float:
    reset_at = None
    if isinstance(body, dict) and isinstance(body.get("time"), dict):
        reset_at = body["time"].get("operating_reset_at")
    try:
        wait = float(reset_at) - time.time() if reset_at is not None else 60.0
    except (TypeError, ValueError):
        wait = 60.0
    return min(max(wait, 1.0), OPERATION_LIMIT_MAX_WAIT_S)


def error_for(status: int | None, body: Any) -> ExternalAPIError:
    """The classified error for one Bitrix24 answer (a whole response or one batch command)."""
    code = error_code(body)
    original_code = str(body.get("error")) if isinstance(body, dict) and code is not None else None
    text = _description(body) or original_code or f"HTTP {status}"
    kwargs: dict[str, Any] = {"system": SYSTEM, "status": status, "code": original_code or None, "payload": body}

    if code == "EXPIRED_TOKEN":
        return TokenExpiredError(text, **kwargs)
    if code in _TOKEN_REJECTED:
        return TokenRejectedError(text, **kwargs)
    if code in _RATE_LIMITED or (not code and status == 503):
        return RateLimitedError(text, retry_after=QUERY_LIMIT_RETRY_AFTER_S, **kwargs)
    if code == "OPERATION_TIME_LIMIT" or (not code and status == 429):
        return RateLimitedError(text, retry_after=_operating_wait(body), **kwargs)
    if code in _SERVER_SIDE or (status is not None and status >= 500):
        return RetryableError(text, **kwargs)
    # ACCESS_DENIED, INVALID_ARG_VALUE, NOT_FOUND, ERROR_CORE, insufficient_scope,
    # ERROR_METHOD_NOT_FOUND, the empty code of classic CRM methods, and anything new: the same
    # request cannot succeed later, and Bitrix24's description is what the user should read.
    return PermanentError(text, **kwargs)


def raise_for_response(status: int, body: Any) -> None:
    """Raise the classified error when this answer is one; return quietly on success.

    A JSON body with "error" is an error even on HTTP 200; a non-JSON or result-less body is one
    too (a proxy's error page, a truncated answer)."""
    if is_error_body(body):
        raise error_for(status, body)
    if status >= 400:
        raise error_for(status, body)
    if not isinstance(body, dict) or "result" not in body:
        raise RetryableError("Bitrix24 answered without a result", system=SYSTEM, status=status, payload=body)


def transport_error(exc: Exception, *, method: str) -> RetryableError:
    """A network failure or timeout: nothing reached Bitrix24 or its answer was lost; try later."""
    return RetryableError(f"{method}: {type(exc).__name__}: {exc}", system=SYSTEM)
