"""Celery task of the Bitrix24 -> Xero direction. Thin: a portal id in, passes of the push service.

push_invoices_task(portal_id) is the processor of PUSH_INVOICE jobs (dispatched by job_enqueue and
by the sweeper). It runs passes of `invoices_push_pending` while due jobs are left and its time
budget lasts, then hands what remains to a fresh task, so one portal with thousands of invoices
never holds a worker near the hard time limit and other portals get their turn in between.

Fair to other portals on the same worker pool (issue 14, bench/fairness.py):
- one task per portal at a time (a Redis lock, renewed by a heartbeat): a backlog occupies one
  worker, never the whole pool; a dispatch that finds the portal busy ends at once, and the holder
  dispatches whatever is due once it lets go;
- short slices: while other portals have pushes due, a slice is one pass of SHARED_CLAIM_LIMIT
  invoices, then the rest queues behind their tasks (round robin through the broker queue); a
  portal alone runs full passes for up to TIME_BUDGET_S;
- before each pass, the tenant's Xero minute budget is read (throttle.xero_room_wait): when the pass
  would mostly wait for it, the rest goes to a delayed task and the worker is given back, instead of
  sleeping in the throttle inside the worker.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict
from datetime import datetime

from celery import shared_task
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.models import XeroConnection
from connector.coordination import redis_client
from integrations.common.locks import LockTimeout, redis_lock
from integrations.common.throttle import xero_room_wait
from sync.models import SyncJob
from sync.services.debounce import push_quiet_wait
from sync.services.heartbeat import BEAT_S, Heartbeat
from sync.services.jobs import job_dispatch, job_dispatch_after_quiet, task_send
from sync.services.push import invoices_push_pending
from sync.services.push.pipeline import CLAIM_LIMIT, SHARED_CLAIM_LIMIT, claim_limit

logger = logging.getLogger(__name__)

# Well under the soft time limit, and short enough that a backlog on one portal is worked in slices
# that interleave with other portals' tasks (a pass already started is not cut: one pass is at most
# CLAIM_LIMIT invoices).
TIME_BUDGET_S = 10.0
# A pass is started only when the tenant's rolling minute has room for about this many calls (a
# 1,000-invoice pass: ~20 invoice writes + contacts + lookups; fewer invoices, fewer calls); when
# the room is further off than ROOM_WAIT_S, the work goes to a delayed task instead.
PASS_CALLS_PER_INVOICES = 50
PASS_CALLS_FIXED = 4
ROOM_WAIT_S = 2.0
ROOM_BUCKET_S = 0.25
# The one-task-per-portal lock: renewed by the task's heartbeat every BEAT_S (4 s), so only a killed
# worker lets it run out, and then within this long.
PORTAL_LOCK_TTL_S = 10.0
PUSH_TASK = "sync.tasks.push.push_invoices_task"
# Jobs coming due within this horizon (an invoice locked by another worker: +1 s) get a delayed
# dispatch; later ones (backoffs) are dispatched by job_failed, and the sweeper is the safety net.
SOON_S = 30.0


@shared_task(name="sync.tasks.push.push_invoices_task")
def push_invoices_task(portal_id: int, recheck: bool = False) -> dict:
    plan = push_quiet_wait(portal_id=portal_id)
    if plan.wait_s > 0:
        # A burst is still arriving: come back when it may be over (sync/services/debounce.py).
        job_dispatch_after_quiet(portal_id=portal_id, countdown=plan.wait_s)
        return {"waiting_s": round(plan.wait_s, 3)}
    started = time.monotonic()
    with contextlib.ExitStack() as held:
        heartbeat = held.enter_context(Heartbeat())
        try:
            lock = held.enter_context(redis_lock(_portal_lock(portal_id), ttl_s=PORTAL_LOCK_TTL_S, wait_s=0))
        except LockTimeout:
            # Another worker is pushing this portal: it collects these jobs (it dispatches what is
            # due once it lets go), and this worker goes to other portals meanwhile.
            _recheck_if_holder_may_be_dead(portal_id, recheck)
            return {"busy": True}
        heartbeat.keep(lock)
        totals, report_paused, deferred, took_all_since = _slice(portal_id)
    if deferred is not None:
        # Back when the tenant's minute has room, not up to RETRY_DISPATCH_BUCKET_S later: a backfill
        # defers once a minute, and the rounding left ~2.5 s of each minute unused (bench fairness).
        job_dispatch(portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE, countdown=deferred, bucket_s=ROOM_BUCKET_S)
        totals["deferred_s"] = round(deferred, 3)
    elif not report_paused:
        _dispatch_what_remains(portal_id, took_all_since)
    # How long the slice held a worker: what a portal's latency is made of is queue wait + this.
    totals["took_s"] = round(time.monotonic() - started, 3)
    logger.info("push of portal %s: %s", portal_id, totals)
    return totals


def _portal_lock(portal_id: int) -> str:
    return f"sync:push-task:{portal_id}"


def _recheck_if_holder_may_be_dead(portal_id: int, recheck: bool) -> None:
    """Should the holder have been killed, nobody dispatches what it left: look once more when its
    lock would run out. A live holder renews the lock every BEAT_S, so the re-check finds it renewed
    (and stops: the holder dispatches on release) or free (and goes on); only a lock that was not
    renewed lately (a holder that may be dead) is re-checked again. One re-check per busy dispatch,
    never a chain behind a live holder."""
    client = redis_client()
    if client is None:
        return  # embedded mode: the holder is this process, alive
    try:
        left_ms = client.pttl(_portal_lock(portal_id))
    except RedisError:
        return
    if left_ms <= 0:
        left_ms = 0  # just released or expired
    elif recheck and left_ms > (PORTAL_LOCK_TTL_S - BEAT_S - 1) * 1000:
        return  # renewed since: the holder is alive
    task_send(PUSH_TASK, [portal_id, True], countdown=left_ms / 1000.0 + 0.2)


def _slice(portal_id: int) -> tuple[dict, bool, float | None, datetime | None]:
    """Passes for up to TIME_BUDGET_S. -> (totals, paused, seconds to come back when the tenant's
    minute budget has no room for the next pass, else None; when the last pass took every job it
    could claim, the moment it claimed, else None)."""
    started = time.monotonic()
    totals: dict = {}
    tenant_id = XeroConnection.objects.filter(portal_id=portal_id).values_list("tenant_id", flat=True).first()
    paused = False
    while True:
        wait = _room_wait(portal_id, tenant_id)
        if wait > ROOM_WAIT_S:
            return totals, paused, wait, None
        if totals:
            # What arrived during the last pass waits for its own quiet moment (and the Xero budget's
            # pacing) like any other change, instead of going out at once in a pass of its own.
            plan = push_quiet_wait(portal_id=portal_id)
            if plan.wait_s > 0:
                job_dispatch_after_quiet(portal_id=portal_id, countdown=plan.wait_s)
                return totals, True, None, None  # the dispatch after the quiet moment is on its way
        claimed_at = timezone.now()
        report = invoices_push_pending(portal_id=portal_id)
        totals["passes"] = totals.get("passes", 0) + 1
        for key, value in asdict(report).items():
            if isinstance(value, int) and key != "portal_id":
                totals[key] = totals.get(key, 0) + value
        paused = bool(report.paused)
        # Another pass only after a full pass of a portal alone (CLAIM_LIMIT: more may be due):
        # - a pass that took fewer than its limit took everything that was due; a second pass
        #   would only find what arrived meanwhile, whose own dispatch (or _dispatch_what_remains
        #   below) brings it, and costs a worker its setup queries for nothing, once per change;
        # - a shared pass (SHARED_CLAIM_LIMIT: other portals have pushes due) is one turn: the rest
        #   of the backlog queues behind their tasks, so a backlog holds a worker for one short
        #   pass at a time, not for TIME_BUDGET_S of them.
        if report.paused or report.claimed < CLAIM_LIMIT or time.monotonic() - started > TIME_BUDGET_S:
            # Fewer than the smallest limit: the pass took every job it could claim at claimed_at.
            took_all = report.claimed < min(SHARED_CLAIM_LIMIT, CLAIM_LIMIT)
            return totals, paused, None, claimed_at if took_all else None


def _room_wait(portal_id: int, tenant_id: str | None) -> float:
    """How long the next pass would wait for the tenant's minute budget before its first calls."""
    if not tenant_id:
        return 0.0
    # The room asked for is that of the pass that will run: while other portals push, a backlog's
    # pass takes SHARED_CLAIM_LIMIT invoices (~1 write call + the fixed ones), not CLAIM_LIMIT.
    # Sized for CLAIM_LIMIT (room for 24 calls), a backfill of shared passes gave its worker back
    # with over a third of its tenant's minute unused, and came back when most of the minute had
    # passed: 41 calls/min of 60 (bench fairness, issue 14).
    due = SyncJob.objects.filter(
        portal_id=portal_id,
        kind=SyncJob.Kind.PUSH_INVOICE,
        status=SyncJob.Status.PENDING,
        not_before__lte=timezone.now(),
    )[: claim_limit(portal_id)].count()
    if not due:
        return 0.0
    calls = PASS_CALLS_FIXED + -(-due // PASS_CALLS_PER_INVOICES)
    try:
        return xero_room_wait(tenant_id, calls)
    except RedisError:
        return 0.0  # the pass's own throttle calls will say what is wrong


def _dispatch_what_remains(portal_id: int, took_all_since: datetime | None) -> None:
    """One dispatch for the portal's pending push work left after the slice: at once when it is due,
    at its time when that is within SOON_S (later: job_failed's dispatch and the sweeper).

    When the last pass took every job it could claim (`took_all_since`: when it claimed), the only
    work a new task could take is what was queued, renewed, released or deferred since then. A job
    that was due then and is still pending was passed over by the claim (its row locked by another
    transaction: FOR UPDATE SKIP LOCKED): another task would claim nothing either and dispatch again,
    a loop of empty tasks (~9,800 in 6 minutes on one portal in `bench burst latency`) starving
    other portals' pushes. It is left to whoever holds its row, and to the sweeper (SWEEP_GRACE_S)
    should that never let go. A job stamped before the claim but committed after it is not lost: its
    own dispatch found this portal busy and re-checks once the lock is let go."""
    pending = SyncJob.objects.filter(portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE, status=SyncJob.Status.PENDING)
    if took_all_since is not None:
        pending = pending.filter(Q(updated_at__gte=took_all_since) | Q(not_before__gt=took_all_since))
    next_due = pending.order_by("not_before").values_list("not_before", flat=True).first()
    if next_due is None:
        return
    wait = (next_due - timezone.now()).total_seconds()
    if wait <= 0:
        job_dispatch(portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE)
    elif wait <= SOON_S:
        job_dispatch(portal_id=portal_id, kind=SyncJob.Kind.PUSH_INVOICE, countdown=wait)
