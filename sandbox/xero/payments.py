"""Payments against invoices: they move AmountPaid/AmountDue, flip the invoice to PAID, and undo on delete."""

from __future__ import annotations

from decimal import Decimal

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

QUERY_FIELDS = {
    "PaymentID",
    "Date",
    "Amount",
    "Reference",
    "Status",
    "PaymentType",
    "IsReconciled",
    "UpdatedDateUTC",
    "Invoice",
    "Account",
}
NO_ACCOUNT = "You must specify an Account code or Account ID for the payment"


def _find_invoice(org: Organisation, element: dict) -> dict | None:
    given = element.get("Invoice") if isinstance(element.get("Invoice"), dict) else {}
    if given.get("InvoiceID"):
        return org.invoices.get(str(given["InvoiceID"]).lower())
    number_ = given.get("InvoiceNumber") or element.get("InvoiceNumber")
    if number_:
        return org.invoice_by_id_or_number(str(number_))
    return None


def _find_account(org: Organisation, element: dict) -> tuple[dict | None, str]:
    given = element.get("Account") if isinstance(element.get("Account"), dict) else {}
    code, account_id = given.get("Code") or element.get("Code"), given.get("AccountID")
    if not code and not account_id:
        return None, NO_ACCOUNT
    account = org.account(code=code, account_id=account_id)
    if account is None or account["Status"] != "ACTIVE":
        return None, "Account could not be found"
    if account["Type"] != "BANK" and not account["EnablePaymentsToAccount"]:
        return None, "Payments can only be made to bank accounts or accounts with payments enabled"
    return account, ""


def create_payment(org: Organisation, element: object) -> Outcome:
    if not isinstance(element, dict):
        return Outcome(entity={"PaymentID": None}, errors=["A payment must be an object"])
    errors: list[str] = []
    invoice = _find_invoice(org, element)
    if invoice is None:
        errors.append("Invoice could not be found")
    account, problem = _find_account(org, element)
    if problem:
        errors.append(problem)
    amount = None
    try:
        amount = round_money(to_decimal(element.get("Amount")))
        if amount <= 0:
            errors.append("Payment amount must be greater than zero")
    except ValueError:
        errors.append("Amount must be a number")
    try:
        paid_on = parse_date(element["Date"]) if element.get("Date") is not None else org.today()
    except ValueError:
        errors.append("Date is not a valid date")
        paid_on = org.today()
    if invoice is not None:
        if invoice["Status"] != "AUTHORISED":
            errors.append("Payments can only be made against Authorised documents")
        elif amount is not None and amount > invoice["AmountDue"]:
            errors.append("The payment amount exceeds the amount outstanding on this document.")
    payment = {
        "PaymentID": None,
        "Date": paid_on,
        "Amount": amount or Decimal("0.00"),
        "Reference": str(element.get("Reference") or ""),
        "CurrencyRate": _rate(element, invoice),
        "IsReconciled": bool(element.get("IsReconciled")),
        "Status": "AUTHORISED",
        "PaymentType": "ACCPAYPAYMENT" if invoice and invoice["Type"] == "ACCPAY" else "ACCRECPAYMENT",
        "InvoiceID": invoice["InvoiceID"] if invoice else None,
        "AccountID": account["AccountID"] if account else None,
        "UpdatedDateUTC": None,
    }
    if errors:
        return Outcome(entity=payment, errors=errors)
    payment["PaymentID"] = new_id()
    payment["UpdatedDateUTC"] = utc_now()
    org.payments[payment["PaymentID"]] = payment
    invoice["PaymentIDs"].append(payment["PaymentID"])
    _settle(invoice, org)
    return Outcome(entity=payment, created=True, events=[("INVOICE", "UPDATE", invoice["InvoiceID"])])


def _rate(element: dict, invoice: dict | None) -> Decimal:
    try:
        return (
            to_decimal(element["CurrencyRate"]) if element.get("CurrencyRate") is not None else invoice["CurrencyRate"]
        )
    except (ValueError, TypeError):
        return Decimal(1)


def delete_payment(org: Organisation, payment: dict, element: object) -> Outcome:
    if not isinstance(element, dict) or element.get("Status") != "DELETED":
        return Outcome(entity=payment, errors=['A payment can only be deleted: send {"Status": "DELETED"}'])
    if payment["Status"] == "DELETED":
        return Outcome(entity=payment, errors=["This payment has already been deleted"])
    payment["Status"] = "DELETED"
    payment["UpdatedDateUTC"] = utc_now()
    invoice = org.invoices[payment["InvoiceID"]]
    _settle(invoice, org)
    return Outcome(entity=payment, events=[("INVOICE", "UPDATE", invoice["InvoiceID"])])


def _settle(invoice: dict, org: Organisation) -> None:
    """Recompute what is paid and due; the payment that clears the invoice makes it PAID."""
    live = [org.payments[pid] for pid in invoice["PaymentIDs"] if org.payments[pid]["Status"] == "AUTHORISED"]
    invoice["PaymentIDs"] = [payment["PaymentID"] for payment in live]
    invoice["AmountPaid"] = sum((payment["Amount"] for payment in live), Decimal("0.00"))
    invoice["AmountDue"] = invoice["Total"] - invoice["AmountPaid"] - invoice["AmountCredited"]
    if invoice["AmountDue"] <= 0 and live:
        invoice["Status"] = "PAID"
        invoice["FullyPaidOnDate"] = max(payment["Date"] for payment in live)
    elif invoice["Status"] == "PAID":
        invoice["Status"] = "AUTHORISED"
        invoice["FullyPaidOnDate"] = None
    invoice["UpdatedDateUTC"] = utc_now()


def render_payment(org: Organisation, payment: dict) -> dict:
    invoice = org.invoices.get(payment["InvoiceID"]) if payment["InvoiceID"] else None
    account = org.accounts.get(payment["AccountID"]) if payment["AccountID"] else None
    body = {
        "PaymentID": payment["PaymentID"] or ZERO_GUID,
        "Date": ms_date(payment["Date"]),
        "DateString": date_string(payment["Date"]),
        "BankAmount": number(payment["Amount"]),
        "Amount": number(payment["Amount"]),
        "Reference": payment["Reference"],
        "CurrencyRate": number(payment["CurrencyRate"]),
        "PaymentType": payment["PaymentType"],
        "Status": payment["Status"],
        "UpdatedDateUTC": ms_date(payment["UpdatedDateUTC"]),
        "UpdatedDateUTCString": instant_string(payment["UpdatedDateUTC"]),
        "HasAccount": account is not None,
        "IsReconciled": payment["IsReconciled"],
        "HasValidationErrors": False,
    }
    if account is not None:
        body["Account"] = {"AccountID": account["AccountID"], "Code": account["Code"], "Name": account["Name"]}
    if invoice is not None:
        contact = org.contacts.get(invoice["ContactID"]) or {}
        body["Invoice"] = {
            "Type": invoice["Type"],
            "InvoiceID": invoice["InvoiceID"],
            "InvoiceNumber": invoice.get("InvoiceNumber") or "",
            "Contact": {"ContactID": invoice["ContactID"], "Name": contact.get("Name", "")},
            "CurrencyCode": invoice["CurrencyCode"],
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
            "HasErrors": False,
            "IsDiscounted": False,
            "HasAttachments": False,
            "LineItems": [],
        }
    return body


def render_outcome(org: Organisation, outcome: Outcome) -> dict:
    body = render_payment(org, outcome.entity)
    body["StatusAttributeString"] = "OK" if outcome.ok else "ERROR"
    if not outcome.ok:
        body["HasValidationErrors"] = True
        body["ValidationErrors"] = validation_errors(outcome.errors)
    return body


def find_payment(org: Organisation, payment_id: str) -> dict | None:
    return org.payments.get(payment_id.lower()) if is_guid(payment_id) else None


def resolve_field(org: Organisation):
    def resolve(payment: dict, path: str) -> object:
        if path.startswith("Invoice"):
            invoice = org.invoices.get(payment["InvoiceID"]) or {}
            if path in ("Invoice", "Invoice.InvoiceID"):
                return payment["InvoiceID"]
            return invoice.get(path.split(".", 1)[1])
        if path.startswith("Account"):
            account = org.accounts.get(payment["AccountID"]) or {}
            return account.get(path.split(".", 1)[1]) if "." in path else payment["AccountID"]
        return payment.get(path)

    return resolve
