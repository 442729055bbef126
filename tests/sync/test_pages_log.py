"""The Sync log page: newest first, failures only, per-user visibility, retry, portal isolation."""

from __future__ import annotations

import pytest
import requests

from integrations.common.errors import PermanentError
from sync.models import Direction, SyncJob, SyncLogEntry, Trigger
from sync.services.jobs import job_enqueue, job_failed, jobs_claim
from sync.services.log import sync_log_write
from tests.sync import test_pages_invoices as pages
from tests.sync.test_pages_invoices import add_invoices, page, post_json, signed_in

# Shared fixtures (pytest finds fixtures by the names in this module).
rita, owen, other_portal_frame = pages.rita, pages.owen, pages.other_portal_frame

pytestmark = pytest.mark.django_db(transaction=True)


def failed_push(portal, invoice_id: int, message: str) -> SyncJob:
    """What the push engine leaves behind on a permanent failure: a failed job and a log entry."""
    job_enqueue(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{invoice_id}", trigger=Trigger.EVENT)
    (job,) = jobs_claim(portal_id=portal.pk, kind=SyncJob.Kind.PUSH_INVOICE)
    job = job_failed(job, PermanentError(message, system="xero"))
    sync_log_write(
        portal=portal,
        direction=Direction.PUSH,
        trigger=Trigger.EVENT,
        outcome=SyncLogEntry.Outcome.FAILED,
        bitrix24_id=invoice_id,
        message=message,
    )
    return job


def entries(soup) -> list[tuple[str, str]]:
    return [(e["data-invoice-id"], e["data-outcome"]) for e in soup.select("[data-test=log-entry]")]


def test_admins_see_the_whole_log_newest_first_and_can_show_failures_only(sandbox, acme, app_url, rita):
    first, second = add_invoices(sandbox, rita, 2)
    sync_log_write(portal=acme, direction=Direction.PUSH, trigger=Trigger.BUTTON, outcome="created", bitrix24_id=first)
    failed_push(acme, second, "Account code '999' is not a valid code")
    admin = sandbox.bitrix24_user("Ada Admin", admin=True)
    frame = signed_in(sandbox, admin)

    _, soup = page(frame, app_url, "/app/log/")
    assert entries(soup) == [(str(second), "failed"), (str(first), "created")]
    assert "Account code '999' is not a valid code" in soup.select_one("[data-test=log-message]").get_text()

    _, soup = page(frame, app_url, "/app/log/", failed="1")
    assert entries(soup) == [(str(second), "failed")]
    assert soup.select_one("[data-test=log-retry]")["data-entry"]


def test_a_user_sees_and_retries_only_entries_of_invoices_they_can_see(sandbox, acme, app_url, rita, owen):
    (his,) = add_invoices(sandbox, rita, 1, assigned_to=owen["id"])
    (hers,) = add_invoices(sandbox, rita, 1, assigned_to=rita["id"])
    his_job = failed_push(acme, his, "his failure")
    failed_push(acme, hers, "her failure")
    frame = signed_in(sandbox, owen)

    _, soup = page(frame, app_url, "/app/log/")
    assert entries(soup) == [(str(his), "failed")]
    assert soup.select_one("[data-test=log-hidden]") is not None

    hers_entry = SyncLogEntry.objects.get(bitrix24_id=str(hers))
    refused = post_json(frame, app_url, "/app/log/retry/", {"entry": hers_entry.pk})
    assert refused.status_code == 403
    assert SyncJob.objects.get(target=f"31:{hers}").status == SyncJob.Status.FAILED

    his_entry = SyncLogEntry.objects.get(bitrix24_id=str(his))
    answer = post_json(frame, app_url, "/app/log/retry/", {"entry": his_entry.pk})
    assert answer.status_code == 202, answer.text
    his_job.refresh_from_db()
    assert answer.json()["jobs"] == [his_job.pk]
    assert (his_job.status, his_job.priority, his_job.attempts) == (SyncJob.Status.PENDING, SyncJob.Priority.USER, 0)


def test_an_entry_with_nothing_to_retry_says_so(sandbox, acme, app_url, rita):
    (invoice,) = add_invoices(sandbox, rita, 1)
    entry = sync_log_write(
        portal=acme, direction=Direction.PUSH, trigger=Trigger.BUTTON, outcome="failed", bitrix24_id=invoice
    )
    frame = signed_in(sandbox, rita)
    _, soup = page(frame, app_url, "/app/log/")
    assert soup.select_one("[data-test=log-retry]") is None
    assert post_json(frame, app_url, "/app/log/retry/", {"entry": entry.pk}).status_code == 409


def test_another_portals_admin_sees_nothing_of_this_portals_log(sandbox, acme, app_url, rita, other_portal_frame):
    (invoice,) = add_invoices(sandbox, rita, 1)
    failed_push(acme, invoice, "secret failure")
    response = requests.get(f"{app_url}/app/log/", params={"ft": other_portal_frame}, timeout=10)
    assert response.status_code == 200
    assert "secret failure" not in response.text
    assert 'data-test="empty-state"' in response.text
    entry = SyncLogEntry.objects.get()
    retry = requests.post(
        f"{app_url}/app/log/retry/", json={"entry": entry.pk}, headers={"X-Frame-Token": other_portal_frame}, timeout=10
    )
    assert retry.status_code == 404
    assert SyncJob.objects.get().status == SyncJob.Status.FAILED


def test_the_log_needs_a_valid_frame_token(sandbox, acme, app_url):
    assert requests.get(f"{app_url}/app/log/", timeout=10).status_code == 403
    assert requests.get(f"{app_url}/app/log/", params={"ft": "forged"}, timeout=10).status_code == 403
