"""Which of a portal's jobs a signed-in user may follow (the progress of the invoice buttons).

A job's progress carries its invoice number and, on failure, the API's message about that invoice,
so it is shown only to who may see the invoice. Admins see every job of their portal. Anyone else
sees an invoice job only when Bitrix24, asked with the user's own token, returns that invoice (one
crm.item.list per 50, in one batch), and a portal-wide job (Update from Xero, imports) only when
they started it. Job numbers are sequential: without this, any user could read every job.
"""

from __future__ import annotations

from accounts.models import FrameSession
from integrations.bitrix24.api import Bitrix24Api
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.models import SyncJob
from sync.services.invoice_list import visible_invoice_ids


def jobs_visible_to(*, session: FrameSession, client: Bitrix24Api, job_ids: list[int]) -> list[int]:
    if session.is_admin:
        return job_ids
    rows = list(
        SyncJob.objects.filter(portal=session.portal, pk__in=job_ids).values_list(
            "id", "kind", "target", "requested_by"
        )
    )
    invoice_of: dict[int, int] = {}
    visible: set[int] = set()
    for job_id, kind, target, requested_by in rows:
        entity, _, item = target.partition(":")
        if kind == SyncJob.Kind.PUSH_INVOICE and entity == str(SMART_INVOICE) and item.isdigit():
            invoice_of[job_id] = int(item)
        elif requested_by == session.bitrix_user_id:
            visible.add(job_id)
    readable = visible_invoice_ids(client=client, ids=set(invoice_of.values()))
    visible |= {job_id for job_id, invoice in invoice_of.items() if invoice in readable}
    return [job_id for job_id in job_ids if job_id in visible]
