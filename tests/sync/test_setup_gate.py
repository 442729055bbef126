"""Nothing syncs automatically before Setup is saved (issue 12): events are kept as held jobs, an
admin's button still works, saving Setup releases them. One question decides: sync.services.gate."""

from __future__ import annotations

from accounts.models import Portal, XeroConnection
from sync.models import InboxEvent, SyncJob, SyncSettings
from sync.services.gate import (
    GateState,
    invoices_waiting_for_setup,
    jobs_release_held,
    sync_gate,
)
from sync.services.inbox import inbox_event_process
from sync.services.jobs import job_enqueue, jobs_claim, portal_sync_blocker
from tests.factories import XeroConnectionFactory
from tests.sync.test_inbox_bitrix24 import event_form, post_event


def _event(app_url, portal: Portal, invoice_id: int) -> InboxEvent:
    assert post_event(app_url, event_form(portal, "ONCRMDYNAMICITEMUPDATE", invoice_id=invoice_id)).status_code == 200
    event = InboxEvent.objects.filter(payload__id=invoice_id).latest("pk")
    inbox_event_process(event.pk)
    event.refresh_from_db()
    return event


def test_before_setup_events_are_held_an_admin_click_goes_and_saving_setup_releases_the_rest(acme, app_url):
    from accounts.services.sandbox import sandbox_connect_xero

    sandbox_connect_xero(portal=acme)
    gate = sync_gate(acme)
    assert gate.state == GateState.SETUP_PENDING and not gate.automatic and gate.jobs_may_run
    assert gate.buttons_for(is_admin=True) and not gate.buttons_for(is_admin=False)
    assert "Setup" in portal_sync_blocker(acme)  # the sweeps skip the portal

    for invoice_id in (11, 12, 13):
        assert _event(app_url, acme, invoice_id).status == InboxEvent.Status.DONE
    assert invoices_waiting_for_setup(acme) == 3
    assert jobs_claim(portal_id=acme.pk, kind=SyncJob.Kind.PUSH_INVOICE) == []  # held: not due

    # An admin's "Create / Edit on Xero" on one of them hurries that job to now.
    job_enqueue(
        portal=acme, kind=SyncJob.Kind.PUSH_INVOICE, target="31:12", trigger="button", priority=SyncJob.Priority.USER
    )
    assert invoices_waiting_for_setup(acme) == 2
    assert [job.target for job in jobs_claim(portal_id=acme.pk, kind=SyncJob.Kind.PUSH_INVOICE)] == ["31:12"]

    SyncSettings.objects.update_or_create(portal=acme, defaults={"setup_completed": True})
    assert jobs_release_held(acme) == 2
    assert invoices_waiting_for_setup(acme) == 0
    assert sync_gate(acme).ready and portal_sync_blocker(acme) == ""
    claimed = jobs_claim(portal_id=acme.pk, kind=SyncJob.Kind.PUSH_INVOICE)
    assert sorted(job.target for job in claimed) == ["31:11", "31:13"]

    # After Setup, an event makes a due job at once.
    _event(app_url, acme, 14)
    assert invoices_waiting_for_setup(acme) == 0
    assert [job.target for job in jobs_claim(portal_id=acme.pk, kind=SyncJob.Kind.PUSH_INVOICE)] == ["31:14"]


def test_the_gate_names_the_most_fundamental_problem_first(acme):
    assert sync_gate(acme).state == GateState.NO_XERO and not sync_gate(acme).keeps_events
    connection = XeroConnectionFactory(portal=acme, tenant_id="t-1", tenant_name="Acme Ltd")
    SyncSettings.objects.update_or_create(portal=acme, defaults={"setup_completed": True})
    assert sync_gate(acme).ready
    connection.status = XeroConnection.Status.NEEDS_RECONNECT
    connection.save()
    gate = sync_gate(acme)
    assert gate.state == GateState.XERO_RECONNECT and gate.keeps_events and not gate.jobs_may_run
    acme.status = Portal.Status.UNINSTALLED
    acme.save()
    assert sync_gate(acme).state == GateState.UNINSTALLED
