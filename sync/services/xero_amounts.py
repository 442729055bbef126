"""What Xero says an invoice comes to: total, amount paid, amount due (the invoice page shows them
beside Bitrix24's own figures). One GET Invoices/{InvoiceID}, as the user's click, on page load."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Portal, XeroConnection
from integrations.common.errors import ExternalAPIError
from sync.models import InvoiceLink


@dataclass(frozen=True)
class XeroAmounts:
    total: Decimal | None = None
    amount_paid: Decimal | None = None
    amount_due: Decimal | None = None
    total_tax: Decimal | None = None
    currency: str = ""
    status: str = ""
    error: str = ""  # why Xero's figures could not be read ("" when they were)


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def xero_amounts(portal: Portal, link: InvoiceLink | None) -> XeroAmounts | None:
    """None when the invoice is not in Xero (nothing to show)."""
    if link is None or not link.xero_invoice_id:
        return None
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        return XeroAmounts(error="Xero is not connected, so its figures cannot be shown.")
    from integrations.xero.client import XeroClient

    try:
        answer = XeroClient(connection, interactive=True).call("get_invoice", invoice_id=str(link.xero_invoice_id))
    except ExternalAPIError as exc:
        return XeroAmounts(error=f"Xero did not answer: {exc.message}")
    invoices = getattr(answer, "invoices", None) or []
    if not invoices:
        return XeroAmounts(error="Xero does not know this invoice any more.")
    invoice = invoices[0]
    currency = getattr(invoice, "currency_code", None)
    status = getattr(invoice, "status", None)
    return XeroAmounts(
        total=_decimal(invoice.total),
        amount_paid=_decimal(invoice.amount_paid),
        amount_due=_decimal(invoice.amount_due),
        total_tax=_decimal(invoice.total_tax),
        currency=str(getattr(currency, "value", currency) or ""),
        status=str(getattr(status, "value", status) or ""),
    )
