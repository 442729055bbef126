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
    """Where the entry's invoice stands now (outcomes_note_many of one entry)."""
    return outcomes_note_many([entry]).get(id(entry))


def outcomes_note_many(entries: list[SyncLogEntry]) -> dict[int, InvoiceOutcome]:
    """outcome_note for a batch of stored entries, in their order, with one SELECT (for the skips,
    which must see the state before them) and one upsert, instead of a transaction of four or five
    statements per entry. -> the outcome each entry set or left, by id() of the entry."""
    noted = [(entry, key, state) for entry in entries for key, state in [_entry_state(entry)] if state is not None]
    current = _outcomes_of({key for entry, key, _state in noted if entry.outcome in _QUIET})
    to_write: dict[Key, InvoiceOutcome] = {}
    out: dict[int, InvoiceOutcome] = {}
    for entry, key, state in noted:
        existing = current.get(key)
        if entry.outcome in _QUIET and existing is not None and existing.state not in _QUIET_CLEARS:
            out[id(entry)] = existing  # a skip leaves a state a person must act on as it is
            continue
        current[key] = to_write[key] = out[id(entry)] = _outcome_of(entry, key, state)
    if to_write:
        # One row per invoice (the last entry's): an upsert may not touch a row twice.
        InvoiceOutcome.objects.bulk_create(
            list(to_write.values()),
            update_conflicts=True,
            unique_fields=["portal", "bitrix24_entity_type", "bitrix24_id"],
            update_fields=["state", "reason", "rule", "attempts", "next_attempt_at", "log_entry_id", "updated_at"],
        )
    return out


# (portal id, entity type, Bitrix24 id): one invoice's outcome.
Key = tuple[int, int, int]
# A skip clears these (a transient failure, or nothing to clear); any other state stays.
_QUIET_CLEARS = (State.RETRYING, State.FAILED, State.ON_XERO)


def _entry_state(entry: SyncLogEntry) -> tuple[Key, State | None]:
    """The invoice an entry is about and the state it sets; None when it says nothing about one."""
    if entry.object_kind != SyncLogEntry.ObjectKind.INVOICE or not entry.bitrix24_id.isdigit():
        return (0, 0, 0), None
    if entry.outcome in _QUIET and entry.direction != "push":
        return (0, 0, 0), None  # the pull engine's skips say nothing about a push in trouble
    try:
        entity_type = int((entry.details or {}).get("entity_type") or SMART_INVOICE)
    except (TypeError, ValueError):
        entity_type = SMART_INVOICE
    return (entry.portal_id, entity_type, int(entry.bitrix24_id)), STATE_OF.get(entry.outcome)


def _outcome_of(entry: SyncLogEntry, key: Key, state: State) -> InvoiceOutcome:
    details = entry.details or {}
    next_at = details.get("next_attempt_at")
    return InvoiceOutcome(
        portal_id=key[0],
        bitrix24_entity_type=key[1],
        bitrix24_id=key[2],
        state=state,
        reason=entry.message if state != State.ON_XERO else "",
        rule=str(details.get("rule") or details.get("code") or "")[:64],
        attempts=int(details.get("attempt") or 0),
        next_attempt_at=parse_datetime(next_at) if isinstance(next_at, str) else None,
        log_entry_id=entry.pk,
    )


def _outcomes_of(keys: set[Key]) -> dict[Key, InvoiceOutcome]:
    by_invoices: dict[tuple[int, int], list[int]] = {}
    for portal_id, entity_type, bitrix24_id in keys:
        by_invoices.setdefault((portal_id, entity_type), []).append(bitrix24_id)
    out: dict[Key, InvoiceOutcome] = {}
    for (portal_id, entity_type), ids in by_invoices.items():
        rows = InvoiceOutcome.objects.filter(portal_id=portal_id, bitrix24_entity_type=entity_type, bitrix24_id__in=ids)
        out.update({(portal_id, entity_type, row.bitrix24_id): row for row in rows})
    return out


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
