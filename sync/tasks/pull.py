"""Celery tasks of the Xero -> Bitrix24 direction. Thin: ids in, one service call, the retry policy.

- pull_statuses_task(portal_id): the processor of PULL_STATUS jobs (dispatched by job_enqueue).
- pull_recent_task(portal_id, trigger="sweep"): the If-Modified-Since pass. The sweeper sends it
  every 5 minutes; it is also the processor of SWEEP_XERO jobs, which the "Update from Xero" button
  enqueues (sync.services.buttons_pull): each run claims the pending ones, runs as "button" if one
  of them is a click, and finishes them, so the job the UI polls ends done or failed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

from accounts.models import Portal
from integrations.common.errors import ExternalAPIError, PermanentError
from integrations.common.locks import LockTimeout
from sync.models import SyncJob, Trigger
from sync.services.jobs import job_done, job_failed, jobs_claim
from sync.services.pull import statuses_pull_pending, statuses_pull_recent

logger = logging.getLogger(__name__)

# Another pull of the same portal holds the lock; it is short, so try again soon.
BUSY_RETRY_S = 5


def _summary(report) -> dict:
    data = asdict(report)
    data["watermark"] = report.watermark.isoformat() if report.watermark else None
    return data


@shared_task(name="sync.tasks.pull.pull_statuses_task", bind=True, max_retries=20)
def pull_statuses_task(self, portal_id: int) -> dict:
    # API errors never get here: each job records its own (job_failed retries it with backoff).
    try:
        report = statuses_pull_pending(portal_id=portal_id)
    except LockTimeout as busy:
        raise self.retry(countdown=BUSY_RETRY_S) from busy
    logger.info("pull of portal %s: %s", portal_id, _summary(report))
    return _summary(report)


@shared_task(name="sync.tasks.pull.pull_recent_task", bind=True, max_retries=3)
def pull_recent_task(self, portal_id: int, trigger: str = Trigger.SWEEP) -> dict:
    jobs = jobs_claim(portal_id=portal_id, kind=SyncJob.Kind.SWEEP_XERO, limit=50)
    if any(job.trigger == Trigger.BUTTON for job in jobs):
        trigger = Trigger.BUTTON  # a user waits: run as interactive, log as theirs
    portal = Portal.objects.filter(pk=portal_id).first()
    try:
        if portal is None:
            raise PermanentError("The portal no longer exists", system="bitrix24")
        report = statuses_pull_recent(portal=portal, trigger=trigger)
        if report.skipped:
            raise PermanentError(f"Nothing was read from Xero: {report.skipped}.", system="xero")
    except LockTimeout as busy:
        for job in jobs:
            job_failed(job, busy)  # retryable: back to pending, re-dispatched with backoff
        if not jobs:
            raise self.retry(countdown=BUSY_RETRY_S) from busy
        return {"busy": True}
    except ExternalAPIError as error:
        for job in jobs:
            job_failed(job, error)
        # A sweep is not retried: the next one comes in 5 minutes from the same watermark.
        logger.warning("Xero pull of portal %s (%s) failed: %s", portal_id, trigger, error)
        return {"error": str(error)}
    for job in jobs:
        job_done(job)
    logger.info("Xero pull of portal %s (%s): %s", portal_id, trigger, _summary(report))
    return _summary(report)
