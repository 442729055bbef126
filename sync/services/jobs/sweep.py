"""The outbox's safety nets (run by sync.tasks.sweeps): jobs whose worker died are released or
dead-lettered, due jobs nobody picked up are dispatched again, and the Bitrix24 sweep queues every
invoice changed since its watermark (Bitrix24 never retries an event)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Portal
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.models import SyncJob, Trigger
from sync.services.jobs.dispatch import PROCESSOR_TASKS, job_dispatch
from sync.services.jobs.queue import job_enqueue, job_owned
from sync.services.jobs.retry import MAX_ATTEMPTS

# A dispatch sent this recently may still be on its way; the sweeper leaves such jobs alone.
SWEEP_GRACE_S = 10
# Bitrix24's clock, second-precision updatedTime and late commits: re-read this much before the mark.
BITRIX24_SWEEP_OVERLAP = timedelta(minutes=2)


def portal_sync_blocker(portal: Portal) -> str:
    """Why background sync cannot run for this portal now, or "" when it can (sync.services.gate)."""
    from sync.services.gate import sync_gate

    gate = sync_gate(portal)
    return "" if gate.automatic else gate.reason


def jobs_requeue_stuck(*, now=None) -> dict[str, int]:
    """1. Running jobs whose worker is gone — past their lease, or held by a pass whose heartbeat
       stopped (kill -9: seconds, not the lease) — are released: back to pending now (the next
       claim counts the attempt), merged into a newer pending job of the same target when there is
       one, or, once they have used MAX_ATTEMPTS, failed as a dead letter (logged on the invoice;
       a person retries it). A live pass renews its leases as it goes (job_leases_renew).
    2. Every (portal, kind) with due pending jobs not picked up within SWEEP_GRACE_S: dispatch its
       processor (a lost on_commit send, a broker outage, a delayed dispatch that vanished)."""
    from sync.services.heartbeat import holders_alive

    now = now or timezone.now()
    released = merged = dead = 0
    groups: set[tuple[int, str]] = set()
    running = list(SyncJob.objects.filter(status=SyncJob.Status.RUNNING).order_by("id")[:2000])
    alive = holders_alive({job.holder for job in running if job.holder})
    for job in running:
        expired = job.lease_until is not None and job.lease_until < now
        holder_gone = bool(job.holder) and alive is not None and job.holder not in alive
        if not expired and not holder_gone:
            continue
        if job.attempts >= MAX_ATTEMPTS:
            dead += _dead_letter(job, now)
            continue
        try:
            with transaction.atomic():
                # Due at once (never later than the real clock, when the sweep is run "as of" later).
                due = min(now, timezone.now())
                moved = job_owned(job).update(
                    status=SyncJob.Status.PENDING, lease_until=None, not_before=due, holder="", updated_at=now
                )
        except IntegrityError:
            merged += job_owned(job).update(
                status=SyncJob.Status.DONE,
                lease_until=None,
                last_error="lease expired; superseded by a newer pending job",
                updated_at=now,
            )
            continue
        released += moved
        if moved:
            groups.add((job.portal_id, job.kind))
    stale = now - timedelta(seconds=SWEEP_GRACE_S)
    groups |= set(
        SyncJob.objects.filter(status=SyncJob.Status.PENDING, not_before__lte=stale, kind__in=list(PROCESSOR_TASKS))
        .values_list("portal_id", "kind")
        .distinct()
    )
    dispatched = sum(job_dispatch(portal_id=portal_id, kind=kind) for portal_id, kind in sorted(groups))
    return {"released": released, "merged": merged, "dead": dead, "dispatched": dispatched}


def _dead_letter(job: SyncJob, now) -> int:
    """A job whose worker died or hung on every one of its MAX_ATTEMPTS: failed for a person to
    look at, with the last error seen, and logged on its invoice."""
    from sync.models import Direction, SyncLogEntry
    from sync.services.log import sync_log_write

    last = f" Last error: {job.last_error}" if job.last_error else ""
    message = (
        f"Gave up after {job.attempts} attempts: the worker running it stopped before finishing (lease expired).{last}"
    )[:4000]
    failed = job_owned(job).update(
        status=SyncJob.Status.FAILED, lease_until=None, last_error=message, holder="", updated_at=now
    )
    entity, _, ident = job.target.partition(":")
    if failed and job.kind == SyncJob.Kind.PUSH_INVOICE and ident.isdigit():
        details = {"attempt": job.attempts, "max_attempts": MAX_ATTEMPTS, "dead_letter": True, "code": "lease_expired"}
        if entity.isdigit() and int(entity) != SMART_INVOICE:
            details["entity_type"] = int(entity)
        sync_log_write(
            portal=job.portal,
            direction=Direction.PUSH,
            trigger=job.trigger,
            outcome=SyncLogEntry.Outcome.FAILED,
            bitrix24_id=ident,
            message=message,
            details=details,
        )
    return failed


def _bitrix24_time(value: str) -> Any:
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(value.replace(" ", "T", 1)) if value else None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_default_timezone())


def jobs_enqueue_bitrix24_changes(*, portal: Portal) -> int:
    """The Bitrix24 sweep: a push job for every invoice changed since the watermark (minus an
    overlap), then the watermark moves to the newest updatedTime seen. Bitrix24 never retries an
    event, so this is what catches a delivery that failed. The push engine skips unchanged
    content by hash, so the overlap costs reads, not writes.

    Without a watermark the sweep starts at the moment Xero was connected: invoices older than the
    connection are not pushed by a background job (the user pushes them with the button)."""
    from integrations.bitrix24.api import Bitrix24Api
    from sync.models import SyncSettings
    from sync.sources import portal_sources

    sync_settings, _ = SyncSettings.objects.get_or_create(portal=portal)
    since = sync_settings.bitrix24_updated_since or portal.xero_connection.connected_at
    newest, enqueued = since, 0
    client = Bitrix24Api.for_portal(portal)
    for source in portal_sources(portal):  # new and/or old invoices
        listed = source.list_command(
            {">=updatedTime": (since - BITRIX24_SWEEP_OVERLAP).isoformat()}, order={"id": "ASC"}
        )
        for item in client.list_all(listed):  # rows in the shared shape
            job_enqueue(
                portal=portal,
                kind=SyncJob.Kind.PUSH_INVOICE,
                target=source.target(item["id"]),
                trigger=Trigger.SWEEP,
                priority=SyncJob.Priority.BACKGROUND,
            )
            enqueued += 1
            updated = _bitrix24_time(str(item.get("updatedTime") or ""))
            if updated is not None and updated > newest:
                newest = updated
    # Only forward, and only after the whole pass: a failure midway re-reads the same window.
    # Only forward: an overlapping slower sweep must not move the mark back.
    SyncSettings.objects.filter(pk=sync_settings.pk).filter(
        Q(bitrix24_updated_since__isnull=True) | Q(bitrix24_updated_since__lt=newest)
    ).update(bitrix24_updated_since=newest)
    return enqueued
