"""The one lock name both directions take for an invoice: a push and a stage move never overlap."""

from __future__ import annotations


def invoice_lock_name(portal_id: int, bitrix24_invoice_id: int) -> str:
    return f"lock:invoice:{portal_id}:{bitrix24_invoice_id}"
