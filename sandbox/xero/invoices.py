"""Invoices: the write rules (statuses, numbers, contacts, lines) of PUT/POST Invoices.

Lines and totals are computed in invoice_lines.py; rendering, where/order and the online invoice
link are in invoice_render.py.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from sandbox.xero import contacts, reference
from sandbox.xero.invoice_lines import build_line, compute_line, compute_totals
from sandbox.xero.store import Organisation, Outcome
from sandbox.xero.wire import is_guid, new_id, parse_date, to_decimal, utc_now

TYPES = ("ACCREC", "ACCPAY")
STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
# Where an invoice may go by writing Status (xero-api.md §3.4); PAID is reached only through payments.
TRANSITIONS = {
    None: {"DRAFT", "SUBMITTED", "AUTHORISED"},
    "DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"},
    "AUTHORISED": {"AUTHORISED", "VOIDED"},
}
LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "notax": "NoTax"}
DATE_FIELDS = ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate")
TEXT_FIELDS = {"Reference": 255, "Url": 2000, "BrandingThemeID": 36}

NOT_EDITABLE = "Invoice not of valid status for modification"
NEGATIVE_TOTAL = "An invoice with a total below zero cannot be approved. Raise a credit note instead."
HAS_PAYMENTS = "This document cannot be voided as it has a payment or credit note allocated to it."


def new_invoice() -> dict:
    return {
        "InvoiceID": None,
        "Type": None,
        "ContactID": None,
        "InvoiceNumber": None,
        "Status": None,
        "LineAmountTypes": "Exclusive",
        "LineItems": [],
        "Date": None,
        "DueDate": None,
        "CurrencyCode": None,
        "CurrencyRate": Decimal(1),
        "SentToContact": False,
        "AmountPaid": Decimal("0.00"),
        "AmountCredited": Decimal("0.00"),
        "FullyPaidOnDate": None,
        "PaymentIDs": [],
        "UpdatedDateUTC": None,
        "CreatedByClient": None,
    }


class _Draft:
    """Collects the pieces of one element's write until it is known to be valid."""

    def __init__(self, org: Organisation, element: dict, existing: dict | None, unitdp: int) -> None:
        self.org = org
        self.element = element
        self.existing = existing
        self.unitdp = unitdp
        self.invoice = copy.deepcopy(existing) if existing else new_invoice()
        self.errors: list[str] = []
        self.contact_to_create: dict | None = None


def find_target(org: Organisation, element: dict, target_id: str | None, create_only: bool) -> tuple[dict | None, str]:
    key = target_id or element.get("InvoiceID")
    if key:
        found = org.invoice_by_id_or_number(str(key)) if target_id else None
        if found is None and is_guid(str(key)):
            found = org.invoices.get(str(key).lower())
        if found is None:
            return None, f"Invoice with InvoiceID {key} could not be found"
        return found, ""
    number_ = element.get("InvoiceNumber")
    if not create_only and isinstance(number_, str) and number_ and element.get("Type", "ACCREC") == "ACCREC":
        # POST identifies an existing sales invoice by its number, as Xero allows.
        found_id = org.invoice_by_number.get(number_)
        if found_id:
            return org.invoices[found_id], ""
    return None, ""


def write_invoice(
    org: Organisation,
    element: object,
    *,
    target_id: str | None = None,
    create_only: bool = False,
    unitdp: int = 2,
    client_id: str | None = None,
) -> Outcome:
    if not isinstance(element, dict):
        return Outcome(entity=new_invoice(), errors=["Invoice Type must be specified"])
    existing, problem = find_target(org, element, target_id, create_only)
    draft = _Draft(org, element, existing, unitdp)
    if problem:
        draft.errors.append(problem)
        draft.invoice["InvoiceID"] = None
    elif existing is not None and not _editable(existing, element, draft.errors):
        return Outcome(entity=draft.invoice, errors=draft.errors)
    _apply_header(draft)
    _apply_contact(draft)
    _apply_status(draft)
    _apply_lines(draft)
    _apply_number(draft)
    compute_totals(draft.invoice, org)
    if draft.invoice["Status"] == "AUTHORISED" and draft.invoice["Total"] < 0:
        # Xero saves a draft below zero but will not approve it: that is what credit notes are for.
        draft.errors.append(NEGATIVE_TOTAL)
    if draft.errors:
        return Outcome(entity=draft.invoice, errors=draft.errors)
    return _commit(draft, client_id)


def _editable(existing: dict, element: dict, errors: list[str]) -> bool:
    status = existing["Status"]
    if status == "AUTHORISED" and existing["PaymentIDs"] and element.get("Status") == "VOIDED":
        errors.append(HAS_PAYMENTS)
        return False
    if status not in TRANSITIONS or (status == "AUTHORISED" and existing["AmountPaid"] > 0):
        errors.append(NOT_EDITABLE)
        return False
    return True


def _apply_header(draft: _Draft) -> None:
    invoice, element, errors = draft.invoice, draft.element, draft.errors
    kind = element.get("Type")
    if kind is not None:
        if kind not in TYPES:
            errors.append("Invoice Type must be ACCREC or ACCPAY")
        elif draft.existing and kind != draft.existing["Type"]:
            errors.append("The Type of an invoice cannot be changed")
        else:
            invoice["Type"] = kind
    if invoice["Type"] is None and "Invoice Type must be ACCREC or ACCPAY" not in errors:
        errors.append("Invoice Type must be specified")
    for field, limit in TEXT_FIELDS.items():
        value = element.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            errors.append(f"{field} must be text of at most {limit} characters")
        else:
            invoice[field] = value
    for field in DATE_FIELDS:
        if element.get(field) is not None:
            try:
                invoice[field] = parse_date(element[field])
            except ValueError:
                errors.append(f"{field} is not a valid date")
    if invoice["Date"] is None:
        invoice["Date"] = draft.org.today()
    if element.get("LineAmountTypes") is not None:
        chosen = LINE_AMOUNT_TYPES.get(str(element["LineAmountTypes"]).replace(" ", "").lower())
        if chosen is None:
            errors.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
        else:
            invoice["LineAmountTypes"] = chosen
    if isinstance(element.get("SentToContact"), bool):
        invoice["SentToContact"] = element["SentToContact"]
    _apply_currency(draft)


def _apply_currency(draft: _Draft) -> None:
    invoice, element, org = draft.invoice, draft.element, draft.org
    if element.get("CurrencyCode") is not None:
        code = str(element["CurrencyCode"]).upper()
        if code not in org.currencies:
            draft.errors.append(f"The currency {code} is not enabled for this organisation.")
            return
        invoice["CurrencyCode"] = code
    if invoice["CurrencyCode"] is None:
        invoice["CurrencyCode"] = org.base_currency
    if element.get("CurrencyRate") is not None:
        try:
            rate = to_decimal(element["CurrencyRate"])
            if rate <= 0:
                raise ValueError
            invoice["CurrencyRate"] = rate
        except ValueError:
            draft.errors.append("CurrencyRate must be a positive number")
    elif invoice["CurrencyCode"] == org.base_currency:
        invoice["CurrencyRate"] = Decimal(1)
    elif "CurrencyCode" in element:
        ours = reference.DAY_RATES.get(invoice["CurrencyCode"], Decimal(1))
        base = reference.DAY_RATES.get(org.base_currency, Decimal(1))
        invoice["CurrencyRate"] = (ours / base).quantize(Decimal("0.000001"))


def _apply_contact(draft: _Draft) -> None:
    given = draft.element.get("Contact")
    invoice, org = draft.invoice, draft.org
    if given is None:
        if invoice["ContactID"] is None:
            draft.errors.append("A Contact must be specified for this type of transaction")
        return
    if not isinstance(given, dict):
        draft.errors.append("A Contact must be specified for this type of transaction")
        return
    contact_id = given.get("ContactID")
    if contact_id:
        found = org.contacts.get(str(contact_id).lower())
        if found is None:
            draft.errors.append(f"Contact with ContactID {contact_id} could not be found")
        else:
            invoice["ContactID"] = found["ContactID"]
        return
    if given.get("ContactNumber"):
        found = org.contact_numbered(str(given["ContactNumber"]))
        if found is not None:
            invoice["ContactID"] = found["ContactID"]
            return
    name = given.get("Name")
    if isinstance(name, str) and name.strip():
        found = org.active_contact_named(name)
        if found is not None:
            invoice["ContactID"] = found["ContactID"]
        else:
            # An unknown name creates the contact, but only once the invoice itself is valid.
            draft.contact_to_create = {
                key: value for key, value in given.items() if key not in ("ContactID", "IsCustomer", "IsSupplier")
            }
        return
    draft.errors.append("A Contact must be specified for this type of transaction")


def _apply_status(draft: _Draft) -> None:
    invoice, element = draft.invoice, draft.element
    current = draft.existing["Status"] if draft.existing else None
    wanted = element.get("Status")
    if wanted is None:
        invoice["Status"] = current or "DRAFT"
        return
    if wanted not in STATUSES:
        draft.errors.append(f"Status {wanted} is not a valid invoice status")
        return
    if wanted not in TRANSITIONS[current]:
        draft.errors.append(NOT_EDITABLE if current else "Invoice not of valid status for creation")
        return
    invoice["Status"] = wanted


def _apply_lines(draft: _Draft) -> None:
    invoice, element = draft.invoice, draft.element
    given = element.get("LineItems")
    if given is not None:
        if not isinstance(given, list):
            draft.errors.append("LineItems must be a list")
            return
        kept = {line["LineItemID"]: line for line in invoice["LineItems"]}
        invoice["LineItems"] = [build_line(draft, raw, kept) for raw in given]
    else:
        # Lines stay; recompute their tax in case LineAmountTypes changed.
        for line in invoice["LineItems"]:
            compute_line(draft, line)
    if invoice["Status"] in ("SUBMITTED", "AUTHORISED") and not invoice["LineItems"]:
        draft.errors.append("One or more line items must be specified")


def _apply_number(draft: _Draft) -> None:
    invoice, element, org = draft.invoice, draft.element, draft.org
    wanted = element.get("InvoiceNumber")
    if wanted is None:
        return
    if not isinstance(wanted, str) or len(wanted) > 255:
        draft.errors.append("InvoiceNumber must be text of at most 255 characters")
        return
    wanted = wanted.strip()
    if invoice["Type"] == "ACCREC" and wanted:
        holder = org.invoice_by_number.get(wanted)
        if holder and holder != invoice["InvoiceID"]:
            draft.errors.append("Invoice # must be unique.")
            return
    invoice["InvoiceNumber"] = wanted or None


def _commit(draft: _Draft, client_id: str | None) -> Outcome:
    invoice, org = draft.invoice, draft.org
    events: list[tuple[str, str, str]] = []
    if draft.contact_to_create is not None:
        made = contacts.write_contact(org, draft.contact_to_create, create_only=True)
        if not made.ok:
            return Outcome(entity=invoice, errors=made.errors)
        invoice["ContactID"] = made.entity["ContactID"]
        events.extend(made.events)
    created = draft.existing is None
    if created:
        invoice["InvoiceID"] = new_id()
        invoice["CreatedByClient"] = client_id
        if invoice["Type"] == "ACCREC" and not invoice["InvoiceNumber"]:
            invoice["InvoiceNumber"] = org.take_invoice_number()
    invoice["UpdatedDateUTC"] = utc_now()
    org.index_invoice(invoice, draft.existing)
    events.append(("INVOICE", "CREATE" if created else "UPDATE", invoice["InvoiceID"]))
    if invoice["Status"] != "DELETED":
        events.extend(contacts.mark_role(org, invoice["ContactID"], invoice["Type"]))
    return Outcome(entity=invoice, created=created, events=events)
