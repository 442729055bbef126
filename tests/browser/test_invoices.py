"""The Invoices page inside the portal: what each user sees, paging, page size, the date filter, and
the two buttons ("Create / Edit on Xero", "Update from Xero") changing the sandbox's state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from sync.models import InvoiceLink, SyncSettings

SENT = "DT31_3:S"  # "Sent to client": pushed to Xero as AUTHORISED by the default stage map
PAID = "DT31_3:P"  # the success stage: where PAID in Xero lands


@dataclass
class Invoices:
    """Twelve invoices "Order 01".."Order 12" (ids in that order); Owen ("own" invoices only) is
    responsible for Order 01..03; Order 11 and 12 have product rows and a customer, for Xero."""

    ids: dict[str, int]
    owen: dict
    mine: list[str]


def _rest(sandbox, user: dict, method: str, params: dict):
    answer = sandbox.bitrix24_rest(method, params, auth=user["access_token"])
    assert "error" not in answer, answer
    return answer["result"]


@pytest.fixture
def invoices(sandbox) -> Invoices:
    """Made before the app is installed (no events reach us), so only the buttons move them to Xero."""
    ann = sandbox.bitrix24_user("Ann Manager", admin=True)
    owen = sandbox.bitrix24_user("Owen Own", admin=False, invoices="own")
    company = _rest(sandbox, ann, "crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})
    ids = {}
    for n in range(1, 13):
        title = f"Order {n:02d}"
        fields = {"title": title, "stageId": SENT, "currencyId": "NZD", "companyId": company}
        if n <= 3:
            fields["assignedById"] = owen["id"]
        item = _rest(sandbox, ann, "crm.item.add", {"entityTypeId": 31, "fields": fields})
        ids[title] = int(item["item"]["id"])
    for title, price in (("Order 11", "24.90"), ("Order 12", "189.00")):
        rows = [{"productName": f"{title} goods", "price": price, "quantity": 2}]
        _rest(sandbox, ann, "crm.item.productrow.set", {"ownerType": "SI", "ownerId": ids[title], "productRows": rows})
    return Invoices(ids=ids, owen=owen, mine=["Order 01", "Order 02", "Order 03"])


@pytest.fixture
def ready(invoices, acme_connected):
    """The portal installed after the invoices exist, Xero connected, Setup done (the app opens on Invoices)."""
    SyncSettings.objects.filter(portal=acme_connected).update(setup_completed=True)
    return acme_connected


def _titles(app) -> list[str]:
    return app.ui.locator('[data-test="invoice-row"] [data-test="cell-title"]').all_inner_texts()


def _summary(app) -> str:
    return app.ui.locator('[data-test="pager-summary"]').inner_text()


def _show(app, **fields) -> None:
    """Fill the filter form (from, to, size) and press Show; wait for the new list."""
    form = app.ui.locator('[data-test="filters"]')
    for name, value in fields.items():
        target = form.locator(f'[data-test="filter-{name}"]')
        if name == "size":
            target.select_option(str(value))
        else:
            target.fill(value)
    with app.frame.expect_navigation():
        form.locator('[data-test="filter-apply"]').click()


def test_paging_page_size_and_the_date_filter(open_app, invoices, ready, shoot):
    app = open_app(user=1)
    assert app.status == 200
    assert "/app/invoices/" in app.frame.url

    # All twelve fit on the default page, newest first.
    assert _titles(app) == [f"Order {n:02d}" for n in range(12, 0, -1)]
    assert app.ui.locator('[data-test="pager-next"]').count() == 0
    shoot(app, "list")

    _show(app, size=10)
    assert _titles(app) == [f"Order {n:02d}" for n in range(12, 2, -1)]
    assert re.sub(r"\s+", " ", _summary(app)) == "1–10 of 12"
    with app.frame.expect_navigation():
        app.ui.locator('[data-test="pager-next"]').click()
    assert _titles(app) == ["Order 02", "Order 01"]
    assert _summary(app) == "11–12 of 12"
    assert app.ui.locator('[data-test="filter-size"]').input_value() == "10"  # the size is kept
    with app.frame.expect_navigation():
        app.ui.locator('[data-test="pager-prev"]').click()
    assert len(_titles(app)) == 10

    # Every invoice was changed today: a range around today shows them all, one that ended before shows none.
    today = datetime.now(UTC).date()
    _show(app, **{"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()})
    assert app.ui.locator('[data-test="invoice-list"]').get_attribute("data-total") == "12"
    assert len(_titles(app)) == 10
    _show(app, **{"from": (today - timedelta(days=30)).isoformat(), "to": (today - timedelta(days=2)).isoformat()})
    assert _titles(app) == []
    assert "No invoices changed in this period" in app.ui.locator('[data-test="empty-state"]').inner_text()
    shoot(app, "filtered-empty")


def test_a_user_with_own_invoices_only_sees_only_theirs(open_app, invoices, ready, shoot):
    app = open_app(user=invoices.owen["id"])
    assert app.status == 200

    assert sorted(_titles(app)) == invoices.mine
    assert app.ui.locator('[data-test="invoice-list"]').get_attribute("data-total") == "3"
    shoot(app, "list")

    # Someone else's invoice, asked for by its address: refused, and nothing of it is shown.
    assert app.goto(f"/app/invoices/{invoices.ids['Order 12']}/") == 403
    assert "Order 12" not in app.frame.content()
    # One of theirs opens.
    assert app.goto(f"/app/invoices/{invoices.ids['Order 02']}/") == 200
    assert "Order 02" in app.text()
    shoot(app, "detail")


def _xero_invoices(sandbox, portal) -> dict[str, dict]:
    tenant = portal.xero_connection.tenant_id
    org = next(o for o in sandbox.state()["xero"]["organisations"] if o["tenant_id"] == tenant)
    return {inv["InvoiceID"]: inv for inv in org["invoices"]}


def _stage(sandbox, invoice_id: int) -> str:
    return next(i for i in sandbox.state()["bitrix24"]["invoices"] if i["id"] == invoice_id)["stageId"]


def _finished(app) -> None:
    """Wait until the action panel says the click's jobs are done; fail with what it shows instead."""
    message = app.ui.locator('[data-test="action-message"]')
    try:
        message.filter(has_text=re.compile(r"^(Finished|Updated from Xero)")).wait_for(timeout=30_000)
    except PlaywrightTimeout:
        panel = app.ui.locator('[data-test="actions"]').inner_text()
        pytest.fail(f"the jobs did not finish within 30 s; the action panel shows: {panel!r}")
    # "Update from Xero" says what it changed ("Updated from Xero: INV-4 → Paid."); no failures either way.
    text = message.inner_text()
    assert text == "Finished." or (text.startswith("Updated from Xero: ") and "failure" not in text), text


def test_create_on_xero_then_update_from_xero(open_app, sandbox, invoices, ready, celery_worker, shoot):
    app = open_app(user=1)
    assert app.status == 200
    assert _xero_invoices(sandbox, ready) == {}

    # "Create / Edit on Xero" for the two selected invoices.
    chosen = [invoices.ids["Order 11"], invoices.ids["Order 12"]]
    for invoice_id in chosen:
        app.ui.locator(f'#invoice-{invoice_id} [data-test="row-select"]').check()
    assert app.ui.locator('[data-test="selected-count"]').inner_text() == "2"
    app.ui.locator('[data-test="push-selected"]').click()
    _finished(app)

    links = {link.bitrix24_id: link for link in InvoiceLink.objects.filter(portal=ready)}
    assert sorted(links) == sorted(chosen)
    in_xero = _xero_invoices(sandbox, ready)
    assert sorted(in_xero) == sorted(str(link.xero_invoice_id) for link in links.values())
    totals = {bid: Decimal(str(in_xero[str(link.xero_invoice_id)]["Total"])) for bid, link in links.items()}
    assert totals[invoices.ids["Order 11"]] == Decimal("49.80")
    assert totals[invoices.ids["Order 12"]] == Decimal("378.00")
    assert {inv["Status"] for inv in in_xero.values()} == {"AUTHORISED"}
    for invoice_id in chosen:  # the page refreshes the rows in place after "Finished."
        expect(app.ui.locator(f"#invoice-{invoice_id}")).to_have_attribute("data-link-state", "linked")
    assert app.ui.locator(f"#invoice-{invoices.ids['Order 10']}").get_attribute("data-link-state") == "unlinked"
    shoot(app, "pushed")

    # Order 12 is paid in Xero; "Update from Xero" moves it to the paid stage in Bitrix24.
    paid = links[invoices.ids["Order 12"]]
    sandbox.xero_pay(str(paid.xero_invoice_id))
    assert _stage(sandbox, invoices.ids["Order 12"]) == SENT
    app.ui.locator('[data-test="pull"]').click()
    _finished(app)
    assert _stage(sandbox, invoices.ids["Order 12"]) == PAID
    assert _stage(sandbox, invoices.ids["Order 11"]) == SENT
    stage_cell = app.ui.locator(f'#invoice-{invoices.ids["Order 12"]} [data-test="cell-stage"]')
    expect(stage_cell).to_have_attribute("data-stage-id", PAID)
    expect(stage_cell).to_have_text("Paid")
