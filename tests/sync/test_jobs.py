"""The outbox: enqueue (coalescing), claim (exclusive), outcomes (backoff, failure, merge), dispatch."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from celery_app import app as celery
from integrations.common.errors import PermanentError, RateLimitedError, RetryableError
from sync.models import SyncJob, Trigger
from sync.services.jobs import MAX_ATTEMPTS, job_done, job_enqueue, job_failed, job_retry, jobs_claim
from tests.sync.conftest import queued_tasks

PUSH = SyncJob.Kind.PUSH_INVOICE
PUSH_TASK = "sync.tasks.push.push_invoices_task"


def enqueue(portal, target: str, **kwargs) -> SyncJob:
    return job_enqueue(portal=portal, kind=PUSH, target=target, trigger=kwargs.pop("trigger", Trigger.EVENT), **kwargs)


def claim_one(portal) -> SyncJob:
    (job,) = jobs_claim(portal_id=portal.pk, kind=PUSH, limit=1)
    return job


def test_enqueue_returns_the_waiting_job_and_a_user_request_raises_its_priority(lone_portal):
    first = enqueue(lone_portal, "31:1")
    again = enqueue(lone_portal, "31:1")
    clicked = enqueue(lone_portal, "31:1", priority=SyncJob.Priority.USER, requested_by=5, trigger=Trigger.BUTTON)
    background = enqueue(lone_portal, "31:1", priority=SyncJob.Priority.BACKGROUND)

    assert first.pk == again.pk == clicked.pk == background.pk
    job = SyncJob.objects.get()
    assert (job.priority, job.requested_by, job.status) == (SyncJob.Priority.USER, 5, SyncJob.Status.PENDING)


def test_claiming_takes_due_jobs_best_priority_first_and_leases_them(lone_portal):
    enqueue(lone_portal, "31:1", priority=SyncJob.Priority.BACKGROUND)
    enqueue(lone_portal, "31:2", priority=SyncJob.Priority.USER)
    later = enqueue(lone_portal, "31:3")
    SyncJob.objects.filter(pk=later.pk).update(not_before=timezone.now() + timedelta(minutes=5))

    jobs = jobs_claim(portal_id=lone_portal.pk, kind=PUSH)

    assert [job.target for job in jobs] == ["31:2", "31:1"]
    assert all(j.status == SyncJob.Status.RUNNING and j.attempts == 1 and j.lease_until > timezone.now() for j in jobs)
    assert jobs_claim(portal_id=lone_portal.pk, kind=PUSH) == []


def claim_concurrently(portal, limit: int) -> list[list[int]]:
    """Two threads, each with its own database connection, claim at the same moment."""
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]

    def claim(slot: int) -> None:
        try:
            barrier.wait()
            claimed[slot] = [job.pk for job in jobs_claim(portal_id=portal.pk, kind=PUSH, limit=limit)]
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed


def test_two_threads_claiming_at_once_never_get_the_same_job(lone_portal):
    for round_ in range(5):
        for n in range(40):
            enqueue(lone_portal, f"31:{round_}-{n}")

        first, second = claim_concurrently(lone_portal, limit=30)

        assert not set(first) & set(second)
        assert len(first) + len(second) == 40
        assert SyncJob.objects.filter(status=SyncJob.Status.RUNNING, attempts=1).count() == 40 * (round_ + 1)


def test_a_retryable_failure_goes_back_to_pending_after_a_backoff_that_honours_retry_after(lone_portal):
    enqueue(lone_portal, "31:1")
    job = claim_one(lone_portal)
    before = timezone.now()

    job = job_failed(job, RateLimitedError("Too many requests", system="xero", status=429, retry_after=42))

    assert (job.status, job.attempts) == (SyncJob.Status.PENDING, 1)
    assert before + timedelta(seconds=41) < job.not_before < before + timedelta(seconds=60)
    assert "Too many requests" in job.last_error
    assert jobs_claim(portal_id=lone_portal.pk, kind=PUSH) == []  # not due yet
    assert any(message.get("eta") for message in queued_tasks())  # a delayed dispatch for when it is due


def test_backoff_grows_and_after_the_last_attempt_the_job_fails(lone_portal, settings):
    enqueue(lone_portal, "31:1")
    delays = []
    for _ in range(MAX_ATTEMPTS):
        job = claim_one(lone_portal)
        failed_at = timezone.now()
        job = job_failed(job, RetryableError("Xero is down", system="xero", status=503))
        if job.status == SyncJob.Status.PENDING:
            delays.append((job.not_before - failed_at).total_seconds())
            SyncJob.objects.filter(pk=job.pk).update(not_before=timezone.now())  # skip the wait

    assert (job.status, job.attempts) == (SyncJob.Status.FAILED, MAX_ATTEMPTS)
    assert len(delays) == MAX_ATTEMPTS - 1
    assert all(0 <= d <= settings.MAX_RETRY_DELAY_S for d in delays)
    # Full jitter: each delay is random below 10 s * 2^(n-1); the cap bounds the later ones.
    assert all(d <= 10 * 2**n + 1 for n, d in enumerate(delays))


def test_a_permanent_failure_fails_at_once_with_the_apis_own_message(lone_portal):
    enqueue(lone_portal, "31:1")
    error = PermanentError(
        "A validation exception occurred",
        system="xero",
        status=400,
        details=["Email address must be valid.", "Account code '999' is not a valid code for this document."],
    )

    job = job_failed(claim_one(lone_portal), error)

    assert (job.status, job.attempts) == (SyncJob.Status.FAILED, 1)
    assert "Email address must be valid." in job.last_error and "Account code '999'" in job.last_error


def test_a_retry_that_meets_a_newer_pending_job_for_the_same_invoice_merges_into_it(lone_portal):
    enqueue(lone_portal, "31:1", priority=SyncJob.Priority.USER)
    running = claim_one(lone_portal)
    newer = enqueue(lone_portal, "31:1")  # changed again while the first push was running

    merged = job_failed(running, RetryableError("timeout", system="xero"))

    assert merged.status == SyncJob.Status.DONE and f"superseded by job {newer.pk}" in merged.last_error
    newer.refresh_from_db()
    assert newer.status == SyncJob.Status.PENDING and newer.priority == SyncJob.Priority.USER


def test_done_and_failed_change_nothing_once_the_lease_was_taken_over(lone_portal):
    enqueue(lone_portal, "31:1")
    stale = claim_one(lone_portal)
    # The lease expired and another worker claimed the job again (attempts moved on).
    SyncJob.objects.filter(pk=stale.pk).update(attempts=stale.attempts + 1)

    assert job_done(stale) is False
    job_failed(stale, PermanentError("late", system="xero"))
    assert SyncJob.objects.get().status == SyncJob.Status.RUNNING


def test_retry_turns_a_failed_job_pending_at_user_priority(lone_portal):
    enqueue(lone_portal, "31:1", priority=SyncJob.Priority.BACKGROUND)
    failed = job_failed(claim_one(lone_portal), PermanentError("no", system="xero"))

    retried = job_retry(failed.pk, portal=lone_portal)

    assert retried.pk == failed.pk
    assert (retried.status, retried.attempts, retried.priority) == (SyncJob.Status.PENDING, 0, SyncJob.Priority.USER)
    assert claim_one(lone_portal).pk == failed.pk


def test_retry_of_a_job_whose_invoice_already_waits_returns_the_waiting_one(lone_portal):
    enqueue(lone_portal, "31:1")
    failed = job_failed(claim_one(lone_portal), PermanentError("no", system="xero"))
    waiting = enqueue(lone_portal, "31:1", priority=SyncJob.Priority.BACKGROUND)

    assert job_retry(failed.pk, portal=lone_portal).pk == waiting.pk
    assert SyncJob.objects.get(pk=waiting.pk).priority == SyncJob.Priority.USER
    assert SyncJob.objects.get(pk=failed.pk).status == SyncJob.Status.FAILED


def test_a_burst_of_100_clicks_in_one_window_sends_one_dispatch_and_one_trailing(lone_portal, monkeypatch):
    # The window is made long enough to hold the whole burst however slow the machine is: what is
    # checked is the coalescing rule (per window: one send at once, one trailing send a window
    # later that runs after every skipped caller committed), not how many windows 100 enqueues span.
    monkeypatch.setattr("sync.services.jobs.dispatch.DISPATCH_WINDOW_MS", 60_000)
    for n in range(100):
        enqueue(lone_portal, f"31:{n}", priority=SyncJob.Priority.USER, trigger=Trigger.BUTTON)

    messages = queued_tasks()
    assert SyncJob.objects.filter(status=SyncJob.Status.PENDING).count() == 100
    assert [(m["task"], m["argsrepr"]) for m in messages] == [(PUSH_TASK, f"[{lone_portal.pk}]")] * 2
    immediate, trailing = sorted(messages, key=lambda m: m["eta"] or "")
    assert immediate["eta"] is None and trailing["eta"] is not None


def test_a_click_queueing_100_jobs_in_one_transaction_sends_one_message(lone_portal):
    with transaction.atomic():
        for n in range(100):
            enqueue(lone_portal, f"31:{n}", priority=SyncJob.Priority.USER, trigger=Trigger.BUTTON)
        assert queued_tasks() == []  # nothing before the jobs are committed

    (message,) = queued_tasks()
    assert (message["task"], message["argsrepr"], message["eta"]) == (PUSH_TASK, f"[{lone_portal.pk}]", None)


def test_a_send_dropped_with_a_rolled_back_savepoint_does_not_stop_the_next_jobs_send(lone_portal):
    with transaction.atomic():
        with contextlib.suppress(RuntimeError), transaction.atomic():
            enqueue(lone_portal, "31:1", priority=SyncJob.Priority.USER)
            raise RuntimeError("the caller gives up on this one")
        enqueue(lone_portal, "31:2", priority=SyncJob.Priority.USER)

    assert list(SyncJob.objects.values_list("target", flat=True)) == ["31:2"]
    assert [m["argsrepr"] for m in queued_tasks()] == [f"[{lone_portal.pk}]"]


def test_a_burst_of_100_events_sends_one_dispatch_for_when_the_portal_is_quiet(lone_portal, settings):
    # An event's push would only be told by the debounce to come back after PUSH_QUIET_S: it is
    # sent for then, once per portal while one such message waits (a long quiet time holds the burst).
    settings.PUSH_QUIET_S = 60.0
    before = timezone.now()
    for n in range(100):
        enqueue(lone_portal, f"31:{n}")

    (message,) = queued_tasks()
    assert (message["task"], message["argsrepr"]) == (PUSH_TASK, f"[{lone_portal.pk}]")
    assert datetime.fromisoformat(message["eta"]) >= before + timedelta(seconds=59)
    assert SyncJob.objects.filter(status=SyncJob.Status.PENDING).count() == 100


@pytest.fixture
def broker_down():
    """The broker URL points at a port nobody listens on (Redis for locks stays up)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    original = celery.conf.broker_url
    celery.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    try:
        yield
    finally:
        celery.conf.broker_url = original


def test_with_the_broker_down_enqueue_still_stores_the_job_quickly(lone_portal, broker_down):
    started = time.monotonic()
    job = enqueue(lone_portal, "31:1")

    assert time.monotonic() - started < 2.0
    assert SyncJob.objects.get().pk == job.pk and job.status == SyncJob.Status.PENDING
