"""Paid in Xero -> a paid payment on the Bitrix24 invoice (bitrix24-api.md §1.6), when the portal's
SyncSettings.create_bitrix24_payment_on_paid asks for it.

Idempotent by reading first: an invoice that already has a paid payment is left alone, an unpaid
one is marked paid, and only an invoice without any gets a new payment which is then marked paid.
crm.item.payment.add makes an *empty* payment (sum 0; it takes only entityTypeId/entityId,
api-reference/crm/universal/payment/crm-item-payment-add.md), so the invoice's product rows are
added to it (crm.item.payment.product.add, one per row, at the row's quantity) before it is paid;
an unpaid payment found empty gets them too. Rounds of `batch` calls for up to 50 invoices: the
payments and rows, the adds, the products, the pays — a pay is sent only when its products went in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Portal
from integrations.bitrix24.api import BatchOutcome, Bitrix24Api, payments
from integrations.bitrix24.api.command import Command, ListCommand
from integrations.bitrix24.api.invoices import productrows_list
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError, RetryableError
from sync.models import Direction, SyncLogEntry
from sync.services.log import sync_log_write


@dataclass(frozen=True)
class PaidInvoice:
    bitrix24_id: int
    xero_invoice_id: str
    invoice_number: str
    trigger: str


def bitrix24_payments_record(
    *, portal: Portal, client: Bitrix24Api, invoices: list[PaidInvoice]
) -> dict[int, ExternalAPIError | None]:
    """Make sure each invoice has a paid payment in Bitrix24; each one's error, None when done.
    A failure here is logged and returned but never undoes the stage move it follows."""
    outcomes: dict[int, ExternalAPIError | None] = {}
    if not invoices:
        return outcomes
    by_id = {invoice.bitrix24_id: invoice for invoice in invoices}
    read: dict[str, Command[Any]] = {}
    rows_cmd: dict[int, ListCommand[dict]] = {}
    for i in by_id:
        read[f"l{i}"] = payments.payments_list(i, SMART_INVOICE)
        rows_cmd[i] = read[f"r{i}"] = productrows_list(i, select=["id", "quantity"])
    try:
        listed = client.batch_all(read)
    except ExternalAPIError as error:
        return _logged(portal, by_id, dict.fromkeys(by_id, error))
    already: set[int] = set()
    to_pay: dict[int, int | None] = {}  # invoice -> its unpaid payment (None: one is to be added)
    needs_rows: set[int] = set()
    rows_of: dict[int, list[dict]] = {}
    for invoice_id in by_id:
        missing = [k for k in (f"l{invoice_id}", f"r{invoice_id}") if not listed.ran(k)]
        if missing:
            outcomes[invoice_id] = listed.errors.get(missing[0]) or _not_run()
            continue
        listed_payments: list[payments.Payment] = listed.value(f"l{invoice_id}")
        rows_of[invoice_id] = listed.value(f"r{invoice_id}")
        if listed.has_more(f"r{invoice_id}"):  # more than a page of rows
            try:
                rows_of[invoice_id] = list(client.list_all(rows_cmd[invoice_id]))
            except ExternalAPIError as error:
                outcomes[invoice_id] = error
                continue
        if any(p.paid for p in listed_payments):
            outcomes[invoice_id] = None  # recorded before (by us or by a person): once is enough
            already.add(invoice_id)
            continue
        if listed_payments:
            to_pay[invoice_id] = listed_payments[0].id
            if not listed_payments[0].sum:
                needs_rows.add(invoice_id)
        else:
            to_pay[invoice_id] = None
            needs_rows.add(invoice_id)

    def run(commands: dict[str, Command[Any]]) -> BatchOutcome | None:
        try:
            return client.batch_all(commands)
        except ExternalAPIError as error:
            for key in commands:
                outcomes.setdefault(int(key[1:].partition("_")[0]), error)
            return None

    adds: dict[str, Command[Any]] = {
        f"a{i}": payments.payment_add(i, SMART_INVOICE) for i, pid in to_pay.items() if pid is None
    }
    made = run(adds) if adds else None
    for key in adds:
        invoice_id = int(key[1:])
        if made is not None and made.ran(key):
            to_pay[invoice_id] = made.value(key)
        elif invoice_id not in outcomes:
            outcomes[invoice_id] = (made.errors.get(key) if made else None) or _not_run()
    products: dict[str, Command[Any]] = {
        f"q{i}_{row['id']}": payments.payment_product_add(to_pay[i] or 0, row["id"], row.get("quantity") or 1)
        for i in needs_rows
        if i not in outcomes and to_pay.get(i)
        for row in rows_of.get(i, [])
    }
    added = run(products) if products else None
    for key in products:
        invoice_id = int(key[1:].partition("_")[0])
        if invoice_id not in outcomes and (added is None or not added.ran(key)):
            outcomes[invoice_id] = (added.errors.get(key) if added else None) or _not_run()
    pays: dict[str, Command[Any]] = {
        f"p{i}": payments.payment_pay(pid) for i, pid in to_pay.items() if pid and i not in outcomes
    }
    done = run(pays) if pays else None
    for key in pays:
        invoice_id = int(key[1:])
        if invoice_id not in outcomes:
            ok = done is not None and done.ran(key)
            outcomes[invoice_id] = None if ok else ((done.errors.get(key) if done else None) or _not_run())
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
