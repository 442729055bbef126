"""The outbox: enqueue, claim, finish and retry SyncJobs; dispatch the processor tasks.

PostgreSQL is the source of truth, Celery the fast path (style B.2): a job row is durable before
any message is sent, a lost message only delays it until the sweeper (sync.tasks.sweeps) notices,
and a processor task claims *all* due jobs of its (portal, kind), so one message can serve many
jobs. That is what makes dispatch coalescing safe: we may skip sending a message, never a job.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Least
from django.utils import timezone

from accounts.models import Portal
from connector import metrics
from connector.coordination import redis_client
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from sync.models import SyncJob, Trigger

logger = logging.getLogger(__name__)

# The processor task of each kind, looked up by name so this module never imports the engines.
PROCESSOR_TASKS: dict[str, str] = {
    SyncJob.Kind.PUSH_INVOICE: "sync.tasks.push.push_invoices_task",
    SyncJob.Kind.PULL_STATUS: "sync.tasks.pull.pull_statuses_task",
    # The "Update from Xero" button's job; pull_recent_task(portal_id) claims it (trigger from the job).
    SyncJob.Kind.SWEEP_XERO: "sync.tasks.pull.pull_recent_task",
    # Imports from Xero run every due import job of the portal (sync.tasks.imports).
    SyncJob.Kind.IMPORT_CONTACTS: "sync.tasks.imports.imports_pending_task",
    SyncJob.Kind.IMPORT_ITEMS: "sync.tasks.imports.imports_pending_task",
}

# A claimed job is the worker's for this long; a worker that dies leaves it to the sweeper after
# that. Long batches renew it (job_lease_renew). It is shorter than the hard time limit on purpose:
# a job's own work (one invoice) takes seconds, the task's limit covers a whole batch.
JOB_LEASE_S = 180
MAX_ATTEMPTS = 8
RETRY_BASE_S = 10.0
# Coalescing window: at most one immediate and one trailing dispatch per (portal, kind) per window.
DISPATCH_WINDOW_MS = 200
# Delayed dispatches (retries) are bucketed so fifty jobs failing together schedule one message.
RETRY_DISPATCH_BUCKET_S = 5

# Publishing must not hang a webhook when the broker is down: one connection attempt, short socket
# timeouts, no kombu retries. https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
_PUBLISH_TIMEOUT_S = 1.0
_PUBLISH_TRANSPORT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": _PUBLISH_TIMEOUT_S,
    "socket_timeout": _PUBLISH_TIMEOUT_S,
    "max_retries": 0,
    "retry_on_timeout": False,
}


# --- sending tasks --------------------------------------------------------------------------------


class _PublishConnections(threading.local):
    """One broker connection per thread (and process: a forked child starts with none), reused
    across sends. Opening a connection and declaring the queue cost more than the rest of an
    event request together (measured: ~60% of a Bitrix24 event's time under gunicorn); kombu
    caches the declaration per connection, so a kept connection declares once. Any error drops
    it: the next send opens a fresh one, with the same short timeouts."""

    def __init__(self) -> None:
        self.pid = 0
        self.by_url: dict[str, Any] = {}

    def get(self, app) -> Any:
        if self.pid != os.getpid():
            self.pid, self.by_url = os.getpid(), {}
        url = app.conf.broker_url or ""
        conn = self.by_url.get(url)
        if conn is None:
            conn = app.connection_for_write(
                connect_timeout=_PUBLISH_TIMEOUT_S, transport_options=_PUBLISH_TRANSPORT_OPTIONS
            )
            self.by_url[url] = conn
        return conn

    def has(self, app) -> bool:
        return self.pid == os.getpid() and (app.conf.broker_url or "") in self.by_url

    def drop(self, app) -> None:
        conn = self.by_url.pop(app.conf.broker_url or "", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.release()


_PUBLISH = _PublishConnections()


def task_send(name: str, args: Sequence[Any], *, countdown: float | None = None) -> bool:
    """Send a task by name; False (logged) when the broker cannot take it. Never raises, never
    blocks for more than about a second: every caller has a durable row the sweeper re-sends."""
    from celery_app import app  # the Celery app imports Django settings; keep it lazy

    started = time.monotonic()
    reused = _PUBLISH.has(app)
    try:
        try:
            app.send_task(name, args=list(args), countdown=countdown, connection=_PUBLISH.get(app), retry=False)
        except Exception:
            if not reused:
                raise
            # A kept connection may have gone stale (the broker restarted): one fresh attempt.
            _PUBLISH.drop(app)
            app.send_task(name, args=list(args), countdown=countdown, connection=_PUBLISH.get(app), retry=False)
        return True
    except Exception as exc:  # broker down or unreachable: any kombu/redis/socket error
        _PUBLISH.drop(app)
        logger.warning(
            "could not send %s%s to the broker after %.2fs (%s: %s); the sweeper will re-send it",
            name,
            tuple(args),
            time.monotonic() - started,
            type(exc).__name__,
            exc,
        )
        return False


def _marker(key: str, ttl_ms: int) -> bool:
    """SET NX PX: True when we own the marker (or Redis is absent/down: then dispatch, never skip)."""
    client = redis_client()
    if client is None:
        return True
    try:
        return bool(client.set(key, "1", nx=True, px=ttl_ms))
    except redis.RedisError:
        return True


def job_dispatch(*, portal_id: int, kind: str, countdown: float | None = None) -> bool:
    """Ask for the (portal, kind) processor to run; True when a message was sent.

    Immediate dispatches are coalesced per DISPATCH_WINDOW_MS: the first sends at once (leading
    marker); later ones within the window leave one trailing dispatch, sent with a countdown of one
    window, which runs after every skipped caller has committed (callers dispatch after commit).
    Delayed dispatches (countdown) are coalesced per RETRY_DISPATCH_BUCKET_S instead.
    """
    task = PROCESSOR_TASKS.get(kind)
    if task is None:
        logger.error("no processor task for job kind %s", kind)
        return False
    base = f"sync:dispatch:{portal_id}:{kind}"
    if countdown:
        due = time.time() + countdown
        bucket = math.ceil(due / RETRY_DISPATCH_BUCKET_S) * RETRY_DISPATCH_BUCKET_S
        if not _marker(f"{base}:at:{bucket}", int((bucket - time.time() + 5) * 1000)):
            return False
        return task_send(task, [portal_id], countdown=max(0.0, bucket - time.time()))
    return task_send_coalesced(base, task, [portal_id])


def task_send_coalesced(key: str, name: str, args: Sequence[Any]) -> bool:
    """Send a processor task at most once at once and once more at the end of each
    DISPATCH_WINDOW_MS per `key`: the first call sends (leading marker); later ones within the
    window leave one trailing send, with a countdown of one window, which runs after every skipped
    caller has committed (callers send after commit). The processor must take *all* due work of
    its key, so a skipped send never skips work."""
    if _marker(key, DISPATCH_WINDOW_MS):
        return task_send(name, args)
    if _marker(f"{key}:trailing", DISPATCH_WINDOW_MS):
        return task_send(name, args, countdown=DISPATCH_WINDOW_MS / 1000)
    return False


def job_dispatch_after_quiet(*, portal_id: int, countdown: float) -> bool:
    """The push processor again after `countdown` s (sync/services/debounce.py), at most one such
    message per portal in flight: finer than the retry buckets, which would add up to 5 s to a
    single edit's latency."""
    task = PROCESSOR_TASKS[SyncJob.Kind.PUSH_INVOICE]
    if not _marker(f"sync:dispatch:{portal_id}:quiet", max(1, int(countdown * 1000))):
        return False
    return task_send(task, [portal_id], countdown=countdown)


def _dispatch_on_commit(portal_id: int, kind: str, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: job_dispatch(portal_id=portal_id, kind=kind, countdown=countdown), robust=True)


# --- enqueue and claim ----------------------------------------------------------------------------


def job_enqueue(
    *,
    portal: Portal,
    kind: SyncJob.Kind | str,
    target: str,
    trigger: Trigger | str,
    priority: SyncJob.Priority | int = SyncJob.Priority.EVENT,
    requested_by: int | None = None,
) -> SyncJob:
    """The pending job for (portal, kind, target): a new one, or the one already waiting (its
    priority raised when this request's is higher). The processor is dispatched after commit.

    Portable upsert (PostgreSQL and SQLite): hurry the waiting job with conditional UPDATEs, else
    insert in a savepoint. The partial unique constraint (one pending job per target) settles a
    race: a concurrent insert of the same target fails here, and the next pass finds that job. A
    waiting job claimed between the two steps is no longer pending, so the next pass inserts."""
    now = timezone.now()
    kind, priority = str(kind), int(priority)
    # No transaction of our own: alone, each statement commits by itself (the insert's atomic block
    # is then the transaction, not a savepoint) and the dispatch goes at once; inside the caller's
    # transaction everything commits with it and the dispatch waits for that.
    for _ in range(_ENQUEUE_PASSES):
        job_id = _hurry_pending(portal.pk, kind, target, priority, requested_by, now)
        created = None
        if job_id is None:
            try:
                with transaction.atomic():
                    created = SyncJob.objects.create(
                        portal=portal,
                        kind=kind,
                        target=target,
                        trigger=str(trigger),
                        priority=priority,
                        requested_by=requested_by,
                        status=SyncJob.Status.PENDING,
                        not_before=now,
                    )
            except IntegrityError:
                continue  # a concurrent enqueue of the same target won: hurry that one
        _dispatch_on_commit(portal.pk, kind)
        return created if created is not None else SyncJob.objects.get(pk=job_id)
    raise RuntimeError(f"could not enqueue {kind} {target} for portal {portal.pk}: the pending job kept changing")


# Each pass ends with a job unless the target's pending job is claimed or inserted by someone else
# between our two statements; that cannot go on for long.
_ENQUEUE_PASSES = 10


def _hurry_pending(
    portal_id: int, kind: str, target: str, priority: int, requested_by: int | None, now: datetime
) -> int | None:
    """The id of the target's pending job, after raising its priority if `priority` is better; None
    when there is none. A user waiting on a button outranks an event: take the better priority,
    their user id, and do not make them wait out a retry backoff meant for background work."""
    job_id = (
        SyncJob.objects.filter(portal_id=portal_id, kind=kind, target=target, status=SyncJob.Status.PENDING)
        .values_list("pk", flat=True)
        .first()
    )
    if job_id is None:
        return None
    pending = SyncJob.objects.filter(pk=job_id, status=SyncJob.Status.PENDING)
    better: dict[str, Any] = {
        "priority": priority,
        "not_before": Least(F("not_before"), Value(now, output_field=DateTimeField())),
        "updated_at": now,
    }
    if requested_by is not None:
        better["requested_by"] = requested_by
    # Each UPDATE re-checks the row (pending, and the priority) under its row lock.
    if pending.filter(priority__gt=priority).update(**better) or pending.update(updated_at=now):
        return job_id
    return None  # claimed meanwhile: a new pending job is needed


def jobs_claim(*, portal_id: int, kind: SyncJob.Kind | str, limit: int = 50, holder: str = "") -> list[SyncJob]:
    """Take up to `limit` due pending jobs, best priority first. Two workers never get the same job:
    on PostgreSQL the due rows are locked FOR UPDATE SKIP LOCKED (a concurrent claim passes over
    them); SQLite has no row locks but runs one write transaction at a time (IMMEDIATE mode, see
    settings), which serialises claims. The UPDATE re-checks `pending` either way. `holder` names
    the claiming pass's heartbeat (sync.services.heartbeat): the sweeper releases its jobs as soon
    as it stops beating."""
    now = timezone.now()
    lease = now + timedelta(seconds=JOB_LEASE_S)
    with transaction.atomic():
        due = (
            SyncJob.objects.filter(
                portal_id=portal_id, kind=str(kind), status=SyncJob.Status.PENDING, not_before__lte=now
            )
            .order_by("priority", "not_before", "id")
            # Ignored by Django where the backend has no SELECT ... FOR UPDATE (SQLite).
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        ids = list(due)
        if ids:
            SyncJob.objects.filter(pk__in=ids, status=SyncJob.Status.PENDING).update(
                status=SyncJob.Status.RUNNING,
                lease_until=lease,
                attempts=F("attempts") + 1,
                holder=holder,
                updated_at=now,
            )
    return list(
        SyncJob.objects.filter(pk__in=ids, status=SyncJob.Status.RUNNING, lease_until=lease).order_by(
            "priority", "not_before", "id"
        )
    )


def job_lease_renew(job: SyncJob, *, seconds: float = JOB_LEASE_S) -> bool:
    """Keep a long-running job ours; False when it was already taken back (stop working on it)."""
    lease = timezone.now() + timedelta(seconds=seconds)
    renewed = _owned(job).update(lease_until=lease, updated_at=timezone.now())
    if renewed:
        job.lease_until = lease
    return bool(renewed)


def job_leases_renew(jobs: list[SyncJob], *, seconds: float = JOB_LEASE_S) -> int:
    """job_lease_renew for many jobs in one UPDATE per 500; only those still ours (same attempts)."""
    if not jobs:
        return 0
    now = timezone.now()
    lease = now + timedelta(seconds=seconds)
    renewed = 0
    for start in range(0, len(jobs), 500):
        chunk = jobs[start : start + 500]
        owned = Q()
        for job in chunk:
            owned |= Q(pk=job.pk, attempts=job.attempts)
        renewed += SyncJob.objects.filter(owned, status=SyncJob.Status.RUNNING).update(
            lease_until=lease, updated_at=now
        )
    return renewed


def _owned(job: SyncJob):
    # `attempts` is the fencing token: the sweeper may have handed an expired lease to someone else,
    # whose claim bumped it; the late first worker then changes nothing.
    return SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.RUNNING, attempts=job.attempts)


# --- outcomes -------------------------------------------------------------------------------------


def job_done(job: SyncJob) -> bool:
    """False when the job was no longer ours (lease expired and reclaimed)."""
    done = _owned(job).update(status=SyncJob.Status.DONE, lease_until=None, last_error="", updated_at=timezone.now())
    if done:
        metrics.count(metrics.JOB_RESULTS, str(job.kind), "done")
    else:
        logger.warning("job %s finished after losing its lease; its new owner decides", job.pk)
    job.status = SyncJob.Status.DONE
    return bool(done)


def retry_delay_s(*, attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter (AWS's), never sooner than the API asked, capped."""
    cap = float(settings.MAX_RETRY_DELAY_S)
    delay = random.uniform(0, min(cap, RETRY_BASE_S * 2 ** max(0, attempts - 1)))
    if retry_after:
        delay = max(delay, float(retry_after))
    return min(cap, delay)


def _error_text(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    details = getattr(error, "details", None) or []
    return "; ".join([text, *[d for d in details if d != text]])[:4000]


def job_failed(job: SyncJob, error: BaseException) -> SyncJob:
    """Record a failed attempt.

    1. Permanent errors (validation, permission; ExternalAPIError.retryable false) fail the job at
       once with the API's own message. Unclassified exceptions count as retryable: a database
       hiccup or a soft time limit deserves another go, and MAX_ATTEMPTS bounds a real bug.
    2. Retryable ones go back to pending after a backoff, until MAX_ATTEMPTS, then fail.
    3. Back to pending may meet a newer pending job for the same target (partial unique
       constraint): that one will redo the work, so this one is closed as superseded.
    """
    message = _error_text(error)
    retryable = error.retryable if isinstance(error, ExternalAPIError) else True
    now = timezone.now()
    if retryable and job.attempts < MAX_ATTEMPTS:
        delay = retry_delay_s(attempts=job.attempts, retry_after=getattr(error, "retry_after", None))
        try:
            with transaction.atomic():
                moved = _owned(job).update(
                    status=SyncJob.Status.PENDING,
                    not_before=now + timedelta(seconds=delay),
                    lease_until=None,
                    last_error=message,
                    updated_at=now,
                )
                if moved:
                    metrics.count(metrics.JOB_RESULTS, str(job.kind), "retry")
                    _dispatch_on_commit(job.portal_id, job.kind, countdown=delay)
        except IntegrityError:
            newer = SyncJob.objects.filter(
                portal_id=job.portal_id, kind=job.kind, target=job.target, status=SyncJob.Status.PENDING
            ).first()
            _owned(job).update(
                status=SyncJob.Status.DONE,
                lease_until=None,
                last_error=f"superseded by job {newer.pk if newer else '?'} after: {message}"[:4000],
                updated_at=now,
            )
            if newer is not None and job.priority < newer.priority:
                SyncJob.objects.filter(pk=newer.pk, status=SyncJob.Status.PENDING).update(priority=job.priority)
        else:
            if not moved:
                logger.warning("job %s failed after losing its lease: %s", job.pk, message)
    else:
        if _owned(job).update(status=SyncJob.Status.FAILED, lease_until=None, last_error=message, updated_at=now):
            metrics.count(metrics.JOB_RESULTS, str(job.kind), "failed")
    job.refresh_from_db()
    return job


def job_retry(job_id: int, *, portal: Portal) -> SyncJob:
    """A user's "retry": a FAILED job of this portal becomes pending now, with fresh attempts and
    user priority. If the target already has a pending job, that one is returned (and hurried)."""
    now = timezone.now()
    with transaction.atomic():
        job = SyncJob.objects.select_for_update().get(pk=job_id, portal=portal)
        if job.status != SyncJob.Status.FAILED:
            return job
        try:
            with transaction.atomic():
                SyncJob.objects.filter(pk=job.pk).update(
                    status=SyncJob.Status.PENDING,
                    attempts=0,
                    not_before=now,
                    lease_until=None,
                    priority=SyncJob.Priority.USER,
                    updated_at=now,
                )
        except IntegrityError:
            job = SyncJob.objects.get(portal=portal, kind=job.kind, target=job.target, status=SyncJob.Status.PENDING)
            SyncJob.objects.filter(pk=job.pk).update(priority=SyncJob.Priority.USER, not_before=now, updated_at=now)
        _dispatch_on_commit(portal.pk, job.kind)
    job.refresh_from_db()
    return job


# --- safety nets (called by sync.tasks.sweeps) ----------------------------------------------------

# A dispatch sent this recently may still be on its way; the sweeper leaves such jobs alone.
SWEEP_GRACE_S = 10
# Bitrix24's clock, second-precision updatedTime and late commits: re-read this much before the mark.
BITRIX24_SWEEP_OVERLAP = timedelta(minutes=2)


def portal_sync_blocker(portal: Portal) -> str:
    """Why background sync cannot run for this portal now, or "" when it can (sync.services.gate)."""
    from sync.services.gate import sync_gate

    gate = sync_gate(portal)
    return "" if gate.automatic else gate.reason


def jobs_requeue_stuck(*, now=None) -> dict[str, int]:
    """1. Running jobs whose worker is gone — past their lease, or held by a pass whose heartbeat
       stopped (kill -9: seconds, not the lease) — are released: back to pending now (the next
       claim counts the attempt), merged into a newer pending job of the same target when there is
       one, or, once they have used MAX_ATTEMPTS, failed as a dead letter (logged on the invoice;
       a person retries it). A live pass renews its leases as it goes (job_leases_renew).
    2. Every (portal, kind) with due pending jobs not picked up within SWEEP_GRACE_S: dispatch its
       processor (a lost on_commit send, a broker outage, a delayed dispatch that vanished)."""
    from sync.services.heartbeat import holders_alive

    now = now or timezone.now()
    released = merged = dead = 0
    groups: set[tuple[int, str]] = set()
    running = list(SyncJob.objects.filter(status=SyncJob.Status.RUNNING).order_by("id")[:2000])
    alive = holders_alive({job.holder for job in running if job.holder})
    for job in running:
        expired = job.lease_until is not None and job.lease_until < now
        holder_gone = bool(job.holder) and alive is not None and job.holder not in alive
        if not expired and not holder_gone:
            continue
        if job.attempts >= MAX_ATTEMPTS:
            dead += _dead_letter(job, now)
            continue
        try:
            with transaction.atomic():
                # Due at once (never later than the real clock, when the sweep is run "as of" later).
                due = min(now, timezone.now())
                moved = _owned(job).update(
                    status=SyncJob.Status.PENDING, lease_until=None, not_before=due, holder="", updated_at=now
                )
        except IntegrityError:
            merged += _owned(job).update(
                status=SyncJob.Status.DONE,
                lease_until=None,
                last_error="lease expired; superseded by a newer pending job",
                updated_at=now,
            )
            continue
        released += moved
        if moved:
            groups.add((job.portal_id, job.kind))
    stale = now - timedelta(seconds=SWEEP_GRACE_S)
    groups |= set(
        SyncJob.objects.filter(status=SyncJob.Status.PENDING, not_before__lte=stale, kind__in=list(PROCESSOR_TASKS))
        .values_list("portal_id", "kind")
        .distinct()
    )
    dispatched = sum(job_dispatch(portal_id=portal_id, kind=kind) for portal_id, kind in sorted(groups))
    return {"released": released, "merged": merged, "dead": dead, "dispatched": dispatched}


def _dead_letter(job: SyncJob, now) -> int:
    """A job whose worker died or hung on every one of its MAX_ATTEMPTS: failed for a person to
    look at, with the last error seen, and logged on its invoice."""
    from sync.models import Direction, SyncLogEntry
    from sync.services.log import sync_log_write

    last = f" Last error: {job.last_error}" if job.last_error else ""
    message = (
        f"Gave up after {job.attempts} attempts: the worker running it stopped before finishing (lease expired).{last}"
    )[:4000]
    failed = _owned(job).update(
        status=SyncJob.Status.FAILED, lease_until=None, last_error=message, holder="", updated_at=now
    )
    entity, _, ident = job.target.partition(":")
    if failed and job.kind == SyncJob.Kind.PUSH_INVOICE and ident.isdigit():
        details = {"attempt": job.attempts, "max_attempts": MAX_ATTEMPTS, "dead_letter": True, "code": "lease_expired"}
        if entity.isdigit() and int(entity) != SMART_INVOICE:
            details["entity_type"] = int(entity)
        sync_log_write(
            portal=job.portal,
            direction=Direction.PUSH,
            trigger=job.trigger,
            outcome=SyncLogEntry.Outcome.FAILED,
            bitrix24_id=ident,
            message=message,
            details=details,
        )
    return failed


def _bitrix24_time(value: str) -> Any:
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(value.replace(" ", "T", 1)) if value else None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_default_timezone())


def jobs_enqueue_bitrix24_changes(*, portal: Portal) -> int:
    """The Bitrix24 sweep: a push job for every invoice changed since the watermark (minus an
    overlap), then the watermark moves to the newest updatedTime seen. Bitrix24 never retries an
    event, so this is what catches a delivery that failed. The push engine skips unchanged
    content by hash, so the overlap costs reads, not writes.

    Without a watermark the sweep starts at the moment Xero was connected: invoices older than the
    connection are not pushed by a background job (the user pushes them with the button)."""
    from integrations.bitrix24.client import Bitrix24Client
    from sync.models import SyncSettings
    from sync.sources import portal_sources

    sync_settings, _ = SyncSettings.objects.get_or_create(portal=portal)
    since = sync_settings.bitrix24_updated_since or portal.xero_connection.connected_at
    newest, enqueued = since, 0
    client = Bitrix24Client(portal)
    for source in portal_sources(portal):  # new and/or old invoices
        method, params = source.list_command(
            {">=updatedTime": (since - BITRIX24_SWEEP_OVERLAP).isoformat()}, order={"id": "ASC"}
        )
        for row in client.list_all(method, params, key=source.list_key):
            item = source.item(row)
            job_enqueue(
                portal=portal,
                kind=SyncJob.Kind.PUSH_INVOICE,
                target=source.target(item["id"]),
                trigger=Trigger.SWEEP,
                priority=SyncJob.Priority.BACKGROUND,
            )
            enqueued += 1
            updated = _bitrix24_time(str(item.get("updatedTime") or ""))
            if updated is not None and updated > newest:
                newest = updated
    # Only forward, and only after the whole pass: a failure midway re-reads the same window.
    # Only forward: an overlapping slower sweep must not move the mark back.
    SyncSettings.objects.filter(pk=sync_settings.pk).filter(
        Q(bitrix24_updated_since__isnull=True) | Q(bitrix24_updated_since__lt=newest)
    ).update(bitrix24_updated_since=newest)
    return enqueued
