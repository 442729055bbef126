"""What the event check keeps of a portal for a moment (accounts/services/event_senders.py): it
saves a delivery its database read, and never changes who is let in.

Each case goes through POST /bitrix24/events/ or POST /xero/webhooks/ on real PostgreSQL; the
changes are made as the app makes them (a save in this process) or behind its back (a queryset
update, as another process would).
"""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Portal
from accounts.services.event_senders import SENDER_KEPT_S, event_senders_forget_all
from integrations.xero.webhooks import xero_signature
from sync.models import InboxEvent
from tests.factories import ready_portal
from tests.sync.conftest import xero_body, xero_event
from tests.sync.test_ingest import event_form

TOKEN = "the-portals-application-token"
KEY = "event-senders-webhook-key"


@pytest.fixture
def portal(transactional_db, settings) -> Portal:
    settings.XERO_WEBHOOK_KEY = KEY
    event_senders_forget_all()
    return ready_portal(domain="senders.bitrix24.com", application_token=TOKEN)


def post_event(portal: Portal, *, token: str = TOKEN, invoice_id: int = 7, ts: int = 1_723_538_517):
    form = event_form(portal, invoice_id=invoice_id, ts=ts, **{"auth[application_token]": token})
    return Client().post("/bitrix24/events/", data=form)


def portal_reads(portal: Portal, **kwargs) -> tuple[int, int]:
    """(the answer's status, how many statements of the delivery read the portal table)."""
    with CaptureQueriesContext(connection) as queries:
        status = post_event(portal, **kwargs).status_code
    return status, sum('FROM "accounts_portal"' in q["sql"] for q in queries.captured_queries)


def test_a_burst_reads_the_portal_once_and_stores_every_event(portal):
    answers = [portal_reads(portal, invoice_id=n + 1, ts=1_700_000_000 + n) for n in range(5)]

    assert [status for status, _ in answers] == [200] * 5
    assert [reads for _, reads in answers] == [1, 0, 0, 0, 0]
    assert InboxEvent.objects.count() == 5


def test_a_wrong_token_is_refused_even_while_the_portal_is_kept(portal):
    assert post_event(portal).status_code == 200

    assert portal_reads(portal, token=TOKEN + "x", ts=1) == (401, 1)  # checked against the row again
    assert InboxEvent.objects.count() == 1


def test_a_new_token_written_by_another_process_is_accepted_at_once_and_the_old_one_soon_refused(portal):
    assert post_event(portal).status_code == 200
    # Another process re-installs the app: no signal reaches this one.
    Portal.objects.filter(pk=portal.pk).update(application_token="the-token-after-reinstall")

    assert post_event(portal, token="the-token-after-reinstall", ts=2).status_code == 200
    time.sleep(SENDER_KEPT_S + 0.1)
    assert post_event(portal, ts=3).status_code == 401


def test_a_portal_saved_or_deleted_here_is_forgotten_at_once(portal):
    assert post_event(portal).status_code == 200
    portal.application_token = "rotated"
    portal.save()
    assert post_event(portal, ts=2).status_code == 401

    assert post_event(portal, token="rotated", ts=3).status_code == 200
    member_id = portal.member_id
    portal.delete()
    assert (
        post_event(Portal(member_id=member_id, domain="senders.bitrix24.com"), token="rotated", ts=4).status_code == 401
    )


def test_a_kept_portal_is_a_copy_each_time(portal):
    from accounts.services.event_senders import event_sender_verify

    first = event_sender_verify(portal.member_id, TOKEN)
    second = event_sender_verify(portal.member_id, TOKEN)

    assert first.pk == second.pk == portal.pk and first is not second


def test_a_tenant_connected_a_moment_ago_is_seen_at_once_and_its_webhooks_stored_for_its_portal(portal):
    tenant = portal.xero_connection.tenant_id
    other = "5f1d1f3e-0000-4000-8000-00000000000a"

    def webhook(tenant_id: str) -> None:
        body = xero_body([xero_event(tenant_id)])
        answer = Client().post(
            "/xero/webhooks/",
            data=body,
            content_type="application/json",
            headers={"x-xero-signature": xero_signature(KEY, body)},
        )
        assert answer.status_code == 200

    webhook(other)  # no portal has it: not kept
    webhook(tenant)
    connection_ = portal.xero_connection
    connection_.tenant_id = other
    connection_.save()  # this portal switches organisation
    webhook(other)

    rows = list(InboxEvent.objects.order_by("pk").values_list("portal_id", "status"))
    assert rows == [
        (None, InboxEvent.Status.IGNORED),
        (portal.pk, InboxEvent.Status.RECEIVED),
        (portal.pk, InboxEvent.Status.RECEIVED),
    ]
