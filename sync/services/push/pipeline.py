"""The push pass: claim, lock, run the stages, settle every invoice (see the package docstring)."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from integrations.common.errors import AuthorizationLostError, PermanentError, RetryableError
from integrations.common.locks import LockTimeout, redis_lock
from sync.models import Direction, SyncJob, SyncLogEntry, Trigger
from sync.services.gate import GateState, sync_gate
from sync.services.heartbeat import LOCK_TTL_S as HEARTBEAT_LOCK_TTL_S
from sync.services.heartbeat import Heartbeat
from sync.services.jobs import job_done, job_failed, jobs_claim
from sync.services.locks import invoice_lock_name
from sync.services.log import sync_log_write
from sync.services.push.contacts import contacts_stage
from sync.services.push.context import PassContext, PushReport, Work, unfinished
from sync.services.push.decide import decide_stage
from sync.services.push.drift import drift_stage
from sync.services.push.map import map_stage
from sync.services.push.outcomes import defer, fail_all, finish, note_reconnect_needed, take_dirty
from sync.services.push.payments import payments_stage
from sync.services.push.read import read_stage
from sync.services.push.record import record_stage
from sync.services.push.sources import parse_target, unsupported_target_message
from sync.services.push.write import write_stage

logger = logging.getLogger(__name__)

# A pass's fixed costs are per pass, not per invoice: at least one Bitrix24 read round (two with new
# clients) and a Xero contact lookup. 1,000 (the button's maximum per click, so one click is one
# pass) spreads them over enough invoices (bench/push.py: 25 Xero calls, the floor, instead of 35).
# The pass still ends in seconds, far inside JOB_LEASE_S and the task's time limit, and a worker
# process peaks ~25 MB above idle doing it (bench/backfill.py).
CLAIM_LIMIT = 1000
# While other portals push too, a pass takes fewer: a backlog (a backfill of thousands) is then
# worked in short passes that interleave with their small ones on a shared worker pool, instead of
# holding a worker for the 30-50 s a 1,000-invoice pass takes (bench/fairness.py).
SHARED_CLAIM_LIMIT = int(settings.PUSH_SHARED_CLAIM_LIMIT)
# Without a heartbeat (embedded mode, no Redis): longer than a task may run (the hard time limit kills
# it), so a live holder never loses its lock; a killed one holds it only this long.
LOCK_TTL_S = getattr(settings, "PUSH_LOCK_TTL_S", settings.TASK_HARD_TIME_LIMIT_S + 60)
AUTH_LOST_DELAY_S = 60
# "Other portals push too": one has a push due now, or had one due this recently. A portal editing
# an invoice every few seconds has a job due only for the moment between its event and its pass, so
# "due now" alone let a backfill take two 1,000-invoice passes (53 s each, measured) between them.
OTHERS_ACTIVE_S = 30


def invoices_push_pending(*, portal_id: int) -> PushReport:
    """One pass over the portal's due PUSH_INVOICE jobs (see the package docstring)."""
    report = PushReport(portal_id=portal_id)
    portal = Portal.objects.filter(pk=portal_id).first()
    connection = XeroConnection.objects.filter(portal=portal).first() if portal is not None else None
    # One answer for "may this portal sync now?" (sync.services.gate); held jobs are not due, so a
    # portal waiting for Setup still runs an admin's button clicks.
    gate = sync_gate(portal, connection=connection)
    if not gate.jobs_may_run:
        # Only a dead Xero grant is "needs reconnection": a portal not (yet) connected to Xero, e.g.
        # events handled while the admin is still choosing the organisation, is not.
        if portal is not None and portal.is_active and gate.state == GateState.XERO_RECONNECT:
            note_reconnect_needed(portal)
        report.paused = gate.reason
        return report
    with Heartbeat() as heartbeat:
        jobs = jobs_claim(
            portal_id=portal.pk, kind=SyncJob.Kind.PUSH_INVOICE, limit=claim_limit(portal.pk), holder=heartbeat.holder
        )
        if jobs:
            report.claimed = len(jobs)
            _run_pass(portal, connection, report, jobs, heartbeat)
    return report


def claim_limit(portal_id: int) -> int:
    """How many due jobs this portal's pass takes: all it can use, unless other portals push too."""
    now = timezone.now()
    finished = [SyncJob.Status.RUNNING, SyncJob.Status.DONE, SyncJob.Status.FAILED]
    others_active = (
        SyncJob.objects.filter(kind=SyncJob.Kind.PUSH_INVOICE)
        .filter(
            Q(status=SyncJob.Status.PENDING, not_before__lte=now)
            | Q(status__in=finished, not_before__gte=now - timedelta(seconds=OTHERS_ACTIVE_S), not_before__lte=now)
        )
        .exclude(portal_id=portal_id)
        .exists()
    )
    return SHARED_CLAIM_LIMIT if others_active else CLAIM_LIMIT


def _run_pass(
    portal: Portal, connection: XeroConnection, report: PushReport, jobs: list[SyncJob], heartbeat: Heartbeat
) -> None:
    interactive = any(job.priority == SyncJob.Priority.USER for job in jobs)
    ctx = PassContext(portal, connection, report, interactive)
    work = _work_of(ctx, jobs)
    ctx.items = work
    # Under a heartbeat the locks are short and renewed while this pass lives (a killed worker's
    # expire in seconds); without Redis there is nothing to renew and the long TTL stays.
    ttl_s = HEARTBEAT_LOCK_TTL_S if heartbeat.holder else LOCK_TTL_S

    with contextlib.ExitStack() as locks:
        held = []
        for item in work:
            name = invoice_lock_name(portal.pk, item.invoice_id)
            try:
                heartbeat.keep(locks.enter_context(redis_lock(name, ttl_s=ttl_s, wait_s=0)))
            except LockTimeout:
                defer(item)
                report.deferred += 1
                continue
            held.append(item)
        try:
            run_stages(ctx, held)
            # Events that arrived for these invoices while we held them: run them once more now,
            # rather than make their (deferred) jobs wait for the locks.
            run_stages(ctx, take_dirty(portal, held))
        except AuthorizationLostError as exc:
            # Bitrix24 or Xero access was lost mid-pass: nothing is wrong with the invoices; they
            # wait (pending) until the portal or Xero is reconnected.
            for item in held:
                if not item.finished and item.job is not None:
                    defer(item, delay_s=AUTH_LOST_DELAY_S)
            sync_log_write(
                portal=portal,
                direction=Direction.PUSH,
                trigger=Trigger.SWEEP,
                outcome=SyncLogEntry.Outcome.RETRYING,
                message=exc.message,
            )


def _work_of(ctx: PassContext, jobs: list[SyncJob]) -> list[Work]:
    work: dict[tuple[int, int], Work] = {}
    for job in jobs:
        target = parse_target(job.target)
        if target is None:
            message = unsupported_target_message(job.target)
            job_failed(job, PermanentError(message, system="bitrix24"))
            sync_log_write(
                portal=ctx.portal,
                direction=Direction.PUSH,
                trigger=job.trigger,
                outcome=SyncLogEntry.Outcome.FAILED,
                bitrix24_id=job.target.partition(":")[2],
                message=message,
            )
            ctx.report.failed += 1
        elif target in work:
            job_done(job)  # the same invoice twice in one claim: one push serves both
        else:
            entity_type, invoice_id = target
            work[target] = Work(invoice_id=invoice_id, job=job, trigger=job.trigger, entity_type=entity_type)
    return list(work.values())


def run_stages(ctx: PassContext, items: list[Work]) -> None:
    """read -> resolve contacts -> map -> drift -> decide -> write (+ record per batch) -> payments. Each stage
    settles the invoices it can (sync.services.push.outcomes) and hands on the rest; whatever is
    left at the end had nothing to do. An unexpected exception (a bug, the database) must not leave
    jobs running until their lease: it fails what is unsettled as retryable, one entry each."""
    if not items:
        return
    try:
        clients = read_stage(ctx, items)
        contacts_stage(ctx, unfinished(items), clients)
        map_stage(ctx, unfinished(items))
        drift_stage(ctx, unfinished(items))
        decide_stage(ctx, unfinished(items))
        ctx.settle()  # the writes may wait on Xero's throttle: what is settled is finished first
        write_stage(ctx, unfinished(items), then=record_stage)
        payments_stage(ctx, unfinished(items))
    except AuthorizationLostError:
        ctx.settle()
        raise
    except Exception as exc:
        logger.exception("push pass of portal %s failed", ctx.portal.pk)
        fail_all(ctx, unfinished(items), RetryableError(f"Unexpected error in the push: {exc}", system="connector"))
        ctx.settle()
        return
    for item in unfinished(items):
        finish(ctx, item, outcome=SyncLogEntry.Outcome.SKIPPED_UNCHANGED)
    ctx.settle()
