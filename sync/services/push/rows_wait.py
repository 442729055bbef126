"""An invoice read with no product rows: wait a moment for them, then hold it with the reason.

A Bitrix24 import, or a person, creates the invoice first and sets its rows a moment later (each its
own event), so a pass may read it in between. Xero needs at least one line, but nothing is wrong
yet: while the invoice was created in Bitrix24 less than PUSH_NO_ROWS_GRACE_S ago, its job goes
back to pending for RETRY_S (no attempt counted, nothing logged: not a failure) and is read again
then — the rows' own event does not hurry a waiting job of the same priority (job_enqueue), so the
short retry is what sends the invoice soon after its rows exist. After the grace the invoice is **held**: nothing is sent, the sync log and the invoice say why in
words, the job ends without retries, and the next change to the invoice (rows added) brings it
back. Checked right after the read, before the contacts stage, so a row-less invoice costs no Xero
contact lookup or creation.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.common.errors import PermanentError
from sync.models import InvoiceLink, SyncJob, SyncLogEntry
from sync.services.jobs import job_enqueue, job_failed
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import log

RULE = "no_rows"
# Real seconds until a row-less fresh invoice is read again: rows usually follow within a second or
# two, and the re-read joins the next pass's batch (no call of its own when others are due).
RETRY_S = 5.0


def rows_wait_check(ctx: PassContext, item: Work) -> None:
    """Settle an invoice read without product rows: back to pending while it is fresh, else held."""
    if item.finished or item.invoice is None or item.rows:
        return
    left = float(settings.PUSH_NO_ROWS_GRACE_S) - _age_s(item.invoice)
    if left > 0:
        _wait(ctx, item, min(RETRY_S, left))
    else:
        _hold(ctx, item)


def _age_s(invoice: dict) -> float:
    """Seconds since Bitrix24 created the invoice (createdTime, else updatedTime; old invoices'
    DATE_INSERT / DATE_UPDATE arrive under those names). Rows follow an invoice's creation, so the
    grace counts from it: an old row-less invoice that is merely edited (a stage moved, often by our
    own pull) is held at once instead of being re-read for a minute. Unknown counts as old: no wait
    for a time we cannot read. A clock ahead of ours counts as just now."""
    for key in ("createdTime", "updatedTime"):
        when = parse_datetime(str(invoice.get(key) or ""))
        if when is not None:
            if timezone.is_naive(when):
                when = timezone.make_aware(when, dt.UTC)
            return max(0.0, (timezone.now() - when).total_seconds())
    return float("inf")


def _wait(ctx: PassContext, item: Work, delay_s: float) -> None:
    item.finished = True
    ctx.report.deferred += 1
    job = item.job
    if job is None:
        # A re-run within the pass (an event came while we held the invoice): its own job is done,
        # so a new one carries the wait; the next pass defers it like any other.
        job_enqueue(
            portal=ctx.portal,
            kind=SyncJob.Kind.PUSH_INVOICE,
            target=f"{item.entity_type}:{item.invoice_id}",
            trigger=item.trigger,
        )
        return
    owned = SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.RUNNING, attempts=job.attempts)
    now = timezone.now()
    try:
        with transaction.atomic():
            owned.update(
                status=SyncJob.Status.PENDING,
                not_before=now + dt.timedelta(seconds=max(1.0, delay_s)),
                lease_until=None,
                attempts=F("attempts") - 1,  # waiting for the rows is not an attempt
                updated_at=now,
            )
    except IntegrityError:
        # The rows' event queued a newer job meanwhile: that one reads the invoice again.
        owned.update(status=SyncJob.Status.DONE, lease_until=None, last_error="superseded", updated_at=now)


def _hold(ctx: PassContext, item: Work) -> None:
    """Not sent; the reason on the invoice (list, page, "Needs attention") and in the log; not retried."""
    item.finished = True
    ctx.report.failed += 1
    number = str(item.invoice.get("accountNumber") or item.invoice_id) if item.invoice else str(item.invoice_id)
    message = (
        f"Held: invoice {number} has no product rows, and Xero needs at least one line. It is sent once a "
        "product row is added in Bitrix24."
    )
    link, _ = InvoiceLink.objects.get_or_create(
        portal=ctx.portal, bitrix24_entity_type=item.entity_type, bitrix24_id=item.invoice_id
    )
    item.link = link
    if link.xero_invoice_id:
        message += " Xero keeps the version sent last."
    InvoiceLink.objects.filter(pk=link.pk).update(last_error=message, last_error_permanent=True)
    log(ctx, item, SyncLogEntry.Outcome.HELD, message, {"rule": RULE})
    if item.job is not None:
        job_failed(item.job, PermanentError(message, system="bitrix24", code=RULE))
