"""Add New Product inside the portal: account-code suggestions as the user types, then one product
in Bitrix24's catalog and one item in Xero."""

from __future__ import annotations

from decimal import Decimal


def _field(app, name: str):
    return app.ui.locator(f'[data-test="field-{name}"]')


def test_add_new_product_suggests_account_codes_and_creates_the_product_in_both(
    open_app, sandbox, acme_connected, shoot
):
    app = open_app(user=1)
    assert app.goto("/app/products/new/") == 200
    app.ui.locator('[data-test="product-form"]').wait_for()
    shoot(app, "form")

    _field(app, "name").fill("Trail Running Shoes")
    assert _field(app, "code").input_value() == "TRAIL-RUNNING-SHOES"  # suggested from the name
    _field(app, "price").fill("129.90")
    _field(app, "currency").select_option("NZD")

    # Typing part of an account's name offers matching codes from Xero's chart of accounts.
    # (Wait for the answer to the whole word: the page fetches on focus and as the user types.)
    with app.page.expect_response(lambda r: "/app/xero/accounts/suggest/" in r.url and "q=Sale" in r.url) as answer:
        _field(app, "account").press_sequentially("Sale")
    assert answer.value.status == 200
    suggestions = app.ui.locator('[data-test="account-suggestion"]')
    # Only accounts whose name contains what was typed (the list on focus had all of them).
    app.frame.wait_for_function(
        """() => { const els = [...document.querySelectorAll('[data-test="account-suggestion"]')];
                   return els.length > 0 && els.every(e => /sale/i.test(e.querySelector('.name').textContent)); }"""
    )
    offered = suggestions.evaluate_all("els => els.map(e => e.dataset.code + ' ' + e.textContent)")
    assert any(o.startswith("200 ") and "Sales" in o for o in offered), offered
    app.ui.locator('[data-test="account-suggestion"][data-code="200"]').click()
    assert _field(app, "account").input_value() == "200"
    assert "200 — Sales" in app.ui.locator('[data-test="account-chosen"]').inner_text()

    _field(app, "tax-type").select_option(index=1)
    tax_type = _field(app, "tax-type").input_value()
    app.ui.locator('[data-test="submit"]').click()

    success = app.ui.locator('[data-test="product-success"]')
    success.wait_for()
    assert app.ui.locator('[data-test="success-name"]').inner_text() == "Trail Running Shoes"
    assert app.ui.locator('[data-test="success-xero-code"]').inner_text() == "TRAIL-RUNNING-SHOES"
    shoot(app, "created")

    state = sandbox.state()
    items = [i for org in state["xero"]["organisations"] for i in org["items"] if i["Code"] == "TRAIL-RUNNING-SHOES"]
    assert len(items) == 1, items
    assert items[0]["Name"] == "Trail Running Shoes"
    assert items[0]["SalesDetails"]["AccountCode"] == "200"
    assert items[0]["SalesDetails"]["TaxType"] == tax_type
    assert Decimal(str(items[0]["SalesDetails"]["UnitPrice"])) == Decimal("129.90")
    products = [p for p in state["bitrix24"]["products"] if p.get("name") == "Trail Running Shoes"]
    assert len(products) == 1, state["bitrix24"]["products"]
    prices = [p for p in state["bitrix24"]["prices"] if p.get("productId") == products[0]["id"]]
    assert [(Decimal(str(p["price"])), p["currency"]) for p in prices] == [(Decimal("129.90"), "NZD")], prices
