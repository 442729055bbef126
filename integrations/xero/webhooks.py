"""Xero's webhooks (xero-api.md §7): signature verification and payload parsing. Pure, no I/O.

Xero signs the raw request body: `x-xero-signature` = base64(HMAC-SHA256(webhook key as UTF-8, body)).
There is no timestamp or nonce, so replays are handled by deduplication and re-reading the
resource, not here. Verify before parsing: re-serialised JSON would not match the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MalformedPayloadError",
    "XeroWebhookEvent",
    "XeroWebhookPayload",
    "parse_xero_webhook",
    "xero_signature",
    "xero_signature_valid",
    "xero_webhook_from_json",
]

_EVENT_FIELDS = ("resourceUrl", "resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId", "tenantType")


class MalformedPayloadError(ValueError):
    """A correctly signed body that does not have the shape Xero documents."""


def xero_signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def xero_signature_valid(key: str, body: bytes, header: str | None) -> bool:
    """Constant-time check; an empty key or header never matches (never accept unsigned)."""
    if not key or not header:
        return False
    return hmac.compare_digest(xero_signature(key, body).encode("ascii"), header.strip().encode("utf-8", "replace"))


@dataclass(frozen=True)
class XeroWebhookEvent:
    resource_url: str
    resource_id: str
    event_date_utc: str
    event_type: str  # CREATE | UPDATE (new values may appear)
    event_category: str  # INVOICE | CONTACT | CREDITNOTE | SUBSCRIPTION | PREPAYMENT | ...
    tenant_id: str
    tenant_type: str
    data: dict[str, Any] = field(default_factory=dict)  # credit notes carry {Type, Status}
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # as Xero sent it, for the inbox

    @property
    def dedupe_key(self) -> str:
        # Xero promises neither ordering nor exactly-once; these four fields name one change (§7.3).
        return f"{self.tenant_id}:{self.resource_id}:{self.event_type}:{self.event_date_utc}".lower()


@dataclass(frozen=True)
class XeroWebhookPayload:
    events: tuple[XeroWebhookEvent, ...]
    first_event_sequence: int
    last_event_sequence: int
    entropy: str = ""

    @property
    def is_intent_to_receive(self) -> bool:
        """Intent to Receive probes carry no events (and sequences 0)."""
        return not self.events


def _sequence(body: dict[str, Any], name: str) -> int:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedPayloadError(f"{name} must be a non-negative integer")
    return value


def _event(raw: Any, index: int) -> XeroWebhookEvent:
    if not isinstance(raw, dict):
        raise MalformedPayloadError(f"events[{index}] must be an object")
    values = []
    for name in _EVENT_FIELDS:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise MalformedPayloadError(f"events[{index}].{name} must be a non-empty string")
        values.append(value.strip())
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise MalformedPayloadError(f"events[{index}].data must be an object")
    url, resource_id, date, event_type, category, tenant_id, tenant_type = values
    return XeroWebhookEvent(
        resource_url=url,
        resource_id=resource_id,
        event_date_utc=date,
        event_type=event_type.upper(),
        event_category=category.upper(),
        tenant_id=tenant_id,
        tenant_type=tenant_type.upper(),
        data=data,
        raw=raw,
    )


def parse_xero_webhook(body: bytes) -> XeroWebhookPayload:
    """The typed payload; MalformedPayloadError names what is wrong. Call after the signature check."""
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedPayloadError("the body is not JSON") from None
    return xero_webhook_from_json(parsed)


def xero_webhook_from_json(parsed: Any) -> XeroWebhookPayload:
    """The same, from an already decoded body."""
    if not isinstance(parsed, dict):
        raise MalformedPayloadError("the body must be a JSON object")
    events = parsed.get("events")
    if not isinstance(events, list):
        raise MalformedPayloadError("events must be a list")
    entropy = parsed.get("entropy", "")
    return XeroWebhookPayload(
        events=tuple(_event(raw, index) for index, raw in enumerate(events)),
        first_event_sequence=_sequence(parsed, "firstEventSequence"),
        last_event_sequence=_sequence(parsed, "lastEventSequence"),
        entropy=entropy if isinstance(entropy, str) else "",
    )
