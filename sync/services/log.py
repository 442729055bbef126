"""The sync log: one row per outcome, in the API's own words (shown in the app and in admin)."""

from __future__ import annotations

from typing import Any

from accounts.models import Portal
from sync.models import Direction, SyncLogEntry, Trigger


def sync_log_write(
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
    entry = SyncLogEntry.objects.create(
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
    # Where the invoice stands now (the list's badge, "Needs attention").
    from sync.services.outcomes import outcome_note

    outcome_note(entry)
    return entry
