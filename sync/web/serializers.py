"""DRF serializers for the JSON bodies the pages accept (issue 17): a body is validated in one
place, and anything malformed is a clear 400, never a 500 from hand parsing.

The views stay plain Django views (the frame sign-in, CSRF and error pages are theirs); a
serializer only turns `json_body(request)` into clean values or errors.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from connector.input_guard import positive_id


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
