"""push_invoices_task, the processor of a portal's push jobs, run in this process against the
sandbox (no worker): how many passes a slice makes decides what one change costs a busy pool."""

from __future__ import annotations

import pytest

from sync.models import SyncJob, SyncSettings, Trigger
from sync.services.jobs import job_enqueue
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
