"""Exact or held (issue 11), on the pure computation and the sandbox Xero's own arithmetic, in-process.

The corpus (tests/sync/money_corpus.py, 1,000 seeded invoices) goes through the mapping and
`make_exact`; every invoice called exact is written into a sandbox Xero organisation (the code that
serves the API, with unitdp=4) and must come out with Total and TotalTax equal to Bitrix24's
opportunity and taxValue to the cent. Every other one is held with a cause and both amounts.
"""

from __future__ import annotations

import collections
from decimal import Decimal

import pytest

from sandbox.xero import contacts as sandbox_contacts
from sandbox.xero import invoices as sandbox_invoices
from sandbox.xero.control import add_tax_rate
from sandbox.xero.store import Organisation
from sync.mappers.exactness import CAUSE_MANUAL, CAUSE_ROUNDING, CAUSE_TAX_RATE, Options, make_exact
from sync.mappers.invoice import MappingSettings, invoice_to_xero
from sync.mappers.xero_arithmetic import EXCLUSIVE, INCLUSIVE, xero_totals
from tests.sync.money_corpus import EXTRA_TAX_RATES, TAX_MAP, XERO_RATES, CorpusInvoice, bitrix24_view, generate

SETTINGS = MappingSettings(tax_types={None if k == "none" else k: v for k, v in TAX_MAP.items()})
RATES = {k: Decimal(str(v)) for k, v in XERO_RATES.items()}
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def org():
    org = Organisation("Exactness Ltd")
    for rate in EXTRA_TAX_RATES:
        assert add_tax_rate(org, rate).ok
    contact = sandbox_contacts.write_contact(org, {"Name": "Corpus Customer"}).entity
    org.corpus_contact = contact["ContactID"]
    return org


def verdict_of(
    invoice: CorpusInvoice, options: Options | None = None, settings: MappingSettings = SETTINGS, rates=RATES
):
    item, rows = bitrix24_view(invoice)
    base = invoice_to_xero(item, rows, {"ContactID": "c"}, settings)
    return item, make_exact(item, rows, base["LineItems"], rates, options or Options())


def in_sandbox_xero(org, verdict) -> dict:
    wire = [{k: str(v) if isinstance(v, Decimal) else v for k, v in line.items()} for line in verdict.line_items]
    element = {
        "Type": "ACCREC",
        "Contact": {"ContactID": org.corpus_contact},
        "LineAmountTypes": verdict.amount_type,
        "LineItems": wire,
    }
    outcome = sandbox_invoices.write_invoice(org, element, unitdp=4)
    assert outcome.ok, outcome.errors
    return outcome.entity


def bitrix24_pair(item: dict, credit: bool) -> tuple[Decimal, Decimal]:
    sign = Decimal(-1) if credit else Decimal(1)
    return tuple(sign * Decimal(str(item[k])).quantize(CENT) for k in ("opportunity", "taxValue"))


def test_the_corpus_is_exact_in_xero_or_held_with_its_cause_and_never_sent_with_a_difference(org):
    counts: collections.Counter = collections.Counter()
    for invoice in generate(1000):
        item, verdict = verdict_of(invoice)
        if verdict.exact:
            saved = in_sandbox_xero(org, verdict)
            assert (saved["Total"], saved["TotalTax"]) == bitrix24_pair(item, verdict.credit_note), invoice.number
            assert (saved["Total"], saved["TotalTax"]) == (verdict.xero.total, verdict.xero.tax) or verdict.credit_note
            counts["exact"] += 1
        else:
            assert verdict.cause and "Held: totals differ." in verdict.message
            assert f"{abs(Decimal(str(item['opportunity']))):,.2f}" in verdict.message
            counts[verdict.cause] += 1
    print(dict(counts))
    assert counts["exact"] >= 950
    assert counts[CAUSE_MANUAL] == sum(1 for i in generate(1000) if i.manual_amount is not None)


def test_mixed_included_and_excluded_rows_are_sent_exactly_even_at_large_quantities():
    # The example: a tax-included row next to a tax-excluded one, 1,000 units.
    invoice = CorpusInvoice(
        number=1,
        currency="NZD",
        rows=[
            {"productName": "Boots", "price": 70.0, "quantity": 1000, "taxRate": 15.0, "taxIncluded": "Y"},
            {"productName": "Laces", "price": 1.15, "quantity": 1, "taxRate": 15.0, "taxIncluded": "N"},
        ],
    )
    item, verdict = verdict_of(invoice)
    assert verdict.exact, verdict.message
    assert verdict.xero.total == Decimal(str(item["opportunity"])) == Decimal("70001.15")
    assert verdict.amount_type in (INCLUSIVE, EXCLUSIVE)


def test_xero_rounds_every_line_half_up_and_extracts_inclusive_tax_per_line():
    lines = [
        {"Quantity": "3", "UnitAmount": "0.335", "TaxType": "OUTPUT2"},  # 1.005 -> 1.01
        {"Quantity": "1", "UnitAmount": "10.00", "TaxType": "OUTPUT2", "DiscountRate": "12.5"},  # 8.75
    ]
    exclusive = xero_totals(lines, EXCLUSIVE, RATES)
    assert (exclusive.subtotal, exclusive.tax) == (Decimal("9.76"), Decimal("0.15") + Decimal("1.31"))
    inclusive = xero_totals(lines, INCLUSIVE, RATES)
    assert (inclusive.total, inclusive.tax) == (Decimal("9.76"), Decimal("0.13") + Decimal("1.14"))


def test_a_row_mapped_to_a_tax_type_of_another_rate_is_held_naming_the_row_and_both_rates():
    wrong = MappingSettings(tax_types={"20": "OUTPUT2", None: "NONE"})
    invoice = CorpusInvoice(
        number=2, currency="NZD", rows=[{"productName": "Consulting", "price": 240.0, "quantity": 1, "taxRate": 20.0}]
    )
    _item, verdict = verdict_of(invoice, settings=wrong)
    assert not verdict.exact and verdict.cause == CAUSE_TAX_RATE
    assert 'row 1 "Consulting" has 20% tax' in verdict.message and "OUTPUT2 is 15%" in verdict.message
    assert "240.00" in verdict.message


def test_a_hand_entered_amount_is_held_with_both_amounts_or_sent_with_an_adjustment_line():
    invoice = CorpusInvoice(
        number=3,
        currency="NZD",
        rows=[{"productName": "Widget", "price": 115.0, "quantity": 1, "taxRate": 15.0, "taxIncluded": "Y"}],
        manual_amount=999.99,
    )
    _item, held = verdict_of(invoice)
    assert not held.exact and held.cause == CAUSE_MANUAL
    assert "999.99" in held.message and "115.00" in held.message and "entered by hand" in held.message

    _item, adjusted = verdict_of(invoice, Options(adjustment_account="260"))
    assert adjusted.exact and adjusted.xero.total == Decimal("999.99")
    extra = adjusted.line_items[-1]
    assert (extra["AccountCode"], extra["UnitAmount"], extra["TaxType"]) == ("260", Decimal("884.99"), "NONE")
    assert "884.99" in adjusted.notes[0]


def test_an_invoice_below_zero_becomes_a_credit_note_of_positive_lines():
    invoice = CorpusInvoice(
        number=4,
        currency="NZD",
        rows=[
            {"productName": "Refund", "price": -46.0, "quantity": 2, "taxRate": 15.0, "taxIncluded": "Y"},
            {"productName": "Fee", "price": 11.5, "quantity": 1, "taxRate": 15.0, "taxIncluded": "Y"},
        ],
    )
    item, verdict = verdict_of(invoice)
    assert verdict.exact and verdict.credit_note
    assert item["opportunity"] == -80.5
    assert verdict.bitrix24.total == Decimal("-80.50")
    assert xero_totals(verdict.line_items, verdict.amount_type, RATES).total == Decimal("80.50")


def test_rounding_that_no_line_choice_can_repair_is_held_naming_the_rows_with_fractions_of_a_cent():
    invoice = generate(384)[383]  # five rows, four of them with fractions of a cent
    _item, verdict = verdict_of(invoice)
    assert not verdict.exact and verdict.cause == CAUSE_ROUNDING
    assert "Rows with fractions of a cent: row 1" in verdict.message
    assert "rounds the invoice once" in verdict.message
    assert "59,432.30" in verdict.message and "59,432.29" in verdict.message


def test_sixty_rows_at_a_round_price_with_tax_get_bitrix24s_tax_by_overriding_a_few_lines():
    invoice = CorpusInvoice(
        number=5,
        currency="NZD",
        rows=[{"productName": f"Part {n}", "price": 10.0, "quantity": 1, "taxRate": 15.0} for n in range(60)],
    )
    item, verdict = verdict_of(invoice)
    assert verdict.exact, verdict.message
    assert (verdict.xero.total, verdict.xero.tax) == (Decimal("600.00"), Decimal("78.26"))
    overridden = [line for line in verdict.line_items if "TaxAmount" in line]
    assert 0 < len(overridden) <= 26
    assert "within a cent of the line's exact tax" in " ".join(verdict.notes)
