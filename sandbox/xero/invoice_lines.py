"""An invoice's lines and totals as Xero computes them (invoices and credit notes alike).

Each line's amount (quantity x unit price, less DiscountRate % or DiscountAmount) and tax (from the
tax type's rate, extracted on Inclusive lines) are rounded half-up to cents, then summed; a Total sent
by the client is ignored. A line's TaxAmount, when sent, overrides the computed tax (LineItem.TaxAmount:
"can be overriden if the calculated TaxAmount is not correct"). Line items are replaced on update; a
LineItemID sent back keeps its line.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sandbox.xero.store import Organisation
from sandbox.xero.wire import new_id, round_money, to_decimal

if TYPE_CHECKING:
    from sandbox.xero.invoices import _Draft


def _number_field(draft: _Draft, raw: dict, field: str, places: int) -> Decimal | None:
    if raw.get(field) is None:
        return None
    try:
        return round_money(to_decimal(raw[field]), places)
    except ValueError:
        draft.errors.append(f"{field} must be a number")
        return None


def build_line(draft: _Draft, raw: object, kept: dict) -> dict:
    if not isinstance(raw, dict):
        draft.errors.append("A line item must be an object")
        return {"LineItemID": new_id()}
    org, sales = draft.org, draft.invoice["Type"] != "ACCPAY"
    line_id = str(raw.get("LineItemID") or "").lower()
    line = {"LineItemID": line_id if line_id in kept else new_id()}
    code = raw.get("ItemCode")
    item = None
    if code:
        item = org.item_by_id_or_code(str(code))
        if item is None:
            draft.errors.append(f"Item code '{code}' is not valid")
        else:
            line["ItemCode"] = item["Code"]
    details = (item or {}).get("SalesDetails" if sales else "PurchaseDetails") or {}
    description = raw.get("Description")
    if description is None and item is not None:
        description = item.get("Description" if sales else "PurchaseDescription") or item.get("Name")
    if description is not None:
        if len(str(description)) > 4000:
            draft.errors.append("Description must not be more than 4000 characters long.")
        line["Description"] = str(description)
    line["Quantity"] = _number_field(draft, raw, "Quantity", 4)
    line["UnitAmount"] = _number_field(draft, raw, "UnitAmount", draft.unitdp)
    if line["UnitAmount"] is None and details.get("UnitPrice") is not None:
        line["UnitAmount"] = round_money(details["UnitPrice"], draft.unitdp)
    line["GivenLineAmount"] = _number_field(draft, raw, "LineAmount", 2)
    line["DiscountRate"] = _number_field(draft, raw, "DiscountRate", 4)
    line["DiscountAmount"] = _number_field(draft, raw, "DiscountAmount", 2)
    # "This value can be overriden if the calculated <TaxAmount> is not correct" (LineItem.TaxAmount).
    line["TaxAmountOverride"] = _number_field(draft, raw, "TaxAmount", 2)
    account = None
    if raw.get("AccountCode") or raw.get("AccountID"):
        account = org.account(code=raw.get("AccountCode"), account_id=raw.get("AccountID"))
        if account is None or account["Status"] != "ACTIVE":
            draft.errors.append("Account must be valid.")
    elif details.get("AccountCode"):
        account = org.account(code=details["AccountCode"])
    if account is not None:
        line["AccountCode"] = account["Code"]
        line["AccountID"] = account["AccountID"]
    tax_type = raw.get("TaxType") or details.get("TaxType")
    if tax_type:
        if tax_type not in org.tax_rates:
            draft.errors.append("Tax rate must be valid.")
        line["TaxType"] = tax_type
    elif account is not None:
        line["TaxType"] = account["TaxType"]
    if isinstance(raw.get("Tracking"), list):
        line["Tracking"] = raw["Tracking"]
    compute_line(draft, line)
    return line


def compute_line(draft: _Draft, line: dict) -> None:
    quantity, unit, given = line.get("Quantity"), line.get("UnitAmount"), line.get("GivenLineAmount")
    if quantity is None and unit is None and given is not None:
        quantity, unit = Decimal(1), given
    elif quantity is None and unit is not None:
        quantity = Decimal(1)
    elif unit is None and quantity is not None:
        unit = round_money(given / quantity, draft.unitdp) if given is not None and quantity else Decimal(0)
    line["Quantity"], line["UnitAmount"] = quantity, unit
    gross = (quantity or 0) * (unit or 0)
    amount = gross
    if line.get("DiscountRate"):
        amount = gross * (100 - line["DiscountRate"]) / 100
    elif line.get("DiscountAmount"):
        amount = gross - line["DiscountAmount"]
    line["LineAmount"] = round_money(Decimal(amount))
    line["Discount"] = round_money(Decimal(gross)) - line["LineAmount"]
    modes = draft.invoice["LineAmountTypes"]
    if modes == "NoTax":
        line["TaxType"] = "NONE"
    rate = draft.org.tax_rates.get(line.get("TaxType") or "NONE", {}).get("Rate", Decimal(0))
    if modes != "NoTax" and line.get("TaxAmountOverride") is not None:
        line["TaxAmount"] = line["TaxAmountOverride"]
    elif modes == "Exclusive":
        line["TaxAmount"] = round_money(line["LineAmount"] * rate / 100)
    elif modes == "Inclusive":
        line["TaxAmount"] = round_money(line["LineAmount"] * rate / (100 + rate))
    else:
        line["TaxAmount"] = Decimal("0.00")


def compute_totals(invoice: dict, org: Organisation) -> None:
    lines = invoice["LineItems"]
    amounts = sum((line.get("LineAmount", Decimal(0)) for line in lines), Decimal("0.00"))
    tax = sum((line.get("TaxAmount", Decimal(0)) for line in lines), Decimal("0.00"))
    if invoice["LineAmountTypes"] == "Inclusive":
        invoice["SubTotal"], invoice["Total"] = amounts - tax, amounts
    else:
        invoice["SubTotal"], invoice["Total"] = amounts, amounts + tax
    invoice["TotalTax"] = tax
    invoice["TotalDiscount"] = sum((line.get("Discount", Decimal(0)) for line in lines), Decimal("0.00"))
    if invoice["Status"] in ("VOIDED", "DELETED"):
        invoice["AmountDue"] = Decimal("0.00")
    else:
        invoice["AmountDue"] = invoice["Total"] - invoice["AmountPaid"] - invoice["AmountCredited"]
