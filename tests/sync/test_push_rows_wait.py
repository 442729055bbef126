"""An invoice read before its product rows are written (sync/services/push/rows_wait.py), against the
sandbox: real HTTP to both fakes, PostgreSQL, Redis; no worker. Jobs are enqueued as the Bitrix24
event path does (job_enqueue, trigger event) and the push service is called directly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.bitrix24.client import Bitrix24Client
from sync.models import InvoiceLink, InvoiceOutcome, SyncJob, SyncLogEntry, SyncSettings, Trigger
from sync.services.jobs import job_enqueue
from sync.services.push import invoices_push_pending
from sync.services.push.rows_wait import RETRY_S
from sync.services.stages import stage_map_refresh
from tests.accounts.conftest import open_frame
from tests.sync.test_push_service import company, set_rows, xero_invoices

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [("Merino socks", "28.75", 4, 15)]


@pytest.fixture
def portal(acme, acme_xero):
    stage_map_refresh(portal=acme)
    SyncSettings.objects.filter(portal=acme).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    return acme


def bare_invoice(client: Bitrix24Client, company_id: int) -> int:
    """Created as an import or a person does: the invoice first, its rows in a later call."""
    item = client.result(
        "crm.item.add",
        {
            "entityTypeId": 31,
            "fields": {"title": "Imported order", "companyId": company_id, "currencyId": "NZD", "stageId": "DT31_3:N"},
        },
    )
    return int(item["item"]["id"])


def event(portal, invoice_id: int) -> SyncJob:
    return job_enqueue(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{invoice_id}", trigger=Trigger.EVENT)


def entries(invoice_id: int) -> list[str]:
    return list(
        SyncLogEntry.objects.filter(bitrix24_id=str(invoice_id)).order_by("pk").values_list("outcome", flat=True)
    )


def test_a_new_invoice_read_before_its_rows_waits_for_them_without_a_failure_then_goes(portal, sandbox, settings):
    settings.PUSH_NO_ROWS_GRACE_S = 60.0
    b24 = Bitrix24Client(portal)
    invoice_id = bare_invoice(b24, company(b24, "Tutukaka Dive Ltd"))
    job = event(portal, invoice_id)

    report = invoices_push_pending(portal_id=portal.pk)

    assert report.deferred == 1 and report.failed == 0
    job.refresh_from_db()
    assert job.status == SyncJob.Status.PENDING and job.attempts == 0  # not an attempt
    assert 0 < (job.not_before - timezone.now()).total_seconds() <= RETRY_S  # read again shortly
    assert entries(invoice_id) == []  # no failure in the sync log
    assert not InvoiceOutcome.objects.filter(bitrix24_id=invoice_id).exists()
    assert not InvoiceLink.objects.filter(bitrix24_id=invoice_id).exclude(last_error="").exists()
    assert xero_invoices(sandbox, portal) == []

    # Its rows are written (their event finds the waiting job); when it is due, it goes.
    set_rows(b24, invoice_id, ROWS)
    assert event(portal, invoice_id).pk == job.pk
    SyncJob.objects.filter(pk=job.pk).update(not_before=timezone.now())  # RETRY_S later, without sleeping
    report = invoices_push_pending(portal_id=portal.pk)

    assert report.created == 1
    assert entries(invoice_id) == [SyncLogEntry.Outcome.CREATED]
    [sent] = xero_invoices(sandbox, portal)
    assert [line["Description"] for line in sent["LineItems"]] == ["Merino socks"]


def test_an_invoice_still_without_rows_after_the_grace_is_held_with_the_reason_and_sent_once_rows_come(
    portal, sandbox, settings, client
):
    settings.PUSH_NO_ROWS_GRACE_S = 60.0
    b24 = Bitrix24Client(portal)
    invoice_id = bare_invoice(b24, company(b24, "Matakohe Kauri Ltd"))
    job = event(portal, invoice_id)
    invoices_push_pending(portal_id=portal.pk)  # fresh: waits
    assert entries(invoice_id) == []

    settings.PUSH_NO_ROWS_GRACE_S = 0.0  # the grace is over and still no rows
    SyncJob.objects.filter(pk=job.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    report = invoices_push_pending(portal_id=portal.pk)

    assert report.deferred == 0
    [entry] = SyncLogEntry.objects.filter(bitrix24_id=str(invoice_id))
    assert entry.outcome == SyncLogEntry.Outcome.HELD and entry.details["rule"] == "no_rows"
    assert "has no product rows" in entry.message and "once a product row is added" in entry.message
    job.refresh_from_db()
    assert job.status == SyncJob.Status.FAILED and job.attempts == 1  # ended, not retried
    outcome = InvoiceOutcome.objects.get(bitrix24_id=invoice_id)
    assert outcome.state == InvoiceOutcome.State.HELD and outcome.rule == "no_rows"
    assert xero_invoices(sandbox, portal) == []

    frame = open_frame(sandbox, 1)  # the portal's admin
    html = client.get(f"/app/invoices/{invoice_id}/", {"ft": frame.token}).content.decode()
    assert 'data-state="held"' in html and "Held: no product rows" in html and "has no product rows" in html
    assert "Held: totals differ" not in html
    log = client.get("/app/log/", {"ft": frame.token, "failed": "1"}).content.decode()
    assert "Held: no product rows" in log and "Held: totals differ" not in log

    # The next change to the invoice (its rows) brings it back and sends it.
    set_rows(b24, invoice_id, ROWS)
    event(portal, invoice_id)
    report = invoices_push_pending(portal_id=portal.pk)
    assert report.created == 1
    assert entries(invoice_id) == [SyncLogEntry.Outcome.HELD, SyncLogEntry.Outcome.CREATED]
    assert InvoiceOutcome.objects.get(bitrix24_id=invoice_id).state == InvoiceOutcome.State.ON_XERO
    html = client.get(f"/app/invoices/{invoice_id}/", {"ft": frame.token}).content.decode()
    assert 'data-state="linked"' in html


def test_an_old_row_less_invoice_that_is_merely_edited_is_held_at_once(portal, sandbox, settings):
    """The grace counts from the invoice's creation, not its last change: a stage moved on an invoice
    that has had no rows for longer than the grace (often by our own pull) is not re-read for a minute."""
    settings.PUSH_NO_ROWS_GRACE_S = 1.0
    b24 = Bitrix24Client(portal)
    invoice_id = bare_invoice(b24, company(b24, "Whangarei Heads Ltd"))
    created = timezone.now()
    while (timezone.now() - created).total_seconds() < 1.5:  # older than the grace (Bitrix24 keeps seconds)
        pass
    b24.result("crm.item.update", {"entityTypeId": 31, "id": invoice_id, "fields": {"title": "Edited order"}})
    event(portal, invoice_id)

    report = invoices_push_pending(portal_id=portal.pk)

    assert report.deferred == 0
    assert entries(invoice_id) == [SyncLogEntry.Outcome.HELD]
