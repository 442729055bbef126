"""The Sync log grouped by invoice, "Needs attention", quiet entries hidden and counted, and the
progress of "Update from Xero" when Xero fails (issue 9). Service level: no sandbox needed."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from sync.models import Direction, InvoiceOutcome, SyncJob, SyncLogEntry, Trigger
from sync.services.jobs import job_enqueue
from sync.services.jobs_progress import jobs_progress
from sync.services.log import sync_log_write
from sync.services.log_page import sync_log_grouped

Out = SyncLogEntry.Outcome


def write(portal, invoice: int, outcome: str, message: str = "", **details) -> None:
    sync_log_write(
        portal=portal,
        direction=Direction.PUSH,
        trigger=Trigger.EVENT,
        outcome=outcome,
        bitrix24_id=invoice,
        message=message,
        details=details,
    )


def test_the_log_groups_by_invoice_latest_first_counts_attempts_and_hides_echoes(lone_portal):
    write(lone_portal, 1, Out.CREATED)
    write(lone_portal, 1, Out.SKIPPED_UNCHANGED, "Unchanged since the last push.")
    write(lone_portal, 1, Out.ECHO_DROPPED, "Echo of a change made in Xero.")
    write(lone_portal, 2, Out.RETRYING, "Xero answered 503", attempt=1)
    write(lone_portal, 2, Out.RETRYING, "Xero answered 503", attempt=2)
    write(lone_portal, 2, Out.FAILED, "Gave up after 3 attempts: Xero answered 503", attempt=3)
    write(lone_portal, 3, Out.REFUSED, "A PAID invoice cannot be edited", rule="paid_locked")

    log = sync_log_grouped(portal=lone_portal, client=None, is_admin=True)
    assert [g.entry.bitrix24_id for g in log.groups] == ["3", "2", "1"]
    assert [g.entry.outcome for g in log.groups] == [Out.REFUSED, Out.FAILED, Out.CREATED]
    two = log.groups[1]
    assert two.failed_attempts == 3 and len(two.earlier) == 2
    assert log.quiet == 2  # the echo and the unchanged skip: counted, not listed

    everything = sync_log_grouped(portal=lone_portal, client=None, is_admin=True, show_quiet=True)
    assert everything.groups[2].entry.outcome == Out.ECHO_DROPPED and everything.quiet == 0

    attention = sync_log_grouped(portal=lone_portal, client=None, is_admin=True, attention=True)
    assert [g.entry.bitrix24_id for g in attention.groups] == ["3", "2"]  # refused and failed
    states = dict(InvoiceOutcome.objects.filter(portal=lone_portal).values_list("bitrix24_id", "state"))
    assert states == {1: "on_xero", 2: "failed", 3: "refused"}


def test_update_from_xero_says_when_it_retries_and_what_changed(lone_portal):
    job = job_enqueue(portal=lone_portal, kind=SyncJob.Kind.SWEEP_XERO, target="", trigger=Trigger.BUTTON, priority=0)
    later = timezone.now() + dt.timedelta(seconds=42)
    SyncJob.objects.filter(pk=job.pk).update(last_error="Xero answered 503", not_before=later, attempts=1)
    progress = jobs_progress(portal=lone_portal, job_ids=[job.pk])
    assert progress["pending"] == 1
    assert progress["retrying"][0]["message"] == "Xero answered 503"
    assert progress["retrying"][0]["next_attempt_at"] == later.isoformat()

    SyncJob.objects.filter(pk=job.pk).update(status=SyncJob.Status.DONE, last_error="")
    sync_log_write(
        portal=lone_portal,
        direction=Direction.PULL,
        trigger=Trigger.BUTTON,
        outcome=Out.UPDATED,
        bitrix24_id=4,
        invoice_number="INV-4",
        details={"xero_status": "PAID"},
    )
    assert jobs_progress(portal=lone_portal, job_ids=[job.pk])["changes"] == ["INV-4 → Paid"]
