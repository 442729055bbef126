"""Xero's outbound webhooks. PLACEHOLDER with the final interface; the real one replaces it."""

from __future__ import annotations


class WebhookEmitter:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox

    def reset(self) -> None:
        """Forget the subscription and pending deliveries."""

    def configure(self, url: str, key: str) -> dict:
        """Set the delivery URL and signing key, run Intent to Receive against it; return the outcome."""
        return {"url": url, "status": "NOT_IMPLEMENTED"}

    def emit(self, tenant_id: str, category: str, event_type: str, resource_id: str) -> None:
        """Record a change (category INVOICE/CONTACT, type CREATE/UPDATE) for batched, signed delivery."""

    def snapshot(self) -> dict:
        return {}


def register(bp, sandbox) -> None:
    """Adds the control route POST /_sandbox/xero/webhooks {"url", "key"}."""
