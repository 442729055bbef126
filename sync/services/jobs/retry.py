"""The retry policy of the outbox: what a failed attempt becomes (back to pending after a backoff,
failed with the API's own words, or merged into a newer pending job), and a person's "retry"."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Portal
from connector import metrics
from integrations.common.errors import ExternalAPIError
from sync.models import SyncJob
from sync.services.jobs.dispatch import dispatch_on_commit
from sync.services.jobs.queue import job_owned

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RETRY_BASE_S = 10.0


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
                moved = job_owned(job).update(
                    status=SyncJob.Status.PENDING,
                    not_before=now + timedelta(seconds=delay),
                    lease_until=None,
                    last_error=message,
                    updated_at=now,
                )
                if moved:
                    metrics.count(metrics.JOB_RESULTS, str(job.kind), "retry")
                    dispatch_on_commit(job.portal_id, job.kind, countdown=delay)
        except IntegrityError:
            newer = SyncJob.objects.filter(
                portal_id=job.portal_id, kind=job.kind, target=job.target, status=SyncJob.Status.PENDING
            ).first()
            job_owned(job).update(
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
        if job_owned(job).update(status=SyncJob.Status.FAILED, lease_until=None, last_error=message, updated_at=now):
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
        dispatch_on_commit(portal.pk, job.kind)
    job.refresh_from_db()
    return job
