"""When a portal's push pass should start: after a short quiet moment, never later than a bound, and
spaced out when the Xero day budget would not last.

Real portals deliver work in bursts: an import into Bitrix24 adds a thousand invoices and then
writes their product rows, every write firing its own event, and a person saving an invoice fires
an add and an update a moment apart. Pushing each event as it arrives sends an invoice with no rows
and then again with them, in many small passes that each pay for their own reads and writes.

So a pass waits until the portal's due push jobs have been quiet (no new or renewed job, and no
new Bitrix24 event in the inbox) for QUIET_S, which puts a whole burst, and an invoice's rows, into one pass; and it never waits more
than MAX_WAIT_S after the oldest of them was queued, so a steady stream still goes out. While the
changes still arrive at BURST_RATE a second or faster (an import's events, which Bitrix24 delivers
over a minute or more), the bound is BURST_MAX_WAIT_S instead: cutting an import in two at
MAX_WAIT_S costs a second pass that reads all its invoices again (bench/burst.py), and the import
still goes out at once when its events stop. A job a person asked for (button, user priority) never
waits. A pass in progress is not interrupted: what arrives meanwhile is queued and collected by the
next pass.

When the organisation's Xero day budget is projected to run out (sync/services/xero_budget.py),
automatic passes are also spaced: the next one starts no sooner than the budget's gap after the last
one, and the plan says why (Setup and the invoice page show it). A click still goes at once.

Everything but the budget is read from the job and inbox rows (two aggregates), so it works the same
without Redis (the budget is then unknown and never paces).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from sync.models import InboxEvent, Source, SyncJob
from sync.services.xero_budget import push_budget_pace

# Arrivals are counted over the last this-many seconds to tell a burst from a steady trickle.
BURST_WINDOW_S = 1.0
BUDGET_WAITING = "xero budget"


@dataclass(frozen=True)
class QuietPlan:
    wait_s: float  # 0 = start the pass now
    why: str


def push_quiet_wait(*, portal_id: int, now: datetime | None = None) -> QuietPlan:
    """How long the portal's push pass should still wait, and why."""
    quiet_s = float(settings.PUSH_QUIET_S)
    max_wait_s = float(settings.PUSH_MAX_WAIT_S)
    now = now or timezone.now()
    due = SyncJob.objects.filter(
        portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE, status=SyncJob.Status.PENDING, not_before__lte=now
    ).aggregate(
        best=Min("priority"),
        oldest=Min("created_at"),
        newest=Max("updated_at"),
        lately=Count("id", filter=Q(updated_at__gte=now - timedelta(seconds=BURST_WINDOW_S))),
    )
    if due["best"] is None:
        return QuietPlan(0.0, "nothing due")
    if due["best"] <= SyncJob.Priority.USER:
        return QuietPlan(0.0, "a person is waiting")
    paced = budget_wait(portal_id=portal_id, now=now)
    if paced.wait_s > 0:
        return paced
    if quiet_s <= 0:
        return QuietPlan(0.0, "debounce off")
    # Quiet means no new Bitrix24 event either: under load the inbox turns events into jobs in
    # spurts, and a lull in job rows while events are still coming in (an import's first adds, their
    # rows not yet written) is no quiet moment.
    newest_event = InboxEvent.objects.filter(portal_id=portal_id, source=Source.BITRIX24).aggregate(
        newest=Max("received_at")
    )["newest"]
    newest = max(due["newest"], newest_event) if newest_event is not None else due["newest"]
    quiet_for = (now - newest).total_seconds()
    waited = (now - due["oldest"]).total_seconds()
    if quiet_for >= quiet_s:
        return QuietPlan(0.0, f"quiet for {quiet_for:.2f} s")
    bound_s = max_wait_s
    if due["lately"] >= float(settings.PUSH_BURST_RATE) * BURST_WINDOW_S:
        bound_s = max(max_wait_s, float(settings.PUSH_BURST_MAX_WAIT_S))
    if waited >= bound_s:
        return QuietPlan(0.0, f"oldest job waited {waited:.1f} s")
    return QuietPlan(min(quiet_s - quiet_for, bound_s - waited), "burst in progress")


def budget_wait(*, portal_id: int, now: datetime | None = None) -> QuietPlan:
    """How long automatic pushes still wait for the Xero budget's pacing (0 = not pacing, or the gap
    since the portal's last pass has passed), with the reason a person reads."""
    budget = push_budget_pace(portal_id)
    if budget is None or not budget.pacing:
        return QuietPlan(0.0, "")
    now = now or timezone.now()
    last = SyncJob.objects.filter(
        portal_id=portal_id,
        kind=SyncJob.Kind.PUSH_INVOICE,
        status__in=[SyncJob.Status.RUNNING, SyncJob.Status.DONE, SyncJob.Status.FAILED],
    ).aggregate(last=Max("updated_at"))["last"]
    if last is None:
        return QuietPlan(0.0, "")
    left = budget.gap_s / _time_scale() - (now - last).total_seconds()
    return QuietPlan(max(0.0, left), budget.why if left > 0 else "")


def _time_scale() -> float:
    """The throttle's clock (RATE_LIMIT_TIME_SCALE): the budget's hours are measured on it, so a bench
    that compresses the day compresses the pacing's gap too."""
    return max(float(getattr(settings, "RATE_LIMIT_TIME_SCALE", 1.0)), 1e-9)
