"""The outbox's rows: enqueue (one pending job per target), claim (exclusive, leased), renew the
lease, and finish. A job that fails goes through sync.services.jobs.retry; one whose worker died,
through sync.services.jobs.sweep."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Least
from django.utils import timezone

from accounts.models import Portal
from connector import metrics
from sync.models import SyncJob, Trigger
from sync.services.jobs.dispatch import dispatch_new_job_on_commit

logger = logging.getLogger(__name__)

# A claimed job is the worker's for this long; a worker that dies leaves it to the sweeper after
# that. Long batches renew it (job_lease_renew). It is shorter than the hard time limit on purpose:
# a job's own work (one invoice) takes seconds, the task's limit covers a whole batch.
JOB_LEASE_S = 180


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
        dispatch_new_job_on_commit(portal.pk, kind, priority)
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
    renewed = job_owned(job).update(lease_until=lease, updated_at=timezone.now())
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


def job_owned(job: SyncJob):
    # `attempts` is the fencing token: the sweeper may have handed an expired lease to someone else,
    # whose claim bumped it; the late first worker then changes nothing.
    return SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.RUNNING, attempts=job.attempts)


def job_done(job: SyncJob) -> bool:
    """False when the job was no longer ours (lease expired and reclaimed)."""
    done = job_owned(job).update(status=SyncJob.Status.DONE, lease_until=None, last_error="", updated_at=timezone.now())
    if done:
        metrics.count(metrics.JOB_RESULTS, str(job.kind), "done")
    else:
        logger.warning("job %s finished after losing its lease; its new owner decides", job.pk)
    job.status = SyncJob.Status.DONE
    return bool(done)


def jobs_done(jobs: list[SyncJob]) -> int:
    """job_done for many jobs at once: one UPDATE per (kind, attempts) — `attempts` is the fencing
    token, and a backfill's jobs mostly share one — so a batch of invoices finishes in a statement
    instead of one each. -> how many were still ours (the others' new owners decide)."""
    groups: dict[tuple[str, int], list[int]] = {}
    for job in jobs:
        groups.setdefault((str(job.kind), job.attempts), []).append(job.pk)
        job.status = SyncJob.Status.DONE
    now = timezone.now()
    done = 0
    for (kind, attempts), ids in groups.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            finished = SyncJob.objects.filter(pk__in=chunk, status=SyncJob.Status.RUNNING, attempts=attempts).update(
                status=SyncJob.Status.DONE, lease_until=None, last_error="", updated_at=now
            )
            if finished:
                metrics.count(metrics.JOB_RESULTS, kind, "done", amount=finished)
            if finished < len(chunk):
                logger.warning(
                    "%d jobs finished after losing their lease; their new owners decide", len(chunk) - finished
                )
            done += finished
    return done
