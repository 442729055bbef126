"""Setup (the stage map and invoice defaults) and the two imports from Xero, inside the portal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from sync.models import StageMapping, SyncSettings, XeroStatusMapping

SENT = "DT31_3:S"
PAID = "DT31_3:P"


def test_an_admin_is_sent_to_setup_first_and_setup_saves_the_map(open_app, acme_connected, shoot):
    SyncSettings.objects.filter(portal=acme_connected).update(setup_completed=False)  # a portal never set up
    app = open_app(user=1)
    assert app.status == 200
    assert "/app/setup/" in app.frame.url  # Setup was never saved on this portal
    form = app.ui.locator('[data-test="setup-form"]')
    assert form.locator('[data-test="stage-select"]').count() == 4
    shoot(app, "form")

    # "Sent to client" -> SUBMITTED (the default is AUTHORISED); Xero's AUTHORISED -> "Sent to client".
    form.locator(f'[data-test="stage-select"][data-stage-id="{SENT}"]').select_option("SUBMITTED")
    form.locator('[data-test="xero-select"][data-xero-status="AUTHORISED"]').select_option(SENT)
    form.locator('[data-test="setup-account"]').select_option("200")
    form.locator('[data-test="setup-tax-type"]').select_option("OUTPUT2")
    form.locator('[data-test="setup-currency"]').select_option("NZD")
    with app.frame.expect_navigation():
        form.locator('[data-test="setup-save"]').click()
    app.ui.locator('[data-test="setup-saved"]').wait_for()

    portal = acme_connected
    assert StageMapping.objects.get(portal=portal, stage_id=SENT).xero_status == "SUBMITTED"
    assert StageMapping.objects.get(portal=portal, stage_id=PAID).xero_status == "PAID"  # untouched
    assert XeroStatusMapping.objects.get(portal=portal, xero_status="AUTHORISED").stage_id == SENT
    saved = SyncSettings.objects.get(portal=portal)
    assert (saved.setup_completed, saved.default_account_code, saved.default_tax_type, saved.default_currency) == (
        True,
        "200",
        "OUTPUT2",
        "NZD",
    )
    # The page shows what was stored.
    assert form.locator(f'[data-test="stage-select"][data-stage-id="{SENT}"]').input_value() == "SUBMITTED"
    shoot(app, "saved")

    # Setup done: the app now opens on the invoices.
    again = open_app(user=1)
    assert again.status == 200 and "/app/invoices/" in again.frame.url


def _xero_create(sandbox, key: str, rows: list[dict]) -> None:
    created = sandbox._call("POST", f"/_sandbox/xero/{key.lower()}", json={key: rows})
    assert created["failed"] == 0, created


def _import(app, kind: str, button: str) -> dict:
    """Press an import button and wait for its run to end; the run's counts as the page shows them."""
    app.ui.locator(f'[data-test="{button}"]').click()
    run = app.ui.locator(f'[data-test="import-progress"][data-kind="{kind}"]').first
    status = run.locator('[data-test="import-status"]')
    try:
        status.filter(has_text="Done").wait_for(timeout=30_000)
    except PlaywrightTimeout:
        pytest.fail(f"the {kind} run did not finish within 30 s; it shows: {run.inner_text()!r}")
    return {
        name: int(run.locator(f'[data-test="import-{name}"]').inner_text())
        for name in ("created", "updated", "skipped", "failed")
    }


def test_both_imports_bring_xero_contacts_and_items_into_bitrix24(
    open_app, sandbox, acme_connected, celery_worker, shoot
):
    _xero_create(
        sandbox,
        "Contacts",
        [
            {"Name": "Harbourview Dental Group", "EmailAddress": "accounts@harbourview.example"},
            {"Name": "Old Customer", "ContactStatus": "ARCHIVED"},
        ],
    )
    _xero_create(
        sandbox,
        "Items",
        [
            {
                "Code": "BEANS-1KG",
                "Name": "Single-origin beans 1 kg",
                "SalesDetails": {"UnitPrice": 38.0, "AccountCode": "200"},
            }
        ],
    )
    app = open_app(user=1)
    assert app.goto("/app/import/") == 200

    # Harbourview has no sales invoice in Xero yet (not IsCustomer): "also others" brings it in.
    app.ui.locator('[data-test="import-contacts-all"]').check()
    contacts = _import(app, "import_contacts", "import-contacts")
    assert contacts == {"created": 1, "updated": 0, "skipped": 1, "failed": 0}
    app.ui.locator('[data-test="import-currency"]').select_option("NZD")
    items = _import(app, "import_items", "import-items")
    assert items == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}
    shoot(app, "done")

    state = sandbox.state()["bitrix24"]
    assert [c["TITLE"] for c in state["companies"]] == ["Harbourview Dental Group"]
    products = [p for p in state["products"] if p["name"] == "Single-origin beans 1 kg"]
    assert len(products) == 1, state["products"]
    prices = [(Decimal(str(p["price"])), p["currency"]) for p in state["prices"] if p["productId"] == products[0]["id"]]
    assert prices == [(Decimal("38"), "NZD")]
