"""The fake Xero Accounting API, driven by the real xero-python SDK as the connector drives it."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from xero_python.accounting import (
    Account,
    Address,
    Contact,
    Contacts,
    CurrencyCode,
    Invoice,
    Invoices,
    Item,
    Items,
    LineAmountTypes,
    LineItem,
    Payment,
    PaymentDelete,
    Payments,
    Phone,
    Purchase,
)
from xero_python.exceptions import AccountingBadRequestException, ApiException, HTTPStatusException, NotFoundException

from tests.sandbox.test_xero_identity import TIMEOUT, XeroSession, connect, point_sdk_at

ZERO_GUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def identity_server(sandbox, monkeypatch):
    point_sdk_at(sandbox, monkeypatch)
    return sandbox


@pytest.fixture
def xero(identity_server) -> XeroSession:
    return XeroSession(identity_server, connect(identity_server))


def api_url(sandbox, path: str) -> str:
    return f"{sandbox.base_url}/xero/api.xro/2.0{path}"


def raw_headers(xero: XeroSession) -> dict:
    return {
        "Authorization": f"Bearer {xero.token['access_token']}",
        "xero-tenant-id": xero.tenant_id,
        "Accept": "application/json",
    }


def make_contact(xero: XeroSession, name: str, **fields) -> Contact:
    created = xero.accounting.create_contacts(
        xero_tenant_id=xero.tenant_id,
        contacts=Contacts(contacts=[Contact(name=name, **fields)]),
        _request_timeout=TIMEOUT,
    )
    return created.contacts[0]


def sales_invoice(contact_id: str, lines: list[LineItem] | None = None, **fields) -> Invoice:
    fields.setdefault("date", date(2026, 1, 15))
    fields.setdefault("due_date", date(2026, 2, 15))
    default_line = LineItem(
        description="Consulting",
        quantity=Decimal(2),
        unit_amount=Decimal("50.00"),
        account_code="200",
        tax_type="OUTPUT2",
    )
    return Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), line_items=lines or [default_line], **fields)


def create_invoices(xero: XeroSession, invoices: list[Invoice], **kwargs) -> list[Invoice]:
    kwargs.setdefault("summarize_errors", False)
    result = xero.accounting.create_invoices(
        xero_tenant_id=xero.tenant_id, invoices=Invoices(invoices=invoices), _request_timeout=TIMEOUT, **kwargs
    )
    return result.invoices


@pytest.fixture
def customer(xero) -> Contact:
    return make_contact(xero, "ACME Ltd")


# --- auth and envelope ---------------------------------------------------------------------------
def test_it_answers_401_token_expired_once_the_access_token_has_expired(sandbox, xero):
    requests.post(f"{sandbox.base_url}/_sandbox/xero/tokens/expire", timeout=10)
    response = requests.get(api_url(sandbox, "/Organisation"), headers=raw_headers(xero), timeout=10)
    body = response.json()
    assert response.status_code == 401
    assert body["Title"] == "Unauthorized" and body["Type"] is None
    assert body["Detail"].startswith("TokenExpired: token expired at ")


def test_it_answers_401_for_a_missing_or_unknown_token(sandbox, xero):
    headers = raw_headers(xero)
    headers["Authorization"] = "Bearer not-a-token"
    unknown = requests.get(api_url(sandbox, "/Invoices"), headers=headers, timeout=10)
    missing = requests.get(api_url(sandbox, "/Invoices"), headers={"xero-tenant-id": xero.tenant_id}, timeout=10)
    assert unknown.status_code == missing.status_code == 401
    assert unknown.json()["Detail"] == "AuthenticationUnsuccessful"


def test_it_answers_403_without_a_connected_tenant(sandbox, xero):
    headers = raw_headers(xero)
    del headers["xero-tenant-id"]
    assert requests.get(api_url(sandbox, "/Invoices"), headers=headers, timeout=10).status_code == 403
    with pytest.raises(HTTPStatusException) as raised:
        xero.accounting.get_invoices(xero_tenant_id="fe79f7dd-b6d4-4a92-ba7b-538af6289c58", _request_timeout=TIMEOUT)
    assert raised.value.status == 403


def test_an_organisation_added_later_is_not_reachable_until_the_user_consents_again(sandbox, identity_server):
    session = XeroSession(identity_server, connect(identity_server))
    extra = requests.post(f"{sandbox.base_url}/_sandbox/xero/organisations", json={"name": "Later Ltd"}, timeout=10)
    tenant = extra.json()["tenant_id"]
    with pytest.raises(HTTPStatusException) as raised:
        session.accounting.get_organisations(xero_tenant_id=tenant, _request_timeout=TIMEOUT)
    assert raised.value.status == 403
    again = XeroSession(identity_server, connect(identity_server))
    organisation = again.accounting.get_organisations(xero_tenant_id=tenant, _request_timeout=TIMEOUT)
    assert organisation.organisations[0].name == "Later Ltd"


def test_it_wraps_answers_in_xeros_envelope_with_ms_dates(sandbox, xero, customer):
    create_invoices(xero, [sales_invoice(customer.contact_id)])
    body = requests.get(api_url(sandbox, "/Invoices?page=1"), headers=raw_headers(xero), timeout=10).json()
    assert body["Status"] == "OK" and body["Id"] and body["DateTimeUTC"].startswith("/Date(")
    invoice = body["Invoices"][0]
    assert invoice["Date"] == "/Date(1768435200000+0000)/" and invoice["DateString"] == "2026-01-15T00:00:00"
    assert invoice["UpdatedDateUTC"].startswith("/Date(") and invoice["UpdatedDateUTC"].endswith("+0000)/")


def test_reference_data_reads_like_a_new_zealand_organisation(xero):
    organisation = xero.accounting.get_organisations(xero_tenant_id=xero.tenant_id, _request_timeout=TIMEOUT)
    org = organisation.organisations[0]
    assert (org.base_currency.value, org.country_code.value, org.version, org.organisation_status) == (
        "NZD",
        "NZ",
        "NZ",
        "ACTIVE",
    )
    revenue = xero.accounting.get_accounts(
        xero_tenant_id=xero.tenant_id, where='Status=="ACTIVE" AND Type=="REVENUE"', _request_timeout=TIMEOUT
    )
    assert {a.code for a in revenue.accounts} == {"200", "260", "270"}
    bank = xero.accounting.get_accounts(xero_tenant_id=xero.tenant_id, where='Code=="090"', _request_timeout=TIMEOUT)
    assert (bank.accounts[0].name, bank.accounts[0].type.value, bank.accounts[0]._class) == (
        "Business Bank Account",
        "BANK",
        "ASSET",
    )
    rates = xero.accounting.get_tax_rates(xero_tenant_id=xero.tenant_id, _request_timeout=TIMEOUT)
    output2 = next(rate for rate in rates.tax_rates if rate.tax_type == "OUTPUT2")
    assert (output2.name, output2.effective_rate) == ("15% GST on Income", Decimal("15.0"))
    currencies = xero.accounting.get_currencies(xero_tenant_id=xero.tenant_id, _request_timeout=TIMEOUT)
    assert {c.code.value for c in currencies.currencies} == {"NZD", "AUD", "USD", "EUR", "GBP"}


# --- invoices: totals ----------------------------------------------------------------------------
def test_it_rounds_tax_per_line_and_sums_the_lines(xero, customer):
    lines = [
        LineItem(description=f"Stamp {n}", quantity=Decimal(1), unit_amount=Decimal("0.05"), account_code="200")
        for n in range(3)
    ]
    lines.append(
        LineItem(
            description="Odd",
            quantity=Decimal(3),
            unit_amount=Decimal("33.335"),
            account_code="200",
            tax_type="OUTPUT2",
        )
    )
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, lines)], unitdp=4)
    # 3 x 0.05 -> each line 0.0075 tax -> 0.01 (half up), so 0.03 (not 0.02 from 0.15 x 15%).
    # 3 x 33.335 = 100.005 -> 100.01; tax 15.0015 -> 15.00.
    assert [line.tax_amount for line in invoice.line_items] == [Decimal("0.01")] * 3 + [Decimal("15.0")]
    assert invoice.line_items[3].line_amount == Decimal("100.01")
    assert invoice.line_items[3].unit_amount == Decimal("33.335")
    assert (invoice.sub_total, invoice.total_tax, invoice.total) == (
        Decimal("100.16"),
        Decimal("15.03"),
        Decimal("115.19"),
    )
    assert invoice.amount_due == invoice.total and invoice.amount_paid == 0


def test_it_rounds_unit_amounts_to_cents_without_unitdp(xero, customer):
    line = LineItem(description="Odd", quantity=Decimal(3), unit_amount=Decimal("33.335"), account_code="200")
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, [line])])
    assert invoice.line_items[0].unit_amount == Decimal("33.34")
    assert invoice.line_items[0].line_amount == Decimal("100.02")


def test_it_extracts_tax_from_inclusive_lines(xero, customer):
    lines = [
        LineItem(
            description="A", quantity=Decimal(1), unit_amount=Decimal("115.00"), account_code="200", tax_type="OUTPUT2"
        ),
        LineItem(
            description="B", quantity=Decimal(1), unit_amount=Decimal("10.00"), account_code="200", tax_type="OUTPUT2"
        ),
    ]
    [invoice] = create_invoices(
        xero, [sales_invoice(customer.contact_id, lines, line_amount_types=LineAmountTypes.INCLUSIVE)]
    )
    assert [line.tax_amount for line in invoice.line_items] == [Decimal("15.0"), Decimal("1.3")]
    assert (invoice.sub_total, invoice.total_tax, invoice.total) == (
        Decimal("108.7"),
        Decimal("16.3"),
        Decimal("125.0"),
    )
    assert invoice.line_amount_types == LineAmountTypes.INCLUSIVE


def test_it_applies_discounts_and_no_tax_and_ignores_a_supplied_total(xero, customer):
    lines = [
        LineItem(
            description="Rate",
            quantity=Decimal(2),
            unit_amount=Decimal("19.99"),
            discount_rate=Decimal("12.5"),
            account_code="200",
            tax_type="OUTPUT2",
        ),
        LineItem(
            description="Amount",
            quantity=Decimal(1),
            unit_amount=Decimal("100"),
            discount_amount=Decimal("10"),
            account_code="200",
            tax_type="OUTPUT2",
        ),
    ]
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, lines, total=Decimal("1"))])
    # 39.98 x 0.875 = 34.9825 -> 34.98, tax 5.247 -> 5.25; 100 - 10 = 90, tax 13.50.
    assert [line.line_amount for line in invoice.line_items] == [Decimal("34.98"), Decimal("90.0")]
    assert invoice.total == Decimal("143.73") and invoice.is_discounted is True
    [no_tax] = create_invoices(
        xero, [sales_invoice(customer.contact_id, lines[:1], line_amount_types=LineAmountTypes.NOTAX)]
    )
    assert (no_tax.total_tax, no_tax.total) == (Decimal("0.0"), Decimal("34.98"))


# --- invoices: validation and batches ------------------------------------------------------------
def test_it_auto_numbers_sales_invoices_and_refuses_a_duplicate_number(xero, customer):
    first, second = create_invoices(xero, [sales_invoice(customer.contact_id), sales_invoice(customer.contact_id)])
    assert (first.invoice_number, second.invoice_number) == ("INV-0001", "INV-0002")
    [duplicate] = create_invoices(xero, [sales_invoice(customer.contact_id, invoice_number="INV-0001")])
    assert duplicate.has_errors is True and duplicate.invoice_id == ZERO_GUID
    assert duplicate.validation_errors[0].message == "Invoice # must be unique."


def test_supplier_bill_numbers_may_repeat(xero, customer):
    bills = [sales_invoice(customer.contact_id, invoice_number="SUP-42") for _ in range(2)]
    for bill in bills:
        bill.type = "ACCPAY"
        bill.line_items[0].tax_type = "INPUT2"
        bill.line_items[0].account_code = "429"
    created = create_invoices(xero, bills)
    assert [bill.status_attribute_string for bill in created] == ["OK", "OK"]
    contact = xero.accounting.get_contact(
        xero_tenant_id=xero.tenant_id, contact_id=customer.contact_id, _request_timeout=TIMEOUT
    )
    assert contact.contacts[0].is_supplier is True and contact.contacts[0].is_customer is False


def test_summarized_errors_answer_400_but_keep_the_valid_elements(xero, customer):
    good = sales_invoice(customer.contact_id, reference="GOOD-1")
    bad = sales_invoice(
        customer.contact_id,
        [LineItem(description="x", quantity=Decimal(1), unit_amount=Decimal(1), account_code="999")],
    )
    with pytest.raises(AccountingBadRequestException) as raised:
        xero.accounting.create_invoices(
            xero_tenant_id=xero.tenant_id, invoices=Invoices(invoices=[good, bad]), _request_timeout=TIMEOUT
        )
    error = raised.value.error_data
    assert error["Type"] == "ValidationException" and error["ErrorNumber"] == 10
    assert len(error["Elements"]) == 1
    assert raised.value.reason == "Account must be valid."
    saved = xero.accounting.get_invoices(
        xero_tenant_id=xero.tenant_id, where='Reference=="GOOD-1"', _request_timeout=TIMEOUT
    )
    assert len(saved.invoices) == 1


def test_unsummarized_errors_echo_every_element_with_its_status(xero, customer):
    elements = [
        sales_invoice(customer.contact_id),
        sales_invoice(
            customer.contact_id,
            [
                LineItem(
                    description="x", quantity=Decimal(1), unit_amount=Decimal(1), account_code="200", tax_type="BOGUS"
                )
            ],
        ),
        Invoice(type="ACCREC", line_items=[]),
    ]
    results = create_invoices(xero, elements)
    assert [r.status_attribute_string for r in results] == ["OK", "ERROR", "ERROR"]
    assert results[0].has_errors is False and results[0].invoice_id != ZERO_GUID
    assert [r.invoice_id for r in results[1:]] == [ZERO_GUID, ZERO_GUID]
    assert results[1].validation_errors[0].message == "Tax rate must be valid."
    assert "A Contact must be specified for this type of transaction" in [
        e.message for e in results[2].validation_errors
    ]


def test_put_refuses_an_invoice_id_it_does_not_know(xero, customer):
    invoice = sales_invoice(customer.contact_id, invoice_id="11111111-1111-1111-1111-111111111111")
    [result] = create_invoices(xero, [invoice])
    assert result.has_errors and result.invoice_id == ZERO_GUID


def test_it_finds_or_creates_the_contact_named_on_an_invoice(xero, customer):
    by_name = Invoice(
        type="ACCREC",
        contact=Contact(name="acme ltd"),
        line_items=[LineItem(description="x", quantity=Decimal(1), unit_amount=Decimal(5), account_code="200")],
    )
    new_name = Invoice(
        type="ACCREC",
        contact=Contact(name="Brand New Customer"),
        line_items=[LineItem(description="x", quantity=Decimal(1), unit_amount=Decimal(5), account_code="200")],
    )
    existing, created = create_invoices(xero, [by_name, new_name])
    assert existing.contact.contact_id == customer.contact_id
    assert created.contact.name == "Brand New Customer" and created.contact.contact_id != customer.contact_id
    assert created.contact.is_customer is True


def test_it_refuses_a_currency_the_organisation_has_not_enabled(xero, customer):
    [yen] = create_invoices(xero, [sales_invoice(customer.contact_id, currency_code=CurrencyCode.JPY)])
    [usd] = create_invoices(xero, [sales_invoice(customer.contact_id, currency_code=CurrencyCode.USD)])
    assert yen.has_errors and not usd.has_errors
    assert usd.currency_code.value == "USD" and usd.currency_rate > 0


def test_it_tolerates_read_only_fields_and_iso_dates_in_raw_requests(sandbox, xero, customer):
    body = {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": customer.contact_id, "HasValidationErrors": False},
                "Date": "2026-03-01",
                "DueDate": "/Date(1775001600000+0000)/",
                "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 9.5, "AccountCode": "200"}],
                "HasAttachments": False,
                "HasErrors": False,
                "Total": 12345,
                "Url": "https://portal.example/invoice/7",
                "BrandingThemeID": "5d4dd402-c851-497e-aae1-9ff265c0d15a",
            }
        ]
    }
    response = requests.put(
        api_url(sandbox, "/Invoices?summarizeErrors=FALSE"), json=body, headers=raw_headers(xero), timeout=10
    )
    invoice = response.json()["Invoices"][0]
    assert response.status_code == 200 and invoice["StatusAttributeString"] == "OK"
    assert invoice["DateString"] == "2026-03-01T00:00:00" and invoice["DueDateString"] == "2026-04-01T00:00:00"
    assert invoice["Total"] == 10.93 and invoice["Url"] == "https://portal.example/invoice/7"


# --- invoices: statuses --------------------------------------------------------------------------
def update(xero: XeroSession, invoice_id: str, **fields) -> Invoice:
    result = xero.accounting.update_invoice(
        xero_tenant_id=xero.tenant_id,
        invoice_id=invoice_id,
        invoices=Invoices(invoices=[Invoice(invoice_id=invoice_id, **fields)]),
        _request_timeout=TIMEOUT,
    )
    return result.invoices[0]


def test_it_walks_the_allowed_status_transitions(xero, customer):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id)])
    assert invoice.status == "DRAFT"
    assert update(xero, invoice.invoice_id, status="SUBMITTED").status == "SUBMITTED"
    assert update(xero, invoice.invoice_id, status="AUTHORISED").status == "AUTHORISED"
    voided = update(xero, invoice.invoice_id, status="VOIDED")
    assert voided.status == "VOIDED" and voided.amount_due == 0
    [draft] = create_invoices(xero, [sales_invoice(customer.contact_id)])
    assert update(xero, draft.invoice_id, status="DELETED").status == "DELETED"


@pytest.mark.parametrize(
    ("created_as", "then", "refused"),
    [
        ("AUTHORISED", None, "DELETED"),
        ("AUTHORISED", None, "DRAFT"),
        ("AUTHORISED", "VOIDED", "AUTHORISED"),
        ("DRAFT", "DELETED", "DRAFT"),
    ],
)
def test_it_refuses_status_transitions_xero_refuses(xero, customer, created_as, then, refused):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, status=created_as)])
    if then:
        update(xero, invoice.invoice_id, status=then)
    with pytest.raises(AccountingBadRequestException) as raised:
        update(xero, invoice.invoice_id, status=refused)
    assert raised.value.reason == "Invoice not of valid status for modification"


@pytest.mark.parametrize("status", ["PAID", "VOIDED", "DELETED"])
def test_a_new_invoice_cannot_start_paid_voided_or_deleted(xero, customer, status):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, status=status)])
    assert invoice.has_errors and invoice.invoice_id == ZERO_GUID


def test_a_paid_invoice_cannot_be_edited(sandbox, xero, customer):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, status="AUTHORISED")])
    sandbox.xero_pay(invoice.invoice_id)
    with pytest.raises(AccountingBadRequestException) as raised:
        update(xero, invoice.invoice_id, reference="changed")
    assert raised.value.reason == "Invoice not of valid status for modification"


def test_an_authorised_invoice_needs_line_items(xero, customer):
    invoice = sales_invoice(customer.contact_id, status="AUTHORISED")
    invoice.line_items = []
    [result] = create_invoices(xero, [invoice])
    assert result.validation_errors[0].message == "One or more line items must be specified"


# --- invoices: updates ---------------------------------------------------------------------------
def test_it_replaces_line_items_on_update_keeping_the_ids_sent_back(xero, customer):
    lines = [
        LineItem(description="Keep", quantity=Decimal(1), unit_amount=Decimal(10), account_code="200"),
        LineItem(description="Drop", quantity=Decimal(1), unit_amount=Decimal(20), account_code="200"),
    ]
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, lines)])
    kept_id = invoice.line_items[0].line_item_id
    changed = update(
        xero,
        invoice.invoice_id,
        line_items=[
            LineItem(
                line_item_id=kept_id,
                description="Keep",
                quantity=Decimal(3),
                unit_amount=Decimal(10),
                account_code="200",
            ),
            LineItem(description="New", quantity=Decimal(1), unit_amount=Decimal(1), account_code="200"),
        ],
    )
    assert [line.description for line in changed.line_items] == ["Keep", "New"]
    assert changed.line_items[0].line_item_id == kept_id and changed.line_items[1].line_item_id != kept_id
    assert changed.sub_total == Decimal("31.0")
    assert changed.updated_date_utc > invoice.updated_date_utc


def test_post_updates_by_invoice_number_and_get_reads_by_number(xero, customer):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, invoice_number="B24-77")])
    result = xero.accounting.update_or_create_invoices(
        xero_tenant_id=xero.tenant_id,
        invoices=Invoices(invoices=[Invoice(type="ACCREC", invoice_number="B24-77", reference="by number")]),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    )
    assert result.invoices[0].invoice_id == invoice.invoice_id
    read = xero.accounting.get_invoice(xero_tenant_id=xero.tenant_id, invoice_id="B24-77", _request_timeout=TIMEOUT)
    assert read.invoices[0].reference == "by number" and len(read.invoices[0].line_items) == 1


def test_it_answers_404_for_an_unknown_invoice(xero):
    with pytest.raises(NotFoundException):
        xero.accounting.get_invoice(
            xero_tenant_id=xero.tenant_id, invoice_id="11111111-1111-1111-1111-111111111111", _request_timeout=TIMEOUT
        )


# --- invoices: reads -----------------------------------------------------------------------------
def bulk(sandbox, key: str, elements: list[dict]) -> dict:
    response = requests.post(f"{sandbox.base_url}/_sandbox/xero/{key.lower()}", json={key: elements}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_it_pages_invoices_with_a_pagination_block_and_line_items(sandbox, xero, customer):
    line = {"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}
    bulk(
        sandbox,
        "Invoices",
        [{"Type": "ACCREC", "Contact": {"ContactID": customer.contact_id}, "LineItems": [line]}] * 250,
    )
    page3 = xero.accounting.get_invoices(xero_tenant_id=xero.tenant_id, page=3, _request_timeout=TIMEOUT)
    assert len(page3.invoices) == 50
    assert (
        page3.pagination.page,
        page3.pagination.page_size,
        page3.pagination.page_count,
        page3.pagination.item_count,
    ) == (3, 100, 3, 250)
    assert page3.invoices[0].line_items and page3.invoices[0].contact.addresses
    big = xero.accounting.get_invoices(xero_tenant_id=xero.tenant_id, page=1, page_size=5000, _request_timeout=TIMEOUT)
    assert big.pagination.page_size == 1000 and len(big.invoices) == 250
    unpaged = xero.accounting.get_invoices(xero_tenant_id=xero.tenant_id, _request_timeout=TIMEOUT)
    assert len(unpaged.invoices) == 250 and unpaged.pagination is None
    assert unpaged.invoices[0].line_items is None and unpaged.invoices[0].contact.name == "ACME Ltd"


def test_if_modified_since_is_inclusive_at_second_precision(xero, customer):
    [first] = create_invoices(xero, [sales_invoice(customer.contact_id)])
    boundary = first.updated_date_utc.replace(microsecond=0)
    while datetime.now(UTC) < boundary + timedelta(seconds=1):
        time.sleep(0.05)
    [second] = create_invoices(xero, [sales_invoice(customer.contact_id)])
    since_first = xero.accounting.get_invoices(
        xero_tenant_id=xero.tenant_id, if_modified_since=boundary, _request_timeout=TIMEOUT
    )
    assert {i.invoice_id for i in since_first.invoices} == {first.invoice_id, second.invoice_id}
    after_first = xero.accounting.get_invoices(
        xero_tenant_id=xero.tenant_id, if_modified_since=boundary + timedelta(seconds=1), _request_timeout=TIMEOUT
    )
    assert [i.invoice_id for i in after_first.invoices] == [second.invoice_id]


def test_it_filters_invoices_by_ids_numbers_contacts_and_statuses(xero, customer):
    other = make_contact(xero, "Other Co")
    a, b, c = create_invoices(
        xero,
        [
            sales_invoice(customer.contact_id, status="AUTHORISED"),
            sales_invoice(customer.contact_id),
            sales_invoice(other.contact_id, status="AUTHORISED"),
        ],
    )
    get = xero.accounting.get_invoices
    by_ids = get(xero_tenant_id=xero.tenant_id, i_ds=[a.invoice_id, c.invoice_id], page=1, _request_timeout=TIMEOUT)
    assert {i.invoice_id for i in by_ids.invoices} == {a.invoice_id, c.invoice_id}
    by_number = get(xero_tenant_id=xero.tenant_id, invoice_numbers=[b.invoice_number], _request_timeout=TIMEOUT)
    assert [i.invoice_id for i in by_number.invoices] == [b.invoice_id]
    by_contact = get(xero_tenant_id=xero.tenant_id, contact_i_ds=[other.contact_id], _request_timeout=TIMEOUT)
    assert [i.invoice_id for i in by_contact.invoices] == [c.invoice_id]
    by_status = get(xero_tenant_id=xero.tenant_id, statuses=["AUTHORISED"], _request_timeout=TIMEOUT)
    assert {i.invoice_id for i in by_status.invoices} == {a.invoice_id, c.invoice_id}
    mine = get(xero_tenant_id=xero.tenant_id, created_by_my_app=True, _request_timeout=TIMEOUT)
    assert len(mine.invoices) == 3


def test_it_understands_where_and_order(xero, customer):
    create_invoices(
        xero,
        [
            sales_invoice(customer.contact_id, reference="ORD-1", status="AUTHORISED"),
            sales_invoice(customer.contact_id, reference="ORD-2"),
            sales_invoice(customer.contact_id, reference="XYZ-3", status="AUTHORISED", date=date(2025, 12, 1)),
        ],
    )

    def refs(where: str, order: str | None = None) -> list[str]:
        ordering = {"order": order} if order else {}
        found = xero.accounting.get_invoices(
            xero_tenant_id=xero.tenant_id, where=where, _request_timeout=TIMEOUT, **ordering
        )
        return [i.reference for i in found.invoices]

    assert refs(f'Contact.ContactID==Guid("{customer.contact_id}") AND Status=="AUTHORISED"', "Reference DESC") == [
        "XYZ-3",
        "ORD-1",
    ]
    assert refs('Reference.StartsWith("ORD") && Status != "AUTHORISED"') == ["ORD-2"]
    assert refs("Date < DateTime(2026, 01, 01)") == ["XYZ-3"]
    assert refs('Reference.Contains("d-") OR AmountDue > 1000', "Reference ASC") == ["ORD-1", "ORD-2"]
    assert refs('Type=="ACCREC" AND Contact.Name=="ACME Ltd" AND AmountDue>=115', "Date ASC") == [
        "XYZ-3",
        "ORD-1",
        "ORD-2",
    ]


@pytest.mark.parametrize("where", ['Status=="AUTHORISED', "Bogus==1", "Status==", '(Status=="DRAFT"'])
def test_an_unreadable_where_is_a_400_not_a_crash(sandbox, xero, where):
    response = requests.get(
        api_url(sandbox, "/Invoices"), params={"where": where}, headers=raw_headers(xero), timeout=10
    )
    assert response.status_code == 400
    assert response.json()["Type"] == "QueryParseException"


# --- contacts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ['O\'Brien "The Builder" & Sons', "Ōtautahi Café Ltd", "株式会社テスト"])
def test_contact_names_are_unique_among_active_contacts(xero, name):
    created = make_contact(xero, name)
    assert created.name == name
    result = xero.accounting.create_contacts(
        xero_tenant_id=xero.tenant_id,
        contacts=Contacts(contacts=[Contact(name=name)]),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    )
    assert result.contacts[0].validation_errors[0].message == (
        f"The contact name {name} is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    )
    if '"' in name:
        # Real Xero has no escape for a quote inside a where string: 400 QueryParseException.
        escaped = name.replace('"', '\\"')
        with pytest.raises(ApiException) as refused:
            xero.accounting.get_contacts(
                xero_tenant_id=xero.tenant_id, where=f'Name=="{escaped}"', _request_timeout=TIMEOUT
            )
        assert refused.value.status == 400 and b"QueryParseException" in refused.value.body
        found = xero.accounting.get_contacts(xero_tenant_id=xero.tenant_id, search_term=name, _request_timeout=TIMEOUT)
    else:
        found = xero.accounting.get_contacts(
            xero_tenant_id=xero.tenant_id, where=f'Name=="{name}"', _request_timeout=TIMEOUT
        )
    assert [c.contact_id for c in found.contacts] == [created.contact_id]


def test_an_archived_contact_frees_its_name_and_leaves_default_lists(xero):
    old = make_contact(xero, "Reused Name")
    xero.accounting.update_contact(
        xero_tenant_id=xero.tenant_id,
        contact_id=old.contact_id,
        contacts=Contacts(contacts=[Contact(contact_id=old.contact_id, contact_status="ARCHIVED")]),
        _request_timeout=TIMEOUT,
    )
    fresh = make_contact(xero, "Reused Name")
    listed = xero.accounting.get_contacts(xero_tenant_id=xero.tenant_id, _request_timeout=TIMEOUT)
    assert [c.contact_id for c in listed.contacts] == [fresh.contact_id]
    everything = xero.accounting.get_contacts(
        xero_tenant_id=xero.tenant_id, include_archived=True, _request_timeout=TIMEOUT
    )
    assert len(everything.contacts) == 2


def test_a_contact_is_read_by_contact_number_with_every_address_and_phone(xero):
    created = make_contact(
        xero,
        "Numbered Ltd",
        contact_number="B24-COMPANY-42",
        email_address="ap@numbered.example",
        addresses=[Address(address_type="STREET", address_line1="1 Queen St", city="Auckland")],
        phones=[Phone(phone_type="MOBILE", phone_number="021 555 0101")],
    )
    found = xero.accounting.get_contact_by_contact_number(
        xero_tenant_id=xero.tenant_id, contact_number="B24-COMPANY-42", _request_timeout=TIMEOUT
    ).contacts[0]
    assert found.contact_id == created.contact_id
    assert {getattr(a.address_type, "value", a.address_type) for a in found.addresses} == {"POBOX", "STREET"}
    assert {getattr(p.phone_type, "value", p.phone_type) for p in found.phones} == {"DEFAULT", "DDI", "MOBILE", "FAX"}
    mobile = next(p for p in found.phones if getattr(p.phone_type, "value", p.phone_type) == "MOBILE")
    assert mobile.phone_number == "021 555 0101"
    where = xero.accounting.get_contacts(
        xero_tenant_id=xero.tenant_id, where='ContactNumber=="B24-COMPANY-42"', _request_timeout=TIMEOUT
    )
    assert len(where.contacts) == 1
    with pytest.raises(NotFoundException):
        xero.accounting.get_contact_by_contact_number(
            xero_tenant_id=xero.tenant_id, contact_number="nope", _request_timeout=TIMEOUT
        )


def test_contacts_refuse_an_empty_name_and_a_reused_account_number(xero):
    make_contact(xero, "First", account_number="ACC-1")
    result = xero.accounting.create_contacts(
        xero_tenant_id=xero.tenant_id,
        contacts=Contacts(contacts=[Contact(name=" "), Contact(name="Second", account_number="ACC-1")]),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    )
    messages = [c.validation_errors[0].message for c in result.contacts]
    assert messages == [
        "Contact Name cannot be empty.",
        "The Account Number already exists. Please enter a different Account Number.",
    ]
    assert all(c.contact_id == ZERO_GUID for c in result.contacts)


def test_a_contact_becomes_a_customer_once_a_sales_invoice_is_raised(xero, customer):
    assert customer.is_customer is False
    create_invoices(xero, [sales_invoice(customer.contact_id)])
    read = xero.accounting.get_contact(
        xero_tenant_id=xero.tenant_id, contact_id=customer.contact_id, _request_timeout=TIMEOUT
    )
    assert read.contacts[0].is_customer is True


def test_contacts_page_search_and_filter_by_ids(sandbox, xero):
    bulk(sandbox, "Contacts", [{"Name": f"Customer {n:03d}", "EmailAddress": f"c{n}@example.com"} for n in range(120)])
    page2 = xero.accounting.get_contacts(xero_tenant_id=xero.tenant_id, page=2, _request_timeout=TIMEOUT)
    assert len(page2.contacts) == 20 and page2.pagination.item_count == 120
    searched = xero.accounting.get_contacts(
        xero_tenant_id=xero.tenant_id, search_term="C11@EXAMPLE", _request_timeout=TIMEOUT
    )
    assert [c.name for c in searched.contacts] == ["Customer 011"]
    ids = [c.contact_id for c in page2.contacts[:2]]
    by_ids = xero.accounting.get_contacts(xero_tenant_id=xero.tenant_id, i_ds=ids, _request_timeout=TIMEOUT)
    assert [c.contact_id for c in by_ids.contacts] == ids


# --- items ---------------------------------------------------------------------------------------
def test_items_are_created_read_updated_and_deleted(sandbox, xero):
    created = xero.accounting.create_items(
        xero_tenant_id=xero.tenant_id,
        items=Items(
            items=[
                Item(
                    code="WIDGET",
                    name="Widget",
                    sales_details=Purchase(unit_price=Decimal("12.5"), account_code="200", tax_type="OUTPUT2"),
                )
            ]
        ),
        _request_timeout=TIMEOUT,
    ).items[0]
    assert created.sales_details.unit_price == Decimal("12.5")
    duplicate = xero.accounting.create_items(
        xero_tenant_id=xero.tenant_id,
        items=Items(items=[Item(code="widget", name="Again")]),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    ).items[0]
    assert duplicate.validation_errors
    # The SDK checks the 30-character limit itself, so send the long code raw.
    too_long = requests.put(
        api_url(sandbox, "/Items?summarizeErrors=false"),
        json={"Items": [{"Code": "X" * 31, "Name": "Long"}]},
        headers=raw_headers(xero),
        timeout=10,
    ).json()["Items"][0]
    assert too_long["ValidationErrors"]
    by_code = xero.accounting.get_item(xero_tenant_id=xero.tenant_id, item_id="WIDGET", _request_timeout=TIMEOUT).items[
        0
    ]
    assert by_code.item_id == created.item_id
    xero.accounting.update_item(
        xero_tenant_id=xero.tenant_id,
        item_id=created.item_id,
        items=Items(items=[Item(code="WIDGET", name="Widget v2")]),
        _request_timeout=TIMEOUT,
    )
    listed = xero.accounting.get_items(
        xero_tenant_id=xero.tenant_id, where='Name.Contains("v2")', _request_timeout=TIMEOUT
    )
    assert [i.code for i in listed.items] == ["WIDGET"]
    xero.accounting.delete_item(xero_tenant_id=xero.tenant_id, item_id=created.item_id, _request_timeout=TIMEOUT)
    assert xero.accounting.get_items(xero_tenant_id=xero.tenant_id, _request_timeout=TIMEOUT).items == []


def test_an_invoice_line_takes_its_defaults_from_the_item(sandbox, xero, customer):
    bulk(
        sandbox,
        "Items",
        [
            {
                "Code": "HOUR",
                "Name": "Hour",
                "Description": "One hour of work",
                "SalesDetails": {"UnitPrice": 120, "AccountCode": "200", "TaxType": "OUTPUT2"},
            }
        ],
    )
    [invoice] = create_invoices(
        xero, [sales_invoice(customer.contact_id, [LineItem(item_code="HOUR", quantity=Decimal(2))])]
    )
    line = invoice.line_items[0]
    assert (line.description, line.unit_amount, line.account_code, line.tax_amount) == (
        "One hour of work",
        Decimal("120.0"),
        "200",
        Decimal("36.0"),
    )


# --- payments ------------------------------------------------------------------------------------
def test_payments_flip_the_invoice_to_paid_and_deleting_one_restores_it(xero, customer):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, status="AUTHORISED")])  # total 115.00
    partial = xero.accounting.create_payment(
        xero_tenant_id=xero.tenant_id,
        payment=Payment(
            invoice=Invoice(invoice_id=invoice.invoice_id),
            account=Account(code="090"),
            amount=Decimal("15.00"),
            date=date(2026, 1, 20),
        ),
        _request_timeout=TIMEOUT,
    ).payments[0]
    after_partial = xero.accounting.get_invoice(
        xero_tenant_id=xero.tenant_id, invoice_id=invoice.invoice_id, _request_timeout=TIMEOUT
    ).invoices[0]
    assert (after_partial.status, after_partial.amount_due, after_partial.amount_paid) == (
        "AUTHORISED",
        Decimal("100.0"),
        Decimal("15.0"),
    )
    rest = xero.accounting.create_payments(
        xero_tenant_id=xero.tenant_id,
        payments=Payments(
            payments=[
                Payment(
                    invoice=Invoice(invoice_number=invoice.invoice_number),
                    account=Account(code="090"),
                    amount=Decimal("100.00"),
                    date=date(2026, 1, 25),
                )
            ]
        ),
        _request_timeout=TIMEOUT,
    ).payments[0]
    paid = xero.accounting.get_invoice(
        xero_tenant_id=xero.tenant_id, invoice_id=invoice.invoice_id, _request_timeout=TIMEOUT
    ).invoices[0]
    assert (paid.status, paid.amount_due, paid.fully_paid_on_date) == ("PAID", Decimal("0.0"), date(2026, 1, 25))
    assert len(paid.payments) == 2
    xero.accounting.delete_payment(
        xero_tenant_id=xero.tenant_id,
        payment_id=rest.payment_id,
        payment_delete=PaymentDelete(status="DELETED"),
        _request_timeout=TIMEOUT,
    )
    restored = xero.accounting.get_invoice(
        xero_tenant_id=xero.tenant_id, invoice_id=invoice.invoice_id, _request_timeout=TIMEOUT
    ).invoices[0]
    assert (restored.status, restored.amount_due, restored.fully_paid_on_date) == ("AUTHORISED", Decimal("100.0"), None)
    listed = xero.accounting.get_payments(
        xero_tenant_id=xero.tenant_id, where='Status=="AUTHORISED"', _request_timeout=TIMEOUT
    )
    assert [p.payment_id for p in listed.payments] == [partial.payment_id]
    deleted = xero.accounting.get_payment(
        xero_tenant_id=xero.tenant_id, payment_id=rest.payment_id, _request_timeout=TIMEOUT
    )
    assert deleted.payments[0].status == "DELETED"


def test_payments_are_refused_where_xero_refuses_them(xero, customer):
    draft, authorised = create_invoices(
        xero, [sales_invoice(customer.contact_id), sales_invoice(customer.contact_id, status="AUTHORISED")]
    )

    def attempt(invoice_id: str, account: Account | None, amount: str) -> str:
        result = xero.accounting.create_payments(
            xero_tenant_id=xero.tenant_id,
            payments=Payments(
                payments=[Payment(invoice=Invoice(invoice_id=invoice_id), account=account, amount=Decimal(amount))]
            ),
            summarize_errors=False,
            _request_timeout=TIMEOUT,
        ).payments[0]
        assert result.status_attribute_string == "ERROR"
        return result.validation_errors[0].message

    assert attempt(authorised.invoice_id, None, "1") == "You must specify an Account code or Account ID for the payment"
    assert "Payments can only be made to bank accounts" in attempt(authorised.invoice_id, Account(code="200"), "1")
    assert "exceeds the amount outstanding" in attempt(authorised.invoice_id, Account(code="090"), "115.01")
    assert "Authorised" in attempt(draft.invoice_id, Account(code="090"), "1")


def test_the_control_route_pays_an_invoice_as_a_xero_user_would(sandbox, xero, customer):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, status="AUTHORISED")])
    result = sandbox.xero_pay(invoice.invoice_id, amount="15.00")
    assert result["payment"]["Account"]["Code"] == "090" and result["invoice"]["AmountDue"] == 100.0
    assert sandbox.xero_pay(invoice.invoice_id)["invoice"]["Status"] == "PAID"
    refused = requests.post(f"{sandbox.base_url}/_sandbox/xero/invoices/{invoice.invoice_id}/pay", json={}, timeout=10)
    assert refused.status_code == 400


def test_the_control_route_changes_status_under_the_same_rules(sandbox, xero, customer):
    [invoice] = create_invoices(xero, [sales_invoice(customer.contact_id, status="AUTHORISED")])
    url = f"{sandbox.base_url}/_sandbox/xero/invoices/{invoice.invoice_id}/status"
    assert requests.post(url, json={"status": "DELETED"}, timeout=10).status_code == 400
    voided = requests.post(url, json={"status": "VOIDED"}, timeout=10).json()
    assert voided["invoice"]["Status"] == "VOIDED"
    read = xero.accounting.get_invoice(
        xero_tenant_id=xero.tenant_id, invoice_id=invoice.invoice_id, _request_timeout=TIMEOUT
    )
    assert read.invoices[0].status == "VOIDED"


# --- bad requests --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (b"", "NoDataProcessedException"),
        (b'{"Invoice": {"Type": "ACCREC"}}', "NoDataProcessedException"),
        (b'{"Invoices": []}', "NoDataProcessedException"),
        (b"[1, 2]", "NoDataProcessedException"),
        (b'{"Invoices": [', "PostDataInvalidException"),
    ],
)
def test_an_empty_or_broken_body_gets_a_xero_error(sandbox, xero, body, error_type):
    headers = {**raw_headers(xero), "Content-Type": "application/json"}
    response = requests.put(api_url(sandbox, "/Invoices"), data=body, headers=headers, timeout=10)
    assert response.status_code == 400
    assert response.json()["Type"] == error_type


def test_a_body_over_three_and_a_half_megabytes_is_refused_with_413(sandbox, xero):
    headers = {**raw_headers(xero), "Content-Type": "application/json"}
    huge = b'{"Contacts": [{"Name": "' + b"x" * (3_700_000) + b'"}]}'
    response = requests.put(api_url(sandbox, "/Contacts"), data=huge, headers=headers, timeout=30)
    assert response.status_code == 413
    assert requests.get(api_url(sandbox, "/Organisation"), headers=raw_headers(xero), timeout=10).status_code == 200


def test_wrongly_typed_fields_are_element_errors_not_crashes(sandbox, xero, customer):
    body = {
        "Invoices": [
            {"Type": "ACCREC", "Contact": "ACME", "LineItems": "many"},
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": customer.contact_id},
                "Date": "yesterday",
                "LineItems": [{"Quantity": "lots", "UnitAmount": True}],
            },
            "not an object",
        ]
    }
    response = requests.post(
        api_url(sandbox, "/Invoices?summarizeErrors=false"), json=body, headers=raw_headers(xero), timeout=10
    )
    assert response.status_code == 200
    assert [i["StatusAttributeString"] for i in response.json()["Invoices"]] == ["ERROR", "ERROR", "ERROR"]


# --- volume --------------------------------------------------------------------------------------
def test_ten_thousand_invoices_load_and_page_quickly(sandbox, xero, customer):
    line = {"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "TaxType": "OUTPUT2"}
    started = time.monotonic()
    loaded = bulk(
        sandbox,
        "Invoices",
        [{"Type": "ACCREC", "Contact": {"ContactID": customer.contact_id}, "LineItems": [line], "Status": "AUTHORISED"}]
        * 10_000,
    )
    assert loaded["created"] == 10_000 and loaded["Invoices"][-1]["InvoiceNumber"] == "INV-10000"
    pages = [
        xero.accounting.get_invoices(xero_tenant_id=xero.tenant_id, page=page, page_size=1000, _request_timeout=TIMEOUT)
        for page in range(1, 11)
    ]
    assert sum(len(p.invoices) for p in pages) == 10_000 and pages[0].pagination.page_count == 10
    assert time.monotonic() - started < 60
