"""Drift, reconciliation and the preview in the browser: the "Changed in Xero" badge in the list, the
side-by-side diff on the invoice page, accepting Xero's version, the online invoice link with its copy
button, the reconciliation page and the preview panel (screenshots at 360 and 1280 px).

The invoices are pushed and Xero's change pulled by calling the services in this process (what the
worker's tasks run), so no worker is needed; the pages are the real ones in the portal's frame."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sync.models import InvoiceLink, SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.pull import statuses_pull_recent
from sync.services.push import invoices_push_pending
from sync.services.reconcile import reconcile_portal

SENT = "DT31_3:S"


def _rest(sandbox, user: dict, method: str, params: dict):
    answer = sandbox.bitrix24_rest(method, params, auth=user["access_token"])
    assert "error" not in answer, answer
    return answer["result"]


@pytest.fixture
def drifted(sandbox, acme_connected):
    """Two invoices in Xero; one of them (38.00) edited in Xero to 999.00 and pulled back."""
    portal = acme_connected
    SyncSettings.objects.filter(portal=portal).update(setup_completed=True)
    ann = sandbox.bitrix24_user("Ann Manager", admin=True)
    company = _rest(sandbox, ann, "crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})
    ids = []
    for title, price in (("Order 13", "38.00"), ("Order 14", "120.00")):
        fields = {"title": title, "stageId": SENT, "currencyId": "NZD", "companyId": company}
        invoice_id = int(_rest(sandbox, ann, "crm.item.add", {"entityTypeId": 31, "fields": fields})["item"]["id"])
        rows = [{"productName": f"{title} goods", "price": price, "quantity": 1}]
        _rest(sandbox, ann, "crm.item.productrow.set", {"ownerType": "SI", "ownerId": invoice_id, "productRows": rows})
        ids.append(invoice_id)
    invoices_push_request(portal=portal, invoice_ids=ids, requested_by=None)
    invoices_push_pending(portal_id=portal.pk)
    link = InvoiceLink.objects.get(portal=portal, bitrix24_id=ids[0])
    line = {
        "Description": "Order 13 goods",
        "Quantity": 1,
        "UnitAmount": "999.00",
        "AccountCode": "200",
        "TaxType": "NONE",
    }
    sandbox._call("POST", f"/_sandbox/xero/invoices/{link.xero_invoice_id}/edit", json={"LineItems": [line]})
    statuses_pull_recent(portal=portal, trigger="button")
    assert InvoiceLink.objects.get(pk=link.pk).drift
    return portal, ids


def test_drift_badge_diff_and_accept(open_app, drifted, shoot):
    portal, (changed, unchanged) = drifted
    app = open_app(user=1)
    assert app.status == 200
    expect(app.ui.locator(f'#invoice-{changed} [data-test="drift-badge"]')).to_have_text("Changed in Xero")
    assert app.ui.locator(f'#invoice-{unchanged} [data-test="drift-badge"]').count() == 0
    shoot(app, "list")

    assert app.goto(f"/app/invoices/{changed}/") == 200
    rows = app.ui.locator('[data-test="drift-row"]')
    unit = app.ui.locator('[data-test="drift-row"][data-field="LineItems[0].UnitAmount"]')
    expect(unit.locator('[data-test="drift-bitrix24"]')).to_have_text("38.00")
    expect(unit.locator('[data-test="drift-xero"]')).to_have_text("999.00")
    assert rows.count() >= 2
    shoot(app, "diff")

    app.ui.locator('[data-test="drift-accept"]').click()
    expect(app.ui.locator('[data-test="action-message"]')).to_contain_text("Xero's version is kept")
    expect(app.ui.locator('[data-test="drift-row"]')).to_have_count(0)
    expect(app.ui.locator('[data-test="drift-accepted"]')).to_be_visible()
    assert InvoiceLink.objects.get(portal=portal, bitrix24_id=changed).xero_accepted_hash


def test_reconciliation_page_and_preview(open_app, drifted, shoot):
    portal, (changed, unchanged) = drifted
    reconcile_portal(portal=portal, trigger="button")
    app = open_app(user=1)
    assert app.goto("/app/reconcile/") == 200
    expect(app.ui.locator('[data-test="kind-content"]')).to_have_attribute("data-count", "1")
    expect(app.ui.locator(f'[data-test="reconcile-row"][data-invoice-id="{changed}"]')).to_be_visible()
    shoot(app, "reconcile")
    app.ui.locator('[data-test="kind-contact"]').click()
    expect(app.ui.locator('[data-test="reconcile-row"]')).to_have_count(0)

    assert app.goto(f"/app/invoices/{unchanged}/preview/") == 200
    expect(app.ui.locator('[data-test="preview"]')).to_have_attribute("data-action-kind", "nothing")
    expect(app.ui.locator('[data-test="preview-xero-total"]')).to_have_text("120.00")
    expect(app.ui.locator('[data-test="preview-contact-state"]')).to_have_text("existing")
    expect(app.ui.locator('[data-test="preview-tax-type"]')).to_have_text("NONE")
    shoot(app, "preview")
