"""The common shape of a Xero webhook body, read without DRF: the serializer's answer, for less CPU.

The same idea as accounts/event_fast.py: for a body exactly as Xero sends it (xero-webhooks.yaml:
every event's seven fields non-empty ASCII strings with nothing to trim, `data` an object or absent,
the sequences whole numbers from 0, `entropy` a string) this builds the XeroWebhookPayload the
serializer (sync/views/serializers.py) would; anything else returns None and goes through the
serializer, which accepts it or answers the 400 that names the field. tests/sync/test_webhook_fast.py
checks the two agree on generated bodies.
"""

from __future__ import annotations

from typing import Any

from integrations.xero.webhooks import XeroWebhookEvent, XeroWebhookPayload

_EVENT_FIELDS = ("resourceUrl", "resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId", "tenantType")
_EVENT_KEYS = frozenset((*_EVENT_FIELDS, "data"))
_BODY_KEYS = frozenset(("events", "firstEventSequence", "lastEventSequence", "entropy"))


def webhook_fast(body: dict[str, Any]) -> XeroWebhookPayload | None:
    """The payload of a decoded body in the plain shape; None for anything else."""
    events, entropy = body.get("events"), body.get("entropy", "")
    first, last = body.get("firstEventSequence", 0), body.get("lastEventSequence", 0)
    if not (_BODY_KEYS.issuperset(body) and isinstance(events, list) and _sequence(first) and _sequence(last)):
        return None
    if not (isinstance(entropy, str) and entropy.isascii() and "\x00" not in entropy and entropy == entropy.strip()):
        return None
    read = []
    for event in events:
        if not (isinstance(event, dict) and _EVENT_KEYS.issuperset(event)):
            return None
        data = event.get("data")
        data = {} if data is None else data
        if not isinstance(data, dict):  # [] too: the serializer wants an object or null
            return None
        if not all(_plain(event.get(name)) for name in _EVENT_FIELDS):
            return None
        read.append(webhook_event_of({**event, "data": data}, raw=event))
    return XeroWebhookPayload(events=tuple(read), first_event_sequence=first, last_event_sequence=last, entropy=entropy)


def webhook_event_of(values: dict[str, Any], *, raw: dict[str, Any]) -> XeroWebhookEvent:
    """The event of valid values (the fast reader's or the serializer's), keeping the object Xero
    sent; its type, category and tenant type upper-case (Xero sends them so; new values may appear)."""
    return XeroWebhookEvent(
        resource_url=values["resourceUrl"],
        resource_id=values["resourceId"],
        event_date_utc=values["eventDateUtc"],
        event_type=values["eventType"].upper(),
        event_category=values["eventCategory"].upper(),
        tenant_id=values["tenantId"],
        tenant_type=values["tenantType"].upper(),
        data=values.get("data") or {},
        raw=raw,
    )


def _plain(value: Any) -> bool:
    return isinstance(value, str) and value != "" and value.isascii() and "\x00" not in value and value == value.strip()


def _sequence(value: Any) -> bool:
    return type(value) is int and value >= 0  # not a bool, not "5": the serializer reads those
