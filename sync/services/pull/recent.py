"""The "Update from Xero" button and the sweep: everything Xero changed since the portal's watermark."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import Portal
from integrations.xero.client import XeroClient
from sync.models import InvoiceLink, SyncSettings, Trigger
from sync.services.credit_notes import credit_notes_pull_recent
from sync.services.pull.apply import invoices_apply
from sync.services.pull.gate import pull_lock, pull_portal_active
from sync.services.pull.state import PullReport, XeroInvoiceState

# Xero's largest page since July 2024 (§2.3).
PAGE_SIZE = 1000
# If-Modified-Since has second precision and UpdatedDateUTC milliseconds, and an invoice committed
# while the previous pass ran may carry a time just before its high-water mark: read a little of
# the past again. Re-read invoices are harmless (their fingerprint equals the stored one).
DEFAULT_OVERLAP_S = 120


def statuses_pull_recent(*, portal: Portal, trigger: Trigger | str) -> PullReport:
    """Read every invoice Xero changed since the portal's watermark and apply the linked ones.

    GET /Invoices If-Modified-Since=<watermark - overlap>, order UpdatedDateUTC ASC, 1000 a page,
    until a page comes back short. The watermark then moves to the newest UpdatedDateUTC seen,
    except that an invoice whose Bitrix24 write failed for a retryable reason holds it back so the
    next pass reads it again. The button runs as interactive: its calls go before background ones.
    Xero errors propagate: the task decides about retrying, and the watermark stays where it was.
    """
    report = PullReport(trigger=str(trigger))
    portal, connection = pull_portal_active(portal.pk, report)
    if portal is None or connection is None:
        return report
    with pull_lock(portal.pk):
        sync_settings, _ = SyncSettings.objects.get_or_create(portal=portal)
        since = sync_settings.xero_modified_since or _first_link_time(portal)
        if since is None:
            # Nothing linked yet, so nothing in Xero can concern us: start watching from now.
            _advance_watermark(portal, timezone.now())
            report.watermark = timezone.now()
            return report
        overlap = timedelta(seconds=float(getattr(settings, "XERO_PULL_OVERLAP_S", DEFAULT_OVERLAP_S)))
        modified_since = (since - overlap).replace(microsecond=0)
        client = XeroClient(connection, interactive=str(trigger) == Trigger.BUTTON)
        high: datetime | None = None
        hold: datetime | None = None
        page = 1
        while True:
            changed = client.invoices_modified_since(modified_since, page=page, page_size=PAGE_SIZE)
            report.xero_calls += 1
            invoices = [XeroInvoiceState.of(invoice) for invoice in changed]
            report.fetched += len(invoices)
            stamps = [i.updated_at for i in invoices if i.updated_at is not None]
            if stamps:
                high = max([high, *stamps]) if high else max(stamps)
            # One query per page: only invoices we created are ours to act on.
            ids = [i.invoice_id for i in invoices]
            links = {
                link.xero_invoice_id: link
                for link in InvoiceLink.objects.filter(portal=portal, xero_invoice_id__in=ids)
            }
            ours = [i for i in invoices if i.invoice_id in links]
            outcomes = invoices_apply(
                portal=portal, invoices=ours, links=links, triggers=dict.fromkeys(links, str(trigger)), report=report
            )
            for invoice in ours:
                error = outcomes.get(invoice.invoice_id)
                if error is not None and error.retryable and invoice.updated_at is not None:
                    hold = min(hold, invoice.updated_at) if hold else invoice.updated_at
            if len(invoices) < PAGE_SIZE:
                break
            page += 1
        # Credit notes (invoices below zero, issue 11): Xero sends no webhooks for them, so the
        # sweep and the button read them too — only for portals that have any.
        notes = credit_notes_pull_recent(
            portal=portal, client=client, modified_since=modified_since, page_size=PAGE_SIZE
        )
        if notes:
            report.xero_calls += 1 + len(notes) // PAGE_SIZE
            report.fetched += len(notes)
            links = {
                link.xero_invoice_id: link
                for link in InvoiceLink.objects.filter(portal=portal, xero_invoice_id__in=[n.invoice_id for n in notes])
            }
            ours = [n for n in notes if n.invoice_id in links]
            stamps = [n.updated_at for n in ours if n.updated_at is not None]
            if stamps:
                high = max([high, *stamps]) if high else max(stamps)
            outcomes = invoices_apply(
                portal=portal, invoices=ours, links=links, triggers=dict.fromkeys(links, str(trigger)), report=report
            )
            for note in ours:
                error = outcomes.get(note.invoice_id)
                if error is not None and error.retryable and note.updated_at is not None:
                    hold = min(hold, note.updated_at) if hold else note.updated_at
        mark = min(high, hold) if high and hold else (hold or high)
        if mark is not None:
            _advance_watermark(portal, mark)
        report.watermark = mark or since
        return report


def _first_link_time(portal: Portal) -> datetime | None:
    """Where a first sweep starts: no invoice of ours changed in Xero before we linked it."""
    return (
        InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def _advance_watermark(portal: Portal, mark: datetime) -> None:
    # Only forward: a slow pass finishing after a faster one must not move it back.
    SyncSettings.objects.filter(portal=portal).filter(
        Q(xero_modified_since__isnull=True) | Q(xero_modified_since__lt=mark)
    ).update(xero_modified_since=mark, updated_at=timezone.now())
