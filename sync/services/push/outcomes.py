"""How a push settles one invoice: every stage ends an invoice through one of these, so each
invoice gets exactly one outcome per pass — a log entry, its link's error fields and its job.

- finish: pushed, skipped as unchanged, or an echo (job done);
- fail: an API's error for this invoice (retryable: back to pending with backoff honouring
  Retry-After, up to the attempt cap; permanent: job failed with the API's words);
- refuse: a change Xero's rules forbid (shown to the user, never retried);
- defer: back to pending in a moment without counting an attempt (the invoice is busy elsewhere).
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from integrations.common.errors import ExternalAPIError, PermanentError
from sync.mappers.stage import Decision
from sync.models import Direction, InvoiceLink, SyncJob, SyncLogEntry, Trigger
from sync.services.jobs import MAX_ATTEMPTS, job_failed
from sync.services.log import sync_log_entry, sync_log_write
from sync.services.push.context import SMART_INVOICE, PassContext, Work

DEFER_S = 1.0
RECONNECT_MESSAGE = "Xero needs reconnection: invoices wait and are sent once Xero is connected again."


def log(ctx: PassContext, item: Work, outcome: str, message: str = "", details: dict | None = None) -> None:
    if item.entity_type != SMART_INVOICE:
        # The log's bitrix24_id is the invoice's id; an old invoice's entry says which kind it is
        # (sync.services.log_jobs.entry_entity_type) so the pages find its job and permissions.
        details = {**(details or {}), "entity_type": item.entity_type}
    # Stored with the others by ctx.settle(): one INSERT and one outcome upsert per batch.
    ctx.log_entries.append(log_entry(ctx, item, outcome, message, details))


def log_entry(ctx: PassContext, item: Work, outcome: str, message: str, details: dict | None) -> SyncLogEntry:
    """The unsaved push log entry of one invoice of the pass."""
    link = item.link
    return sync_log_entry(
        portal=ctx.portal,
        direction=Direction.PUSH,
        trigger=item.trigger,
        outcome=outcome,
        bitrix24_id=item.invoice_id,
        xero_id=str(link.xero_invoice_id or "") if link else "",
        invoice_number=(link.xero_invoice_number if link else "")
        or str((item.invoice or {}).get("accountNumber") or ""),
        message=message,
        details=details,
    )


def finish(
    ctx: PassContext,
    item: Work,
    *,
    outcome: str,
    message: str = "",
    details: dict | None = None,
    counted: bool = False,
) -> None:
    if item.finished:
        return
    item.finished = True
    if not counted:
        ctx.report.skipped += 1
    log(ctx, item, outcome, message, details)
    if item.job is not None:
        ctx.done_jobs.append(item.job)  # finished with others by ctx.settle()


def fail(ctx: PassContext, item: Work, error: ExternalAPIError) -> None:
    """The job first (back to pending with backoff, or a dead letter at the attempt cap), then one
    log entry that says which, with the attempt and when the next one is due."""
    if item.finished:
        return
    item.finished = True
    details = {"system": error.system, "status": error.status, "code": error.code, "details": error.details}
    if error.retry_after:
        details["retry_after"] = error.retry_after
    message = error.message
    permanent = not error.retryable
    if item.job is not None:
        job = job_failed(item.job, error)
        details["attempt"] = job.attempts
        details["max_attempts"] = MAX_ATTEMPTS
        if job.status == SyncJob.Status.PENDING and job.pk == item.job.pk:
            details["next_attempt_at"] = job.not_before.isoformat()
        elif not permanent and job.status == SyncJob.Status.FAILED:
            permanent = True  # the attempt cap: a dead letter, retried only by a person
            details["dead_letter"] = True
            message = f"Gave up after {job.attempts} attempts: {error.message}"
    if permanent:
        ctx.report.failed += 1
    else:
        ctx.report.retrying += 1
    InvoiceLink.objects.filter(
        portal=ctx.portal, bitrix24_entity_type=item.entity_type, bitrix24_id=item.invoice_id
    ).update(last_error=message[:4000], last_error_permanent=permanent)
    log(ctx, item, SyncLogEntry.Outcome.FAILED if permanent else SyncLogEntry.Outcome.RETRYING, message, details)


def fail_all(ctx: PassContext, items: list[Work], error: ExternalAPIError) -> None:
    """The same error for every invoice it concerns (one log entry each)."""
    for item in items:
        fail(ctx, item, error)


def refuse(ctx: PassContext, item: Work, decision: Decision) -> None:
    """A change Xero's rules forbid: shown to the user, never retried."""
    if item.link is None:
        item.link, _ = InvoiceLink.objects.get_or_create(
            portal=ctx.portal, bitrix24_entity_type=item.entity_type, bitrix24_id=item.invoice_id
        )
    item.finished = True
    ctx.report.failed += 1
    InvoiceLink.objects.filter(pk=item.link.pk).update(last_error=decision.message, last_error_permanent=True)
    log(ctx, item, SyncLogEntry.Outcome.REFUSED, decision.message, {"rule": decision.rule})
    if item.job is not None:
        job_failed(item.job, PermanentError(decision.message, system="xero", code=decision.rule))


def defer(item: Work, *, delay_s: float = DEFER_S) -> None:
    """Back to pending in `delay_s` without counting an attempt; mark the link dirty so a worker
    holding the invoice runs it once more. Never drops the work."""
    InvoiceLink.objects.filter(
        portal_id=item.job.portal_id if item.job else None,
        bitrix24_entity_type=item.entity_type,
        bitrix24_id=item.invoice_id,
    ).update(dirty=True)
    job = item.job
    if job is None:
        return
    owned = SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.RUNNING, attempts=job.attempts)
    now = timezone.now()
    try:
        with transaction.atomic():
            owned.update(
                status=SyncJob.Status.PENDING,
                not_before=now + dt.timedelta(seconds=delay_s),
                lease_until=None,
                attempts=F("attempts") - 1,
                updated_at=now,
            )
    except IntegrityError:
        # A newer pending job for this invoice exists; it carries the work.
        owned.update(status=SyncJob.Status.DONE, lease_until=None, last_error="superseded", updated_at=now)
    item.finished = True


def take_dirty(portal: Portal, items: list[Work]) -> list[Work]:
    """Invoices that got events while this pass held them: clear the mark and run them once more."""
    again: list[Work] = []
    by_type: dict[int, list[int]] = {}
    for item in items:
        by_type.setdefault(item.entity_type, []).append(item.invoice_id)
    for entity_type, ids in by_type.items():
        links = InvoiceLink.objects.filter(
            portal=portal, bitrix24_entity_type=entity_type, bitrix24_id__in=ids, dirty=True
        )
        dirty = list(links.values_list("bitrix24_id", flat=True))
        if dirty:
            InvoiceLink.objects.filter(portal=portal, bitrix24_entity_type=entity_type, bitrix24_id__in=dirty).update(
                dirty=False
            )
        again.extend(Work(invoice_id=i, job=None, trigger=Trigger.EVENT, entity_type=entity_type) for i in dirty)
    return again


def note_reconnect_needed(portal: Portal) -> None:
    """Log once per disconnection, not on every pass, that the invoices are waiting."""
    connection = XeroConnection.objects.filter(portal=portal).first()
    since = connection.updated_at if connection else portal.updated_at
    already = SyncLogEntry.objects.filter(
        portal=portal, direction=Direction.PUSH, message=RECONNECT_MESSAGE, created_at__gte=since
    ).exists()
    if not already:
        sync_log_write(
            portal=portal,
            direction=Direction.PUSH,
            trigger=Trigger.SWEEP,
            outcome=SyncLogEntry.Outcome.RETRYING,
            message=RECONNECT_MESSAGE,
        )
