"""What the page modules share: Bitrix24 failures as clear answers, the signed-in user's client,
request bodies, ids and the invoice kind a request names.

Every Bitrix24 read uses the signed-in user's own token (frame_session_bitrix24_client), so
Bitrix24 decides what they see and act on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from accounts.models import Portal
from accounts.services.frame import frame_session_bitrix24_client
from accounts.services.xero import xero_connection_of
from connector.input_guard import positive_id
from integrations.bitrix24.errors import UserTokenError
from integrations.common.errors import ExternalAPIError

REOPEN = "Your Bitrix24 session expired — reopen the app from Bitrix24."


def bitrix24_errors(view: Callable) -> Callable:
    """Bitrix24 failures as a clear page (or JSON for fetch calls) instead of a 500.

    An expired or refused user token cannot be refreshed by us (we keep no user refresh tokens):
    the user reopens the app and Bitrix24 posts a fresh one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        wants_json = request.method == "POST" or request.headers.get("Accept", "").startswith("application/json")
        try:
            return view(request, *args, **kwargs)
        except UserTokenError:
            status, message, kind = 401, REOPEN, "session_expired"
        except ExternalAPIError as exc:
            status = 503 if exc.retryable else 502
            message, kind = f"Bitrix24 did not answer as expected: {exc.message}", "bitrix24"
        if wants_json:
            return JsonResponse({"error": message, "kind": kind}, status=status)
        return render(request, "sync/error.html", {"message": message, "kind": kind}, status=status)

    return wrapper


def xero_ready(portal: Portal) -> bool:
    connection = xero_connection_of(portal=portal)
    return bool(connection and connection.is_active)


def user_client(request: HttpRequest):
    return frame_session_bitrix24_client(session=request.frame_user)


class MalformedBody(ValueError):
    """A JSON body that is not JSON, or not a JSON object: the caller answers 400 with this text."""


def json_body(request: HttpRequest) -> dict:
    """A fetch() call's JSON body, which must be a JSON object (MalformedBody otherwise)."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any real body
        raise MalformedBody("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise MalformedBody("The request body must be a JSON object.")
    return body


def parse_ids(raw) -> list[int] | None:
    """Positive integer ids from a list or "1,2,3"; None when any is not one."""
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list):
        return None
    ids = [positive_id(value) for value in raw]
    if any(i is None for i in ids):
        return None
    return list(dict.fromkeys(ids))


def request_kind(request: HttpRequest, raw: object) -> int | None:
    """The entity type a request names (?kind= or the body's "kind"), if the portal has it."""
    try:
        entity_type = int(str(raw or "").strip() or 0)
    except ValueError:
        return None
    return entity_type if entity_type in request.portal.invoice_entity_types else None


def invoice_refused_page(request: HttpRequest, invoice_id: int, exc: ExternalAPIError) -> HttpResponse:
    """Bitrix24 refusing one invoice to this user (ACCESS_DENIED) or not having it (NOT_FOUND), as
    a 403 / 404 page in the app's words. Anything else is raised again, for bitrix24_errors."""
    if exc.retryable or (exc.code or "").upper() not in ("ACCESS_DENIED", "NOT_FOUND"):
        raise exc
    denied = (exc.code or "").upper() == "ACCESS_DENIED"
    return render(
        request,
        "sync/invoice_denied.html",
        {"invoice_id": invoice_id, "denied": denied, "message": exc.message},
        status=403 if denied else 404,
    )
