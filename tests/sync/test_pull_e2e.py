"""Xero -> Bitrix24 end to end: a real worker, and our live server receiving the sandbox's signed
Xero webhooks (and Bitrix24's events, which our own stage moves raise).

The invoices are linked as the push engine leaves them (test_pull_service.linked_invoices), so these
tests depend on the pull path only; test_echo.py runs the push engine too. Each invoice is then
changed in Xero through the sandbox's control routes, as a Xero user would change it, and the change
has to reach Bitrix24 by itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Portal
from integrations.bitrix24.client import Bitrix24Client
from sync.models import InboxEvent, InvoiceLink, StageMapping, SyncJob, SyncLogEntry, SyncSettings, XeroStatusMapping
from sync.services.buttons_pull import statuses_pull_request
from sync.services.stages import stage_map_refresh
from tests.sync.conftest import WEBHOOK_KEY, wait_for
from tests.sync.test_pull_service import events_drained, linked_invoices

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SENT, PAID, DECLINED = "DT31_3:S", "DT31_3:P", "DT31_3:D"


# --- the world ---------------------------------------------------------------------------------------


@pytest.fixture
def wired(acme, acme_xero, sandbox, app_url) -> Iterator[Portal]:
    """acme with Xero connected, the default stage map, tax types, and Xero's webhooks pointed at
    our live server (Intent to Receive passed)."""
    yield wire(acme, sandbox, app_url)
    events_drained(sandbox)


def wire(portal: Portal, sandbox, app_url: str) -> Portal:
    stage_map_refresh(portal=portal)
    SyncSettings.objects.filter(portal=portal).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    xero_webhooks(sandbox, app_url)
    return portal


def xero_webhooks(sandbox, app_url: str, **options: Any) -> None:
    answer = sandbox._call(
        "POST", "/_sandbox/xero/webhooks", json={"url": f"{app_url}/xero/webhooks/", "key": WEBHOOK_KEY, **options}
    )
    assert answer["status"] == "OK", answer


def settle(portal: Portal, *, quiet_s: float = 1.5, timeout: float = 30) -> None:
    """Wait until no inbox row or job is open and nothing new was logged for `quiet_s`: webhooks
    and Bitrix24 events arrive asynchronously, a little after the write that caused them."""
    deadline = time.monotonic() + timeout
    seen, since = None, time.monotonic()
    while time.monotonic() < deadline:
        busy = (
            InboxEvent.objects.filter(status__in=["received", "processing"]).exists()
            or SyncJob.objects.filter(portal=portal, status__in=["pending", "running"]).exists()
        )
        state = (InboxEvent.objects.count(), SyncJob.objects.count(), SyncLogEntry.objects.count())
        if busy or state != seen:
            seen, since = state, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.1)
    pytest.fail("the pipeline did not settle")


def stage_of(portal: Portal, invoice_id: int) -> str:
    return Bitrix24Client(portal).result("crm.item.get", {"entityTypeId": 31, "id": invoice_id})["item"]["stageId"]


def xero_status(sandbox, link: InvoiceLink, status: str) -> dict:
    return sandbox._call("POST", f"/_sandbox/xero/invoices/{link.xero_invoice_id}/status", json={"status": status})


def pull_updates(portal: Portal, invoice_id: int) -> list[SyncLogEntry]:
    return list(
        SyncLogEntry.objects.filter(
            portal=portal, direction="pull", outcome=SyncLogEntry.Outcome.UPDATED, bitrix24_id=str(invoice_id)
        )
    )


# --- tests -------------------------------------------------------------------------------------------


def test_paying_an_invoice_in_xero_moves_the_bitrix24_invoice_to_the_paid_stage(wired, worker, sandbox):
    (link,) = linked_invoices(sandbox, wired, 1, rows=True)
    invoice_id = link.bitrix24_id

    sandbox.xero_pay(str(link.xero_invoice_id))

    wait_for(lambda: stage_of(wired, invoice_id) == PAID, timeout=20, what="the Paid stage")
    settle(wired)
    [entry] = pull_updates(wired, invoice_id)
    assert (entry.trigger, entry.message) == ("webhook", "Xero status PAID -> Bitrix24 stage Paid")
    link.refresh_from_db()
    assert (link.last_xero_status, link.last_bitrix24_stage_id) == ("PAID", PAID)


def test_a_custom_stage_mapped_from_voided_receives_invoices_voided_in_xero(wired, worker, sandbox):
    custom = Bitrix24Client(wired).result(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": "SMART_INVOICE_STAGE_3",
                "STATUS_ID": "VOIDXERO",
                "NAME": "Voided in Xero",
                "SORT": 45,
                "SEMANTICS": "F",
            }
        },
    )
    assert custom
    stage_map_refresh(portal=wired)
    stage_id = StageMapping.objects.get(portal=wired, name="Voided in Xero").stage_id
    XeroStatusMapping.objects.filter(portal=wired, xero_status="VOIDED").update(stage_id=stage_id)
    (link,) = linked_invoices(sandbox, wired, 1, rows=True)
    invoice_id = link.bitrix24_id

    xero_status(sandbox, link, "VOIDED")

    wait_for(lambda: stage_of(wired, invoice_id) == stage_id, timeout=20, what="the custom stage")
    settle(wired)
    [entry] = pull_updates(wired, invoice_id)
    assert entry.message == "Xero status VOIDED -> Bitrix24 stage Voided in Xero"


def test_update_from_xero_catches_a_change_whose_webhook_was_lost(wired, worker, sandbox):
    (link,) = linked_invoices(sandbox, wired, 1, rows=True)
    invoice_id = link.bitrix24_id
    sandbox._call("DELETE", "/_sandbox/xero/webhooks")  # from now on Xero's webhooks go nowhere
    sandbox.xero_pay(str(link.xero_invoice_id))
    time.sleep(1)
    assert stage_of(wired, invoice_id) == SENT

    job = statuses_pull_request(portal=wired, requested_by=1)

    finished = wait_for(
        lambda: SyncJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(), timeout=20, what="the job"
    )
    assert (finished.kind, finished.status, finished.last_error) == ("sweep_xero", "done", "")
    assert stage_of(wired, invoice_id) == PAID
    [entry] = pull_updates(wired, invoice_id)
    assert entry.trigger == "button"
    assert SyncSettings.objects.get(portal=wired).xero_modified_since is not None


def test_duplicated_and_shuffled_webhooks_move_the_stage_once(wired, worker, sandbox, app_url):
    links = linked_invoices(sandbox, wired, 3, rows=True)
    invoice_ids = [link.bitrix24_id for link in links]
    settle(wired)  # setting the rows (with the portal's token) raised events too: counted out below
    before = list(InboxEvent.objects.values_list("pk", flat=True))
    xero_webhooks(sandbox, app_url, duplicates=2, shuffle=True)

    for link in links:
        sandbox.xero_pay(str(link.xero_invoice_id), "10.00")  # part paid: AUTHORISED still
        sandbox.xero_pay(str(link.xero_invoice_id))  # the rest: PAID

    wait_for(lambda: all(stage_of(wired, i) == PAID for i in invoice_ids), timeout=30, what="the Paid stages")
    settle(wired)
    for invoice_id in invoice_ids:
        assert len(pull_updates(wired, invoice_id)) == 1
    log = sandbox._call("GET", "/_sandbox/xero/webhooks")["deliveries"]
    assert [d["status"] for d in log if d["kind"] == "duplicate"].count(200) >= 2
    # Each Bitrix24 write raises one ONCRMDYNAMICITEMUPDATE; ours are the ones made with the portal's token.
    ours = InboxEvent.objects.filter(
        source="bitrix24", event_type="ONCRMDYNAMICITEMUPDATE", payload__user_id=wired.installed_by_user_id
    ).exclude(pk__in=before)
    assert sorted(e.payload["id"] for e in ours) == sorted(invoice_ids)
