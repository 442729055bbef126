"""Xero's rate limits per tenant. PLACEHOLDER with the final interface; the real one replaces it."""

from __future__ import annotations


class XeroLimiter:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox

    def reset(self) -> None:
        """Forget every counter (sandbox reset)."""

    def admit(self, tenant_id: str) -> tuple[int, dict, dict] | None:
        """Called once at the start of every accounting API call, after the token and tenant checks.

        Counts the call. Returns None to let it proceed, or (429, headers, body) to reject it with
        Retry-After and X-Rate-Limit-Problem when limits are enabled and one is exceeded.
        """
        return None

    def headers(self, tenant_id: str) -> dict:
        """X-DayLimit-Remaining, X-MinLimit-Remaining, X-AppMinLimit-Remaining for a response."""
        return {}


def register(bp, sandbox) -> None:
    """Adds the control route POST /_sandbox/xero/limits {"concurrent", "minute", "day", "app_minute"}."""
