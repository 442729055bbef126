"""The Sync log page's data: one group per invoice (or contact/item), latest outcome first.

- A group shows its latest entry, how many attempts failed since, and the earlier entries folded.
  One Retry per group, on the latest entry (when its job can be retried).
- Echoes and unchanged skips carry no news: they are left out unless asked for, and counted.
- "Needs attention": the invoices whose current outcome (sync.models.InvoiceOutcome) is failed,
  refused or held, and failed entries about contacts and items.
- A non-admin sees only the invoices Bitrix24 lets them see (checked with their token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import Count, Max, Q

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api
from sync.models import InvoiceOutcome, SyncJob, SyncLogEntry
from sync.services.invoice_list import visible_invoice_ids
from sync.services.log_jobs import entry_entity_type, job_target_of, latest_jobs
from sync.sources import SMART_INVOICE

GROUPS_PER_PAGE = 25
EARLIER_SHOWN = 10
Outcome = SyncLogEntry.Outcome
QUIET = (Outcome.SKIPPED_UNCHANGED, Outcome.ECHO_DROPPED)
TROUBLE = (Outcome.FAILED, Outcome.RETRYING)


@dataclass
class LogGroup:
    entry: SyncLogEntry  # the latest
    earlier: list[SyncLogEntry] = field(default_factory=list)
    entries: int = 1
    failed_attempts: int = 0  # failed/retrying entries since the last success
    job_id: int | None = None  # what Retry acts on
    job_status: str = ""

    @property
    def kind_query(self) -> str:
        """ "kind=5" for an old invoice's group (its page link names the kind), else ""."""
        entity_type = entry_entity_type(self.entry)
        return "" if entity_type == SMART_INVOICE else f"kind={entity_type}"


@dataclass
class GroupedLog:
    groups: list[LogGroup]
    page: int
    pages: int
    total: int
    quiet: int = 0  # echo / unchanged entries left out
    show_quiet: bool = False
    attention: bool = False
    hidden: int = 0  # groups left out: invoices the user may not see


def _entries(portal: Portal, *, is_admin: bool, show_quiet: bool, attention: bool):
    entries = SyncLogEntry.objects.filter(portal=portal)
    if not is_admin:
        entries = entries.filter(object_kind=SyncLogEntry.ObjectKind.INVOICE)
    if attention:
        ids = InvoiceOutcome.objects.filter(portal=portal, state__in=InvoiceOutcome.ATTENTION).values_list(
            "bitrix24_id", flat=True
        )
        entries = entries.filter(
            Q(object_kind=SyncLogEntry.ObjectKind.INVOICE, bitrix24_id__in=[str(i) for i in ids])
            | (~Q(object_kind=SyncLogEntry.ObjectKind.INVOICE) & Q(outcome=Outcome.FAILED))
        )
    if not show_quiet:
        entries = entries.exclude(outcome__in=QUIET)
    return entries


def _key(entry: SyncLogEntry) -> tuple[str, str]:
    return entry.object_kind, entry.bitrix24_id or f"x:{entry.xero_id}"


def sync_log_grouped(
    *,
    portal: Portal,
    client: Bitrix24Api | None,
    is_admin: bool,
    page: int = 1,
    show_quiet: bool = False,
    attention: bool = False,
) -> GroupedLog:
    entries = _entries(portal, is_admin=is_admin, show_quiet=show_quiet, attention=attention)
    quiet = (
        0
        if show_quiet
        else _entries(portal, is_admin=is_admin, show_quiet=True, attention=attention).filter(outcome__in=QUIET).count()
    )
    keyed = entries.values("object_kind", "bitrix24_id", "xero_id").annotate(latest=Max("created_at"), n=Count("id"))
    # One group per (kind, Bitrix24 id), or per Xero id for what has no Bitrix24 id.
    merged: dict[tuple[str, str], dict] = {}
    for row in keyed:
        key = (row["object_kind"], row["bitrix24_id"] or f"x:{row['xero_id']}")
        seen = merged.setdefault(key, {"latest": row["latest"], "n": 0})
        seen["latest"] = max(seen["latest"], row["latest"])
        seen["n"] += row["n"]
    ordered = sorted(merged.items(), key=lambda kv: kv[1]["latest"], reverse=True)
    total = len(ordered)
    pages = max(1, math.ceil(total / GROUPS_PER_PAGE))
    page = min(max(1, page), pages)
    chosen = ordered[(page - 1) * GROUPS_PER_PAGE : page * GROUPS_PER_PAGE]
    hidden = 0
    if not is_admin and chosen:
        by_kind: dict[int, set[int]] = {}
        ids = [int(key[1]) for key, _ in chosen if key[1].isdigit()]
        for entry in entries.filter(bitrix24_id__in=[str(i) for i in ids]).only("details", "bitrix24_id"):
            by_kind.setdefault(entry_entity_type(entry), set()).add(int(entry.bitrix24_id))
        visible = {
            str(i)
            for kind, group in by_kind.items()
            for i in visible_invoice_ids(client=client, ids=group, entity_type=kind)
        }
        shown = [(key, info) for key, info in chosen if key[1] in visible]
        hidden, chosen = len(chosen) - len(shown), shown
    groups = _groups(portal, entries, [key for key, _ in chosen])
    return GroupedLog(
        groups=groups,
        page=page,
        pages=pages,
        total=total,
        quiet=quiet,
        show_quiet=show_quiet,
        attention=attention,
        hidden=hidden,
    )


def _groups(portal: Portal, entries, keys: list[tuple[str, str]]) -> list[LogGroup]:
    if not keys:
        return []
    query = Q()
    for kind, ident in keys:
        if ident.startswith("x:"):
            query |= Q(object_kind=kind, bitrix24_id="", xero_id=ident[2:])
        else:
            query |= Q(object_kind=kind, bitrix24_id=ident)
    by_key: dict[tuple[str, str], list[SyncLogEntry]] = {key: [] for key in keys}
    for entry in entries.filter(query).order_by("-created_at", "-id"):
        bucket = by_key.get(_key(entry))
        if bucket is not None and len(bucket) <= EARLIER_SHOWN:
            bucket.append(entry)
    latest = [bucket[0] for bucket in by_key.values() if bucket]
    jobs = latest_jobs(portal, latest)
    out = []
    for key in keys:
        bucket = by_key[key]
        if not bucket:
            continue
        head = bucket[0]
        failed = 0
        for entry in bucket:
            if entry.outcome not in TROUBLE:
                break
            failed += 1
        target = job_target_of(head)
        job = jobs.get(target) if target else None
        retryable = (
            head.outcome in (Outcome.FAILED, Outcome.RETRYING, Outcome.REFUSED, Outcome.HELD)
            and job is not None
            and job.status in (SyncJob.Status.FAILED, SyncJob.Status.PENDING)
        )
        out.append(
            LogGroup(
                entry=head,
                earlier=bucket[1:],
                entries=len(bucket),
                failed_attempts=failed,
                job_id=job.pk if retryable else None,
                job_status=job.status if job else "",
            )
        )
    return out
