"""The invoice sources (sync/sources) and the old-invoice translation (integrations/bitrix24/api/old_invoices.py):
pure, no server. An old invoice read with crm.invoice.get becomes the new invoice the Xero mapper
already knows, with the same money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.bitrix24.api.old_invoices import old_filter, old_invoice_as_item, old_rows_as_product_rows
from sync.mappers.invoice import MappingSettings, invoice_to_xero, totals_gap
from sync.mappers.xero_arithmetic import line_amount
from sync.sources import SOURCES, invoice_source, parse_target

OLD = {
    "ID": "12",
    "ACCOUNT_NUMBER": "12",
    "ORDER_TOPIC": "Invoice for legal entity",
    "STATUS_ID": "S",
    "PRICE": "486.00",
    "TAX_VALUE": "81.00",
    "CURRENCY": "NZD",
    "UF_COMPANY_ID": "5",
    "UF_CONTACT_ID": "2",
    "DATE_BILL": "2026-12-01T00:00:00+00:00",
    "DATE_PAY_BEFORE": "2026-12-31T00:00:00+00:00",
    "DATE_UPDATE": "2026-12-02T10:00:00+03:00",
    "RESPONSIBLE_ID": "3",
    "PRODUCT_ROWS": [
        # 3 x 100 + 20 % on top; 1 x 120 with 20 % inside; 2 x 90 (10 off each) without tax.
        {"ID": "1", "PRODUCT_NAME": "Net", "PRICE": "100.0000", "QUANTITY": "3.0000", "VAT_RATE": "0.2000",
         "VAT_INCLUDED": "N", "DISCOUNT_PRICE": "0.0000", "PRODUCT_ID": "0"},
        {"ID": "2", "PRODUCT_NAME": "Gross", "PRICE": "126.0000", "QUANTITY": "1.0000", "VAT_RATE": "0.2000",
         "VAT_INCLUDED": "Y", "DISCOUNT_PRICE": "0.0000", "PRODUCT_ID": "0"},
    ],
}  # fmt: skip


def test_an_old_invoice_reads_as_a_new_one():
    item = old_invoice_as_item(OLD)
    assert item["id"] == 12 and item["entityTypeId"] == 5 and item["categoryId"] == 0
    assert (item["title"], item["accountNumber"], item["stageId"]) == ("Invoice for legal entity", "12", "S")
    assert (item["companyId"], item["contactId"], item["assignedById"]) == (5, 2, 3)
    assert (item["opportunity"], item["taxValue"], item["currencyId"]) == ("486.00", "81.00", "NZD")
    assert item["updatedTime"] == "2026-12-02T10:00:00+03:00"


def test_rows_keep_the_billed_unit_price_on_its_side_of_tax():
    net, gross = old_rows_as_product_rows(OLD)
    assert (net["priceExclusive"], net["price"], net["taxRate"], net["taxIncluded"]) == ("100", "120", "20", "N")
    assert (gross["price"], gross["priceExclusive"], gross["taxIncluded"]) == ("126", "105", "Y")
    assert net["ownerId"] == 12 and net["productName"] == "Net" and net["quantity"] == "3"


def test_a_discount_per_unit_and_no_vat():
    row = {"ID": "3", "PRODUCT_NAME": "Off", "PRICE": "90", "DISCOUNT_PRICE": "10", "QUANTITY": "2"}
    (mapped,) = old_rows_as_product_rows({"ID": "1", "PRODUCT_ROWS": [row]})
    assert mapped["taxRate"] is None
    assert (mapped["price"], mapped["priceBrutto"], mapped["discountSum"], mapped["discountTypeId"]) == (
        "90",
        "100",
        "10",
        1,
    )


def test_the_xero_invoice_of_an_old_invoice_matches_its_totals():
    item, rows = old_invoice_as_item(OLD), old_rows_as_product_rows(OLD)
    settings = MappingSettings(default_account_code="200", tax_types={"20": "OUTPUT2", None: "NONE"})
    out = invoice_to_xero(item, rows, {"ContactID": "c"}, settings)
    assert out["InvoiceNumber"] == "12" and out["Reference"] == "Invoice for legal entity"
    assert out["LineAmountTypes"] == "Exclusive"  # mixed rows
    lines = [line_amount(Decimal(str(li["Quantity"])), Decimal(str(li["UnitAmount"]))) for li in out["LineItems"]]
    assert lines == [Decimal("300.00"), Decimal("105.00")]
    assert (out["Date"], out["DueDate"]) == ("2026-12-01", "2026-12-31")
    assert totals_gap(item, out, settings) is None


def test_filters_and_commands_speak_each_api():
    assert old_filter({">=updatedTime": "x", "@id": [1, 2], "companyId": 3}) == {
        ">=DATE_UPDATE": "x",
        "ID": [1, 2],
        "UF_COMPANY_ID": 3,
    }
    old, new = invoice_source(5), invoice_source(31)
    assert old.move_command(7, "P").wire() == ("crm.invoice.update", {"id": 7, "fields": {"STATUS_ID": "P"}})
    assert new.move_command(7, "DT31_3:P").wire() == (
        "crm.item.update",
        {"entityTypeId": 31, "id": 7, "fields": {"stageId": "DT31_3:P"}},
    )
    method, params = old.list_command(
        {"<=updatedTime": "y"}, order={"updatedTime": "DESC", "id": "DESC"}, start=50
    ).wire()
    assert method == "crm.invoice.list"
    assert params["order"] == {"DATE_UPDATE": "DESC", "ID": "DESC"} and params["start"] == 50
    assert old.target(4) == "5:4" and parse_target("5:4") == (5, 4) and parse_target("7:4") is None
    assert set(SOURCES) == {5, 31}


@pytest.mark.parametrize("entity_type", [5, 31])
def test_detail_reads_the_invoice_and_its_rows(entity_type):
    source = invoice_source(entity_type)
    if entity_type == 5:
        results = {"item": OLD}
    else:
        results = {"item": {"item": {"id": 12}}, "rows": {"productRows": [{"id": 1}, {"id": 2}]}}
    detail = source.detail(results)
    item, rows = detail.item, detail.rows
    assert item["id"] == 12 and len(rows) == 2
