"""Celery task of the imports from Xero. Thin: a job id in, claim it, run the service, record the end.

import_run_task(job_id) is sent on commit by sync.services.imports.import_job_start. A message that
arrives twice, or for a job another worker holds, finds nothing to claim and does nothing.
imports_pending_task(portal_id) is the by-kind processor the sweeper and job_failed dispatch through
sync.services.jobs.PROCESSOR_TASKS (for IMPORT_CONTACTS / IMPORT_ITEMS): it runs every due pending
import job of the portal, so a lost message or a dead worker only delays an import.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from sync.models import SyncJob
from sync.services.imports import ImportRefused, import_job_claim, import_progress_write, import_run
from sync.services.jobs import job_done, job_failed

logger = logging.getLogger(__name__)


@shared_task(name="sync.tasks.imports.import_run_task", acks_late=True)
def import_run_task(job_id: int) -> dict:
    job = import_job_claim(job_id)
    if job is None:
        return {"job": job_id, "claimed": False}
    try:
        summary = import_run(job)
    except ImportRefused as refused:
        # Nothing a retry would fix (no connection, no catalog): fail at once with the reason.
        SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.RUNNING, attempts=job.attempts).update(
            status=SyncJob.Status.FAILED, lease_until=None, last_error=str(refused)
        )
        return {"job": job_id, "failed": str(refused)}
    except Exception as error:
        # API errors: permanent ones fail the job with the API's words, others go back to pending
        # with backoff (job_failed decides). The job's row says which; the page shows it.
        logger.warning("import job %s failed: %s", job_id, error)
        job = job_failed(job, error)
        if job.status == SyncJob.Status.PENDING:
            # Nothing dispatches import jobs by kind: schedule this one's retry ourselves.
            import_run_task.apply_async(args=[job_id], eta=job.not_before)
        return {"job": job_id, "failed": job.last_error}
    summary.status = SyncJob.Status.DONE
    import_progress_write(job.pk, summary)
    job_done(job)
    return {"job": job_id, **summary.as_dict()}


@shared_task(name="sync.tasks.imports.imports_pending_task")
def imports_pending_task(portal_id: int) -> list[dict]:
    due = SyncJob.objects.filter(
        portal_id=portal_id,
        kind__in=[SyncJob.Kind.IMPORT_CONTACTS, SyncJob.Kind.IMPORT_ITEMS],
        status=SyncJob.Status.PENDING,
        not_before__lte=timezone.now(),
    ).values_list("pk", flat=True)
    return [import_run_task(job_id) for job_id in list(due)]
