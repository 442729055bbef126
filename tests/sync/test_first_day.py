"""The first day (issue 12), in one test: install, connect Xero, invoices made before Setup wait; the
admin accepts Setup unchanged; the waiting invoice goes, then a 15% GST invoice, a 0% invoice and a
move to Paid all reach Xero. Everything runs for real: sandbox portal events, our web server, a Celery worker."""

from __future__ import annotations

import re
import time

import pytest

from accounts.services.sandbox import sandbox_connect_xero
from bench._forms import form_as_shown
from sync.models import InboxEvent, InvoiceLink, StageMapping, SyncSettings
from sync.services.gate import invoices_waiting_for_setup
from tests.accounts.conftest import open_frame
from tests.sync.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def xero_invoices(sandbox, portal) -> dict[str, dict]:
    tenant = portal.xero_connection.tenant_id
    org = next(o for o in sandbox.state()["xero"]["organisations"] if o["tenant_id"] == tenant)
    return {inv["Reference"]: inv for inv in org["invoices"]}


def new_invoice(b24, company_id: int, title: str, tax_rate: float | None) -> int:
    item = b24.call(
        "crm.item.add", {"entityTypeId": 31, "fields": {"title": title, "companyId": company_id, "currencyId": "NZD"}}
    )
    invoice_id = int(item["item"]["id"])
    row = {"productName": "Merino socks", "price": 115.0, "quantity": 2}
    if tax_rate is not None:
        row.update({"taxRate": tax_rate, "taxIncluded": "Y"})
    b24.call("crm.item.productrow.set", {"ownerType": "SI", "ownerId": invoice_id, "productRows": [row]})
    b24.update_invoice(invoice_id, title=title)  # a save after the rows, as the invoice form does
    return invoice_id


def test_first_day_install_connect_accept_setup_unchanged_then_invoices_sync(acme, app_url, sandbox, b24, worker):
    sandbox_connect_xero(portal=acme)
    company_id = b24.call("crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})

    # Before Setup: the event arrives and is kept, nothing goes to Xero.
    early = new_invoice(b24, company_id, "Before setup", None)
    wait_for(
        lambda: InboxEvent.objects.exists() and not InboxEvent.objects.exclude(status=InboxEvent.Status.DONE).exists(),
        what="the early invoice's events to be processed",
    )
    assert invoices_waiting_for_setup(acme) == 1
    admin = open_frame(sandbox, 1)
    invoices_page = admin.get(f"{app_url}/app/invoices/").text
    assert "1 invoice is waiting for Setup." in invoices_page
    time.sleep(1)
    assert xero_invoices(sandbox, acme) == {}

    # The admin lands on Setup and saves it unchanged.
    setup = admin.get(f"{app_url}/app/setup/")
    assert setup.status_code == 200 and "Nothing is sent to Xero automatically" in setup.text
    data = form_as_shown(setup.text)
    paid_stage = StageMapping.objects.get(
        portal=acme, category_id=StageMapping.objects.first().category_id, semantics="S"
    )
    assert data[f"stage:{paid_stage.stage_id}"] == "PAID"  # proposed: a bank account exists
    assert data["record_payment_on_paid"] == "on" and data["payment_account_code"] == "090"
    assert not any(value in ("VOIDED", "DELETED") for key, value in data.items() if key.startswith("stage:"))
    saved = admin.http.post(f"{app_url}/app/setup/", data=data, timeout=30)
    assert saved.status_code == 200 and "Settings saved" in saved.text, re.findall(
        r'data-test="setup-problems".*?</div>|<ul class="st-error".*?</ul>', saved.text, re.S
    )
    assert SyncSettings.objects.get(portal=acme).setup_completed

    # The waiting invoice is released and pushed.
    wait_for(lambda: "Before setup" in xero_invoices(sandbox, acme), timeout=30, what="the held invoice in Xero")
    assert invoices_waiting_for_setup(acme) == 0

    # Then, with Setup as it was proposed: a 15 % GST invoice, a 0 % invoice and a move to Paid.
    new_invoice(b24, company_id, "GST 15", 15)
    new_invoice(b24, company_id, "Zero rated", 0)
    b24.update_invoice(early, stageId=paid_stage.stage_id)
    wait_for(
        lambda: (
            {"GST 15", "Zero rated"} <= set(xero_invoices(sandbox, acme))
            and xero_invoices(sandbox, acme)["Before setup"]["Status"] == "PAID"
        ),
        timeout=40,
        what="both taxed invoices in Xero and the moved one PAID",
    )
    pushed = xero_invoices(sandbox, acme)
    assert float(pushed["GST 15"]["TotalTax"]) == 30.0 and float(pushed["Zero rated"]["TotalTax"]) == 0.0
    assert InvoiceLink.objects.get(portal=acme, bitrix24_id=early).xero_invoice_id
