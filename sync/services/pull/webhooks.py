"""Xero webhook jobs: read the InvoiceIDs Xero named, 50 per GET /Invoices?IDs=..., and apply them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from accounts.models import Portal, XeroConnection
from integrations.common.errors import AuthorizationLostError, ExternalAPIError, RetryableError
from integrations.xero.client import XeroClient
from sync.models import Direction, InvoiceLink, SyncJob, SyncLogEntry, Trigger
from sync.services.jobs import job_done, job_failed, jobs_claim
from sync.services.log import sync_log_write
from sync.services.pull.apply import invoices_apply
from sync.services.pull.gate import pull_lock, pull_portal_active
from sync.services.pull.state import PullReport, XeroInvoiceState

# Xero takes ~50 GUIDs in IDs before the URL gets too long (xero-api.md §2.3).
IDS_PER_CALL = 50
# Jobs taken per round; a round is ceil(n/50) Xero calls and ceil(moves/50) Bitrix24 calls.
CLAIM_LIMIT = 500
# Until SyncLogEntry.Outcome names it (reported to the models engineer), the literal value.
IGNORED_UNLINKED = SyncLogEntry.Outcome.IGNORED_UNLINKED


def statuses_pull_pending(*, portal_id: int) -> PullReport:
    """Serve the portal's due PULL_STATUS jobs (target = Xero InvoiceID), CLAIM_LIMIT at a time.

    1. An inactive portal or Xero connection runs nothing: the jobs stay pending for the sweeper
       to hand back once the user has reconnected.
    2. InvoiceIDs without a link are invoices someone made in Xero, not us: job done, logged once.
    3. The linked ones are read from Xero 50 per call and applied (`invoices_apply`).
    4. Each job ends done, or failed with the API's error (job_failed retries retryable ones).
    """
    report = PullReport(trigger=Trigger.WEBHOOK)
    portal, connection = pull_portal_active(portal_id, report)
    if portal is None or connection is None:
        return report
    with pull_lock(portal.pk):
        while True:
            jobs = jobs_claim(portal_id=portal.pk, kind=SyncJob.Kind.PULL_STATUS, limit=CLAIM_LIMIT)
            if jobs:
                _serve_jobs(portal=portal, connection=connection, jobs=jobs, report=report)
            if len(jobs) < CLAIM_LIMIT:
                return report


def _serve_jobs(*, portal: Portal, connection: XeroConnection, jobs: list[SyncJob], report: PullReport) -> None:
    by_id: dict[uuid.UUID, list[SyncJob]] = {}
    for job in jobs:
        try:
            by_id.setdefault(uuid.UUID(job.target), []).append(job)
        except ValueError:
            job_done(job)  # not an InvoiceID: nothing Xero could tell us about it
    links = {
        link.xero_invoice_id: link for link in InvoiceLink.objects.filter(portal=portal, xero_invoice_id__in=by_id)
    }
    triggers = {invoice_id: group[0].trigger for invoice_id, group in by_id.items()}

    unlinked = [invoice_id for invoice_id in by_id if invoice_id not in links]
    _log_unlinked(portal, unlinked, triggers)
    report.unlinked += len(unlinked)
    for invoice_id in unlinked:
        for job in by_id[invoice_id]:
            job_done(job)

    outcomes: dict[uuid.UUID, ExternalAPIError | None] = {}
    fetched: list[XeroInvoiceState] = []
    client = XeroClient(connection, interactive=any(j.priority == SyncJob.Priority.USER for j in jobs))
    ids = list(links)
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        try:
            # page=1 makes Xero answer full invoices; 50 IDs always fit one page.
            invoices = client.invoices_get([str(i) for i in chunk])
        except ExternalAPIError as error:
            report.errors.append(str(error))
            # A rate limit, an outage or a lost grant hits every later call too: the rest waits.
            stop = isinstance(error, RetryableError | AuthorizationLostError)
            for invoice_id in ids[start:] if stop else chunk:
                outcomes[invoice_id] = error
            if stop:
                break
            continue
        report.xero_calls += 1
        fetched.extend(XeroInvoiceState.of(invoice) for invoice in invoices)
    report.fetched += len(fetched)
    outcomes.update(invoices_apply(portal=portal, invoices=fetched, links=links, triggers=triggers, report=report))

    for invoice_id in links:
        error = outcomes.get(invoice_id)  # absent: Xero did not return it (gone); nothing to do
        for job in by_id[invoice_id]:
            if error is None:
                job_done(job)
            else:
                job_failed(job, error)


def _log_unlinked(portal: Portal, invoice_ids: list[uuid.UUID], triggers: Mapping[uuid.UUID, str]) -> None:
    """Once per InvoiceID: every change of a Xero-made invoice sends a webhook, forever."""
    if not invoice_ids:
        return
    seen = set(
        SyncLogEntry.objects.filter(
            portal=portal, outcome=IGNORED_UNLINKED, xero_id__in=[str(i) for i in invoice_ids]
        ).values_list("xero_id", flat=True)
    )
    for invoice_id in invoice_ids:
        if str(invoice_id) not in seen:
            sync_log_write(
                portal=portal,
                direction=Direction.PULL,
                trigger=triggers.get(invoice_id, Trigger.WEBHOOK),
                outcome=IGNORED_UNLINKED,
                xero_id=str(invoice_id),
                message="This Xero invoice was not created from Bitrix24, so it is not synced back.",
            )
