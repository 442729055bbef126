"""Bitrix24 companies/contacts <-> Xero contacts, and Bitrix24 products <-> Xero items.

Xero contact names are unique among active contacts and matching by name alone merges strangers
(market.md §5.3), so every contact we create carries our own external id in ContactNumber
("B24-CO-42"): the engine looks a client up by ContactNumber first and by exact name second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from sync.mappers import MappingError
from sync.mappers.limits import NAME, cut_note, xero_cut, xero_length
from sync.mappers.money import optional_decimal, unit_amount

# Bitrix24 PHONE VALUE_TYPE -> Xero PhoneType. Xero keeps one number per type; HOME/OTHER/... fill
# DEFAULT when no WORK number took it.
PHONE_TYPES = {"WORK": "DEFAULT", "MOBILE": "MOBILE", "FAX": "FAX"}
# crm.address TYPE_ID -> Xero AddressType (bitrix24-api.md §8.4): legal/mailing are where invoices
# go (POBOX, Xero's postal address), physical is the street address.
ADDRESS_TYPES = {6: "POBOX", 8: "POBOX", 1: "STREET"}
XERO_ADDRESS_TYPE_IDS = {"STREET": 1, "POBOX": 8}

XERO_ORIGINATOR = "xero"


def contact_number_for(kind: str, bitrix24_id: int | str) -> str:
    """Our external id in Xero's ContactNumber (≤50 chars): B24-CO-<id> / B24-C-<id>."""
    return f"B24-{'CO' if kind == 'company' else 'C'}-{bitrix24_id}"


def company_to_xero_contact(
    company: Mapping,
    requisite_address: Mapping | Iterable[Mapping] | None,
    *,
    contact_number: str,
    notes: list[str] | None = None,
) -> dict:
    """A Xero contact from crm.company.get. `requisite_address` is one crm.address.list entry of the
    company's requisite (or several); without one, the legacy ADDRESS_* fields are used."""
    name = str(company.get("TITLE") or "").strip()
    if not name:
        raise MappingError(f"Company {company.get('ID')} has no name; Xero needs one. Give it a name in Bitrix24.")
    return _contact(_cut("Client name", name, NAME, notes), company, requisite_address, contact_number, notes)


def client_name_of(kind: str, entity: Mapping) -> str:
    """The name a Xero contact gets from this Bitrix24 company or contact, before Xero's limit."""
    if kind == "company":
        return str(entity.get("TITLE") or "").strip()
    parts = (str(entity.get("NAME") or "").strip(), str(entity.get("LAST_NAME") or "").strip())
    return " ".join(part for part in parts if part)


def person_to_xero_contact(
    contact: Mapping,
    requisite_address: Mapping | Iterable[Mapping] | None = None,
    *,
    contact_number: str,
    notes: list[str] | None = None,
) -> dict:
    """A Xero contact from crm.contact.get, for invoices whose client is a person."""
    first = str(contact.get("NAME") or "").strip()
    last = str(contact.get("LAST_NAME") or "").strip()
    name = " ".join(part for part in (first, last) if part)
    if not name:
        raise MappingError(f"Contact {contact.get('ID')} has no name; Xero needs one. Give it a name in Bitrix24.")
    out = _contact(_cut("Client name", name, NAME, notes), contact, requisite_address, contact_number, notes)
    if first:
        out["FirstName"] = xero_cut(first, NAME)
    if last:
        out["LastName"] = xero_cut(last, NAME)
    return out


def _cut(what: str, text: str, limit: int, notes: list[str] | None) -> str:
    """`text` within Xero's limit; what was shortened is added to `notes` (said on the log entry)."""
    if notes is not None and (note := cut_note(what, text, limit)):
        notes.append(note)
    return xero_cut(text, limit)


def _contact(name: str, entity: Mapping, requisite_address, contact_number: str, notes: list[str] | None) -> dict:
    out: dict = {"Name": name, "ContactNumber": contact_number[:50]}
    email = _first_value(entity.get("EMAIL"))
    if email and xero_length(email) > 255:
        # A cut address is no address (and Xero refuses it as invalid): leave it out, and say so.
        if notes is not None:
            notes.append(f"Client e-mail not sent: {xero_length(email)} characters, Xero's limit is 255.")
    elif email:
        out["EmailAddress"] = email
    phones = _phones(entity.get("PHONE"), notes)
    if phones:
        out["Phones"] = phones
    addresses = _requisite_addresses(requisite_address, notes) or _legacy_address(entity, notes)
    if addresses:
        out["Addresses"] = addresses
    return out


def _first_value(multifield: Iterable[Mapping] | None) -> str:
    for entry in multifield or []:
        value = str(entry.get("VALUE") or "").strip()
        if value:
            return value
    return ""


def _phones(multifield: Iterable[Mapping] | None, notes: list[str] | None = None) -> list[dict]:
    by_type: dict[str, str] = {}
    spare: list[str] = []
    for entry in multifield or []:
        number = str(entry.get("VALUE") or "").strip()
        if not number:
            continue
        xero_type = PHONE_TYPES.get(str(entry.get("VALUE_TYPE") or "").upper())
        if xero_type is None:
            spare.append(number)
        else:
            by_type.setdefault(xero_type, number)
    if "DEFAULT" not in by_type and spare:
        by_type["DEFAULT"] = spare[0]
    return [{"PhoneType": t, "PhoneNumber": _cut("Client phone", n, 50, notes)} for t, n in by_type.items()]


def _requisite_addresses(requisite_address, notes: list[str] | None = None) -> list[dict]:
    if not requisite_address:
        return []
    entries = [requisite_address] if isinstance(requisite_address, Mapping) else list(requisite_address)
    out: dict[str, dict] = {}
    for entry in entries:
        xero_type = ADDRESS_TYPES.get(int(entry.get("TYPE_ID") or 0))
        if xero_type is None or xero_type in out:
            continue
        address = _address(
            xero_type,
            lines=(entry.get("ADDRESS_1"), entry.get("ADDRESS_2")),
            city=entry.get("CITY"),
            region=entry.get("REGION") or entry.get("PROVINCE"),
            postal_code=entry.get("POSTAL_CODE"),
            country=entry.get("COUNTRY") or entry.get("COUNTRY_CODE"),
            notes=notes,
        )
        if address:
            out[xero_type] = address
    return list(out.values())


def _legacy_address(entity: Mapping, notes: list[str] | None = None) -> list[dict]:
    address = _address(
        "STREET",
        lines=(entity.get("ADDRESS"), entity.get("ADDRESS_2")),
        city=entity.get("ADDRESS_CITY"),
        region=entity.get("ADDRESS_REGION") or entity.get("ADDRESS_PROVINCE"),
        postal_code=entity.get("ADDRESS_POSTAL_CODE"),
        country=entity.get("ADDRESS_COUNTRY") or entity.get("ADDRESS_COUNTRY_CODE"),
        notes=notes,
    )
    return [address] if address else []


def _address(xero_type: str, *, lines, city, region, postal_code, country, notes=None) -> dict | None:
    fields = {
        "AddressLine1": (lines[0], 500),
        "AddressLine2": (lines[1], 500),
        "City": (city, 255),
        "Region": (region, 255),
        "PostalCode": (postal_code, 50),
        "Country": (country, 50),
    }
    out = {
        key: _cut(f"Client address ({key})", str(value).strip(), limit, notes)
        for key, (value, limit) in fields.items()
        if str(value or "").strip()
    }
    return {"AddressType": xero_type, **out} if out else None


# --- Xero -> Bitrix24 (import) ----------------------------------------------------------------------


def xero_contact_company_type(contact: Mapping) -> str:
    """Bitrix24's COMPANY_TYPE for what the Xero contact is: a customer (it has sales invoices;
    customers who also supply stay customers, the CRM's side of them), a supplier only, or other."""
    if contact.get("IsCustomer"):
        return "CUSTOMER"
    if contact.get("IsSupplier"):
        return "SUPPLIER"
    return "OTHER"


def xero_contact_to_company(contact: Mapping) -> dict:
    """crm.company.add `fields` for a Xero contact. ORIGINATOR_ID/ORIGIN_ID tie the company to the
    ContactID so a second import finds it instead of creating a duplicate."""
    name = str(contact.get("Name") or "").strip()
    if not name:
        raise MappingError(f"Xero contact {contact.get('ContactID')} has no name.")
    out: dict = {
        "TITLE": name,
        "ORIGINATOR_ID": XERO_ORIGINATOR,
        "ORIGIN_ID": str(contact.get("ContactID") or ""),
        "COMPANY_TYPE": xero_contact_company_type(contact),
    }
    email = str(contact.get("EmailAddress") or "").strip()
    if email:
        out["EMAIL"] = [{"VALUE": email, "VALUE_TYPE": "WORK"}]
    phones = []
    value_types = {"DEFAULT": "WORK", "DDI": "WORK", "OFFICE": "WORK", "MOBILE": "MOBILE", "FAX": "FAX"}
    for phone in contact.get("Phones") or []:
        number = _xero_phone_number(phone)
        if number:
            phones.append({"VALUE": number, "VALUE_TYPE": value_types.get(phone.get("PhoneType"), "OTHER")})
    if phones:
        out["PHONE"] = phones
    address = _xero_address(contact)
    if address:
        out.update(
            {
                "ADDRESS": address.get("AddressLine1", ""),
                "ADDRESS_2": " ".join(
                    address.get(k, "") for k in ("AddressLine2", "AddressLine3", "AddressLine4") if address.get(k)
                ),
                "ADDRESS_CITY": address.get("City", ""),
                "ADDRESS_REGION": address.get("Region", ""),
                "ADDRESS_POSTAL_CODE": address.get("PostalCode", ""),
                "ADDRESS_COUNTRY": address.get("Country", ""),
            }
        )
    return out


def xero_contact_address(contact: Mapping) -> dict | None:
    """crm.address.add `fields` (without ENTITY_TYPE_ID/ENTITY_ID, which the caller's requisite
    gives) for the contact's street address, else its postal one; None when both are empty."""
    address = _xero_address(contact)
    if not address:
        return None
    return {
        "TYPE_ID": XERO_ADDRESS_TYPE_IDS[address["AddressType"]],
        "ADDRESS_1": address.get("AddressLine1", ""),
        "ADDRESS_2": address.get("AddressLine2", ""),
        "CITY": address.get("City", ""),
        "REGION": address.get("Region", ""),
        "POSTAL_CODE": address.get("PostalCode", ""),
        "COUNTRY": address.get("Country", ""),
    }


def _xero_address(contact: Mapping) -> dict | None:
    # Full reads return both address types, mostly empty strings (xero-api.md §5.2).
    by_type = {a.get("AddressType"): a for a in contact.get("Addresses") or []}
    for xero_type in ("STREET", "POBOX"):
        address = by_type.get(xero_type) or {}
        filled = {k: str(v).strip() for k, v in address.items() if k != "AddressType" and str(v or "").strip()}
        if filled:
            return {"AddressType": xero_type, **filled}
    return None


def _xero_phone_number(phone: Mapping) -> str:
    number = str(phone.get("PhoneNumber") or "").strip()
    if not number:
        return ""
    country = str(phone.get("PhoneCountryCode") or "").strip()
    if country and country.isdigit():
        country = "+" + country
    return " ".join(p for p in (country, str(phone.get("PhoneAreaCode") or "").strip(), number) if p)


# --- catalogue --------------------------------------------------------------------------------------


def item_code_for_product(product_id: int | str) -> str:
    """The Xero item Code (≤30 chars, unique) of a Bitrix24 product created from our side."""
    return f"B24-P{product_id}"


def xero_item_to_product(item: Mapping, currency: str) -> dict:
    """A Bitrix24 catalog product from a Xero item: {"product": catalog.product.add fields (the caller
    adds iblockId), "price": catalog.price.add fields (the caller adds productId and catalogGroupId)
    or None when the item has no sales price}. Prices are in `currency`, the portal's chosen one."""
    name = str(item.get("Name") or item.get("Code") or "").strip()
    if not name:
        raise MappingError(f"Xero item {item.get('ItemID')} has neither a name nor a code.")
    product: dict = {"name": name, "code": str(item.get("Code") or ""), "xmlId": f"xero:{item.get('ItemID')}"}
    product["active"] = "Y"
    description = str(item.get("Description") or "").strip()
    if description:
        product["detailText"] = description
    unit_price = optional_decimal((item.get("SalesDetails") or {}).get("UnitPrice"))
    price = {"price": unit_amount(unit_price), "currency": currency} if unit_price is not None else None
    return {"product": product, "price": price}


def product_to_xero_item(
    product: Mapping, price: Decimal | None, *, code: str, account_code: str, tax_type: str
) -> dict:
    """A Xero item (sold, not tracked) from a Bitrix24 catalog product (catalog.product.get)."""
    name = str(product.get("name") or "").strip()
    if not name:
        raise MappingError(f"Product {product.get('id')} has no name; Xero items need one.")
    sales: dict = {"AccountCode": account_code, "TaxType": tax_type}
    if price is not None:
        sales["UnitPrice"] = unit_amount(price)
    out = {"Code": code[:30], "Name": name[:50], "IsSold": True, "SalesDetails": sales}
    description = str(product.get("detailText") or product.get("previewText") or "").strip() or name
    out["Description"] = description[:4000]
    return out
