"""Per invoice read from Xero: echo, record only, or a stage move; and recording it on the link."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.utils import timezone

from accounts.models import Portal
from integrations.common.errors import ExternalAPIError
from sync.mappers.stage import stage_for_xero_status
from sync.models import Direction, InvoiceLink, SyncLogEntry, Trigger
from sync.services.log import sync_log_write
from sync.services.pull.state import PullReport, XeroInvoiceState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageMove:
    link: InvoiceLink
    invoice: XeroInvoiceState
    stage_id: str


def stage_move_decide(
    portal: Portal,
    link: InvoiceLink,
    invoice: XeroInvoiceState,
    stage_maps: Mapping[int, tuple[dict[str, str], dict[str, str]]],
    triggers: Mapping[uuid.UUID, str],
    report: PullReport,
) -> StageMove | None:
    """The stage move this invoice calls for, or None after handling it (echo, record, refuse).

    1. Older than what the link last acted on (an out-of-order read): ignore.
    2. Fingerprint equal to last_pulled_hash: an echo or nothing new; skip (logged for webhooks).
    3. Status not mapped back, or the invoice already on (or on a stage meaning) that status:
       record the new state on the link, leave Bitrix24 alone.
    """
    b24_to_xero, xero_to_b24 = stage_maps[link.bitrix24_entity_type]
    trigger = triggers.get(invoice.invoice_id, Trigger.WEBHOOK)
    if link.xero_updated_at and invoice.updated_at and invoice.updated_at < link.xero_updated_at:
        report.echoes += 1
        return None
    current, echo = _synced_stage(link, invoice, b24_to_xero)
    if echo:
        report.echoes += 1
        if trigger == Trigger.WEBHOOK:  # a sweep re-reads hundreds of these; say nothing
            pull_log_write(
                portal,
                link,
                invoice,
                trigger,
                SyncLogEntry.Outcome.ECHO_DROPPED,
                f"Xero status {invoice.status} is what we last synced; nothing to change in Bitrix24.",
            )
        return None
    target = stage_for_xero_status(
        invoice.status, current_stage_id=current, xero_to_b24=xero_to_b24, b24_to_xero=b24_to_xero
    )
    if target is None:
        if invoice.status != link.last_xero_status:
            pull_log_write(
                portal,
                link,
                invoice,
                trigger,
                SyncLogEntry.Outcome.STATUS_CHANGED,
                f"Xero status {invoice.status} recorded; the Bitrix24 stage stays as it is.",
            )
        link_state_record(link, invoice, stage_id=current)
        report.recorded += 1
        return None
    return StageMove(link, invoice, target)


def _synced_stage(link: InvoiceLink, invoice: XeroInvoiceState, stages: Mapping[str, str]) -> tuple[str, bool]:
    """(the Bitrix24 stage the link's last fingerprint was taken on, whether `invoice` matches it).

    Normally that is `last_bitrix24_stage_id`. A link whose stage was never stored (a push that
    recorded only last_pulled_hash) still carries the stage inside the fingerprint: try the
    portal's stages, a dozen sha256s, rather than take our own push's echo for a change.
    """
    stored = link.last_bitrix24_stage_id
    if invoice.fingerprint(stored) == link.last_pulled_hash:
        return stored, True
    if not stored and link.last_pulled_hash:
        for stage_id in stages:
            if invoice.fingerprint(stage_id) == link.last_pulled_hash:
                return stage_id, True
    return stored, False


def move_recorded(
    portal: Portal, move: StageMove, triggers: Mapping[uuid.UUID, str], names: Mapping[str, str], report: PullReport
) -> None:
    previous = move.link.last_bitrix24_stage_id
    link_state_record(move.link, move.invoice, stage_id=move.stage_id, clear_error=True)
    report.moved += 1
    pull_log_write(
        portal,
        move.link,
        move.invoice,
        triggers.get(move.invoice.invoice_id, Trigger.WEBHOOK),
        SyncLogEntry.Outcome.UPDATED,
        f"Xero status {move.invoice.status} -> Bitrix24 stage {names.get(move.stage_id, move.stage_id)}",
        details={"stage_id": move.stage_id, "previous_stage_id": previous},
    )


def move_failed_record(
    portal: Portal, move: StageMove, error: ExternalAPIError, triggers: Mapping[uuid.UUID, str], report: PullReport
) -> None:
    report.failed += 1
    InvoiceLink.objects.filter(pk=move.link.pk).update(
        last_error=error.message[:4000], last_error_permanent=not error.retryable, updated_at=timezone.now()
    )
    pull_log_write(
        portal,
        move.link,
        move.invoice,
        triggers.get(move.invoice.invoice_id, Trigger.WEBHOOK),
        SyncLogEntry.Outcome.RETRYING if error.retryable else SyncLogEntry.Outcome.FAILED,
        error.message,
        details={"stage_id": move.stage_id, "code": error.code or ""},
    )


def link_state_record(
    link: InvoiceLink, invoice: XeroInvoiceState, *, stage_id: str, clear_error: bool = False
) -> None:
    """Store what we now know, compare-and-set on `version` (style B.3).

    If someone else saved the link since we read it (the push engine handling an event), their
    stage is the newer fact: keep it and fingerprint with it; the Xero side is ours to record.
    """
    read_stage, version = link.last_bitrix24_stage_id, link.version
    for _ in range(5):
        values = {
            "last_xero_status": invoice.status,
            "last_bitrix24_stage_id": stage_id,
            "last_pulled_hash": invoice.fingerprint(stage_id),
            "xero_updated_at": invoice.updated_at,
            "last_pulled_at": timezone.now(),
            "updated_at": timezone.now(),
        }
        if clear_error:
            values.update(last_error="", last_error_permanent=False)
        if InvoiceLink.save_if_version(link.pk, version, **values):
            link.version = version + 1
            for name, value in values.items():
                setattr(link, name, value)
            return
        fresh = InvoiceLink.objects.filter(pk=link.pk).values("version", "last_bitrix24_stage_id").first()
        if fresh is None:
            return  # the link was deleted meanwhile: nothing left to record on
        version = fresh["version"]
        if fresh["last_bitrix24_stage_id"] != read_stage:
            stage_id = fresh["last_bitrix24_stage_id"]
    logger.warning("link %s kept changing under the pull; its state was not recorded", link.pk)


def pull_log_write(
    portal: Portal,
    link: InvoiceLink,
    invoice: XeroInvoiceState,
    trigger: str,
    outcome: str,
    message: str,
    *,
    details: dict | None = None,
) -> None:
    sync_log_write(
        portal=portal,
        direction=Direction.PULL,
        trigger=trigger,
        outcome=outcome,
        bitrix24_id=link.bitrix24_id,
        xero_id=str(invoice.invoice_id),
        invoice_number=invoice.number or link.xero_invoice_number,
        message=message,
        details={"xero_status": invoice.status, "amount_paid": str(invoice.amount_paid), **(details or {})},
    )
