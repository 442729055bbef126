"""What the contacts and items imports share: hashes of what was imported, the Xero client, batching."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from accounts.models import Portal, XeroConnection
from connector.coordination import redis_client
from integrations.bitrix24.api import BatchOutcome
from integrations.xero.client import XeroClient
from sync.models import SyncJob
from sync.services.imports.progress import PROGRESS_EVERY, ImportRefused, ImportSummary, import_progress_write

logger = logging.getLogger(__name__)
# --- shared helpers ---------------------------------------------------------------------------------


class _Hashes:
    """What each Xero record looked like when we last imported it (Redis hash per portal and kind).
    Losing it costs one redundant update per record, never a duplicate."""

    def __init__(self, portal: Portal, kind: str) -> None:
        self.key = f"sync:import:hash:{portal.pk}:{kind}"
        self.client = redis_client()
        self.local: dict[str, str] = {}

    def get_many(self, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        if not ids:
            return {}
        if self.client is None:
            return {i: self.local[i] for i in ids if i in self.local}
        values = self.client.hmget(self.key, ids)
        return {i: v.decode() for i, v in zip(ids, values, strict=True) if v is not None}

    def set_many(self, values: Mapping[str, str]) -> None:
        if not values:
            return
        if self.client is None:
            self.local.update(values)
        else:
            self.client.hset(self.key, mapping=dict(values))


def _xero(portal: Portal) -> XeroClient:
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        raise ImportRefused("Xero is not connected; connect it on the app's home page and try again.")
    return XeroClient(connection, interactive=True)


def _chunks(rows: list, size: int) -> Iterable[list]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _message(error: BaseException) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__


def _tick(job: SyncJob, summary: ImportSummary, *, force: bool = False) -> None:
    if force or summary.processed % PROGRESS_EVERY == 0:
        import_progress_write(job.pk, summary)


def _renew(job: SyncJob) -> None:
    from sync.services.jobs import job_lease_renew

    if job.status == SyncJob.Status.RUNNING:
        job_lease_renew(job)


def _ran(result: BatchOutcome, key: str, name: str, summary: ImportSummary) -> bool:
    if key in result.errors:
        summary.error(f"{name}: {_message(result.errors[key])}")
        return False
    if not result.ran(key):
        summary.error(f"{name}: Bitrix24 did not run the request.")
        return False
    return True
