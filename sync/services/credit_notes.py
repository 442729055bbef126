"""Bitrix24 invoices below zero as Xero credit notes (ACCRECCREDIT), both ways (issue 11 point 5).

Xero will not approve an invoice whose total is below zero; a credit note is how Xero books money
owed back to a customer. The exactness check (sync.services.exactness) marks such a body with
Type ACCRECCREDIT and positive lines; this module sends it:

- push: `write_credit_notes` sends them 50 per request (PUT-or-POST /CreditNotes, summarizeErrors
  false, unitdp=4, a deterministic Idempotency-Key) and stores each on its InvoiceLink like an
  invoice, with `xero_type` ACCRECCREDIT and `xero_invoice_id` = the CreditNoteID. Statuses map
  through the same stage map as invoices (DRAFT/SUBMITTED/AUTHORISED/VOIDED/DELETED; PAID only
  by a refund or allocation in Xero). A document cannot change kind in Xero: an invoice already
  sent whose total drops below zero (or a credit note whose total turns positive) is refused with
  what to do.
- pull: Xero sends no webhooks for credit notes, so `credit_notes_pull_recent` reads the ones changed
  since the watermark (only for portals that have credit notes) and hands them to the pull engine
  as invoice states: a credit note refunded or allocated in Xero (PAID) moves its Bitrix24 invoice
  to the stage mapped from PAID.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime

from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from integrations.common.errors import AuthorizationLostError, ExternalAPIError, PermanentError, RetryableError
from integrations.xero.client import XeroClient
from integrations.xero.types import CreditNote
from sync.mappers.canonical import idempotency_key, invoice_pull_fingerprint, invoice_push_fingerprint
from sync.mappers.money import to_decimal
from sync.models import InvoiceLink, SyncLogEntry

logger = logging.getLogger(__name__)

CREDIT_NOTE = "ACCRECCREDIT"
INVOICE = "ACCREC"
BATCH = 50
STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "VOIDED", "DELETED")


def is_credit_note(item) -> bool:
    return item.body is not None and item.body.get("Type") == CREDIT_NOTE


def kind_change_refusal(item) -> str:
    """Why this body cannot be sent over what Xero already holds ("" when it can)."""
    link = item.link
    if link is None or not link.xero_invoice_id:
        return ""
    wanted = CREDIT_NOTE if is_credit_note(item) else INVOICE
    held = link.xero_type or INVOICE
    if wanted == held:
        return ""
    if wanted == CREDIT_NOTE:
        return (
            f"Bitrix24's total is now below zero, but Xero already holds this as invoice "
            f"{link.xero_invoice_number}: Xero cannot turn an invoice into a credit note. Void or delete "
            "it in Xero and clear the link (Sync log > retry), or keep the total at zero or above."
        )
    return (
        f"Bitrix24's total is now zero or above, but Xero already holds this as credit note "
        f"{link.xero_invoice_number}: Xero cannot turn a credit note into an invoice. Void or delete it "
        "in Xero first."
    )


def credit_note_body(body: dict) -> dict:
    """The invoice body in CreditNote's fields (xero_accounting.yaml CreditNote): no Url, no PAID."""
    out = {k: v for k, v in body.items() if k not in ("InvoiceID", "InvoiceNumber", "Url", "Type")}
    out["Type"] = CREDIT_NOTE
    if body.get("InvoiceNumber"):
        out["CreditNoteNumber"] = body["InvoiceNumber"]
    if body.get("InvoiceID"):
        out["CreditNoteID"] = body["InvoiceID"]
    if out.get("Status") not in (None, *STATUSES):
        out.pop("Status")
    return out


def write_credit_notes(ctx, items: list) -> None:
    """Send the credit notes among `items` and settle each (created/updated, or its error)."""
    from sync.services.push.outcomes import fail, fail_all

    ready = list(items)
    missing = [
        InvoiceLink(portal=ctx.portal, bitrix24_entity_type=item.entity_type, bitrix24_id=item.invoice_id)
        for item in ready
        if item.link is None
    ]
    if missing:
        InvoiceLink.objects.bulk_create(missing, ignore_conflicts=True)
        fresh = ctx.links(ready)
        for item in ready:
            item.link = fresh.get((item.entity_type, item.invoice_id), item.link)
    for start in range(0, len(ready), BATCH):
        batch = sorted(ready[start : start + BATCH], key=lambda item: item.invoice_id)
        bodies = [credit_note_body(item.body) for item in batch]
        material = "|".join(
            f"{item.invoice_id}:{invoice_push_fingerprint(body)}:{body.get('CreditNoteID', 'new')}:{item.link.version}"
            for item, body in zip(batch, bodies, strict=True)
        )
        key = idempotency_key(
            ctx.portal.member_id, "cn", hashlib.sha256(material.encode()).hexdigest(), operation="cnb"
        )
        try:
            answers = ctx.xero.credit_notes_upsert(bodies, idempotency_key=key)
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            fail_all(ctx, batch, exc)
            continue
        for index, item in enumerate(batch):
            answer = answers[index] if index < len(answers) else None
            if answer is None:
                fail(ctx, item, RetryableError("Xero's answer did not include this credit note.", system="xero"))
                continue
            if not answer.ok:
                message = "; ".join(answer.errors) or "Xero refused the credit note."
                fail(ctx, item, PermanentError(message, system="xero"))
                continue
            _store(ctx, item, answer.result)


def _store(ctx, item, element: CreditNote) -> None:
    from sync.services.push.outcomes import fail, finish
    from sync.services.push.sources import source_for

    created = "InvoiceID" not in item.body
    status = element.status
    total = to_decimal(element.total)
    used = total - to_decimal(element.remaining_credit)
    stage = source_for(item.entity_type).stage_of(item.invoice)
    saved = InvoiceLink.objects.filter(pk=item.link.pk, version=item.link.version)
    try:
        count = saved.update(
            xero_invoice_id=element.credit_note_id,
            xero_invoice_number=element.credit_note_number or "",
            xero_type=CREDIT_NOTE,
            last_pushed_hash=item.content_hash,
            last_xero_status=status,
            last_pulled_hash=invoice_pull_fingerprint(status, used, stage_id=stage),
            last_bitrix24_stage_id=stage,
            xero_updated_at=element.updated_date_utc,
            version=F("version") + 1,
            last_error="",
            last_error_permanent=False,
            last_pushed_at=timezone.now(),
            xero_total=total,
            xero_amount_paid=used,
            xero_amount_due=to_decimal(element.remaining_credit),
            xero_currency_rate=to_decimal(element.currency_rate) if element.currency_rate else None,
        )
    except IntegrityError:
        message = f"Xero credit note {element.credit_note_number} is already linked to another Bitrix24 invoice."
        fail(ctx, item, PermanentError(message, system="xero"))
        return
    if not count:
        fail(ctx, item, RetryableError("The invoice was synced concurrently; trying again.", system="xero"))
        return
    item.link.refresh_from_db()
    if created:
        ctx.report.created += 1
    else:
        ctx.report.updated += 1
    message = f"Sent as credit note {element.credit_note_number} (ACCRECCREDIT): Bitrix24's total is below zero."
    if item.decision and item.decision.message:
        message = f"{item.decision.message} {message}"
    if item.gap_message:
        message += " " + item.gap_message
    details = {"rule": item.decision.rule if item.decision else "", "status": status, "type": CREDIT_NOTE}
    if item.decision and item.decision.record_payment:
        message += " A credit note is settled by a refund or an allocation in Xero, not by a payment."
    finish(
        ctx,
        item,
        outcome=SyncLogEntry.Outcome.CREATED if created else SyncLogEntry.Outcome.UPDATED,
        message=message,
        details=details,
        counted=True,
    )
    item.decision = None  # nothing left for the payments stage


def refuse_kind_change(ctx, item) -> bool:
    """Decide stage: refuse (True) a body whose kind differs from the document Xero holds."""
    problem = kind_change_refusal(item)
    if problem:
        _refuse(ctx, item, problem)
    return bool(problem)


def _refuse(ctx, item, message: str) -> None:
    """A change Xero cannot make (an invoice cannot become a credit note): shown, never retried."""
    from sync.services.jobs import job_failed
    from sync.services.push.outcomes import log

    item.finished = True
    ctx.report.failed += 1
    InvoiceLink.objects.filter(pk=item.link.pk).update(last_error=message, last_error_permanent=True)
    log(ctx, item, SyncLogEntry.Outcome.REFUSED, message, {"rule": "document_kind"})
    if item.job is not None:
        job_failed(item.job, PermanentError(message, system="xero", code="document_kind"))


# --- pull ---------------------------------------------------------------------------------------


def credit_notes_pull_recent(*, portal, client: XeroClient, modified_since: datetime, page_size: int) -> list:
    """The portal's credit notes changed since `modified_since`, as pull states (empty without any)."""
    from sync.services.pull import XeroInvoiceState

    if not InvoiceLink.objects.filter(portal=portal, xero_type=CREDIT_NOTE).exists():
        return []
    out = []
    page = 1
    while True:
        notes = client.credit_notes_modified_since(modified_since, page=page, page_size=page_size)
        for note in notes:
            if note.type != CREDIT_NOTE:
                continue
            total = to_decimal(note.total or 0)
            out.append(
                XeroInvoiceState(
                    invoice_id=uuid.UUID(note.credit_note_id),
                    number=note.credit_note_number,
                    status=note.status,
                    amount_paid=total - to_decimal(note.remaining_credit or 0),
                    updated_at=note.updated_date_utc,
                    raw={"HasLines": False, "Status": note.status},
                )
            )
        if len(notes) < page_size:
            return out
        page += 1
