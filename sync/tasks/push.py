"""Celery task of the Bitrix24 -> Xero direction. Thin: a portal id in, passes of the push service.

push_invoices_task(portal_id) is the processor of PUSH_INVOICE jobs (dispatched by job_enqueue and
by the sweeper). It runs passes of `invoices_push_pending` while due jobs are left and its time
budget lasts, then hands what remains to a fresh task, so one portal with thousands of invoices
never holds a worker near the hard time limit and other portals get their turn in between.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from celery import shared_task
from django.utils import timezone

from sync.models import SyncJob
from sync.services.debounce import push_quiet_wait
from sync.services.jobs import job_dispatch, job_dispatch_after_quiet
from sync.services.push import invoices_push_pending

logger = logging.getLogger(__name__)

# Well under the soft time limit, and short enough that a burst on one portal does not starve others.
TIME_BUDGET_S = 60.0
# Jobs coming due within this horizon (an invoice locked by another worker: +1 s) get a delayed
# dispatch; later ones (backoffs) are dispatched by job_failed, and the sweeper is the safety net.
SOON_S = 30.0


@shared_task(name="sync.tasks.push.push_invoices_task")
def push_invoices_task(portal_id: int) -> dict:
    plan = push_quiet_wait(portal_id=portal_id)
    if plan.wait_s > 0:
        # A burst is still arriving: come back when it may be over (sync/services/debounce.py).
        job_dispatch_after_quiet(portal_id=portal_id, countdown=plan.wait_s)
        return {"waiting_s": round(plan.wait_s, 3)}
    started = time.monotonic()
    totals: dict = {}
    while True:
        report = invoices_push_pending(portal_id=portal_id)
        for key, value in asdict(report).items():
            if isinstance(value, int) and key != "portal_id":
                totals[key] = totals.get(key, 0) + value
        if report.paused or not report.claimed or time.monotonic() - started > TIME_BUDGET_S:
            break
    if not report.paused:
        _dispatch_what_remains(portal_id)
    logger.info("push of portal %s: %s", portal_id, totals)
    return totals


def _dispatch_what_remains(portal_id: int) -> None:
    now = timezone.now()
    next_due = (
        SyncJob.objects.filter(portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE, status=SyncJob.Status.PENDING)
        .order_by("not_before")
        .values_list("not_before", flat=True)
        .first()
    )
    if next_due is None:
        return
    wait = (next_due - now).total_seconds()
    if wait <= 0:
        job_dispatch(portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE)
    elif wait <= SOON_S:
        job_dispatch(portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE, countdown=wait)
