"""The fake Xero's credit notes and its refusal to approve an invoice below zero, through xero-python."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import requests
from xero_python.accounting import (
    Allocation,
    Allocations,
    Contact,
    CreditNote,
    CreditNotes,
    Invoice,
    LineAmountTypes,
    LineItem,
)

from tests.sandbox.test_xero_api import create_invoices, customer, identity_server, sales_invoice, xero  # noqa: F401
from tests.sandbox.test_xero_identity import TIMEOUT


def credit_note(contact_id: str, *lines: tuple[str, str], **fields) -> CreditNote:
    items = [
        LineItem(
            description="Refund", quantity=Decimal(q), unit_amount=Decimal(u), account_code="200", tax_type="OUTPUT2"
        )
        for q, u in lines
    ]
    return CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=contact_id), line_items=items, **fields)


def write(session, *notes: CreditNote, **kwargs) -> list[CreditNote]:
    kwargs.setdefault("summarize_errors", False)
    answer = session.accounting.update_or_create_credit_notes(
        xero_tenant_id=session.tenant_id,
        credit_notes=CreditNotes(credit_notes=list(notes)),
        _request_timeout=TIMEOUT,
        **kwargs,
    )
    return answer.credit_notes


def test_a_credit_note_is_numbered_and_totalled_like_an_invoice_and_read_back(xero, customer):  # noqa: F811
    [note] = write(xero, credit_note(customer.contact_id, ("3", "33.335")), unitdp=4)
    assert note.status_attribute_string == "OK" and note.credit_note_number == "CN-0001"
    assert (note.sub_total, note.total_tax, note.total) == (Decimal("100.01"), Decimal("15.0"), Decimal("115.01"))
    assert note.remaining_credit == note.total and str(note.status).endswith("DRAFT")
    again = xero.accounting.get_credit_note(xero.tenant_id, note.credit_note_id, _request_timeout=TIMEOUT)
    assert again.credit_notes[0].total == Decimal("115.01")
    listed = xero.accounting.get_credit_notes(xero.tenant_id, where='Type=="ACCRECCREDIT"', _request_timeout=TIMEOUT)
    assert [n.credit_note_id for n in listed.credit_notes] == [note.credit_note_id]


def test_below_zero_neither_an_invoice_nor_a_credit_note_can_be_approved_but_a_draft_is_kept(xero, customer):  # noqa: F811
    negative = [LineItem(description="Rebate", quantity=Decimal(1), unit_amount=Decimal("-10"), account_code="200")]
    [refused] = create_invoices(xero, [sales_invoice(customer.contact_id, negative, status="AUTHORISED")])
    assert refused.has_errors and "below zero cannot be approved" in refused.validation_errors[0].message
    [draft] = create_invoices(xero, [sales_invoice(customer.contact_id, negative, status="DRAFT")])
    assert not draft.has_errors and draft.total == Decimal("-11.5")
    [note] = write(xero, credit_note(customer.contact_id, ("1", "-10"), status="AUTHORISED"))
    assert note.has_errors and "below zero cannot be approved" in note.validation_errors[0].message


def test_credit_is_used_by_an_allocation_and_a_refund_and_then_the_note_is_paid(sandbox, xero, customer):  # noqa: F811
    [invoice] = create_invoices(
        xero,
        [sales_invoice(customer.contact_id, status="AUTHORISED", line_amount_types=LineAmountTypes.INCLUSIVE)],
    )
    [note] = write(xero, credit_note(customer.contact_id, ("1", "100"), status="AUTHORISED"))
    assert note.total == Decimal("115.0")
    allocated = xero.accounting.create_credit_note_allocation(
        xero.tenant_id,
        note.credit_note_id,
        Allocations(
            allocations=[
                Allocation(invoice=Invoice(invoice_id=invoice.invoice_id), amount=Decimal("40"), date=date(2026, 1, 20))
            ]
        ),
        _request_timeout=TIMEOUT,
    )
    assert allocated.allocations[0].amount == Decimal("40")
    got = xero.accounting.get_invoice(xero.tenant_id, invoice.invoice_id, _request_timeout=TIMEOUT).invoices[0]
    assert (got.amount_credited, got.amount_due) == (Decimal("40"), Decimal("60"))
    refund = requests.post(
        f"{sandbox.base_url}/_sandbox/xero/credit_notes/{note.credit_note_id}/refund", json={}, timeout=10
    )
    assert refund.status_code == 200, refund.text
    assert refund.json()["credit_note"]["Status"] == "PAID" and refund.json()["credit_note"]["RemainingCredit"] == 0
    after = xero.accounting.get_credit_notes(xero.tenant_id, _request_timeout=TIMEOUT).credit_notes[0]
    assert str(after.status).endswith("PAID") and after.remaining_credit == 0


def test_a_tax_amount_sent_on_a_line_overrides_the_computed_tax(xero, customer):  # noqa: F811
    line = LineItem(
        description="Part",
        quantity=Decimal(1),
        unit_amount=Decimal("10.00"),
        account_code="200",
        tax_type="OUTPUT2",
        tax_amount=Decimal("1.31"),
    )
    [invoice] = create_invoices(
        xero, [sales_invoice(customer.contact_id, [line], line_amount_types=LineAmountTypes.INCLUSIVE)]
    )
    # Computed would be 10.00 x 15/115 = 1.30; the override is kept, the total is the line's.
    assert (invoice.line_items[0].tax_amount, invoice.total_tax, invoice.total) == (
        Decimal("1.31"),
        Decimal("1.31"),
        Decimal("10.0"),
    )
