"""Invoice sources: one per Bitrix24 entity type. The wire side of each kind (how it is listed, read
and moved, and the translation of old invoices into the new ones' shape) lives in
integrations.bitrix24.api.invoices; this module is the engine's registry of them: which kinds a
portal has, and the job targets "<type>:<id>" that name one invoice.

- new invoices, entity type 31 (crm.item.* with entityTypeId 31, stages of pipelines);
- old invoices, entity type 5 (crm.invoice.*, statuses from INVOICE_STATUS).

A source builds typed commands that the caller runs through its Bitrix24Api (one call, or a
`batch` with other commands); it does no I/O itself, so the caller keeps its call budget and its
user's token (Bitrix24's permissions decide what is listed).
"""

from __future__ import annotations

from integrations.bitrix24.api.invoices import (
    INVOICE_KINDS,
    SMART_SELECT,
    InvoiceDetail,
    InvoiceKind,
    OldInvoices,
    SmartInvoices,
    invoice_kind,
)
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE

SOURCES: dict[int, InvoiceKind] = INVOICE_KINDS
invoice_source = invoice_kind


def portal_sources(portal) -> list[InvoiceKind]:
    """The sources of the kinds of invoices the portal has, new ones first."""
    return [SOURCES[t] for t in portal.invoice_entity_types]


def parse_target(target: str) -> tuple[int, int] | None:
    """(entity type, id) of a job target "<type>:<id>" whose type has a source, else None."""
    entity, _, ident = (target or "").partition(":")
    if not entity.isdigit() or not ident.isdigit() or int(entity) not in SOURCES:
        return None
    return int(entity), int(ident)


__all__ = [
    "OLD_INVOICE",
    "SMART_INVOICE",
    "SMART_SELECT",
    "SOURCES",
    "InvoiceDetail",
    "OldInvoices",
    "SmartInvoices",
    "invoice_source",
    "parse_target",
    "portal_sources",
]
