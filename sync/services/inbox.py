"""The inbox: verified events from both systems, stored before anything else happens (style B.2).

Recording runs inside the webhook request (sync.services.inbox_record): insert unless
(source, dedupe_key) is already there (the unique constraint settles races), so a redelivery is a
no-op, and send the processing task after commit. Processing runs in a worker (here): turn the rows
into SyncJobs (the outbox) and mark them done, in one transaction. Events are hints: the engines
re-read the invoice, so the row keeps only identifiers.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Portal
from connector import logcontext
from integrations.bitrix24.api.app import CLASSIC_INVOICE_EVENTS, SMART_INVOICE_EVENTS
from sync.models import Direction, InboxEvent, InvoiceLink, Source, SyncJob, SyncLogEntry, Trigger
from sync.services.gate import SyncGate, jobs_enqueue_for_events, sync_gate
from sync.services.jobs import task_send
from sync.services.log import sync_log_write, sync_log_write_many
from sync.services.pull.echo import xero_event_echo_entry

logger = logging.getLogger(__name__)

INBOX_TASK = "sync.tasks.inbox.inbox_process_task"
INBOX_PORTAL_TASK = "sync.tasks.inbox.inbox_process_portal_task"
# One portal task works through its waiting rows this long at most, then hands the rest on.
INBOX_PORTAL_BUDGET_S = 20.0
INBOX_PORTAL_BATCH = 200
INBOX_LEASE_S = 60
INBOX_MAX_ATTEMPTS = 5

BITRIX24_INVOICE_EVENTS = SMART_INVOICE_EVENTS + CLASSIC_INVOICE_EVENTS
DELETE_EVENTS = ("ONCRMDYNAMICITEMDELETE", "ONCRMINVOICEDELETE")

XERO_HANDLED = {("INVOICE", "CREATE"), ("INVOICE", "UPDATE"), ("CONTACT", "CREATE"), ("CONTACT", "UPDATE")}


# --- processing (in a worker) --------------------------------------------------------------------


def _claim(event_id: int) -> InboxEvent | None:
    """One conditional UPDATE: only a `received` row, or a `processing` one whose lease expired,
    becomes ours; a concurrent claim of the same row updates nothing."""
    now = timezone.now()
    claimed = (
        InboxEvent.objects.filter(pk=event_id)
        .filter(Q(status=InboxEvent.Status.RECEIVED) | Q(status=InboxEvent.Status.PROCESSING, lease_until__lt=now))
        .update(
            status=InboxEvent.Status.PROCESSING,
            lease_until=now + timedelta(seconds=INBOX_LEASE_S),
            attempts=F("attempts") + 1,
        )
    )
    return InboxEvent.objects.select_related("portal").get(pk=event_id) if claimed else None


def _finish(event: InboxEvent, status: str, error: str = "") -> None:
    InboxEvent.objects.filter(pk=event.pk, status=InboxEvent.Status.PROCESSING).update(
        status=status, error=error[:4000], lease_until=None, processed_at=timezone.now()
    )


@dataclass(frozen=True)
class _Job:
    """A job an inbox row asks for (several rows about one invoice ask for the same one)."""

    portal: Portal
    gate: SyncGate
    kind: str
    target: str
    trigger: str

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.portal.pk, self.kind, self.target)


Decision = tuple[str, str, list[_Job]]  # the row's final status, its note, the jobs it asks for


def _bitrix24_decision(payload: dict[str, Any], portal: Portal | None, gate: SyncGate | None) -> Decision:
    name, entity_type, entity_id = payload["event"], payload["entity_type_id"], payload["id"]
    if name in DELETE_EVENTS:
        # Deleting a Bitrix24 invoice never deletes or voids the Xero one: accounting keeps it.
        logger.info("Bitrix24 invoice %s:%s deleted on %s; Xero is left as it is", entity_type, entity_id, portal)
        return InboxEvent.Status.DONE, "deleted in Bitrix24; Xero left unchanged", []
    # A dead grant on either side only pauses the work (the job waits until the user reconnects);
    # before Setup the job is held until an admin saves it. Only an uninstalled portal, or one
    # whose admin disconnected Xero or never connected it, drops events (sync.services.gate).
    if portal is None or gate is None or not gate.keeps_events:
        return InboxEvent.Status.IGNORED, gate.reason if gate else "no portal", []
    job = _Job(portal, gate, SyncJob.Kind.PUSH_INVOICE, f"{entity_type}:{entity_id}", Trigger.EVENT)
    return InboxEvent.Status.DONE, "held until Setup is saved" if gate.holds_events else "", [job]


Links = Callable[[Portal], Mapping[uuid.UUID, InvoiceLink | None] | None]


def _xero_decision(
    payload: dict[str, Any],
    portals_of: Callable[[str], list[tuple[Portal, SyncGate]]],
    echoes: list[SyncLogEntry],
    links_of: Links = lambda _: None,
) -> Decision:
    """`echoes` collects the sync-log entry of each echo, for the caller to store with its batch's."""
    category = str(payload.get("eventCategory", "")).upper()
    if category != "INVOICE":
        logger.info("Xero %s event for %s not used yet; ignored", category, payload.get("resourceId"))
        return InboxEvent.Status.IGNORED, f"{category} events are not used", []
    # Several portals may have connected the same organisation: each gets its own job.
    invoice_id, occurred = str(payload["resourceId"]), str(payload.get("eventDateUtc", ""))
    jobs, echoed = [], 0
    for portal, gate in portals_of(str(payload.get("tenantId", ""))):
        if not gate.jobs_may_run:
            continue
        echo = xero_event_echo_entry(
            portal=portal, invoice_id=invoice_id, event_date_utc=occurred, links=links_of(portal)
        )
        if echo is not None:  # our own write's event, or an older one: the link already holds that state
            echoes.append(echo)
            echoed += 1
            continue
        jobs.append(_Job(portal, gate, SyncJob.Kind.PULL_STATUS, invoice_id, Trigger.WEBHOOK))
    if echoed and not jobs:
        return InboxEvent.Status.DONE, "echo: the invoice's state is already known (not read again)", []
    if not jobs:
        return InboxEvent.Status.IGNORED, "no active portal is connected to this Xero organisation", []
    return InboxEvent.Status.DONE, "", jobs


def _tenant_portals(tenant_id: str, known: Mapping[int, SyncGate] | None = None) -> list[tuple[Portal, SyncGate]]:
    """The tenant's active portals with their gates; `known`: gates read already, by portal id (a
    batch's own portal is nearly always the tenant's: its gate is not read twice)."""
    portals = Portal.objects.filter(xero_connection__tenant_id__iexact=tenant_id, status=Portal.Status.ACTIVE)
    known = known or {}
    return [(portal, known.get(portal.pk) or sync_gate(portal)) for portal in portals]


def _enqueue(jobs: Iterable[_Job]) -> None:
    """Each (portal, kind)'s jobs enqueued together: a few statements for a batch, not per job."""
    groups: dict[tuple[int, str], list[_Job]] = {}
    for job in jobs:
        groups.setdefault((job.portal.pk, job.kind), []).append(job)
    for group in groups.values():
        targets = {job.target: job.trigger for job in group}
        jobs_enqueue_for_events(portal=group[0].portal, gate=group[0].gate, kind=group[0].kind, targets=targets)


def _process_bitrix24(event: InboxEvent) -> tuple[str, str]:
    gate = sync_gate(event.portal) if event.portal else None
    status, note, jobs = _bitrix24_decision(event.payload, event.portal, gate)
    _enqueue(jobs)
    return status, note


def _process_xero(event: InboxEvent) -> tuple[str, str]:
    echoes: list[SyncLogEntry] = []
    status, note, jobs = _xero_decision(event.payload, _tenant_portals, echoes)
    sync_log_write_many(echoes)
    _enqueue(jobs)
    return status, note


def inbox_bitrix24_redelivered(event: InboxEvent) -> None:
    """A Bitrix24 delivery whose row is already done came again: queue its invoice once more (the
    recording side's call; see sync.services.inbox_record)."""
    _process_bitrix24(event)


def inbox_event_process(event_id: int) -> str:
    """Turn one inbox row into its job. Safe to run twice: only a `received` row (or one whose
    lease expired) is claimed; the job and the `done` mark are written in one transaction.
    Returns the row's final status, or "skipped" when another run owns or finished it."""
    event = _claim(event_id)
    if event is None:
        return "skipped"
    if event.portal_id:
        logcontext.set_values(portal=event.portal_id)  # cleared when the task ends
    if event.source == Source.BITRIX24 and isinstance(event.payload, dict) and event.payload.get("id"):
        logcontext.set_values(invoice=event.payload["id"])
    try:
        with transaction.atomic():
            process = _process_bitrix24 if event.source == Source.BITRIX24 else _process_xero
            status, note = process(event)
            _finish(event, status, note)
    except Exception as exc:
        # Give it back (or give up) so the sweeper or the task's retry can try again.
        final = event.attempts >= INBOX_MAX_ATTEMPTS
        InboxEvent.objects.filter(pk=event.pk, status=InboxEvent.Status.PROCESSING).update(
            status=InboxEvent.Status.FAILED if final else InboxEvent.Status.RECEIVED,
            error=f"{type(exc).__name__}: {exc}"[:4000],
            lease_until=None,
        )
        if final:
            _failure_log(event, exc)
        raise
    return status


def _failure_log(event: InboxEvent, exc: Exception) -> None:
    """A row given up for good: say so on the invoice it names (the Sync log and the invoice's page),
    since the inbox row alone is seen by no one who can act. The inbox row has no job for the log's
    Retry, so the entry says which button sends the invoice again."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    if event.portal is None:
        return  # no portal to show it to (Xero rows of unknown tenants end `ignored`, not here)
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    attempts = f"after {event.attempts} attempts ({reason})"
    if event.source == Source.BITRIX24:
        fields: dict[str, Any] = {
            "direction": Direction.PUSH,
            "trigger": Trigger.EVENT,
            "bitrix24_id": str(payload.get("id") or ""),
        }
        message = (
            f"Bitrix24's change event for this invoice could not be processed {attempts}; the change was not sent"
            " to Xero. Press “Create / Edit on Xero” on the invoice to send it."
        )
        details = {"entity_type": payload.get("entity_type_id"), "event": payload.get("event")}
    else:
        resource = str(payload.get("resourceId") or "")
        try:
            xero_id = str(uuid.UUID(resource))
        except ValueError:
            xero_id = ""  # not an invoice id Xero would send; kept (cut short) in details only
        link = InvoiceLink.objects.filter(portal=event.portal, xero_invoice_id=xero_id).first() if xero_id else None
        fields = {
            "direction": Direction.PULL,
            "trigger": Trigger.WEBHOOK,
            "xero_id": xero_id,
            "bitrix24_id": link.bitrix24_id if link else "",
            "invoice_number": link.xero_invoice_number if link else "",
        }
        message = (
            f"Xero's change event for this invoice could not be processed {attempts}; the change was not read"
            " from Xero. Press “Update from Xero” on the invoice to read it."
        )
        details = {"resource_id": resource[:100], "event": f"{payload.get('eventCategory')}.{payload.get('eventType')}"}
    try:
        sync_log_write(
            portal=event.portal,
            outcome=SyncLogEntry.Outcome.FAILED,
            message=message,
            details={**details, "inbox_event": event.pk},
            **fields,
        )
    except Exception:  # the row's own failure is the one to raise; this one is only logged
        logger.exception("inbox row %s failed for good; its sync log entry could not be written", event.pk)


def inbox_process_portal(portal_id: int) -> dict[str, int]:
    """Every row of the portal waiting in `received`, oldest first, INBOX_PORTAL_BATCH at a time:
    each batch is turned into its jobs in one transaction (_process_batch), so a burst of events
    about a few invoices costs a few enqueues, not one per event. A batch that fails is done again
    row by row (inbox_event_process), so one bad row keeps its own retry path (the sweeper) and the
    others go on. Hands what is left after INBOX_PORTAL_BUDGET_S to a fresh task, so a flood on one
    portal holds a worker only that long. Returns how many rows ended in each status."""
    started = time.monotonic()
    counts: dict[str, int] = {}
    last_id = 0
    logcontext.set_values(portal=portal_id)  # cleared when the task ends
    while time.monotonic() - started < INBOX_PORTAL_BUDGET_S:
        try:
            batch = _process_batch(portal_id, after=last_id)
        except Exception as exc:
            logger.warning("inbox batch of portal %s: %s: %s; row by row", portal_id, type(exc).__name__, exc)
            batch = _process_one_by_one(portal_id, after=last_id)
        if not batch:
            return counts
        last_id = max(batch)
        for outcome in batch.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        if len(batch) < INBOX_PORTAL_BATCH:
            # No more waiting (an empty batch would only say so). A row stored since was followed
            # by a send of this task after its commit (coalesced, never skipped), so it is not left.
            return counts
    task_send(INBOX_PORTAL_TASK, [portal_id])
    return counts


def _waiting(portal_id: int, after: int):
    return InboxEvent.objects.filter(portal_id=portal_id, status=InboxEvent.Status.RECEIVED, pk__gt=after).order_by(
        "pk"
    )


def _process_batch(portal_id: int, *, after: int) -> dict[int, str]:
    """The next INBOX_PORTAL_BATCH waiting rows of the portal, decided and marked in one
    transaction, each distinct job enqueued once: {row id: final status}. Rows another run holds
    are passed over (FOR UPDATE SKIP LOCKED; on SQLite transactions are serialised anyway), so no
    row is processed twice. Raises what failed; then nothing of the batch was written."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            _waiting(portal_id, after)
            .select_for_update(skip_locked=True)
            .values_list("pk", "source", "payload")[:INBOX_PORTAL_BATCH]
        )
        if not rows:
            return {}
        portal = Portal.objects.filter(pk=portal_id).first()
        gate = sync_gate(portal) if portal else None
        known = {portal.pk: gate} if portal and gate else {}
        tenants = functools.cache(functools.partial(_tenant_portals, known=known))  # gates read once a batch
        links = _links_reader([payload for _, source, payload in rows if source == Source.XERO])
        outcomes: dict[tuple[str, str], list[int]] = {}
        jobs: dict[tuple[int, str, str], _Job] = {}
        echoes: list[SyncLogEntry] = []
        for pk, source, payload in rows:
            if source == Source.BITRIX24:
                status, note, wanted = _bitrix24_decision(payload, portal, gate)
            else:
                status, note, wanted = _xero_decision(payload, tenants, echoes, links)
            for job in wanted:
                jobs.setdefault(job.key, job)
            outcomes.setdefault((str(status), note), []).append(pk)
        sync_log_write_many(echoes)  # one INSERT for the batch's echoes (half the rows under a burst)
        _enqueue(jobs.values())
        for (status, note), pks in outcomes.items():
            InboxEvent.objects.filter(pk__in=pks).update(
                status=status, error=note[:4000], attempts=F("attempts") + 1, lease_until=None, processed_at=now
            )
    return {pk: status for (status, _), pks in outcomes.items() for pk in pks}


def _links_reader(payloads: list[dict[str, Any]]) -> Links:
    """The links of a batch's Xero invoices, read once per portal (the echo check asks for each
    event's; profiled, those reads were most of a batch's time)."""
    keys = set()
    for payload in payloads:
        try:
            keys.add(uuid.UUID(str(payload.get("resourceId"))))
        except ValueError:
            continue

    @functools.cache
    def links_of(portal: Portal) -> dict[uuid.UUID, InvoiceLink | None]:
        found: dict[uuid.UUID, InvoiceLink | None] = dict.fromkeys(keys)
        read: set[uuid.UUID] = set()
        for link in InvoiceLink.objects.filter(portal=portal, xero_invoice_id__in=keys):
            if link.xero_invoice_id not in read:  # the first, as .first() would have it
                found[link.xero_invoice_id] = link
                read.add(link.xero_invoice_id)
        return found

    return links_of


def _process_one_by_one(portal_id: int, *, after: int) -> dict[int, str]:
    """The next batch's rows each in its own transaction (after a batch failed)."""
    done: dict[int, str] = {}
    for event_id in _waiting(portal_id, after).values_list("pk", flat=True)[:INBOX_PORTAL_BATCH]:
        try:
            done[event_id] = inbox_event_process(event_id)
        except Exception as exc:  # the row went back to `received` (or failed for good); go on
            logger.warning("inbox row %s: %s: %s", event_id, type(exc).__name__, exc)
            done[event_id] = "error"
    return done


# --- safety net (called by sync.tasks.sweeps) -----------------------------------------------------

# Processing normally starts within milliseconds; a row still `received` after this lost its send.
INBOX_STUCK_AFTER_S = 30


def inbox_requeue_stuck(*, now=None, limit: int = 500) -> int:
    """Re-send the processing task for rows left `received` (lost send, broker outage) or
    `processing` past their lease (the worker died). Claiming makes a duplicate send harmless."""
    now = now or timezone.now()
    stuck = InboxEvent.objects.filter(
        Q(status=InboxEvent.Status.RECEIVED, received_at__lt=now - timedelta(seconds=INBOX_STUCK_AFTER_S))
        | Q(status=InboxEvent.Status.PROCESSING, lease_until__lt=now)
    ).order_by("received_at")
    sent = 0
    for event_id in stuck.values_list("id", flat=True)[:limit]:
        sent += task_send(INBOX_TASK, [event_id])
    return sent
