"""sync.mappers.drift: what differs between Bitrix24's invoice and Xero's, field by field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sync.mappers.drift import CONTACT, CONTENT, TOTALS, invoice_differences, kinds_of, xero_content_fingerprint

EXPECTED = {
    "Type": "ACCREC",
    "Contact": {"ContactID": "AAAA-1", "Name": "Kauri Coast"},
    "InvoiceNumber": "INV-13",
    "Reference": "Spring order",
    "Date": "2026-03-10",
    "DueDate": "2026-03-24",
    "CurrencyCode": "NZD",
    "LineAmountTypes": "Exclusive",
    "LineItems": [
        {
            "Description": "Socks",
            "Quantity": Decimal("1"),
            "UnitAmount": Decimal("38.0000"),
            "AccountCode": "200",
            "TaxType": "NONE",
        }
    ],
}


def xero(**changes):
    base = {
        "Contact": {"ContactID": "aaaa-1", "Name": "Kauri Coast"},
        "InvoiceNumber": "INV-13",
        "Reference": "Spring order",
        "Date": dt.date(2026, 3, 10),
        "DueDate": dt.datetime(2026, 3, 24),
        "CurrencyCode": "NZD",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Socks",
                "Quantity": 1.0,
                "UnitAmount": 38.0,
                "AccountCode": "200",
                "TaxType": "NONE",
                "DiscountRate": 0,
                "LineAmount": 38.0,
            }
        ],
        "SubTotal": 38.0,
        "TotalTax": 0.0,
        "Total": 38.0,
    }
    base.update(changes)
    return base


TOTALS_38 = {"SubTotal": "38.00", "TotalTax": "0.00", "Total": "38.00"}


def test_the_same_invoice_written_differently_has_no_differences():
    assert invoice_differences(EXPECTED, xero(), expected_totals=TOTALS_38) == []


def test_inv_13_edited_to_999_shows_the_line_and_the_total_both_ways():
    line = {**xero()["LineItems"][0], "UnitAmount": 999.0}
    found = invoice_differences(
        EXPECTED, xero(LineItems=[line], SubTotal=999.0, Total=999.0), expected_totals=TOTALS_38
    )
    by_field = {d.field: (d.label, d.bitrix24, d.xero, d.kind) for d in found}
    assert by_field["LineItems[0].UnitAmount"] == ("Line 1 unit price", "38.00", "999.00", CONTENT)
    assert by_field["Total"] == ("Total", "38.00", "999.00", TOTALS)
    assert kinds_of(found) == [CONTENT, TOTALS]


def test_header_contact_and_extra_lines_are_named():
    extra = {"Description": "Gift wrap", "Quantity": 1, "UnitAmount": 5}
    found = invoice_differences(
        EXPECTED,
        xero(
            Reference="Changed",
            DueDate=dt.date(2026, 4, 1),
            Contact={"ContactID": "bbbb-2", "Name": "Someone else"},
            LineItems=[*xero()["LineItems"], extra],
        ),
    )
    labels = {d.label: (d.bitrix24, d.xero) for d in found}
    assert labels["Reference"] == ("Spring order", "Changed")
    assert labels["Due date"] == ("2026-03-24", "2026-04-01")
    assert labels["Contact"] == ("Kauri Coast", "Someone else")
    assert labels["Line 2 (only in Xero)"] == ("", "Gift wrap — 1 × 5.00")
    assert CONTACT in kinds_of(found)


def test_status_is_compared_only_when_asked():
    assert invoice_differences(EXPECTED, xero(Status="DRAFT")) == []
    (diff,) = invoice_differences(EXPECTED, xero(Status="DRAFT"), expected_status="AUTHORISED")
    assert (diff.bitrix24, diff.xero, diff.kind) == ("AUTHORISED", "DRAFT", "status")


def test_xero_numbering_the_invoice_is_not_drift():
    ours = {k: v for k, v in EXPECTED.items() if k != "InvoiceNumber"}
    assert invoice_differences(ours, xero(InvoiceNumber="INV-0042")) == []


def test_the_fingerprint_of_xeros_version_ignores_form_but_not_content():
    same = xero(LineItems=[{**xero()["LineItems"][0], "UnitAmount": "38.0000", "DiscountRate": None}])
    assert xero_content_fingerprint(xero()) == xero_content_fingerprint(same)
    edited = xero(LineItems=[{**xero()["LineItems"][0], "UnitAmount": 999}])
    assert xero_content_fingerprint(xero()) != xero_content_fingerprint(edited)
