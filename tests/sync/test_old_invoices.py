"""A portal on Bitrix24's old invoices (crm.invoice.*, entity type 5), and one with old and new ones,
on the real stack: the sandbox portal set to "invoices": "old" | "both" before the install, the
connector's live server, a Celery worker for the end-to-end ones. Nothing of ours is mocked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from accounts.models import Portal
from accounts.services.sandbox import sandbox_connect_xero
from sync.models import (
    Direction,
    InvoiceLink,
    StageMapping,
    SyncJob,
    SyncLogEntry,
    SyncSettings,
    Trigger,
    XeroStatusMapping,
)
from sync.services.log import sync_log_write
from sync.services.stages import stage_map_refresh
from tests.accounts.conftest import open_frame
from tests.sync.conftest import setup_done, wait_for
from tests.sync.test_pages_invoices import page, row_ids, signed_in
from tests.sync.test_pull_e2e import settle, wire

pytestmark = pytest.mark.django_db(transaction=True)


def install(sandbox, app_url: str, invoices: str) -> Portal:
    sandbox.bitrix24_settings(invoices=invoices)
    installed = sandbox.bitrix24_install(
        app_url=f"{app_url}/bitrix24/app/",
        install_url=f"{app_url}/bitrix24/install/",
        event_url=f"{app_url}/bitrix24/events/",
    )
    assert installed["install_status"] == 200, installed
    return Portal.objects.get(member_id=installed["member_id"])


@pytest.fixture
def old_portal(sandbox, app_url) -> Portal:
    return install(sandbox, app_url, "old")


def rest(sandbox, user: dict, method: str, params: dict):
    answer = sandbox.bitrix24_rest(method, params, auth=user["access_token"])
    assert "error" not in answer, answer
    return answer["result"]


def old_invoice(sandbox, user: dict, company_id: int, *, rows=None, responsible: int | None = None, **fields) -> int:
    """An old invoice billed to a company (payer type CRM_COMPANY, a payment method of the portal)."""
    person_type = next(p["ID"] for p in rest(sandbox, user, "crm.persontype.list", {}) if p["NAME"] == "CRM_COMPANY")
    pay_system = rest(sandbox, user, "crm.paysystem.list", {"filter": {"PERSON_TYPE_ID": person_type}})[0]["ID"]
    rows = rows or [
        {"PRODUCT_NAME": "Merino socks", "PRICE": 24.9, "QUANTITY": 4},
        {"PRODUCT_NAME": "Rain jacket", "PRICE": 189, "QUANTITY": 1, "VAT_RATE": 0.15, "VAT_INCLUDED": "N"},
        {"PRODUCT_NAME": "Beanie", "PRICE": 30, "DISCOUNT_PRICE": 5, "QUANTITY": 2},
    ]
    values = {
        "ORDER_TOPIC": "Spring order",
        "PERSON_TYPE_ID": person_type,
        "PAY_SYSTEM_ID": pay_system,
        "UF_COMPANY_ID": company_id,
        "PRODUCT_ROWS": rows,
        **fields,
    }
    if responsible:
        values["RESPONSIBLE_ID"] = responsible
    return rest(sandbox, user, "crm.invoice.add", {"fields": values})


def test_install_on_old_invoices_binds_their_events_and_toolbars_and_maps_their_statuses(sandbox, old_portal):
    assert old_portal.invoice_mode == Portal.InvoiceMode.CLASSIC
    app = sandbox.state()["bitrix24"]["app"]
    bound = {b["event"] for b in app["bindings"]}
    assert bound >= {"ONCRMINVOICEADD", "ONCRMINVOICEUPDATE", "ONCRMINVOICESETSTATUS", "ONCRMINVOICEDELETE"}
    assert not any(name.startswith("ONCRMDYNAMICITEM") for name in bound)
    assert {p["placement"] for p in app["placements"]} == {"CRM_INVOICE_DETAIL_TOOLBAR", "CRM_INVOICE_LIST_TOOLBAR"}
    # The statuses, a custom one included, are the stage map's "category 0" and map both ways.
    admin = sandbox._call("POST", "/_sandbox/bitrix24/tokens", json={"user": 1})
    rest(sandbox, admin, "crm.invoice.status.add", {"fields": {"NAME": "Awaiting approval", "SORT": 25}})
    stage_map_refresh(portal=old_portal)
    stages = dict(StageMapping.objects.filter(portal=old_portal).values_list("stage_id", "xero_status"))
    custom = next(s for s in StageMapping.objects.filter(portal=old_portal) if s.name == "Awaiting approval")
    assert set(stages) == {"N", "S", "P", "D", custom.stage_id}
    assert {s.category_id for s in StageMapping.objects.filter(portal=old_portal)} == {0}
    # Paid is left as it is while payments are not recorded (issue 12: no default Xero would refuse).
    assert (stages["N"], stages["P"], stages[custom.stage_id]) == ("DRAFT", "", "AUTHORISED")
    back = dict(
        XeroStatusMapping.objects.filter(portal=old_portal, entity_type=5).values_list("xero_status", "stage_id")
    )
    assert back["PAID"] == "P" and not XeroStatusMapping.objects.filter(portal=old_portal, entity_type=31).exists()


def test_the_list_as_an_own_invoices_user_shows_only_their_old_invoices(sandbox, old_portal, app_url):
    lead = sandbox.bitrix24_user("Rita Lead", admin=False, invoices="all")
    owen = sandbox.bitrix24_user("Owen Own", admin=False, invoices="own", time_zone="UTC")  # UTC days
    company = rest(sandbox, lead, "crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})
    owens = [old_invoice(sandbox, lead, company, responsible=owen["id"]) for _ in range(11)]
    ritas = [old_invoice(sandbox, lead, company, responsible=lead["id"]) for _ in range(2)]

    frame = signed_in(sandbox, owen)
    response, soup = page(frame, app_url, size=10, order="asc")
    assert response.status_code == 200
    assert row_ids(soup) == owens[:10]
    first = soup.select_one("[data-test=invoice-row]")
    assert first.select_one("[data-test=cell-client]").get_text(strip=True).startswith("Kauri Coast")
    assert first.select_one("[data-test=cell-stage]").get_text(strip=True) == "New"
    assert first.select_one("[data-test=cell-amount]").get_text(strip=True) == "376.95\xa0NZD"
    assert not soup.select("[data-test=invoice-kinds]")  # one kind only: no switch
    _, second = page(frame, app_url, size=10, order="asc", page=2)
    assert row_ids(second) == owens[10:]
    _, newest = page(frame, app_url, size=10)
    assert row_ids(newest)[0] == owens[-1]
    # The last-modified range (whole days in the user's zone, UTC) reaches crm.invoice.list as DATE_UPDATE bounds.
    today = datetime.now(UTC).date()
    _, changed_today = page(frame, app_url, size=25, **{"from": today.isoformat(), "to": today.isoformat()})
    assert sorted(row_ids(changed_today)) == owens
    _, before = page(frame, app_url, size=25, to=(today - timedelta(days=1)).isoformat())
    assert row_ids(before) == []
    # Another user's invoice is refused by Bitrix24 itself, in its words.
    denied, _ = page(frame, app_url, path=f"/app/invoices/{ritas[0]}/", kind=5)
    assert denied.status_code == 403
    shown, detail = page(frame, app_url, path=f"/app/invoices/{owens[0]}/", kind=5)
    assert shown.status_code == 200 and "Rain jacket" in shown.text
    preview_link = detail.select_one("[data-test=preview-link]")["href"]
    assert preview_link.endswith("&kind=5")
    preview, shown_preview = page(frame, app_url, path=f"/app/invoices/{owens[0]}/preview/", kind=5)
    verdict = shown_preview.select_one("[data-test=preview]")
    # Read and mapped as an old invoice: refused only for the 15 % rate no Xero tax type is set for.
    assert preview.status_code == 200 and verdict is not None, preview.text[-2000:]
    assert "15" in verdict.get_text(" ", strip=True), verdict.get_text(" ", strip=True)

    # "Create / Edit on Xero" for old invoices: the user's own token decides what may be sent.
    url = f"{app_url}/app/invoices/push/"
    headers = {"X-Frame-Token": frame.token}
    sandbox_connect_xero(portal=old_portal)
    setup_done(old_portal)  # before Setup only an admin's buttons work (issue 12)
    refused = frame.http.post(url, json={"ids": [owens[0], ritas[0]], "kind": "5"}, headers=headers, timeout=30)
    assert refused.status_code == 403 and refused.json()["refused"] == [ritas[0]], refused.text
    queued = frame.http.post(url, json={"ids": owens[:2], "kind": "5"}, headers=headers, timeout=30)
    assert queued.status_code == 202, queued.text
    targets = set(SyncJob.objects.filter(pk__in=queued.json()["jobs"]).values_list("target", flat=True))
    assert targets == {f"5:{owens[0]}", f"5:{owens[1]}"}

    # The sync log as this user: old invoices' entries (details.entity_type 5) checked against what
    # crm.invoice.list shows them, linked with kind=5.
    for invoice_id in (owens[0], ritas[0]):
        sync_log_write(
            portal=old_portal,
            direction=Direction.PUSH,
            trigger=Trigger.BUTTON,
            outcome=SyncLogEntry.Outcome.FAILED,
            bitrix24_id=invoice_id,
            message="test entry",
            details={"entity_type": 5},
        )
    _, log = page(frame, app_url, path="/app/log/")
    links = [a["href"] for a in log.select("[data-test=log-invoice]")]
    assert len(links) == 1 and f"/app/invoices/{owens[0]}/" in links[0] and links[0].endswith("&kind=5"), links
    assert log.select_one("[data-test=log-hidden]") is not None

    # The placements: the invoice card's toolbar opens that invoice, the list's toolbar the list.
    card = open_frame(sandbox, owen["id"], placement="CRM_INVOICE_DETAIL_TOOLBAR", options={"ID": str(owens[0])})
    assert urlparse(card.response.url).path == f"/app/invoices/{owens[0]}/"
    assert parse_qs(urlparse(card.response.url).query)["kind"] == ["5"]
    assert card.response.status_code == 200 and "Merino socks" in card.response.text
    listed = open_frame(sandbox, owen["id"], placement="CRM_INVOICE_LIST_TOOLBAR")
    assert urlparse(listed.response.url).path == "/app/invoices/" and listed.response.status_code == 200

    _, everything = page(signed_in(sandbox, lead), app_url, size=25, order="asc")
    assert row_ids(everything) == sorted(owens + ritas)


def test_a_portal_with_both_kinds_lists_each_with_a_switch_and_a_kind_column(sandbox, app_url):
    portal = install(sandbox, app_url, "both")
    assert portal.invoice_mode == Portal.InvoiceMode.BOTH
    assert {p["placement"] for p in sandbox.state()["bitrix24"]["app"]["placements"]} >= {
        "CRM_SMART_INVOICE_DETAIL_TOOLBAR",
        "CRM_INVOICE_DETAIL_TOOLBAR",
    }
    lead = sandbox.bitrix24_user("Rita Lead", admin=False, invoices="all")
    company = rest(sandbox, lead, "crm.company.add", {"fields": {"TITLE": "Both Ways Ltd"}})
    new_id = rest(sandbox, lead, "crm.item.add", {"entityTypeId": 31, "fields": {"title": "New one"}})["item"]["id"]
    old_id = old_invoice(sandbox, lead, company, ORDER_TOPIC="Old one")

    frame = signed_in(sandbox, lead)
    _, soup = page(frame, app_url)
    kinds = {a["data-kind"]: a for a in soup.select("[data-test=invoice-kind]")}
    assert set(kinds) == {"31", "5"} and kinds["31"].attrs.get("aria-current") == "page"
    assert [r["data-kind"] for r in soup.select("[data-test=invoice-row]")] == ["31"]
    assert row_ids(soup) == [new_id]
    assert soup.select_one("[data-test=cell-kind]").get_text(strip=True) == "New"

    _, old = page(frame, app_url, kind=5)
    assert row_ids(old) == [old_id]
    assert old.select_one("[data-test=cell-kind]").get_text(strip=True) == "Old"
    assert old.select_one("[data-test=cell-title]").get_text(strip=True) == "Old one"
    assert old.select_one("[data-test=actions]")["data-kind"] == "5"
    # The stage map holds both: the pipeline's stages and the old statuses, a Xero map for each.
    stage_map_refresh(portal=portal)
    assert {0, 3} <= set(StageMapping.objects.filter(portal=portal).values_list("category_id", flat=True))
    assert set(XeroStatusMapping.objects.filter(portal=portal).values_list("entity_type", flat=True)) == {5, 31}


# --- end to end on a real worker ------------------------------------------------------------------------


def xero_invoice(sandbox, portal: Portal, reference: str) -> dict | None:
    tenant = portal.xero_connection.tenant_id
    org = next(o for o in sandbox.state()["xero"]["organisations"] if o["tenant_id"] == tenant)
    return next((i for i in org["invoices"] if i.get("Reference") == reference), None)


@pytest.mark.slow
def test_old_invoice_to_xero_with_every_row_custom_status_and_paid_back(sandbox, old_portal, app_url, worker):
    admin = sandbox._call("POST", "/_sandbox/bitrix24/tokens", json={"user": 1})
    custom_id = rest(sandbox, admin, "crm.invoice.status.add", {"fields": {"NAME": "Awaiting approval", "SORT": 25}})
    custom = rest(sandbox, admin, "crm.invoice.status.get", {"id": custom_id})["STATUS_ID"]
    sandbox_connect_xero(portal=old_portal)
    wire(old_portal, sandbox, app_url)
    SyncSettings.objects.filter(portal=old_portal).update(setup_completed=True)
    assert dict(StageMapping.objects.filter(portal=old_portal).values_list("stage_id", "xero_status"))[custom] == (
        "AUTHORISED"
    )
    rep = sandbox.bitrix24_user("Rita Sales", admin=False, invoices="all")
    company = rest(sandbox, rep, "crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})

    # Created in Bitrix24 (ONCRMINVOICEADD) -> in Xero with every row, to the cent.
    invoice_id = old_invoice(sandbox, rep, company, ORDER_TOPIC="Old spring order")
    pushed = wait_for(lambda: xero_invoice(sandbox, old_portal, "Old spring order"), timeout=30, what="Xero invoice")
    assert [li["Description"] for li in pushed["LineItems"]] == ["Merino socks", "Rain jacket", "Beanie"]
    assert (str(pushed["Total"]), str(pushed["TotalTax"]), pushed["Status"]) == ("376.95", "28.35", "DRAFT")
    assert pushed["Contact"]["Name"] == "Kauri Coast Outfitters Ltd"
    links = InvoiceLink.objects.filter(portal=old_portal, bitrix24_entity_type=5, bitrix24_id=invoice_id)
    link = wait_for(lambda: links.filter(xero_invoice_id__isnull=False).first(), what="the link recorded")
    assert str(link.xero_invoice_id) == pushed["InvoiceID"]

    # A custom status (ONCRMINVOICEUPDATE + ONCRMINVOICESETSTATUS) -> its mapped Xero status.
    rest(sandbox, rep, "crm.invoice.update", {"id": invoice_id, "fields": {"STATUS_ID": custom}})
    wait_for(
        lambda: xero_invoice(sandbox, old_portal, "Old spring order")["Status"] == "AUTHORISED",
        timeout=30,
        what="AUTHORISED in Xero",
    )

    # Paid in Xero -> the old invoice's paid status (crm.invoice.update STATUS_ID), PAYED Y.
    sandbox.xero_pay(pushed["InvoiceID"])
    paid = wait_for(
        lambda: (got := rest(sandbox, rep, "crm.invoice.get", {"id": invoice_id}))["STATUS_ID"] == "P" and got,
        timeout=30,
        what="the old invoice paid",
    )
    assert paid["PAYED"] == "Y"
    settle(old_portal)
    # Our own status write came back as an event: dropped as an echo, nothing more sent to Xero.
    outcomes = list(
        SyncLogEntry.objects.filter(portal=old_portal, bitrix24_id=str(invoice_id)).values_list("outcome", flat=True)
    )
    assert SyncLogEntry.Outcome.FAILED not in outcomes
    assert SyncLogEntry.Outcome.ECHO_DROPPED in outcomes, outcomes
    assert xero_invoice(sandbox, old_portal, "Old spring order")["Status"] == "PAID"


def test_setup_on_a_portal_with_both_kinds_maps_xero_statuses_for_each(sandbox, app_url):
    portal = install(sandbox, app_url, "both")
    frame = open_frame(sandbox, 1)
    response, soup = page(frame, app_url, path="/app/setup/")
    assert response.status_code == 200
    tables = {t["data-entity-type"]: t for t in soup.select("[data-test=xero-table]")}
    assert set(tables) == {"31", "5"}
    old_choices = [o["value"] for o in tables["5"].select("[data-xero-status=PAID]")[0].all() if o.tag == "option"]
    assert old_choices == ["", "N", "S", "P", "D"]
    names = {s["name"] for s in soup.select("[data-test=xero-select]")}
    assert {"xero:PAID", "xero5:PAID"} <= names

    form = {"ft": frame.token, "xero5:PAID": "S", "xero:PAID": ""}
    saved = frame.http.post(f"{app_url}/app/setup/", data=form, timeout=30)
    assert saved.status_code in (200, 303), saved.text[:500]
    assert XeroStatusMapping.objects.get(portal=portal, entity_type=5, xero_status="PAID").stage_id == "S"
    assert XeroStatusMapping.objects.get(portal=portal, entity_type=31, xero_status="PAID").stage_id == ""
    # A new invoice's stage is not an old invoice's status: refused, nothing saved.
    wrong = frame.http.post(f"{app_url}/app/setup/", data={**form, "xero5:PAID": "DT31_3:P"}, timeout=30)
    assert wrong.status_code == 400 and "is not an old invoice status" in wrong.text, wrong.text[-1500:]
    assert XeroStatusMapping.objects.get(portal=portal, entity_type=5, xero_status="PAID").stage_id == "S"
