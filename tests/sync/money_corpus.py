"""A seeded corpus of awkward invoices (issue 11), shared by the tests and `python -m bench money`.

Each invoice is what a user writes into Bitrix24 — product rows with `price` (final unit price
with tax, 2 dp as Bitrix24 stores it; for a tax-excluded row the 2-dp tax-free price the user typed,
taxed and rounded), quantity (up to 4 dp), a percent or fixed discount, a tax rate of 0, 7.5, 15,
20 % or none, tax included or not (mixed within an invoice), negative rows and negative totals,
NZD/AUD/USD/EUR, totals up to 1e9 — plus a few hand-entered amounts (`isManualOpportunity`).

`bitrix24_view(invoice)` derives what Bitrix24 then returns (row prices, opportunity, taxValue)
with the sandbox portal's own arithmetic (sandbox/bitrix24/crm_productrows.py), so the pure test
sees the same figures the real stack reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

RATES = [None, 0.0, 7.5, 15.0, 20.0]
CURRENCIES = ["NZD", "NZD", "AUD", "USD", "EUR"]
# The Xero organisation's sales tax types for those rates (7.5% and 20% are added to the sandbox's).
XERO_RATES = {"OUTPUT2": 15.0, "ZERORATEDOUTPUT": 0.0, "NONE": 0.0, "TAX001": 7.5, "TAX002": 20.0}
EXTRA_TAX_RATES = [
    {"Name": "7.5% Sales Tax", "TaxType": "TAX001", "Rate": 7.5},
    {"Name": "20% VAT on Income", "TaxType": "TAX002", "Rate": 20.0},
]
TAX_MAP = {"none": "NONE", "0": "ZERORATEDOUTPUT", "7.5": "TAX001", "15": "OUTPUT2", "20": "TAX002"}


@dataclass
class CorpusInvoice:
    number: int
    currency: str
    rows: list[dict]  # as written to crm.item.productrow.set
    manual_amount: float | None = None  # isManualOpportunity Y with this opportunity
    tags: set[str] = field(default_factory=set)


def _money(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def _quantity(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.45:
        return float(rng.randint(1, 12))
    if kind < 0.75:
        return round(rng.uniform(0.1, 50), rng.choice([1, 2, 3, 4]))
    if kind < 0.9:
        return round(rng.uniform(0.0001, 3), 4)
    return round(rng.uniform(50, 1000), rng.choice([0, 2, 4]))


def _row(rng: random.Random, index: int, scale: float, included: bool | None) -> dict:
    rate = rng.choice(RATES)
    taxed = included if included is not None else rng.random() < 0.5
    qty = _quantity(rng)
    unit = _money(rng, 0.01, scale)
    row: dict = {
        "productName": f"Item {index + 1}",
        "quantity": qty,
        "taxRate": rate,
        "taxIncluded": "Y" if taxed else "N",
    }
    factor = 1 + (rate or 0) / 100
    discount = rng.random()
    if discount < 0.15:
        percent = rng.choice([5.0, 10.0, 12.5, 15.0, 33.33])
        gross = unit if taxed else round(unit * factor, 2)
        row.update(discountTypeId=2, discountRate=percent, price=round(gross * (1 - percent / 100), 2))
        return row
    if discount < 0.25:
        per_unit = _money(rng, 0.01, max(0.02, unit / 3))
        exclusive = round((unit / factor if taxed else unit) - per_unit, 2)
        row.update(discountTypeId=1, discountSum=per_unit, price=round(exclusive * factor, 2))
        return row
    row["price"] = unit if taxed else round(unit * factor, 2)
    return row


def generate(count: int = 1000, seed: int = 20261206, *, max_rows: int = 200) -> list[CorpusInvoice]:
    """`count` invoices; `max_rows` caps the row count (the real-stack test slice keeps them short)."""
    rng = random.Random(seed)
    out = []
    for number in range(1, count + 1):
        size = rng.choice([1, 1, 2, 3, 3, 5, 8, 13, 20, 40]) if rng.random() < 0.93 else rng.randint(50, 200)
        size = min(size, max_rows)
        scale = rng.choice([10.0, 100.0, 1000.0, 10000.0]) if rng.random() < 0.97 else 5_000_000.0
        style = rng.random()
        included = True if style < 0.3 else False if style < 0.55 else None  # None = mixed
        rows = [_row(rng, i, scale, included) for i in range(size)]
        tags = {"mixed" if included is None else "included" if included else "excluded"}
        if rng.random() < 0.12:  # credit rows: a refund, a rebate
            for row in rng.sample(rows, k=max(1, len(rows) // 3)):
                row["price"] = -abs(row["price"])
                row.pop("discountTypeId", None), row.pop("discountRate", None), row.pop("discountSum", None)
            tags.add("negative rows")
        if rng.random() < 0.05:  # a credit-only invoice
            for row in rows:
                row["price"] = -abs(row["price"])
                row.pop("discountTypeId", None), row.pop("discountRate", None), row.pop("discountSum", None)
            tags.add("credit")
        invoice = CorpusInvoice(number=number, currency=rng.choice(CURRENCIES), rows=rows, tags=tags)
        if rng.random() < 0.02:
            invoice.manual_amount = _money(rng, 1, 5000)
            invoice.tags.add("manual")
        out.append(invoice)
    return out


class _World:
    data: dict = {"currencies": {}}


def bitrix24_view(invoice: CorpusInvoice, invoice_id: int = 1) -> tuple[dict, list[dict]]:
    """(crm.item fields, product rows) as the sandbox portal computes them from what was written."""
    from sandbox.bitrix24.crm_productrows import derive
    from sandbox.bitrix24.values import money

    rows = []
    for index, written in enumerate(invoice.rows):
        row = {
            "id": index + 1,
            "ownerId": invoice_id,
            "productId": 0,
            "price": 0.0,
            "quantity": 1.0,
            "discountTypeId": 2,
            "discountRate": 0.0,
            "discountSum": 0.0,
            "taxRate": None,
            "taxIncluded": "N",
            "sort": 10,
        }
        row.update(written)
        derive(row, _World(), invoice.currency)
        rows.append(row)
    amount = sum(r["price"] * r["quantity"] for r in rows)
    tax = sum((r["price"] - r["price"] / (1 + (r["taxRate"] or 0) / 100)) * r["quantity"] for r in rows)
    item = {
        "id": invoice_id,
        "accountNumber": f"C-{invoice.number:05d}",
        "currencyId": invoice.currency,
        "opportunity": money(amount),
        "taxValue": money(tax),
        "isManualOpportunity": "N",
    }
    if invoice.manual_amount is not None:
        item.update(isManualOpportunity="Y", opportunity=invoice.manual_amount)
    return item, rows
