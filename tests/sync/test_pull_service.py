"""statuses_pull_pending / statuses_pull_recent against the sandbox (real HTTP, PostgreSQL, Redis).

The invoices here are linked the way the push engine leaves them after creating a Xero invoice: the
link knows the Xero InvoiceID, the Bitrix24 stage and status it synced, and the pull fingerprint of
that state. The services are called directly; the worker-driven paths are in test_pull_e2e.py.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator

import pytest
from django.utils import timezone

from accounts.models import Portal
from integrations.bitrix24.client import Bitrix24Client
from sync.mappers.canonical import invoice_pull_fingerprint
from sync.models import InvoiceLink, SyncJob, SyncLogEntry, SyncSettings, Trigger, XeroStatusMapping
from sync.services.buttons_pull import statuses_pull_request
from sync.services.jobs import job_enqueue
from sync.services.pull import statuses_pull_pending, statuses_pull_recent
from sync.services.stages import stage_map_refresh
from tests.factories import InvoiceLinkFactory

NEW, SENT, PAID, DECLINED = "DT31_3:N", "DT31_3:S", "DT31_3:P", "DT31_3:D"


# --- personas --------------------------------------------------------------------------------------


@pytest.fixture
def portal(acme, acme_xero, sandbox) -> Iterator[Portal]:
    """acme (tests/sync/conftest.py) with Xero connected and the default stage map: AUTHORISED ->
    Sent to client, PAID -> Paid, VOIDED -> Declined."""
    stage_map_refresh(portal=acme)
    yield acme
    events_drained(sandbox)


def events_drained(sandbox, *, quiet_s: float = 0.3, timeout: float = 10) -> None:
    """Wait until the sandbox has delivered the Bitrix24 events our writes raised. They reach the
    live server a little after the write; one still arriving while the test database is flushed
    deadlocks the flush."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(sandbox.state()["bitrix24"]["app"]["deliveries"])
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)


def linked_invoices(sandbox, portal: Portal, count: int, *, stage: str = SENT, rows: bool = False) -> list[InvoiceLink]:
    """`count` invoices on both sides (AUTHORISED in Xero, on `stage` in Bitrix24), linked as the
    push engine links them; built in one Bitrix24 batch and one sandbox bulk call. `rows` gives each
    Bitrix24 invoice the product row its Xero line carries (one more batch): end-to-end tests need
    it, since a stage move fires an event and a fresh row-less invoice would wait for rows."""
    client = Bitrix24Client(portal)
    added = client.batch_all(
        {
            f"a{i}": ("crm.item.add", {"entityTypeId": 31, "fields": {"title": f"Pull test {i}", "stageId": stage}})
            for i in range(count)
        }
    )
    bitrix24_ids = [added.value(f"a{i}")["item"]["id"] for i in range(count)]
    if rows:
        client.batch_all(
            {
                f"r{i}": (
                    "crm.item.productrow.set",
                    {
                        "ownerType": "SI",
                        "ownerId": bitrix24_id,
                        "productRows": [{"productName": "Socks", "price": 100, "quantity": 1}],
                    },
                )
                for i, bitrix24_id in enumerate(bitrix24_ids)
            }
        )
    created = sandbox._call(
        "POST",
        "/_sandbox/xero/invoices",
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"Name": "Kauri Coast Outfitters Ltd"},
                    "Status": "AUTHORISED",
                    "LineItems": [{"Description": "Socks", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}],
                }
                for _ in range(count)
            ]
        },
    )
    assert created["failed"] == 0, created
    # Built by the factory, saved in one INSERT (up to 60 links at once).
    return InvoiceLink.objects.bulk_create(
        InvoiceLinkFactory.build(
            portal=portal,
            bitrix24_id=bitrix24_id,
            xero_invoice_id=row["InvoiceID"],
            xero_invoice_number=row["InvoiceNumber"],
            last_xero_status="AUTHORISED",
            last_bitrix24_stage_id=stage,
            last_pulled_hash=invoice_pull_fingerprint("AUTHORISED", 0, stage_id=stage),
        )
        for bitrix24_id, row in zip(bitrix24_ids, created["Invoices"], strict=True)
    )


def webhook_job(portal: Portal, link_or_id) -> SyncJob:
    target = str(link_or_id.xero_invoice_id if isinstance(link_or_id, InvoiceLink) else link_or_id)
    return job_enqueue(portal=portal, kind=SyncJob.Kind.PULL_STATUS, target=target, trigger=Trigger.WEBHOOK)


def stage_of(portal: Portal, link: InvoiceLink) -> str:
    return Bitrix24Client(portal).result("crm.item.get", {"entityTypeId": 31, "id": link.bitrix24_id})["item"][
        "stageId"
    ]


def api_calls(sandbox, since: int) -> tuple[list[dict], list[dict]]:
    """(Xero Accounting API calls, Bitrix24 REST calls) after call id `since`."""
    calls = sandbox.calls(since=since)
    xero = [c for c in calls if c["system"] == "xero" and not c["path"].startswith("/xero/identity")]
    bitrix24 = [c for c in calls if c["system"] == "bitrix24" and c["target"] != "token"]
    return xero, bitrix24


def last_call(sandbox) -> int:
    calls = sandbox.calls()
    return calls[-1]["id"] if calls else 0


# --- webhook jobs ----------------------------------------------------------------------------------


def test_a_payment_in_xero_moves_the_bitrix24_invoice_to_the_paid_stage(sandbox, portal):
    (link,) = linked_invoices(sandbox, portal, 1)
    amount = sandbox.xero_pay(str(link.xero_invoice_id))["invoice"]["AmountPaid"]
    job = webhook_job(portal, link)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.moved, report.failed, report.echoes) == (1, 0, 0)
    assert stage_of(portal, link) == PAID
    link.refresh_from_db()
    assert (link.last_bitrix24_stage_id, link.last_xero_status) == (PAID, "PAID")
    assert link.last_pulled_hash == invoice_pull_fingerprint("PAID", amount, stage_id=PAID)
    assert link.version == 1
    job.refresh_from_db()
    assert job.status == SyncJob.Status.DONE
    entry = SyncLogEntry.objects.get(portal=portal, outcome=SyncLogEntry.Outcome.UPDATED)
    assert entry.message == "Xero status PAID -> Bitrix24 stage Paid"
    assert (entry.direction, entry.trigger, entry.bitrix24_id) == ("pull", "webhook", str(link.bitrix24_id))


def test_an_invoice_unchanged_since_the_last_sync_is_dropped_as_an_echo_without_a_bitrix24_call(sandbox, portal):
    (link,) = linked_invoices(sandbox, portal, 1)
    webhook_job(portal, link)
    since = last_call(sandbox)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.echoes, report.moved) == (1, 0)
    xero, bitrix24 = api_calls(sandbox, since)
    assert [c["target"] for c in xero] == ["/Invoices"]
    assert bitrix24 == []
    assert SyncLogEntry.objects.filter(portal=portal, outcome=SyncLogEntry.Outcome.ECHO_DROPPED).count() == 1


def test_the_echo_of_a_push_that_stored_no_stage_is_still_recognised_by_the_stage_inside_its_fingerprint(
    sandbox, portal
):
    (link,) = linked_invoices(sandbox, portal, 1)
    InvoiceLink.objects.filter(pk=link.pk).update(last_bitrix24_stage_id="")
    webhook_job(portal, link)
    since = last_call(sandbox)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.echoes, report.moved) == (1, 0)
    assert api_calls(sandbox, since)[1] == []


def test_an_invoice_not_created_from_bitrix24_is_ignored_and_logged_once(sandbox, portal):
    stranger = uuid.uuid4()
    since = last_call(sandbox)
    for _ in range(2):
        job = webhook_job(portal, stranger)
        report = statuses_pull_pending(portal_id=portal.pk)
        assert report.unlinked == 1
        job.refresh_from_db()
        assert job.status == SyncJob.Status.DONE

    assert api_calls(sandbox, since) == ([], [])
    entries = SyncLogEntry.objects.filter(portal=portal, xero_id=str(stranger))
    assert [e.outcome for e in entries] == ["ignored_unlinked"]


def test_sixty_webhooked_invoices_take_two_xero_calls_and_two_bitrix24_batches(sandbox, portal):
    links = linked_invoices(sandbox, portal, 60)
    for link in links:
        sandbox.xero_pay(str(link.xero_invoice_id))
        webhook_job(portal, link)
    since = last_call(sandbox)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.moved, report.xero_calls, report.bitrix24_calls) == (60, 2, 2)
    xero, bitrix24 = api_calls(sandbox, since)
    assert [c["target"] for c in xero] == ["/Invoices", "/Invoices"]
    assert [c["target"] for c in bitrix24] == ["batch", "batch"]
    assert not SyncJob.objects.filter(portal=portal).exclude(status=SyncJob.Status.DONE).exists()
    assert set(InvoiceLink.objects.filter(portal=portal).values_list("last_bitrix24_stage_id", flat=True)) == {PAID}


def test_an_invoice_deleted_in_bitrix24_fails_alone_with_bitrix24s_message(sandbox, portal):
    gone, kept = linked_invoices(sandbox, portal, 2)
    Bitrix24Client(portal).result("crm.item.delete", {"entityTypeId": 31, "id": gone.bitrix24_id})
    jobs = {}
    for link in (gone, kept):
        sandbox.xero_pay(str(link.xero_invoice_id))
        jobs[link.pk] = webhook_job(portal, link)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.moved, report.failed) == (1, 1)
    failed = SyncJob.objects.get(pk=jobs[gone.pk].pk)
    assert failed.status == SyncJob.Status.FAILED
    assert failed.last_error == "Item not found"
    assert SyncJob.objects.get(pk=jobs[kept.pk].pk).status == SyncJob.Status.DONE
    gone.refresh_from_db()
    assert (gone.last_bitrix24_stage_id, gone.last_error_permanent) == (SENT, True)
    entry = SyncLogEntry.objects.get(portal=portal, outcome=SyncLogEntry.Outcome.FAILED)
    assert (entry.bitrix24_id, entry.message) == (str(gone.bitrix24_id), "Item not found")


def test_a_bitrix24_outage_sends_the_job_back_for_a_later_try_and_records_nothing(sandbox, portal):
    (link,) = linked_invoices(sandbox, portal, 1)
    sandbox.xero_pay(str(link.xero_invoice_id))
    job = webhook_job(portal, link)
    sandbox.fault("bitrix24", "POST batch", status=500, times=1)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.moved, report.failed) == (0, 1)
    job.refresh_from_db()
    assert job.status == SyncJob.Status.PENDING
    assert job.not_before > timezone.now() - dt.timedelta(seconds=1)
    assert job.last_error
    link.refresh_from_db()
    assert (link.last_bitrix24_stage_id, link.last_xero_status, link.version) == (SENT, "AUTHORISED", 0)
    assert stage_of(portal, link) == SENT


def test_jobs_wait_while_xero_is_disconnected(sandbox, portal):
    (link,) = linked_invoices(sandbox, portal, 1)
    job = webhook_job(portal, link)
    portal.xero_connection.status = "needs_reconnect"
    portal.xero_connection.save()
    since = last_call(sandbox)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert "needs reconnection" in report.skipped
    job.refresh_from_db()
    assert (job.status, job.attempts) == (SyncJob.Status.PENDING, 0)
    assert api_calls(sandbox, since) == ([], [])


def test_a_xero_status_mapped_to_no_stage_is_recorded_and_bitrix24_is_left_alone(sandbox, portal):
    XeroStatusMapping.objects.filter(portal=portal, xero_status="VOIDED").update(stage_id="")
    (link,) = linked_invoices(sandbox, portal, 1)
    sandbox._call("POST", f"/_sandbox/xero/invoices/{link.xero_invoice_id}/status", json={"status": "VOIDED"})
    webhook_job(portal, link)
    since = last_call(sandbox)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.recorded, report.moved) == (1, 0)
    assert api_calls(sandbox, since)[1] == []
    link.refresh_from_db()
    assert (link.last_xero_status, link.last_bitrix24_stage_id) == ("VOIDED", SENT)
    assert link.last_pulled_hash == invoice_pull_fingerprint("VOIDED", 0, stage_id=SENT)


# --- button and sweep ------------------------------------------------------------------------------


def test_update_from_xero_applies_the_changes_since_the_watermark_and_advances_it(sandbox, portal, settings):
    settings.XERO_PULL_OVERLAP_S = 0
    paid, voided, untouched = linked_invoices(sandbox, portal, 3)
    mark = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=1)
    SyncSettings.objects.update_or_create(portal=portal, defaults={"xero_modified_since": mark})
    # If-Modified-Since has whole seconds: let the creations fall before the mark.
    while timezone.now() < mark + dt.timedelta(milliseconds=50):
        pass
    sandbox.xero_pay(str(paid.xero_invoice_id))
    voided_state = sandbox._call(
        "POST", f"/_sandbox/xero/invoices/{voided.xero_invoice_id}/status", json={"status": "VOIDED"}
    )["invoice"]
    since = last_call(sandbox)

    report = statuses_pull_recent(portal=portal, trigger=Trigger.BUTTON)

    assert (report.fetched, report.moved, report.xero_calls, report.bitrix24_calls) == (2, 2, 1, 1)
    assert (stage_of(portal, paid), stage_of(portal, voided), stage_of(portal, untouched)) == (PAID, DECLINED, SENT)
    xero, _ = api_calls(sandbox, since)
    assert xero[0]["target"] == "/Invoices"
    watermark = SyncSettings.objects.get(portal=portal).xero_modified_since
    voided_at = int(voided_state["UpdatedDateUTC"][6:-2].split("+")[0])
    assert watermark == dt.datetime.fromtimestamp(voided_at / 1000, dt.UTC)
    assert set(SyncLogEntry.objects.filter(portal=portal).values_list("trigger", flat=True)) == {"button"}

    again = statuses_pull_recent(portal=portal, trigger=Trigger.SWEEP)

    assert (again.moved, again.bitrix24_calls) == (0, 0)
    assert again.echoes == again.fetched >= 1  # the boundary invoice is read again, and skipped quietly
    assert not SyncLogEntry.objects.filter(portal=portal, trigger="sweep").exists()


def test_the_first_sweep_of_a_portal_without_links_only_starts_the_watermark(sandbox, portal):
    since = last_call(sandbox)

    report = statuses_pull_recent(portal=portal, trigger=Trigger.SWEEP)

    assert report.xero_calls == 0
    assert api_calls(sandbox, since) == ([], [])
    assert SyncSettings.objects.get(portal=portal).xero_modified_since is not None


# --- the optional Bitrix24 payment record -------------------------------------------------------------


def payments_of(portal: Portal, link: InvoiceLink) -> list[dict]:
    return Bitrix24Client(portal).result("crm.item.payment.list", {"entityTypeId": 31, "entityId": link.bitrix24_id})


def test_a_paid_invoice_gets_one_paid_bitrix24_payment_when_the_portal_asks_for_it(sandbox, portal):
    SyncSettings.objects.filter(portal=portal).update(create_bitrix24_payment_on_paid=True)
    fresh, half_recorded, done_by_hand = linked_invoices(sandbox, portal, 3)
    client = Bitrix24Client(portal)
    client.result(
        "crm.item.productrow.set",
        {"ownerType": "SI", "ownerId": fresh.bitrix24_id, "productRows": [{"productName": "Socks", "price": 100}]},
    )
    client.result("crm.item.payment.add", {"entityTypeId": 31, "entityId": half_recorded.bitrix24_id})
    manual = client.result("crm.item.payment.add", {"entityTypeId": 31, "entityId": done_by_hand.bitrix24_id})
    client.result("crm.item.payment.pay", {"id": manual})
    for link in (fresh, half_recorded, done_by_hand):
        sandbox.xero_pay(str(link.xero_invoice_id))
        webhook_job(portal, link)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.moved, report.payments) == (3, 3)
    assert [p["paid"] for p in payments_of(portal, fresh)] == ["Y"]
    # crm.item.payment.add makes an empty payment: the invoice's rows were added before paying it.
    [payment] = payments_of(portal, fresh)
    assert payment["sum"] == pytest.approx(100 * 1.0) and payment["paid"] == "Y"
    recorded = SyncLogEntry.objects.filter(portal=portal, outcome=SyncLogEntry.Outcome.PAYMENT_RECORDED)
    assert sorted(int(e.bitrix24_id) for e in recorded) == sorted([fresh.bitrix24_id, half_recorded.bitrix24_id])

    # Xero says PAID again (a duplicate webhook): no second payment.
    webhook_job(portal, fresh)
    statuses_pull_pending(portal_id=portal.pk)
    assert len(payments_of(portal, fresh)) == 1


def test_no_bitrix24_payment_is_made_while_the_portal_does_not_ask_for_it(sandbox, portal):
    (link,) = linked_invoices(sandbox, portal, 1)
    sandbox.xero_pay(str(link.xero_invoice_id))
    webhook_job(portal, link)

    report = statuses_pull_pending(portal_id=portal.pk)

    assert (report.moved, report.payments) == (1, 0)
    assert payments_of(portal, link) == []


def test_clicking_update_from_xero_twice_asks_for_one_pull_at_user_priority(portal):
    first = statuses_pull_request(portal=portal, requested_by=7)
    second = statuses_pull_request(portal=portal, requested_by=7)

    assert first.pk == second.pk
    assert (first.kind, first.trigger, first.priority, first.requested_by) == ("sweep_xero", "button", 0, 7)
