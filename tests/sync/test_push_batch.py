"""A push pass settles its invoices a batch at a time: each write batch's answers are recorded in one
transaction, its jobs finished in one statement, and the per-invoice database work stays small (the
backfill's rate is bound by it, issue 14). What must not change does not: every invoice's link,
log entry, outcome and job, the compare-and-set, and one Xero answer linked to one invoice only.

Real stack: both fakes over HTTP, PostgreSQL, Redis; the service is called directly (no worker).
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.bitrix24.client import Bitrix24Client
from sync.models import InvoiceLink, InvoiceOutcome, SyncJob, SyncLogEntry, SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.jobs import job_enqueue, jobs_claim, jobs_done
from sync.services.push import invoices_push_pending
from sync.services.push.record import link_apply
from sync.services.stages import stage_map_refresh
from tests.sync.test_push_faults import many_invoices
from tests.sync.test_push_service import push, xero_invoices

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(acme, acme_xero):
    stage_map_refresh(portal=acme)
    SyncSettings.objects.filter(portal=acme).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    return acme


@pytest.fixture
def b24_admin(portal):
    return Bitrix24Client(portal)


PUSH = SyncJob.Kind.PUSH_INVOICE


def test_a_pass_of_sixty_new_invoices_records_every_one_in_two_write_batches_with_few_statements(
    portal, b24_admin, sandbox
):
    ids = many_invoices(b24_admin, [f"Batch Customer {n % 3}" for n in range(60)])
    push(portal, *ids[:3])  # the three contacts made and linked: the pass below is a backfill's steady state
    rest = ids[3:]
    invoices_push_request(portal=portal, invoice_ids=rest, requested_by=1)

    with CaptureQueriesContext(connection) as captured:
        report = invoices_push_pending(portal_id=portal.pk)

    assert (report.created, report.failed, report.retrying) == (57, 0, 0)
    in_xero = {inv["InvoiceID"].lower(): inv["InvoiceNumber"] for inv in xero_invoices(sandbox, portal)}
    links = list(InvoiceLink.objects.filter(portal=portal, bitrix24_id__in=rest))
    assert len(links) == 57
    for link in links:
        assert in_xero[str(link.xero_invoice_id)] == link.xero_invoice_number
        assert link.last_pushed_hash and link.last_error == "" and link.version == 1
    assert SyncJob.objects.filter(portal=portal, status=SyncJob.Status.DONE).count() == 60
    created = SyncLogEntry.objects.filter(portal=portal, outcome=SyncLogEntry.Outcome.CREATED, bitrix24_id__in=rest)
    assert sorted(int(e.bitrix24_id) for e in created) == sorted(rest)
    on_xero = InvoiceOutcome.objects.filter(portal=portal, bitrix24_id__in=rest, state=InvoiceOutcome.State.ON_XERO)
    assert on_xero.count() == 57
    # Each write batch (50, then 7) commits once, not once per invoice and table.
    statements = [q["sql"] for q in captured.captured_queries]
    assert sum(sql == "COMMIT" for sql in statements) <= 6
    assert len(statements) / 57 <= 3  # the compare-and-set of each link, and a few per batch


def test_an_answer_already_linked_to_another_invoice_fails_that_invoice_alone_and_the_batch_is_recorded(
    portal, b24_admin, sandbox
):
    first, second, third = many_invoices(b24_admin, ["Linked Twice Ltd", "Linked Twice Ltd", "Linked Twice Ltd"])
    push(portal, first, second)
    second_xero = InvoiceLink.objects.get(portal=portal, bitrix24_id=second).xero_invoice_id
    # The second invoice's link lost its Xero id (as if its answer was never stored), and that Xero
    # invoice is now linked to the first: the lost-create guard adopts it again for the second, and
    # Xero's answer names an invoice another Bitrix24 invoice holds.
    InvoiceLink.objects.filter(portal=portal, bitrix24_id=second).update(xero_invoice_id=None, last_pushed_hash="")
    InvoiceLink.objects.filter(portal=portal, bitrix24_id=first).update(xero_invoice_id=second_xero)

    report = push(portal, second, third)

    assert (report.created, report.updated, report.failed) == (1, 0, 1)
    failed = SyncJob.objects.get(portal=portal, target=f"31:{second}", status=SyncJob.Status.FAILED)
    assert "already linked to another Bitrix24 invoice" in failed.last_error
    assert InvoiceLink.objects.get(portal=portal, bitrix24_id=second).xero_invoice_id is None
    assert InvoiceLink.objects.get(portal=portal, bitrix24_id=third).xero_invoice_id is not None
    assert SyncJob.objects.get(portal=portal, target=f"31:{third}").status == SyncJob.Status.DONE


def test_jobs_done_finishes_the_jobs_still_ours_and_leaves_one_taken_over_to_its_new_owner(lone_portal):
    for n in range(4):
        job_enqueue(portal=lone_portal, kind=PUSH, target=f"31:{n + 1}", trigger="event")
    jobs = jobs_claim(portal_id=lone_portal.pk, kind=PUSH, limit=10)
    stale = jobs[1]
    # Its lease expired and another worker claimed it again (attempts moved on: the fencing token).
    SyncJob.objects.filter(pk=stale.pk).update(attempts=stale.attempts + 1)
    SyncJob.objects.filter(pk=jobs[2].pk).update(attempts=3)  # ours, with another attempt count
    jobs[2].attempts = 3

    with CaptureQueriesContext(connection) as captured:
        assert jobs_done(jobs) == 3

    assert len(captured.captured_queries) == 2  # one UPDATE per attempt count
    status = dict(SyncJob.objects.values_list("pk", "status"))
    assert status.pop(stale.pk) == SyncJob.Status.RUNNING
    assert set(status.values()) == {SyncJob.Status.DONE}


def test_the_link_recorded_in_memory_is_what_a_fresh_read_of_the_row_gives(lone_portal):
    link = InvoiceLink.objects.create(portal=lone_portal, bitrix24_entity_type=31, bitrix24_id=7)
    values = {
        "xero_invoice_id": str(uuid.uuid4()).upper(),
        "xero_invoice_number": "INV-0007",
        "last_pushed_hash": "abc",
        "xero_currency_rate": "1.2345",
        "last_pushed_content": {"Total": "10.00"},
        "drift": [],
        "xero_amount_due": "10.00",
    }
    assert InvoiceLink.save_if_version(link.pk, link.version, **values)

    link_apply(link, values)

    fresh = InvoiceLink.objects.get(pk=link.pk)
    for name in [*values, "version"]:
        assert getattr(link, name) == getattr(fresh, name), name
