"""Whether a portal may pull now, and the one-pull-per-portal lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from accounts.models import Portal, XeroConnection
from integrations.common.locks import redis_lock
from sync.services.gate import sync_gate
from sync.services.pull.state import PullReport

# One pull per portal at a time: a button click during a sweep, or a webhook job during either,
# would otherwise read the same invoice before the other recorded its move and write it twice.
LOCK_TTL_S = 600
LOCK_WAIT_S = 60


def pull_portal_active(portal_id: int, report: PullReport) -> tuple[Portal | None, XeroConnection | None]:
    portal = Portal.objects.filter(pk=portal_id).first()
    connection = XeroConnection.objects.filter(portal=portal).first() if portal is not None else None
    gate = sync_gate(portal, connection=connection)
    if not gate.jobs_may_run:
        report.skipped = gate.reason
        return (portal if portal is not None and portal.is_active else None), None
    return portal, connection


@contextmanager
def pull_lock(portal_id: int) -> Iterator[None]:
    with redis_lock(f"sync:pull:{portal_id}", ttl_s=LOCK_TTL_S, wait_s=LOCK_WAIT_S):
        yield
