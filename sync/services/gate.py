"""May this portal sync now? The one answer every caller uses.

Before this module the question was asked four slightly different ways (the inbox, the sweeps,
the push and pull engines, the pages); now each asks `sync_gate(portal)` and reads the property it
needs:

- `jobs_may_run`     a processor may claim due jobs (held ones are not due, see below);
- `automatic`        background work may start (sweeps, offline-event drains, due jobs from events);
- `keeps_events`     an event is stored as a job (perhaps held or paused) rather than dropped;
- `holds_events`     that job waits for Setup (not due until an admin saves Setup);
- `buttons_for(is_admin)`  the "Create / Edit on Xero" and "Update from Xero" buttons work.

Nothing syncs automatically before an admin has saved Setup once (issue 12): events are still
received and kept as pending jobs whose `not_before` is HELD_UNTIL, so no processor and no sweeper
touches them; an admin's button click hurries its job to now (job_enqueue takes the earlier
`not_before` for a better priority); saving Setup releases every held job (`jobs_release_held`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from sync.models import SyncJob

# A pending job with this not_before waits for Setup; far past any retry backoff.
HELD_UNTIL = datetime(9000, 1, 1, tzinfo=UTC)


class GateState(enum.StrEnum):
    READY = "ready"
    SETUP_PENDING = "setup_pending"  # connected, Setup never saved: events held, admins' buttons work
    XERO_RECONNECT = "xero_reconnect"  # Xero's grant died: work waits for reconnection
    PORTAL_REAUTH = "portal_reauth"  # Bitrix24's grant died: work waits
    NO_XERO = "no_xero"  # never connected, or disconnected by the admin: events dropped
    UNINSTALLED = "uninstalled"


@dataclass(frozen=True)
class SyncGate:
    state: GateState
    reason: str = ""  # "" when READY; otherwise a sentence for logs and pages

    @property
    def ready(self) -> bool:
        return self.state == GateState.READY

    @property
    def jobs_may_run(self) -> bool:
        return self.state in (GateState.READY, GateState.SETUP_PENDING)

    @property
    def automatic(self) -> bool:
        return self.state == GateState.READY

    @property
    def keeps_events(self) -> bool:
        return self.state not in (GateState.NO_XERO, GateState.UNINSTALLED)

    @property
    def holds_events(self) -> bool:
        return self.state == GateState.SETUP_PENDING

    def buttons_for(self, *, is_admin: bool) -> bool:
        return self.state == GateState.READY or (self.state == GateState.SETUP_PENDING and is_admin)


def setup_completed(portal: Portal) -> bool:
    from sync.models import SyncSettings

    return SyncSettings.objects.filter(portal=portal, setup_completed=True).exists()


def sync_gate(portal: Portal | None, *, connection: XeroConnection | None = None) -> SyncGate:
    """The portal's state for syncing, most fundamental problem first."""
    if portal is None or portal.status == Portal.Status.UNINSTALLED:
        return SyncGate(GateState.UNINSTALLED, f"portal {portal.domain if portal else '?'} is uninstalled")
    if connection is None:
        connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or connection.status == XeroConnection.Status.DISCONNECTED or not connection.tenant_id:
        return SyncGate(GateState.NO_XERO, f"portal {portal.domain} has no Xero connection")
    if not portal.is_active:
        return SyncGate(GateState.PORTAL_REAUTH, f"portal {portal.domain} is {portal.get_status_display().lower()}")
    if not connection.is_active:
        return SyncGate(
            GateState.XERO_RECONNECT,
            f"the Xero connection of {portal.domain} is {connection.get_status_display().lower()}",
        )
    if not setup_completed(portal):
        return SyncGate(GateState.SETUP_PENDING, f"portal {portal.domain} has not completed Setup")
    return SyncGate(GateState.READY)


# --- jobs held for Setup -------------------------------------------------------------------------


def job_hold(job: SyncJob) -> bool:
    """Park an automatic (non-user) pending job until Setup is saved. Call it inside the
    transaction that enqueued the job, so no processor can claim it first."""
    held = SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.PENDING, priority__gt=SyncJob.Priority.USER).update(
        not_before=HELD_UNTIL
    )
    if held:
        job.not_before = HELD_UNTIL
    return bool(held)


def jobs_enqueue_for_event(*, portal: Portal, gate: SyncGate, **job) -> SyncJob:
    """job_enqueue for an automatic trigger, held when the gate says so."""
    from sync.services.jobs import job_enqueue

    with transaction.atomic():
        enqueued = job_enqueue(portal=portal, **job)
        if gate.holds_events:
            job_hold(enqueued)
    return enqueued


def jobs_held(portal: Portal):
    return SyncJob.objects.filter(portal=portal, status=SyncJob.Status.PENDING, not_before__gte=HELD_UNTIL)


def invoices_waiting_for_setup(portal: Portal) -> int:
    """How many invoices wait for Setup (held push jobs, one per invoice)."""
    return jobs_held(portal).filter(kind=SyncJob.Kind.PUSH_INVOICE).count()


def jobs_release_held(portal: Portal) -> int:
    """Setup was saved: every held job becomes due now and its processor is dispatched."""
    from sync.services.jobs import job_dispatch

    now = timezone.now()
    with transaction.atomic():
        kinds = set(jobs_held(portal).values_list("kind", flat=True))
        released = jobs_held(portal).update(not_before=now, updated_at=now)
    for kind in sorted(kinds):
        transaction.on_commit(lambda kind=kind: job_dispatch(portal_id=portal.pk, kind=kind), robust=True)
    return released
