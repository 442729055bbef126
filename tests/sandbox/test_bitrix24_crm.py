"""The fake portal's CRM data: invoices (crm.item), product rows, stages, payments, companies,
contacts, requisites, addresses, the catalogue and currencies — shapes as bitrix24-api.md shows them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from tests.sandbox.app_receiver import running_receiver
from tests.sandbox.bitrix24_rest_helpers import Portal


@pytest.fixture
def portal(sandbox) -> Portal:
    return Portal(sandbox)


def _get(portal, invoice_id, token=None):
    return portal.ok("crm.item.get", {"entityTypeId": 31, "id": invoice_id}, token)["item"]


# --- invoices ------------------------------------------------------------------------------------
def test_a_new_invoice_has_bitrix24s_defaults(portal):
    item = portal.invoice()
    assert item["title"] == f"Invoice #{item['id']}"
    assert item["entityTypeId"] == 31 and item["categoryId"] == 3 and item["stageId"] == "DT31_3:N"
    assert item["accountNumber"] and item["accountNumber"] != str(item["id"])
    assert item["currencyId"] == "NZD" and item["isManualOpportunity"] == "N" and item["opportunity"] == 0
    assert item["assignedById"] == item["createdBy"] == item["updatedBy"]
    assert item["updatedTime"].endswith("+03:00")
    begin = datetime.fromisoformat(item["begindate"]).date()
    assert datetime.fromisoformat(item["closedate"]).date() - begin == timedelta(days=7)


def test_written_fields_come_back_typed_and_unknown_keys_are_ignored(portal):
    company = portal.ok("crm.company.add", {"fields": {"TITLE": "Buyer"}})
    item = portal.invoice(
        title="Sept",
        xmlId="xero-1",
        companyId=company,
        contactIds=["4", 5],
        begindate="2026-09-01",
        closedate="2026-09-30T10:00:00+00:00",
        currencyId="USD",
        comments="<b>hi</b>",
        madeUpField="x",
        opportunity="12.5",
        isManualOpportunity="Y",
    )
    assert (item["xmlId"], item["companyId"], item["contactIds"], item["contactId"]) == ("xero-1", company, [4, 5], 4)
    # Date fields as Bitrix24 writes them: UTC midnight of the day in the portal's offset (crm-item-update.md).
    assert item["begindate"] == "2026-09-01T03:00:00+03:00" and item["closedate"] == "2026-09-30T03:00:00+03:00"
    assert (item["currencyId"], item["opportunity"], item["isManualOpportunity"]) == ("USD", 12.5, "Y")
    assert "madeUpField" not in item


def test_the_item_shapes_match_the_documented_ones(portal):
    fields = portal.ok("crm.item.fields", {"entityTypeId": 31})["fields"]
    assert fields["stageId"]["type"] == "crm_status" and fields["contactIds"]["isMultiple"] is True
    assert set(fields["id"]) >= {
        "type",
        "isRequired",
        "isReadOnly",
        "isImmutable",
        "isMultiple",
        "isDynamic",
        "title",
        "upperName",
    }
    assert fields["assignedById"]["upperName"] == "ASSIGNED_BY_ID"
    item = portal.invoice()
    assert portal.ok("crm.item.delete", {"entityTypeId": 31, "id": item["id"]}) == []
    portal.error("crm.item.get", {"entityTypeId": 31, "id": item["id"]}, 400, "NOT_FOUND")


def test_moving_the_stage_records_the_previous_stage_and_who_moved_it(portal):
    item = portal.invoice()
    moved = portal.ok("crm.item.update", {"entityTypeId": 31, "id": item["id"], "fields": {"stageId": "DT31_3:P"}})[
        "item"
    ]
    assert (moved["stageId"], moved["previousStageId"], moved["movedBy"]) == ("DT31_3:P", "DT31_3:N", item["createdBy"])


def test_a_stage_of_another_pipeline_or_a_made_up_one_is_refused(portal):
    portal.error(
        "crm.item.add", {"entityTypeId": 31, "fields": {"stageId": "DT31_1:P"}}, 400, "CRM_FIELD_ERROR_VALUE_NOT_VALID"
    )
    item = portal.invoice()
    portal.error(
        "crm.item.update",
        {"entityTypeId": 31, "id": item["id"], "fields": {"stageId": "P"}},
        400,
        "CRM_FIELD_ERROR_VALUE_NOT_VALID",
    )


def test_an_own_invoices_user_sees_only_their_invoices_and_is_denied_the_rest(portal):
    seller_id, seller = portal.new_user("Seller", invoices="own")
    theirs = portal.invoice(token=seller, title="Mine")
    others = portal.invoice(title="Not mine")
    portal.invoice(title="Assigned to seller", assignedById=seller_id)
    listed = portal.page("crm.item.list", {"entityTypeId": 31, "select": ["title"]}, seller)
    assert [i["title"] for i in listed["result"]["items"]] == ["Mine", "Assigned to seller"]
    assert listed["total"] == 2
    body = portal.error("crm.item.get", {"entityTypeId": 31, "id": others["id"]}, 400, "ACCESS_DENIED", seller)
    assert body["error_description"] == "You do not have permission to view this item"
    body = portal.error(
        "crm.item.update",
        {"entityTypeId": 31, "id": others["id"], "fields": {"title": "x"}},
        400,
        "ACCESS_DENIED",
        seller,
    )
    assert "update" in body["error_description"]
    portal.error("crm.item.delete", {"entityTypeId": 31, "id": others["id"]}, 400, "ACCESS_DENIED", seller)
    assert _get(portal, theirs["id"], seller)["title"] == "Mine"


def test_admins_and_all_invoices_users_see_everything(portal):
    _, seller = portal.new_user("Seller", invoices="own")
    portal.invoice(token=seller)
    portal.invoice()
    everyone = portal.user("Manager", invoices="all")
    assert portal.page("crm.item.list", {"entityTypeId": 31}, everyone)["total"] == 2
    assert portal.page("crm.item.list", {"entityTypeId": 31})["total"] == 2


# --- product rows --------------------------------------------------------------------------------
def _set_rows(portal, invoice_id, rows, token=None):
    return portal.ok("crm.item.productrow.set", {"ownerType": "SI", "ownerId": invoice_id, "productRows": rows}, token)


def test_the_docs_worked_example_derives_every_price(portal):
    item = portal.invoice()
    row = _set_rows(
        portal,
        item["id"],
        [
            {
                "productName": "Consulting",
                "price": 90000,
                "quantity": 1,
                "discountTypeId": 2,
                "discountRate": 10,
                "taxRate": 10,
                "taxIncluded": "Y",
            }
        ],
    )
    row = row["productRows"][0]
    assert (row["priceNetto"], row["priceExclusive"], row["price"], row["priceBrutto"], row["discountSum"]) == (
        90909.09,
        81818.18,
        90000.0,
        100000.0,
        9090.91,
    )
    assert (row["ownerType"], row["ownerId"], row["productId"], row["measureCode"]) == ("SI", item["id"], 0, 796)


def test_an_absolute_discount_and_no_tax_derive_the_rate(portal):
    item = portal.invoice()
    row = _set_rows(
        portal,
        item["id"],
        [
            {
                "productName": "Widget",
                "price": 80,
                "quantity": 3,
                "discountTypeId": 1,
                "discountSum": 20,
                "taxRate": None,
            }
        ],
    )["productRows"][0]
    assert (row["priceNetto"], row["discountRate"], row["priceExclusive"], row["priceBrutto"]) == (
        100.0,
        20.0,
        80.0,
        100.0,
    )
    assert row["taxRate"] is None


def test_rows_recompute_the_invoice_amount_and_tax_and_bump_updated_time(portal):
    item = portal.invoice(opportunity=1)
    _set_rows(
        portal,
        item["id"],
        [
            {"productName": "A", "price": 115, "quantity": 2, "taxRate": 15, "taxIncluded": "N"},
            {"productName": "B", "price": 50, "quantity": 1},
        ],
    )
    after = _get(portal, item["id"])
    assert (after["opportunity"], after["taxValue"]) == (280.0, 30.0)
    assert after["updatedTime"] >= item["updatedTime"]
    row_id = portal.ok("crm.item.productrow.list", {"filter": {"=ownerType": "SI", "=ownerId": item["id"]}})[
        "productRows"
    ][1]["id"]
    portal.ok("crm.item.productrow.update", {"id": row_id, "fields": {"quantity": 3}})
    assert _get(portal, item["id"])["opportunity"] == 380.0
    portal.ok("crm.item.productrow.delete", {"id": row_id})
    assert _get(portal, item["id"])["opportunity"] == 230.0
    # While rows drive the amount, a written amount does not stick.
    portal.ok("crm.item.update", {"entityTypeId": 31, "id": item["id"], "fields": {"opportunity": 5}})
    assert _get(portal, item["id"])["opportunity"] == 230.0


def test_a_manual_amount_is_left_alone_by_row_changes(portal):
    item = portal.invoice(opportunity=999, isManualOpportunity="Y")
    _set_rows(portal, item["id"], [{"productName": "A", "price": 10}])
    assert _get(portal, item["id"])["opportunity"] == 999.0


def test_row_changes_raise_the_invoice_update_event(portal, sandbox):
    with running_receiver() as app:
        sandbox.bitrix24_install(app.url("/app"))  # events flow only to an installed app
    portal.ok("event.bind", {"event": "ONCRMDYNAMICITEMUPDATE", "event_type": "offline"})
    item = portal.invoice()
    _set_rows(portal, item["id"], [{"productName": "A", "price": 10}])
    events = portal.ok("event.offline.list", {})
    updates = [e for e in events if e["EVENT_NAME"] == "ONCRMDYNAMICITEMUPDATE"]
    assert [(e["EVENT_DATA"]["FIELDS"]["ID"], e["EVENT_DATA"]["FIELDS"]["ENTITY_TYPE_ID"]) for e in updates] == [
        (item["id"], 31)
    ]


def test_set_replaces_all_rows_and_list_needs_the_owner_in_the_filter(portal):
    item = portal.invoice()
    _set_rows(portal, item["id"], [{"productName": "A", "price": 1}, {"productName": "B", "price": 2}])
    _set_rows(portal, item["id"], [{"productName": "C", "price": 3}])
    body = portal.page("crm.item.productrow.list", {"filter": {"=ownerType": "SI", "=ownerId": item["id"]}})
    assert [r["productName"] for r in body["result"]["productRows"]] == ["C"] and body["total"] == 1
    portal.error("crm.item.productrow.list", {"filter": {"=ownerId": item["id"]}}, 400, "INVALID_ARG_VALUE")
    portal.error("crm.item.productrow.list", {"filter": {"=ownerType": "SI", "=ownerId": 999}}, 400, "OWNER_NOT_FOUND")
    portal.error(
        "crm.item.productrow.add", {"fields": {"ownerType": "SI", "ownerId": 999, "price": 1}}, 400, "OWNER_NOT_FOUND"
    )
    portal.error(
        "crm.item.productrow.set",
        {"ownerType": "SI", "ownerId": item["id"], "productRows": [{"price": "ten"}]},
        400,
        "INVALID_ARG_VALUE",
    )


def test_rows_follow_the_owners_permissions(portal):
    _, seller = portal.new_user("Seller", invoices="own")
    others = portal.invoice()
    row = _set_rows(portal, others["id"], [{"productName": "A", "price": 1}])["productRows"][0]
    portal.error("crm.item.productrow.get", {"id": row["id"]}, 400, "ACCESS_DENIED", seller)
    portal.error(
        "crm.item.productrow.list",
        {"filter": {"=ownerType": "SI", "=ownerId": others["id"]}},
        400,
        "ACCESS_DENIED",
        seller,
    )
    portal.error(
        "crm.item.productrow.set",
        {"ownerType": "SI", "ownerId": others["id"], "productRows": []},
        400,
        "ACCESS_DENIED",
        seller,
    )


def test_a_catalog_product_lends_its_name_to_a_row(portal):
    product = portal.ok("catalog.product.add", {"fields": {"iblockId": 25, "name": "Blue widget"}})["element"]
    item = portal.invoice()
    row = portal.ok(
        "crm.item.productrow.add",
        {"fields": {"ownerType": "SI", "ownerId": item["id"], "productId": product["id"], "price": 5}},
    )["productRow"]
    assert row["productName"] == "Blue widget"
    assert portal.ok("crm.item.productrow.get", {"id": row["id"]})["productRow"]["productId"] == product["id"]


# --- pipelines and stages ------------------------------------------------------------------------
def test_the_invoice_pipeline_and_its_stages_carry_semantics(portal):
    categories = portal.ok("crm.category.list", {"entityTypeId": 31})["categories"]
    assert categories == [
        {
            "id": 3,
            "name": "Invoices",
            "sort": 500,
            "entityTypeId": 31,
            "isDefault": "Y",
            "originId": None,
            "originatorId": None,
        }
    ]
    stages = portal.ok("crm.status.list", {"filter": {"ENTITY_ID": "SMART_INVOICE_STAGE_3"}, "order": {"SORT": "ASC"}})
    assert [(s["STATUS_ID"], s["NAME"], s["SEMANTICS"]) for s in stages] == [
        ("DT31_3:N", "New", None),
        ("DT31_3:S", "Sent to client", None),
        ("DT31_3:P", "Paid", "S"),
        ("DT31_3:D", "Declined", "F"),
    ]
    assert set(stages[0]) == {
        "ID",
        "ENTITY_ID",
        "STATUS_ID",
        "NAME",
        "NAME_INIT",
        "SORT",
        "SYSTEM",
        "CATEGORY_ID",
        "COLOR",
        "SEMANTICS",
    }
    types = portal.ok("crm.status.entity.types")
    invoice_type = next(t for t in types if t["ID"] == "SMART_INVOICE_STAGE_3")
    assert (invoice_type["PREFIX"], invoice_type["ENTITY_TYPE_ID"], invoice_type["CATEGORY_ID"]) == ("DT31_3", 31, 3)


def test_an_admin_adds_a_custom_stage_and_invoices_can_use_it(portal):
    new_id = portal.ok(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": "SMART_INVOICE_STAGE_3",
                "STATUS_ID": "UC_AB12CD",
                "NAME": "Written off",
                "SORT": 50,
                "SEMANTICS": "F",
            }
        },
    )
    stage = portal.ok("crm.status.get", {"id": new_id})
    assert (stage["STATUS_ID"], stage["SEMANTICS"], stage["SYSTEM"]) == ("DT31_3:UC_AB12CD", "F", "N")
    item = portal.invoice(stageId="DT31_3:UC_AB12CD")
    assert item["stageId"] == "DT31_3:UC_AB12CD"
    portal.error("crm.status.delete", {"id": new_id}, 400, "")  # an invoice is still in it
    portal.ok("crm.item.delete", {"entityTypeId": 31, "id": item["id"]})
    assert portal.ok("crm.status.delete", {"id": new_id}) is True


def test_stage_settings_are_for_admins_and_system_stages_stay(portal):
    user = portal.user("Seller")
    portal.error(
        "crm.status.add", {"fields": {"ENTITY_ID": "SMART_INVOICE_STAGE_3", "NAME": "X"}}, 403, "ACCESS_DENIED", user
    )
    paid = next(
        s
        for s in portal.ok("crm.status.list", {"filter": {"ENTITY_ID": "SMART_INVOICE_STAGE_3"}})
        if s["STATUS_ID"] == "DT31_3:P"
    )
    portal.error("crm.status.delete", {"id": paid["ID"]}, 400, "")
    portal.error(
        "crm.status.add",
        {"fields": {"ENTITY_ID": "SMART_INVOICE_STAGE_3", "NAME": "Paid twice", "SEMANTICS": "S"}},
        400,
        "",
    )


# --- payments ------------------------------------------------------------------------------------
def test_a_payment_on_an_invoice_can_be_recorded_as_paid(portal):
    item = portal.invoice()
    _set_rows(portal, item["id"], [{"productName": "A", "price": 40}])
    payment_id = portal.ok("crm.item.payment.add", {"entityTypeId": 31, "entityId": item["id"]})
    # An added payment is empty (crm-item-payment-add.md takes no sum); its rows make the sum.
    assert portal.ok("crm.item.payment.get", {"id": payment_id})["sum"] == 0
    [row] = portal.ok("crm.item.productrow.list", {"filter": {"=ownerType": "SI", "=ownerId": item["id"]}})[
        "productRows"
    ]
    portal.ok("crm.item.payment.product.add", {"paymentId": payment_id, "rowId": row["id"], "quantity": 1})
    assert [p["rowId"] for p in portal.ok("crm.item.payment.product.list", {"paymentId": payment_id})] == [row["id"]]
    assert portal.ok("crm.item.payment.pay", {"id": payment_id}) is True
    [payment] = portal.ok("crm.item.payment.list", {"entityTypeId": 31, "entityId": item["id"]})
    assert (payment["paid"], payment["sum"], payment["currency"]) == ("Y", 40.0, "NZD")
    assert payment["accountNumber"] == f"{item['accountNumber']}/1" and payment["datePaid"]


# --- companies and contacts ----------------------------------------------------------------------
def test_companies_speak_the_classic_api_with_multifields(portal):
    company_id = portal.ok(
        "crm.company.add",
        {
            "fields": {
                "TITLE": "Acme",
                "ORIGINATOR_ID": "xero",
                "ORIGIN_ID": "c-1",
                "PHONE": [{"VALUE": "+6491234", "VALUE_TYPE": "WORK"}],
                "EMAIL": [{"VALUE": "ap@acme.test", "VALUE_TYPE": "WORK"}],
            }
        },
    )
    assert isinstance(company_id, int)
    company = portal.ok("crm.company.get", {"id": company_id})
    assert (company["ID"], company["TITLE"], company["ORIGIN_ID"], company["HAS_EMAIL"]) == (
        str(company_id),
        "Acme",
        "c-1",
        "Y",
    )
    phone = company["PHONE"][0]
    assert set(phone) == {"ID", "VALUE_TYPE", "VALUE", "TYPE_ID"} and phone["TYPE_ID"] == "PHONE"
    assert (
        portal.ok(
            "crm.company.update",
            {
                "id": company_id,
                "fields": {
                    "PHONE": [{"ID": phone["ID"], "DELETE": "Y"}, {"VALUE": "+6499999", "VALUE_TYPE": "MOBILE"}]
                },
            },
        )
        is True
    )
    company = portal.ok("crm.company.get", {"id": company_id})
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in company["PHONE"]] == [("+6499999", "MOBILE")]
    assert company["EMAIL"][0]["VALUE"] == "ap@acme.test"  # values not mentioned are kept


def test_company_lists_leave_multifields_out_unless_named_and_filter_without_logic(portal):
    portal.ok("crm.company.add", {"fields": {"TITLE": "Acme", "EMAIL": [{"VALUE": "a@acme.test"}]}})
    portal.ok("crm.company.add", {"fields": {"TITLE": "Bolt", "ORIGIN_ID": "x-2"}})
    star = portal.page("crm.company.list", {"select": ["*"]})
    assert star["total"] == 2 and "EMAIL" not in star["result"][0]
    named = portal.ok("crm.company.list", {"select": ["ID", "EMAIL"], "filter": {"EMAIL": "a@acme.test"}})
    assert named == [
        {
            "ID": "1",
            "EMAIL": [
                {"ID": named[0]["EMAIL"][0]["ID"], "VALUE_TYPE": "WORK", "VALUE": "a@acme.test", "TYPE_ID": "EMAIL"}
            ],
        }
    ]
    assert [c["TITLE"] for c in portal.ok("crm.company.list", {"filter": {"%TITLE": "bo"}, "select": ["TITLE"]})] == [
        "Bolt"
    ]
    assert [c["ID"] for c in portal.ok("crm.company.list", {"filter": {"=ORIGIN_ID": "x-2"}})] == ["2"]


def test_bad_company_and_contact_input_gets_the_classic_errors(portal):
    portal.error("crm.company.add", {"fields": {"TITLE": "A", "EMAIL": [{"VALUE": "not-an-email"}]}}, 400, "ERROR_CORE")
    portal.error("crm.company.add", {"fields": "TITLE"}, 400, "")
    portal.error("crm.company.get", {"id": 77}, 400, "")
    portal.error("crm.contact.add", {"fields": {"POST": "CEO"}}, 400, "")


def test_contacts_link_to_companies(portal):
    company_id = portal.ok("crm.company.add", {"fields": {"TITLE": "Acme"}})
    contact_id = portal.ok("crm.contact.add", {"fields": {"NAME": "Ann", "LAST_NAME": "Lee", "COMPANY_ID": company_id}})
    contact = portal.ok("crm.contact.get", {"id": contact_id})
    assert (contact["NAME"], contact["COMPANY_ID"]) == ("Ann", str(company_id))
    assert portal.ok("crm.contact.list", {"filter": {"COMPANY_ID": company_id}, "select": ["ID"]}) == [
        {"ID": str(contact_id)}
    ]
    assert portal.ok("crm.contact.delete", {"id": contact_id}) is True


def test_requisites_and_addresses_hang_off_a_company(portal):
    company_id = portal.ok("crm.company.add", {"fields": {"TITLE": "Acme"}})
    presets = portal.ok("crm.requisite.preset.list")
    requisite_id = portal.ok(
        "crm.requisite.add",
        {
            "fields": {
                "ENTITY_TYPE_ID": 4,
                "ENTITY_ID": company_id,
                "PRESET_ID": presets[0]["ID"],
                "NAME": "Acme Ltd",
                "RQ_VAT_ID": "123",
            }
        },
    )
    address = {
        "TYPE_ID": 6,
        "ENTITY_TYPE_ID": 8,
        "ENTITY_ID": requisite_id,
        "ADDRESS_1": "1 Queen St",
        "CITY": "Auckland",
    }
    assert portal.ok("crm.address.add", {"fields": address}) is True
    portal.error("crm.address.add", {"fields": address}, 400, "")  # "TypeAddress exists"
    portal.ok("crm.address.update", {"fields": {**address, "POSTAL_CODE": "1010"}})
    listed = portal.ok("crm.address.list", {"filter": {"ENTITY_ID": requisite_id}})
    assert [(a["TYPE_ID"], a["CITY"], a["POSTAL_CODE"], a["ANCHOR_ID"]) for a in listed] == [
        ("6", "Auckland", "1010", str(company_id))
    ]
    rows = portal.ok("crm.requisite.list", {"filter": {"ENTITY_TYPE_ID": 4, "ENTITY_ID": company_id}})
    assert [(r["NAME"], r["RQ_VAT_ID"]) for r in rows] == [("Acme Ltd", "123")]
    portal.ok("crm.company.delete", {"id": company_id})
    assert portal.ok("crm.address.list") == [] and portal.ok("crm.requisite.list") == []


# --- catalogue and currencies --------------------------------------------------------------------
def test_the_catalog_needs_its_iblock_and_keeps_prices_apart(portal):
    [catalog] = portal.ok("catalog.catalog.list")["catalogs"]
    section = portal.ok("catalog.section.add", {"fields": {"iblockId": catalog["iblockId"], "name": "Hardware"}})[
        "section"
    ]
    product = portal.ok(
        "catalog.product.add",
        {
            "fields": {
                "iblockId": catalog["iblockId"],
                "name": "Bolt",
                "iblockSectionId": section["id"],
                "vatId": 3,
                "xmlId": "item-1",
            }
        },
    )["element"]
    portal.ok(
        "catalog.price.add",
        {"fields": {"productId": product["id"], "catalogGroupId": 1, "price": 9.5, "currency": "NZD"}},
    )
    listed = portal.ok(
        "catalog.product.list", {"select": ["id", "iblockId", "name"], "filter": {"iblockId": catalog["iblockId"]}}
    )
    assert listed["products"] == [{"id": product["id"], "iblockId": 25, "name": "Bolt"}]
    portal.error("catalog.product.list", {"select": ["id", "iblockId"], "filter": {}}, 400, "200040300010")
    portal.error("catalog.product.list", {"select": ["name"], "filter": {"iblockId": 25}}, 400, "200040300010")
    prices = portal.ok("catalog.price.list", {"filter": {"productId": product["id"]}})["prices"]
    assert [(p["price"], p["currency"]) for p in prices] == [(9.5, "NZD")]
    vats = portal.ok("catalog.vat.list")["vats"]
    assert {v["rate"] for v in vats} == {None, 0.0, 15.0}


def test_currencies_list_nzd_as_base_with_the_documented_fields(portal):
    currencies = portal.ok("crm.currency.list")
    assert [c["CURRENCY"] for c in currencies] == ["NZD", "USD", "EUR", "AUD", "GBP"]
    assert set(currencies[0]) == {
        "CURRENCY",
        "AMOUNT_CNT",
        "AMOUNT",
        "SORT",
        "BASE",
        "FULL_NAME",
        "LID",
        "FORMAT_STRING",
        "DEC_POINT",
        "THOUSANDS_SEP",
        "DECIMALS",
        "DATE_UPDATE",
    }
    assert [c["CURRENCY"] for c in currencies if c["BASE"] == "Y"] == ["NZD"]


# --- state -----------------------------------------------------------------------------------------
def test_the_state_shows_every_entity_grouped_by_kind(portal, sandbox):
    item = portal.invoice()
    _set_rows(portal, item["id"], [{"productName": "A", "price": 1}])
    portal.ok("crm.company.add", {"fields": {"TITLE": "Acme", "PHONE": [{"VALUE": "1"}]}})
    state = sandbox.state()["bitrix24"]
    assert [r["productName"] for r in state["invoices"][0]["productRows"]] == ["A"]
    assert state["companies"][0]["PHONE"][0]["VALUE"] == "1"
    assert {
        "stages",
        "categories",
        "contacts",
        "requisites",
        "addresses",
        "products",
        "sections",
        "prices",
        "payments",
        "currencies",
    } <= set(state)
    assert date.today().year >= 2024
