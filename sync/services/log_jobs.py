"""Which job a sync-log entry came from, and which kind of invoice it is about: what the log pages
need to offer Retry on an entry and to check it against the user's Bitrix24 permissions."""

from __future__ import annotations

from django.db.models import Q

from accounts.models import Portal
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.models import SyncJob, SyncLogEntry


def entry_entity_type(entry: SyncLogEntry) -> int:
    """The kind of Bitrix24 invoice a log entry is about: the push logs old invoices' entries with
    details["entity_type"] = 5; entries without it are about new invoices."""
    try:
        return int((entry.details or {}).get("entity_type") or SMART_INVOICE)
    except (TypeError, ValueError):
        return SMART_INVOICE


def job_target_of(entry: SyncLogEntry) -> tuple[str, str] | None:
    """The (kind, target) of the job that produced a log entry, as the engine names them."""
    if entry.object_kind != SyncLogEntry.ObjectKind.INVOICE:
        return None
    if entry.direction == "push" and entry.bitrix24_id:
        return SyncJob.Kind.PUSH_INVOICE, f"{entry_entity_type(entry)}:{entry.bitrix24_id}"
    if entry.direction == "pull" and entry.xero_id:
        return SyncJob.Kind.PULL_STATUS, entry.xero_id
    return None


def latest_jobs(portal: Portal, entries: list[SyncLogEntry]) -> dict[tuple[str, str], SyncJob]:
    """The newest job per (kind, target) of these entries, in one query."""
    targets = {t for t in (job_target_of(e) for e in entries) if t}
    if not targets:
        return {}
    query = Q()
    for kind, target in targets:
        query |= Q(kind=kind, target=target)
    latest: dict[tuple[str, str], SyncJob] = {}
    for job in SyncJob.objects.filter(query, portal=portal).order_by("-created_at", "-id"):
        latest.setdefault((job.kind, job.target), job)
    return latest


def log_entry_job(*, portal: Portal, entry_id: int) -> tuple[SyncLogEntry, SyncJob | None]:
    """A log entry of this portal and the newest job behind it (DoesNotExist for another portal's)."""
    entry = SyncLogEntry.objects.get(pk=entry_id, portal=portal)
    return entry, latest_jobs(portal, [entry]).get(job_target_of(entry) or ("", ""))
