"""Stage "map": each invoice becomes the Xero invoice we would send (pure mappers, through its
source), fingerprinted; an invoice whose content and stage are what we last pushed is settled here
as unchanged, or as the echo of a change the pull engine made. A forced push (Work.force) goes on."""

from __future__ import annotations

from integrations.common.errors import PermanentError
from sync.mappers import MappingError
from sync.mappers.canonical import invoice_push_fingerprint
from sync.models import SyncLogEntry
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import fail, finish
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
        item.content_hash = invoice_push_fingerprint(item.content)
        link = item.link
        known = link is not None and link.xero_invoice_id is not None
        stage = source.stage_of(item.invoice)
        if item.force or not known:
            continue
        if stage == link.last_bitrix24_stage_id and item.content_hash == link.last_pushed_hash:
            # Same content, and the stage we last synced. When the pull engine acted last, it moved
            # this stage after a change in Xero: the event is the echo of its write. Otherwise it
            # is an event with nothing new for Xero.
            pulled_last = link.last_pulled_at is not None and (
                link.last_pushed_at is None or link.last_pulled_at > link.last_pushed_at
            )
            if pulled_last:
                finish(ctx, item, outcome=SyncLogEntry.Outcome.ECHO_DROPPED, message="Echo of a change made in Xero.")
            else:
                finish(
                    ctx, item, outcome=SyncLogEntry.Outcome.SKIPPED_UNCHANGED, message="Unchanged since the last push."
                )
