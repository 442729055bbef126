"""The "Update from Xero" button: ask for an If-Modified-Since pull now, ahead of background work."""

from __future__ import annotations

from accounts.models import Portal
from sync.models import SyncJob, Trigger
from sync.services.jobs import job_enqueue


def statuses_pull_request(*, portal: Portal, requested_by: int | None) -> SyncJob:
    """A SWEEP_XERO job at user priority; the UI polls it (pending -> running -> done / failed with
    Xero's or Bitrix24's message; what changed is in the sync log, trigger "button").

    job_enqueue dispatches the kind's processor, sync.tasks.pull.pull_recent_task, after commit; it
    claims the job and runs the pull as interactive, so its API calls go before background sweeps.
    Clicking again while the first request waits returns the same pending job.
    """
    return job_enqueue(
        portal=portal,
        kind=SyncJob.Kind.SWEEP_XERO,
        target="",
        trigger=Trigger.BUTTON,
        priority=SyncJob.Priority.USER,
        requested_by=requested_by,
    )
