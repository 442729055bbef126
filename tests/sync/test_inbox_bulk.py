"""The inbox's batch writes (issue 14: the worker's CPU per row): a batch's echo entries are stored
in one INSERT with exactly what a single entry gets (content, redaction, metrics, log line,
outcome); a batch that fails is done again row by row, and its entries are then written once each.

Real PostgreSQL and Redis; nothing of ours is replaced.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from accounts.models import Portal
from sync.models import Direction, InboxEvent, InvoiceOutcome, Source, SyncJob, SyncLogEntry, Trigger
from sync.services.gate import HELD_UNTIL, jobs_enqueue_for_event, jobs_enqueue_for_events, sync_gate
from sync.services.inbox import inbox_event_process, inbox_process_portal
from sync.services.log import sync_log_entry, sync_log_write_many
from tests.factories import InboxEventFactory, InvoiceLinkFactory, ready_portal
from tests.sync.conftest import xero_event

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "bulk-application-token-of-the-portal"
STATE_AT = datetime(2026, 12, 6, 6, 0, 5, tzinfo=UTC)  # what the links hold: Xero's UpdatedDateUTC
XERO_IDS = [f"0b0b0b0b-0000-4000-8000-00000000000{n}" for n in range(3)]
ECHO_TIMES = ["2026-12-06T06:00:01.000", "2026-12-06T06:00:02.250", "2026-12-06T06:00:05.000"]
NEWER = "2026-12-06T06:00:09.000"
FIELDS = ("direction", "trigger", "outcome", "object_kind", "bitrix24_id", "xero_id", "invoice_number", "message")


def linked_portal(domain: str) -> Portal:
    portal = ready_portal(domain=domain, application_token=TOKEN)
    for n, xero_id in enumerate(XERO_IDS):
        InvoiceLinkFactory(
            portal=portal,
            bitrix24_id=100 + n,
            xero_invoice_id=xero_id,
            xero_invoice_number=f"INV-{n:04d}",
            last_xero_status="AUTHORISED",
            xero_updated_at=STATE_AT,
        )
    return portal


def xero_row(portal: Portal, xero_id: str, when: str) -> InboxEvent:
    return InboxEventFactory(
        portal=portal,
        source=Source.XERO,
        event_type="INVOICE.UPDATE",
        dedupe_key=f"xero:{portal.pk}:{xero_id}:{when}",
        payload=xero_event(portal.xero_connection.tenant_id, xero_id) | {"eventDateUtc": when},
    )


def bitrix24_row(portal: Portal, invoice_id: str) -> InboxEvent:
    name = "ONCRMDYNAMICITEMUPDATE"
    return InboxEventFactory(
        portal=portal,
        dedupe_key=f"b24:{portal.pk}:{name}:31:{invoice_id}:1700000000:1",
        payload={"event": name, "entity_type_id": 31, "id": invoice_id, "ts": 1700000000, "handler_id": 1},
    )


def echo_rows(portal: Portal) -> list[InboxEvent]:
    """Three echoes per linked invoice, then one newer event about the first (to be read)."""
    rows = [xero_row(portal, xero_id, when) for when in ECHO_TIMES for xero_id in XERO_IDS]
    return [*rows, xero_row(portal, XERO_IDS[0], NEWER)]


def entries(portal: Portal) -> list[tuple]:
    found = SyncLogEntry.objects.filter(portal=portal).order_by("xero_id", "message")
    return [(*(getattr(entry, name) for name in FIELDS), entry.details) for entry in found]


def test_a_batch_of_echoes_writes_one_entry_per_echo_in_one_insert_as_row_by_row_does():
    batched, one_by_one = linked_portal("batched.bitrix24.com"), linked_portal("one-by-one.bitrix24.com")
    echo_rows(batched)
    rows = echo_rows(one_by_one)

    with CaptureQueriesContext(connection) as queries:
        assert inbox_process_portal(batched.pk) == {"done": 10}
    for row in rows:
        assert inbox_event_process(row.pk) == InboxEvent.Status.DONE

    table = SyncLogEntry._meta.db_table
    assert sum(query["sql"].startswith(f'INSERT INTO "{table}"') for query in queries.captured_queries) == 1
    assert len(entries(batched)) == 9
    assert entries(batched) == entries(one_by_one)
    # The wording and details the entry had when it was written one by one.
    assert entries(batched)[0] == (
        Direction.PULL,
        Trigger.WEBHOOK,
        SyncLogEntry.Outcome.ECHO_DROPPED,
        SyncLogEntry.ObjectKind.INVOICE,
        "100",
        XERO_IDS[0],
        "INV-0000",
        "Xero's event of 06:00:01.000 UTC is not newer than what we last wrote or read; the invoice was not read again.",
        {"xero_status": "AUTHORISED"},
    )
    for portal in (batched, one_by_one):
        assert list(SyncJob.objects.filter(portal=portal).values_list("kind", "target")) == [
            (SyncJob.Kind.PULL_STATUS, XERO_IDS[0])
        ]
        notes = InboxEvent.objects.filter(portal=portal).values_list("error", flat=True)
        assert sorted(set(notes)) == ["", "echo: the invoice's state is already known (not read again)"]


def test_each_entry_of_a_batch_is_counted_and_logged_as_a_single_one_is(caplog):
    portal = linked_portal("counted.bitrix24.com")
    echo_rows(portal)
    labels = {"direction": "pull", "outcome": "echo_dropped"}
    before = REGISTRY.get_sample_value("connector_sync_outcomes_total", labels) or 0.0
    caplog.set_level(logging.DEBUG, logger="sync.outcome")

    inbox_process_portal(portal.pk)

    assert REGISTRY.get_sample_value("connector_sync_outcomes_total", labels) == before + 9
    lines = [r for r in caplog.records if r.name == "sync.outcome" and "echo_dropped" in r.getMessage()]
    assert len(lines) == 9
    assert {line.portal for line in lines} == {str(portal.pk)}  # type: ignore[attr-defined]


def test_entries_written_together_are_redacted_and_set_their_invoices_outcomes():
    portal = ready_portal(domain="redacted.bitrix24.com", application_token=TOKEN)
    failed = sync_log_entry(
        portal=portal,
        direction=Direction.PUSH,
        trigger=Trigger.EVENT,
        outcome=SyncLogEntry.Outcome.FAILED,
        bitrix24_id=7,
        message=f"Bitrix24 refused the token {TOKEN}",
    )
    created = sync_log_entry(
        portal=portal,
        direction=Direction.PUSH,
        trigger=Trigger.EVENT,
        outcome=SyncLogEntry.Outcome.CREATED,
        bitrix24_id=8,
    )

    stored = sync_log_write_many([failed, created])

    assert all(entry.pk for entry in stored)
    message = SyncLogEntry.objects.get(pk=failed.pk).message
    assert TOKEN not in message and "[redacted]" in message
    states = dict(InvoiceOutcome.objects.filter(portal=portal).values_list("bitrix24_id", "state"))
    assert states == {7: InvoiceOutcome.State.FAILED, 8: InvoiceOutcome.State.ON_XERO}
    assert InvoiceOutcome.objects.get(portal=portal, bitrix24_id=7).log_entry_id == failed.pk


def test_a_batch_that_fails_after_its_echoes_were_written_is_done_row_by_row_each_echo_logged_once():
    portal = linked_portal("fails.bitrix24.com")
    echoes = [xero_row(portal, xero_id, ECHO_TIMES[0]) for xero_id in XERO_IDS]
    # Its job's target is longer than the column: the batch's job INSERT fails, after the batch's
    # echo entries were inserted (and rolled back with it).
    too_long = bitrix24_row(portal, "9" * 120)
    later = [bitrix24_row(portal, "5"), xero_row(portal, XERO_IDS[1], ECHO_TIMES[1])]

    counts = inbox_process_portal(portal.pk)

    assert counts == {"done": 5, "error": 1}
    too_long.refresh_from_db()
    assert too_long.status == InboxEvent.Status.RECEIVED and "DataError" in too_long.error
    logged = SyncLogEntry.objects.filter(portal=portal, outcome=SyncLogEntry.Outcome.ECHO_DROPPED)
    assert sorted(logged.values_list("xero_id", flat=True)) == sorted([*XERO_IDS, XERO_IDS[1]])
    assert {row.pk for row in [*echoes, *later]} == set(
        InboxEvent.objects.filter(status=InboxEvent.Status.DONE).values_list("pk", flat=True)
    )
    assert list(SyncJob.objects.values_list("target", flat=True)) == ["31:5"]


# --- a batch's jobs enqueued together ----------------------------------------------------------------

OLD = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2999, 1, 1, tzinfo=UTC)  # a retry backoff not over yet


def queue_as_found(portal: Portal) -> None:
    """A background job backing off, a person's job, a running job, and nothing for "31:4"."""
    background, user = SyncJob.Priority.BACKGROUND, SyncJob.Priority.USER
    for target, priority, status, not_before in [
        ("31:1", background, SyncJob.Status.PENDING, LATER),
        ("31:2", user, SyncJob.Status.PENDING, OLD),
        ("31:3", SyncJob.Priority.EVENT, SyncJob.Status.RUNNING, OLD),
    ]:
        SyncJob.objects.create(
            portal=portal,
            kind=SyncJob.Kind.PUSH_INVOICE,
            target=target,
            trigger=Trigger.SWEEP if priority == background else Trigger.BUTTON,
            priority=priority,
            requested_by=7 if priority == user else None,
            status=status,
            not_before=not_before,
        )
    SyncJob.objects.filter(portal=portal).update(updated_at=OLD)


def queue(portal: Portal, since: datetime, until: datetime) -> list[tuple]:
    """The portal's jobs, times told as "now" (set by the enqueue), "held" or "kept" (as found)."""

    def when(value: datetime) -> str:
        return "held" if value == HELD_UNTIL else "now" if since <= value <= until else "kept"

    rows = SyncJob.objects.filter(portal=portal).order_by("target", "status")
    return [
        (
            job.target,
            job.status,
            job.priority,
            job.trigger,
            job.requested_by,
            when(job.not_before),
            when(job.updated_at),
        )
        for job in rows
    ]


TARGETS = {f"31:{n}": Trigger.EVENT for n in range(1, 5)}


@pytest.mark.parametrize("setup_saved", [True, False])
def test_jobs_enqueued_together_end_as_jobs_enqueued_one_by_one(setup_saved):
    together, one_by_one = ready_portal(domain="together.bitrix24.com"), ready_portal(domain="single.bitrix24.com")
    for portal in (together, one_by_one):
        queue_as_found(portal)
        portal.sync_settings.setup_completed = setup_saved
        portal.sync_settings.save()
    since = datetime.now(UTC)

    with CaptureQueriesContext(connection) as queries:
        ids = jobs_enqueue_for_events(
            portal=together, gate=sync_gate(together), kind=SyncJob.Kind.PUSH_INVOICE, targets=TARGETS
        )
    for target, trigger in TARGETS.items():
        jobs_enqueue_for_event(
            portal=one_by_one,
            gate=sync_gate(one_by_one),
            kind=SyncJob.Kind.PUSH_INVOICE,
            target=target,
            trigger=trigger,
        )

    until = datetime.now(UTC)
    assert queue(together, since, until) == queue(one_by_one, since, until)
    pending = SyncJob.objects.filter(portal=together, status=SyncJob.Status.PENDING)
    assert sorted(ids) == sorted(pending.values_list("pk", flat=True))
    # Locked and read, hurried, the missing inserted (+ its savepoint), held: not a few per target.
    job_statements = [q for q in queries.captured_queries if SyncJob._meta.db_table in q["sql"]]
    assert len(job_statements) <= 4, [q["sql"][:80] for q in job_statements]
    expected_new = "now" if setup_saved else "held"
    assert queue(together, since, until) == [
        ("31:1", "pending", SyncJob.Priority.EVENT, Trigger.SWEEP, None, expected_new, "now"),
        ("31:2", "pending", SyncJob.Priority.USER, Trigger.BUTTON, 7, "kept", "now"),
        ("31:3", "pending", SyncJob.Priority.EVENT, Trigger.EVENT, None, expected_new, "now"),
        ("31:3", "running", SyncJob.Priority.EVENT, Trigger.BUTTON, None, "kept", "kept"),
        ("31:4", "pending", SyncJob.Priority.EVENT, Trigger.EVENT, None, expected_new, "now"),
    ]


def test_a_target_a_concurrent_enqueue_inserts_first_gets_that_job_not_a_second_one():
    import threading

    from django.db import close_old_connections, transaction

    portal = ready_portal(domain="race.bitrix24.com")
    gate = sync_gate(portal)
    inserted, release = threading.Event(), threading.Event()
    theirs: list[int] = []

    def concurrent_enqueue() -> None:  # holds its new pending job uncommitted until released
        try:
            with transaction.atomic():
                job = jobs_enqueue_for_event(
                    portal=portal, gate=gate, kind=SyncJob.Kind.PUSH_INVOICE, target="31:1", trigger=Trigger.EVENT
                )
                theirs.append(job.pk)
                inserted.set()
                release.wait(10)
        finally:
            close_old_connections()

    other = threading.Thread(target=concurrent_enqueue)
    other.start()
    assert inserted.wait(10)
    threading.Timer(0.3, release.set).start()  # our INSERT waits on theirs, which then commits
    ids = jobs_enqueue_for_events(
        portal=portal, gate=gate, kind=SyncJob.Kind.PUSH_INVOICE, targets={"31:1": Trigger.EVENT, "31:2": Trigger.EVENT}
    )
    other.join(10)

    pending = SyncJob.objects.filter(portal=portal, status=SyncJob.Status.PENDING)
    assert sorted(pending.values_list("target", flat=True)) == ["31:1", "31:2"]
    assert theirs[0] in ids and len(ids) == 2


def test_a_batch_reads_the_gate_of_each_portal_connected_to_the_tenant_not_only_its_own():
    ready = ready_portal(domain="ready.bitrix24.com")
    waiting = ready_portal(domain="waiting.bitrix24.com")  # the same organisation, Setup not saved yet
    waiting.xero_connection.tenant_id = ready.xero_connection.tenant_id
    waiting.xero_connection.save()
    waiting.sync_settings.setup_completed = False
    waiting.sync_settings.save()
    xero_row(ready, XERO_IDS[0], NEWER)

    assert inbox_process_portal(ready.pk) == {"done": 1}

    jobs = {job.portal_id: job for job in SyncJob.objects.filter(target=XERO_IDS[0])}
    assert set(jobs) == {ready.pk, waiting.pk}
    assert jobs[ready.pk].not_before != HELD_UNTIL and jobs[waiting.pk].not_before == HELD_UNTIL
