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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, SmallIntegerField, Value, When
from django.db.models.functions import Least
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


def jobs_enqueue_for_events(*, portal: Portal, gate: SyncGate, kind: str, targets: Mapping[str, str]) -> list[int]:
    """jobs_enqueue_for_event for many targets of one (portal, kind) at once, `targets` naming each
    one's trigger: the same rule as job_enqueue's for an event (a target's pending job is hurried,
    else one is inserted; held when the gate says so) in a few statements for the lot instead of a
    few for each (the inbox enqueues a batch's distinct jobs: profiled, those were 40% of a batch).
    Returns the jobs' ids."""
    from sync.services.jobs.dispatch import dispatch_new_job_on_commit

    if not targets:
        return []
    priority = SyncJob.Priority.EVENT
    with transaction.atomic():
        ids = _jobs_pending_or_new(portal, str(kind), dict(targets), priority)
        if gate.holds_events:  # as job_hold, for all of them
            SyncJob.objects.filter(
                pk__in=ids, status=SyncJob.Status.PENDING, priority__gt=SyncJob.Priority.USER
            ).update(not_before=HELD_UNTIL)
        dispatch_new_job_on_commit(portal.pk, str(kind), priority)
    return ids


# As job_enqueue's passes: each ends with every job unless a concurrent enqueue inserts one of the
# same targets between our two statements, which cannot go on for long.
_ENQUEUE_PASSES = 10


def _jobs_pending_or_new(portal: Portal, kind: str, targets: dict[str, str], priority: int) -> list[int]:
    """The targets' pending jobs hurried, the others inserted in one INSERT (in a savepoint: the
    partial unique constraint, one pending job per target, fails it when a concurrent enqueue
    inserted one of them first; the next pass then finds and hurries that one)."""
    now = timezone.now()
    ids: list[int] = []
    for _ in range(_ENQUEUE_PASSES):
        found = _jobs_hurry(portal.pk, kind, list(targets), priority, now)
        ids += found.values()
        targets = {target: trigger for target, trigger in targets.items() if target not in found}
        if not targets:
            return ids
        new = [
            SyncJob(
                portal=portal,
                kind=kind,
                target=target,
                trigger=str(trigger),
                priority=priority,
                status=SyncJob.Status.PENDING,
                not_before=now,
            )
            for target, trigger in targets.items()
        ]
        try:
            with transaction.atomic():
                SyncJob.objects.bulk_create(new)
        except IntegrityError:
            continue
        return ids + [job.pk for job in new]
    raise RuntimeError(f"could not enqueue {kind} jobs for portal {portal.pk}: their pending jobs kept changing")


def _jobs_hurry(portal_id: int, kind: str, targets: list[str], priority: int, now: datetime) -> dict[str, int]:
    """{target: id} of the targets' pending jobs, hurried as job_enqueue hurries one: a better
    priority is taken with the earlier not_before, and updated_at is touched either way (the push
    debounce reads it). They are locked first (FOR UPDATE, in id order, so two batches never
    deadlock): a job claimed meanwhile is not pending any more when the lock is granted, so it is
    not returned and its target gets a new job, as job_enqueue's re-checking UPDATE has it."""
    found = dict(
        SyncJob.objects.filter(portal_id=portal_id, kind=kind, target__in=targets, status=SyncJob.Status.PENDING)
        .order_by("pk")
        .select_for_update()  # ignored on SQLite, whose write transactions are serialised anyway
        .values_list("target", "pk")
    )
    if found:
        better = Q(priority__gt=priority)
        earlier = Least(F("not_before"), Value(now, output_field=DateTimeField()))
        SyncJob.objects.filter(pk__in=found.values()).update(
            priority=Case(When(better, then=Value(priority)), default=F("priority"), output_field=SmallIntegerField()),
            not_before=Case(When(better, then=earlier), default=F("not_before"), output_field=DateTimeField()),
            updated_at=now,
        )
    return found


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
