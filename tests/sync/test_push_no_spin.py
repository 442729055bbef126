"""A push task that finds nothing it may claim must not keep sending itself: a due job whose row
another transaction holds (FOR UPDATE SKIP LOCKED passes over it) made every task claim nothing and
dispatch the next at once, ~9,800 empty tasks in 6 minutes on one portal in `bench burst latency`,
starving the other portal's pushes. Counted here by running the dispatched messages one after the
other, each as the worker would once its time has come (no wall clock)."""

from __future__ import annotations

import ast
import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from connector.coordination import redis_client
from sync.models import SyncJob, Trigger
from sync.services.jobs import SWEEP_GRACE_S, jobs_requeue_stuck
from sync.services.jobs import dispatch as dispatching
from sync.tasks.push import push_invoices_task
from tests.factories import SyncJobFactory
from tests.sync.conftest import queued_tasks

PUSH_TASK = "sync.tasks.push.push_invoices_task"
MAX_RUNS = 25


def _due_job(portal, target: str, *, in_s: float = 0.0) -> SyncJob:
    return SyncJobFactory(
        portal=portal,
        kind=SyncJob.Kind.PUSH_INVOICE,
        target=target,
        trigger=Trigger.EVENT,
        status=SyncJob.Status.PENDING,
        not_before=timezone.now() + timedelta(seconds=in_s),
    )


@contextlib.contextmanager
def _row_held_elsewhere(job: SyncJob) -> Iterator[None]:
    """Another session holds the job's row lock (a transaction that does not end) until the block
    ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(SyncJob.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True))
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(30)
    try:
        yield
    finally:
        release.set()
        holder.join()


def _run_what_was_dispatched() -> int:
    """Run the push tasks waiting in the broker, and those they send, one at a time, each as if its
    time had come (its dispatch window over): how many ran, at most MAX_RUNS."""
    client = redis_client()
    runs = 0
    while runs < MAX_RUNS:
        raw = client.lpop("connector")
        if raw is None:
            return runs
        headers = json.loads(raw)["headers"]
        assert headers["task"] == PUSH_TASK
        for key in client.scan_iter("sync:dispatch:*"):
            client.delete(key)
        dispatching._trailing_due.clear()
        push_invoices_task(*ast.literal_eval(headers["argsrepr"]))
        runs += 1
    return runs


def test_a_due_job_no_pass_can_claim_costs_one_task_not_a_loop(lone_portal, settings):
    settings.PUSH_QUIET_S = 0
    job = _due_job(lone_portal, "31:1")

    with _row_held_elsewhere(job):
        totals = push_invoices_task(lone_portal.pk)
        assert totals.get("claimed") == 0
        # No follow-up: another task would claim nothing either. (Before the fix each one sent the
        # next at once: MAX_RUNS more tasks here, and no end.)
        assert queued_tasks() == []
        assert 1 + _run_what_was_dispatched() == 1

    # Once its row is free, the sweeper is the net: one dispatch for the job.
    assert SyncJob.objects.get(pk=job.pk).status == SyncJob.Status.PENDING
    later = timezone.now() + timedelta(seconds=SWEEP_GRACE_S + 1)
    assert jobs_requeue_stuck(now=later)["dispatched"] == 1
    assert [m["argsrepr"] for m in queued_tasks()] == [f"[{lone_portal.pk}]"]


def test_unclaimable_work_beside_work_due_later_sends_one_follow_up_for_then(lone_portal, settings):
    settings.PUSH_QUIET_S = 0
    held = _due_job(lone_portal, "31:1")
    _due_job(lone_portal, "31:2", in_s=20)  # a retry's backoff: claimable in 20 s
    before = timezone.now()

    with _row_held_elsewhere(held):
        push_invoices_task(lone_portal.pk)
        (message,) = queued_tasks()

    # One message, for when the later job is due (the retry bucket rounds it up to 5 s), not one at
    # once for the job nobody could claim.
    assert message["argsrepr"] == f"[{lone_portal.pk}]" and message["eta"] is not None
    assert datetime.fromisoformat(message["eta"]) >= before + timedelta(seconds=19)


def test_dispatches_while_the_debounce_says_wait_leave_one_message_for_then(lone_portal, settings):
    # A burst is in progress (the job was renewed just now): every task that comes meanwhile (the
    # sweeper, a busy holder's re-check, a trailing dispatch) is told to wait. However many come,
    # one message waits for the quiet moment; none comes back sooner.
    settings.PUSH_QUIET_S, settings.PUSH_MAX_WAIT_S = 60.0, 600.0
    _due_job(lone_portal, "31:1")
    before = timezone.now()

    for _ in range(10):
        assert push_invoices_task(lone_portal.pk)["waiting_s"] > 0

    (message,) = queued_tasks()
    assert message["argsrepr"] == f"[{lone_portal.pk}]"
    assert datetime.fromisoformat(message["eta"]) >= before + timedelta(seconds=59)
    assert SyncJob.objects.get(target="31:1").status == SyncJob.Status.PENDING
