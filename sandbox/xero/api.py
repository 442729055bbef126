"""The plumbing every accounting call goes through: bearer token, tenant, rate limits, the body cap,
JSON parsing into Xero's wrappers, Idempotency-Key replay, the world lock, and webhook emission."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from flask import Response, request

from sandbox.xero import scopes
from sandbox.xero.idempotency import IdempotencyError
from sandbox.xero.listing import arg
from sandbox.xero.store import Organisation
from sandbox.xero.where import QueryError
from sandbox.xero.wire import api_error, json_response, no_data, parse_bool, problem

PREFIX = "/xero/api.xro/2.0"
MAX_BODY_BYTES = int(3.5 * 1024 * 1024)
NOT_FOUND = "The resource you're looking for cannot be found"


@dataclass
class Call:
    """What a handler knows about the call it serves."""

    org: Organisation
    tenant_id: str
    client_id: str


class BadRequest(Exception):
    """Raised inside a handler to answer 400 with a Xero error body."""

    def __init__(self, body: dict) -> None:
        super().__init__(body.get("Message"))
        self.body = body


def not_found() -> Response:
    return Response(NOT_FOUND, status=404, mimetype="text/plain")


def accounting(world, sandbox) -> Callable:
    """Decorator for accounting routes: checks token and tenant, admits the call, adds limit headers."""

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(**kwargs):
            grant, failure = world.authenticate()
            if failure is not None:
                return failure
            tenant_id = request.headers.get("xero-tenant-id", "").strip().lower()
            with sandbox.lock:
                org = world.connected_organisation(grant, tenant_id)
            if org is None:
                return json_response(403, problem(403, "AuthenticationUnsuccessful"))
            if not scopes.allowed(request.method, request.path, grant.scope):
                return json_response(
                    401,
                    problem(401, "AuthorizationUnsuccessful"),
                    {"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
                )
            rejected = world.limiter.admit(tenant_id)
            if rejected is not None:
                status, headers, body = rejected
                return json_response(status, body, headers)
            try:
                response = handler(Call(org, tenant_id, grant.client_id), **kwargs)
            except QueryError as exc:
                response = json_response(400, api_error(16, "QueryParseException", str(exc)))
            except BadRequest as exc:
                response = json_response(400, exc.body)
            for name, value in world.limiter.headers(tenant_id).items():
                response.headers[name] = value
            return response

        return wrapper

    return decorate


def read_elements(key: str, entity: str, *, single_ok: bool = False) -> tuple[bytes, list]:
    """The raw body and the elements of `{"<key>": [...]}` (or one bare object where Xero takes it)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest(no_data(entity))
    try:
        body = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(api_error(14, "PostDataInvalidException", f"Invalid JSON in request body: {exc}")) from exc
    if isinstance(body, dict) and key in body:
        elements = body[key]
        elements = [elements] if isinstance(elements, dict) else elements
    elif single_ok and isinstance(body, dict) and body:
        elements = [body]
    else:
        raise BadRequest(no_data(entity))
    if not isinstance(elements, list) or not elements:
        raise BadRequest(no_data(entity))
    return raw, elements


def summarize_errors() -> bool:
    return parse_bool(arg("summarizeErrors"), default=True)


def unitdp() -> int:
    return 4 if arg("unitdp") == "4" else 2


def body_too_large() -> Response | None:
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        # Drain the body so the kept-alive connection stays usable for the next request.
        while request.stream.read(1 << 20):
            pass
        return json_response(
            413, api_error(413, "RequestEntityTooLargeException", "The request body exceeds the 3.5 MB limit.")
        )
    return None


def write(world, sandbox, call: Call, perform: Callable[[], tuple[int, dict, list]]) -> Response:
    """Run a write under Idempotency-Key replay and the world lock; emit its webhooks afterwards.

    `perform` runs with sandbox.lock held and returns (status, body, events). A BadRequest it raises
    (an unreadable body) is remembered like any other answer, so a replay gets the same one.
    """
    too_large = body_too_large()
    if too_large is not None:
        return too_large
    raw = request.get_data(cache=True)
    events: list = []
    try:
        with world.idempotency.guard(
            call.tenant_id, request.headers.get("Idempotency-Key"), request.method, request.full_path.rstrip("?"), raw
        ) as replay:
            if replay.response is not None:
                status, body = replay.response
                return json_response(status, body)
            try:
                with sandbox.lock:
                    status, body, events = perform()
            except BadRequest as exc:
                status, body = 400, exc.body
            replay.remember(status, body)
    except IdempotencyError as exc:
        return json_response(400, api_error(10, "ValidationException", exc.message))
    world.emit(call.tenant_id, events)
    return json_response(status, body) if body is not None else Response(status=status)
