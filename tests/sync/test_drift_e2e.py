"""Drift end to end on the real stack (sandbox over HTTP, PostgreSQL, Redis, our live server taking
Bitrix24's events and Xero's signed webhooks). The push and pull passes run in this process, the way
the worker's tasks run them, so each step can be checked in between.

- INV-13: edited in Xero to 999.00, "Create / Edit on Xero" restores 38.00 (Xero read in bulk first);
- drift from a Xero-side edit is noticed from the webhook with its diff; accepting Xero's version is
  remembered, so the next automatic sync does not undo it;
- a paid invoice that differs is refused per invoice, with the difference and Xero's rule;
- Xero's payment details (paid, due, fully paid on) and its online invoice link after a partial and a
  full payment.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api
from sync.models import ContactLink, InboxEvent, InvoiceLink, ReconciliationRun, SyncJob, SyncLogEntry, SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.contacts_follow import contacts_follow
from sync.services.drift import drift_accept, online_url_ensure
from sync.services.inbox import inbox_event_process
from sync.services.preview import invoice_preview
from sync.services.pull import statuses_pull_pending
from sync.services.push import invoices_push_pending
from sync.services.reconcile import reconcile_portal, repairable_ids
from sync.tasks.reconcile import reconcile_task
from tests.accounts.conftest import open_frame
from tests.sync.conftest import wait_for
from tests.sync.test_pages_invoices import page, post_json
from tests.sync.test_pull_e2e import wire
from tests.sync.test_pull_service import events_drained

pytestmark = pytest.mark.django_db(transaction=True)

SENT = "DT31_3:S"


@pytest.fixture
def portal(acme, acme_xero, sandbox, app_url) -> Iterator[Portal]:
    yield wire(acme, sandbox, app_url)
    events_drained(sandbox)


def new_invoice(b24, number: str, price: str = "38.00", stage: str = SENT) -> int:
    company = b24.call("crm.company.add", {"fields": {"TITLE": f"Customer of {number}"}})
    item = b24.call(
        "crm.item.add",
        {"entityTypeId": 31, "fields": {"title": f"Order {number}", "accountNumber": number, "companyId": company}},
    )
    invoice_id = int(item["item"]["id"])
    b24.call(
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": invoice_id,
            "productRows": [{"productName": "Socks", "price": price, "quantity": 1}],
        },
    )
    b24.update_invoice(invoice_id, stageId=stage)
    return invoice_id


def drain_inbox() -> None:
    """What the worker's inbox task does with each received event: turn it into a job."""
    for event_id in InboxEvent.objects.filter(status="received").values_list("pk", flat=True):
        inbox_event_process(event_id)


def push(portal: Portal, *invoice_ids: int, button: bool = False, sandbox=None) -> None:
    if button:
        invoices_push_request(portal=portal, invoice_ids=invoice_ids, requested_by=None)
    else:
        # Bitrix24's events reach our live server a little after the write (later on a loaded
        # machine): wait until each invoice's job is there.
        def queued() -> bool:
            drain_inbox()
            pending = set(
                SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, status="pending").values_list(
                    "target", flat=True
                )
            )
            return all(f"31:{i}" in pending for i in invoice_ids)

        wait_for(queued, what="the Bitrix24 events' push jobs")
        events_drained(sandbox)
        drain_inbox()
    SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, status="pending").update(
        not_before="2000-01-01T00:00Z"
    )
    invoices_push_pending(portal_id=portal.pk)


def pull_webhooks(portal: Portal, link: InvoiceLink) -> None:
    def arrived() -> bool:
        drain_inbox()
        return SyncJob.objects.filter(
            portal=portal, kind=SyncJob.Kind.PULL_STATUS, target=str(link.xero_invoice_id), status="pending"
        ).exists()

    wait_for(arrived, what="Xero's webhook")
    statuses_pull_pending(portal_id=portal.pk)


def xero_invoice(sandbox, link: InvoiceLink) -> dict:
    for org in sandbox.state()["xero"]["organisations"]:
        for invoice in org["invoices"]:
            if invoice["InvoiceID"] == str(link.xero_invoice_id):
                return invoice
    raise AssertionError("not in Xero")


def edit_in_xero(sandbox, link: InvoiceLink, **fields) -> dict:
    return sandbox._call("POST", f"/_sandbox/xero/invoices/{link.xero_invoice_id}/edit", json=fields)["invoice"]


def line(price: str) -> list[dict]:
    return [{"Description": "Socks", "Quantity": 1, "UnitAmount": price, "AccountCode": "200", "TaxType": "NONE"}]


def linked(invoice_id: int) -> InvoiceLink:
    found = InvoiceLink.objects.filter(bitrix24_id=invoice_id).first()
    assert found is not None, (
        list(SyncJob.objects.values("kind", "target", "status", "last_error", "not_before", "attempts")),
        list(InboxEvent.objects.values("event_type", "status", "error")),
        list(SyncLogEntry.objects.values("outcome", "message", "bitrix24_id")),
    )
    return found


def test_inv_13_edited_in_xero_to_999_is_shown_as_drift_and_restored_by_the_button(portal, b24, sandbox):
    invoice_id = new_invoice(b24, "INV-13")
    push(portal, invoice_id, sandbox=sandbox)
    link = linked(invoice_id)
    assert link.xero_invoice_id and Decimal(link.last_pushed_content["_totals"]["Total"]) == Decimal("38")

    edit_in_xero(sandbox, link, LineItems=line("999.00"))
    pull_webhooks(portal, link)

    link = linked(invoice_id)
    diff = {d["field"]: (d["bitrix24"], d["xero"]) for d in link.drift}
    assert diff["LineItems[0].UnitAmount"] == ("38.00", "999.00")
    assert diff["Total"] == ("38.00", "999.00")
    assert SyncLogEntry.objects.filter(outcome="changed_in_xero", bitrix24_id=str(invoice_id)).count() == 1

    calls_before = len(sandbox.calls())
    push(portal, invoice_id, button=True)

    restored = xero_invoice(sandbox, link)
    assert Decimal(str(restored["Total"])) == Decimal("38.00")
    link = linked(invoice_id)
    assert link.drift == [] and link.last_error == ""
    xero_calls = [c for c in sandbox.calls()[calls_before:] if c["system"] == "xero"]
    # one bulk read of the current version (IDs), one write
    assert [c["method"] for c in xero_calls] == ["GET", "POST"], xero_calls
    entry = SyncLogEntry.objects.filter(bitrix24_id=str(invoice_id), outcome="updated").latest("created_at")
    assert "restored" in entry.message and "999" in entry.message


def test_accepting_xeros_version_is_not_undone_by_the_next_automatic_sync(portal, b24, sandbox):
    invoice_id = new_invoice(b24, "INV-21")
    push(portal, invoice_id, sandbox=sandbox)
    link = linked(invoice_id)
    edit_in_xero(sandbox, link, Reference="Agreed by phone")
    pull_webhooks(portal, link)
    link = linked(invoice_id)
    assert [(d["label"], d["bitrix24"], d["xero"]) for d in link.drift] == [
        ("Reference", "Order INV-21", "Agreed by phone")
    ]

    drift_accept(portal=portal, link=link)
    # An automatic sync: someone touches the invoice in Bitrix24 (nothing Xero shows changes).
    b24.update_invoice(invoice_id, comments="called the customer")
    push(portal, invoice_id, sandbox=sandbox)

    assert xero_invoice(sandbox, link)["Reference"] == "Agreed by phone"
    link = linked(invoice_id)
    assert link.xero_accepted_hash and link.drift == []
    held = SyncLogEntry.objects.filter(bitrix24_id=str(invoice_id), direction="push").latest("created_at")
    assert held.outcome in ("changed_in_xero", "skipped_unchanged"), held.message

    # And a later sweep/webhook of the same Xero version is not drift again.
    statuses_pull_pending(portal_id=portal.pk)
    assert linked(invoice_id).drift == []


def test_xero_wins_setting_holds_automatic_pushes_of_a_drifted_invoice(portal, b24, sandbox):
    SyncSettings.objects.filter(portal=portal).update(drift_winner="xero")
    invoice_id = new_invoice(b24, "INV-22")
    push(portal, invoice_id, sandbox=sandbox)
    link = linked(invoice_id)
    edit_in_xero(sandbox, link, LineItems=line("40.00"))
    pull_webhooks(portal, link)
    b24.update_invoice(invoice_id, title="Order INV-22 (renamed)")
    push(portal, invoice_id, sandbox=sandbox)
    assert Decimal(str(xero_invoice(sandbox, link)["Total"])) == Decimal("40.00")
    held = SyncLogEntry.objects.filter(bitrix24_id=str(invoice_id), direction="push").latest("created_at")
    assert held.outcome == "changed_in_xero" and "keeps changes made in Xero" in held.message


def test_paid_and_due_and_the_online_link_after_a_partial_and_a_full_payment_and_a_paid_invoice_is_not_edited(
    portal, b24, sandbox
):
    invoice_id = new_invoice(b24, "INV-30", price="100.00")
    push(portal, invoice_id, sandbox=sandbox)
    link = linked(invoice_id)
    assert link.xero_amount_due == Decimal("100.00") and link.xero_amount_paid == Decimal("0.00")

    sandbox._call("POST", f"/_sandbox/xero/invoices/{link.xero_invoice_id}/pay", json={"amount": "30.00"})
    pull_webhooks(portal, link)
    link = linked(invoice_id)
    assert (link.xero_amount_paid, link.xero_amount_due, link.xero_fully_paid_on) == (
        Decimal("30.00"),
        Decimal("70.00"),
        None,
    )
    assert link.partly_paid
    noted = SyncLogEntry.objects.get(message__startswith="Partly paid", bitrix24_id=str(invoice_id))
    assert noted.message == "Partly paid in Xero: 30.00 paid, 70.00 due."
    assert online_url_ensure(portal=portal, link=link).startswith(sandbox.base_url + "/xero/in/")
    link = linked(invoice_id)
    assert link.xero_online_url.startswith(sandbox.base_url + "/xero/in/")
    page = sandbox.http.get(link.xero_online_url, timeout=10)
    assert page.status_code == 200 and link.xero_invoice_number in page.text and "due 70.00" in page.text

    sandbox._call("POST", f"/_sandbox/xero/invoices/{link.xero_invoice_id}/pay", json={})
    pull_webhooks(portal, link)
    link = linked(invoice_id)
    assert (link.xero_amount_paid, link.xero_amount_due) == (Decimal("100.00"), Decimal("0.00"))
    assert link.xero_fully_paid_on is not None and not link.partly_paid

    # Paid in Xero and different from Bitrix24: the button says why it cannot restore it.
    b24.call(
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": invoice_id,
            "productRows": [{"productName": "Socks", "price": "120.00", "quantity": 1}],
        },
    )
    push(portal, invoice_id, button=True)
    link = linked(invoice_id)
    assert link.last_error_permanent and "PAID in Xero" in link.last_error
    assert "differs from Bitrix24" in link.last_error and "120" in link.last_error


def xero_contact(sandbox, name: str) -> str:
    answer = sandbox._call("POST", "/_sandbox/xero/contacts", json={"Contacts": [{"Name": name}]})
    return answer["Contacts"][0]["ContactID"]


def test_reconciliation_finds_each_kind_of_difference_in_bulk_reads_and_repairs_them(portal, b24, sandbox):
    content, contact, status = (new_invoice(b24, n) for n in ("R-1", "R-2", "R-3"))
    push(portal, content, contact, status, sandbox=sandbox)
    links = {i: linked(i) for i in (content, contact, status)}
    # Changes made in Xero whose webhooks are lost (the inbox is not drained).
    edit_in_xero(sandbox, links[content], LineItems=line("55.00"))
    edit_in_xero(sandbox, links[contact], Contact={"ContactID": xero_contact(sandbox, "Somebody Else Ltd")})
    sandbox._call("POST", f"/_sandbox/xero/invoices/{links[status].xero_invoice_id}/status", json={"status": "VOIDED"})
    never_sent = new_invoice(b24, "R-4")  # on a stage that maps to AUTHORISED, never pushed
    orphan_url = f"https://{portal.domain}/crm/type/31/details/99999/"
    sandbox._call(
        "POST",
        "/_sandbox/xero/invoices",
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": xero_contact(sandbox, "Orphan Customer")},
                    "LineItems": line("10.00"),
                    "Url": orphan_url,
                    "Status": "AUTHORISED",
                }
            ]
        },
    )
    events_drained(sandbox)

    run = reconcile_portal(portal=portal, trigger="button")

    assert run.status == "done", run.error
    by_id = {row["bitrix24_id"]: row for row in run.rows}
    assert by_id[content]["kinds"] == ["content", "totals"]
    assert by_id[contact]["kinds"] == ["contact"]
    assert by_id[status]["kinds"] == ["status"]
    assert [m["bitrix24_id"] for m in run.missing] == [never_sent]
    assert [o["url"] for o in run.orphans] == [orphan_url]
    assert {k: v for k, v in run.counts.items() if v} == {
        "content": 1,
        "contact": 1,
        "totals": 1,
        "status": 1,
        "not_in_xero": 1,
        "orphan": 1,
    }
    # 3 linked invoices: one IDs read (ceil(3/50)) plus one page of the orphan listing.
    assert run.xero_calls == -(-run.checked // 50) + 1 == 2
    assert linked(content).drift  # the webhook was lost; the reconciliation marked it

    invoices_push_request(portal=portal, invoice_ids=repairable_ids(run), requested_by=None)
    invoices_push_pending(portal_id=portal.pk)

    assert Decimal(str(xero_invoice(sandbox, links[content])["Total"])) == Decimal("38.00")
    restored_contact = xero_invoice(sandbox, links[contact])["Contact"]["ContactID"]
    assert restored_contact == linked(contact).last_pushed_content["Contact"]["ContactID"]
    assert "VOIDED" in linked(status).last_error  # Xero forbids it: said per invoice
    assert linked(never_sent).xero_invoice_id is not None

    again = reconcile_portal(portal=portal, trigger="button")
    assert {k: v for k, v in again.counts.items() if v} == {"status": 1, "orphan": 1}


def test_preview_shows_what_xero_would_compute_and_why_an_invoice_would_be_held(portal, b24, sandbox):
    invoice_id = new_invoice(b24, "P-1", price="38.00")
    before = len(sandbox.calls(system="xero"))
    preview = invoice_preview(portal=portal, client=Bitrix24Api.for_portal(portal), invoice_id=invoice_id)
    assert preview.action == "create" and preview.status == "AUTHORISED"
    assert preview.contact_state == "to be created" and preview.contact_name == "Customer of P-1"
    assert [(line.account_code, line.tax_type, line.line_amount) for line in preview.lines] == [
        ("200", "NONE", Decimal("38.00"))
    ]
    assert preview.xero.total == preview.bitrix24.total == Decimal("38.00") and preview.totals_match
    writes = [c for c in sandbox.calls(system="xero")[before:] if c["method"] != "GET"]
    assert writes == [] and not InvoiceLink.objects.filter(bitrix24_id=invoice_id).exists()  # reads only

    # An amount entered by hand in Bitrix24 that the rows do not add up to: money's exactness holds it.
    manual = new_invoice(b24, "P-2", price="38.00")
    b24.update_invoice(manual, isManualOpportunity="Y", opportunity=999.99)
    by_hand = invoice_preview(portal=portal, client=Bitrix24Api.for_portal(portal), invoice_id=manual)
    assert by_hand.action == "held" and "entered by hand" in by_hand.reasons[0]
    assert (by_hand.bitrix24.total, by_hand.xero.total) == (Decimal("999.99"), Decimal("38.00"))

    push(portal, invoice_id, sandbox=sandbox)
    link = linked(invoice_id)
    edit_in_xero(sandbox, link, Reference="Changed in Xero")
    pull_webhooks(portal, link)
    drift_accept(portal=portal, link=linked(invoice_id))
    held = invoice_preview(portal=portal, client=Bitrix24Api.for_portal(portal), invoice_id=invoice_id)
    assert held.action == "held" and "accepted" in held.reasons[0]
    assert held.contact_state == "existing"


def test_the_pages_show_the_badge_the_diff_accept_preview_payments_and_reconciliation(portal, b24, sandbox, app_url):
    invoice_id = new_invoice(b24, "W-1")
    push(portal, invoice_id, sandbox=sandbox)
    link = linked(invoice_id)
    edit_in_xero(sandbox, link, LineItems=line("999.00"))
    pull_webhooks(portal, link)
    sandbox._call("POST", f"/_sandbox/xero/invoices/{link.xero_invoice_id}/pay", json={"amount": "100.00"})
    frame = open_frame(sandbox, 1)

    _, listing = page(frame, app_url)
    (row,) = listing.select("[data-test=invoice-row]")
    assert row.select_one("[data-test=drift-badge]").get_text(strip=True) == "Changed in Xero"

    response, detail = page(frame, app_url, f"/app/invoices/{invoice_id}/")
    assert response.status_code == 200
    diff = {
        tr["data-field"]: (
            tr.select_one("[data-test=drift-bitrix24]").get_text(strip=True),
            tr.select_one("[data-test=drift-xero]").get_text(strip=True),
        )
        for tr in detail.select("[data-test=drift-row]")
    }
    assert diff["LineItems[0].UnitAmount"] == ("38.00", "999.00") and diff["Total"] == ("38.00", "999.00")
    assert detail.select_one("[data-test=online-invoice-url]")["value"].startswith(sandbox.base_url + "/xero/in/")

    answer = post_json(frame, app_url, f"/app/invoices/{invoice_id}/accept/", {})
    assert answer.status_code == 200 and answer.json()["jobs"] == []
    _, detail = page(frame, app_url, f"/app/invoices/{invoice_id}/")
    assert not detail.select("[data-test=drift-row]") and detail.select_one("[data-test=drift-accepted]")

    response, preview = page(frame, app_url, f"/app/invoices/{invoice_id}/preview/")
    assert response.status_code == 200
    assert preview.select_one("[data-test=preview-held]") is not None
    assert preview.select_one("[data-test=preview-xero-total]").get_text(strip=True) == "38.00"

    started = post_json(frame, app_url, "/app/reconcile/run/", {})
    assert started.status_code == 200 and started.json()["reload"] is True
    _, running = page(frame, app_url, "/app/reconcile/")
    assert running.select_one("[data-test=reconcile-summary]")["data-status"] == "running"
    run = ReconciliationRun.objects.get(portal=portal, status="running")
    reconcile_task(portal.pk, "button", run.pk)  # what the worker runs
    response, recon = page(frame, app_url, "/app/reconcile/")
    assert response.status_code == 200
    assert recon.select_one("[data-test=kind-content]")["data-count"] == "0"  # accepted: not a difference
    assert recon.select_one("[data-test=reconcile-summary]")["data-status"] == "done"


def test_a_linked_companys_new_name_phone_and_email_reach_its_xero_contact(portal, b24, sandbox):
    invoice_id = new_invoice(b24, "C-1")
    push(portal, invoice_id, sandbox=sandbox)
    company_id = int(b24.call("crm.item.get", {"entityTypeId": 31, "id": invoice_id})["item"]["companyId"])
    contact_link = ContactLink.objects.get(bitrix24_kind="company", bitrix24_id=company_id)
    assert contacts_follow(portal=portal) == 0  # nothing changed since the link was made

    b24.call(
        "crm.company.update",
        {
            "id": company_id,
            "fields": {
                "TITLE": "Customer of C-1 (renamed)",
                "PHONE": [{"VALUE": "+64 9 555 0101", "VALUE_TYPE": "WORK"}],
                "EMAIL": [{"VALUE": "accounts@c1.example", "VALUE_TYPE": "WORK"}],
            },
        },
    )
    assert contacts_follow(portal=portal) == 1

    org = sandbox.state()["xero"]["organisations"][0]
    contact = next(c for c in org["contacts"] if c["ContactID"] == str(contact_link.xero_contact_id))
    assert contact["Name"] == "Customer of C-1 (renamed)"
    assert contact["EmailAddress"] == "accounts@c1.example"
    assert any(p.get("PhoneNumber") for p in contact.get("Phones", []))
    assert ContactLink.objects.get(pk=contact_link.pk).xero_name == "Customer of C-1 (renamed)"
    assert contacts_follow(portal=portal) == 0  # the same details are not sent twice
