"""Bitrix24 invoice events: verified by accounts, stored in the inbox, turned into push jobs."""

from __future__ import annotations

import time

import requests

from accounts.models import Portal, XeroConnection
from sync.models import InboxEvent, SyncJob, Trigger
from sync.services.inbox import inbox_event_process
from tests.sync.conftest import wait_for


def event_form(
    portal: Portal,
    event: str,
    *,
    invoice_id: int = 7,
    entity_type: int | None = 31,
    ts: int | None = None,
    application_token: str | None = None,
) -> dict:
    """The form Bitrix24 POSTs for an event (bitrix24-api.md §5.3), with a system (token-less) auth."""
    form = {
        "event": event,
        "event_handler_id": "3",
        "data[FIELDS][ID]": str(invoice_id),
        "ts": str(ts or int(time.time())),
        "auth[domain]": portal.domain,
        "auth[client_endpoint]": portal.client_endpoint,
        "auth[server_endpoint]": portal.server_endpoint or "https://oauth.bitrix.info/rest/",
        "auth[member_id]": portal.member_id,
        "auth[application_token]": portal.application_token if application_token is None else application_token,
    }
    if entity_type is not None:
        form["data[FIELDS][ENTITY_TYPE_ID]"] = str(entity_type)
    return form


def post_event(app_url: str, form: dict) -> requests.Response:
    return requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=10)


def test_an_invoice_created_by_a_user_ends_as_a_done_inbox_event_and_a_push_job(b24, acme_xero, worker):
    invoice_id = b24.create_invoice("Spring catalogue order")

    added = wait_for(
        lambda: InboxEvent.objects.filter(event_type="ONCRMDYNAMICITEMADD", payload__id=invoice_id).first(),
        what="the ONCRMDYNAMICITEMADD inbox row",
    )
    assert added.portal_id == acme_xero.portal_id and added.source == "bitrix24"
    assert "access_token" not in str(added.payload)
    wait_for(
        lambda: not InboxEvent.objects.exclude(status=InboxEvent.Status.DONE).exists(),
        what="every inbox row to be processed by the worker",
    )
    jobs = SyncJob.objects.filter(portal=acme_xero.portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{invoice_id}")
    assert jobs.exists() and {job.trigger for job in jobs} == {Trigger.EVENT}


def test_the_same_event_delivered_three_times_is_stored_once_and_makes_one_job(acme_xero, app_url):
    form = event_form(acme_xero.portal, "ONCRMDYNAMICITEMUPDATE", invoice_id=24, ts=1723538517)
    answers = [post_event(app_url, form) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    row = InboxEvent.objects.get()
    assert row.event_type == "ONCRMDYNAMICITEMUPDATE" and row.status == InboxEvent.Status.RECEIVED
    assert inbox_event_process(row.pk) == InboxEvent.Status.DONE
    assert inbox_event_process(row.pk) == "skipped"
    job = SyncJob.objects.get()
    assert (job.kind, job.target, job.status) == (SyncJob.Kind.PUSH_INVOICE, "31:24", SyncJob.Status.PENDING)


def test_two_different_updates_of_one_invoice_coalesce_into_one_pending_job(acme_xero, app_url):
    for ts in (1723538517, 1723538518):
        assert post_event(app_url, event_form(acme_xero.portal, "ONCRMDYNAMICITEMUPDATE", ts=ts)).status_code == 200
    for row in InboxEvent.objects.all():
        inbox_event_process(row.pk)

    assert InboxEvent.objects.filter(status=InboxEvent.Status.DONE).count() == 2
    assert SyncJob.objects.filter(target="31:7", status=SyncJob.Status.PENDING).count() == 1


def test_a_forged_application_token_is_refused_and_nothing_is_stored(acme_xero, app_url):
    answer = post_event(app_url, event_form(acme_xero.portal, "ONCRMDYNAMICITEMADD", application_token="forged"))

    assert answer.status_code == 401
    assert not InboxEvent.objects.exists() and not SyncJob.objects.exists()


def test_a_malformed_event_is_refused_with_400_and_nothing_is_stored(acme_xero, app_url):
    without_auth = {k: v for k, v in event_form(acme_xero.portal, "ONCRMDYNAMICITEMADD").items() if "auth" not in k}
    without_id = event_form(acme_xero.portal, "ONCRMDYNAMICITEMADD")
    del without_id["data[FIELDS][ID]"]
    clashing = event_form(acme_xero.portal, "ONCRMDYNAMICITEMADD") | {"data[FIELDS]": "x"}

    assert [post_event(app_url, form).status_code for form in (without_auth, without_id, clashing)] == [400] * 3
    assert not InboxEvent.objects.exists()


def test_an_event_about_another_smart_process_is_ignored(acme_xero, app_url):
    answer = post_event(app_url, event_form(acme_xero.portal, "ONCRMDYNAMICITEMADD", entity_type=1038))

    assert answer.status_code == 200
    assert not InboxEvent.objects.exists()


def test_a_deleted_invoice_is_recorded_and_processed_without_a_job(acme_xero, app_url):
    post_event(app_url, event_form(acme_xero.portal, "ONCRMDYNAMICITEMDELETE", invoice_id=9))
    row = InboxEvent.objects.get()

    assert inbox_event_process(row.pk) == InboxEvent.Status.DONE
    assert "Xero left unchanged" in InboxEvent.objects.get().error
    assert not SyncJob.objects.exists()


def test_a_classic_invoice_event_makes_a_job_for_entity_type_5(acme_xero, app_url):
    post_event(app_url, event_form(acme_xero.portal, "ONCRMINVOICESETSTATUS", invoice_id=12, entity_type=None))
    inbox_event_process(InboxEvent.objects.get().pk)

    assert SyncJob.objects.get().target == "5:12"


def test_events_of_a_portal_without_xero_are_kept_but_make_no_job(acme, app_url):
    post_event(app_url, event_form(acme, "ONCRMDYNAMICITEMUPDATE"))
    row = InboxEvent.objects.get()

    assert inbox_event_process(row.pk) == InboxEvent.Status.IGNORED
    assert "no Xero connection" in InboxEvent.objects.get().error
    assert not SyncJob.objects.exists()


def test_events_while_xero_needs_reconnection_are_queued_to_wait(acme_xero, app_url):
    XeroConnection.objects.filter(pk=acme_xero.pk).update(status=XeroConnection.Status.NEEDS_RECONNECT)
    post_event(app_url, event_form(acme_xero.portal, "ONCRMDYNAMICITEMUPDATE", invoice_id=21))

    assert inbox_event_process(InboxEvent.objects.get().pk) == InboxEvent.Status.DONE
    assert SyncJob.objects.get().status == SyncJob.Status.PENDING  # resumes after reconnecting


def test_events_after_the_admin_disconnected_xero_make_no_job(acme_xero, app_url):
    XeroConnection.objects.filter(pk=acme_xero.pk).update(status=XeroConnection.Status.DISCONNECTED)
    post_event(app_url, event_form(acme_xero.portal, "ONCRMDYNAMICITEMUPDATE", invoice_id=22))

    assert inbox_event_process(InboxEvent.objects.get().pk) == InboxEvent.Status.IGNORED
    assert not SyncJob.objects.exists()
