"""Xero's length limits, counted the way Xero counts: in UTF-16 code units (.NET string length), so a
character outside the Basic Multilingual Plane (an emoji, many CJK extension characters) counts twice.
A cut never splits such a pair. What an invoice loses to the limits is said on its log entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# xero_accounting.yaml: InvoiceNumber and Reference 255, a line's Description 4000.
INVOICE_NUMBER = 255
REFERENCE = 255
DESCRIPTION = 4000
NAME = 255


def xero_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def xero_cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` UTF-16 code units, never in the middle of a character."""
    if len(text) <= limit // 2 or xero_length(text) <= limit:
        return text
    out, used = [], 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit:
            break
        out.append(char)
        used += size
    return "".join(out)


def cut_note(what: str, text: str, limit: int) -> str | None:
    length = xero_length(text)
    if length <= limit:
        return None
    return (
        f"{what} shortened from {length} to {xero_length(xero_cut(text, limit))} characters (Xero's limit is {limit})."
    )


def truncation_notes(invoice: Mapping, rows: Sequence[Mapping]) -> list[str]:
    """What invoice_to_xero shortens for this invoice, in words (what, from how long to how long)."""
    notes = []
    number = str(invoice.get("accountNumber") or "").strip()
    reference = str(invoice.get("title") or "").strip()
    for what, text, limit in (("Invoice number", number, INVOICE_NUMBER), ("Reference (title)", reference, REFERENCE)):
        note = cut_note(what, text, limit)
        if note:
            notes.append(note)
    for index, row in enumerate(rows, start=1):
        note = cut_note(f"Row {index}'s description", str(row.get("productName") or "").strip(), DESCRIPTION)
        if note:
            notes.append(note)
    return notes
