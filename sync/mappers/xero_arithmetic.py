"""Xero's arithmetic and Bitrix24's rows: the figures each side computes for an invoice.

The one place Xero's rounding lives here (xero-api.md §2.2, Invoices in xero_accounting.yaml):
LineAmount = Quantity x UnitAmount less the discount, rounded half up to the cent; TaxAmount per line
from the tax type's effective rate (extracted from Inclusive lines), rounded half up per line; the
totals are sums of the rounded lines. Bitrix24 adds the rows' exact amounts and rounds once
(bitrix24-api.md §1.4). `sync.mappers.exactness` chooses lines so the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sync.mappers.money import CENT, ZERO, money, optional_decimal, quantize, to_decimal

EXCLUSIVE = "Exclusive"
INCLUSIVE = "Inclusive"
NO_TAX = "NoTax"
UNIT = Decimal("0.0001")
HUNDRED = Decimal(100)


# --- Xero's arithmetic ------------------------------------------------------------------------------


def line_amount(
    qty: Decimal, unit: Decimal, *, discount_rate: Decimal | None = None, discount_amount: Decimal | None = None
) -> Decimal:
    """Xero's LineAmount: quantity x unit less the discount, rounded half up to the cent."""
    gross = qty * unit
    if discount_rate:
        gross = gross * (HUNDRED - discount_rate) / HUNDRED
    elif discount_amount:
        gross = gross - discount_amount
    return quantize(gross)


def line_tax(amount: Decimal, rate: Decimal, amount_type: str) -> Decimal:
    """Xero's TaxAmount of one line, rounded half up per line."""
    if amount_type == NO_TAX or not rate:
        return ZERO.quantize(CENT)
    if amount_type == INCLUSIVE:
        return quantize(amount * rate / (HUNDRED + rate))
    return quantize(amount * rate / HUNDRED)


@dataclass(frozen=True)
class Figures:
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    def same(self, other: Figures) -> bool:
        return (self.total, self.tax) == (other.total, other.tax)


def xero_totals(line_items: Sequence[Mapping], amount_type: str, rates: Mapping[str, Decimal]) -> Figures:
    """SubTotal, TotalTax and Total Xero computes for these LineItems; `rates` are the organisation's
    effective rates by TaxType (a TaxType missing there counts as 0%)."""
    lines = tax = ZERO
    for line in line_items:
        amount = line_amount(
            to_decimal(line.get("Quantity"), default=Decimal(1)),
            to_decimal(line.get("UnitAmount")),
            discount_rate=optional_decimal(line.get("DiscountRate")),
            discount_amount=optional_decimal(line.get("DiscountAmount")),
        )
        lines += amount
        if amount_type != NO_TAX and line.get("TaxAmount") is not None:
            tax += money(line["TaxAmount"])  # an override Xero keeps (LineItem.TaxAmount)
            continue
        rate = ZERO if amount_type == NO_TAX else to_decimal(rates.get(line.get("TaxType") or "", ZERO))
        tax += line_tax(amount, rate, amount_type)
    if amount_type == INCLUSIVE:
        return Figures(subtotal=money(lines - tax), tax=money(tax), total=money(lines))
    return Figures(subtotal=money(lines), tax=money(tax), total=money(lines + tax))


# --- Bitrix24's rows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One Bitrix24 product row, with its exact amounts (before any rounding)."""

    number: int  # 1-based, as the user sees the rows
    name: str
    qty: Decimal
    price: Decimal  # final unit price, with tax (Bitrix24's `price`)
    rate: Decimal | None  # Bitrix24's taxRate; None = no tax
    included: bool
    netto: Decimal  # before discount, without tax (priceNetto)
    brutto: Decimal  # before discount, with tax (priceBrutto)
    discount_type: int
    discount_rate: Decimal
    tax_type: str  # the Xero TaxType the map gives
    xero_rate: Decimal  # that tax type's effective rate in Xero

    @property
    def factor(self) -> Decimal:
        return HUNDRED + (self.rate or ZERO)

    @property
    def gross(self) -> Decimal:
        return self.price * self.qty

    @property
    def net(self) -> Decimal:
        return self.gross * HUNDRED / self.factor

    def label(self) -> str:
        return f'row {self.number} "{self.name}"' if self.name else f"row {self.number}"


def read_rows(rows: Sequence[Mapping], tax_types: Sequence[str], rates: Mapping[str, Decimal]) -> list[Row]:
    out = []
    for index, (row, tax_type) in enumerate(zip(rows, tax_types, strict=True)):
        out.append(
            Row(
                number=index + 1,
                name=str(row.get("productName") or "").strip()[:60],
                qty=to_decimal(row.get("quantity"), default=Decimal(1)),
                price=to_decimal(row.get("price")),
                rate=optional_decimal(row.get("taxRate")),
                included=row.get("taxIncluded") == "Y",
                netto=to_decimal(row.get("priceNetto")),
                brutto=to_decimal(row.get("priceBrutto")),
                discount_type=_int(row.get("discountTypeId")) or 2,
                discount_rate=to_decimal(row.get("discountRate")),
                tax_type=tax_type,
                xero_rate=to_decimal(rates.get(tax_type, ZERO)),
            )
        )
    return out


def rows_totals(rows: Sequence[Row]) -> Figures:
    """What Bitrix24 computes from the rows: the exact sums, each rounded once."""
    total = money(sum((r.gross for r in rows), ZERO))
    tax = money(sum((r.gross - r.net for r in rows), ZERO))
    return Figures(subtotal=total - tax, tax=tax, total=total)


def bitrix24_figures(invoice: Mapping) -> Figures:
    """The invoice's own amount and tax (opportunity, taxValue)."""
    total = money(invoice.get("opportunity"))
    tax = money(invoice.get("taxValue"))
    return Figures(subtotal=total - tax, tax=tax, total=total)


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
