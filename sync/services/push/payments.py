"""Stage "payments": PAID is never a Status in Xero, so where a stage maps to PAID and the portal
allows it, the amount due is paid to the configured account instead. A failed read of the amounts
fails the invoices it was for; a failed payment fails its invoice."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F
from django.utils import timezone

from integrations.common.errors import AuthorizationLostError, ExternalAPIError, PermanentError
from integrations.xero.client import INVOICE_IDS_MAX
from sync.mappers.canonical import invoice_pull_fingerprint
from sync.mappers.money import to_decimal
from sync.mappers.stage import PAID
from sync.models import Direction, InvoiceLink, SyncLogEntry
from sync.services.log import sync_log_write
from sync.services.push.context import PassContext, Work, unfinished
from sync.services.push.outcomes import fail, fail_all, finish
from sync.services.push.sources import source_for


def payments_stage(ctx: PassContext, items: list[Work]) -> None:
    items = [item for item in items if item.decision and item.decision.record_payment]
    unknown = [item for item in items if item.amount_due is None]
    for start in range(0, len(unknown), INVOICE_IDS_MAX):
        chunk = unknown[start : start + INVOICE_IDS_MAX]
        try:
            invoices = ctx.xero.invoices_get([str(item.link.xero_invoice_id) for item in chunk], lines=False)
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            fail_all(ctx, chunk, exc)
        else:
            by_id = {inv.invoice_id.lower(): inv for inv in invoices}
            for item in chunk:
                found = by_id.get(str(item.link.xero_invoice_id).lower())
                if found is None:
                    fail(ctx, item, PermanentError("Xero did not return the invoice to pay.", system="xero"))
                    continue
                item.amount_due = to_decimal(found.amount_due)
                item.amount_paid = to_decimal(found.amount_paid)
    for item in unfinished(items):
        _pay(ctx, item)


def _pay(ctx: PassContext, item: Work) -> None:
    account = ctx.settings.payment_account_code
    xero_id = str(item.link.xero_invoice_id)
    amount = item.amount_due
    if amount > 0:
        number = item.invoice.get("accountNumber") or item.invoice_id
        try:
            ctx.xero.payment_create(
                invoice_id=xero_id,
                account_code=account,
                date=timezone.localdate(),
                amount=amount,
                reference=f"Bitrix24 invoice {number}",
                idempotency_key=f"b24x:pay:{xero_id}:{amount}",
            )
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            fail(ctx, item, exc)
            return
    ctx.report.payments += 1
    stage = source_for(item.entity_type).stage_of(item.invoice)
    paid = item.amount_paid + amount
    InvoiceLink.objects.filter(pk=item.link.pk).update(
        last_xero_status=PAID,
        # What the invoice page shows of Xero's figures: the amount due was paid in full.
        xero_amount_paid=paid,
        xero_amount_due=Decimal(0),
        xero_fully_paid_on=timezone.localdate(),
        last_pulled_hash=invoice_pull_fingerprint(PAID, paid, stage_id=stage),
        last_bitrix24_stage_id=stage,
        version=F("version") + 1,
        last_error="",
        last_error_permanent=False,
    )
    if item.pushed_log is not None:
        created, message, details = item.pushed_log
        sync_log_write(
            portal=ctx.portal,
            direction=Direction.PUSH,
            trigger=item.trigger,
            outcome=SyncLogEntry.Outcome.CREATED if created else SyncLogEntry.Outcome.UPDATED,
            bitrix24_id=item.invoice_id,
            xero_id=xero_id,
            invoice_number=item.link.xero_invoice_number,
            message=message,
            details=details,
        )
    finish(
        ctx,
        item,
        outcome=SyncLogEntry.Outcome.PAYMENT_RECORDED,
        message=f"Recorded a payment of {amount} to account {account}; Xero marks the invoice PAID.",
        details={"amount": str(amount), "account": account},
        counted=item.pushed_log is not None,
    )
