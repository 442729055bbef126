"""Canonical fingerprints: what we pushed or pulled last, reduced to one sha256.

Echo suppression and "skip unchanged" compare fingerprints, never raw payloads, so the projection
must not depend on how a value happened to be written: 10, 10.0, Decimal("10.00") and the float 10.0
are one number; dict key order does not matter; list order does (line order is visible in Xero).
Only fields we map take part: Xero adds LineItemID, UpdatedDateUTC and friends to everything it
returns, and those must not make an unchanged invoice look changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal

from sync.mappers.money import money, plain, to_decimal

# The invoice fields invoice_to_xero produces. Anything else (IDs Xero assigns, computed totals,
# the SDK's read-only defaults) is ignored by the fingerprint.
INVOICE_FIELDS = (
    "Type",
    "Contact",
    "InvoiceNumber",
    "Reference",
    "Date",
    "DueDate",
    "CurrencyCode",
    "CurrencyRate",
    "LineAmountTypes",
    "Status",
    "Url",
    "LineItems",
)
CONTACT_REF_FIELDS = ("ContactID", "Name", "ContactNumber")
LINE_ITEM_FIELDS = (
    "Description",
    "Quantity",
    "UnitAmount",
    "DiscountRate",
    "DiscountAmount",
    "AccountCode",
    "TaxType",
    "TaxAmount",  # set where Xero's per-line rounding would miss Bitrix24's tax (sync.mappers.exactness)
    "ItemCode",
)


def normalise(value: object) -> object:
    """JSON-safe, formatting-independent form of a value (numbers as plain decimal strings)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return {"#": plain(to_decimal(value))}  # tagged so the string "10" and the number 10 differ
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return value
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


def canonical_hash(obj: Mapping) -> str:
    text = json.dumps(normalise(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pick(obj: Mapping, fields: tuple[str, ...]) -> dict:
    # A field that is absent and one that is None/"" mean the same to Xero ("leave it to Xero").
    return {k: obj[k] for k in fields if obj.get(k) not in (None, "")}


def invoice_push_fingerprint(xero_invoice: Mapping, *, bitrix24_amounts: Mapping | None = None) -> str:
    """Fingerprint of the invoice JSON we would send; equal fingerprints need no push.

    `bitrix24_amounts` (bitrix24_amounts_of) joins Bitrix24's own amount and tax: a hand-entered
    amount changes nothing in the lines, yet must be checked again (and held) before Xero is told."""
    projection = _pick(xero_invoice, INVOICE_FIELDS)
    if bitrix24_amounts:
        projection["Bitrix24Amounts"] = dict(bitrix24_amounts)
    if "Contact" in projection:
        projection["Contact"] = _pick(projection["Contact"], CONTACT_REF_FIELDS)
    projection["LineItems"] = [_pick(line, LINE_ITEM_FIELDS) for line in xero_invoice.get("LineItems") or []]
    return canonical_hash(projection)


def bitrix24_amounts_of(invoice: Mapping) -> dict:
    """What of a Bitrix24 invoice bears on its exactness but is not in the mapped lines."""
    return {
        "opportunity": str(money(invoice.get("opportunity"))),
        "taxValue": str(money(invoice.get("taxValue"))),
        "isManualOpportunity": str(invoice.get("isManualOpportunity") or "N"),
    }


def invoice_pull_fingerprint(xero_status: str, amount_paid: object, *, stage_id: str = "") -> str:
    """Fingerprint of what a pull acts on: the Xero status, how much is paid, the stage it implies.

    An INVOICE UPDATE webhook caused by our own push (new lines, same status, nothing paid) gives the
    same fingerprint as the last pull and is dropped as an echo.
    """
    return canonical_hash({"status": xero_status, "amount_paid": to_decimal(amount_paid), "stage_id": stage_id})


def idempotency_key(
    portal_member_id: str, bitrix24_invoice_id: int | str, fingerprint: str, *, operation: str = "inv"
) -> str:
    """Xero Idempotency-Key for one write: deterministic, so a retry of the same request reuses it,
    and a changed invoice (new fingerprint) gets a new one. At most 128 characters (Xero's limit):
    the readable form is kept when it fits (easier to trace in logs), else it is hashed.
    """
    key = f"b24x:{operation}:{portal_member_id}:{bitrix24_invoice_id}:{fingerprint}"
    if len(key) <= 128:
        return key
    return f"b24x:{operation}:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
