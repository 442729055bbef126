"""Safety nets run by Celery beat (CELERY_BEAT_SCHEDULE in connector/settings.py).

Redis and Celery are the fast path; these put back whatever it dropped: stuck inbox rows and jobs,
Bitrix24 changes whose event never came (Bitrix24 does not retry; where the plan allows, its
offline-event queue is drained every minute too), Xero changes whose webhook never
came (Xero disables a failing webhook after 24 h), and tokens that would expire from idleness.
"""

from __future__ import annotations

import hashlib
import logging

import redis
from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from connector.coordination import redis_client
from integrations.bitrix24.oauth import bitrix24_refresh
from integrations.common.errors import ExternalAPIError
from integrations.common.tokens import token_ensure_fresh
from integrations.xero.oauth import xero_refresh
from sync.models import Trigger
from sync.services.contacts_follow import contacts_follow
from sync.services.inbox import inbox_requeue_stuck
from sync.services.jobs import jobs_enqueue_bitrix24_changes, jobs_requeue_stuck, portal_sync_blocker, task_send
from sync.services.offline_events import offline_events_drain

logger = logging.getLogger(__name__)

PULL_RECENT_TASK = "sync.tasks.pull.pull_recent_task"
SKIP_LOG_TTL_S = 24 * 3600


def _log_skip_once(portal: Portal, reason: str, what: str) -> None:
    """A portal that cannot sync is skipped every few minutes; say so once a day, not each time."""
    key = f"sync:sweep:skipped:{portal.pk}:{hashlib.sha1(reason.encode()).hexdigest()[:12]}"
    client = redis_client()
    try:
        first = client is None or client.set(key, "1", nx=True, ex=SKIP_LOG_TTL_S)
    except redis.RedisError:
        first = True
    if first:
        logger.info("%s skips %s: %s", what, portal.domain, reason)


def _syncable_portals(what: str) -> list[Portal]:
    portals = []
    for portal in Portal.objects.exclude(status=Portal.Status.UNINSTALLED).order_by("pk"):
        reason = portal_sync_blocker(portal)
        if reason:
            _log_skip_once(portal, reason, what)
        else:
            portals.append(portal)
    return portals


@shared_task(name="sync.tasks.sweeps.sweep_stuck_task")
def sweep_stuck_task() -> dict:
    return {"inbox": inbox_requeue_stuck(), "jobs": jobs_requeue_stuck()}


@shared_task(name="sync.tasks.sweeps.sweep_bitrix24_changes_task")
def sweep_bitrix24_changes_task(portal_id: int | None = None) -> int:
    """Without a portal: one task per syncable portal (a slow portal does not hold up the others)."""
    if portal_id is None:
        portals = _syncable_portals("the Bitrix24 sweep")
        for portal in portals:
            sweep_bitrix24_changes_task.delay(portal.pk)
        return len(portals)
    portal = Portal.objects.get(pk=portal_id)
    if portal_sync_blocker(portal):
        return 0
    try:
        enqueued = jobs_enqueue_bitrix24_changes(portal=portal)
    except ExternalAPIError as exc:
        # The next pass (5 minutes) re-reads the same window: the watermark did not move.
        logger.warning("Bitrix24 sweep of %s failed: %s", portal.domain, exc)
        return 0
    try:
        # Linked companies/contacts edited in Bitrix24: their Xero contacts follow.
        contacts_follow(portal=portal)
    except ExternalAPIError as exc:
        logger.warning("contact update of %s failed: %s", portal.domain, exc)
    return enqueued


@shared_task(name="sync.tasks.sweeps.offline_events_drain_task")
def offline_events_drain_task(portal_id: int | None = None) -> int:
    """Bitrix24's offline-event queue (portals whose plan allows it): without a portal, one task per
    syncable portal with offline events on; with one, drain its queue into push jobs."""
    if portal_id is None:
        portals = [p for p in _syncable_portals("the offline-event drain") if p.offline_events]
        for portal in portals:
            offline_events_drain_task.delay(portal.pk)
        return len(portals)
    portal = Portal.objects.get(pk=portal_id)
    if portal_sync_blocker(portal):
        return 0
    try:
        return offline_events_drain(portal=portal)
    except (ExternalAPIError, redis.RedisError) as exc:
        # Reserved and not cleared stays reserved; the next drain (a minute) re-reads it.
        logger.warning("draining the offline events of %s failed: %s", portal.domain, exc)
        return 0


@shared_task(name="sync.tasks.sweeps.sweep_xero_changes_task")
def sweep_xero_changes_task() -> int:
    """The pull engine reads Xero by If-Modified-Since from its own watermark."""
    portals = _syncable_portals("the Xero sweep")
    for portal in portals:
        task_send(PULL_RECENT_TASK, [portal.pk, Trigger.SWEEP.value])
    return len(portals)


@shared_task(name="sync.tasks.sweeps.tokens_keepalive_task")
def tokens_keepalive_task() -> int:
    """Refresh the grants nobody used lately, before their refresh tokens die of idleness (Xero:
    60 days unused). An expired access token means no call refreshed it since; rows that need the
    user to reconnect are left alone (token_ensure_fresh would refuse them anyway)."""
    now = timezone.now()
    idle = Q(token_expires_at__isnull=True) | Q(token_expires_at__lt=now)
    refreshed = 0
    rows = [
        *((row, xero_refresh) for row in XeroConnection.objects.filter(idle, status=XeroConnection.Status.ACTIVE)),
        *((row, bitrix24_refresh) for row in Portal.objects.filter(idle, status=Portal.Status.ACTIVE)),
    ]
    for row, refresh in rows:
        if not row.refresh_token:
            continue
        try:
            token_ensure_fresh(row, refresh)
            refreshed += 1
        except ExternalAPIError as exc:
            logger.warning("keeping the %s token of %s alive failed: %s", type(row).__name__, row, exc)
    return refreshed
