"""Company/contact <-> Xero contact and product <-> item mapping on crm.company.get, crm.contact.get,
crm.address.list and Xero GET /Contacts, /Items payloads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from sync.mappers import MappingError
from sync.mappers.contact import (
    company_to_xero_contact,
    contact_number_for,
    person_to_xero_contact,
    product_to_xero_item,
    xero_contact_address,
    xero_contact_to_company,
    xero_item_to_product,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_a_company_becomes_a_xero_contact_with_our_external_id_first_email_and_typed_phones():
    data = fixture("company_smith_and_sons")
    company = data["crm.company.get"]["result"]

    contact = company_to_xero_contact(company, data["crm.address.list"]["result"], contact_number="B24-CO-12")

    assert contact["Name"] == 'Smith & Sons "Builders" Ltd'
    assert contact["ContactNumber"] == contact_number_for("company", 12) == "B24-CO-12"
    assert contact["EmailAddress"] == "accounts@smithandsons.co.nz"
    # Xero keeps one number per type: the first WORK number wins DEFAULT.
    assert contact["Phones"] == [
        {"PhoneType": "DEFAULT", "PhoneNumber": "+64 9 555 0100"},
        {"PhoneType": "MOBILE", "PhoneNumber": "+64 21 555 0101"},
        {"PhoneType": "FAX", "PhoneNumber": "+64 9 555 0102"},
    ]


def test_requisite_addresses_map_physical_to_street_and_legal_to_postal():
    data = fixture("company_smith_and_sons")

    contact = company_to_xero_contact(
        data["crm.company.get"]["result"], data["crm.address.list"]["result"], contact_number="B24-CO-12"
    )

    assert contact["Addresses"] == [
        {
            "AddressType": "STREET",
            "AddressLine1": "12 Queen Street",
            "AddressLine2": "Level 3",
            "City": "Auckland",
            "Region": "Auckland",
            "PostalCode": "1010",
            "Country": "New Zealand",
        },
        {
            "AddressType": "POBOX",
            "AddressLine1": "PO Box 4021",
            "City": "Auckland",
            "PostalCode": "1140",
            "Country": "New Zealand",
        },
    ]


def test_without_a_requisite_the_legacy_address_fields_are_used_and_cyrillic_is_kept():
    company = fixture("company_romashka_legacy_address")["crm.company.get"]["result"]

    contact = company_to_xero_contact(company, None, contact_number="B24-CO-15")

    assert contact["Name"] == "ООО «Ромашка»"
    assert "EmailAddress" not in contact
    assert contact["Phones"] == [{"PhoneType": "DEFAULT", "PhoneNumber": "+7 495 123-45-67"}]
    assert contact["Addresses"] == [
        {
            "AddressType": "STREET",
            "AddressLine1": "ул. Ленина, д. 5",
            "AddressLine2": "офис 12",
            "City": "Москва",
            "Region": "Москва",
            "PostalCode": "101000",
            "Country": "Россия",
        }
    ]


def test_a_company_without_a_title_is_refused_because_xero_needs_a_name():
    company = {**fixture("company_romashka_legacy_address")["crm.company.get"]["result"], "TITLE": "  "}

    with pytest.raises(MappingError, match="no name"):
        company_to_xero_contact(company, None, contact_number="B24-CO-15")


def test_a_person_client_becomes_a_contact_named_first_and_last():
    person = fixture("contact_person")["crm.contact.get"]["result"]

    contact = person_to_xero_contact(person, contact_number=contact_number_for("contact", 8))

    assert contact == {
        "Name": "Aroha O'Neill",
        "FirstName": "Aroha",
        "LastName": "O'Neill",
        "ContactNumber": "B24-C-8",
        "EmailAddress": "aroha@oneill.example",
        "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "+61 412 555 010"}],
    }


def test_a_xero_contact_imports_as_a_company_tied_to_its_contact_id():
    xero = fixture("xero_contact_full")["Contacts"][0]

    company = xero_contact_to_company(xero)

    assert company["TITLE"] == 'Kōwhai & Co "Landscaping"'
    assert (company["ORIGINATOR_ID"], company["ORIGIN_ID"]) == ("xero", "b3a1c9de-2f44-4c1e-9a0b-5d6e7f809102")
    assert company["EMAIL"] == [{"VALUE": "mere@kowhai.example", "VALUE_TYPE": "WORK"}]
    # Empty phone slots are skipped; country and area codes are joined to the number.
    assert company["PHONE"] == [
        {"VALUE": "+64 9 555 0188", "VALUE_TYPE": "WORK"},
        {"VALUE": "021 555 0189", "VALUE_TYPE": "MOBILE"},
    ]
    # The street address is all empty strings, so the postal one is used.
    assert (company["ADDRESS"], company["ADDRESS_2"], company["ADDRESS_CITY"], company["ADDRESS_POSTAL_CODE"]) == (
        "PO Box 77",
        "Ponsonby",
        "Auckland",
        "1144",
    )


def test_a_xero_postal_address_becomes_a_mailing_requisite_address():
    address = xero_contact_address(fixture("xero_contact_full")["Contacts"][0])

    assert address is not None
    assert (address["TYPE_ID"], address["ADDRESS_1"], address["COUNTRY"]) == (8, "PO Box 77", "New Zealand")


def test_a_xero_item_imports_as_a_product_priced_in_the_chosen_currency():
    widget, hourly = fixture("xero_items")["Items"]

    assert xero_item_to_product(widget, "NZD") == {
        "product": {
            "name": "Widget Pro",
            "code": "WIDGET-PRO",
            "xmlId": "xero:9a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b",
            "active": "Y",
            "detailText": 'Widget "Pro", galvanised',
        },
        "price": {"price": Decimal("19.9950"), "currency": "NZD"},
    }
    unnamed = xero_item_to_product(hourly, "NZD")
    assert (unnamed["product"]["name"], unnamed["price"]) == ("SVC-HOUR", None)


def test_a_product_becomes_a_sold_xero_item_within_xeros_length_limits():
    product = {
        "id": 77,
        "iblockId": 14,
        "name": "Very long product name that exceeds fifty characters easily",
        "active": "Y",
    }

    item = product_to_xero_item(product, Decimal("12.345"), code="B24-P77", account_code="200", tax_type="OUTPUT2")

    assert item["Code"] == "B24-P77"
    assert len(item["Name"]) == 50
    assert item["SalesDetails"] == {"AccountCode": "200", "TaxType": "OUTPUT2", "UnitPrice": Decimal("12.3450")}
    assert item["IsSold"] is True
