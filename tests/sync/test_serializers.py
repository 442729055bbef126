"""The bodies the pages accept, validated by DRF serializers (sync/web/serializers.py,
accounts/serializers.py): clean values, or a 400 with the reason and nothing changed."""

from __future__ import annotations

import json

import pytest

from accounts.models import XeroConnection
from sync.models import SyncJob
from sync.services.imports import CONTACTS_CUSTOMERS
from sync.web.serializers import ImportStartRequest, InvoicePushRequest, LogRetryRequest
from tests.accounts import conftest as accounts_fixtures
from tests.factories import SyncJobFactory

# The install and frame sign-in fixtures of the accounts tests.
acme = accounts_fixtures.acme
admin_frame = accounts_fixtures.admin_frame
app_url = accounts_fixtures.app_url


@pytest.mark.parametrize(
    ("body", "ids"),
    [({"ids": [1, "2", 2]}, [1, 2]), ({"ids": "3, 4"}, [3, 4]), ({}, [])],
)
def test_push_ids_are_positive_whole_numbers_in_order_without_duplicates(body, ids):
    parsed = InvoicePushRequest(data=body)
    assert parsed.is_valid(), parsed.errors
    assert parsed.validated_data["ids"] == ids


@pytest.mark.parametrize(
    "body",
    [
        {"ids": ["x"]},
        {"ids": [0]},
        {"ids": [[1]]},
        {"ids": {"a": 1}},
        {"ids": None},
        {"ids": ["9" * 19]},
        {"all_filtered": "perhaps"},
        {"from": {"nested": "object"}},
    ],
)
def test_a_malformed_push_body_is_refused_naming_the_field(body):
    parsed = InvoicePushRequest(data=body)
    assert not parsed.is_valid()
    assert set(parsed.errors) == set(body)


# --- the endpoints: a malformed body is a 400 with a reason, and nothing is changed ---------------


@pytest.mark.django_db(transaction=True)
class TestMalformedBodies:
    """Each JSON/POST endpoint of the pages, signed in as the portal's admin (the frame POST)."""

    @pytest.fixture(autouse=True)
    def _signed_in(self, client, sandbox, acme, admin_frame):
        self.client, self.portal = client, acme
        self.headers = {"HTTP_X_FRAME_TOKEN": admin_frame.token, "HTTP_ACCEPT": "application/json"}

    def post(self, path: str, body, *, raw: bool = False):
        data = body if raw else json.dumps(body)
        return self.client.post(path, data=data, content_type="application/json", **self.headers)

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "must be a JSON object"),
            ('{"ids": ["x"]}', "Select at least one invoice."),
            ('{"ids": [1], "all_filtered": "perhaps"}', "'all_filtered' is not valid"),
        ],
    )
    def test_push(self, body, reason):
        answer = self.post("/app/invoices/push/", body, raw=True)
        assert answer.status_code == 400, answer.content
        assert reason in answer.json()["error"]
        assert answer.json()["kind"] == "input"
        assert not SyncJob.objects.filter(portal=self.portal).exists()

    @pytest.mark.parametrize("entry", ["abc", 0, -3, None, [1], 2**70])
    def test_log_retry(self, entry):
        job = SyncJobFactory(portal=self.portal, status=SyncJob.Status.FAILED, attempts=8)
        answer = self.post("/app/log/retry/", {"entry": entry})
        assert answer.status_code == 400, answer.content
        assert answer.json()["error"] == "entry must be a log entry's number."
        assert "entry" in answer.json()["fields"]
        job.refresh_from_db()
        assert (job.status, job.attempts) == (SyncJob.Status.FAILED, 8)

    def test_log_retry_of_an_entry_that_does_not_exist_is_still_a_404(self):
        assert self.post("/app/log/retry/", {"entry": 987654}).status_code == 404

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ({}, "Choose what to import."),
            ({"kind": "everything"}, "Choose what to import."),
            ({"kind": "contacts", "contacts": "suppliers"}, "Choose which Xero contacts to import"),
            ({"kind": "items", "currency": {"code": "NZD"}}, "Choose one of the portal's currencies"),
        ],
    )
    def test_import_start(self, body, reason):
        answer = self.post("/app/import/", body)
        assert answer.status_code == 400, answer.content
        assert reason in answer.json()["error"]
        assert not SyncJob.objects.filter(portal=self.portal).exists()

    def test_import_start_as_a_plain_form_shows_the_page_with_the_reason(self):
        answer = self.client.post(
            "/app/import/", {"kind": "everything"}, HTTP_X_FRAME_TOKEN=self.headers["HTTP_X_FRAME_TOKEN"]
        )
        assert answer.status_code == 400
        assert "Choose what to import." in answer.content.decode()
        assert not SyncJob.objects.filter(portal=self.portal).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"state": "s" * 20}, "Choose one of the organisations listed."),
        ({"tenant_id": "t" * 36}, "missing its consent state"),
        ({"state": "s" * 201, "tenant_id": "t"}, "missing its consent state"),
    ],
)
def test_xero_choose_refuses_a_malformed_form_and_connects_nothing(client, form, reason):
    answer = client.post("/xero/choose/", form)
    assert answer.status_code == 400
    assert reason in answer.content.decode()
    assert not XeroConnection.objects.exists()


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"entry": 7}, True),
        ({"entry": "7"}, True),
        ({"entry": "7x"}, False),
        ({}, False),
    ],
)
def test_log_retry_request(body, valid):
    assert LogRetryRequest(data=body).is_valid() is valid


def test_import_start_request_normalises_the_currency_and_defaults_to_customers():
    parsed = ImportStartRequest(data={"kind": "items", "currency": " nzd "})
    assert parsed.is_valid(), parsed.errors
    assert parsed.validated_data == {"kind": "items", "currency": "NZD", "contacts": CONTACTS_CUSTOMERS}
