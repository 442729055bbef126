"""When a portal's push pass should start: after a short quiet moment, never later than a bound.

Real portals deliver work in bursts: an import into Bitrix24 adds a thousand invoices and then
writes their product rows, every write firing its own event, and a person saving an invoice fires
an add and an update a moment apart. Pushing each event as it arrives sends an invoice with no rows
and then again with them, in many small passes that each pay for their own reads and writes.

So a pass waits until the portal's due push jobs have been quiet (no new or renewed job) for
QUIET_S, which puts a whole burst, and an invoice's rows, into one pass; and it never waits more
than MAX_WAIT_S after the oldest of them was queued, so a steady stream still goes out. A job a
person asked for (button, user priority) never waits. A pass in progress is not interrupted:
what arrives meanwhile is queued and collected by the next pass.

Everything is read from the job rows (one aggregate), so it works the same without Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone

from sync.models import SyncJob


@dataclass(frozen=True)
class QuietPlan:
    wait_s: float  # 0 = start the pass now
    why: str


def push_quiet_wait(*, portal_id: int, now: datetime | None = None) -> QuietPlan:
    """How long the portal's push pass should still wait, and why."""
    quiet_s = float(settings.PUSH_QUIET_S)
    max_wait_s = float(settings.PUSH_MAX_WAIT_S)
    if quiet_s <= 0:
        return QuietPlan(0.0, "debounce off")
    now = now or timezone.now()
    due = SyncJob.objects.filter(
        portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE, status=SyncJob.Status.PENDING, not_before__lte=now
    ).aggregate(best=Min("priority"), oldest=Min("created_at"), newest=Max("updated_at"))
    if due["best"] is None:
        return QuietPlan(0.0, "nothing due")
    if due["best"] <= SyncJob.Priority.USER:
        return QuietPlan(0.0, "a person is waiting")
    quiet_for = (now - due["newest"]).total_seconds()
    waited = (now - due["oldest"]).total_seconds()
    if quiet_for >= quiet_s:
        return QuietPlan(0.0, f"quiet for {quiet_for:.2f} s")
    if waited >= max_wait_s:
        return QuietPlan(0.0, f"oldest job waited {waited:.1f} s")
    return QuietPlan(min(quiet_s - quiet_for, max_wait_s - waited), "burst in progress")
