"""The Invoices page, one invoice, the placements and the two buttons, against the sandbox portal.

Users sign in the way Bitrix24 opens the app (the frame POST), the pages read the sandbox with that
user's own token, and the number of Bitrix24 requests per page view is read from /_sandbox/calls.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode, urlparse

import pytest
import requests

from integrations.common.errors import PermanentError
from sync.models import SyncJob
from sync.services.jobs import job_done, job_failed, jobs_claim
from tests.accounts.conftest import open_frame
from tests.factories import FrameSessionFactory, PortalFactory

pytestmark = pytest.mark.django_db(transaction=True)


# --- helpers --------------------------------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    """A parsed element: enough DOM to find things by id or data-test (no HTML library here)."""

    def __init__(self, tag: str, attrs: dict) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    def get_text(self, sep: str = "", strip: bool = False) -> str:
        parts = [c if isinstance(c, str) else c.get_text(sep, strip) for c in self.children]
        if strip:
            parts = [p.strip() for p in parts if p.strip()]
            return sep.join(parts)
        return sep.join(parts)

    def all(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.all()

    def select(self, selector: str) -> list[Node]:
        """ "#id", "[data-test=x]", or those two joined by a space (descendant)."""
        nodes = [self]
        for part in selector.split():
            if part.startswith("#"):
                nodes = [n for node in nodes for n in node.all() if n.attrs.get("id") == part[1:]]
            else:
                key, _, value = part.strip("[]").partition("=")
                nodes = [n for node in nodes for n in node.all() if n.attrs.get(key) == value]
        return nodes

    def select_one(self, selector: str) -> Node | None:
        found = self.select(selector)
        return found[0] if found else None


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    parser = _Parser()
    parser.feed(html)
    return parser.root


def rest(sandbox, user: dict, method: str, params: dict) -> dict:
    answer = sandbox.bitrix24_rest(method, params, auth=user["access_token"])
    assert "error" not in answer, answer
    return answer["result"]


def add_invoices(sandbox, user: dict, count: int, *, assigned_to: int | None = None, **fields) -> list[int]:
    """`count` invoices in batches of 50 (one HTTP request each); their ids in creation order."""
    ids: list[int] = []
    for start in range(0, count, 50):
        commands = {}
        for n in range(start, min(count, start + 50)):
            query = {"entityTypeId": 31, "fields[title]": f"Order {n + 1}", "fields[currencyId]": "NZD"}
            query |= {f"fields[{key}]": value for key, value in fields.items()}
            if assigned_to:
                query["fields[assignedById]"] = assigned_to
            commands[f"a{n}"] = f"crm.item.add?{urlencode(query)}"
        result = rest(sandbox, user, "batch", {"halt": 1, "cmd": commands})
        ids += [int(result["result"][key]["item"]["id"]) for key in commands]
    return ids


def page(frame, app_url: str, path: str = "/app/invoices/", **query):
    response = frame.http.get(f"{app_url}{path}", params={"ft": frame.token, **query}, timeout=30)
    return response, parse(response.text)


def row_ids(soup) -> list[int]:
    return [int(tr["data-invoice-id"]) for tr in soup.select("[data-test=invoice-row]")]


def post_json(frame, app_url: str, path: str, body: dict) -> requests.Response:
    return frame.http.post(f"{app_url}{path}", json=body, headers={"X-Frame-Token": frame.token}, timeout=30)


def rest_calls_during(sandbox, action) -> tuple[object, list[dict]]:
    before = max((c["id"] for c in sandbox.calls()), default=0)
    outcome = action()
    return outcome, [c for c in sandbox.calls(since=before, system="bitrix24")]


@pytest.fixture
def rita(sandbox) -> dict:
    """Sees every invoice (the sales lead)."""
    return sandbox.bitrix24_user("Rita Lead", admin=False, invoices="all")


@pytest.fixture
def owen(sandbox) -> dict:
    """May see only invoices assigned to him."""
    return sandbox.bitrix24_user("Owen Own", admin=False, invoices="own")


def signed_in(sandbox, user: dict):
    frame = open_frame(sandbox, user["id"])
    assert frame.response.status_code == 200, frame.response.text[:500]
    return frame


# --- what a user sees -----------------------------------------------------------------------------


def test_each_user_sees_exactly_the_invoices_bitrix24_shows_them(sandbox, acme, app_url, rita, owen):
    owens = add_invoices(sandbox, rita, 3, assigned_to=owen["id"])
    ritas = add_invoices(sandbox, rita, 2, assigned_to=rita["id"])

    owen_frame = signed_in(sandbox, owen)
    # Opening the app lands on Invoices (not an admin, so never on Setup).
    assert urlparse(owen_frame.response.url).path == "/app/invoices/"
    landing = parse(owen_frame.response.text)
    assert sorted(row_ids(landing)) == owens

    _, soup = page(signed_in(sandbox, rita), app_url)
    assert sorted(row_ids(soup)) == sorted(owens + ritas)


def test_pages_slice_bitrix24s_50_row_pages_within_three_requests(sandbox, acme, app_url, rita):
    ids = add_invoices(sandbox, rita, 120)
    frame = signed_in(sandbox, rita)

    (response, soup), calls = rest_calls_during(sandbox, lambda: page(frame, app_url, size=25, page=3, order="asc"))
    assert response.status_code == 200
    assert row_ids(soup) == ids[50:75]
    assert soup.select_one("[data-test=pager-summary]").get_text(strip=True) == "51–75 of 120"
    assert [c["target"] for c in calls] == ["crm.item.list"]  # one 50-row page covers rows 51-75

    (_, soup), calls = rest_calls_during(sandbox, lambda: page(frame, app_url, size=100, page=2, order="asc"))
    assert row_ids(soup) == ids[100:120]
    assert soup.select_one("[data-test=pager]")["data-pages"] == "2"
    assert len(calls) <= 3, calls

    # Two Bitrix24 pages (start 0 and 50) in one batch request for a 100-row page.
    (_, soup), calls = rest_calls_during(sandbox, lambda: page(frame, app_url, size=100, page=1, order="desc"))
    assert row_ids(soup) == list(reversed(ids))[:100]
    assert [c["target"] for c in calls] == ["batch"]  # no companies: no names batch; stages from the map
    assert len(calls) <= 3, calls

    # A page past the end shows the last page.
    _, soup = page(frame, app_url, size=50, page=9, order="asc")
    assert row_ids(soup) == ids[100:120]


def test_rows_show_number_company_contact_amount_stage_and_link_state(sandbox, acme, app_url, rita):
    company = rest(sandbox, rita, "crm.company.add", {"fields": {"TITLE": "Kiwi Outfitters Ltd"}})
    contact = rest(sandbox, rita, "crm.contact.add", {"fields": {"NAME": "Aroha", "LAST_NAME": "Ngata"}})
    (invoice_id,) = add_invoices(
        sandbox, rita, 1, companyId=company, contactId=contact, opportunity="1234.5", isManualOpportunity="Y"
    )
    frame = signed_in(sandbox, rita)
    (_, soup), calls = rest_calls_during(sandbox, lambda: page(frame, app_url))
    # The list, then company and contact names together in one batch.
    assert [c["target"] for c in calls] == ["crm.item.list", "batch"]
    row = soup.select_one(f"#invoice-{invoice_id}")
    assert row.select_one("[data-test=cell-number]").get_text(strip=True) == f"INV-{invoice_id}"
    assert row.select_one("[data-test=cell-company]").get_text(strip=True) == "Kiwi Outfitters Ltd"
    assert row.select_one("[data-test=cell-contact]").get_text(strip=True) == "Aroha Ngata"
    assert (
        row.select_one("[data-test=cell-amount]").get_text(" ", strip=True) == "1,234.50\xa0NZD"
    )  # grouped, as English writes it
    assert row.select_one("[data-test=cell-stage]").get_text(strip=True) not in ("", "DT31_1:N")
    assert row["data-link-state"] == "unlinked"


def test_the_date_filter_uses_the_pages_days_and_says_when_nothing_changed(sandbox, acme, app_url):
    # A user whose Bitrix24 zone is UTC: the page's days are UTC days (other zones:
    # tests/sync/test_invoice_list_days.py).
    rita = sandbox.bitrix24_user("Rita Lead", admin=False, invoices="all", time_zone="UTC")
    ids = add_invoices(sandbox, rita, 2)
    frame = signed_in(sandbox, rita)
    today = datetime.now(UTC).date()

    _, soup = page(frame, app_url, **{"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()})
    assert sorted(row_ids(soup)) == ids

    _, soup = page(frame, app_url, **{"from": (today + timedelta(days=1)).isoformat()})
    assert row_ids(soup) == []
    assert "No invoices changed in this period" in soup.select_one("[data-test=empty-state]").get_text()

    _, soup = page(frame, app_url, to=(today - timedelta(days=2)).isoformat())
    assert row_ids(soup) == []

    # A date that is not one is reported, and the list is shown without it.
    response, soup = page(frame, app_url, **{"from": "31/02/2026"})
    assert response.status_code == 200
    assert soup.select_one("[data-test=filter-errors]") is not None
    assert sorted(row_ids(soup)) == ids


def test_sorting_by_last_change(sandbox, acme, app_url, rita):
    first, second = add_invoices(sandbox, rita, 2)
    time.sleep(1.1)  # updatedTime has second precision
    rest(sandbox, rita, "crm.item.update", {"entityTypeId": 31, "id": first, "fields": {"title": "Changed"}})
    frame = signed_in(sandbox, rita)
    _, soup = page(frame, app_url, order="desc")
    assert row_ids(soup) == [first, second]
    assert soup.select_one("[data-test=sort-modified]")["data-order"] == "desc"
    _, soup = page(frame, app_url, order="asc")
    assert row_ids(soup) == [second, first]


def test_an_expired_bitrix24_session_asks_to_reopen_the_app(sandbox, acme, app_url, rita):
    frame = signed_in(sandbox, rita)
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens/expire", json={"user": rita["id"]}, timeout=10)
    response, soup = page(frame, app_url)
    assert response.status_code == 401
    assert "reopen the app" in soup.select_one("[data-test=error]").get_text()


def test_without_a_token_or_with_a_forged_one_nothing_is_shown(sandbox, acme, app_url):
    assert requests.get(f"{app_url}/app/invoices/", timeout=10).status_code == 403
    assert requests.get(f"{app_url}/app/invoices/", params={"ft": "forged"}, timeout=10).status_code == 403
    for path in ("/app/invoices/push/", "/app/invoices/pull/"):
        answer = requests.post(f"{app_url}{path}", json={"ids": [1]}, headers={"X-Frame-Token": "x"}, timeout=10)
        assert answer.status_code == 403
    assert requests.get(f"{app_url}/app/jobs/progress/", params={"ids": "1"}, timeout=10).status_code == 403
    assert not SyncJob.objects.exists()


# --- one invoice and the placements ---------------------------------------------------------------


def test_the_detail_page_shows_the_invoice_and_refuses_one_the_user_cannot_see(sandbox, acme, app_url, rita, owen):
    (mine,) = add_invoices(sandbox, rita, 1, assigned_to=owen["id"])
    (not_mine,) = add_invoices(sandbox, rita, 1, assigned_to=rita["id"])
    rest(
        sandbox,
        rita,
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": mine,
            "productRows": [{"productName": "Merino socks", "price": 24.9, "quantity": 4}],
        },
    )
    frame = signed_in(sandbox, owen)
    response, soup = page(frame, app_url, f"/app/invoices/{mine}/")
    assert response.status_code == 200
    assert soup.select_one("[data-test=invoice-detail]")["data-invoice-id"] == str(mine)
    assert "Merino socks" in soup.select_one("[data-test=product-rows]").get_text()

    response, soup = page(frame, app_url, f"/app/invoices/{not_mine}/")
    assert response.status_code == 403
    assert soup.select_one("[data-test=error]")["data-kind"] == "denied"


def test_the_detail_toolbar_opens_that_invoice_and_the_list_menu_the_selection(sandbox, acme, app_url, rita, owen):
    first, second = add_invoices(sandbox, rita, 2, assigned_to=owen["id"])
    frame = open_frame(
        sandbox, owen["id"], placement="CRM_SMART_INVOICE_DETAIL_TOOLBAR", options={"ENTITY_ID": str(first)}
    )
    assert frame.response.status_code == 200
    assert urlparse(frame.response.url).path == f"/app/invoices/{first}/"

    frame = open_frame(sandbox, owen["id"], placement="CRM_SMART_INVOICE_LIST_MENU", options={"ID": str(second)})
    assert frame.response.status_code == 200
    assert urlparse(frame.response.url).path == "/app/invoices/selected/"
    soup = parse(frame.response.text)
    assert row_ids(soup) == [second]
    assert soup.select_one("[data-test=push-one]")["data-ids"] == str(second)


# --- the buttons ----------------------------------------------------------------------------------


def test_push_selected_queues_one_user_job_per_invoice_and_progress_counts_them(
    sandbox, acme, acme_xero, app_url, rita
):
    ids = add_invoices(sandbox, rita, 3)
    frame = signed_in(sandbox, rita)
    answer = post_json(frame, app_url, "/app/invoices/push/", {"ids": ids})
    assert answer.status_code == 202, answer.text
    jobs = SyncJob.objects.filter(pk__in=answer.json()["jobs"]).order_by("target")
    assert sorted(j.target for j in jobs) == sorted(f"31:{i}" for i in ids)
    assert {(j.kind, j.priority, j.requested_by) for j in jobs} == {
        (SyncJob.Kind.PUSH_INVOICE, SyncJob.Priority.USER, rita["id"])
    }

    # Whatever runs the jobs, the progress endpoint reports them as they stand.
    claimed = jobs_claim(portal_id=acme.pk, kind=SyncJob.Kind.PUSH_INVOICE, limit=2)
    job_done(claimed[0])
    job_failed(claimed[1], PermanentError("Account code '999' is not a valid code", system="xero"))
    ids_param = ",".join(str(j) for j in answer.json()["jobs"])
    progress = frame.http.get(
        f"{app_url}/app/jobs/progress/", params={"ids": ids_param}, headers={"X-Frame-Token": frame.token}, timeout=10
    ).json()
    assert (progress["total"], progress["done"], progress["failed"], progress["pending"]) == (3, 1, 1, 1)
    assert progress["errors"][0]["message"] == "Account code '999' is not a valid code"
    assert progress["errors"][0]["invoice"] == claimed[1].target.partition(":")[2]

    # The list shows the invoice that is still waiting as queued.
    _, soup = page(frame, app_url)
    waiting = next(j for j in jobs if j.pk not in {c.pk for c in claimed})
    assert soup.select_one(f"#invoice-{waiting.target.partition(':')[2]}")["data-link-state"] == "queued"


def test_push_refuses_ids_the_user_cannot_see_and_queues_nothing(sandbox, acme, acme_xero, app_url, rita, owen):
    (his,) = add_invoices(sandbox, rita, 1, assigned_to=owen["id"])
    (hers,) = add_invoices(sandbox, rita, 1, assigned_to=rita["id"])
    frame = signed_in(sandbox, owen)
    answer = post_json(frame, app_url, "/app/invoices/push/", {"ids": [his, hers]})
    assert answer.status_code == 403
    assert answer.json()["refused"] == [hers]
    assert not SyncJob.objects.exists()
    assert post_json(frame, app_url, "/app/invoices/push/", {"ids": ["x"]}).status_code == 400


def test_push_all_filtered_acts_on_what_the_user_sees(sandbox, acme, acme_xero, app_url, rita):
    owen = sandbox.bitrix24_user("Owen Own", admin=False, invoices="own", time_zone="UTC")  # UTC days
    his = add_invoices(sandbox, rita, 60, assigned_to=owen["id"])
    add_invoices(sandbox, rita, 5, assigned_to=rita["id"])
    frame = signed_in(sandbox, owen)
    today = datetime.now(UTC).date().isoformat()
    answer = post_json(frame, app_url, "/app/invoices/push/", {"all_filtered": True, "from": today, "to": today})
    assert answer.status_code == 202, answer.text
    assert answer.json()["count"] == 60
    assert sorted(SyncJob.objects.values_list("target", flat=True)) == sorted(f"31:{i}" for i in his)

    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    empty = post_json(frame, app_url, "/app/invoices/push/", {"all_filtered": True, "from": tomorrow})
    assert empty.status_code == 400


def test_buttons_say_so_when_xero_is_not_connected(sandbox, acme, app_url, rita):
    ids = add_invoices(sandbox, rita, 1)
    frame = signed_in(sandbox, rita)
    _, soup = page(frame, app_url)
    assert "Xero is not connected" in soup.select_one("[data-test=xero-banner]").get_text()
    answer = post_json(frame, app_url, "/app/invoices/push/", {"ids": ids})
    assert answer.status_code == 409 and answer.json()["kind"] == "xero"
    assert post_json(frame, app_url, "/app/invoices/pull/", {}).status_code == 409
    assert not SyncJob.objects.exists()


def test_update_from_xero_queues_one_sweep_job(sandbox, acme, acme_xero, app_url, rita):
    frame = signed_in(sandbox, rita)
    answer = post_json(frame, app_url, "/app/invoices/pull/", {})
    assert answer.status_code == 202
    job = SyncJob.objects.get(pk=answer.json()["jobs"][0])
    assert (job.kind, job.requested_by, job.portal_id) == (SyncJob.Kind.SWEEP_XERO, rita["id"], acme.pk)


def test_progress_of_another_portals_jobs_is_not_revealed(sandbox, acme, acme_xero, app_url, rita, other_portal_frame):
    ids = add_invoices(sandbox, rita, 1)
    answer = post_json(signed_in(sandbox, rita), app_url, "/app/invoices/push/", {"ids": ids})
    job_ids = answer.json()["jobs"]
    progress = requests.get(
        f"{app_url}/app/jobs/progress/",
        params={"ids": ",".join(map(str, job_ids))},
        headers={"X-Frame-Token": other_portal_frame},
        timeout=10,
    ).json()
    assert progress["total"] == 0


@pytest.fixture
def other_portal_frame(acme) -> str:
    """A frame token of an admin of a second portal (Globex) stored beside acme."""
    from accounts.services.frame import frame_token_issue

    globex = PortalFactory(
        member_id="globex-member",
        domain="globex.bitrix24.com",
        client_endpoint="https://globex.bitrix24.com/rest/",
        application_token="g" * 32,
    )
    session = FrameSessionFactory(
        portal=globex, bitrix_user_id=1, name="Globex Admin", is_admin=True, access_token="globex-token"
    )
    return frame_token_issue(session=session)


def test_job_progress_shows_a_user_only_the_jobs_of_invoices_bitrix24_lets_them_see(
    sandbox, acme, acme_xero, app_url, rita, owen
):
    """Job numbers are sequential: without a check, anyone could read every job's invoice and error."""
    ritas = add_invoices(sandbox, rita, 2, assigned_to=rita["id"])
    owens = add_invoices(sandbox, rita, 1, assigned_to=owen["id"])
    lead = signed_in(sandbox, rita)
    jobs = post_json(lead, app_url, "/app/invoices/push/", {"ids": ritas + owens}).json()["jobs"]
    ids_param = ",".join(str(j) for j in jobs)

    def progress(frame) -> dict:
        return frame.http.get(
            f"{app_url}/app/jobs/progress/", params={"ids": ids_param}, headers={"X-Frame-Token": frame.token}
        ).json()

    assert progress(lead)["total"] == 3  # Rita sees every invoice
    assert progress(signed_in(sandbox, owen))["total"] == 1  # Owen only the one assigned to him
    assert progress(signed_in(sandbox, {"id": 1}))["total"] == 3  # the admin sees all
