"""DRF serializers for the JSON bodies the pages accept (issue 17): a body is validated in one
place, and anything malformed is a clear 400, never a 500 from hand parsing.

The views stay plain Django views (the frame sign-in, CSRF and error pages are theirs); a
serializer only turns the body (fetch()'s JSON, or a plain form's fields) into clean values or
errors, and `with_body` answers a malformed body with a 400 that names the field before the view
runs, so nothing is changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import serializers

from connector.input_guard import positive_id
from sync.services.imports import CONTACTS_ALL, CONTACTS_CUSTOMERS
from sync.web.common import MalformedBody, json_body


def body_refused(errors: Mapping[str, Any], messages: Mapping[str, str] | None = None) -> JsonResponse:
    """400 naming the first field that is wrong (in the page's words where `messages` has them)."""
    field = next(iter(errors), "")
    message = (messages or {}).get(field) or f"The field {field!r} is not valid."
    return JsonResponse({"error": message, "kind": "input", "fields": errors}, status=400)


def with_body(
    serializer_class: type[serializers.Serializer],
    *,
    messages: Mapping[str, str] | None = None,
    form: Callable[[HttpRequest], Any] | None = None,
) -> Callable:
    """View decorator: the body validated by `serializer_class` reaches the view as `body=` (its
    clean values). A body that is not a JSON object, or a field that is wrong, is a 400 with the
    reason, and the view does not run. A plain form POST (no JS) is read by `form` when given (how
    its fields map onto the serializer's), else as the form's fields."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if request.content_type == "application/json":
                    data = json_body(request)
                else:
                    data = form(request) if form is not None else request.POST
            except MalformedBody as exc:
                return JsonResponse({"error": str(exc), "kind": "input"}, status=400)
            parsed = serializer_class(data=data)
            if not parsed.is_valid():
                return body_refused(parsed.errors, messages)
            return view(request, *args, body=parsed.validated_data, **kwargs)

        return wrapper

    return decorate


class InvoiceIdsField(serializers.Field):
    """Positive integer ids from a JSON list or "1,2,3", duplicates dropped in order; [] when
    absent. Any id that is not one refuses the whole list."""

    default_error_messages = {"invalid": "Invoice ids are positive whole numbers."}

    def to_internal_value(self, data: Any) -> list[int]:
        if isinstance(data, str):
            data = [part for part in data.split(",") if part.strip()]
        if not isinstance(data, list):
            self.fail("invalid")
        ids = [positive_id(value) for value in data]
        if any(i is None for i in ids):
            self.fail("invalid")
        return list(dict.fromkeys(i for i in ids if i is not None))

    def to_representation(self, value: list[int]) -> list[int]:
        return value


class InvoicePushRequest(serializers.Serializer):
    """The body of "Create / Edit on Xero": explicit `ids`, or `all_filtered` with the list's
    `from` / `to` dates (checked by the list's own filter form), and the invoice `kind`."""

    ids = InvoiceIdsField(required=False, default=list)
    all_filtered = serializers.BooleanField(required=False, default=False, allow_null=True)
    kind = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # "from" is a Python keyword: declared here rather than as a class attribute.
        fields["from"] = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")
        fields["to"] = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")
        return fields


class LogRetryRequest(serializers.Serializer):
    """The body of the Sync log's Retry: the log entry whose job is retried."""

    entry = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class ImportStartRequest(serializers.Serializer):
    """The Import page's form (or fetch body): what to import, the product prices' currency (items
    only; checked against the portal's currencies by the view) and which Xero contacts."""

    kind = serializers.ChoiceField(choices=["contacts", "items"])
    currency = serializers.CharField(required=False, allow_blank=True, default="", max_length=10)
    contacts = serializers.ChoiceField(
        choices=[CONTACTS_CUSTOMERS, CONTACTS_ALL], required=False, allow_blank=True, default=CONTACTS_CUSTOMERS
    )

    def validate_currency(self, value: str) -> str:
        return value.strip().upper()
