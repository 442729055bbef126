"""How much of a Xero organisation's daily call budget the app has used, and whether automatic pushes
must be spaced out so the rest of it lasts.

Xero allows XERO_DAILY_LIMIT (5,000; 1,000 on the Starter tier) calls per tenant in a rolling 24 hours
(xero-api.md §9). The client throttle (integrations/common/throttle) counts every call it admits per
tenant in hourly buckets covering the rolling day, and remembers the X-DayLimit-Remaining Xero last
reported; this reads both, never calling Xero itself.

The organisation's limit is XERO_DAILY_LIMIT unless Xero's own count says less is left: a Starter
organisation answers X-DayLimit-Remaining 990 after our 10 calls, so its day holds 1,000. Of that,
XERO_DAILY_RESERVE_SHARE (10 %, at most XERO_DAILY_RESERVE calls) is kept for people's clicks — the
throttle refuses background calls past it, and pacing aims at the same figure (xero_daily_reserve) —
so automatic work may spend the rest.

Budget-aware pushing (`push_budget_pace`): when the last hour's pace, kept up for
PUSH_BUDGET_HORIZON_H more hours, would spend more than what automatic work has left, automatic
push passes are spaced so that what is left lasts that long — one pass per HORIZON / (calls left),
longer as the budget shrinks (a pass pushes up to 1,000 invoices, so a busy portal's changes are
grouped into fewer, fuller passes instead of one write each). A button click never waits for it
(sync/services/debounce.py), and the reason is shown on Setup and on a waiting invoice, not kept
silent. Without the pacing the throttle would still stop automatic calls at the reserve, but then
nothing automatic would reach Xero until calls drop out of the rolling day.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext
from redis.exceptions import RedisError

from accounts.models import Portal, XeroConnection
from integrations.common.throttle import xero_daily_reserve, xero_daily_usage, xero_recent_usage

HOUR_S = 3600.0
# The longest gap pacing puts between automatic passes (day seconds): a change still reaches Xero
# within the hour however low the budget runs; past the reserve the throttle itself holds calls back.
MAX_GAP_S = 3600.0


@dataclass(frozen=True)
class XeroBudget:
    tenant_name: str
    used: int  # calls in the rolling day (ours, or Xero's count when that is higher)
    limit: int  # the organisation's daily limit (XERO_DAILY_LIMIT, or less when Xero's count says so)
    xero_left: int | None  # X-DayLimit-Remaining as Xero last said, None when not known
    per_hour: float = 0.0  # calls an hour at the recent pace
    gap_s: float = 0.0  # day seconds between automatic push passes; 0 = not pacing

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0

    @property
    def pacing(self) -> bool:
        return self.gap_s > 0

    @property
    def gap_text(self) -> str:
        return _duration(self.gap_s)

    @property
    def why(self) -> str:
        if not self.pacing:
            return ""
        return (
            f"Xero budget: {self.used} of {self.limit} calls used in the last 24 hours; at {self.per_hour:.0f} an "
            f"hour it would run out, so automatic pushes are grouped, one every {_duration(self.gap_s)}. "
            "The Create / Edit on Xero button still sends at once."
        )


def xero_budget_today(portal: Portal) -> XeroBudget | None:
    """The portal's Xero organisation's budget use and pacing, or None when Xero is not connected (or
    the counts cannot be read)."""
    connection = XeroConnection.objects.filter(portal=portal).exclude(tenant_id="").first()
    if connection is None:
        return None
    return _budget(connection.tenant_id, connection.tenant_name)


def push_budget_pace(portal_id: int) -> XeroBudget | None:
    """The budget of the portal's organisation as the push debounce needs it (None: not connected)."""
    row = (
        XeroConnection.objects.filter(portal_id=portal_id)
        .exclude(tenant_id="")
        .values_list("tenant_id", "tenant_name")
        .first()
    )
    return _budget(*row) if row else None


def _budget(tenant_id: str, tenant_name: str) -> XeroBudget | None:
    try:
        used, left = xero_daily_usage(tenant_id)
        recent, hours = xero_recent_usage(tenant_id)
    except RedisError:
        return None
    limit = int(settings.XERO_DAILY_LIMIT)
    if left is not None:
        # Xero's count is the truth: fewer left than our count implies means a smaller limit (the
        # Starter tier) or calls by another app of the same tenant; either way the same budget.
        limit = min(limit, used + left)
        used = max(used, limit - left)
    per_hour = recent / hours if hours > 0 else 0.0
    return XeroBudget(
        tenant_name=tenant_name,
        used=used,
        limit=limit,
        xero_left=left,
        per_hour=per_hour,
        gap_s=_gap_s(used, limit, per_hour),
    )


def _gap_s(used: int, limit: int, per_hour: float) -> float:
    """Day seconds between automatic passes so the budget automatic work has left lasts the horizon;
    0 while the recent pace, kept up that long, stays within it."""
    horizon_h = float(settings.PUSH_BUDGET_HORIZON_H)
    if horizon_h <= 0:
        return 0.0
    automatic = limit - xero_daily_reserve(limit)  # what the throttle lets background work spend
    left = automatic - used
    if used + per_hour * horizon_h <= automatic:
        return 0.0
    if left <= 0:
        return MAX_GAP_S
    return min(MAX_GAP_S, horizon_h * HOUR_S / left)


def _duration(seconds: float) -> str:
    # Translated when read (gap_text renders in the page's language); `why` is for logs, in English.
    if seconds < 90:
        return gettext("%(n)s s") % {"n": max(1, round(seconds))}
    return gettext("%(n)s min") % {"n": round(seconds / 60)}
