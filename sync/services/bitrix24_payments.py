"""Paid in Xero -> a paid payment on the Bitrix24 invoice (bitrix24-api.md §1.6), when the portal's
SyncSettings.create_bitrix24_payment_on_paid asks for it.

Idempotent by reading first: an invoice that already has a paid payment is left alone, an unpaid
one is marked paid, and only an invoice without any gets a new payment (of the invoice's amount,
Bitrix24's default) which is then marked paid. Two `batch` rounds for up to 50 invoices: the list,
then the adds and pays (an add and the pay that refers to it by `$result[...]` share a batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from accounts.models import Portal
from integrations.bitrix24.client import BATCH_LIMIT, Bitrix24Client
from integrations.common.errors import ExternalAPIError, RetryableError
from sync.models import Direction, SyncLogEntry
from sync.services.log import sync_log_write

SMART_INVOICE = 31


@dataclass(frozen=True)
class PaidInvoice:
    bitrix24_id: int
    xero_invoice_id: str
    invoice_number: str
    trigger: str


def bitrix24_payments_record(
    *, portal: Portal, client: Bitrix24Client, invoices: list[PaidInvoice]
) -> dict[int, ExternalAPIError | None]:
    """Make sure each invoice has a paid payment in Bitrix24; each one's error, None when done.
    A failure here is logged and returned but never undoes the stage move it follows."""
    outcomes: dict[int, ExternalAPIError | None] = {}
    if not invoices:
        return outcomes
    by_id = {invoice.bitrix24_id: invoice for invoice in invoices}
    try:
        listed = client.batch_all(
            {f"l{i}": ("crm.item.payment.list", {"entityTypeId": SMART_INVOICE, "entityId": i}) for i in by_id}
        )
    except ExternalAPIError as error:
        return _logged(portal, by_id, dict.fromkeys(by_id, error))
    groups: list[dict[str, tuple[str, dict]]] = []
    already: set[int] = set()
    for invoice_id in by_id:
        key = f"l{invoice_id}"
        if key not in listed.results:
            outcomes[invoice_id] = listed.errors.get(key) or _not_run()
            continue
        payments = listed.results[key] or []
        if any(p.get("paid") == "Y" for p in payments):
            outcomes[invoice_id] = None  # recorded before (by us or by a person): once is enough
            already.add(invoice_id)
            continue
        if payments:
            groups.append({f"p{invoice_id}": ("crm.item.payment.pay", {"id": payments[0]["id"]})})
        else:
            groups.append(
                {
                    f"a{invoice_id}": ("crm.item.payment.add", {"entityTypeId": SMART_INVOICE, "entityId": invoice_id}),
                    f"p{invoice_id}": ("crm.item.payment.pay", {"id": f"$result[a{invoice_id}]"}),
                }
            )
    for chunk in _chunks(groups):
        try:
            done = client.batch(chunk)
        except ExternalAPIError as error:
            outcomes.update((int(key[1:]), error) for key in chunk if key.startswith("p"))
            continue
        for key in chunk:
            if key.startswith("p"):
                invoice_id = int(key[1:])
                error = done.errors.get(f"a{invoice_id}") or done.errors.get(key)
                outcomes[invoice_id] = error if error or key in done.results else _not_run()
    _logged(portal, by_id, {i: e for i, e in outcomes.items() if i not in already})
    return outcomes


def _not_run() -> ExternalAPIError:
    return RetryableError("Bitrix24 did not run the payment command", system="bitrix24")


def _logged(
    portal: Portal, by_id: dict[int, PaidInvoice], outcomes: dict[int, ExternalAPIError | None]
) -> dict[int, ExternalAPIError | None]:
    for invoice_id, error in outcomes.items():
        invoice = by_id[invoice_id]
        sync_log_write(
            portal=portal,
            direction=Direction.PULL,
            trigger=invoice.trigger,
            outcome=SyncLogEntry.Outcome.FAILED if error else SyncLogEntry.Outcome.PAYMENT_RECORDED,
            object_kind=SyncLogEntry.ObjectKind.PAYMENT,
            bitrix24_id=invoice_id,
            xero_id=invoice.xero_invoice_id,
            invoice_number=invoice.invoice_number,
            message=error.message if error else "Paid in Xero: the Bitrix24 invoice's payment is marked paid.",
        )
    return outcomes


def _chunks(groups: Iterable[dict[str, tuple[str, dict]]]) -> Iterable[dict[str, tuple[str, dict]]]:
    """Batches of at most 50 commands that never split an add from the pay that refers to it."""
    chunk: dict[str, tuple[str, dict]] = {}
    for group in groups:
        if len(chunk) + len(group) > BATCH_LIMIT:
            yield chunk
            chunk = {}
        chunk.update(group)
    if chunk:
        yield chunk
