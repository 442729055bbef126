"""How much of a Xero organisation's daily call budget the app has used, for the Setup page.

Xero allows XERO_DAILY_LIMIT (5,000; fewer on some tiers) calls per tenant in a rolling 24 hours
(xero-api.md §9). The client throttle (integrations/common/throttle.py) already counts every call
it admits per tenant in hourly buckets covering the rolling day, and remembers the
X-DayLimit-Remaining Xero last reported; this reads both, never calling Xero itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from accounts.models import Portal, XeroConnection
from integrations.common.throttle import xero_daily_usage


@dataclass(frozen=True)
class XeroBudget:
    tenant_name: str
    used: int  # calls our throttle admitted for this tenant in the rolling day
    limit: int  # the daily limit (XERO_DAILY_LIMIT, or what Xero's own count implies)
    xero_left: int | None  # X-DayLimit-Remaining as Xero last said, None when not known

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0


def xero_budget_today(portal: Portal) -> XeroBudget | None:
    """The portal's Xero organisation's budget use, or None when Xero is not connected (or unknown)."""
    connection = XeroConnection.objects.filter(portal=portal).exclude(tenant_id="").first()
    if connection is None:
        return None
    try:
        used, left = xero_daily_usage(connection.tenant_id)
    except RedisError:
        return None
    limit = int(settings.XERO_DAILY_LIMIT)
    if left is not None:
        # Xero's count is the truth when ours is behind (calls by another app of the same tenant
        # still spend the same budget): show the larger use.
        used = max(used, limit - left)
    return XeroBudget(tenant_name=connection.tenant_name, used=used, limit=limit, xero_left=left)
