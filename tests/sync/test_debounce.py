"""Bursts are pushed together: a pass waits for a quiet moment, bounded (sync/services/debounce.py)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from sync.models import InvoiceLink, SyncJob, Trigger
from sync.services.debounce import push_quiet_wait
from sync.services.stages import stage_map_refresh
from tests.factories import PortalFactory, SyncJobFactory
from tests.sync.conftest import wait_for


def _job(portal, target: str, *, priority=SyncJob.Priority.EVENT, age_s: float = 0.0, quiet_s: float = 0.0) -> SyncJob:
    now = timezone.now()
    job = SyncJobFactory(
        portal=portal,
        kind=SyncJob.Kind.PUSH_INVOICE,
        target=target,
        trigger=Trigger.EVENT,
        priority=priority,
        not_before=now - timedelta(seconds=age_s),
    )
    # created_at / updated_at are automatic: set them as if the job was queued `age_s` ago and last
    # renewed by an event `quiet_s` ago.
    SyncJob.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=age_s), updated_at=now - timedelta(seconds=quiet_s)
    )
    return job


def test_a_pass_waits_while_events_keep_arriving_and_starts_once_they_stop(lone_portal, settings):
    settings.PUSH_QUIET_S, settings.PUSH_MAX_WAIT_S = 1.0, 30.0
    _job(lone_portal, "31:1", age_s=5, quiet_s=3)
    _job(lone_portal, "31:2", age_s=0.2, quiet_s=0.2)
    plan = push_quiet_wait(portal_id=lone_portal.pk)
    assert 0.7 <= plan.wait_s <= 0.8 and plan.why == "burst in progress"

    SyncJob.objects.filter(target="31:2").update(updated_at=timezone.now() - timedelta(seconds=1.5))
    assert push_quiet_wait(portal_id=lone_portal.pk).wait_s == 0


def test_a_steady_stream_still_goes_out_after_the_bound(lone_portal, settings):
    settings.PUSH_QUIET_S, settings.PUSH_MAX_WAIT_S = 1.0, 30.0
    _job(lone_portal, "31:1", age_s=29.5, quiet_s=0.1)
    assert 0.4 <= push_quiet_wait(portal_id=lone_portal.pk).wait_s <= 0.5
    SyncJob.objects.filter(target="31:1").update(created_at=timezone.now() - timedelta(seconds=31))
    plan = push_quiet_wait(portal_id=lone_portal.pk)
    assert plan.wait_s == 0 and plan.why.startswith("oldest job waited")


def test_a_person_waiting_never_waits_for_quiet(lone_portal, settings):
    settings.PUSH_QUIET_S = 1.0
    _job(lone_portal, "31:1", quiet_s=0.0)
    _job(lone_portal, "31:2", quiet_s=0.0, priority=SyncJob.Priority.USER)
    assert push_quiet_wait(portal_id=lone_portal.pk).wait_s == 0


def test_an_import_burst_reaches_xero_in_one_pass(b24, acme_xero, worker, sandbox):
    """Ten invoices added in one batch call (each ONCRMDYNAMICITEMADD while it has no rows), their
    rows set in another a moment later (each ONCRMDYNAMICITEMUPDATE): one pass, so one contact
    write and one invoice write in Xero, every invoice with its row."""
    stage_map_refresh(portal=acme_xero.portal)
    company_id = int(b24.call("crm.company.add", {"fields": {"TITLE": "Burst Ltd"}}))
    mark = max((c["id"] for c in sandbox.calls()), default=0)
    added = b24.call(
        "batch",
        {
            "halt": 1,
            "cmd": {
                f"a{n}": f"crm.item.add?entityTypeId=31&fields[title]=Order%20{n}&fields[companyId]={company_id}"
                "&fields[currencyId]=NZD"
                for n in range(10)
            },
        },
    )["result"]
    ids = [int(added[f"a{n}"]["item"]["id"]) for n in range(10)]
    time.sleep(0.3)
    b24.call(
        "batch",
        {
            "halt": 1,
            "cmd": {
                f"r{n}": f"crm.item.productrow.set?ownerType=SI&ownerId={invoice_id}"
                "&productRows[0][productName]=Socks&productRows[0][price]=24.90&productRows[0][quantity]=2"
                for n, invoice_id in enumerate(ids)
            },
        },
    )
    wait_for(
        lambda: InvoiceLink.objects.filter(bitrix24_id__in=ids, xero_invoice_id__isnull=False).count() == 10,
        what="the ten invoices in Xero",
    )
    time.sleep(1.5)  # a later pass, if any, would come within the quiet window
    xero = [c for c in sandbox.calls(since=mark) if c["system"] == "xero"]
    invoice_writes = [c for c in xero if c["method"] in ("PUT", "POST") and c["target"].startswith("/Invoices")]
    assert len(invoice_writes) == 1, [f"{c['method']} {c['target']}" for c in xero]
    contact_writes = [c for c in xero if c["method"] in ("PUT", "POST") and c["target"].startswith("/Contacts")]
    assert len(contact_writes) == 1, [f"{c['method']} {c['target']}" for c in xero]
    org = sandbox.state()["xero"]["organisations"][0]
    assert sorted(len(i["LineItems"]) for i in org["invoices"]) == [1] * 10


def test_a_backlog_is_worked_in_short_passes_while_other_portals_wait(lone_portal):
    from sync.services.push.pipeline import CLAIM_LIMIT, SHARED_CLAIM_LIMIT, claim_limit

    assert claim_limit(lone_portal.pk) == CLAIM_LIMIT
    other = PortalFactory()
    _job(other, "31:7")
    assert claim_limit(lone_portal.pk) == SHARED_CLAIM_LIMIT
    assert claim_limit(other.pk) == CLAIM_LIMIT  # its own jobs do not count


def test_an_import_still_arriving_at_the_bound_is_not_cut_in_two(lone_portal, settings):
    """At PUSH_MAX_WAIT_S an import's events may still be coming (Bitrix24 delivers 2,000 over a
    minute): while they arrive at PUSH_BURST_RATE or faster the bound is PUSH_BURST_MAX_WAIT_S."""
    settings.PUSH_QUIET_S, settings.PUSH_MAX_WAIT_S = 1.0, 30.0
    settings.PUSH_BURST_RATE, settings.PUSH_BURST_MAX_WAIT_S = 5.0, 90.0
    _job(lone_portal, "31:1", age_s=31, quiet_s=31)
    for n in range(2, 8):  # six changes in the last second
        _job(lone_portal, f"31:{n}", age_s=0.5, quiet_s=0.1)
    plan = push_quiet_wait(portal_id=lone_portal.pk)
    assert plan.wait_s > 0 and plan.why == "burst in progress"

    SyncJob.objects.filter(portal=lone_portal).update(created_at=timezone.now() - timedelta(seconds=91))
    plan = push_quiet_wait(portal_id=lone_portal.pk)
    assert plan.wait_s == 0 and plan.why.startswith("oldest job waited")


def test_a_trickle_at_the_bound_goes_out(lone_portal, settings):
    settings.PUSH_QUIET_S, settings.PUSH_MAX_WAIT_S = 1.0, 30.0
    settings.PUSH_BURST_RATE, settings.PUSH_BURST_MAX_WAIT_S = 5.0, 90.0
    _job(lone_portal, "31:1", age_s=31, quiet_s=31)
    _job(lone_portal, "31:2", age_s=0.5, quiet_s=0.1)  # one change in the last second
    plan = push_quiet_wait(portal_id=lone_portal.pk)
    assert plan.wait_s == 0 and plan.why.startswith("oldest job waited")


def test_events_still_coming_into_the_inbox_are_no_quiet_moment(lone_portal, settings):
    """Under load the inbox turns events into jobs in spurts: a lull in job rows while Bitrix24's
    events are still arriving (an import's first adds, before their rows are written) must not start
    a pass that would push invoices without rows."""
    from sync.models import InboxEvent, Source

    settings.PUSH_QUIET_S, settings.PUSH_MAX_WAIT_S = 1.0, 30.0
    _job(lone_portal, "31:1", age_s=3, quiet_s=3)
    InboxEvent.objects.create(
        portal=lone_portal,
        source=Source.BITRIX24,
        dedupe_key="burst-quiet-1",
        event_type="ONCRMDYNAMICITEMADD",
        payload={"event": "ONCRMDYNAMICITEMADD", "entity_type_id": 31, "id": 2},
        received_at=timezone.now() - timedelta(seconds=0.2),
    )
    plan = push_quiet_wait(portal_id=lone_portal.pk)
    assert 0.7 <= plan.wait_s <= 0.8 and plan.why == "burst in progress"

    InboxEvent.objects.filter(dedupe_key="burst-quiet-1").update(received_at=timezone.now() - timedelta(seconds=1.5))
    assert push_quiet_wait(portal_id=lone_portal.pk).wait_s == 0
