"""Reconciliation: every linked invoice compared with Xero, on demand and nightly.

One run (`reconcile_portal`):

1. Xero's current version of every linked invoice, read by IDs, 50 a call (ceil(n / 50) calls,
   through the tenant's throttle; the nightly run is background work, so user clicks go first).
2. Each one compared (sync.services.drift): content (lines, dates, reference…), contact and totals
   against the invoice JSON last pushed — which also marks it "Changed in Xero" as the webhook
   would — and the status against the one we last recorded. A link whose Xero invoice is not
   returned any more is "missing in Xero".
3. Bitrix24 invoices that should be in Xero but are not: on a stage that maps to a Xero status to
   create (DRAFT, SUBMITTED, AUTHORISED, PAID) with no Xero invoice linked. Listed with
   crm.item.list (ids only), 50 pages a `batch`.
4. Orphans: Xero invoices whose Url points at this portal's invoices (our reference) that no link
   knows — e.g. after reconnecting to another organisation, or a link lost. Listed with one where
   clause, 1,000 a page, summaries only.

Repair goes through the button's path (a user push per invoice, forced where Xero differs), so the
rules and messages are the same as "Create / Edit on Xero".
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.api import Bitrix24Api
from integrations.bitrix24.api.invoices import SmartInvoices
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from integrations.xero.client import XeroClient
from sync.mappers.drift import kinds_of
from sync.mappers.invoice import invoice_url
from sync.models import InvoiceLink, ReconciliationRun, StageMapping, Trigger
from sync.services.drift import IDS_PER_CALL, drift_observe, xero_current

logger = logging.getLogger(__name__)

STATUS = "status"
MISSING_IN_XERO = "missing_in_xero"
NOT_IN_XERO = "not_in_xero"
ORPHAN = "orphan"
KIND_LABELS = {
    "content": gettext_noop("Content (lines, dates, reference)"),
    "contact": gettext_noop("Contact"),
    "totals": gettext_noop("Totals"),
    STATUS: gettext_noop("Status"),
    MISSING_IN_XERO: gettext_noop("Deleted from Xero"),
    NOT_IN_XERO: gettext_noop("Not in Xero yet"),
    ORPHAN: gettext_noop("In Xero without a link"),
}
CREATE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID")
ORPHAN_PAGE = 1000


@dataclass
class _Calls:
    xero: int = 0
    bitrix24: int = 0

    def count_xero(self) -> None:
        self.xero += 1


def reconcile_portal(
    *, portal: Portal, trigger: str = Trigger.SWEEP, run: ReconciliationRun | None = None
) -> ReconciliationRun:
    """Compare and store the result on `run` (a new one when not given; the page makes one first so
    it can show "running" at once)."""
    run = run or ReconciliationRun.objects.create(portal=portal, trigger=str(trigger))
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        return _finish(run, error="Xero is not connected.")
    calls = _Calls()
    client = XeroClient(connection, interactive=str(trigger) == Trigger.BUTTON, on_call=calls.count_xero)

    try:
        links = list(InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False))
        current = xero_current(client, [link.xero_invoice_id for link in links])
        rows = [_compare(portal, link, current.get(str(link.xero_invoice_id).lower()), trigger) for link in links]
        run.rows = [row for row in rows if row["kinds"]]
        run.checked = len(links)
        run.missing = _not_in_xero(portal, calls)
        run.orphans = _orphans(portal, client, {str(link.xero_invoice_id).lower() for link in links})
    except ExternalAPIError as exc:
        run.xero_calls, run.bitrix24_calls = calls.xero, calls.bitrix24
        return _finish(run, error=exc.message)
    counts = Counter(kind for row in run.rows for kind in row["kinds"])
    counts[NOT_IN_XERO] = len(run.missing)
    counts[ORPHAN] = len(run.orphans)
    run.counts = {kind: counts.get(kind, 0) for kind in KIND_LABELS}
    run.xero_calls, run.bitrix24_calls = calls.xero, calls.bitrix24
    return _finish(run)


def _finish(run: ReconciliationRun, *, error: str = "") -> ReconciliationRun:
    run.status = ReconciliationRun.Status.FAILED if error else ReconciliationRun.Status.DONE
    run.error = error
    run.finished_at = timezone.now()
    run.save()
    return run


def _compare(portal: Portal, link: InvoiceLink, actual: dict | None, trigger: str) -> dict:
    row = {
        "bitrix24_id": link.bitrix24_id,
        "xero_invoice_id": str(link.xero_invoice_id),
        "number": link.xero_invoice_number,
        "kinds": [],
        "differences": [],
        "xero_status": "",
        "our_status": link.last_xero_status,
    }
    if actual is None:
        row["kinds"] = [MISSING_IN_XERO]
        return row
    row["xero_status"] = actual.get("Status") or ""
    differences = drift_observe(portal=portal, link=link, actual=actual, trigger=str(trigger))
    row["differences"] = list(differences)
    row["kinds"] = kinds_of(differences)
    if link.last_xero_status and row["xero_status"] and row["xero_status"] != link.last_xero_status:
        row["kinds"].append(STATUS)
        row["differences"].append(
            {
                "field": "Status",
                "label": "Status",
                "bitrix24": link.last_xero_status,
                "xero": row["xero_status"],
                "kind": STATUS,
            }
        )
    return row


def _not_in_xero(portal: Portal, calls: _Calls) -> list[dict]:
    stages = list(
        StageMapping.objects.filter(portal=portal, xero_status__in=CREATE_STATUSES).values_list("stage_id", flat=True)
    )
    if not stages:
        return []
    client = Bitrix24Api.for_portal(portal)
    invoices = list(client.list_all(SmartInvoices().list_command({"@stageId": stages}, order={"id": "ASC"})))
    calls.bitrix24 += 1 + max(0, -(-(len(invoices) - 50) // (50 * 50)))
    linked = set(
        InvoiceLink.objects.filter(
            portal=portal, bitrix24_entity_type=SMART_INVOICE, xero_invoice_id__isnull=False
        ).values_list("bitrix24_id", flat=True)
    )
    errors = dict(
        InvoiceLink.objects.filter(portal=portal, bitrix24_entity_type=SMART_INVOICE, xero_invoice_id__isnull=True)
        .exclude(last_error="")
        .values_list("bitrix24_id", "last_error")
    )
    return [
        {
            "bitrix24_id": int(invoice["id"]),
            "number": str(invoice.get("accountNumber") or ""),
            "title": str(invoice.get("title") or ""),
            "reason": errors.get(int(invoice["id"]), "Never sent."),
        }
        for invoice in invoices
        if int(invoice["id"]) not in linked
    ]


def _orphans(portal: Portal, client: XeroClient, linked_ids: set[str]) -> list[dict]:
    prefix = invoice_url(portal.domain, SMART_INVOICE, 0).removesuffix("0/")
    out: list[dict] = []
    page = 1
    while True:
        invoices = client.invoices_by_url_prefix(prefix, page=page, page_size=ORPHAN_PAGE)
        for invoice in invoices:
            if invoice.invoice_id.lower() in linked_ids or invoice.status == "DELETED":
                continue
            out.append(
                {
                    "xero_invoice_id": invoice.invoice_id,
                    "number": invoice.invoice_number,
                    "reference": invoice.reference,
                    "url": invoice.url,
                    "status": invoice.status,
                    "total": str(invoice.total if invoice.total is not None else ""),
                }
            )
        if len(invoices) < ORPHAN_PAGE:
            return out
        page += 1


def latest_run(portal: Portal) -> ReconciliationRun | None:
    return ReconciliationRun.objects.filter(portal=portal).order_by("-started_at").first()


def repairable_ids(run: ReconciliationRun, kind: str = "") -> list[int]:
    """Bitrix24 invoice ids a "repair all" sends (filtered by kind when given): the differing ones
    and those not in Xero yet. Orphans are Xero's side only: listed, never pushed."""
    ids = [row["bitrix24_id"] for row in run.rows if not kind or kind in row["kinds"]]
    if not kind or kind == NOT_IN_XERO:
        ids += [row["bitrix24_id"] for row in run.missing]
    return list(dict.fromkeys(int(i) for i in ids))


__all__ = ["IDS_PER_CALL", "KIND_LABELS", "latest_run", "reconcile_portal", "repairable_ids"]
