"""Stage "map": each invoice becomes the Xero invoice we would send (pure mappers, through its
source), fingerprinted, with its InvoiceLink loaded for the stages after it."""

from __future__ import annotations

from integrations.common.errors import PermanentError
from sync.mappers import MappingError
from sync.mappers.canonical import bitrix24_amounts_of, invoice_push_fingerprint
from sync.services.exactness import map_exact
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import fail
from sync.services.push.sources import source_for


def map_stage(ctx: PassContext, items: list[Work]) -> None:
    links = ctx.links(items)
    for item in items:
        source = source_for(item.entity_type)
        item.link = links.get((item.entity_type, item.invoice_id))
        contact = {"ContactID": str(item.link_contact.xero_contact_id)}
        try:
            item.content = source.to_xero(item.invoice, item.rows, contact, ctx.mapping)
        except MappingError as exc:
            fail(ctx, item, PermanentError(str(exc), system="bitrix24", code="mapping"))
            continue
        # Issue 11: the lines that make Xero's totals Bitrix24's (or the closest, for a hold), so
        # what is fingerprinted, compared for drift and sent is one thing.
        if not map_exact(ctx, item):
            continue
        item.content_hash = invoice_push_fingerprint(item.content, bitrix24_amounts=bitrix24_amounts_of(item.invoice))
