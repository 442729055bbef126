"""Stage "decide": what to ask of Xero for each mapped invoice — the status by Xero's lifecycle
rules (sync.mappers.stage), refused when Xero forbids the change, nothing when nothing is new, else
the body to send. Then the CHECKS run on every invoice that is still to be sent.

Where decisions plug in: a check is `check(ctx, item) -> None` that may settle the invoice through
sync.services.push.outcomes (e.g. hold it when Xero's totals would differ from Bitrix24's, issue
11). Append it to CHECKS; the invoice then never reaches the write stage.
"""

from __future__ import annotations

from collections.abc import Callable

from sync.mappers.stage import xero_status_for_push, xero_status_for_stage
from sync.models import SyncLogEntry
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import finish, refuse
from sync.services.push.sources import source_for


def note_totals_gap(ctx: PassContext, item: Work) -> None:
    """Xero computes totals itself; a gap with Bitrix24's is noted on the outcome (pushed anyway)."""
    gap = source_for(item.entity_type).totals_gap(item.invoice, item.content, ctx.mapping)
    if gap is not None:
        item.gap_message = gap.message


CHECKS: list[Callable[[PassContext, Work], None]] = [note_totals_gap]


def decide_stage(ctx: PassContext, items: list[Work]) -> None:
    for item in items:
        _decide_status(ctx, item)
        if item.finished or item.body is None:
            continue
        for check in CHECKS:
            check(ctx, item)
            if item.finished:
                break


def _decide_status(ctx: PassContext, item: Work) -> None:
    link = item.link
    known = link is not None and link.xero_invoice_id is not None
    wanted = xero_status_for_stage(source_for(item.entity_type).stage_of(item.invoice), ctx.b24_to_xero)
    decision = xero_status_for_push(
        link.last_xero_status if known else None,
        wanted,
        content_changed=not known or item.force or item.content_hash != link.last_pushed_hash,
        record_payment_allowed=ctx.settings.record_payment_on_paid,
    )
    item.decision = decision
    if decision.refused:
        refuse(ctx, item, decision)
        return
    if not decision.push and not decision.record_payment:
        finish(
            ctx,
            item,
            outcome=SyncLogEntry.Outcome.SKIPPED_UNCHANGED,
            message=decision.message or "Unchanged since the last push.",
        )
        return
    if decision.push:
        body = dict(item.content)
        if decision.status:
            body["Status"] = decision.status
        if known:
            body["InvoiceID"] = str(link.xero_invoice_id)
        item.body = body
