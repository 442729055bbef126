"""Old invoices (crm.invoice.*) in the fake portal, driven by the documented examples.

The request bodies are read from Bitrix24's own pages (../shared/spec/bitrix24/api-reference/crm/
outdated/, the "cURL (OAuth)" examples) and sent as they are, shell date substitutions and
`**put_..._here**` placeholders filled in; the project keeps no copy of the docs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.sandbox.app_receiver import running_receiver
from tests.sandbox.bitrix24_rest_helpers import Portal

OUTDATED = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "bitrix24" / "api-reference" / "crm"
OUTDATED = OUTDATED / "outdated"
DATE = "2026-12-01T10:00:00+00:00"


def documented_bodies(page: str, **placeholders: str) -> list[dict]:
    """The JSON bodies of the page's cURL (OAuth) examples, `auth` removed."""
    path = OUTDATED / page
    if not path.is_file():
        pytest.skip(f"Bitrix24's docs are not at {path} (put them in shared/spec/bitrix24 beside the checkout)")
    text = path.read_text(encoding="utf-8")
    bodies = []
    for block in re.findall(r"- cURL \(OAuth\)\s*```http(.*?)```", text, re.S):
        block = re.sub(r"'\$\(date [^)]*\)'", DATE, block)
        for raw in re.findall(r"-d '(\{.*?\})'", block, re.S):
            for name, value in placeholders.items():
                raw = raw.replace(f"**put_{name}_here**", value).replace(f"your_{name}", value)
            body = json.loads(raw)
            body.pop("auth", None)
            bodies.append(body)
    assert bodies, f"no cURL (OAuth) example found in {page}"
    return bodies


@pytest.fixture
def portal(sandbox):
    sandbox.bitrix24_settings(invoices="old")
    return Portal(sandbox)


def clients(portal: Portal) -> None:
    """Companies up to id 5 and contacts up to id 3: the ids the documented examples name."""
    for n in range(5):
        portal.ok("crm.company.add", {"fields": {"TITLE": f"Company {n + 1}"}})
    for n in range(3):
        portal.ok("crm.contact.add", {"fields": {"NAME": f"Person {n + 1}"}})


def test_the_documented_add_examples_create_invoices_that_get_returns(portal):
    clients(portal)
    bodies = documented_bodies("invoice/crm-invoice-add.md")
    assert len(bodies) == 2
    ids = [portal.ok("crm.invoice.add", body) for body in bodies]
    assert all(isinstance(i, int) for i in ids)
    first = portal.ok("crm.invoice.get", {"id": ids[0]})
    assert first["ORDER_TOPIC"] == "Invoice for legal entity"
    assert (first["UF_COMPANY_ID"], first["UF_CONTACT_ID"], first["PERSON_TYPE_ID"]) == ("5", "2", "2")
    assert first["STATUS_ID"] == "P" and first["PAYED"] == "Y"
    assert first["PRICE"] == "218.00" and first["TAX_VALUE"] == "0.00"
    assert [(r["PRODUCT_NAME"], r["PRICE"], r["QUANTITY"]) for r in first["PRODUCT_ROWS"]] == [
        ("Product 01", "100.0000", "1.0000"),
        ("Product 77", "118.0000", "1.0000"),
    ]
    assert first["INVOICE_PROPERTIES"]["COMPANY"] == "Tech Innovations LLC"
    assert first["DATE_BILL"].startswith("2026-12-01")
    second = portal.ok("crm.invoice.get", {"id": ids[1]})
    assert (second["UF_CONTACT_ID"], second["PERSON_TYPE_ID"]) == ("3", "1")


def test_the_documented_update_get_list_and_delete_examples(portal):
    clients(portal)
    invoice_id = portal.ok("crm.invoice.add", documented_bodies("invoice/crm-invoice-add.md")[0])
    row_id = portal.ok("crm.invoice.get", {"id": invoice_id})["PRODUCT_ROWS"][0]["ID"]
    for body in documented_bodies(
        "invoice/crm-invoice-update.md", invoice_id=str(invoice_id), row_id=row_id, date="2026-12-03"
    ):
        assert portal.ok("crm.invoice.update", body) is True
    got = portal.ok("crm.invoice.get", {"id": invoice_id})
    # PRODUCT_ROWS replaces the rows: the documented one, keeping its ID, at 4 x 779.60.
    assert [(r["ID"], r["QUANTITY"], r["PRICE"]) for r in got["PRODUCT_ROWS"]] == [(row_id, "4.0000", "779.6000")]
    assert got["PRICE"] == "3118.40" and got["USER_DESCRIPTION"] == "Comment for the client (updated)."
    assert got["DATE_BILL"].startswith("2026-12-03")
    for body in documented_bodies("invoice/crm-invoice-get.md", invoice_id=str(invoice_id)):
        assert portal.ok("crm.invoice.get", body)["ID"] == str(invoice_id)
    cheap = portal.ok("crm.invoice.add", {**documented_bodies("invoice/crm-invoice-add.md")[1]})
    portal.ok("crm.invoice.update", {"id": cheap, "fields": {"PRODUCT_ROWS": [{"PRODUCT_NAME": "Pen", "PRICE": 5}]}})
    (listed,) = documented_bodies("invoice/crm-invoice-list.md")
    rows = portal.ok("crm.invoice.list", listed)
    assert [r["ID"] for r in rows] == [str(invoice_id)]  # >PRICE 100 leaves out the 5.00 one
    assert set(rows[0]) == {"ID", "ACCOUNT_NUMBER", "ORDER_TOPIC", "DATE_INSERT", "STATUS_ID", "PRICE"}
    for body in documented_bodies("invoice/crm-invoice-delete.md", invoice_id=str(invoice_id)):
        assert portal.ok("crm.invoice.delete", body) is True
    assert portal.call("crm.invoice.get", {"id": invoice_id}).json()["error_description"] == "Not found"


def test_add_needs_a_topic_a_payer_type_a_payment_method_and_a_buyer(portal):
    clients(portal)
    person_types = portal.ok("crm.persontype.list", documented_bodies("invoice/crm-person-type-list.md")[0])
    assert [p["NAME"] for p in person_types] == ["CRM_COMPANY"]
    methods = portal.ok("crm.paysystem.list", documented_bodies("invoice/crm-pay-system-list.md")[0])
    assert methods and all("Estimate" in m["NAME"] for m in methods)
    good = {"ORDER_TOPIC": "T", "PERSON_TYPE_ID": person_types[0]["ID"], "PAY_SYSTEM_ID": methods[0]["ID"]}
    good["UF_COMPANY_ID"] = 1
    for missing in ("ORDER_TOPIC", "PERSON_TYPE_ID", "PAY_SYSTEM_ID", "UF_COMPANY_ID"):
        fields = {k: v for k, v in good.items() if k != missing}
        assert portal.call("crm.invoice.add", {"fields": fields}).status_code == 400, missing
    assert isinstance(portal.ok("crm.invoice.add", {"fields": good}), int)


def test_rows_with_vat_make_the_amount_and_tax_and_list_pages_filters_and_orders(portal):
    clients(portal)
    base = {"ORDER_TOPIC": "VAT", "PERSON_TYPE_ID": 2, "PAY_SYSTEM_ID": 6, "UF_COMPANY_ID": 1}
    rows = [
        {"PRODUCT_NAME": "Net", "PRICE": 100, "QUANTITY": 3, "VAT_RATE": 0.2, "VAT_INCLUDED": "N"},
        {"PRODUCT_NAME": "Gross", "PRICE": 120, "QUANTITY": 1, "VAT_RATE": 0.2, "VAT_INCLUDED": "Y"},
        {"PRODUCT_NAME": "Off", "PRICE": 90, "DISCOUNT_PRICE": 10, "QUANTITY": 2},
    ]
    invoice_id = portal.ok("crm.invoice.add", {"fields": {**base, "PRODUCT_ROWS": rows}})
    got = portal.ok("crm.invoice.get", {"id": invoice_id})
    assert (got["PRICE"], got["TAX_VALUE"], got["CURRENCY"]) == ("660.00", "80.00", "NZD")
    assert got["PRODUCT_ROWS"][2]["DISCOUNT_PRICE"] == "10.0000"
    assert "PRODUCT_ROWS" not in portal.ok("crm.invoice.list", {})[0]
    for n in range(55):
        portal.ok("crm.invoice.add", {"fields": {**base, "ORDER_TOPIC": f"Bulk {n}", "UF_COMPANY_ID": 1 + n % 5}})
    first = portal.page("crm.invoice.list", {"order": {"ID": "DESC"}, "select": ["ID"]})
    assert (len(first["result"]), first["total"], first["next"]) == (50, 56, 50)
    assert first["result"][0]["ID"] == str(invoice_id + 55)
    second = portal.page("crm.invoice.list", {"order": {"ID": "DESC"}, "select": ["ID"], "start": 50})
    assert len(second["result"]) == 6 and "next" not in second
    no_count = portal.page("crm.invoice.list", {"start": -1, "select": ["ID"]})
    assert len(no_count["result"]) == 50 and no_count["total"] == 0
    by_company = portal.ok("crm.invoice.list", {"filter": {"UF_COMPANY_ID": 3}, "select": ["ID", "UF_COMPANY_ID"]})
    assert len(by_company) == 11 and {r["UF_COMPANY_ID"] for r in by_company} == {"3"}
    stamp = portal.ok("crm.invoice.get", {"id": invoice_id + 50})["DATE_UPDATE"]
    portal.ok("crm.invoice.update", {"id": invoice_id, "fields": {"COMMENTS": "later"}})
    recent = portal.page("crm.invoice.list", {"filter": {">=DATE_UPDATE": stamp}, "order": {"DATE_UPDATE": "DESC"}})
    assert recent["result"][0]["ID"] == str(invoice_id)
    assert portal.ok("crm.invoice.list", {"filter": {">DATE_UPDATE": "2099-01-01T00:00:00+00:00"}}) == []


def test_statuses_custom_ones_included_are_the_invoice_status_directory(portal):
    statuses = portal.ok("crm.invoice.status.list", {})
    assert [s["STATUS_ID"] for s in statuses] == ["N", "S", "P", "D"]
    new_id = portal.ok("crm.invoice.status.add", {"fields": {"NAME": "Awaiting approval", "SORT": 25}})
    custom = portal.ok("crm.invoice.status.get", {"id": new_id})
    assert custom["SYSTEM"] == "N" and custom["ENTITY_ID"] == "INVOICE_STATUS" and len(custom["STATUS_ID"]) == 1
    assert [s["NAME"] for s in portal.ok("crm.invoice.status.list", {})][2] == "Awaiting approval"
    via_status = portal.ok("crm.status.list", {"filter": {"ENTITY_ID": "INVOICE_STATUS"}})
    assert [s["STATUS_ID"] for s in via_status] == [s["STATUS_ID"] for s in portal.ok("crm.invoice.status.list", {})]
    assert portal.ok("crm.invoice.status.update", {"id": new_id, "fields": {"NAME": "Approval"}}) is True
    fields = portal.ok("crm.invoice.status.fields", {})
    assert fields["STATUS_ID"]["isReadOnly"] and not fields["NAME"]["isReadOnly"]
    system = next(s for s in statuses if s["STATUS_ID"] == "P")
    assert portal.call("crm.invoice.status.delete", {"id": system["ID"]}).status_code == 400
    assert portal.ok("crm.invoice.status.delete", {"id": new_id}) is True


def test_an_own_invoices_user_sees_and_changes_only_their_invoices(portal):
    clients(portal)
    mine_user, mine_token = portal.new_user("Seller", invoices="own")
    base = {"ORDER_TOPIC": "x", "PERSON_TYPE_ID": 2, "PAY_SYSTEM_ID": 6, "UF_COMPANY_ID": 1}
    theirs = portal.ok("crm.invoice.add", {"fields": base})
    mine = portal.ok("crm.invoice.add", {"fields": {**base, "RESPONSIBLE_ID": mine_user}})
    assert [r["ID"] for r in portal.ok("crm.invoice.list", {}, mine_token)] == [str(mine)]
    denied = portal.call("crm.invoice.get", {"id": theirs}, mine_token)
    assert (denied.status_code, denied.json()["error_description"]) == (400, "Access denied.")
    assert (
        portal.call("crm.invoice.update", {"id": theirs, "fields": {"STATUS_ID": "S"}}, mine_token).status_code == 400
    )
    assert portal.ok("crm.invoice.update", {"id": mine, "fields": {"STATUS_ID": "S"}}, mine_token) is True


def test_the_portal_setting_decides_which_invoices_answer(sandbox):
    portal = Portal(sandbox)
    assert portal.call("crm.invoice.list", {}).status_code == 400  # a new portal: no old invoices
    assert portal.call("crm.item.list", {"entityTypeId": 31}).status_code == 200
    sandbox.bitrix24_settings(invoices="old")
    assert portal.call("crm.invoice.list", {}).status_code == 200
    assert portal.error("crm.item.list", {"entityTypeId": 31}, 400, "NOT_FOUND")
    sandbox.bitrix24_settings(invoices="both")
    assert portal.call("crm.invoice.list", {}).status_code == 200
    assert portal.call("crm.item.list", {"entityTypeId": 31}).status_code == 200


def test_events_and_placements_of_old_invoices(sandbox):
    sandbox.bitrix24_settings(invoices="old")
    with running_receiver() as app:
        sandbox.bitrix24_install(app.url("/app"), event_url=app.url("/install"))
        portal = Portal(sandbox, sandbox._call("POST", "/_sandbox/bitrix24/tokens", json={"user": 1})["access_token"])
        for event in ("ONCRMINVOICEADD", "ONCRMINVOICEUPDATE", "ONCRMINVOICESETSTATUS", "ONCRMINVOICEDELETE"):
            portal.ok("event.bind", {"event": event, "handler": app.url(f"/{event}")})
        placements = portal.ok("placement.list", {})
        assert {"CRM_INVOICE_LIST_TOOLBAR", "CRM_INVOICE_DETAIL_TOOLBAR"} <= set(placements)
        assert not any(code.startswith("CRM_SMART_INVOICE_") for code in placements)
        assert portal.ok("placement.bind", {"PLACEMENT": "CRM_INVOICE_DETAIL_TOOLBAR", "HANDLER": app.url("/p")})
        smart = portal.call(
            "placement.bind", {"PLACEMENT": "CRM_SMART_INVOICE_DETAIL_TOOLBAR", "HANDLER": app.url("/p")}
        )
        assert smart.json()["error"] == "ERROR_PLACEMENT_NOT_FOUND"
        clients(portal)
        base = {"ORDER_TOPIC": "x", "PERSON_TYPE_ID": 2, "PAY_SYSTEM_ID": 6, "UF_COMPANY_ID": 1}
        invoice_id = portal.ok("crm.invoice.add", {"fields": base})
        portal.ok("crm.invoice.update", {"id": invoice_id, "fields": {"COMMENTS": "c"}})
        portal.ok("crm.invoice.update", {"id": invoice_id, "fields": {"STATUS_ID": "P"}})
        portal.ok("crm.invoice.delete", {"id": invoice_id})
        for event, count in (
            ("ONCRMINVOICEADD", 1),
            ("ONCRMINVOICEUPDATE", 2),
            ("ONCRMINVOICESETSTATUS", 1),
            ("ONCRMINVOICEDELETE", 1),
        ):
            got = app.wait_for(f"/{event}", count)
            assert len(got) == count, event
            assert got[0].form["event"] == event and got[0].form["data[FIELDS][ID]"] == str(invoice_id)
            assert "data[FIELDS][ENTITY_TYPE_ID]" not in got[0].form
        paid = [i for i in sandbox.state()["bitrix24"]["old_invoices"]]
        assert paid == []
