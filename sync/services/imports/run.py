"""Starting an import run (the admin's button), claiming it in the worker, and running it."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from sync.models import Direction, SyncJob, SyncLogEntry, Trigger
from sync.services.imports.contacts import contacts_import
from sync.services.imports.items import items_import
from sync.services.imports.progress import IMPORT_TASK, ImportRefused, ImportSummary, import_progress_write
from sync.services.log import sync_log_write

logger = logging.getLogger(__name__)
# --- starting a run ---------------------------------------------------------------------------------


# Which Xero contacts the contacts import takes (the job's target): customers by default.
CONTACTS_CUSTOMERS = ""
CONTACTS_ALL = "all"


def import_job_start(
    *,
    portal: Portal,
    kind: SyncJob.Kind | str,
    requested_by: int,
    currency: str = "",
    contacts: str = CONTACTS_CUSTOMERS,
) -> SyncJob:
    """The import job for this button press: a new one (its task sent after commit), or the one of
    the same kind already waiting or running, so a double click does not import twice."""
    if kind not in (SyncJob.Kind.IMPORT_CONTACTS, SyncJob.Kind.IMPORT_ITEMS):
        raise ValueError(f"not an import kind: {kind}")
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        raise ImportRefused("Connect Xero first: the import reads from your Xero organisation.")
    if kind == SyncJob.Kind.IMPORT_ITEMS and not currency:
        raise ImportRefused("Choose the currency the product prices are in.")
    active = SyncJob.objects.filter(
        portal=portal, kind=kind, status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING]
    ).first()
    if active is not None:
        return active
    try:
        with transaction.atomic():
            job = SyncJob.objects.create(
                portal=portal,
                kind=kind,
                # The currency (items) or which contacts (contacts: "" customers, "all") travels in
                # the target; it also keeps one pending job per choice.
                target=currency if kind == SyncJob.Kind.IMPORT_ITEMS else (contacts or CONTACTS_CUSTOMERS),
                trigger=Trigger.BUTTON,
                priority=SyncJob.Priority.USER,
                requested_by=requested_by,
            )
            import_progress_write(job.pk, ImportSummary())
            transaction.on_commit(lambda: _send(job.pk), robust=True)
    except IntegrityError:
        # A concurrent click created the pending job first.
        return SyncJob.objects.get(portal=portal, kind=kind, status=SyncJob.Status.PENDING)
    return job


def _send(job_id: int) -> None:
    from sync.services.jobs import task_send

    task_send(IMPORT_TASK, [job_id])


def import_job_claim(job_id: int) -> SyncJob | None:
    """Take one pending job by id (pending -> running, attempts + 1, a lease); None when it is not
    pending (done, or another worker has it)."""
    from sync.services.jobs import JOB_LEASE_S

    now = timezone.now()
    claimed = SyncJob.objects.filter(
        pk=job_id,
        status=SyncJob.Status.PENDING,
        kind__in=[SyncJob.Kind.IMPORT_CONTACTS, SyncJob.Kind.IMPORT_ITEMS],
    ).update(
        status=SyncJob.Status.RUNNING,
        attempts=F("attempts") + 1,
        lease_until=now + timedelta(seconds=JOB_LEASE_S),
        updated_at=now,
    )
    return SyncJob.objects.select_related("portal").get(pk=job_id) if claimed else None


def import_run(job: SyncJob) -> ImportSummary:
    """Run a claimed import job, write its summary to the sync log, and return it."""
    portal = job.portal
    if job.kind == SyncJob.Kind.IMPORT_CONTACTS:
        summary = contacts_import(portal=portal, job=job, everyone=job.target == CONTACTS_ALL)
        kind = SyncLogEntry.ObjectKind.CONTACT
        what = (
            "Xero contacts into Bitrix24 companies"
            if job.target == CONTACTS_ALL
            else "Xero customers into Bitrix24 companies"
        )
    else:
        summary = items_import(portal=portal, job=job, currency=job.target)
        kind = SyncLogEntry.ObjectKind.ITEM
        what = f"Xero items into Bitrix24 products ({job.target})"
    outcome = SyncLogEntry.Outcome.FAILED if summary.failed and not (summary.created or summary.updated) else None
    sync_log_write(
        portal=portal,
        direction=Direction.IMPORT,
        trigger=job.trigger,
        outcome=outcome
        or (
            SyncLogEntry.Outcome.UPDATED
            if summary.created or summary.updated
            else SyncLogEntry.Outcome.SKIPPED_UNCHANGED
        ),
        object_kind=kind,
        message=(
            f"Imported {what}: {summary.created} created, {summary.updated} updated, "
            f"{summary.skipped} skipped, {summary.failed} failed."
        ),
        details={"job_id": job.pk, "summary": summary.as_dict()},
    )
    return summary
