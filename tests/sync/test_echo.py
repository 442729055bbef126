"""Echo suppression, proven on the whole pipeline (style-and-reliability.md B.4).

Every write we make raises an event on the other side, and neither Xero's webhook nor Bitrix24's
event says who made the change:

- our push writes the Xero invoice -> Xero sends INVOICE UPDATE -> the pull reads the invoice;
- our pull moves the Bitrix24 stage -> Bitrix24 sends ONCRMDYNAMICITEMUPDATE -> the push reads it.

Without suppression each of these reads looks like news and causes a write back, which causes the
next event: a loop. What stops it is content, stored on the InvoiceLink by whoever wrote last:
`last_pulled_hash` = fingerprint(Xero status, AmountPaid, stage) and `last_bitrix24_stage_id`. The
pull drops an invoice whose fingerprint equals the stored one; the push drops an event whose stage
equals `last_bitrix24_stage_id` and whose content equals `last_pushed_hash`.

The second test shows what the stored state prevents: with last_pulled_hash and
last_bitrix24_stage_id cleared, the very same echo of our push is taken for news and costs a
Bitrix24 write, which comes back as an event; that one is dropped by the push side only because the
pull recorded the stage it wrote, so it stops after one extra round trip. (Behind the fingerprint
there is a second, weaker guard: a Xero status is never "moved" to a stage that already means it.
It needs the stored stage too, which is why both are cleared.)
"""

from __future__ import annotations

import time

import pytest

from accounts.models import Portal
from sync.models import InboxEvent, InvoiceLink, SyncLogEntry
from tests.sync.conftest import wait_for
from tests.sync.test_pull_e2e import PAID, SENT, settle, stage_of, wire
from tests.sync.test_pull_service import events_drained

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def wired(acme, acme_xero, sandbox, app_url):
    """acme connected, mapped, and receiving Xero's webhooks (as in test_pull_e2e.py)."""
    yield wire(acme, sandbox, app_url)
    events_drained(sandbox)


XERO_WRITE_PATHS = ("/Invoices", "/Payments")
ROWS = [("Merino socks", "28.75", 4, 15), ("Rain jacket", "217.35", 1, 15)]


def rep_invoice(b24, *, stage: str = SENT) -> int:
    """A sales rep's invoice for a new company, with rows, on `stage` (Sent to client = AUTHORISED):
    Bitrix24 sends the events, and the pipeline pushes it to Xero by itself."""
    company_id = b24.call("crm.company.add", {"fields": {"TITLE": f"Customer {time.monotonic_ns()}"}})
    item = b24.call(
        "crm.item.add",
        {
            "entityTypeId": 31,
            "fields": {"title": "Order", "companyId": company_id, "currencyId": "NZD", "stageId": stage},
        },
    )
    invoice_id = int(item["item"]["id"])
    b24.call(
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": invoice_id,
            "productRows": [
                {"productName": n, "price": p, "quantity": q, "taxRate": t, "taxIncluded": "N"} for n, p, q, t in ROWS
            ],
        },
    )
    return invoice_id


def pushed(portal: Portal, invoice_id: int, status: str = "AUTHORISED") -> InvoiceLink:
    """Wait until the pipeline created the invoice in Xero with `status`, and everything settled."""
    link = wait_for(
        lambda: InvoiceLink.objects.filter(
            portal=portal, bitrix24_id=invoice_id, xero_invoice_id__isnull=False, last_xero_status=status
        ).first(),
        timeout=30,
        what=f"invoice {invoice_id} pushed to Xero as {status}",
    )
    settle(portal)
    link.refresh_from_db()
    return link


def xero_writes(sandbox, since: int) -> list[str]:
    return [
        f"{c['method']} {c['target']}"
        for c in sandbox.calls(since=since, system="xero")
        if c["method"] in ("PUT", "POST") and c["target"].startswith(XERO_WRITE_PATHS)
    ]


def bitrix24_item_updates(sandbox, since_time: float) -> int:
    """crm.item.update calls that ran (in a batch or not): each raises one ONCRMDYNAMICITEMUPDATE,
    and the sandbox logs every delivery of it to our handler."""
    deliveries = sandbox.state()["bitrix24"]["app"]["deliveries"]
    return sum(1 for d in deliveries if d["event"] == "ONCRMDYNAMICITEMUPDATE" and d["time"] >= since_time)


def our_bitrix24_updates(invoice_id: int, portal_user: int) -> list[InboxEvent]:
    """The ONCRMDYNAMICITEMUPDATE events that came back for writes made with the portal's token."""
    return list(
        InboxEvent.objects.filter(
            source="bitrix24", event_type="ONCRMDYNAMICITEMUPDATE", payload__id=invoice_id, payload__user_id=portal_user
        )
    )


def xero_invoice_events(link: InvoiceLink) -> list[InboxEvent]:
    return list(
        InboxEvent.objects.filter(
            source="xero", event_type="INVOICE.UPDATE", payload__resourceId=str(link.xero_invoice_id)
        )
    )


def last_call(sandbox) -> int:
    calls = sandbox.calls()
    return calls[-1]["id"] if calls else 0


def emit_invoice_update(sandbox, portal, link: InvoiceLink) -> None:
    """What Xero sends after our own write to the invoice (an INVOICE UPDATE naming it)."""
    sandbox._call(
        "POST",
        "/_sandbox/xero/webhooks/events",
        json={
            "tenantId": portal.xero_connection.tenant_id,
            "eventCategory": "INVOICE",
            "eventType": "UPDATE",
            "resourceId": str(link.xero_invoice_id),
        },
    )


@pytest.mark.exact_delivery  # counts deliveries and inbox rows one by one
def test_a_payment_in_xero_moves_the_stage_once_and_neither_echo_writes_back(wired, b24, worker, sandbox):
    portal_user = wired.installed_by_user_id
    invoice_id = rep_invoice(b24)
    link = pushed(wired, invoice_id)
    # 1. Our push wrote the Xero invoice; its webhook reached the pull and was dropped, with no
    #    Bitrix24 write (the only item updates so far are the rep's own).
    assert our_bitrix24_updates(invoice_id, portal_user) == []
    assert SyncLogEntry.objects.filter(
        portal=wired, direction="pull", outcome="echo_dropped", xero_id=str(link.xero_invoice_id)
    ).exists()
    since, since_time = last_call(sandbox), time.time()

    # 2. A Xero user enters the payment.
    sandbox.xero_pay(str(link.xero_invoice_id))
    settle(wired)

    assert stage_of(wired, invoice_id) == PAID
    # Exactly one Bitrix24 write (our stage move) and not one Xero write after the payment: the
    # move's ONCRMDYNAMICITEMUPDATE came back to the push engine and was dropped.
    assert xero_writes(sandbox, since) == []
    assert bitrix24_item_updates(sandbox, since_time) == 1
    [echo_event] = our_bitrix24_updates(invoice_id, portal_user)
    assert echo_event.status == "done"
    pushed_echo = SyncLogEntry.objects.filter(
        portal=wired, direction="push", outcome="echo_dropped", bitrix24_id=str(invoice_id)
    )
    assert pushed_echo.count() == 1
    assert [e.message for e in SyncLogEntry.objects.filter(portal=wired, direction="pull", outcome="updated")] == [
        "Xero status PAID -> Bitrix24 stage Paid"
    ]

    # 3. Xero repeats itself (at-least-once delivery): still nothing is written anywhere.
    since, since_time = last_call(sandbox), time.time()
    emit_invoice_update(sandbox, wired, link)
    settle(wired)
    assert xero_writes(sandbox, since) == []
    assert bitrix24_item_updates(sandbox, since_time) == 0
    assert len(xero_invoice_events(link)) >= 2


@pytest.mark.exact_delivery  # counts deliveries and inbox rows one by one
def test_without_the_stored_fingerprint_our_own_pushs_echo_costs_a_bitrix24_write(wired, b24, worker, sandbox):
    portal_user = wired.installed_by_user_id
    invoice_id = rep_invoice(b24)
    link = pushed(wired, invoice_id)
    since_time = time.time()

    # With the fingerprint: the echo of our push is dropped.
    emit_invoice_update(sandbox, wired, link)
    settle(wired)
    assert bitrix24_item_updates(sandbox, since_time) == 0

    # Forget what we synced, as a connector without B.4 would: the same echo now looks like news
    # ("AUTHORISED in Xero, stage unknown") and the pull writes the stage it already has.
    InvoiceLink.objects.filter(pk=link.pk).update(last_pulled_hash="", last_bitrix24_stage_id="")
    since, since_time = last_call(sandbox), time.time()
    emit_invoice_update(sandbox, wired, link)
    settle(wired)

    assert bitrix24_item_updates(sandbox, since_time) == 1
    assert len(our_bitrix24_updates(invoice_id, portal_user)) == 1
    assert stage_of(wired, invoice_id) == SENT
    # The loop stops after this one round trip only because the pull recorded the stage it wrote.
    assert xero_writes(sandbox, since) == []
    link.refresh_from_db()
    assert link.last_bitrix24_stage_id == SENT and link.last_pulled_hash


def xero_invoice_webhooks(link: InvoiceLink) -> list[InboxEvent]:
    """Every INVOICE event (CREATE or UPDATE) Xero sent about the link's invoice."""
    return list(
        InboxEvent.objects.filter(
            source="xero", event_type__startswith="INVOICE.", payload__resourceId=str(link.xero_invoice_id)
        )
    )


def invoice_reads(sandbox, since: int) -> list[dict]:
    return [c for c in sandbox.calls(since=since, system="xero") if c["method"] == "GET" and c["target"] == "/Invoices"]


@pytest.mark.exact_delivery
def test_our_own_writes_webhook_is_not_read_again_but_a_payment_right_after_is(wired, b24, worker, sandbox):
    """The event of our own write occurred no later than the UpdatedDateUTC its answer gave us
    (sync/services/pull/echo.py): nothing to read. A payment made a moment later is a later event:
    read, and the stage moves. (Xero batches and delays its webhooks; a second here keeps the echo
    behind our write's record, as it is in practice.)"""
    sandbox._call("POST", "/_sandbox/delivery", json={"delay_s": 1.0})
    since = last_call(sandbox)
    invoice_id = rep_invoice(b24)
    link = pushed(wired, invoice_id)
    wait_for(lambda: xero_invoice_webhooks(link), timeout=30, what="our write's webhook")
    settle(wired)

    assert invoice_reads(sandbox, since) == []
    assert all(e.status == "done" and "echo" in e.error for e in xero_invoice_webhooks(link))
    assert SyncLogEntry.objects.filter(
        portal=wired, direction="pull", outcome="echo_dropped", xero_id=str(link.xero_invoice_id)
    ).exists()

    since = last_call(sandbox)
    sandbox.xero_pay(str(link.xero_invoice_id))
    wait_for(lambda: stage_of(wired, invoice_id) == PAID, timeout=30, what="the payment's stage move")
    assert len(invoice_reads(sandbox, since)) == 1
