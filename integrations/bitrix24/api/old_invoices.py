"""Bitrix24 old invoices (crm.invoice.get, entity type 5) in the shape of a new one (crm.item).

The rest of the engine (the Xero mapper, fingerprints, the stage map, the pages) speaks crm.item's
camelCase invoice and crm.item.productrow rows. An old invoice carries the same facts under other
names and in other units, so it is translated once, here, and everything downstream is shared:

invoice: ID -> id, ORDER_TOPIC -> title, ACCOUNT_NUMBER -> accountNumber, STATUS_ID -> stageId (old
statuses are the stage ids of "category 0" in the stage map), PRICE -> opportunity (tax included),
TAX_VALUE -> taxValue, CURRENCY -> currencyId, UF_COMPANY_ID -> companyId, UF_CONTACT_ID -> contactId,
DATE_BILL -> begindate, DATE_PAY_BEFORE -> closedate, DATE_UPDATE -> updatedTime, RESPONSIBLE_ID ->
assignedById (crm-invoice-fields.md).

rows (PRODUCT_ROWS of crm.invoice.get): PRICE is the unit price the buyer pays, after DISCOUNT_PRICE
(the discount per unit), with VAT when VAT_INCLUDED is Y; VAT_RATE is a coefficient (0.2 = 20 %).
A new invoice's row gives four unit prices (bitrix24-api.md §1.4): price (after discount, with tax),
priceExclusive (after discount, without tax), priceBrutto / priceNetto (before discount). PRICE is
carried over unchanged on its own side of tax, so the Xero mapper's unit price is exactly the one
Bitrix24 bills; the other side is derived (rounded to 4 places, as Bitrix24 stores prices). A rate
of 0 or none is "no tax" (taxRate null), as the old invoice has no other way to say it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.bitrix24.entity_types import OLD_INVOICE

OLD_STATUS_CATEGORY = 0
DISCOUNT_ABSOLUTE = 1
FOUR_PLACES = Decimal("0.0001")

# The crm.invoice.list fields the engine and the pages read (PRODUCT_ROWS only come from get).
LIST_SELECT = [
    "ID",
    "ACCOUNT_NUMBER",
    "ORDER_TOPIC",
    "STATUS_ID",
    "PRICE",
    "TAX_VALUE",
    "CURRENCY",
    "UF_COMPANY_ID",
    "UF_CONTACT_ID",
    "DATE_BILL",
    "DATE_PAY_BEFORE",
    "DATE_INSERT",
    "DATE_UPDATE",
    "RESPONSIBLE_ID",
]
# camelCase filter/order keys of crm.item.list -> the old invoice's field.
FIELD_NAMES = {
    "id": "ID",
    "updatedTime": "DATE_UPDATE",
    "createdTime": "DATE_INSERT",
    "stageId": "STATUS_ID",
    "companyId": "UF_COMPANY_ID",
    "contactId": "UF_CONTACT_ID",
    "assignedById": "RESPONSIBLE_ID",
    "title": "ORDER_TOPIC",
    "accountNumber": "ACCOUNT_NUMBER",
    "opportunity": "PRICE",
    "begindate": "DATE_BILL",
    "closedate": "DATE_PAY_BEFORE",
}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _decimal(value: object) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _plain(value: Decimal) -> str:
    """A Decimal as Bitrix24 would write the number (no exponent, no trailing zeros)."""
    text = format(value.quantize(FOUR_PLACES), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def old_invoice_as_item(invoice: Mapping[str, Any]) -> dict[str, Any]:
    """The old invoice (crm.invoice.get or .list) as crm.item.get would give a new one."""
    return {
        "id": _int(invoice.get("ID")),
        "entityTypeId": OLD_INVOICE,
        "title": str(invoice.get("ORDER_TOPIC") or ""),
        "accountNumber": str(invoice.get("ACCOUNT_NUMBER") or ""),
        "stageId": str(invoice.get("STATUS_ID") or ""),
        "categoryId": OLD_STATUS_CATEGORY,
        "opportunity": invoice.get("PRICE"),
        "taxValue": invoice.get("TAX_VALUE"),
        "currencyId": str(invoice.get("CURRENCY") or ""),
        "companyId": _int(invoice.get("UF_COMPANY_ID")),
        "contactId": _int(invoice.get("UF_CONTACT_ID")),
        "begindate": invoice.get("DATE_BILL"),
        "closedate": invoice.get("DATE_PAY_BEFORE"),
        "updatedTime": invoice.get("DATE_UPDATE"),
        "createdTime": invoice.get("DATE_INSERT"),
        "assignedById": _int(invoice.get("RESPONSIBLE_ID")),
        "isManualOpportunity": "N",  # PRICE is read-only: the rows make it
    }


def old_row_as_product_row(row: Mapping[str, Any], invoice_id: int, sort: int = 0) -> dict[str, Any]:
    """One PRODUCT_ROWS entry as crm.item.productrow.list would give it."""
    price = _decimal(row.get("PRICE"))
    discount = _decimal(row.get("DISCOUNT_PRICE"))
    coefficient = _decimal(row.get("VAT_RATE"))
    included = str(row.get("VAT_INCLUDED") or "Y").upper() == "Y"
    factor = 1 + coefficient
    if included:
        gross, gross_before = price, price + discount
        net, net_before = price / factor, (price + discount) / factor
    else:
        net, net_before = price, price + discount
        gross, gross_before = price * factor, (price + discount) * factor
    return {
        "id": _int(row.get("ID")),
        "ownerId": invoice_id,
        "ownerType": "I",
        "productId": _int(row.get("PRODUCT_ID")),
        "productName": str(row.get("PRODUCT_NAME") or ""),
        "price": _plain(gross),
        "priceExclusive": _plain(net),
        "priceNetto": _plain(net_before),
        "priceBrutto": _plain(gross_before),
        "quantity": _plain(_decimal(row.get("QUANTITY") or 1)),
        "discountTypeId": DISCOUNT_ABSOLUTE,
        "discountRate": None,
        "discountSum": _plain(discount / factor if included else discount),
        "taxRate": _plain(coefficient * 100) if coefficient else None,
        "taxIncluded": "Y" if included else "N",
        "measureCode": _int(row.get("MEASURE_CODE")),
        "measureName": str(row.get("MEASURE_NAME") or ""),
        "sort": sort,
    }


def old_rows_as_product_rows(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PRODUCT_ROWS of crm.invoice.get, in their order, as product rows."""
    rows = invoice.get("PRODUCT_ROWS") or []
    if isinstance(rows, Mapping):
        rows = list(rows.values())
    invoice_id = _int(invoice.get("ID"))
    return [old_row_as_product_row(row, invoice_id, sort=10 * (n + 1)) for n, row in enumerate(rows)]


def old_filter(flt: Mapping[str, object]) -> dict[str, object]:
    """A crm.item.list filter ({">=updatedTime": ..., "@id": [...]}) for crm.invoice.list. The
    classic lists take "in" as a plain key with an array value ({"ID": [1, 2]})."""
    out: dict[str, object] = {}
    for key, value in flt.items():
        prefix = key[: len(key) - len(key.lstrip("<>=!@%"))]
        name = key[len(prefix) :]
        if prefix == "@":
            prefix = ""
        out[prefix + FIELD_NAMES.get(name, name)] = value
    return out


def old_order(order: Mapping[str, str]) -> dict[str, str]:
    return {FIELD_NAMES.get(name, name): direction for name, direction in order.items()}


def status_fields(status_id: str) -> dict[str, str]:
    """The crm.invoice.update fields that move an old invoice to a status."""
    return {"STATUS_ID": status_id}
