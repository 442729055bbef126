"""Contacts: validation of writes (unique active name, unique account number) and rendering."""

from __future__ import annotations

import copy

from sandbox.xero.store import Organisation, Outcome, name_key
from sandbox.xero.wire import instant_string, is_guid, ms_date, new_id, utc_now, validation_errors

# Writable text fields and their length limits (spec).
TEXT_FIELDS = {
    "Name": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "FirstName": 255,
    "LastName": 255,
    "EmailAddress": 255,
    "CompanyNumber": 50,
    "TaxNumber": 50,
    "BankAccountDetails": 255,
    "SkypeUserName": 255,
    "SalesDefaultAccountCode": 10,
    "PurchasesDefaultAccountCode": 10,
    "AccountsReceivableTaxType": 50,
    "AccountsPayableTaxType": 50,
    "DefaultCurrency": 3,
}
PASSTHROUGH_FIELDS = ("PaymentTerms", "ContactPersons", "TaxNumberType")
STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
ADDRESS_TYPES = ("POBOX", "STREET")
ADDRESS_FIELDS = {
    "AddressLine1": 500,
    "AddressLine2": 500,
    "AddressLine3": 500,
    "AddressLine4": 500,
    "City": 255,
    "Region": 255,
    "PostalCode": 50,
    "Country": 50,
    "AttentionTo": 255,
}
PHONE_TYPES = ("DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE")
PHONE_FIELDS = {"PhoneNumber": 50, "PhoneAreaCode": 10, "PhoneCountryCode": 20}


def duplicate_name_message(name: str) -> str:
    return (
        f"The contact name {name} is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    )


def new_contact() -> dict:
    return {
        "ContactID": None,
        "ContactStatus": "ACTIVE",
        "Name": "",
        "Addresses": {},
        "Phones": {},
        "IsCustomer": False,
        "IsSupplier": False,
        "UpdatedDateUTC": None,
    }


def find_target(org: Organisation, element: dict, target_id: str | None, create_only: bool) -> tuple[dict | None, str]:
    """The existing contact an element updates (None: create), or an error message."""
    contact_id = target_id or element.get("ContactID")
    if contact_id:
        existing = org.contacts.get(str(contact_id).lower()) if is_guid(str(contact_id)) else None
        if existing is None:
            return None, f"Contact with ContactID {contact_id} could not be found"
        return existing, ""
    number = element.get("ContactNumber")
    if not create_only and isinstance(number, str) and number:
        # POST matches an existing contact by its external id, as Xero does.
        return org.contact_numbered(number), ""
    return None, ""


def write_contact(
    org: Organisation, element: object, *, target_id: str | None = None, create_only: bool = False
) -> Outcome:
    if not isinstance(element, dict):
        return Outcome(entity=new_contact(), errors=["A Contact must be specified"])
    existing, problem = find_target(org, element, target_id, create_only)
    candidate = copy.deepcopy(existing) if existing else new_contact()
    errors = [problem] if problem else []
    apply_fields(candidate, element, errors)
    if not errors:
        check_uniqueness(org, candidate, errors)
    if errors:
        return Outcome(entity=candidate, errors=errors)
    created = existing is None
    if created:
        candidate["ContactID"] = new_id()
    candidate["UpdatedDateUTC"] = utc_now()
    org.index_contact(candidate, existing)
    return Outcome(
        entity=candidate,
        created=created,
        events=[("CONTACT", "CREATE" if created else "UPDATE", candidate["ContactID"])],
    )


def apply_fields(contact: dict, element: dict, errors: list[str]) -> None:
    for field, limit in TEXT_FIELDS.items():
        if field not in element:
            continue
        value = element[field]
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append(f"{field} must be text")
            continue
        if len(value) > limit:
            errors.append(f"{field} must not be more than {limit} characters long.")
            continue
        contact[field] = value.strip() if field == "Name" else value
    for field in PASSTHROUGH_FIELDS:
        if element.get(field) is not None:
            contact[field] = element[field]
    if not (contact.get("Name") or "").strip():
        errors.append("Contact Name cannot be empty.")
    status = element.get("ContactStatus")
    if status is not None:
        if status not in STATUSES:
            errors.append(f"ContactStatus {status} is not valid")
        else:
            contact["ContactStatus"] = status
    email = contact.get("EmailAddress")
    if email and ("@" not in email or any(ord(ch) > 127 for ch in email)):
        errors.append("Email address must be valid.")
    apply_addresses(contact, element.get("Addresses"), errors)
    apply_phones(contact, element.get("Phones"), errors)


def apply_addresses(contact: dict, addresses: object, errors: list[str]) -> None:
    _apply_typed(
        contact["Addresses"],
        addresses,
        errors,
        "Addresses",
        "AddressType",
        ADDRESS_TYPES,
        ADDRESS_FIELDS,
        "AddressType must be POBOX or STREET",
    )


def apply_phones(contact: dict, phones: object, errors: list[str]) -> None:
    _apply_typed(
        contact["Phones"],
        phones,
        errors,
        "Phones",
        "PhoneType",
        PHONE_TYPES,
        PHONE_FIELDS,
        "PhoneType must be DEFAULT, DDI, MOBILE, FAX or OFFICE",
    )


def _apply_typed(
    slots: dict, entries: object, errors: list[str], plural: str, type_key: str, kinds, fields: dict, bad_kind: str
) -> None:
    """Addresses and phones alike: one slot per type, each field within Xero's length limit."""
    if entries is None:
        return
    if not isinstance(entries, list):
        errors.append(f"{plural} must be a list")
        return
    for entry in entries:
        kind = entry.get(type_key) if isinstance(entry, dict) else None
        if kind not in kinds:
            errors.append(bad_kind)
            continue
        stored = {type_key: kind}
        for field, limit in fields.items():
            value = entry.get(field)
            if value is None:
                continue
            if len(str(value)) > limit:
                errors.append(f"{field} must not be more than {limit} characters long.")
            stored[field] = str(value)
        slots[kind] = stored


def check_uniqueness(org: Organisation, contact: dict, errors: list[str]) -> None:
    if contact["ContactStatus"] == "ACTIVE":
        holder = org.contact_by_name.get(name_key(contact["Name"]))
        if holder and holder != contact["ContactID"]:
            errors.append(duplicate_name_message(contact["Name"]))
    account_number = contact.get("AccountNumber")
    if account_number:
        holder = org.contact_by_account_number.get(account_number)
        if holder and holder != contact["ContactID"]:
            errors.append("The Account Number already exists. Please enter a different Account Number.")


def mark_role(org: Organisation, contact_id: str, invoice_type: str) -> list[tuple[str, str, str]]:
    """IsCustomer/IsSupplier follow from invoices raised for the contact (read-only for clients)."""
    contact = org.contacts.get(contact_id)
    flag = "IsCustomer" if invoice_type == "ACCREC" else "IsSupplier"
    if contact is None or contact.get(flag):
        return []
    contact[flag] = True
    contact["UpdatedDateUTC"] = utc_now()
    return [("CONTACT", "UPDATE", contact_id)]


# --- rendering -----------------------------------------------------------------------------------
def render_contact(contact: dict, *, full: bool = True) -> dict:
    body = {
        "ContactID": contact["ContactID"],
        "ContactStatus": contact.get("ContactStatus", "ACTIVE"),
        "Name": contact["Name"],
    }
    for field in TEXT_FIELDS:
        if field != "Name" and contact.get(field) is not None:
            body[field] = contact[field]
    for field in PASSTHROUGH_FIELDS:
        if contact.get(field) is not None:
            body[field] = contact[field]
    if full:
        # Full reads carry both address types and the four phone types, mostly empty (spec examples).
        body["Addresses"] = [contact["Addresses"].get(kind) or {"AddressType": kind} for kind in ADDRESS_TYPES]
        phones = []
        for kind in PHONE_TYPES[:4]:
            phone = {"PhoneType": kind, "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}
            phone.update(contact["Phones"].get(kind) or {})
            phones.append(phone)
        if "OFFICE" in contact["Phones"]:
            phones.append(contact["Phones"]["OFFICE"])
        body["Phones"] = phones
    else:
        body["Addresses"] = list(contact["Addresses"].values())
        body["Phones"] = list(contact["Phones"].values())
    body["UpdatedDateUTC"] = ms_date(contact["UpdatedDateUTC"])
    body["UpdatedDateUTCString"] = instant_string(contact["UpdatedDateUTC"])
    body["ContactGroups"] = []
    body["IsSupplier"] = contact.get("IsSupplier", False)
    body["IsCustomer"] = contact.get("IsCustomer", False)
    body["HasAttachments"] = False
    body["HasValidationErrors"] = False
    return body


def render_contact_summary(contact: dict) -> dict:
    """The contact inside an unpaged invoice list: just enough to identify it."""
    return {
        "ContactID": contact["ContactID"],
        "Name": contact["Name"],
        "Addresses": [],
        "Phones": [],
        "ContactGroups": [],
        "ContactPersons": [],
        "HasValidationErrors": False,
    }


def render_outcome(outcome: Outcome) -> dict:
    """A write response element: the contact plus its status attributes (zero GUID when never saved)."""
    contact = outcome.entity
    if outcome.ok:
        body = render_contact(contact)
        body["StatusAttributeString"] = "OK"
        return body
    echo = dict(contact)
    if not echo.get("ContactID"):
        echo["ContactID"] = "00000000-0000-0000-0000-000000000000"
    body = render_contact(echo)
    body["HasValidationErrors"] = True
    body["StatusAttributeString"] = "ERROR"
    body["ValidationErrors"] = validation_errors(outcome.errors)
    return body
