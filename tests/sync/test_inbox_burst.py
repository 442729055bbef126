"""A burst of events costs a few broker messages, and one task per portal works through them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from sync.models import InboxEvent, SyncJob
from sync.services.inbox import inbox_process_portal
from tests.sync.conftest import queued_tasks
from tests.sync.test_inbox_bitrix24 import event_form


def test_thirty_events_in_a_burst_send_a_few_messages_and_all_become_jobs(acme_xero, app_url):
    portal = acme_xero.portal
    forms = [
        event_form(portal, "ONCRMDYNAMICITEMUPDATE", invoice_id=100 + n % 10, ts=1_700_000_000 + n) for n in range(30)
    ]
    # As a portal delivers a burst: many at once.
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda f: requests.post(f"{app_url}/bitrix24/events/", data=f, timeout=30), forms))
    assert [a.status_code for a in answers] == [200] * 30

    stored = InboxEvent.objects.filter(portal=portal, status=InboxEvent.Status.RECEIVED)
    assert stored.count() == 30
    sent = [t["task"] for t in queued_tasks()]
    # Coalesced per portal: one leading and at most one trailing message per 200 ms window.
    assert 1 <= sent.count("sync.tasks.inbox.inbox_process_portal_task") <= 10, sent
    assert "sync.tasks.inbox.inbox_process_task" not in sent

    counts = inbox_process_portal(portal.pk)
    assert counts == {"done": 30}
    assert not InboxEvent.objects.filter(portal=portal).exclude(status=InboxEvent.Status.DONE).exists()
    # Ten invoices, three events each: one pending push job per invoice.
    assert SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE).count() == 10
