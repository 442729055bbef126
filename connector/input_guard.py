"""Malformed input is refused with a 400 that says why, before any view sees it.

- A NUL character in the URL, a query or form key or value: PostgreSQL cannot store one in a text
  column, so it would surface as a database error (a 500) wherever the value reaches a query
  (a member_id, an OAuth state). No real client sends one.
- A value the database rejects as out of range or malformed (django.db.DataError: a 5,000-digit id,
  a date past year 9999) that a view let through: the request is refused, not crashed. This is a
  net under the views' own validation, logged so the gap can be closed where it arises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DataError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def positive_id(value: object) -> int | None:
    """A database id from user input: ASCII digits only ("²" and "١٢٣" pass str.isdigit() and
    int() differently, and int() refuses 5,000 digits), within PostgreSQL's bigint. Else None."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    number = int(text)
    return number if number > 0 else None


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    sources = [request.GET]
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        sources.append(request.POST)
    return any(
        "\x00" in key or any("\x00" in v for v in values) for source in sources for key, values in source.lists()
    )


def _refusal(message: str) -> HttpResponse:
    return JsonResponse({"error": message, "kind": "input"}, status=400)


class InputGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return _refusal("The request contains a NUL character, which no field may hold.")
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DataError):
            return data_error_refusal(request, exception)
        return None


def data_error_refusal(request: HttpRequest, exception: DataError) -> HttpResponse:
    logger.warning("input the database refused reached %s: %s", request.path, str(exception).splitlines()[0])
    return _refusal("A value in the request is out of range or malformed.")
