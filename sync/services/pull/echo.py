"""Xero webhooks caused by what we already know: no need to read the invoice again.

Every write we make to a Xero invoice raises a webhook for it, and its answer already told us the
invoice's new state, which the push engine stored on the link with the answer's UpdatedDateUTC
(`InvoiceLink.xero_updated_at`; a pull stores the UpdatedDateUTC it read the same way). An event is
"the date and time that event occurred" (xero-webhooks.yaml): one that occurred no later than the
state we hold (our own write's event, or a duplicate or late delivery of an older one) cannot tell us
anything that state does not, so it is not fetched with GET /Invoices. Any later change in Xero (a
payment, a status, edited lines) has a later time and raises its own event, which is fetched as
before; and the sweep (If-Modified-Since) reads whatever an event failed to bring.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from accounts.models import Portal
from sync.models import Direction, InvoiceLink, SyncLogEntry, Trigger
from sync.services.log import sync_log_entry


def xero_event_echo_entry(
    *, portal: Portal, invoice_id: str, event_date_utc: str, links: Mapping[uuid.UUID, InvoiceLink | None] | None = None
) -> SyncLogEntry | None:
    """The sync-log entry that says this Xero event is an echo (as the pull says an echo it read),
    not stored yet, when the link of this Xero invoice already holds a state at least as new as the
    event; None when the event must be read. The caller stores the entries of a batch together
    (sync.services.log.sync_log_write_many). `links`: the portal's links by Xero invoice id when
    the caller read them already (the inbox reads a batch's at once)."""
    occurred = _event_time(event_date_utc)
    if occurred is None:
        return None
    try:
        key = uuid.UUID(str(invoice_id))
    except ValueError:
        return None
    if links is not None and key in links:
        link = links[key]
    else:
        link = InvoiceLink.objects.filter(portal=portal, xero_invoice_id=key).first()
    if link is None or link.xero_updated_at is None or occurred > link.xero_updated_at:
        return None
    return sync_log_entry(
        portal=portal,
        direction=Direction.PULL,
        trigger=Trigger.WEBHOOK,
        outcome=SyncLogEntry.Outcome.ECHO_DROPPED,
        bitrix24_id=link.bitrix24_id,
        xero_id=str(key),
        invoice_number=link.xero_invoice_number,
        message=(
            f"Xero's event of {occurred.strftime('%H:%M:%S.%f')[:-3]} UTC is not newer than what we last wrote"
            " or read; the invoice was not read again."
        ),
        details={"xero_status": link.last_xero_status},
    )


def _event_time(value: str) -> datetime | None:
    """eventDateUtc is ISO 8601 without a zone ("2024-06-21T01:15:39.902"), in UTC (xero-api.md §7.3)."""
    try:
        parsed = datetime.fromisoformat(str(value).strip().removesuffix("Z"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
