"""The outbox: SyncJobs enqueued, claimed, finished and retried, and their processor tasks sent.

PostgreSQL is the source of truth, Celery the fast path (style B.2): a job row is durable before
any message is sent, a lost message only delays it until the sweeper notices, and a processor task
claims *all* due jobs of its (portal, kind), so one message can serve many jobs.

One module per job:
- `queue`: enqueue (one pending job per target), claim (exclusive, leased), lease renewal, done;
- `dispatch`: the broker connection and the coalesced sends of the processor tasks;
- `retry`: the retry policy (backoff, permanent failures, merges) and a person's "retry";
- `sweep`: the safety nets — released and dead-lettered jobs, lost dispatches, the Bitrix24 sweep.

Callers import from here; the names below are the outbox's public interface.
"""

from sync.services.jobs.dispatch import (
    DISPATCH_WINDOW_MS,
    PROCESSOR_TASKS,
    RETRY_DISPATCH_BUCKET_S,
    job_dispatch,
    job_dispatch_after_quiet,
    task_send,
    task_send_coalesced,
)
from sync.services.jobs.queue import (
    JOB_LEASE_S,
    job_done,
    job_enqueue,
    job_lease_renew,
    job_leases_renew,
    jobs_claim,
    jobs_done,
)
from sync.services.jobs.retry import MAX_ATTEMPTS, RETRY_BASE_S, job_failed, job_retry, retry_delay_s
from sync.services.jobs.sweep import (
    BITRIX24_SWEEP_OVERLAP,
    SWEEP_GRACE_S,
    jobs_enqueue_bitrix24_changes,
    jobs_requeue_stuck,
    portal_sync_blocker,
)

__all__ = [
    "BITRIX24_SWEEP_OVERLAP",
    "DISPATCH_WINDOW_MS",
    "JOB_LEASE_S",
    "MAX_ATTEMPTS",
    "PROCESSOR_TASKS",
    "RETRY_BASE_S",
    "RETRY_DISPATCH_BUCKET_S",
    "SWEEP_GRACE_S",
    "job_dispatch",
    "job_dispatch_after_quiet",
    "job_done",
    "job_enqueue",
    "job_failed",
    "job_lease_renew",
    "job_leases_renew",
    "job_retry",
    "jobs_claim",
    "jobs_done",
    "jobs_enqueue_bitrix24_changes",
    "jobs_requeue_stuck",
    "portal_sync_blocker",
    "retry_delay_s",
    "task_send",
    "task_send_coalesced",
]
