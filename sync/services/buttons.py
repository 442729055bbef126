"""The "Create / Edit on Xero" button (invoice toolbar and list menu placements).

A click only enqueues: one PUSH_INVOICE job per invoice with USER priority, so it overtakes
background work and coalesces with any job already waiting for the invoice. The page then polls
the jobs it got back.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from accounts.models import Portal
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.models import SyncJob, Trigger
from sync.services.jobs import job_enqueue
from sync.sources import invoice_source

MAX_INVOICES_PER_CLICK = 1000


def invoices_push_request(
    *,
    portal: Portal,
    invoice_ids: Iterable[int],
    requested_by: int | None,
    trigger: Trigger | str = Trigger.BUTTON,
    entity_type: int = SMART_INVOICE,
) -> list[SyncJob]:
    """The pending job of each invoice (new, or the waiting one raised to USER priority); the
    invoices are of one kind (`entity_type`: 31 new, 5 old)."""
    source = invoice_source(entity_type)
    ids = list(dict.fromkeys(int(i) for i in invoice_ids))
    if len(ids) > MAX_INVOICES_PER_CLICK:
        raise ValueError(f"At most {MAX_INVOICES_PER_CLICK} invoices can be sent at once; select fewer.")
    with transaction.atomic():
        return [
            job_enqueue(
                portal=portal,
                kind=SyncJob.Kind.PUSH_INVOICE,
                target=source.target(invoice_id),
                trigger=trigger,
                priority=SyncJob.Priority.USER,
                requested_by=requested_by,
            )
            for invoice_id in ids
        ]
