"""Stage "record": store Xero's answer for each written invoice on its InvoiceLink with a
compare-and-set on `version`, then log it and finish its job (after the payment, when one is due).

What is stored, and why (the pull engine relies on it):
- last_pushed_hash: invoice_push_fingerprint of the invoice WITHOUT Status — content only. The status
  is tracked in last_xero_status, so "same content, different wanted status" is a status change,
  not an unchanged invoice.
- last_pulled_hash: invoice_pull_fingerprint(Xero status, AmountPaid, stage_id=<the invoice's
  Bitrix24 stage at push time>), and last_bitrix24_stage_id = that stage, so the INVOICE UPDATE
  webhook our own push causes is an echo to the pull engine.
"""

from __future__ import annotations

import dataclasses

from django.db import transaction
from django.utils import timezone

from integrations.common.errors import PermanentError, RetryableError
from sync.mappers.canonical import invoice_pull_fingerprint
from sync.mappers.money import to_decimal
from sync.models import InvoiceLink, SyncLogEntry
from sync.services.drift import payment_values, pushed_content, xero_invoice_dict
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import fail, finish
from sync.services.push.sources import source_for


def record_stage(ctx: PassContext, items: list[Work]) -> None:
    """One write batch's answers, stored in one transaction: the links (each a compare-and-set), the
    log entries and the jobs finished commit together, one commit for the batch instead of several
    per invoice. Xero already has the batch either way; a batch whose record fails (or a crash) is
    recovered like a lost answer, by the lost-create guard and the Idempotency-Key on its retry."""
    if not items:
        return
    ctx.settle()  # what came before (this batch's failed writes): not part of its transaction
    taken = links_taken(ctx, items)
    report = dataclasses.replace(ctx.report)
    try:
        with transaction.atomic():
            for item in items:
                if str(item.answer.invoice_id).lower() in taken:
                    message = (
                        f"Xero invoice {item.answer.invoice_number} is already linked to another Bitrix24 invoice."
                    )
                    fail(ctx, item, PermanentError(message, system="xero"))
                else:
                    store_pushed(ctx, item)
            ctx.settle()
    except Exception:
        # Nothing of the batch was stored: its invoices are unsettled again, for the pass's error
        # path (retryable), and the report forgets what it had counted for them.
        for item in items:
            item.finished = False
        ctx.discard()
        vars(ctx.report).update(vars(report))
        raise


def links_taken(ctx: PassContext, items: list[Work]) -> set[str]:
    """The Xero invoices among these answers that another Bitrix24 invoice is linked to already.
    Checked up front, because the unique constraint raising inside the batch's transaction would
    undo the whole batch; a race past this check does exactly that, and the batch is retried."""
    ids = {str(item.answer.invoice_id) for item in items}
    own = [item.link.pk for item in items]
    return {
        str(xero_id).lower()
        for xero_id in InvoiceLink.objects.filter(portal=ctx.portal, xero_invoice_id__in=ids)
        .exclude(pk__in=own)
        .values_list("xero_invoice_id", flat=True)
    }


def link_apply(link: InvoiceLink, values: dict) -> None:
    """The compare-and-set's values onto the link in memory, as a re-read would give them (the
    pass needs its Xero id and number for the log and payments; one SELECT per invoice saved)."""
    for name, value in values.items():
        setattr(link, name, InvoiceLink._meta.get_field(name).to_python(value))
    link.version += 1


def store_pushed(ctx: PassContext, item: Work) -> None:
    element = item.answer
    created = item.created
    status = str(element.status)
    amount_paid = to_decimal(element.amount_paid)
    stage = source_for(item.entity_type).stage_of(item.invoice)
    values = dict(
        xero_invoice_id=element.invoice_id,
        xero_invoice_number=element.invoice_number or "",
        last_pushed_hash=item.content_hash,
        last_xero_status=status,
        last_pulled_hash=invoice_pull_fingerprint(status, amount_paid, stage_id=stage),
        last_bitrix24_stage_id=stage,
        xero_updated_at=element.updated_date_utc,
        last_error="",
        last_error_permanent=False,
        last_pushed_at=timezone.now(),
        # The rate Xero used: the invoice page shows both base-currency amounts (issue 11).
        xero_currency_rate=to_decimal(element.currency_rate) if element.currency_rate else None,
        # Xero now holds Bitrix24's version: no drift, nothing accepted; the JSON and the totals
        # Xero computed are what later versions are compared with (sync.services.drift).
        last_pushed_content=pushed_content(_sent_content(item), element),
        drift=[],
        drift_detected_at=None,
        drift_xero_hash="",
        xero_accepted_hash="",
        xero_accepted_at=None,
        **payment_values(xero_invoice_dict(element)),
    )
    if not InvoiceLink.save_if_version(item.link.pk, item.link.version, **values):
        # Someone saved a newer result meanwhile (fencing token moved): re-read and re-decide later.
        fail(ctx, item, RetryableError("The invoice was synced concurrently; trying again.", system="xero"))
        return
    link_apply(item.link, values)
    item.amount_due = to_decimal(element.amount_due)
    item.amount_paid = amount_paid
    if created:
        ctx.report.created += 1
    else:
        ctx.report.updated += 1
    message = item.decision.message if item.decision else ""
    if item.gate.force and item.gate.differences:
        shown = "; ".join(f"{d.label} {d.xero or '—'} → {d.bitrix24 or '—'}" for d in item.gate.differences[:5])
        message = (message + " " if message else "") + f"Xero differed from Bitrix24; restored ({shown})."
    elif item.gate.force:
        message = (message + " " if message else "") + "Changed in Xero; restored Bitrix24's version."
    if item.gap_message:  # what the exactness check says (adjustment, tax set per line, cuts, rate)
        message = (message + " " if message else "") + item.gap_message
    details = {"rule": item.decision.rule if item.decision else "", "status": status}
    if item.gap_message:
        details["notes"] = item.gap_message
    if item.decision and item.decision.record_payment:
        item.pushed_log = (created, message, details)  # logged after the payment
        return
    finish(
        ctx,
        item,
        outcome=SyncLogEntry.Outcome.CREATED if created else SyncLogEntry.Outcome.UPDATED,
        message=message,
        details=details,
        counted=True,
    )


def _sent_content(item) -> dict:
    """What was sent, as drift compares it later: the body (lines exactly as sent, whatever a check
    chose to make them exact) without the write-only parts."""
    return {k: v for k, v in (item.body or item.content or {}).items() if k not in ("Status", "InvoiceID")}
