"""A push pass under sandbox faults: every error is the outcome of the invoices it concerns, the rest
of the pass goes on, and no job is left `running` (issue 9).

Real stack: both fakes over HTTP, PostgreSQL, Redis; the service is called directly (no worker).
Faults are injected with /_sandbox/faults, a `query` narrowing one to the requests about one contact.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from integrations.bitrix24.client import Bitrix24Client
from sync.models import ContactLink, InvoiceOutcome, SyncJob, SyncLogEntry, SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.heartbeat import Heartbeat
from sync.services.jobs import MAX_ATTEMPTS, job_retry, jobs_requeue_stuck
from sync.services.push import invoices_push_pending
from sync.services.stages import stage_map_refresh
from tests.sync.test_push_service import push, xero_contacts, xero_invoices

pytestmark = pytest.mark.django_db(transaction=True)

QUERY_PARSE = {"ErrorNumber": 16, "Type": "QueryParseException", "Message": "Syntax error"}


@pytest.fixture
def portal(acme, acme_xero):
    stage_map_refresh(portal=acme)
    SyncSettings.objects.filter(portal=acme).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    return acme


@pytest.fixture
def b24_admin(portal):
    return Bitrix24Client(portal)


def many_invoices(client, names: list[str]) -> list[int]:
    """One invoice of one row per company, made in three batch calls."""
    companies = client.batch_all(
        {f"c{n}": ("crm.company.add", {"fields": {"TITLE": name}}) for n, name in enumerate(names)}
    )
    company_ids = [int(companies.results[f"c{n}"]) for n in range(len(names))]
    items = client.batch_all(
        {
            f"i{n}": (
                "crm.item.add",
                {
                    "entityTypeId": 31,
                    "fields": {"title": "Order", "companyId": cid, "currencyId": "NZD", "stageId": "DT31_3:N"},
                },
            )
            for n, cid in enumerate(company_ids)
        }
    )
    ids = [int(items.results[f"i{n}"]["item"]["id"]) for n in range(len(names))]
    client.batch_all(
        {
            f"r{n}": (
                "crm.item.productrow.set",
                {
                    "ownerType": "SI",
                    "ownerId": invoice_id,
                    "productRows": [{"productName": "Widget", "price": 10, "quantity": 1, "taxRate": 15}],
                },
            )
            for n, invoice_id in enumerate(ids)
        }
    )
    return ids


def running_past_lease() -> int:
    return SyncJob.objects.filter(status=SyncJob.Status.RUNNING).count()


def make_due(portal) -> None:
    """Time passes: every pending job of the portal is due now."""
    SyncJob.objects.filter(portal=portal, status=SyncJob.Status.PENDING).update(not_before=timezone.now())


def test_a_400_on_one_contacts_lookup_among_50_fails_that_invoice_alone_with_xeros_words(portal, b24_admin, sandbox):
    names = [f"Client {n:03d}" for n in range(50)]
    ids = many_invoices(b24_admin, names)
    # Paging through all contacts is refused once (the engine falls back to where-chains); then every
    # request that names "Client 017" (its chain, the halves, its own Name==, its searchTerm) gets 400.
    sandbox.fault("xero", "GET /Contacts", 400, times=1, query="summaryOnly", body=QUERY_PARSE)
    sandbox.fault("xero", "GET /Contacts", 400, times=20, query="Client 017", body=QUERY_PARSE)

    report = push(portal, *ids)

    assert running_past_lease() == 0
    assert len(xero_invoices(sandbox, portal)) == 49
    assert report.created == 49 and report.failed == 1
    bad = ids[17]
    job = SyncJob.objects.get(portal=portal, target=f"31:{bad}")
    assert job.status == SyncJob.Status.FAILED and "Syntax error" in job.last_error
    entry = SyncLogEntry.objects.get(portal=portal, bitrix24_id=str(bad))
    assert entry.outcome == SyncLogEntry.Outcome.FAILED and "Syntax error" in entry.message
    # Never linked, yet it has an outcome the list shows: Failed, in Xero's words.
    outcome = InvoiceOutcome.objects.get(portal=portal, bitrix24_id=bad)
    assert outcome.state == InvoiceOutcome.State.FAILED and "Syntax error" in outcome.reason
    assert InvoiceOutcome.objects.filter(portal=portal, state=InvoiceOutcome.State.ON_XERO).count() == 49
    assert "Client 017" not in {c["Name"] for c in xero_contacts(sandbox, portal)}


def test_a_company_whose_name_xeros_where_cannot_carry_is_found_by_search_term(portal, b24_admin, sandbox):
    name = 'Acme "Quoted" Ltd \\ Ромашка & 🦘'
    first = many_invoices(b24_admin, [name, "Plain Ltd"])
    push(portal, *first)
    assert len(xero_invoices(sandbox, portal)) == 2
    # The link is forgotten (a reinstall): the lookup must find the same contact, not make a twin.
    ContactLink.objects.filter(portal=portal).delete()
    since = sandbox.calls()[-1]["id"]
    second = many_invoices(b24_admin, [name])
    report = push(portal, *second)
    assert report.created == 1 and running_past_lease() == 0
    assert [c["Name"] for c in xero_contacts(sandbox, portal)].count(name) == 1
    refused = [c for c in sandbox.calls(since=since, system="xero") if c["status"] == 400]
    assert refused == []


def test_a_503_storm_during_contact_creation_retries_every_invoice_and_all_arrive_after_it(portal, b24_admin, sandbox):
    ids = many_invoices(b24_admin, [f"Storm {n}" for n in range(5)])
    sandbox.fault("xero", "PUT /Contacts", 503, times=3, retry_after=7)
    requested = timezone.now()
    passes = 0
    report = push(portal, *ids)
    while len(xero_invoices(sandbox, portal)) < 5:
        assert running_past_lease() == 0
        pending = SyncJob.objects.filter(portal=portal, status=SyncJob.Status.PENDING)
        assert pending.count() == 5
        # Retry-After honoured: no job comes back sooner than Xero asked.
        assert all(job.not_before >= requested + dt.timedelta(seconds=7) for job in pending)
        make_due(portal)
        requested = timezone.now()
        report = invoices_push_pending(portal_id=portal.pk)
        passes += 1
        assert passes <= 3
    assert passes == 3 and report.created == 5
    assert running_past_lease() == 0
    assert not SyncJob.objects.filter(portal=portal).exclude(status=SyncJob.Status.DONE).exists()
    retrying = SyncLogEntry.objects.filter(portal=portal, outcome=SyncLogEntry.Outcome.RETRYING)
    assert retrying.count() == 15  # every delay logged, one entry per invoice and pass
    assert all(entry.details.get("retry_after") == 7 for entry in retrying)


def test_a_bitrix24_batch_transport_error_retries_the_invoices_instead_of_stalling_the_pass(portal, b24_admin, sandbox):
    ids = many_invoices(b24_admin, ["Batch Ltd", "Other Ltd"])
    sandbox.fault("bitrix24", "batch", 500, times=1)
    report = push(portal, *ids)
    assert report.retrying == 2 and running_past_lease() == 0
    make_due(portal)
    report = invoices_push_pending(portal_id=portal.pk)
    assert report.created == 2
    assert len(xero_invoices(sandbox, portal)) == 2


def test_the_attempt_cap_makes_a_dead_letter_with_xeros_words_that_a_person_can_retry(portal, b24_admin, sandbox):
    (invoice_id,) = many_invoices(b24_admin, ["Capped Ltd"])
    invoices_push_request(portal=portal, invoice_ids=[invoice_id], requested_by=1)
    SyncJob.objects.filter(portal=portal).update(attempts=MAX_ATTEMPTS - 1)
    sandbox.fault("xero", "GET /Contacts", 503, times=5)
    invoices_push_pending(portal_id=portal.pk)

    job = SyncJob.objects.get(portal=portal, target=f"31:{invoice_id}")
    assert job.status == SyncJob.Status.FAILED and job.attempts == MAX_ATTEMPTS
    assert "503" in job.last_error
    entry = SyncLogEntry.objects.filter(portal=portal, bitrix24_id=str(invoice_id)).first()
    assert entry.outcome == SyncLogEntry.Outcome.FAILED and entry.details["dead_letter"]
    assert entry.message.startswith(f"Gave up after {MAX_ATTEMPTS} attempts: Xero answered 503")
    outcome = InvoiceOutcome.objects.get(portal=portal, bitrix24_id=invoice_id)
    assert outcome.state == InvoiceOutcome.State.FAILED and outcome.attempts == MAX_ATTEMPTS

    sandbox.clear_faults()
    job_retry(job.pk, portal=portal)
    assert invoices_push_pending(portal_id=portal.pk).created == 1
    assert InvoiceOutcome.objects.get(portal=portal, bitrix24_id=invoice_id).state == InvoiceOutcome.State.ON_XERO


def test_a_job_whose_worker_died_on_every_attempt_becomes_a_dead_letter_not_a_loop(portal, b24_admin, sandbox):
    (invoice_id,) = many_invoices(b24_admin, ["Poison Ltd"])
    invoices_push_request(portal=portal, invoice_ids=[invoice_id], requested_by=1)
    # As a worker killed mid-pass leaves it: running, claimed by a pass whose heartbeat is gone.
    SyncJob.objects.filter(portal=portal).update(
        status=SyncJob.Status.RUNNING,
        attempts=MAX_ATTEMPTS,
        holder="dead-pass",
        lease_until=timezone.now() + dt.timedelta(minutes=3),
        last_error="Xero answered 503",
    )
    assert jobs_requeue_stuck()["dead"] == 1
    job = SyncJob.objects.get(portal=portal)
    assert job.status == SyncJob.Status.FAILED and "lease expired" in job.last_error
    outcome = InvoiceOutcome.objects.get(portal=portal, bitrix24_id=invoice_id)
    assert outcome.state == InvoiceOutcome.State.FAILED and "Xero answered 503" in outcome.reason


def test_a_killed_passs_jobs_are_released_as_soon_as_its_heartbeat_stops(portal, b24_admin, sandbox):
    ids = many_invoices(b24_admin, ["Alive Ltd", "Dead Ltd"])

    invoices_push_request(portal=portal, invoice_ids=ids, requested_by=1)
    lease = timezone.now() + dt.timedelta(minutes=3)
    with Heartbeat() as alive:
        SyncJob.objects.filter(portal=portal, target=f"31:{ids[0]}").update(
            status=SyncJob.Status.RUNNING, attempts=1, holder=alive.holder, lease_until=lease
        )
        SyncJob.objects.filter(portal=portal, target=f"31:{ids[1]}").update(
            status=SyncJob.Status.RUNNING, attempts=1, holder="killed-pass", lease_until=lease
        )
        outcome = jobs_requeue_stuck()
    assert outcome["released"] == 1
    assert SyncJob.objects.get(target=f"31:{ids[0]}").status == SyncJob.Status.RUNNING
    assert SyncJob.objects.get(target=f"31:{ids[1]}").status == SyncJob.Status.PENDING


def test_two_edits_in_one_second_both_reach_xero_the_second_one_last(portal, b24_admin, sandbox, app_url):
    """Bitrix24's `ts` has whole seconds and it sends no event id: the second edit's event carries
    the same dedupe key as the first. It must not be dropped once the first's job has run."""
    from sync.models import InboxEvent
    from sync.services.inbox import inbox_event_process
    from tests.sync.test_inbox_bitrix24 import event_form, post_event

    # The test delivers the events itself, with one `ts` for both edits.
    b24_admin.result("event.unbind", {"event": "ONCRMDYNAMICITEMUPDATE"})
    (invoice_id,) = many_invoices(b24_admin, ["Same Second Ltd"])
    push(portal, invoice_id)
    ts = 1_800_000_000
    form = event_form(portal, "ONCRMDYNAMICITEMUPDATE", invoice_id=invoice_id, ts=ts)

    def edit(title: str) -> None:
        b24_admin.result("crm.item.update", {"entityTypeId": 31, "id": invoice_id, "fields": {"title": title}})
        assert post_event(app_url, form).status_code == 200
        for row in InboxEvent.objects.exclude(status=InboxEvent.Status.DONE):
            inbox_event_process(row.pk)
        invoices_push_pending(portal_id=portal.pk)

    edit("First edit")
    assert [inv["Reference"] for inv in xero_invoices(sandbox, portal)] == ["First edit"]
    edit("Second edit")  # same second: the same inbox key
    assert InboxEvent.objects.filter(event_type="ONCRMDYNAMICITEMUPDATE").count() == 1
    assert [inv["Reference"] for inv in xero_invoices(sandbox, portal)] == ["Second edit"]
