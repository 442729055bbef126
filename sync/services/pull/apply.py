"""Acting on invoices read from Xero: decide each, lock and move the stages in Bitrix24, record."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping

from django.db import transaction

from accounts.models import Portal
from integrations.bitrix24.api import BATCH_LIMIT, Bitrix24Api
from integrations.common.errors import ExternalAPIError, RetryableError
from integrations.common.locks import LockTimeout, redis_lock
from sync.mappers.stage import PAID
from sync.models import InvoiceLink, StageMapping, SyncSettings, Trigger
from sync.services.bitrix24_payments import PaidInvoice, bitrix24_payments_record
from sync.services.drift import drift_observe
from sync.services.locks import invoice_lock_name
from sync.services.pull.decide import StageMove, move_failed_record, move_recorded, stage_move_decide
from sync.services.pull.gate import LOCK_TTL_S
from sync.services.pull.state import PullReport, XeroInvoiceState
from sync.sources import SOURCES, invoice_source
from sync.stage_map import stage_map_load

# The push engine holds an invoice's lock for one pass; wait a little, else retry the invoice later.
INVOICE_LOCK_WAIT_S = 2.0


def invoices_apply(
    *,
    portal: Portal,
    invoices: list[XeroInvoiceState],
    links: Mapping[uuid.UUID, InvoiceLink],
    triggers: Mapping[uuid.UUID, str],
    report: PullReport,
) -> dict[uuid.UUID, ExternalAPIError | None]:
    """Act on invoices read from Xero; return each one's error (None = handled).

    1. Decide per invoice (`stage_move_decide`): echo, record only, or move the stage.
    2. Take the per-invoice locks the push engine uses for the invoices to move, and re-decide the
       ones whose link changed since it was read (the push engine stored something meanwhile).
       Holding the lock until the link is recorded means the push engine handles the
       ONCRMDYNAMICITEMUPDATE of our own write only after the link names the new stage.
    3. Write all stage changes in batches of 50; each command fails only its own invoice.
    4. Record each successful move on its link (stage, status, fingerprint) and log it.
    5. Optionally (SyncSettings) add a paid payment in Bitrix24 for invoices that became PAID.
    """
    outcomes: dict[uuid.UUID, ExternalAPIError | None] = dict.fromkeys(i.invoice_id for i in invoices)
    if not invoices:
        return outcomes
    for invoice in invoices:
        # Content drift and payment details first: an echo of our status is still news if the
        # lines changed in Xero (sync.services.drift).
        drift_observe(
            portal=portal,
            link=links[invoice.invoice_id],
            actual=invoice.raw,
            trigger=triggers.get(invoice.invoice_id, Trigger.WEBHOOK),
        )
    # One Xero -> Bitrix24 map per kind of invoice (a portal may have old and new ones).
    stage_map = {source.entity_type: stage_map_load(portal, source.entity_type) for source in SOURCES.values()}
    moves: list[StageMove] = []
    newly_paid = [
        (links[i.invoice_id], i)
        for i in invoices
        if _newly_paid(links[i.invoice_id], i) and invoice_source(links[i.invoice_id].bitrix24_entity_type).has_payments
    ]
    for invoice in invoices:
        move = stage_move_decide(portal, links[invoice.invoice_id], invoice, stage_map, triggers, report)
        if move is not None:
            moves.append(move)
    if moves:
        _moves_apply(portal, moves, stage_map, triggers, outcomes, report)
    if newly_paid:
        _payments_record(portal, newly_paid, triggers, outcomes, report)
    return outcomes


def _moves_apply(
    portal: Portal,
    moves: list[StageMove],
    stage_map: Mapping[int, tuple[dict[str, str], dict[str, str]]],
    triggers: Mapping[uuid.UUID, str],
    outcomes: dict[uuid.UUID, ExternalAPIError | None],
    report: PullReport,
) -> None:
    with contextlib.ExitStack() as held:
        locked: list[StageMove] = []
        for move in moves:
            try:
                held.enter_context(
                    redis_lock(
                        invoice_lock_name(portal.pk, move.link.bitrix24_id),
                        ttl_s=LOCK_TTL_S,
                        wait_s=INVOICE_LOCK_WAIT_S,
                    )
                )
            except LockTimeout:
                busy = RetryableError(
                    "The invoice is being sent to Xero right now; trying again shortly.", system="bitrix24"
                )
                outcomes[move.invoice.invoice_id] = busy
                report.failed += 1
                continue
            locked.append(move)
        fresh = InvoiceLink.objects.in_bulk([m.link.pk for m in locked])
        ready: list[StageMove] = []
        for move in locked:
            link = fresh.get(move.link.pk)
            if link is None:
                continue  # unlinked meanwhile
            if link.version != move.link.version:
                move = stage_move_decide(portal, link, move.invoice, stage_map, triggers, report)
                if move is None:
                    continue
            ready.append(move)
        interactive = any(triggers.get(m.invoice.invoice_id) == Trigger.BUTTON for m in ready)
        errors = stages_write(portal, ready, interactive=interactive, report=report) if ready else {}
        names = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "name"))
        # The links and their log rows are committed together, still inside the locks, so the
        # push engine sees the recorded stages by the time it handles the events of our writes.
        with transaction.atomic():
            for move in ready:
                error = errors.get(move.link.pk)
                if error is None:
                    move_recorded(portal, move, triggers, names, report)
                else:
                    outcomes[move.invoice.invoice_id] = error
                    move_failed_record(portal, move, error, triggers, report)


def _newly_paid(link: InvoiceLink, invoice: XeroInvoiceState) -> bool:
    """PAID in Xero, and not PAID when we (or the push engine, after paying it) last recorded it."""
    return invoice.status == PAID and link.last_xero_status != PAID


def _payments_record(
    portal: Portal,
    paid: list[tuple[InvoiceLink, XeroInvoiceState]],
    triggers: Mapping[uuid.UUID, str],
    outcomes: dict[uuid.UUID, ExternalAPIError | None],
    report: PullReport,
) -> None:
    """The optional "create a Bitrix24 payment record when PAID" (SyncSettings). Only for invoices
    whose stage write did not fail; a failure is logged, and does not undo or retry the stage move."""
    if not SyncSettings.objects.filter(portal=portal, create_bitrix24_payment_on_paid=True).exists():
        return
    due = [
        PaidInvoice(
            bitrix24_id=link.bitrix24_id,
            xero_invoice_id=str(invoice.invoice_id),
            invoice_number=invoice.number or link.xero_invoice_number,
            trigger=triggers.get(invoice.invoice_id, Trigger.WEBHOOK),
        )
        for link, invoice in paid
        if outcomes.get(invoice.invoice_id) is None
    ]
    interactive = any(p.trigger == Trigger.BUTTON for p in due)
    recorded = bitrix24_payments_record(
        portal=portal, client=Bitrix24Api.for_portal(portal, interactive=interactive), invoices=due
    )
    report.payments += sum(1 for error in recorded.values() if error is None)


def stages_write(
    portal: Portal, moves: list[StageMove], *, interactive: bool, report: PullReport
) -> dict[int, ExternalAPIError]:
    """The source's move for every invoice (a stage of a new invoice, a status of an old one; see
    integrations.bitrix24.api.invoices), 50 per `batch`.

    Bitrix24Api.batch_all would raise on the first batch that fails as a whole and lose the
    results of the ones before it, so the chunks are sent one by one here: a network error or a
    full bucket fails its own chunk (and, being retryable or fatal for all, the ones after it).
    """
    client = Bitrix24Api.for_portal(portal, interactive=interactive)
    errors: dict[int, ExternalAPIError] = {}
    for start in range(0, len(moves), BATCH_LIMIT):
        chunk = moves[start : start + BATCH_LIMIT]
        commands = {
            f"s{move.link.pk}": invoice_source(move.link.bitrix24_entity_type).move_command(
                move.link.bitrix24_id, move.stage_id
            )
            for move in chunk
        }
        try:
            outcome = client.batch(commands)
        except ExternalAPIError as error:
            report.errors.append(str(error))
            for move in moves[start:]:
                errors[move.link.pk] = error
            break
        report.bitrix24_calls += 1
        for move in chunk:
            key = f"s{move.link.pk}"
            if key in outcome.errors:
                errors[move.link.pk] = outcome.errors[key]
            elif not outcome.ran(key):
                errors[move.link.pk] = RetryableError("Bitrix24 did not run the stage update", system="bitrix24")
    return errors
