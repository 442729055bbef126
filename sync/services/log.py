"""The sync log: one row per outcome, in the API's own words (shown in the app and in admin).

Every entry is stored through `sync_log_write_many` (`sync_log_write` is one entry of it), so a
single entry and a batch of them get the same treatment: the message redacted, the post_save
listeners run (metrics, the outcome's log line), the invoice's outcome kept (outcome_note).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

from accounts.models import Portal
from sync.models import Direction, SyncLogEntry, Trigger


def sync_log_entry(
    *,
    portal: Portal,
    direction: Direction | str,
    trigger: Trigger | str,
    outcome: SyncLogEntry.Outcome | str,
    bitrix24_id: str | int = "",
    xero_id: str = "",
    invoice_number: str = "",
    message: str = "",
    details: dict[str, Any] | None = None,
    object_kind: SyncLogEntry.ObjectKind | str = SyncLogEntry.ObjectKind.INVOICE,
) -> SyncLogEntry:
    """An entry not stored yet (for sync_log_write_many)."""
    return SyncLogEntry(
        portal=portal,
        direction=direction,
        trigger=trigger,
        outcome=outcome,
        object_kind=object_kind,
        bitrix24_id=str(bitrix24_id or ""),
        xero_id=str(xero_id or ""),
        invoice_number=invoice_number or "",
        message=message or "",
        details=details or {},
    )


def sync_log_write(**fields: Any) -> SyncLogEntry:
    """Store one entry (the fields of sync_log_entry)."""
    [entry] = sync_log_write_many([sync_log_entry(**fields)])
    return entry


def sync_log_write_many(entries: list[SyncLogEntry]) -> list[SyncLogEntry]:
    """Store the entries in one INSERT (a batch of echoes: one statement instead of one each).
    bulk_create calls no save() and sends no signal, so what SyncLogEntry.save and post_save would
    do is done here, for every entry alike."""
    if not entries:
        return entries
    for entry in entries:
        entry.redact_message()
    SyncLogEntry.objects.bulk_create(entries)
    # Where the invoices stand now (the list's badge, "Needs attention"): one upsert for the batch.
    from sync.services.outcomes import outcomes_note_many

    for entry in entries:
        post_save.send(
            sender=SyncLogEntry, instance=entry, created=True, update_fields=None, raw=False, using=entry._state.db
        )
    outcomes_note_many(entries)
    return entries
