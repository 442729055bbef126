"""Invoices: the write rules (statuses, numbers, contacts, lines, totals) and rendering.

Totals follow Xero: each line's amount and tax are rounded half-up to cents, then summed; a Total sent
by the client is ignored. A line's TaxAmount, when sent, overrides the computed tax (LineItem.TaxAmount:
"can be overriden if the calculated TaxAmount is not correct"). Line items are replaced on update; a LineItemID sent back keeps its line.
"""

from __future__ import annotations

import copy
import hashlib
from decimal import Decimal

from sandbox.xero import contacts, reference
from sandbox.xero.store import Organisation, Outcome
from sandbox.xero.wire import (
    ZERO_GUID,
    date_string,
    instant_string,
    is_guid,
    ms_date,
    new_id,
    number,
    parse_date,
    round_money,
    to_decimal,
    utc_now,
    validation_errors,
)

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

# Fields a where/order clause may name on invoices.
QUERY_FIELDS = {
    "InvoiceID",
    "InvoiceNumber",
    "Type",
    "Status",
    "Reference",
    "Url",
    "Date",
    "DueDate",
    "FullyPaidOnDate",
    "UpdatedDateUTC",
    "CurrencyCode",
    "SubTotal",
    "TotalTax",
    "Total",
    "AmountDue",
    "AmountPaid",
    "AmountCredited",
    "SentToContact",
    "Contact",
    "LineAmountTypes",
    "BrandingThemeID",
    "HasAttachments",
}


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
    _compute_totals(draft.invoice, org)
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
        invoice["LineItems"] = [_build_line(draft, raw, kept) for raw in given]
    else:
        # Lines stay; recompute their tax in case LineAmountTypes changed.
        for line in invoice["LineItems"]:
            _compute_line(draft, line)
    if invoice["Status"] in ("SUBMITTED", "AUTHORISED") and not invoice["LineItems"]:
        draft.errors.append("One or more line items must be specified")


def _number_field(draft: _Draft, raw: dict, field: str, places: int) -> Decimal | None:
    if raw.get(field) is None:
        return None
    try:
        return round_money(to_decimal(raw[field]), places)
    except ValueError:
        draft.errors.append(f"{field} must be a number")
        return None


def _build_line(draft: _Draft, raw: object, kept: dict) -> dict:
    if not isinstance(raw, dict):
        draft.errors.append("A line item must be an object")
        return {"LineItemID": new_id()}
    org, sales = draft.org, draft.invoice["Type"] != "ACCPAY"
    line_id = str(raw.get("LineItemID") or "").lower()
    line = {"LineItemID": line_id if line_id in kept else new_id()}
    code = raw.get("ItemCode")
    item = None
    if code:
        item = org.item_by_id_or_code(str(code))
        if item is None:
            draft.errors.append(f"Item code '{code}' is not valid")
        else:
            line["ItemCode"] = item["Code"]
    details = (item or {}).get("SalesDetails" if sales else "PurchaseDetails") or {}
    description = raw.get("Description")
    if description is None and item is not None:
        description = item.get("Description" if sales else "PurchaseDescription") or item.get("Name")
    if description is not None:
        if len(str(description)) > 4000:
            draft.errors.append("Description must not be more than 4000 characters long.")
        line["Description"] = str(description)
    line["Quantity"] = _number_field(draft, raw, "Quantity", 4)
    line["UnitAmount"] = _number_field(draft, raw, "UnitAmount", draft.unitdp)
    if line["UnitAmount"] is None and details.get("UnitPrice") is not None:
        line["UnitAmount"] = round_money(details["UnitPrice"], draft.unitdp)
    line["GivenLineAmount"] = _number_field(draft, raw, "LineAmount", 2)
    line["DiscountRate"] = _number_field(draft, raw, "DiscountRate", 4)
    line["DiscountAmount"] = _number_field(draft, raw, "DiscountAmount", 2)
    # "This value can be overriden if the calculated <TaxAmount> is not correct" (LineItem.TaxAmount).
    line["TaxAmountOverride"] = _number_field(draft, raw, "TaxAmount", 2)
    account = None
    if raw.get("AccountCode") or raw.get("AccountID"):
        account = org.account(code=raw.get("AccountCode"), account_id=raw.get("AccountID"))
        if account is None or account["Status"] != "ACTIVE":
            draft.errors.append("Account must be valid.")
    elif details.get("AccountCode"):
        account = org.account(code=details["AccountCode"])
    if account is not None:
        line["AccountCode"] = account["Code"]
        line["AccountID"] = account["AccountID"]
    tax_type = raw.get("TaxType") or details.get("TaxType")
    if tax_type:
        if tax_type not in org.tax_rates:
            draft.errors.append("Tax rate must be valid.")
        line["TaxType"] = tax_type
    elif account is not None:
        line["TaxType"] = account["TaxType"]
    if isinstance(raw.get("Tracking"), list):
        line["Tracking"] = raw["Tracking"]
    _compute_line(draft, line)
    return line


def _compute_line(draft: _Draft, line: dict) -> None:
    quantity, unit, given = line.get("Quantity"), line.get("UnitAmount"), line.get("GivenLineAmount")
    if quantity is None and unit is None and given is not None:
        quantity, unit = Decimal(1), given
    elif quantity is None and unit is not None:
        quantity = Decimal(1)
    elif unit is None and quantity is not None:
        unit = round_money(given / quantity, draft.unitdp) if given is not None and quantity else Decimal(0)
    line["Quantity"], line["UnitAmount"] = quantity, unit
    gross = (quantity or 0) * (unit or 0)
    amount = gross
    if line.get("DiscountRate"):
        amount = gross * (100 - line["DiscountRate"]) / 100
    elif line.get("DiscountAmount"):
        amount = gross - line["DiscountAmount"]
    line["LineAmount"] = round_money(Decimal(amount))
    line["Discount"] = round_money(Decimal(gross)) - line["LineAmount"]
    modes = draft.invoice["LineAmountTypes"]
    if modes == "NoTax":
        line["TaxType"] = "NONE"
    rate = draft.org.tax_rates.get(line.get("TaxType") or "NONE", {}).get("Rate", Decimal(0))
    if modes != "NoTax" and line.get("TaxAmountOverride") is not None:
        line["TaxAmount"] = line["TaxAmountOverride"]
    elif modes == "Exclusive":
        line["TaxAmount"] = round_money(line["LineAmount"] * rate / 100)
    elif modes == "Inclusive":
        line["TaxAmount"] = round_money(line["LineAmount"] * rate / (100 + rate))
    else:
        line["TaxAmount"] = Decimal("0.00")


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


def _compute_totals(invoice: dict, org: Organisation) -> None:
    lines = invoice["LineItems"]
    amounts = sum((line.get("LineAmount", Decimal(0)) for line in lines), Decimal("0.00"))
    tax = sum((line.get("TaxAmount", Decimal(0)) for line in lines), Decimal("0.00"))
    if invoice["LineAmountTypes"] == "Inclusive":
        invoice["SubTotal"], invoice["Total"] = amounts - tax, amounts
    else:
        invoice["SubTotal"], invoice["Total"] = amounts, amounts + tax
    invoice["TotalTax"] = tax
    invoice["TotalDiscount"] = sum((line.get("Discount", Decimal(0)) for line in lines), Decimal("0.00"))
    if invoice["Status"] in ("VOIDED", "DELETED"):
        invoice["AmountDue"] = Decimal("0.00")
    else:
        invoice["AmountDue"] = invoice["Total"] - invoice["AmountPaid"] - invoice["AmountCredited"]


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


# --- online invoice ------------------------------------------------------------------------------
ONLINE_STATUSES = ("AUTHORISED", "PAID")


def online_invoice_refusal(invoice: dict) -> str:
    """Why Xero would not give an online invoice URL ("" = it will)."""
    if invoice.get("Type") != "ACCREC":
        return "Online invoices are only available for sales invoices (ACCREC)."
    if invoice.get("Status") not in ONLINE_STATUSES:
        return "Online invoices are only available for approved invoices (AUTHORISED or PAID)."
    return ""


def online_invoice_token(invoice: dict) -> str:
    """Stable per invoice, unguessable enough for a fake: 40 characters like Xero's in.xero.com links."""
    return hashlib.sha256(f"online:{invoice['InvoiceID']}".encode()).hexdigest()[:40]


def find_by_online_token(world, token: str) -> tuple[Organisation, dict] | None:
    for org in world.organisations.values():
        for invoice in org.invoices.values():
            if online_invoice_token(invoice) == token and not online_invoice_refusal(invoice):
                return org, invoice
    return None


# --- rendering -----------------------------------------------------------------------------------
def render_line(line: dict, unitdp: int) -> dict:
    body = {"LineItemID": line["LineItemID"]}
    if line.get("Description") is not None:
        body["Description"] = line["Description"]
    if line.get("Quantity") is not None:
        body["Quantity"] = number(line["Quantity"])
    if line.get("UnitAmount") is not None:
        body["UnitAmount"] = number(round_money(line["UnitAmount"], unitdp))
    for field in ("ItemCode", "AccountCode", "AccountID", "TaxType"):
        if line.get(field):
            body[field] = line[field]
    body["TaxAmount"] = number(line.get("TaxAmount", Decimal(0)))
    body["LineAmount"] = number(line.get("LineAmount", Decimal(0)))
    if line.get("DiscountRate") is not None:
        body["DiscountRate"] = number(line["DiscountRate"])
    if line.get("DiscountAmount") is not None:
        body["DiscountAmount"] = number(line["DiscountAmount"])
    body["Tracking"] = line.get("Tracking", [])
    return body


def render_invoice(org: Organisation, invoice: dict, *, full: bool = True, unitdp: int = 2) -> dict:
    contact = org.contacts.get(invoice["ContactID"]) if invoice["ContactID"] else None
    body = {
        "Type": invoice["Type"],
        "InvoiceID": invoice["InvoiceID"],
        "InvoiceNumber": invoice.get("InvoiceNumber") or "",
        "Reference": invoice.get("Reference") or "",
        "Payments": [_payment_summary(org.payments[pid]) for pid in invoice["PaymentIDs"]],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": number(invoice.get("AmountDue")),
        "AmountPaid": number(invoice["AmountPaid"]),
        "AmountCredited": number(invoice["AmountCredited"]),
        "CurrencyRate": number(invoice["CurrencyRate"]),
        "IsDiscounted": bool(invoice.get("TotalDiscount")),
        "HasAttachments": False,
        "HasErrors": False,
    }
    if contact is not None:
        body["Contact"] = contacts.render_contact(contact) if full else contacts.render_contact_summary(contact)
    for field in DATE_FIELDS:
        if invoice.get(field) is not None:
            body[f"{field}String"] = date_string(invoice[field])
            body[field] = ms_date(invoice[field])
    body["Status"] = invoice["Status"]
    body["LineAmountTypes"] = invoice["LineAmountTypes"]
    if full:
        body["LineItems"] = [render_line(line, unitdp) for line in invoice["LineItems"]]
    body["SubTotal"] = number(invoice.get("SubTotal"))
    body["TotalTax"] = number(invoice.get("TotalTax"))
    body["Total"] = number(invoice.get("Total"))
    if invoice.get("TotalDiscount"):
        body["TotalDiscount"] = number(invoice["TotalDiscount"])
    body["UpdatedDateUTC"] = ms_date(invoice["UpdatedDateUTC"])
    body["UpdatedDateUTCString"] = instant_string(invoice["UpdatedDateUTC"])
    body["CurrencyCode"] = invoice["CurrencyCode"]
    if invoice.get("FullyPaidOnDate") is not None:
        body["FullyPaidOnDate"] = ms_date(invoice["FullyPaidOnDate"])
    for field in ("Url", "BrandingThemeID"):
        if invoice.get(field):
            body[field] = invoice[field]
    body["SentToContact"] = invoice["SentToContact"]
    return body


def _payment_summary(payment: dict) -> dict:
    return {
        "PaymentID": payment["PaymentID"],
        "Date": ms_date(payment["Date"]),
        "Amount": number(payment["Amount"]),
        "Reference": payment.get("Reference") or "",
        "CurrencyRate": number(payment["CurrencyRate"]),
        "HasAccount": False,
        "HasValidationErrors": False,
    }


def render_outcome(org: Organisation, outcome: Outcome, unitdp: int) -> dict:
    """A write response element: OK with the saved invoice, or ERROR with the echo and its messages."""
    invoice = outcome.entity
    if outcome.ok:
        body = render_invoice(org, invoice, unitdp=unitdp)
        body["StatusAttributeString"] = "OK"
        return body
    echo = dict(invoice)
    echo.setdefault("SubTotal", None)
    if not echo.get("InvoiceID"):
        echo["InvoiceID"] = ZERO_GUID
    echo["PaymentIDs"] = [pid for pid in echo.get("PaymentIDs", []) if pid in org.payments]
    body = render_invoice(org, echo, unitdp=unitdp)
    body["HasErrors"] = True
    body["StatusAttributeString"] = "ERROR"
    body["ValidationErrors"] = validation_errors(outcome.errors)
    return body


def resolve_field(org: Organisation):
    """How where/order read an invoice: Contact.* comes from the contact record."""

    def resolve(invoice: dict, path: str) -> object:
        if path.startswith("Contact"):
            if path in ("Contact", "Contact.ContactID"):
                return invoice["ContactID"]
            contact = org.contacts.get(invoice["ContactID"]) or {}
            return contact.get(path.split(".", 1)[1])
        return invoice.get(path)

    return resolve
