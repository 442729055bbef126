"""The "Update from Xero" button: ask for an If-Modified-Since pull now, ahead of background work."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Portal
from sync.models import SyncJob, Trigger
from sync.services.jobs import PROCESSOR_TASKS, job_enqueue, task_send

PULL_RECENT_TASK = "sync.tasks.pull.pull_recent_task"


def statuses_pull_request(*, portal: Portal, requested_by: int | None) -> SyncJob:
    """A SWEEP_XERO job at user priority, and the task that serves it; the UI polls the job.

    Clicking twice while the first request waits returns the same pending job (one pending job per
    portal, kind and target). The task (sync.tasks.pull.pull_recent_task) claims the job, runs the
    pull as interactive and marks the job done, or failed with Xero's or Bitrix24's message.
    """
    job = job_enqueue(
        portal=portal,
        kind=SyncJob.Kind.SWEEP_XERO,
        target="",
        trigger=Trigger.BUTTON,
        priority=SyncJob.Priority.USER,
        requested_by=requested_by,
    )
    if SyncJob.Kind.SWEEP_XERO not in PROCESSOR_TASKS:
        # job_enqueue dispatches only kinds it knows a processor for; until SWEEP_XERO is one of
        # them, send the task ourselves (after commit, so the worker finds the job).
        transaction.on_commit(lambda: task_send(PULL_RECENT_TASK, [portal.pk, Trigger.BUTTON]), robust=True)
    return job
