"""Stage "write": create/update the invoices in Xero, in POSTs of XERO_BATCH with
summarizeErrors=false and a deterministic Idempotency-Key, after looking up by InvoiceNumber any
invoice an earlier attempt may have created without us hearing the answer. Each invoice gets Xero's
answer element (item.answer) or its own failure; a request that fails fails only its batch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from integrations.common.errors import AuthorizationLostError, ExternalAPIError, PermanentError, RetryableError
from sync.mappers.canonical import idempotency_key, invoice_push_fingerprint
from sync.models import InvoiceLink
from sync.services.credit_notes import is_credit_note, write_credit_notes
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import fail, fail_all

XERO_BATCH = 50
# InvoiceNumbers go into the query string of the lost-answer lookup; 40 keeps it short.
NUMBERS_PER_LOOKUP = 40


def write_stage(ctx: PassContext, items: list[Work], then: Callable[[PassContext, list[Work]], None]) -> None:
    """Send the invoices that have a body; `then` (the record stage) stores each batch's answers
    before the next batch goes, so a crash loses at most one batch's answers (which the lost-create
    guard and the Idempotency-Key recover)."""
    to_send = [item for item in items if item.body is not None]
    # Below zero: Xero credit notes, their own endpoint (sync.services.credit_notes, issue 11).
    credit_notes = [item for item in to_send if is_credit_note(item)]
    to_send = [item for item in to_send if not is_credit_note(item)]
    if credit_notes:
        write_credit_notes(ctx, credit_notes)
    guard_lost_creates(ctx, to_send)
    to_send = [item for item in to_send if not item.finished]
    for start in range(0, len(to_send), XERO_BATCH):
        batch = to_send[start : start + XERO_BATCH]
        send_batch(ctx, batch)
        then(ctx, [item for item in batch if not item.finished and item.answer is not None])


def guard_lost_creates(ctx: PassContext, items: list[Work]) -> None:
    """An earlier attempt may have created the invoice in Xero and died before storing the answer.
    Its link row exists (made just before that attempt), so look those up by number, one GET per
    NUMBERS_PER_LOOKUP, and update instead of creating a twin. New invoices get their link row now,
    so that a crash during this pass is caught the same way next time. A lookup that fails fails
    the invoices it was for (creating them blind could make twins)."""
    creates = [item for item in items if "InvoiceID" not in item.body]
    suspicious = [item for item in creates if item.link is not None and item.body.get("InvoiceNumber")]
    for start in range(0, len(suspicious), NUMBERS_PER_LOOKUP):
        chunk = suspicious[start : start + NUMBERS_PER_LOOKUP]
        try:
            numbered = ctx.xero.invoices_by_number([item.body["InvoiceNumber"] for item in chunk])
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            fail_all(ctx, chunk, exc)
            continue
        found = {inv.invoice_number: inv for inv in numbered if inv.type == "ACCREC"}
        for item in chunk:
            existing = found.get(item.body["InvoiceNumber"])
            # Only an invoice that points back at this Bitrix24 invoice is ours to adopt.
            if existing is not None and (existing.url or "") == item.body.get("Url", ""):
                item.body["InvoiceID"] = existing.invoice_id
                if existing.status not in ("DRAFT", "SUBMITTED") and item.body.get("Status") in ("DRAFT", "SUBMITTED"):
                    item.body.pop("Status")  # it went further in Xero meanwhile; don't ask to go back
    missing = [
        InvoiceLink(portal=ctx.portal, bitrix24_entity_type=item.entity_type, bitrix24_id=item.invoice_id)
        for item in creates
        if item.link is None
    ]
    if missing:
        InvoiceLink.objects.bulk_create(missing, ignore_conflicts=True)
        fresh = ctx.links(creates)
        for item in creates:
            item.link = fresh.get((item.entity_type, item.invoice_id), item.link)


def batch_key(ctx: PassContext, batch: list[Work]) -> str:
    # Deterministic over what is sent and the link versions it was decided on: a retry of the same
    # batch replays Xero's stored answer, while a later edit (new fingerprint, or a version bumped
    # by a saved push) gets a new key even if the content returns to an earlier state.
    material = "|".join(
        f"{item.invoice_id}:{invoice_push_fingerprint(item.body)}:{item.body.get('InvoiceID', 'new')}:"
        f"{item.link.version if item.link else 0}"
        for item in batch
    )
    return idempotency_key(
        ctx.portal.member_id, "batch", hashlib.sha256(material.encode()).hexdigest(), operation="invb"
    )


def send_batch(ctx: PassContext, batch: list[Work]) -> None:
    batch.sort(key=lambda item: item.invoice_id)
    try:
        answers = ctx.xero.invoices_upsert([item.body for item in batch], idempotency_key=batch_key(ctx, batch))
    except AuthorizationLostError:
        raise
    except ExternalAPIError as exc:
        fail_all(ctx, batch, exc)
        return
    for index, item in enumerate(batch):
        answer = answers[index] if index < len(answers) else None
        if answer is None:
            fail(ctx, item, RetryableError("Xero's answer did not include this invoice.", system="xero"))
            continue
        if not answer.ok:
            fail(ctx, item, PermanentError("; ".join(answer.errors) or "Xero refused the invoice.", system="xero"))
            continue
        item.answer = answer.result
