"""A worker SIGKILLed in the middle of a push: Xero still ends with exactly one invoice per Bitrix24
invoice, nothing missing. The kill lands while POST /Invoices is held by an injected 3-second delay,
so Xero has (or will have) saved the batch while the worker that sent it is gone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from connector.coordination import redis_client
from integrations.bitrix24.client import Bitrix24Client
from sync.models import InvoiceLink, SyncJob
from sync.services.buttons import invoices_push_request
from sync.services.jobs import jobs_requeue_stuck
from sync.services.locks import invoice_lock_name
from sync.services.stages import stage_map_refresh
from tests.sync.conftest import WorkerProcess, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def xero_invoices(sandbox, portal) -> list[dict]:
    tenant = portal.xero_connection.tenant_id
    org = next(o for o in sandbox.state()["xero"]["organisations"] if o["tenant_id"] == tenant)
    return org["invoices"]


def invoice_posts(sandbox) -> list[dict]:
    return [c for c in sandbox.calls(system="xero") if c["method"] == "POST" and c["path"].endswith("/Invoices")]


def invoices_posted(sandbox) -> int:
    return len(invoice_posts(sandbox))


def test_a_worker_killed_mid_push_leaves_exactly_one_xero_invoice_per_bitrix24_invoice(
    acme, acme_xero, sandbox, celery_worker_env
):
    stage_map_refresh(portal=acme)
    client = Bitrix24Client(acme)
    company_id = client.result("crm.company.add", {"fields": {"TITLE": "Southern Alps Coffee Roasters"}})
    ids = []
    for n in range(5):
        item = client.result(
            "crm.item.add", {"entityTypeId": 31, "fields": {"title": f"Beans {n}", "companyId": company_id}}
        )
        ids.append(int(item["item"]["id"]))
        client.result(
            "crm.item.productrow.set",
            {
                "ownerType": "SI",
                "ownerId": ids[-1],
                "productRows": [{"productName": "Beans", "price": 38, "quantity": n + 1}],
            },
        )
    sandbox.fault("xero", "POST /Invoices", delay_s=3, times=1)
    first = WorkerProcess(celery_worker_env)
    try:
        first.start()
        invoices_push_request(portal=acme, invoice_ids=ids, requested_by=1)
        # The link row is written just before the create is sent; the POST then hangs for 3 s.
        # Killed once Xero has the POST (the sandbox logs a call when it arrives), not after a
        # guessed sleep: the kill lands while the create is in flight, on any machine.
        wait_for(lambda: invoices_posted(sandbox) >= 1, timeout=20, what="the create reaching Xero")
    finally:
        first.kill()
    assert InvoiceLink.objects.filter(xero_invoice_id__isnull=True).exists()  # an answer was lost
    # The delayed POST completes in Xero, answering a dead socket.
    wait_for(lambda: all(c["finished"] for c in invoice_posts(sandbox)), timeout=20, what="the delayed create saved")

    # Time passes for what the dead worker held: its invoice locks expire (their TTL outlasts the
    # task time limit), and the sweeper, run as of five minutes later, finds its jobs' leases
    # expired and the pending jobs nobody picked up (their dispatch died with the worker).
    for invoice_id in ids:
        redis_client().delete(invoice_lock_name(acme.pk, invoice_id))
    second = WorkerProcess(celery_worker_env)
    try:
        second.start()
        jobs_requeue_stuck(now=timezone.now() + dt.timedelta(minutes=5))
        wait_for(
            lambda: InvoiceLink.objects.filter(xero_invoice_id__isnull=False).count() == len(ids),
            timeout=25,
            what="every invoice linked",
        )
        # The queue drains too (a pass may still be finishing its jobs, or an event's re-run).
        wait_for(
            lambda: not SyncJob.objects.exclude(status=SyncJob.Status.DONE).exists(),
            timeout=25,
            what="every job done",
        )
    finally:
        second.stop()
    pushed = xero_invoices(sandbox, acme)
    assert sorted(inv["InvoiceNumber"] for inv in pushed) == sorted(f"INV-{i}" for i in ids)
    assert not SyncJob.objects.exclude(status=SyncJob.Status.DONE).exists()
    assert invoices_posted(sandbox) >= 2  # the lost create, then the recovery's update
