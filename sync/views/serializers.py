"""DRF serializer for the body of Xero's webhooks (xero-api.md §7.2, issue 17): a signed body that
does not have the documented shape is a clear 400 naming the field, never a 500.

Validate only after the signature check (sync/views/xero_webhook.py): the signature covers the raw
bytes, and an unsigned body is refused before anyone reads it. Kept small for the same reason as
the Bitrix24 event's (accounts/event_payload.py): the endpoint takes hundreds of deliveries a second.
"""

from __future__ import annotations

import json

from rest_framework import serializers

from connector.serializers import FieldsBuiltOnce
from integrations.xero.webhooks import XeroWebhookPayload
from sync.views.xero_webhook_fast import webhook_event_of, webhook_fast

__all__ = ["XeroWebhookSerializer", "xero_webhook_from_body"]

# Every one a non-empty string (surrounding spaces dropped).
_EVENT_FIELDS = ("resourceUrl", "resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId", "tenantType")


class XeroWebhookEventSerializer(FieldsBuiltOnce):
    """One event: which resource of which organisation changed how, and when."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # Xero's camelCase keys are the field names (DRF reads the input by field name).
        fields: dict[str, serializers.Field] = {name: serializers.CharField() for name in _EVENT_FIELDS}
        # Credit notes carry {Type, Status}; other events none.
        fields["data"] = serializers.DictField(required=False, allow_null=True, default=dict)
        return fields


class XeroWebhookSerializer(FieldsBuiltOnce):
    """The whole body: the events (none in an Intent to Receive probe) and their sequence numbers."""

    events = XeroWebhookEventSerializer(many=True, allow_empty=True)
    firstEventSequence = serializers.IntegerField(min_value=0, required=False, default=0)  # noqa: N815 - Xero's name
    lastEventSequence = serializers.IntegerField(min_value=0, required=False, default=0)  # noqa: N815 - Xero's name
    entropy = serializers.CharField(required=False, allow_blank=True, default="")

    def payload_of(self) -> XeroWebhookPayload:
        """The validated payload (call after is_valid()); each event keeps the object Xero sent,
        its type, category and tenant type upper-case (Xero sends them so; new values may appear)."""
        values = self.validated_data
        events = tuple(
            webhook_event_of(event, raw=raw)
            for event, raw in zip(values["events"], self.initial_data["events"], strict=True)
        )
        return XeroWebhookPayload(
            events=events,
            first_event_sequence=values["firstEventSequence"],
            last_event_sequence=values["lastEventSequence"],
            entropy=values["entropy"],
        )


def xero_webhook_from_body(body: bytes) -> XeroWebhookPayload:
    """The payload of a (verified) body. Raises ValidationError (its detail: field -> messages)
    when it is not JSON or not shaped as Xero documents."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise serializers.ValidationError({"body": [f"Not JSON: {exc}"]}) from None
    if not isinstance(decoded, dict):
        raise serializers.ValidationError({"body": ["Must be a JSON object."]})
    plain = webhook_fast(decoded)  # the common shape, read without DRF (sync/views/xero_webhook_fast.py)
    if plain is not None:
        return plain
    serializer = XeroWebhookSerializer(data=decoded)
    serializer.is_valid(raise_exception=True)
    return serializer.payload_of()
