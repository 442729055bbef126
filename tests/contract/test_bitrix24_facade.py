"""The Bitrix24 facade (integrations/bitrix24/api) against the sandbox portal over HTTP.

1. **Documented answers read right.** For each typed command, the sandbox serves the response
   example of the method's page in Bitrix24's docs (../shared/spec/bitrix24/) verbatim, and the
   facade's parser must turn it into the dataclasses with the documented values (ids as ints, money
   as exact Decimals, "Y"/"N" as booleans).
2. **Real round trips.** The commands run against the sandbox's own state (writes included), and a
   batch of commands costs one HTTP request, as the raw client's did: the call log proves it.

Nothing of ours is mocked; the canned answers are the sandbox's `/_sandbox/faults` with a `body`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api, app, catalog, directory, invoices, payments, statuses
from integrations.bitrix24.api.command import Command
from integrations.bitrix24.client import Bitrix24Client
from tests.contract.bitrix24_docs import documented_responses
from tests.integrations.bitrix24_fixtures import bitrix24_calls_since, last_call_id, rest_calls
from tests.sandbox.bitrix24_rest_helpers import Portal as Rest

U = "api-reference/crm/universal/"
CAT = "api-reference/catalog/"
EV = "api-reference/events/"


@pytest.fixture
def rest(sandbox) -> Rest:
    return Rest(sandbox)


@pytest.fixture
def api(sandbox, rest) -> Bitrix24Api:
    portal = Portal(
        member_id=sandbox.state()["bitrix24"]["member_id"], client_endpoint=f"{sandbox.base_url}/bitrix24/rest/"
    )
    return Bitrix24Api(Bitrix24Client(portal, user_token=rest.token))


def served(sandbox, page: str, method: str) -> dict[str, Any]:
    """Serve the page's first documented answer for the next call of `method`; return it."""
    body = documented_responses(page)[0]
    sandbox.fault("bitrix24", method, status=200, body=body)
    return body


def run_documented(sandbox, api: Bitrix24Api, page: str, command: Command[Any]) -> tuple[Any, Any]:
    """(the facade's parse of the documented answer, the documented result)."""
    body = served(sandbox, page, command.method)
    try:
        return api.run(command), body["result"]
    finally:
        sandbox.clear_faults()


# --- 1. documented answers through the facade's parsers -----------------------------------------------


def test_user_current_reads_the_documented_user(sandbox, api):
    user, doc = run_documented(sandbox, api, "api-reference/user/user-current.md", app.user_current())

    assert user == app.User(id=int(doc["ID"]), name=doc["NAME"], last_name=doc["LAST_NAME"], time_zone=user.time_zone)


def test_feature_get_reads_value_y_as_enabled(sandbox, api):
    enabled, doc = run_documented(
        sandbox, api, "api-reference/common/system/feature-get.md", app.feature_enabled("rest_offline_extended")
    )

    assert doc["value"] == "Y" and enabled is True


def test_event_get_reads_bindings_and_which_use_the_apps_own_auth(sandbox, api):
    bindings, doc = run_documented(sandbox, api, EV + "event-get.md", app.events_list())

    assert [(b.event, b.handler) for b in bindings] == [(d["event"].upper(), d["handler"]) for d in doc]
    assert [b.with_app_auth for b in bindings] == [str(d["auth_type"]) == "0" for d in doc]
    assert not any(b.offline for b in bindings)


def test_currencies_are_read_with_exact_rates(sandbox, api):
    currencies, doc = run_documented(
        sandbox, api, "api-reference/crm/currency/crm-currency-list.md", catalog.currencies_list()
    )

    assert [c.code for c in currencies] == [d["CURRENCY"] for d in doc]
    assert [c.amount for c in currencies] == [Decimal(d["AMOUNT"]) for d in doc]
    assert [c.base for c in currencies] == [d["BASE"] == "Y" for d in doc]


def test_statuses_read_as_stages_with_semantics(sandbox, api):
    stages, doc = run_documented(
        sandbox, api, "api-reference/crm/status/crm-status-list.md", statuses.statuses_list("DEAL_STAGE")
    )

    assert [s.status_id for s in stages] == [d["STATUS_ID"] for d in doc]
    assert [s.sort for s in stages] == [int(d["SORT"]) for d in doc]
    assert {s.semantics for s in stages} <= {"", "S", "F"}
    assert [s.semantics for s in stages] == [
        (d["SEMANTICS"] or "") if d["SEMANTICS"] in ("S", "F") else "" for d in doc
    ]


def test_categories_read_with_the_default_flag(sandbox, api):
    categories, doc = run_documented(sandbox, api, U + "category/crm-category-list.md", statuses.categories_list(31))

    assert [(c.id, c.name, c.is_default) for c in categories] == [
        (d["id"], d["name"], d["isDefault"] == "Y") for d in doc["categories"]
    ]


def test_vats_read_with_decimal_rates(sandbox, api):
    vats, doc = run_documented(sandbox, api, CAT + "vat/catalog-vat-list.md", catalog.vats_list())

    assert [(v.id, v.rate) for v in vats] == [(d["id"], Decimal(str(d["rate"]))) for d in doc["vats"]]


def test_catalog_sections_prices_and_price_types(sandbox, api):
    sections, doc = run_documented(sandbox, api, CAT + "section/catalog-section-list.md", catalog.sections_list(25))
    assert [(s.id, s.name) for s in sections] == [(d["id"], d["name"]) for d in doc["sections"]]

    prices, doc = run_documented(sandbox, api, CAT + "price/catalog-price-list.md", catalog.prices_of(6461, 1))
    assert [(p.id, p.product_id, p.price_type) for p in prices] == [
        (d["id"], d["productId"], d["catalogGroupId"]) for d in doc["prices"]
    ]

    types, doc = run_documented(sandbox, api, CAT + "price-type/catalog-price-type-list.md", catalog.price_types_base())
    assert [t.id for t in types] == [d["id"] for d in doc["priceTypes"]]


def test_catalog_product_add_answers_the_new_id(sandbox, api):
    product_id, doc = run_documented(
        sandbox, api, CAT + "product/catalog-product-add.md", catalog.product_add({"name": "x", "iblockId": 25})
    )

    assert product_id == int(doc["element"]["id"])


def test_payments_read_paid_and_exact_sums(sandbox, api):
    listed, doc = run_documented(sandbox, api, U + "payment/crm-item-payment-list.md", payments.payments_list(3653))

    assert [(p.id, p.paid, p.sum) for p in listed] == [(d["id"], d["paid"] == "Y", Decimal(str(d["sum"]))) for d in doc]


def test_addresses_name_their_owner(sandbox, api):
    addresses, doc = run_documented(
        sandbox,
        api,
        "api-reference/crm/requisites/addresses/crm-address-list.md",
        directory.addresses_of("contact", [7335]),
    )

    assert [(a.owner_kind, a.owner_id) for a in addresses] == [("contact", int(d["ANCHOR_ID"])) for d in doc]
    assert [a.fields["CITY"] for a in addresses] == [d["CITY"] for d in doc]


def test_item_add_answers_the_new_id(sandbox, api):
    new_id, doc = run_documented(sandbox, api, U + "crm-item-add.md", invoices.item_add({"title": "x"}))

    assert new_id == doc["item"]["id"]


def test_product_rows_keep_the_documented_prices(sandbox, api):
    rows, doc = run_documented(
        sandbox, api, U + "product-rows/crm-item-productrow-list.md", invoices.productrows_list(1)
    )

    assert [(r["id"], r["price"]) for r in rows] == [(d["id"], d["price"]) for d in doc["productRows"]]


# --- 2. real round trips against the sandbox's state ---------------------------------------------------


def test_a_seeded_invoice_reads_back_through_one_batch_with_its_client(sandbox, rest, api):
    company_id = api.companies_add({"TITLE": "Facade Ltd"})
    invoice_id = api.items_add({"title": "Facade", "companyId": company_id, "currencyId": "NZD"})
    api.productrows_set(invoice_id, [{"productName": "Widget", "price": "12.50", "quantity": 3, "taxRate": 15}])
    kind = invoices.invoice_kind(31)
    company_ref, _contact_ref = kind.client_refs()
    companies = directory.clients_list("company", company_ref)

    since = last_call_id(sandbox)
    outcome = api.batch({**kind.get_commands(invoice_id, ordered_rows=True), "co": companies})
    calls = rest_calls(bitrix24_calls_since(sandbox, since))

    assert calls == ["batch"]  # the invoice, its rows and its company: one HTTP request
    detail = kind.detail(outcome.raw_results())
    invoice = detail.invoice
    assert (invoice.id, invoice.entity_type, invoice.company_id, invoice.title) == (
        invoice_id,
        31,
        company_id,
        "Facade",
    )
    assert invoice.amount == Decimal("37.50")  # opportunity: 3 x 12.50 (a row's price includes its tax)
    assert [(r["productName"], Decimal(str(r["price"])), Decimal(str(r["quantity"]))) for r in detail.rows] == [
        ("Widget", Decimal("12.50"), Decimal(3))
    ]
    (company,) = outcome.get(companies)
    assert (company.kind, company.id, company.fields["TITLE"]) == ("company", company_id, "Facade Ltd")
    assert api.companies_by_title("Facade Ltd") == [company_id]


def test_a_list_pages_through_every_row_in_as_few_requests_as_the_client(sandbox, rest, api):
    made = [api.items_add({"title": f"Paged {n}"}) for n in range(120)]
    kind = invoices.invoice_kind(31)

    since = last_call_id(sandbox)
    listed = list(api.list_all(kind.list_command({"@id": made}, order={"id": "ASC"})))
    calls = rest_calls(bitrix24_calls_since(sandbox, since))

    assert [row["id"] for row in listed] == made
    assert calls == ["crm.item.list", "batch"]  # page 1 tells the total; pages 2-3 in one batch


def test_an_old_invoice_reads_in_the_shared_shape_with_exact_money(sandbox, rest, api):
    sandbox.bitrix24_settings(invoices="both")
    rest_admin = Rest(sandbox)
    api = Bitrix24Api(Bitrix24Client(api.portal, user_token=rest_admin.token))
    person_type = next(p["ID"] for p in rest_admin.ok("crm.persontype.list", {}) if p["NAME"] == "CRM_COMPANY")
    pay_system = rest_admin.ok("crm.paysystem.list", {"filter": {"PERSON_TYPE_ID": person_type}})[0]["ID"]
    company_id = api.companies_add({"TITLE": "Old Facade Ltd"})
    row = {"PRODUCT_NAME": "Gross", "PRICE": "126.00", "QUANTITY": 1, "VAT_RATE": 0.2, "VAT_INCLUDED": "Y"}
    invoice_id = rest_admin.ok(
        "crm.invoice.add",
        {
            "fields": {
                "ORDER_TOPIC": "Old facade",
                "PERSON_TYPE_ID": person_type,
                "PAY_SYSTEM_ID": pay_system,
                "UF_COMPANY_ID": company_id,
                "STATUS_ID": "N",
                "PRODUCT_ROWS": [row],
            }
        },
    )

    detail = api.run(invoices.invoice_kind(5).get_command(int(invoice_id)))

    assert detail is not None and detail.item["id"] == int(invoice_id) and detail.item["entityTypeId"] == 5
    assert detail.item["companyId"] == company_id
    assert (detail.invoice.entity_type, detail.invoice.amount) == (5, Decimal("126"))
    (row,) = detail.rows
    assert (Decimal(row["price"]), Decimal(row["priceExclusive"]), row["taxIncluded"]) == (
        Decimal("126"),
        Decimal("105"),
        "Y",
    )


def test_a_failed_command_keeps_its_own_classified_error_and_the_rest_answer(sandbox, rest, api):
    kind = invoices.invoice_kind(31)
    outcome = api.batch({"gone": kind.get_commands(999999)["item"], "me": app.user_current()})

    assert not outcome.ran("gone") and outcome.error("gone") is not None
    assert outcome.ran("me") and outcome.value("me").id is not None


def test_stages_come_as_pipelines_then_their_stages(sandbox, rest, api):
    categories = api.categories_list(31)
    default = next(c for c in categories if c.is_default)
    stages = api.statuses_list(statuses.smart_invoice_stage_entity(default.id))

    assert stages and all(s.category_id == default.id for s in stages)
    assert {s.semantics for s in stages} >= {"", "S"}
    assert [s.sort for s in stages] == sorted(s.sort for s in stages)
