"""Stage "drift": before the "unchanged" skip, what Xero's own version of a linked invoice means for
the push (sync.services.drift.push_gate). "Create / Edit on Xero" makes Xero match Bitrix24 whatever
the stored fingerprint says: Xero's current versions of the linked invoices the user asked for are
read first, 50 per call, and an invoice that differs is forced (item.gate.force); one whose Xero
changes win by the portal's setting is held ("Changed in Xero")."""

from __future__ import annotations

from integrations.common.errors import AuthorizationLostError, ExternalAPIError
from sync.models import SyncJob, SyncLogEntry, Trigger
from sync.services.drift import Gate, push_gate, xero_current
from sync.services.push.context import PassContext, Work, unfinished
from sync.services.push.outcomes import fail_all, finish


def user_asked(item: Work) -> bool:
    # The button's job, or an event job the button raised to USER priority (job_enqueue keeps the
    # first trigger but takes the better priority).
    return item.job is not None and (item.trigger == Trigger.BUTTON or item.job.priority == SyncJob.Priority.USER)


def known(item: Work) -> bool:
    return item.link is not None and item.link.xero_invoice_id is not None


def drift_stage(ctx: PassContext, items: list[Work]) -> None:
    asked = [item for item in items if user_asked(item) and known(item)]
    current: dict[str, dict] = {}
    if asked:
        try:
            current = xero_current(ctx.xero, [item.link.xero_invoice_id for item in asked])
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            fail_all(ctx, asked, exc)
    for item in unfinished(items):
        if not known(item):
            item.gate = Gate()
            continue
        item.gate = push_gate(
            link=item.link,
            content=item.content,
            user_asked=user_asked(item),
            winner=ctx.settings.drift_winner,
            current=current.get(str(item.link.xero_invoice_id).lower()),
        )
        if item.gate.hold:
            finish(ctx, item, outcome=SyncLogEntry.Outcome.CHANGED_IN_XERO, message=item.gate.message)
