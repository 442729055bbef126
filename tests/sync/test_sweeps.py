"""The safety nets: stuck inbox rows and jobs are picked up again; the Bitrix24 sweep finds changes
whose event never arrived, and its watermark advances with an overlap."""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.bitrix24.client import Bitrix24Client
from sync.models import InboxEvent, Source, SyncJob, SyncSettings, Trigger
from sync.services.jobs import jobs_enqueue_bitrix24_changes, jobs_requeue_stuck
from sync.tasks.sweeps import (
    sweep_bitrix24_changes_task,
    sweep_stuck_task,
    sweep_xero_changes_task,
    tokens_keepalive_task,
)
from tests.factories import InboxEventFactory, SyncJobFactory
from tests.sync.conftest import queued_tasks, setup_done, wait_for

PUSH = SyncJob.Kind.PUSH_INVOICE


def stored_without_dispatch(portal, invoice_id: int, *, received_ago_s: float = 60, **fields) -> InboxEvent:
    """An inbox row whose on_commit send was lost (the process died after the commit)."""
    return InboxEventFactory(
        portal=portal,
        source=Source.BITRIX24,
        dedupe_key=f"lost:{invoice_id}",
        event_type="ONCRMDYNAMICITEMUPDATE",
        payload={"event": "ONCRMDYNAMICITEMUPDATE", "entity_type_id": 31, "id": invoice_id},
        received_at=timezone.now() - timedelta(seconds=received_ago_s),
        **fields,
    )


def test_inbox_rows_whose_send_was_lost_are_processed_after_the_sweep(acme_xero, worker):
    lost = stored_without_dispatch(acme_xero.portal, 41)
    died = stored_without_dispatch(
        acme_xero.portal,
        42,
        status=InboxEvent.Status.PROCESSING,
        attempts=1,
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    fresh = stored_without_dispatch(acme_xero.portal, 43, received_ago_s=0)

    result = sweep_stuck_task()

    assert result["inbox"] == 2  # the fresh row may still be on its way: left alone
    for row in (lost, died):
        wait_for(lambda row=row: InboxEvent.objects.get(pk=row.pk).status == InboxEvent.Status.DONE, what="done")
    assert set(SyncJob.objects.filter(kind=PUSH).values_list("target", flat=True)) >= {"31:41", "31:42"}
    assert InboxEvent.objects.get(pk=fresh.pk).status == InboxEvent.Status.RECEIVED


def test_due_pending_jobs_nobody_dispatched_are_dispatched_by_the_sweep(lone_portal):
    # Inserted without job_enqueue: as if the dispatch after commit never happened.
    SyncJobFactory(
        portal=lone_portal,
        kind=PUSH,
        target="31:1",
        trigger=Trigger.EVENT,
        not_before=timezone.now() - timedelta(minutes=1),
    )
    SyncJobFactory(
        portal=lone_portal,
        kind=SyncJob.Kind.PULL_STATUS,
        target="inv-1",
        trigger=Trigger.WEBHOOK,
        not_before=timezone.now() + timedelta(minutes=5),  # backing off: not due
    )

    assert jobs_requeue_stuck()["dispatched"] == 1
    assert [(m["task"], m["argsrepr"]) for m in queued_tasks()] == [
        ("sync.tasks.push.push_invoices_task", f"[{lone_portal.pk}]")
    ]


def test_jobs_running_past_their_lease_go_back_to_pending_with_their_attempts_and_are_dispatched(lone_portal):
    expired = timezone.now() - timedelta(seconds=1)
    dead = SyncJobFactory(
        portal=lone_portal,
        kind=PUSH,
        target="31:1",
        trigger=Trigger.EVENT,
        status="running",
        attempts=2,
        lease_until=expired,
    )
    # A second dead job whose invoice already has a newer pending job: merged into that one.
    SyncJobFactory(
        portal=lone_portal,
        kind=PUSH,
        target="31:2",
        trigger=Trigger.EVENT,
        status="running",
        attempts=1,
        lease_until=expired,
    )
    newer = SyncJobFactory(portal=lone_portal, kind=PUSH, target="31:2", trigger=Trigger.EVENT)
    alive = SyncJobFactory(
        portal=lone_portal,
        kind=PUSH,
        target="31:3",
        trigger=Trigger.EVENT,
        status="running",
        attempts=1,
        lease_until=timezone.now() + timedelta(minutes=2),
    )

    outcome = jobs_requeue_stuck()

    assert (outcome["released"], outcome["merged"], outcome["dispatched"]) == (1, 1, 1)
    dead.refresh_from_db()
    assert (dead.status, dead.attempts, dead.lease_until) == (SyncJob.Status.PENDING, 2, None)
    assert SyncJob.objects.get(pk=newer.pk).status == SyncJob.Status.PENDING
    assert SyncJob.objects.get(pk=alive.pk).status == SyncJob.Status.RUNNING
    assert len(queued_tasks()) == 1


def unbind_invoice_events(portal, app_url: str) -> None:
    """Bitrix24 stops calling us (as when the handler URL was unreachable: it never retries)."""
    client = Bitrix24Client(portal)
    for event in ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE"):
        client.result("event.unbind", {"event": event, "handler": f"{app_url}/bitrix24/events/"})


def test_the_bitrix24_sweep_finds_an_invoice_whose_event_never_arrived(acme_xero, b24, app_url):
    portal = acme_xero.portal
    unbind_invoice_events(portal, app_url)
    time.sleep(1.1)  # updatedTime has whole seconds: be clearly later than the connection
    invoice_id = b24.create_invoice("Restock: camping stoves")
    time.sleep(0.3)
    assert not InboxEvent.objects.exists()

    assert jobs_enqueue_bitrix24_changes(portal=portal) == 1

    job = SyncJob.objects.get()
    assert (job.kind, job.target, job.trigger, job.priority) == (
        PUSH,
        f"31:{invoice_id}",
        Trigger.SWEEP,
        SyncJob.Priority.BACKGROUND,
    )
    updated = parse_datetime(b24.call("crm.item.get", {"entityTypeId": 31, "id": invoice_id})["item"]["updatedTime"])
    assert SyncSettings.objects.get(portal=portal).bitrix24_updated_since == updated


def test_the_watermark_advances_and_the_next_pass_rereads_only_an_overlap(acme_xero, b24, app_url):
    portal = acme_xero.portal
    unbind_invoice_events(portal, app_url)
    invoice_id = b24.create_invoice()
    jobs_enqueue_bitrix24_changes(portal=portal)
    mark = SyncSettings.objects.get(portal=portal).bitrix24_updated_since

    # Within the 2-minute overlap the invoice is read again; the waiting job absorbs it.
    SyncSettings.objects.filter(portal=portal).update(bitrix24_updated_since=mark + timedelta(seconds=90))
    assert jobs_enqueue_bitrix24_changes(portal=portal) == 1
    assert SyncJob.objects.filter(target=f"31:{invoice_id}").count() == 1
    # Past the overlap it is not, and the mark never moves back.
    SyncSettings.objects.filter(portal=portal).update(bitrix24_updated_since=mark + timedelta(minutes=3))
    assert jobs_enqueue_bitrix24_changes(portal=portal) == 0
    assert SyncSettings.objects.get(portal=portal).bitrix24_updated_since == mark + timedelta(minutes=3)


def test_invoices_older_than_the_xero_connection_are_not_swept_in(acme, b24, app_url):
    unbind_invoice_events(acme, app_url)
    b24.create_invoice("Before Xero was connected")
    time.sleep(1.1)  # updatedTime has whole seconds
    from accounts.services.sandbox import sandbox_connect_xero

    connection = sandbox_connect_xero(portal=acme)
    setup_done(acme)
    type(connection).objects.filter(pk=connection.pk).update(connected_at=timezone.now() + timedelta(minutes=3))

    assert jobs_enqueue_bitrix24_changes(portal=acme) == 0


def test_the_sweep_skips_portals_that_cannot_sync(acme):
    assert sweep_bitrix24_changes_task() == 0  # installed, but Xero was never connected
    assert not SyncJob.objects.exists()


def test_the_xero_sweep_asks_the_pull_engine_for_each_connected_portal(lone_portal, acme):
    assert sweep_xero_changes_task() == 1  # acme has no Xero connection: skipped

    assert [(m["task"], m["argsrepr"]) for m in queued_tasks()] == [
        ("sync.tasks.pull.pull_recent_task", f"[{lone_portal.pk}, 'sweep']")
    ]


def test_idle_tokens_are_refreshed_and_connections_needing_the_user_are_left_alone(acme_xero, settings):
    portal = acme_xero.portal
    long_ago = timezone.now() - timedelta(days=3)
    type(portal).objects.filter(pk=portal.pk).update(token_expires_at=long_ago)
    type(acme_xero).objects.filter(pk=acme_xero.pk).update(token_expires_at=long_ago)

    assert tokens_keepalive_task() == 2

    portal.refresh_from_db()
    acme_xero.refresh_from_db()
    assert portal.token_expires_at > timezone.now() and acme_xero.token_expires_at > timezone.now()
    type(acme_xero).objects.filter(pk=acme_xero.pk).update(
        token_expires_at=long_ago, status=type(acme_xero).Status.NEEDS_RECONNECT
    )
    assert tokens_keepalive_task() == 0
