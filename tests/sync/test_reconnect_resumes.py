"""A dead Xero grant pauses the portal's work without losing it; reconnecting resumes it.

The push jobs stay pending (nothing is claimed, nothing is sent to Xero) while the connection
needs reconnection; once the user reconnects through the real OAuth flow, the same jobs are
picked up by the sweeper's dispatch and the invoice reaches Xero.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from accounts.models import XeroConnection
from accounts.services.sandbox import sandbox_connect_xero
from sync.models import InvoiceLink, SyncJob, SyncLogEntry
from sync.services.buttons import invoices_push_request
from sync.services.jobs import jobs_requeue_stuck
from sync.services.push import invoices_push_pending
from sync.services.push.outcomes import RECONNECT_MESSAGE
from tests.factories import PortalFactory, SyncJobFactory, XeroConnectionFactory
from tests.sync.conftest import wait_for


def _xero_invoice_writes(sandbox) -> int:
    return sum(1 for c in sandbox.calls(system="xero") if c["method"] in ("PUT", "POST") and "/Invoices" in c["path"])


def test_jobs_wait_while_xero_needs_reconnection_and_run_after_reconnecting(sandbox, acme, acme_xero, b24, worker):
    # The grant died before the invoice was raised: its events' jobs must wait, not fail.
    XeroConnection.objects.filter(pk=acme_xero.pk).update(
        status=XeroConnection.Status.NEEDS_RECONNECT, status_reason="invalid_grant"
    )
    company_id = b24.call("crm.company.add", {"fields": {"TITLE": "Tui Garden Supplies"}})
    invoice_id = b24.create_invoice("Paused while Xero is away")
    b24.update_invoice(invoice_id, companyId=company_id)
    writes_before = _xero_invoice_writes(sandbox)

    [job] = invoices_push_request(portal=acme, invoice_ids=[invoice_id], requested_by=b24.user["id"])
    report = invoices_push_pending(portal_id=acme.pk)
    assert report.claimed == 0 and report.paused  # says why it did nothing
    job.refresh_from_db()
    assert job.status == SyncJob.Status.PENDING
    assert _xero_invoice_writes(sandbox) == writes_before

    reconnected = sandbox_connect_xero(portal=acme)  # the same OAuth code flow a user goes through
    assert reconnected.pk == acme_xero.pk and reconnected.status == XeroConnection.Status.ACTIVE

    # The beat sweeper (every 30 s) finds the due pending job and dispatches the portal's processor.
    jobs_requeue_stuck(now=timezone.now() + dt.timedelta(minutes=1))
    wait_for(
        lambda: SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.DONE).exists(),
        timeout=30,
        what="the paused job to finish after reconnecting",
    )
    link = InvoiceLink.objects.get(portal=acme, bitrix24_id=invoice_id)
    assert link.xero_invoice_id


def test_needs_reconnection_is_said_only_of_a_dead_xero_grant_not_of_a_portal_not_connected_yet(transactional_db):
    """Events handled before the admin has chosen the Xero organisation (no connection yet) leave the
    jobs waiting without a "Xero needs reconnection" entry; a dead grant gets one."""
    portal = PortalFactory()
    job = SyncJobFactory(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, target="31:7")

    report = invoices_push_pending(portal_id=portal.pk)

    assert report.claimed == 0 and "no Xero connection" in report.paused
    assert not SyncLogEntry.objects.filter(portal=portal, message=RECONNECT_MESSAGE).exists()
    job.refresh_from_db()
    assert job.status == SyncJob.Status.PENDING

    XeroConnectionFactory(portal=portal, status=XeroConnection.Status.NEEDS_RECONNECT)
    invoices_push_pending(portal_id=portal.pk)
    assert SyncLogEntry.objects.filter(portal=portal, message=RECONNECT_MESSAGE).count() == 1
