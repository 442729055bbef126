"""How far the jobs of one click are, for the pages' progress bar."""

from __future__ import annotations

from typing import Any

from accounts.models import Portal
from sync.models import SyncJob, SyncLogEntry, XeroStatus

MAX_PROGRESS_JOBS = 1000


def jobs_progress(*, portal: Portal, job_ids: list[int]) -> dict[str, Any]:
    """How far the jobs of one click are; jobs of another portal are not counted (nor revealed).
    A retrying job says when it tries again; an "Update from Xero" job that finished says what
    changed ("INV-4 → Paid")."""
    jobs = list(
        SyncJob.objects.filter(portal=portal, pk__in=job_ids[:MAX_PROGRESS_JOBS]).values(
            "id", "kind", "target", "status", "last_error", "not_before", "attempts", "created_at"
        )
    )
    done = sum(j["status"] == SyncJob.Status.DONE for j in jobs)
    failed = [j for j in jobs if j["status"] == SyncJob.Status.FAILED]
    pulls = [j for j in jobs if j["kind"] == SyncJob.Kind.SWEEP_XERO and j["status"] == SyncJob.Status.DONE]
    return {
        "total": len(jobs),
        "done": done,
        "failed": len(failed),
        "pending": len(jobs) - done - len(failed),
        "errors": [
            {"job": j["id"], "invoice": j["target"].partition(":")[2] or j["target"], "message": j["last_error"]}
            for j in failed
        ],
        # A retryable failure keeps the job pending with the API's message; show it while waiting.
        "retrying": [
            {
                "job": j["id"],
                "invoice": j["target"].partition(":")[2],
                "message": j["last_error"],
                "next_attempt_at": j["not_before"].isoformat(),
                "attempts": j["attempts"],
            }
            for j in jobs
            if j["status"] == SyncJob.Status.PENDING and j["last_error"]
        ],
        "changes": _pulled_changes(portal, min(j["created_at"] for j in pulls)) if pulls else [],
    }


def _pulled_changes(portal: Portal, since) -> list[str]:
    """What a button's pull changed, as "INV-4 → Paid", newest first."""
    entries = SyncLogEntry.objects.filter(
        portal=portal,
        direction="pull",
        trigger="button",
        created_at__gte=since,
        outcome__in=[SyncLogEntry.Outcome.STATUS_CHANGED, SyncLogEntry.Outcome.UPDATED],
    ).order_by("-created_at")[:20]
    out = []
    for entry in entries:
        status = str((entry.details or {}).get("xero_status") or "")
        label = dict(XeroStatus.choices).get(status, status.title())
        out.append(f"{entry.invoice_number or entry.bitrix24_id} → {label}")
    return out
