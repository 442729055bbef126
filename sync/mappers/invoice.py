"""Bitrix24 smart invoice (crm.item.get, entityTypeId 31) + product rows -> Xero ACCREC invoice JSON.

The result is the PascalCase JSON Xero takes (xero-api.md §3.2-3.3), with Decimal amounts: the caller
serialises it or builds SDK models from it, and must send `unitdp=4` because UnitAmount carries 4 dp.

How lines are priced, and why
-----------------------------
Xero recomputes every line: LineAmount = round(Quantity x UnitAmount x (100 - DiscountRate) / 100, 2)
or round(Quantity x UnitAmount - DiscountAmount, 2), tax per line rounded half up, then summed. We
cannot send totals, so the only way to make Xero agree with Bitrix24 to the cent is to choose
UnitAmount so that Xero's line rounding lands on Bitrix24's row sum (unit price x quantity). A
Bitrix24 row offers four unit prices (bitrix24-api.md §1.4): priceNetto (before discount, excl. tax),
priceExclusive (after discount, excl. tax), priceBrutto (before discount, incl. tax), price (after
discount, incl. tax).

* LineAmountTypes follows the rows: Inclusive when every taxed row has taxIncluded=Y, Exclusive when
  none has, NoTax when no row has a tax rate at all. Xero has one setting per invoice, so mixed rows
  become Exclusive (each row's priceExclusive is its own tax-free price, so nothing is lost but a
  possible cent of tax rounding, which `totals_gap` reports before the push).
* The unit price is the one on the invoice's side of tax: priceExclusive (Exclusive/NoTax) or price
  (Inclusive). Quantity x that price is exactly Bitrix24's row sum, so Xero's rounding of it matches.
* A discounted row is sent in discount form (priceNetto/priceBrutto with DiscountRate or
  DiscountAmount) only when Xero's arithmetic on that form gives the very same line amount; else it is
  sent at the discounted unit price. Example: priceNetto 90909.09 at 10% off, 10 units: Xero computes
  818181.81 but Bitrix24's row is 81818.18 x 10 = 818181.80, so that row goes as 81818.18 x 10.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from integrations.bitrix24.entity_types import OLD_INVOICE as CLASSIC_INVOICE
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.mappers import MappingError, limits
from sync.mappers.limits import xero_cut
from sync.mappers.money import (
    CENT,
    ZERO,
    money,
    optional_decimal,
    plain,
    quantity,
    quantize,
    to_decimal,
    unit_amount,
)
from sync.mappers.tax_map import NO_TAX_KEY, unmapped_message
from sync.mappers.xero_arithmetic import EXCLUSIVE, INCLUSIVE, NO_TAX, line_amount, line_tax

DISCOUNT_ABSOLUTE = 1  # discountTypeId: absolute amount per unit
DISCOUNT_PERCENT = 2  # discountTypeId: percent (Bitrix24's default)


@dataclass(frozen=True)
class ItemRef:
    """A Bitrix24 product linked to a Xero item (ItemLink): its Code and, if known, sales account."""

    code: str
    account_code: str = ""


@dataclass(frozen=True)
class MappingSettings:
    """What the invoice mapping needs from the portal's SyncSettings and links, as plain values.

    tax_types maps a Bitrix24 tax rate (as in taxRate, e.g. "15", 15 or 15.0) to a Xero TaxType;
    the key None is for rows without a tax rate.
    """

    default_account_code: str = "200"
    tax_types: Mapping[str | int | float | Decimal | None, str] = field(default_factory=lambda: {None: "NONE"})
    default_currency: str = ""
    force_exclusive: bool = False
    bitrix24_domain: str = ""
    items: Mapping[int, ItemRef] = field(default_factory=dict)  # Bitrix24 productId -> Xero item
    timezone: str = ""  # IANA name; "" = the offset Bitrix24 sent, which is the portal's
    # The organisation's tax rates as the reference cache holds them (sync.mappers.tax_map), so a
    # missing mapping can be named with the Xero tax rates that would fit; empty = not known.
    xero_tax_rates: tuple = ()

    def tax_type_for(self, rate: Decimal | None) -> str:
        wanted = tax_rate_key(rate)
        for key, tax_type in self.tax_types.items():
            if tax_rate_key(optional_decimal(key)) == wanted:
                return tax_type
        shown = "no tax rate" if rate is None else f"the tax rate {wanted}%"
        raise MappingError(
            f"There is no Xero tax type for {shown} in the connector's settings. Add it to the tax "
            "mapping (e.g. 15% -> OUTPUT2) and sync the invoice again."
        )

    def has_tax_type(self, rate: Decimal | None) -> bool:
        wanted = tax_rate_key(rate)
        return any(tax_rate_key(optional_decimal(key)) == wanted for key in self.tax_types)

    def check_tax_map(self, rows: list[Mapping]) -> None:
        """One error naming every rate of these rows that has no Xero tax type (issue 11 point 3)."""
        missing: dict[str, list[int]] = {}
        for index, row in enumerate(rows, start=1):
            rate = optional_decimal(row.get("taxRate"))
            if not self.has_tax_type(rate):
                missing.setdefault(tax_rate_key(rate) or NO_TAX_KEY, []).append(index)
        if missing:
            keys = sorted(missing, key=lambda k: (k != NO_TAX_KEY, Decimal(0) if k == NO_TAX_KEY else Decimal(k)))
            raise MappingError(unmapped_message(keys, list(self.xero_tax_rates), missing))

    def rates_by_tax_type(self) -> dict[str, Decimal]:
        """TaxType -> percent, the inverse of tax_types (for computing what Xero will charge)."""
        return {tax_type: optional_decimal(key) or ZERO for key, tax_type in self.tax_types.items()}


def tax_rate_key(rate: Decimal | None) -> str | None:
    return None if rate is None else plain(rate)


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class TotalsGap:
    """Xero would compute other totals than Bitrix24 shows: the user sees this before the push."""

    bitrix24: Totals
    xero: Totals

    @property
    def message(self) -> str:
        diff = self.xero.total - self.bitrix24.total
        return (
            f"Xero will compute a total of {self.xero.total} (tax {self.xero.tax}) where Bitrix24 shows "
            f"{self.bitrix24.total} (tax {self.bitrix24.tax}), a difference of {diff}. Xero rounds tax per "
            "line; adjust a unit price or quantity in Bitrix24 if the amounts must match exactly."
        )


# --- the invoice -----------------------------------------------------------------------------------


def invoice_to_xero(
    invoice: Mapping,
    rows: list[Mapping],
    contact_ref: Mapping,
    settings: MappingSettings,
    *,
    status: str | None = None,
) -> dict:
    """The Xero invoice for a Bitrix24 invoice (crm.item.get `item`) and its product rows
    (crm.item.productrow.list `productRows`). `contact_ref` is {"ContactID": ...} of the contact
    found or created for the client; `status` is what `xero_status_for_push` decided (None = omit).
    """
    if not rows:
        raise MappingError(
            f"Invoice {invoice.get('accountNumber') or invoice.get('id')} has no product rows; Xero needs at "
            "least one line. Add a product row in Bitrix24."
        )
    settings.check_tax_map(rows)
    amount_type = line_amount_type(rows, force_exclusive=settings.force_exclusive)
    out: dict = {
        "Type": "ACCREC",
        "Contact": dict(contact_ref),
        "LineAmountTypes": amount_type,
        "LineItems": [line_item(row, amount_type, settings) for row in rows],
    }
    number = str(invoice.get("accountNumber") or "").strip()
    if number:  # else Xero numbers it from the organisation's sequence
        out["InvoiceNumber"] = xero_cut(number, limits.INVOICE_NUMBER)
    reference = str(invoice.get("title") or "").strip()
    if reference:
        out["Reference"] = xero_cut(reference, limits.REFERENCE)
    for source, target in (("begindate", "Date"), ("closedate", "DueDate")):
        day = calendar_date(invoice.get(source), settings.timezone)
        if day:
            out[target] = day
    currency = invoice.get("currencyId") or settings.default_currency
    if currency:
        out["CurrencyCode"] = currency
    if settings.bitrix24_domain and invoice.get("id"):
        out["Url"] = invoice_url(settings.bitrix24_domain, invoice.get("entityTypeId") or SMART_INVOICE, invoice["id"])
    if status:
        out["Status"] = status
    return out


def line_amount_type(rows: list[Mapping], *, force_exclusive: bool = False) -> str:
    rates = [optional_decimal(row.get("taxRate")) for row in rows]
    if all(rate is None for rate in rates):
        return NO_TAX
    # Rows at 0% or without a rate cost the same either way; only really taxed rows decide.
    taxed = [row for row, rate in zip(rows, rates, strict=True) if rate]
    if force_exclusive or not taxed:
        return EXCLUSIVE
    if all(row.get("taxIncluded") == "Y" for row in taxed):
        return INCLUSIVE
    return EXCLUSIVE  # all tax-exclusive, or mixed (see the module docstring)


def line_item(row: Mapping, amount_type: str, settings: MappingSettings) -> dict:
    qty = quantity(row.get("quantity"))
    if amount_type == INCLUSIVE:
        final_unit, undiscounted_unit = to_decimal(row.get("price")), to_decimal(row.get("priceBrutto"))
    else:
        final_unit, undiscounted_unit = to_decimal(row.get("priceExclusive")), to_decimal(row.get("priceNetto"))
    target = quantize(final_unit * qty)  # Bitrix24's row sum on this side of tax

    out: dict = {"Description": _description(row), "Quantity": qty}
    out.update(_priced(row, qty, final_unit, undiscounted_unit, target))

    item = settings.items.get(_int(row.get("productId")))
    if item is not None:
        out["ItemCode"] = item.code
    out["AccountCode"] = (item.account_code if item is not None else "") or settings.default_account_code
    out["TaxType"] = settings.tax_type_for(optional_decimal(row.get("taxRate")))
    return out


def _priced(row: Mapping, qty: Decimal, final_unit: Decimal, undiscounted_unit: Decimal, target: Decimal) -> dict:
    """UnitAmount and discount fields: the discount form when Xero reproduces `target` from it."""
    plain_form = {"UnitAmount": unit_amount(final_unit)}
    unit = unit_amount(undiscounted_unit)
    if unit == plain_form["UnitAmount"] or unit.is_zero():
        return plain_form
    kind = _int(row.get("discountTypeId")) or DISCOUNT_PERCENT
    if kind == DISCOUNT_PERCENT:
        rate = to_decimal(row.get("discountRate"))
        if rate and rate == quantize(rate) and line_amount(qty, unit, discount_rate=rate) == target:
            return {"UnitAmount": unit, "DiscountRate": rate}
    else:
        # Xero's DiscountAmount is for the whole line; Bitrix24's discount is per unit. Take it as
        # the gap between the two unit prices, which is right on either side of tax (discountSum
        # is the tax-exclusive one).
        amount = (undiscounted_unit - final_unit) * qty
        if amount and amount == quantize(amount) and line_amount(qty, unit, discount_amount=amount) == target:
            return {"UnitAmount": unit, "DiscountAmount": amount.quantize(CENT)}
    return plain_form


def _description(row: Mapping) -> str:
    name = str(row.get("productName") or "").strip()
    return xero_cut(name or f"Product {row.get('productId') or ''}".strip(), limits.DESCRIPTION)


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def calendar_date(value: object, timezone: str = "") -> str | None:
    """The calendar date of a Bitrix24 date/datetime, as YYYY-MM-DD.

    A real portal writes a date field (`begindate`, `closedate`) as UTC midnight of the day in the
    portal's offset: `"begindate": "2024-07-23T02:00:00+02:00"` is 23 July
    (api-reference/crm/universal/crm-item-update.md). West of UTC that instant is the evening before
    in local time (`2024-07-22T19:00:00-05:00` is 23 July too), so such a value is read in UTC.
    A value at local midnight (`2026-03-10T00:00:00+03:00`, as other writers send) is read in its
    own offset; the two never collide, as UTC midnight is local midnight only at offset 0. Any
    other date-time is read in `timezone` when one is configured, else in its own offset.
    """
    text = str(value or "").strip()
    if not text:
        return None
    if len(text) == 10:
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise MappingError(f"Bitrix24 sent a date the connector cannot read: {text!r}") from None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MappingError(f"Bitrix24 sent a date the connector cannot read: {text!r}") from None
    if moment.tzinfo is None or moment.time() == dt.time(0, 0):
        return moment.date().isoformat()
    in_utc = moment.astimezone(dt.UTC)
    if in_utc.time() == dt.time(0, 0):
        return in_utc.date().isoformat()
    if timezone:
        moment = moment.astimezone(ZoneInfo(timezone))
    return moment.date().isoformat()


def invoice_url(domain: str, entity_type_id: int | str, invoice_id: int | str) -> str:
    """The invoice's page in Bitrix24 (shown in Xero as a "Go to" link)."""
    host = domain.removeprefix("https://").removeprefix("http://").strip("/")
    if int(entity_type_id) == CLASSIC_INVOICE:
        return f"https://{host}/crm/invoice/show/{invoice_id}/"
    return f"https://{host}/crm/type/{entity_type_id}/details/{invoice_id}/"


# --- what Xero will compute -------------------------------------------------------------------------


def expected_totals(
    line_items: list[Mapping], line_amount_type: str, rates_by_tax_type: Mapping[str, Decimal]
) -> Totals:
    """SubTotal, TotalTax and Total that Xero will compute for these LineItems: each line rounded,
    its tax rounded, then summed. `rates_by_tax_type` gives each TaxType's percentage
    (MappingSettings.rates_by_tax_type(), or the organisation's TaxRates)."""
    lines = ZERO
    tax = ZERO
    for line in line_items:
        amount = line_amount(
            to_decimal(line.get("Quantity"), default=Decimal(1)),
            to_decimal(line.get("UnitAmount")),
            discount_rate=optional_decimal(line.get("DiscountRate")),
            discount_amount=optional_decimal(line.get("DiscountAmount")),
        )
        rate = rates_by_tax_type.get(line.get("TaxType") or "", ZERO)
        lines += amount
        tax += line_tax(amount, to_decimal(rate), line_amount_type)
    if line_amount_type == INCLUSIVE:
        return Totals(subtotal=money(lines - tax), tax=money(tax), total=money(lines))
    return Totals(subtotal=money(lines), tax=money(tax), total=money(lines + tax))


def bitrix24_totals(invoice: Mapping) -> Totals:
    """The totals Bitrix24 shows: opportunity (with tax) and taxValue."""
    total = money(invoice.get("opportunity"))
    tax = money(invoice.get("taxValue"))
    return Totals(subtotal=total - tax, tax=tax, total=total)


def totals_gap(invoice: Mapping, xero_invoice: Mapping, settings: MappingSettings) -> TotalsGap | None:
    """None when Xero will arrive at Bitrix24's total and tax to the cent, else both sides."""
    ours = bitrix24_totals(invoice)
    theirs = expected_totals(xero_invoice["LineItems"], xero_invoice["LineAmountTypes"], settings.rates_by_tax_type())
    if (ours.total, ours.tax) == (theirs.total, theirs.tax):
        return None
    return TotalsGap(bitrix24=ours, xero=theirs)
