"""What xero-python raised, translated into our retryable/permanent errors (xero-api.md §8.4).

The SDK raises a zoo: AccountingBadRequestException (400), NotFoundException (404),
RateLimitException (429), plain HTTPStatusException for 401/403/5xx, bare urllib3 errors for the
network, AccessTokenExpiredError from its token logic, and ValueError when a response holds an enum
value it does not know (pitfall 8). Callers see only integrations.common.errors types.

Token trouble (401, an expired token, `invalid_grant`) is not classified here: the client handles it
by refreshing once, so `token_problem(exc)` only recognises it.
"""

from __future__ import annotations

import json

import urllib3
from xero_python.exceptions import (
    AccessTokenExpiredError,
    ApiException,
    ApiTypeError,
    ApiValueError,
    BadRequestException,
    HTTPStatusException,
    NotFoundException,
    RateLimitException,
)

from integrations.common.errors import ExternalAPIError, PermanentError, RateLimitedError, RetryableError

SYSTEM = "xero"
# Retry-After when a 429 does not say (Xero always does; a proxy might not).
DEFAULT_RETRY_AFTER_S = 60.0


def token_problem(exc: BaseException) -> bool:
    """True when `exc` means "this access token is not (or no longer) good": refresh and retry.

    A 401 that says the grant lacks a scope (`WWW-Authenticate: Bearer error="insufficient_scope"`,
    xero-api.md §1.4) is not: a new token of the same grant has the same scopes."""
    if isinstance(exc, AccessTokenExpiredError):
        return True
    if isinstance(exc, BadRequestException) and _error_data(exc) == {"error": "invalid_grant"}:
        return True  # the SDK's own refresh failed; only possible if it was handed a refresh token
    return isinstance(exc, HTTPStatusException) and exc.status == 401 and not scope_missing(exc)


def scope_missing(exc: BaseException) -> bool:
    """A 401 whose challenge says the token's grant lacks the scope the call needs."""
    if not (isinstance(exc, HTTPStatusException) and exc.status == 401):
        return False
    challenge = next((str(v) for k, v in headers_of(exc).items() if str(k).lower() == "www-authenticate"), "")
    return "insufficient_scope" in challenge


def unauthorized(exc: BaseException, *, operation: str, refreshed: bool = False) -> PermanentError:
    """Our error for a 401 that a refresh does not (or did not) cure, in Xero's words."""
    detail = (_detail(exc) if isinstance(exc, HTTPStatusException) else "") or str(exc) or "Unauthorized"
    if scope_missing(exc):
        return PermanentError(
            f"Xero refused {operation}: the connection was not granted the permission (scope) it needs "
            f"({detail}). Reconnect Xero to grant it.",
            system=SYSTEM,
            status=401,
            code="insufficient_scope",
        )
    when = " after a token refresh" if refreshed else ""
    return PermanentError(
        f"Xero refused the token{when} ({operation}): {detail}", system=SYSTEM, status=401, code="unauthorized"
    )


def headers_of(exc: BaseException) -> dict:
    """Response headers of an SDK HTTP error (for X-*Limit-Remaining), or {}."""
    if isinstance(exc, ApiException) and exc.http_resp is not None:
        try:
            return exc.headers or {}
        except AttributeError:
            return {}
    return {}


def xero_classify(exc: BaseException, *, operation: str) -> ExternalAPIError:
    """Our error for whatever `AccountingApi.<operation>` raised.

    Anything that is not an API or network failure (a TypeError from a wrong keyword, the SDK's
    ApiTypeError/ApiValueError for a missing parameter) is a bug of ours and is re-raised as is.
    """
    if isinstance(exc, ExternalAPIError):
        return exc
    if isinstance(exc, RateLimitException):
        problem = exc.rate_limit or "unknown"
        return RateLimitedError(
            f"Xero's {problem} rate limit was hit ({operation})",
            system=SYSTEM,
            status=429,
            code=problem,
            retry_after=_retry_after(exc) or DEFAULT_RETRY_AFTER_S,
        )
    if isinstance(exc, BadRequestException):
        return _bad_request(exc, operation)
    if isinstance(exc, NotFoundException):
        return PermanentError(
            f"Xero has no such resource ({operation}): {_detail(exc) or exc.error_message}",
            system=SYSTEM,
            status=404,
            code="not_found",
        )
    if isinstance(exc, HTTPStatusException):
        status = exc.status or 0
        if status >= 500:
            return RetryableError(
                f"Xero answered {status} ({operation}): {_detail(exc) or exc.reason}",
                system=SYSTEM,
                status=status,
                retry_after=_retry_after(exc),
            )
        if status == 401:
            return unauthorized(exc, operation=operation)
        if status == 403:
            return PermanentError(
                f"Xero refused access ({operation}): {_detail(exc) or 'Forbidden'}",
                system=SYSTEM,
                status=403,
                code="forbidden",
            )
        return PermanentError(
            f"Xero answered {status} ({operation}): {_detail(exc) or exc.reason}", system=SYSTEM, status=status
        )
    if isinstance(exc, ApiException):  # status 0: SSL failure or an unreadable content type
        return RetryableError(f"Xero call failed ({operation}): {exc.reason}", system=SYSTEM, code="transport")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return RetryableError(
            f"Xero could not be reached ({operation}): {type(exc).__name__}: {exc}", system=SYSTEM, code="network"
        )
    if isinstance(exc, ValueError) and not isinstance(exc, ApiValueError | ApiTypeError):
        # Pitfall 8: the SDK cannot read a value Xero added after this SDK version (a currency, a
        # status). Retrying gets the same answer; a write may well have succeeded in Xero.
        return PermanentError(
            f"Xero answered with a value this version of xero-python cannot read ({operation}): {exc}. "
            "If this was a write it may have been saved in Xero.",
            system=SYSTEM,
            code="unreadable_response",
        )
    raise exc


def element_errors(model: object) -> list[str]:
    """Xero's messages for one element of a batch answer (summarizeErrors=false), nested ones too.

    Takes an SDK model (Invoice, Contact, Payment, ...) or the raw JSON dict of an element and
    collects the ValidationErrors of the element, its LineItems, its Contact and so on, in order,
    without repeats.
    """
    messages: list[str] = []
    _collect(model, messages, depth=0)
    return list(dict.fromkeys(messages))


# --- internals -----------------------------------------------------------------------------------

_MAX_DEPTH = 4


def _collect(node: object, out: list[str], depth: int) -> None:
    if node is None or depth > _MAX_DEPTH or isinstance(node, str | bytes | int | float):
        return
    if isinstance(node, dict):
        for error in node.get("ValidationErrors") or []:
            if isinstance(error, dict) and error.get("Message"):
                out.append(str(error["Message"]))
        for key, value in node.items():
            if key not in ("ValidationErrors", "Warnings") and isinstance(value, dict | list):
                _collect(value, out, depth + 1)
        return
    if isinstance(node, list | tuple):
        for item in node:
            _collect(item, out, depth + 1)
        return
    attributes = getattr(node, "openapi_types", None)
    if not attributes:
        return
    for error in getattr(node, "validation_errors", None) or []:
        message = getattr(error, "message", None)
        if message:
            out.append(str(message))
    for name in attributes:
        if name in ("validation_errors", "warnings"):
            continue
        value = getattr(node, name, None)
        if isinstance(value, list) or getattr(value, "openapi_types", None):
            _collect(value, out, depth + 1)


def _bad_request(exc: BadRequestException, operation: str) -> PermanentError:
    data = _error_data(exc)
    elements = data.get("Elements") if isinstance(data, dict) else None
    messages = element_errors(elements) if elements else []
    summary = data.get("Message") if isinstance(data, dict) else None
    return PermanentError(
        "; ".join(messages) or summary or exc.reason or "Bad Request",
        system=SYSTEM,
        status=400,
        code=(data.get("Type") if isinstance(data, dict) else None) or "bad_request",
        details=messages or ([summary] if summary else []),
        payload=data,
    )


def _error_data(exc: BadRequestException) -> dict | list | None:
    try:
        return exc.error_data
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def _detail(exc: HTTPStatusException) -> str:
    """The Detail/Message of a problem-style body (401/403/404), if there is one."""
    try:
        data = json.loads(exc.body or b"")
    except (ValueError, TypeError):
        return (exc.body or b"").decode("utf-8", "replace")[:300] if isinstance(exc.body, bytes) else ""
    if isinstance(data, dict):
        return str(data.get("Detail") or data.get("Message") or data.get("message") or data.get("Title") or "")
    return ""


def _retry_after(exc: ApiException) -> float | None:
    value = headers_of(exc).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
