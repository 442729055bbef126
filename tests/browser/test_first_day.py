"""The first day in the portal (issue 12), in one browser session to keep the suite fast:

install → the admin opens the app (Setup first) → connects Xero from the app's frame (the Xero window
keeps `window.opener`, so the frame updates without a reload) → an invoice made meanwhile waits for
Setup → Setup accepted unchanged (Paid → PAID with the proposed bank account; no VOIDED by default;
choosing VOIDED shows the warning) → the invoice goes to Xero and a move to Paid is paid in Xero →
the invoice page shows line totals, the invoice total and Xero's total, paid and due → the list
keeps its state → select-all works on a phone → the frame grows and shrinks with its content.
Every page visited passes the WCAG AA contrast check; screenshots at 360/768/1280 px.
"""

from __future__ import annotations

import pytest

from accounts.models import XeroConnection
from sync.models import InboxEvent, StageMapping, SyncSettings
from sync.services.gate import invoices_waiting_for_setup
from tests.browser.conftest import low_contrast
from tests.sync.conftest import Bitrix24Sandbox, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _xero_invoices(sandbox, portal) -> dict[str, dict]:
    tenant = XeroConnection.objects.get(portal=portal).tenant_id
    org = next(o for o in sandbox.state()["xero"]["organisations"] if o["tenant_id"] == tenant)
    return {inv["Reference"]: inv for inv in org["invoices"]}


def _frame_height(app) -> int:
    return app.page.evaluate("() => document.getElementById('b24-app').getBoundingClientRect().height")


def _fitted(app) -> int:
    """Wait until the frame is as tall as the app's content (BX24.resizeWindow), return the height."""
    want = app.frame.evaluate("() => Math.ceil(document.body.getBoundingClientRect().height)")
    # The sandbox portal gives the frame a min-height (600 px), as Bitrix24's layout does.
    app.page.wait_for_function(
        """h => { const f = document.getElementById('b24-app');
                  const floor = parseFloat(getComputedStyle(f).minHeight) || 0;
                  return Math.abs(f.getBoundingClientRect().height - Math.max(h, floor)) <= 2; }""",
        arg=want,
    )
    return _frame_height(app)


def _contrast_ok(app, where: str) -> None:
    bad = low_contrast(app)
    assert not bad, f"{where}: text below WCAG AA contrast: {bad}"


def test_the_first_day_from_install_to_paid_in_xero(open_app, sandbox, acme, celery_worker, shoot):
    rita = sandbox.bitrix24_user("Rita Sales", admin=False, invoices="all")
    b24 = Bitrix24Sandbox(sandbox, rita)

    # 1. The admin opens the app: Setup first, which asks for Xero.
    app = open_app(user=1)
    assert app.status == 200 and "/app/setup/" in app.frame.url
    assert app.ui.locator('[data-test="setup-xero-missing"]').is_visible()
    _contrast_ok(app, "Setup without Xero")

    # 2. Connect Xero from the frame. The Xero window keeps window.opener (COOP), tells the frame,
    #    and the frame shows the organisation without the user reloading anything.
    assert app.goto("/app/") == 200
    assert app.ui.locator("#xero-status").get_attribute("data-status") == "not_connected"
    with app.page.expect_popup() as opened:
        app.ui.locator('[data-test="xero-connect"]').click()
    popup = opened.value
    popup.wait_for_load_state()
    popup.wait_for_url("**/xero/callback/**")
    assert "Connected to" in popup.inner_text("body")
    assert popup.evaluate("() => window.opener !== null"), "the Xero window lost window.opener (COOP)"
    app.ui.locator('#xero-status[data-status="active"]').wait_for(timeout=10_000)
    tenant = XeroConnection.objects.get(portal=acme).tenant_name
    assert tenant in app.ui.locator('[data-test="xero-tenant-name"]').inner_text()
    assert app.ui.locator('[data-test="xero-switch-warning"]').is_visible()
    popup.close()
    _contrast_ok(app, "connection page")
    shoot(app, "connected")

    # 3. A sales rep's invoice before Setup: the event is kept, nothing goes to Xero.
    company_id = b24.call("crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})
    item = b24.call(
        "crm.item.add",
        {"entityTypeId": 31, "fields": {"title": "First order", "companyId": company_id, "currencyId": "NZD"}},
    )
    invoice_id = int(item["item"]["id"])
    b24.call(
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": invoice_id,
            "productRows": [
                {"productName": "Merino socks", "price": 1234.5, "quantity": 2},
                {"productName": "Rain jacket", "price": 189, "quantity": 1},
            ],
        },
    )
    b24.update_invoice(invoice_id, title="First order")
    wait_for(lambda: invoices_waiting_for_setup(acme) == 1, what="the invoice held for Setup")
    wait_for(lambda: not InboxEvent.objects.exclude(status=InboxEvent.Status.DONE).exists(), what="events processed")
    assert app.goto("/app/invoices/") == 200
    assert "1 invoice is waiting for Setup." in app.ui.locator('[data-test="setup-waiting"]').inner_text()
    assert _xero_invoices(sandbox, acme) == {}
    amount = app.ui.locator(f'#invoice-{invoice_id} [data-test="cell-amount"]').inner_text()
    assert amount == "2,658.00\u00a0NZD", amount  # grouped, with the currency
    _contrast_ok(app, "invoice list before Setup")

    # 4. Setup, accepted unchanged: Paid → PAID with the proposed bank account; nothing voids by default.
    assert app.goto("/app/setup/") == 200
    paid = StageMapping.objects.get(portal=acme, semantics="S", category_id=StageMapping.objects.first().category_id)
    failed = StageMapping.objects.filter(portal=acme, semantics="F", category_id=paid.category_id).first()
    assert app.ui.locator(f'select[name="stage:{paid.stage_id}"]').input_value() == "PAID"
    assert app.ui.locator('[data-test="setup-payment-account"]').input_value() == "090"
    assert app.ui.locator('[data-test="setup-record-payment"]').is_checked()
    statuses = app.ui.locator('[data-test="stage-select"]').evaluate_all("els => els.map(e => e.value)")
    assert "VOIDED" not in statuses and "DELETED" not in statuses
    # Choosing VOIDED shows that Xero cannot undo it; the choice is put back before saving.
    failure_select = app.ui.locator(f'select[name="stage:{failed.stage_id}"]')
    warning = app.ui.locator(f'li[data-stage-id="{failed.stage_id}"] [data-test="stage-irreversible"]')
    assert not warning.is_visible()
    failure_select.select_option("VOIDED")
    assert warning.is_visible() and "cannot undo" in warning.inner_text()
    failure_select.select_option("")
    _contrast_ok(app, "Setup")
    setup_height = _fitted(app)
    shoot(app, "setup")
    with app.frame.expect_navigation():
        app.ui.locator('[data-test="setup-save"]').click()
    assert app.ui.locator('[data-test="setup-saved"]').is_visible()
    assert SyncSettings.objects.get(portal=acme).setup_completed

    # 5. The held invoice goes; a move to Paid records the payment and Xero says PAID.
    wait_for(lambda: "First order" in _xero_invoices(sandbox, acme), timeout=30, what="the held invoice in Xero")
    b24.update_invoice(invoice_id, stageId=paid.stage_id)
    wait_for(lambda: _xero_invoices(sandbox, acme)["First order"]["Status"] == "PAID", timeout=30, what="PAID in Xero")

    # 6. The invoice page: line totals, the invoice total, and Xero's figures.
    assert app.goto("/app/invoices/", size="10", order="asc") == 200
    with app.frame.expect_navigation():
        app.ui.locator(f'#invoice-{invoice_id} [data-test="cell-number"] a').click()
    totals = app.ui.locator('[data-test="line-total"]').all_inner_texts()
    assert totals == ["2,469.00\u00a0NZD", "189.00\u00a0NZD"]
    assert app.ui.locator('[data-test="invoice-total"]').inner_text() == "2,658.00\u00a0NZD"
    xero = _xero_invoices(sandbox, acme)["First order"]
    assert app.ui.locator('[data-test="xero-total"]').inner_text() == f"{float(xero['Total']):,.2f}\u00a0NZD"
    assert app.ui.locator('[data-test="xero-amount-paid"]').inner_text() == f"{float(xero['Total']):,.2f}\u00a0NZD"
    assert app.ui.locator('[data-test="xero-amount-due"]').inner_text() == "0.00\u00a0NZD"
    _contrast_ok(app, "invoice page")
    shoot(app, "invoice")

    # 7. Back to the list: its page size and sort are kept, also when coming back through the menu.
    with app.frame.expect_navigation():
        app.ui.locator('[data-test="back-to-list"]').click()
    assert "size=10" in app.frame.url and "order=asc" in app.frame.url
    assert app.ui.locator('[data-test="filter-size"]').input_value() == "10"
    with app.frame.expect_navigation():
        app.ui.locator('[data-test="nav-setup"]').click()
    with app.frame.expect_navigation():
        app.ui.locator('[data-test="nav-invoices"]').click()
    assert app.ui.locator('[data-test="filter-size"]').input_value() == "10"
    assert app.ui.locator('[data-test="sort-modified"]').get_attribute("data-order") == "asc"
    _contrast_ok(app, "invoice list")

    # 8. The frame shrinks after the long Setup page, and fits the list.
    list_height = _fitted(app)
    assert list_height < setup_height, (list_height, setup_height)

    # 9. On a phone the table's header is hidden; the toolbar's "Select all" selects every row.
    app.page.set_viewport_size({"width": 360, "height": 800})
    header_box = app.ui.locator('[data-test="select-all"]')
    narrow = app.ui.locator('[data-test="select-all-narrow"]')
    narrow.wait_for(state="visible")
    assert not header_box.is_visible()
    narrow.check()
    rows = app.ui.locator('[data-test="row-select"]')
    assert rows.count() >= 1 and all(rows.nth(i).is_checked() for i in range(rows.count()))
    assert app.ui.locator('[data-test="selected-count"]').inner_text() == str(rows.count())
    _contrast_ok(app, "invoice list on a phone")
    app.page.set_viewport_size({"width": 1280, "height": 800})
    shoot(app, "list")

    # 10. The other pages meet AA too (log, import, add product, reconciliation, preview).
    for path in (
        "/app/log/",
        "/app/import/",
        "/app/products/new/",
        "/app/reconcile/",
        f"/app/invoices/{invoice_id}/preview/",
    ):
        assert app.goto(path) == 200, path
        _contrast_ok(app, path)
