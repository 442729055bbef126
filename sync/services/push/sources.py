"""Invoice sources, one per Bitrix24 entity type: how the read stage reads that kind of invoice and
how the map stage turns one into a Xero invoice. A job's target is "<entity type>:<id>"; a target
whose type has no source fails at once with a message that says why."""

from __future__ import annotations

from sync.services.push.old_invoice import OldInvoiceSource
from sync.services.push.smart_invoice import SmartInvoiceSource

SOURCES: dict[int, type] = {
    SmartInvoiceSource.entity_type: SmartInvoiceSource,  # new invoices, crm.item.* (31)
    OldInvoiceSource.entity_type: OldInvoiceSource,  # old invoices, crm.invoice.* (5)
}


def source_for(entity_type: int) -> type:
    return SOURCES[entity_type]


def parse_target(target: str) -> tuple[int, int] | None:
    """(entity type, id) of a job target this engine can push, else None."""
    entity, _, ident = (target or "").partition(":")
    if not entity.isdigit() or not ident.isdigit() or int(entity) not in SOURCES:
        return None
    return int(entity), int(ident)


def unsupported_target_message(target: str) -> str:
    return f"Not a Bitrix24 invoice: {target!r}"
