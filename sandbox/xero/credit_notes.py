"""Credit notes (/CreditNotes, xero_accounting.yaml `CreditNote`): ACCRECCREDIT and ACCPAYCREDIT.

A credit note is written and totalled exactly like an invoice (same header, contact, status
transitions, line items and per-line rounding: sandbox/xero/invoices.py, invoice_lines.py), so it is kept in the same
shape internally (InvoiceID/InvoiceNumber/AmountDue) and renamed on the wire: CreditNoteID,
CreditNoteNumber, RemainingCredit. Its own rules:

- numbers come from their own sequence (CN-0001) and are unique among sales credit notes;
- a credit note below zero cannot be approved (like an invoice);
- credit is used up by allocations to invoices of the same contact (PUT
  /CreditNotes/{id}/Allocations) or by a cash refund (a Payment naming the CreditNote, or the
  control route /_sandbox/xero/credit_notes/<id>/refund): at no remaining credit it is PAID;
- Xero sends no webhooks for credit notes (only INVOICE and CONTACT events), so a client finds
  changes by listing with If-Modified-Since.

Knowingly not simulated: CIS fields, attachments, history, PDFs, branding themes.
"""

from __future__ import annotations

from decimal import Decimal

from sandbox.xero import invoice_lines, invoice_render, invoices
from sandbox.xero.store import Organisation, Outcome
from sandbox.xero.wire import ZERO_GUID, is_guid, ms_date, new_id, number, parse_date, to_decimal, utc_now

TYPES = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}
NEGATIVE_TOTAL = "A credit note with a total below zero cannot be approved."
QUERY_FIELDS = {
    "CreditNoteID",
    "CreditNoteNumber",
    "Type",
    "Status",
    "Reference",
    "Date",
    "UpdatedDateUTC",
    "CurrencyCode",
    "SubTotal",
    "TotalTax",
    "Total",
    "RemainingCredit",
    "Contact",
}
WIRE_NAMES = {"CreditNoteID": "InvoiceID", "CreditNoteNumber": "InvoiceNumber", "RemainingCredit": "AmountDue"}


def store(org: Organisation) -> dict:
    if not hasattr(org, "credit_notes"):
        org.credit_notes = {}
        org.credit_note_by_number = {}
        org.next_credit_note_number = 1
    return org.credit_notes


def find(org: Organisation, key: str) -> dict | None:
    notes = store(org)
    found = notes.get(str(key).lower())
    if found is None:
        found_id = org.credit_note_by_number.get(str(key))
        found = notes.get(found_id) if found_id else None
    return found


def write_credit_note(
    org: Organisation,
    element: object,
    *,
    target_id: str | None = None,
    create_only: bool = False,
    unitdp: int = 2,
    client_id: str | None = None,
) -> Outcome:
    notes = store(org)
    if not isinstance(element, dict):
        return Outcome(entity=invoices.new_invoice(), errors=["CreditNote Type must be specified"])
    existing = None
    key = target_id or element.get("CreditNoteID")
    if key:
        existing = find(org, str(key)) if target_id else notes.get(str(key).lower())
        if existing is None:
            return Outcome(
                entity=invoices.new_invoice(), errors=[f"Credit note with CreditNoteID {key} could not be found"]
            )
    elif not create_only and element.get("CreditNoteNumber") and element.get("Type", "ACCRECCREDIT") == "ACCRECCREDIT":
        existing = find(org, str(element["CreditNoteNumber"]))
    # The invoice rules on an invoice-shaped copy: Type and keys translated, the number kept aside.
    shaped = {k: v for k, v in element.items() if k not in ("CreditNoteID", "CreditNoteNumber", "Type")}
    kind = element.get("Type")
    errors: list[str] = []
    if kind is not None:
        if kind not in TYPES:
            errors.append("CreditNote Type must be ACCRECCREDIT or ACCPAYCREDIT")
        elif existing is not None and kind != existing["CreditNoteType"]:
            errors.append("The Type of a credit note cannot be changed")
        else:
            shaped["Type"] = TYPES[kind]
    elif existing is None:
        errors.append("CreditNote Type must be specified")
    previous = dict(existing) if existing else None
    draft = invoices._Draft(org, shaped, existing, unitdp)
    if existing is not None and not invoices._editable(existing, shaped, draft.errors):
        return Outcome(entity=draft.invoice, errors=draft.errors)
    draft.errors.extend(errors)
    invoices._apply_header(draft)
    invoices._apply_contact(draft)
    invoices._apply_status(draft)
    invoices._apply_lines(draft)
    note = draft.invoice
    note["CreditNoteType"] = kind if kind in TYPES else (existing or {}).get("CreditNoteType", "ACCRECCREDIT")
    wanted = element.get("CreditNoteNumber")
    if isinstance(wanted, str) and wanted.strip():
        holder = org.credit_note_by_number.get(wanted.strip())
        if holder and holder != note.get("InvoiceID") and note["CreditNoteType"] == "ACCRECCREDIT":
            draft.errors.append("Credit Note # must be unique.")
        note["InvoiceNumber"] = wanted.strip()
    invoice_lines.compute_totals(note, org)
    note.setdefault("Allocations", [])
    _remaining(note)
    if note["Status"] == "AUTHORISED" and note["Total"] < 0:
        draft.errors.append(NEGATIVE_TOTAL)
    if draft.errors:
        return Outcome(entity=note, errors=draft.errors)
    events: list[tuple[str, str, str]] = []
    if draft.contact_to_create is not None:
        made = invoices.contacts.write_contact(org, draft.contact_to_create, create_only=True)
        if not made.ok:
            return Outcome(entity=note, errors=made.errors)
        note["ContactID"] = made.entity["ContactID"]
        events.extend(made.events)
    created = existing is None
    if created:
        note["InvoiceID"] = new_id()
        note["CreatedByClient"] = client_id
        if not note.get("InvoiceNumber") and note["CreditNoteType"] == "ACCRECCREDIT":
            note["InvoiceNumber"] = _take_number(org)
    note["UpdatedDateUTC"] = utc_now()
    _index(org, note, previous)
    return Outcome(entity=note, created=created, events=events)


def _take_number(org: Organisation) -> str:
    while True:
        candidate = f"CN-{org.next_credit_note_number:04d}"
        org.next_credit_note_number += 1
        if candidate not in org.credit_note_by_number:
            return candidate


def _index(org: Organisation, note: dict, previous: dict | None) -> None:
    if (
        previous
        and previous.get("InvoiceNumber")
        and org.credit_note_by_number.get(previous["InvoiceNumber"]) == note["InvoiceID"]
    ):
        del org.credit_note_by_number[previous["InvoiceNumber"]]
    if note.get("InvoiceNumber") and note["Status"] != "DELETED" and note["CreditNoteType"] == "ACCRECCREDIT":
        org.credit_note_by_number[note["InvoiceNumber"]] = note["InvoiceID"]
    store(org)[note["InvoiceID"]] = note


def _remaining(note: dict) -> None:
    used = sum((a["Amount"] for a in note.get("Allocations", [])), Decimal("0.00")) + note.get("AmountPaid", Decimal(0))
    if note["Status"] in ("VOIDED", "DELETED"):
        note["AmountDue"] = Decimal("0.00")
    else:
        note["AmountDue"] = note["Total"] - used
    if note["Status"] == "AUTHORISED" and note["Total"] > 0 and note["AmountDue"] <= 0:
        note["Status"] = "PAID"
        note["FullyPaidOnDate"] = utc_now()


def refund(org: Organisation, note: dict, amount: Decimal, *, date=None) -> list[str]:
    """A cash refund of (part of) the credit: the money goes back to the customer."""
    if note["Status"] != "AUTHORISED":
        return ["Payment can only be made against an approved credit note"]
    if amount <= 0 or amount > note["AmountDue"]:
        return ["Payment amount exceeds the amount outstanding on this document"]
    note["AmountPaid"] = note.get("AmountPaid", Decimal(0)) + amount
    _remaining(note)
    note["UpdatedDateUTC"] = utc_now()
    return []


def allocate(org: Organisation, note: dict, element: object) -> Outcome:
    """PUT /CreditNotes/{id}/Allocations: apply credit to an invoice of the same contact."""
    if not isinstance(element, dict):
        return Outcome(entity={}, errors=["An allocation must be an object"])
    target = (element.get("Invoice") or {}).get("InvoiceID") if isinstance(element.get("Invoice"), dict) else None
    invoice = org.invoices.get(str(target or "").lower())
    errors = []
    try:
        amount = to_decimal(element.get("Amount"))
    except ValueError:
        amount = Decimal(0)
        errors.append("Amount must be a number")
    if invoice is None:
        errors.append("Invoice could not be found")
    elif invoice["ContactID"] != note["ContactID"]:
        errors.append("The credit note and the invoice must be for the same contact")
    elif invoice["Status"] != "AUTHORISED":
        errors.append("Allocations can only be made against approved invoices")
    if note["Status"] != "AUTHORISED":
        errors.append("Allocations can only be made from approved credit notes")
    if not errors and (amount <= 0 or amount > note["AmountDue"] or amount > invoice["AmountDue"]):
        errors.append("The amount allocated must not exceed the remaining credit or the amount due")
    allocation = {
        "AllocationID": new_id(),
        "Amount": amount,
        "Date": parse_date(element["Date"]) if element.get("Date") else org.today(),
    }
    if errors:
        return Outcome(entity=allocation, errors=errors)
    allocation["InvoiceID"] = invoice["InvoiceID"]
    note["Allocations"].append(allocation)
    _remaining(note)
    note["UpdatedDateUTC"] = utc_now()
    invoice["AmountCredited"] += amount
    invoice_lines.compute_totals(invoice, org)
    if invoice["AmountDue"] <= 0:
        invoice["Status"] = "PAID"
        invoice["FullyPaidOnDate"] = utc_now()
    invoice["UpdatedDateUTC"] = utc_now()
    return Outcome(entity=allocation, created=True, events=[("INVOICE", "UPDATE", invoice["InvoiceID"])])


# --- rendering -----------------------------------------------------------------------------------
def render_credit_note(org: Organisation, note: dict, *, full: bool = True, unitdp: int = 2) -> dict:
    body = invoice_render.render_invoice(org, note, full=full, unitdp=unitdp)
    body["CreditNoteID"] = body.pop("InvoiceID")
    body["CreditNoteNumber"] = body.pop("InvoiceNumber")
    body["RemainingCredit"] = body.pop("AmountDue")
    body["Type"] = note.get("CreditNoteType") or "ACCRECCREDIT"
    for gone in ("AmountCredited", "IsDiscounted", "Prepayments", "Overpayments", "CreditNotes"):
        body.pop(gone, None)
    body["Allocations"] = [
        {
            "AllocationID": a["AllocationID"],
            "Amount": number(a["Amount"]),
            "Date": ms_date(a["Date"]),
            "Invoice": {"InvoiceID": a["InvoiceID"]},
        }
        for a in note.get("Allocations", [])
    ]
    body["AppliedAmount"] = number(sum((a["Amount"] for a in note.get("Allocations", [])), Decimal("0.00")))
    return body


def render_outcome(org: Organisation, outcome: Outcome, unitdp: int) -> dict:
    if outcome.ok:
        body = render_credit_note(org, outcome.entity, unitdp=unitdp)
        body["StatusAttributeString"] = "OK"
        return body
    echo = dict(outcome.entity)
    echo.setdefault("SubTotal", None)
    echo.setdefault("UpdatedDateUTC", utc_now())
    if not echo.get("InvoiceID"):
        echo["InvoiceID"] = ZERO_GUID
    echo["PaymentIDs"] = [pid for pid in echo.get("PaymentIDs", []) if pid in org.payments]
    body = render_credit_note(org, echo, unitdp=unitdp)
    body["HasErrors"] = True
    body["StatusAttributeString"] = "ERROR"
    body["ValidationErrors"] = [{"Message": message} for message in outcome.errors]
    return body


def resolve_field(org: Organisation):
    def resolve(note: dict, path: str) -> object:
        if path.startswith("Contact"):
            if path in ("Contact", "Contact.ContactID"):
                return note["ContactID"]
            contact = org.contacts.get(note["ContactID"]) or {}
            return contact.get(path.split(".", 1)[1])
        if path == "Type":
            return note.get("CreditNoteType")
        return note.get(WIRE_NAMES.get(path, path))

    return resolve


def looks_like_id(key: str) -> bool:
    return is_guid(key)
