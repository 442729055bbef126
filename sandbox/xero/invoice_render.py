"""Invoices as Xero's API shows them: rendering (with /Date()/ dates, payments, the outcome of a
write with its ValidationErrors), how where/order read an invoice, and the online invoice link
(GET /Invoices/{id}/OnlineInvoice, approved invoices only).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from sandbox.xero import contacts
from sandbox.xero.invoices import DATE_FIELDS
from sandbox.xero.store import Organisation, Outcome
from sandbox.xero.wire import ZERO_GUID, date_string, instant_string, ms_date, number, round_money, validation_errors

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
