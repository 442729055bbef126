"""Answers lost after the write happened (`/_sandbox/faults` with `"after": true`): no duplicate, no loss.

The sandbox applies the request, then fails its answer, as a dropped connection or a gateway timeout
does on the real services. What must hold for each kind of create the connector makes:

- an invoice and a contact (push): the retry replays the Idempotency-Key, so Xero holds exactly one
  of each and the link points at it;
- an item (Add New Product, Xero side): sending the same form again replays, so one item, one product;
- a Bitrix24 catalog product (Add New Product, Bitrix24 side): the product the lost answer made is
  found by its xmlId and taken back with the Xero item, so neither side keeps a half; the next send
  makes exactly one of each.
"""

from __future__ import annotations

import contextlib

import pytest
from django.utils import timezone

from integrations.bitrix24.client import Bitrix24Client
from integrations.common.errors import ExternalAPIError
from sync.models import ContactLink, InvoiceLink, ItemLink, SyncJob, SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.push import invoices_push_pending
from sync.services.stages import stage_map_refresh
from tests.sync.test_add_product import admin_token, bitrix24_catalog, open_form, submit, text, xero_items  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(acme, acme_xero):
    stage_map_refresh(portal=acme)
    SyncSettings.objects.filter(portal=acme).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    return acme


def new_invoice(portal) -> int:
    client = Bitrix24Client(portal)
    company_id = client.result("crm.company.add", {"fields": {"TITLE": "Lost Answer Traders"}})
    item = client.result(
        "crm.item.add", {"entityTypeId": 31, "fields": {"title": "Order", "companyId": company_id, "currencyId": "NZD"}}
    )["item"]
    client.result(
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": item["id"],
            "productRows": [{"productName": "Tent", "price": 99, "quantity": 1}],
        },
    )
    return int(item["id"])


def push_until_settled(portal, invoice_id: int, rounds: int = 3) -> None:
    invoices_push_request(portal=portal, invoice_ids=[invoice_id], requested_by=1)
    for _ in range(rounds):
        # A pass-wide retryable failure: the task's retry (or the sweeper) takes the job back.
        with contextlib.suppress(ExternalAPIError):
            invoices_push_pending(portal_id=portal.pk)
        job = SyncJob.objects.get(portal=portal, target=f"31:{invoice_id}")
        if job.status not in (SyncJob.Status.PENDING, SyncJob.Status.RUNNING):
            break
        # The retry (or the expired lease) is due now.
        SyncJob.objects.filter(pk=job.pk).update(
            status=SyncJob.Status.PENDING, not_before=timezone.now(), lease_until=None
        )


def xero_org(sandbox) -> dict:
    [org] = sandbox.state()["xero"]["organisations"]
    return org


@pytest.mark.parametrize("lost", ["/Invoices", "PUT /Contacts"])
def test_a_lost_answer_to_an_invoice_or_contact_create_leaves_exactly_one_in_xero(portal, sandbox, lost):
    invoice_id = new_invoice(portal)
    sandbox.fault("xero", lost, status=503, after=True)

    push_until_settled(portal, invoice_id)

    org = xero_org(sandbox)
    assert len(org["invoices"]) == 1 and len(org["contacts"]) == 1
    assert [c for c in sandbox.calls(system="xero") if c["fault"]], "the fault did not fire"
    assert SyncJob.objects.get(portal=portal, target=f"31:{invoice_id}").status == SyncJob.Status.DONE
    link = InvoiceLink.objects.get(portal=portal, bitrix24_id=invoice_id)
    assert str(link.xero_invoice_id) == org["invoices"][0]["InvoiceID"]
    assert str(ContactLink.objects.get(portal=portal).xero_contact_id) == org["contacts"][0]["ContactID"]


def test_a_lost_answer_to_an_item_create_is_replayed_by_sending_the_same_form(
    client,
    sandbox,
    acme,
    acme_xero,
    admin_token,  # noqa: F811
):
    _, initial = open_form(client, admin_token)
    sandbox.fault("xero", "PUT /Items", status=504, after=True)

    failed = submit(client, admin_token, initial["nonce"])
    assert failed.status_code == 422 and "Xero did not answer" in text(failed)
    assert len(xero_items(sandbox)) == 1  # Xero made it; we never heard
    retried = submit(client, admin_token, initial["nonce"])

    assert 'data-test="product-success"' in text(retried)
    [item] = xero_items(sandbox)
    [product], [_price] = bitrix24_catalog(sandbox)
    link = ItemLink.objects.get(portal=acme)
    assert (str(link.xero_item_id), link.bitrix24_product_id) == (item["ItemID"], product["id"])


def test_a_lost_answer_to_a_bitrix24_product_create_leaves_no_half_and_the_next_send_makes_one(
    client,
    sandbox,
    acme,
    acme_xero,
    admin_token,  # noqa: F811
):
    _, initial = open_form(client, admin_token)
    sandbox.fault("bitrix24", "POST catalog.product.add", status=500, after=True)

    failed = submit(client, admin_token, initial["nonce"])

    assert failed.status_code == 422 and 'data-system="bitrix24"' in text(failed)
    assert bitrix24_catalog(sandbox) == ([], [])  # the product the lost answer made was found and deleted
    assert xero_items(sandbox) == []  # and the Xero item taken back
    again = submit(client, admin_token, failed.context["form"]["nonce"].value())
    assert 'data-test="product-success"' in text(again)
    assert len(xero_items(sandbox)) == 1 and len(bitrix24_catalog(sandbox)[0]) == 1
