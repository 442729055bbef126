"""XeroClient's typed methods against the sandbox's fake Xero over HTTP: what each sends and what it
answers (plain frozen dataclasses, Decimal money, Xero's per-element errors kept), one method or
family per test."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from accounts.models import XeroConnection
from integrations.common.errors import PermanentError
from integrations.xero.client import INVOICE_IDS_MAX, XeroClient
from integrations.xero.oauth import xero_authorize_url, xero_connections, xero_exchange_code
from integrations.xero.types import Contact, ContactMatch, Invoice, Written
from tests.factories import XeroConnectionFactory

from .conftest import REDIRECT_URI, last_call_id, token_calls


def _contact(name: str, number: str = "") -> dict:
    return {"Name": name, **({"ContactNumber": number} if number else {})}


def _invoice(contact_id: str, *, status: str = "DRAFT", number: str = "", url: str = "", **extra) -> dict:
    body = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": date.today().isoformat(),
        "DueDate": (date.today() + timedelta(days=14)).isoformat(),
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {"Description": "Consulting", "Quantity": Decimal("2"), "UnitAmount": Decimal("150.1250"),
             "AccountCode": "200", "TaxType": "OUTPUT2"}
        ],
        "Status": status,
    }  # fmt: skip
    if number:
        body["InvoiceNumber"] = number
    if url:
        body["Url"] = url
    return {**body, **extra}


def _key() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def client(xero_connection) -> XeroClient:
    return XeroClient(xero_connection)


@pytest.fixture
def customer(client) -> Contact:
    [answer] = client.contacts_create([_contact(f"Typed Ltd {secrets.token_hex(3)}")], idempotency_key=_key())
    assert answer.ok, answer.errors
    return answer.result


# --- contacts -------------------------------------------------------------------------------------


def test_contacts_create_answers_per_element_with_xeros_own_validation_messages(client):
    name = f"Kea Traders {secrets.token_hex(3)}"
    answers = client.contacts_create(
        [_contact(name, "B24-CO-1"), _contact(name, "B24-CO-2"), _contact(f"Other {name}")], idempotency_key=_key()
    )
    assert [type(a) for a in answers] == [Written, Written, Written]
    first, duplicate, other = answers
    assert first.ok and first.result.name == name and first.result.contact_number == "B24-CO-1"
    assert uuid.UUID(first.result.contact_id)
    assert not duplicate.ok and duplicate.status == "ERROR"
    assert any("already assigned to another contact" in message for message in duplicate.errors)
    assert other.ok
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.result.name = "changed"  # type: ignore[misc]


def test_contacts_find_search_and_list_read_what_was_created(client, customer):
    found = client.contacts_find([ContactMatch.name(customer.name)])
    assert [c.contact_id for c in found] == [customer.contact_id]
    assert found[0].contact_status == "ACTIVE"
    # Our number or a name, in one OR-chain: both contacts in one request.
    [numbered] = client.contacts_create([_contact(f"Numbered {customer.name}", "B24-CO-77")], idempotency_key=_key())
    either = client.contacts_find([ContactMatch.number("B24-CO-77"), ContactMatch.name(customer.name)])
    assert {c.contact_id for c in either} == {customer.contact_id, numbered.result.contact_id}
    # A name Xero's where cannot carry is refused before any request (searchTerm finds it).
    with pytest.raises(ValueError):
        client.contacts_find([ContactMatch.name('Smith & Sons "Joinery"')])
    searched = client.contacts_search(customer.name[:8], page=1, page_size=100)
    assert customer.contact_id in {c.contact_id for c in searched}
    page = client.contacts_list(1, page_size=100, include_archived=True)
    assert page.page == 1 and page.item_count is not None and page.item_count >= 1
    listed = {c.contact_id: c for c in page.contacts}
    assert listed[customer.contact_id].data["Name"] == customer.name  # Xero's JSON, for the import
    summaries = client.contacts_list(1, page_size=100, summary_only=True)
    assert summaries.page_count == 1 and all(not c.data for c in summaries.contacts)


def test_contacts_upsert_updates_by_contact_id(client, customer):
    [answer] = client.contacts_upsert(
        [{"ContactID": customer.contact_id, "Name": customer.name + " (renamed)"}], idempotency_key=_key()
    )
    assert answer.ok and answer.result.contact_id == customer.contact_id
    assert client.contacts_find([ContactMatch.name(f"{customer.name} (renamed)")])[0].contact_id == customer.contact_id


# --- invoices -------------------------------------------------------------------------------------


def test_invoices_upsert_answers_per_invoice_with_decimal_money_and_keeps_a_refused_ones_errors(client, customer):
    good = _invoice(customer.contact_id, status="AUTHORISED", url="https://acme.bitrix24.com/crm/type/31/details/7/")
    bad = _invoice(customer.contact_id)
    bad["LineItems"] = [{"Description": "Widget", "Quantity": 1, "UnitAmount": 5, "ItemCode": "NO-SUCH-ITEM"}]
    key = _key()
    saved, refused = client.invoices_upsert([good, bad], idempotency_key=key)
    assert saved.ok and isinstance(saved.result, Invoice)
    invoice = saved.result
    assert invoice.status == "AUTHORISED" and invoice.type == "ACCREC"
    assert invoice.sub_total == Decimal("300.25") and isinstance(invoice.total, Decimal)
    assert invoice.amount_due == invoice.total and invoice.amount_paid == Decimal(0)
    assert invoice.contact is not None and invoice.contact.contact_id == customer.contact_id
    assert invoice.updated_date_utc is not None and invoice.updated_date_utc.tzinfo is not None
    assert not refused.ok and any("NO-SUCH-ITEM" in message for message in refused.errors)

    # The same key and body replay Xero's stored answer: nothing is created twice.
    replayed, _ = client.invoices_upsert([good, bad], idempotency_key=key)
    assert replayed.result.invoice_id == invoice.invoice_id
    assert len(client.invoices_by_url_prefix(good["Url"], page=1, page_size=10)) == 1


def test_invoices_get_returns_whole_invoices_with_four_decimal_prices_and_summaries_without(client, customer):
    [saved] = client.invoices_upsert([_invoice(customer.contact_id)], idempotency_key=_key())
    invoice_id = saved.result.invoice_id
    [whole] = client.invoices_get([invoice_id])
    assert whole.invoice_id == invoice_id and whole.data["HasLines"] is True
    [line] = whole.data["LineItems"]
    assert line["UnitAmount"] == Decimal("150.1250") and line["AccountCode"] == "200"
    assert whole.data["Total"] == whole.total
    [summary] = client.invoices_get([invoice_id], lines=False)
    assert summary.amount_due == whole.amount_due
    with pytest.raises(ValueError):
        client.invoices_get([str(uuid.uuid4()) for _ in range(INVOICE_IDS_MAX + 1)])


def test_invoices_by_number_by_url_prefix_and_modified_since(client, customer):
    number = f"T-{secrets.token_hex(3)}"
    url = f"https://typed.bitrix24.com/crm/type/31/details/{secrets.randbelow(10**6)}/"
    [saved] = client.invoices_upsert([_invoice(customer.contact_id, number=number, url=url)], idempotency_key=_key())
    assert [i.invoice_id for i in client.invoices_by_number([number])] == [saved.result.invoice_id]
    found = client.invoices_by_url_prefix(url.removesuffix("/"), page=1, page_size=100)
    assert [(i.invoice_id, i.url) for i in found] == [(saved.result.invoice_id, url)]
    with pytest.raises(ValueError):  # Xero's where cannot carry a quote: refused before any request
        client.invoices_by_url_prefix('https://typed.bitrix24.com/"', page=1, page_size=100)
    since = saved.result.updated_date_utc - timedelta(minutes=5)
    changed = client.invoices_modified_since(since.replace(microsecond=0), page=1, page_size=100)
    assert saved.result.invoice_id in {i.invoice_id for i in changed}


def test_payment_create_pays_the_invoice(client, customer):
    [saved] = client.invoices_upsert([_invoice(customer.contact_id, status="AUTHORISED")], idempotency_key=_key())
    due = saved.result.amount_due
    payment = client.payment_create(
        invoice_id=saved.result.invoice_id,
        account_code="090",
        date=date.today(),
        amount=due,
        reference="Bitrix24 invoice 7",
        idempotency_key=_key(),
    )
    assert payment.amount == due
    [paid] = client.invoices_get([saved.result.invoice_id], lines=False)
    assert (paid.status, paid.amount_paid, paid.amount_due) == ("PAID", due, Decimal(0))


def test_invoice_online_url_for_an_approved_invoice(client, customer):
    [saved] = client.invoices_upsert([_invoice(customer.contact_id, status="AUTHORISED")], idempotency_key=_key())
    assert client.invoice_online_url(saved.result.invoice_id).startswith("http")


# --- credit notes ---------------------------------------------------------------------------------


def test_credit_notes_upsert_and_modified_since(client, customer):
    body = _invoice(customer.contact_id, status="AUTHORISED")
    body["Type"] = "ACCRECCREDIT"
    body.pop("DueDate")
    [saved] = client.credit_notes_upsert([body], idempotency_key=_key())
    assert saved.ok, saved.errors
    note = saved.result
    assert note.type == "ACCRECCREDIT" and note.status == "AUTHORISED"
    assert note.total == note.remaining_credit and isinstance(note.total, Decimal)
    since = (note.updated_date_utc - timedelta(minutes=5)).replace(microsecond=0)
    changed = client.credit_notes_modified_since(since, page=1, page_size=100)
    assert note.credit_note_id in {n.credit_note_id for n in changed}


# --- items ----------------------------------------------------------------------------------------


def test_items_create_list_and_delete(client):
    code = f"TY-{secrets.token_hex(3)}"
    item = {"Code": code, "Name": "Typed widget", "SalesDetails": {"UnitPrice": Decimal("9.95"), "AccountCode": "200"}}
    [created] = client.items_create([item], idempotency_key=_key())
    assert created.ok and created.result.code == code
    listed = {i.code: i for i in client.items_list()}
    assert listed[code].item_id == created.result.item_id
    assert Decimal(str(listed[code].data["SalesDetails"]["UnitPrice"])) == Decimal("9.95")
    [refused] = client.items_create([item], idempotency_key=_key())  # the code is taken now
    assert not refused.ok and refused.errors
    client.item_delete(created.result.item_id)
    assert code not in {i.code for i in client.items_list()}
    with pytest.raises(PermanentError) as gone:
        client.item_delete(created.result.item_id)
    assert gone.value.status == 404


# --- settings -------------------------------------------------------------------------------------


def test_accounts_tax_rates_currencies_and_organisation(client, xero_connection):
    accounts = {a.code: a for a in client.accounts_list(active_only=True)}
    assert (accounts["200"].type, accounts["200"].status, accounts["200"].tax_type) == ("REVENUE", "ACTIVE", "OUTPUT2")
    assert accounts["090"].type == "BANK" and accounts["090"].updated_date_utc is not None
    newest = max(a.updated_date_utc for a in accounts.values())
    assert client.accounts_list(modified_since=newest + timedelta(days=1)) == []
    rates = {t.tax_type: t for t in client.tax_rates_list(active_only=True)}
    assert rates["OUTPUT2"].effective_rate == Decimal("15") and rates["OUTPUT2"].can_apply_to_revenue
    assert "NZD" in {c.code for c in client.currencies_list()}
    organisation = client.organisation_get()
    assert organisation is not None and organisation.name == xero_connection.tenant_name
    assert organisation.base_currency == "NZD"


# --- a 401 classified by what Xero said -----------------------------------------------------------


def _connect_with_scopes(portal, scopes: str) -> XeroConnection:
    state = secrets.token_urlsafe(16)
    consent = requests.get(
        xero_authorize_url(state=state, redirect_uri=REDIRECT_URI, scopes=scopes), allow_redirects=False, timeout=10
    )
    code = parse_qs(urlparse(consent.headers["Location"]).query)["code"][0]
    tokens = xero_exchange_code(code=code, redirect_uri=REDIRECT_URI)
    tenant = xero_connections(tokens.access_token, tokens.extra.get("auth_event_id"))[0]
    return XeroConnectionFactory(
        portal=portal,
        tenant_id=tenant["tenantId"],
        tenant_name=tenant.get("tenantName", ""),
        connection_id=tenant.get("id", ""),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
        scope=tokens.scope,
    )


def test_a_missing_scope_is_said_as_such_and_costs_no_token_refresh(sandbox, portal, xero_credentials):
    connection = _connect_with_scopes(portal, "offline_access accounting.invoices accounting.contacts")
    since = last_call_id(sandbox)
    with pytest.raises(PermanentError) as refused:
        XeroClient(connection).accounts_list()
    assert (refused.value.status, refused.value.code) == (401, "insufficient_scope")
    assert "Reconnect Xero" in refused.value.message and "freshly refreshed" not in refused.value.message
    assert token_calls(sandbox, since) == []  # a refresh gives the same scopes: none was tried
    connection.refresh_from_db()
    assert connection.status == XeroConnection.Status.ACTIVE  # the other calls still work
    assert XeroClient(connection).contacts_find([ContactMatch.name("nobody")]) == []
