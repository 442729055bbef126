"""An invoice that never reached Xero shows its last outcome in the list: "Failed" with the reason."""

from __future__ import annotations

from playwright.sync_api import expect

from sync.models import InvoiceLink, SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.push import invoices_push_pending
from tests.browser.test_invoices import _rest


def test_a_failed_never_linked_invoice_shows_failed_with_its_reason(open_app, sandbox, acme_connected, shoot):
    ready = acme_connected
    SyncSettings.objects.filter(portal=ready).update(setup_completed=True)
    ann = sandbox.bitrix24_user("Ann Two", admin=True)
    # No company and no contact: Xero needs a customer, so the push fails for good.
    item = _rest(
        sandbox, ann, "crm.item.add", {"entityTypeId": 31, "fields": {"title": "Order 13", "currencyId": "NZD"}}
    )
    invoice_id = int(item["item"]["id"])
    rows = [{"productName": "Socks", "price": 100, "quantity": 1}]  # rows, so the customer is what fails
    _rest(sandbox, ann, "crm.item.productrow.set", {"ownerType": "SI", "ownerId": invoice_id, "productRows": rows})
    invoices_push_request(portal=ready, invoice_ids=[invoice_id], requested_by=1)
    invoices_push_pending(portal_id=ready.pk)
    assert not InvoiceLink.objects.filter(portal=ready, bitrix24_id=invoice_id, xero_invoice_id__isnull=False).exists()

    app = open_app(user=1)
    row = app.ui.locator(f'[data-test="invoice-row"][data-invoice-id="{invoice_id}"]')
    expect(row).to_have_attribute("data-link-state", "failed")
    expect(row.locator('[data-test="link-state"] .badge')).to_have_text("Failed")
    expect(row.locator('[data-test="link-error"]')).to_contain_text("Xero needs a customer")
    shoot(app, "failed-never-linked")
