"""Recording events in the inbox, inside the webhook request (sync.services.inbox processes them).

Insert unless (source, dedupe_key) is already there, in one statement: the unique constraint
settles a redelivery and two deliveries racing alike, so a redelivery is a no-op. Then, after
commit, ask for the portal's inbox to be processed (coalesced: a burst costs a few messages).

Every Bitrix24 event and Xero webhook passes here, hundreds a second in a burst, so the statements
are plain SQL written once rather than built by the ORM per request (see _insert_sql).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Portal
from accounts.services.event_senders import xero_tenant_portals
from connector import metrics
from integrations.bitrix24.api.app import SMART_INVOICE_EVENTS
from integrations.bitrix24.entity_types import OLD_INVOICE as CLASSIC_INVOICE_TYPE_ID
from integrations.bitrix24.entity_types import SMART_INVOICE as SMART_INVOICE_TYPE_ID
from integrations.bitrix24.errors import MalformedPayloadError as Bitrix24MalformedPayloadError
from integrations.bitrix24.inbound import Bitrix24Event
from integrations.xero.webhooks import XeroWebhookEvent, XeroWebhookPayload
from sync.models import InboxEvent, Source
from sync.services.inbox import (
    BITRIX24_INVOICE_EVENTS,
    DELETE_EVENTS,
    INBOX_PORTAL_TASK,
    INBOX_TASK,
    XERO_HANDLED,
    inbox_bitrix24_redelivered,
)
from sync.services.jobs import task_send, task_send_coalesced

logger = logging.getLogger(__name__)

# The columns a recorded row is written with; the others keep their defaults (NULL).
_INSERT_FIELDS = (
    "portal",
    "source",
    "dedupe_key",
    "event_type",
    "payload",
    "headers",
    "status",
    "attempts",
    "received_at",
    "error",
)


class _PlainJSON(json.JSONEncoder):
    """Stored as JSON text exactly as before: non-JSON values (dates) become strings."""

    def default(self, o: Any) -> str:
        return str(o)


@functools.cache
def _insert_sql(vendor: str, table: str, count: int) -> str:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING for `count` rows (PostgreSQL and SQLite >= 3.35
    both speak it). Written once per row count rather than compiled by the ORM per request: the
    ORM's query compilation was the largest single cost of a webhook request (profiled)."""
    fields = [InboxEvent._meta.get_field(name) for name in _INSERT_FIELDS]
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {quote(table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * count)} "
        f"ON CONFLICT ({quote('source')}, {quote('dedupe_key')}) DO NOTHING "
        f"RETURNING {quote('id')}, {quote('source')}, {quote('dedupe_key')}"
    )


def _insert(rows: list[dict[str, Any]]) -> list[tuple[int | None, dict[str, Any]]]:
    """Store each row unless its (source, dedupe_key) is already there; (id, row) for each
    distinct row, id None for a redelivery. Sends the processing task after commit for new received rows.

    One statement, one round trip: the unique (source, dedupe_key) constraint settles both a
    redelivery and two deliveries racing (the second one's row is skipped, not an error), so no
    SELECT first and no savepoint. A single statement is atomic, so a Xero body's events are
    stored all or none."""
    now = timezone.now()
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        row = {**row, "dedupe_key": row["dedupe_key"][:255], "event_type": row["event_type"][:100]}
        by_key.setdefault((row["source"], row["dedupe_key"]), row)  # the same event twice in one body
    unique = list(by_key.values())
    params: list[Any] = []
    adapt_json = connection.ops.adapt_json_value
    adapt_time = connection.ops.adapt_datetimefield_value
    for row in unique:
        params += [
            row["portal_id"],
            row["source"],
            row["dedupe_key"],
            row["event_type"],
            adapt_json(row["payload"], _PlainJSON),
            adapt_json(row.get("headers") or {}, _PlainJSON),
            row.get("status", InboxEvent.Status.RECEIVED),
            0,
            adapt_time(now),
            row.get("error", ""),
        ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor, InboxEvent._meta.db_table, len(unique)), params)
        created = {(source, key): pk for pk, source, key in cursor.fetchall()}
    results: list[tuple[int | None, dict[str, Any]]] = []
    portals: set[int] = set()
    lone: list[int] = []
    for row in unique:
        pk = created.get((row["source"], row["dedupe_key"]))
        status = row.get("status", InboxEvent.Status.RECEIVED)
        if pk is None:
            outcome = "duplicate"
        elif status != InboxEvent.Status.RECEIVED:
            outcome = "ignored"
        else:
            outcome = "new"
            if row["portal_id"] is None:
                lone.append(pk)
            else:
                portals.add(row["portal_id"])
        metrics.count(metrics.INBOX_EVENTS, row["source"], outcome)
        results.append((pk, row))
    # A portal's task takes every row of the portal waiting; a row without a portal goes alone.
    for portal_id in portals:
        transaction.on_commit(lambda portal_id=portal_id: _dispatch_portal(portal_id), robust=True)
    for event_id in lone:
        transaction.on_commit(lambda event_id=event_id: task_send(INBOX_TASK, [event_id]), robust=True)
    return results


def _dispatch_portal(portal_id: int) -> None:
    """Processing of a portal's new rows: one task takes every row waiting (coalesced, so a burst
    of events costs a few broker messages, not one each)."""
    task_send_coalesced(f"sync:inbox:{portal_id}", INBOX_PORTAL_TASK, [portal_id])


def inbox_record_bitrix24_event(*, portal: Portal, event: Bitrix24Event) -> int | None:
    """The EVENT_HANDLERS entry for invoice events: the inbox row's id; None for events about other
    entity types (ONCRMDYNAMICITEM* fire for every smart process: only type 31 is an invoice)."""
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
    [(pk, row)] = _insert(
        [
            {
                "portal_id": portal.pk,
                "source": Source.BITRIX24,
                "dedupe_key": dedupe_key,
                "event_type": name,
                "payload": payload,
            }
        ]
    )
    if pk is not None:
        return pk
    existing = InboxEvent.objects.select_related("portal").get(source=Source.BITRIX24, dedupe_key=row["dedupe_key"])
    if existing.status == InboxEvent.Status.DONE and name not in DELETE_EVENTS:
        # Same key, but the first delivery's job may already have read the invoice: a second edit
        # within the same second (`ts` has whole seconds) looks exactly like a redelivery. Never
        # drop it: queue the invoice again (merged into a pending job if there is one; the push
        # engine skips content that did not change, so a true redelivery costs a read).
        inbox_bitrix24_redelivered(existing)
    return existing.pk


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
    elif not _is_xero_id(event.resource_id):
        # Xero names every resource by a GUID (xero-webhooks.yaml: resourceId). A signed body that
        # does not is kept for the operator, not turned into work that fails five times.
        row |= {"status": InboxEvent.Status.IGNORED, "error": "resourceId is not a Xero id (a GUID)"}
    return row


def _is_xero_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def inbox_record_xero_events(*, payload: XeroWebhookPayload, raw_body: bytes) -> list[int | None]:
    """One row per event of a verified Xero webhook (an Intent to Receive probe has none): each new
    row's id, None for a redelivered event. Unknown tenants and categories are kept as `ignored`
    rows with the reason, for the operator."""
    if payload.is_intent_to_receive:
        return []
    portals: dict[str, int | None] = {}
    for tenant_id, portal_id in xero_tenant_portals(sorted({event.tenant_id.lower() for event in payload.events})):
        portals.setdefault(tenant_id.lower(), portal_id)
    raw_sha = hashlib.sha256(raw_body).hexdigest()
    return [pk for pk, _ in _insert([_xero_row(event, portals, raw_sha) for event in payload.events])]
