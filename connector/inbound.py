"""Bitrix24's events and Xero's webhooks skip the middleware only the app's pages need.

Both endpoints take deliveries from machines, hundreds a second in a burst, and use none of what
the rest of the chain provides: sessions, the signed-in user, messages, CSRF (both views are
exempt: they authenticate the sender themselves, by application_token and by HMAC signature),
static files, the admin's lockout. Profiled in-process, that part of the chain was ~0.1-0.25 ms of
a ~2 ms delivery.

This middleware sits after the ones every request needs (request id and inbound counters, HTTPS
and security headers, the NUL refusal, the host check and Content-Length of CommonMiddleware) and,
for a POST to one of INBOUND_ENDPOINTS, calls the view itself. Anything else goes on down the chain
unchanged (a GET to those paths too: the view's 405). What the skipped middleware would have added
to such an answer is kept where it matters: X-Frame-Options (XFrameOptionsMiddleware) and the
DataError -> 400 net (InputGuardMiddleware.process_exception).

The database connection kept from an earlier request is not health-checked first (CONN_HEALTH_CHECKS
costs a `SELECT 1` round trip before every request: a tenth of a delivery's database work). Instead
a delivery that meets a dead kept connection (the database restarted, a failover, an idle timeout)
is received again once on a fresh one, so none is lost to it: Bitrix24 does not redeliver an event
answered 500. Receiving twice is safe: the inbox's INSERT ... ON CONFLICT DO NOTHING stores a
delivery once, and nothing else the views do writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError, DataError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.urls import resolve

from connector.input_guard import data_error_refusal

logger = logging.getLogger(__name__)

# The two webhook receivers (accounts/urls.py, sync/urls.py). The installer is not one of them: it
# renders a page.
INBOUND_ENDPOINTS = frozenset({"/bitrix24/events/", "/xero/webhooks/"})


class InboundEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path_info not in INBOUND_ENDPOINTS:
            return self.get_response(request)
        match = resolve(request.path_info)
        request.resolver_match = match

        def view() -> HttpResponse:
            return match.func(request, *match.args, **match.kwargs)

        try:
            response = _receive(view)
        except DataError as exc:
            response = data_error_refusal(request, exc)
        if "X-Frame-Options" not in response:
            response["X-Frame-Options"] = "DENY"
        return response


def _receive(view: Callable[[], HttpResponse]) -> HttpResponse:
    """The view's answer, on the kept connection unchecked; once more on a fresh connection when the
    kept one turns out dead. A failure on a connection opened for this request is not retried."""
    kept = connection.connection is not None and not connection.in_atomic_block
    if kept:
        connection.health_check_done = True  # checked by its first use below instead
    try:
        return view()
    except (OperationalError, InterfaceError) as exc:
        if not kept:
            raise
        logger.warning("inbound delivery met a dead database connection (%s); receiving it again", exc)
        try:
            connection.close()
        except DatabaseError:  # closing a dead connection may fail too; it is dropped either way
            connection.connection = None
        return view()
