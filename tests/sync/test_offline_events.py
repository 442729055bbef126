"""Bitrix24 offline events (docs/bitrix24-api.md §5.4): bound at install where the plan has
`rest_offline_extended`, drained into push jobs by reservation (get clear=0 -> jobs -> clear).

Real sandbox portal, our live server installed into it, no worker: the online events reach our
inbox but nothing turns them into jobs here, so every SyncJob in these tests comes from the drain.
"""

from __future__ import annotations

import pytest
import requests

from accounts.models import Portal
from accounts.services.sandbox import sandbox_connect_xero
from connector.settings import CELERY_BEAT_SCHEDULE
from sync.models import SyncJob, Trigger
from sync.services.offline_events import offline_events_drain, offline_events_reserve
from sync.tasks.sweeps import offline_events_drain_task
from tests.sync.conftest import queued_tasks, setup_done, wait_for

OFFLINE_EVENTS = {"ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE"}


def set_offline_feature(sandbox, on: bool) -> None:
    body = {"features": {"rest_offline_extended": on}}
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json=body, timeout=10).raise_for_status()


def install(sandbox, app_url: str) -> Portal:
    installed = sandbox.bitrix24_install(
        app_url=f"{app_url}/bitrix24/app/",
        install_url=f"{app_url}/bitrix24/install/",
        event_url=f"{app_url}/bitrix24/events/",
    )
    assert installed["install_status"] == 200, installed
    return Portal.objects.get(member_id=installed["member_id"])


def offline_bindings(sandbox) -> list[str]:
    return sorted(b["event"] for b in sandbox.state()["bitrix24"]["app"]["bindings"] if b["offline"])


def queue(sandbox) -> list[dict]:
    return sandbox.state()["bitrix24"]["app"]["offline_events"]


def queued_invoices(sandbox) -> set[int]:
    return {int(r["EVENT_DATA"]["FIELDS"]["ID"]) for r in queue(sandbox)}


def push_jobs(portal: Portal) -> list[tuple[str, str]]:
    return sorted(
        SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE).values_list("target", "trigger")
    )


@pytest.fixture
def offline_acme(sandbox, app_url) -> Portal:
    """acme on a plan with rest_offline_extended, Xero connected."""
    set_offline_feature(sandbox, True)
    portal = install(sandbox, app_url)
    assert sandbox_connect_xero(portal=portal).is_active
    setup_done(portal)
    return portal


def test_with_the_feature_install_binds_the_invoice_events_offline_once(sandbox, app_url, offline_acme):
    assert offline_acme.offline_events is True
    assert offline_bindings(sandbox) == sorted(OFFLINE_EVENTS)
    # The online handlers are still there: offline events come on top of them.
    online = {b["event"] for b in sandbox.state()["bitrix24"]["app"]["bindings"] if not b["offline"]}
    assert online >= OFFLINE_EVENTS

    again = install(sandbox, app_url)
    assert again.pk == offline_acme.pk and again.offline_events is True
    assert offline_bindings(sandbox) == sorted(OFFLINE_EVENTS)


def test_invoices_changed_by_a_user_become_one_job_each_and_leave_the_queue(sandbox, offline_acme, b24):
    first = b24.create_invoice("Winter order")
    second = b24.create_invoice("Summer order")
    b24.update_invoice(first, title="Winter order (revised)")
    wait_for(lambda: queued_invoices(sandbox) == {first, second}, what="the offline queue")
    records = len(queue(sandbox))
    assert records == 4  # ADD and UPDATE of each: the latest per object, not one per change
    assert push_jobs(offline_acme) == []

    assert offline_events_drain(portal=Portal.objects.get(pk=offline_acme.pk)) == records
    assert push_jobs(offline_acme) == [(f"31:{first}", Trigger.EVENT), (f"31:{second}", Trigger.EVENT)]
    assert queue(sandbox) == []
    assert Portal.objects.get(pk=offline_acme.pk).offline_process_id == ""

    assert offline_events_drain(portal=Portal.objects.get(pk=offline_acme.pk)) == 0
    assert len(push_jobs(offline_acme)) == 2


def test_the_drain_reports_how_many_records_it_handled(sandbox, offline_acme, b24):
    invoice = b24.create_invoice()
    wait_for(lambda: len(queue(sandbox)) == 2, what="ADD and UPDATE records")  # add, then product rows
    assert offline_events_drain(portal=offline_acme) == 2
    assert push_jobs(offline_acme) == [(f"31:{invoice}", Trigger.EVENT)]


def test_a_batch_reserved_by_a_drain_that_died_is_read_again_and_makes_one_job(sandbox, offline_acme, b24):
    invoice = b24.create_invoice()
    wait_for(lambda: len(queue(sandbox)) == 2, what="the offline queue")

    # The drain reserved a batch and died before making jobs or clearing anything.
    batch = offline_events_reserve(portal=offline_acme)
    assert {int(r["EVENT_DATA"]["FIELDS"]["ID"]) for r in batch["events"]} == {invoice}
    assert Portal.objects.get(pk=offline_acme.pk).offline_process_id == batch["process_id"]
    assert all(r["PROCESS_ID"] == batch["process_id"] for r in queue(sandbox))
    # A change while the batch is reserved makes a new record, which a plain get would see.
    b24.update_invoice(invoice, title="Changed while reserved")
    wait_for(lambda: len(queue(sandbox)) == 3, what="the new record")

    assert offline_events_drain(portal=Portal.objects.get(pk=offline_acme.pk)) == 3
    assert push_jobs(offline_acme) == [(f"31:{invoice}", Trigger.EVENT)]
    assert queue(sandbox) == []  # the reserved batch was cleared too, not left for 30 days
    assert Portal.objects.get(pk=offline_acme.pk).offline_process_id == ""


def test_records_seen_twice_still_make_one_pending_job(sandbox, offline_acme, b24):
    invoice = b24.create_invoice()
    wait_for(lambda: len(queue(sandbox)) == 2, what="the offline queue")
    offline_events_drain(portal=offline_acme)
    b24.update_invoice(invoice, title="Again")
    wait_for(lambda: len(queue(sandbox)) == 1, what="the next change")
    offline_events_drain(portal=offline_acme)
    assert SyncJob.objects.filter(portal=offline_acme, status=SyncJob.Status.PENDING).count() == 1
    assert queue(sandbox) == []


def test_other_entity_types_are_acknowledged_and_malformed_records_marked_as_errors(sandbox, offline_acme):
    emit = f"{sandbox.base_url}/_sandbox/bitrix24/emit"
    for data in ({"FIELDS": {"ID": 7, "ENTITY_TYPE_ID": 128}}, {"FIELDS": {"ENTITY_TYPE_ID": 31}}):
        body = {"event": "ONCRMDYNAMICITEMUPDATE", "data": data, "user": 1}
        requests.post(emit, json=body, timeout=10).raise_for_status()
    wait_for(lambda: len(queue(sandbox)) == 2, what="two records")

    assert offline_events_drain(portal=offline_acme) == 1
    assert push_jobs(offline_acme) == []
    [left] = queue(sandbox)
    assert left["ERROR"] == 1 and left["EVENT_DATA"] == {"FIELDS": {"ENTITY_TYPE_ID": 31}}
    assert offline_events_drain(portal=offline_acme) == 0  # error records are not read again


def test_the_beat_task_drains_portals_with_offline_events(sandbox, offline_acme, b24):
    assert CELERY_BEAT_SCHEDULE["offline-events-drain"]["task"] == offline_events_drain_task.name
    invoice = b24.create_invoice()
    wait_for(lambda: len(queue(sandbox)) == 2, what="the offline queue")
    assert offline_events_drain_task(offline_acme.pk) == 2
    assert push_jobs(offline_acme) == [(f"31:{invoice}", Trigger.EVENT)]

    # The beat run itself fans out: one task per portal with offline events on.
    assert offline_events_drain_task() == 1
    sent = [t["argsrepr"] for t in queued_tasks() if t["task"] == offline_events_drain_task.name]
    assert sent == [f"({offline_acme.pk},)"]


def test_without_the_feature_install_binds_no_offline_events_and_the_drain_does_nothing(sandbox, acme, acme_xero, b24):
    assert acme.offline_events is False
    assert offline_bindings(sandbox) == []
    b24.create_invoice()
    assert offline_events_drain(portal=acme) == 0
    assert offline_events_drain_task(acme.pk) == 0
    assert offline_events_drain_task() == 0  # no portal to fan out to
    assert push_jobs(acme) == []


def test_a_plan_that_lost_the_feature_gets_its_offline_bindings_removed_on_reinstall(sandbox, app_url, offline_acme):
    assert offline_bindings(sandbox) == sorted(OFFLINE_EVENTS)
    set_offline_feature(sandbox, False)
    again = install(sandbox, app_url)
    assert again.offline_events is False
    assert offline_bindings(sandbox) == []
