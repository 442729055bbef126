"""An import run's summary and its progress (Redis under the job id, else this process)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

from django.core.cache import cache

from connector.coordination import redis_client
from sync.models import Direction, SyncJob, SyncLogEntry

logger = logging.getLogger(__name__)

IMPORT_TASK = "sync.tasks.imports.import_run_task"
CONTACTS_PAGE_SIZE = 1000
BATCH = 50
MAX_ERRORS_SHOWN = 50
PROGRESS_TTL_S = 7 * 24 * 3600
# How often (in records) progress is written while a page is being worked through.
PROGRESS_EVERY = 50
FALLBACK_PRICE_TYPE = 1  # the base price type of a stock portal


class ImportRefused(Exception):
    """The import cannot start (no Xero connection, unknown currency); the message says why."""


@dataclass
class ImportSummary:
    status: str = SyncJob.Status.PENDING
    processed: int = 0
    total: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(message)

    def as_dict(self) -> dict:
        return asdict(self)


# --- progress (Redis, else this process) ------------------------------------------------------------


def _progress_key(job_id: int) -> str:
    return f"sync:import:progress:{job_id}"


def import_progress_write(job_id: int, summary: ImportSummary) -> None:
    payload = json.dumps(summary.as_dict())
    client = redis_client()
    if client is None:
        # Embedded mode: the worker writes, the web server reads; Django's cache is a folder
        # shared by both there (settings.CACHES).
        cache.set(_progress_key(job_id), payload, PROGRESS_TTL_S)
        return
    client.set(_progress_key(job_id), payload, ex=PROGRESS_TTL_S)


def import_progress(job: SyncJob) -> dict:
    """{"status", "processed", "total", "created", "updated", "skipped", "failed", "errors"} of a job.
    The status is the job row's (the truth); the counts come from Redis, or from the run's log entry
    once Redis has forgotten them."""
    client = redis_client()
    raw = client.get(_progress_key(job.pk)) if client is not None else cache.get(_progress_key(job.pk))
    counts = json.loads(raw) if raw else None
    if counts is None:
        entry = (
            SyncLogEntry.objects.filter(portal_id=job.portal_id, direction=Direction.IMPORT, details__job_id=job.pk)
            .order_by("-created_at")
            .first()
        )
        counts = dict((entry.details or {}).get("summary") or {}) if entry else {}
    out = ImportSummary().as_dict()
    out.update({k: v for k, v in counts.items() if k in out})
    out["status"] = job.status
    if job.status == SyncJob.Status.FAILED and job.last_error and job.last_error not in out["errors"]:
        out["errors"] = [job.last_error, *out["errors"]]
    return out
