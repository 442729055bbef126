"""Importing Xero contacts into Bitrix24 companies and Xero items into products, against the sandbox;
the page, the progress endpoint, and the job path with a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from xero_python.accounting import Contact, Contacts, Item, Items, Phone, Purchase

from accounts.models import XeroConnection
from integrations.xero.transport import XeroTransport
from sync.models import ContactLink, Direction, ItemLink, SyncJob, SyncLogEntry, Trigger
from sync.services.imports import contacts_import, import_progress, import_run, items_import
from tests.accounts import conftest as accounts_fixtures
from tests.accounts.conftest import open_frame
from tests.conftest import ROOT, WorkerProcess, _worker_env
from tests.factories import SyncJobFactory
from tests.integrations.conftest import xero_connect

# The install and frame sign-in fixtures of the accounts tests, shared here.
acme = accounts_fixtures.acme
admin_frame = accounts_fixtures.admin_frame
app_url = accounts_fixtures.app_url
clerk = accounts_fixtures.clerk

ACME = {
    "Name": "ACME Ltd",
    "EmailAddress": "ap@acme.example",
    "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "555 0100", "PhoneAreaCode": "09", "PhoneCountryCode": "64"}],
    "Addresses": [
        {
            "AddressType": "STREET",
            "AddressLine1": "1 Queen St",
            "City": "Auckland",
            "PostalCode": "1010",
            "Country": "NZ",
        }
    ],
}
BETA = {"Name": "Beta Traders", "EmailAddress": "hello@beta.example"}
GONE = {"Name": "Old Customer", "ContactStatus": "ARCHIVED"}


@pytest.fixture
def connected(acme) -> XeroConnection:
    return xero_connect(acme)


def xero_create(sandbox, key: str, rows: list[dict]) -> list[dict]:
    created = sandbox._call("POST", f"/_sandbox/xero/{key.lower()}", json={key: rows})
    assert created["failed"] == 0, created
    return created[key]


def companies(sandbox) -> list[dict]:
    return sandbox.state()["bitrix24"]["companies"]


def catalog(sandbox) -> tuple[list[dict], list[dict]]:
    state = sandbox.state()["bitrix24"]
    return state["products"], state["prices"]


def new_job(acme, kind, target: str = "") -> SyncJob:
    return SyncJobFactory(portal=acme, kind=kind, target=target, trigger=Trigger.BUTTON, status="running")


def test_contacts_become_linked_companies_and_a_second_import_updates_them(sandbox, acme, connected):
    acme_id, beta_id, _ = (c["ContactID"] for c in xero_create(sandbox, "Contacts", [ACME, BETA, GONE]))

    summary = contacts_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_CONTACTS), everyone=True)
    assert (summary.created, summary.updated, summary.skipped, summary.failed) == (2, 0, 1, 0), summary
    assert summary.processed == summary.total == 3
    rows = {c["TITLE"]: c for c in companies(sandbox)}
    assert set(rows) == {"ACME Ltd", "Beta Traders"}
    company = rows["ACME Ltd"]
    assert [p["VALUE"] for p in company["PHONE"]] == ["+64 09 555 0100"]
    assert [e["VALUE"] for e in company["EMAIL"]] == ["ap@acme.example"]
    assert (company["ADDRESS"], company["ADDRESS_CITY"], company["ADDRESS_POSTAL_CODE"]) == (
        "1 Queen St",
        "Auckland",
        "1010",
    )
    assert (company["ORIGINATOR_ID"], company["ORIGIN_ID"]) == ("xero", acme_id)
    link = ContactLink.objects.get(portal=acme, xero_contact_id=acme_id)
    assert (link.bitrix24_kind, link.bitrix24_id) == ("company", int(company["ID"]))

    # The phone changes in Xero, through the API.
    XeroTransport(connected).call(
        "update_contact",
        contact_id=acme_id,
        contacts=Contacts(
            contacts=[
                Contact(
                    contact_id=acme_id,
                    phones=[
                        Phone(
                            phone_type="DEFAULT", phone_number="555 0199", phone_area_code="09", phone_country_code="64"
                        )
                    ],
                )
            ]
        ),
    )
    summary = contacts_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_CONTACTS), everyone=True)
    assert (summary.created, summary.updated, summary.skipped, summary.failed) == (0, 1, 2, 0), summary
    after = companies(sandbox)
    assert len(after) == 2  # no duplicates
    company = next(c for c in after if c["ORIGIN_ID"] == acme_id)
    assert [p["VALUE"] for p in company["PHONE"]] == ["+64 09 555 0199"]  # replaced by ID, not appended
    assert [e["VALUE"] for e in company["EMAIL"]] == ["ap@acme.example"]
    assert ContactLink.objects.filter(portal=acme).count() == 2
    assert str(ContactLink.objects.get(portal=acme, bitrix24_id=int(company["ID"])).xero_contact_id) == acme_id
    assert beta_id in {str(x) for x in ContactLink.objects.values_list("xero_contact_id", flat=True)}


def test_by_default_only_customers_come_in_and_company_type_says_what_each_contact_is(sandbox, acme, connected):
    """Xero sets IsCustomer/IsSupplier from the invoices and bills entered against a contact
    (xero_accounting.yaml, Contact); clients cannot set them."""
    shop, vendor, both, _ = (
        c["ContactID"]
        for c in xero_create(
            sandbox,
            "Contacts",
            [{"Name": "Shop Ltd"}, {"Name": "Vendor Ltd"}, {"Name": "Both Ltd"}, {"Name": "Nobody Ltd"}],
        )
    )
    line = [{"Description": "Thing", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]
    xero_create(
        sandbox,
        "Invoices",
        [
            {"Type": "ACCREC", "Contact": {"ContactID": shop}, "LineItems": line},
            {"Type": "ACCPAY", "Contact": {"ContactID": vendor}, "LineItems": line},
            {"Type": "ACCREC", "Contact": {"ContactID": both}, "LineItems": line},
            {"Type": "ACCPAY", "Contact": {"ContactID": both}, "LineItems": line},
        ],
    )

    summary = contacts_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_CONTACTS))
    assert (summary.created, summary.skipped) == (2, 2), summary
    assert {c["TITLE"]: c["COMPANY_TYPE"] for c in companies(sandbox)} == {
        "Shop Ltd": "CUSTOMER",
        "Both Ltd": "CUSTOMER",
    }

    summary = contacts_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_CONTACTS, "all"), everyone=True)
    assert summary.created == 2, summary
    assert {c["TITLE"]: c["COMPANY_TYPE"] for c in companies(sandbox)} == {
        "Shop Ltd": "CUSTOMER",
        "Both Ltd": "CUSTOMER",
        "Vendor Ltd": "SUPPLIER",
        "Nobody Ltd": "OTHER",
    }


def test_a_company_created_but_not_linked_is_adopted_instead_of_duplicated(sandbox, acme, connected):
    xero_create(sandbox, "Contacts", [ACME])
    contacts_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_CONTACTS), everyone=True)
    ContactLink.objects.filter(portal=acme).delete()  # as if the run died between add and link
    from connector.coordination import redis_client

    redis_client().flushdb()
    summary = contacts_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_CONTACTS), everyone=True)
    assert (summary.created, summary.updated) == (0, 1)
    assert len(companies(sandbox)) == 1 and ContactLink.objects.filter(portal=acme).count() == 1


def test_items_become_products_with_prices_in_the_chosen_currency_and_update_on_reimport(sandbox, acme, connected):
    widget, service = xero_create(
        sandbox,
        "Items",
        [
            {
                "Code": "WID-1",
                "Name": "Widget",
                "Description": "A blue widget",
                "SalesDetails": {"UnitPrice": 12.5, "AccountCode": "200"},
            },
            {"Code": "SVC-H", "Name": "Consulting hour", "SalesDetails": {"UnitPrice": 150, "AccountCode": "260"}},
        ],
    )
    summary = items_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_ITEMS, "USD"), currency="USD")
    assert (summary.created, summary.updated, summary.skipped, summary.failed) == (2, 0, 0, 0), summary
    products, prices = catalog(sandbox)
    by_name = {p["name"]: p for p in products}
    assert set(by_name) == {"Widget", "Consulting hour"}
    assert (by_name["Widget"]["code"], by_name["Widget"]["detailText"]) == ("WID-1", "A blue widget")
    price = next(p for p in prices if p["productId"] == by_name["Widget"]["id"])
    assert (price["price"], price["currency"], price["catalogGroupId"]) == (12.5, "USD", 1)
    link = ItemLink.objects.get(portal=acme, xero_item_id=widget["ItemID"])
    assert (link.bitrix24_product_id, link.xero_item_code, link.xero_sales_account_code) == (
        by_name["Widget"]["id"],
        "WID-1",
        "200",
    )

    XeroTransport(connected).call(
        "update_item",
        item_id=widget["ItemID"],
        items=Items(
            items=[Item(code="WID-1", name="Widget XL", sales_details=Purchase(unit_price=14.0, account_code="200"))]
        ),
    )
    summary = items_import(portal=acme, job=new_job(acme, SyncJob.Kind.IMPORT_ITEMS, "USD"), currency="USD")
    assert (summary.created, summary.updated, summary.skipped, summary.failed) == (0, 1, 1, 0), summary
    products, prices = catalog(sandbox)
    assert len(products) == 2 and len(prices) == 2  # updated in place
    product = next(p for p in products if p["id"] == link.bitrix24_product_id)
    assert product["name"] == "Widget XL"
    assert next(p for p in prices if p["productId"] == product["id"])["price"] == 14.0
    assert ItemLink.objects.filter(portal=acme).count() == 2
    assert service["Code"] == "SVC-H"


def test_a_run_logs_its_summary_and_the_progress_endpoint_reports_it(client, sandbox, acme, connected, admin_frame):
    xero_create(sandbox, "Contacts", [ACME, BETA])
    job = new_job(acme, SyncJob.Kind.IMPORT_CONTACTS, "all")
    import_run(job)
    entry = SyncLogEntry.objects.get(portal=acme, direction=Direction.IMPORT)
    assert entry.details["job_id"] == job.pk and "2 created" in entry.message
    SyncJob.objects.filter(pk=job.pk).update(status="done")
    response = client.get("/app/import/progress/", {"job": job.pk, "ft": admin_frame.token})
    assert response.status_code == 200
    body = response.json()
    assert {
        k: body[k] for k in ("status", "processed", "total", "created", "updated", "skipped", "failed", "errors")
    } == {
        "status": "done",
        "processed": 2,
        "total": 2,
        "created": 2,
        "updated": 0,
        "skipped": 0,
        "failed": 0,
        "errors": [],
    }
    # After Redis forgot the run, the log entry still answers.
    from connector.coordination import redis_client

    redis_client().flushdb()
    job.refresh_from_db()
    assert import_progress(job)["created"] == 2
    assert client.get("/app/import/progress/", {"job": 999999, "ft": admin_frame.token}).status_code == 404


def test_the_import_page_shows_actions_currencies_and_an_empty_state(client, sandbox, acme, connected, admin_frame):
    html = client.get("/app/import/", {"ft": admin_frame.token}).content.decode()
    for test_id in ("import-contacts", "import-items", "import-currency", "import-empty"):
        assert f'data-test="{test_id}"' in html
    assert '<option value="NZD" selected' in html  # the portal's base currency
    assert "disabled" not in html.split('data-test="import-contacts"')[1].split(">")[0]


def test_the_import_page_without_xero_explains_and_disables_the_buttons(client, sandbox, acme, admin_frame):
    html = client.get("/app/import/", {"ft": admin_frame.token}).content.decode()
    assert 'data-test="import-xero-missing"' in html
    assert "disabled" in html.split('data-test="import-contacts"')[1].split(">")[0]
    response = client.post(
        "/app/import/", {"ft": admin_frame.token, "kind": "contacts"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and "Connect Xero" in response.json()["error"]
    assert not SyncJob.objects.filter(portal=acme).exists()


def test_a_clerk_cannot_import(client, sandbox, acme, connected, clerk):
    frame = open_frame(sandbox, clerk["id"])
    response = client.post("/app/import/", {"ft": frame.token, "kind": "contacts"})
    assert response.status_code == 403
    assert not SyncJob.objects.filter(portal=acme).exists()


@pytest.fixture
def import_worker(transactional_db, sandbox):
    """A real Celery worker that also loads sync.tasks.imports (until sync.tasks imports it itself)."""

    class Worker(WorkerProcess):
        def start(self) -> None:
            log = ROOT / ".pytest_cache" / f"worker-{os.getpid()}.log"
            log.parent.mkdir(exist_ok=True)
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "celery_app",
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=1",
                    "--pool=prefork",
                    "--without-gossip",
                    "--without-mingle",
                    "--include=sync.tasks.imports",
                    "-n",
                    f"import-{os.getpid()}-{time.monotonic_ns()}@%h",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=open(log, "a"),  # noqa: SIM115 - the worker process writes to it until it stops
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.wait_ready()

    worker = Worker(_worker_env())
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.mark.slow
def test_the_button_runs_the_import_job_end_to_end_on_a_worker(
    client, sandbox, acme, connected, admin_frame, import_worker
):
    xero_create(sandbox, "Contacts", [ACME, BETA])
    xero_create(sandbox, "Items", [{"Code": "WID-1", "Name": "Widget", "SalesDetails": {"UnitPrice": 12.5}}])
    started = client.post(
        "/app/import/", {"ft": admin_frame.token, "kind": "contacts", "contacts": "all"}, HTTP_ACCEPT="application/json"
    )
    assert started.status_code == 202, started.content
    job_id = started.json()["job"]
    # A second click while it runs gives the same job, not a second import.
    again = client.post(
        "/app/import/", {"ft": admin_frame.token, "kind": "contacts", "contacts": "all"}, HTTP_ACCEPT="application/json"
    )
    assert again.json()["job"] == job_id
    items = client.post("/app/import/", {"ft": admin_frame.token, "kind": "items", "currency": "EUR"})
    assert items.status_code == 303 and "job=" in items["Location"]
    items_job = SyncJob.objects.get(portal=acme, kind=SyncJob.Kind.IMPORT_ITEMS)
    assert (items_job.target, items_job.trigger, items_job.requested_by) == ("EUR", "button", 1)

    def wait(job: int) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = client.get("/app/import/progress/", {"job": job, "ft": admin_frame.token}).json()
            if body["status"] in ("done", "failed"):
                return body
            time.sleep(0.3)
        raise AssertionError(f"job {job} did not finish: {body}")

    contacts = wait(job_id)
    assert (contacts["status"], contacts["created"], contacts["processed"], contacts["total"]) == ("done", 2, 2, 2), (
        contacts
    )
    products = wait(items_job.pk)
    assert (products["status"], products["created"]) == ("done", 1), products
    assert {c["TITLE"] for c in companies(sandbox)} == {"ACME Ltd", "Beta Traders"}
    assert catalog(sandbox)[1][0]["currency"] == "EUR"
    html = client.get("/app/import/", {"ft": admin_frame.token}).content.decode()
    assert html.count('data-test="import-progress"') >= 2 and 'data-test="import-empty"' not in html


def test_the_by_kind_processor_runs_a_pending_import_whose_message_was_lost(sandbox, acme, connected):
    from sync.tasks.imports import imports_pending_task

    xero_create(sandbox, "Contacts", [BETA])
    job = SyncJobFactory(portal=acme, kind=SyncJob.Kind.IMPORT_CONTACTS, target="all", trigger=Trigger.BUTTON)
    results = imports_pending_task(acme.pk)  # what the sweeper would dispatch
    job.refresh_from_db()
    assert job.status == "done" and results[0]["created"] == 1
    assert imports_pending_task(acme.pk) == []  # nothing left to do: a second message is harmless
    assert [c["TITLE"] for c in companies(sandbox)] == ["Beta Traders"]
