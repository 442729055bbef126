"""Sandbox behaviours checked against Bitrix24's documentation (../shared/spec/bitrix24/): each test
names the page it follows. The contract tests (tests/contract/) compare whole documented examples."""

from __future__ import annotations

import pytest
import requests

from tests.sandbox.bitrix24_rest_helpers import Portal


@pytest.fixture
def portal(sandbox) -> Portal:
    return Portal(sandbox)


def test_an_unresolvable_batch_reference_becomes_its_nearest_parent_without_an_error(portal):
    # settings/how-to-call-rest-api/batch.md documents $result[key][field]; a path that is not
    # there ends the walk where it stops, as on a real portal.
    out = portal.ok(
        "batch",
        {
            "halt": 0,
            "cmd": {
                "made": "crm.item.add?entityTypeId=31&fields[title]=First",
                "echo": "crm.item.add?entityTypeId=31&fields[title]=Got $result[made][item][nosuch]",
                "whole": "crm.item.get?entityTypeId=31&id=$result[made][item][id][deeper]",
            },
        },
    )
    assert out["result_error"] == []
    assert out["result"]["echo"]["item"]["title"] == "Got Array"  # the item (an array) written by PHP
    assert out["result"]["whole"]["item"]["id"] == out["result"]["made"]["item"]["id"]


def test_a_payment_is_added_empty_and_takes_its_sum_from_the_rows_added_to_it(portal):
    item = portal.invoice()
    portal.ok(
        "crm.item.productrow.set",
        {"ownerType": "SI", "ownerId": item["id"], "productRows": [{"productName": "A", "price": 30, "quantity": 2}]},
    )
    payment_id = portal.ok("crm.item.payment.add", {"entityTypeId": 31, "entityId": item["id"], "fields": {"sum": 5}})
    assert portal.ok("crm.item.payment.get", {"id": payment_id})["sum"] == 0  # crm-item-payment-add.md
    [row] = portal.ok("crm.item.productrow.list", {"filter": {"=ownerType": "SI", "=ownerId": item["id"]}})[
        "productRows"
    ]
    portal.ok("crm.item.payment.product.add", {"paymentId": payment_id, "rowId": row["id"], "quantity": 2})
    assert portal.ok("crm.item.payment.get", {"id": payment_id})["sum"] == 60.0


def test_product_row_prices_follow_the_documented_example_rounded_step_by_step(portal):
    # crm-item-productrow-add.md: price 80000, taxRate 20, discountRate 20 ->
    # priceExclusive 66666.67, priceNetto 83333.34, priceBrutto 100000.01, discountSum 16666.67.
    item = portal.invoice()
    row = portal.ok(
        "crm.item.productrow.add",
        {
            "fields": {
                "ownerType": "SI",
                "ownerId": item["id"],
                "productName": "iphone 14",
                "price": 80000,
                "quantity": 2,
                "discountTypeId": 2,
                "discountRate": 20,
                "taxRate": 20,
                "taxIncluded": "Y",
            }
        },
    )["productRow"]
    assert (row["priceExclusive"], row["priceNetto"], row["priceBrutto"], row["discountSum"]) == (
        66666.67,
        83333.34,
        100000.01,
        16666.67,
    )


def test_price_types_are_listed_with_the_base_one(portal):
    # catalog/price-type/catalog-price-type-list.md
    page = portal.page("catalog.priceType.list", {"select": ["id", "name", "base", "xmlId"], "filter": {"base": "Y"}})
    assert page["result"]["priceTypes"] == [{"id": 1, "name": "BASE", "base": "Y", "xmlId": "BASE"}]
    assert page["total"] == 1


@pytest.mark.parametrize(
    ("zone", "written"),
    [
        ("Pacific/Honolulu", "2024-07-22T14:00:00-10:00"),
        ("America/Bogota", "2024-07-22T19:00:00-05:00"),
        ("UTC", "2024-07-23T00:00:00+00:00"),
        ("Europe/Berlin", "2024-07-23T02:00:00+02:00"),  # crm-item-update.md's own example
        ("Pacific/Tongatapu", "2024-07-23T13:00:00+13:00"),
    ],
)
def test_date_fields_are_written_as_utc_midnight_in_the_portals_offset(portal, sandbox, zone, written):
    settings = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json={"time_zone": zone}, timeout=10)
    assert settings.json()["time_zone"] == zone
    item = portal.invoice(begindate="2024-07-23")
    assert item["begindate"] == written
    again = portal.ok("crm.item.update", {"entityTypeId": 31, "id": item["id"], "fields": {"begindate": written}})
    assert again["item"]["begindate"] == written  # a value read back and written again keeps its day


def test_an_unknown_time_zone_is_refused_and_a_reset_restores_moscow(sandbox):
    bad = requests.post(
        f"{sandbox.base_url}/_sandbox/bitrix24/settings", json={"time_zone": "Mars/Olympus"}, timeout=10
    )
    assert bad.status_code == 400
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json={"time_zone": "UTC"}, timeout=10)
    sandbox.reset()
    assert requests.get(f"{sandbox.base_url}/_sandbox/bitrix24/settings", timeout=10).json()["time_zone"] == (
        "Europe/Moscow"
    )


def test_a_fault_after_the_handler_applies_the_write_and_loses_the_answer(portal, sandbox):
    sandbox.fault("bitrix24", "POST crm.item.add", status=500, after=True)
    response = portal.call("crm.item.add", {"entityTypeId": 31, "fields": {"title": "Lost"}})
    assert response.status_code == 500
    assert [i["title"] for i in sandbox.state()["bitrix24"]["invoices"]] == ["Lost"]
    bad = requests.post(
        f"{sandbox.base_url}/_sandbox/faults", json={"system": "xero", "match": "PUT /Items", "after": True}, timeout=10
    )
    assert bad.status_code == 400  # "after" needs the status the answer fails with


def test_the_per_method_time_budget_blocks_only_that_method_with_429(portal, sandbox):
    # limits.md: accumulated execution time per method; above the limit the next call is refused
    # with 429 OPERATION_TIME_LIMIT, other methods still work; `time.operating` shows the sum.
    knobs = {"operating": {"limit_s": 1, "cost_s": {"crm.item.list": 0.6}}}
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json=knobs, timeout=10).raise_for_status()
    first = portal.page("crm.item.list", {"entityTypeId": 31})
    assert first["time"]["operating"] == pytest.approx(0.6) and first["time"]["operating_reset_at"] > 0
    portal.page("crm.item.list", {"entityTypeId": 31})  # 0.6 <= 1 before it runs
    blocked = portal.error("crm.item.list", {"entityTypeId": 31}, 429, "OPERATION_TIME_LIMIT")
    assert blocked["error_description"]
    assert portal.page("crm.item.fields", {"entityTypeId": 31})["time"]["operating"] < 0.5
    # Inside a batch the command is refused on its own; the outer batch is not counted.
    out = portal.ok("batch", {"halt": 0, "cmd": {"l": "crm.item.list?entityTypeId=31"}})
    assert out["result_error"]["l"]["error"] == "OPERATION_TIME_LIMIT"


def test_a_method_outside_the_apps_scopes_is_refused_with_insufficient_scope(portal, sandbox):
    # settings/oauth/error-codes.md, and the batch page's per-command error example.
    knobs = {"scope": "crm,user"}
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json=knobs, timeout=10).raise_for_status()
    portal.ok("crm.item.list", {"entityTypeId": 31})
    portal.error("catalog.catalog.list", {}, 401, "insufficient_scope")
    out = portal.ok("batch", {"halt": 0, "cmd": {"c": "catalog.vat.list", "i": "crm.item.list?entityTypeId=31"}})
    assert out["result_error"]["c"]["error"] == "insufficient_scope" and "i" in out["result"]
    assert portal.ok("app.info") is not None  # basic methods need no scope


def test_a_xero_token_without_the_scope_of_a_resource_is_refused(sandbox, monkeypatch):
    from tests.sandbox import openapi

    # Scopes are additive per grant, so this is the client's first consent in the reset sandbox.
    monkeypatch.setattr(openapi, "SCOPES", "offline_access accounting.contacts.read")
    limited = openapi.XeroClient.connect(sandbox)
    assert limited.get("/Contacts").status_code == 200
    refused = limited.put("/Contacts", json={"Contacts": [{"Name": "No scope Ltd"}]})
    assert refused.status_code == 401 and "insufficient_scope" in refused.headers["WWW-Authenticate"]
    assert limited.get("/Invoices").status_code == 401
