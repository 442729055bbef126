"""The fake Xero speaks Xero's published contract: every request a client makes here and every answer
the sandbox gives validate against Xero's official OpenAPI description (XeroAPI/Xero-OpenAPI, read
from shared/spec/xero beside the checkout), and every field the spec flags as an MS date carries
/Date(...)/, which no validator checks.
"""

from __future__ import annotations

import copy
import json
import re
import uuid

import pytest
import requests

from tests.sandbox.openapi import (
    XeroClient,
    load_spec,
    ms_date_problems,
    response_schema,
    spec_url,
    validate_exchange,
)
from tests.sandbox.test_xero_webhooks import KEY, Receiver, wait_until

# openapi-core cannot evaluate Xero's OAuth2 security scheme; the tokens are tested elsewhere.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")

EVENT_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")
CONNECTION_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")


@pytest.fixture(scope="session")
def accounting_spec() -> dict:
    return load_spec("xero_accounting.yaml")


@pytest.fixture(scope="session")
def accounting(accounting_spec):
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(accounting_spec)


@pytest.fixture
def xero(sandbox) -> XeroClient:
    return XeroClient.connect(sandbox)


@pytest.fixture
def conforms(accounting_spec, accounting):
    """Assert that a response (and its request) keep to the spec, dates included; return its JSON."""

    def check(response: requests.Response, status: int = 200) -> dict:
        assert response.status_code == status, response.text[:1000]
        validate_exchange(accounting, response)
        body = response.json()
        schema = response_schema(accounting_spec, response.request.method, response.request.url, status)
        assert ms_date_problems(accounting_spec, schema, body) == []
        return body

    return check


def new_invoice(contact: dict | None = None, status: str = "DRAFT", reference: str = "B24-7") -> dict:
    return {
        "Type": "ACCREC",
        "Contact": contact or {"Name": "Contract Testing Ltd"},
        "Date": "2026-01-05",
        "DueDate": "2026-02-05",
        "Reference": reference,
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "LineItems": [{"Description": "Consulting", "Quantity": 2, "UnitAmount": 150.5, "AccountCode": "200"}],
    }


def create_invoice(xero, **fields) -> dict:
    response = xero.put("/Invoices", json={"Invoices": [new_invoice(**fields)]})
    assert response.status_code == 200, response.text[:1000]
    return response.json()["Invoices"][0]


# --- invoices ------------------------------------------------------------------------------------
def test_creating_an_invoice_with_put_keeps_to_the_spec(xero, conforms):
    body = conforms(
        xero.put("/Invoices", json={"Invoices": [new_invoice()]}, headers={"Idempotency-Key": "contract-put"})
    )

    (created,) = body["Invoices"]
    assert created["InvoiceID"] and created["Status"] == "DRAFT"
    assert created["Date"].startswith("/Date(")


def test_upserting_invoices_with_post_keeps_to_the_spec(xero, conforms):
    existing = create_invoice(xero)
    update = {"InvoiceID": existing["InvoiceID"], "Reference": "B24-7 updated", "LineItems": new_invoice()["LineItems"]}

    body = conforms(
        xero.post("/Invoices", params={"summarizeErrors": "false"}, json={"Invoices": [update, new_invoice()]})
    )

    assert [i["StatusAttributeString"] for i in body["Invoices"]] == ["OK", "OK"]
    assert body["Invoices"][0]["Reference"] == "B24-7 updated"


def test_getting_invoices_by_page_keeps_to_the_spec(xero, conforms):
    for n in range(3):
        create_invoice(xero, reference=f"B24-{n}")

    body = conforms(xero.get("/Invoices", params={"page": 1, "pageSize": 2, "order": "UpdatedDateUTC DESC"}))

    assert len(body["Invoices"]) == 2
    assert body["pagination"] == {"page": 1, "pageSize": 2, "pageCount": 2, "itemCount": 3}
    assert all(invoice["LineItems"] for invoice in body["Invoices"]), "a paged GET includes line items"


def test_getting_an_invoice_by_id_keeps_to_the_spec(xero, conforms):
    created = create_invoice(xero)

    body = conforms(xero.get(f"/Invoices/{created['InvoiceID']}"))

    assert body["Invoices"][0]["InvoiceID"] == created["InvoiceID"]


def test_a_validation_error_keeps_to_the_spec(xero, conforms):
    broken = new_invoice()
    del broken["Contact"]

    body = conforms(xero.put("/Invoices", json={"Invoices": [broken]}), status=400)

    assert body["Type"] == "ValidationException" and body["ErrorNumber"] == 10
    assert body["Elements"][0]["ValidationErrors"][0]["Message"]


def test_an_unknown_invoice_is_a_404_to_a_request_that_keeps_to_the_spec(xero, accounting):
    from openapi_core.contrib.requests import RequestsOpenAPIRequest

    response = xero.get(f"/Invoices/{uuid.uuid4()}")

    assert response.status_code == 404
    prepared = response.request.copy()
    prepared.url = spec_url(prepared.url)
    accounting.validate_request(RequestsOpenAPIRequest(prepared))  # the spec declares no 404 body to check


# --- contacts, payments, reference data -----------------------------------------------------------
def test_creating_and_getting_contacts_keeps_to_the_spec(xero, conforms):
    contact = {
        "Name": "Spec Contact Pty",
        "EmailAddress": "accounts@spec.example",
        "Addresses": [{"AddressType": "POBOX", "AddressLine1": "PO Box 1", "City": "Wellington", "Country": "NZ"}],
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "555 0101"}],
    }
    created = conforms(xero.put("/Contacts", json={"Contacts": [contact]}))["Contacts"][0]

    by_id = conforms(xero.get(f"/Contacts/{created['ContactID']}"))
    paged = conforms(xero.get("/Contacts", params={"page": 1, "searchTerm": "Spec"}))

    assert by_id["Contacts"][0]["Name"] == "Spec Contact Pty"
    assert [c["ContactID"] for c in paged["Contacts"]] == [created["ContactID"]]


def test_creating_a_payment_keeps_to_the_spec(xero, conforms):
    invoice = create_invoice(xero, status="AUTHORISED")
    payment = {
        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
        "Account": {"Code": "090"},
        "Date": "2026-01-10",
        "Amount": 100,
    }

    body = conforms(xero.put("/Payments", json={"Payments": [payment]}))

    assert body["Payments"][0]["Amount"] == 100
    assert body["Payments"][0]["Invoice"]["InvoiceID"] == invoice["InvoiceID"]


def test_creating_and_listing_items_keeps_to_the_spec(xero, conforms):
    item = {"Code": "CONSULT", "Name": "Consulting hour", "SalesDetails": {"UnitPrice": 120, "AccountCode": "200"}}
    conforms(xero.put("/Items", json={"Items": [item]}))

    body = conforms(xero.get("/Items"))

    assert [i["Code"] for i in body["Items"]] == ["CONSULT"]


@pytest.mark.parametrize(
    "path, key",
    [
        ("/Accounts", "Accounts"),
        ("/TaxRates", "TaxRates"),
        ("/Currencies", "Currencies"),
        ("/Organisation", "Organisations"),
    ],
)
def test_reference_data_keeps_to_the_spec(xero, conforms, path, key):
    body = conforms(xero.get(path))

    assert body[key], f"{path} is empty"


def test_accounts_filtered_with_where_keep_to_the_spec(xero, conforms):
    body = conforms(xero.get("/Accounts", params={"where": 'Type=="BANK"'}))

    assert body["Accounts"] and {a["Type"] for a in body["Accounts"]} == {"BANK"}


# --- identity and webhooks -----------------------------------------------------------------------
def test_connections_keep_to_the_identity_spec(xero):
    from openapi_core import OpenAPI
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    identity = OpenAPI.from_dict(load_spec("xero-identity.yaml"))
    response = xero.connections
    prepared = response.request.copy()
    prepared.url = "https://api.xero.com/Connections"  # the spec capitalises it; Xero and the SDK do not

    connections = response.json()
    for connection in connections:
        # Xero's zone-less timestamps (the spec's own example too) against `format: date-time`: check
        # the real shape, then add the Z the format wants.
        for field in ("createdDateUtc", "updatedDateUtc"):
            assert CONNECTION_DATE.match(connection[field]), connection[field]
            connection[field] += "Z"
    zoned = copy.copy(response)
    zoned._content = json.dumps(connections).encode()

    request = RequestsOpenAPIRequest(prepared)
    identity.validate_request(request)
    identity.validate_response(request, RequestsOpenAPIResponse(zoned))
    assert connections[0]["tenantType"] == "ORGANISATION" and connections[0]["tenantId"] == xero.tenant_id


def test_webhook_payloads_keep_to_the_webhooks_spec(sandbox, xero):
    from openapi_core import OpenAPI
    from openapi_core.contrib.requests import RequestsOpenAPIWebhookRequest

    webhooks = OpenAPI.from_dict(load_spec("xero-webhooks.yaml"))
    receiver = Receiver()
    try:
        sandbox.xero_webhooks(receiver.url, KEY)
        invoice = create_invoice(xero)
        deliveries = wait_until(lambda: invoice_deliveries(receiver, invoice["InvoiceID"]))
    finally:
        receiver.close()

    for delivery in deliveries:
        payload = json.loads(delivery["raw"])
        for event in payload["events"]:
            # Xero sends eventDateUtc without a zone (so does the spec's own example), which the
            # schema's `format: date-time` (RFC 3339) refuses; check the real shape, then add the Z.
            assert EVENT_DATE.match(event["eventDateUtc"]), event["eventDateUtc"]
            event["eventDateUtc"] += "Z"
        request = requests.Request(
            "POST",
            "https://connector.example/xero/webhooks",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "x-xero-signature": delivery["headers"]["x-xero-signature"]},
        )
        webhooks.validate_request(RequestsOpenAPIWebhookRequest(request, "invoices"))
    (event,) = [e for d in deliveries for e in json.loads(d["raw"])["events"] if e["eventCategory"] == "INVOICE"]
    assert event["tenantId"] == xero.tenant_id and event["eventType"] == "CREATE"


def invoice_deliveries(receiver: Receiver, invoice_id: str) -> list[dict]:
    """The verified deliveries so far, once one of them carries the invoice's event."""
    deliveries = [r for r in receiver.received if r["verified"] and json.loads(r["raw"])["events"]]
    events = [e for d in deliveries for e in json.loads(d["raw"])["events"]]
    return deliveries if any(e["resourceId"] == invoice_id for e in events) else []
