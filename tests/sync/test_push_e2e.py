"""Bitrix24 -> Xero end to end: sandbox portal events -> /bitrix24/events/ -> inbox -> PUSH_INVOICE job
-> push_invoices_task on a real Celery worker -> the sandbox's Xero. Nothing of ours is mocked."""

from __future__ import annotations

import time

import pytest
import requests

from sync.models import InvoiceLink, SyncJob
from sync.services.stages import stage_map_refresh
from tests.sync.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(acme, acme_xero):
    stage_map_refresh(portal=acme)
    return acme


def new_invoice(b24, company_id: int, title: str = "Spring order") -> int:
    item = b24.call("crm.item.add", {"entityTypeId": 31, "fields": {"title": title, "companyId": company_id}})
    invoice_id = int(item["item"]["id"])
    b24.call(
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": invoice_id,
            "productRows": [{"productName": "Socks", "price": 24.9, "quantity": 4}],
        },
    )
    # An edit after the rows exist, as a user saving the form does: its event carries the full invoice.
    b24.update_invoice(invoice_id, title=f"{title} (final)")
    return invoice_id


def xero_invoices(sandbox, portal) -> list[dict]:
    tenant = portal.xero_connection.tenant_id
    org = next(o for o in sandbox.state()["xero"]["organisations"] if o["tenant_id"] == tenant)
    return org["invoices"]


def event_form(portal, invoice_id: int, event: str, ts: int) -> dict:
    return {
        "event": event,
        "data[FIELDS][ID]": str(invoice_id),
        "data[FIELDS][ENTITY_TYPE_ID]": "31",
        "ts": str(ts),
        "auth[domain]": portal.domain,
        "auth[client_endpoint]": portal.client_endpoint,
        "auth[member_id]": portal.member_id,
        "auth[application_token]": portal.application_token,
    }


def test_an_invoice_created_in_the_portal_appears_in_xero(portal, b24, worker, sandbox):
    company_id = b24.call("crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})
    invoice_id = new_invoice(b24, company_id)

    pushed = wait_for(lambda: xero_invoices(sandbox, portal), timeout=25, what="the invoice in Xero")

    assert [inv["Reference"] for inv in pushed] == ["Spring order (final)"]
    link = wait_for(lambda: InvoiceLink.objects.filter(bitrix24_id=invoice_id, xero_invoice_id__isnull=False).first())
    assert str(link.xero_invoice_id) == pushed[0]["InvoiceID"]


def test_events_delivered_three_times_and_out_of_order_give_exactly_one_xero_invoice_per_bitrix24_invoice(
    portal, b24, worker, sandbox, app_url
):
    company_id = b24.call("crm.company.add", {"fields": {"TITLE": "Harbourview Dental Group"}})
    first, second = new_invoice(b24, company_id, "First"), new_invoice(b24, company_id, "Second")
    now = int(time.time())
    deliveries = [
        event_form(portal, first, "ONCRMDYNAMICITEMUPDATE", now + 5),  # the later update first
        event_form(portal, first, "ONCRMDYNAMICITEMADD", now),
        *[event_form(portal, second, "ONCRMDYNAMICITEMUPDATE", now + 7)] * 3,  # one event, three times
        event_form(portal, second, "ONCRMDYNAMICITEMADD", now + 1),
    ]
    for form in deliveries:
        assert requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=10).status_code == 200

    def settled():
        busy = SyncJob.objects.filter(status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING]).exists()
        return not busy and len(xero_invoices(sandbox, portal)) >= 2

    wait_for(settled, timeout=25, what="all push jobs finished")
    references = sorted(inv["Reference"] for inv in xero_invoices(sandbox, portal))
    assert references == ["First (final)", "Second (final)"]
    assert InvoiceLink.objects.filter(xero_invoice_id__isnull=False).count() == 2
