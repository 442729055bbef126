"""Each invoice's current outcome (sync.models.InvoiceOutcome), kept from the sync log.

`outcome_note(entry)` runs for every invoice entry `sync_log_write` stores, so whatever engine logs
an invoice's outcome also sets where the invoice stands. Entries that say nothing new about the
invoice's state (an unlinked Xero invoice ignored, a sweep note without an invoice) change nothing.
The entry's details may carry `attempt`, `next_attempt_at` (ISO) for a retry, and `rule`/`code`.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.dateparse import parse_datetime

from accounts.models import Portal
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.models import InvoiceOutcome, SyncLogEntry

State = InvoiceOutcome.State
Outcome = SyncLogEntry.Outcome

STATE_OF = {
    Outcome.CREATED: State.ON_XERO,
    Outcome.UPDATED: State.ON_XERO,
    Outcome.STATUS_CHANGED: State.ON_XERO,
    Outcome.PAYMENT_RECORDED: State.ON_XERO,
    Outcome.SKIPPED_UNCHANGED: State.ON_XERO,
    Outcome.ECHO_DROPPED: State.ON_XERO,
    Outcome.REFUSED: State.REFUSED,
    Outcome.HELD: State.HELD,
    Outcome.CHANGED_IN_XERO: State.CHANGED_IN_XERO,
    Outcome.RETRYING: State.RETRYING,
    Outcome.FAILED: State.FAILED,
}
# A skip says "nothing new", not "all is well": it clears a transient failure but leaves a state a
# person must act on (refused, held, changed in Xero) as it is.
_QUIET = {Outcome.SKIPPED_UNCHANGED, Outcome.ECHO_DROPPED}


def outcome_note(entry: SyncLogEntry) -> InvoiceOutcome | None:
    if entry.object_kind != SyncLogEntry.ObjectKind.INVOICE or not entry.bitrix24_id.isdigit():
        return None
    state = STATE_OF.get(entry.outcome)
    if state is None:
        return None
    details = entry.details or {}
    try:
        entity_type = int(details.get("entity_type") or SMART_INVOICE)
    except (TypeError, ValueError):
        entity_type = SMART_INVOICE
    key = {"portal": entry.portal, "bitrix24_entity_type": entity_type, "bitrix24_id": int(entry.bitrix24_id)}
    if entry.outcome in _QUIET:
        if entry.direction != "push":
            return None  # the pull engine's skips say nothing about a push in trouble
        existing = InvoiceOutcome.objects.filter(**key).first()
        if existing is not None and existing.state not in (State.RETRYING, State.FAILED, State.ON_XERO):
            return existing
    next_at = details.get("next_attempt_at")
    outcome, _ = InvoiceOutcome.objects.update_or_create(
        **key,
        defaults={
            "state": state,
            "reason": entry.message if state != State.ON_XERO else "",
            "rule": str(details.get("rule") or details.get("code") or "")[:64],
            "attempts": int(details.get("attempt") or 0),
            "next_attempt_at": parse_datetime(next_at) if isinstance(next_at, str) else None,
            "log_entry_id": entry.pk,
        },
    )
    return outcome


def outcomes_for(portal: Portal, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], InvoiceOutcome]:
    """The outcomes of these (entity type, id) invoices of the portal."""
    by_type: dict[int, list[int]] = {}
    for entity_type, bitrix24_id in keys:
        by_type.setdefault(int(entity_type), []).append(int(bitrix24_id))
    out: dict[tuple[int, int], InvoiceOutcome] = {}
    for entity_type, ids in by_type.items():
        for row in InvoiceOutcome.objects.filter(portal=portal, bitrix24_entity_type=entity_type, bitrix24_id__in=ids):
            out[(entity_type, row.bitrix24_id)] = row
    return out
