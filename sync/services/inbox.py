"""The inbox: verified events from both systems, stored before anything else happens (style B.2).

Recording runs inside the webhook request: insert unless (source, dedupe_key) is already there
(the unique constraint settles races), so a redelivery is a no-op, and send the processing task
after commit. Processing runs in a worker: claim the row, turn it into a SyncJob (the outbox), mark
it done, all in one transaction. Events are hints: the engines re-read the invoice, so the row keeps only identifiers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from connector import logcontext, metrics
from integrations.bitrix24.api.app import CLASSIC_INVOICE_EVENTS, SMART_INVOICE_EVENTS
from integrations.bitrix24.entity_types import OLD_INVOICE as CLASSIC_INVOICE_TYPE_ID
from integrations.bitrix24.entity_types import SMART_INVOICE as SMART_INVOICE_TYPE_ID
from integrations.bitrix24.errors import MalformedPayloadError as Bitrix24MalformedPayloadError
from integrations.bitrix24.inbound import Bitrix24Event
from integrations.xero.webhooks import XeroWebhookEvent, xero_webhook_from_json
from sync.models import InboxEvent, Source, SyncJob, Trigger
from sync.services.gate import jobs_enqueue_for_event, sync_gate
from sync.services.jobs import task_send, task_send_coalesced
from sync.services.pull.echo import xero_event_is_echo

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


# --- recording (inside the webhook request) ------------------------------------------------------


def _insert(
    *,
    portal_id: int | None,
    source: str,
    dedupe_key: str,
    event_type: str,
    payload: dict[str, Any],
    headers: dict[str, Any] | None = None,
    status: str = InboxEvent.Status.RECEIVED,
    error: str = "",
) -> tuple[InboxEvent, bool]:
    """The row and whether it is new. Sends the processing task after commit for new received rows.

    Portable insert-or-get (PostgreSQL and SQLite): a redelivery finds its row; two deliveries
    racing both insert, the unique (source, dedupe_key) constraint fails the second one's
    savepoint, and it reads the first one's row."""
    dedupe_key = dedupe_key[:255]
    existing = InboxEvent.objects.filter(source=source, dedupe_key=dedupe_key).first()
    if existing is not None:
        metrics.count(metrics.INBOX_EVENTS, source, "duplicate")
        return existing, False
    try:
        with transaction.atomic():
            row = InboxEvent.objects.create(
                portal_id=portal_id,
                source=source,
                dedupe_key=dedupe_key,
                event_type=event_type[:100],
                # Stored as JSON text exactly as before: non-JSON values (dates) become strings.
                payload=_plain(payload),
                headers=_plain(headers or {}),
                status=status,
                attempts=0,
                received_at=timezone.now(),
                error=error,
            )
            if status == InboxEvent.Status.RECEIVED:
                event_id = row.pk
                transaction.on_commit(lambda: _dispatch(portal_id, event_id), robust=True)
    except IntegrityError:
        metrics.count(metrics.INBOX_EVENTS, source, "duplicate")
        return InboxEvent.objects.get(source=source, dedupe_key=dedupe_key), False
    metrics.count(metrics.INBOX_EVENTS, source, "new" if status == InboxEvent.Status.RECEIVED else "ignored")
    return row, True


def _dispatch(portal_id: int | None, event_id: int) -> None:
    """Processing of a new row: one task per portal takes every row waiting (coalesced, so a burst
    of events costs a few broker messages, not one each); a row without a portal on its own."""
    if portal_id is None:
        task_send(INBOX_TASK, [event_id])
    else:
        task_send_coalesced(f"sync:inbox:{portal_id}", INBOX_PORTAL_TASK, [portal_id])


def _plain(value: Any) -> Any:
    return json.loads(_json(value))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def inbox_record_bitrix24_event(*, portal: Portal, event: Bitrix24Event) -> InboxEvent | None:
    """The EVENT_HANDLERS entry for invoice events; None for events about other entity types
    (ONCRMDYNAMICITEM* fire for every smart process: only type 31 is an invoice)."""
    name = event.event.upper()
    if name not in BITRIX24_INVOICE_EVENTS:
        logger.info("Bitrix24 event %s is not an invoice event; ignored", name)
        return None
    if name in SMART_INVOICE_EVENTS:
        entity_type = event.entity_type_id
        if entity_type != SMART_INVOICE_TYPE_ID:
            logger.info("Bitrix24 %s for entity type %s (not an invoice) ignored", name, entity_type)
            return None
    else:
        entity_type = CLASSIC_INVOICE_TYPE_ID
    entity_id = event.entity_id
    if entity_id is None:
        raise Bitrix24MalformedPayloadError(f"event {name}: data[FIELDS][ID] is missing or not an id")
    # Bitrix24 has no event id: the name, the object, the send time and the binding name one delivery.
    dedupe_key = f"b24:{portal.pk}:{name}:{entity_type}:{entity_id}:{event.ts or ''}:{event.handler_id or ''}"
    payload = {
        "event": name,
        "entity_type_id": entity_type,
        "id": entity_id,
        "ts": event.ts,
        "handler_id": event.handler_id,
        "user_id": event.auth.user_id,  # who changed it; no tokens are ever stored here
        "data": event.data,
    }
    row, created = _insert(
        portal_id=portal.pk, source=Source.BITRIX24, dedupe_key=dedupe_key, event_type=name, payload=payload
    )
    if not created and row.status == InboxEvent.Status.DONE and name not in DELETE_EVENTS:
        # Same key, but the first delivery's job may already have read the invoice: a second edit
        # within the same second (`ts` has whole seconds) looks exactly like a redelivery. Never
        # drop it: queue the invoice again (merged into a pending job if there is one; the push
        # engine skips content that did not change, so a true redelivery costs a read).
        _process_bitrix24(row)
    return row


def _xero_row(event: XeroWebhookEvent, portals: dict[str, int | None], raw_sha: str) -> dict[str, Any]:
    tenant = event.tenant_id.lower()
    row: dict[str, Any] = {
        "portal_id": portals.get(tenant),
        "source": Source.XERO,
        "dedupe_key": f"xero:{event.dedupe_key}",
        "event_type": f"{event.event_category}.{event.event_type}",
        "payload": event.raw,
        "headers": {"body_sha256": raw_sha},
    }
    if (event.event_category, event.event_type) not in XERO_HANDLED:
        row |= {"status": InboxEvent.Status.IGNORED, "error": f"{row['event_type']} events are not used"}
    elif row["portal_id"] is None:
        row |= {"status": InboxEvent.Status.IGNORED, "error": f"no portal is connected to Xero tenant {tenant}"}
    return row


def inbox_record_xero_events(*, payload: dict[str, Any], raw_body: bytes) -> list[InboxEvent]:
    """One row per event of a verified Xero webhook; raises MalformedPayloadError on a bad shape.
    Unknown tenants and categories are kept as `ignored` rows with the reason, for the operator."""
    parsed = xero_webhook_from_json(payload)
    if parsed.is_intent_to_receive:
        return []
    tenants = {event.tenant_id.lower() for event in parsed.events}
    portals: dict[str, int | None] = {}
    for tenant_id, portal_id in XeroConnection.objects.filter(tenant_id__in=tenants).values_list(
        "tenant_id", "portal_id"
    ):
        portals.setdefault(tenant_id.lower(), portal_id)
    raw_sha = hashlib.sha256(raw_body).hexdigest()
    rows = []
    with transaction.atomic():
        for event in parsed.events:
            row, _ = _insert(**_xero_row(event, portals, raw_sha))
            rows.append(row)
    return rows


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


def _process_bitrix24(event: InboxEvent) -> tuple[str, str]:
    payload = event.payload
    name, entity_type, entity_id = payload["event"], payload["entity_type_id"], payload["id"]
    if name in DELETE_EVENTS:
        # Deleting a Bitrix24 invoice never deletes or voids the Xero one: accounting keeps it.
        logger.info("Bitrix24 invoice %s:%s deleted on %s; Xero is left as it is", entity_type, entity_id, event.portal)
        return InboxEvent.Status.DONE, "deleted in Bitrix24; Xero left unchanged"
    # A dead grant on either side only pauses the work (the job waits until the user reconnects);
    # before Setup the job is held until an admin saves it. Only an uninstalled portal, or one
    # whose admin disconnected Xero or never connected it, drops events (sync.services.gate).
    gate = sync_gate(event.portal) if event.portal else None
    if gate is None or not gate.keeps_events:
        return InboxEvent.Status.IGNORED, gate.reason if gate else "no portal"
    jobs_enqueue_for_event(
        portal=event.portal,
        gate=gate,
        kind=SyncJob.Kind.PUSH_INVOICE,
        target=f"{entity_type}:{entity_id}",
        trigger=Trigger.EVENT,
    )
    return InboxEvent.Status.DONE, "held until Setup is saved" if gate.holds_events else ""


def _process_xero(event: InboxEvent) -> tuple[str, str]:
    payload = event.payload
    category = str(payload.get("eventCategory", "")).upper()
    if category != "INVOICE":
        logger.info("Xero %s event for %s not used yet; ignored", category, payload.get("resourceId"))
        return InboxEvent.Status.IGNORED, f"{category} events are not used"
    # Several portals may have connected the same organisation: each gets its own job.
    portals = Portal.objects.filter(
        xero_connection__tenant_id__iexact=payload.get("tenantId", ""), status=Portal.Status.ACTIVE
    )
    enqueued = echoes = 0
    for portal in portals:
        gate = sync_gate(portal)
        if not gate.jobs_may_run:
            continue
        if xero_event_is_echo(
            portal=portal, invoice_id=str(payload["resourceId"]), event_date_utc=str(payload.get("eventDateUtc", ""))
        ):
            echoes += 1  # our own write's event, or an older one: the link already holds that state
            continue
        jobs_enqueue_for_event(
            portal=portal,
            gate=gate,
            kind=SyncJob.Kind.PULL_STATUS,
            target=str(payload["resourceId"]),
            trigger=Trigger.WEBHOOK,
        )
        enqueued += 1
    if echoes and not enqueued:
        return InboxEvent.Status.DONE, "echo: the invoice's state is already known (not read again)"
    if not enqueued:
        return InboxEvent.Status.IGNORED, "no active portal is connected to this Xero organisation"
    return InboxEvent.Status.DONE, ""


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
        raise
    return status


def inbox_process_portal(portal_id: int) -> dict[str, int]:
    """Every row of the portal waiting in `received`, oldest first, each as inbox_event_process
    does it (claimed one by one, so a concurrent run or the sweeper never processes a row twice).
    Hands what is left after INBOX_PORTAL_BUDGET_S to a fresh task, so a flood on one portal holds
    a worker only that long. A row whose processing fails stays with its own retry path (the
    sweeper); the others go on."""
    started = time.monotonic()
    counts: dict[str, int] = {}
    last_id = 0
    while time.monotonic() - started < INBOX_PORTAL_BUDGET_S:
        ids = list(
            InboxEvent.objects.filter(portal_id=portal_id, status=InboxEvent.Status.RECEIVED, pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:INBOX_PORTAL_BATCH]
        )
        if not ids:
            return counts
        for event_id in ids:
            last_id = event_id
            try:
                outcome = inbox_event_process(event_id)
            except Exception as exc:  # the row went back to `received` (or failed for good); go on
                logger.warning("inbox row %s: %s: %s", event_id, type(exc).__name__, exc)
                outcome = "error"
            counts[outcome] = counts.get(outcome, 0) + 1
            if time.monotonic() - started >= INBOX_PORTAL_BUDGET_S:
                break
    task_send(INBOX_PORTAL_TASK, [portal_id])
    return counts


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
