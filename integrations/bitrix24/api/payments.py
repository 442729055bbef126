"""Payments of new invoices (crm.item.payment.*, api-reference/crm/universal/payment/): a paid
payment is how a new invoice records that Xero reported it paid."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from integrations.bitrix24.api.command import Command, as_decimal, as_int, as_str
from integrations.bitrix24.entity_types import SMART_INVOICE


@dataclass(frozen=True)
class Payment:
    id: int
    paid: bool
    sum: Decimal  # 0 when the payment has no products yet (its sum follows its rows)


def _payments(result: Any) -> list[Payment]:
    return [
        Payment(
            id=as_int(p.get("id")) or 0, paid=as_str(p.get("paid")) == "Y", sum=as_decimal(p.get("sum")) or Decimal(0)
        )
        for p in result or []
        if isinstance(p, dict)
    ]


def payments_list(invoice_id: int, entity_type: int = SMART_INVOICE) -> Command[list[Payment]]:
    return Command("crm.item.payment.list", {"entityTypeId": entity_type, "entityId": invoice_id}, _payments)


def payment_add(invoice_id: int, entity_type: int = SMART_INVOICE) -> Command[int]:
    """A new (unpaid, empty) payment of the invoice; its id."""
    return Command("crm.item.payment.add", {"entityTypeId": entity_type, "entityId": invoice_id}, lambda r: int(r))


def payment_product_add(payment_id: int, row_id: int, quantity: Any) -> Command[Any]:
    """Put one of the invoice's product rows into the payment (its sum follows)."""
    return Command("crm.item.payment.product.add", {"paymentId": payment_id, "rowId": row_id, "quantity": quantity})


def payment_pay(payment_id: int) -> Command[Any]:
    return Command("crm.item.payment.pay", {"id": payment_id})
