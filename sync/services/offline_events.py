"""Bitrix24 offline events: the per-portal queue of changed invoices, drained by reservation.

Online events are never retried by Bitrix24 (docs/bitrix24-api.md §5.3); where the plan has
`rest_offline_extended` the install also binds the invoice events as offline events (§5.4), and
Bitrix24 keeps the latest record per changed object until the app clears it. The drain is
at-least-once:

1. `event.offline.get {clear: 0, limit: 50}` reserves a batch under a `process_id`, which is stored
   on the Portal before anything else happens;
2. one PUSH_INVOICE job per invoice is enqueued and committed (a pending job of the same invoice
   absorbs it, so a record seen twice still makes one job);
3. only then `event.offline.clear {process_id, message_id[]}` acknowledges the records, and records
   that name no invoice are handed to `event.offline.error`; the stored process_id is forgotten.

A drain that died between 1 and 3 left its batch reserved — hidden from any other get for up to
30 days — so the next drain first re-reads that batch by the stored process_id.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api
from integrations.bitrix24.api.app import offline_invoice_change
from integrations.bitrix24.entity_types import SMART_INVOICE as SMART_INVOICE_TYPE_ID
from integrations.common.locks import LockTimeout, redis_lock
from sync.models import SyncJob, Trigger
from sync.services.gate import jobs_enqueue_for_event, sync_gate

logger = logging.getLogger(__name__)

OFFLINE_BATCH = 50
OFFLINE_MAX_ROUNDS = 20  # 1,000 records per drain; the rest waits for the next beat (~60 s)
OFFLINE_LOCK_TTL_S = 300


def offline_events_drain(*, portal: Portal, max_rounds: int = OFFLINE_MAX_ROUNDS) -> int:
    """Turn the portal's offline invoice events into push jobs; the number of records that made (or
    joined) a job. Nothing happens for a portal without offline events, or while another drain of
    the same portal runs. Raises ExternalAPIError when Bitrix24 fails: what was reserved and not
    cleared is re-read by the next drain."""
    if not portal.offline_events:
        return 0
    try:
        with redis_lock(f"lock:offline-events:{portal.pk}", ttl_s=OFFLINE_LOCK_TTL_S, wait_s=0):
            return _drain(portal, Bitrix24Api.for_portal(portal), max_rounds)
    except LockTimeout:
        logger.info("offline events of %s are being drained by another worker", portal.domain)
        return 0


def offline_events_reserve(*, portal: Portal, client: Bitrix24Api | None = None) -> dict[str, Any]:
    """Step 1 alone: the next batch, reserved. The unfinished batch of a drain that died, when there
    is one; else a new one from the queue, whose process_id is stored before it is returned.
    {"process_id", "events"}; events is empty when the queue has nothing."""
    client = client or Bitrix24Api.for_portal(portal)
    pending = Portal.objects.filter(pk=portal.pk).values_list("offline_process_id", flat=True).first() or ""
    if pending:
        batch = client.offline_events_get(limit=OFFLINE_BATCH, process_id=pending)
        if batch.events:
            logger.info("re-reading %d offline events of %s left by a drain", len(batch.events), portal.domain)
            return {"process_id": pending, "events": list(batch.events)}
        _forget(portal, pending)  # cleared or expired meanwhile
    batch = client.offline_events_get(limit=OFFLINE_BATCH)
    if batch.events:
        if not batch.process_id:
            raise ValueError("event.offline.get reserved a batch without a process_id")
        Portal.objects.filter(pk=portal.pk).update(offline_process_id=batch.process_id)
    return {"process_id": batch.process_id, "events": list(batch.events)}


def _drain(portal: Portal, client: Bitrix24Api, max_rounds: int) -> int:
    handled = 0
    for _ in range(max_rounds):
        batch = offline_events_reserve(portal=portal, client=client)
        if not batch["events"]:
            break
        handled += _handle(portal, client, batch["process_id"], batch["events"])
    return handled


def _handle(portal: Portal, client: Bitrix24Api, process_id: str, events: list[Any]) -> int:
    invoices: set[int] = set()
    done: list[str] = []  # message ids to clear: a job was made, or the record is not ours to act on
    failed: list[str] = []  # message ids Bitrix24 should keep as errors
    for record in events:
        change = offline_invoice_change(record)
        message_id, invoice_id, problem = change.message_id, change.invoice_id, change.problem
        if problem:
            logger.warning("offline event of %s not handled: %s (%r)", portal.domain, problem, record)
            if message_id:
                failed.append(message_id)
            continue
        if invoice_id is not None:
            invoices.add(invoice_id)
        done.append(message_id)
    gate = sync_gate(portal)
    why_not = "" if gate.keeps_events else gate.reason
    if why_not:
        logger.info("offline events of %s dropped: %s", portal.domain, why_not)
        invoices.clear()
    with transaction.atomic():
        for invoice_id in sorted(invoices):
            jobs_enqueue_for_event(
                portal=portal,
                gate=gate,
                kind=SyncJob.Kind.PUSH_INVOICE,
                target=f"{SMART_INVOICE_TYPE_ID}:{invoice_id}",
                trigger=Trigger.EVENT,
            )
    # The jobs are committed: only now may Bitrix24 forget the records (at-least-once).
    if failed:
        client.offline_events_error(process_id, failed)
    if done:
        client.offline_events_clear(process_id, done)
    _forget(portal, process_id)
    return 0 if why_not else len(done)


def _forget(portal: Portal, process_id: str) -> None:
    Portal.objects.filter(pk=portal.pk, offline_process_id=process_id).update(offline_process_id="")
