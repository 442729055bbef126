"""Drift: where Xero's current invoice differs from what Bitrix24 says it should be. Pure functions.

`expected` is the invoice JSON the connector sends (sync.mappers.invoice.invoice_to_xero, without
Status); `actual` is Xero's invoice as a plain PascalCase dict (dates as date/ISO strings, numbers in
any numeric form; sync.services.drift builds it from the SDK model). Only what we map is compared:
Xero's IDs, timestamps and computed fields other than the totals are not drift.

Each difference names a field the way a user reads it ("Line 1 unit price"), both values as text,
and a kind: "content" (lines, dates, reference, number, currency, tax basis), "contact", "totals",
"status". The reconciliation page counts by kind; the invoice page shows the rows side by side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sync.mappers.canonical import canonical_hash
from sync.mappers.money import plain

CONTENT = "content"
CONTACT = "contact"
TOTALS = "totals"
STATUS = "status"
KINDS = (CONTENT, CONTACT, TOTALS, STATUS)

HEADER_FIELDS = (
    ("InvoiceNumber", "Invoice number"),
    ("Reference", "Reference"),
    ("Date", "Date"),
    ("DueDate", "Due date"),
    ("CurrencyCode", "Currency"),
    ("LineAmountTypes", "Amounts are"),
)
LINE_FIELDS = (
    ("Description", "description", False),
    ("Quantity", "quantity", True),
    ("UnitAmount", "unit price", True),
    ("DiscountRate", "discount %", True),
    ("DiscountAmount", "discount", True),
    ("AccountCode", "account", False),
    ("TaxType", "tax type", False),
    ("ItemCode", "item", False),
)
TOTAL_FIELDS = (("SubTotal", "Subtotal"), ("TotalTax", "Tax"), ("Total", "Total"))
# Fields where "absent" and zero mean the same to Xero (no discount).
ZERO_IS_ABSENT = {"DiscountRate", "DiscountAmount"}


@dataclass(frozen=True)
class Difference:
    field: str  # a stable key, e.g. "LineItems[0].UnitAmount"
    label: str  # what the user reads, e.g. "Line 1 unit price"
    bitrix24: str  # the value Bitrix24 implies ("" = none)
    xero: str  # the value Xero has ("" = none)
    kind: str = CONTENT

    def as_dict(self) -> dict:
        return asdict(self)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _date_text(value: object) -> str:
    text = _text(value)
    return text[:10] if len(text) >= 10 and text[4] == "-" else text


def _number(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


# Amounts are shown with at least two decimals ("38.00"); quantities and rates as plain numbers.
MONEY_FIELDS = {"UnitAmount", "DiscountAmount", "SubTotal", "TotalTax", "Total"}


def _number_text(value: Decimal | None, field: str = "") -> str:
    if value is None:
        return ""
    if field in MONEY_FIELDS and value == value.quantize(Decimal("0.01")):
        return f"{value:.2f}"
    return plain(value)


def _same_number(field: str, ours: object, theirs: object) -> tuple[bool, str, str]:
    a, b = _number(ours), _number(theirs)
    if field in ZERO_IS_ABSENT:
        a = a if a else None
        b = b if b else None
    if a is None or b is None:
        return a is None and b is None, _number_text(a, field), _number_text(b, field)
    return a == b, _number_text(a, field), _number_text(b, field)


def _contact_id(invoice: Mapping) -> str:
    contact = invoice.get("Contact") or {}
    return str(contact.get("ContactID") or "").lower()


def _contact_label(invoice: Mapping) -> str:
    contact = invoice.get("Contact") or {}
    return str(contact.get("Name") or contact.get("ContactID") or "")


def invoice_differences(
    expected: Mapping,
    actual: Mapping,
    *,
    expected_status: str | None = None,
    expected_totals: Mapping[str, object] | None = None,
) -> list[Difference]:
    """What differs between the invoice Bitrix24 implies and the one Xero has, field by field.

    expected_status: the status the stage map asks for (None/"" = not compared).
    expected_totals: {"SubTotal", "TotalTax", "Total"} Xero would compute for `expected`
      (sync.mappers.invoice.expected_totals); None = totals not compared.
    """
    out: list[Difference] = []
    if _contact_id(expected) and _contact_id(expected) != _contact_id(actual):
        out.append(Difference("Contact", "Contact", _contact_label(expected), _contact_label(actual), CONTACT))
    for field, label in HEADER_FIELDS:
        ours = _date_text(expected.get(field)) if field.endswith("Date") else _text(expected.get(field))
        theirs = _date_text(actual.get(field)) if field.endswith("Date") else _text(actual.get(field))
        if field == "InvoiceNumber" and not ours:
            continue  # Xero numbered it from its own sequence: nothing to hold it to
        if ours != theirs:
            out.append(Difference(field, label, ours, theirs))
    if _text(expected.get("Url")) and _text(expected.get("Url")) != _text(actual.get("Url")):
        out.append(Difference("Url", "Link to Bitrix24", _text(expected.get("Url")), _text(actual.get("Url"))))
    out.extend(_line_differences(list(expected.get("LineItems") or []), list(actual.get("LineItems") or [])))
    if expected_totals is not None:
        for field, label in TOTAL_FIELDS:
            same, ours, theirs = _same_number(field, expected_totals.get(field), actual.get(field))
            if not same:
                out.append(Difference(field, label, ours, theirs, TOTALS))
    if expected_status and expected_status != _text(actual.get("Status")):
        out.append(Difference("Status", "Status", expected_status, _text(actual.get("Status")), STATUS))
    return out


def _line_summary(line: Mapping) -> str:
    quantity = _number_text(_number(line.get("Quantity")))
    unit = _number_text(_number(line.get("UnitAmount")), "UnitAmount")
    return f"{_text(line.get('Description'))} — {quantity} × {unit}"


def _line_differences(ours: list[Mapping], theirs: list[Mapping]) -> list[Difference]:
    out: list[Difference] = []
    for index in range(max(len(ours), len(theirs))):
        name = f"Line {index + 1}"
        key = f"LineItems[{index}]"
        if index >= len(ours):
            out.append(Difference(key, f"{name} (only in Xero)", "", _line_summary(theirs[index])))
            continue
        if index >= len(theirs):
            out.append(Difference(key, f"{name} (missing in Xero)", _line_summary(ours[index]), ""))
            continue
        a, b = ours[index], theirs[index]
        for field, label, numeric in LINE_FIELDS:
            if numeric:
                same, left, right = _same_number(field, a.get(field), b.get(field))
            else:
                left, right = _text(a.get(field)), _text(b.get(field))
                if field == "ItemCode" and not left:
                    continue  # no item on our side: Xero's own item choice is not drift
                same = left == right
            if not same:
                out.append(Difference(f"{key}.{field}", f"{name} {label}", left, right))
    return out


def kinds_of(differences: list[Difference] | list[dict]) -> list[str]:
    """The kinds present, in KINDS order (for badges and counts)."""
    present = {d["kind"] if isinstance(d, Mapping) else d.kind for d in differences}
    return [kind for kind in KINDS if kind in present]


def xero_content_fingerprint(actual: Mapping) -> str:
    """A fingerprint of Xero's version of the compared fields: what "accept Xero's version" remembers,
    so the same Xero content is not reported as drift again, while any later edit in Xero is."""
    projection: dict[str, Any] = {
        "Contact": _contact_id(actual),
        **{field: (_date_text if field.endswith("Date") else _text)(actual.get(field)) for field, _ in HEADER_FIELDS},
        "Url": _text(actual.get("Url")),
        "LineItems": [
            {
                field: (_number_text(_number(line.get(field))) if numeric else _text(line.get(field)))
                for field, _label, numeric in LINE_FIELDS
            }
            for line in actual.get("LineItems") or []
        ],
    }
    for field in ZERO_IS_ABSENT:
        for line in projection["LineItems"]:
            if line.get(field) and not Decimal(line[field]):
                line[field] = ""
    return canonical_hash(projection)
