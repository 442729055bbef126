"""push_invoices_task, the processor of a portal's push jobs, run in this process against the
sandbox (no worker), and how big its passes are: how many passes a slice makes decides what one
change costs a busy pool, how big they are how long a backlog holds a worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sync.models import SyncJob, SyncSettings, Trigger
from sync.services.jobs import job_enqueue
from sync.services.push.pipeline import CLAIM_LIMIT, OTHERS_ACTIVE_S, SHARED_CLAIM_LIMIT, claim_limit
from sync.services.stages import stage_map_refresh
from sync.tasks.push import push_invoices_task
from tests.sync.test_push_service import company, invoice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(acme, acme_xero, settings):
    settings.PUSH_QUIET_S = 0  # the debounce is not what is tested here
    stage_map_refresh(portal=acme)
    SyncSettings.objects.filter(portal=acme).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    return acme


def test_a_slice_that_took_everything_due_ends_after_one_pass(portal, sandbox):
    from integrations.bitrix24.client import Bitrix24Client

    client = Bitrix24Client(portal)
    invoice_id = invoice(client, company(client, "One Change Ltd"), [("Socks", "23.00", 2, 15)])
    job_enqueue(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{invoice_id}", trigger=Trigger.EVENT)

    totals = push_invoices_task(portal.pk)

    # One pass claimed the one due job and pushed it; a second, empty pass would only have cost
    # its setup (the next change has a dispatch of its own).
    assert (totals["claimed"], totals["created"], totals["passes"]) == (1, 1, 1)
    assert SyncJob.objects.get(target=f"31:{invoice_id}").status == SyncJob.Status.DONE


def _other_portal_job(status: str, due_s_ago: float) -> None:
    from tests.factories import PortalFactory

    SyncJob.objects.create(
        portal=PortalFactory(),
        kind=SyncJob.Kind.PUSH_INVOICE,
        target="31:7",
        trigger=Trigger.EVENT,
        status=status,
        not_before=timezone.now() - timedelta(seconds=due_s_ago),
    )


def test_a_backlog_takes_short_passes_while_another_portal_pushes_every_few_seconds(lone_portal):
    # The other portal's change was pushed 5 s ago and its next is not due yet: nothing of it is
    # waiting at this moment, but it is active, and a 1,000-invoice pass would hold a worker ~50 s.
    _other_portal_job(SyncJob.Status.DONE, due_s_ago=5)

    assert claim_limit(lone_portal.pk) == SHARED_CLAIM_LIMIT


def test_a_portal_alone_takes_full_passes(lone_portal):
    _other_portal_job(SyncJob.Status.DONE, due_s_ago=OTHERS_ACTIVE_S + 60)  # long quiet
    SyncJob.objects.create(
        portal=lone_portal, kind=SyncJob.Kind.PUSH_INVOICE, target="31:1", trigger=Trigger.EVENT
    )  # its own work never counts

    assert claim_limit(lone_portal.pk) == CLAIM_LIMIT


def test_a_backlog_in_short_passes_asks_the_xero_minute_for_the_room_of_a_short_pass(lone_portal):
    from integrations.common.throttle import xero_slot
    from sync.tasks.push import ROOM_WAIT_S, _room_wait

    SyncJob.objects.bulk_create(
        SyncJob(portal=lone_portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{n}", trigger=Trigger.BUTTON)
        for n in range(1, CLAIM_LIMIT + 1)
    )
    tenant = lone_portal.xero_connection.tenant_id
    for _ in range(50):  # 50 of the tenant's 60 calls of this minute used
        with xero_slot(tenant):
            pass

    # Alone, its next pass takes CLAIM_LIMIT invoices (~24 calls): it waits for the minute to pass.
    assert _room_wait(lone_portal.pk, tenant) > ROOM_WAIT_S
    # Beside another portal's pushes it takes SHARED_CLAIM_LIMIT (~5 calls): those fit now, so the
    # backfill goes on using its tenant's minute instead of giving a third of it away.
    _other_portal_job(SyncJob.Status.DONE, due_s_ago=5)
    assert _room_wait(lone_portal.pk, tenant) == 0


def test_a_backlog_waiting_for_the_xero_minute_comes_back_when_there_is_room_not_seconds_later(lone_portal, settings):
    """The deferred dispatch is due within a quarter second of the room, not rounded up to the
    retry bucket (5 s): a backfill defers once a minute, and every rounded-up second was budget
    its tenant left unused."""
    import time as clock
    from datetime import datetime

    from integrations.common.throttle import xero_slot
    from sync.tasks.push import PUSH_TASK, ROOM_BUCKET_S, ROOM_WAIT_S
    from tests.sync.conftest import queued_tasks

    settings.PUSH_QUIET_S = 0
    SyncJob.objects.bulk_create(
        SyncJob(portal=lone_portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{n}", trigger=Trigger.BUTTON)
        for n in range(1, CLAIM_LIMIT + 1)
    )
    for _ in range(50):
        with xero_slot(lone_portal.xero_connection.tenant_id):
            pass

    asked = clock.time()
    deferred = push_invoices_task(lone_portal.pk)["deferred_s"]

    assert deferred > ROOM_WAIT_S
    [message] = [m for m in queued_tasks() if m["task"] == PUSH_TASK]
    due = datetime.fromisoformat(message["eta"]).timestamp()
    assert asked + deferred - 0.05 <= due <= clock.time() + deferred + ROOM_BUCKET_S + 0.05
