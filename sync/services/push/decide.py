"""Stage "decide": what to ask of Xero for each mapped invoice.

1. Unchanged: same content and the stage we last synced (and no forced push from the drift stage,
   and Xero's status not different from what the stage maps to) — settled as unchanged, or as the
   echo of a change the pull engine made.
2. The status by Xero's lifecycle rules (sync.mappers.stage): refused when Xero forbids the change,
   nothing when nothing is new, else the body to send.
3. The CHECKS run on every invoice that is still to be sent.

Where decisions plug in: a check is `check(ctx, item) -> None` that may settle the invoice through
sync.services.push.outcomes (e.g. hold it when Xero's totals would differ from Bitrix24's, issue
11). Append it to CHECKS; the invoice then never reaches the write stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sync.mappers.stage import xero_status_for_push, xero_status_for_stage
from sync.models import SyncLogEntry
from sync.services.drift import differences_for
from sync.services.exactness import exactness_check
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import finish, refuse
from sync.services.push.sources import source_for

# Issue 11: exact or held (sync.services.exactness) replaces the old after-the-fact gap note.
CHECKS: list[Callable[[PassContext, Work], None]] = [exactness_check]


def decide_stage(ctx: PassContext, items: list[Work]) -> None:
    for item in items:
        stage = source_for(item.entity_type).stage_of(item.invoice)
        wanted = xero_status_for_stage(stage, ctx.b24_to_xero)
        if _unchanged(ctx, item, stage, wanted):
            continue
        _decide_status(ctx, item, wanted)
        if item.finished or item.body is None:
            continue
        for check in CHECKS:
            check(ctx, item)
            if item.finished:
                break


def _unchanged(ctx: PassContext, item: Work, stage: str, wanted: str | None) -> bool:
    link, gate = item.link, item.gate
    if link is None or link.xero_invoice_id is None or gate.force:
        return False
    # The user asked and Xero's status is not the one the stage maps to (changed in Xero, its
    # webhook lost): not "unchanged" — try, and say so if Xero's rules forbid it.
    if gate.xero_status and wanted and gate.xero_status != wanted:
        return False
    if stage != link.last_bitrix24_stage_id or item.content_hash != link.last_pushed_hash:
        return False
    # Same content, and the stage we last synced. When the pull engine acted last, it moved this
    # stage after a change in Xero: the event is the echo of its write. Otherwise it is an event
    # with nothing new for Xero.
    pulled_last = link.last_pulled_at is not None and (
        link.last_pushed_at is None or link.last_pulled_at > link.last_pushed_at
    )
    if pulled_last:
        finish(ctx, item, outcome=SyncLogEntry.Outcome.ECHO_DROPPED, message="Echo of a change made in Xero.")
    else:
        finish(ctx, item, outcome=SyncLogEntry.Outcome.SKIPPED_UNCHANGED, message="Unchanged since the last push.")
    return True


def _decide_status(ctx: PassContext, item: Work, wanted: str | None) -> None:
    link, gate = item.link, item.gate
    known = link is not None and link.xero_invoice_id is not None
    decision = xero_status_for_push(
        (gate.xero_status or link.last_xero_status) if known else None,
        wanted,
        content_changed=not known or gate.force or item.content_hash != link.last_pushed_hash,
        amount_paid=gate.amount_paid or 0,
        record_payment_allowed=ctx.settings.record_payment_on_paid,
    )
    item.decision = decision
    if decision.refused:
        # What Xero has against what Bitrix24 says now (not only what we sent last), for the user.
        shown_differences = differences_for(item.content, gate.current) if gate.current else []
        if shown_differences:
            shown = "; ".join(
                f"{d.label}: {d.bitrix24 or '—'} in Bitrix24, {d.xero or '—'} in Xero" for d in shown_differences[:5]
            )
            decision = dataclasses.replace(
                decision,
                message=f"Xero differs from Bitrix24 ({shown}), but it cannot be restored: {decision.message}",
            )
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
